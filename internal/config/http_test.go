package config

import (
	"strings"
	"testing"
	"time"
)

// The http and metrics sections (issue 12): defaults, validation, loading from the
// environment, and no token in errors.
func TestHTTPAndMetricsConfig(t *testing.T) {
	d := Default().HTTP
	if d.ReadHeaderTimeout != 10*time.Second || d.ReadTimeout != 30*time.Second || d.WriteTimeout != 30*time.Second ||
		d.IdleTimeout != 30*time.Second || d.MaxHeaderBytes != 128<<10 || d.MaxConns != 10000 || d.MaxConnsPerIP != 256 {
		t.Errorf("http defaults: %+v", d)
	}
	if DevDefault().HTTP != d {
		t.Errorf("dev mode changes the http defaults: %+v", DevDefault().HTTP)
	}

	const token = "a-metrics-token-of-sorts"
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // substrings; empty means valid
	}{
		{name: "no per-address cap", modify: func(c *Config) { c.HTTP.MaxConnsPerIP = 0 }},
		{name: "zero read timeout", modify: func(c *Config) { c.HTTP.ReadTimeout = 0 }, want: []string{"http.read_timeout", "positive"}},
		{name: "zero header timeout", modify: func(c *Config) { c.HTTP.ReadHeaderTimeout = 0 }, want: []string{"http.read_header_timeout"}},
		{name: "negative write timeout", modify: func(c *Config) { c.HTTP.WriteTimeout = -time.Second }, want: []string{"http.write_timeout"}},
		{name: "zero idle timeout", modify: func(c *Config) { c.HTTP.IdleTimeout = 0 }, want: []string{"http.idle_timeout"}},
		{name: "tiny headers", modify: func(c *Config) { c.HTTP.MaxHeaderBytes = 100 }, want: []string{"http.max_header_bytes", "4096"}},
		{name: "no connections", modify: func(c *Config) { c.HTTP.MaxConns = 0 }, want: []string{"http.max_conns:"}},
		{name: "negative per-address cap", modify: func(c *Config) { c.HTTP.MaxConnsPerIP = -1 }, want: []string{"http.max_conns_per_ip"}},
		{name: "metrics token", modify: func(c *Config) { c.Metrics.BearerToken = token }},
		{name: "short metrics token", modify: func(c *Config) { c.Metrics.BearerToken = "short-secret" }, want: []string{"metrics.bearer_token", "16"}},
		{name: "metrics token with a space", modify: func(c *Config) { c.Metrics.BearerToken = "a metrics token with spaces" }, want: []string{"metrics.bearer_token"}},
		{name: "metrics networks", modify: func(c *Config) { c.Metrics.AllowedCIDRs = []string{"10.0.0.0/8", "127.0.0.1", "fd00::/8"} }},
		{name: "bad metrics network", modify: func(c *Config) { c.Metrics.AllowedCIDRs = []string{"10.0.0.0/33", "prometheus"} },
			want: []string{"metrics.allowed_cidrs", `"10.0.0.0/33"`, `"prometheus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Keys = map[string]string{"APIkey": goodSecret}
			tt.modify(c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.Metrics.BearerToken != "" && strings.Contains(err.Error(), c.Metrics.BearerToken) {
				t.Errorf("error %q shows the metrics token", err)
			}
		})
	}

	c, err := Load(LoadOptions{Env: []string{
		"SANKE_HTTP_IDLE_TIMEOUT=5s", "SANKE_HTTP_MAX_CONNS_PER_IP=0",
		"SANKE_METRICS_BEARER_TOKEN=" + token, "SANKE_METRICS_ALLOWED_CIDRS=10.0.0.0/8, 192.168.1.7",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.IdleTimeout != 5*time.Second || c.HTTP.MaxConnsPerIP != 0 || c.HTTP.ReadTimeout != 30*time.Second ||
		c.Metrics.BearerToken != token || len(c.Metrics.AllowedCIDRs) != 2 || c.Metrics.AllowedCIDRs[1] != "192.168.1.7" {
		t.Errorf("from the environment: http %+v, metrics networks %v", c.HTTP, c.Metrics.AllowedCIDRs)
	}
	if _, err := Load(LoadOptions{Env: []string{"SANKE_METRICS_BEARER_TOKEN=x", "SANKE_HTTP_MAX_CONNS=lots"}}); err == nil ||
		!strings.Contains(err.Error(), "SANKE_HTTP_MAX_CONNS") {
		t.Errorf("a bad http.max_conns: %v", err)
	}
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8":     "10.0.0.0/8",
		"192.168.1.7":    "192.168.1.7/32",
		" fd00::1/8 ":    "fd00::/8",
		"::1":            "::1/128",
		"::ffff:1.2.3.4": "1.2.3.4/32",
	} {
		p, err := ParseCIDR(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/40", "host.example", "10.0.0.0/8/8"} {
		if _, err := ParseCIDR(bad); err == nil {
			t.Errorf("ParseCIDR(%q) accepted", bad)
		}
	}
}
