package testclient

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartRedis runs a throwaway redis-server on a free 127.0.0.1 port (no persistence) until the
// test ends and returns its address ("127.0.0.1:port"). It fails the test, with the way to fix
// it, when redis-server is not installed.
func StartRedis(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed (%v): run ./scripts/test.sh, which installs it, or apt-get install -y redis-server", err)
	}
	port, err := reservePort(tb, "tcp")
	if err != nil {
		tb.Fatal(err)
	}
	logs := newLogBuffer()
	out := &lineWriter{buf: logs}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tb.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := redisPing(addr); err == nil {
			return addr
		} else if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s not answering PING: %v\n%s", addr, err, logs.String())
		}
		select {
		case <-exited:
			tb.Fatalf("redis-server exited:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisPing sends PING and expects +PONG.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
