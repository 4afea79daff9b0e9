package redisstore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testcert"
	"gateway/internal/testredis"
)

func entry1(addr string) *config.Redis {
	return &config.Redis{ID: "r1", Addrs: []string{addr}, TimeoutMS: 5000}
}

func newTestClient(t *testing.T, addr string) (*Client, *Metrics) {
	met := NewMetrics(prometheus.NewRegistry())
	cs := NewClients(met, nil)
	t.Cleanup(cs.Close)
	return cs.Get(entry1(addr)), met
}

// 30 concurrent callers, 300 requests, limit 100 in a window far longer
// than the test: exactly 100 admitted, and remaining counts down.
func TestAdmitFixedExact(t *testing.T) {
	srv := testredis.Start(t)
	c, met := newTestClient(t, srv.Addr)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				res, err := c.Admit(time.Now(), []string{"{t}:api"}, []int64{100}, time.Hour, false)
				if !assertNoErr(t, err) {
					return
				}
				if res.OK {
					admitted.Add(1)
					require.GreaterOrEqual(t, res.Remaining, int64(0))
				} else {
					refused.Add(1)
					require.Equal(t, int64(0), res.Remaining)
					require.Equal(t, int64(100), res.Limit)
					require.Positive(t, res.Reset)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(100), admitted.Load())
	require.Equal(t, int64(200), refused.Load())
	require.Equal(t, 300.0, testutil.ToFloat64(met.Requests.WithLabelValues("r1", "ok")), "one round trip per request")
}

func assertNoErr(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("admit: %v", err)
		return false
	}
	return true
}

// All counters or none: a request refused by its second counter does not
// count in the first.
func TestAdmitAllOrNone(t *testing.T) {
	srv := testredis.Start(t)
	c, _ := newTestClient(t, srv.Addr)
	keys := []string{"{t}:api", "{t}:user"}
	for i := range 2 {
		res, err := c.Admit(time.Now(), keys, []int64{5, 2}, time.Hour, false)
		require.NoError(t, err)
		require.True(t, res.OK)
		require.Equal(t, 1, res.Index, "the user counter is the most constrained")
		require.Equal(t, int64(1-i), res.Remaining)
	}
	for range 3 {
		res, err := c.Admit(time.Now(), keys, []int64{5, 2}, time.Hour, false)
		require.NoError(t, err)
		require.False(t, res.OK)
		require.Equal(t, 1, res.Index)
	}
	// The api counter holds the 2 admitted requests only.
	res, err := c.Admit(time.Now(), keys[:1], []int64{5}, time.Hour, false)
	require.NoError(t, err)
	require.True(t, res.OK)
	require.Equal(t, int64(2), res.Remaining, "5 - 2 admitted - this one")

	// A limit of 0 or less admits nothing.
	res, err = c.Admit(time.Now(), []string{"{t}:zero"}, []int64{-1}, time.Hour, false)
	require.NoError(t, err)
	require.False(t, res.OK)
	require.Equal(t, int64(0), res.Limit)

	// Keys expire after two windows.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ttl, err := rdb.PTTL(context.Background(), "{t}:api").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Hour)
	require.LessOrEqual(t, ttl, 2*time.Hour)
}

// Sliding, within one window and with an empty previous one: exact, as the
// fixed window.
func TestAdmitSlidingExactInOneWindow(t *testing.T) {
	srv := testredis.Start(t)
	c, _ := newTestClient(t, srv.Addr)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				res, err := c.Admit(time.Now(), []string{"{s}:api"}, []int64{100}, 24*time.Hour, true)
				if assertNoErr(t, err) && res.OK {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(100), admitted.Load())
}

