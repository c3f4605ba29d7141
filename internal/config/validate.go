package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Validate checks the configuration and returns every problem found, joined, each naming its
// key. Outside dev mode it refuses the development key (devkey/secret) and any secret shorter
// than MinSecretLength characters.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if len(c.BindAddresses) == 0 {
		add("bind_addresses", "at least one address is required (:: listens on every address, IPv4 and IPv6)")
	}
	for _, a := range c.BindAddresses {
		if net.ParseIP(a) == nil {
			add("bind_addresses", "%q is not an IP address", a)
		}
	}
	checkPort := func(key string, port int, zeroOK bool) {
		if (port == 0 && !zeroOK) || port < 0 || port > 65535 {
			add(key, "%d is not a valid port (1-65535)", port)
		}
	}
	checkPort("port", c.Port, false)
	checkPort("rtc.udp_port", c.RTC.UDPPort, false)
	checkPort("rtc.tcp_port", c.RTC.TCPPort, true)
	if c.RTC.TCPPort != 0 && c.RTC.TCPPort == c.Port {
		add("rtc.tcp_port", "%d is already used by port (HTTP/websocket)", c.RTC.TCPPort)
	}
	if c.RTC.TCPPort != 0 {
		c.validateICETCP(add)
	}
	if _, err := parseNodeIPs(c.RTC.NodeIP); err != nil {
		add("rtc.node_ip", "%v", err)
	}
	for _, s := range c.RTC.STUNServers {
		if strings.TrimSpace(s) == "" {
			add("rtc.stun_servers", "empty entry")
		}
	}
	if c.TURN.Enabled {
		checkPort("turn.udp_port", c.TURN.UDPPort, true)
		checkPort("turn.tcp_port", c.TURN.TCPPort, true)
		checkPort("turn.tls_port", c.TURN.TLSPort, true)
		if c.TURN.UDPPort == 0 && c.TURN.TCPPort == 0 && c.TURN.TLSPort == 0 {
			add("turn", "enabled without a port: set udp_port, tcp_port or tls_port")
		}
		if c.TURN.TLSPort != 0 && (c.TURN.CertFile == "" || c.TURN.KeyFile == "") {
			add("turn.tls_port", "TURN/TLS needs turn.cert_file and turn.key_file (or tls_port: 0)")
		}
		for _, p := range []int{c.TURN.TCPPort, c.TURN.TLSPort} {
			if p != 0 && (p == c.Port || p == c.RTC.TCPPort) {
				add("turn", "port %d is already used by port or rtc.tcp_port", p)
			}
		}
		if c.TURN.TCPPort != 0 && c.TURN.TCPPort == c.TURN.TLSPort {
			add("turn.tls_port", "%d is already turn.tcp_port", c.TURN.TLSPort)
		}
		if c.TURN.UDPPort != 0 && c.TURN.UDPPort == c.RTC.UDPPort {
			add("turn.udp_port", "%d is already rtc.udp_port", c.TURN.UDPPort)
		}
		start, end := c.TURN.RelayPortRangeStart, c.TURN.RelayPortRangeEnd
		if (start != 0 || end != 0) && (start < 1024 || end > 65535 || end < start) {
			add("turn.relay_port_range_start", "relay ports %d-%d are not a range within 1024-65535 (both 0: any)", start, end)
		}
		c.validateTURNLimits(add)
	}
	if c.RTC.CaptureAudioDir != "" && !c.Dev {
		add("rtc.capture_audio_dir", "is a development aid: only in dev mode")
	}
	if c.RTC.PacketCacheSize <= 0 {
		add("rtc.packet_cache_size", "must be positive, got %d", c.RTC.PacketCacheSize)
	}

	c.validateKeys(add)

	checkDuration := func(key string, d time.Duration) {
		if d <= 0 {
			add(key, "must be a positive duration, got %s", d)
		}
	}
	checkDuration("rtc.pli_throttle", c.RTC.PLIThrottle)
	checkDuration("room.empty_timeout", c.Room.EmptyTimeout)
	checkDuration("room.departure_timeout", c.Room.DepartureTimeout)
	checkDuration("signal.ping_interval", c.Signal.PingInterval)
	checkDuration("signal.ping_timeout", c.Signal.PingTimeout)
	if c.Signal.PingInterval > 0 && c.Signal.PingTimeout > 0 && c.Signal.PingTimeout <= c.Signal.PingInterval {
		add("signal.ping_timeout", "%s must be longer than signal.ping_interval (%s)",
			c.Signal.PingTimeout, c.Signal.PingInterval)
	}

	if c.Room.MaxParticipants < 0 {
		add("room.max_participants", "must be 0 (unlimited) or positive, got %d", c.Room.MaxParticipants)
	}
	if c.Signal.MaxMessageBytes <= 0 {
		add("signal.max_message_bytes", "must be positive, got %d", c.Signal.MaxMessageBytes)
	}
	if c.Signal.RateLimit <= 0 {
		add("signal.rate_limit", "must be positive, got %g", c.Signal.RateLimit)
	}
	if c.Signal.RateBurst < 1 {
		add("signal.rate_burst", "must be at least 1, got %d", c.Signal.RateBurst)
	}
	if c.Signal.WriteQueue <= 0 {
		add("signal.write_queue", "must be positive, got %d", c.Signal.WriteQueue)
	}
	if c.Signal.JoinRateLimit == 0 {
		add("signal.join_rate_limit", "must be positive, or negative for no limit, got 0")
	}
	if c.Signal.JoinRateBurst < 1 {
		add("signal.join_rate_burst", "must be at least 1, got %d", c.Signal.JoinRateBurst)
	}
	for _, l := range []struct {
		key string
		v   int
	}{
		{"limit.max_room_name_length", c.Limit.MaxRoomNameLength},
		{"limit.max_participant_identity_length", c.Limit.MaxParticipantIdentityLength},
		{"limit.max_participant_name_length", c.Limit.MaxParticipantNameLength},
		{"limit.max_metadata_size", c.Limit.MaxMetadataSize},
		{"limit.max_attributes_size", c.Limit.MaxAttributesSize},
		{"limit.max_attributes", c.Limit.MaxAttributes},
		{"limit.max_tracks_per_participant", c.Limit.MaxTracksPerParticipant},
	} {
		if l.v <= 0 {
			add(l.key, "must be positive, got %d", l.v)
		}
	}

	if _, err := parseLevel(c.Log.Level); err != nil {
		add("log.level", "%v", err)
	}
	if !slices.Contains([]string{"text", "json"}, strings.ToLower(c.Log.Format)) {
		add("log.format", "%q is not text or json", c.Log.Format)
	}
	if c.DataDir == "" {
		add("data_dir", "must not be empty")
	}
	if c.Redis.DB < 0 {
		add("redis.db", "must not be negative, got %d", c.Redis.DB)
	}
	c.validateHTTP(add, checkDuration)
	return errors.Join(errs...)
}

