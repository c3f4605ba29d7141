package signaling

import "time"

// Config tunes the signaling endpoint. A zero field takes the default given in its comment.
type Config struct {
	// MaxMessageBytes is the largest message accepted from a client; a larger one closes that
	// connection with close code 1009. Default 1 MiB.
	MaxMessageBytes int
	// RateLimit is the sustained number of messages per second accepted from one client;
	// messages above it are dropped. Negative disables rate limiting. Default 50.
	RateLimit float64
	// RateBurst is the burst of messages accepted above RateLimit. Default 100.
	RateBurst int
	// FloodDrops is how many dropped messages within FloodWindow close the connection
	// (code 1008). Default RateBurst (at least 10).
	FloodDrops int
	// FloodWindow is the window FloodDrops is counted in. Default 10s.
	FloodWindow time.Duration
	// PingInterval is how often clients ping; the server also sends websocket pings at this
	// interval (or PingTimeout/2 if shorter) so that clients that do not ping (the Go SDK)
	// stay alive through their automatic pongs. Default 5s.
	PingInterval time.Duration
	// PingTimeout closes a connection on which nothing (message or pong) arrived for this
	// long. Default 15s.
	PingTimeout time.Duration
	// WriteQueue is the number of outgoing messages buffered per client; a client whose
	// queue overflows is disconnected. Default 256.
	WriteQueue int
	// WriteTimeout bounds each websocket write, and the final flush on close. Default 10s.
	WriteTimeout time.Duration
	// JoinTimeout bounds rooms.Joiner.Join and rooms.JoinValidator.ValidateJoin. Default 15s.
	JoinTimeout time.Duration
	// CloseGrace is how long the server waits for the client's close frame after sending its
	// own, before closing the TCP connection. Default 1s.
	CloseGrace time.Duration
	// JoinRateLimit is the sustained number of joins per second accepted from one client
	// address (an IPv4 address, or an IPv6 /64; loopback is not held to it): a join makes
	// PeerConnections. Joins above it are refused with 429 before the upgrade. Negative
	// disables it. Default 10.
	JoinRateLimit float64
	// JoinRateBurst is the burst of joins accepted from one address above JoinRateLimit (a
	// school's devices behind one NAT joining at the start of a class). Default 100.
	JoinRateBurst int
	// TrustProxyHeaders takes the client address from X-Forwarded-For / X-Real-IP (set it
	// only behind a reverse proxy that sets them). Default false: the TCP peer address.
	TrustProxyHeaders bool
}

// Defaults for the zero fields of Config.
const (
	DefaultMaxMessageBytes = 1 << 20
	DefaultRateLimit       = 50
	DefaultRateBurst       = 100
	DefaultFloodWindow     = 10 * time.Second
	DefaultPingInterval    = 5 * time.Second
	DefaultPingTimeout     = 15 * time.Second
	DefaultWriteQueue      = 256
	DefaultWriteTimeout    = 10 * time.Second
	DefaultJoinTimeout     = 15 * time.Second
	DefaultCloseGrace      = time.Second
	DefaultJoinRateLimit   = 10
	DefaultJoinRateBurst   = 100
)

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.RateBurst <= 0 {
		c.RateBurst = DefaultRateBurst
	}
	if c.FloodDrops <= 0 {
		c.FloodDrops = max(c.RateBurst, 10)
	}
	if c.FloodWindow <= 0 {
		c.FloodWindow = DefaultFloodWindow
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.WriteQueue <= 0 {
		c.WriteQueue = DefaultWriteQueue
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.JoinRateLimit == 0 {
		c.JoinRateLimit = DefaultJoinRateLimit
	}
	if c.JoinRateBurst <= 0 {
		c.JoinRateBurst = DefaultJoinRateBurst
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = DefaultCloseGrace
	}
	return c
}

// keepaliveInterval is how often the server sends websocket pings: often enough that a
// client answering them is never timed out.
func (c Config) keepaliveInterval() time.Duration {
	return max(min(c.PingInterval, c.PingTimeout/2), 10*time.Millisecond)
}
