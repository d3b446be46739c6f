package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

func init() {
	register(command{
		name:    "version",
		summary: "print evbus's module version, VCS revision and Go version",
		usage: `
usage: evbus version

Prints the module version (a tag, or a pseudo-version of the commit the
binary was built from; "(devel)" for a build outside version control), the
VCS revision and its time, whether the working tree had changes, and the
Go version and platform, from the build information in the binary.

example:
  evbus version`,
		setup: func(_ *flag.FlagSet, _ *conn) func(context.Context, *stdio) error {
			return func(_ context.Context, std *stdio) error {
				if err := wantArgs(std, 0, 0, ""); err != nil {
					return err
				}
				bi, ok := debug.ReadBuildInfo()
				if !ok {
					return fmt.Errorf("this binary carries no build information: build it with module support (go build, go install)")
				}
				fmt.Fprint(std.out, versionText(bi))
				return nil
			}
		},
	})
}

// versionText is what evbus version prints of bi.
func versionText(bi *debug.BuildInfo) string {
	setting := func(key string) string {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
		return ""
	}
	version, path := bi.Main.Version, bi.Main.Path
	if version == "" {
		version = "(devel)"
	}
	if path == "" {
		path = "github.com/evbus/evbus"
	}
	revision := setting("vcs.revision")
	if revision == "" {
		revision = "unknown (built without version control information)"
	} else {
		if t := setting("vcs.time"); t != "" {
			revision += " (" + t + ")"
		}
		if setting("vcs.modified") == "true" {
			revision += ", with uncommitted changes"
		}
	}
	return fmt.Sprintf("evbus     %s\nmodule    %s\nrevision  %s\ngo        %s %s/%s\n", version, path, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
