package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/linksim"
	"github.com/sanke-edu/sanke/test/syncbuf"
	tc "github.com/sanke-edu/sanke/test/testclient"
)

func TestLinksimFlagErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"--loss", "150%"}, exitUsage, `"150%": must be between 0% and 100%`},
		{[]string{"--loss", "20"}, exitUsage, "want a percentage such as 20%"},
		{[]string{"--rate", "3furlong"}, exitUsage, "want a number of bits per second"},
		{[]string{"--delay", "-5ms"}, exitUsage, "must not be negative"},
		{[]string{"--burst", "soon"}, exitUsage, "want a duration"},
		{[]string{"--jitter", "2m"}, exitUsage, "up: jitter 2m0s: must be between 0 and 1m0s"},
		{[]string{"--reorder=maybe"}, exitUsage, "reorder"},
		{[]string{"--up", "speed=1mbit"}, exitUsage, `--up: "speed=1mbit": unknown setting "speed"`},
		{[]string{"--down", "loss=101%"}, exitUsage, "--down: loss:"},
		{[]string{"--step", "60s"}, exitUsage, "want TIME:key=value"},
		{[]string{"--step", "60s:rate=fast"}, exitUsage, "rate"},
		{[]string{"--step", "2m:loss=1%", "--step", "1m:loss=2%"}, exitUsage, "steps must be in order"},
		{[]string{"--max-allocations", "0"}, exitUsage, "at least 1"},
		{[]string{"extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"--listen", "nowhere"}, exitError, "listen address"},
		{[]string{"-h"}, exitOK, "--step 60s:rate=500kbit"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runApp(t, nil, nil, append([]string{"linksim"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.want)
			}
		})
	}
}

// The relay runs until its context ends: it prints the RTCConfiguration, takes a client
// with those credentials, and logs its counters.
func TestLinksimRuns(t *testing.T) {
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	a := &app{stdout: stdout, stderr: stderr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- a.run(ctx, []string{"linksim", "--listen", "127.0.0.1:0", "--tcp=false", "--loss", "20%", "--burst", "50ms",
			"--up", "rate=1mbit", "--user", "pupil", "--password", "slate", "--stats-every", "10ms", "--step", "1h:loss=1%"})
	}()
	tc.Eventually(t, 30*time.Second, "the RTCConfiguration is printed", func() (bool, string) {
		return strings.HasSuffix(stdout.String(), "}\n"), stdout.String()
	})
	var conf struct {
		ICEServers         []linksim.ICEServer `json:"iceServers"`
		ICETransportPolicy string              `json:"iceTransportPolicy"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &conf); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	if len(conf.ICEServers) != 1 || len(conf.ICEServers[0].URLs) != 1 || conf.ICETransportPolicy != "relay" {
		t.Fatalf("RTCConfiguration %+v", conf)
	}
	ice := conf.ICEServers[0]
	addr, ok := strings.CutPrefix(ice.URLs[0], "turn:")
	addr, ok2 := strings.CutSuffix(addr, "?transport=udp")
	if !ok || !ok2 || ice.Username != "pupil" || ice.Credential != "slate" {
		t.Fatalf("ICE server %+v", ice)
	}
	if _, err := tc.TURNClient(t, "udp", addr, ice.Username, ice.Credential).Allocate(); err != nil {
		t.Fatalf("allocate: %v", err)
	}
	tc.Eventually(t, 30*time.Second, "the counters show the allocation", func() (bool, string) {
		return strings.Contains(stderr.String(), "allocations=1"), stderr.String()
	})
	for _, want := range []string{"rate 1mbit", `down="loss 20% (bursts of 50ms)`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not contain %q", stderr.String(), want)
		}
	}
	cancel()
	if code := <-exit; code != exitOK {
		t.Errorf("exit code %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("stderr %q: no final counters", stderr.String())
	}
}

// With --control, each line of standard input changes the link at once; a line that does not
// parse is refused and changes nothing.
func TestLinksimControl(t *testing.T) {
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	in, control := io.Pipe()
	defer func() { _ = control.Close() }()
	a := &app{stdin: in, stdout: stdout, stderr: stderr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- a.run(ctx, []string{"linksim", "--listen", "127.0.0.1:0", "--tcp=false", "--rate", "3mbit", "--delay", "25ms",
			"--stats-every", "0", "--control"})
	}()
	tc.Eventually(t, 30*time.Second, "the RTCConfiguration is printed", func() (bool, string) {
		return strings.HasSuffix(stdout.String(), "}\n"), stdout.String()
	})
	for _, line := range []string{"down.rate=fast", "", "down.rate=500kbit,up.loss=5%"} {
		if _, err := io.WriteString(control, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	tc.Eventually(t, 30*time.Second, "the link changed", func() (bool, string) {
		return strings.Contains(stderr.String(), "link changed"), stderr.String()
	})
	log := stderr.String()
	for _, want := range []string{`msg="control line refused" component=linksim line="down.rate=fast"`, `up="loss 5%, delay 25ms, rate 3mbit`,
		`down="loss 0%, delay 25ms, rate 500kbit`} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr %q does not contain %q", log, want)
		}
	}
	if n := strings.Count(log, "link changed"); n != 1 {
		t.Errorf("%d link changes, want 1: %q", n, log)
	}
	cancel()
	if code := <-exit; code != exitOK {
		t.Errorf("exit code %d, stderr %q", code, log)
	}
}
