package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gateway/internal/testnet"
)

// target is what the load is pointed at: the backends directly, the
// gateway, or a peer proxy.
type target interface {
	name() string
	// start runs the target configured for sc and returns once it answers.
	start(ctx context.Context, b *bench, sc *scenario) error
	addr() string
	// pid is the root of the process tree whose CPU time and memory are
	// the proxy's; 0 when there is no proxy (direct).
	pid() int
	stop(b *bench)
}

// directTarget is the first backend without any proxy: the ceiling.
type directTarget struct{ backend string }

func (d *directTarget) name() string                                   { return "direct" }
func (d *directTarget) start(context.Context, *bench, *scenario) error { return nil }
func (d *directTarget) addr() string                                   { return d.backend }
func (d *directTarget) pid() int                                       { return 0 }
func (d *directTarget) stop(*bench)                                    {}

// gatewayTarget is the gateway binary built from this tree, or the
// baseline binary given with --baseline for an A/B comparison.
type gatewayTarget struct {
	label, bin      string
	listen, control string
	cfgPath         string
	accessLog       string
	backends        []string
	tls             *tlsFiles // TLS scenarios: the load goes to tls.listen
	c               *child
}

func (g *gatewayTarget) name() string { return g.label }
func (g *gatewayTarget) addr() string {
	if g.tls != nil {
		return g.tls.listen
	}
	return g.listen
}
func (g *gatewayTarget) pid() int {
	if g.c == nil {
		return 0
	}
	return g.c.pid()
}

func (g *gatewayTarget) start(ctx context.Context, b *bench, sc *scenario) error {
	ports, err := testnet.FreeAddrs(3)
	if err != nil {
		return err
	}
	g.listen, g.control = ports[0], ports[1]
	g.tls = nil
	if sc.TLS {
		g.tls = &tlsFiles{listen: ports[2], cert: b.tlsCert, key: b.tlsKey}
	}
	g.backends = b.backends
	g.cfgPath = b.path(g.label + "-" + sc.Name + ".yaml")
	g.accessLog = b.path(g.label + "-access-" + sc.Name + ".log")
	cfg := sc.gatewayConfig(g.listen, g.control, g.backends, g.accessLog, 0, g.tls)
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	logPath := b.path(g.label + "-" + sc.Name + ".log")
	logf, err := logFile(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := b.sup.pin.wrap(b.sup.pin.proxy, []string{g.bin, "-c", g.cfgPath})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), b.opts.gatewayEnv()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if g.c, err = b.sup.start(g.label, cmd); err != nil {
		return err
	}
	if err := waitReady(ctx, g.c, g.addr(), sc, 60*time.Second); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return nil
}

func (g *gatewayTarget) stop(b *bench) {
	b.sup.stop(g.c)
}

// reload writes config variant to the gateway's file and asks the gateway
// to reload it, returning how long the reload took.
func (g *gatewayTarget) reload(ctx context.Context, client *http.Client, sc *scenario, variant int) (time.Duration, error) {
	cfg := sc.gatewayConfig(g.listen, g.control, g.backends, g.accessLog, variant, g.tls)
	if err := writeFileAtomic(g.cfgPath, []byte(cfg)); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.control+"/v1/reload", nil)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("POST /v1/reload: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return d, nil
}

// accessLogSize is the size of the access log file so far.
func (g *gatewayTarget) accessLogSize() int64 {
	fi, err := os.Stat(g.accessLog)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitReady polls addr with the scenario's first request until it answers
// 200, the child exits, or timeout passes.
func waitReady(ctx context.Context, c *child, addr string, sc *scenario, timeout time.Duration) error {
	t := sc.templates()[0]
	scheme := "http://"
	client := &http.Client{Timeout: 2 * time.Second}
	if sc.TLS {
		scheme = "https://"
		// The bench's own self-signed certificate.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the bench's own certificate
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+addr+t.Path, nil)
	if err != nil {
		return err
	}
	for _, h := range t.Headers {
		req.Header.Set(h[0], h[1])
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if c != nil && c.exited() {
			return c.exitError()
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", t.Path, resp.Status)
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

// buildGateway builds cmd/gateway from the module the bench belongs to.
func buildGateway(ctx context.Context, dst string, log io.Writer) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the gateway module: run the bench from the repository")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dst, "./cmd/gateway")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/gateway: %w", err)
	}
	return nil
}
