// Package model is the "three classrooms" data model: regions (GB/T 2260 codes), schools,
// classrooms (master classrooms 主讲 and teaching points 教学点), pairings (结对), terms,
// class sessions from a timetable (课表) and classroom accounts. It parses what a bureau
// exports from a spreadsheet (CSV) or writes by hand (YAML, JSON) and validates a whole
// dataset, naming the file, row and field of every problem. It has no storage and no
// network: package store persists a Dataset, package classroom serves it.
package model

import (
	"fmt"
	"strings"
	"time"
)

// Kind names one table of a dataset.
type Kind string

// The tables of a dataset, in dependency order (a table refers only to earlier ones).
const (
	KindRegions    Kind = "regions"
	KindSchools    Kind = "schools"
	KindClassrooms Kind = "classrooms"
	KindPairings   Kind = "pairings"
	KindTerms      Kind = "terms"
	KindSessions   Kind = "sessions"
	KindAccounts   Kind = "accounts"
)

// Kinds lists every table in dependency order.
func Kinds() []Kind {
	return []Kind{KindRegions, KindSchools, KindClassrooms, KindPairings, KindTerms, KindSessions, KindAccounts}
}

// ParseKind accepts a table name in English (singular or plural) or Chinese.
func ParseKind(s string) (Kind, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, k := range Kinds() {
		if s == string(k) || s+"s" == string(k) {
			return k, true
		}
	}
	switch s {
	case "行政区划", "区划", "地区":
		return KindRegions, true
	case "学校":
		return KindSchools, true
	case "教室", "班级":
		return KindClassrooms, true
	case "结对":
		return KindPairings, true
	case "学期":
		return KindTerms, true
	case "课表", "课程", "timetable", "class_sessions":
		return KindSessions, true
	case "账号", "账户":
		return KindAccounts, true
	}
	return "", false
}

// Region is an administrative division identified by its 6-digit GB/T 2260 code: a province
// (PP0000), a city (PPCC00) or a county-level division (PPCCDD).
type Region struct {
	Code string `json:"code"`
	Name string `json:"name"`
	origin
}

// School belongs to a county-level region.
type School struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Region string `json:"region"`
	origin
}

// ClassroomKind says whether a classroom teaches (master) or receives (teaching point).
type ClassroomKind string

// Classroom kinds.
const (
	// Master is a master classroom (主讲课堂), usually in a town or city school.
	Master ClassroomKind = "master"
	// TeachingPoint is a receiving classroom (教学点), usually a small rural school.
	TeachingPoint ClassroomKind = "teaching_point"
)

// Classroom is a room equipped for remote classes.
type Classroom struct {
	ID     string        `json:"id"`
	Name   string        `json:"name"`
	School string        `json:"school"`
	Kind   ClassroomKind `json:"kind"`
	origin
}

// Pairing (结对) ties a master classroom to the teaching points it teaches a subject to.
type Pairing struct {
	ID             string   `json:"id"`
	Subject        string   `json:"subject"`
	Master         string   `json:"master"`
	TeachingPoints []string `json:"teaching_points"`
	origin
}

// Term is a school term; sessions belong to the term containing their date.
type Term struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Start and End are dates (YYYY-MM-DD), both included.
	Start string `json:"start"`
	End   string `json:"end"`
	origin
}

// CourseType is the kind of remote class.
type CourseType int

// Course types (the codes of the national "three classrooms" statistics).
const (
	// Delivery is 专递课堂: a master classroom teaches its paired teaching points.
	Delivery CourseType = 1
	// Research is 名师课堂: teaching research, every classroom publishes and subscribes.
	Research CourseType = 2
	// Broadcast is 名校网络课堂: a lesson broadcast to viewers who only watch.
	Broadcast CourseType = 3
)

// String returns the English name of the course type.
func (c CourseType) String() string {
	switch c {
	case Delivery:
		return "delivery"
	case Research:
		return "research"
	case Broadcast:
		return "broadcast"
	}
	return fmt.Sprintf("course_type(%d)", int(c))
}

