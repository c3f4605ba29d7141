//go:build !linux

package loadtest

import (
	"errors"
	"time"
)

// threadCPU is only available on Linux.
func threadCPU() (time.Duration, error) {
	return 0, errors.New("per-thread CPU time is only measured on Linux")
}
