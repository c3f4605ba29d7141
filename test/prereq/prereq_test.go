package prereq

import (
	"strings"
	"testing"
)

// fakeTB records how Skip ended a test; it stops at the first Fatal or Skip like testing.T.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Fatal(args ...any) { f.fatal = args[0].(string) }
func (f *fakeTB) Skip(args ...any)  { f.skip = args[0].(string) }

func TestSkip(t *testing.T) {
	for _, tt := range []struct {
		ci       string
		wantFail bool
	}{
		{"", false},
		{"false", false},
		{"junk", false},
		{"true", true},
		{"1", true},
	} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			var f fakeTB
			Skip(&f, "needs %s", "root")
			got, other := f.skip, f.fatal
			if tt.wantFail {
				got, other = f.fatal, f.skip
			}
			if !strings.HasPrefix(got, SkipPrefix+"needs root") || other != "" {
				t.Errorf("CI=%q: skip %q, fatal %q", tt.ci, f.skip, f.fatal)
			}
		})
	}
}
