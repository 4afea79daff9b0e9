package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"gateway/internal/testnet"
)

// redisPolicy is what the bench throttle policy adds in a Redis scenario.
func (sc *scenario) redisPolicy() string {
	if !sc.Redis {
		return ""
	}
	return ", throttle_strategy: cluster, redis_id: bench"
}

// startRedis runs one redis-server (no persistence) beside the backends,
// pinned with them, when a scenario counts in Redis (throttle-cluster).
func (b *bench) startRedis(scs []*scenario) error {
	need := false
	for _, sc := range scs {
		need = need || sc.Redis
	}
	if !need {
		return nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("throttle-cluster needs redis-server (apt-get install -y redis-server)")
	}
	addrs, err := testnet.FreeAddrs(1)
	if err != nil {
		return err
	}
	addr := addrs[0]
	argv := b.sup.pin.wrap(b.sup.pin.load, []string{bin, "--port", testnet.Port(addr), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", b.dir, "--protected-mode", "no"})
	logf, err := logFile(b.path("redis.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if _, err := b.sup.start("redis-server", cmd); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not listen on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, sc := range scs {
		if sc.Redis {
			sc.redisAddr = addr
		}
	}
	fmt.Fprintln(b.log, "bench: redis-server on", addr)
	return nil
}

// redisNotes adds, for a Redis scenario, the gateway's Redis round trips
// per request over its life (warm-up included) from its /metrics: the
// sum of gateway_redis_requests_total over gateway_http_requests_total.
func (b *bench) redisNotes(ctx context.Context, sc *scenario, started []target, res *scenarioResult) {
	if !sc.Redis {
		return
	}
	for _, t := range started {
		g, ok := t.(*gatewayTarget)
		if !ok {
			continue
		}
		trips, failed, reqs, err := redisRoundTrips(ctx, "http://"+g.control+metricsPath)
		note := g.label + ": "
		switch {
		case err != nil:
			note += "redis round trips per request: n/a (" + err.Error() + ")"
		case reqs == 0:
			note += "redis round trips per request: n/a (no requests)"
		default:
			note += fmt.Sprintf("redis round trips per request: %.3f (%.0f round trips of which %.0f failed, %.0f requests;"+
				" requests skip Redis for a second after a failure)", trips/reqs, trips, failed, reqs)
		}
		res.Notes = append(res.Notes, note)
	}
}

func redisRoundTrips(ctx context.Context, url string) (trips, failed, reqs float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		if i < 0 {
			continue
		}
		v, perr := strconv.ParseFloat(rest[i+1:], 64)
		if perr != nil {
			continue
		}
		switch name {
		case "gateway_redis_requests_total":
			trips += v
			if !strings.Contains(rest, `result="ok"`) {
				failed += v
			}
		case "gateway_http_requests_total":
			reqs += v
		}
	}
	return trips, failed, reqs, sc.Err()
}
