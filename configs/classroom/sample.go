// Package classroom holds the sample three-classrooms dataset (sample.yaml), for the dev demo
// and the tests that build their data on it.
package classroom

import (
	_ "embed"
	"strings"
)

//go:embed sample.yaml
var sample string

// Structure returns the sample's regions, schools, classrooms and pairings (YAML): what stays
// the same from term to term, to which a caller adds its own terms, sessions and accounts.
func Structure() string {
	if i := strings.Index(sample, "\nterms:"); i >= 0 {
		return sample[:i+1]
	}
	return sample
}
