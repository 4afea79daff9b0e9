package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"gateway/internal/testnet"
)

// The tcp scenario (README "Load test"): TCP stream proxying. The backend
// is a TCP echo server; the proxies (the gateway's stream route, nginx
// stream {}, haproxy mode tcp) forward one listener to it. Each turn runs
// two loads, each measured against the proxy's CPU time:
//
//   - throughput: --connections/8 (at least 1) connections, each writing
//     64 KiB chunks as fast as it can while reading the echo; the figure is
//     the echoed MiB per second and per proxy CPU-second (each MiB crossed
//     the proxy twice, once each way);
//   - connect: --connections workers, each connecting, writing 16 bytes,
//     reading them back and closing, in a loop: connections per second and
//     per proxy CPU-second.

const (
	childTCPBackend = "tcpbackend"
	tcpChunk        = 64 << 10
	tcpPing         = "0123456789abcdef"
)

// tcpBackendMain is the echo backend: it prints "listen ADDR" and "ready"
// and echoes every connection until SIGTERM.
func tcpBackendMain() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listen %s\nready\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// startTCPBackend starts the echo backend on the load CPUs.
func (b *bench) startTCPBackend() (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	argv := b.sup.pin.wrap(b.sup.pin.load, []string{self})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+childTCPBackend)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	c, err := b.sup.start("tcp backend", cmd)
	w.Close()
	if err != nil {
		return nil, "", err
	}
	addr := ""
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listen "); ok {
			addr = a
		}
		if lines.Text() == "ready" {
			return c, addr, nil
		}
	}
	b.sup.stop(c)
	return nil, "", errors.New("tcp backend did not start")
}

// tcpLoadMain is the load generator of the tcp scenario (loadMain with
// spec.TCP set): Requests counts echoed bytes (throughput) or completed
// connections (connect).
func tcpLoadMain(spec *loadSpec, out io.Writer) error {
	var n, errs atomic.Int64
	var wg sync.WaitGroup
	fmt.Fprintln(out, "start")
	start := time.Now()
	deadline := start.Add(spec.Duration)
	switch spec.TCP {
	case "throughput":
		for range spec.Connections {
			c, err := net.DialTimeout("tcp", spec.Addr, 5*time.Second)
			if err != nil {
				errs.Add(1)
				continue
			}
			_ = c.SetDeadline(deadline.Add(10 * time.Second))
			wg.Go(func() {
				buf := make([]byte, tcpChunk)
				for time.Now().Before(deadline) {
					if _, err := c.Write(buf); err != nil {
						errs.Add(1)
						break
					}
				}
				_ = c.(*net.TCPConn).CloseWrite()
			})
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, tcpChunk)
				for {
					k, err := c.Read(buf)
					if time.Now().Before(deadline) {
						n.Add(int64(k))
					}
					if err != nil {
						if !errors.Is(err, io.EOF) && time.Now().Before(deadline) {
							errs.Add(1)
						}
						return
					}
				}
			})
		}
	case "connect":
		for range spec.Connections {
			wg.Go(func() {
				buf := make([]byte, len(tcpPing))
				for time.Now().Before(deadline) {
					c, err := net.DialTimeout("tcp", spec.Addr, 5*time.Second)
					if err != nil {
						errs.Add(1)
						time.Sleep(time.Millisecond)
						continue
					}
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					_, err = io.WriteString(c, tcpPing)
					if err == nil {
						_, err = io.ReadFull(c, buf)
					}
					c.Close()
					if err != nil {
						errs.Add(1)
						continue
					}
					n.Add(1)
				}
			})
		}
	default:
		return fmt.Errorf("unknown tcp load %q", spec.TCP)
	}
	time.Sleep(time.Until(deadline))
	elapsed := time.Since(start)
	fmt.Fprintln(out, "stop")
	wg.Wait()
	return json.NewEncoder(out).Encode(loadResult{Requests: n.Load(), Seconds: elapsed.Seconds(), SocketErrors: errs.Load()})
}

// tcpTarget is the echo backend directly, the gateway or a peer, each
// forwarding one TCP listener to the echo backend.
// Only start differs from a peerTarget's.
type tcpTarget struct {
	peerTarget
	backend string
}

