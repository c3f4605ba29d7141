// Package prereq is how a test says that something it needs from the machine is missing:
// root, a capability such as CAP_NET_RAW, IPv6, /proc, a tool or a browser. On a developer's
// machine the test is skipped with the reason; in CI (the environment variable CI is true) it
// fails instead, so that a CI machine that lost a prerequisite cannot pass by running less.
//
// Skips that are not about the machine (testing.Short, a feature turned off) call t.Skip as
// usual.
package prereq

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// SkipPrefix starts the message of every prerequisite skip, so that reports can tell them
// from other skips.
const SkipPrefix = "missing prerequisite: "

// InCI reports whether the tests run in CI: the environment variable CI parses as true
// ("true", "1", ...), as CI services and .ci/run set it.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Skip skips tb because a prerequisite described by format and args is missing, or, in CI,
// fails it with the same description.
func Skip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := SkipPrefix + fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatal(msg + " (CI=true: a missing prerequisite fails the test instead of skipping it)")
		return // testing.T stops at Fatal; a TB that does not must not be skipped too
	}
	tb.Skip(msg)
}
