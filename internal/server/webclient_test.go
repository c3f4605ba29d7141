package server

import (
	"testing"
	"time"

	"github.com/sanke-edu/sanke/classroom/model"
)

// The dev demo dataset (the sample's structure plus sessions around now and the demo
// accounts) reads without errors and has what the sign-in page offers.
func TestDevDemoDataset(t *testing.T) {
	d, errs := model.ReadData("demo.yaml", devDemoDataset(time.Date(2026, 11, 28, 9, 3, 0, 0, time.UTC)), "")
	if len(errs) > 0 {
		t.Fatal(errs.Err())
	}
	want := map[model.Kind]int{model.KindRegions: 6, model.KindSchools: 7, model.KindClassrooms: 7, model.KindPairings: 2,
		model.KindTerms: 0, model.KindSessions: 3, model.KindAccounts: len(devDemoAccounts)}
	for k, n := range want {
		if len(d[k]) != n {
			t.Errorf("%s: %d records, want %d", k, len(d[k]), n)
		}
	}
}
