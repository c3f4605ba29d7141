package classroom

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sanke-edu/sanke/classroom/model"
)

func TestFind(t *testing.T) {
	d := &model.Dataset{
		Regions:    []model.Region{{Code: "530000", Name: "云南省"}},
		Schools:    []model.School{{ID: "S1", Name: "一中"}},
		Classrooms: []model.Classroom{{ID: "M1", Name: "音乐教室"}, {ID: "T1", Name: "教学点"}},
		Accounts:   []model.Account{{ID: "T1", PasswordHash: "$2a$10$secret"}},
	}
	tests := []struct {
		kind model.Kind
		id   string
		want string // "" for not found
	}{
		{model.KindRegions, "530000", "云南省"},
		{model.KindSchools, "S1", "一中"},
		{model.KindClassrooms, "T1", "教学点"},
		{model.KindClassrooms, "T9", ""},
		{model.KindPairings, "P1", ""},
		{model.KindAccounts, "T1", "T1"},
		{model.KindAccounts, "nobody", ""},
	}
	for _, tt := range tests {
		got := find(d, tt.kind, tt.id)
		if tt.want == "" {
			if got != nil {
				t.Errorf("find(%s, %s) = %#v, want nil (a 404)", tt.kind, tt.id, got)
			}
			continue
		}
		var name string
		switch e := got.(type) {
		case model.Region:
			name = e.Name
		case model.School:
			name = e.Name
		case model.Classroom:
			name = e.Name
		case model.Account:
			name = e.ID
			if e.PasswordHash != "" {
				t.Errorf("find returned an account with its password hash")
			}
		default:
			t.Fatalf("find(%s, %s) = %#v", tt.kind, tt.id, got)
		}
		if name != tt.want {
			t.Errorf("find(%s, %s) = %q, want %q", tt.kind, tt.id, name, tt.want)
		}
	}
}

// Every entity list of an empty dataset is an empty JSON list, never null; a filled one keeps
// its elements.
func TestEntitiesJSON(t *testing.T) {
	kinds := []model.Kind{model.KindRegions, model.KindSchools, model.KindClassrooms, model.KindPairings,
		model.KindTerms, model.KindSessions, model.KindAccounts}
	for _, k := range kinds {
		b, err := json.Marshal(entities(&model.Dataset{}, k))
		if err != nil || string(b) != "[]" {
			t.Errorf("%s of an empty dataset: %s, %v; want []", k, b, err)
		}
	}
	b, _ := json.Marshal(entities(&model.Dataset{Regions: []model.Region{{Code: "530000"}}}, model.KindRegions))
	if !strings.Contains(string(b), "530000") {
		t.Errorf("regions: %s", b)
	}
}
