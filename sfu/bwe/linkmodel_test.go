package bwe

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
)

// bottleneck is a deterministic link: a FIFO drained at rate bits per second with a tail
// drop at queueLimit of queueing, then propagation delay, then random loss (i.i.d. or
// Gilbert-Elliott, after the queue, as a radio hop loses packets).
type bottleneck struct {
	rate       float64
	queueLimit int64 // ns of queue
	prop       int64
	loss       float64 // i.i.d. loss
	geBad      bool    // Gilbert-Elliott: in the bad state (all lost)
	geEnter    float64 // per packet: good -> bad
	geLeave    float64 // per packet: bad -> good
	jitter     int64   // up to this much extra delay per packet, order kept (Wi-Fi retries)
	stallEvery int64   // the link stalls for stallFor every stallEvery (a relay descheduled)
	stallFor   int64
	lastArr    int64
	busyUntil  int64
	rng        *rand.Rand
	drops      int // tail drops
	firstDrop  int64
}

// send returns when a packet of size bytes sent at now arrives, or false if it is lost.
func (b *bottleneck) send(now int64, size int) (int64, bool) {
	start := max(now, b.busyUntil)
	if b.stallEvery > 0 && now%b.stallEvery < simTick {
		start = max(start, now+b.stallFor)
	}
	if start-now > b.queueLimit {
		b.drops++
		if b.firstDrop == 0 {
			b.firstDrop = now
		}
		return 0, false
	}
	b.busyUntil = start + int64(float64(size*8)/b.rate*1e9)
	arrival := b.busyUntil + b.prop
	if b.jitter > 0 {
		arrival = max(arrival+b.rng.Int64N(b.jitter), b.lastArr)
		b.lastArr = arrival
	}
	if b.geEnter > 0 {
		if b.geBad {
			b.geBad = b.rng.Float64() >= b.geLeave
		} else {
			b.geBad = b.rng.Float64() < b.geEnter
		}
		if b.geBad {
			return 0, false
		}
	}
	if b.loss > 0 && b.rng.Float64() < b.loss {
		return 0, false
	}
	return arrival, true
}

type arrival struct {
	seq uint16
	at  int64
}

type delivery struct {
	at  int64
	raw []byte
}

// sim sends a source of offered bits per second, limited by the controller's target,
// through a bottleneck and feeds the TWCC feedback a pion Recorder builds every 100 ms
// back after the propagation delay.
type sim struct {
	t          *testing.T
	c          *Controller
	link       *bottleneck
	now        int64
	offered    float64
	offeredAt  func(now int64) float64 // if set, the offered rate over time instead
	rec        *twcc.Recorder
	inFlight   []arrival
	pending    []delivery
	nextFb     int64
	credit     float64
	unseen     float64 // bits per second sent through the link unnumbered (RED audio)
	unseenCred float64
	dupFb      bool    // deliver every feedback twice
	swapFb     bool    // deliver feedback pairs out of order
	loseFb     float64 // share of feedback lost
	firstCut   int64
	lastTarget uint64
}

const (
	ms      = int64(1_000_000)
	second  = 1000 * ms
	simTick = 5 * ms
	pktSize = 1200
	// unseenSize is an unnumbered packet's size: a RED audio packet at distance 2.
	unseenSize = 300
)

func newSim(t *testing.T, c *Controller, link *bottleneck, offered float64) *sim {
	link.rng = rand.New(rand.NewPCG(1, 2))
	return &sim{t: t, c: c, link: link, now: 10 * second, offered: offered, rec: twcc.NewRecorder(1),
		lastTarget: c.Estimate(0).Target}
}

