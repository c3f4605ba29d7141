package turnserver

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	tc "github.com/sanke-edu/sanke/test/testclient"
)

// TestAllocationQuotas: a participant's credential, a client address and the relay as a
// whole each hold a bounded number of allocations; one more is refused with 486, and a
// released allocation frees its place.
func TestAllocationQuotas(t *testing.T) {
	r := startRelay(t, func(c *Config) {
		c.Limits = Limits{AllocationsPerParticipant: 2, AllocationsPerAddress: 3, Allocations: 100}
	})
	aUser, aPassword := r.credentials(t, "PA_a")
	bUser, bPassword := r.credentials(t, "PA_b")
	var first interface{ Close() error }
	for i := range 2 {
		conn, err := r.allocate(t, "udp", aUser, aPassword)
		if err != nil {
			t.Fatalf("a's allocation %d: %v", i+1, err)
		}
		first = conn
	}
	if _, err := r.allocate(t, "tcp", aUser, aPassword); tc.TURNErrorCode(err) != 486 {
		t.Errorf("a's third allocation: %v, want 486", err)
	}
	if _, err := r.allocate(t, "udp", bUser, bPassword); err != nil {
		t.Fatalf("b's allocation: %v", err)
	}
	if _, err := r.allocate(t, "udp", bUser, bPassword); tc.TURNErrorCode(err) != 486 {
		t.Errorf("a fourth allocation from 127.0.0.1: %v, want 486", err)
	}
	// Closing sends a zero-lifetime refresh, handled before the next client's request.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.allocate(t, "udp", bUser, bPassword); err != nil {
		t.Errorf("after a release: %v", err)
	}

	g := startRelay(t, func(c *Config) { c.Limits = Limits{Allocations: 2} })
	for i, sid := range []string{"PA_1", "PA_2", "PA_3"} {
		user, password := g.credentials(t, sid)
		_, err := g.allocate(t, "udp", user, password)
		if want := i < 2; want != (err == nil) || (!want && tc.TURNErrorCode(err) != 486) {
			t.Errorf("allocation %d of a relay bounded to 2: %v", i+1, err)
		}
	}
}

// waitClosed fails unless the server closes conn: a read ends without data. The deadline
// only bounds a failing test.
func waitClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	if got := tc.AwaitClose(t, conn, 30*time.Second, what); got != "" {
		t.Fatalf("%s: read %q; want it closed by the server", what, got)
	}
}

// binds reports whether the relay answers a STUN Binding request on conn: it was admitted
// and is still open.
func binds(conn net.Conn) error {
	msg, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		return err
	}
	if _, err := conn.Write(msg.Raw); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil || res.Type != stun.BindingSuccess {
		return fmt.Errorf("answer %v, %v", res.Type, err)
	}
	return nil
}

// dialFrom opens a TCP connection to addr from local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	return tc.DialFrom(t, ip, addr)
}

// TestIdleConnections: TURN/TCP and TURN/TLS connections that do not allocate within the
// setup timeout are closed, silent or mid-handshake; one with an allocation stays.
func TestIdleConnections(t *testing.T) {
	// Long enough for an allocation or a handshake on a loaded machine; the test waits
	// for it once, the idle connections all being open together.
	r := startRelay(t, func(c *Config) { c.Limits.SetupTimeout = 2 * time.Second })
	user, password := r.credentials(t, "PA_point")
	// Allocated first: by the time the idle connections below are closed, its own setup
	// timeout has passed too.
	allocated := r.client(t, "tcp", user, password)
	if _, err := allocated.Allocate(); err != nil {
		t.Fatal(err)
	}
	silent := dialFrom(t, "127.0.0.1", r.addr("tcp"))
	raw := dialFrom(t, "127.0.0.1", r.addr("tls"))
	handshaken := tls.Client(dialFrom(t, "127.0.0.1", r.addr("tls")), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err := handshaken.Handshake(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, silent, "silent TCP connection")
	waitClosed(t, raw, "TLS connection without a handshake")
	waitClosed(t, handshaken, "silent TLS connection")
	if err := allocated.CreatePermission(r.sfu.LocalAddr()); err != nil {
		t.Errorf("the allocated connection after the setup timeout: %v", err)
	}
}

// TestConnectionLimits: connections beyond the per-address or the total bound are closed
// at once; those admitted are served.
func TestConnectionLimits(t *testing.T) {
	r := startRelay(t, func(c *Config) {
		c.Limits = Limits{Connections: 3, ConnectionsPerAddress: 2, SetupTimeout: time.Minute}
	})
	addr := r.addr("tcp")
	for i, a := range []string{"127.0.0.1", "127.0.0.1"} {
		if err := binds(dialFrom(t, a, addr)); err != nil {
			t.Fatalf("connection %d from %s: %v", i+1, a, err)
		}
	}
	waitClosed(t, dialFrom(t, "127.0.0.1", addr), "third connection from 127.0.0.1")
	if err := binds(dialFrom(t, "127.0.0.2", addr)); err != nil {
		t.Fatalf("connection from 127.0.0.2: %v", err)
	}
	waitClosed(t, dialFrom(t, "127.0.0.3", r.addr("tls")), "fourth connection in total")
}