// Sliding: the previous window's count weighs by the share of it still
// inside the sliding window, rounded up, as the local counter does; the
// admissions are bounded by the estimate read on the server's clock
// before and after.
func TestAdmitSlidingWeighsPreviousWindow(t *testing.T) {
	srv := testredis.Start(t)
	c, _ := newTestClient(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	const day = int64(24 * time.Hour / time.Millisecond)
	serverMS := func() int64 {
		tm, err := rdb.Time(ctx).Result()
		require.NoError(t, err)
		return tm.UnixMilli()
	}
	share := func(ms int64) int64 { // ceil(100 * remaining fraction of the window)
		rem := day - ms%day
		return (100*rem + day - 1) / day
	}
	t0 := serverMS()
	require.NoError(t, rdb.HSet(ctx, "{p}:api", "w", t0/day-1, "c", 100, "p", 0).Err())
	n := 0
	for range 120 {
		res, err := c.Admit(time.Now(), []string{"{p}:api"}, []int64{100}, 24*time.Hour, true)
		require.NoError(t, err)
		if res.OK {
			n++
		}
	}
	t1 := serverMS()
	require.Equal(t, t0/day, t1/day, "the test crossed midnight UTC; run it again")
	require.GreaterOrEqual(t, int64(n), 100-share(t0))
	require.LessOrEqual(t, int64(n), 100-share(t1))
}

// After SCRIPT FLUSH (or a restart), EVALSHA answers NOSCRIPT and the
// script is loaded again.
func TestAdmitReloadsScript(t *testing.T) {
	srv := testredis.Start(t)
	c, _ := newTestClient(t, srv.Addr)
	_, err := c.Admit(time.Now(), []string{"{n}:api"}, []int64{10}, time.Hour, false)
	require.NoError(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	require.NoError(t, rdb.ScriptFlush(context.Background()).Err())
	res, err := c.Admit(time.Now(), []string{"{n}:api"}, []int64{10}, time.Hour, false)
	require.NoError(t, err)
	require.Equal(t, int64(8), res.Remaining)
}

// A dead server fails the round trip; the next requests skip Redis until
// the probe interval has passed, and once it is back counting resumes.
func TestAdmitDownAndBack(t *testing.T) {
	srv := testredis.Start(t)
	c, met := newTestClient(t, srv.Addr)
	_, err := c.Admit(time.Now(), []string{"{d}:api"}, []int64{10}, time.Hour, false)
	require.NoError(t, err)
	srv.Kill()
	_, err = c.Admit(time.Now(), []string{"{d}:api"}, []int64{10}, time.Hour, false)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrDown)
	_, err = c.Admit(time.Now(), []string{"{d}:api"}, []int64{10}, time.Hour, false)
	require.ErrorIs(t, err, ErrDown, "no round trip before the probe")
	require.Equal(t, 1.0, testutil.ToFloat64(met.Requests.WithLabelValues("r1", "error")))

	srv.Restart()
	require.Eventually(t, func() bool {
		_, err := c.Admit(time.Now(), []string{"{d}:api"}, []int64{10}, time.Hour, false)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// Clients keeps a client across reloads while its entry is unchanged, and
// replaces it when a setting changes.
func TestClientsKeptAcrossReloads(t *testing.T) {
	cs := NewClients(NewMetrics(nil), nil)
	defer cs.Close()
	r := entry1("127.0.0.1:1")
	st := cs.Stage()
	a := st.Get(r)
	st.Commit()
	cs.Sweep()

	st = cs.Stage()
	require.Same(t, a, st.Get(entry1("127.0.0.1:1")))
	st.Commit()
	cs.Sweep()

	st = cs.Stage()
	b := st.Get(entry1("127.0.0.1:2"))
	require.NotSame(t, a, b)
	st.Commit()
	cs.Sweep()
	cs.mu.Lock()
	require.Len(t, cs.m, 1)
	cs.mu.Unlock()
}

// A 3-node Redis Cluster: the script runs on the node of its keys' slot
// (hash-tagged keys share one), loads itself on each node it meets, and
// stays exact; counters with different tags land on different nodes.
func TestAdmitOnRedisCluster(t *testing.T) {
	addrs := testredis.StartCluster(t, 3)
	met := NewMetrics(prometheus.NewRegistry())
	cs := NewClients(met, nil)
	defer cs.Close()
	c := cs.Get(&config.Redis{ID: "r1", Addrs: addrs[:1], Cluster: true, TimeoutMS: 2000})
	var wg sync.WaitGroup
	var admitted [8]atomic.Int64
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := strconv.Itoa(g % 8)
			keys := []string{"{" + tag + "}:api", "{" + tag + "}:ip"}
			for range 10 {
				res, err := c.Admit(time.Now(), keys, []int64{1000, 20}, time.Hour, false)
				if assertNoErr(t, err) && res.OK {
					admitted[g%8].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for i := range admitted {
		require.Equal(t, int64(20), admitted[i].Load(), "tag %d", i)
	}
	// The tags spread over more than one node.
	nodes := map[string]bool{}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	for i := range 8 {
		key := "{" + strconv.Itoa(i) + "}:api"
		slot, err := cc.ClusterKeySlot(context.Background(), key).Result()
		require.NoError(t, err)
		shards, err := cc.ClusterShards(context.Background()).Result()
		require.NoError(t, err)
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if slot >= r.Start && slot <= r.End {
					nodes[sh.Nodes[0].ID] = true
				}
			}
		}
	}
	require.Greater(t, len(nodes), 1)
}

// TLS to Redis: verified against the entry's CA; a client that does not
// trust the server's certificate fails instead of counting in the clear.
func TestAdmitOverTLS(t *testing.T) {
	ca := testcert.NewCA("redis-ca")
	srvPair := testcert.Issue(ca, testcert.Options{}, "redis.test", "127.0.0.1")
	srv := testredis.StartTLS(t, srvPair.CertPEM, srvPair.KeyPEM, nil)
	cs := NewClients(NewMetrics(nil), nil)
	defer cs.Close()

	good := cs.Get(&config.Redis{ID: "tls", Addrs: []string{srv.Addr}, TimeoutMS: 2000,
		TLS: &config.RedisTLS{Verify: true, ServerName: "redis.test", CAPEM: ca.CertPEM}})
	res, err := good.Admit(time.Now(), []string{"{tls}:api"}, []int64{3}, time.Hour, false)
	require.NoError(t, err)
	require.True(t, res.OK)
	require.Equal(t, int64(2), res.Remaining)

	untrusted := cs.Get(&config.Redis{ID: "untrusted", Addrs: []string{srv.Addr}, TimeoutMS: 2000,
		TLS: &config.RedisTLS{Verify: true, ServerName: "redis.test"}})
	_, err = untrusted.Admit(time.Now(), []string{"{tls}:api"}, []int64{3}, time.Hour, false)
	require.ErrorContains(t, err, "certificate")

	plain := cs.Get(&config.Redis{ID: "plain", Addrs: []string{srv.Addr}, TimeoutMS: 2000})
	_, err = plain.Admit(time.Now(), []string{"{tls}:api"}, []int64{3}, time.Hour, false)
	require.Error(t, err, "a TLS-only server refuses plain TCP")
}

// A server slower than timeout_ms fails the round trip as a timeout.
func TestAdmitTimeout(t *testing.T) {
	srv := testredis.Start(t, "--enable-debug-command", "yes")
	met := NewMetrics(prometheus.NewRegistry())
	cs := NewClients(met, nil)
	defer cs.Close()
	c := cs.Get(&config.Redis{ID: "slow", Addrs: []string{srv.Addr}, TimeoutMS: 100})
	_, err := c.Admit(time.Now(), []string{"{t}:api"}, []int64{10}, time.Hour, false)
	require.NoError(t, err)

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	sleeping := make(chan error, 1)
	go func() { sleeping <- rdb.Do(context.Background(), "DEBUG", "SLEEP", "2").Err() }()
	// Wait until the server is busy: a PING from a third connection no
	// longer answers within the client's timeout.
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer probe.Close()
	require.Eventually(t, func() bool { return probe.Ping(context.Background()).Err() != nil }, 5*time.Second, 10*time.Millisecond)

	_, err = c.Admit(time.Now(), []string{"{t}:api"}, []int64{10}, time.Hour, false)
	require.Error(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(met.Requests.WithLabelValues("slow", "timeout")))
	require.NoError(t, <-sleeping)
}

// AdmitN takes as many permits as every counter has left, at most N.
func TestAdmitNTakesWhatIsLeft(t *testing.T) {
	srv := testredis.Start(t)
	c, _ := newTestClient(t, srv.Addr)
	keys := []string{"{b}:api", "{b}:ip"}
	for _, want := range []int64{5, 5, 2} {
		res, err := c.AdmitN(time.Now(), keys, []int64{100, 12}, time.Hour, false, 5)
		require.NoError(t, err)
		require.True(t, res.OK)
		require.Equal(t, want, res.Taken)
	}
	res, err := c.AdmitN(time.Now(), keys, []int64{100, 12}, time.Hour, false, 5)
	require.NoError(t, err)
	require.False(t, res.OK)
	require.Zero(t, res.Taken)
	res, err = c.Admit(time.Now(), keys[:1], []int64{100}, time.Hour, false)
	require.NoError(t, err)
	require.Equal(t, int64(100-12-1), res.Remaining, "both counters took the same 12")
}

// A Redis that asks for client certificates admits a client with one its
// CA issued, and refuses one without.
func TestAdmitOverTLSWithClientCertificate(t *testing.T) {
	ca := testcert.NewCA("redis-ca")
	srvPair := testcert.Issue(ca, testcert.Options{}, "redis.test")
	clientCA := testcert.NewCA("gateways")
	client := testcert.Issue(clientCA, testcert.Options{Client: true, CN: "gateway"})
	srv := testredis.StartTLS(t, srvPair.CertPEM, srvPair.KeyPEM, clientCA.CertPEM)
	cs := NewClients(NewMetrics(nil), nil)
	defer cs.Close()
	base := config.RedisTLS{Verify: true, ServerName: "redis.test", CAPEM: ca.CertPEM}

	withCert := base
	withCert.ClientCert, withCert.ClientKey = string(client.CertPEM), string(client.KeyPEM)
	c := cs.Get(&config.Redis{ID: "mtls", Addrs: []string{srv.Addr}, TimeoutMS: 5000, TLS: &withCert})
	res, err := c.Admit(time.Now(), []string{"{m}:api"}, []int64{3}, time.Hour, false)
	require.NoError(t, err)
	require.True(t, res.OK)

	without := base
	c = cs.Get(&config.Redis{ID: "nocert", Addrs: []string{srv.Addr}, TimeoutMS: 5000, TLS: &without})
	_, err = c.Admit(time.Now(), []string{"{m}:api"}, []int64{3}, time.Hour, false)
	require.Error(t, err)
}
