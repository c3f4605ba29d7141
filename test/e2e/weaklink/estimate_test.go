package weaklink

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/sfu"
	tc "github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// estimateRun is a teacher publishing 720p simulcast (150 kbit/s, 500 kbit/s, 1.5 Mbit/s
// layers) on loopback and a Go SDK subscriber behind a shaped link, with downlink control.
type estimateRun struct {
	t    *testing.T
	link *link
	srv  *inprocess.Server
	room string
	sub  *subscriber
	log  strings.Builder
	t0   time.Time
}

func startEstimateRun(t *testing.T, rate string) *estimateRun {
	files := testmedia.Get(t)
	r := &estimateRun{t: t, link: newLink(t, rate), room: "estimate"}
	cfg := config.DevDefault()
	cfg.BindAddresses = []string{"0.0.0.0"}
	cfg.RTC.DownlinkControl = true
	r.srv = inprocess.Start(t, cfg)
	pub := tc.Join(t, r.srv.Target, r.room, "teacher", nil)
	if _, err := tc.PublishSimulcastVP8(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	url := "ws://" + r.link.hostIP + ":" + strconv.Itoa(r.srv.Config.Port)
	r.sub = startSubscriber(t, r.link, url, r.srv.Target.Token(t, "point", tc.SubscribeOnlyGrant(r.room)))
	tc.Eventually(t, 20*time.Second, "the subscriber's camera is forwarded", func() (bool, string) {
		_, ok := r.camera()
		return ok, ""
	})
	r.t0 = time.Now()
	return r
}

// camera returns the server's statistics of the subscriber's camera.
func (r *estimateRun) camera() (sfu.DownTrackStats, bool) {
	stats, err := r.srv.Server.Rooms().Stats(r.room)
	if err != nil {
		return sfu.DownTrackStats{}, false
	}
	for _, p := range stats {
		for _, s := range p.Subscriptions {
			if s.Subscriber == "point" && s.Kind == livekit.TrackType_VIDEO && s.Packets > 0 {
				return s.DownTrackStats, true
			}
		}
	}
	return sfu.DownTrackStats{}, false
}

// waitFor samples the camera every 250 ms until ok holds or within passes; it returns
// how long it took, and fails the test when it never holds.
func (r *estimateRun) waitFor(what string, within time.Duration, ok func(sfu.DownTrackStats) bool) time.Duration {
	r.t.Helper()
	start := time.Now()
	for tick := time.NewTicker(250 * time.Millisecond); ; <-tick.C {
		s, found := r.camera()
		if !found {
			r.t.Fatalf("the subscription ended:\n%s", r.sub.output.String())
		}
		r.note(s)
		if ok(s) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			r.t.Fatalf("%s: not within %v; samples:%s", what, within, r.log.String())
		}
	}
}

// hold samples the camera for d and returns the share of samples for which ok held.
func (r *estimateRun) hold(d time.Duration, ok func(sfu.DownTrackStats) bool) float64 {
	n, good := 0, 0
	start := time.Now()
	for tick := time.NewTicker(250 * time.Millisecond); time.Since(start) < d; <-tick.C {
		s, found := r.camera()
		if !found {
			r.t.Fatalf("the subscription ended:\n%s", r.sub.output.String())
		}
		r.note(s)
		n++
		if ok(s) {
			good++
		}
	}
	return float64(good) / float64(max(n, 1))
}

func (r *estimateRun) note(s sfu.DownTrackStats) {
	e := s.Downlink
	fmt.Fprintf(&r.log, "\n  %5.1fs %s est %5d kbit/s acked %5d %-10s q %4dms loss %4.1f%% cap %d layer %d probes %d/%d padding %d got %4d kbit/s",
		time.Since(r.t0).Seconds(), e.Source, e.EstimateBps/1000, e.AckedBps/1000, e.Usage, e.QueueDelay.Milliseconds(),
		100*e.Loss, s.CapLayer, s.CurrentLayer, e.ProbesOK, e.Probes, s.ProbePackets, r.sub.received.Load()*8/1000)
}

// The subscriber's TWCC feedback gives an estimate, and behind a 1 Mbit/s link the server
// finds the limit and settles on the middle layer (500 kbit/s), which fits, within 5 s of the
// first packet, and stays there (probes of the top layer excepted).
func TestEstimateSettles(t *testing.T) {
	r := startEstimateRun(t, "1mbit")
	took := r.waitFor("a TWCC estimate and the fitting layer", 5*time.Second, func(s sfu.DownTrackStats) bool {
		return s.Downlink.Source == "twcc" && s.Downlink.Limited && s.CapLayer == sfu.LayerMedium &&
			s.CurrentLayer == sfu.LayerMedium
	})
	share := r.hold(15*time.Second, func(s sfu.DownTrackStats) bool { return s.CurrentLayer == sfu.LayerMedium })
	t.Logf("settled in %v; middle layer %.0f%% of the next 15 s:%s", took.Round(10*time.Millisecond), 100*share, r.log.String())
	if share < 0.8 {
		t.Errorf("the middle layer was forwarded only %.0f%% of the time after settling", 100*share)
	}
}

// A capacity step 3 -> 0.5 -> 3 Mbit/s: down to the lowest layer within 3 s, back to the
// top within 15 s (probes prove the room).
func TestEstimateStep(t *testing.T) {
	r := startEstimateRun(t, "3mbit")
	r.waitFor("the top layer at 3 Mbit/s", 15*time.Second, func(s sfu.DownTrackStats) bool {
		return s.Downlink.Source == "twcc" && s.CurrentLayer == sfu.LayerHigh
	})
	r.hold(3*time.Second, func(sfu.DownTrackStats) bool { return true })
	r.link.setRate(t, "500kbit")
	fmt.Fprintf(&r.log, "\n  -- 500 kbit/s")
	down := r.waitFor("down to the lowest layer at 0.5 Mbit/s", 3*time.Second, func(s sfu.DownTrackStats) bool {
		return s.CapLayer == sfu.LayerLow
	})
	r.hold(5*time.Second, func(sfu.DownTrackStats) bool { return true })
	r.link.setRate(t, "3mbit")
	fmt.Fprintf(&r.log, "\n  -- 3 Mbit/s")
	up := r.waitFor("back to the top layer at 3 Mbit/s", 15*time.Second, func(s sfu.DownTrackStats) bool {
		return s.CurrentLayer == sfu.LayerHigh
	})
	t.Logf("down in %v, up in %v:%s", down.Round(10*time.Millisecond), up.Round(10*time.Millisecond), r.log.String())
}
