package model

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// load reads, builds and validates a dataset path.
func load(t *testing.T, path string) (*Dataset, Errors) {
	t.Helper()
	in, errs := ReadPath(path)
	if len(errs) > 0 {
		return nil, errs
	}
	d, errs := Build(in, shanghai(t))
	if len(errs) > 0 {
		return nil, errs
	}
	return d, Validate(d, shanghai(t))
}

func TestSampleDataset(t *testing.T) {
	d, errs := load(t, "../sample/sample.yaml")
	if len(errs) > 0 {
		t.Fatalf("sample.yaml: %v", errs)
	}
	c := d.Counts()
	want := map[Kind]int{KindRegions: 6, KindSchools: 7, KindClassrooms: 7, KindPairings: 2, KindTerms: 1, KindSessions: 3, KindAccounts: 8}
	for k, n := range want {
		if c[k] != n {
			t.Errorf("%s: %d, want %d", k, c[k], n)
		}
	}
	idx := NewIndex(d, shanghai(t))
	s1 := idx.Session("S1")
	if s1.Master != "M1" || strings.Join(s1.Receivers, ",") != "T1,T2" || s1.Subject != "音乐" || s1.Room != "class-S1" || s1.Grade != 3 {
		t.Errorf("S1 defaults from its pairing: %+v", *s1)
	}
	if got := s1.Start.Format(time.RFC3339); got != "2025-09-01T08:00:00+08:00" {
		t.Errorf("S1 start %s", got)
	}
	if s1.Scheduled() != 40*time.Minute || idx.TermOf(s1) != "2025-autumn" {
		t.Errorf("S1 duration %s term %q", s1.Scheduled(), idx.TermOf(s1))
	}
	if idx.SessionByRoom("class-S3").ID != "S3" || len(idx.SessionsOf("T1")) != 2 || idx.CountyOf("T3") != "431224" {
		t.Error("index lookups")
	}
	if n := len(idx.TeachingPoints("431224")); n != 3 {
		t.Errorf("teaching points of 溆浦县: %d", n)
	}
	if n := len(idx.TeachingPoints("430000")); n != 5 {
		t.Errorf("teaching points of 湖南省: %d", n)
	}
}

// TestCSVMatchesYAML checks that the spreadsheet export (Chinese headers, 2025/9/1 dates,
// T1;T2 lists) says exactly what the YAML says.
func TestCSVMatchesYAML(t *testing.T) {
	y, errs := load(t, "../sample/sample.yaml")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c, errs := load(t, "../sample/csv")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	yj, _ := json.Marshal(y)
	cj, _ := json.Marshal(c)
	if string(yj) != string(cj) {
		t.Errorf("CSV and YAML differ:\nyaml %s\ncsv  %s", yj, cj)
	}
}

func TestGB18030CSV(t *testing.T) {
	text := "行政区划代码,名称\n430000,湖南省\n"
	gbk, err := simplifiedchinese.GB18030.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	in, errs := ReadCSV("regions.csv", KindRegions, []byte(gbk))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := in[KindRegions][0].Fields["name"].Str; got != "湖南省" {
		t.Errorf("name %q", got)
	}
	in, errs = ReadCSV("regions.csv", KindRegions, []byte("\xef\xbb\xbf"+text))
	if len(errs) > 0 || in[KindRegions][0].Fields["code"].Str != "430000" {
		t.Errorf("BOM: %v %v", errs, in)
	}
}

