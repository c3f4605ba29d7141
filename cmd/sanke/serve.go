package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
)

// serve runs "sanke serve": load and validate the configuration, then run the server until
// SIGINT or SIGTERM. The first signal starts a graceful shutdown; a second one kills the
// process at once (default signal handling is restored after the first).
func (a *app) serve(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("sanke serve", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	configFile := fs.String("config", "", "YAML config file, see configs/sanke.yaml (env "+config.EnvConfigFile+")")
	config.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: sanke serve [--config FILE] [--dev] [flags]

Runs the server. Settings come from defaults < config file < SANKE_* environment < flags.
Outside --dev at least one API key with a secret of 32+ characters is required, e.g.
  SANKE_KEYS="APIclassroom: $(openssl rand -base64 32)" sanke serve

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}

	cfg, err := config.Load(config.LoadOptions{File: *configFile, Env: a.env, Flags: fs})
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke serve: %v\n", err)
		return exitError
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(a.stderr, "sanke serve: invalid configuration:\n  %s\n",
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return exitError
	}
	logger, err := config.NewLogger(cfg.Log, a.stderr)
	if err != nil {
		fmt.Fprintf(a.stderr, "sanke serve: %v\n", err)
		return exitError
	}

	logger.Info("starting sanke", "version", versionString(), "config", cfg)
	if cfg.Dev {
		logger.Warn("development mode: do not expose this server to others; " +
			"anyone can create tokens with the public key devkey/secret")
		if open := nonLoopback(cfg.BindAddresses); len(open) > 0 {
			logger.Warn("development mode listening beyond loopback: other machines reach signaling and the API; "+
				"pprof and /dev/ still answer loopback clients only", "bind_addresses", open)
		}
	} else if cfg.Metrics.BearerToken == "" && len(cfg.Metrics.AllowedCIDRs) == 0 {
		logger.Warn("/metrics is open to every client that reaches the port; " +
			"restrict it with metrics.bearer_token or metrics.allowed_cidrs")
	}

	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})    // closed when the server has returned
	watcherDone := make(chan struct{}) // closed when the signal watcher has returned
	go func() {
		defer close(watcherDone)
		select {
		case <-sigCtx.Done():
		case <-finished:
			if sigCtx.Err() == nil {
				return // the server stopped by itself
			}
		}
		stop() // restore default handling: a second signal ends the process at once
		if ctx.Err() == nil {
			logger.Info("shutting down gracefully; signal again to exit immediately",
				"cause", context.Cause(sigCtx))
		}
	}()

	err = a.runServer(sigCtx, cfg, logger)
	close(finished)
	<-watcherDone
	if err != nil && !(errors.Is(err, context.Canceled) && sigCtx.Err() != nil) {
		logger.Error("server failed", "error", err)
		return exitError
	}
	logger.Info("server stopped")
	return exitOK
}

// nonLoopback returns the addresses of addrs that are not loopback addresses (0.0.0.0 and
// :: listen on every interface).
func nonLoopback(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// runServer builds the server and runs it until ctx is cancelled.
func runServer(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	srv, err := server.New(cfg, logger)
	if err != nil {
		return fmt.Errorf("creating server: %w", err)
	}
	return srv.Run(ctx)
}

// parseFlags parses args into fs and refuses positional arguments. done reports that the
// command must stop and exit with code (after -h, or on a usage error).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true // the flag package has printed the error and usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, true
	}
	return exitOK, false
}
