// Package coverage turns what was observed during class sessions (connection intervals,
// video delivery, quality samples) into session records, and session records into the
// aggregates the province reports: coverage rate, delivery rate, class hours by subject,
// routine use and quality percentiles, per teaching point, school, county, city, province,
// subject and period. It is pure computation: no clock, no storage.
package coverage

import (
	"sort"
	"time"
)

// Interval is the half-open time span [Start, End).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Duration returns the interval's length (0 when empty or inverted).
func (i Interval) Duration() time.Duration {
	if !i.End.After(i.Start) {
		return 0
	}
	return i.End.Sub(i.Start)
}

// Merge returns the union of intervals as sorted, disjoint, non-empty intervals. Overlapping
// and touching intervals are joined: a classroom connected twice at once (a reconnect
// before the old connection timed out, two devices) is counted once.
func Merge(ivs []Interval) []Interval {
	var in []Interval
	for _, iv := range ivs {
		if iv.End.After(iv.Start) {
			in = append(in, iv)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Start.Before(in[j].Start) })
	var out []Interval
	for _, iv := range in {
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].End) {
			if iv.End.After(out[n-1].End) {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// Intersect returns the intersection of two sets of intervals (each merged first).
func Intersect(a, b []Interval) []Interval {
	a, b = Merge(a), Merge(b)
	var out []Interval
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		s := maxTime(a[i].Start, b[j].Start)
		e := minTime(a[i].End, b[j].End)
		if e.After(s) {
			out = append(out, Interval{s, e})
		}
		if a[i].End.Before(b[j].End) {
			i++
		} else {
			j++
		}
	}
	return out
}

// Clip returns the parts of ivs inside w.
func Clip(ivs []Interval, w Interval) []Interval { return Intersect(ivs, []Interval{w}) }

// Total returns the length of the union of ivs.
func Total(ivs []Interval) time.Duration {
	var d time.Duration
	for _, iv := range Merge(ivs) {
		d += iv.Duration()
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// percentile returns the p-th percentile (0-100) of values by linear interpolation between
// closest ranks; 0 for no values. values is sorted in place.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sort.Float64s(values)
	if len(values) == 1 {
		return values[0]
	}
	rank := p / 100 * float64(len(values)-1)
	lo := int(rank)
	if lo >= len(values)-1 {
		return values[len(values)-1]
	}
	frac := rank - float64(lo)
	return values[lo] + frac*(values[lo+1]-values[lo])
}

// Stat summarizes a series of values.
type Stat struct {
	Avg float64 `json:"avg"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// Summarize computes a Stat over values (which it sorts).
func Summarize(values []float64) Stat {
	if len(values) == 0 {
		return Stat{}
	}
	var sum float64
	for _, v := range values {
		sum += v
	}
	s := Stat{Avg: round3(sum / float64(len(values)))}
	s.P50 = round3(percentile(values, 50))
	s.P90 = round3(percentile(values, 90))
	s.P95 = round3(percentile(values, 95))
	s.Max = round3(values[len(values)-1])
	return s
}

// round3 rounds to 3 decimals, so that reports show 0.667 rather than 0.6666666666666666.
func round3(f float64) float64 {
	if f < 0 {
		return -round3(-f)
	}
	return float64(int64(f*1000+0.5)) / 1000
}

// seconds converts a duration to seconds rounded to the millisecond.
func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
