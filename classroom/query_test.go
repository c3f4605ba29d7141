package classroom_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sanke-edu/sanke/internal/config"
)

// TestQueryValidation is the regression test of issue 12 #13 (coverage?to=9999-12-31
// answered 200 with an empty body): every query parameter of the API is checked, and a bad
// one is a 400 with a JSON error saying what is wrong, never an empty answer.
func TestQueryValidation(t *testing.T) {
	ts := startServer(t, nil, func(c *config.Config) { c.Classroom.Dataset = []string{"sample/sample.yaml"} })
	t1 := ts.login("T1", "houtang-tp-1")
	long := strings.Repeat("x", 300)
	tests := []struct {
		method, path, token, want string
	}{
		{"GET", "/api/v1/coverage?to=9999-12-31", adminKey, "to"},
		{"GET", "/api/v1/coverage?from=0001-01-01", adminKey, "from"},
		{"GET", "/api/v1/coverage?from=2025-09-10&to=2025-09-01", adminKey, "before"},
		{"GET", "/api/v1/coverage?from=2025-9-1T08:00", adminKey, "from"},
		{"GET", "/api/v1/coverage?format=xml", adminKey, "format"},
		{"GET", "/api/v1/coverage?course_type=7", adminKey, "course_type"},
		{"GET", "/api/v1/coverage?course_type=-1", adminKey, "course_type"},
		{"GET", "/api/v1/coverage?region=abc", adminKey, "region"},
		{"GET", "/api/v1/coverage?routine_weeks=100000", adminKey, "routine_weeks"},
		{"GET", "/api/v1/coverage?routine_min_per_week=99999999999999999999", adminKey, "routine_min_per_week"},
		{"GET", "/api/v1/coverage?subject=" + long, adminKey, "subject"},
		{"GET", "/api/v1/coverage?group_by=hour", adminKey, "group_by"},
		{"GET", "/api/v1/records?limit=100000000", adminKey, "limit"},
		{"GET", "/api/v1/records?limit=0", adminKey, "limit"},
		{"GET", "/api/v1/records?to=9999-12-31", adminKey, "to"},
		{"GET", "/api/v1/audit?from=2025-13-01", adminKey, "from"},
		{"GET", "/api/v1/audit?action=" + long, adminKey, "action"},
		{"GET", "/api/v1/sessions?to=9999-12-31", adminKey, "to"},
		{"GET", "/api/v1/sessions?classroom=" + long, adminKey, "classroom"},
		{"GET", "/api/v1/me?from=2025-01-01&to=2030-01-01", t1, "days"},
		{"GET", "/api/v1/me?to=9999-12-31", t1, "to"},
		{"POST", "/api/v1/import?dry_run=maybe", adminKey, "dry_run"},
		{"POST", "/api/v1/import?mode=upsert", adminKey, "mode"},
		{"POST", "/api/v1/import?filename=" + long + ".csv", adminKey, "filename"},
		{"POST", "/api/v1/import?table=teachers", adminKey, "table"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader("regions: []\n")
			}
			req, _ := http.NewRequest(tc.method, ts.http+tc.path, body)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			var ans struct{ Error string }
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(data, &ans) != nil || !strings.Contains(ans.Error, tc.want) {
				t.Errorf("HTTP %d %q; want 400 with an error about %s", resp.StatusCode, data, tc.want)
			}
		})
	}
	// The bounds themselves are accepted, and every answer has a body.
	for _, path := range []string{
		"/api/v1/coverage?from=2000-01-01&to=2099-12-31&format=csv",
		"/api/v1/coverage?course_type=3&routine_weeks=52&routine_min_per_week=7&region=431200",
		"/api/v1/records?limit=10000&from=" + url.QueryEscape("2025-09-01T00:00:00+08:00"),
		"/api/v1/audit?limit=1",
	} {
		var raw []byte
		if code := ts.call("GET", path, adminKey, nil, &raw); code != 200 || len(raw) == 0 {
			t.Errorf("%s: HTTP %d with %d bytes, want 200 with a body", path, code, len(raw))
		}
	}
	var raw []byte
	if code := ts.call("GET", "/api/v1/me?from=2025-09-01&to=2026-08-31", t1, nil, &raw); code != 200 || len(raw) == 0 {
		t.Errorf("/me for a school year: HTTP %d with %d bytes", code, len(raw))
	}
}
