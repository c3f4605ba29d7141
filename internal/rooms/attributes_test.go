package rooms

import "testing"

func TestReservedAttribute(t *testing.T) {
	tests := []struct {
		attrs map[string]string
		want  string
	}{
		{nil, ""},
		{map[string]string{"note": "x", "sanke": "x", "sanke_role": "x"}, ""},
		{map[string]string{"note": "x", "sanke.role": "teacher"}, "sanke.role"},
		{map[string]string{"Sanke.Account": "a"}, "Sanke.Account"},
		{map[string]string{"SANKE.": ""}, "SANKE."},
	}
	for _, tc := range tests {
		got, ok := ReservedAttribute(tc.attrs)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ReservedAttribute(%v) = %q, %v; want %q", tc.attrs, got, ok, tc.want)
		}
	}
}
