// Command testreport turns `go test -json` output (on stdin) into a readable report: each
// package's ok/FAIL line as it finishes, the full output of failed tests and packages, and a
// closing summary with counts ("tests: N passed, N failed, N skipped"). It exits 1 if any test
// or package failed (build errors included), 0 otherwise.
//
// With -v it prints every output line as it arrives, like `go test -v`.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
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
	pass, skip int
	failed     []string // "pkg TestName"
	failedPkgs []string
	okPkgs     int
	noTestPkgs int
}

func main() {
	verbose := flag.Bool("v", false, "print all output as it arrives")
	flag.Parse()
	r := &report{out: os.Stdout, verbose: *verbose, buffered: map[string][]string{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if !r.summary() {
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
			return
		}
		r.buffered[k] = append(r.buffered[k], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			r.packageDone(e)
			return
		}
		switch e.Action {
		case "pass":
			r.pass++
		case "skip":
			r.skip++
		case "fail":
			r.failed = append(r.failed, e.Package+" "+e.Test)
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
	if r.verbose {
		return
	}
	switch e.Action {
	case "fail":
		r.failedPkgs = append(r.failedPkgs, e.Package)
		for _, l := range lines {
			fmt.Fprint(r.out, l)
		}
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "FAIL") {
			fmt.Fprintf(r.out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
		}
	case "skip":
		r.noTestPkgs++
		fmt.Fprintf(r.out, "?   \t%s\t[no test files]\n", e.Package)
	default:
		r.okPkgs++
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
		fmt.Fprintf(r.out, "FAILED TEST %s\n", f)
	}
	for _, p := range r.failedPkgs {
		fmt.Fprintf(r.out, "FAILED PACKAGE %s\n", p)
	}
	fmt.Fprintf(r.out, "tests: %d passed, %d failed, %d skipped\n", r.pass, len(r.failed), r.skip)
	return len(r.failed) == 0 && len(r.failedPkgs) == 0
}

func indent(s string) string {
	if strings.HasPrefix(s, "    ") {
		return s
	}
	return "    " + s
}
