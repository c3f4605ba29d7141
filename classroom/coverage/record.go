package coverage

import (
	"sort"
	"time"

	"github.com/sanke-edu/sanke/classroom/model"
)

// RecordSchema identifies the JSON layout of a SessionRecord.
const RecordSchema = "sanke.session_record.v1"

// Connection is one presence of a classroom in a session's room: from participant_joined to
// participant_left. An open connection (LeftAt zero) lasts until the record is computed.
type Connection struct {
	Classroom      string
	Identity       string
	ParticipantSID string
	JoinedAt       time.Time
	LeftAt         time.Time // zero: still connected
}

// Sample is one quality observation of the video a receiving classroom gets from the master.
type Sample struct {
	At           time.Time
	Classroom    string
	Layer        int // simulcast layer forwarded (0 low, 1 medium, 2 high; -1 none)
	Width        uint32
	Height       uint32
	BitrateKbps  float64
	FractionLost float64 // 0-1, from the receiver's RTCP report
	JitterMs     float64
	RTTMs        float64
	NACKs        uint64 // since the previous sample
	PLIs         uint64 // since the previous sample
}

// Input is everything observed for one session.
type Input struct {
	Session *model.Session
	Index   *model.Index
	// Connections of the master and receivers, in any order.
	Connections []Connection
	// Video maps a receiving classroom to the spans during which it was receiving video
	// from the master classroom.
	Video map[string][]Interval
	// Samples are the quality samples of receiving classrooms.
	Samples []Sample
	// CalledOn maps a classroom to the number of times it was called on.
	CalledOn map[string]int
	// Now is when the record is computed; open connections end here.
	Now time.Time
	// ValidShare is the share of the scheduled time a receiving classroom must have been
	// connected with video delivered for its session to be valid (0.8).
	ValidShare float64
}

// JoinRecord is one connection in a record.
type JoinRecord struct {
	Identity string     `json:"identity"`
	JoinedAt time.Time  `json:"joined_at"`
	LeftAt   *time.Time `json:"left_at,omitempty"` // nil: still connected when the record was made
	Seconds  float64    `json:"seconds"`
	// OutsideWindow is true when the whole connection lies outside the scheduled window.
	OutsideWindow bool `json:"outside_window,omitempty"`
}

// MasterRecord describes the master classroom's part.
type MasterRecord struct {
	Classroom string `json:"classroom"`
	School    string `json:"school"`
	Region    string `json:"region"`
	// ActualStart is the master's first join, ActualEnd its last leave (nil when it never
	// joined, or is still connected).
	ActualStart *time.Time `json:"actual_start,omitempty"`
	ActualEnd   *time.Time `json:"actual_end,omitempty"`
	// StartDelaySeconds is ActualStart minus the scheduled start (negative: early);
	// EndDeltaSeconds is ActualEnd minus the scheduled end (negative: ended early).
	StartDelaySeconds *float64     `json:"start_delay_seconds,omitempty"`
	EndDeltaSeconds   *float64     `json:"end_delta_seconds,omitempty"`
	ConnectedSeconds  float64      `json:"connected_seconds"`
	Joins             []JoinRecord `json:"joins"`
}

// LayerChange says which video layer a receiving classroom got from a moment on.
type LayerChange struct {
	At     time.Time `json:"at"`
	Layer  int       `json:"layer"`
	Width  uint32    `json:"width,omitempty"`
	Height uint32    `json:"height,omitempty"`
}

// Quality summarizes the quality samples of a receiving classroom.
type Quality struct {
	Samples     int    `json:"samples"`
	BitrateKbps Stat   `json:"bitrate_kbps"`
	LossPercent Stat   `json:"loss_percent"`
	JitterMs    Stat   `json:"jitter_ms"`
	RTTMs       Stat   `json:"rtt_ms"`
	NACKs       uint64 `json:"nacks"`
	PLIs        uint64 `json:"plis"`
}

// ReceiverRecord describes one receiving classroom.
type ReceiverRecord struct {
	Classroom string       `json:"classroom"`
	School    string       `json:"school"`
	Region    string       `json:"region"`
	Joins     []JoinRecord `json:"joins"`
	// ConnectedSeconds is the connected time inside the scheduled window (connections merged:
	// overlapping connections count once); OutsideWindowSeconds is connected time outside it.
	ConnectedSeconds     float64 `json:"connected_seconds"`
	ConnectedShare       float64 `json:"connected_share"`
	VideoSeconds         float64 `json:"video_seconds"`
	VideoShare           float64 `json:"video_share"`
	OutsideWindowSeconds float64 `json:"outside_window_seconds"`
	// Valid (有效): connected with video delivered for at least ValidShare of the schedule.
	Valid         bool          `json:"valid"`
	TimesCalledOn int           `json:"times_called_on"`
	Layers        []LayerChange `json:"layers"`
	Quality       Quality       `json:"quality"`
}

