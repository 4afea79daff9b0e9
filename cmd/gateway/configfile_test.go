package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Hostile config files (issue 12, items 9-11): what `-c` points at is read
// with care, and nothing secret comes back in an error.

// runCmdWithin is runCmd with a bound, so that a command that hangs fails
// the test instead of hanging it.
func runCmdWithin(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "gateway %q did not finish", args)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// post returns the status and body of a POST, or 0 when the request failed.
func post(url string) (int, string) {
	resp, err := client.Post(url, "application/json", nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestValidateRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.Symlink(fifo, link))

	for _, c := range []struct{ path, want string }{
		{link, "not a regular file (a named pipe)"},
		// Not /dev/zero itself: the old code read it until memory ran out.
		{"/dev/null", "not a regular file (a character device)"},
	} {
		code, out, errOut := runCmdWithin(t, dir, "validate", "-c", c.path)
		require.Equal(t, 1, code, "stderr: %s", errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, c.path)
		require.Contains(t, errOut, c.want)
	}
}

func TestMaxConfigSizeFlag(t *testing.T) {
	dir := t.TempDir()
	doc := testConfig("127.0.0.1:9080", "127.0.0.1:9091", 8080) + "# " + strings.Repeat("x", 2048) + "\n"
	path := writeConfig(t, dir, doc)

	code, _, errOut := runCmdWithin(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, "within the default 64 MiB: %s", errOut)

	code, _, errOut = runCmdWithin(t, dir, "validate", "--max-config-size", "2KiB", "-c", path)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "file too large")
	require.Contains(t, errOut, "more than the limit of 2048 bytes (2 KiB)")
	require.NotContains(t, errOut, "xxxx")

	code, _, errOut = runCmdWithin(t, dir, "validate", "--max-config-size", "4096", "-c", path)
	require.Equal(t, 0, code, errOut)

	for _, bad := range []string{"0", "-1", "lots", "2TiB", "12QB"} {
		code, _, errOut = runCmdWithin(t, dir, "validate", "--max-config-size", bad, "-c", path)
		require.Equal(t, 2, code, "--max-config-size %s: %s", bad, errOut)
		require.Contains(t, errOut, "must be a size such as")
	}
}

// A reload from a path that became a FIFO fails at once and says why; it
// used to block the reload (holding the reload lock) forever, so that no
// later reload could ever run.
func TestReloadFromFIFOFailsAndLaterReloadsWork(t *testing.T) {
	backend := startBackend(t)
	listen, control := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	require.NoError(t, os.WriteFile(real, []byte(testConfig(listen, control, backend)), 0o644))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.Symlink(real, link))

	p := startGateway(t, dir, "-c", link)
	p.waitReady(t, control)

	swap := func(target string) {
		tmp := link + ".tmp"
		require.NoError(t, os.Symlink(target, tmp))
		require.NoError(t, os.Rename(tmp, link))
	}
	swap(fifo)
	status, body := post("http://" + control + "/v1/reload")
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "not a regular file (a named pipe)")
	status, _ = get("http://"+listen+"/a/x", nil)
	require.Equal(t, http.StatusOK, status, "the previous config keeps serving")

	require.NoError(t, os.WriteFile(real, []byte(testConfig(listen, control, backend, `{id: added, paths: ["/n"]}`)), 0o644))
	swap(real)
	require.Eventually(t, func() bool {
		status, _ := post("http://" + control + "/v1/reload")
		return status == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond)
	status, body = get("http://"+listen+"/n", nil)
	require.Equal(t, http.StatusOK, status, body)

	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.wait(t, 15*time.Second))
}
