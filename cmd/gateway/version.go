package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at link time:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/gateway
var (
	version = "dev"
	commit  = "dev"
)

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	fmt.Fprintf(stdout, "gateway %s\ncommit  %s\ngo      %s %s/%s\n",
		version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// buildCommit is the commit set by -ldflags or, failing that, the VCS
// revision the Go toolchain stamped into the binary (absent with
// -buildvcs=false and for `go run`).
func buildCommit() string {
	if commit != "dev" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return commit
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return commit
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
