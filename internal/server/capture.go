package server

import (
	"bufio"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// audioCapture returns the room layer's capture hook for rtc.capture_audio_dir (dev mode
// only): each published audio track's packets go to dir/<track sid>.rtp, each after its
// length (2 bytes, big-endian), flushed every 50 packets. nil when dir is empty.
func audioCapture(dir string, logger *slog.Logger) func(trackSID string) func([]byte) {
	if dir == "" {
		return nil
	}
	return func(trackSID string) func([]byte) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			logger.Warn("audio capture", "err", err)
			return nil
		}
		path := filepath.Join(dir, filepath.Base(trackSID)+".rtp")
		f, err := os.Create(path)
		if err != nil {
			logger.Warn("audio capture", "err", err)
			return nil
		}
		logger.Info("capturing audio", "track", trackSID, "file", path)
		var mu sync.Mutex
		w := bufio.NewWriter(f)
		n := 0
		return func(pkt []byte) {
			mu.Lock()
			defer mu.Unlock()
			var l [2]byte
			binary.BigEndian.PutUint16(l[:], uint16(len(pkt)))
			_, _ = w.Write(l[:])
			_, _ = w.Write(pkt)
			if n++; n%50 == 0 {
				_ = w.Flush()
			}
		}
	}
}
