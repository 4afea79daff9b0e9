// Command gateway is the API gateway's data plane.
//
//	gateway [run] [-c FILE]      serve FILE (default ./gateway.yaml, else the built-in demo)
//	gateway validate -c FILE     load and compile FILE, print every error; starts nothing
//	gateway version              version, commit, Go version
//	gateway import api7|huawei   convert API7 / Huawei APIG API responses to a config
//
// GATEWAY_PPROF=ADDR serves net/http/pprof on ADDR, for profiling.
//
// Exit codes: 0 clean shutdown or valid config, 1 bad config or cannot
// listen, 2 bad usage. The contract is operations.md of the spec.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gateway/config"
)

// Exit codes (operations.md).
const (
	exitOK     = 0
	exitConfig = 1 // bad config, cannot listen, the server failed
	exitUsage  = 2 // unknown subcommand, bad flag, stray argument
)

// defaultConfig is the file served when -c is not given. When it does not
// exist either, `run` serves the built-in demo.
const defaultConfig = "gateway.yaml"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain dispatches the subcommand and returns the exit code. Arguments
// that start with a flag mean `run`, so that `gateway -c FILE` serves.
func realMain(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stdout, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "version":
		return cmdVersion(args, stdout, stderr)
	case "import":
		return cmdImport(args, stdout, stderr)
	case "help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "gateway: unknown command %q\n\n", cmd)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  gateway [run] [-c FILE]      serve FILE; default ./gateway.yaml, or the built-in
                               demo when that does not exist either
  gateway validate -c FILE     load and compile FILE, print every error; exit 0 or 1
  gateway version              print version, commit and Go version
  gateway import api7|huawei [-o FILE] DIR|FILE...
                               convert API7 / Huawei APIG API responses (JSON) to
                               this gateway's config (YAML on stdout, warnings on stderr)

Flags:
  -c, --config FILE            config file (YAML or JSON)
  --max-config-size SIZE       refuse a larger config file (default 64MiB; e.g. 1048576, 256KiB, 1GiB)

Environment:
  GATEWAY_PPROF=ADDR           serve net/http/pprof on ADDR (e.g. 127.0.0.1:6060); off by default
`)
}

// configFlags is the flag set of a subcommand that takes -c/--config.
type configFlags struct {
	fs      *flag.FlagSet
	path    string
	maxSize byteSizeFlag
}

// limits are the ReadLimits of the config file.
func (f *configFlags) limits() config.ReadLimits {
	return config.ReadLimits{MaxSize: int64(f.maxSize)}
}

// byteSizeFlag is a size in bytes, written as a number of bytes or with a
// binary unit: 65536, 64KiB, 64MiB, 1GiB (K, M, G and KB, MB, GB are the
// same units).
type byteSizeFlag int64

func (b *byteSizeFlag) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSizeFlag) Set(s string) error {
	num := strings.TrimRight(s, "KMGiBkmgb")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "b"))
	shift := map[string]uint{"": 0, "K": 10, "KI": 10, "M": 20, "MI": 20, "G": 30, "GI": 30}
	sh, ok := shift[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 || n > (1<<40)>>sh {
		return fmt.Errorf("must be a size such as 67108864, 64MiB or 1GiB, at most 1TiB, got %q", s)
	}
	*b = byteSizeFlag(n << sh)
	return nil
}

func newConfigFlags(cmd string, stderr io.Writer) *configFlags {
	f := &configFlags{fs: flag.NewFlagSet("gateway "+cmd, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() { usage(stderr) }
	f.fs.StringVar(&f.path, "c", defaultConfig, "config `FILE`")
	f.fs.StringVar(&f.path, "config", defaultConfig, "config `FILE` (same as -c)")
	f.maxSize = config.DefaultMaxFileSize
	f.fs.Var(&f.maxSize, "max-config-size", "refuse a config file larger than `SIZE`")
	return f
}

// parse parses args; ok is false when the command must stop with code
// (0 after -h, 2 after a usage error, which the flag package has printed).
func (f *configFlags) parse(args []string) (code int, ok bool) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(f.fs.Output(), "%s: unexpected argument %q\n", f.fs.Name(), f.fs.Arg(0))
		f.fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// given reports whether -c or --config was on the command line; only then
// is a missing file an error rather than a reason for demo mode.
func (f *configFlags) given() bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "c" || fl.Name == "config" {
			given = true
		}
	})
	return given
}
