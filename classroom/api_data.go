package classroom

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sanke-edu/sanke/classroom/model"
)

// publicDataset returns a copy of the dataset without password hashes.
func publicDataset(d *model.Dataset) *model.Dataset {
	c := d.Clone()
	for i := range c.Accounts {
		c.Accounts[i] = publicAccount(c.Accounts[i])
	}
	return c
}

func (s *Service) handleDataset(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	writeJSON(w, http.StatusOK, publicDataset(s.Index().Data))
}

// handleImport imports YAML/JSON, CSV or a multipart upload of several files.
func (s *Service) handleImport(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, isAdmin, "roomCreate or the admin key")
	if c == nil {
		return
	}
	q := r.URL.Query()
	opts, err := importOptions(q)
	if err != nil {
		writeErr(w, err)
		return
	}
	opts.Actor = c.actor
	select { // an import holds its body and what was read from it: one at a time
	case s.importing <- struct{}{}:
		defer func() { <-s.importing }()
	default:
		tooMany(w, http.StatusTooManyRequests, 5*time.Second, "another import is in progress; retry when it is done")
		return
	}
	in := model.Input{}
	var errs model.Errors
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			writeError(w, http.StatusBadRequest, "reading the upload: "+err.Error())
			return
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				writeErr(w, bodyErr("reading the upload: ", err))
				return
			}
			name := part.FileName()
			if name == "" {
				continue
			}
			data, err := readAll(part)
			if err != nil {
				writeErr(w, err)
				return
			}
			got, es := model.ReadData(name, data, "")
			errs = append(errs, es...)
			mergeInput(in, got)
		}
	default:
		data, err := readAll(r.Body)
		if err != nil {
			writeErr(w, err)
			return
		}
		name, table := q.Get("filename"), q.Get("table")
		if name == "" {
			switch {
			case mt == "text/csv" || table != "":
				name = "upload.csv"
				if table != "" {
					name = table + ".csv"
				}
			case mt == "application/json":
				name = "upload.json"
			default:
				name = "upload.yaml"
			}
		}
		got, es := model.ReadData(name, data, table)
		errs = append(errs, es...)
		mergeInput(in, got)
	}
	if len(errs) > 0 {
		writeErr(w, errs.Err())
		return
	}
	counts, err := s.Import(r.Context(), in, opts)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"imported": counts, "dry_run": opts.DryRun, "replace": opts.Replace,
		"dataset": s.Index().Data.Counts()})
}

// importOptions reads and checks the query of POST /import: mode, dry_run, and the names
// that say what a single-file body holds (table, filename).
func importOptions(q url.Values) (ImportOptions, error) {
	var opts ImportOptions
	switch q.Get("mode") {
	case "", "merge":
	case "replace":
		opts.Replace = true
	default:
		return opts, badRequest(`mode must be "merge" or "replace"`)
	}
	switch q.Get("dry_run") {
	case "", "false", "0":
	case "true", "1":
		opts.DryRun = true
	default:
		return opts, badRequest("dry_run: %s is not true or false", quoteTrunc(q.Get("dry_run")))
	}
	if t := q.Get("table"); t != "" {
		if _, ok := model.ParseKind(t); !ok {
			return opts, badRequest("table: unknown table %s", quoteTrunc(t))
		}
	}
	if n := q.Get("filename"); utf8.RuneCountInString(n) > maxFileName {
		return opts, badRequest("filename: longer than %d characters", maxFileName)
	}
	return opts, nil
}

// maxFileName bounds the filename= of an import (it is quoted back in every problem).
const maxFileName = 128

func mergeInput(dst, src model.Input) {
	for k, rs := range src {
		dst[k] = append(dst[k], rs...)
	}
}

// table parses the {table} path segment, answering 404 for unknown tables.
func table(w http.ResponseWriter, r *http.Request) (model.Kind, bool) {
	k, ok := model.ParseKind(r.PathValue("table"))
	if !ok {
		writeError(w, http.StatusNotFound, "unknown table "+r.PathValue("table"))
	}
	return k, ok
}

// entities returns a table of the dataset as a slice for JSON.
func entities(d *model.Dataset, k model.Kind) any {
	switch k {
	case model.KindRegions:
		return orEmpty(d.Regions)
	case model.KindSchools:
		return orEmpty(d.Schools)
	case model.KindClassrooms:
		return orEmpty(d.Classrooms)
	case model.KindPairings:
		return orEmpty(d.Pairings)
	case model.KindTerms:
		return orEmpty(d.Terms)
	case model.KindSessions:
		return orEmpty(d.Sessions)
	case model.KindAccounts:
		return orEmpty(d.Accounts)
	}
	return nil
}