// run advances the simulation by d, calling check after every tick.
func (s *sim) run(d int64, check func(s *sim)) {
	end := s.now + d
	for s.now < end {
		s.now += simTick
		target := float64(s.c.Estimate(s.now).Target)
		offered := s.offered
		if s.offeredAt != nil {
			offered = s.offeredAt(s.now)
		}
		s.credit += min(target, offered) * float64(simTick) / 8e9
		for s.credit >= pktSize {
			s.credit -= pktSize
			seq := s.c.History().Sent(s.now, pktSize, 0, 0)
			if at, ok := s.link.send(s.now, pktSize); ok {
				s.inFlight = append(s.inFlight, arrival{seq, at})
			}
		}
		// Unnumbered packets take their room on the link; no feedback tells of them.
		s.unseenCred += s.unseen * float64(simTick) / 8e9
		for ; s.unseenCred >= unseenSize; s.unseenCred -= unseenSize {
			s.link.send(s.now, unseenSize)
		}
		// Record what has arrived.
		n := 0
		for _, a := range s.inFlight {
			if a.at <= s.now {
				s.rec.Record(7, a.seq, a.at/1000)
				n++
			} else {
				break
			}
		}
		s.inFlight = s.inFlight[n:]
		if s.now >= s.nextFb {
			s.nextFb = s.now + 100*ms
			s.feedback()
		}
		n = 0
		for _, p := range s.pending {
			if p.at > s.now {
				break
			}
			if err := s.c.OnTWCC(p.raw, s.now); err != nil {
				s.t.Fatalf("OnTWCC: %v", err)
			}
			n++
		}
		s.pending = s.pending[n:]
		if s.now%second == 0 {
			s.c.Tick(s.now)
		}
		if tg := s.c.Estimate(s.now).Target; tg < s.lastTarget && s.firstCut == 0 {
			s.firstCut = s.now
		}
		s.lastTarget = s.c.Estimate(s.now).Target
		if check != nil {
			check(s)
		}
	}
}

func (s *sim) feedback() {
	pkts := s.rec.BuildFeedbackPacket()
	var batch []delivery
	for _, p := range pkts {
		raw, err := p.Marshal()
		if err != nil {
			s.t.Fatal(err)
		}
		if s.loseFb > 0 && s.link.rng.Float64() < s.loseFb {
			continue
		}
		d := delivery{at: s.now + s.link.prop, raw: raw}
		batch = append(batch, d)
		if s.dupFb {
			batch = append(batch, d)
		}
	}
	s.pending = append(s.pending, batch...)
	if s.swapFb && len(s.pending) >= 2 {
		// Hold the newest back behind the one before: out of order.
		i := len(s.pending) - 1
		s.pending[i], s.pending[i-1] = s.pending[i-1], s.pending[i]
		s.pending[i].at, s.pending[i-1].at = s.pending[i-1].at, s.pending[i].at
	}
}

func kbps(v uint64) uint64 { return v / 1000 }

// Sending more than the bottleneck carries is found from the queue's delay before the
// queue overflows: the first cut comes before the first drop, and the target settles
// under the capacity.
func TestCongestionBeforeLoss(t *testing.T) {
	c := NewController(Config{Start: 600_000})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 20 * ms}
	s := newSim(t, c, link, 2e6)
	s.run(20*second, nil)
	e := c.Estimate(s.now)
	t.Logf("first cut %d ms, first drop %d ms, drops %d, target %d kbps, acked %d kbps", (s.firstCut-10*second)/ms,
		(link.firstDrop-10*second)/ms, link.drops, kbps(e.Target), kbps(e.Acked))
	if s.firstCut == 0 {
		t.Fatal("never cut")
	}
	if link.firstDrop != 0 && link.firstDrop < s.firstCut {
		t.Errorf("first drop at %d ms came before the first cut at %d ms", (link.firstDrop-10*second)/ms, (s.firstCut-10*second)/ms)
	}
	if e.Target < 700_000 || e.Target > 1_150_000 {
		t.Errorf("target %d kbps, want about the 1000 kbps capacity", kbps(e.Target))
	}
}

// A 2 Mbit/s overshoot into 1 Mbit/s is detected within 600 ms (100 ms feedback interval, 20 ms propagation) and the target lands under
// the capacity within 3 s.
func TestOvershootSettles(t *testing.T) {
	c := NewController(Config{Start: 2_000_000})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 20 * ms}
	s := newSim(t, c, link, 2e6)
	overAt := int64(0)
	s.run(3*second, func(s *sim) {
		if overAt == 0 && c.Estimate(s.now).Usage == UsageOver {
			overAt = s.now
		}
	})
	if overAt == 0 || overAt-10*second > 600*ms {
		t.Errorf("overuse at %d ms, want within 600 ms", (overAt-10*second)/ms)
	}
	if e := c.Estimate(s.now); e.Target < 600_000 || e.Target > 1_000_000 {
		t.Errorf("target %d kbps after 3 s, want 600-1000", kbps(e.Target))
	}
}

