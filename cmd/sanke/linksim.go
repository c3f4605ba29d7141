package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sanke-edu/sanke/internal/linksim"
)

// linkParam is a setting of the simulated link: a flag of "sanke linksim" (both
// directions), and a key of the lists --up, --down and --step take.
type linkParam struct {
	name, help string
	set        func(m *linksim.Impairment, value string) error
}

// linkParams lists the settings of the link, in help order.
func linkParams() []linkParam {
	duration := func(field func(*linksim.Impairment) *time.Duration) func(*linksim.Impairment, string) error {
		return func(m *linksim.Impairment, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q: want a duration such as 50ms", v)
			}
			if d < 0 {
				return fmt.Errorf("%q: must not be negative", v)
			}
			*field(m) = d
			return nil
		}
	}
	return []linkParam{
		{"loss", "share of packets lost, e.g. 20%", func(m *linksim.Impairment, v string) (err error) {
			m.Loss, err = linksim.ParsePercent(v)
			return err
		}},
		{"burst", "mean length of a loss burst (Gilbert-Elliott), e.g. 50ms; 0: independent random loss",
			duration(func(m *linksim.Impairment) *time.Duration { return &m.Burst })},
		{"delay", "one-way delay, e.g. 50ms", duration(func(m *linksim.Impairment) *time.Duration { return &m.Delay })},
		{"jitter", "random extra one-way delay of up to this, e.g. 10ms (packets keep their order)",
			duration(func(m *linksim.Impairment) *time.Duration { return &m.Jitter })},
		{"rate", "rate limit, e.g. 3mbit or 500kbit; 0: none", func(m *linksim.Impairment, v string) (err error) {
			m.Rate, err = linksim.ParseRate(v)
			return err
		}},
		{"queue", "longest wait at the rate limit before a packet is dropped (default " + linksim.DefaultQueue.String() + ")",
			duration(func(m *linksim.Impairment) *time.Duration { return &m.Queue })},
		{"reorder", "let jitter reorder packets (true or false)", func(m *linksim.Impairment, v string) (err error) {
			m.Reorder, err = strconv.ParseBool(v)
			return err
		}},
	}
}

