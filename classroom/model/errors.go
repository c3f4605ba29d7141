package model

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem with the input, naming where it is: the file and row it was read
// from (when known), the table, the entity's ID and the field.
type FieldError struct {
	File    string `json:"file,omitempty"`
	Row     int    `json:"row,omitempty"`
	Table   Kind   `json:"table,omitempty"`
	ID      string `json:"id,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// unreadable marks a file that could not be read at all (not text, broken CSV quoting,
	// YAML or JSON syntax), as opposed to a readable file with wrong content.
	unreadable bool
}

// Error formats the problem as `sessions.csv row 5 (sessions "S1"), field master: unknown
// classroom "C9"`.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Row > 0:
		fmt.Fprintf(&b, "%s row %d", e.File, e.Row)
	case e.File != "":
		b.WriteString(e.File)
	case e.Row > 0:
		fmt.Fprintf(&b, "row %d", e.Row)
	}
	if e.Table != "" {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		if e.ID != "" {
			fmt.Fprintf(&b, "(%s %q)", e.Table, e.ID)
		} else {
			fmt.Fprintf(&b, "(%s)", e.Table)
		}
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "field %s", e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is a list of problems; it is an error when non-empty.
type Errors []*FieldError

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unreadable reports whether some file could not be read at all (see FieldError): the
// request was malformed, rather than its content invalid.
func (es Errors) Unreadable() bool {
	for _, e := range es {
		if e.unreadable {
			return true
		}
	}
	return false
}

// unreadable builds the error of a file that cannot be read.
func unreadable(file string, row int, table Kind, msg string) Errors {
	return Errors{{File: file, Row: row, Table: table, Message: msg, unreadable: true}}
}

// Err returns es as an error, or nil when there is no problem.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}

// sort orders problems by file, row and field so that messages are stable.
func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Row != b.Row {
			return a.Row < b.Row
		}
		return a.Field < b.Field
	})
}

// errorAt builds a FieldError for an entity.
func errorAt(o Origin, table Kind, id, field, format string, args ...any) *FieldError {
	return &FieldError{File: o.File, Row: o.Row, Table: table, ID: id, Field: field, Message: fmt.Sprintf(format, args...)}
}
