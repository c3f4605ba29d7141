package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/loadtest"
)

// loadtest runs "sanke loadtest": publishers and subscribers speaking LiveKit's client
// protocol against a server, then a report of what reached the subscribers.
func (a *app) loadtest(ctx context.Context, args []string) (code int) {
	fs := flag.NewFlagSet("sanke loadtest", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	url := fs.String("url", "ws://127.0.0.1:7880", "server URL (ws://, wss://, http://, https://)")
	apiKey := fs.String("api-key", config.DevAPIKey, "API key to sign the participants' tokens with")
	apiSecret := fs.String("api-secret", config.DevAPISecret, "secret of --api-key")
	room := fs.String("room", "loadtest", "room name")
	video := fs.Int("video-publishers", 1, "publishers of a VP8 simulcast camera track (q/h/f)")
	audio := fs.Int("audio-publishers", 0, "publishers of an Opus microphone track")
	subs := fs.Int("subscribers", 10, "subscribers (each subscribes to every track)")
	layout := fs.String("layout", string(loadtest.LayoutAll), "all: every video at HIGH; grid: first video publisher HIGH, others LOW")
	duration := fs.Duration("duration", 30*time.Second, "measurement window, after the ramp-up")
	rampUp := fs.Duration("ramp-up", 5*time.Second, "subscribers join evenly over this time (0: all at once)")
	joinTimeout := fs.Duration("join-timeout", 20*time.Second, "limit for each join step, and for every subscriber to receive every track")
	pid := fs.Int("server-pid", 0, "PID of the server on this host: report its CPU time and memory from /proc")
	floor := fs.Bool("floor", true, "measure the floor (AES-GCM SRTP + sendmmsg per packet, ~1 s) and state server CPU as a ratio to it")
	keyInt := fs.Duration("keyframe-interval", 2500*time.Millisecond, "video keyframe interval (keyframe requests are also honoured)")
	audioRate := fs.Int("audio-bitrate", 32000, "Opus bitrate, bits per second")
	srtp := fs.String("srtp", loadtest.SRTPAny, "SRTP profiles the generator offers: any, aes-gcm or aes-cm")
	iceTransport := fs.String("ice-transport", loadtest.ICETransportUDP,
		"how subscribers reach the server: udp, or tcp (ICE-TCP only, as behind a firewall that blocks UDP; needs the server's ICE-TCP port; publishers stay on UDP; no latency to the socket)")
	pacing := fs.Float64("pacing", loadtest.DefaultPacing, "pace video at this factor of the publisher's bitrate, as browsers do (0: send frames as bursts)")
	noDynacast := fs.Bool("ignore-dynacast", false, "keep sending every simulcast layer when the server says nobody watches it")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of the table")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the generator itself to this file")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sanke loadtest [flags]

Load-tests a Sanke (or any LiveKit-compatible) server with light clients that speak LiveKit's
client protocol: VP8 simulcast and Opus publishers with synthetic media, and subscribers that
decrypt, count and check every packet without decoding. Prints tracks received, packets and
bitrate per layer, loss, jitter, publish->receive latency, join times and errors; with
--server-pid also the server's CPU per forwarded packet and memory per subscriber.

Example (server in another terminal: sanke serve --dev):
  sanke loadtest --video-publishers 1 --subscribers 100 --duration 30s --ramp-up 10s \
    --server-pid $(pgrep -n sanke)

Subscribers behind a UDP-blocking firewall (ICE-TCP to the server's rtc.tcp_port; publishers
stay on UDP; latency is then measured to the reader only):
  sanke loadtest --subscribers 20 --ice-transport tcp

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg := loadtest.Config{
		URL: *url, APIKey: *apiKey, APISecret: *apiSecret, Room: *room,
		VideoPublishers: *video, AudioPublishers: *audio, Subscribers: *subs, Layout: loadtest.Layout(*layout),
		Duration: *duration, RampUp: *rampUp, JoinTimeout: *joinTimeout, ServerPID: *pid, MeasureFloor: *floor,
		KeyframeInterval: *keyInt, AudioBitrate: *audioRate, SRTP: *srtp, Pacing: *pacing,
		IgnoreDynacast: *noDynacast, ICETransport: *iceTransport,
		Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *pacing <= 0 {
		cfg.Pacing = -1
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintf(a.stderr, "sanke loadtest: %v\n", err)
		return exitUsage
	}
	if !*quiet {
		cfg.Progress = a.stderr
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(a.stderr, "sanke loadtest: %v\n", err)
			return exitError
		}
		defer func() {
			if err := stopProfile(); err != nil {
				fmt.Fprintf(a.stderr, "sanke loadtest: %v\n", err)
				code = exitError
			}
		}()
	}

	// SIGINT ends the measurement early; the report still comes.
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadtest.Run(sigCtx, cfg)
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke loadtest: %v\n", err)
		return exitError
	}
	out := a.stdout
	if *asJSON {
		err = res.WriteJSON(out)
	} else {
		err = res.WriteTable(out)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke loadtest: %v\n", err)
		return exitError
	}
	return exitOK
}

// startCPUProfile writes a CPU profile to path until the returned stop is called; stop
// reports whether the whole profile reached the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close() // the profile never started: nothing to lose
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("CPU profile %s: %w", path, err)
		}
		return nil
	}, nil
}
