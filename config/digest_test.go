package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDigest(t *testing.T) {
	doc := func(port, key string) string {
		return `
consumers: [{username: alice, plugins: {key-auth: {key: "` + key + `"}}}]
services:
  - {id: a, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/a]}, {paths: [/b]}]}
  - {id: b, upstream: {nodes: [{host: b, port: ` + port + `}]}, routes: [{paths: [/c]}]}
`
	}
	d1 := mustParse(t, doc("1", "k")).Digest()
	require.Len(t, d1.Services, 2)
	require.Len(t, d1.Routes[0], 2)

	// The same values written another way hash the same (JSON included).
	same, err := Parse([]byte(`{"services": [{"id": "a", "routes": [{"paths": ["/a"]}, {"paths": ["/b"]}], "upstream": {"nodes": [{"port": 1, "host": "a"}]}},
		{"id": "b", "upstream": {"nodes": [{"host": "b", "port": 1}]}, "routes": [{"paths": ["/c"]}]}],
		"consumers": [{"username": "alice", "plugins": {"key-auth": {"key": "k"}}}]}`), "c.json")
	require.NoError(t, err)
	require.Equal(t, d1, same.Digest())

	// A change in service b changes b's hashes only.
	d2 := mustParse(t, doc("2", "k")).Digest()
	require.Equal(t, d1.Global, d2.Global)
	require.Equal(t, d1.Services[0], d2.Services[0])
	require.NotEqual(t, d1.Services[1], d2.Services[1])
	require.NotEqual(t, d1.Own[1], d2.Own[1])
	require.Equal(t, d1.Routes[1], d2.Routes[1])

	// A change outside the services changes Global.
	d3 := mustParse(t, doc("1", "k2")).Digest()
	require.NotEqual(t, d1.Global, d3.Global)
	require.Equal(t, d1.Services, d3.Services)
	// Consumers hashes the consumers alone.
	require.NotEqual(t, d1.Consumers, d3.Consumers)
	require.Equal(t, d1.Consumers, d2.Consumers)
	d4 := mustParse(t, doc("1", "k")+"gateway: {max_header_count: 50}\n").Digest()
	require.NotEqual(t, d1.Global, d4.Global)
	require.Equal(t, d1.Consumers, d4.Consumers)

	// A $env:// reference hashes with its value, read at each load.
	t.Setenv("GW_DIGEST_KEY", "one")
	e1 := mustParse(t, doc("1", "$env://GW_DIGEST_KEY")).Digest()
	t.Setenv("GW_DIGEST_KEY", "two")
	e2 := mustParse(t, doc("1", "$env://GW_DIGEST_KEY")).Digest()
	require.NotEqual(t, e1.Global, e2.Global)

	require.Nil(t, Default().Digest(), "a config made in code has none: it is compiled whole")
}
