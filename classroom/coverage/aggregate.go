package coverage

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sanke-edu/sanke/classroom/model"
)

// Dimension is something aggregates can be grouped by.
type Dimension string

// Dimensions.
const (
	ByTeachingPoint Dimension = "teaching_point" // a receiving classroom
	BySchool        Dimension = "school"
	ByCounty        Dimension = "county"
	ByCity          Dimension = "city"
	ByProvince      Dimension = "province"
	BySubject       Dimension = "subject"
	ByCourseType    Dimension = "course_type"
	ByDay           Dimension = "day"   // 2025-09-01
	ByWeek          Dimension = "week"  // ISO week, 2025-W36
	ByMonth         Dimension = "month" // 2025-09
	ByTerm          Dimension = "term"
)

// ParseDimensions parses a comma-separated group_by list.
func ParseDimensions(s string) ([]Dimension, error) {
	var out []Dimension
	seen := map[Dimension]bool{}
	for _, part := range strings.Split(s, ",") {
		d := Dimension(strings.TrimSpace(strings.ToLower(part)))
		switch d {
		case "":
			continue
		case "classroom":
			d = ByTeachingPoint
		case ByTeachingPoint, BySchool, ByCounty, ByCity, ByProvince, BySubject, ByCourseType, ByDay, ByWeek, ByMonth, ByTerm:
		default:
			return nil, fmt.Errorf("unknown group_by %q (teaching_point, school, county, city, province, subject, course_type, day, week, month, term)", d)
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}

func (d Dimension) geographic() bool {
	switch d {
	case ByTeachingPoint, BySchool, ByCounty, ByCity, ByProvince:
		return true
	}
	return false
}

// Query selects and groups attendance rows.
type Query struct {
	// Region is a GB/T 2260 code (province, city or county); "" for all.
	Region string
	// From and To bound the sessions' scheduled start: From <= start < To. Zero: unbounded.
	From, To time.Time
	GroupBy  []Dimension
	// CourseType keeps only sessions of a type (0: all). Coverage always counts delivery
	// sessions (专递课堂), as its definition says.
	CourseType int
	// Subject keeps only sessions of a subject ("" for all).
	Subject string
	// Routine use (常态化): at least RoutineMinPerWeek valid sessions in each of
	// RoutineWeeks consecutive weeks.
	RoutineMinPerWeek int
	RoutineWeeks      int
}

// ClassHours counts the valid sessions of a subject received by teaching points (one per
// receiving classroom and session) and their scheduled hours.
type ClassHours struct {
	Sessions int     `json:"sessions"`
	Hours    float64 `json:"hours"`
}

// QualitySummary gives percentiles over the receiving classrooms' sessions of a group.
type QualitySummary struct {
	ConnectedShare Stat `json:"connected_share"`
	LossPercent    Stat `json:"loss_percent"`
	JitterMs       Stat `json:"jitter_ms"`
	RTTMs          Stat `json:"rtt_ms"`
	BitrateKbps    Stat `json:"bitrate_kbps"`
}

// Group is the aggregate of one combination of dimension values (or of everything).
type Group struct {
	Key   map[Dimension]string `json:"key"`
	Names map[Dimension]string `json:"names,omitempty"`
	// TeachingPoints is the number of teaching points of the group's area (the region
	// queried, narrowed by the group's geographic dimensions); Covered those with at least
	// one valid delivery session. CoverageRate is Covered / TeachingPoints (覆盖率).
	TeachingPoints int      `json:"teaching_points"`
	Covered        int      `json:"covered_teaching_points"`
	CoverageRate   *float64 `json:"coverage_rate"`
	// Scheduled counts receiving classrooms x sessions that ended; Valid those that were
	// valid. DeliveryRate is Valid / Scheduled (开课率).
	Scheduled    int      `json:"scheduled"`
	Valid        int      `json:"valid"`
	DeliveryRate *float64 `json:"delivery_rate"`
	// Sessions counts distinct class sessions.
	Sessions int `json:"sessions"`
	// Routine counts teaching points in routine use (常态化); RoutineRate is Routine /
	// TeachingPoints.
	Routine        int                   `json:"routine_teaching_points"`
	RoutineRate    *float64              `json:"routine_rate"`
	ConnectedHours float64               `json:"connected_hours"`
	ClassHours     map[string]ClassHours `json:"class_hours"`
	TimesCalledOn  int                   `json:"times_called_on"`
	Quality        QualitySummary        `json:"quality"`
}

// Report is the answer to a Query.
type Report struct {
	Region     string      `json:"region,omitempty"`
	RegionName string      `json:"region_name,omitempty"`
	From       *time.Time  `json:"from,omitempty"`
	To         *time.Time  `json:"to,omitempty"`
	GroupBy    []Dimension `json:"group_by"`
	Routine    struct {
		MinPerWeek int `json:"min_per_week"`
		Weeks      int `json:"weeks"`
	} `json:"routine"`
	Total  Group   `json:"total"`
	Groups []Group `json:"groups"`
}

// Aggregate computes a report from attendance rows (typically all rows of the period; it
// filters them itself) and the current dataset (for teaching point counts and names).
func Aggregate(idx *model.Index, rows []Attendance, q Query) *Report {
	rep := &Report{Region: q.Region, GroupBy: q.GroupBy, Groups: []Group{}}
	if q.GroupBy == nil {
		rep.GroupBy = []Dimension{}
	}
	if r := idx.Region(q.Region); r != nil {
		rep.RegionName = r.Name
	}
	if !q.From.IsZero() {
		f := q.From.In(idx.Loc)
		rep.From = &f
	}
	if !q.To.IsZero() {
		t := q.To.In(idx.Loc)
		rep.To = &t
	}
	rep.Routine.MinPerWeek, rep.Routine.Weeks = q.RoutineMinPerWeek, q.RoutineWeeks

	var sel []Attendance
	for _, r := range rows {
		if (!q.From.IsZero() && r.Start.Before(q.From)) || (!q.To.IsZero() && !r.Start.Before(q.To)) {
			continue
		}
		if q.Region != "" && !model.RegionContains(q.Region, r.County) {
			continue
		}
		if (q.CourseType != 0 && r.CourseType != q.CourseType) || (q.Subject != "" && r.Subject != q.Subject) {
			continue
		}
		sel = append(sel, r)
	}
	// Teaching points of the area, by geographic key.
	tps := idx.TeachingPoints(q.Region)
	tpKey := func(c *model.Classroom) string {
		return geoKey(q.GroupBy, c.ID, c.School, idx.CountyOf(c.ID))
	}
	tpsByGeo := map[string][]string{}
	for _, c := range tps {
		k := tpKey(c)
		tpsByGeo[k] = append(tpsByGeo[k], c.ID)
	}

	groups := map[string][]Attendance{}
	keys := map[string]map[Dimension]string{}
	for _, r := range sel {
		key := rowKey(q.GroupBy, r, idx.Loc)
		ks := encodeKey(q.GroupBy, key)
		groups[ks] = append(groups[ks], r)
		keys[ks] = key
	}
	// Areas without any session still appear when grouping by area only.
	if onlyGeographic(q.GroupBy) && len(q.GroupBy) > 0 {
		for _, c := range tps {
			key := map[Dimension]string{}
			county := idx.CountyOf(c.ID)
			for _, d := range q.GroupBy {
				key[d] = geoValue(d, c.ID, c.School, county)
			}
			ks := encodeKey(q.GroupBy, key)
			if _, ok := keys[ks]; !ok {
				keys[ks] = key
				groups[ks] = nil
			}
		}
	}
	rep.Total = buildGroup(idx, q, map[Dimension]string{}, sel, tpIDs(tps))
	names := make([]string, 0, len(keys))
	for ks := range keys {
		names = append(names, ks)
	}
	sort.Strings(names)
	for _, ks := range names {
		key := keys[ks]
		geo := geoKeyOf(q.GroupBy, key)
		rep.Groups = append(rep.Groups, buildGroup(idx, q, key, groups[ks], tpsByGeo[geo]))
	}
	return rep
}

func tpIDs(cs []*model.Classroom) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func onlyGeographic(dims []Dimension) bool {
	for _, d := range dims {
		if !d.geographic() {
			return false
		}
	}
	return true
}

func geoValue(d Dimension, classroom, school, county string) string {
	switch d {
	case ByTeachingPoint:
		return classroom
	case BySchool:
		return school
	case ByCounty:
		return county
	case ByCity:
		if v, err := model.AncestorAt(county, model.LevelCity); err == nil {
			return v
		}
	case ByProvince:
		if v, err := model.AncestorAt(county, model.LevelProvince); err == nil {
			return v
		}
	}
	return ""
}

func rowKey(dims []Dimension, r Attendance, loc *time.Location) map[Dimension]string {
	key := map[Dimension]string{}
	start := r.Start.In(loc)
	for _, d := range dims {
		switch d {
		case BySubject:
			key[d] = r.Subject
		case ByCourseType:
			key[d] = strconv.Itoa(r.CourseType)
		case ByDay:
			key[d] = start.Format(model.DateLayout)
		case ByWeek:
			y, w := start.ISOWeek()
			key[d] = fmt.Sprintf("%d-W%02d", y, w)
		case ByMonth:
			key[d] = start.Format("2006-01")
		case ByTerm:
			key[d] = r.Term
		default:
			key[d] = geoValue(d, r.Classroom, r.School, r.County)
		}
	}
	return key
}

func encodeKey(dims []Dimension, key map[Dimension]string) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = key[d]
	}
	return strings.Join(parts, "\x00")
}

