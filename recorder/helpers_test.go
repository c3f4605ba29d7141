package recorder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"

	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/recorder"
	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
	"github.com/sanke-edu/sanke/test/testclient/inprocess"
	"github.com/sanke-edu/sanke/test/testmedia"
)

// versitygwVersion is the S3-compatible server the tests run (go install'ed into a cache).
const versitygwVersion = "v1.8.0"

const (
	s3Access = "sanketest"
	s3Secret = "sanketestsecret"
	s3Bucket = "recordings"
)

var versitygwBuild struct {
	sync.Mutex
	path string
}

// versitygwBinary installs versitygw once into the user cache (reused between runs).
func versitygwBinary(t testing.TB) string {
	t.Helper()
	versitygwBuild.Lock()
	defer versitygwBuild.Unlock()
	if versitygwBuild.path != "" {
		return versitygwBuild.path
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	if d := os.Getenv("SANKE_TOOLS_CACHE"); d != "" {
		base = d
	}
	dir := filepath.Join(base, "sanke-tools", "versitygw-"+versitygwVersion)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cmd := exec.Command("go", "install", "github.com/versity/versitygw/cmd/versitygw@"+versitygwVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go install versitygw: %v\n%s", err, out)
		}
		t.Logf("installed versitygw %s in %.0fs", versitygwVersion, time.Since(start).Seconds())
	}
	versitygwBuild.path = bin
	return bin
}

// s3Server is a versitygw process with its posix backend in a temporary directory.
type s3Server struct {
	t        testing.TB
	bin, dir string
	port     int
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
}

