package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testnet"
)

// countingBackend answers "name" and counts its requests.
func countingBackend(t *testing.T, name string, hits *atomic.Int64) int {
	t.Helper()
	ln := testnet.Serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		hits.Add(1)
		ctx.SetBodyString(name)
	}})
	return ln.Addr().(*net.TCPAddr).Port
}

// importAndServe writes the Huawei API responses files, imports them with
// `gateway import huawei` (no warnings expected), checks the result with
// `gateway validate` and runs it on free loopback addresses until ready.
func importAndServe(t *testing.T, files map[string]string) (listen, yaml string) {
	t.Helper()
	src, dir := t.TempDir(), t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(body), 0o644))
	}
	code, yaml, warnings := runCmd(t, dir, "import", "huawei", src)
	require.Equal(t, 0, code, warnings)
	require.Empty(t, warnings)
	listen, control := testnet.FreeAddr(t), testnet.FreeAddr(t)
	path := writeConfig(t, dir, fmt.Sprintf("gateway: {listen: %s, control_listen: %s, access_log: {enabled: false}}\n\n", listen, control)+yaml)
	code, out, errs := runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "ok: ")
	g := startGateway(t, dir, "-c", path)
	g.waitReady(t, control)
	return listen, yaml
}

// The documented migration, end to end: a Huawei API on a VPC channel of
// two members (and a standby), bound to a throttle policy, imported with
// `gateway import huawei`, checked with `gateway validate` and served by
// `gateway run`: both members get traffic, the standby none, and the
// request beyond the policy's limit is a 429.
func TestImportHuaweiEndToEnd(t *testing.T) {
	var hits1, hits2, hitsBackup atomic.Int64
	p1 := countingBackend(t, "member-1", &hits1)
	p2 := countingBackend(t, "member-2", &hits2)
	p3 := countingBackend(t, "standby", &hitsBackup)
	const limit = 10

	files := map[string]string{
		// Shapes of 3.5.1 (API detail), 3.17.4 (VPC channel detail), 3.4.4
		// (throttles) and 3.8.1 (throttle_applies) of the Huawei APIG API
		// reference (seeds/002).
		"apis.json": `{"total": 1, "size": 1, "apis": [{
			"id": "5f918d104dc84480a75166ba99efff21", "name": "Api_orders", "group_id": "c77f5e81d9cb4424bf704ef2b0ac7600",
			"group_name": "api_group_001", "status": 1, "type": 1, "version": "V0.0.1", "req_protocol": "HTTP",
			"req_method": "GET", "req_uri": "/orders/{id}", "match_mode": "NORMAL", "auth_type": "NONE",
			"auth_opt": {"app_code_auth_type": "DISABLE"}, "backend_type": "HTTP", "cors": false,
			"publish_id": "9191cdb430724d4b8586ed7f1b962ca2", "remark": "Order lookup",
			"backend_api": {"vpc_channel_status": 1, "vpc_channel_info": {"cascade_flag": false, "vpc_channel_id": "105c6902457144a4820dff8b1ad63331", "vpc_channel_port": 0},
				"url_domain": "105c6902457144a4820dff8b1ad63331", "req_protocol": "HTTP", "req_method": "GET",
				"req_uri": "/orders/{id}", "timeout": 5000, "retry_count": "-1", "id": "1ce8fda3586d4371bd83c955df37e102", "status": 1},
			"req_params": [{"name": "id", "type": "STRING", "location": "PATH", "required": 1, "valid_enable": 2, "id": "57c8bf3c97ef40ee94eace95dff30014"}]}]}`,
		"vpc_channels.json": fmt.Sprintf(`{"total": 1, "size": 1, "vpc_channels": [{
			"name": "orders_channel", "port": 8080, "balance_strategy": 1, "member_type": "ip", "type": 2, "status": 1,
			"id": "105c6902457144a4820dff8b1ad63331", "member_groups": [], "create_time": "2020-07-23T07:24:33Z",
			"members": [
				{"host": "127.0.0.1", "port": %d, "weight": 1, "is_backup": false, "status": 1, "id": "m1"},
				{"host": "127.0.0.1", "port": %d, "weight": 1, "is_backup": false, "status": 1, "id": "m2"},
				{"host": "127.0.0.1", "port": %d, "weight": 1, "is_backup": true, "status": 1, "id": "m3"}]}]}`, p1, p2, p3),
		"throttles.json": fmt.Sprintf(`{"total": 1, "size": 1, "throttles": [{
			"name": "throttle_demo", "type": 1, "time_interval": 1, "time_unit": "HOUR", "api_call_limits": %d,
			"id": "3437448ad06f4e0c91a224183116e965", "enable_adaptive_control": "FALSE", "bind_num": 1, "is_inclu_special_throttle": 2}]}`, limit),
		"throttle_applies.json": `{"throttle_applies": [{"publish_id": "9191cdb430724d4b8586ed7f1b962ca2", "scope": 1,
			"strategy_id": "3437448ad06f4e0c91a224183116e965", "apply_time": "2020-08-03T12:25:52.257613934Z", "id": "3e06ac135e18477e918060d3c59d6f6a"}]}`,
	}
	listen, yaml := importAndServe(t, files)
	require.Contains(t, yaml, `# huawei api 5f918d104dc84480a75166ba99efff21 "Api_orders"`)
	for i := 0; i < limit; i++ {
		status, body := get("http://"+listen+"/orders/42", nil)
		require.Equal(t, http.StatusOK, status, "request %d: %s", i+1, body)
		require.True(t, strings.HasPrefix(body, "member-"), body)
	}
	status, body := get("http://"+listen+"/orders/42", nil)
	require.Equal(t, http.StatusTooManyRequests, status, body)
	require.Contains(t, body, "APIG.0308")
	require.Equal(t, int64(limit/2), hits1.Load())
	require.Equal(t, int64(limit/2), hits2.Load())
	require.Zero(t, hitsBackup.Load())
	// The route is the API's: another path is not served.
	status, _ = get("http://"+listen+"/other", nil)
	require.Equal(t, http.StatusNotFound, status)
}

