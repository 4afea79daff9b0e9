package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"gateway/config"
	"gateway/proxy"
)

// cmdValidate is `nginx -t`: it loads the file and compiles it exactly as
// `run` would, through a throwaway Gateway that never listens, so that a
// file it accepts is a file `run` and a reload accept.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	f := newConfigFlags("validate", stderr)
	if code, ok := f.parse(args); !ok {
		return code
	}
	cfg, err := loadAndCompile(f.path, f.limits())
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			// "open x.yaml: no such file or directory" names the file already.
			fmt.Fprintln(stderr, strings.Join(errorLines(err), "\n"))
			return exitConfig
		}
		// One error per line, each prefixed with the file like a compiler's,
		// so that editors and grep can use the output. Errors of a YAML
		// file name it and their line already ("gw.yaml:12: path: ...").
		for _, line := range errorLines(err) {
			if !strings.HasPrefix(line, f.path+":") {
				line = f.path + ": " + line
			}
			fmt.Fprintln(stderr, line)
		}
		return exitConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", f.path, w.Error())
	}
	fmt.Fprintf(stdout, "ok: %s (revision %s, %d services, %d routes)\n",
		f.path, cfg.Revision, len(cfg.Services), numRoutes(cfg))
	return exitOK
}

// loadAndCompile loads path and compiles it in a Gateway that is closed
// again at once.
func loadAndCompile(path string, lim config.ReadLimits) (*config.Config, error) {
	cfg, err := config.LoadFile(path, lim)
	if err != nil {
		return nil, err
	}
	g := proxy.New(proxy.Options{DryRun: true})
	defer g.Close()
	if err := g.Apply(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// errorLines is proxy.ErrorLines (one line per config.FieldError, "path:
// message"), the one way config errors are shown, with a hint for a file
// over --max-config-size.
func errorLines(err error) []string {
	if errors.Is(err, config.ErrTooLarge) {
		return []string{err.Error() + " (--max-config-size raises the limit)"}
	}
	return proxy.ErrorLines(err)
}

func numRoutes(cfg *config.Config) int {
	n := 0
	for i := range cfg.Services {
		n += len(cfg.Services[i].Routes)
	}
	return n
}

// numUpstreams counts the top-level upstreams and the services' inline ones.
func numUpstreams(cfg *config.Config) int {
	n := len(cfg.Upstreams)
	for i := range cfg.Services {
		if cfg.Services[i].Upstream != nil {
			n++
		}
	}
	return n
}
