package model

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Input holds records read from files, per table.
type Input map[Kind][]Record

// add appends the records of another input.
func (in Input) add(o Input) {
	for k, rs := range o {
		in[k] = append(in[k], rs...)
	}
}

// Has reports whether any table was read.
func (in Input) Has(k Kind) bool { _, ok := in[k]; return ok }

// decodeText returns data as UTF-8 without a byte-order mark. Spreadsheets saved as CSV on
// Chinese Windows are GB18030 (GBK); they are converted. Anything else (UTF-16, binary
// files, NUL bytes, byte sequences GB18030 does not define) is refused.
func decodeText(data []byte) ([]byte, error) {
	if bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")) {
		return nil, errors.New("the file is UTF-16 text: save it as CSV (UTF-8) or CSV (comma delimited)")
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	notText := errors.New("the file is neither UTF-8 nor GB18030 text")
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, notText
	}
	if utf8.Valid(data) {
		return data, nil
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
	if err != nil || bytes.ContainsRune(out, utf8.RuneError) {
		return nil, notText // the decoder replaces undefined sequences by U+FFFD
	}
	return out, nil
}

// ReadCSV reads one table from CSV: a header row naming the fields (English or Chinese, see
// the package docs), then one entity per row. Rows are numbered like a spreadsheet: the
// header is row 1. Empty rows are skipped.
func ReadCSV(file string, kind Kind, data []byte) (Input, Errors) {
	fileErr := func(row int, field, format string, args ...any) Errors {
		return Errors{{File: file, Row: row, Table: kind, Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	text, err := decodeText(data)
	if err != nil {
		return nil, unreadable(file, 0, kind, err.Error())
	}
	r := csv.NewReader(bytes.NewReader(text))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err == io.EOF {
		return Input{kind: nil}, nil
	}
	if err != nil {
		return nil, unreadable(file, 1, kind, err.Error())
	}
	cols := make([]string, len(header))
	var errs Errors
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" || ignoredColumn(h) {
			continue
		}
		name, ok := canonicalField(kind, h)
		if !ok {
			errs = append(errs, fileErr(1, h, "unknown column for %s (known: %s)", kind, knownFields(kind))...)
			continue
		}
		if seen[name] {
			errs = append(errs, fileErr(1, h, "column %s given twice", name)...)
		}
		seen[name] = true
		cols[i] = name
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var recs []Record
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// No record was read: its start line comes from the error (FieldPos would
			// panic). Quoting is broken from here on; nothing more can be read.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return nil, unreadable(file, line, kind, err.Error())
		}
		line, _ := r.FieldPos(0)
		rec := Record{Origin: Origin{File: file, Row: line}, Fields: map[string]Value{}}
		empty := true
		for i, v := range row {
			if i >= len(cols) {
				if strings.TrimSpace(v) != "" {
					errs = append(errs, fileErr(line, "", "more cells than header columns")...)
				}
				continue
			}
			if cols[i] == "" {
				continue
			}
			if v = strings.TrimSpace(v); v != "" {
				empty = false
			}
			rec.Fields[cols[i]] = Value{Str: v}
		}
		if !empty {
			recs = append(recs, rec)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return Input{kind: recs}, nil
}

func knownFields(k Kind) string {
	var names []string
	for _, f := range tableFields(k) {
		names = append(names, f.name)
	}
	return strings.Join(names, ", ")
}

// ReadYAML reads a dataset document (YAML, or JSON which is a subset of it): a mapping from
// table names to lists of entities. Each entity's row is its line in the file.
func ReadYAML(file string, data []byte) (Input, Errors) {
	text, err := decodeText(data)
	if err != nil {
		return nil, unreadable(file, 0, "", err.Error())
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, unreadable(file, 0, "", err.Error())
	}
	in := Input{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return in, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Row: root.Line, Message: "expected a mapping of tables (regions, schools, classrooms, pairings, terms, sessions, accounts)"}}
	}
	var errs Errors
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		kind, ok := ParseKind(key.Value)
		if !ok {
			errs = append(errs, &FieldError{File: file, Row: key.Line, Field: key.Value, Message: "unknown table"})
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			in[kind] = append(in[kind], nil...)
			continue
		}
		if val.Kind != yaml.SequenceNode {
			errs = append(errs, &FieldError{File: file, Row: val.Line, Table: kind, Message: "expected a list"})
			continue
		}
		recs := in[kind]
		for _, item := range val.Content {
			rec, es := nodeRecord(file, kind, item)
			errs = append(errs, es...)
			if rec != nil {
				recs = append(recs, *rec)
			}
		}
		in[kind] = recs
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return in, nil
}