// validateICETCP checks the bounds of the ICE-TCP listener.
func (c *Config) validateICETCP(add func(key, format string, args ...any)) {
	r := c.RTC
	if r.TCPMaxConns < 1 {
		add("rtc.tcp_max_conns", "must be at least 1, got %d", r.TCPMaxConns)
	}
	if r.TCPMaxConnsPerIP < 0 {
		add("rtc.tcp_max_conns_per_ip", "must be 0 (no per-address cap) or positive, got %d", r.TCPMaxConnsPerIP)
	}
	if r.TCPSetupTimeout <= 0 {
		add("rtc.tcp_setup_timeout", "must be a positive duration, got %s", r.TCPSetupTimeout)
	}
}

// validateTURNLimits checks the relay's secret, credential lifetime and bounds.
func (c *Config) validateTURNLimits(add func(key, format string, args ...any)) {
	t := c.TURN
	if t.Secret != "" && !c.Dev && len(t.Secret) < MinSecretLength {
		add("turn.secret", "secret is %d characters; at least %d are required outside dev mode "+
			"(generate one with `openssl rand -base64 32`), or leave it empty for a random one", len(t.Secret), MinSecretLength)
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"turn.credential_ttl", t.CredentialTTL}, {"turn.setup_timeout", t.SetupTimeout}} {
		if d.d <= 0 {
			add(d.key, "must be a positive duration, got %s", d.d)
		}
	}
	for _, n := range []struct {
		key string
		n   int
	}{
		{"turn.max_allocations", t.MaxAllocations},
		{"turn.max_allocations_per_participant", t.MaxAllocationsPerParticipant},
		{"turn.max_allocations_per_address", t.MaxAllocationsPerAddress},
		{"turn.max_connections", t.MaxConnections},
		{"turn.max_connections_per_address", t.MaxConnectionsPerAddress},
	} {
		if n.n <= 0 {
			add(n.key, "must be positive, got %d", n.n)
		}
	}
}

// minMetricsToken is the shortest metrics.bearer_token accepted.
const minMetricsToken = 16