// Rural radio loss: 20% of packets lost at random, at a flat delay, is not congestion.
func TestRandomLossDoesNotCollapse(t *testing.T) {
	for _, tc := range []struct {
		name string
		link bottleneck
	}{
		{"iid", bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 30 * ms, loss: 0.2}},
		// Mean burst 1/0.4 = 2.5 packets, 20% loss on average.
		{"gilbert-elliott", bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 30 * ms, geEnter: 0.1, geLeave: 0.4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(Config{Start: 2_000_000})
			link := tc.link
			s := newSim(t, c, &link, 2e6)
			lowest := uint64(1 << 62)
			s.run(30*second, func(s *sim) {
				if s.now > 11*second {
					lowest = min(lowest, c.Estimate(s.now).Target)
				}
			})
			e := c.Estimate(s.now)
			t.Logf("lowest %d kbps, target %d, loss %.2f baseline %.2f", kbps(lowest), kbps(e.Target), e.Loss, e.Baseline)
			if lowest < 1_200_000 {
				t.Errorf("target fell to %d kbps on random loss", kbps(lowest))
			}
			if e.Loss < 0.1 {
				t.Errorf("loss %.2f: the model lost nothing?", e.Loss)
			}
		})
	}
}

// A capacity step from 3 to 0.5 Mbit/s is followed within 3 s, also with wrapping
// sequence numbers and duplicated, reordered or lost feedback.
func TestCapacityStep(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wrap      bool
		dup, swap bool
		loseFb    float64
	}{
		{name: "clean"},
		{name: "wrap", wrap: true},
		{name: "duplicate", dup: true},
		{name: "reordered", swap: true},
		{name: "feedback-loss", loseFb: 0.2},
		{name: "all", wrap: true, dup: true, swap: true, loseFb: 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(Config{Start: 2_500_000})
			if tc.wrap {
				c.hist.next = 65536 - 2000 // wraps a few seconds in
			}
			link := &bottleneck{rate: 3e6, queueLimit: 100 * ms, prop: 20 * ms}
			s := newSim(t, c, link, 2.5e6)
			s.dupFb, s.swapFb, s.loseFb = tc.dup, tc.swap, tc.loseFb
			s.run(8*second, nil)
			if e := c.Estimate(s.now); e.Target < 2_000_000 {
				t.Fatalf("target %d kbps before the step, want the 2500 sent", kbps(e.Target))
			}
			link.rate = 0.5e6
			var at int64
			s.run(3*second, func(s *sim) {
				if at == 0 && c.Estimate(s.now).Target <= 600_000 {
					at = s.now
				}
			})
			if at == 0 {
				t.Fatalf("target %d kbps 3 s after the step to 500", kbps(c.Estimate(s.now).Target))
			}
			t.Logf("down to 600 kbps %d ms after the step", (at-s.now+3*second)/ms)
			s.run(10*second, nil)
			if e := c.Estimate(s.now); e.Target > 700_000 || e.Target < 300_000 {
				t.Errorf("target %d kbps 13 s after the step to 500", kbps(e.Target))
			}
			if tc.wrap && c.hist.next < 65536 {
				t.Error("sequence numbers did not wrap")
			}
		})
	}
}

// Wi-Fi-like jitter (up to 30 ms per packet, order kept) on a link with room is not
// congestion: no cut.
func TestJitterIsNotCongestion(t *testing.T) {
	c := NewController(Config{Start: 1_500_000})
	link := &bottleneck{rate: 5e6, queueLimit: 200 * ms, prop: 20 * ms, jitter: 30 * ms}
	s := newSim(t, c, link, 1.5e6)
	overuses := 0
	s.run(30*second, func(s *sim) {
		if c.Estimate(s.now).Usage == UsageOver {
			overuses++
		}
	})
	if e := c.Estimate(s.now); s.firstCut != 0 || e.Target < 1_400_000 {
		t.Errorf("jitter cut the target (first cut at %d ms, target %d kbps, overuse ticks %d)",
			(s.firstCut-10*second)/ms, kbps(e.Target), overuses)
	}
}

// Random loss under a sending rate that jumps (keyframes, a layer switch: 400 kbit/s and
// 1.2 Mbit/s by turns) is still not congestion: a window whose rate rose and whose loss is
// a few percent over the baseline by chance does not cut.
func TestRandomLossVaryingRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		link bottleneck
	}{
		{"iid", bottleneck{rate: 3e6, queueLimit: 200 * ms, prop: 50 * ms, loss: 0.2}},
		// 10% on average in bursts of about 4 packets (50 ms at this rate).
		{"gilbert-elliott", bottleneck{rate: 3e6, queueLimit: 200 * ms, prop: 50 * ms, geEnter: 0.028, geLeave: 0.25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(Config{Start: 2_000_000})
			link := tc.link
			s := newSim(t, c, &link, 0)
			s.offeredAt = func(now int64) float64 {
				if (now/second)%3 == 0 {
					return 1.2e6
				}
				return 0.4e6
			}
			s.run(60*second, nil)
			e := c.Estimate(s.now)
			t.Logf("target %d kbps, loss %.2f baseline %.2f, first cut at %d ms", kbps(e.Target), e.Loss, e.Baseline, s.firstCut)
			if s.firstCut != 0 {
				t.Errorf("cut at %d ms on random loss (target %d kbps)", (s.firstCut-10*second)/ms, kbps(e.Target))
			}
		})
	}
}

