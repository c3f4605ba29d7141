package main

import (
	"os"
	"strings"
	"testing"
)

// testdata/run.json is `go test -json` of a package with a passing, a skipped, a failing test
// and a parent whose second subtest skips.
func TestReport(t *testing.T) {
	in, err := os.Open("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }()
	for _, verbose := range []bool{false, true} {
		var out strings.Builder
		r := &report{out: &out, verbose: verbose, buffered: map[string][]string{}}
		if _, err := in.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		if err := r.read(in); err != nil {
			t.Fatal(err)
		}
		if r.summary() {
			t.Errorf("verbose=%v: summary says all passed", verbose)
		}
		for _, want := range []string{
			"SKIPPED TEST example.com/demo TestSkip: missing prerequisite: needs root second line\n",
			"SKIPPED TEST example.com/demo TestSub/b: no ipv6\n",
			"FAILED TEST example.com/demo TestFail: demo_test.go:10: broken\n",
			"tests: 3 passed, 1 failed, 2 skipped\n",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("verbose=%v: no %q in\n%s", verbose, want, out.String())
			}
		}
		const wantTotals = "passed\t3\nfailed\t1\nskipped\t2\n" +
			"failed-test\texample.com/demo TestFail\tdemo_test.go:10: broken\n" +
			"failed-package\texample.com/demo\n" +
			"skip\texample.com/demo TestSkip\tmissing prerequisite: needs root second line\n" +
			"skip\texample.com/demo TestSub/b\tno ipv6\n"
		if got := r.totals(); got != wantTotals {
			t.Errorf("verbose=%v: totals\n%s\nwant\n%s", verbose, got, wantTotals)
		}
	}
}

func TestSkipReason(t *testing.T) {
	for _, tt := range []struct {
		lines []string
		want  string
	}{
		{nil, "(no reason given)"},
		{[]string{"=== RUN   TestX\n", "--- SKIP: TestX (0.00s)\n"}, "(no reason given)"},
		{[]string{"    x_test.go:3: first\n", "    x_test.go:4: the reason\n", "--- SKIP: TestX (0.00s)\n"}, "the reason"},
	} {
		if got := skipReason(tt.lines); got != tt.want {
			t.Errorf("skipReason(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestFailureWhy(t *testing.T) {
	long := strings.Repeat("x", 400)
	for _, tt := range []struct {
		lines []string
		want  string
	}{
		{[]string{"--- FAIL: TestX (0.00s)\n"}, "(no message)"},
		{[]string{"    x_test.go:1: one\n", "    x_test.go:2: two\n", "        more\n", "    x_test.go:3: three\n"}, "x_test.go:2: two | x_test.go:3: three"},
		{[]string{"    x_test.go:1: " + long + "\n"}, "x_test.go:1: " + long[:300-len("x_test.go:1: ")] + "..."},
	} {
		if got := failureWhy(tt.lines); got != tt.want {
			t.Errorf("failureWhy(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}
