// Package testredis starts a real redis-server on a free loopback port for
// tests, and stops it when the test ends.
package testredis

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/internal/testnet"
)

// Server is one redis-server process.
type Server struct {
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
	args []string
}

// Start runs redis-server without persistence on a free loopback port and
// waits until it accepts connections. The test is skipped when the
// redis-server binary is not installed (CI installs it: .ci/run).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (apt-get install -y redis-server); skipping the test that needs a real Redis")
	}
	addr := testnet.FreeAddr(t)
	port := testnet.Port(addr)
	s := &Server{Addr: addr, t: t, args: append([]string{
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--protected-mode", "no",
	}, extra...)}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Restart starts the server again after Kill, on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	require.NoError(s.t, s.cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		require.True(s.t, time.Now().Before(deadline), "redis-server did not listen on %s: %v", s.Addr, err)
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// Port returns the server's port as a number.
func (s *Server) Port() int {
	n, _ := strconv.Atoi(testnet.Port(s.Addr))
	return n
}

// StartCluster runs a Redis Cluster of n masters (no replicas) on free
// loopback ports, each with its cluster bus on another free port, and
// waits until the cluster serves every slot. It returns the nodes'
// addresses. Skipped like Start when redis-server or redis-cli is absent.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not installed (apt-get install -y redis-server); skipping the Redis Cluster test")
	}
	addrs := make([]string, n)
	for i := range n {
		bus := testnet.Port(testnet.FreeAddr(t))
		s := Start(t, "--cluster-enabled", "yes", "--cluster-port", bus,
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		addrs[i] = s.Addr
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		for {
			info, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(info), "cluster_state:ok") {
				break
			}
			require.True(t, time.Now().Before(deadline), "cluster not ok on %s: %s", a, info)
			time.Sleep(50 * time.Millisecond)
		}
	}
	return addrs
}

// StartTLS runs redis-server serving only TLS on a free loopback port with
// the certificate and key in certPEM/keyPEM; with clientCAPEM, clients
// must present a certificate that CA issued.
func StartTLS(t testing.TB, certPEM, keyPEM, clientCAPEM []byte) *Server {
	t.Helper()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	require.NoError(t, os.WriteFile(cert, certPEM, 0o600))
	require.NoError(t, os.WriteFile(key, keyPEM, 0o600))
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (apt-get install -y redis-server); skipping the test that needs a real Redis")
	}
	addr := testnet.FreeAddr(t)
	ca, auth := cert, "no"
	if clientCAPEM != nil {
		ca, auth = filepath.Join(dir, "client-ca.crt"), "yes"
		require.NoError(t, os.WriteFile(ca, clientCAPEM, 0o600))
	}
	s := &Server{Addr: addr, t: t, args: []string{
		"--port", "0", "--tls-port", testnet.Port(addr), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no", "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", auth,
	}}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}
