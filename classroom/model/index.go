package model

import (
	"sort"
	"time"
)

// Index gives fast lookups into a validated dataset. It must not be modified.
type Index struct {
	Data *Dataset
	Loc  *time.Location

	regions    map[string]*Region
	schools    map[string]*School
	classrooms map[string]*Classroom
	pairings   map[string]*Pairing
	terms      []*Term // by start date
	sessions   map[string]*Session
	byRoom     map[string]*Session
	accounts   map[string]*Account
	// byClassroom lists the sessions of each classroom (master or receiver), by start.
	byClassroom map[string][]*Session
}

// NewIndex indexes d, which must have passed Validate.
func NewIndex(d *Dataset, loc *time.Location) *Index {
	x := &Index{
		Data: d, Loc: loc,
		regions: map[string]*Region{}, schools: map[string]*School{}, classrooms: map[string]*Classroom{},
		pairings: map[string]*Pairing{}, sessions: map[string]*Session{}, byRoom: map[string]*Session{},
		accounts: map[string]*Account{}, byClassroom: map[string][]*Session{},
	}
	for i := range d.Regions {
		x.regions[d.Regions[i].Code] = &d.Regions[i]
	}
	for i := range d.Schools {
		x.schools[d.Schools[i].ID] = &d.Schools[i]
	}
	for i := range d.Classrooms {
		x.classrooms[d.Classrooms[i].ID] = &d.Classrooms[i]
	}
	for i := range d.Pairings {
		x.pairings[d.Pairings[i].ID] = &d.Pairings[i]
	}
	for i := range d.Terms {
		x.terms = append(x.terms, &d.Terms[i])
	}
	sort.Slice(x.terms, func(i, j int) bool { return x.terms[i].Start < x.terms[j].Start })
	for i := range d.Sessions {
		s := &d.Sessions[i]
		x.sessions[s.ID] = s
		x.byRoom[s.Room] = s
		x.byClassroom[s.Master] = append(x.byClassroom[s.Master], s)
		for _, r := range s.Receivers {
			x.byClassroom[r] = append(x.byClassroom[r], s)
		}
	}
	for _, list := range x.byClassroom {
		sort.Slice(list, func(i, j int) bool { return list[i].Start.Before(list[j].Start) })
	}
	for i := range d.Accounts {
		x.accounts[d.Accounts[i].ID] = &d.Accounts[i]
	}
	return x
}

// Region returns a region by code.
func (x *Index) Region(code string) *Region { return x.regions[code] }

// School returns a school by ID.
func (x *Index) School(id string) *School { return x.schools[id] }

// Classroom returns a classroom by ID.
func (x *Index) Classroom(id string) *Classroom { return x.classrooms[id] }

// Pairing returns a pairing by ID.
func (x *Index) Pairing(id string) *Pairing { return x.pairings[id] }

// Session returns a session by ID.
func (x *Index) Session(id string) *Session { return x.sessions[id] }

// SessionByRoom returns the session held in a room.
func (x *Index) SessionByRoom(room string) *Session { return x.byRoom[room] }

// Account returns an account by ID.
func (x *Index) Account(id string) *Account { return x.accounts[id] }

// SessionsOf returns a classroom's sessions (as master or receiver) by start time.
func (x *Index) SessionsOf(classroom string) []*Session { return x.byClassroom[classroom] }

// CountyOf returns the county code of a classroom's school ("" if unknown).
func (x *Index) CountyOf(classroom string) string {
	c := x.classrooms[classroom]
	if c == nil {
		return ""
	}
	if s := x.schools[c.School]; s != nil {
		return s.Region
	}
	return ""
}

// SchoolOf returns the school ID of a classroom.
func (x *Index) SchoolOf(classroom string) string {
	if c := x.classrooms[classroom]; c != nil {
		return c.School
	}
	return ""
}

// TermOf returns the term of a session: the one it names, or the term containing its date.
func (x *Index) TermOf(s *Session) string {
	if s.Term != "" {
		return s.Term
	}
	return x.TermAt(s.Start)
}

// TermAt returns the term containing t's date, or "".
func (x *Index) TermAt(t time.Time) string {
	day := t.In(x.Loc).Format(DateLayout)
	for _, term := range x.terms {
		if day >= term.Start && day <= term.End {
			return term.ID
		}
	}
	return ""
}

// Term returns a term by ID.
func (x *Index) Term(id string) *Term {
	for _, t := range x.terms {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// TeachingPoints returns the teaching points inside a region ("" or a province, city or
// county code).
func (x *Index) TeachingPoints(region string) []*Classroom {
	var out []*Classroom
	for i := range x.Data.Classrooms {
		c := &x.Data.Classrooms[i]
		if c.Kind != TeachingPoint {
			continue
		}
		if region == "" || RegionContains(region, x.CountyOf(c.ID)) {
			out = append(out, c)
		}
	}
	return out
}