// Congestion on a link that also loses 20% at random: the cut lands near the capacity,
// not at what arrived (80% of it).
func TestCongestionUnderRandomLoss(t *testing.T) {
	c := NewController(Config{Start: 600_000})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 20 * ms, loss: 0.2}
	s := newSim(t, c, link, 2e6)
	var sum, n float64
	s.run(30*second, func(s *sim) {
		if s.now > 20*second {
			sum += float64(c.Estimate(s.now).Target)
			n++
		}
	})
	e := c.Estimate(s.now)
	mean := sum / n
	t.Logf("target %d kbps (mean over the last 20 s %.0f), acked %d, baseline %.2f", kbps(e.Target), mean/1000, kbps(e.Acked), e.Baseline)
	if s.firstCut == 0 {
		t.Fatal("never cut")
	}
	if mean < 800_000 || mean > 1_150_000 {
		t.Errorf("mean target %.0f kbps: want about the 1000 kbps capacity", mean/1000)
	}
}

// A start estimate of 2.5 Mbit/s into a 1 Mbit/s line losing 2% at random: the tail drops
// of the overshoot are congestion, not the link's usual loss, which stays near the 2%.
func TestOvershootLossNotBaseline(t *testing.T) {
	c := NewController(Config{Start: 2_500_000})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 25 * ms, loss: 0.02}
	s := newSim(t, c, link, 2.5e6)
	worst := 0.0
	s.run(20*second, func(s *sim) { worst = max(worst, c.Estimate(s.now).Baseline) })
	e := c.Estimate(s.now)
	t.Logf("baseline at most %.3f, now %.3f; target %d kbps, tail drops %d", worst, e.Baseline, kbps(e.Target), link.drops)
	if link.drops == 0 {
		t.Fatal("the start did not overshoot")
	}
	if worst > 0.08 {
		t.Errorf("baseline rose to %.3f on the overshoot's drops", worst)
	}
	if e.Target < 700_000 || e.Target > 1_150_000 {
		t.Errorf("target %d kbps, want about the 1000 kbps capacity", kbps(e.Target))
	}
}

// A relay on a loaded host stalls now and then (40 ms every 3 s here), as Chromium and the
// relay of the rural tests do on a busy CI machine: the delay jumps and drains while we send
// a third of what the line carries. That is no reason to cut under what we send.
func TestStallsAtLowUseNotCongestion(t *testing.T) {
	c := NewController(Config{Start: 900_000})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 25 * ms, stallEvery: 3 * second, stallFor: 100 * ms}
	s := newSim(t, c, link, 350_000)
	lowest := uint64(1 << 62)
	s.run(60*second, func(s *sim) { lowest = min(lowest, c.Estimate(s.now).Target) })
	e := c.Estimate(s.now)
	t.Logf("lowest %d kbps, now %d", kbps(lowest), kbps(e.Target))
	if lowest < 400_000 {
		t.Errorf("stalls cut the target to %d kbps, under the 350 sent", kbps(lowest))
	}
}

// Sending well under the target (400 kbit/s of a 900 estimate), a line that falls to 300
// kbit/s is still found within 3 s: that overuse lasts.
func TestLowUseCongestionFound(t *testing.T) {
	c := NewController(Config{Start: 900_000})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 25 * ms}
	s := newSim(t, c, link, 400_000)
	s.run(10*second, nil)
	link.rate = 300_000
	var at int64
	s.run(3*second, func(s *sim) {
		if at == 0 && c.Estimate(s.now).Target < 400_000 {
			at = s.now
		}
	})
	if at == 0 {
		t.Fatalf("target %d kbps 3 s after the line fell to 300", kbps(c.Estimate(s.now).Target))
	}
	t.Logf("under 400 kbps %d ms after the fall", (at-s.now+3*second)/ms)
}

