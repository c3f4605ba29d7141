package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Layout is how subscribers ask for video.
type Layout string

const (
	// LayoutAll subscribes to every track at the best quality (no track settings sent).
	LayoutAll Layout = "all"
	// LayoutGrid is a classroom grid: the first video publisher's track at HIGH, every other
	// video track at LOW (update_track_settings).
	LayoutGrid Layout = "grid"
)

// ICE transports for Config.ICETransport.
const (
	// ICETransportUDP: every PeerConnection gathers UDP host candidates (the default).
	ICETransportUDP = "udp"
	// ICETransportTCP: subscribers' PeerConnections gather no candidates and reach the
	// server's passive ICE-TCP candidate with active ICE-TCP (RFC 6544), like a client behind
	// a firewall that blocks UDP. Publishers stay on UDP. Latency to the subscriber's socket
	// is not measured then (pion reads the TCP stream itself).
	ICETransportTCP = "tcp"
)

// Config describes one load-test run.
type Config struct {
	URL       string // ws:// or wss:// (http(s):// accepted) of the server
	APIKey    string
	APISecret string
	Room      string

	VideoPublishers int // VP8 simulcast publishers
	AudioPublishers int // Opus publishers
	Subscribers     int
	Layout          Layout

	Duration time.Duration // measurement window
	RampUp   time.Duration // subscribers join evenly spread over this; 0: all at once

	// JoinTimeout bounds each join step (websocket, track publication, connection) and how
	// long after the ramp-up subscribers get to receive every track before the window starts
	// anyway. Default 20 s.
	JoinTimeout time.Duration

	// ServerPID, when set, adds the server's CPU time and memory from /proc.
	ServerPID int
	// Floor, when set, is the floor to state CPU per packet against; MeasureFloor measures it
	// before the run instead when Floor is nil and MeasureFloor is true.
	Floor        *FloorResult
	MeasureFloor bool

	Layers           []LayerSpec   // default DefaultLayers()
	KeyframeInterval time.Duration // default 2.5 s
	AudioBitrate     int           // bits per second, default 32000
	SRTP             string        // SRTPAny (default), SRTPGCM or SRTPCM
	// ICETransport is how subscribers reach the server: ICETransportUDP (default) or
	// ICETransportTCP. Publishers always use UDP.
	ICETransport string
	// Pacing paces each video publisher's packets at this factor of its total bitrate;
	// 0 means DefaultPacing, a negative value sends every frame as one burst.
	Pacing float64
	// IgnoreDynacast keeps every simulcast layer flowing even when the server says nobody
	// watches it (subscribed_quality_update); by default publishers obey, as browsers do.
	IgnoreDynacast bool

	// OnWindowEnd, when set, is called (on Run's goroutine) as the measurement window closes,
	// before anyone leaves: to read the server's own figures while every participant is still
	// connected.
	OnWindowEnd func()

	// Progress, when set, receives a status line every ProgressInterval (default 5 s).
	Progress         io.Writer
	ProgressInterval time.Duration
	Logger           *slog.Logger
}

// Check fills zero fields with their defaults and validates the rest; Run calls it.
func (c *Config) Check() error {
	if c.Layout == "" {
		c.Layout = LayoutAll
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 20 * time.Second
	}
	if len(c.Layers) == 0 {
		c.Layers = DefaultLayers()
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = 2500 * time.Millisecond
	}
	if c.AudioBitrate <= 0 {
		c.AudioBitrate = 32000
	}
	if c.Pacing == 0 {
		c.Pacing = DefaultPacing
	}
	if c.ICETransport == "" {
		c.ICETransport = ICETransportUDP
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case c.URL == "":
		return errors.New("no server url")
	case c.APIKey == "" || c.APISecret == "":
		return errors.New("api key and secret are required")
	case c.Room == "":
		return errors.New("no room")
	case c.VideoPublishers < 0 || c.AudioPublishers < 0 || c.Subscribers < 0:
		return errors.New("negative participant count")
	case c.VideoPublishers+c.AudioPublishers == 0:
		return errors.New("nothing to publish: need video or audio publishers")
	case c.VideoPublishers+c.AudioPublishers > 1<<15:
		return errors.New("too many publishers")
	case c.Layout != LayoutAll && c.Layout != LayoutGrid:
		return fmt.Errorf("unknown layout %q (want all or grid)", c.Layout)
	case c.ICETransport != ICETransportUDP && c.ICETransport != ICETransportTCP:
		return fmt.Errorf("unknown ICE transport %q (want %s or %s)", c.ICETransport, ICETransportUDP, ICETransportTCP)
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.RampUp < 0:
		return errors.New("negative ramp-up")
	case len(c.Layers) > maxLayers:
		return fmt.Errorf("at most %d simulcast layers", maxLayers)
	}
	for _, l := range c.Layers {
		if l.RID == "" || l.FPS <= 0 || l.Bitrate <= 0 || l.Width <= 0 || l.Height <= 0 {
			return fmt.Errorf("incomplete layer %+v", l)
		}
	}
	return nil
}

