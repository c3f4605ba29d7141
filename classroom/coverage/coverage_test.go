package coverage

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sanke-edu/sanke/classroom/model"
)

func at(h, m int) time.Time { return time.Date(2025, 9, 1, h, m, 0, 0, time.UTC) }

func TestMergeAndClip(t *testing.T) {
	ivs := []Interval{{at(8, 30), at(8, 40)}, {at(8, 0), at(8, 10)}, {at(8, 5), at(8, 20)}, {at(8, 20), at(8, 25)}, {at(9, 0), at(8, 0)}}
	got := Merge(ivs)
	if len(got) != 2 || !got[0].Start.Equal(at(8, 0)) || !got[0].End.Equal(at(8, 25)) || !got[1].Start.Equal(at(8, 30)) {
		t.Errorf("Merge = %v", got)
	}
	if d := Total(ivs); d != 35*time.Minute {
		t.Errorf("Total = %s", d)
	}
	if d := Total(Clip(ivs, Interval{at(8, 15), at(8, 35)})); d != 15*time.Minute {
		t.Errorf("clipped = %s", d)
	}
	if d := Total(Intersect([]Interval{{at(8, 0), at(9, 0)}}, []Interval{{at(7, 0), at(8, 10)}, {at(8, 50), at(10, 0)}})); d != 20*time.Minute {
		t.Errorf("intersect = %s", d)
	}
}

func TestPercentile(t *testing.T) {
	s := Summarize([]float64{4, 1, 3, 2})
	if s.Avg != 2.5 || s.P50 != 2.5 || s.Max != 4 || s.P95 != 3.85 {
		t.Errorf("Summarize = %+v", s)
	}
	if (Summarize(nil) != Stat{}) {
		t.Error("empty")
	}
}

func fixture(t *testing.T) *model.Index {
	t.Helper()
	d := &model.Dataset{
		Regions:    []model.Region{{Code: "430000", Name: "湖南省"}, {Code: "431200", Name: "怀化市"}, {Code: "431223", Name: "辰溪县"}, {Code: "431224", Name: "溆浦县"}},
		Schools:    []model.School{{ID: "A", Region: "431223"}, {ID: "B", Region: "431224"}},
		Classrooms: []model.Classroom{{ID: "M", School: "A", Kind: model.Master}, {ID: "T1", School: "A", Kind: model.TeachingPoint}, {ID: "T2", School: "B", Kind: model.TeachingPoint}, {ID: "T3", School: "B", Kind: model.TeachingPoint}},
		Sessions: []model.Session{{ID: "S", CourseType: model.Delivery, Subject: "音乐", Master: "M", Receivers: []string{"T1", "T2"},
			Start: at(8, 0), End: at(8, 40), Room: "class-S"}},
	}
	if errs := model.Validate(d, time.UTC); len(errs) > 0 {
		t.Fatal(errs)
	}
	return model.NewIndex(d, time.UTC)
}

func TestCompute(t *testing.T) {
	idx := fixture(t)
	in := Input{
		Session: idx.Session("S"), Index: idx, Now: at(8, 45), ValidShare: 0.8,
		Connections: []Connection{
			{Classroom: "M", Identity: "M", JoinedAt: at(7, 58), LeftAt: at(8, 41)},
			// T1: joins early, drops, reconnects while the old connection still exists.
			{Classroom: "T1", Identity: "T1", ParticipantSID: "a", JoinedAt: at(7, 50), LeftAt: at(8, 20)},
			{Classroom: "T1", Identity: "T1", ParticipantSID: "b", JoinedAt: at(8, 18), LeftAt: at(8, 35)},
			// T2: late, still connected when the record is made.
			{Classroom: "T2", Identity: "T2", JoinedAt: at(8, 10)},
		},
		Video:    map[string][]Interval{"T1": {{at(8, 0), at(8, 40)}}, "T2": {{at(8, 10), at(8, 40)}}},
		CalledOn: map[string]int{"T2": 2},
		Samples: []Sample{{At: at(8, 10), Classroom: "T1", Layer: 2, Width: 1280, Height: 720, BitrateKbps: 1000, FractionLost: 0.01, NACKs: 3},
			{At: at(8, 20), Classroom: "T1", Layer: 0, Width: 320, Height: 180, BitrateKbps: 200, FractionLost: 0.03, PLIs: 1}},
	}
	rec := Compute(in)
	if rec.ScheduledSeconds != 2400 || rec.Master.ConnectedSeconds != 2400 || *rec.Master.StartDelaySeconds != -120 || *rec.Master.EndDeltaSeconds != 60 {
		t.Errorf("master: %+v", rec.Master)
	}
	t1, t2 := rec.Receivers[0], rec.Receivers[1]
	// T1: 7:50-8:35 merged -> 35 min in the window, 10 min before it.
	if t1.ConnectedSeconds != 2100 || t1.OutsideWindowSeconds != 600 || t1.ConnectedShare != 0.875 || !t1.Valid || len(t1.Joins) != 2 {
		t.Errorf("T1: %+v", t1)
	}
	if t1.VideoSeconds != 2100 || t1.Quality.Samples != 2 || t1.Quality.NACKs != 3 || t1.Quality.PLIs != 1 || len(t1.Layers) != 2 || t1.Quality.LossPercent.Max != 3 {
		t.Errorf("T1 quality: %+v layers %+v", t1.Quality, t1.Layers)
	}
	// T2: 8:10-now -> 30 of 40 minutes: 75% < 80%.
	if t2.ConnectedSeconds != 1800 || t2.Valid || t2.TimesCalledOn != 2 || t2.Joins[0].LeftAt != nil {
		t.Errorf("T2: %+v", t2)
	}
	if rec.ValidReceivers != 1 {
		t.Errorf("valid receivers %d", rec.ValidReceivers)
	}
	att := rec.Attendances()
	if len(att) != 2 || att[0].County != "431223" || att[1].County != "431224" || !att[0].Valid {
		t.Errorf("attendances %+v", att)
	}
}