// geoKey is the key of a teaching point restricted to the geographic dimensions.
func geoKey(dims []Dimension, classroom, school, county string) string {
	var parts []string
	for _, d := range dims {
		if d.geographic() {
			parts = append(parts, geoValue(d, classroom, school, county))
		}
	}
	return strings.Join(parts, "\x00")
}

func geoKeyOf(dims []Dimension, key map[Dimension]string) string {
	var parts []string
	for _, d := range dims {
		if d.geographic() {
			parts = append(parts, key[d])
		}
	}
	return strings.Join(parts, "\x00")
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := round4(float64(n) / float64(d))
	return &r
}

// buildGroup computes one group from its rows and the teaching points of its area.
func buildGroup(idx *model.Index, q Query, key map[Dimension]string, rows []Attendance, tps []string) Group {
	g := Group{Key: key, Names: map[Dimension]string{}, ClassHours: map[string]ClassHours{}, TeachingPoints: len(tps)}
	for d, v := range key {
		if n := dimensionName(idx, d, v); n != "" {
			g.Names[d] = n
		}
	}
	if len(g.Names) == 0 {
		g.Names = nil
	}
	inArea := map[string]bool{}
	for _, id := range tps {
		inArea[id] = true
	}
	covered := map[string]bool{}
	sessions := map[string]bool{}
	weekly := map[string]map[time.Time]int{} // teaching point -> Monday -> valid sessions
	var share, loss, jitter, rtt, bitrate []float64
	var connected float64
	for _, r := range rows {
		g.Scheduled++
		sessions[r.SessionID] = true
		connected += r.ConnectedSeconds
		g.TimesCalledOn += r.TimesCalledOn
		if r.ScheduledSeconds > 0 {
			share = append(share, r.ConnectedSeconds/r.ScheduledSeconds)
		}
		if r.QualitySamples > 0 {
			loss = append(loss, r.LossPercent)
			jitter = append(jitter, r.JitterMs)
			bitrate = append(bitrate, r.BitrateKbps)
			if r.RTTMs > 0 {
				rtt = append(rtt, r.RTTMs)
			}
		}
		if !r.Valid {
			continue
		}
		g.Valid++
		ch := g.ClassHours[r.Subject]
		ch.Sessions++
		ch.Hours += r.ScheduledSeconds / 3600
		g.ClassHours[r.Subject] = ch
		if !inArea[r.Classroom] {
			continue
		}
		if r.CourseType == int(model.Delivery) {
			covered[r.Classroom] = true
		}
		monday := mondayOf(r.Start.In(idx.Loc))
		if weekly[r.Classroom] == nil {
			weekly[r.Classroom] = map[time.Time]int{}
		}
		weekly[r.Classroom][monday]++
	}
	for s, ch := range g.ClassHours {
		ch.Hours = round4(ch.Hours)
		g.ClassHours[s] = ch
	}
	g.Covered = len(covered)
	g.CoverageRate = ratio(g.Covered, g.TeachingPoints)
	g.DeliveryRate = ratio(g.Valid, g.Scheduled)
	g.Sessions = len(sessions)
	for _, weeks := range weekly {
		if routine(weeks, q.RoutineMinPerWeek, q.RoutineWeeks) {
			g.Routine++
		}
	}
	g.RoutineRate = ratio(g.Routine, g.TeachingPoints)
	g.ConnectedHours = round4(connected / 3600)
	g.Quality = QualitySummary{ConnectedShare: Summarize(share), LossPercent: Summarize(loss),
		JitterMs: Summarize(jitter), RTTMs: Summarize(rtt), BitrateKbps: Summarize(bitrate)}
	return g
}

