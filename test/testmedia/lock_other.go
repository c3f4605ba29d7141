//go:build !unix

package testmedia

import "context"

// lockFile does nothing where flock is unavailable; the temp-dir-then-rename install still
// keeps concurrent generations from seeing partial files.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
