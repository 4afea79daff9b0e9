package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	_ "gateway/plugin/builtin" // the shipped plugins, so that configs using them load
)

// load loads an importer's output as `gateway validate` does (config
// loading), failing the test with the YAML when it does not.
func load(t *testing.T, r *Result) *config.Config {
	t.Helper()
	cfg, err := config.Parse(r.YAML, "imported.yaml")
	require.NoError(t, err, "imported config does not load:\n%s", r.YAML)
	return cfg
}

// writeFiles writes name -> JSON into a temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

func huawei(t *testing.T, files map[string]string) *Result {
	t.Helper()
	r, err := Huawei([]string{writeFiles(t, files)})
	require.NoError(t, err)
	return r
}

// warned reports whether a warning's text holds every part.
func warned(r *Result, parts ...string) bool {
	for _, w := range r.Warnings {
		ok := true
		for _, p := range parts {
			if !strings.Contains(w.String(), p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func requireWarned(t *testing.T, r *Result, parts ...string) {
	t.Helper()
	require.True(t, warned(r, parts...), "no warning with %q in:\n%v", parts, r.Warnings)
}

func service(t *testing.T, cfg *config.Config, id string) *config.Service {
	t.Helper()
	for i := range cfg.Services {
		if cfg.Services[i].ID == id {
			return &cfg.Services[i]
		}
	}
	t.Fatalf("no service %q", id)
	return nil
}

func upstream(t *testing.T, cfg *config.Config, id string) *config.Upstream {
	t.Helper()
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].ID == id {
			return &cfg.Upstreams[i]
		}
	}
	t.Fatalf("no upstream %q", id)
	return nil
}