// orEmpty returns s, or an empty slice for nil: JSON lists are [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	k, ok := table(w, r)
	if !ok {
		return
	}
	d := publicDataset(s.Index().Data)
	if k != model.KindSessions {
		writeJSON(w, http.StatusOK, entities(d, k))
		return
	}
	from, to, err := s.parseRange(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	classroom, err := textParam(r, "classroom")
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []model.Session{}
	for _, sess := range d.Sessions {
		if (!from.IsZero() && sess.Start.Before(from)) || (!to.IsZero() && !sess.Start.Before(to)) {
			continue
		}
		if classroom != "" && sess.Master != classroom && !sess.HasReceiver(classroom) {
			continue
		}
		out = append(out, sess)
	}
	writeJSON(w, http.StatusOK, out)
}

// find returns one entity of the dataset (accounts without their password hashes), or nil.
func find(d *model.Dataset, k model.Kind, id string) any {
	switch k {
	case model.KindRegions:
		return value(findBy(d.Regions, func(e model.Region) string { return e.Code }, id))
	case model.KindSchools:
		return value(findBy(d.Schools, func(e model.School) string { return e.ID }, id))
	case model.KindClassrooms:
		return value(findBy(d.Classrooms, func(e model.Classroom) string { return e.ID }, id))
	case model.KindPairings:
		return value(findBy(d.Pairings, func(e model.Pairing) string { return e.ID }, id))
	case model.KindTerms:
		return value(findBy(d.Terms, func(e model.Term) string { return e.ID }, id))
	case model.KindSessions:
		return value(findBy(d.Sessions, func(e model.Session) string { return e.ID }, id))
	case model.KindAccounts:
		if e := findBy(d.Accounts, func(e model.Account) string { return e.ID }, id); e != nil {
			return publicAccount(*e)
		}
	}
	return nil
}

// findBy returns the entry whose key is id, or nil.
func findBy[T any](entries []T, key func(T) string, id string) *T {
	for i := range entries {
		if key(entries[i]) == id {
			return &entries[i]
		}
	}
	return nil
}

// value turns a found entry into a plain value, and a miss into a nil interface (a typed nil
// pointer in an interface would not compare equal to nil).
func value[T any](e *T) any {
	if e == nil {
		return nil
	}
	return *e
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	if s.require(w, r, isReader, "roomList, roomCreate or the admin key") == nil {
		return
	}
	k, ok := table(w, r)
	if !ok {
		return
	}
	e := find(s.Index().Data, k, r.PathValue("id"))
	if e == nil {
		writeError(w, http.StatusNotFound, "no such "+strings.TrimSuffix(string(k), "s"))
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// handlePut upserts one entity from a JSON body; the path's ID wins over a missing body ID
// and must equal a given one. The whole dataset is validated with the change.
func (s *Service) handlePut(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, isAdmin, "roomCreate or the admin key")
	if c == nil {
		return
	}
	k, ok := table(w, r)
	if !ok {
		return
	}
	data, err := readAll(r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	rec, errs := model.ReadEntity(k, data)
	if len(errs) > 0 {
		writeErr(w, errs.Err())
		return
	}
	idField := "id"
	if k == model.KindRegions {
		idField = "code"
	}
	id := r.PathValue("id")
	if got := strings.TrimSpace(rec.Fields[idField].Str); got != "" && got != id {
		writeError(w, http.StatusBadRequest, idField+" in the body ("+got+") differs from the URL ("+id+")")
		return
	}
	rec.Fields[idField] = model.Value{Str: id}
	rec.Origin = model.Origin{File: "request body"}
	if _, err := s.Import(r.Context(), model.Input{k: {rec}}, ImportOptions{Actor: c.actor}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, find(s.Index().Data, k, id))
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) {
	c := s.require(w, r, isAdmin, "roomCreate or the admin key")
	if c == nil {
		return
	}
	k, ok := table(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	errMissing := errors.New("missing")
	err := s.apply(r.Context(), c.actor, "dataset.delete", false, func(d *model.Dataset) (*model.Dataset, error) {
		if !d.Delete(k, id) {
			return nil, errMissing
		}
		return d, nil
	}, map[model.Kind]int{k: 1})
	switch {
	case errors.Is(err, errMissing):
		writeError(w, http.StatusNotFound, "no such "+strings.TrimSuffix(string(k), "s"))
	case err != nil:
		writeErr(w, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
