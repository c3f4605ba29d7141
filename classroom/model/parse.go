package model

import (
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Value is a field of an input record: a single value, or a list (a YAML sequence, or a CSV
// cell holding several values separated by ";", "|", "、" or ",").
type Value struct {
	Str  string
	List []string
}

// Strings returns the value as a list, splitting a single value on separators.
func (v Value) Strings() []string {
	if v.List != nil {
		var out []string
		for _, s := range v.List {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	parts := strings.FieldsFunc(v.Str, func(r rune) bool {
		return r == ';' || r == '|' || r == '、' || r == '；' || r == ',' || r == '，' || unicode.IsSpace(r)
	})
	return parts
}

// Record is one entity as read from a file or a request, before conversion.
type Record struct {
	Origin Origin
	Fields map[string]Value // canonical field name -> value
}

// fieldSpec lists the canonical fields of a table and their accepted aliases (spreadsheet
// headers are often Chinese).
type fieldSpec struct {
	name    string
	aliases []string
}

func tableFields(k Kind) []fieldSpec {
	switch k {
	case KindRegions:
		return []fieldSpec{{"code", []string{"代码", "行政区划代码", "区划代码", "编码"}}, {"name", []string{"名称", "区划名称"}}}
	case KindSchools:
		return []fieldSpec{{"id", []string{"学校编号", "学校代码", "编号"}}, {"name", []string{"学校名称", "名称"}},
			{"region", []string{"行政区划代码", "区划代码", "区县代码", "region_code"}}}
	case KindClassrooms:
		return []fieldSpec{{"id", []string{"教室编号", "编号"}}, {"name", []string{"教室名称", "名称"}},
			{"school", []string{"学校编号", "学校代码", "school_id"}}, {"kind", []string{"类型", "教室类型", "type"}}}
	case KindPairings:
		return []fieldSpec{{"id", []string{"结对编号", "编号"}}, {"subject", []string{"学科"}},
			{"master", []string{"主讲教室", "主讲课堂"}}, {"teaching_points", []string{"教学点", "接收教室"}}}
	case KindTerms:
		return []fieldSpec{{"id", []string{"学期编号", "编号"}}, {"name", []string{"学期名称", "名称"}},
			{"start", []string{"开始日期", "开始"}}, {"end", []string{"结束日期", "结束"}}}
	case KindSessions:
		return []fieldSpec{{"id", []string{"课程编号", "编号", "课次编号"}}, {"course_type", []string{"课程类型", "类型", "type"}},
			{"subject", []string{"学科"}}, {"grade", []string{"年级"}}, {"pairing", []string{"结对编号", "结对"}},
			{"master", []string{"主讲教室", "主讲课堂"}}, {"receivers", []string{"接收教室", "教学点", "接收课堂"}},
			{"date", []string{"日期", "上课日期"}}, {"start", []string{"开始时间", "开始"}}, {"end", []string{"结束时间", "结束"}},
			{"room", []string{"房间", "房间名"}}, {"term", []string{"学期", "学期编号"}}}
	case KindAccounts:
		return []fieldSpec{{"id", []string{"账号", "用户名"}}, {"kind", []string{"类型", "账号类型"}}, {"name", []string{"姓名", "名称"}},
			{"classroom", []string{"教室编号", "教室"}}, {"region", []string{"行政区划代码", "区划代码"}},
			{"disabled", []string{"停用"}}, {"password", []string{"密码"}}, {"password_hash", []string{"密码哈希"}}}
	}
	return nil
}

// ignoredColumns are spreadsheet columns that carry notes, never data.
func ignoredColumn(name string) bool {
	switch strings.ToLower(name) {
	case "note", "notes", "remark", "remarks", "comment", "备注", "说明":
		return true
	}
	return false
}

// canonicalField maps a header or key to the canonical field name of table k.
func canonicalField(k Kind, name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, f := range tableFields(k) {
		if n == f.name {
			return f.name, true
		}
		for _, a := range f.aliases {
			if n == strings.ToLower(a) {
				return f.name, true
			}
		}
	}
	return "", false
}

// converter turns records into entities, collecting errors.
type converter struct {
	loc  *time.Location
	errs Errors
}

func (c *converter) fail(r Record, k Kind, id, field, format string, args ...any) {
	c.errs = append(c.errs, errorAt(r.Origin, k, id, field, format, args...))
}

func str(r Record, f string) string { return strings.TrimSpace(r.Fields[f].Str) }

// required returns a non-empty field or records an error.
func (c *converter) required(r Record, k Kind, id, f string) string {
	v := str(r, f)
	if v == "" {
		c.fail(r, k, id, f, "required")
	}
	return v
}

// Build converts the records of each table into a dataset. Field-level problems (bad
// formats, missing fields) are returned; references and overlaps are checked by Validate.
func Build(in map[Kind][]Record, loc *time.Location) (*Dataset, Errors) {
	c := &converter{loc: loc}
	d := &Dataset{}
	for _, r := range in[KindRegions] {
		e := Region{Code: c.required(r, KindRegions, "", "code"), Name: str(r, "name")}
		e.SetOrigin(r.Origin)
		d.Regions = append(d.Regions, e)
	}
	for _, r := range in[KindSchools] {
		id := c.required(r, KindSchools, "", "id")
		e := School{ID: id, Name: str(r, "name"), Region: c.required(r, KindSchools, id, "region")}
		e.SetOrigin(r.Origin)
		d.Schools = append(d.Schools, e)
	}
	for _, r := range in[KindClassrooms] {
		id := c.required(r, KindClassrooms, "", "id")
		e := Classroom{ID: id, Name: str(r, "name"), School: c.required(r, KindClassrooms, id, "school")}
		if kind := c.required(r, KindClassrooms, id, "kind"); kind != "" {
			var ok bool
			if e.Kind, ok = parseClassroomKind(kind); !ok {
				c.fail(r, KindClassrooms, id, "kind", "%q is not master (主讲) or teaching_point (教学点)", kind)
			}
		}
		e.SetOrigin(r.Origin)
		d.Classrooms = append(d.Classrooms, e)
	}
	for _, r := range in[KindPairings] {
		id := c.required(r, KindPairings, "", "id")
		e := Pairing{ID: id, Subject: c.required(r, KindPairings, id, "subject"),
			Master: c.required(r, KindPairings, id, "master"), TeachingPoints: r.Fields["teaching_points"].Strings()}
		e.SetOrigin(r.Origin)
		d.Pairings = append(d.Pairings, e)
	}
	for _, r := range in[KindTerms] {
		id := c.required(r, KindTerms, "", "id")
		e := Term{ID: id, Name: str(r, "name")}
		for _, f := range []string{"start", "end"} {
			v := c.required(r, KindTerms, id, f)
			if v == "" {
				continue
			}
			day, err := ParseDate(v, loc)
			if err != nil {
				c.fail(r, KindTerms, id, f, "%v", err)
				continue
			}
			if f == "start" {
				e.Start = day.Format(DateLayout)
			} else {
				e.End = day.Format(DateLayout)
			}
		}
		e.SetOrigin(r.Origin)
		d.Terms = append(d.Terms, e)
	}
	for _, r := range in[KindSessions] {
		d.Sessions = append(d.Sessions, c.session(r))
	}
	for _, r := range in[KindAccounts] {
		id := c.required(r, KindAccounts, "", "id")
		e := Account{ID: id, Name: str(r, "name"), Classroom: str(r, "classroom"), Region: str(r, "region"),
			Password: str(r, "password"), PasswordHash: str(r, "password_hash")}
		switch kind := strings.ToLower(str(r, "kind")); kind {
		case "", "classroom", "教室":
			e.Kind = ClassroomAccount
		case "supervisor", "巡课", "督导":
			e.Kind = SupervisorAccount
		default:
			c.fail(r, KindAccounts, id, "kind", "%q is not classroom or supervisor (巡课)", kind)
		}
		if v := str(r, "disabled"); v != "" {
			b, ok := parseBool(v)
			if !ok {
				c.fail(r, KindAccounts, id, "disabled", "%q is not true or false", v)
			}
			e.Disabled = b
		}
		e.SetOrigin(r.Origin)
		d.Accounts = append(d.Accounts, e)
	}
	return d, c.errs
}

func (c *converter) session(r Record) Session {
	const k = KindSessions
	id := c.required(r, k, "", "id")
	s := Session{ID: id, Subject: str(r, "subject"), Pairing: str(r, "pairing"), Master: str(r, "master"),
		Receivers: r.Fields["receivers"].Strings(), Room: str(r, "room"), Term: str(r, "term")}
	s.SetOrigin(r.Origin)
	if v := c.required(r, k, id, "course_type"); v != "" {
		var ok bool
		if s.CourseType, ok = ParseCourseType(v); !ok {
			c.fail(r, k, id, "course_type", "%q is not 1 (专递课堂 delivery), 2 (名师课堂 research) or 3 (名校网络课堂 broadcast)", v)
		}
	}
	if v := str(r, "grade"); v != "" {
		g, ok := ParseGrade(v)
		if !ok {
			c.fail(r, k, id, "grade", "%q is not a grade from 1 to 12", v)
		}
		s.Grade = g
	}
	var day time.Time
	if v := str(r, "date"); v != "" {
		var err error
		if day, err = ParseDate(v, c.loc); err != nil {
			c.fail(r, k, id, "date", "%v", err)
			return s
		}
	}
	for _, f := range []string{"start", "end"} {
		v := c.required(r, k, id, f)
		if v == "" {
			continue
		}
		t, err := ParseTime(v, day, c.loc)
		if err != nil {
			c.fail(r, k, id, f, "%v", err)
			continue
		}
		if f == "start" {
			s.Start = t
		} else {
			s.End = t
		}
	}
	return s
}

func parseClassroomKind(s string) (ClassroomKind, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "master", "主讲", "主讲课堂", "主讲教室", "主讲端":
		return Master, true
	case "teaching_point", "teaching-point", "receiver", "receiving", "教学点", "接收", "接收课堂", "接收教室", "接收端":
		return TeachingPoint, true
	}
	return "", false
}

// ParseCourseType accepts 1/2/3, the English names and the Chinese names.
func ParseCourseType(s string) (CourseType, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "delivery", "专递课堂", "专递":
		return Delivery, true
	case "2", "research", "名师课堂", "名师":
		return Research, true
	case "3", "broadcast", "名校网络课堂", "名校网络":
		return Broadcast, true
	}
	return 0, false
}

// ParseGrade accepts 1-12 and Chinese grade names (三年级, 初一, 高二 ...).
func ParseGrade(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 1 && n <= 12
	}
	digits := map[string]int{"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10, "十一": 11, "十二": 12}
	switch {
	case strings.HasPrefix(s, "初"):
		if n, ok := digits[strings.TrimPrefix(s, "初")]; ok && n <= 3 {
			return 6 + n, true
		}
	case strings.HasPrefix(s, "高"):
		if n, ok := digits[strings.TrimPrefix(s, "高")]; ok && n <= 3 {
			return 9 + n, true
		}
	case strings.HasSuffix(s, "年级"):
		if n, ok := digits[strings.TrimSuffix(s, "年级")]; ok {
			return n, true
		}
	}
	return 0, false
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1", "是", "y":
		return true, true
	case "false", "no", "0", "否", "n":
		return false, true
	}
	return false, false
}

// DateLayout is how dates are written in output.
const DateLayout = "2006-01-02"

// ParseDate accepts 2025-09-01, 2025/9/1, 2025.9.1 and 2025年9月1日, in loc.
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	r := strings.NewReplacer("/", "-", ".", "-", "年", "-", "月", "-", "日", "")
	norm := r.Replace(s)
	for _, layout := range []string{"2006-1-2", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, norm, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &parseError{what: "date", value: s, want: "YYYY-MM-DD"}
}

// ParseTime parses a session start or end: a full date and time (RFC 3339, or
// "2025-09-01 08:00" in loc), or a time of day ("08:00") on day when day is not zero.
func ParseTime(s string, day time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc), nil
	}
	norm := strings.NewReplacer("/", "-", "T", " ", "年", "-", "月", "-", "日", " ").Replace(s)
	norm = strings.Join(strings.Fields(norm), " ")
	for _, layout := range []string{"2006-1-2 15:04", "2006-1-2 15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, norm, loc); err == nil {
			return t, nil
		}
	}
	if !day.IsZero() {
		norm = strings.ReplaceAll(norm, "：", ":")
		for _, layout := range []string{"15:04", "15:04:05"} {
			if t, err := time.ParseInLocation(layout, norm, loc); err == nil {
				return time.Date(day.Year(), day.Month(), day.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc), nil
			}
		}
	}
	want := "a date and time such as 2025-09-01 08:00 or 2025-09-01T08:00:00+08:00"
	if !day.IsZero() {
		want = "a time of day such as 08:00 (with the date column), or " + want
	}
	return time.Time{}, &parseError{what: "time", value: s, want: want}
}

type parseError struct{ what, value, want string }

// Error says what was expected.
func (e *parseError) Error() string {
	return "\"" + e.value + "\" is not a " + e.what + " (" + e.want + ")"
}
