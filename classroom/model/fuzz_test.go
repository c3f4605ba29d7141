package model

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The importers read files from administrators and from the import API: whatever the bytes,
// they must answer with errors, never panic. Seeds are in testdata/fuzz/<target>/ (go test
// runs them); run a target with
//
//	go test -run='^$' -fuzz='^FuzzReadCSV$' -fuzztime=10s -fuzzminimizetime=2s ./classroom/model/
//
// (the default minimization, up to 60 s per new input, stalls short runs).

// checkImport builds and validates what a reader returned, as an import does, and checks
// that every problem says what it is.
func checkImport(t *testing.T, in Input, errs Errors) {
	t.Helper()
	for _, e := range errs {
		if e == nil || e.Message == "" || e.Row < 0 {
			t.Fatalf("a problem without a message or with a bad row: %#v", e)
		}
	}
	if len(errs) > 0 {
		return
	}
	d, errs := Build(in, time.FixedZone("CST", 8*3600))
	for _, e := range errs {
		if e.Message == "" {
			t.Fatalf("a build problem without a message: %#v", e)
		}
	}
	if len(errs) == 0 {
		_ = Validate(d, time.FixedZone("CST", 8*3600))
		_ = NewIndex(d, time.FixedZone("CST", 8*3600))
	}
}

// FuzzReadCSV feeds one table's CSV (table is the file name's stem, e.g. sessions or 课表).
func FuzzReadCSV(f *testing.F) {
	f.Add("sessions", []byte("id,course_type,pairing\n\"S1,1,P-ART\n"))
	f.Fuzz(func(t *testing.T, table string, data []byte) {
		in, errs := ReadData(table+".csv", data, "")
		checkImport(t, in, errs)
	})
}

// FuzzReadYAML feeds a YAML dataset document.
func FuzzReadYAML(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "sample", "sample.yaml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, errs := ReadData("upload.yaml", data, "")
		checkImport(t, in, errs)
	})
}

// FuzzReadJSON feeds a JSON dataset document.
func FuzzReadJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		in, errs := ReadData("upload.json", data, "")
		checkImport(t, in, errs)
	})
}

// FuzzReadEntity feeds one entity as sent to PUT /api/v1/{table}/{id} (table is a table name).
func FuzzReadEntity(f *testing.F) {
	f.Fuzz(func(t *testing.T, table string, data []byte) {
		kind, ok := ParseKind(table)
		if !ok {
			kind = KindSessions
		}
		rec, errs := ReadEntity(kind, data)
		if len(errs) == 0 {
			if rec.Fields == nil {
				t.Fatal("an entity without fields and without an error")
			}
			checkImport(t, Input{kind: {rec}}, nil)
			return
		}
		checkImport(t, nil, errs)
	})
}

// TestUnclosedQuote is the regression test of issue 12 #10 at the source: a CSV whose quote
// never closes (a row, or the header) is an error naming the file and the row, as is a
// folder holding one (the configured dataset at start).
func TestUnclosedQuote(t *testing.T) {
	for _, tc := range []struct {
		data string
		row  int
	}{
		{"id,course_type,pairing\n\"S1,1,P-ART\n", 2},
		{"id,course_type,pairing\nS1,1,P-ART\nS2,\"1,P-ART\n", 3},
		{"\"id,course_type\nS1,1\n", 1},
	} {
		_, errs := ReadCSV("sessions.csv", KindSessions, []byte(tc.data))
		if len(errs) != 1 || errs[0].Row != tc.row || errs[0].File != "sessions.csv" || !errs.Unreadable() {
			t.Errorf("%q: %v, want one unreadable-file error at row %d", tc.data, errs, tc.row)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sessions.csv"), []byte("id,course_type\n\"S1,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs := ReadPath(dir); len(errs) == 0 {
		t.Error("a dataset folder with an unclosed quote reads without error")
	}
}
