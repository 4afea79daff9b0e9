package discovery

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gateway/config"
	"gateway/internal/dnstest"
)

func resolverFor(s *dnstest.Server) *Resolver {
	return NewResolver(config.Resolver{Nameservers: []string{s.Addr}, Timeout: 2})
}

func TestLookupAAndAAAA(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("svc.test", 30, "10.0.0.2", "10.0.0.1", "::1")
	nodes, ttl, err := resolverFor(s).Lookup(context.Background(), "svc.test", 8080, false)
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, ttl)
	require.Equal(t, []config.Node{
		{Host: "10.0.0.1", Port: 8080, Weight: 1},
		{Host: "10.0.0.2", Port: 8080, Weight: 1},
		{Host: "::1", Port: 8080, Weight: 1},
	}, nodes)
	require.Equal(t, 1, s.Queries("svc.test", dns.TypeA))
	require.Equal(t, 1, s.Queries("svc.test", dns.TypeAAAA))
}

func TestLookupSmallestTTL(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("svc.test", 7, "10.0.0.1")
	s.SetSRV("svc.test", 99) // another type: not used for an A lookup
	_, ttl, err := resolverFor(s).Lookup(context.Background(), "svc.test", 80, false)
	require.NoError(t, err)
	require.Equal(t, 7*time.Second, ttl)
}

func TestLookupSRV(t *testing.T) {
	s := dnstest.Start(t)
	s.SetSRV("_http._tcp.svc.test", 20,
		dnstest.SRV{Priority: 10, Weight: 5, Port: 9001, Target: "a.svc.test"},
		dnstest.SRV{Priority: 20, Weight: 1, Port: 9002, Target: "b.svc.test"},
		dnstest.SRV{Priority: 10, Port: 0, Target: "."}, // not available
	)
	s.SetA("a.svc.test", 5, "10.0.0.1")
	s.SetA("b.svc.test", 50, "10.0.0.2", "10.0.0.3")
	nodes, ttl, err := resolverFor(s).Lookup(context.Background(), "_http._tcp.svc.test", 0, true)
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, ttl)
	// Lowest SRV priority first (highest node priority); equal weights.
	require.Equal(t, []config.Node{
		{Host: "10.0.0.1", Port: 9001, Weight: 1, Priority: -10},
		{Host: "10.0.0.2", Port: 9002, Weight: 1, Priority: -20},
		{Host: "10.0.0.3", Port: 9002, Weight: 1, Priority: -20},
	}, nodes)
}

func TestLookupErrors(t *testing.T) {
	s := dnstest.Start(t)
	r := resolverFor(s)
	_, _, err := r.Lookup(context.Background(), "nope.test", 80, false)
	var re *RcodeError
	require.ErrorAs(t, err, &re)
	require.Equal(t, dns.RcodeNameError, re.Rcode)
	require.Contains(t, err.Error(), "NXDOMAIN")

	s.SetSRV("empty.test", 5) // the name exists, without A records
	_, _, err = r.Lookup(context.Background(), "empty.test", 80, false)
	require.ErrorIs(t, err, errNoRecords)

	s.SetA("broken.test", 5, "10.0.0.1")
	s.SetRcode("broken.test", dns.RcodeServerFailure)
	_, _, err = r.Lookup(context.Background(), "broken.test", 80, false)
	require.ErrorAs(t, err, &re)
	require.Equal(t, dns.RcodeServerFailure, re.Rcode)
}

func TestLookupNextServerOnServfail(t *testing.T) {
	bad, good := dnstest.Start(t), dnstest.Start(t)
	bad.SetA("svc.test", 5, "10.0.0.9")
	bad.SetRcode("svc.test", dns.RcodeServerFailure)
	good.SetA("svc.test", 5, "10.0.0.1")
	r := NewResolver(config.Resolver{Nameservers: []string{bad.Addr, good.Addr}, Timeout: 2})
	nodes, _, err := r.Lookup(context.Background(), "svc.test", 80, false)
	require.NoError(t, err)
	require.Equal(t, []config.Node{{Host: "10.0.0.1", Port: 80, Weight: 1}}, nodes)
}

func TestResolverFromResolvConf(t *testing.T) {
	old := resolvConf
	t.Cleanup(func() { resolvConf = old })

	resolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(resolvConf, []byte("search example.org\nnameserver 192.0.2.53\nnameserver ::1\n"), 0o600))
	r := NewResolver(config.Resolver{Timeout: 1})
	require.Equal(t, []string{"192.0.2.53:53", "[::1]:53"}, r.Servers())

	resolvConf = filepath.Join(t.TempDir(), "missing")
	r = NewResolver(config.Resolver{Timeout: 1})
	_, _, err := r.Lookup(context.Background(), "svc.test", 80, false)
	require.ErrorContains(t, err, "no gateway.resolver.nameservers")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hosts(s *Set) []string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, n.Host)
	}
	return out
}

