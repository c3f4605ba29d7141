package loadtest

import (
	"math"
	"math/bits"
)

// Histogram layout: values (microseconds) below histExact are counted exactly; above, each
// power of two is split into histSub sub-buckets, so a bucket is at most 1/32 (about 3%) of
// its value wide. Values above histMax land in the last bucket.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits       // sub-buckets per power of two
	histExact   = 1 << (histSubBits + 1) // 64: values counted exactly
	histMaxExp  = 24                     // largest shift: values up to about 2^30 µs (18 min)
	histBuckets = histExact + histMaxExp*histSub
)

// histogram counts non-negative integer samples (microseconds) with bounded relative error and
// a fixed size, so that one can be kept per stream and merged. Not safe for concurrent use.
type histogram struct {
	counts [histBuckets]uint32
	n      uint64
	sum    uint64
	max    uint64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < histExact {
		return int(v)
	}
	exp := bits.Len64(v) - (histSubBits + 1)
	if exp > histMaxExp {
		return histBuckets - 1
	}
	sub := int(v>>uint(exp)) & (histSub - 1)
	return histExact + (exp-1)*histSub + sub
}

// bucketBounds returns the smallest value of bucket i and its width.
func bucketBounds(i int) (low, width uint64) {
	if i < histExact {
		return uint64(i), 1
	}
	exp := (i-histExact)/histSub + 1
	sub := (i - histExact) % histSub
	return uint64(histSub+sub) << uint(exp), 1 << uint(exp)
}

// record adds one sample.
func (h *histogram) record(v uint64) {
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// merge adds o's samples to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// reset forgets every sample.
func (h *histogram) reset() { *h = histogram{} }

// quantile returns the value below which a fraction q of the samples lie: the middle of the
// bucket holding the sample of rank ceil(q*n), never more than the largest sample. It returns
// 0 when there are no samples.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			low, width := bucketBounds(i)
			v := float64(low) + float64(width-1)/2
			return math.Min(v, float64(h.max))
		}
	}
	return float64(h.max)
}

// mean returns the average sample, 0 without samples.
func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}