// SessionRecord is the statistics of one class session, as pushed to the platform.
type SessionRecord struct {
	Schema           string           `json:"schema"`
	SessionID        string           `json:"session_id"`
	Room             string           `json:"room"`
	CourseType       int              `json:"course_type"`
	CourseTypeName   string           `json:"course_type_name"`
	Subject          string           `json:"subject"`
	Grade            int              `json:"grade,omitempty"`
	Pairing          string           `json:"pairing,omitempty"`
	Term             string           `json:"term,omitempty"`
	ScheduledStart   time.Time        `json:"scheduled_start"`
	ScheduledEnd     time.Time        `json:"scheduled_end"`
	ScheduledSeconds float64          `json:"scheduled_seconds"`
	Master           MasterRecord     `json:"master"`
	Receivers        []ReceiverRecord `json:"receivers"`
	ValidReceivers   int              `json:"valid_receivers"`
	ValidShare       float64          `json:"valid_threshold"`
	FinalizedAt      time.Time        `json:"finalized_at"`
}

// Compute builds the record of a session.
func Compute(in Input) *SessionRecord {
	s := in.Session
	loc := in.Index.Loc
	window := Interval{s.Start, s.End}
	rec := &SessionRecord{
		Schema: RecordSchema, SessionID: s.ID, Room: s.Room, CourseType: int(s.CourseType),
		CourseTypeName: s.CourseType.String(), Subject: s.Subject, Grade: s.Grade, Pairing: s.Pairing,
		Term: in.Index.TermOf(s), ScheduledStart: s.Start.In(loc), ScheduledEnd: s.End.In(loc),
		ScheduledSeconds: seconds(window.Duration()), ValidShare: in.ValidShare, FinalizedAt: in.Now.In(loc),
	}
	byClassroom := map[string][]Connection{}
	for _, c := range in.Connections {
		byClassroom[c.Classroom] = append(byClassroom[c.Classroom], c)
	}

	// Master.
	m := MasterRecord{Classroom: s.Master, School: in.Index.SchoolOf(s.Master), Region: in.Index.CountyOf(s.Master)}
	conns := byClassroom[s.Master]
	m.Joins, _ = joinRecords(conns, in.Now, window, loc)
	ivs := intervals(conns, in.Now)
	m.ConnectedSeconds = seconds(Total(Clip(ivs, window)))
	if len(conns) > 0 {
		first, last, open := conns[0].JoinedAt, time.Time{}, false
		for _, c := range conns {
			if c.JoinedAt.Before(first) {
				first = c.JoinedAt
			}
			if c.LeftAt.IsZero() {
				open = true
			} else if c.LeftAt.After(last) {
				last = c.LeftAt
			}
		}
		first = first.In(loc)
		d := seconds(first.Sub(s.Start))
		m.ActualStart, m.StartDelaySeconds = &first, &d
		if !open {
			last = last.In(loc)
			e := seconds(last.Sub(s.End))
			m.ActualEnd, m.EndDeltaSeconds = &last, &e
		}
	}
	rec.Master = m

	// Receivers, in timetable order.
	samples := map[string][]Sample{}
	for _, sm := range in.Samples {
		samples[sm.Classroom] = append(samples[sm.Classroom], sm)
	}
	scheduled := window.Duration()
	for _, id := range s.Receivers {
		conns := byClassroom[id]
		r := ReceiverRecord{Classroom: id, School: in.Index.SchoolOf(id), Region: in.Index.CountyOf(id),
			TimesCalledOn: in.CalledOn[id]}
		r.Joins, _ = joinRecords(conns, in.Now, window, loc)
		ivs := Merge(intervals(conns, in.Now))
		inside := Clip(ivs, window)
		connected := Total(inside)
		r.ConnectedSeconds = seconds(connected)
		r.OutsideWindowSeconds = seconds(Total(ivs) - connected)
		video := Total(Intersect(inside, in.Video[id]))
		r.VideoSeconds = seconds(video)
		if scheduled > 0 {
			r.ConnectedShare = round4(float64(connected) / float64(scheduled))
			r.VideoShare = round4(float64(video) / float64(scheduled))
			r.Valid = float64(video) >= in.ValidShare*float64(scheduled)
		}
		if r.Valid {
			rec.ValidReceivers++
		}
		r.Layers, r.Quality = summarizeSamples(samples[id], loc)
		rec.Receivers = append(rec.Receivers, r)
	}
	return rec
}

