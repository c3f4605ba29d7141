package room

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestSamePath(t *testing.T) {
	cand := func(typ webrtc.ICECandidateType, proto webrtc.ICEProtocol, addr string, port uint16) *webrtc.ICECandidate {
		return &webrtc.ICECandidate{Typ: typ, Protocol: proto, Address: addr, Port: port}
	}
	host := func(addr string) *webrtc.ICECandidate {
		return cand(webrtc.ICECandidateTypeHost, webrtc.ICEProtocolUDP, addr, 7882)
	}
	peer := cand(webrtc.ICECandidateTypeHost, webrtc.ICEProtocolUDP, "192.0.2.2", 50000)
	pair := func(local, remote *webrtc.ICECandidate) *webrtc.ICECandidatePair {
		return webrtc.NewICECandidatePair(local, remote)
	}
	base := pair(host("127.0.0.1"), peer)
	for _, tc := range []struct {
		name string
		next *webrtc.ICECandidatePair
		same bool
	}{
		{"first pair", nil, false},
		{"another host address of the same socket", pair(host("10.0.0.5"), peer), true},
		{"the peer moved (Wi-Fi to hotspot)", pair(host("127.0.0.1"), cand(webrtc.ICECandidateTypeHost, webrtc.ICEProtocolUDP, "198.51.100.7", 50000)), false},
		{"the peer's port changed (a new NAT binding)", pair(host("127.0.0.1"), cand(webrtc.ICECandidateTypeHost, webrtc.ICEProtocolUDP, "192.0.2.2", 50001)), false},
		{"ICE-TCP", pair(cand(webrtc.ICECandidateTypeHost, webrtc.ICEProtocolTCP, "127.0.0.1", 7881), cand(webrtc.ICECandidateTypeHost, webrtc.ICEProtocolTCP, "192.0.2.2", 9)), false},
		{"through a relay", pair(cand(webrtc.ICECandidateTypeRelay, webrtc.ICEProtocolUDP, "203.0.113.1", 7882), peer), false},
	} {
		if got := samePath(base, tc.next); got != tc.same {
			t.Errorf("%s: samePath = %v, want %v", tc.name, got, tc.same)
		}
	}
	relay := pair(cand(webrtc.ICECandidateTypeRelay, webrtc.ICEProtocolUDP, "203.0.113.1", 50000), peer)
	if other := pair(cand(webrtc.ICECandidateTypeRelay, webrtc.ICEProtocolUDP, "203.0.113.9", 50000), peer); samePath(relay, other) {
		t.Error("two relays' addresses were taken for one path")
	}
}
