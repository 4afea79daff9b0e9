package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/internal/testnet"
)

// TestValidateWarnsAboutCORSStarWithCredentials: Huawei's own cors sample
// (`*` with credentials) loads, and validate warns that any site can then
// make credentialed calls.
func TestValidateWarnsAboutCORSStarWithCredentials(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, testConfig(testnet.FreeAddr(t), testnet.FreeAddr(t), 8080,
		`{id: cors, paths: ["/c/*"], plugins: {cors: {"allow_origin": "*", "allow_methods": "GET,POST,PUT", "allow_headers": "Content-Type,Accept,Accept-Ranges,Cache-Control", "expose_headers": "X-Request-Id,X-Apig-Latency", "max_age": 172800, "allow_credentials": true}}}`))
	code, stdout, stderr := runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "ok: ")
	require.Contains(t, stderr, path+": warning: services[0].routes[2].plugins.cors.allow_origin: \"*\" with allow_credentials reflects any request's Origin")
}