// runner is the state of one run.
type runner struct {
	cfg      Config
	epoch    time.Time
	stack    *mediaStack
	fill     filler
	errs     *errorLog
	pubs     []*publisher
	bySID    map[string]int // published track sid -> generator track index (read-only once subscribers start)
	highSID  string         // the grid layout's HIGH track
	expected int            // tracks each subscriber should receive
	timeline *timeline

	subsMu sync.Mutex
	subs   []*subscriber
}

// now is the generator's clock: monotonic time since the run started.
func (r *runner) now() time.Duration { return time.Since(r.epoch) }

// Run runs one load test: publishers join and publish, subscribers join over the ramp-up,
// then everything is measured for cfg.Duration; everyone leaves and the figures are returned.
// Joins that fail are reported in the result, not as an error; an error means the run could
// not take place (bad configuration, a publisher could not publish).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	loopback, v4, v6, err := serverHost(cfg.URL)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, epoch: time.Now(), fill: newFiller(1), errs: newErrorLog(), bySID: map[string]int{},
		timeline: newTimeline(cfg.RampUp + cfg.JoinTimeout + cfg.Duration + time.Minute)}
	if r.stack, err = newMediaStack(loopback, v4, v6, cfg.SRTP, cfg.ICETransport == ICETransportTCP, r.now); err != nil {
		return nil, err
	}
	res := &Result{Config: summarize(cfg), StartedAt: time.Now().UTC()}
	if cfg.Floor != nil {
		res.Floor = cfg.Floor
	} else if cfg.MeasureFloor {
		if f, err := MeasureFloor(time.Second); err == nil {
			res.Floor = &f
		} else {
			cfg.Logger.Warn("floor not measured", "err", err)
		}
	}

	var server, self *procWatch
	if cfg.ServerPID > 0 {
		server = newProcWatch(cfg.ServerPID)
	}
	self = newProcWatch(os.Getpid())
	defer server.stop()
	defer self.stop()

	// Publishers: all at once; the run needs every one of them.
	mediaCtx, stopMedia := context.WithCancel(context.Background())
	defer stopMedia()
	nPub := cfg.VideoPublishers + cfg.AudioPublishers
	r.pubs = make([]*publisher, nPub)
	perr := make([]error, nPub)
	var wg sync.WaitGroup
	for i := range nPub {
		wg.Go(func() { r.pubs[i], perr[i] = r.startPublisher(ctx, i, i < cfg.VideoPublishers) })
	}
	wg.Wait()
	if err := errors.Join(perr...); err != nil {
		for _, p := range r.pubs {
			if p != nil {
				p.cl.close()
			}
		}
		return nil, fmt.Errorf("publishing: %w", err)
	}
	for _, p := range r.pubs {
		r.bySID[p.sid] = p.index
		if p.video && r.highSID == "" {
			r.highSID = p.sid
		}
		go p.run(mediaCtx)
	}
	r.expected = nPub
	cfg.Logger.Info("publishers up", "video", cfg.VideoPublishers, "audio", cfg.AudioPublishers)
	// Let every layer reach the server (and be seen as available) before anyone subscribes.
	sleepCtx(ctx, 500*time.Millisecond)
	baseline := server.sample()

	progressDone := make(chan struct{})
	phase := atomic.Value{}
	phase.Store("ramp-up")
	if cfg.Progress != nil {
		go r.progress(&phase, progressDone)
	}

	// Subscribers, spread over the ramp-up.
	subCtx, cancelJoins := context.WithCancel(ctx)
	defer cancelJoins()
	var joins sync.WaitGroup
	for i := range cfg.Subscribers {
		s := &subscriber{r: r, index: i}
		r.subsMu.Lock()
		r.subs = append(r.subs, s)
		r.subsMu.Unlock()
		var delay time.Duration
		if cfg.Subscribers > 1 {
			delay = cfg.RampUp * time.Duration(i) / time.Duration(cfg.Subscribers)
		}
		joins.Go(func() {
			if sleepCtx(subCtx, delay) {
				s.start(subCtx)
			}
		})
	}
	joins.Wait()
	// Wait until every subscriber has every track (or failed), within JoinTimeout.
	deadline := time.Now().Add(cfg.JoinTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ready := 0
		for _, s := range r.subs {
			if s.complete() || s.failed.Load() {
				ready++
			}
		}
		if ready == len(r.subs) {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}

	// The measurement window.
	phase.Store("measuring")
	srv0, self0 := server.sample(), self.sample()
	host0, hostErr0 := readHostCPU()
	server.resetMax()
	winStart := r.now()
	for _, s := range r.subs {
		for _, st := range s.streamList() {
			st.startWindow()
		}
	}
	for _, p := range r.pubs {
		p.startWindow()
	}
	sleepCtx(ctx, cfg.Duration)
	for _, p := range r.pubs {
		p.endWindow()
	}
	for _, s := range r.subs {
		for _, st := range s.streamList() {
			st.endWindow()
		}
	}
	window := r.now() - winStart
	srv1, self1 := server.sample(), self.sample()
	host1, hostErr := readHostCPU()
	if hostErr0 != nil {
		hostErr = hostErr0
	}
	srvMax := server.max()
	if cfg.OnWindowEnd != nil {
		cfg.OnWindowEnd()
	}
	phase.Store("leaving")

	r.collect(res, window)
	res.Timeline = r.timeline.entries(winStart, winStart+window)
	res.Errors = r.errs.summary() // what happens while everyone leaves is not the server's doing
	res.setProcess(server, baseline, srv0, srv1, srvMax, self0, self1, host0, host1, hostErr, cfg.Subscribers)
	close(progressDone)

	// Everyone leaves: subscribers first (in parallel, bounded), then publishers.
	cancelJoins()
	sem := make(chan struct{}, 64)
	var leaves sync.WaitGroup
	for _, s := range r.subs {
		if cl := s.client(); cl != nil {
			leaves.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				cl.close()
			})
		}
	}
	leaves.Wait()
	stopMedia()
	for _, p := range r.pubs {
		p.cl.close()
	}
	return res, nil
}

