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

// sample is the server's view of the subscriber's camera at one moment.
type sample struct {
	at           time.Duration
	capLayer     int
	currentLayer int
	fractionLost float64
	received     int64 // bytes the subscriber got in its newest second
}

// TestDownlinkControl: a teacher publishes 720p simulcast (150 kbit/s, 500 kbit/s,
// 1.5 Mbit/s layers) and a teaching point subscribes behind a 1 Mbit/s link. With downlink
// control the server settles on the middle layer, which fits, and the loss the subscriber
// reports stays low apart from its brief probes of the top layer (at most two in the judged
// window: the probes' backoff doubles); without it the server keeps sending the top layer
// and most of what it sends is lost.
func TestDownlinkControl(t *testing.T) {
	files := testmedia.Get(t)
	for _, control := range []bool{true, false} {
		t.Run(fmt.Sprintf("control=%v", control), func(t *testing.T) {
			samples := runWeakLink(t, files, control)
			// Judge the second half, after the first congestion.
			late := samples[len(samples)/2:]
			share := func(f func(sample) bool) float64 {
				n := 0
				for _, s := range late {
					if f(s) {
						n++
					}
				}
				return float64(n) / float64(len(late))
			}
			high := share(func(s sample) bool { return s.currentLayer == sfu.LayerHigh })
			capped := share(func(s sample) bool { return s.capLayer < sfu.LayerHigh })
			quiet := share(func(s sample) bool { return s.fractionLost < 0.05 })
			lossy := share(func(s sample) bool { return s.fractionLost > 0.15 })
			t.Logf("second half: top layer forwarded %.0f%% of the time, capped %.0f%%; reported loss under 5%% %.0f%% of the time, over 15%% %.0f%%",
				100*high, 100*capped, 100*quiet, 100*lossy)
			if control {
				if capped < 0.55 || high > 0.45 {
					t.Errorf("with downlink control the top layer (which does not fit) was forwarded %.0f%% of the time, capped %.0f%%",
						100*high, 100*capped)
				}
				if quiet < 0.55 {
					t.Errorf("with downlink control the subscriber reported loss under 5%% only %.0f%% of the time", 100*quiet)
				}
			} else {
				if capped > 0 || high < 0.8 {
					t.Errorf("without downlink control: top layer %.0f%% of the time, capped %.0f%%", 100*high, 100*capped)
				}
				// The other case's bounds mean something only if the link is too narrow.
				if lossy < 0.8 {
					t.Errorf("without downlink control the subscriber reported over 15%% loss only %.0f%% of the time: the link does not constrain the top layer", 100*lossy)
				}
			}
		})
	}
}

// startServer starts a Sanke in this process that the namespaces' subscribers reach, with
// rtc.downlink_control set to control.
func startServer(t *testing.T, control bool) *inprocess.Server {
	cfg := config.DevDefault()
	cfg.BindAddresses = []string{"0.0.0.0"} // reachable from the namespace
	cfg.RTC.DownlinkControl = control
	return inprocess.Start(t, cfg)
}

// runWeakLink runs the scenario with rtc.downlink_control set to control and returns the
// subscriber's camera as the server saw it every 250 ms for 24 s from the first packet.
func runWeakLink(t *testing.T, files testmedia.Files, control bool) []sample {
	l := newLink(t, "1mbit")
	srv := startServer(t, control)
	const room = "weak-link"

	pub := tc.Join(t, srv.Target, room, "teacher", nil)
	if _, err := tc.PublishSimulcastVP8(pub.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	url := "ws://" + l.hostIP + ":" + strconv.Itoa(srv.Config.Port)
	sub := startSubscriber(t, l, url, srv.Target.Token(t, "point", tc.SubscribeOnlyGrant(room)))

	camera := func() (sample, bool) {
		stats, err := srv.Server.Rooms().Stats(room)
		if err != nil {
			return sample{}, false
		}
		for _, p := range stats {
			for _, s := range p.Subscriptions {
				if s.Subscriber == "point" && s.Kind == livekit.TrackType_VIDEO && s.Packets > 0 {
					return sample{capLayer: s.CapLayer, currentLayer: s.CurrentLayer, fractionLost: s.FractionLost}, true
				}
			}
		}
		return sample{}, false
	}
	tc.Eventually(t, 20*time.Second, "the subscriber's camera is forwarded", func() (bool, string) {
		_, ok := camera()
		return ok, ""
	})

	var samples []sample
	start := time.Now()
	for tick := time.NewTicker(250 * time.Millisecond); time.Since(start) < 24*time.Second; <-tick.C {
		s, ok := camera()
		if !ok {
			t.Fatalf("the subscription ended:\n%s", sub.output.String())
		}
		s.at = time.Since(start)
		s.received = sub.received.Load()
		samples = append(samples, s)
	}
	var line strings.Builder
	for i, s := range samples {
		if i%4 == 0 {
			fmt.Fprintf(&line, "\n  %5.1fs cap %d layer %d loss %4.1f%% got %4d kbit/s", s.at.Seconds(), s.capLayer, s.currentLayer,
				100*s.fractionLost, s.received*8/1000)
		}
	}
	t.Logf("control=%v, once a second:%s", control, line.String())
	return samples
}
