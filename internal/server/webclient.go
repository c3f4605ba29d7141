package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/classroom"
	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/classroom/sample"
	"github.com/sanke-edu/sanke/internal/config"
	webclient "github.com/sanke-edu/sanke/web-client"
)

// The web client (web-client/, issue 6) is served at "/": every path the server does not own
// answers the single-page application, whose built bundle is embedded in the binary.
//
//	GET  /                      the application (index.html for client routes, assets/ files)
//	GET  /client-config.json    {"dev","classroom","recording","version"}: what the client offers
//
// Every answer of the application carries a strict Content-Security-Policy (webClientCSP):
// scripts, styles and everything else from this origin only, nothing inline, no framing.
//
// Dev mode only (cfg.Dev), and only from a loopback address, whatever the bind address:
//
//	POST /dev/token             {"room","identity","name","kind":"join"|"reader"} -> {"token","url"}
//	                            a LiveKit token signed with the dev key: "join" for the quick
//	                            room (publish, subscribe, data), "reader" (roomList) for the
//	                            coverage dashboard. Dev mode already uses the public key
//	                            devkey/secret, so this endpoint gives nothing that was not
//	                            available; outside dev mode it does not exist.
//	POST /dev/demo              merges a demo dataset into the classroom service (the sample
//	                            classrooms and accounts, with sessions happening now) and
//	                            answers {"sessions","accounts"} with the demo passwords.

// webClientReserved are the path prefixes of the server's own routes: the application never
// answers them, so a typo in an API path gets a 404, not index.html.
var webClientReserved = []string{"/rtc", "/twirp/", "/api/", "/metrics", "/healthz", "/dev/"}

// devBodyLimit bounds the bodies of the dev endpoints.
const devBodyLimit = 4096

// setupWebClient registers the web client's routes (called from New).
func (s *Server) setupWebClient() {
	csp := newWebClientCSP(s.cfg)
	app := webclient.Handler(webclient.Options{Reserved: webClientReserved})
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp.forHost(r.Host))
		app.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("GET /client-config.json", s.handleClientConfig)
	if s.cfg.Dev {
		s.mux.Handle("POST /dev/token", s.devOnly(s.handleDevToken))
		s.mux.Handle("POST /dev/demo", s.devOnly(s.handleDevDemo))
	}
}

// webClientCSP is the web client's Content-Security-Policy, less the page's own websocket
// origin, which depends on the host the page was loaded from.
type webClientCSP struct {
	connect, media string // sources beyond 'self', each with a leading space
}

// newWebClientCSP allows what the configuration points the client at beyond its own origin:
// the websocket of classroom.public_url (and its http(s) twin, which livekit-client asks
// /rtc/validate) and an S3 store's presigned recording links.
func newWebClientCSP(cfg *config.Config) webClientCSP {
	var p webClientCSP
	if u, err := url.Parse(cfg.Classroom.PublicURL); err == nil && cspHost(u.Host) {
		switch u.Scheme {
		case "wss", "https":
			p.connect += " wss://" + u.Host + " https://" + u.Host
		case "ws", "http":
			p.connect += " ws://" + u.Host + " http://" + u.Host
		}
	}
	if rc := cfg.Recording; rc.Enabled && rc.Storage.Type == "s3" {
		if u, err := url.Parse(rc.Storage.S3.Endpoint); err == nil && cspHost(u.Host) && (u.Scheme == "http" || u.Scheme == "https") {
			origins := " " + u.Scheme + "://" + u.Host
			if b := rc.Storage.S3.Bucket; !rc.Storage.S3.PathStyle && b != "" && cspHost(b+"."+u.Host) {
				origins += " " + u.Scheme + "://" + b + "." + u.Host // virtual-hosted bucket
			}
			p.media += origins
			p.connect += origins
		}
	}
	return p
}

// forHost returns the policy for a page loaded from host (the request's Host): 'self' covers
// its websocket in today's browsers, the explicit ws:/wss: sources older ones.
func (p webClientCSP) forHost(host string) string {
	connect := "'self'"
	if cspHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
		"media-src 'self' blob:" + p.media + "; connect-src " + connect + p.connect + "; " +
		"font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

// cspHost reports whether h is a host[:port] that can go into a policy as it is: letters,
// digits, dots, dashes, an IPv6 literal in brackets, a port. Anything else (a Host header
// with spaces or semicolons) is left out rather than escaped.
func cspHost(h string) bool {
	if h == "" || len(h) > 261 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == ':', r == '[', r == ']':
		default:
			return false
		}
	}
	return true
}

func (s *Server) handleClientConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeWebJSON(w, http.StatusOK, map[string]any{
		"dev":       s.cfg.Dev,
		"classroom": s.extras.classroom != nil,
		"recording": s.recorder != nil,
		"version":   Version,
	})
}

func writeWebJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// devOnly refuses requests when dev mode is off or the caller is not on this machine, and
// bounds the body.
func (s *Server) devOnly(h http.HandlerFunc) http.Handler {
	return loopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.Dev {
			http.NotFound(w, r)
			return
		}
		if r.ContentLength > devBodyLimit {
			writeTooLarge(w, devBodyLimit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, devBodyLimit)
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	}))
}

