package linksim

import (
	"math"
	"strings"
	"testing"
	"time"
)

// epoch is the start of the virtual time the shaper tests run on.
var epoch = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// offer hands n packets of size bytes to s, one every gap of virtual time from start, and
// returns each one's admission time, release time and verdict.
func offer(s *shaper, start time.Time, n, size int, gap time.Duration) (at, release []time.Time, verdicts []verdict) {
	for i := range n {
		t := start.Add(time.Duration(i) * gap)
		r, v := s.admit(t, size)
		at, release, verdicts = append(at, t), append(release, r), append(verdicts, v)
	}
	return at, release, verdicts
}

func count(verdicts []verdict, want verdict) int {
	n := 0
	for _, v := range verdicts {
		if v == want {
			n++
		}
	}
	return n
}

func TestRandomLoss(t *testing.T) {
	for _, loss := range []float64{0, 0.05, 0.2, 0.5, 1} {
		s := newShaper(Impairment{Loss: loss, Seed: 1}, 0)
		_, _, v := offer(s, epoch, 10000, 100, time.Millisecond)
		got := float64(count(v, lost)) / 10000
		if math.Abs(got-loss) > 0.02 {
			t.Errorf("loss %v: %v of 10000 packets lost", loss, got)
		}
	}
}

// Gilbert-Elliott loss: the average is the loss asked for, and losses come in bursts whose
// mean length in time is Burst (runs of lost packets sent at a steady pace).
func TestGilbertElliott(t *testing.T) {
	for _, tt := range []struct {
		loss  float64
		burst time.Duration
	}{{0.1, 50 * time.Millisecond}, {0.2, 50 * time.Millisecond}, {0.05, 200 * time.Millisecond}} {
		s := newShaper(Impairment{Loss: tt.loss, Burst: tt.burst, Seed: 42}, 0)
		// 1000 bursts on average, 25 packets in the mean burst.
		gap := tt.burst / 25
		n := int(1000 * 25 / tt.loss)
		runs, inRun, lostN := 0, false, 0
		for i := range n {
			_, v := s.admit(epoch.Add(time.Duration(i)*gap), 100)
			if v == lost {
				lostN++
				if !inRun {
					runs++
				}
			}
			inRun = v == lost
		}
		got := float64(lostN) / float64(n)
		if math.Abs(got-tt.loss) > 0.2*tt.loss {
			t.Errorf("loss %v burst %v: %v lost", tt.loss, tt.burst, got)
		}
		meanBurst := time.Duration(float64(lostN) / float64(runs) * float64(gap))
		t.Logf("loss %v burst %v: %.4f lost, mean burst %v over %d bursts", tt.loss, tt.burst, got, meanBurst, runs)
		if d := math.Abs(float64(meanBurst-tt.burst)) / float64(tt.burst); d > 0.2 {
			t.Errorf("loss %v burst %v: mean burst %v over %d bursts", tt.loss, tt.burst, meanBurst, runs)
		}
	}
}

// A long silence restarts the chain instead of stepping through every cycle; the loss
// stays what it was asked to be.
func TestGilbertElliottAfterSilence(t *testing.T) {
	s := newShaper(Impairment{Loss: 0.1, Burst: 50 * time.Millisecond, Seed: 3}, 0)
	lostN := 0
	for i := range 20000 {
		// Bursts of 10 packets a millisecond apart, an hour apart: each burst starts from a
		// fresh stationary draw, bad with probability 0.1.
		if _, v := s.admit(epoch.Add(time.Duration(i/10)*time.Hour+time.Duration(i%10)*time.Millisecond), 100); v == lost {
			lostN++
		}
	}
	if got := float64(lostN) / 20000; math.Abs(got-0.1) > 0.03 {
		t.Errorf("%v lost", got)
	}
}

func TestDelayJitterFIFO(t *testing.T) {
	const delay, jitter = 50 * time.Millisecond, 10 * time.Millisecond
	s := newShaper(Impairment{Delay: delay, Jitter: jitter, Seed: 5}, 0)
	at, rel, v := offer(s, epoch, 10000, 100, time.Millisecond)
	if n := count(v, deliver); n != 10000 {
		t.Fatalf("%d of 10000 delivered", n)
	}
	least, most := time.Hour, time.Duration(0)
	for i := range at {
		d := rel[i].Sub(at[i])
		if d < delay || d > delay+jitter {
			t.Fatalf("packet %d delayed %v, want %v to %v", i, d, delay, delay+jitter)
		}
		if i > 0 && rel[i].Before(rel[i-1]) {
			t.Fatalf("packet %d released before packet %d", i, i-1)
		}
		least, most = min(least, d), max(most, d)
	}
	if most-least < jitter/2 {
		t.Errorf("delays span %v to %v: no jitter", least, most)
	}
}

