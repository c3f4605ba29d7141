package config

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodSecret = "0123456789abcdef0123456789abcdef" // 32 characters

// writeFile writes a config file into a temporary directory and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sanke.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parsedFlags returns a flag set prepared with AddFlags and parsed from args.
func parsedFlags(t *testing.T, args ...string) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	AddFlags(fs)
	fs.String("config", "", "not a config key")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"dev", c.Dev, false},
		{"bind_addresses", c.BindAddresses, []string{"::"}},
		{"port", c.Port, 7880},
		{"keys", len(c.Keys), 0},
		{"data_dir", c.DataDir, "./data"},
		{"rtc.udp_port", c.RTC.UDPPort, 7882},
		{"rtc.tcp_port", c.RTC.TCPPort, 7881},
		{"rtc.tcp_max_conns", c.RTC.TCPMaxConns, 8192},
		{"rtc.tcp_max_conns_per_ip", c.RTC.TCPMaxConnsPerIP, 1024},
		{"rtc.tcp_setup_timeout", c.RTC.TCPSetupTimeout, 10 * time.Second},
		{"rtc.node_ip", c.RTC.NodeIP, ""},
		{"rtc.include_loopback", c.RTC.IncludeLoopback, false},
		{"rtc.stun_servers", len(c.RTC.STUNServers), 0},
		{"rtc.pli_throttle", c.RTC.PLIThrottle, 500 * time.Millisecond},
		{"rtc.packet_cache_size", c.RTC.PacketCacheSize, 512},
		{"room.auto_create", c.Room.AutoCreate, true},
		{"room.empty_timeout", c.Room.EmptyTimeout, 5 * time.Minute},
		{"room.departure_timeout", c.Room.DepartureTimeout, 20 * time.Second},
		{"room.max_participants", c.Room.MaxParticipants, 0},
		{"room.sync_streams", c.Room.SyncStreams, true},
		{"signal.max_message_bytes", c.Signal.MaxMessageBytes, 1048576},
		{"signal.rate_limit", c.Signal.RateLimit, 50.0},
		{"signal.rate_burst", c.Signal.RateBurst, 100},
		{"signal.ping_interval", c.Signal.PingInterval, 5 * time.Second},
		{"signal.ping_timeout", c.Signal.PingTimeout, 15 * time.Second},
		{"signal.write_queue", c.Signal.WriteQueue, 256},
		{"signal.join_rate_limit", c.Signal.JoinRateLimit, 10.0},
		{"signal.join_rate_burst", c.Signal.JoinRateBurst, 100},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadWithoutSourcesIsDefault(t *testing.T) {
	c, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertEqualConfig(t, c, Default())
}

func TestLoadPrecedence(t *testing.T) {
	const file = "port: 1001\nrtc:\n  udp_port: 1002\nlog:\n  level: debug\n"
	tests := []struct {
		name      string
		file      bool
		env       []string
		flags     []string
		wantPort  int
		wantUDP   int
		wantLevel string
	}{
		{name: "defaults", wantPort: 7880, wantUDP: 7882, wantLevel: "info"},
		{name: "file over defaults", file: true, wantPort: 1001, wantUDP: 1002, wantLevel: "debug"},
		{
			name: "env over file", file: true,
			env:      []string{"SANKE_PORT=2001", "SANKE_LOG_LEVEL=warn"},
			wantPort: 2001, wantUDP: 1002, wantLevel: "warn",
		},
		{
			name: "flags over env", file: true,
			env:      []string{"SANKE_PORT=2001", "SANKE_RTC_UDP_PORT=2002"},
			flags:    []string{"--port", "3001"},
			wantPort: 3001, wantUDP: 2002, wantLevel: "debug",
		},
		{
			name:     "flags over file without env",
			file:     true,
			flags:    []string{"--udp-port=3002", "--log-level", "error"},
			wantPort: 1001, wantUDP: 3002, wantLevel: "error",
		},
		{
			name:     "empty env variable is unset",
			file:     true,
			env:      []string{"SANKE_PORT="},
			wantPort: 1001, wantUDP: 1002, wantLevel: "debug",
		},
		{
			name:     "unrelated and unknown variables are ignored",
			env:      []string{"HOME=/root", "SANKE_SERVICE_HOST=10.0.0.1", "SANKE_PORTX=1"},
			wantPort: 7880, wantUDP: 7882, wantLevel: "info",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Env: tt.env, Flags: parsedFlags(t, tt.flags...)}
			if tt.file {
				opts.File = writeFile(t, file)
			}
			c, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Port != tt.wantPort || c.RTC.UDPPort != tt.wantUDP || c.Log.Level != tt.wantLevel {
				t.Errorf("port=%d udp_port=%d level=%s, want %d %d %s",
					c.Port, c.RTC.UDPPort, c.Log.Level, tt.wantPort, tt.wantUDP, tt.wantLevel)
			}
			// Untouched keys keep their defaults.
			if c.RTC.TCPPort != 7881 || c.Room.EmptyTimeout != 5*time.Minute {
				t.Errorf("defaults lost: tcp_port=%d empty_timeout=%s", c.RTC.TCPPort, c.Room.EmptyTimeout)
			}
		})
	}
}