func (t *tcpTarget) start(ctx context.Context, b *bench, sc *scenario) error {
	if t.kind == "direct" {
		t.listen = t.backend
		return nil
	}
	ports, err := testnet.FreeAddrs(3)
	if err != nil {
		return err
	}
	t.listen = ports[0]
	dir := b.path(t.kind + "-" + sc.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var argv, env []string
	switch t.kind {
	case "gateway":
		argv, err = writeGatewayTCP(dir, t.bin, ports, t.backend)
		env = b.opts.gatewayEnv()
	case "nginx":
		argv, err = writeNginxTCP(dir, t.bin, t.listen, t.backend)
	case "haproxy":
		argv, err = writeHAProxyTCP(dir, t.bin, t.listen, t.backend)
	default:
		err = fmt.Errorf("no tcp config for %q", t.kind)
	}
	if err != nil {
		return err
	}
	var logPath string
	if t.c, logPath, err = b.startProxy(t.kind, dir, argv, env); err != nil {
		return err
	}
	if err := waitEcho(ctx, t.c, t.listen, 30*time.Second); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return nil
}

// waitEcho waits until a ping through addr comes back.
func waitEcho(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if c.exited() {
			return c.exitError()
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, len(tcpPing))
			if _, err = io.WriteString(conn, tcpPing); err == nil {
				_, err = io.ReadFull(conn, buf)
			}
			conn.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s: %v", c.name, timeout, last)
}

func writeGatewayTCP(dir, bin string, ports []string, backend string) ([]string, error) {
	host, port, _ := net.SplitHostPort(backend)
	cfg := fmt.Sprintf(`gateway:
  listen: %s
  control_listen: %s
  log_level: warn
  access_log: {enabled: false}
  stream_listen: [%q]
stream_routes:
  - {id: echo, upstream: {nodes: [{host: %s, port: %s}]}}
`, ports[1], ports[2], ports[0], host, port)
	conf := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return []string{bin, "-c", conf}, nil
}

// nginxStreamModule is where Debian's libnginx-mod-stream puts the module.
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

func writeNginxTCP(dir, bin, listen, backend string) ([]string, error) {
	var b strings.Builder
	if os.Geteuid() == 0 {
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&b, "user %s;\n", u.Username)
		}
	}
	if _, err := os.Stat(nginxStreamModule); err == nil {
		fmt.Fprintf(&b, "load_module %s;\n", nginxStreamModule)
	}
	fmt.Fprintf(&b, `worker_processes 1;
daemon off;
master_process on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
stream {
  upstream echo { server %[3]s; }
  server { listen %[2]s; proxy_pass echo; proxy_timeout 600s; }
}
`, dir, listen, backend)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	return []string{bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}, nil
}

func writeHAProxyTCP(dir, bin, listen, backend string) ([]string, error) {
	cfg := fmt.Sprintf(`global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend fe
  bind %s
  default_backend be
backend be
  server echo %s
`, listen, backend)
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return []string{bin, "-db", "-f", conf}, nil
}

// tcpResult is one target's figures in the tcp scenario.
type tcpResult struct {
	Name           string  `json:"name"`
	Bytes          int64   `json:"echoed_bytes"`
	MiBPerSec      float64 `json:"mib_per_sec"`
	MiBPerCPUSec   float64 `json:"mib_per_cpu_sec,omitempty"`
	Conns          int64   `json:"connections"`
	ConnsPerSec    float64 `json:"conns_per_sec"`
	ConnsPerCPUSec float64 `json:"conns_per_cpu_sec,omitempty"`
	Errors         int64   `json:"errors"`

	tputSecs, tputCPU, connSecs, connCPU float64
}

