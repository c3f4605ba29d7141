package classroom_test

import (
	"net/url"
	"testing"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/internal/config"
)

// TestCoverageAccess checks who reads which area's coverage: readers any region, a
// supervisor account (巡课) its own region (the default) and the regions inside it, never
// another or a wider one; classroom accounts none. /me names the supervisor's regions for
// the dashboard's choice. Statistics other than coverage stay with readers.
func TestCoverageAccess(t *testing.T) {
	ts := startServer(t, nil, func(c *config.Config) { c.Classroom.Dataset = []string{"sample/sample.yaml"} })
	// A county-level supervisor next to the sample's city-level HH-SUP (怀化市 431200).
	accounts := `accounts:
  - {id: CX-SUP, kind: supervisor, name: 辰溪县巡课员, region: "431223", password: chenxi-supervisor}
`
	if code := ts.call("POST", "/api/v1/import", adminKey, accounts, nil); code != 200 {
		t.Fatalf("import CX-SUP: %d", code)
	}
	hh := ts.login("HH-SUP", "huaihua-supervisor")
	cx := ts.login("CX-SUP", "chenxi-supervisor")
	t1 := ts.login("T1", "houtang-tp-1")
	// A sign-in token the platform signs for the account (attribute sanke.account).
	hhPlatform := mintToken(t, "platform-hh", &auth.VideoGrant{}, map[string]string{"sanke.account": "HH-SUP"})
	reader := mintToken(t, "statistics", &auth.VideoGrant{RoomList: true}, nil)

	// Teaching points of the sample: T1, T2 in 辰溪县 431223, T3-T5 in 溆浦县 431224 (怀化市).
	tests := []struct {
		name       string
		token      string
		region     string // the region= asked for
		wantCode   int
		wantRegion string // the report's region
		wantTPs    int    // teaching points of the area
	}{
		{"admin key, all regions", adminKey, "", 200, "", 5},
		{"roomList token, another city", reader, "430100", 200, "430100", 0},
		{"city supervisor, no region: its own", hh, "", 200, "431200", 5},
		{"city supervisor, its own region", hh, "431200", 200, "431200", 5},
		{"city supervisor, a county inside", hh, "431223", 200, "431223", 2},
		{"city supervisor, another city", hh, "430100", 403, "", 0},
		{"city supervisor, a county of another city", hh, "430102", 403, "", 0},
		{"city supervisor, its province (wider)", hh, "430000", 403, "", 0},
		{"city supervisor, unknown region", hh, "439999", 400, "", 0},
		{"platform token of the city supervisor, no region", hhPlatform, "", 200, "431200", 5},
		{"platform token of the city supervisor, another city", hhPlatform, "430100", 403, "", 0},
		{"county supervisor, no region: its own", cx, "", 200, "431223", 2},
		{"county supervisor, the neighbouring county", cx, "431224", 403, "", 0},
		{"county supervisor, its city (wider)", cx, "431200", 403, "", 0},
		{"classroom account", t1, "", 403, "", 0},
		{"classroom account, a region", t1, "431223", 403, "", 0},
		{"no token", "", "", 401, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"group_by": {"county"}, "from": {"2025-09-01"}, "to": {"2025-09-14"}}
			if tc.region != "" {
				q.Set("region", tc.region)
			}
			var rep struct {
				Region string
				Error  string
				Total  struct {
					TeachingPoints int `json:"teaching_points"`
				}
			}
			code := ts.call("GET", "/api/v1/coverage?"+q.Encode(), tc.token, nil, &rep)
			if code != tc.wantCode {
				t.Fatalf("HTTP %d (%s), want %d", code, rep.Error, tc.wantCode)
			}
			if code != 200 {
				return
			}
			if rep.Region != tc.wantRegion || rep.Total.TeachingPoints != tc.wantTPs {
				t.Errorf("report of region %q with %d teaching points, want %q with %d", rep.Region, rep.Total.TeachingPoints, tc.wantRegion, tc.wantTPs)
			}
		})
	}

	// The CSV export is restricted the same way.
	var csv []byte
	if code := ts.call("GET", "/api/v1/coverage?format=csv&group_by=county&region=430102", hh, nil, &csv); code != 403 {
		t.Errorf("supervisor's CSV of another city: HTTP %d, want 403", code)
	}
	// Other statistics stay with readers.
	for _, path := range []string{"/api/v1/records", "/api/v1/audit", "/api/v1/dataset"} {
		if code := ts.call("GET", path, hh, nil, nil); code != 403 {
			t.Errorf("supervisor GET %s: HTTP %d, want 403", path, code)
		}
	}
	// /me names the regions the supervisor may choose: its own and those inside it.
	var me struct {
		Directory struct {
			Regions map[string]struct{ Name string }
		}
	}
	if code := ts.call("GET", "/api/v1/me", hh, nil, &me); code != 200 {
		t.Fatalf("/me: %d", code)
	}
	for _, code := range []string{"431200", "431223", "431224"} {
		if me.Directory.Regions[code].Name == "" {
			t.Errorf("/me of HH-SUP does not name region %s: %v", code, me.Directory.Regions)
		}
	}
	// (The sample's sessions are in 2025, outside /me's default week: no session names Changsha.)
	if _, ok := me.Directory.Regions["430100"]; ok {
		t.Errorf("/me of HH-SUP names another city: %v", me.Directory.Regions)
	}
}
