package testclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// TURNClient is a pion TURN client logged in with user/password to the relay at addr over
// transport: "udp", "tcp" or "tls" (which skips certificate verification). It is listening
// (responses are read) and closed when the test ends.
func TURNClient(tb testing.TB, transport, addr, user, password string) *turn.Client {
	tb.Helper()
	conn, err := DialTURN(transport, addr)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: password})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// DialTURN opens the connection a TURN client speaks over: a UDP socket on the loopback
// address of addr's family (127.0.0.1 or ::1), or a TCP or TLS connection to addr framed for
// STUN.
func DialTURN(transport, addr string) (net.PacketConn, error) {
	switch transport {
	case "udp":
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() && !ap.Addr().Is4In6() {
			return net.ListenPacket("udp6", "[::1]:0")
		}
		return net.ListenPacket("udp4", "127.0.0.1:0")
	case "tcp":
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		return turn.NewSTUNConn(c), nil
	case "tls":
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // tests' own certificates
		if err != nil {
			return nil, err
		}
		return turn.NewSTUNConn(c), nil
	}
	return nil, fmt.Errorf("transport %q", transport)
}

// TURNErrorCode returns the STUN error code of a TURN request's error (403, 486, ...), or 0
// when err is not a TURN error response.
func TURNErrorCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// TURNChannelBind asks the relay, through c (which must have allocated), to bind channel
// number to peer, authenticating with user/password. It returns nil on success, a
// *stun.TurnError when the relay answers with an error.
func TURNChannelBind(c *turn.Client, user, password string, peer *net.UDPAddr, number uint16) error {
	attrs := []stun.Setter{
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(number >> 8), byte(number), 0, 0}},
		TURNPeerAddress{peer},
	}
	// An unauthenticated request fetches the realm and nonce, as every TURN client does.
	res, err := turnTransaction(c, stun.MethodChannelBind, attrs...)
	if err != nil {
		return err
	}
	var realm stun.Realm
	var nonce stun.Nonce
	if err := realm.GetFrom(res); err != nil {
		return fmt.Errorf("no realm in %v: %w", res, err)
	}
	if err := nonce.GetFrom(res); err != nil {
		return fmt.Errorf("no nonce in %v: %w", res, err)
	}
	attrs = append(attrs, stun.NewUsername(user), realm, nonce,
		stun.NewLongTermIntegrity(user, realm.String(), password), stun.Fingerprint)
	res, err = turnTransaction(c, stun.MethodChannelBind, attrs...)
	if err != nil {
		return err
	}
	if res.Type.Class == stun.ClassErrorResponse {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(res)
		return &stun.TurnError{StunMessageType: res.Type, ErrorCodeAttr: code}
	}
	return nil
}

// turnTransaction sends a request of method with attrs through c and returns the response.
func turnTransaction(c *turn.Client, method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	msg, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)...)
	if err != nil {
		return nil, err
	}
	res, err := c.PerformTransaction(msg, c.TURNServerAddr(), false)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// TURNPeerAddress is an XOR-PEER-ADDRESS attribute, for hand-built TURN messages.
type TURNPeerAddress struct{ Addr *net.UDPAddr }

// AddTo adds the attribute to m.
func (p TURNPeerAddress) AddTo(m *stun.Message) error {
	return (&stun.XORMappedAddress{IP: p.Addr.IP, Port: p.Addr.Port}).AddToAs(m, stun.AttrXORPeerAddress)
}
