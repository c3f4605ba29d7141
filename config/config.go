// Package config defines Sanke's configuration: its structure, defaults, loading from a YAML
// file overridden by environment variables and flags, and validation.
package config

import "time"

// Development-mode credentials. They are public knowledge, so Validate refuses them outside dev
// mode.
const (
	// DevAPIKey is the API key used in dev mode when no keys are configured.
	DevAPIKey = "devkey"
	// DevAPISecret is the secret of DevAPIKey.
	DevAPISecret = "secret"
)

// MinSecretLength is the shortest API secret accepted outside dev mode. 32 characters of
// random base64 carry enough entropy for the HMAC-SHA256 that signs LiveKit tokens.
const MinSecretLength = 32

// Config is the whole server configuration. The YAML keys are documented in configs/sanke.yaml.
type Config struct {
	// Dev enables development mode: 127.0.0.1 bindings, API key "devkey" / secret "secret",
	// loopback ICE candidates, no Redis, data under ./data.
	Dev bool `koanf:"dev"`
	// BindAddresses are the IP addresses the HTTP/websocket server listens on.
	BindAddresses []string `koanf:"bind_addresses"`
	// Port is the HTTP/websocket port (signaling, Room API, web client).
	Port int `koanf:"port"`
	// Keys maps API keys to their secrets.
	Keys map[string]string `koanf:"keys"`
	// DataDir is where local state (recordings, databases) lives.
	DataDir string `koanf:"data_dir"`

	RTC    RTCConfig    `koanf:"rtc"`
	Room   RoomConfig   `koanf:"room"`
	Signal SignalConfig `koanf:"signal"`
	Log    LogConfig    `koanf:"log"`
	Redis  RedisConfig  `koanf:"redis"`
}

// RTCConfig configures the WebRTC media plane.
type RTCConfig struct {
	// UDPPort is the single UDP port all peers share (ICE UDP mux).
	UDPPort int `koanf:"udp_port"`
	// TCPPort is the ICE-TCP port for clients whose firewalls block UDP; 0 disables it.
	TCPPort int `koanf:"tcp_port"`
	// NodeIP is the IP address advertised in ICE candidates; empty means the interface addresses.
	NodeIP string `koanf:"node_ip"`
	// IncludeLoopback advertises loopback candidates (on in dev mode, for same-host clients).
	IncludeLoopback bool `koanf:"include_loopback"`
	// STUNServers and TURNServers are handed to clients in the join response (URLs).
	STUNServers []string `koanf:"stun_servers"`
	// PLIThrottle is the minimum interval between keyframe requests sent to one publisher layer.
	PLIThrottle time.Duration `koanf:"pli_throttle"`
	// PacketCacheSize is how many packets per received layer are kept to answer NACKs.
	PacketCacheSize int `koanf:"packet_cache_size"`
}

// RoomConfig configures room lifecycle.
type RoomConfig struct {
	// AutoCreate creates a room when the first participant joins it.
	AutoCreate bool `koanf:"auto_create"`
	// EmptyTimeout closes a room that nobody has joined for this long after creation.
	EmptyTimeout time.Duration `koanf:"empty_timeout"`
	// DepartureTimeout closes a room this long after its last participant left.
	DepartureTimeout time.Duration `koanf:"departure_timeout"`
	// MaxParticipants caps each room's participants; 0 means unlimited.
	MaxParticipants int `koanf:"max_participants"`
}

// SignalConfig configures the websocket signaling endpoint.
type SignalConfig struct {
	// MaxMessageBytes is the largest signal message accepted from a client.
	MaxMessageBytes int `koanf:"max_message_bytes"`
	// RateLimit is the sustained number of messages per second accepted from one client.
	RateLimit float64 `koanf:"rate_limit"`
	// RateBurst is the burst of messages allowed above RateLimit.
	RateBurst int `koanf:"rate_burst"`
	// PingInterval is how often clients ping the server; sent to them in the join response.
	PingInterval time.Duration `koanf:"ping_interval"`
	// PingTimeout is how long without a ping before a connection is considered dead; sent to
	// clients in the join response. It must exceed PingInterval.
	PingTimeout time.Duration `koanf:"ping_timeout"`
	// WriteQueue is the number of outgoing messages buffered per client before it is dropped.
	WriteQueue int `koanf:"write_queue"`
}

// LogConfig configures structured logging.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `koanf:"level"`
	// Format is "text" or "json".
	Format string `koanf:"format"`
}

// RedisConfig configures the optional Redis used for multi-node state. Empty Address: none.
type RedisConfig struct {
	// Address is host:port of the Redis server.
	Address string `koanf:"address"`
	// Username is the Redis ACL user name; empty for none.
	Username string `koanf:"username"`
	// Password is the Redis password; empty for none.
	Password string `koanf:"password"`
	// DB is the Redis database number.
	DB int `koanf:"db"`
}

// Default returns the production defaults. It has no API keys: a production server must be
// given at least one (see Validate).
func Default() *Config {
	return &Config{
		BindAddresses: []string{"0.0.0.0"},
		Port:          7880,
		DataDir:       "./data",
		RTC: RTCConfig{
			UDPPort:         7882,
			TCPPort:         7881,
			STUNServers:     []string{},
			PLIThrottle:     500 * time.Millisecond,
			PacketCacheSize: 512,
		},
		Room: RoomConfig{
			AutoCreate:       true,
			EmptyTimeout:     5 * time.Minute,
			DepartureTimeout: 20 * time.Second,
		},
		Signal: SignalConfig{
			MaxMessageBytes: 1 << 20,
			RateLimit:       50,
			RateBurst:       100,
			PingInterval:    5 * time.Second,
			PingTimeout:     15 * time.Second,
			WriteQueue:      256,
		},
		Log: LogConfig{
			Level:  "info",
			Format: "text",
		},
	}
}

// DevDefault returns the defaults used in dev mode: Default with Dev set, listening on
// 127.0.0.1 only, the key DevAPIKey/DevAPISecret, loopback ICE candidates and data under
// ./data. Anything set explicitly (file, environment, flags) still overrides these.
func DevDefault() *Config {
	c := Default()
	c.Dev = true
	c.BindAddresses = []string{"127.0.0.1"}
	c.Keys = map[string]string{DevAPIKey: DevAPISecret}
	c.RTC.IncludeLoopback = true
	c.DataDir = "./data"
	return c
}
