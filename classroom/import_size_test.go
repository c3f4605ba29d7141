package classroom_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// termDataset is the sample dataset grown to a county's real size: 450 more teaching points
// and a term's timetable (both pairings, ten periods every weekday for four months),
// written as YAML and as the CSV files a spreadsheet exports. It returns both and the
// number of sessions added.
func termDataset(t *testing.T) (string, map[string]string, int) {
	t.Helper()
	sample, err := os.ReadFile("sample/sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	csvs := map[string]string{}
	for _, name := range []string{"regions", "schools", "classrooms", "pairings", "sessions", "terms", "accounts"} {
		data, err := os.ReadFile(filepath.Join("sample/csv", name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		csvs[name+".csv"] = string(data)
	}
	var yCls, ySes strings.Builder
	for i := range 450 {
		fmt.Fprintf(&yCls, "  - {id: TP-%03d, name: 第%d教学点, school: S-XP-13, kind: teaching_point}\n", i, i)
		csvs["classrooms.csv"] += fmt.Sprintf("TP-%03d,第%d教学点,S-XP-13,教学点\n", i, i)
	}
	n := 0
	loc, _ := time.LoadLocation("Asia/Shanghai")
	for d := time.Date(2025, 9, 15, 0, 0, 0, 0, loc); d.Before(time.Date(2026, 1, 17, 0, 0, 0, 0, loc)); d = d.AddDate(0, 0, 1) {
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			continue
		}
		for p := range 10 {
			start := d.Add(8*time.Hour + time.Duration(p)*50*time.Minute)
			end := start.Add(40 * time.Minute)
			for i, pairing := range []string{"P-MUSIC", "P-ART"} {
				n++
				id := fmt.Sprintf("%s-%s", pairing, start.Format("20060102-1504"))
				fmt.Fprintf(&ySes, "  - {id: %s, course_type: 专递课堂, pairing: %s, grade: %d, start: %q, end: %q}\n",
					id, pairing, 3+i, start.Format("2006-01-02 15:04"), end.Format("2006-01-02 15:04"))
				csvs["sessions.csv"] += fmt.Sprintf("%s,专递课堂,,%d,%s,,,%s,%s,%s,\n", id, 3+i, pairing,
					start.Format("2006-01-02"), start.Format("15:04"), end.Format("15:04"))
			}
		}
	}
	yaml := string(sample)
	yaml = strings.Replace(yaml, "\npairings:", "\n"+yCls.String()+"\npairings:", 1)
	yaml = strings.Replace(yaml, "\naccounts:", "\n"+ySes.String()+"\naccounts:", 1)
	return yaml, csvs, n
}

// TestLargeImportsAndEntities is the regression test of issue 12 finding F11: the API's own
// 4 KiB bound on small bodies must not cap the routes that take more. A county's term as YAML
// (several hundred KB) and as CSV files imports whole, and an entity over 4 KiB (a pairing of
// 450 teaching points) is stored by PUT.
func TestLargeImportsAndEntities(t *testing.T) {
	ts := startServer(t, nil, nil)
	yaml, csvs, sessions := termDataset(t)
	if len(yaml) < 256<<10 {
		t.Fatalf("the YAML dataset is only %d bytes", len(yaml))
	}
	var ans importAnswer
	if code := ts.call("POST", "/api/v1/import", adminKey, yaml, &ans); code != 200 || ans.Imported["sessions"] != sessions+3 {
		t.Fatalf("importing %d KB of YAML: HTTP %d %q (%d problems), imported %v; want 200 with %d sessions",
			len(yaml)>>10, code, ans.Error, len(ans.Errors), ans.Imported, sessions+3)
	}
	size := 0
	for _, c := range csvs {
		size += len(c)
	}
	code, ans := ts.upload("?mode=replace", csvs)
	if code != 200 || ans.Imported["sessions"] != sessions+3 || ans.Imported["classrooms"] != 457 {
		t.Fatalf("importing %d KB of CSV files: HTTP %d %q (%d problems), imported %v", size>>10, code, ans.Error, len(ans.Errors), ans.Imported)
	}
	var tps []string
	for i := range 450 {
		tps = append(tps, fmt.Sprintf("TP-%03d", i))
	}
	body := fmt.Sprintf(`{"id": "P-ALL", "subject": "英语", "master": "M2", "teaching_points": ["%s"]}`, strings.Join(tps, `", "`))
	if len(body) <= 4<<10 {
		t.Fatalf("the pairing is only %d bytes", len(body))
	}
	var got struct {
		TeachingPoints []string `json:"teaching_points"`
		Error          string
	}
	if code := ts.call("PUT", "/api/v1/pairings/P-ALL", adminKey, body, &got); code != http.StatusOK || len(got.TeachingPoints) != 450 {
		t.Errorf("PUT of a %d-byte pairing: HTTP %d %q, %d teaching points; want 200 with 450", len(body), code, got.Error, len(got.TeachingPoints))
	}
}