// validateHTTP checks the http and metrics sections. Messages never contain the token.
func (c *Config) validateHTTP(add func(key, format string, args ...any), checkDuration func(string, time.Duration)) {
	h := c.HTTP
	checkDuration("http.read_header_timeout", h.ReadHeaderTimeout)
	checkDuration("http.read_timeout", h.ReadTimeout)
	checkDuration("http.write_timeout", h.WriteTimeout)
	checkDuration("http.idle_timeout", h.IdleTimeout)
	if h.MaxHeaderBytes < 4096 {
		add("http.max_header_bytes", "must be at least 4096, got %d", h.MaxHeaderBytes)
	}
	if h.MaxConns < 1 {
		add("http.max_conns", "must be at least 1, got %d", h.MaxConns)
	}
	if h.MaxConnsPerIP < 0 {
		add("http.max_conns_per_ip", "must be 0 (no per-address cap) or positive, got %d", h.MaxConnsPerIP)
	}
	if t := c.Metrics.BearerToken; t != "" && (len(t) < minMetricsToken || strings.IndexFunc(t, unicode.IsSpace) >= 0) {
		add("metrics.bearer_token", "must be at least %d characters without spaces (generate one with `openssl rand -hex 24`)", minMetricsToken)
	}
	for _, p := range c.Metrics.AllowedCIDRs {
		if _, err := ParseCIDR(p); err != nil {
			add("metrics.allowed_cidrs", "%v", err)
		}
	}
}

// ParseCIDR reads a network such as "10.0.0.0/8" or "fd00::/8"; a bare address is a network
// of that one address.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not an IP network (10.0.0.0/8) or address", s)
}

// validateKeys checks the API keys. Messages never contain secrets.
func (c *Config) validateKeys(add func(key, format string, args ...any)) {
	if len(c.Keys) == 0 {
		add("keys", "at least one API key is required (e.g. SANKE_KEYS=\"mykey: <secret>\"; "+
			"generate a secret with `openssl rand -base64 32`), or use --dev for local development")
		return
	}
	names := make([]string, 0, len(c.Keys))
	for k := range c.Keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, key := range names {
		secret := c.Keys[key]
		switch {
		case key == "" || strings.IndexFunc(key, unicode.IsSpace) >= 0:
			add("keys", "API key %q must be non-empty and contain no spaces", key)
		case secret == "":
			add("keys."+key, "secret is empty")
		case c.Dev:
			// Any non-empty secret is fine for local development.
		case key == DevAPIKey && secret == DevAPISecret:
			add("keys."+key, "the development key %s/%s is public; it is only allowed with --dev "+
				"(dev: true). Configure your own key and a random secret", DevAPIKey, DevAPISecret)
		case len(secret) < MinSecretLength:
			add("keys."+key, "secret is %d characters; at least %d are required outside dev mode "+
				"(generate one with `openssl rand -base64 32`)", len(secret), MinSecretLength)
		}
	}
}

// LogValue implements slog.LogValuer: a summary of the configuration for the startup log. It
// lists API key names but never secrets or passwords.
func (c *Config) LogValue() slog.Value {
	names := make([]string, 0, len(c.Keys))
	for k := range c.Keys {
		names = append(names, k)
	}
	slices.Sort(names)
	return slog.GroupValue(
		slog.Bool("dev", c.Dev),
		slog.Any("bind_addresses", c.BindAddresses),
		slog.Int("port", c.Port),
		slog.Int("rtc.udp_port", c.RTC.UDPPort),
		slog.Int("rtc.tcp_port", c.RTC.TCPPort),
		slog.String("rtc.node_ip", c.RTC.NodeIP),
		slog.Bool("rtc.include_loopback", c.RTC.IncludeLoopback),
		slog.Any("api_keys", names),
		slog.Bool("room.auto_create", c.Room.AutoCreate),
		slog.Int("room.max_participants", c.Room.MaxParticipants),
		slog.String("data_dir", c.DataDir),
		slog.String("log.level", c.Log.Level),
		slog.Bool("redis", c.Redis.Address != ""),
	)
}

// NodeIPs returns rtc.node_ip's addresses: none, one, or one IPv4 and one IPv6 address.
// Validate has checked them; an invalid value gives none.
func (r *RTCConfig) NodeIPs() []string {
	ips, err := parseNodeIPs(r.NodeIP)
	if err != nil {
		return nil
	}
	return ips
}

// parseNodeIPs parses rtc.node_ip: empty, an IP address, or an IPv4 and an IPv6 address
// separated by a comma (LiveKit's "v4,v6").
func parseNodeIPs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ips []string
	var v4, v6 bool
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		ip := net.ParseIP(a)
		switch {
		case ip == nil:
			return nil, fmt.Errorf("%q is not an IP address", a)
		case ip.IsUnspecified():
			return nil, fmt.Errorf("%q is not an address clients can reach", a)
		case ip.To4() != nil && v4, ip.To4() == nil && v6:
			return nil, fmt.Errorf("%q: at most one IPv4 and one IPv6 address", s)
		case ip.To4() != nil:
			v4 = true
		default:
			v6 = true
		}
		ips = append(ips, ip.String())
	}
	return ips, nil
}