// Issue 14's R3: a 1 Mbit/s line losing 2%, 140 kbit/s of RED audio on it that carries no
// transport-wide number (the estimator never sees it), and a camera of 0.15/0.53/1.6 Mbit/s
// started on its top layer by the 2.5 Mbit/s guess. Shared as the Allocator does (the
// budget less the usual loss's retransmissions, down at once, up one layer after a probe
// from what the layer sends proved the next one, a forwarded layer kept through a cut to
// 80% of it), the estimate gives the middle layer within 8 s and keeps it: the target is the
// room beside the audio, and the failed probes for the top layer do not take it away, nor
// overflow the line.
func TestThinLineMiddleLayerBesideUnseenAudio(t *testing.T) {
	layers := []float64{150_000, 530_000, 1_600_000}
	c := NewController(Config{})
	link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 25 * ms, loss: 0.02}
	s := newSim(t, c, link, layers[2])
	s.unseen = 140_000
	start, layer, okSeen := s.now, 2, uint64(0)
	var reached int64
	middle, ticks, drops := 0, 0, 0
	s.run(40*second, func(s *sim) {
		e := c.Estimate(s.now)
		budget := float64(e.Target) * (1 - e.Baseline)
		if e.Limited {
			for layer > 0 && layers[layer]*0.8 > budget {
				layer--
			}
			if e.ProbesOK > okSeen && layer < 2 && layers[layer+1] <= budget {
				layer++
			}
			okSeen = e.ProbesOK
			if layer < 2 {
				c.StartProbe(uint64(layers[layer]), uint64(layers[layer+1]-layers[layer]), s.now)
			}
		}
		s.offered = layers[layer]
		s.pad(c.ProbePadding(s.now))
		if layer == 1 && reached == 0 {
			reached = s.now
		}
		if s.now-start == 20*second {
			drops = link.drops
		}
		if s.now-start > 20*second {
			ticks++
			if layer == 1 {
				middle++
			}
		}
	})
	e := c.Estimate(s.now)
	t.Logf("middle layer %d ms after the start, %d%% of the last 20 s; target %d kbps, baseline %.3f, probes %d (%d ok), %d queue drops in the last 20 s",
		(reached-start)/ms, 100*middle/ticks, kbps(e.Target), e.Baseline, e.Probes, e.ProbesOK, link.drops-drops)
	if reached == 0 || reached-start > 8*second {
		t.Errorf("middle layer reached %d ms after the start, want within 8 s", (reached-start)/ms)
	}
	if middle < ticks*8/10 {
		t.Errorf("middle layer %d%% of the last 20 s, want at least 80%%", 100*middle/ticks)
	}
	// The probes for the top layer ask at most 1.5 times the estimate: their queue stays in
	// the line's buffer (asking for all of the top layer at once overflowed it 35 times).
	if d := link.drops - drops; d > 0 {
		t.Errorf("%d packets dropped by the line's full queue in the last 20 s, want none", d)
	}
}

// The drop scenario of issue 14: 800 kbit/s sent under a 2.5 Mbit/s guess (the path never
// showed a limit) on a 3 Mbit/s line that falls to 500 kbit/s. What arrives falls under what
// is sent at once, as no stall's late burst would: the cut comes with the first overuse, not
// after the low-use guard (appLimitedOveruse), and lands under the new line.
func TestDropAtLowUseCutsAtOnce(t *testing.T) {
	c := NewController(Config{})
	link := &bottleneck{rate: 3e6, queueLimit: 200 * ms, prop: 25 * ms}
	s := newSim(t, c, link, 800_000)
	s.run(10*second, nil)
	if e := c.Estimate(s.now); e.Limited {
		t.Fatalf("the 3 Mbit/s line at 800 kbit/s cut the target to %d kbps", kbps(e.Target))
	}
	link.rate = 500_000
	fell := s.now
	var at int64
	s.run(3*second, func(s *sim) {
		if at == 0 && c.Estimate(s.now).Target < 500_000 {
			at = s.now
		}
	})
	if at == 0 {
		t.Fatalf("target %d kbps 3 s after the line fell to 500", kbps(c.Estimate(s.now).Target))
	}
	t.Logf("under 500 kbps %d ms after the fall", (at-fell)/ms)
	if at-fell > 800*ms {
		t.Errorf("under 500 kbps %d ms after the fall, want within 800 ms", (at-fell)/ms)
	}
}