func TestWatcherFollowsRecordAndKeepsLastGoodSet(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("svc.test", 1, "10.0.0.1", "10.0.0.2")
	core, logs := observer.New(zap.InfoLevel)
	changed := make(chan *Watcher, 10)
	m := NewManager(zap.New(core), resolverFor(s), func(w *Watcher) { changed <- w })
	defer m.Close()

	want := Want{Upstream: "u1", Name: "svc.test", Port: 8080}
	ws := m.Sync([]Want{want})
	w := ws[want]
	// Sync returns after the first resolution.
	require.Equal(t, []string{"10.0.0.1", "10.0.0.2"}, hosts(w.Current()))
	require.Equal(t, w, <-changed)

	s.SetA("svc.test", 1, "10.0.0.3")
	waitFor(t, "the new record", func() bool { return len(hosts(w.Current())) == 1 && hosts(w.Current())[0] == "10.0.0.3" })
	require.Equal(t, w, <-changed)

	s.SetRcode("svc.test", dns.RcodeNameError)
	n := s.Queries("svc.test", dns.TypeA)
	waitFor(t, "a failed resolution", func() bool {
		return logs.FilterMessageSnippet("resolution failed").Len() > 0 && s.Queries("svc.test", dns.TypeA) > n
	})
	require.Equal(t, []string{"10.0.0.3"}, hosts(w.Current()), "NXDOMAIN keeps the last good set")
	entry := logs.FilterMessageSnippet("resolution failed").All()[0]
	require.Equal(t, "u1", entry.ContextMap()["upstream"])
	require.Contains(t, entry.ContextMap()["error"], "NXDOMAIN")
	require.Empty(t, changed)
}

func TestSyncKeepsStopsAndCloses(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("a.test", 300, "10.0.0.1")
	s.SetA("b.test", 300, "10.0.0.2")
	m := NewManager(nil, resolverFor(s), nil)
	a := Want{Upstream: "u1", Name: "a.test", Port: 80}
	b := Want{Upstream: "u2", Name: "b.test", Port: 80}
	ws1 := m.Sync([]Want{a, b})
	ws2 := m.Sync([]Want{a})
	require.Same(t, ws1[a], ws2[a], "an unchanged want keeps its watcher")
	require.Equal(t, 1, s.Queries("a.test", dns.TypeA), "and is not resolved again before its TTL")
	select {
	case <-ws1[b].done:
	default:
		t.Fatal("Sync returned before the removed watcher stopped")
	}
	m.Close()
	select {
	case <-ws1[a].done:
	default:
		t.Fatal("Close returned before the watchers stopped")
	}
	require.Nil(t, m.Sync([]Want{a}), "a closed manager starts nothing")
}

func TestCloseDuringFirstResolution(t *testing.T) {
	// A nameserver that never answers: the first resolution waits for the
	// timeout; Close must not wait for it.
	pc, err := netListenUDP()
	require.NoError(t, err)
	defer pc.Close()
	m := NewManager(nil, NewResolver(config.Resolver{Nameservers: []string{pc.LocalAddr().String()}, Timeout: 30}), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Sync([]Want{{Upstream: "u", Name: "slow.test", Port: 80}})
	}()
	waitFor(t, "the watcher to start", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.watchers) == 1
	})
	m.Close()
	<-done
}

func netListenUDP() (net.PacketConn, error) { return net.ListenPacket("udp", "127.0.0.1:0") }

func TestRefreshBoundedTTL(t *testing.T) {
	require.Equal(t, time.Second, refreshAfter(0), "TTL 0 is not a busy loop")
	require.Equal(t, 30*time.Second, refreshAfter(30*time.Second))
	require.Equal(t, 300*time.Second, refreshAfter(86400*time.Second))
}

// A reload that changes gateway.resolver moves the watchers to the new
// nameservers at their next resolution.
func TestSetResolverSwitchesServers(t *testing.T) {
	old, next := dnstest.Start(t), dnstest.Start(t)
	old.SetA("svc.test", 1, "10.0.0.1")
	next.SetA("svc.test", 1, "10.0.0.2")
	m := NewManager(nil, resolverFor(old), nil)
	defer m.Close()
	want := Want{Upstream: "u", Name: "svc.test", Port: 80}
	w := m.Sync([]Want{want})[want]
	require.Equal(t, []string{"10.0.0.1"}, hosts(w.Current()))
	m.SetResolver(resolverFor(next))
	waitFor(t, "the new nameserver's answer", func() bool { return hosts(w.Current())[0] == "10.0.0.2" })
}

// The same target at two SRV priorities is one node, at the preferred one.
func TestLookupSRVSameTargetTwice(t *testing.T) {
	s := dnstest.Start(t)
	s.SetSRV("_http._tcp.svc.test", 20,
		dnstest.SRV{Priority: 10, Port: 80, Target: "a.svc.test"},
		dnstest.SRV{Priority: 10, Port: 80, Target: "b.svc.test"},
		dnstest.SRV{Priority: 20, Port: 80, Target: "a.svc.test"},
	)
	s.SetA("a.svc.test", 5, "10.0.0.1")
	s.SetA("b.svc.test", 5, "10.0.0.2")
	nodes, _, err := resolverFor(s).Lookup(context.Background(), "_http._tcp.svc.test", 0, true)
	require.NoError(t, err)
	require.Equal(t, []config.Node{
		{Host: "10.0.0.1", Port: 80, Weight: 1, Priority: -10},
		{Host: "10.0.0.2", Port: 80, Weight: 1, Priority: -10},
	}, nodes)
}
