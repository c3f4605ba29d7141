package classroom

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