func TestAggregate(t *testing.T) {
	idx := fixture(t)
	mon := time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC)
	row := func(id, cl, county string, day int, valid bool) Attendance {
		return Attendance{SessionID: id, Classroom: cl, School: map[string]string{"431223": "A", "431224": "B"}[county], County: county,
			Subject: "音乐", CourseType: 1, Start: mon.AddDate(0, 0, day), ScheduledSeconds: 2400, ConnectedSeconds: 2400, Valid: valid}
	}
	rows := []Attendance{
		row("w1a", "T1", "431223", 0, true), row("w1b", "T1", "431223", 2, true), row("w1a", "T2", "431224", 0, false),
		row("w2a", "T1", "431223", 7, true), row("w2b", "T1", "431223", 9, true), row("w2a", "T2", "431224", 7, true),
		row("w4", "T1", "431223", 21, true), // week 4: the run of weeks 1-2 is what counts
	}
	rep := Aggregate(idx, rows, Query{Region: "430000", GroupBy: []Dimension{ByCounty}, RoutineMinPerWeek: 2, RoutineWeeks: 2})
	tot := rep.Total
	if tot.TeachingPoints != 3 || tot.Covered != 2 || *tot.CoverageRate != 0.6667 || tot.Scheduled != 7 || tot.Valid != 6 ||
		*tot.DeliveryRate != 0.8571 || tot.Routine != 1 || *tot.RoutineRate != 0.3333 || tot.ClassHours["音乐"].Sessions != 6 || tot.ClassHours["音乐"].Hours != 4 {
		t.Errorf("total %+v", tot)
	}
	if len(rep.Groups) != 2 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	cx, xp := rep.Groups[0], rep.Groups[1]
	if cx.Key[ByCounty] != "431223" || cx.Names[ByCounty] != "辰溪县" || cx.TeachingPoints != 1 || *cx.CoverageRate != 1 || cx.Scheduled != 5 {
		t.Errorf("辰溪县 %+v", cx)
	}
	if xp.TeachingPoints != 2 || xp.Covered != 1 || *xp.CoverageRate != 0.5 || *xp.DeliveryRate != 0.5 || xp.Routine != 0 {
		t.Errorf("溆浦县 %+v", xp)
	}
	// Period filter and week grouping.
	rep = Aggregate(idx, rows, Query{From: mon, To: mon.AddDate(0, 0, 7), GroupBy: []Dimension{ByWeek}, RoutineMinPerWeek: 1, RoutineWeeks: 1})
	if len(rep.Groups) != 1 || rep.Groups[0].Key[ByWeek] != "2025-W36" || rep.Groups[0].Scheduled != 3 || rep.Groups[0].Valid != 2 {
		t.Errorf("week groups %+v", rep.Groups)
	}
	var buf bytes.Buffer
	if err := rep.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(buf.String(), "\xef\xbb\xbf")), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "week,week_name,teaching_points,covered_teaching_points,coverage_rate") ||
		!strings.HasPrefix(lines[1], "2025-W36,,3,1,0.3333,3,2,0.6667,") || !strings.HasPrefix(lines[2], "(all),,3,1,") {
		t.Errorf("CSV:\n%s", buf.String())
	}
}
