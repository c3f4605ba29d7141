// Package webclient embeds the built Sanke web client (web-client/dist, committed) and serves
// it as a single-page application.
//
// The bundle is built from the TypeScript sources in this folder with `npm run build`. The
// web client's `npm test` rebuilds it into a temporary directory and compares the result with
// dist/ byte for byte (scripts/check-bundle.mjs); TestBundleComplete checks, without npm, that
// dist/ holds every asset index.html needs and nothing else. See README.md.
package webclient

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// FS returns the built client: index.html and assets/.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil { // impossible: "dist" is a valid path embedded above
		panic(err)
	}
	return sub
}

// Options configures the handler.
type Options struct {
	// Reserved are path prefixes that are never answered with the application (the server's
	// own routes: "/rtc", "/twirp/", "/api/", ...). Requests under them that reach this
	// handler get 404.
	Reserved []string
}

// Handler serves the client: files of the bundle as they are (assets/ with hashed names are
// cached for a year), and index.html for every other GET or HEAD path (client-side routes),
// never cached so that a new server version is picked up at once.
func Handler(opts Options) http.Handler {
	files := FS()
	index, _ := fs.ReadFile(files, "index.html")
	static := http.FileServerFS(files)
	modTime := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		for _, pre := range opts.Reserved {
			if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
				http.NotFound(w, r)
				return
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		name := strings.TrimPrefix(path.Clean(p), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(files, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					w.Header().Set("Cache-Control", "no-cache")
				}
				static.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
				http.NotFound(w, r) // a missing file, not a client route
				return
			}
		}
		if index == nil {
			http.Error(w, "web client not built (web-client/dist is empty)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, "index.html", modTime, bytes.NewReader(index))
	})
}
