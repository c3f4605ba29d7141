package classroom

import (
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/sanke-edu/sanke/classroom/model"
)

// TestIdentifyTrustsIdentityFirst checks that a participant's attributes cannot make it
// another classroom or give it another role when its identity is a classroom ID, and that
// tokens made elsewhere (identity not a classroom) are still understood by their attributes.
func TestIdentifyTrustsIdentityFirst(t *testing.T) {
	d := &model.Dataset{
		Classrooms: []model.Classroom{{ID: "M1", Kind: model.Master}, {ID: "T1", Kind: model.TeachingPoint}, {ID: "T2", Kind: model.TeachingPoint}, {ID: "T9", Kind: model.TeachingPoint}},
	}
	idx := model.NewIndex(d, time.UTC)
	sess := &model.Session{ID: "S1", Room: "class-S1", CourseType: model.Delivery, Master: "M1", Receivers: []string{"T1", "T2"}}
	p := func(identity string, hidden bool, attrs map[string]string) *livekit.ParticipantInfo {
		return &livekit.ParticipantInfo{Identity: identity, Attributes: attrs, Permission: &livekit.ParticipantPermission{Hidden: hidden}}
	}
	tests := []struct {
		name      string
		p         *livekit.ParticipantInfo
		classroom string
		role      Role
	}{
		{"teaching point", p("T1", false, nil), "T1", RoleTeachingPoint},
		{"teaching point claiming to be the teacher", p("T1", false, map[string]string{AttrRole: "teacher", AttrClassroom: "M1"}), "T1", RoleTeachingPoint},
		{"teaching point claiming another classroom", p("T1", false, map[string]string{AttrClassroom: "T2"}), "T1", RoleTeachingPoint},
		{"classroom outside the session claiming a role", p("T9", false, map[string]string{AttrRole: "teaching_point"}), "T9", ""},
		{"teacher", p("M1", false, map[string]string{AttrRole: "teacher"}), "M1", RoleTeacher},
		{"supervisor (hidden)", p("supervisor-X", true, map[string]string{AttrRole: "supervisor"}), "", RoleSupervisor},
		{"hidden classroom identity", p("T1", true, nil), "T1", RoleSupervisor},
		{"platform token: classroom by attribute", p("T2-tablet", false, map[string]string{AttrClassroom: "T2", AttrRole: "teaching_point"}), "T2", RoleTeachingPoint},
		{"platform token: attribute role for a non-member", p("guest", false, map[string]string{AttrRole: "viewer"}), "", RoleViewer},
	}
	for _, tt := range tests {
		cl, role := identify(idx, sess, tt.p)
		if cl != tt.classroom || role != tt.role {
			t.Errorf("%s: identify = %q, %q; want %q, %q", tt.name, cl, role, tt.classroom, tt.role)
		}
	}
}
