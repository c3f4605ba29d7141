package classroom

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
)

// TestWriteJSONNeverEmpty checks the class of bug behind coverage?to=9999-12-31 answering
// 200 with an empty body: a value that cannot be encoded (a time past year 9999, NaN) is a
// 500 with a JSON error, never a status without a body.
func TestWriteJSONNeverEmpty(t *testing.T) {
	for name, v := range map[string]any{
		"year 10000": map[string]time.Time{"to": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"NaN":        map[string]float64{"rate": math.NaN()},
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, v)
		var ans apiError
		if rec.Code != http.StatusInternalServerError || json.Unmarshal(rec.Body.Bytes(), &ans) != nil || !strings.Contains(ans.Error, "encoding") {
			t.Errorf("%s: HTTP %d %q, want 500 with a JSON error", name, rec.Code, rec.Body.String())
		}
	}
}

// TestOneImportAtATime checks that a second import while one is being read and checked is
// refused at once (429 + Retry-After), so that imports' memory is that of one.
func TestOneImportAtATime(t *testing.T) {
	s, err := New(Config{DBPath: filepath.Join(t.TempDir(), "c.db"), APIKey: "k", APISecret: "secret-secret-secret-secret-secret",
		Keys: auth.NewSimpleKeyProvider("k", "secret-secret-secret-secret-secret"), AdminKey: "admin",
		ValidShare: 0.8, SampleInterval: time.Second, PasswordCost: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	h := s.Handler()
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/import?table=regions", strings.NewReader("code,name\n430000,湖南省\n"))
		req.Header.Set("Authorization", "Bearer admin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	s.importing <- struct{}{} // an import in progress
	if rec := post(); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a second import: HTTP %d %q, want 429 with Retry-After", rec.Code, rec.Body.String())
	}
	<-s.importing
	if rec := post(); rec.Code != http.StatusOK {
		t.Errorf("an import alone: HTTP %d %q", rec.Code, rec.Body.String())
	}
}
