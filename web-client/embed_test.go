package webclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The inputs of the bundle, as in scripts/source-hash.mjs (keep the two in step).
var (
	sourceFiles = []string{"index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"}
	sourceDirs  = []string{"src"}
)

// sourceHash recomputes the hash scripts/source-hash.mjs writes to dist/source-hash.txt.
func sourceHash(root string) (string, error) {
	seen := map[string]bool{}
	files := []string{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, f := range sourceFiles {
		add(f)
	}
	for _, d := range sourceDirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			add(filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n%d\n", f, len(b))
		h.Write(b)
		h.Write([]byte("\n"))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// TestBundleUpToDate fails when the committed bundle was not rebuilt after a change to the
// sources (or to package-lock.json).
func TestBundleUpToDate(t *testing.T) {
	want, err := sourceHash(".")
	if err != nil {
		t.Fatal(err)
	}
	if got := SourceHash(); got != want {
		t.Fatalf("web-client/dist is stale: it was built from sources hashing to %q, the checkout's hash to %q.\n"+
			"Rebuild it: cd web-client && npm ci && npm run build, and commit web-client/dist.", got, want)
	}
}

func TestHandler(t *testing.T) {
	h := Handler(Options{Reserved: []string{"/rtc", "/twirp/", "/api/", "/metrics", "/healthz"}})
	get := func(method, p string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, p, nil))
		return w
	}
	index, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/index.html", "/class/S1", "/dashboard"} {
		w := get("GET", p)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), index) {
			t.Errorf("GET %s: %d, index.html served: %v", p, w.Code, bytes.Equal(w.Body.Bytes(), index))
		}
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: headers %v", p, w.Header())
		}
	}
	var asset string
	_ = fs.WalkDir(FS(), "assets", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".js") && asset == "" {
			asset = p
		}
		return nil
	})
	if asset == "" {
		t.Fatal("no JavaScript asset in dist/assets")
	}
	w := get("GET", "/"+asset)
	if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), "javascript") ||
		!strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("GET /%s: %d %v", asset, w.Code, w.Header())
	}
	for _, p := range []string{"/assets/nope.js", "/favicon.ico", "/api/v2/x", "/rtc", "/rtc/v9", "/twirp/x", "/metrics", "/healthz"} {
		if w := get("GET", p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := get("POST", "/"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", w.Code)
	}
	if w := get("HEAD", "/dashboard"); w.Code != http.StatusOK {
		t.Errorf("HEAD /dashboard: %d", w.Code)
	}
}
