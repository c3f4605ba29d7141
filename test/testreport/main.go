// Command testreport turns `go test -json` output (on stdin) into a readable report: each
// package's ok/FAIL line as it finishes, the full output of failed tests and packages, and a
// closing summary with counts ("tests: N passed, N failed, N skipped") and every skipped test
// with its reason. It exits 1 if any test or package failed (build errors included), 0 otherwise.
//
// With -v it prints every output line as it arrives, like `go test -v`. With -totals FILE it
// also writes the results for scripts/test.sh's summary, one tab-separated record a line:
//
//	passed	N
//	failed	N
//	skipped	N
//	failed-test	PACKAGE TEST	WHY (its last messages, shortened: the summary is what a
//	                            CI page that shows only the end of the log still shows)
//	failed-package	PACKAGE
//	skip	PACKAGE TEST	REASON
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Time       time.Time
	ImportPath string // build-output and build-fail events
	Action     string
	Package    string
	Test       string
	Elapsed    float64
	Output     string
}

// report accumulates the run.
type report struct {
	out     io.Writer
	verbose bool

	buffered   map[string][]string // output per package+test, kept until the test ends
	pass       int
	skipped    []skip
	failed     []failure
	failedPkgs []string
	okPkgs     int
	noTestPkgs int
}

// failure is a failed test and the last messages it logged.
type failure struct {
	test string // "pkg TestName"
	why  string
}

// skip is a skipped test and the message it gave.
type skip struct {
	test   string // "pkg TestName"
	reason string
}

func main() {
	verbose := flag.Bool("v", false, "print all output as it arrives")
	totals := flag.String("totals", "", "also write the results to this `file` (see the package comment)")
	flag.Parse()
	r := &report{out: os.Stdout, verbose: *verbose, buffered: map[string][]string{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	ok := r.summary()
	if *totals != "" {
		if err := os.WriteFile(*totals, []byte(r.totals()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
	}
	if !ok {
		os.Exit(1)
	}
}

func key(e event) string { return e.Package + "\x00" + e.Test }

// read consumes the event stream. Lines that are not JSON (for example build errors printed
// by go test itself) are echoed.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	k := key(e)
	switch e.Action {
	case "build-output": // compiler errors, printed as they come
		fmt.Fprint(r.out, e.Output)
	case "output":
		if r.verbose {
			fmt.Fprint(r.out, e.Output)
		}
		r.buffered[k] = append(r.buffered[k], e.Output) // kept for failures and skip reasons
	case "pass", "fail", "skip":
		if e.Test == "" {
			r.packageDone(e)
			return
		}
		switch e.Action {
		case "pass":
			r.pass++
		case "skip":
			r.skipped = append(r.skipped, skip{test: e.Package + " " + e.Test, reason: skipReason(r.buffered[k])})
		case "fail":
			r.failed = append(r.failed, failure{test: e.Package + " " + e.Test, why: failureWhy(r.buffered[k])})
			if !r.verbose {
				// Parent tests print their subtests' lines too; print each failure's own.
				fmt.Fprintf(r.out, "--- FAIL: %s (%s) %.2fs\n", e.Test, e.Package, e.Elapsed)
				for _, l := range r.buffered[k] {
					fmt.Fprint(r.out, indent(l))
				}
			}
		}
		delete(r.buffered, k)
	}
}

// packageDone prints a package's closing line, and on failure its non-test output (build
// errors, panics, timeouts).
func (r *report) packageDone(e event) {
	k := key(e)
	lines := r.buffered[k]
	delete(r.buffered, k)
	switch e.Action {
	case "fail":
		r.failedPkgs = append(r.failedPkgs, e.Package)
	case "skip":
		r.noTestPkgs++
	default:
		r.okPkgs++
	}
	if r.verbose { // its lines are out already
		return
	}
	switch e.Action {
	case "fail":
		for _, l := range lines {
			fmt.Fprint(r.out, l)
		}
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "FAIL") {
			fmt.Fprintf(r.out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
		}
	case "skip":
		fmt.Fprintf(r.out, "?   \t%s\t[no test files]\n", e.Package)
	default:
		fmt.Fprintf(r.out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	}
}

// summary prints the closing lines and reports whether everything passed.
func (r *report) summary() bool {
	// Output of tests still running when the stream ended (a crash or timeout): show it.
	if len(r.buffered) > 0 && !r.verbose {
		keys := make([]string, 0, len(r.buffered))
		for k := range r.buffered {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.HasSuffix(k, "\x00") { // package-level output of an unfinished package
				for _, l := range r.buffered[k] {
					fmt.Fprint(r.out, l)
				}
			}
		}
	}
	fmt.Fprintln(r.out)
	fmt.Fprintf(r.out, "packages: %d ok, %d failed, %d without tests\n", r.okPkgs, len(r.failedPkgs), r.noTestPkgs)
	for _, f := range r.failed {
		fmt.Fprintf(r.out, "FAILED TEST %s: %s\n", f.test, f.why)
	}
	for _, p := range r.failedPkgs {
		fmt.Fprintf(r.out, "FAILED PACKAGE %s\n", p)
	}
	for _, s := range r.skipped {
		fmt.Fprintf(r.out, "SKIPPED TEST %s: %s\n", s.test, s.reason)
	}
	fmt.Fprintf(r.out, "tests: %d passed, %d failed, %d skipped\n", r.pass, len(r.failed), len(r.skipped))
	return len(r.failed) == 0 && len(r.failedPkgs) == 0
}

// totals returns the results in the -totals file's form.
func (r *report) totals() string {
	var b strings.Builder
	fmt.Fprintf(&b, "passed\t%d\nfailed\t%d\nskipped\t%d\n", r.pass, len(r.failed), len(r.skipped))
	for _, f := range r.failed {
		fmt.Fprintf(&b, "failed-test\t%s\t%s\n", f.test, f.why)
	}
	for _, p := range r.failedPkgs {
		fmt.Fprintf(&b, "failed-package\t%s\n", p)
	}
	for _, s := range r.skipped {
		fmt.Fprintf(&b, "skip\t%s\t%s\n", s.test, s.reason)
	}
	return b.String()
}

// logLine matches the first line of a t.Log, t.Skip or t.Error message: "    file_test.go:95: ".
var logLine = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: `)

// skipReason returns the last message a skipped test logged, which is the one its t.Skip
// gave (continuation lines joined with spaces), without the file:line prefix.
func skipReason(lines []string) string {
	start := -1
	for i, l := range lines {
		if logLine.MatchString(l) {
			start = i
		}
	}
	if start < 0 {
		return "(no reason given)"
	}
	parts := []string{logLine.ReplaceAllString(lines[start], "")}
	for _, l := range lines[start+1:] {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--- ") && !strings.HasPrefix(t, "=== ") {
			parts = append(parts, t)
		}
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// Bounds of failureWhy: the last messages, each cut to a length.
const (
	whyMessages = 2
	whyLength   = 300
)

// failureWhy returns the first lines of the last messages a failed test logged (its t.Error
// or t.Fatal is usually among them), "file:line: text" each, joined by " | ".
func failureWhy(lines []string) string {
	var msgs []string
	for _, l := range lines {
		if logLine.MatchString(l) {
			m := strings.TrimSpace(l)
			if r := []rune(m); len(r) > whyLength {
				m = string(r[:whyLength]) + "..."
			}
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return "(no message)"
	}
	return strings.Join(msgs[max(0, len(msgs)-whyMessages):], " | ")
}

func indent(s string) string {
	if strings.HasPrefix(s, "    ") {
		return s
	}
	return "    " + s
}