func TestLoadKeysAndListsReplace(t *testing.T) {
	path := writeFile(t, "keys:\n  filekey: "+goodSecret+"\nbind_addresses: [10.0.0.1, 10.0.0.2]\n")
	tests := []struct {
		name     string
		env      []string
		flags    []string
		wantKeys map[string]string
		wantBind []string
	}{
		{
			name:     "file only",
			wantKeys: map[string]string{"filekey": goodSecret},
			wantBind: []string{"10.0.0.1", "10.0.0.2"},
		},
		{
			name:     "env replaces",
			env:      []string{"SANKE_KEYS=envkey: " + goodSecret + ", other: " + goodSecret, "SANKE_BIND_ADDRESSES=10.0.0.3"},
			wantKeys: map[string]string{"envkey": goodSecret, "other": goodSecret},
			wantBind: []string{"10.0.0.3"},
		},
		{
			name:     "flags replace env",
			env:      []string{"SANKE_KEYS=envkey: " + goodSecret},
			flags:    []string{"--keys", "flagkey: " + goodSecret, "--bind", "127.0.0.1, ::1"},
			wantKeys: map[string]string{"flagkey": goodSecret},
			wantBind: []string{"127.0.0.1", "::1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(LoadOptions{File: path, Env: tt.env, Flags: parsedFlags(t, tt.flags...)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Keys, tt.wantKeys) {
				t.Errorf("keys = %v, want %v", c.Keys, tt.wantKeys)
			}
			if !reflect.DeepEqual(c.BindAddresses, tt.wantBind) {
				t.Errorf("bind_addresses = %v, want %v", c.BindAddresses, tt.wantBind)
			}
		})
	}
}

