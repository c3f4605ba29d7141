package signaling

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name      string
		in        Config
		check     func(Config) bool
		keepalive time.Duration
	}{
		{name: "zero takes defaults", in: Config{}, check: func(c Config) bool {
			return c.MaxMessageBytes == DefaultMaxMessageBytes && c.RateLimit == DefaultRateLimit &&
				c.RateBurst == DefaultRateBurst && c.FloodDrops == DefaultRateBurst && c.WriteQueue == DefaultWriteQueue &&
				c.PingTimeout == DefaultPingTimeout && c.WriteTimeout == DefaultWriteTimeout &&
				c.JoinTimeout == DefaultJoinTimeout && c.CloseGrace == DefaultCloseGrace
		}, keepalive: DefaultPingInterval},
		{name: "set values kept", in: Config{MaxMessageBytes: 10, RateLimit: -1, RateBurst: 3, WriteQueue: 2},
			check: func(c Config) bool {
				return c.MaxMessageBytes == 10 && c.RateLimit == -1 && c.RateBurst == 3 && c.FloodDrops == 10 && c.WriteQueue == 2
			}, keepalive: DefaultPingInterval},
		{name: "keepalive within ping timeout", in: Config{PingInterval: 10 * time.Second, PingTimeout: 4 * time.Second},
			check: func(Config) bool { return true }, keepalive: 2 * time.Second},
		{name: "keepalive floor", in: Config{PingTimeout: time.Nanosecond},
			check: func(Config) bool { return true }, keepalive: 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in.withDefaults()
			if !tc.check(c) {
				t.Errorf("withDefaults(%+v) = %+v", tc.in, c)
			}
			if got := c.keepaliveInterval(); got != tc.keepalive {
				t.Errorf("keepalive %v, want %v", got, tc.keepalive)
			}
		})
	}
}
