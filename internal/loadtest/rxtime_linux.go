package loadtest

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// enableRxTimestamps asks the kernel to attach its receive time (SO_TIMESTAMPNS) to every
// datagram read from c.
func enableRxTimestamps(c *net.UDPConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// rxTimestamp returns the kernel receive time (Unix nanoseconds) from a datagram's control
// messages.
func rxTimestamp(oob []byte) (int64, bool) {
	for len(oob) >= unix.CmsgLen(0) {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0, false
		}
		oob = rest
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_TIMESTAMPNS {
			continue
		}
		switch len(data) {
		case 16:
			return int64(binary.NativeEndian.Uint64(data[0:8]))*1e9 + int64(binary.NativeEndian.Uint64(data[8:16])), true
		case 8:
			return int64(int32(binary.NativeEndian.Uint32(data[0:4])))*1e9 + int64(int32(binary.NativeEndian.Uint32(data[4:8]))), true
		}
	}
	return 0, false
}