// runTCP measures the tcp scenario: every target, both loads, in
// alternating rounds as the HTTP scenarios do.
func (b *bench) runTCP(ctx context.Context, sc *scenario) (*scenarioResult, error) {
	res := &scenarioResult{Name: sc.Name}
	fmt.Fprintf(b.log, "bench: scenario %s\n", sc.Name)
	bc, backend, err := b.startTCPBackend()
	if err != nil {
		return nil, err
	}
	defer b.sup.stop(bc)
	targets := []*tcpTarget{{peerTarget: peerTarget{kind: "direct"}, backend: backend},
		{peerTarget: peerTarget{kind: "gateway", bin: b.gatewayBin}, backend: backend}}
	for _, p := range b.opts.Peers {
		if p == "caddy" {
			res.skip(b.log, p, "caddy has no TCP proxy without a plugin")
			continue
		}
		bin, err := exec.LookPath(p)
		if err != nil {
			res.skip(b.log, p, "not installed (apt-get install nginx-light libnginx-mod-stream haproxy)")
			continue
		}
		targets = append(targets, &tcpTarget{peerTarget: peerTarget{kind: p, bin: bin}, backend: backend})
	}
	var started []*tcpTarget
	defer func() {
		for _, t := range started {
			t.stop(b)
		}
	}()
	for _, t := range targets {
		if err := t.start(ctx, b, sc); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			t.stop(b)
			if t.kind == "gateway" {
				return nil, err
			}
			res.skip(b.log, t.kind, "did not start: "+err.Error())
			continue
		}
		started = append(started, t)
		res.TCP = append(res.TCP, &tcpResult{Name: t.kind})
	}
	conns := max(1, b.opts.Connections/8)
	for round := 1; round <= b.opts.Rounds; round++ {
		for k := range started {
			i := k
			if round%2 == 0 {
				i = len(started) - 1 - k
			}
			t, r := started[i], res.TCP[i]
			for _, mode := range []string{"throughput", "connect"} {
				n := conns
				if mode == "connect" {
					n = b.opts.Connections
				}
				spec := &loadSpec{Addr: t.addr(), Connections: n, Duration: b.opts.Duration, TCP: mode}
				var cpu0, cpu1 time.Duration
				win := window{
					start: func() { cpu0, _ = treeCPU(t.pid()) },
					stop:  func() { cpu1, _ = treeCPU(t.pid()) },
				}
				if t.pid() == 0 {
					win = window{start: func() {}, stop: func() {}}
				}
				lr, err := builtinGenerator{}.run(ctx, b, spec, win)
				if err != nil {
					return nil, fmt.Errorf("%s %s round %d: %w", t.kind, mode, round, err)
				}
				cpu := (cpu1 - cpu0).Seconds()
				r.Errors += lr.SocketErrors
				if mode == "throughput" {
					r.Bytes += lr.Requests
					r.tputSecs += lr.Seconds
					r.tputCPU += cpu
				} else {
					r.Conns += lr.Requests
					r.connSecs += lr.Seconds
					r.connCPU += cpu
				}
				fmt.Fprintf(b.log, "  round %d/%d %-8s %-10s %12.0f %s/s  cpu %.2fs  errors %d\n", round, b.opts.Rounds, t.kind, mode,
					map[bool]float64{true: float64(lr.Requests) / (1 << 20), false: float64(lr.Requests)}[mode == "throughput"]/lr.Seconds,
					map[bool]string{true: "MiB", false: "conn"}[mode == "throughput"], cpu, lr.SocketErrors)
			}
		}
	}
	for _, r := range res.TCP {
		mib := float64(r.Bytes) / (1 << 20)
		if r.tputSecs > 0 {
			r.MiBPerSec = mib / r.tputSecs
		}
		if r.connSecs > 0 {
			r.ConnsPerSec = float64(r.Conns) / r.connSecs
		}
		if r.tputCPU > 0 {
			r.MiBPerCPUSec = mib / r.tputCPU
		}
		if r.connCPU > 0 {
			r.ConnsPerCPUSec = float64(r.Conns) / r.connCPU
		}
	}
	res.Notes = append(res.Notes, fmt.Sprintf("throughput: %d connections echoing 64 KiB writes (each MiB crosses the proxy both ways); connect: %d workers, connect + 16-byte echo + close", conns, b.opts.Connections))
	return res, nil
}

// printTCP writes the tcp scenario's table.
func (s *scenarioResult) printTCP(w io.Writer) {
	fmt.Fprintf(w, "\nscenario %s\n", s.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tMiB/s\tMiB/CPU-s\tvs-nginx\tvs-haproxy\tconn/s\tconn/CPU-s\tvs-nginx\tvs-haproxy\terrors\t")
	var nginx, haproxy *tcpResult
	for _, r := range s.TCP {
		switch r.Name {
		case "nginx":
			nginx = r
		case "haproxy":
			haproxy = r
		}
	}
	vs := func(a, b float64) string {
		if a == 0 || b == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	per := func(v float64) string {
		if v == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f", v)
	}
	for _, r := range s.TCP {
		var nm, hm, nc, hc string
		if nginx != nil {
			nm, nc = vs(r.MiBPerCPUSec, nginx.MiBPerCPUSec), vs(r.ConnsPerCPUSec, nginx.ConnsPerCPUSec)
		}
		if haproxy != nil {
			hm, hc = vs(r.MiBPerCPUSec, haproxy.MiBPerCPUSec), vs(r.ConnsPerCPUSec, haproxy.ConnsPerCPUSec)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%d\t\n", r.Name, r.MiBPerSec, per(r.MiBPerCPUSec), nm, hm,
			r.ConnsPerSec, per(r.ConnsPerCPUSec), nc, hc, r.Errors)
	}
	tw.Flush()
	for name, why := range s.Skipped {
		fmt.Fprintf(w, "  %s: skipped: %s\n", name, why)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
