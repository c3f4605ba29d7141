package sfu

// Simulcast layer indexes. LiveKit clients send up to three encodings of a
// video track, told apart by their RID.
const (
	// LayerNone means no layer: nothing forwarded yet, or a subscriber that
	// wants nothing.
	LayerNone = -1
	// LayerLow is the lowest quality ("q").
	LayerLow = 0
	// LayerMedium is the middle quality ("h").
	LayerMedium = 1
	// LayerHigh is the highest quality ("f").
	LayerHigh = 2
	// NumLayers is the number of simulcast layers a track can have.
	NumLayers = 3
)

// LayerForRID maps a simulcast RID to a layer index: "q" or "0" is
// LayerLow, "h" or "1" LayerMedium, "f" or "2" LayerHigh, and "" (a single,
// non-simulcast stream) LayerLow. It reports false for any other RID.
func LayerForRID(rid string) (int, bool) {
	switch rid {
	case "", "q", "0":
		return LayerLow, true
	case "h", "1":
		return LayerMedium, true
	case "f", "2":
		return LayerHigh, true
	}
	return LayerNone, false
}

// layerMask is a set of layers, bit i for layer i.
type layerMask uint8

// has reports whether layer is in the set.
func (m layerMask) has(layer int) bool {
	return layer >= 0 && layer < NumLayers && m&(1<<layer) != 0
}

// layers lists the set in increasing order.
func (m layerMask) layers() []int {
	out := make([]int, 0, NumLayers)
	for i := range NumLayers {
		if m.has(i) {
			out = append(out, i)
		}
	}
	return out
}

// pickLayer chooses the layer to forward for a subscriber that wants at most
// maxLayer: the best available layer not above maxLayer, else the lowest
// available layer above it. With nothing available it returns fallback.
func pickLayer(maxLayer int, available layerMask, fallback int) int {
	for l := min(maxLayer, NumLayers-1); l >= 0; l-- {
		if available.has(l) {
			return l
		}
	}
	for l := max(maxLayer+1, 0); l < NumLayers; l++ {
		if available.has(l) {
			return l
		}
	}
	return fallback
}
