package room

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// livenessRun drives a liveness check with a fake clock, one sample every 300 ms (the room
// loop's interval).
type livenessRun struct {
	t   *testing.T
	l   liveness
	now time.Time
	a   mediaActivity
	up  bool
}

func newLivenessRun(t *testing.T) *livenessRun {
	r := &livenessRun{t: t, now: time.Unix(1000, 0), up: true}
	r.step(nil) // the first sample only starts the check
	return r
}

// step advances the clock by one interval, applies change to the counters and samples.
func (r *livenessRun) step(change func(a *mediaActivity)) livenessAction {
	r.now = r.now.Add(300 * time.Millisecond)
	if change != nil {
		change(&r.a)
	}
	return r.l.observe(r.now, r.a, r.up, r.up)
}

// until steps with change until an action other than livenessOK comes or d passes, and
// returns it with the time it took.
func (r *livenessRun) until(d time.Duration, change func(a *mediaActivity)) (livenessAction, time.Duration) {
	start := r.now
	for r.now.Sub(start) < d {
		if act := r.step(change); act != livenessOK {
			return act, r.now.Sub(start)
		}
	}
	return livenessOK, r.now.Sub(start)
}

func sendVideo(a *mediaActivity)           { a.sentVideo += 30 }
func sendAudio(a *mediaActivity)           { a.sentAudio += 15 }
func sendVideoHeard(a *mediaActivity)      { a.sentVideo += 30; a.heard++ }
func publishing(a *mediaActivity)          { a.publishing = true; a.received += 40 }
func publishingSilent(a *mediaActivity)    { a.publishing = true }
func sendVideoPublishing(a *mediaActivity) { sendVideoHeard(a); publishing(a) }

// A subscriber sent video that reports nothing gets an ICE restart after 2.5 s of silence,
// not before; one that reports does not; a second restart waits 10 s.
func TestLivenessSubscriberSilence(t *testing.T) {
	r := newLivenessRun(t)
	if act, _ := r.until(time.Minute, sendVideoHeard); act != livenessOK {
		t.Fatalf("a subscriber that reports got %v", act)
	}
	act, took := r.until(10*time.Second, sendVideo)
	if act != livenessRestartSubscriber || took < subscriberVideoSilence || took > subscriberVideoSilence+300*time.Millisecond {
		t.Fatalf("silent subscriber: action %v after %v, want a restart after %v", act, took, subscriberVideoSilence)
	}
	act, took = r.until(20*time.Second, sendVideo)
	if act != livenessRestartSubscriber || took < livenessRecoveryInterval || took > livenessRecoveryInterval+300*time.Millisecond {
		t.Fatalf("still silent: action %v after %v, want the next restart after %v", act, took, livenessRecoveryInterval)
	}
}

// Silence while nothing is sent means nothing; it counts from when sending resumed.
func TestLivenessCountsFromSending(t *testing.T) {
	r := newLivenessRun(t)
	if act, _ := r.until(20*time.Second, nil); act != livenessOK {
		t.Fatalf("idle subscriber got %v", act)
	}
	act, took := r.until(10*time.Second, sendVideo)
	if act != livenessRestartSubscriber || took < subscriberVideoSilence {
		t.Fatalf("action %v after %v of sending to a silent subscriber", act, took)
	}
}

// Audio alone is reported every 5 s by browsers: silence must last 8 s.
func TestLivenessAudioOnly(t *testing.T) {
	r := newLivenessRun(t)
	act, took := r.until(20*time.Second, sendAudio)
	if act != livenessRestartSubscriber || took < subscriberAudioSilence || took > subscriberAudioSilence+300*time.Millisecond {
		t.Fatalf("audio-only silent subscriber: %v after %v, want a restart after %v", act, took, subscriberAudioSilence)
	}
}

// Before the PeerConnection first connected nothing reaches the client: no restart.
func TestLivenessWaitsForConnection(t *testing.T) {
	r := newLivenessRun(t)
	r.up = false
	if act, _ := r.until(20*time.Second, sendVideo); act != livenessOK {
		t.Fatalf("unconnected subscriber got %v", act)
	}
	r.up = true
	if act, took := r.until(10*time.Second, sendVideo); act != livenessRestartSubscriber || took < subscriberVideoSilence {
		t.Fatalf("after connecting: %v after %v", act, took)
	}
}

// A publisher whose unmuted tracks stop sending is asked to resume after 2 s; one that never
// sent, or whose tracks are muted, is not.
func TestLivenessPublisher(t *testing.T) {
	r := newLivenessRun(t)
	if act, _ := r.until(20*time.Second, sendVideoPublishing); act != livenessOK {
		t.Fatalf("a live publisher got %v", act)
	}
	act, took := r.until(10*time.Second, func(a *mediaActivity) { sendVideoHeard(a); publishingSilent(a) })
	if act != livenessResume || took < publisherSilence || took > publisherSilence+300*time.Millisecond {
		t.Fatalf("silent publisher: %v after %v, want a resume after %v", act, took, publisherSilence)
	}
	muted := newLivenessRun(t)
	if act, _ := muted.until(20*time.Second, sendVideoHeard); act != livenessOK {
		t.Fatalf("a client publishing nothing (or muted) got %v", act)
	}
}

// After a UDP failure the client's TCP and relayed candidates are kept, its other UDP ones
// not.
func TestUsableAfterUDPFailure(t *testing.T) {
	for cand, want := range map[string]bool{
		"candidate:1 1 udp 2130706431 10.0.0.2 50000 typ host":                                  false,
		"candidate:2 1 UDP 1694498815 203.0.113.7 50000 typ srflx raddr 0.0.0.0 rport 0":        false,
		"candidate:3 1 udp 16777215 198.51.100.1 40000 typ relay raddr 203.0.113.7 rport 50000": true,
		"candidate:4 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active":                       true,
		"not a candidate": true,
	} {
		if got := usableAfterUDPFailure(webrtc.ICECandidateInit{Candidate: cand}); got != want {
			t.Errorf("%q: %v, want %v", cand, got, want)
		}
	}
}

// A server starved of CPU samples late and reads nothing meanwhile: a gap between samples
// restarts the count instead of blaming the client, which is then judged on the samples after.
func TestLivenessServerStall(t *testing.T) {
	r := newLivenessRun(t)
	r.until(5*time.Second, sendVideoPublishing)
	r.now = r.now.Add(3 * time.Second) // the room's loop ran 3 s late; no counter moved
	if act := r.step(sendVideo); act != livenessOK {
		t.Fatalf("after the server's own 3 s stall: %v", act)
	}
	act, took := r.until(10*time.Second, sendVideo)
	if act == livenessOK || took < publisherSilence-300*time.Millisecond {
		t.Fatalf("silent client after the stall: action %v after %v, want one after %v more", act, took, publisherSilence)
	}
}
