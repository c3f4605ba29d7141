//go:build !linux

package loadtest

import "net"

// enableRxTimestamps is Linux-only; elsewhere arrivals are taken when the socket is read.
func enableRxTimestamps(*net.UDPConn) bool { return false }

func rxTimestamp([]byte) (int64, bool) { return 0, false }
