package classroom_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/sanke-edu/sanke/classroom/coverage"
	"github.com/sanke-edu/sanke/internal/config"
)

// TestSimulatedTerm plays the first two weeks of the term of classroom/sample/sample.yaml
// with Go SDK clients on a real in-process Sanke: master classrooms publish video, teaching
// points join (some late, one early, one dropping and rejoining, one on two devices at
// once, one never), the teacher calls on. A simulated clock gives every join, leave and
// statistics sample an exact time, so the records and the coverage API must match the
// figures computed by hand below.
//
// The timetable: S1 音乐 M1 -> T1,T2 on Mon 2025-09-01 08:00-08:40; S2 美术 M2 -> T3,T4
// the same day 09:00-09:40; S3 音乐 M1 -> T1,T2 on Mon 2025-09-08 08:00-08:40. T5 has no
// session. Valid = connected with video for >= 80% of 40 min = 32 min.
func TestSimulatedTerm(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	clock.Set(time.Date(2025, 9, 1, 7, 0, 0, 0, loc))
	ts := startServer(t, clock, func(c *config.Config) {
		c.Classroom.Dataset = []string{"sample/sample.yaml"}
		c.Classroom.RoutineMinPerWeek = 1 // routine use: 1 valid session a week ...
		c.Classroom.RoutineWeeks = 2      // ... two weeks in a row
	})
	ctx := context.Background()
	passwords := map[string]string{"M1": "music-master-1", "M2": "art-master-22", "T1": "houtang-tp-1",
		"T2": "shangpuxi-tp2", "T3": "beidouxi-tp3", "T4": "longzhuang-4"}
	signIns := map[string]string{} // account + day -> sign-in token (a sign-in lasts 12 h)
	var day string
	token := func(account, session string) string {
		t.Helper()
		if signIns[account+day] == "" {
			signIns[account+day] = ts.login(account, passwords[account])
		}
		rt, code := ts.roomToken(signIns[account+day], session)
		if code != 200 {
			t.Fatalf("token for %s in %s: %d %s", account, session, code, rt.Error)
		}
		return rt.Token
	}
	day = "2025-09-01"
	// watchers are the teaching points receiving video: before each sample, each must have
	// received new packets, so that the sample sees video flowing.
	watchers := map[*client]bool{}
	step := func(hhmm string) {
		t.Helper()
		for c := range watchers {
			c.waitVideo(t)
		}
		at, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hhmm, loc)
		if err != nil {
			t.Fatal(err)
		}
		clock.Set(at)
		ts.svc.Tick(ctx) // sample what was true up to now, then act
	}
	const publish, watch, early = "publish", "watch", "early" // early: no video to watch yet
	join := func(account, session, how string) *client {
		t.Helper()
		c := ts.connect(token(account, session))
		ts.waitConn(session, account, true)
		switch how {
		case publish:
			c.publishVideo(t)
		case watch:
			c.waitVideo(t)
			watchers[c] = true
		}
		return c
	}
	leave := func(c *client, session string) {
		t.Helper()
		id := c.room.LocalParticipant.Identity()
		delete(watchers, c)
		ts.disconnect(c, "class-"+session)
		ts.waitConn(session, id, false)
	}
	callOn := func(teacherToken, room, identity string) {
		t.Helper()
		var out map[string]any
		if code := ts.call("POST", "/api/v1/rooms/"+room+"/call-on", teacherToken, map[string]any{"identity": identity}, &out); code != 200 {
			t.Fatalf("call on %s: %d %v", identity, code, out)
		}
	}

	// --- Week 1, S1: M1 early, T1 on time, T2 ten minutes late (75%: not valid). ---
	step("07:58")
	m1 := join("M1", "S1", publish)
	m1Token := token("M1", "S1")
	step("08:00")
	t1 := join("T1", "S1", watch)
	step("08:10")
	t2 := join("T2", "S1", watch)
	step("08:20")
	callOn(m1Token, "class-S1", "T2")
	step("08:30")
	step("08:40")
	leave(t1, "S1")
	leave(t2, "S1")
	step("08:41")
	leave(m1, "S1")

	// --- S2: T3 drops at 09:10 and is back at 09:14, a second device of T3 is there from
	// 09:20 to 09:30 (counted once); T4 never joins. ---
	step("08:59")
	m2 := join("M2", "S2", publish)
	step("09:00")
	t3 := join("T3", "S2", watch)
	step("09:10")
	leave(t3, "S2")
	step("09:14")
	t3 = join("T3", "S2", watch)
	step("09:20")
	tablet := ts.connect(mintToken(t, "T3-tablet", grantFor("class-S2"), map[string]string{"sanke.classroom": "T3", "sanke.role": "teaching_point"}))
	ts.waitConn("S2", "T3-tablet", true)
	tablet.waitVideo(t)
	watchers[tablet] = true
	step("09:30")
	leave(tablet, "S2")
	step("09:40")
	leave(t3, "S2")
	leave(m2, "S2")
	step("09:45") // S1 was finalized at 08:45, S2 now

	// --- Week 2, S3: T1 ten minutes early (counted apart) and leaves at 08:35 (87.5%);
	// T2 is called on twice. ---
	day = "2025-09-08"
	step("07:50")
	t1 = join("T1", "S3", early) // no video yet: M1 is not there
	step("07:59")
	m1 = join("M1", "S3", publish)
	m1Token = token("M1", "S3")
	t1.waitVideo(t)
	watchers[t1] = true
	step("08:00")
	t2 = join("T2", "S3", watch)
	step("08:10")
	callOn(m1Token, "class-S3", "T2")
	step("08:15")
	if code := ts.call("DELETE", "/api/v1/rooms/class-S3/call-on/T2", m1Token, nil, nil); code != 200 {
		t.Fatalf("end call: %d", code)
	}
	step("08:25")
	callOn(m1Token, "class-S3", "T2")
	step("08:30")
	step("08:35")
	leave(t1, "S3")
	step("08:40")
	leave(t2, "S3")
	leave(m1, "S3")
	step("08:45")

	// --- Records, computed by hand. ---
	type recv struct {
		connected, video, outside, share float64
		valid                            bool
		calledOn, joins                  int
	}
	type want struct {
		startDelay, endDelta, masterConnected float64
		receivers                             map[string]recv
	}
	wants := map[string]want{
		"S1": {-120, 60, 2400, map[string]recv{
			"T1": {2400, 2400, 0, 1, true, 0, 1},
			"T2": {1800, 1800, 0, 0.75, false, 1, 1}}},
		"S2": {-60, 0, 2400, map[string]recv{
			"T3": {2160, 2160, 0, 0.9, true, 0, 3}, // 09:00-09:10 + 09:14-09:40
			"T4": {0, 0, 0, 0, false, 0, 0}}},
		"S3": {-60, 0, 2400, map[string]recv{
			"T1": {2100, 2100, 600, 0.875, true, 0, 1},
			"T2": {2400, 2400, 0, 1, true, 2, 1}}},
	}
	for id, w := range wants {
		var out struct {
			Final  bool
			Record coverage.SessionRecord
		}
		if code := ts.call("GET", "/api/v1/sessions/"+id+"/record", adminKey, nil, &out); code != 200 || !out.Final {
			t.Fatalf("%s record: %d final=%v", id, code, out.Final)
		}
		r := out.Record
		if r.ScheduledSeconds != 2400 || r.Master.StartDelaySeconds == nil || *r.Master.StartDelaySeconds != w.startDelay ||
			r.Master.EndDeltaSeconds == nil || *r.Master.EndDeltaSeconds != w.endDelta || r.Master.ConnectedSeconds != w.masterConnected {
			t.Errorf("%s master: %s", id, js(r.Master))
		}
		for _, rr := range r.Receivers {
			g := recv{rr.ConnectedSeconds, rr.VideoSeconds, rr.OutsideWindowSeconds, rr.ConnectedShare, rr.Valid, rr.TimesCalledOn, len(rr.Joins)}
			if g != w.receivers[rr.Classroom] {
				t.Errorf("%s %s: got %+v want %+v\n%s", id, rr.Classroom, g, w.receivers[rr.Classroom], js(rr))
			}
		}
	}

	// --- Coverage, computed by hand. ---
	// Receiving classroom x session: S1 T1 valid, T2 not; S2 T3 valid, T4 not; S3 T1, T2 valid.
	// 5 teaching points; covered: T1, T2, T3. Routine (1 a week, 2 weeks): T1 only.
	// Connected: 2400+1800+2160+0+2100+2400 = 10860 s = 3.0167 h.
	q := "/api/v1/coverage?region=430000&from=2025-09-01&to=2025-09-14"
	var rep coverage.Report
	if code := ts.call("GET", q, adminKey, nil, &rep); code != 200 {
		t.Fatalf("coverage: %d", code)
	}
	checkGroup(t, "province total", rep.Total, 5, 3, 0.6, 6, 4, 0.6667, 1, 0.2)
	if rep.Total.Sessions != 3 || rep.Total.TimesCalledOn != 3 || rep.Total.ConnectedHours != 3.0167 ||
		rep.Total.ClassHours["音乐"] != (coverage.ClassHours{Sessions: 3, Hours: 2}) ||
		rep.Total.ClassHours["美术"] != (coverage.ClassHours{Sessions: 1, Hours: 0.6667}) {
		t.Errorf("total: %s", js(rep.Total))
	}

	byCounty := groups(t, ts, q+"&group_by=county")
	checkGroup(t, "辰溪县", byCounty["431223"], 2, 2, 1, 4, 3, 0.75, 1, 0.5)
	checkGroup(t, "溆浦县", byCounty["431224"], 3, 1, 0.3333, 2, 1, 0.5, 0, 0)
	if len(byCounty) != 2 || byCounty["431223"].Names["county"] != "辰溪县" {
		t.Errorf("counties: %s", js(byCounty))
	}
	byCity := groups(t, ts, q+"&group_by=city")
	checkGroup(t, "怀化市", byCity["431200"], 5, 3, 0.6, 6, 4, 0.6667, 1, 0.2)

	bySubject := groups(t, ts, q+"&group_by=subject")
	checkGroup(t, "音乐", bySubject["音乐"], 5, 2, 0.4, 4, 3, 0.75, 1, 0.2)
	checkGroup(t, "美术", bySubject["美术"], 5, 1, 0.2, 2, 1, 0.5, 0, 0)

	byWeek := groups(t, ts, q+"&group_by=week")
	checkGroup(t, "W36", byWeek["2025-W36"], 5, 2, 0.4, 4, 2, 0.5, 0, 0)
	checkGroup(t, "W37", byWeek["2025-W37"], 5, 2, 0.4, 2, 2, 1, 0, 0)

	byTP := groups(t, ts, q+"&group_by=teaching_point")
	checkGroup(t, "T1", byTP["T1"], 1, 1, 1, 2, 2, 1, 1, 1)
	checkGroup(t, "T2", byTP["T2"], 1, 1, 1, 2, 1, 0.5, 0, 0)
	checkGroup(t, "T4", byTP["T4"], 1, 0, 0, 1, 0, 0, 0, 0)
	if g := byTP["T5"]; g.TeachingPoints != 1 || g.Scheduled != 0 || *g.CoverageRate != 0 || g.DeliveryRate != nil {
		t.Errorf("T5 (no session): %s", js(g))
	}

	// One county, one week, by school.
	var xp coverage.Report
	ts.call("GET", "/api/v1/coverage?region=431224&from=2025-09-01&to=2025-09-07&group_by=school", adminKey, nil, &xp)
	checkGroup(t, "溆浦县 week 1", xp.Total, 3, 1, 0.3333, 2, 1, 0.5, 0, 0)
	if len(xp.Groups) != 3 {
		t.Errorf("溆浦县 schools: %s", js(xp.Groups))
	}

	// CSV export.
	var csv []byte
	if code := ts.call("GET", q+"&group_by=county&format=csv", adminKey, nil, &csv); code != 200 {
		t.Fatalf("csv: %d", code)
	}
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(string(csv), "\xef\xbb\xbf")), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "431223,辰溪县,2,2,1,4,3,0.75,2,1,0.5,") ||
		!strings.HasPrefix(lines[3], "(all),,5,3,0.6,6,4,0.6667,3,1,0.2,3.0167,3,美术:1/0.6667h;音乐:3/2h,") {
		t.Errorf("CSV:\n%s", csv)
	}

	// Reading statistics needs a reader; a classroom's sign-in token is not one.
	if code := ts.call("GET", q, ts.login("T1", passwords["T1"]), nil, nil); code != 403 {
		t.Errorf("coverage with a classroom token: %d", code)
	}
	if code := ts.call("GET", q, mintToken(t, "analyst", &auth.VideoGrant{RoomList: true}, nil), nil, nil); code != 200 {
		t.Errorf("coverage with a roomList token: %d", code)
	}
}