// devKey returns the key that signs dev tokens (the first in alphabetical order).
func (s *Server) devKey() (string, string) {
	names := make([]string, 0, len(s.cfg.Keys))
	for k := range s.cfg.Keys {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", ""
	}
	return names[0], s.cfg.Keys[names[0]]
}

func (s *Server) handleDevToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Room     string `json:"room"`
		Identity string `json:"identity"`
		Name     string `json:"name"`
		Kind     string `json:"kind"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeTooLarge(w, mbe.Limit)
			return
		}
		writeWebJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body"})
		return
	}
	key, secret := s.devKey()
	if key == "" {
		writeWebJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no API key"})
		return
	}
	at := auth.NewAccessToken(key, secret).SetValidFor(6 * time.Hour)
	switch req.Kind {
	case "reader":
		at.SetIdentity("dev-reader").SetVideoGrant(&auth.VideoGrant{RoomList: true})
	case "", "join":
		req.Room, req.Identity = strings.TrimSpace(req.Room), strings.TrimSpace(req.Identity)
		if req.Room == "" || req.Identity == "" || len(req.Room) > 64 || len(req.Identity) > 64 {
			writeWebJSON(w, http.StatusBadRequest, map[string]string{"error": "room and identity (at most 64 characters) required"})
			return
		}
		g := &auth.VideoGrant{RoomJoin: true, Room: req.Room}
		g.SetCanPublish(true)
		g.SetCanSubscribe(true)
		g.SetCanPublishData(true)
		at.SetIdentity(req.Identity).SetName(req.Name).SetVideoGrant(g)
	default:
		writeWebJSON(w, http.StatusBadRequest, map[string]string{"error": `kind must be "join" or "reader"`})
		return
	}
	tok, err := at.ToJWT()
	if err != nil {
		writeWebJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeWebJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// devDemoAccounts are the demo dataset's accounts and passwords (those of
// classroom/sample/sample.yaml), shown by the sign-in page in dev mode.
var devDemoAccounts = [][2]string{
	{"M1", "music-master-1"}, {"M2", "art-master-22"}, {"T1", "houtang-tp-1"}, {"T2", "shangpuxi-tp2"},
	{"T3", "beidouxi-tp3"}, {"T4", "longzhuang-4"}, {"T5", "tongxihe-tp5"}, {"HH-SUP", "huaihua-supervisor"},
}

// devDemoDataset returns the demo dataset with sessions around now: a music delivery class
// (M1 -> T1, T2) and an art research session (M2 with T3, T4, T5) live now, and an art
// delivery class (M2 -> T3, T4) in the next hour.
func devDemoDataset(now time.Time) []byte {
	start := now.Truncate(5 * time.Minute).Add(-10 * time.Minute)
	at := func(d time.Duration) string { return start.Add(d).Format(time.RFC3339) }
	var b strings.Builder
	b.WriteString(sample.Structure())
	fmt.Fprintf(&b, "sessions:\n")
	fmt.Fprintf(&b, "  - {id: DEMO-MUSIC, course_type: 1, pairing: P-MUSIC, grade: 3, start: %q, end: %q, room: demo-music}\n", at(0), at(60*time.Minute))
	fmt.Fprintf(&b, "  - {id: DEMO-RESEARCH, course_type: 2, subject: 美术, grade: 4, master: M2, receivers: [T3, T4, T5], start: %q, end: %q, room: demo-research}\n", at(0), at(60*time.Minute))
	fmt.Fprintf(&b, "  - {id: DEMO-ART, course_type: 1, pairing: P-ART, grade: 4, start: %q, end: %q, room: demo-art}\n", at(70*time.Minute), at(110*time.Minute))
	b.WriteString("accounts:\n")
	for _, a := range devDemoAccounts {
		if a[0] == "HH-SUP" {
			fmt.Fprintf(&b, "  - {id: %s, kind: supervisor, name: 怀化市教育局巡课员, region: \"431200\", password: %s}\n", a[0], a[1])
			continue
		}
		fmt.Fprintf(&b, "  - {id: %s, kind: classroom, classroom: %s, password: %s}\n", a[0], a[0], a[1])
	}
	return []byte(b.String())
}

func (s *Server) handleDevDemo(w http.ResponseWriter, r *http.Request) {
	svc := s.extras.classroom
	if svc == nil {
		writeWebJSON(w, http.StatusNotFound, map[string]string{"error": "the classroom service is disabled (classroom.enabled)"})
		return
	}
	in, errs := model.ReadData("demo.yaml", devDemoDataset(time.Now()), "")
	if len(errs) > 0 {
		writeWebJSON(w, http.StatusInternalServerError, map[string]any{"error": errs.Err().Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if _, err := svc.Import(ctx, in, classroom.ImportOptions{Actor: "dev-demo"}); err != nil {
		writeWebJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error()})
		return
	}
	accounts := make([]map[string]string, 0, len(devDemoAccounts))
	for _, a := range devDemoAccounts {
		accounts = append(accounts, map[string]string{"id": a[0], "password": a[1]})
	}
	writeWebJSON(w, http.StatusOK, map[string]any{"sessions": []string{"DEMO-MUSIC", "DEMO-RESEARCH", "DEMO-ART"}, "accounts": accounts})
}
