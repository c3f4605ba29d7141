// Command sanke runs the Sanke live-classroom SFU and mints LiveKit-compatible access tokens
// for it.
//
//	sanke serve [flags]    run the server
//	sanke token [flags]    print an access token
//	sanke linksim [flags]  run a TURN relay that simulates a weak link
//	sanke version          print the version
//
// Run "sanke <command> -h" for the flags of a command.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/sanke-edu/sanke/internal/config"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // configuration or runtime failure
	exitUsage = 2 // bad command line
)

func main() {
	a := &app{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		env:       os.Environ(),
		runServer: runServer,
	}
	os.Exit(a.run(context.Background(), os.Args[1:]))
}

// app holds what the commands touch outside the process, so that tests can replace it.
type app struct {
	// stdin is read by "sanke linksim --control" only.
	stdin          io.Reader
	stdout, stderr io.Writer
	// env is the environment as "NAME=value" strings.
	env []string
	// runServer builds and runs the server until ctx is cancelled.
	runServer func(ctx context.Context, cfg *config.Config, logger *slog.Logger) error
}

// run executes the command line args (without the program name) and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return a.serve(ctx, args[1:])
	case "token":
		return a.token(args[1:])
	case "loadtest":
		return a.loadtest(ctx, args[1:])
	case "linksim":
		return a.linksim(ctx, args[1:])
	case "version", "-version", "--version":
		return a.version(args[1:])
	case "help", "-h", "-help", "--help":
		a.usage(a.stdout)
		return exitOK
	default:
		fmt.Fprintf(a.stderr, "sanke: unknown command %q\n\n", args[0])
		a.usage(a.stderr)
		return exitUsage
	}
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `Sanke: a live-classroom WebRTC server speaking LiveKit's client protocol.

Usage:
  sanke serve [--config FILE] [--dev] [flags]   run the server
  sanke token --room R --identity I [flags]     print an access token (LiveKit JWT)
  sanke loadtest [--url URL] [flags]            load-test a LiveKit-compatible server
  sanke linksim [--loss 20%] [flags]            a TURN relay that simulates a weak link
  sanke version                                 print the version

Run "sanke <command> -h" for the flags of a command.
Configuration: configs/sanke.yaml documents every key; environment variables SANKE_<KEY>
(e.g. SANKE_PORT, SANKE_RTC_UDP_PORT, SANKE_KEYS="key: secret") override the file and
flags override both.
`)
}