// nodeRecord converts one YAML mapping into a record.
func nodeRecord(file string, kind Kind, item *yaml.Node) (*Record, Errors) {
	if item.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Row: item.Line, Table: kind, Message: "expected a mapping of fields"}}
	}
	rec := &Record{Origin: Origin{File: file, Row: item.Line}, Fields: map[string]Value{}}
	var errs Errors
	for j := 0; j+1 < len(item.Content); j += 2 {
		k, v := item.Content[j], item.Content[j+1]
		if ignoredColumn(k.Value) {
			continue
		}
		name, ok := canonicalField(kind, k.Value)
		if !ok {
			errs = append(errs, &FieldError{File: file, Row: k.Line, Table: kind, Field: k.Value,
				Message: fmt.Sprintf("unknown field for %s (known: %s)", kind, knownFields(kind))})
			continue
		}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag != "!!null" {
				rec.Fields[name] = Value{Str: v.Value}
			}
		case yaml.SequenceNode:
			list := []string{}
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					errs = append(errs, &FieldError{File: file, Row: e.Line, Table: kind, Field: name, Message: "expected a list of values"})
					continue
				}
				list = append(list, e.Value)
			}
			rec.Fields[name] = Value{List: list}
		default:
			errs = append(errs, &FieldError{File: file, Row: v.Line, Table: kind, Field: name, Message: "expected a value or a list of values"})
		}
	}
	return rec, errs
}

// ReadEntity reads one entity of a table from a JSON (or YAML) object, as sent to the REST API.
func ReadEntity(kind Kind, data []byte) (Record, Errors) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		msg := "empty body"
		if err != nil {
			msg = err.Error()
		}
		return Record{}, unreadable("", 0, kind, msg)
	}
	rec, errs := nodeRecord("", kind, doc.Content[0])
	if rec == nil {
		return Record{}, errs
	}
	rec.Origin = Origin{}
	return *rec, errs
}

// ReadFile reads a dataset file: .yaml/.yml/.json (all tables) or .csv (the table named by
// the file name, e.g. sessions.csv or 课表.csv).
func ReadFile(path string) (Input, Errors) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Message: err.Error()}}
	}
	return ReadData(filepath.Base(path), data, "")
}

// ReadData reads dataset data named file. table overrides the table of a CSV file; when empty
// it is taken from the file name.
func ReadData(file string, data []byte, table string) (Input, Errors) {
	ext := strings.ToLower(filepath.Ext(file))
	switch {
	case ext == ".csv" || (ext == "" && table != ""):
		name := table
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		}
		kind, ok := ParseKind(name)
		if !ok {
			return nil, Errors{{File: file, unreadable: true, Message: fmt.Sprintf("cannot tell which table %q holds: name it regions.csv, schools.csv, classrooms.csv, pairings.csv, terms.csv, sessions.csv or accounts.csv", file)}}
		}
		return ReadCSV(file, kind, data)
	case ext == ".yaml" || ext == ".yml" || ext == ".json" || ext == "":
		return ReadYAML(file, data)
	}
	return nil, unreadable(file, 0, "", "unsupported file type (use .yaml, .yml, .json or .csv)")
}

// ReadPath reads a dataset file, or every dataset file of a directory (in name order, so
// that a bureau can keep one CSV per table in a folder).
func ReadPath(path string) (Input, Errors) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, Errors{{File: path, Message: err.Error()}}
	}
	if !st.IsDir() {
		return ReadFile(path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, Errors{{File: path, Message: err.Error()}}
	}
	var names []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".csv", ".yaml", ".yml", ".json":
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	in := Input{}
	var errs Errors
	for _, n := range names {
		got, es := ReadFile(filepath.Join(path, n))
		errs = append(errs, es...)
		in.add(got)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return in, nil
}
