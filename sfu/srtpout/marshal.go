package srtpout

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
)

// ErrPacketTooLarge is returned when a packet does not fit the buffer it is built in.
var ErrPacketTooLarge = errors.New("srtpout: packet too large")

// MarshalPacket writes the plain RTP packet of h and payload into buf: the header, the
// payload and, when h.Padding is set, h.PaddingSize bytes of padding whose last byte is their
// count (RFC 3550 5.1). A header that says "padding" must be followed by it: a receiver
// strips that many bytes from the end, so without them it cuts the payload or refuses the
// packet (pion's Unmarshal: "buffer too small", which ends a Go SDK's ReadRTP loop). It
// returns the header's length and the packet's.
func MarshalPacket(buf []byte, h *rtp.Header, payload []byte) (hn, n int, err error) {
	pad := 0
	if h.Padding {
		if h.PaddingSize == 0 {
			return 0, 0, errors.New("srtpout: padding flag without padding")
		}
		pad = int(h.PaddingSize)
	}
	hn, err = h.MarshalTo(buf)
	if err != nil {
		return 0, 0, fmt.Errorf("srtpout: marshal header: %w", err)
	}
	n = hn + len(payload) + pad
	if n > len(buf) {
		return 0, 0, fmt.Errorf("%w (%d bytes)", ErrPacketTooLarge, n)
	}
	copy(buf[hn:], payload)
	if pad > 0 {
		clear(buf[hn+len(payload) : n-1])
		buf[n-1] = byte(pad)
	}
	return hn, n, nil
}
