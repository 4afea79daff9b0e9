package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// durationDoc sets every duration of the schema to v.
func durationDoc(v string) string {
	return strings.NewReplacer("V", v).Replace(`
gateway: {client_read_timeout: V, client_idle_timeout: V, reload_debounce: V, shutdown_timeout: V,
  client_header_timeout: V, client_write_timeout: V, websocket: {idle_timeout: V},
  resolver: {timeout: V}, stream_listen: [':3306'], stream: {idle_timeout: V}}
stream_routes: [{id: sr, upstream: {nodes: [{host: 10.0.0.1, port: 1}]}, idle_timeout: V}]
services:
  - id: s
    upstream:
      nodes: [{host: 10.0.0.1, port: 80}]
      timeout: {connect: V, send: V, read: V}
      retry_timeout: V
      keepalive_pool: {idle_timeout: V}
      checks:
        active: {timeout: V, http_path: /, healthy: {interval: V}, unhealthy: {interval: V}}
    routes: [{paths: [/], timeout: {connect: V, send: V, read: V}, enable_websocket: true, websocket: {idle_timeout: V}}]
`)
}

var durationPaths = []string{
	"gateway.client_read_timeout", "gateway.client_idle_timeout", "gateway.reload_debounce", "gateway.shutdown_timeout",
	"gateway.client_header_timeout", "gateway.client_write_timeout", "gateway.websocket.idle_timeout",
	"gateway.resolver.timeout",
	"services[0].upstream.timeout.connect", "services[0].upstream.timeout.send", "services[0].upstream.timeout.read",
	"services[0].upstream.retry_timeout", "services[0].upstream.keepalive_pool.idle_timeout",
	"services[0].upstream.checks.active.timeout", "services[0].upstream.checks.active.healthy.interval",
	"services[0].upstream.checks.active.unhealthy.interval",
	"services[0].routes[0].timeout.connect", "services[0].routes[0].timeout.send", "services[0].routes[0].timeout.read",
	"services[0].routes[0].websocket.idle_timeout",
	"gateway.stream.idle_timeout", "stream_routes[0].idle_timeout",
}

// countSeconds counts the Seconds fields of t and the types under it, so
// that a duration added to the schema must be added to this test too.
func countSeconds(t reflect.Type, seen map[reflect.Type]bool) int {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		return countSeconds(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] {
			return 0
		}
		seen[t] = true
		n := 0
		for i := range t.NumField() {
			if t.Field(i).Type == reflect.TypeFor[Seconds]() {
				n++
			} else {
				n += countSeconds(t.Field(i).Type, seen)
			}
		}
		return n
	}
	return 0
}

// A duration of 1e300 seconds used to pass validation and overflow
// time.Duration (every request a 504; client_read_timeout: 1e12 wrapped).
func TestEveryDurationIsBounded(t *testing.T) {
	require.Equal(t, len(durationPaths), countSeconds(reflect.TypeFor[Config](), map[reflect.Type]bool{}),
		"a duration was added to the schema: add it to durationDoc and durationPaths")

	for _, v := range []string{"1e300", "1e12", "86400.5", "-1", "1e-300", "0.0009"} {
		errs := parseErrs(t, durationDoc(v), "c.yaml")
		for _, p := range durationPaths {
			requireFieldError(t, errs, p, "0.001..86400 seconds (1 ms to 1 day)")
		}
		require.Len(t, errs, len(durationPaths), "value %s: %s", v, errs.Error())
	}

	cfg := mustParse(t, durationDoc("86400"))
	require.Equal(t, 24*time.Hour, cfg.Services[0].Routes[0].Timeout.Read.Duration())
	mustParse(t, durationDoc("0.001"))

	// 0 means "none" or "keep the upstream's" where the spec says so, and
	// is refused where a duration must be set.
	errs := parseErrs(t, durationDoc("0"), "c.yaml")
	for _, p := range []string{"gateway.reload_debounce", "services[0].upstream.retry_timeout",
		"services[0].upstream.checks.active.healthy.interval", "services[0].upstream.checks.active.unhealthy.interval",
		"services[0].routes[0].timeout.connect", "services[0].routes[0].timeout.send", "services[0].routes[0].timeout.read"} {
		for _, e := range errs {
			require.NotEqual(t, p, e.Path, "0 is allowed at %s", p)
		}
	}
	requireFieldError(t, errs, "gateway.client_read_timeout", "must be 0.001..86400 seconds", "got 0")
}

func TestSecondsDurationSaturates(t *testing.T) {
	require.Equal(t, time.Duration(1<<63-1), Seconds(1e300).Duration())
	require.Equal(t, time.Duration(-1<<63), Seconds(-1e300).Duration())
	require.Equal(t, 1500*time.Millisecond, Seconds(1.5).Duration())
}
