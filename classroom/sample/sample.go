// Package sample holds the sample three-classrooms dataset: sample.yaml, and the same data as
// the CSV files of csv/. It is the classroom tests' dataset and an example of the import
// formats; the server's dev demo (POST /dev/demo) builds its classes on the structure
// embedded here, so that the demo works from any directory.
package sample

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
