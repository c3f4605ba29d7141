package loadtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Process figures from Linux /proc: CPU time, memory, and drops on UDP sockets. Other systems
// report errors, and the run goes on without these figures.

// atClkTck is the auxiliary vector entry holding the kernel's clock tick rate.
const atClkTck = 17

// clockTicks returns the unit of /proc/PID/stat times (USER_HZ), from the process's own
// auxiliary vector; 100 (Linux's value everywhere in practice) when it cannot be read.
func clockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k, v := binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return int64(v)
		}
	}
	return 100
}

// procCPU returns the user+system CPU time of every thread of process pid so far.
func procCPU(pid int, ticks int64) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b, ticks)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/PID/stat line; the
// command name (field 2) may contain spaces and parentheses, so fields count from its end.
func parseStatCPU(b []byte, ticks int64) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	return time.Duration((ut + st) * int64(time.Second) / ticks), nil
}

// memInfo is a process's resident memory from /proc/PID/status, in KiB.
type memInfo struct {
	RSS  int64 // VmRSS: now
	Peak int64 // VmHWM: the highest since the process started
}

func procMem(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	return parseStatusMem(b)
}

func parseStatusMem(b []byte) (memInfo, error) {
	var m memInfo
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.Peak
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("malformed %s", f[0])
		}
		*dst = v
		found++
	}
	if found < 2 {
		return m, errors.New("VmRSS/VmHWM missing from /proc status")
	}
	return m, nil
}

// udpDrops returns the datagrams the kernel dropped on pid's UDP sockets (receive buffer
// full), summed from the drops column of /proc/net/udp{,6} over the sockets pid has open.
func udpDrops(pid int) (uint64, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, err
	}
	inodes := make(map[string]bool, len(ents))
	for _, e := range ents {
		l, err := os.Readlink(fdDir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
	}
	var total uint64
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		total += sumUDPDrops(b, inodes)
	}
	return total, nil
}

// sumUDPDrops adds the drops column of the /proc/net/udp rows whose inode is in inodes.
func sumUDPDrops(table []byte, inodes map[string]bool) uint64 {
	var total uint64
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		if len(f) < 13 || !inodes[f[9]] {
			continue
		}
		if d, err := strconv.ParseUint(f[12], 10, 64); err == nil {
			total += d
		}
	}
	return total
}

// hostCPU is the machine-wide CPU time from the first line of /proc/stat, in clock ticks.
type hostCPU struct {
	Busy    int64 // everything but idle and iowait
	SoftIRQ int64
	Total   int64
	CPUs    int
}

func readHostCPU() (hostCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads the aggregate "cpu" line (user nice system idle iowait irq softirq
// steal ...) and counts the per-CPU lines.
func parseProcStat(b []byte) (hostCPU, error) {
	var h hostCPU
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			h.CPUs++
			continue
		}
		if len(f) < 8 {
			return h, errors.New("short cpu line in /proc/stat")
		}
		for i, s := range f[1:] {
			if i >= 8 { // guest times are already in user and nice
				break
			}
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return h, fmt.Errorf("malformed /proc/stat: %w", err)
			}
			h.Total += v
			switch i {
			case 3, 4: // idle, iowait
			default:
				h.Busy += v
			}
			if i == 6 {
				h.SoftIRQ = v
			}
		}
		found = true
	}
	if !found {
		return h, errors.New("no cpu line in /proc/stat")
	}
	return h, nil
}
