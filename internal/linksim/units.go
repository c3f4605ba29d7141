package linksim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rateUnit is a unit ParseRate accepts.
type rateUnit struct {
	suffix string
	bits   float64 // bits per second
}

// rateUnits lists the units ParseRate accepts, tc's first, each before its own suffixes.
func rateUnits() []rateUnit {
	return []rateUnit{
		{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
		{"gbps", 1e9}, {"mbps", 1e6}, {"kbps", 1e3}, {"bps", 1},
	}
}

// ParseRate parses a rate in bits per second as tc writes it: "3mbit", "500kbit",
// "1.5Mbit/s", "64kbps" or a plain number of bits per second. Units are decimal.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/s")
	mult := 1.0
	for _, u := range rateUnits() {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.bits
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q: want a number of bits per second such as 3mbit or 500kbit", s)
	}
	bits := v * mult
	if bits < 0 || bits > 1e12 {
		return 0, fmt.Errorf("rate %q: must be between 0 and 1000gbit", s)
	}
	if bits > 0 && bits < 8 {
		return 0, fmt.Errorf("rate %q: less than a byte per second", s)
	}
	return int64(bits), nil
}

// FormatRate writes a rate in bits per second the way ParseRate reads it.
func FormatRate(bits int64) string {
	for _, u := range rateUnits()[:3] {
		if float64(bits) >= u.bits && bits%int64(u.bits/1000) == 0 {
			return strconv.FormatFloat(float64(bits)/u.bits, 'f', -1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(bits, 10) + "bit"
}

// ParsePercent parses a share written as a percentage, "20%" or "0.5%", into a fraction
// between 0 and 1.
func ParsePercent(s string) (float64, error) {
	t, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("%q: want a percentage such as 20%%", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("%q: want a percentage such as 20%%", s)
	}
	if v < 0 || v > 100 {
		return 0, fmt.Errorf("%q: must be between 0%% and 100%%", s)
	}
	return v / 100, nil
}
