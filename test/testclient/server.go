package testclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables read by StartSanke.
const (
	// SankeBinaryEnv names a prebuilt sanke binary to run instead of building one.
	SankeBinaryEnv = "SANKE_TEST_BINARY"
	// SankeRaceEnv forces ("1") or forbids ("0") building the server with -race. By default
	// the server is built with -race exactly when the test binary is.
	SankeRaceEnv = "SANKE_TEST_SERVER_RACE"
	// SankeLogEnv, when "1", also streams the server's output to stderr as it comes.
	SankeLogEnv = "SANKE_TEST_SERVER_LOG"
	// SankeBinDirEnv is the directory BuildSanke builds into (default: a directory under the
	// system temp dir named after the module root). scripts/test.sh points it at a temporary
	// directory it removes afterwards.
	SankeBinDirEnv = "SANKE_TEST_BINDIR"
)

// ServerOption configures StartSanke.
type ServerOption func(*serverOptions)

type serverOptions struct {
	args         []string
	env          []string
	configYAML   string
	binary       string
	startTimeout time.Duration
}

// WithServerArgs appends command-line arguments after the defaults
// (serve --dev --port P --udp-port U ...).
func WithServerArgs(args ...string) ServerOption {
	return func(o *serverOptions) { o.args = append(o.args, args...) }
}

// WithServerEnv adds KEY=value pairs to the server's environment.
func WithServerEnv(kv ...string) ServerOption {
	return func(o *serverOptions) { o.env = append(o.env, kv...) }
}

// WithConfigYAML writes yaml to a temporary file and passes it with --config.
func WithConfigYAML(yaml string) ServerOption {
	return func(o *serverOptions) { o.configYAML = yaml }
}

// WithServerBinary runs the given binary instead of building ./cmd/sanke.
func WithServerBinary(path string) ServerOption {
	return func(o *serverOptions) { o.binary = path }
}

// WithStartTimeout bounds how long StartSanke waits for /healthz (default 30 s).
func WithStartTimeout(d time.Duration) ServerOption {
	return func(o *serverOptions) { o.startTimeout = d }
}

// Server is a sanke process started for a test.
type Server struct {
	// URL is the websocket URL clients dial (ws://127.0.0.1:Port).
	URL string
	// HTTPURL is http://127.0.0.1:Port.
	HTTPURL string
	// Port is the HTTP/websocket port; UDPPort the WebRTC UDP port; TCPPort the ICE-TCP port
	// (0 when the binary has no --tcp-port flag).
	Port, UDPPort, TCPPort int
	// APIKey and APISecret are the dev credentials.
	APIKey, APISecret string
	// Binary is the executable run; Args its arguments.
	Binary string
	Args   []string

	tb       testing.TB
	cmd      *exec.Cmd
	logs     *logBuffer
	exited   chan struct{}
	exitErr  error
	stopOnce sync.Once
}

// StartSanke builds the sanke binary (once per test process), runs `sanke serve --dev` on
// free ports and waits until GET /healthz answers 200. The server is stopped (SIGTERM, then
// SIGKILL after 10 s) when the test ends; its output is printed if the test failed, and a
// data race it reports fails the test.
func StartSanke(tb testing.TB, opts ...ServerOption) *Server {
	tb.Helper()
	o := serverOptions{startTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	bin := o.binary
	if bin == "" {
		bin = os.Getenv(SankeBinaryEnv)
	}
	if bin == "" {
		bin = BuildSanke(tb)
	}
	flags := supportedFlags(bin)

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startSanke(tb, bin, flags, o)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("start sanke: %v", lastErr)
	return nil
}

func startSanke(tb testing.TB, bin string, flags map[string]bool, o serverOptions) (*Server, error) {
	s := &Server{
		APIKey:    DevAPIKey,
		APISecret: DevAPISecret,
		Binary:    bin,
		tb:        tb,
		logs:      newLogBuffer(),
		exited:    make(chan struct{}),
	}
	var err error
	if s.Port, err = reservePort(tb, "tcp"); err != nil {
		return nil, err
	}
	if s.UDPPort, err = reservePort(tb, "udp"); err != nil {
		return nil, err
	}
	s.Args = []string{"serve", "--dev", "--port", strconv.Itoa(s.Port), "--udp-port", strconv.Itoa(s.UDPPort)}
	if flags["tcp-port"] {
		if s.TCPPort, err = reservePort(tb, "tcp"); err != nil {
			return nil, err
		}
		s.Args = append(s.Args, "--tcp-port", strconv.Itoa(s.TCPPort))
	}
	if o.configYAML != "" {
		path := filepath.Join(tb.TempDir(), "sanke.yaml")
		if err := os.WriteFile(path, []byte(o.configYAML), 0o600); err != nil {
			return nil, err
		}
		s.Args = append(s.Args, "--config", path)
	}
	s.Args = append(s.Args, o.args...)
	s.URL = fmt.Sprintf("ws://127.0.0.1:%d", s.Port)
	s.HTTPURL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)

	s.cmd = exec.Command(bin, s.Args...)
	s.cmd.Dir = tb.TempDir() // dev mode keeps data under ./data
	s.cmd.Env = append(os.Environ(), o.env...)
	out := &lineWriter{buf: s.logs, echo: os.Getenv(SankeLogEnv) == "1"}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		out.flush()
		close(s.exited)
	}()

	if err := s.waitHealthy(o.startTimeout); err != nil {
		s.kill()
		<-s.exited
		return nil, fmt.Errorf("%s %s: %w\n--- server output ---\n%s", bin, strings.Join(s.Args, " "), err, s.logs.String())
	}
	tb.Cleanup(func() {
		err := s.Stop()
		logs := s.logs.String()
		if out.sawRace() {
			tb.Errorf("sanke server reported a data race:\n%s", logs)
			return
		}
		if err != nil {
			tb.Errorf("sanke server: %v", err)
		}
		if tb.Failed() {
			tb.Logf("sanke server output (%s %s):\n%s", bin, strings.Join(s.Args, " "), logs)
		}
	})
	return s, nil
}