// checkGroup compares the headline figures of a group.
func checkGroup(t *testing.T, name string, g coverage.Group, tps, covered int, coverageRate float64, scheduled, valid int,
	deliveryRate float64, routine int, routineRate float64) {
	t.Helper()
	f := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	if g.TeachingPoints != tps || g.Covered != covered || f(g.CoverageRate) != coverageRate || g.Scheduled != scheduled ||
		g.Valid != valid || f(g.DeliveryRate) != deliveryRate || g.Routine != routine || f(g.RoutineRate) != routineRate {
		t.Errorf("%s: got tps=%d covered=%d coverage=%v scheduled=%d valid=%d delivery=%v routine=%d routine_rate=%v\nwant tps=%d covered=%d coverage=%v scheduled=%d valid=%d delivery=%v routine=%d routine_rate=%v",
			name, g.TeachingPoints, g.Covered, f(g.CoverageRate), g.Scheduled, g.Valid, f(g.DeliveryRate), g.Routine, f(g.RoutineRate),
			tps, covered, coverageRate, scheduled, valid, deliveryRate, routine, routineRate)
	}
}

// groups fetches a coverage report and indexes its groups by their single key value.
func groups(t *testing.T, ts *testServer, path string) map[string]coverage.Group {
	t.Helper()
	var rep coverage.Report
	if code := ts.call("GET", path, adminKey, nil, &rep); code != 200 {
		t.Fatalf("%s: %d", path, code)
	}
	out := map[string]coverage.Group{}
	for _, g := range rep.Groups {
		for _, v := range g.Key {
			out[v] = g
		}
	}
	return out
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
