package model

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
)

// MaxSessionLength bounds a session's scheduled duration (a double period is 90 minutes).
const MaxSessionLength = 4 * time.Hour

// MinPasswordLength is the shortest plain-text password accepted.
const MinPasswordLength = 8

// RoomPrefix starts the default room name of a session.
const RoomPrefix = "class-"

// Validate fills in defaults (a session's master, receivers and subject from its pairing, its
// room name) and checks the whole dataset: syntax of codes and IDs, uniqueness, references
// between tables, classroom kinds, the GB/T 2260 hierarchy, and that no classroom has two
// overlapping sessions. Every problem is reported, with the row it was read from.
func Validate(d *Dataset, loc *time.Location) Errors {
	v := &validator{d: d, loc: loc}
	v.checkRegions()
	v.checkSchools()
	v.checkClassrooms()
	v.checkPairings()
	v.checkTerms()
	v.checkSessions()
	v.checkAccounts()
	v.errs.sort()
	return v.errs
}

type validator struct {
	d    *Dataset
	loc  *time.Location
	errs Errors

	regionLevel map[string]Level
	schools     map[string]*School
	classrooms  map[string]*Classroom
	pairings    map[string]*Pairing
	terms       map[string]*Term
}

func (v *validator) fail(o Origin, k Kind, id, field, format string, args ...any) {
	v.errs = append(v.errs, errorAt(o, k, id, field, format, args...))
}

// checkID checks an entity ID: used in URLs, room names and participant identities.
func (v *validator) checkID(o Origin, k Kind, id string, seen map[string]Origin) bool {
	if id == "" {
		v.fail(o, k, id, "id", "required")
		return false
	}
	if len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("/?#%\\\"'<>", r)
	}) {
		v.fail(o, k, id, "id", "must be at most 64 characters without spaces or any of / ? # %% \\ \" ' < >")
		return false
	}
	if prev, dup := seen[id]; dup {
		v.fail(o, k, id, "id", "duplicate ID (also %s)", describeOrigin(prev))
		return false
	}
	seen[id] = o
	return true
}

func describeOrigin(o Origin) string {
	switch {
	case o.File != "" && o.Row > 0:
		return fmt.Sprintf("%s row %d", o.File, o.Row)
	case o.Row > 0:
		return fmt.Sprintf("row %d", o.Row)
	case o.File != "":
		return o.File
	}
	return "in the stored dataset"
}

func (v *validator) checkRegions() {
	v.regionLevel = map[string]Level{}
	seen := map[string]Origin{}
	for i := range v.d.Regions {
		r := &v.d.Regions[i]
		lvl, err := ParseRegionCode(r.Code)
		if err != nil {
			v.fail(r.Origin(), KindRegions, r.Code, "code", "%v", err)
			continue
		}
		if prev, dup := seen[r.Code]; dup {
			v.fail(r.Origin(), KindRegions, r.Code, "code", "duplicate code (also %s)", describeOrigin(prev))
			continue
		}
		seen[r.Code] = r.Origin()
		if strings.TrimSpace(r.Name) == "" {
			v.fail(r.Origin(), KindRegions, r.Code, "name", "required")
		}
		v.regionLevel[r.Code] = lvl
	}
	for i := range v.d.Regions {
		r := &v.d.Regions[i]
		if _, ok := v.regionLevel[r.Code]; !ok {
			continue
		}
		if p := ParentCode(r.Code); p != "" {
			if _, ok := v.regionLevel[p]; !ok {
				v.fail(r.Origin(), KindRegions, r.Code, "code", "parent region %s is not defined (a %s needs its %s)",
					p, v.regionLevel[r.Code], v.regionLevel[r.Code]-1)
			}
		}
	}
}

func (v *validator) checkSchools() {
	v.schools = map[string]*School{}
	seen := map[string]Origin{}
	for i := range v.d.Schools {
		s := &v.d.Schools[i]
		if !v.checkID(s.Origin(), KindSchools, s.ID, seen) {
			continue
		}
		v.schools[s.ID] = s
		lvl, ok := v.regionLevel[s.Region]
		switch {
		case !ok:
			v.fail(s.Origin(), KindSchools, s.ID, "region", "unknown region %q", s.Region)
		case lvl != LevelCounty:
			v.fail(s.Origin(), KindSchools, s.ID, "region", "%s is a %s; a school belongs to a county-level region", s.Region, lvl)
		}
	}
}

func (v *validator) checkClassrooms() {
	v.classrooms = map[string]*Classroom{}
	seen := map[string]Origin{}
	for i := range v.d.Classrooms {
		c := &v.d.Classrooms[i]
		if !v.checkID(c.Origin(), KindClassrooms, c.ID, seen) {
			continue
		}
		v.classrooms[c.ID] = c
		if _, ok := v.schools[c.School]; !ok {
			v.fail(c.Origin(), KindClassrooms, c.ID, "school", "unknown school %q", c.School)
		}
		if c.Kind != Master && c.Kind != TeachingPoint {
			v.fail(c.Origin(), KindClassrooms, c.ID, "kind", "must be master or teaching_point")
		}
	}
}

