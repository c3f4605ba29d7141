package sfu

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	// AudioActiveDBov is the loudness, in -dBov as carried by the
	// ssrc-audio-level extension (0 loudest, 127 silence), above which a
	// smoothed level counts as speaking.
	AudioActiveDBov = 40
	// audioLevelSmoothing is the weight of each new sample in the moving
	// average (about ten packets, 200 ms of Opus, dominate it).
	audioLevelSmoothing = 0.1
	// audioLevelTimeout is how long a level stays valid without samples
	// (DTX, mute or a stopped publisher read as silence).
	audioLevelTimeout = time.Second
)

// dBovToLevel converts -dBov to a linear level in [0,1]: 10^(-dBov/20).
func dBovToLevel(dBov uint8) float64 {
	return math.Pow(10, -float64(dBov)/20)
}

// audioLevel smooths the levels of one audio stream. observe is called by
// the receive loop only; get is safe from any goroutine.
type audioLevel struct {
	smoothed float64       // receive loop only
	value    atomic.Uint64 // math.Float64bits of smoothed
	at       atomic.Int64  // receiver clock of the last sample
}

// observe adds the level of one packet, in -dBov (the 7 low bits of the
// extension byte).
func (a *audioLevel) observe(dBov uint8, now int64) {
	a.smoothed += audioLevelSmoothing * (dBovToLevel(dBov&0x7f) - a.smoothed)
	a.value.Store(math.Float64bits(a.smoothed))
	a.at.Store(now)
}

// get returns the smoothed level and whether it counts as speaking.
func (a *audioLevel) get(now int64) (float64, bool) {
	at := a.at.Load()
	if at == 0 || now-at > int64(audioLevelTimeout) {
		return 0, false
	}
	level := math.Float64frombits(a.value.Load())
	return level, level >= dBovToLevel(AudioActiveDBov)
}
