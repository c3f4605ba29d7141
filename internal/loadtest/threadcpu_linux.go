package loadtest

import (
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD.
const rusageThread = 1

// threadCPU returns the CPU time (user + system) of the calling OS thread; lock it first.
func threadCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
