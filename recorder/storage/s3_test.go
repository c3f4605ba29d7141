package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/recorder/storage"
	"github.com/sanke-edu/sanke/test/testclient"
)

// TestS3CallsEndWhenTheStoreNeverAnswers calls every Store method against an endpoint that
// accepts connections and never answers: each returns an error instead of blocking (the
// context given has no deadline: the store bounds its calls itself).
func TestS3CallsEndWhenTheStoreNeverAnswers(t *testing.T) {
	t.Parallel()
	s, err := storage.NewS3(storage.S3Config{Endpoint: testclient.SilentEndpoint(t), Region: "us-east-1", Bucket: "recordings", PathStyle: true,
		AccessKey: "k", SecretKey: "s", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := func() io.Reader { return bytes.NewReader([]byte("data")) }
	calls := map[string]func() error{
		"Put":  func() error { return s.Put(ctx, "k", body(), 4, "text/plain") },
		"Get":  func() error { _, err := s.Get(ctx, "k"); return err },
		"Stat": func() error { _, err := s.Stat(ctx, "k"); return err },
		"List": func() error { _, err := s.List(ctx, ""); return err },
		"Delete": func() error {
			return s.Delete(ctx, "k")
		},
		"CreateMultipart": func() error { _, err := s.CreateMultipart(ctx, "k", "text/plain"); return err },
		"UploadPart":      func() error { _, err := s.UploadPart(ctx, "k", "u", 1, body(), 4); return err },
		"ListParts":       func() error { _, err := s.ListParts(ctx, "k", "u"); return err },
		"CompleteMultipart": func() error {
			return s.CompleteMultipart(ctx, "k", "u", []storage.Part{{Number: 1, ETag: "e"}})
		},
		"AbortMultipart": func() error { return s.AbortMultipart(ctx, "k", "u") },
		"ListMultipart":  func() error { _, err := s.ListMultipart(ctx, ""); return err },
		"Check":          func() error { return s.Check(ctx) },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := call(); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s against a silent store: %v, want a failure", name, err)
			} else {
				t.Logf("%s: %v", name, err)
			}
		}()
	}
	wg.Wait()
	// Presigning needs no answer when the region is configured.
	if u, err := s.PresignGet(ctx, "k", time.Minute); err != nil || u == "" {
		t.Errorf("PresignGet: %q, %v", u, err)
	}
}

// TestS3GetEndsWhenTheBodyStalls reads an object whose body stops coming after the headers:
// the read fails instead of blocking.
func TestS3GetEndsWhenTheBodyStalls(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("the start"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	s, err := storage.NewS3(storage.S3Config{Endpoint: srv.URL, Region: "us-east-1", Bucket: "recordings", PathStyle: true,
		// Long enough for the headers to come back on a loaded machine; the stall after them
		// is what must end the read.
		AccessKey: "k", SecretKey: "s", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(context.Background(), "k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer rc.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(rc)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a truncated body was read without error")
		}
		t.Logf("read: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("reading a stalled body never ended")
	}
}