func intervals(conns []Connection, now time.Time) []Interval {
	out := make([]Interval, 0, len(conns))
	for _, c := range conns {
		end := c.LeftAt
		if end.IsZero() {
			end = now
		}
		out = append(out, Interval{c.JoinedAt, end})
	}
	return out
}

// joinRecords lists connections by join time.
func joinRecords(conns []Connection, now time.Time, window Interval, loc *time.Location) ([]JoinRecord, time.Duration) {
	sorted := append([]Connection(nil), conns...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].JoinedAt.Before(sorted[j].JoinedAt) })
	out := make([]JoinRecord, 0, len(sorted))
	var total time.Duration
	for _, c := range sorted {
		end := c.LeftAt
		j := JoinRecord{Identity: c.Identity, JoinedAt: c.JoinedAt.In(loc)}
		if end.IsZero() {
			end = now
		} else {
			l := c.LeftAt.In(loc)
			j.LeftAt = &l
		}
		iv := Interval{c.JoinedAt, end}
		j.Seconds = seconds(iv.Duration())
		j.OutsideWindow = len(Clip([]Interval{iv}, window)) == 0
		total += iv.Duration()
		out = append(out, j)
	}
	return out, total
}

// summarizeSamples extracts the layer changes and the quality summary.
func summarizeSamples(samples []Sample, loc *time.Location) ([]LayerChange, Quality) {
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].At.Before(samples[j].At) })
	layers := []LayerChange{}
	var q Quality
	var bitrate, loss, jitter, rtt []float64
	for _, sm := range samples {
		if n := len(layers); n == 0 || layers[n-1].Layer != sm.Layer || layers[n-1].Width != sm.Width || layers[n-1].Height != sm.Height {
			layers = append(layers, LayerChange{At: sm.At.In(loc), Layer: sm.Layer, Width: sm.Width, Height: sm.Height})
		}
		q.Samples++
		q.NACKs += sm.NACKs
		q.PLIs += sm.PLIs
		bitrate = append(bitrate, sm.BitrateKbps)
		loss = append(loss, sm.FractionLost*100)
		jitter = append(jitter, sm.JitterMs)
		if sm.RTTMs > 0 {
			rtt = append(rtt, sm.RTTMs)
		}
	}
	q.BitrateKbps, q.LossPercent, q.JitterMs, q.RTTMs = Summarize(bitrate), Summarize(loss), Summarize(jitter), Summarize(rtt)
	return layers, q
}

// round4 rounds a ratio to 4 decimals (66.67%).
func round4(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }

// Attendance is the summary of one receiving classroom in one session: the unit the
// aggregates count. It is a snapshot: the classroom's school and county when the session
// ended.
type Attendance struct {
	SessionID        string    `json:"session_id"`
	Classroom        string    `json:"classroom"`
	School           string    `json:"school"`
	County           string    `json:"county"`
	Subject          string    `json:"subject"`
	CourseType       int       `json:"course_type"`
	Term             string    `json:"term"`
	Start            time.Time `json:"start"`
	ScheduledSeconds float64   `json:"scheduled_seconds"`
	ConnectedSeconds float64   `json:"connected_seconds"`
	VideoSeconds     float64   `json:"video_seconds"`
	Valid            bool      `json:"valid"`
	TimesCalledOn    int       `json:"times_called_on"`
	// Quality averages; QualitySamples is 0 when none were taken.
	QualitySamples int     `json:"quality_samples"`
	BitrateKbps    float64 `json:"bitrate_kbps"`
	LossPercent    float64 `json:"loss_percent"`
	JitterMs       float64 `json:"jitter_ms"`
	RTTMs          float64 `json:"rtt_ms"`
}

// Attendances returns the aggregation rows of a record.
func (r *SessionRecord) Attendances() []Attendance {
	out := make([]Attendance, 0, len(r.Receivers))
	for _, rr := range r.Receivers {
		out = append(out, Attendance{
			SessionID: r.SessionID, Classroom: rr.Classroom, School: rr.School, County: rr.Region,
			Subject: r.Subject, CourseType: r.CourseType, Term: r.Term, Start: r.ScheduledStart,
			ScheduledSeconds: r.ScheduledSeconds, ConnectedSeconds: rr.ConnectedSeconds, VideoSeconds: rr.VideoSeconds,
			Valid: rr.Valid, TimesCalledOn: rr.TimesCalledOn, QualitySamples: rr.Quality.Samples,
			BitrateKbps: rr.Quality.BitrateKbps.Avg, LossPercent: rr.Quality.LossPercent.Avg,
			JitterMs: rr.Quality.JitterMs.Avg, RTTMs: rr.Quality.RTTMs.Avg,
		})
	}
	return out
}
