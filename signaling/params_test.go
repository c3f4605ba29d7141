package signaling

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
)

func testVerifiedToken(canUpdateMetadata bool) verifiedToken {
	video := &auth.VideoGrant{RoomJoin: true, Room: testRoom}
	video.SetCanUpdateOwnMetadata(canUpdateMetadata)
	return verifiedToken{apiKey: testKey, grants: &auth.ClaimGrants{Identity: "alice", Video: video}}
}

func TestJoinFromQuery(t *testing.T) {
	attrs := base64.URLEncoding.EncodeToString([]byte(`{"role":"teacher"}`))
	tests := []struct {
		name      string
		query     string
		canUpdate bool
		want      func(rooms.JoinRequest) bool
		status    int // expected refusal, 0 for none
	}{
		{name: "defaults", query: "", want: func(r rooms.JoinRequest) bool {
			return r.AutoSubscribe && !r.AdaptiveStream && !r.Reconnect && r.RoomName == testRoom && r.Identity == "alice"
		}},
		{name: "auto_subscribe=0", query: "auto_subscribe=0", want: func(r rooms.JoinRequest) bool { return !r.AutoSubscribe }},
		{name: "auto_subscribe=false", query: "auto_subscribe=false", want: func(r rooms.JoinRequest) bool { return !r.AutoSubscribe }},
		{name: "auto_subscribe=true", query: "auto_subscribe=true", want: func(r rooms.JoinRequest) bool { return r.AutoSubscribe }},
		{name: "adaptive_stream=1", query: "adaptive_stream=1", want: func(r rooms.JoinRequest) bool { return r.AdaptiveStream }},
		{name: "sid ignored without reconnect", query: "sid=PA_x", want: func(r rooms.JoinRequest) bool {
			return !r.Reconnect && r.ParticipantSID == ""
		}},
		{name: "reconnect", query: "reconnect=true&sid=PA_x&reconnect_reason=3", want: func(r rooms.JoinRequest) bool {
			return r.Reconnect && r.ParticipantSID == "PA_x" && r.ReconnectReason == livekit.ReconnectReason_RR_SUBSCRIBER_FAILED
		}},
		{name: "bad reconnect_reason", query: "reconnect_reason=abc", status: 400},
		{name: "go sdk double ampersand", query: "version=2.19.0&protocol=16&&auto_subscribe=1&sdk=go&os=linux",
			want: func(r rooms.JoinRequest) bool {
				ci := r.ClientInfo
				return r.AutoSubscribe && ci.GetSdk() == livekit.ClientInfo_GO && ci.GetProtocol() == 16 &&
					ci.GetVersion() == "2.19.0" && ci.GetOs() == "linux"
			}},
		{name: "js client info", query: "sdk=js&version=2.9&protocol=16&client_protocol=1&os=iOS&os_version=18&" +
			"device_model=iPhone&browser=Safari&browser_version=18.1&network=wifi&capabilities=CAP_PACKET_TRAILER,bogus",
			want: func(r rooms.JoinRequest) bool {
				ci := r.ClientInfo
				return ci.GetSdk() == livekit.ClientInfo_JS && ci.GetClientProtocol() == 1 && ci.GetOsVersion() == "18" &&
					ci.GetDeviceModel() == "iPhone" && ci.GetBrowser() == "Safari" && ci.GetBrowserVersion() == "18.1" &&
					ci.GetNetwork() == "wifi" && len(ci.GetCapabilities()) == 1 && ci.GetAddress() == "192.0.2.1"
			}},
		{name: "attributes granted", query: "attributes=" + attrs, canUpdate: true, want: func(r rooms.JoinRequest) bool {
			return r.Attributes["role"] == "teacher"
		}},
		{name: "attributes unpadded", query: "attributes=" + strings.TrimRight(attrs, "="), canUpdate: true,
			want: func(r rooms.JoinRequest) bool { return r.Attributes["role"] == "teacher" }},
		{name: "attributes not granted", query: "attributes=" + attrs, status: 401},
		{name: "attributes malformed", query: "attributes=%21%21", canUpdate: true, status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, herr := joinFromQuery(q, testVerifiedToken(tc.canUpdate), "192.0.2.1")
			if tc.status != 0 {
				if herr == nil || herr.status != tc.status {
					t.Fatalf("refusal %v, want status %d", herr, tc.status)
				}
				return
			}
			if herr != nil {
				t.Fatalf("refused: %v", herr)
			}
			if !tc.want(got) {
				t.Errorf("unexpected join request %+v (client %v)", got, got.ClientInfo)
			}
		})
	}
}