// mondayOf returns the midnight starting t's ISO week.
func mondayOf(t time.Time) time.Time {
	wd := (int(t.Weekday()) + 6) % 7 // Monday 0
	d := t.AddDate(0, 0, -wd)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, t.Location())
}

// routine reports whether some run of m consecutive weeks each has at least n valid sessions.
func routine(weeks map[time.Time]int, n, m int) bool {
	if m <= 0 {
		return false
	}
	var mondays []time.Time
	for w, c := range weeks {
		if c >= n {
			mondays = append(mondays, w)
		}
	}
	sort.Slice(mondays, func(i, j int) bool { return mondays[i].Before(mondays[j]) })
	run := 0
	for i, w := range mondays {
		// Consecutive ISO weeks start 7 calendar days apart (AddDate copes with DST).
		if i > 0 && mondays[i-1].AddDate(0, 0, 7).Equal(w) {
			run++
		} else {
			run = 1
		}
		if run >= m {
			return true
		}
	}
	return false
}

func dimensionName(idx *model.Index, d Dimension, v string) string {
	switch d {
	case ByTeachingPoint:
		if c := idx.Classroom(v); c != nil {
			return c.Name
		}
	case BySchool:
		if s := idx.School(v); s != nil {
			return s.Name
		}
	case ByCounty, ByCity, ByProvince:
		if r := idx.Region(v); r != nil {
			return r.Name
		}
	case ByTerm:
		if t := idx.Term(v); t != nil {
			return t.Name
		}
	case ByCourseType:
		if n, err := strconv.Atoi(v); err == nil {
			return model.CourseType(n).String()
		}
	}
	return ""
}