// A line whose buffer stays full drops what overflows at a flat delay: the trend says
// normal, and the target must not grow while the loss and the standing queue last. (Traffic
// the estimator does not see fills the buffer here; as the model's drops would all hit that
// traffic, which comes in small packets after ours, 15% of everything is lost meanwhile.)
func TestFullBufferNoIncrease(t *testing.T) {
	c := NewController(Config{Start: 400_000})
	link := &bottleneck{rate: 500_000, queueLimit: 200 * ms, prop: 25 * ms}
	s := newSim(t, c, link, 300_000)
	s.run(10*second, nil)
	s.unseen, link.loss = 300_000, 0.15
	s.run(3*second, nil)
	from := c.Estimate(s.now)
	highest := from.Target
	s.run(5*second, func(s *sim) { highest = max(highest, c.Estimate(s.now).Target) })
	t.Logf("3 s into the overflow %+v; highest %d kbps in the next 5 s", from, kbps(highest))
	if from.QueueDelay < 50*time.Millisecond || from.Loss < 0.05 {
		t.Fatalf("the buffer does not overflow: %+v", from)
	}
	if highest > from.Target+from.Target/20 {
		t.Errorf("target grew from %d to %d kbps while the buffer overflowed", kbps(from.Target), kbps(highest))
	}
}

// Overflowing needs a second of loss with a standing queue, the loss measured over a window
// that began a second after the last cut (the drops of what was queued before it are
// reported until then), and feedback: after 2 s without a loss window, the last loss and
// queue are history.
func TestOverflowingRule(t *testing.T) {
	c := NewController(Config{})
	c.mu.Lock()
	defer c.mu.Unlock()
	now := 100 * second
	c.tl.minCur, c.tl.minPrev, c.tl.smoothed = 0, 0, 150 // a 150 ms standing queue
	c.loss, c.baseline = 0.3, 0.02
	if !c.overflowingLocked() {
		t.Fatal("30% lost over a 2% baseline with a 150 ms queue: not overflowing")
	}
	c.overflowSince, c.rate.lastLower, c.lossFrom, c.winStart = now-1500*ms, now-1700*ms, now-1200*ms, now-200*ms
	if c.estimateLocked(now).Overflowing {
		t.Error("overflowing on the loss of a window begun 500 ms after the last cut")
	}
	c.rate.lastLower, c.rate.lastCut = now-2500*ms, now-100*ms // a cut since that left the target
	if !c.estimateLocked(now).Overflowing {
		t.Error("not overflowing: 1.5 s of it, the loss measured from 1.3 s after the cut")
	}
	c.overflowSince = now - 500*ms
	if c.estimateLocked(now).Overflowing {
		t.Error("overflowing after 500 ms of it")
	}
	c.overflowSince = now - 1500*ms
	if c.estimateLocked(now + 3*second).Overflowing {
		t.Error("overflowing 3 s after the last loss window")
	}
}

// A sending rate just over the line's, under the start guess (never limited): the queue
// stands and the trend flips between overuse and normal with the sender's own variation
// (Chromium's frames and keyframes), so no overuse lasts the low-use guard
// (appLimitedOveruse). The standing queue itself lasting that long is congestion: the cut
// comes within seconds, before the buffer fills (it came after 12 s, at 190 ms of queue and
// drops, in the thin1m benchmark's runs that never reached 1280 again).
func TestStandingQueueAtLowUseCuts(t *testing.T) {
	for _, rate := range []float64{1_010_000, 1_020_000} {
		c := NewController(Config{})
		link := &bottleneck{rate: 1e6, queueLimit: 200 * ms, prop: 25 * ms, loss: 0.02}
		s := newSim(t, c, link, 0)
		start := s.now
		s.offeredAt = func(now int64) float64 {
			if (now-start)/(300*ms)%2 == 0 {
				return rate + 60_000
			}
			return rate - 60_000
		}
		var at int64
		var maxQ time.Duration
		s.run(20*second, func(s *sim) {
			e := c.Estimate(s.now)
			if at == 0 && e.Limited {
				at = s.now
			}
			if at == 0 {
				maxQ = max(maxQ, e.QueueDelay)
			}
		})
		t.Logf("%.0f kbit/s on 1 Mbit/s: limited after %d ms, queue up to %v before, %d drops",
			rate/1000, (at-start)/ms, maxQ.Round(time.Millisecond), link.drops)
		if at == 0 || at-start > 6*second || link.drops > 0 {
			t.Errorf("%.0f kbit/s on 1 Mbit/s: limited after %d ms (want within 6 s), %d drops (want none)",
				rate/1000, (at-start)/ms, link.drops)
		}
	}
}
