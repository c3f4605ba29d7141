package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version runs "sanke version".
func (a *app) version(args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(a.stderr, "sanke version: unexpected argument %q\n", args[0])
		return exitUsage
	}
	fmt.Fprintf(a.stdout, "sanke %s\n", versionString())
	return exitOK
}

// versionString describes this build from its embedded build information: the module version
// (set by "go install ...@vX.Y.Z"), the VCS revision when recorded, and the Go version.
func versionString() string {
	v := "(devel)"
	var revision, modified string
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "-dirty"
				}
			}
		}
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if revision != "" {
		v += " " + revision + modified
	}
	return v + " " + runtime.Version()
}
