package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/internal/testnet"
)

// Hostile config files (issue 12, items 9-11): what `-c` points at is read
// with care, and nothing secret comes back in an error.

// post returns the status and body of a POST, or 0 when the request failed.
func post(url string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	return do(req)
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
		code, out, errOut := runCmd(t, dir, "validate", "-c", c.path)
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

	code, _, errOut := runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, "within the default 64 MiB: %s", errOut)

	code, _, errOut = runCmd(t, dir, "validate", "--max-config-size", "2KiB", "-c", path)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "file too large")
	require.Contains(t, errOut, "more than the limit of 2048 bytes (2 KiB) (--max-config-size raises the limit)")
	require.NotContains(t, errOut, "xxxx")

	code, _, errOut = runCmd(t, dir, "validate", "--max-config-size", "4096", "-c", path)
	require.Equal(t, 0, code, errOut)

	// run applies the flag too, at start.
	p := startGateway(t, dir, "run", "--max-config-size", "2KiB", "-c", path)
	require.Equal(t, 1, p.wait(t, 10*time.Second))
	require.Contains(t, p.stderr.String(), "file too large")

	for _, bad := range []string{"0", "-1", "lots", "2TiB", "12QB"} {
		code, _, errOut = runCmd(t, dir, "validate", "--max-config-size", bad, "-c", path)
		require.Equal(t, 2, code, "--max-config-size %s: %s", bad, errOut)
		require.Contains(t, errOut, "must be a size such as")
	}
}

// A file nested far deeper than the cap is refused at once; it used to
// cost time and memory quadratic in the depth (100,000 levels: 57 s and
// 15 GB).
func TestValidateDeepFile(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"deep.json": strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000),
		"deep.yaml": strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
		code, _, errOut := runCmd(t, dir, "validate", "-c", path)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "nested deeper than 64 levels", name)
		require.Less(t, len(errOut), 500, "one short error: %s", errOut)
	}
}

// -c pointed at a file that is not a config (here shaped like /etc/shadow)
// must not print that file.
func TestValidateDoesNotEchoAnotherFile(t *testing.T) {
	dir := t.TempDir()
	shadow := "root:$6$Zk3aQ9$hSecretHashSecretHashSecretHash:19700:0:99999:7:::\n" +
		"daemon:*:19700:0:99999:7:::\n"
	for _, name := range []string{"shadow", "shadow.json"} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(shadow), 0o600))
		code, out, errOut := runCmd(t, dir, "validate", "-c", path)
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.NotContains(t, errOut, "Secret")
		require.NotContains(t, errOut, "$6$")
		require.NotContains(t, errOut, "daemon")
	}
}

// A reload from a path that became a FIFO fails at once and says why; it
// used to block the reload (holding the reload lock) forever, so that no
// later reload could ever run.
func TestReloadFromFIFOFailsAndLaterReloadsWork(t *testing.T) {
	backend := startBackend(t)
	listen, control := testnet.FreeAddr(t), testnet.FreeAddr(t)
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

	p.stop(t, syscall.SIGTERM)
}

// An unquoted numeric key-auth key is a number to YAML; the load error for
// it used to print it, in the log, in POST /v1/reload's answer and in
// /v1/config's last_reload.
func TestReloadErrorsDoNotLeakSecrets(t *testing.T) {
	s := startServing(t)

	const secret = "8675309123"
	bad := testConfig(s.listen, s.control, s.backend) +
		"consumers: [{username: alice, plugins: {key-auth: {key: " + secret + "}}}]\n"
	require.NoError(t, os.WriteFile(s.path, []byte(bad), 0o644))

	status, body := post("http://" + s.control + "/v1/reload")
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "consumers[0].plugins.key-auth.key")
	require.Contains(t, body, "not shown")
	require.NotContains(t, body, secret)

	status, body = get("http://"+s.control+"/v1/config", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "consumers[0].plugins.key-auth.key")
	require.NotContains(t, body, secret)

	// The file watcher's reload logs the same error.
	require.Eventually(t, func() bool {
		return strings.Count(s.stderr.String(), "consumers[0].plugins.key-auth.key") >= 2
	}, 10*time.Second, 50*time.Millisecond)
	require.NotContains(t, s.stderr.String(), secret)

	code, _, errOut := runCmd(t, s.dir, "validate", "-c", s.path)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "consumers[0].plugins.key-auth.key")
	require.NotContains(t, errOut, secret)

	s.stop(t, syscall.SIGTERM)
}