// Session is one class of the timetable. It happens in the room named Room.
type Session struct {
	ID         string     `json:"id"`
	CourseType CourseType `json:"course_type"`
	Subject    string     `json:"subject"`
	// Grade is 1-12 (primary 1-6, junior 7-9, senior 10-12); 0 when not given.
	Grade   int    `json:"grade,omitempty"`
	Pairing string `json:"pairing,omitempty"`
	Master  string `json:"master"`
	// Receivers are the receiving classrooms (teaching points for delivery sessions).
	Receivers []string  `json:"receivers"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	// Room is the LiveKit room name; "class-" + ID when not given.
	Room string `json:"room"`
	// Term is the term ID; found from the terms when not given.
	Term string `json:"term,omitempty"`
	origin
}

// Scheduled returns the scheduled duration.
func (s *Session) Scheduled() time.Duration { return s.End.Sub(s.Start) }

// HasReceiver reports whether classroom id receives the session.
func (s *Session) HasReceiver(id string) bool {
	for _, r := range s.Receivers {
		if r == id {
			return true
		}
	}
	return false
}

// AccountKind is what an account signs in as.
type AccountKind string

// Account kinds.
const (
	// ClassroomAccount signs in as one classroom (its terminal).
	ClassroomAccount AccountKind = "classroom"
	// SupervisorAccount is an inspector (巡课) who may watch, hidden, every session of a region.
	SupervisorAccount AccountKind = "supervisor"
)

// Account can sign in and obtain room tokens. Passwords are never stored: Password is only
// accepted on input and replaced by PasswordHash (bcrypt) before anything is saved.
type Account struct {
	ID        string      `json:"id"`
	Kind      AccountKind `json:"kind"`
	Name      string      `json:"name,omitempty"`
	Classroom string      `json:"classroom,omitempty"` // classroom accounts
	Region    string      `json:"region,omitempty"`    // supervisor accounts: the region watched
	Disabled  bool        `json:"disabled,omitempty"`
	// PasswordHash is a bcrypt hash. Never returned by the API.
	PasswordHash string `json:"password_hash,omitempty"`
	// Password is plain text on input only.
	Password string `json:"password,omitempty"`
	origin
}

// Dataset is the whole model. IDs are unique per table.
type Dataset struct {
	Regions    []Region    `json:"regions"`
	Schools    []School    `json:"schools"`
	Classrooms []Classroom `json:"classrooms"`
	Pairings   []Pairing   `json:"pairings"`
	Terms      []Term      `json:"terms"`
	Sessions   []Session   `json:"sessions"`
	Accounts   []Account   `json:"accounts"`
}

// Origin says where an entity was read from, for error messages.
type Origin struct {
	File string `json:"file,omitempty"`
	// Row is the spreadsheet row (CSV: the header is row 1) or the YAML line; 0 when unknown.
	Row int `json:"row,omitempty"`
}

// origin is embedded in every entity; it is not serialized.
type origin struct{ o Origin }

// Origin returns where the entity came from.
func (e *origin) Origin() Origin { return e.o }

// SetOrigin records where the entity came from.
func (e *origin) SetOrigin(o Origin) { e.o = o }

// Counts returns the number of entities per table.
func (d *Dataset) Counts() map[Kind]int {
	return map[Kind]int{
		KindRegions: len(d.Regions), KindSchools: len(d.Schools), KindClassrooms: len(d.Classrooms),
		KindPairings: len(d.Pairings), KindTerms: len(d.Terms), KindSessions: len(d.Sessions),
		KindAccounts: len(d.Accounts),
	}
}

// Clone returns a deep copy.
func (d *Dataset) Clone() *Dataset {
	c := &Dataset{
		Regions:    append([]Region(nil), d.Regions...),
		Schools:    append([]School(nil), d.Schools...),
		Classrooms: append([]Classroom(nil), d.Classrooms...),
		Pairings:   append([]Pairing(nil), d.Pairings...),
		Terms:      append([]Term(nil), d.Terms...),
		Sessions:   append([]Session(nil), d.Sessions...),
		Accounts:   append([]Account(nil), d.Accounts...),
	}
	for i := range c.Pairings {
		c.Pairings[i].TeachingPoints = append([]string(nil), c.Pairings[i].TeachingPoints...)
	}
	for i := range c.Sessions {
		c.Sessions[i].Receivers = append([]string(nil), c.Sessions[i].Receivers...)
	}
	return c
}

// Merge upserts every entity of patch into d by ID (by code for regions); entities of d not
// in patch are kept. Entities keep the position of the one they replace.
func (d *Dataset) Merge(patch *Dataset) {
	d.Regions = upsert(d.Regions, patch.Regions, func(r Region) string { return r.Code })
	d.Schools = upsert(d.Schools, patch.Schools, func(s School) string { return s.ID })
	d.Classrooms = upsert(d.Classrooms, patch.Classrooms, func(c Classroom) string { return c.ID })
	d.Pairings = upsert(d.Pairings, patch.Pairings, func(p Pairing) string { return p.ID })
	d.Terms = upsert(d.Terms, patch.Terms, func(t Term) string { return t.ID })
	d.Sessions = upsert(d.Sessions, patch.Sessions, func(s Session) string { return s.ID })
	d.Accounts = upsert(d.Accounts, patch.Accounts, func(a Account) string { return a.ID })
}

func upsert[T any](base, patch []T, id func(T) string) []T {
	pos := make(map[string]int, len(base))
	for i, e := range base {
		pos[id(e)] = i
	}
	for _, e := range patch {
		if i, ok := pos[id(e)]; ok {
			base[i] = e
			continue
		}
		pos[id(e)] = len(base)
		base = append(base, e)
	}
	return base
}

// Delete removes the entity of a table with that ID (code for regions) and reports whether
// it existed.
func (d *Dataset) Delete(kind Kind, id string) bool {
	switch kind {
	case KindRegions:
		return remove(&d.Regions, func(r Region) bool { return r.Code == id })
	case KindSchools:
		return remove(&d.Schools, func(s School) bool { return s.ID == id })
	case KindClassrooms:
		return remove(&d.Classrooms, func(c Classroom) bool { return c.ID == id })
	case KindPairings:
		return remove(&d.Pairings, func(p Pairing) bool { return p.ID == id })
	case KindTerms:
		return remove(&d.Terms, func(t Term) bool { return t.ID == id })
	case KindSessions:
		return remove(&d.Sessions, func(s Session) bool { return s.ID == id })
	case KindAccounts:
		return remove(&d.Accounts, func(a Account) bool { return a.ID == id })
	}
	return false
}

func remove[T any](s *[]T, match func(T) bool) bool {
	for i, e := range *s {
		if match(e) {
			*s = append((*s)[:i], (*s)[i+1:]...)
			return true
		}
	}
	return false
}