// sleepCtx sleeps d unless ctx ends first; it reports whether the full time passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// serverHost reads the server URL's host: whether it is a loopback address (then the
// generator gathers only loopback candidates: one socket per PeerConnection), and the
// address families to reach it over: the host's own when it is an address, both for a name.
func serverHost(raw string) (loopback, v4, v6 bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return false, false, false, fmt.Errorf("server url: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return true, true, false, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false, true, true, nil
	}
	return ip.IsLoopback(), ip.To4() != nil, ip.To4() == nil, nil
}

// progress prints a status line every interval until done closes.
func (r *runner) progress(phase *atomic.Value, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	var lastPkts uint64
	last := r.now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		r.subsMu.Lock()
		subs := append([]*subscriber(nil), r.subs...)
		r.subsMu.Unlock()
		var joined, complete int
		var c counters
		for _, s := range subs {
			if s.joined.Load() != 0 {
				joined++
			}
			if s.complete() {
				complete++
			}
			for _, st := range s.streamList() {
				tot, _ := st.totals()
				c.add(tot)
			}
		}
		now := r.now()
		rate := float64(c.Packets-lastPkts) / (now - last).Seconds()
		lastPkts, last = c.Packets, now
		fmt.Fprintf(r.cfg.Progress, "[%5.1fs] %-9s subscribers joined %d/%d, all tracks %d; receiving %.0f pkt/s; lost %d; errors %d\n",
			now.Seconds(), phase.Load(), joined, r.cfg.Subscribers, complete, rate, c.Lost(), r.errs.count())
	}
}

// errorLog counts errors by kind and keeps the first few messages.
type errorLog struct {
	mu      sync.Mutex
	byKind  map[string]int
	samples []string
	total   int
}

const errorSamples = 10

func newErrorLog() *errorLog { return &errorLog{byKind: map[string]int{}} }

func (e *errorLog) add(kind string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKind[kind]++
	e.total++
	if len(e.samples) < errorSamples {
		e.samples = append(e.samples, kind+": "+err.Error())
	}
}

func (e *errorLog) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

func (e *errorLog) summary() ErrorSummary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ErrorSummary{Total: e.total, ByKind: map[string]int{}, Samples: append([]string(nil), e.samples...)}
	for k, v := range e.byKind {
		s.ByKind[k] = v
	}
	return s
}

// procWatch samples a process's memory in the background (for the peak) and reads its CPU
// time on demand. A nil *procWatch does nothing.
type procWatch struct {
	pid   int
	ticks int64
	stopc chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	maxRSS int64
	err    error
}

// procSample is a point-in-time reading.
type procSample struct {
	CPU   time.Duration
	Mem   memInfo
	Drops uint64
	Err   error
}

func newProcWatch(pid int) *procWatch {
	w := &procWatch{pid: pid, ticks: clockTicks(), stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			w.sampleMem()
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *procWatch) sampleMem() {
	m, err := procMem(w.pid)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = err
		return
	}
	w.maxRSS = max(w.maxRSS, m.RSS)
}

// sample reads CPU time, memory and UDP drops now.
func (w *procWatch) sample() procSample {
	if w == nil {
		return procSample{}
	}
	var s procSample
	s.CPU, s.Err = procCPU(w.pid, w.ticks)
	m, err := procMem(w.pid)
	if s.Err == nil {
		s.Err = err
	}
	s.Mem = m
	s.Drops, _ = udpDrops(w.pid)
	return s
}

func (w *procWatch) resetMax() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.maxRSS = 0
	w.mu.Unlock()
	w.sampleMem()
}

func (w *procWatch) max() int64 {
	if w == nil {
		return 0
	}
	w.sampleMem()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxRSS
}

func (w *procWatch) stop() {
	if w == nil {
		return
	}
	close(w.stopc)
	<-w.done
}
