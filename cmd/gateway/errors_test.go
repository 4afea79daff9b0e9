package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConfigErrorsPrintOneWay: gateway validate, POST /v1/reload, GET
// /v1/config's last_reload and the reload log show a bad config's errors
// in the same lines, one per error, "path: message".
func TestConfigErrorsPrintOneWay(t *testing.T) {
	s := startServing(t)

	require.NoError(t, os.WriteFile(s.path, []byte(testConfig(s.listen, s.control, 0, `{paths: ["/b"], methods: [FETCH]}`)), 0o644))
	code, _, errOut := runCmd(t, s.dir, "validate", "-c", s.path)
	require.Equal(t, 1, code)
	// Every error of a YAML file names the file and line ("gw.yaml:12:
	// path: message", issue 20), in validate's output as in the others.
	want := strings.Split(strings.TrimSpace(errOut), "\n")
	require.Len(t, want, 2, errOut)
	require.Regexp(t, `^`+regexp.QuoteMeta(s.path)+`:[0-9]+: services\[0\]\.upstream\.nodes\[0\]\.port: `, want[0])
	require.Regexp(t, `^`+regexp.QuoteMeta(s.path)+`:[0-9]+: services\[0\]\.routes\[2\]\.methods\[0\]: `, want[1])

	require.Equal(t, want, reloadErrors(t, s.control))
	require.Equal(t, want, lastReloadErrors(t, s.control))
	require.Equal(t, want, loggedReloadErrors(t, s.gatewayProc, "api"))

	// A config that loads and compiles but cannot be committed (its
	// access log cannot be opened) is reported the same way.
	logPath := filepath.Join(s.dir, "missing", "access.log")
	bad := strings.Replace(testConfig(s.listen, s.control, s.backend), "access_log: {enabled: false}", "access_log: {enabled: true, path: "+logPath+"}", 1)
	require.NoError(t, os.WriteFile(s.path, []byte(bad), 0o644))
	wantRE := regexp.MustCompile(`^` + regexp.QuoteMeta(s.path) + `:[0-9]+: ` + regexp.QuoteMeta("gateway.access_log.path: open "+logPath+": no such file or directory") + `$`)
	require.Eventually(t, func() bool { // the watcher may still be reloading the previous edit
		got := reloadErrors(t, s.control)
		if len(got) == 1 && wantRE.MatchString(got[0]) {
			want = got
			return true
		}
		return false
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, want, lastReloadErrors(t, s.control))
	status, _ := get("http://"+s.listen+"/a/x", nil)
	require.Equal(t, http.StatusOK, status, "the previous config keeps serving")

	s.stop(t, syscall.SIGTERM)
}

func reloadErrors(t *testing.T, control string) []string {
	t.Helper()
	status, body := post("http://" + control + "/v1/reload")
	require.Equal(t, http.StatusBadRequest, status, body)
	var answer struct{ Errors []string }
	require.NoError(t, json.Unmarshal([]byte(body), &answer), body)
	return answer.Errors
}

func lastReloadErrors(t *testing.T, control string) []string {
	t.Helper()
	status, body := get("http://"+control+"/v1/config", nil)
	require.Equal(t, http.StatusOK, status, body)
	var info struct {
		LastReload struct{ Errors []string } `json:"last_reload"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &info), body)
	return info.LastReload.Errors
}

// loggedReloadErrors returns the errors of the last failed reload that
// trigger logged.
func loggedReloadErrors(t *testing.T, p *gatewayProc, trigger string) []string {
	t.Helper()
	var errs []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		var entry struct {
			Msg     string
			Trigger string
			Errors  []string
		}
		if json.Unmarshal([]byte(l), &entry) == nil && entry.Trigger == trigger && entry.Errors != nil {
			errs = entry.Errors
		}
	}
	require.NotNil(t, errs, "no failed %s reload logged:\n%s", trigger, p.stderr.String())
	return errs
}