// WriteCSV writes the report as CSV: one row per group, then a total row. It starts with a
// UTF-8 byte-order mark so that spreadsheet programs show Chinese names correctly.
func (rep *Report) WriteCSV(w io.Writer) error {
	if _, err := io.WriteString(w, "\xef\xbb\xbf"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	var header []string
	for _, d := range rep.GroupBy {
		header = append(header, string(d), string(d)+"_name")
	}
	header = append(header, "teaching_points", "covered_teaching_points", "coverage_rate", "scheduled", "valid",
		"delivery_rate", "sessions", "routine_teaching_points", "routine_rate", "connected_hours", "times_called_on",
		"class_hours", "connected_share_p50", "loss_percent_p50", "loss_percent_p95", "jitter_ms_p50", "jitter_ms_p95",
		"rtt_ms_p50", "rtt_ms_p95", "bitrate_kbps_p50")
	if err := cw.Write(header); err != nil {
		return err
	}
	rate := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	write := func(g Group, total bool) error {
		var row []string
		for _, d := range rep.GroupBy {
			if total {
				row = append(row, "(all)", "")
				continue
			}
			row = append(row, g.Key[d], g.Names[d])
		}
		subjects := make([]string, 0, len(g.ClassHours))
		for s := range g.ClassHours {
			subjects = append(subjects, s)
		}
		sort.Strings(subjects)
		var ch []string
		for _, s := range subjects {
			ch = append(ch, fmt.Sprintf("%s:%d/%sh", s, g.ClassHours[s].Sessions, num(g.ClassHours[s].Hours)))
		}
		row = append(row, strconv.Itoa(g.TeachingPoints), strconv.Itoa(g.Covered), rate(g.CoverageRate),
			strconv.Itoa(g.Scheduled), strconv.Itoa(g.Valid), rate(g.DeliveryRate), strconv.Itoa(g.Sessions),
			strconv.Itoa(g.Routine), rate(g.RoutineRate), num(g.ConnectedHours), strconv.Itoa(g.TimesCalledOn),
			strings.Join(ch, ";"), num(g.Quality.ConnectedShare.P50), num(g.Quality.LossPercent.P50),
			num(g.Quality.LossPercent.P95), num(g.Quality.JitterMs.P50), num(g.Quality.JitterMs.P95),
			num(g.Quality.RTTMs.P50), num(g.Quality.RTTMs.P95), num(g.Quality.BitrateKbps.P50))
		return cw.Write(row)
	}
	for _, g := range rep.Groups {
		if err := write(g, false); err != nil {
			return err
		}
	}
	if err := write(rep.Total, true); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
