package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/internal/testclient"
	"github.com/sanke-edu/sanke/recorder"
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
	var m recorder.Manifest
	testclient.Eventually(t, 60*time.Second, "recovered manifest", func() (bool, string) {
		objs, _ := store.List(ctx, "classes/"+room+"/")
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
