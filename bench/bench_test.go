package main

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary serve as the bench's children (backends,
// built-in load generator), which the bench starts by re-executing itself.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

// TestSmoke runs the basic scenario for a short while and checks that the
// tool ran and measured something, without errors. It asserts no speed:
// CI machines are too varied for that.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and loads them for a few seconds")
	}
	opts, err := parseFlags([]string{"--scenario=basic", "--duration=2s", "--warmup=200ms",
		"--rounds=1", "--connections=8", "--generator=builtin", "--peers=none"}, os.Stderr)
	require.NoError(t, err)
	var out, log bytes.Buffer
	start := time.Now()
	rep, err := run(t.Context(), opts, &out, &log)
	require.NoError(t, err, "log:\n%s", log.String())
	t.Logf("took %s\n%s", time.Since(start).Round(time.Millisecond), out.String())

	require.Len(t, rep.Scenarios, 1)
	sc := rep.Scenarios[0]
	for _, name := range []string{"direct", "gateway"} {
		tr := sc.target(name)
		require.NotNil(t, tr, name)
		require.Positive(t, tr.Requests, name)
		require.Positive(t, tr.ReqPerSec, name)
		require.Positive(t, tr.P99Ms, name)
		require.Zero(t, tr.Errors, name)
	}
	gw := sc.target("gateway")
	require.Positive(t, gw.ReqPerCPUSec)
	require.Positive(t, gw.RSSBytes)
	require.Contains(t, out.String(), "req/CPU-s")
}

// TestSmokeTLS runs the TLS scenarios briefly: the gateway serves TLS on
// its tls_listen and the built-in generator speaks TLS to it (direct stays
// plain), with and without a new connection per request.
func TestSmokeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and loads them for a few seconds")
	}
	opts, err := parseFlags([]string{"--scenario=tls,tls-handshake", "--duration=1s", "--warmup=100ms",
		"--rounds=1", "--connections=4", "--generator=builtin", "--peers=none"}, os.Stderr)
	require.NoError(t, err)
	var out, log bytes.Buffer
	rep, err := run(t.Context(), opts, &out, &log)
	require.NoError(t, err, "log:\n%s", log.String())
	require.Len(t, rep.Scenarios, 2)
	for _, sc := range rep.Scenarios {
		gw := sc.target("gateway")
		require.NotNil(t, gw, sc.Name)
		require.Positive(t, gw.Requests, sc.Name)
		require.Zero(t, gw.Errors, sc.Name)
		require.Positive(t, gw.ReqPerCPUSec, sc.Name)
	}
}

// TestSmokeTCP runs the tcp scenario briefly: the gateway's stream route
// and the echo backend directly, both loads, no errors.
func TestSmokeTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and loads them for a few seconds")
	}
	opts, err := parseFlags([]string{"--scenario=tcp", "--duration=1s", "--warmup=0s",
		"--rounds=1", "--connections=8", "--peers=none"}, os.Stderr)
	require.NoError(t, err)
	var out, log bytes.Buffer
	rep, err := run(t.Context(), opts, &out, &log)
	require.NoError(t, err, "log:\n%s", log.String())
	require.Len(t, rep.Scenarios, 1)
	var gw *tcpResult
	for _, r := range rep.Scenarios[0].TCP {
		if r.Name == "gateway" {
			gw = r
		}
	}
	require.NotNil(t, gw)
	require.Positive(t, gw.Bytes)
	require.Positive(t, gw.Conns)
	require.Positive(t, gw.MiBPerCPUSec)
	require.Positive(t, gw.ConnsPerCPUSec)
	require.Zero(t, gw.Errors)
	require.Contains(t, out.String(), "conn/CPU-s")
}