// Target returns the server as a client target.
func (s *Server) Target() Target {
	return Target{Name: "sanke", URL: s.URL, HTTPURL: s.HTTPURL, APIKey: s.APIKey, APISecret: s.APISecret}
}

// Logs returns the server's output so far (the newest lines, up to a cap).
func (s *Server) Logs() string { return s.logs.String() }

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Stop asks the server to shut down gracefully (SIGTERM), kills it after 10 s, and returns an
// error unless it exited cleanly in time. Calling it again returns nil.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			err = fmt.Errorf("server had already exited: %v", s.exitErr)
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.exitErr != nil {
				err = fmt.Errorf("server exit after SIGTERM: %v", s.exitErr)
			}
		case <-time.After(10 * time.Second):
			s.kill()
			<-s.exited
			err = errors.New("server did not exit within 10s of SIGTERM; killed")
		}
	})
	return err
}

// Kill kills the server at once (SIGKILL), as a crash would, and waits for it to exit.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		s.kill()
		<-s.exited
	})
}

func (s *Server) kill() {
	if s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // its process group
		_ = s.cmd.Process.Kill()
	}
}

// waitHealthy polls /healthz until it answers 200, the process exits, or timeout.
func (s *Server) waitHealthy(timeout time.Duration) error {
	return WaitHealthy(s.HTTPURL, timeout, func() error {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before becoming healthy: %v", s.exitErr)
		default:
			return nil
		}
	})
}

// WaitHealthy polls httpURL's /healthz until it answers 200, stopped reports that the server
// stopped (a non-nil error, returned), or timeout passes.
func WaitHealthy(httpURL string, timeout time.Duration, stopped func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		if err := stopped(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, httpURL+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no 200 from %s/healthz within %v (last: %s)", httpURL, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sankeBuilds remembers, per race setting, the binary this test process built. It is the
// one piece of package-level state here: building once per process is the point.
var sankeBuilds = struct {
	sync.Mutex
	path map[bool]string
}{path: map[bool]string{}}

// BuildSanke builds ./cmd/sanke once per test process (per race setting) and returns the
// binary's path. The binary lives in a temporary directory named after the module root, and
// is replaced atomically, so concurrent test processes share it safely. It fails the test if
// the build fails.
func BuildSanke(tb testing.TB) string {
	tb.Helper()
	race := raceWanted()
	sankeBuilds.Lock()
	defer sankeBuilds.Unlock()
	if p, ok := sankeBuilds.path[race]; ok {
		return p
	}
	root, err := ModuleRoot()
	if err != nil {
		tb.Fatalf("build sanke: %v", err)
	}
	sum := sha256.Sum256([]byte(root))
	name := "sanke"
	if race {
		name += "-race"
	}
	dir := os.Getenv(SankeBinDirEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sanke-testbin-"+hex.EncodeToString(sum[:6]))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("build sanke: %v", err)
	}
	tmp, err := os.CreateTemp(dir, name+".tmp-")
	if err != nil {
		tb.Fatalf("build sanke: %v", err)
	}
	_ = tmp.Close()
	defer func() { _ = os.Remove(tmp.Name()) }()

	args := []string{"build", "-o", tmp.Name()}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/sanke")
	start := time.Now()
	cmd := exec.Command(goBinary(), args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), root, err, out)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		tb.Fatalf("build sanke: %v", err)
	}
	tb.Logf("testclient: built %s in %.1fs", final, time.Since(start).Seconds())
	sankeBuilds.path[race] = final
	return final
}

// raceWanted reports whether the server should be built with -race.
func raceWanted() bool {
	switch os.Getenv(SankeRaceEnv) {
	case "1", "true":
		return true
	case "0", "false":
		return false
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return true
			}
		}
	}
	return false
}

// goBinary returns the go command to build with.
func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		return p
	}
	return "go"
}

// ModuleRoot finds the directory of Sanke's go.mod, walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/sanke-edu/sanke\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of github.com/sanke-edu/sanke not found above the working directory")
		}
		dir = parent
	}
}

// flagPattern matches flag names at the start of help lines, "-name" (Go's flag package) or
// "--name".
var flagPattern = regexp.MustCompile(`(?m)^\s*--?([a-z][a-z0-9-]*)`)

// supportedFlags returns the flags `bin serve --help` lists (empty on failure).
func supportedFlags(bin string) map[string]bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range flagPattern.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	return flags
}

// lineWriter splits a process's output into lines for a logBuffer.
type lineWriter struct {
	mu      sync.Mutex
	buf     *logBuffer
	partial []byte
	echo    bool
	race    bool // a line said WARNING: DATA RACE
}

// sawRace reports whether the output contained a race detector report.
func (w *lineWriter) sawRace() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.race
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.echo {
		_, _ = os.Stderr.Write(p)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		if strings.Contains(line, "WARNING: DATA RACE") {
			w.race = true
		}
		w.buf.add(line)
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.buf.add(string(w.partial))
		w.partial = nil
	}
}

// FreePort returns a loopback port of network ("tcp" or "udp") reserved for the test until
// it ends, for tests that start servers on their own ports: no other test process is handed
// the same port meanwhile, and no client socket takes it (see reservePort). It fails the test
// if none can be had.
func FreePort(tb testing.TB, network string) int {
	tb.Helper()
	port, err := reservePort(tb, network)
	if err != nil {
		tb.Fatalf("free %s port: %v", network, err)
	}
	return port
}
