package classroom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sanke-edu/sanke/classroom/model"
)

// --- bodies ---

// limitBody bounds a route's request body to limit bytes: a declared larger body is refused
// at once (413), a chunked one when reading crosses the limit (see bodyErr).
func limitBody(limit int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeErr(w, tooLarge(limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h(w, r)
	})
}

// bodyError is a request that cannot be used: a body too large (413), a malformed body or a
// bad query parameter (400).
type bodyError struct {
	status int
	msg    string
}

// Error returns the message for the client.
func (e *bodyError) Error() string { return e.msg }

func tooLarge(limit int64) error {
	return &bodyError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", limit)}
}

// badRequest is a 400 with a message.
func badRequest(format string, args ...any) error {
	return &bodyError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// bodyErr turns an error reading a body into a bodyError: 413 past the route's limit, 400
// otherwise (prefix says what was being read).
func bodyErr(prefix string, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return badRequest("%s%v", prefix, err)
}

// decode reads a JSON body into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyErr("invalid JSON body: ", err)
	}
	return nil
}

// readAll reads a request body within the route's size limit.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, bodyErr("reading the body: ", err)
	}
	return b, nil
}

// --- answers ---

// writeJSON answers v as JSON. It is encoded before anything is sent, so that a value that
// cannot be encoded is a 500 with an error rather than a status with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		_ = enc.Encode(apiError{Error: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type apiError struct {
	Error  string       `json:"error"`
	Errors model.Errors `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// maxListedProblems bounds the problems listed in one answer (an import of a whole
// province can have many); the message gives their number.
const maxListedProblems = 1000

// writeErr maps an error to a response: dataset problems are 422 with every problem (400
// when a file could not be read at all).
func writeErr(w http.ResponseWriter, err error) {
	var errs model.Errors
	var be *bodyError
	switch {
	case errors.As(err, &be):
		writeError(w, be.status, be.msg)
	case errors.As(err, &errs):
		status, what := http.StatusUnprocessableEntity, "invalid input"
		if errs.Unreadable() {
			status, what = http.StatusBadRequest, "unreadable input"
		}
		msg := fmt.Sprintf("%s: %d problem(s), nothing was changed", what, len(errs))
		if len(errs) > maxListedProblems {
			msg += fmt.Sprintf(" (the first %d are listed)", maxListedProblems)
			errs = errs[:maxListedProblems]
		}
		writeJSON(w, status, apiError{Error: msg, Errors: errs})
	case errors.Is(err, errUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="sanke"`)
		writeError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, errForbidden):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, errNotInRoom):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, errNotCallable):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// --- query parameters ---

// Query parameters are checked before any work: a bad one is a 400 saying what is wrong.
const (
	// minYear and maxYear bound the dates of from= and to=: a timetable's years, well inside
	// what JSON can write (9999-12-31 plus a day cannot be).
	minYear, maxYear = 2000, 2099
	// maxMeDays bounds the period of GET /me (it lists the account's sessions in it).
	maxMeDays = 366
	// defaultLimit and maxLimit bound the entries of a listing (records, audit).
	defaultLimit, maxLimit = 1000, 10000
	// maxTextParam bounds free-text parameters (IDs, subject, action).
	maxTextParam = 64
)

// parseRange reads from= and to= (dates in the service's time zone, to inclusive; or
// RFC 3339 instants, to exclusive), each within minYear..maxYear, from before to.
func (s *Service) parseRange(r *http.Request) (time.Time, time.Time, error) {
	lo := time.Date(minYear, 1, 1, 0, 0, 0, 0, s.loc)
	hi := time.Date(maxYear+1, 1, 1, 0, 0, 0, 0, s.loc)
	parse := func(name string, end bool) (time.Time, error) {
		v := strings.TrimSpace(r.URL.Query().Get(name))
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = model.ParseDate(v, s.loc); err != nil {
				return time.Time{}, badRequest("%s: %v", name, err)
			}
			if end {
				t = t.AddDate(0, 0, 1)
			}
		}
		if t.Before(lo) || t.After(hi) || (!end && t.Equal(hi)) {
			return time.Time{}, badRequest("%s: %s is not between %d-01-01 and %d-12-31", name, strconv.Quote(v), minYear, maxYear)
		}
		return t, nil
	}
	from, err := parse("from", false)
	if err != nil {
		return from, from, err
	}
	to, err := parse("to", true)
	if err == nil && !from.IsZero() && !to.IsZero() && !to.After(from) {
		err = badRequest("to: %s is before from (%s)", r.URL.Query().Get("to"), r.URL.Query().Get("from"))
	}
	return from, to, err
}

// intParam reads an integer parameter within lo..hi (def when absent).
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s: %s is not an integer from %d to %d", name, quoteTrunc(v), lo, hi)
	}
	return n, nil
}

// textParam reads a free-text parameter of at most maxTextParam characters.
func textParam(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if utf8.RuneCountInString(v) > maxTextParam {
		return "", badRequest("%s: longer than %d characters", name, maxTextParam)
	}
	return v, nil
}

// rangeAndLimit reads the from/to range and the limit of a listing.
func (s *Service) rangeAndLimit(r *http.Request) (from, to time.Time, limit int, err error) {
	if from, to, err = s.parseRange(r); err != nil {
		return
	}
	limit, err = intParam(r, "limit", defaultLimit, 1, maxLimit)
	return
}