func TestLoadEnvValues(t *testing.T) {
	c, err := Load(LoadOptions{Env: []string{
		"SANKE_RTC_NODE_IP=203.0.113.7",
		"SANKE_RTC_INCLUDE_LOOPBACK=true",
		"SANKE_RTC_STUN_SERVERS=stun.l.google.com:19302, stun1.l.google.com:19302",
		"SANKE_RTC_PLI_THROTTLE=250ms",
		"SANKE_ROOM_AUTO_CREATE=false",
		"SANKE_ROOM_EMPTY_TIMEOUT=1h",
		"SANKE_ROOM_MAX_PARTICIPANTS=300",
		"SANKE_ROOM_SYNC_STREAMS=false",
		"SANKE_SIGNAL_RATE_LIMIT=12.5",
		"SANKE_DATA_DIR=/var/lib/sanke",
		"SANKE_REDIS_DB=3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.RTC.NodeIP = "203.0.113.7"
	want.RTC.IncludeLoopback = true
	want.RTC.STUNServers = []string{"stun.l.google.com:19302", "stun1.l.google.com:19302"}
	want.RTC.PLIThrottle = 250 * time.Millisecond
	want.Room.AutoCreate = false
	want.Room.EmptyTimeout = time.Hour
	want.Room.MaxParticipants = 300
	want.Room.SyncStreams = false
	want.Signal.RateLimit = 12.5
	want.DataDir = "/var/lib/sanke"
	want.Redis.DB = 3
	assertEqualConfig(t, c, want)
}

func TestLoadDev(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		env       []string
		flags     []string
		wantBind  []string
		wantKeys  map[string]string
		wantLoop  bool
		wantDev   bool
		wantValid bool
	}{
		{
			name:     "production",
			wantBind: []string{"::"},
			wantDev:  false,
		},
		{
			name:      "dev flag",
			flags:     []string{"--dev"},
			wantBind:  []string{"127.0.0.1"},
			wantKeys:  map[string]string{DevAPIKey: DevAPISecret},
			wantLoop:  true,
			wantDev:   true,
			wantValid: true,
		},
		{
			name:      "dev in file",
			file:      "dev: true\n",
			wantBind:  []string{"127.0.0.1"},
			wantKeys:  map[string]string{DevAPIKey: DevAPISecret},
			wantLoop:  true,
			wantDev:   true,
			wantValid: true,
		},
		{
			name:      "dev in env",
			env:       []string{"SANKE_DEV=true"},
			wantBind:  []string{"127.0.0.1"},
			wantKeys:  map[string]string{DevAPIKey: DevAPISecret},
			wantLoop:  true,
			wantDev:   true,
			wantValid: true,
		},
		{
			name:      "explicit settings beat dev defaults",
			file:      "dev: true\nbind_addresses: [0.0.0.0]\nrtc:\n  include_loopback: false\n",
			env:       []string{"SANKE_KEYS=mine: short"},
			wantBind:  []string{"0.0.0.0"},
			wantKeys:  map[string]string{"mine": "short"},
			wantDev:   true,
			wantValid: true,
		},
		{
			name:      "an explicit bind flag is honored in dev mode",
			flags:     []string{"--dev", "--bind", "0.0.0.0"},
			wantBind:  []string{"0.0.0.0"},
			wantKeys:  map[string]string{DevAPIKey: DevAPISecret},
			wantLoop:  true,
			wantDev:   true,
			wantValid: true,
		},
		{
			name:     "flag turns dev off",
			file:     "dev: true\n",
			flags:    []string{"--dev=false"},
			wantBind: []string{"::"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Env: tt.env, Flags: parsedFlags(t, tt.flags...)}
			if tt.file != "" {
				opts.File = writeFile(t, tt.file)
			}
			c, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Dev != tt.wantDev {
				t.Errorf("dev = %v, want %v", c.Dev, tt.wantDev)
			}
			if !reflect.DeepEqual(c.BindAddresses, tt.wantBind) {
				t.Errorf("bind_addresses = %v, want %v", c.BindAddresses, tt.wantBind)
			}
			if len(c.Keys) != 0 || len(tt.wantKeys) != 0 {
				if !reflect.DeepEqual(c.Keys, tt.wantKeys) {
					t.Errorf("keys = %v, want %v", c.Keys, tt.wantKeys)
				}
			}
			if c.RTC.IncludeLoopback != tt.wantLoop {
				t.Errorf("include_loopback = %v, want %v", c.RTC.IncludeLoopback, tt.wantLoop)
			}
			if c.DataDir != "./data" {
				t.Errorf("data_dir = %q, want ./data", c.DataDir)
			}
			if err := c.Validate(); (err == nil) != tt.wantValid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.wantValid)
			}
		})
	}
}

func TestLoadNullValuesKeepDefaults(t *testing.T) {
	path := writeFile(t, "# everything commented out\nport:\nrtc:\n  # udp_port: 9\nroom:\nkeys:\n")
	c, err := Load(LoadOptions{File: path})
	if err != nil {
		t.Fatal(err)
	}
	assertEqualConfig(t, c, Default())
}

