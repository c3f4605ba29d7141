//go:build !linux

package srtpout

import "net"

// rawAddr is unused where sendmmsg does not exist.
type rawAddr struct{}

func rawSockaddr(*net.UDPAddr) (rawAddr, uint32) { return rawAddr{}, 0 }

// sysBatch is empty where sendmmsg does not exist: the batch is sent one packet at a time.
type sysBatch struct{}

func (b *Batch) setConn(c *net.UDPConn) error {
	b.conn = c
	return nil
}

func (b *Batch) send() {
	for i, pkt := range b.out[:b.n] {
		if _, err := b.conn.WriteToUDP(pkt, &b.peers[i].udp); err != nil {
			b.dropped++
		} else {
			b.sent++
		}
	}
}