func startS3(t testing.TB) *s3Server {
	t.Helper()
	if testing.Short() {
		t.Skip("short mode: runs an S3 server (and a recording through it)")
	}
	s := &s3Server{t: t, bin: versitygwBinary(t), dir: t.TempDir(), port: testclient.FreePort(t, "tcp")}
	if err := os.MkdirAll(filepath.Join(s.dir, s3Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *s3Server) endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *s3Server) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "--access", s3Access, "--secret", s3Secret, "--region", "us-east-1",
		"--port", "127.0.0.1:"+strconv.Itoa(s.port), "posix", s.dir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
		if err == nil {
			_ = c.Close() // a probe: the server accepts connections
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *s3Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func (s *s3Server) store(t testing.TB) *storage.S3 {
	st, err := storage.NewS3(storage.S3Config{Endpoint: s.endpoint(), Region: "us-east-1", Bucket: s3Bucket,
		PathStyle: true, AccessKey: s3Access, SecretKey: s3Secret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *s3Server) yaml() string {
	return fmt.Sprintf(`    type: s3
    s3:
      endpoint: %s
      region: us-east-1
      bucket: %s
      path_style: true
      access_key: %s
      secret_key: %s
`, s.endpoint(), s3Bucket, s3Access, s3Secret)
}

// testServer is an in-process Sanke with recording on.
type testServer struct {
	srv    *server.Server
	cfg    *config.Config
	target testclient.Target
	events chan recorder.Event
}

// startServer runs an in-process dev server recording rooms named rec-*.
func startServer(t testing.TB, s3 *s3Server, opts ...func(*config.Config)) *testServer {
	t.Helper()
	if testing.Short() {
		t.Skip("short mode: records through a running server")
	}
	cfg := config.DevDefault()
	cfg.RTC.TCPPort = 0
	cfg.DataDir = t.TempDir()
	cfg.Recording.AutoRooms = []string{"rec-*"}
	cfg.Recording.Storage.Prefix = "classes/"
	if s3 != nil {
		cfg.Recording.Storage.Type = "s3"
		cfg.Recording.Storage.S3 = config.S3Config{Endpoint: s3.endpoint(), Region: "us-east-1", Bucket: s3Bucket,
			PathStyle: true, AccessKey: s3Access, SecretKey: s3Secret}
	}
	for _, o := range opts {
		o(cfg)
	}
	events := make(chan recorder.Event, 64)
	is := inprocess.StartWith(t, cfg, func(srv *server.Server) {
		srv.Recorder().AddObserver(recorder.ObserverFunc(func(e recorder.Event) {
			select {
			case events <- e:
			default:
			}
		}))
	})
	return &testServer{srv: is.Server, cfg: &is.Config, target: is.Target, events: events}
}

// waitRecorderIn waits until the recorder is in room.
func waitRecorderIn(t testing.TB, rec *recorder.Recorder, room string) {
	t.Helper()
	testclient.Eventually(t, 20*time.Second, "recorder joins "+room, func() (bool, string) {
		for _, st := range rec.Active() {
			if st.Room == room && st.Connected {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", rec.Active())
	})
}

// waitRecording waits until the recorder records room: it is in the room and has opened a
// file for a track it subscribed to. Durations a test compares with the file's count from
// here, so that the time the recorder takes to join and subscribe (longer on a loaded
// machine) is not counted as missing from the file.
func waitRecording(t testing.TB, rec *recorder.Recorder, room string) {
	t.Helper()
	testclient.Eventually(t, 20*time.Second, "recorder records "+room, func() (bool, string) {
		for _, st := range rec.Active() {
			if st.Room == room && st.Connected && len(st.Files) > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", rec.Active())
	})
}

// api calls the recording HTTP API with a token holding grant.
func api(t testing.TB, target testclient.Target, method, path string, grant *auth.VideoGrant, out any) int {
	t.Helper()
	code, b := httpDo(t, method, target.HTTPURL+path, target.Token(t, "api-caller", grant))
	if out != nil && code < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if code >= 300 && out != nil {
		t.Logf("%s %s: %d %s", method, path, code, b)
	}
	return code
}

// httpDo sends a request (with a bearer token unless empty) without following redirects.
func httpDo(t testing.TB, method, u, bearer string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	cl := &http.Client{Timeout: 3 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// publishCameraMic joins identity and publishes VP8 simulcast and Opus. Extra connect options
// (interceptors) apply to the publisher's peer connections.
func publishCameraMic(t testing.TB, target testclient.Target, room, identity string, opts ...lksdk.ConnectOption) *testclient.Client {
	c, _ := publishCameraMicPub(t, target, room, identity, opts...)
	return c
}

// publishCameraMicPub is publishCameraMic that also returns the video publication.
func publishCameraMicPub(t testing.TB, target testclient.Target, room, identity string, opts ...lksdk.ConnectOption) (*testclient.Client, *testclient.Publication) {
	t.Helper()
	files := testmedia.Get(t)
	c := testclient.Join(t, target, room, identity, &testclient.JoinOptions{ConnectOptions: opts, NoAutoSubscribe: true})
	v, err := testclient.PublishSimulcastVP8(c.Room, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testclient.PublishOpus(c.Room, files, nil); err != nil {
		t.Fatal(err)
	}
	return c, v
}

// fetch copies an object of store into a temporary file.
func fetch(t testing.TB, store storage.Store, key string) string {
	t.Helper()
	rc, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	p := filepath.Join(t.TempDir(), filepath.Base(key))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return p
}

// probeResult is what checkFile found.
// probeResult and probe: see testmedia.Probe.
type probeResult = testmedia.ProbeResult

func probe(t testing.TB, path string) probeResult { return testmedia.Probe(t, path) }

// checkDuration checks the duration of a recorded file (r, as probed, and as its manifest
// entry says) that holds what was published for about published. The file's own timeline
// is checked closely: the manifest agrees with the file, and the video frames (30 fps) do
// not outnumber what the duration holds (timestamps at the media's clock rate, not
// squeezed). Against the wall clock the check is loose: when media starts to flow to the
// recorder and how it is paced vary by a second or two on a loaded machine.
func checkDuration(t testing.TB, r probeResult, manifest float64, published time.Duration) {
	t.Helper()
	within(t, "manifest duration against the file's (s)", manifest, r.Duration, 0.02)
	if held := int(r.Duration*30*1.02) + 2; r.VideoFrames > held {
		t.Errorf("%d video frames in %.2f s: more than 30 fps", r.VideoFrames, r.Duration)
	}
	within(t, "file duration against the time published (s)", r.Duration, published.Seconds(), 0.2)
}

// within checks got against want with a relative tolerance.
func within(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if got < want*(1-tol) || got > want*(1+tol) {
		t.Errorf("%s = %.2f, want %.2f ± %.0f%%", what, got, want, tol*100)
	} else {
		t.Logf("%s = %.2f (want %.2f ± %.0f%%)", what, got, want, tol*100)
	}
}

// lossy is a pion interceptor that drops and reorders the RTP a publisher sends.
type lossy struct {
	interceptor.NoOp
	loss, reorder float64
	mu            sync.Mutex
	rng           *rand.Rand
}

type lossyFactory struct{ loss, reorder float64 }

func (f lossyFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &lossy{loss: f.loss, reorder: f.reorder, rng: rand.New(rand.NewPCG(1, 2))}, nil
}

// BindLocalStream drops a fraction of packets and swaps some with the next one.
func (l *lossy) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var held *struct {
		h   rtp.Header
		p   []byte
		att interceptor.Attributes
	}
	var mu sync.Mutex
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		l.mu.Lock()
		x := l.rng.Float64()
		l.mu.Unlock()
		if x < l.loss {
			return len(payload), nil
		}
		mu.Lock()
		defer mu.Unlock()
		if held == nil && x < l.loss+l.reorder {
			held = &struct {
				h   rtp.Header
				p   []byte
				att interceptor.Attributes
			}{h: h.Clone(), p: bytes.Clone(payload), att: a}
			return len(payload), nil
		}
		n, err := w.Write(h, payload, a)
		if held != nil {
			_, _ = w.Write(&held.h, held.p, held.att)
			held = nil
		}
		return n, err
	})
}
