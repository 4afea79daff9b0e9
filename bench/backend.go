package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// childEnv names the mode a re-executed bench binary runs in: the backends
// and the built-in load generator are children of the bench so that
// taskset can place them on their own CPUs.
const (
	childEnv     = "BENCH_CHILD"
	childBackend = "backend"
	childLoad    = "load"
	backendsEnv  = "BENCH_BACKENDS"
	loadSpecEnv  = "BENCH_LOAD_SPEC"
	numBackends  = 2
)

// backendBody is the fixed 20-byte response of every backend.
var backendBody = []byte("hello from backend!\n")

// childMain runs the bench binary as one of its own children.
func childMain(mode string) int {
	var err error
	switch mode {
	case childBackend:
		err = backendMain()
	case childTCPBackend:
		err = tcpBackendMain()
	case childLoad:
		err = loadMain(os.Getenv(loadSpecEnv), os.Stdout)
	default:
		err = fmt.Errorf("unknown %s=%q", childEnv, mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// backendMain serves the backends: one fasthttp server per loopback
// listener, keep-alive, the same small body for every request. It prints
// "listen ADDR" per listener and then "ready", and serves until SIGTERM.
func backendMain() error {
	n, err := strconv.Atoi(os.Getenv(backendsEnv))
	if err != nil || n < 1 {
		n = numBackends
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &fasthttp.Server{
			Handler: func(ctx *fasthttp.RequestCtx) {
				ctx.SetContentType("text/plain")
				ctx.SetBody(backendBody)
			},
			Name:         "bench-backend",
			IdleTimeout:  5 * time.Minute,
			ReadTimeout:  5 * time.Minute,
			WriteTimeout: time.Minute,
		}
		go func() { errc <- srv.Serve(ln) }()
		fmt.Printf("listen %s\n", ln.Addr())
	}
	fmt.Println("ready")
	select {
	case <-sigc:
		return nil
	case err := <-errc:
		return err
	}
}

// startBackends starts the backend child on the load CPUs and returns the
// addresses it listens on.
func (b *bench) startBackends() ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := logFile(b.path("backends.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	argv := b.sup.pin.wrap(b.sup.pin.load, []string{self})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+childBackend, backendsEnv+"="+strconv.Itoa(numBackends))
	cmd.Stdout, cmd.Stderr = w, logf
	c, err := b.sup.start("backends", cmd)
	w.Close()
	if err != nil {
		return nil, err
	}
	b.backendChild = c
	var addrs []string
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		line := lines.Text()
		if a, ok := strings.CutPrefix(line, "listen "); ok {
			addrs = append(addrs, a)
		}
		if line == "ready" {
			return addrs, nil
		}
	}
	if err := lines.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	<-c.done
	return nil, fmt.Errorf("%w (see %s)", c.exitError(), b.path("backends.log"))
}
