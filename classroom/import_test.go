package classroom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/classroom/model"
	"github.com/sanke-edu/sanke/internal/config"
	"github.com/sanke-edu/sanke/internal/server"
	"github.com/sanke-edu/sanke/test/testclient"
)

type importAnswer struct {
	Error    string
	Errors   []model.FieldError
	Imported map[string]int
}

// upload sends files as multipart/form-data to /api/v1/import.
func (ts *testServer) upload(query string, files map[string]string) (int, importAnswer) {
	ts.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, content := range files {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			ts.t.Fatal(err)
		}
		_, _ = io.WriteString(w, content)
	}
	_ = mw.Close()
	req, _ := http.NewRequest("POST", ts.http+"/api/v1/import"+query, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out importAnswer
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func hasError(errs []model.FieldError, file string, row int, field, msg string) bool {
	for _, e := range errs {
		if e.File == file && e.Row == row && e.Field == field && strings.Contains(e.Message, msg) {
			return true
		}
	}
	return false
}

// TestBadImportsLeaveStateIntact sends broken YAML, CSV, multipart uploads and entity
// changes: each is refused with errors naming file, row and field, and neither the served
// dataset nor the database changes.
func TestBadImportsLeaveStateIntact(t *testing.T) {
	ts := startServer(t, nil, func(c *config.Config) { c.Classroom.Dataset = []string{"sample/sample.yaml"} })
	var before []byte
	ts.call("GET", "/api/v1/dataset", adminKey, nil, &before)
	stored, err := ts.svc.Store().LoadDataset(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	storedBefore, _ := json.Marshal(stored)

	// YAML: a bad region code, an unknown classroom, an overlap with S1.
	bad := `regions:
  - {code: "431299", name: 不存在的县}
  - {code: "439901", name: 无上级}
sessions:
  - {id: S9, course_type: 1, subject: 音乐, master: M1, receivers: [T1, T9], start: "2025-09-15 08:00", end: "2025-09-15 08:40"}
  - {id: S10, course_type: 1, pairing: P-MUSIC, start: "2025-09-01 08:20", end: "2025-09-01 09:00"}
`
	var ans importAnswer
	if code := ts.call("POST", "/api/v1/import", adminKey, bad, &ans); code != 422 {
		t.Fatalf("bad YAML: %d %+v", code, ans)
	}
	for _, want := range []struct {
		row        int
		field, msg string
	}{
		{3, "code", "parent region 439900 is not defined"},
		{5, "receivers", `unknown classroom "T9"`},
		{6, "start", `classroom "M1" (master) is already in session "S1"`},
		{6, "start", `classroom "T2" (receivers) is already in session "S1"`},
	} {
		if !hasError(ans.Errors, "upload.yaml", want.row, want.field, want.msg) {
			t.Errorf("missing error row %d field %s %q in %+v", want.row, want.field, want.msg, ans.Errors)
		}
	}

	// Multipart: a valid schools.csv and a broken sessions.csv. Nothing is applied.
	code, ans := ts.upload("", map[string]string{
		"schools.csv":  "学校编号,学校名称,行政区划代码\nS-NEW,新学校,431223\n",
		"sessions.csv": "课程编号,课程类型,结对编号,日期,开始时间,结束时间\nS11,1,P-ART,2025-09-15,10:00,10:40\nS12,4,P-ART,2025-09-16,25:00,10:40\n",
	})
	if code != 422 || !hasError(ans.Errors, "sessions.csv", 3, "course_type", `"4" is not 1`) || !hasError(ans.Errors, "sessions.csv", 3, "start", `"25:00" is not a time`) {
		t.Errorf("bad CSV: %d %+v", code, ans.Errors)
	}
	// CSV body with an unknown column.
	ans = importAnswer{}
	if code := ts.call("POST", "/api/v1/import?table=classrooms", adminKey, []byte("id,name,school,kind,teacher\nX,x,S-CX-11,教学点,张三\n"), &ans); code != 422 ||
		!hasError(ans.Errors, "classrooms.csv", 1, "teacher", "unknown column") {
		t.Errorf("unknown column: %d %+v", code, ans.Errors)
	}
	// One entity referring to an unknown school; deleting a classroom still in use.
	ans = importAnswer{}
	if code := ts.call("PUT", "/api/v1/classrooms/T9", adminKey, `{"name": "x", "school": "S-NONE", "kind": "teaching_point"}`, &ans); code != 422 ||
		!hasError(ans.Errors, "request body", 0, "school", `unknown school "S-NONE"`) {
		t.Errorf("PUT: %d %+v", code, ans.Errors)
	}
	if code := ts.call("DELETE", "/api/v1/classrooms/T1", adminKey, nil, &ans); code != 422 || len(ans.Errors) == 0 {
		t.Errorf("DELETE in use: %d %+v", code, ans)
	}
	// A dry run of a valid change changes nothing either.
	if code := ts.call("POST", "/api/v1/import?dry_run=true&table=sessions", adminKey, []byte("id,course_type,pairing,date,start,end\nS20,1,P-ART,2025-09-15,10:00,10:40\n"), &ans); code != 200 {
		t.Errorf("dry run: %d %+v", code, ans)
	}
	// Only administrators import.
	reader := mintToken(t, "analyst", &auth.VideoGrant{RoomList: true}, nil)
	if code := ts.call("POST", "/api/v1/import", reader, bad, nil); code != 403 {
		t.Errorf("import with a roomList token: %d", code)
	}
	if code := ts.call("POST", "/api/v1/import", "", bad, nil); code != 401 {
		t.Errorf("import without a token: %d", code)
	}

	var after []byte
	ts.call("GET", "/api/v1/dataset", adminKey, nil, &after)
	if !bytes.Equal(before, after) {
		t.Errorf("dataset changed:\nbefore %s\nafter  %s", before, after)
	}
	stored, err = ts.svc.Store().LoadDataset(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if storedAfter, _ := json.Marshal(stored); !bytes.Equal(storedBefore, storedAfter) {
		t.Error("database changed")
	}

	// A good upload is applied whole.
	code, ans = ts.upload("", map[string]string{
		"schools.csv":  "学校编号,学校名称,行政区划代码\nS-NEW,新学校,431223\n",
		"sessions.csv": "课程编号,课程类型,结对编号,日期,开始时间,结束时间\nS11,1,P-ART,2025-09-15,10:00,10:40\n",
	})
	if code != 200 || ans.Imported["schools"] != 1 || ans.Imported["sessions"] != 1 {
		t.Fatalf("good upload: %d %+v", code, ans)
	}
	var sess model.Session
	if code := ts.call("GET", "/api/v1/sessions/S11", adminKey, nil, &sess); code != 200 || sess.Master != "M2" || sess.Room != "class-S11" {
		t.Errorf("S11: %d %+v", code, sess)
	}
	// An account changed without a password keeps its password.
	if code := ts.call("PUT", "/api/v1/accounts/T5", adminKey, `{"kind": "classroom", "classroom": "T5", "name": "统溪河"}`, nil); code != 200 {
		t.Errorf("PUT account: %d", code)
	}
	ts.login("T5", "tongxihe-tp5")
	var accounts []model.Account
	ts.call("GET", "/api/v1/accounts", adminKey, nil, &accounts)
	for _, a := range accounts {
		if a.PasswordHash != "" || a.Password != "" {
			t.Errorf("account %s exposes its password", a.ID)
		}
	}
}

// TestBadDatasetFileStopsStart: a configured dataset file with errors is refused at start,
// naming the file, row and field.
func TestBadDatasetFileStopsStart(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"regions.csv":    "code,name\n430000,湖南省\n431200,怀化市\n431223,辰溪县\n",
		"schools.csv":    "id,name,region\nA,a,431223\n",
		"classrooms.csv": "id,name,school,kind\nM,m,A,master\nT,t,A,teaching_point\n",
		"sessions.csv":   "id,course_type,subject,master,receivers,start,end\nX,1,音乐,M,T;Q,2025-09-01 08:00,2025-09-01 08:40\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.DevDefault()
	cfg.Port, cfg.RTC.UDPPort, cfg.RTC.TCPPort = testclient.FreePort(t, "tcp"), testclient.FreePort(t, "udp"), 0
	cfg.DataDir = t.TempDir()
	cfg.Recording.Enabled = false
	cfg.Classroom.Enabled = true
	cfg.Classroom.Dataset = []string{dir}
	_, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `sessions.csv row 2 (sessions "X"), field receivers: unknown classroom "Q"`) {
		t.Fatalf("server.New = %v", err)
	}
}

// TestMalformedImports is the regression test of issue 12 #10: files that cannot be read
// (a CSV with an unclosed quote, broken YAML or JSON, bytes that are no text) are refused
// with 400 and an error naming the file (and row), through every way of importing; the
// server keeps answering.
func TestMalformedImports(t *testing.T) {
	ts := startServer(t, nil, func(c *config.Config) { c.Classroom.Dataset = []string{"sample/sample.yaml"} })
	tests := []struct {
		name, query, contentType string
		body                     string
		file                     string
		row                      int
	}{
		{"CSV with an unclosed quote", "?table=sessions", "text/csv", "id,course_type,pairing\n\"S1,1,P-ART\n", "sessions.csv", 2},
		{"CSV with an unclosed quote in the header", "?table=sessions", "text/csv", "\"id,course_type\nS1,1\n", "sessions.csv", 1},
		{"CSV with a bare quote", "?filename=schools.csv", "text/csv", "id,name,region\nS-X,a\"b,431223\n", "schools.csv", 2},
		{"broken YAML", "", "application/yaml", "regions:\n  - {code: \"431223\", name: [\n", "upload.yaml", 0},
		{"broken JSON", "", "application/json", `{"regions": [{"code": "431223",}`, "upload.json", 0},
		{"not text", "?table=regions", "text/csv", "\xff\xfe\x00\x81\x30\x81", "regions.csv", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.http+"/api/v1/import"+tc.query, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+adminKey)
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("the server did not answer: %v", err)
			}
			defer resp.Body.Close()
			var ans importAnswer
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusBadRequest || ans.Error == "" {
				t.Fatalf("HTTP %d, %+v (%v); want 400 with an error", resp.StatusCode, ans, err)
			}
			found := false
			for _, e := range ans.Errors {
				if e.File == tc.file && e.Row == tc.row && e.Message != "" {
					found = true
				}
			}
			if !found {
				t.Errorf("no error naming %s row %d: %+v", tc.file, tc.row, ans.Errors)
			}
		})
	}
	// The same CSV inside a multipart upload.
	code, ans := ts.upload("", map[string]string{"sessions.csv": "id,course_type,pairing\n\"S1,1,P-ART\n"})
	if code != http.StatusBadRequest || !hasError(ans.Errors, "sessions.csv", 2, "", "") {
		t.Errorf("multipart upload of a CSV with an unclosed quote: %d %+v", code, ans)
	}
	// Readable files with wrong content are still 422 with every problem.
	if code := ts.call("POST", "/api/v1/import?table=classrooms", adminKey, []byte("id,name,school,kind\nX,x,S-NONE,教学点\n"), nil); code != http.StatusUnprocessableEntity {
		t.Errorf("CSV with an unknown school: %d, want 422", code)
	}
	if code := ts.call("GET", "/healthz", "", nil, nil); code != 200 {
		t.Errorf("healthz after the malformed imports: %d", code)
	}
}