// classroomRef checks a reference to a classroom, optionally of a kind.
func (v *validator) classroomRef(o Origin, k Kind, id, field, ref string, want ClassroomKind) bool {
	c, ok := v.classrooms[ref]
	if !ok {
		v.fail(o, k, id, field, "unknown classroom %q", ref)
		return false
	}
	if want != "" && c.Kind != want {
		v.fail(o, k, id, field, "classroom %q is a %s, not a %s", ref, c.Kind, want)
		return false
	}
	return true
}

func (v *validator) checkPairings() {
	v.pairings = map[string]*Pairing{}
	seen := map[string]Origin{}
	for i := range v.d.Pairings {
		p := &v.d.Pairings[i]
		if !v.checkID(p.Origin(), KindPairings, p.ID, seen) {
			continue
		}
		v.pairings[p.ID] = p
		if p.Subject == "" {
			v.fail(p.Origin(), KindPairings, p.ID, "subject", "required")
		}
		v.classroomRef(p.Origin(), KindPairings, p.ID, "master", p.Master, Master)
		if len(p.TeachingPoints) == 0 {
			v.fail(p.Origin(), KindPairings, p.ID, "teaching_points", "at least one teaching point is required")
		}
		dup := map[string]bool{}
		for _, tp := range p.TeachingPoints {
			if dup[tp] {
				v.fail(p.Origin(), KindPairings, p.ID, "teaching_points", "%q listed twice", tp)
			}
			dup[tp] = true
			v.classroomRef(p.Origin(), KindPairings, p.ID, "teaching_points", tp, TeachingPoint)
		}
	}
}

func (v *validator) checkTerms() {
	v.terms = map[string]*Term{}
	seen := map[string]Origin{}
	var valid []*Term
	for i := range v.d.Terms {
		t := &v.d.Terms[i]
		if !v.checkID(t.Origin(), KindTerms, t.ID, seen) {
			continue
		}
		v.terms[t.ID] = t
		s, err1 := ParseDate(t.Start, v.loc)
		e, err2 := ParseDate(t.End, v.loc)
		switch {
		case err1 != nil:
			v.fail(t.Origin(), KindTerms, t.ID, "start", "%v", err1)
		case err2 != nil:
			v.fail(t.Origin(), KindTerms, t.ID, "end", "%v", err2)
		case e.Before(s):
			v.fail(t.Origin(), KindTerms, t.ID, "end", "%s is before start %s", t.End, t.Start)
		default:
			t.Start, t.End = s.Format(DateLayout), e.Format(DateLayout)
			valid = append(valid, t)
		}
	}
	sort.Slice(valid, func(i, j int) bool { return valid[i].Start < valid[j].Start })
	for i := 1; i < len(valid); i++ {
		if valid[i].Start <= valid[i-1].End {
			v.fail(valid[i].Origin(), KindTerms, valid[i].ID, "start", "term overlaps term %q (%s to %s)",
				valid[i-1].ID, valid[i-1].Start, valid[i-1].End)
		}
	}
}

// validRoomName reports whether a room name is safe in URLs and logs.
func validRoomName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r == ':' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}

