package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

// verifyToken parses and verifies a printed token.
func verifyToken(t *testing.T, out, key, secret string) *auth.ClaimGrants {
	t.Helper()
	raw := strings.TrimSpace(out)
	v, err := auth.ParseAPIToken(raw)
	if err != nil {
		t.Fatalf("ParseAPIToken(%q): %v", raw, err)
	}
	if v.APIKey() != key {
		t.Errorf("API key = %q, want %q", v.APIKey(), key)
	}
	_, grants, err := v.Verify(secret)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return grants
}

// videoPerms is the participant-visible outcome of a grant, as the server evaluates it.
type videoPerms struct {
	join, publish, subscribe, publishData, hidden, admin, list, create, record, updateMetadata bool
}

func permsOf(g *auth.VideoGrant) videoPerms {
	return videoPerms{
		join:           g.RoomJoin,
		publish:        g.GetCanPublish(),
		subscribe:      g.GetCanSubscribe(),
		publishData:    g.GetCanPublishData(),
		hidden:         g.Hidden,
		admin:          g.RoomAdmin,
		list:           g.RoomList,
		create:         g.RoomCreate,
		record:         g.RoomRecord,
		updateMetadata: g.GetCanUpdateOwnMetadata(),
	}
}

func TestTokenGrants(t *testing.T) {
	tests := []struct {
		name   string
		grants []string // --grants value; nil means the flag is absent
		want   videoPerms
	}{
		{
			name: "default",
			want: videoPerms{join: true, publish: true, subscribe: true, publishData: true},
		},
		{
			name:   "subscribe only (a student watching a lecture)",
			grants: []string{"join,subscribe"},
			want:   videoPerms{join: true, subscribe: true},
		},
		{
			name:   "publish without data",
			grants: []string{"join,publish"},
			want:   videoPerms{join: true, publish: true},
		},
		{
			name:   "data without media",
			grants: []string{"join, publish-data"},
			want:   videoPerms{join: true, publishData: true},
		},
		{
			name:   "teacher",
			grants: []string{"join,publish,subscribe,publish-data,admin,update-metadata"},
			want: videoPerms{join: true, publish: true, subscribe: true, publishData: true,
				admin: true, updateMetadata: true},
		},
		{
			name:   "hidden observer",
			grants: []string{"join,subscribe,hidden"},
			want:   videoPerms{join: true, subscribe: true, hidden: true},
		},
		{
			name:   "room service backend",
			grants: []string{"list,create,record,admin"},
			want:   videoPerms{list: true, create: true, record: true, admin: true},
		},
		{
			name:   "upper case and spaces",
			grants: []string{" JOIN , Subscribe "},
			want:   videoPerms{join: true, subscribe: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"token", "--dev", "--room", "math-101", "--identity", "ada"}
			if tt.grants != nil {
				args = append(args, "--grants", tt.grants[0])
			}
			r := runApp(t, nil, nil, args...)
			if r.code != exitOK {
				t.Fatalf("exit code = %d, stderr %q", r.code, r.stderr)
			}
			g := verifyToken(t, r.stdout, "devkey", "secret")
			if g.Video == nil {
				t.Fatal("no video grant")
			}
			if got := permsOf(g.Video); got != tt.want {
				t.Errorf("permissions = %+v, want %+v", got, tt.want)
			}
			if g.Video.Room != "math-101" || g.Identity != "ada" {
				t.Errorf("room %q identity %q", g.Video.Room, g.Identity)
			}
		})
	}
}

func TestTokenClaims(t *testing.T) {
	r := runApp(t, nil, nil, "token", "--api-key", "APIx", "--api-secret", testSecret,
		"--room", "r1", "--identity", "grace", "--name", "Grace H.", "--metadata", `{"role":"teacher"}`,
		"--sources", "camera, microphone,camera", "--ttl", "90m")
	if r.code != exitOK {
		t.Fatalf("exit code = %d, stderr %q", r.code, r.stderr)
	}
	raw := strings.TrimSpace(r.stdout)
	v, err := auth.ParseAPIToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	claims, g, err := v.Verify(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if g.Identity != "grace" || g.Name != "Grace H." || g.Metadata != `{"role":"teacher"}` {
		t.Errorf("identity %q name %q metadata %q", g.Identity, g.Name, g.Metadata)
	}
	wantSources := []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE}
	if got := g.Video.GetCanPublishSources(); !slices.Equal(got, wantSources) {
		t.Errorf("sources = %v, want %v", got, wantSources)
	}
	if g.Video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE) {
		t.Error("screen share allowed, want only camera and microphone")
	}
	if ttl := claims.ExpiresAt.Sub(claims.IssuedAt.Time); ttl != 90*time.Minute {
		t.Errorf("ttl = %s, want 90m", ttl)
	}
	if _, _, err := v.Verify("wrong-secret"); err == nil {
		t.Error("token verified with the wrong secret")
	}
}