func TestLoadConfigFileFromEnv(t *testing.T) {
	path := writeFile(t, "port: 4242\n")
	c, err := Load(LoadOptions{Env: []string{EnvConfigFile + "=" + path}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 4242 {
		t.Errorf("port = %d, want 4242 from %s", c.Port, EnvConfigFile)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		file  string // written to a temp file when non-empty
		path  string // used as-is when non-empty
		env   []string
		flags []string
		want  []string // substrings of the error
	}{
		{name: "missing file", path: "/nonexistent/sanke.yaml", want: []string{"config file", "nonexistent"}},
		{name: "invalid yaml", file: "port: [\n", want: []string{"config file"}},
		{name: "unknown keys", file: "prot: 1\nroom:\n  max_participant: 3\n", want: []string{"unknown keys", "prot", "room.max_participant"}},
		{name: "wrong type in file", file: "port: seven\n", want: []string{"config file", `port: "seven" is not an integer`}},
		{name: "bare number duration", file: "room:\n  empty_timeout: 300\n", want: []string{"room.empty_timeout", "300 has no unit"}},
		{name: "wrong type in env", env: []string{"SANKE_RTC_UDP_PORT=abc"}, want: []string{"environment", "SANKE_RTC_UDP_PORT", `"abc" is not an integer`}},
		{name: "bad duration in env", env: []string{"SANKE_SIGNAL_PING_TIMEOUT=soon"}, want: []string{"environment", "SANKE_SIGNAL_PING_TIMEOUT", `"soon" is not a duration`}},
		{name: "bad bool in env", env: []string{"SANKE_DEV=yes please"}, want: []string{"SANKE_DEV", "true or false"}},
		{name: "kubernetes service link", env: []string{"SANKE_PORT=tcp://10.0.0.1:7880"}, want: []string{"SANKE_PORT", "enableServiceLinks"}},
		{name: "bad keys in env", env: []string{"SANKE_KEYS=justakey"}, want: []string{"SANKE_KEYS", "key: secret"}},
		{name: "bad keys flag", flags: []string{"--keys", "k1: s1, k1: s2"}, want: []string{"--keys", "twice"}},
		{name: "section is not a map", file: "rtc: 5\n", want: []string{"config file", "rtc"}},
		{name: "secret is not shown", file: "keys:\n  k: [topsecret]\n", want: []string{"config file", "keys.k"}},
		{name: "numeric secret", file: "keys:\n  k: 12345678901234567890123456789012345\n", want: []string{"keys.k", "quote it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{File: tt.path, Env: tt.env, Flags: parsedFlags(t, tt.flags...)}
			if tt.file != "" {
				opts.File = writeFile(t, tt.file)
			}
			_, err := Load(opts)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("error %q leaks a secret", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "", want: map[string]string{}},
		{in: "k: s", want: map[string]string{"k": "s"}},
		{in: "k1: s1, k2: s2", want: map[string]string{"k1": "s1", "k2": "s2"}},
		{in: "k1:s1,k2:s2,", want: map[string]string{"k1": "s1", "k2": "s2"}},
		{in: "k1: s1\nk2: s2\n", want: map[string]string{"k1": "s1", "k2": "s2"}},
		{in: "k: a:b=", want: map[string]string{"k": "a:b="}},
		{in: "k1 s1", wantErr: "entry 1"},
		{in: ": s1", wantErr: "empty key"},
		{in: "k:", wantErr: "empty secret"},
		{in: "k: a, k: b", wantErr: "twice"},
	}
	for _, tt := range tests {
		got, err := ParseKeys(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseKeys(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseKeys(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseKeysHidesSecrets(t *testing.T) {
	_, err := ParseKeys("k: topsecret, k: topsecret")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %v must exist and not contain the secret", err)
	}
}

func TestEnvNames(t *testing.T) {
	table := keyTable()
	seen := make(map[string]string)
	for path, info := range table {
		if other, dup := seen[info.env]; dup {
			t.Errorf("%s and %s share environment variable %s", path, other, info.env)
		}
		seen[info.env] = path
		if info.env == EnvConfigFile {
			t.Errorf("key %s collides with %s", path, EnvConfigFile)
		}
	}
	for path, env := range map[string]string{
		"port":               "SANKE_PORT",
		"keys":               "SANKE_KEYS",
		"bind_addresses":     "SANKE_BIND_ADDRESSES",
		"rtc.udp_port":       "SANKE_RTC_UDP_PORT",
		"room.empty_timeout": "SANKE_ROOM_EMPTY_TIMEOUT",
		"log.level":          "SANKE_LOG_LEVEL",
	} {
		if table[path].env != env {
			t.Errorf("env for %s = %q, want %q", path, table[path].env, env)
		}
	}
}

func TestAddFlagsCoversKnownKeys(t *testing.T) {
	table := keyTable()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	AddFlags(fs)
	for _, spec := range flagSpecs() {
		if _, ok := table[spec.key]; !ok {
			t.Errorf("flag --%s maps to unknown key %s", spec.name, spec.key)
		}
		f := fs.Lookup(spec.name)
		if f == nil {
			t.Errorf("flag --%s not defined", spec.name)
			continue
		}
		if !strings.Contains(f.Usage, table[spec.key].env) {
			t.Errorf("usage of --%s does not name %s: %q", spec.name, table[spec.key].env, f.Usage)
		}
	}
	if u := fs.Lookup("port").Usage; !strings.Contains(u, "default 7880") {
		t.Errorf("usage of --port does not show its default: %q", u)
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Config {
		c := Default()
		c.Keys = map[string]string{"APIkey": goodSecret}
		return c
	}
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // substrings; empty means valid
	}{
		{name: "valid", modify: func(*Config) {}},
		{name: "valid dev default", modify: func(c *Config) { *c = *DevDefault() }},
		{name: "no keys", modify: func(c *Config) { c.Keys = nil }, want: []string{"keys", "at least one"}},
		{
			name:   "dev key outside dev",
			modify: func(c *Config) { c.Keys = map[string]string{DevAPIKey: DevAPISecret} },
			want:   []string{"keys.devkey", "--dev"},
		},
		{
			name:   "short secret",
			modify: func(c *Config) { c.Keys = map[string]string{"k": "tooshort"} },
			want:   []string{"keys.k", "8 characters", "at least 32"},
		},
		{
			name:   "short secret fine in dev",
			modify: func(c *Config) { c.Dev = true; c.Keys = map[string]string{"k": "tooshort"} },
		},
		{
			name:   "empty secret even in dev",
			modify: func(c *Config) { c.Dev = true; c.Keys = map[string]string{"k": ""} },
			want:   []string{"keys.k", "empty"},
		},
		{name: "key with space", modify: func(c *Config) { c.Keys = map[string]string{"a b": goodSecret} }, want: []string{"keys", "no spaces"}},
		{name: "port zero", modify: func(c *Config) { c.Port = 0 }, want: []string{"port: 0"}},
		{name: "port too big", modify: func(c *Config) { c.Port = 70000 }, want: []string{"port: 70000"}},
		{name: "udp port negative", modify: func(c *Config) { c.RTC.UDPPort = -1 }, want: []string{"rtc.udp_port"}},
		{name: "tcp port zero disables", modify: func(c *Config) { c.RTC.TCPPort = 0 }},
		{name: "ice-tcp bounds not positive", modify: func(c *Config) { c.RTC.TCPMaxConns, c.RTC.TCPMaxConnsPerIP, c.RTC.TCPSetupTimeout = 0, -1, 0 },
			want: []string{"rtc.tcp_max_conns:", "rtc.tcp_max_conns_per_ip", "rtc.tcp_setup_timeout"}},
		{name: "ice-tcp without a per-address cap", modify: func(c *Config) { c.RTC.TCPMaxConnsPerIP = 0 }},
		{name: "ice-tcp bounds unused when disabled", modify: func(c *Config) { c.RTC.TCPPort, c.RTC.TCPMaxConns = 0, 0 }},
		{name: "tcp port clashes with port", modify: func(c *Config) { c.RTC.TCPPort = c.Port }, want: []string{"rtc.tcp_port", "already used"}},
		{name: "no bind address", modify: func(c *Config) { c.BindAddresses = nil }, want: []string{"bind_addresses", "at least one"}},
		{name: "bad bind address", modify: func(c *Config) { c.BindAddresses = []string{"localhost"} }, want: []string{"bind_addresses", "localhost"}},
		{name: "bad node ip", modify: func(c *Config) { c.RTC.NodeIP = "my.host" }, want: []string{"rtc.node_ip"}},
		{name: "node ip per family", modify: func(c *Config) { c.RTC.NodeIP = "203.0.113.9, 2001:db8::9" }},
		{name: "node ip ipv6", modify: func(c *Config) { c.RTC.NodeIP = "2001:db8::9" }},
		{name: "two ipv4 node ips", modify: func(c *Config) { c.RTC.NodeIP = "203.0.113.9,203.0.113.10" },
			want: []string{"rtc.node_ip", "at most one IPv4 and one IPv6"}},
		{name: "unspecified node ip", modify: func(c *Config) { c.RTC.NodeIP = "::" }, want: []string{"rtc.node_ip", "reach"}},
		{name: "zero pli throttle", modify: func(c *Config) { c.RTC.PLIThrottle = 0 }, want: []string{"rtc.pli_throttle", "positive"}},
		{name: "negative empty timeout", modify: func(c *Config) { c.Room.EmptyTimeout = -time.Second }, want: []string{"room.empty_timeout"}},
		{name: "zero departure timeout", modify: func(c *Config) { c.Room.DepartureTimeout = 0 }, want: []string{"room.departure_timeout"}},
		{name: "zero ping interval", modify: func(c *Config) { c.Signal.PingInterval = 0 }, want: []string{"signal.ping_interval"}},
		{name: "ping timeout below interval", modify: func(c *Config) { c.Signal.PingTimeout = c.Signal.PingInterval }, want: []string{"signal.ping_timeout", "longer"}},
		{name: "negative max participants", modify: func(c *Config) { c.Room.MaxParticipants = -1 }, want: []string{"room.max_participants"}},
		{name: "zero message size", modify: func(c *Config) { c.Signal.MaxMessageBytes = 0 }, want: []string{"signal.max_message_bytes"}},
		{name: "zero rate", modify: func(c *Config) { c.Signal.RateLimit = 0 }, want: []string{"signal.rate_limit"}},
		{name: "zero join rate", modify: func(c *Config) { c.Signal.JoinRateLimit = 0 }, want: []string{"signal.join_rate_limit"}},
		{name: "zero join burst", modify: func(c *Config) { c.Signal.JoinRateBurst = 0 }, want: []string{"signal.join_rate_burst"}},
		{name: "zero burst", modify: func(c *Config) { c.Signal.RateBurst = 0 }, want: []string{"signal.rate_burst"}},
		{name: "zero write queue", modify: func(c *Config) { c.Signal.WriteQueue = 0 }, want: []string{"signal.write_queue"}},
		{name: "zero packet cache", modify: func(c *Config) { c.RTC.PacketCacheSize = 0 }, want: []string{"rtc.packet_cache_size"}},
		{name: "bad log level", modify: func(c *Config) { c.Log.Level = "verbose" }, want: []string{"log.level", "verbose"}},
		{name: "upper-case log level", modify: func(c *Config) { c.Log.Level = "DEBUG" }},
		{name: "bad log format", modify: func(c *Config) { c.Log.Format = "xml" }, want: []string{"log.format", "xml"}},
		{name: "empty data dir", modify: func(c *Config) { c.DataDir = "" }, want: []string{"data_dir"}},
		{name: "turn off: its ports unchecked", modify: func(c *Config) { c.TURN.TLSPort = c.Port }},
		{name: "turn without tls", modify: func(c *Config) { c.TURN.Enabled = true; c.TURN.TLSPort = 0 }},
		{name: "turn tls without certificate", modify: func(c *Config) { c.TURN.Enabled = true }, want: []string{"turn.tls_port", "cert_file"}},
		{
			name: "turn tls with certificate",
			modify: func(c *Config) {
				c.TURN.Enabled, c.TURN.CertFile, c.TURN.KeyFile = true, "/etc/sanke/turn.pem", "/etc/sanke/turn.key"
			},
		},
		{
			name:   "turn without ports",
			modify: func(c *Config) { c.TURN = TURNConfig{Enabled: true} },
			want:   []string{"turn: enabled without a port"},
		},
		{
			name:   "turn port clashes",
			modify: func(c *Config) { c.TURN.Enabled, c.TURN.TLSPort, c.TURN.UDPPort = true, c.Port, c.RTC.UDPPort },
			want:   []string{"already used by port", "turn.udp_port"},
		},
		{
			name:   "turn relay range reversed",
			modify: func(c *Config) { c.TURN.Enabled, c.TURN.TLSPort, c.TURN.RelayPortRangeEnd = true, 0, 100 },
			want:   []string{"turn.relay_port_range_start"},
		},
		{
			name:   "turn secret too short",
			modify: func(c *Config) { c.TURN.Enabled, c.TURN.TLSPort, c.TURN.Secret = true, 0, "short" },
			want:   []string{"turn.secret"},
		},
		{
			name: "turn limits not positive",
			modify: func(c *Config) {
				c.TURN.Enabled, c.TURN.TLSPort, c.TURN.MaxAllocationsPerParticipant, c.TURN.SetupTimeout = true, 0, 0, 0
			},
			want: []string{"turn.max_allocations_per_participant", "turn.setup_timeout"},
		},
		{
			name:   "all problems reported",
			modify: func(c *Config) { c.Port = 0; c.Keys = nil; c.Log.Format = "xml" },
			want:   []string{"port", "keys", "log.format"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range c.Keys {
				if secret != DevAPISecret && len(secret) > 3 && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks a secret", err)
				}
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		cfg       LogConfig
		wantErr   bool
		wantDebug bool
		wantJSON  bool
	}{
		{cfg: LogConfig{Level: "info", Format: "text"}},
		{cfg: LogConfig{Level: "debug", Format: "json"}, wantDebug: true, wantJSON: true},
		{cfg: LogConfig{Level: "WARN", Format: "JSON"}, wantJSON: true},
		{cfg: LogConfig{Level: "loud", Format: "text"}, wantErr: true},
		{cfg: LogConfig{Level: "info", Format: "xml"}, wantErr: true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		logger, err := NewLogger(tt.cfg, &buf)
		if (err != nil) != tt.wantErr {
			t.Errorf("NewLogger(%+v) error = %v, want error %v", tt.cfg, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		logger.Debug("dbg")
		logger.Error("boom")
		out := buf.String()
		if got := strings.Contains(out, "dbg"); got != tt.wantDebug {
			t.Errorf("%+v: debug logged = %v, want %v", tt.cfg, got, tt.wantDebug)
		}
		if got := strings.HasPrefix(out, "{"); got != tt.wantJSON {
			t.Errorf("%+v: JSON = %v, want %v (%q)", tt.cfg, got, tt.wantJSON, out)
		}
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c := Default()
	c.Keys = map[string]string{"APIvisible": goodSecret}
	c.Redis.Password = "redis-password"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String()
	if !strings.Contains(out, "APIvisible") {
		t.Errorf("key name missing from %q", out)
	}
	if strings.Contains(out, goodSecret) || strings.Contains(out, "redis-password") {
		t.Errorf("secret leaked: %q", out)
	}
}

// TestExampleConfig loads configs/sanke.yaml: it must equal the defaults (it documents them),
// validate once keys are supplied, and mention every key.
func TestExampleConfig(t *testing.T) {
	const path = "../../configs/sanke.yaml"
	c, err := Load(LoadOptions{File: path, Env: []string{"SANKE_KEYS=APIexample: " + goodSecret}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	want := Default()
	want.Keys = map[string]string{"APIexample": goodSecret}
	assertEqualConfig(t, c, want)

	// Without keys the example must be refused: it is not a usable production config as-is.
	c, err = Load(LoadOptions{File: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "keys") {
		t.Errorf("Validate() without keys = %v, want a keys error", err)
	}

	// Every key is documented as "name:" in the file.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for key := range keyTable() {
		name := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(b), "# "+name+":") {
			t.Errorf("configs/sanke.yaml does not document %s", key)
		}
	}
}

// assertEqualConfig compares configs, treating nil and empty slices and maps as equal.
func assertEqualConfig(t *testing.T, got, want *Config) {
	t.Helper()
	g, w := *got, *want
	for _, c := range []*Config{&g, &w} {
		if len(c.RTC.STUNServers) == 0 {
			c.RTC.STUNServers = nil
		}
		if len(c.Keys) == 0 {
			c.Keys = nil
		}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config mismatch:\n got  %+v\n want %+v", g, w)
	}
}

// rtc.node_ip gives one address, or one per family (LiveKit's "v4,v6"), normalized.
func TestNodeIPs(t *testing.T) {
	for in, want := range map[string][]string{
		"":                              nil,
		"203.0.113.9":                   {"203.0.113.9"},
		" 203.0.113.9 , 2001:DB8:0::9 ": {"203.0.113.9", "2001:db8::9"},
		"2001:db8::9,203.0.113.9":       {"2001:db8::9", "203.0.113.9"},
		"203.0.113.9,my.host":           nil, // invalid: Validate reports it
		"2001:db8::9,2001:db8::10":      nil,
	} {
		r := RTCConfig{NodeIP: in}
		if got := r.NodeIPs(); !reflect.DeepEqual(got, want) {
			t.Errorf("NodeIPs(%q) = %v, want %v", in, got, want)
		}
	}
}