func TestImportUsage(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runCmd(t, dir, "import", "kong", "x.json")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `unknown product "kong"`)
	code, _, _ = runCmd(t, dir, "import", "huawei")
	require.Equal(t, exitUsage, code)
	code, _, errs = runCmd(t, dir, "import", "api7", "missing.json")
	require.Equal(t, exitConfig, code)
	require.Contains(t, errs, "missing.json")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644))
	code, _, errs = runCmd(t, dir, "import", "huawei", "bad.json")
	require.Equal(t, exitConfig, code)
	require.Contains(t, errs, "bad.json: not JSON")
	// -o writes the file; warnings still go to stderr.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "consumers.json"), []byte(`{"list": [{"username": "bob", "x": 1}], "total": 1}`), 0o644))
	code, out, errs := runCmd(t, dir, "import", "api7", "-o", "gw.yaml", "consumers.json")
	require.Equal(t, 0, code, errs)
	require.Empty(t, out)
	require.Contains(t, errs, "warning: consumers.json: list[0].x: not supported, not imported")
	data, err := os.ReadFile(filepath.Join(dir, "gw.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(data), `username: "bob"`)
}

// The seed samples (importer/testdata, README there) import into configs
// that `gateway validate` accepts (config loading and compiling), and the
// API7 one serves.
func TestImportSeedSamplesValidateAndServe(t *testing.T) {
	key, err := os.ReadFile("../../importer/testdata/api7/cert-key.pem")
	require.NoError(t, err)
	t.Setenv("GATEWAY_CERT_KEY_CERT_SHOP", string(key))
	dir := t.TempDir()
	listen, control := testnet.FreeAddr(t), testnet.FreeAddr(t)
	head := fmt.Sprintf("gateway: {listen: %s, control_listen: %s, access_log: {enabled: false}}\n\n", listen, control)

	testdata, err := filepath.Abs("../../importer/testdata")
	require.NoError(t, err)
	code, yaml, warnings := runCmd(t, dir, "import", "huawei", filepath.Join(testdata, "huawei"))
	require.Equal(t, 0, code, warnings)
	require.Contains(t, warnings, "warning: ")
	path := filepath.Join(dir, "huawei.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	code, out, errs := runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "ok: ")

	code, yaml, warnings = runCmd(t, dir, "import", "api7", filepath.Join(testdata, "api7"))
	require.Equal(t, 0, code, warnings)
	// The imported stream listener (the stream route's server_port, 3306)
	// joins the test's listeners, on a free port.
	streamAddr := testnet.FreeAddr(t)
	_, streamPort, _ := strings.Cut(streamAddr, ":")
	require.Contains(t, yaml, "gateway:\n  stream_listen: [\":3306\"]\n")
	yaml = strings.Replace(yaml, "gateway:\n  stream_listen: [\":3306\"]\n", "", 1)
	yaml = strings.Replace(yaml, "server_port: 3306", "server_port: "+streamPort, 1)
	head = strings.Replace(head, "access_log:", "stream_listen: [\""+streamAddr+"\"], access_log:", 1)
	path = writeConfig(t, dir, head+yaml)
	code, out, errs = runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "3 services, 3 routes")

	g := startGateway(t, dir, "-c", path)
	g.waitReady(t, control)
	// The imported route with key-auth asks for a key; an unknown key is refused.
	req, err := http.NewRequest(http.MethodGet, "http://"+listen+"/orders/42", nil)
	require.NoError(t, err)
	req.Host = "shop.example.com"
	status, body := do(req)
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Contains(t, body, "APIG.0303")
	status, body = get("http://"+listen+"/orders/42", nil)
	require.Equal(t, http.StatusNotFound, status, body) // hosts: shop.example.com only
}

// An imported APP API: the AppCode of an authorized app passes, another
// app's is refused, no AppCode is a 401; the MOCK backend answers.
func TestImportHuaweiAppAuthEndToEnd(t *testing.T) {
	files := map[string]string{
		"apis.json": `{"apis": [{"id": "api1", "name": "Api_mock", "req_method": "GET", "req_uri": "/test/mock", "match_mode": "NORMAL",
			"auth_type": "APP", "auth_opt": {"app_code_auth_type": "HEADER"}, "backend_type": "MOCK",
			"mock_info": {"result_content": "mock success"}, "req_protocol": "HTTP", "type": 1, "status": 1}]}`,
		"apps.json":      `{"apps": [{"id": "a1", "name": "app_demo", "app_key": "k1"}, {"id": "a2", "name": "app_other", "app_key": "k2"}]}`,
		"app_codes.json": `{"app_codes": [{"app_code": "code-demo", "app_id": "a1", "id": "c1"}, {"app_code": "code-other", "app_id": "a2", "id": "c2"}]}`,
		"auths.json":     `{"auths": [{"api_id": "api1", "app_id": "a1", "app_name": "app_demo", "id": "au1"}]}`,
	}
	listen, _ := importAndServe(t, files)

	url := "http://" + listen + "/test/mock"
	status, body := get(url, http.Header{"X-Apig-Appcode": {"code-demo"}})
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "mock success", body)
	status, body = get(url, http.Header{"X-Apig-Appcode": {"code-other"}})
	require.Equal(t, http.StatusForbidden, status, body)
	require.Contains(t, body, "APIG.0302")
	status, body = get(url, nil)
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = get(url, http.Header{"X-Apig-Appcode": {"wrong"}})
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Contains(t, body, "APIG.0301")
}