func (v *validator) checkSessions() {
	seen := map[string]Origin{}
	rooms := map[string]string{}
	type slot struct {
		s     *Session
		field string
	}
	byClassroom := map[string][]slot{}
	for i := range v.d.Sessions {
		s := &v.d.Sessions[i]
		o := s.Origin()
		fail := func(field, format string, args ...any) { v.fail(o, KindSessions, s.ID, field, format, args...) }
		if !v.checkID(o, KindSessions, s.ID, seen) {
			continue
		}
		if s.CourseType < Delivery || s.CourseType > Broadcast {
			fail("course_type", "must be 1 (delivery), 2 (research) or 3 (broadcast)")
		}
		if s.Pairing != "" {
			p, ok := v.pairings[s.Pairing]
			if !ok {
				fail("pairing", "unknown pairing %q", s.Pairing)
			} else {
				if s.Master == "" {
					s.Master = p.Master
				} else if s.Master != p.Master {
					fail("master", "%q is not the master classroom of pairing %q (%q)", s.Master, p.ID, p.Master)
				}
				if len(s.Receivers) == 0 {
					s.Receivers = append([]string(nil), p.TeachingPoints...)
				} else if s.CourseType == Delivery {
					for _, r := range s.Receivers {
						if !contains(p.TeachingPoints, r) {
							fail("receivers", "%q is not a teaching point of pairing %q", r, p.ID)
						}
					}
				}
				if s.Subject == "" {
					s.Subject = p.Subject
				} else if s.Subject != p.Subject {
					fail("subject", "%q differs from the subject of pairing %q (%q)", s.Subject, p.ID, p.Subject)
				}
			}
		}
		if s.Subject == "" {
			fail("subject", "required (or give a pairing)")
		}
		masterKind := ClassroomKind("")
		if s.CourseType == Delivery {
			masterKind = Master
		}
		if s.Master == "" {
			fail("master", "required (or give a pairing)")
		} else if v.classroomRef(o, KindSessions, s.ID, "master", s.Master, masterKind) {
			byClassroom[s.Master] = append(byClassroom[s.Master], slot{s, "master"})
		}
		if len(s.Receivers) == 0 {
			fail("receivers", "at least one receiving classroom is required (or give a pairing)")
		}
		recvKind := ClassroomKind("")
		if s.CourseType == Delivery {
			recvKind = TeachingPoint
		}
		dup := map[string]bool{}
		for _, r := range s.Receivers {
			switch {
			case dup[r]:
				fail("receivers", "%q listed twice", r)
			case r == s.Master:
				fail("receivers", "%q is the master classroom", r)
			case v.classroomRef(o, KindSessions, s.ID, "receivers", r, recvKind):
				byClassroom[r] = append(byClassroom[r], slot{s, "receivers"})
			}
			dup[r] = true
		}
		switch {
		case s.Start.IsZero() || s.End.IsZero():
			// reported when parsing
		case !s.End.After(s.Start):
			fail("end", "%s is not after start %s", s.End.In(v.loc).Format("2006-01-02 15:04"), s.Start.In(v.loc).Format("2006-01-02 15:04"))
		case s.End.Sub(s.Start) > MaxSessionLength:
			fail("end", "the session lasts %s, more than %s", s.End.Sub(s.Start), MaxSessionLength)
		}
		if s.Room == "" {
			s.Room = RoomPrefix + s.ID
		}
		if !validRoomName(s.Room) {
			fail("room", "%q: room names use letters, digits, - _ . : only (at most 128)", s.Room)
		} else if other, dup := rooms[s.Room]; dup {
			fail("room", "room %q is already used by session %q; each session needs its own room", s.Room, other)
		} else {
			rooms[s.Room] = s.ID
		}
		if s.Term != "" {
			t, ok := v.terms[s.Term]
			if !ok {
				fail("term", "unknown term %q", s.Term)
			} else if day := s.Start.In(v.loc).Format(DateLayout); !s.Start.IsZero() && (day < t.Start || day > t.End) {
				fail("term", "the session's date %s is outside term %q (%s to %s)", day, t.ID, t.Start, t.End)
			}
		}
	}
	// A classroom cannot be in two sessions at once.
	ids := make([]string, 0, len(byClassroom))
	for id := range byClassroom {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		slots := byClassroom[id]
		sort.SliceStable(slots, func(i, j int) bool { return slots[i].s.Start.Before(slots[j].s.Start) })
		var last *Session
		for _, sl := range slots {
			s := sl.s
			if s.Start.IsZero() || !s.End.After(s.Start) {
				continue
			}
			if last != nil && s.Start.Before(last.End) {
				v.fail(s.Origin(), KindSessions, s.ID, "start", "classroom %q (%s) is already in session %q (%s, %s to %s)",
					id, sl.field, last.ID, describeOrigin(last.Origin()),
					last.Start.In(v.loc).Format("2006-01-02 15:04"), last.End.In(v.loc).Format("15:04"))
			}
			if last == nil || s.End.After(last.End) {
				last = s
			}
		}
	}
}

func (v *validator) checkAccounts() {
	seen := map[string]Origin{}
	for i := range v.d.Accounts {
		a := &v.d.Accounts[i]
		o := a.Origin()
		if !v.checkID(o, KindAccounts, a.ID, seen) {
			continue
		}
		switch a.Kind {
		case ClassroomAccount:
			if a.Classroom == "" {
				v.fail(o, KindAccounts, a.ID, "classroom", "required for a classroom account")
			} else {
				v.classroomRef(o, KindAccounts, a.ID, "classroom", a.Classroom, "")
			}
		case SupervisorAccount:
			if _, ok := v.regionLevel[a.Region]; !ok {
				v.fail(o, KindAccounts, a.ID, "region", "unknown region %q (a supervisor watches the sessions of a region)", a.Region)
			}
		default:
			v.fail(o, KindAccounts, a.ID, "kind", "must be classroom or supervisor")
		}
		switch {
		case a.Password != "" && len(a.Password) < MinPasswordLength:
			v.fail(o, KindAccounts, a.ID, "password", "at least %d characters are required", MinPasswordLength)
		case a.Password == "" && a.PasswordHash == "" && !a.Disabled:
			v.fail(o, KindAccounts, a.ID, "password", "a password (or a bcrypt password_hash) is required")
		case a.Password == "" && a.PasswordHash != "" && !strings.HasPrefix(a.PasswordHash, "$2"):
			v.fail(o, KindAccounts, a.ID, "password_hash", "not a bcrypt hash ($2a$/$2b$/$2y$)")
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
