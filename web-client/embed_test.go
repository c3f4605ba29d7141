package webclient

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestBundleComplete checks the committed bundle without npm: every asset index.html loads,
// directly or through another asset, is there, and dist/assets holds no file that nothing
// loads (a leftover of an older build). That dist/ is what the sources build is checked by
// the web client's npm test (scripts/check-bundle.mjs rebuilds and compares byte for byte).
func TestBundleComplete(t *testing.T) {
	files := FS()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	assets, err := fs.ReadDir(files, "assets")
	if err != nil {
		t.Fatal(err)
	}
	// Vite names every asset <name>-<content hash>.<ext>; a file refers to another by that name.
	reached := map[string]bool{}
	queue := [][]byte{index}
	for len(queue) > 0 {
		text := queue[0]
		queue = queue[1:]
		for _, a := range assets {
			if name := a.Name(); !reached[name] && bytes.Contains(text, []byte(name)) {
				reached[name] = true
				b, err := fs.ReadFile(files, "assets/"+name)
				if err != nil {
					t.Fatal(err)
				}
				queue = append(queue, b)
			}
		}
	}
	for _, m := range assetRef.FindAllSubmatch(index, -1) {
		if _, err := fs.Stat(files, "assets/"+string(m[1])); err != nil {
			t.Errorf("index.html loads assets/%s, which dist/ lacks: rebuild (cd web-client && npm run build)", m[1])
		}
	}
	for _, a := range assets {
		if !reached[a.Name()] {
			t.Errorf("dist/assets/%s is loaded by nothing: a leftover of an older build (rebuild with npm run build)", a.Name())
		}
	}
	if len(reached) == 0 {
		t.Error("index.html loads no asset")
	}
}

// assetRef matches the assets index.html refers to.
var assetRef = regexp.MustCompile(`/assets/([A-Za-z0-9._-]+)`)

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