func TestParseSDK(t *testing.T) {
	tests := map[string]livekit.ClientInfo_SDK{
		"js": livekit.ClientInfo_JS, "go": livekit.ClientInfo_GO, "ios": livekit.ClientInfo_SWIFT,
		"swift": livekit.ClientInfo_SWIFT, "android": livekit.ClientInfo_ANDROID, "flutter": livekit.ClientInfo_FLUTTER,
		"reactnative": livekit.ClientInfo_REACT_NATIVE, "unityweb": livekit.ClientInfo_UNITY_WEB,
		"rust": livekit.ClientInfo_RUST, "python": livekit.ClientInfo_PYTHON, "": livekit.ClientInfo_UNKNOWN,
		"cobol": livekit.ClientInfo_UNKNOWN,
	}
	for in, want := range tests {
		if got := parseSDK(in); got != want {
			t.Errorf("parseSDK(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestClientAddress(t *testing.T) {
	tests := []struct {
		name       string
		header     http.Header
		trustProxy bool
		want       string
	}{
		{"peer", nil, false, "192.0.2.1"},
		{"forwarded ignored", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, false, "192.0.2.1"},
		{"forwarded trusted: the proxy's entry", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, true, "203.0.113.9"},
		{"forwarded trusted: client-sent entries ignored", http.Header{"X-Forwarded-For": {"198.51.100.66, 203.0.113.9"}}, true, "203.0.113.9"},
		{"forwarded trusted: last of several headers", http.Header{"X-Forwarded-For": {"198.51.100.66", "203.0.113.9"}}, true, "203.0.113.9"},
		{"real ip trusted", http.Header{"X-Real-Ip": {"203.0.113.7"}}, true, "203.0.113.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/rtc", nil)
			r.RemoteAddr = "192.0.2.1:5555"
			for k, v := range tc.header {
				r.Header[k] = v
			}
			if got := ClientAddress(r, tc.trustProxy); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRequestHost(t *testing.T) {
	tests := []struct {
		name       string
		header     http.Header
		trustProxy bool
		want       string
	}{
		{"host", nil, false, "class.example.edu.cn:7880"},
		{"forwarded ignored", http.Header{"X-Forwarded-Host": {"proxy.example.edu.cn"}}, false, "class.example.edu.cn:7880"},
		{"forwarded trusted", http.Header{"X-Forwarded-Host": {"proxy.example.edu.cn, inner"}}, true, "proxy.example.edu.cn"},
		{"trusted, none forwarded", nil, true, "class.example.edu.cn:7880"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://class.example.edu.cn:7880/rtc", nil)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			if got := requestHost(r, tc.trustProxy); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRequestToken(t *testing.T) {
	tests := []struct {
		name, target, auth, want string
		fail                     bool
	}{
		{name: "query", target: "/rtc?access_token=abc", want: "abc"},
		{name: "header", target: "/rtc", auth: "Bearer xyz", want: "xyz"},
		{name: "header wins", target: "/rtc?access_token=abc", auth: "Bearer xyz", want: "xyz"},
		{name: "lowercase bearer", target: "/rtc", auth: "bearer xyz", want: "xyz"},
		{name: "basic", target: "/rtc", auth: "Basic xyz", fail: true},
		{name: "empty bearer", target: "/rtc", auth: "Bearer ", fail: true},
		{name: "none", target: "/rtc", fail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			got, herr := requestToken(r)
			if tc.fail {
				if herr == nil || herr.status != http.StatusUnauthorized {
					t.Fatalf("got %q %v, want 401", got, herr)
				}
				return
			}
			if herr != nil || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, herr, tc.want)
			}
		})
	}
}

// wrapJoin encodes jr as the join_request parameter, like the SDKs do.
func wrapJoin(t *testing.T, jr *livekit.JoinRequest, gz bool, pad bool) string {
	t.Helper()
	data, err := proto.Marshal(jr)
	if err != nil {
		t.Fatal(err)
	}
	w := &livekit.WrappedJoinRequest{JoinRequest: data}
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(data)
		_ = zw.Close()
		w = &livekit.WrappedJoinRequest{Compression: livekit.WrappedJoinRequest_GZIP, JoinRequest: buf.Bytes()}
	}
	wd, err := proto.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if pad {
		return base64.URLEncoding.EncodeToString(wd)
	}
	return base64.RawURLEncoding.EncodeToString(wd)
}

func TestDecodeWrappedJoinRequest(t *testing.T) {
	jr := &livekit.JoinRequest{
		ClientInfo:         &livekit.ClientInfo{Sdk: livekit.ClientInfo_JS, Protocol: 16},
		ConnectionSettings: &livekit.ConnectionSettings{AutoSubscribe: true, AdaptiveStream: true},
		Reconnect:          true,
		ParticipantSid:     "PA_1",
	}
	big := &livekit.JoinRequest{Metadata: strings.Repeat("m", 4096)}
	garbageGzip := base64.URLEncoding.EncodeToString(must(proto.Marshal(&livekit.WrappedJoinRequest{
		Compression: livekit.WrappedJoinRequest_GZIP, JoinRequest: []byte("not gzip")})))
	tests := []struct {
		name    string
		param   string
		wantErr bool
	}{
		{name: "gzip padded", param: wrapJoin(t, jr, true, true)},
		{name: "gzip unpadded", param: wrapJoin(t, jr, true, false)},
		{name: "uncompressed", param: wrapJoin(t, jr, false, true)},
		{name: "bad base64", param: "!!!", wantErr: true},
		{name: "bad wrapper", param: base64.URLEncoding.EncodeToString([]byte{0xff, 0xff}), wantErr: true},
		{name: "bad gzip", param: garbageGzip, wantErr: true},
		{name: "gzip bomb", param: wrapJoin(t, big, true, true), wantErr: true},
		{name: "too large uncompressed", param: wrapJoin(t, big, false, true), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeWrappedJoinRequest(tc.param, 1024)
			if tc.wantErr {
				if err == nil {
					t.Fatal("decoded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, jr) {
				t.Errorf("got %v, want %v", got, jr)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestJoinFromProto(t *testing.T) {
	jr := &livekit.JoinRequest{
		ClientInfo:         &livekit.ClientInfo{Sdk: livekit.ClientInfo_JS, Protocol: 16},
		ConnectionSettings: &livekit.ConnectionSettings{AdaptiveStream: true},
		Reconnect:          true,
		ReconnectReason:    livekit.ReconnectReason_RR_SWITCH_CANDIDATE,
		ParticipantSid:     "PA_1",
	}
	q := url.Values{"join_request": {wrapJoin(t, jr, true, true)}}
	got, herr := joinFromProto(q, testVerifiedToken(false), "192.0.2.1", 1<<20)
	if herr != nil {
		t.Fatal(herr)
	}
	if got.AutoSubscribe || !got.AdaptiveStream || !got.Reconnect || got.ParticipantSID != "PA_1" ||
		got.ReconnectReason != livekit.ReconnectReason_RR_SWITCH_CANDIDATE || got.ProtoJoinRequest == nil ||
		got.ClientInfo.GetSdk() != livekit.ClientInfo_JS || got.ClientInfo.GetAddress() != "192.0.2.1" {
		t.Errorf("join request %+v", got)
	}

	withMeta := &livekit.JoinRequest{Metadata: "hello"}
	if _, herr := joinFromProto(url.Values{"join_request": {wrapJoin(t, withMeta, false, true)}},
		testVerifiedToken(false), "", 1<<20); herr == nil || herr.status != 401 {
		t.Errorf("metadata without grant: %v, want 401", herr)
	}
	if _, herr := joinFromProto(url.Values{}, testVerifiedToken(false), "", 1<<20); herr == nil || herr.status != 400 {
		t.Errorf("missing join_request: %v, want 400", herr)
	}
}

// The single PeerConnection endpoint is built but not registered; check it end to end so
// that enabling it is only a matter of adding the route.
func TestSinglePCEndpoint(t *testing.T) {
	j := newFakeJoiner()
	srv := newTestServer(t, Config{}, j)
	mux := http.NewServeMux()
	mux.HandleFunc("/rtc/v1", func(w http.ResponseWriter, r *http.Request) { srv.h.serveRTC(w, r, singlePC) })
	mux.HandleFunc("/rtc/v1/validate", func(w http.ResponseWriter, r *http.Request) { srv.h.serveValidate(w, r, singlePC) })
	v1 := httptest.NewServer(mux)
	defer v1.Close()

	jr := &livekit.JoinRequest{ConnectionSettings: &livekit.ConnectionSettings{AutoSubscribe: true}}
	q := url.Values{"access_token": {testToken(t, "alice")}, "join_request": {wrapJoin(t, jr, true, false)}}

	resp, err := v1.Client().Get(v1.URL + "/rtc/v1/validate?" + q.Encode())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("validate: %v %v", err, resp)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(v1.URL, "http")+"/rtc/v1?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = ws.Close() }()
	if readResponse(t, ws).GetJoin() == nil {
		t.Fatal("no join response")
	}
	s := j.nextSession(t)
	if s.req.ProtoJoinRequest == nil || !s.req.AutoSubscribe {
		t.Errorf("join request %+v", s.req)
	}
}

func TestRejectionFor(t *testing.T) {
	tests := []struct {
		err    error
		status int
		reason livekit.DisconnectReason
		action livekit.LeaveRequest_Action
	}{
		{rooms.ErrRoomNotFound, 404, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{fmt.Errorf("wrapped: %w", rooms.ErrRoomFull), 403, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{rooms.ErrRoomClosed, 503, livekit.DisconnectReason_ROOM_CLOSED, livekit.LeaveRequest_DISCONNECT},
		{rooms.ErrParticipantNotFound, 409, livekit.DisconnectReason_STATE_MISMATCH, livekit.LeaveRequest_RECONNECT},
		{rooms.ErrPermissionDenied, 401, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{rooms.ErrServerShuttingDown, 503, livekit.DisconnectReason_SERVER_SHUTDOWN, livekit.LeaveRequest_DISCONNECT},
		{context.DeadlineExceeded, 503, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{fmt.Errorf("room name is 300 bytes: %w", rooms.ErrLimitExceeded), 400, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{fmt.Errorf("attribute sanke.role: %w", rooms.ErrReservedAttribute), 403, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
		{errors.New("other"), 500, livekit.DisconnectReason_JOIN_FAILURE, livekit.LeaveRequest_DISCONNECT},
	}
	for _, tc := range tests {
		got := RejectionFor(tc.err)
		if got.Status != tc.status || got.Reason != tc.reason || got.Action != tc.action || got.Message == "" {
			t.Errorf("RejectionFor(%v) = %+v", tc.err, got)
		}
	}
	if msg := RejectionFor(rooms.ErrRoomNotFound).Message; !strings.Contains(msg, "requested room does not exist") {
		t.Errorf("room not found message %q must contain the text the JS SDK looks for", msg)
	}
	// What was refused is told: the room layer's text carries no secret.
	if msg := RejectionFor(fmt.Errorf("room name is 300 bytes: %w", rooms.ErrLimitExceeded)).Message; !strings.Contains(msg, "room name is 300 bytes") {
		t.Errorf("limit message %q does not say which limit", msg)
	}
}

func TestLeaveResponse(t *testing.T) {
	tests := []struct {
		action       livekit.LeaveRequest_Action
		canReconnect bool
	}{
		{livekit.LeaveRequest_DISCONNECT, false},
		{livekit.LeaveRequest_RESUME, false},
		{livekit.LeaveRequest_RECONNECT, true},
	}
	for _, tc := range tests {
		l := LeaveResponse(livekit.DisconnectReason_ROOM_DELETED, tc.action).GetLeave()
		if l.GetReason() != livekit.DisconnectReason_ROOM_DELETED || l.GetAction() != tc.action || l.GetCanReconnect() != tc.canReconnect {
			t.Errorf("LeaveResponse(%v) = %v", tc.action, l)
		}
	}
}