func TestJitterReorders(t *testing.T) {
	s := newShaper(Impairment{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: true, Seed: 5}, 0)
	_, rel, _ := offer(s, epoch, 1000, 100, time.Millisecond)
	overtaken := 0
	for i := 1; i < len(rel); i++ {
		if rel[i].Before(rel[i-1]) {
			overtaken++
		}
	}
	if overtaken == 0 {
		t.Error("no packet overtook another")
	}
}

// The rate limit carries its rate; what would wait longer than Queue is dropped.
func TestRateLimit(t *testing.T) {
	const size = 1250 // 10 ms at 1 Mbit/s
	s := newShaper(Impairment{Rate: 1_000_000, Queue: 100 * time.Millisecond, Delay: 30 * time.Millisecond, Seed: 1}, 0)
	// 2 Mbit/s offered for 10 s.
	at, rel, v := offer(s, epoch, 2000, size, 5*time.Millisecond)
	delivered := count(v, deliver)
	if got := float64(delivered*size*8) / 10; math.Abs(got-1e6) > 0.05e6 {
		t.Errorf("carried %v bit/s, want 1 Mbit/s (%d delivered, %d overflow)", got, delivered, count(v, overflow))
	}
	if count(v, lost) != 0 {
		t.Error("packets lost without loss")
	}
	for i := range v {
		if v[i] != deliver {
			continue
		}
		if d := rel[i].Sub(at[i]); d < 30*time.Millisecond || d > 130*time.Millisecond {
			t.Fatalf("packet %d waited %v, want 30 ms delay + at most 100 ms queue", i, d)
		}
	}
}

// A step from 3 Mbit/s to 500 kbit/s and back: each phase carries its rate.
func TestRateStep(t *testing.T) {
	const size = 1250
	s := newShaper(Impairment{Rate: 3_000_000, Seed: 1}, 0)
	carried := func(start time.Time) float64 {
		// 4 Mbit/s offered for 5 s.
		_, _, v := offer(s, start, 2000, size, 2500*time.Microsecond)
		return float64(count(v, deliver)*size*8) / 5
	}
	phases := []struct {
		rate int64
		want float64
	}{{3_000_000, 3e6}, {500_000, 5e5}, {3_000_000, 3e6}}
	for i, p := range phases {
		start := epoch.Add(time.Duration(i) * 5 * time.Second)
		s.set(Impairment{Rate: p.rate, Seed: 1}, start)
		if got := carried(start); math.Abs(got-p.want) > 0.1*p.want {
			t.Errorf("phase %d at %s: carried %v bit/s", i, FormatRate(p.rate), got)
		}
	}
}

func TestOversizePacket(t *testing.T) {
	s := newShaper(Impairment{Rate: 100_000}, 0)
	if _, v := s.admit(epoch, 5000); v != overflow {
		t.Errorf("a datagram larger than the bucket: %v", v)
	}
	if _, v := s.admit(epoch, 1500); v != deliver {
		t.Errorf("a full-size datagram on an idle link: %v", v)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		imp  Impairment
		want string
	}{
		{Impairment{Loss: 1.5}, "loss"},
		{Impairment{Loss: math.NaN()}, "loss"},
		{Impairment{Delay: -time.Millisecond}, "delay"},
		{Impairment{Jitter: 2 * time.Minute}, "jitter"},
		{Impairment{Rate: -1}, "rate"},
		{Impairment{Limit: -1}, "limit"},
	} {
		err := tt.imp.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error about %s", tt.imp, err, tt.want)
		}
	}
	if err := (Impairment{Loss: 0.2, Burst: 50 * time.Millisecond, Delay: 50 * time.Millisecond, Rate: 3_000_000}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"3mbit": 3_000_000, "500kbit": 500_000, "1.5Mbit/s": 1_500_000, "64kbps": 64_000, "2000": 2000,
		"1gbit": 1_000_000_000, "0": 0,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
		if want > 0 {
			if back, err := ParseRate(FormatRate(want)); err != nil || back != want {
				t.Errorf("FormatRate(%d) = %q reads back as %d, %v", want, FormatRate(want), back, err)
			}
		}
	}
	for _, in := range []string{"", "fast", "3furlong", "-1mbit", "5bit", "NaN"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"20%": 0.2, "0.5%": 0.005, "0%": 0, "100%": 1, " 7 %": 0.07} {
		if got, err := ParsePercent(in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"20", "150%", "-1%", "x%", ""} {
		if _, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) accepted", in)
		}
	}
}
