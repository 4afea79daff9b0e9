package stream

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

func TestTableMatchMostSpecific(t *testing.T) {
	anyRoute := &Route{ID: "any"}
	port := &Route{ID: "port", Port: 3306}
	portAddr := &Route{ID: "port-addr", Port: 3306, Server: netip.MustParseAddr("10.0.0.1")}
	wide := &Route{ID: "wide", Port: 3306, Remote: netip.MustParsePrefix("192.168.0.0/16")}
	narrow := &Route{ID: "narrow", Port: 3306, Remote: netip.MustParsePrefix("192.168.1.0/24")}
	host := &Route{ID: "host", Port: 3306, Remote: netip.MustParsePrefix("192.168.1.7/32")}
	remoteOnly := &Route{ID: "remote-only", Remote: netip.MustParsePrefix("192.168.1.7/32")}
	tb := NewTable([]*Route{anyRoute, remoteOnly, wide, host, port, narrow, portAddr}, 0)

	ip := netip.MustParseAddr
	for _, c := range []struct {
		port          int
		local, remote string
		want          *Route
	}{
		{3306, "10.0.0.2", "172.16.0.1", port},
		{3306, "10.0.0.1", "172.16.0.1", portAddr},
		{3306, "10.0.0.1", "192.168.1.7", portAddr}, // server_addr ranks above remote_addr
		{3306, "10.0.0.2", "192.168.1.7", host},
		{3306, "10.0.0.2", "192.168.1.8", narrow},
		{3306, "10.0.0.2", "192.168.2.8", wide},
		{5432, "10.0.0.2", "192.168.1.7", remoteOnly},
		{5432, "10.0.0.2", "192.168.1.8", anyRoute},
	} {
		require.Same(t, c.want, tb.Match(c.port, ip(c.local), ip(c.remote)), "%d %s %s", c.port, c.local, c.remote)
	}
	require.Nil(t, NewTable([]*Route{port}, 0).Match(1, ip("10.0.0.1"), ip("10.0.0.2")))
}

func TestAppendKey(t *testing.T) {
	k, err := config.ParseKeyTemplate("$remote_addr-$server_port")
	require.NoError(t, err)
	require.Equal(t, "10.1.2.3-3306", string(appendKey(nil, k.Parts, netip.MustParseAddr("10.1.2.3"), 3306)))
}

func TestListenKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{":3306", ":3306"},
		{"0.0.0.0:3306", ":3306"},
		{"[::]:3306", ":3306"},
		{"127.0.0.1:03306", "127.0.0.1:3306"},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80"},
		{"[0:0::1]:80", "[::1]:80"},
		{"db.local:80", "db.local:80"},
		{"nonsense", "nonsense"},
	} {
		require.Equal(t, c.want, listenKey(c.in), c.in)
	}
	require.NotEqual(t, listenKey("127.0.0.1:3306"), listenKey(":3306"))
}
