package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/recorder"
	"github.com/sanke-edu/sanke/recorder/mkv"
	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
)

// TestRecordKill9 kills the server (SIGKILL) 15 s into a recording and starts it again:
// the recording must be completed from the spool, playable, with at most ~10 s missing
// before the kill, and no multipart upload or tail object may be left in the store.
func TestRecordKill9(t *testing.T) {
	t.Parallel()
	s3 := startS3(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`data_dir: %s
recording:
  auto_rooms: ["rec-*"]
  spool_dir: %s
  storage:
    prefix: classes/
%s`, dir, filepath.Join(dir, "spool"), s3.yaml())
	srv := testclient.StartSanke(t, testclient.WithConfigYAML(yaml))
	const room = "rec-crash"
	pub := publishCameraMic(t, srv.Target(), room, "teacher")
	start := time.Now()
	store := s3.store(t)
	ctx := context.Background()
	// The recorder has joined once its tail objects appear.
	testclient.Eventually(t, 20*time.Second, "recording starts uploading", func() (bool, string) {
		objs, _ := store.List(ctx, "classes/"+room+"/")
		return len(objs) > 0, fmt.Sprint(objs)
	})
	time.Sleep(15*time.Second - time.Since(start))
	srv.Kill()
	killedAt := time.Since(start)
	pub.Disconnect()
	t.Logf("killed the server %.1fs into the recording", killedAt.Seconds())

	testclient.StartSanke(t, testclient.WithConfigYAML(yaml))
	m := waitManifest(t, store, "classes/"+room+"/")
	if !m.Recovered || len(m.Files) != 1 {
		t.Fatalf("manifest: %+v", m)
	}
	assertNoLeftovers(t, store, "classes/")
	r := probe(t, fetch(t, store, m.Files[0].Key))
	t.Logf("recovered %.1fs of the %.1fs recorded before the kill", r.Duration, killedAt.Seconds())
	if r.Duration < killedAt.Seconds()-10 || r.Duration > killedAt.Seconds()+1 {
		t.Errorf("recovered duration %.1fs, want within 10 s before the kill at %.1fs", r.Duration, killedAt.Seconds())
	}
}

// waitManifest waits for a manifest under prefix and returns it.
func waitManifest(t *testing.T, store storage.Store, prefix string) recorder.Manifest {
	t.Helper()
	ctx := context.Background()
	var m recorder.Manifest
	testclient.Eventually(t, 60*time.Second, "recovered manifest", func() (bool, string) {
		objs, _ := store.List(ctx, prefix)
		for _, o := range objs {
			if strings.HasSuffix(o.Key, "/"+recorder.ManifestName) {
				rc, err := store.Get(ctx, o.Key)
				if err != nil {
					return false, err.Error()
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				return json.Unmarshal(b, &m) == nil, string(b)
			}
		}
		return false, fmt.Sprint(objs)
	})
	return m
}

// TestRecordKill9SpoolLost kills the server (SIGKILL) while it records, once the store holds
// a multipart part and tail objects after it, and deletes the spool (a new machine, a wiped
// disk). A recorder started on the same store must complete the recording from what was
// uploaded alone: an indexed, seekable, playable file with at most ~10 s missing before the
// kill, a manifest, and no multipart upload or tail object left.
func TestRecordKill9SpoolLost(t *testing.T) {
	t.Parallel()
	s3 := startS3(t)
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	yaml := fmt.Sprintf(`data_dir: %s
recording:
  auto_rooms: ["rec-*"]
  spool_dir: %s
  part_size_mb: 5
  storage:
    prefix: classes/
%s`, dir, spool, s3.yaml())
	srv := testclient.StartSanke(t, testclient.WithConfigYAML(yaml))
	const room = "rec-spool-lost"
	pub := publishCameraMic(t, srv.Target(), room, "teacher")
	start := time.Now()
	store := s3.store(t)
	ctx := context.Background()
	// 720p VP8 and Opus make a 5 MiB part in about half a minute; then wait for a tail object
	// beyond it, so that recovery needs both.
	var partEnd int64
	testclient.Eventually(t, 120*time.Second, "a multipart part is uploaded", func() (bool, string) {
		ups, err := store.ListMultipart(ctx, "classes/"+room+"/")
		if err != nil || len(ups) == 0 {
			return false, fmt.Sprint(ups, err)
		}
		parts, err := store.ListParts(ctx, ups[0].Key, ups[0].UploadID)
		partEnd = 0
		for _, p := range parts {
			partEnd += p.Size
		}
		return len(parts) > 0, fmt.Sprint(parts, err)
	})
	testclient.Eventually(t, 30*time.Second, "a tail object after the part", func() (bool, string) {
		objs, _ := store.List(ctx, "classes/"+room+"/")
		for _, o := range objs {
			i := strings.LastIndexByte(o.Key, '/')
			if off, err := strconv.ParseInt(o.Key[i+1:], 10, 64); err == nil && strings.Contains(o.Key, "/.inprogress/") && off >= partEnd {
				return true, ""
			}
		}
		return false, fmt.Sprint(objs)
	})
	srv.Kill()
	killedAt := time.Since(start)
	pub.Disconnect()
	t.Logf("killed the server %.1fs into the recording, %d bytes in parts", killedAt.Seconds(), partEnd)
	if err := os.RemoveAll(spool); err != nil {
		t.Fatal(err)
	}

	// A recorder on a new machine: the same store, an empty spool.
	w := io.Discard
	if os.Getenv("SANKE_TEST_LOG") != "" {
		w = os.Stderr
	}
	rec, err := recorder.New(recorder.Options{Store: store, Prefix: "classes/", SpoolDir: filepath.Join(t.TempDir(), "spool"),
		StaleAfter: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(w, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec.Start()
	t.Cleanup(func() { _ = rec.Close(ctx) })
	m := waitManifest(t, store, "classes/"+room+"/")
	if !m.Recovered || len(m.Files) != 1 {
		t.Fatalf("manifest: %+v", m)
	}
	f := m.Files[0]
	if !f.Indexed || f.Participant != "teacher" || f.Source != "camera" || len(f.Tracks) != 2 || f.SHA256 == "" {
		t.Errorf("manifest file entry: %+v", f)
	}
	assertNoLeftovers(t, store, "classes/")
	p := fetch(t, store, f.Key)
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := mkv.Scan(fh, io.Discard)
	_ = fh.Close() // only read from
	if err != nil || !sc.Finalized {
		t.Errorf("recovered file is not finalized (cues, sizes, duration): %v", err)
	}
	r := probe(t, p)
	t.Logf("recovered %.1fs of the %.1fs recorded before the kill (manifest: %.1fs)", r.Duration, killedAt.Seconds(), f.Duration)
	// File time follows RTP from the first packet's arrival: on a loaded machine, media that
	// arrived late at the start shifts the end past the kill by that delay.
	if r.Duration < killedAt.Seconds()-10 || r.Duration > killedAt.Seconds()+3 {
		t.Errorf("recovered duration %.1fs, want within 10 s before the kill at %.1fs", r.Duration, killedAt.Seconds())
	}
	within(t, "manifest duration (s)", f.Duration, r.Duration, 0.02)
}