// applyLinkList applies "key=value,key=value" to the directions given (non-nil). A key
// names a linkParam; with both directions given, "up.KEY" or "down.KEY" sets one of them.
func applyLinkList(list string, up, down *linksim.Impairment) error {
	params := map[string]linkParam{}
	for _, p := range linkParams() {
		params[p.name] = p
	}
	for item := range strings.SplitSeq(list, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%q: want key=value", item)
		}
		var targets []*linksim.Impairment
		for _, m := range []*linksim.Impairment{up, down} {
			if m != nil {
				targets = append(targets, m)
			}
		}
		if up != nil && down != nil {
			if k, ok := strings.CutPrefix(key, "up."); ok {
				key, targets = k, []*linksim.Impairment{up}
			} else if k, ok := strings.CutPrefix(key, "down."); ok {
				key, targets = k, []*linksim.Impairment{down}
			}
		}
		p, ok := params[key]
		if !ok {
			return fmt.Errorf("%q: unknown setting %q", item, key)
		}
		for _, m := range targets {
			if err := p.set(m, value); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return nil
}

// linksimOptions is what the command line of "sanke linksim" asks for.
type linksimOptions struct {
	relay      linksim.RelayConfig
	schedule   linksim.Schedule
	statsEvery time.Duration
	verbose    bool
	control    bool
}

// parseLinksim reads the command line of "sanke linksim". When done, the command must stop
// and exit with code (after -h, or on a usage error, which it has reported).
func (a *app) parseLinksim(args []string) (opts *linksimOptions, code int, done bool) {
	fs := flag.NewFlagSet("sanke linksim", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var both linksim.Impairment
	for _, p := range linkParams() {
		set := func(v string) error { return p.set(&both, v) }
		if p.name == "reorder" {
			fs.BoolFunc(p.name, p.help, set)
		} else {
			fs.Func(p.name, p.help, set)
		}
	}
	upList := fs.String("up", "", "settings of the client's uplink only (client -> relay -> server), e.g. loss=5%,rate=1mbit")
	downList := fs.String("down", "", "settings of the client's downlink only (server -> relay -> client)")
	var steps []string
	fs.Func("step", "change the link at a time after start, e.g. 60s:rate=500kbit (repeatable; keys may be up.KEY or down.KEY)",
		func(v string) error { steps = append(steps, v); return nil })
	listen := fs.String("listen", "127.0.0.1:3479", "host:port the relay listens on, over UDP and TCP")
	tcp := fs.Bool("tcp", true, "also listen on TCP (TURN/TCP) at --listen")
	relayIP := fs.String("relay-ip", "", "address handed out for relayed candidates (default: the --listen host, or the first non-loopback IPv4 address)")
	user := fs.String("user", "linksim", "TURN user name")
	password := fs.String("password", "", "TURN password (default: a random one, printed)")
	seed := fs.Uint64("seed", 0, "seed of the random choices, to repeat a run (0: random)")
	maxAlloc := fs.Int("max-allocations", linksim.DefaultMaxAllocations, "most allocations alive at once")
	statsEvery := fs.Duration("stats-every", 10*time.Second, "log the counters this often (0: only at exit)")
	verbose := fs.Bool("verbose", false, "log every allocation and pion's TURN messages")
	control := fs.Bool("control", false, "read link changes from standard input, one list a line applied at once, "+
		"e.g. down.rate=500kbit (keys as in --step)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sanke linksim [flags]

Runs a TURN relay that impairs what it relays: loss (random or in bursts), delay, jitter and
a rate limit, each way. A client forced through it (a browser with iceTransportPolicy
"relay", a Go client with relay-only ICE) has a weak link to any server, Sanke or
livekit-server alike. Prints the RTCConfiguration to paste into the client, then logs the
counters until interrupted.

Example: a rural line, 20% loss in 50 ms bursts, 50 ms each way, 3 Mbit/s falling to
500 kbit/s after a minute and back after two:
  sanke linksim --loss 20% --burst 50ms --delay 50ms --jitter 10ms --rate 3mbit \
    --step 60s:rate=500kbit --step 120s:rate=3mbit

Flags (the link settings apply to both directions; --up and --down override one):
`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return nil, code, true
	}
	fail := func(err error) (*linksimOptions, int, bool) {
		fmt.Fprintf(a.stderr, "sanke linksim: %v\n", err)
		return nil, exitUsage, true
	}
	both.Seed = *seed
	up, down := both, both
	if *upList != "" {
		if err := applyLinkList(*upList, &up, nil); err != nil {
			return fail(fmt.Errorf("--up: %w", err))
		}
	}
	if *downList != "" {
		if err := applyLinkList(*downList, nil, &down); err != nil {
			return fail(fmt.Errorf("--down: %w", err))
		}
	}
	if err := up.Validate(); err != nil {
		return fail(fmt.Errorf("up: %w", err))
	}
	if err := down.Validate(); err != nil {
		return fail(fmt.Errorf("down: %w", err))
	}
	opts = &linksimOptions{statsEvery: *statsEvery, verbose: *verbose, control: *control}
	stepUp, stepDown := up, down
	for _, s := range steps {
		at, list, ok := strings.Cut(s, ":")
		d, err := time.ParseDuration(at)
		if !ok || err != nil {
			return fail(fmt.Errorf("--step %q: want TIME:key=value,..., e.g. 60s:rate=500kbit", s))
		}
		if err := applyLinkList(list, &stepUp, &stepDown); err != nil {
			return fail(fmt.Errorf("--step %q: %w", s, err))
		}
		opts.schedule = append(opts.schedule, linksim.Step{At: d, Up: stepUp, Down: stepDown})
	}
	if err := opts.schedule.Validate(); err != nil {
		return fail(err)
	}
	if *maxAlloc < 1 {
		return fail(fmt.Errorf("--max-allocations %d: must be at least 1", *maxAlloc))
	}
	if *statsEvery < 0 {
		return fail(fmt.Errorf("--stats-every %v: must not be negative", *statsEvery))
	}
	opts.relay = linksim.RelayConfig{UDP: *listen, RelayIP: *relayIP, Username: *user, Password: *password,
		Up: up, Down: down, MaxAllocations: *maxAlloc}
	if *tcp {
		opts.relay.TCP = *listen
	}
	if opts.relay.Password == "" {
		opts.relay.Password = rand.Text()
	}
	return opts, exitOK, false
}

// linksim runs "sanke linksim": an impairing TURN relay, until interrupted.
func (a *app) linksim(ctx context.Context, args []string) int {
	opts, code, done := a.parseLinksim(args)
	if done {
		return code
	}
	level := slog.LevelInfo
	if opts.verbose {
		level = slog.LevelDebug
	}
	opts.relay.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	logger := opts.relay.Logger.With("component", "linksim")
	relay, err := linksim.NewRelay(opts.relay)
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke: %v\n", err)
		return exitError
	}
	defer func() { _ = relay.Close() }()
	out, err := json.MarshalIndent(struct {
		ICEServers         []linksim.ICEServer `json:"iceServers"`
		ICETransportPolicy string              `json:"iceTransportPolicy"`
	}{[]linksim.ICEServer{relay.ICEServer()}, "relay"}, "", "  ")
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke linksim: %v\n", err)
		return exitError
	}
	fmt.Fprintf(a.stdout, "%s\n", out)

	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	link := &linkState{relay: relay, up: opts.relay.Up, down: opts.relay.Down}
	played := make(chan struct{})
	go func() {
		defer close(played)
		if err := opts.schedule.Play(sigCtx, link.set); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("schedule failed", "err", err)
		}
	}()
	defer func() { <-played }()
	if opts.control && a.stdin != nil {
		// The reader is not stopped at exit: a blocked read of standard input cannot be
		// interrupted, and the process ends anyway.
		go link.control(a.stdin, logger)
	}
	var tick <-chan time.Time
	if opts.statsEvery > 0 {
		ticker := time.NewTicker(opts.statsEvery)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-sigCtx.Done():
			logCounters(logger, relay, "stopped")
			return exitOK
		case <-tick:
			logCounters(logger, relay, "counters")
		}
	}
}

// logCounters logs the relay's counters each way.
func logCounters(logger *slog.Logger, relay *linksim.Relay, msg string) {
	attrs := func(s linksim.Stats) []any {
		return []any{"packets", s.Packets, "delivered", s.Delivered, "lost", s.Lost, "overflow", s.Overflow, "failed", s.Failed}
	}
	up, down := relay.Stats()
	logger.Info(msg, "allocations", relay.Allocations(), slog.Group("up", attrs(up)...), slog.Group("down", attrs(down)...))
}

// linkState is the relay's current link, changed by the schedule and by control lines.
type linkState struct {
	relay *linksim.Relay

	mu       sync.Mutex
	up, down linksim.Impairment
}

// set changes the link to up and down.
func (l *linkState) set(up, down linksim.Impairment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.relay.SetImpairment(up, down); err != nil {
		return err
	}
	l.up, l.down = up, down
	return nil
}

// apply changes the link by a list of settings ("down.rate=500kbit,loss=5%").
func (l *linkState) apply(list string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	up, down := l.up, l.down
	if err := applyLinkList(list, &up, &down); err != nil {
		return err
	}
	if err := l.relay.SetImpairment(up, down); err != nil {
		return err
	}
	l.up, l.down = up, down
	return nil
}

// control applies each non-empty line of r as a list of settings until r ends; a line that
// does not parse is logged and changes nothing.
func (l *linkState) control(r io.Reader, logger *slog.Logger) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if err := l.apply(line); err != nil {
			logger.Warn("control line refused", "line", line, "err", err)
		}
	}
}
