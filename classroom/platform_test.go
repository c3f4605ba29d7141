package classroom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/classroom/coverage"
	"github.com/sanke-edu/sanke/classroom/outbox"
	"github.com/sanke-edu/sanke/test/testclient"
)

// platform is a fake education platform: it verifies signatures, fails every third request
// with a 500, and keeps what it accepted.
type platform struct {
	secret string

	mu         sync.Mutex
	requests   int
	failures   int
	badSig     int
	deliveries []string          // idempotency keys of accepted deliveries, in order
	records    map[string][]byte // idempotency key -> body
}

func (p *platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if err := outbox.Verify(p.secret, r.Header.Get(outbox.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		p.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if p.requests%3 == 0 {
		p.failures++
		http.Error(w, "intermittent failure", http.StatusInternalServerError)
		return
	}
	key := r.Header.Get(outbox.HeaderIdempotencyKey)
	p.deliveries = append(p.deliveries, key)
	p.records[key] = body // deduplication by idempotency key
	w.WriteHeader(http.StatusCreated)
}

func (p *platform) unique() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

// sankeProcess runs the sanke binary.
type sankeProcess struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startSanke(t *testing.T, bin, cfgPath string, port, udpPort int) *sankeProcess {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", "--dev", "--config", cfgPath, "--port", strconv.Itoa(port), "--udp-port", strconv.Itoa(udpPort))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sankeProcess{cmd: cmd, log: &log}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("sanke did not start: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPlatformPushSurvivesKill runs Sanke as a separate process with a timetable of eight
// one-second sessions. The platform is down until Sanke is killed with SIGKILL in the middle,
// while records wait for it after failed attempts, and restarted on the same data; then it
// fails every third request.
// Every session record must reach the platform exactly once after deduplication by
// idempotency key, every delivery correctly signed.
func TestPlatformPushSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sanke binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sanke")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sanke")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	const n = 8
	t0 := time.Now().Add(2 * time.Second).Truncate(time.Second)
	var ds bytes.Buffer
	ds.WriteString("sessions:\n")
	for i := range n {
		pairing := []string{"P-MUSIC", "P-ART"}[i%2]
		start := t0.Add(time.Duration(i) * time.Second)
		fmt.Fprintf(&ds, "  - {id: P%d, course_type: 1, pairing: %s, start: %q, end: %q}\n", i, pairing,
			start.Format(time.RFC3339), start.Add(time.Second).Format(time.RFC3339))
	}
	dsPath := filepath.Join(dir, "sessions.yaml")
	if err := os.WriteFile(dsPath, ds.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sample, err := filepath.Abs("sample/sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	platformPort := testclient.FreePort(t, "tcp")
	cfg := fmt.Sprintf(`data_dir: %s
rtc:
  tcp_port: 0
recording:
  enabled: false
classroom:
  enabled: true
  dataset: [%s, %s]
  admin_key: %s
  sample_interval: 200ms
  finalize_delay: 500ms
  password_cost: 4
  platform:
    url: http://127.0.0.1:%d/records
    secret: platform-secret
    retry_min: 100ms
    retry_max: 1s
    daily_report_hour: -1
`, filepath.Join(dir, "data"), sample, dsPath, adminKey, platformPort)
	cfgPath := filepath.Join(dir, "sanke.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port, udpPort := testclient.FreePort(t, "tcp"), testclient.FreePort(t, "udp")

	plat := &platform{secret: "platform-secret", records: map[string][]byte{}}
	first := startSanke(t, bin, cfgPath, port, udpPort)

	// Mid-timetable, once records wait for the (still down) platform after failed attempts:
	// kill -9, and restart on the same database.
	outboxStats := func() outbox.Stats {
		var ob struct{ Stats outbox.Stats }
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(port)+"/api/v1/outbox", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&ob)
			resp.Body.Close()
		}
		return ob.Stats
	}
	var before outbox.Stats
	testclient.Eventually(t, 30*time.Second, "records waiting for the platform after failed attempts", func() (bool, string) {
		before = outboxStats()
		return before.Pending >= 2 && before.FailuresSinceStart > 0, fmt.Sprintf("%+v", before)
	})
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	t.Logf("killed with %d records waiting (%d failed attempts); restarting", before.Pending, before.FailuresSinceStart)
	second := startSanke(t, bin, cfgPath, port, udpPort)

	// The platform comes up after the restart.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(platformPort))
	if err != nil {
		t.Fatal(err)
	}
	psrv := &http.Server{Handler: plat, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = psrv.Serve(l) }()
	defer func() { _ = psrv.Close() }()

	// Every session's record is made and delivered (the server has nothing left to send, so
	// nothing more can reach the platform).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var after outbox.Stats
	if err := testclient.WaitFor(ctx, func() bool {
		after = outboxStats()
		return after.Pending == 0 && after.Delivered == n && plat.unique() == n
	}); err != nil {
		_ = second.cmd.Process.Kill()
		_ = second.cmd.Wait()
		t.Fatalf("outbox %+v; the platform has %d of %d records\nfirst run:\n%s\nsecond run:\n%s", after, plat.unique(), n, first.log, second.log)
	}

	plat.mu.Lock()
	defer plat.mu.Unlock()
	if plat.badSig != 0 {
		t.Errorf("%d deliveries with a bad signature", plat.badSig)
	}
	if plat.failures == 0 {
		t.Error("the platform never failed: the retry path was not exercised")
	}
	if len(plat.records) != n {
		t.Errorf("%d distinct records, want %d: %v", len(plat.records), n, plat.deliveries)
	}
	for i := range n {
		key := fmt.Sprintf("session-record:P%d", i)
		var rec coverage.SessionRecord
		if err := json.Unmarshal(plat.records[key], &rec); err != nil || rec.SessionID != fmt.Sprintf("P%d", i) || len(rec.Receivers) != 2 {
			t.Errorf("%s: %v %+v", key, err, rec)
		}
	}
	t.Logf("%d requests, %d answered 500, %d deliveries accepted for %d records", plat.requests, plat.failures, len(plat.deliveries), len(plat.records))

	// The restarted server has every record too.
	var recs []json.RawMessage
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(port)+"/api/v1/records", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&recs)
	if len(recs) != n {
		t.Errorf("the server lists %d records, want %d", len(recs), n)
	}
}