func TestTokenKeySources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sanke.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  APIfile: "+testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("z", 40)
	tests := []struct {
		name       string
		env        []string
		args       []string
		wantKey    string
		wantSecret string
	}{
		{name: "dev", args: []string{"--dev"}, wantKey: "devkey", wantSecret: "secret"},
		{name: "explicit", args: []string{"--api-key", "APIa", "--api-secret", other}, wantKey: "APIa", wantSecret: other},
		{name: "config file", args: []string{"--config", file}, wantKey: "APIfile", wantSecret: testSecret},
		{name: "SANKE_CONFIG", env: []string{"SANKE_CONFIG=" + file}, wantKey: "APIfile", wantSecret: testSecret},
		{name: "SANKE_KEYS", env: []string{"SANKE_KEYS=APIenv: " + other}, wantKey: "APIenv", wantSecret: other},
		{name: "SANKE_KEYS beats the file", env: []string{"SANKE_KEYS=APIenv: " + other}, args: []string{"--config", file}, wantKey: "APIenv", wantSecret: other},
		{
			name:    "choose among several",
			env:     []string{"SANKE_KEYS=APIa: " + other + ", APIb: " + testSecret},
			args:    []string{"--api-key", "APIb"},
			wantKey: "APIb", wantSecret: testSecret,
		},
		{name: "explicit beats dev", args: []string{"--dev", "--api-key", "APIa", "--api-secret", other}, wantKey: "APIa", wantSecret: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"token", "--room", "r", "--identity", "i"}, tt.args...)
			r := runApp(t, tt.env, nil, args...)
			if r.code != exitOK {
				t.Fatalf("exit code = %d, stderr %q", r.code, r.stderr)
			}
			verifyToken(t, r.stdout, tt.wantKey, tt.wantSecret)
		})
	}
}

func TestTokenErrors(t *testing.T) {
	secret := strings.Repeat("s", 32)
	tests := []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "missing room", args: []string{"--dev", "--identity", "i"}, wantCode: exitUsage, wantStderr: "--room is required"},
		{name: "missing identity", args: []string{"--dev", "--room", "r"}, wantCode: exitUsage, wantStderr: "--identity is required"},
		{name: "admin needs room", args: []string{"--dev", "--grants", "admin"}, wantCode: exitUsage, wantStderr: "--room is required"},
		{name: "unknown grant", args: []string{"--dev", "--room", "r", "--identity", "i", "--grants", "join,teach"}, wantCode: exitUsage, wantStderr: `unknown grant "teach"`},
		{name: "empty grants", args: []string{"--dev", "--room", "r", "--identity", "i", "--grants", " , "}, wantCode: exitUsage, wantStderr: "no grants"},
		{name: "unknown source", args: []string{"--dev", "--room", "r", "--identity", "i", "--sources", "webcam"}, wantCode: exitUsage, wantStderr: `unknown source "webcam"`},
		{name: "sources without publish", args: []string{"--dev", "--room", "r", "--identity", "i", "--grants", "join,subscribe", "--sources", "camera"}, wantCode: exitUsage, wantStderr: "needs the publish grant"},
		{name: "zero ttl", args: []string{"--dev", "--room", "r", "--identity", "i", "--ttl", "0s"}, wantCode: exitUsage, wantStderr: "--ttl must be positive"},
		{name: "bad ttl", args: []string{"--dev", "--room", "r", "--identity", "i", "--ttl", "6"}, wantCode: exitUsage, wantStderr: "-ttl"},
		{name: "secret without key", args: []string{"--room", "r", "--identity", "i", "--api-secret", secret}, wantCode: exitUsage, wantStderr: "--api-secret needs --api-key"},
		{name: "unknown flag", args: []string{"--dev", "--room", "r", "--identity", "i", "--admin"}, wantCode: exitUsage, wantStderr: "-admin"},
		{name: "positional argument", args: []string{"--dev", "--room", "r", "--identity", "i", "extra"}, wantCode: exitUsage, wantStderr: `unexpected argument "extra"`},
		{name: "no key anywhere", args: []string{"--room", "r", "--identity", "i"}, wantCode: exitError, wantStderr: "no API key"},
		{
			name:     "several keys",
			env:      []string{"SANKE_KEYS=APIa: " + secret + ", APIb: " + secret},
			args:     []string{"--room", "r", "--identity", "i"},
			wantCode: exitError, wantStderr: "choose one with --api-key",
		},
		{
			name:     "key not configured",
			env:      []string{"SANKE_KEYS=APIa: " + secret},
			args:     []string{"--room", "r", "--identity", "i", "--api-key", "APIz"},
			wantCode: exitError, wantStderr: `"APIz" is not configured (configured: APIa)`,
		},
		{name: "bad config file", args: []string{"--room", "r", "--identity", "i", "--config", "/nonexistent.yaml"}, wantCode: exitError, wantStderr: "nonexistent.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, tt.env, nil, append([]string{"token"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on error", r.stdout)
			}
			if strings.Contains(r.stderr, secret) {
				t.Errorf("stderr leaks the secret: %q", r.stderr)
			}
		})
	}
}
