package loadtest

import (
	"os"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/test/prereq"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := []byte("4242 (sanke (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 0 0\n")
	got, err := parseStatCPU(line, 100)
	if err != nil || got != 3*time.Second {
		t.Errorf("got %v %v, want 3s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2"), 100); err == nil {
		t.Error("short line accepted")
	}
}

func TestParseStatusMem(t *testing.T) {
	m, err := parseStatusMem([]byte("Name:\tsanke\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t8\n"))
	if err != nil || m.RSS != 102400 || m.Peak != 204800 {
		t.Errorf("got %+v %v", m, err)
	}
	if _, err := parseStatusMem([]byte("Name:\tx\n")); err == nil {
		t.Error("missing fields accepted")
	}
}

func TestSumUDPDrops(t *testing.T) {
	table := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 0100007F:45D2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1111 2 0000000000000000 17
  2: 0100007F:A001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2222 2 0000000000000000 5
  3: 0100007F:A002 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3333 2 0000000000000000 100
`)
	if got := sumUDPDrops(table, map[string]bool{"1111": true, "2222": true}); got != 22 {
		t.Errorf("drops = %d, want 22", got)
	}
}

func TestOwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		prereq.Skip(t, "no /proc: %v", err)
	}
	if ticks := clockTicks(); ticks <= 0 {
		t.Errorf("clock ticks %d", ticks)
	}
	start := time.Now()
	for time.Since(start) < 30*time.Millisecond {
	}
	cpu, err := procCPU(os.Getpid(), clockTicks())
	if err != nil || cpu <= 0 {
		t.Errorf("cpu %v %v", cpu, err)
	}
	m, err := procMem(os.Getpid())
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("mem %+v %v", m, err)
	}
	if _, err := udpDrops(os.Getpid()); err != nil {
		t.Errorf("udp drops: %v", err)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(ds)
	if p.N != 100 || p.P50Ms != 50 || p.P95Ms != 95 || p.P99Ms != 99 || p.MaxMs != 100 {
		t.Errorf("%+v", p)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Error("empty")
	}
}

func TestParseProcStat(t *testing.T) {
	h, err := parseProcStat([]byte("cpu  100 10 50 800 20 5 15 0 7 0\ncpu0 50 5 25 400 10 2 8 0 0 0\ncpu1 50 5 25 400 10 3 7 0 0 0\nintr 1\n"))
	if err != nil || h.CPUs != 2 || h.Total != 1000 || h.Busy != 180 || h.SoftIRQ != 15 {
		t.Errorf("got %+v %v", h, err)
	}
	if _, err := parseProcStat([]byte("intr 1\n")); err == nil {
		t.Error("no cpu line accepted")
	}
}