// TestValidationErrors feeds broken datasets and checks that every error names its file,
// row and field.
func TestValidationErrors(t *testing.T) {
	base := `regions:
  - {code: "430000", name: 湖南省}
  - {code: "431200", name: 怀化市}
  - {code: "431223", name: 辰溪县}
schools:
  - {id: S1, name: a, region: "431223"}
classrooms:
  - {id: M1, name: m, school: S1, kind: master}
  - {id: T1, name: t, school: S1, kind: teaching_point}
sessions:
  - {id: A, course_type: 1, subject: 音乐, master: M1, receivers: [T1], start: "2025-09-01 08:00", end: "2025-09-01 08:40"}
`
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"bad region code", `  - {code: "439901", name: x}` + "\n  - {code: \"991234\", name: y}\n",
			[]string{`data.yaml row 5 (regions "439901"), field code: parent region 439900 is not defined`,
				`data.yaml row 6 (regions "991234"), field code: "991234": 99 is not a province code`}},
		{"unknown classroom", `  - {id: B, course_type: 1, subject: 美术, master: M1, receivers: [T9], start: "2025-09-02 08:00", end: "2025-09-02 08:40"}` + "\n",
			[]string{`data.yaml row 12 (sessions "B"), field receivers: unknown classroom "T9"`}},
		{"overlap", `  - {id: B, course_type: 1, subject: 美术, master: M1, receivers: [T1], start: "2025-09-01 08:30", end: "2025-09-01 09:10"}` + "\n",
			[]string{`data.yaml row 12 (sessions "B"), field start: classroom "M1" (master) is already in session "A" (data.yaml row 11, 2025-09-01 08:00 to 08:40)`,
				`data.yaml row 12 (sessions "B"), field start: classroom "T1" (receivers) is already in session "A"`}},
		{"bad time", `  - {id: B, course_type: 9, subject: x, master: T1, receivers: [M1], start: "tomorrow", end: "2025-09-01 09:10"}` + "\n",
			[]string{`data.yaml row 12 (sessions "B"), field course_type: "9" is not 1`, `data.yaml row 12 (sessions "B"), field start: "tomorrow" is not a time`}},
		{"master kind", `  - {id: B, course_type: 1, subject: x, master: T1, receivers: [M1], start: "2025-09-03 08:00", end: "2025-09-03 09:10"}` + "\n",
			[]string{`field master: classroom "T1" is a teaching_point, not a master`, `field receivers: classroom "M1" is a master, not a teaching_point`}},
		{"duplicate id", `  - {id: A, course_type: 1, subject: x, master: M1, receivers: [T1], start: "2025-09-03 08:00", end: "2025-09-03 09:10"}` + "\n",
			[]string{`data.yaml row 12 (sessions "A"), field id: duplicate ID (also data.yaml row 11)`}},
		{"unknown field", `  - {id: B, teacher: x}` + "\n", []string{`data.yaml row 12 (sessions), field teacher: unknown field for sessions`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := base
			if strings.HasPrefix(tt.name, "bad region") {
				doc = strings.Replace(base, "schools:", strings.TrimSuffix(tt.extra, "\n")+"\nschools:", 1)
			} else {
				doc += tt.extra
			}
			in, errs := ReadYAML("data.yaml", []byte(doc))
			var d *Dataset
			if len(errs) == 0 {
				d, errs = Build(in, shanghai(t))
			}
			if len(errs) == 0 {
				errs = Validate(d, shanghai(t))
			}
			got := errs.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors do not contain\n  %s\ngot\n  %s", w, strings.ReplaceAll(got, "\n", "\n  "))
				}
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	_, errs := ReadCSV("sessions.csv", KindSessions, []byte("课程编号,老师\nS1,x\n"))
	if len(errs) != 1 || errs[0].Row != 1 || errs[0].Field != "老师" || !strings.Contains(errs[0].Message, "unknown column") {
		t.Errorf("unknown column: %v", errs)
	}
	in, errs := ReadCSV("sessions.csv", KindSessions, []byte("id,course_type,master,receivers,date,start,end\n\nS1,1,M1,T1,2025-13-01,08:00,08:40\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	_, errs = Build(in, shanghai(t))
	if len(errs) != 1 || errs.Error() != `sessions.csv row 3 (sessions "S1"), field date: "2025-13-01" is not a date (YYYY-MM-DD)` {
		t.Errorf("bad date: %v", errs)
	}
}

func TestRegionCodes(t *testing.T) {
	for code, want := range map[string]Level{"430000": LevelProvince, "431200": LevelCity, "431223": LevelCounty, "110101": LevelCounty} {
		if got, err := ParseRegionCode(code); err != nil || got != want {
			t.Errorf("%s: %v %v", code, got, err)
		}
	}
	for _, bad := range []string{"43000", "4300001", "43a000", "000000", "991200"} {
		if _, err := ParseRegionCode(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if !RegionContains("430000", "431223") || !RegionContains("431200", "431223") || RegionContains("430100", "431223") || !RegionContains("431223", "431223") {
		t.Error("RegionContains")
	}
	if ParentCode("431223") != "431200" || ParentCode("431200") != "430000" || ParentCode("430000") != "" {
		t.Error("ParentCode")
	}
}

func TestParseGradeAndCourseType(t *testing.T) {
	for s, want := range map[string]int{"3": 3, "三年级": 3, "初二": 8, "高三": 12, "十二年级": 12} {
		if got, ok := ParseGrade(s); !ok || got != want {
			t.Errorf("grade %q = %d %v", s, got, ok)
		}
	}
	for s, want := range map[string]CourseType{"1": Delivery, "名师课堂": Research, "broadcast": Broadcast} {
		if got, ok := ParseCourseType(s); !ok || got != want {
			t.Errorf("course type %q = %v", s, got)
		}
	}
}
