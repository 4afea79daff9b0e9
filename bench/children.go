package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is a process the bench started. Every child runs in its own process
// group, so that stopping it also stops what it forked (nginx's workers),
// and the supervisor stops all of them when the bench exits, Ctrl-C
// included.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // Wait's result, valid once done is closed
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// supervisor owns the children and the CPU placement.
type supervisor struct {
	pin pinning

	mu       sync.Mutex
	children []*child
}

// pinning says where processes run: the proxy under test alone on one CPU,
// the load generator and the backends on the others, so that the proxy's
// CPU time is what the figures measure.
type pinning struct {
	on    bool
	proxy []int
	load  []int
	// shared: the proxy has every CPU (--cores >= CPUs) and the load
	// generator and backends run on the same ones.
	shared bool
}

// wrap prefixes argv with taskset when pinning is on. taskset execs the
// command, so the pid the bench sees is the pinned process's own.
func (p pinning) wrap(cpus []int, argv []string) []string {
	if !p.on || len(cpus) == 0 {
		return argv
	}
	return append([]string{"taskset", "-c", cpuList(cpus)}, argv...)
}

// start starts cmd as a supervised child. The caller has set up its
// arguments, environment and output.
func (s *supervisor) start(name string, cmd *exec.Cmd) (*child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the bench dies without cleaning up (SIGKILL), its children
		// die with it rather than holding ports and CPUs.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	return c, nil
}

// stop ends c and the processes it started: SIGTERM to its group, then
// SIGKILL if it has not exited within a few seconds.
func (s *supervisor) stop(c *child) {
	if c == nil {
		return
	}
	if !c.exited() {
		_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	// Forked processes may outlive their parent (an nginx worker whose
	// master exited); the group kill reaches them too.
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.done
	s.mu.Lock()
	for i, x := range s.children {
		if x == c {
			s.children = append(s.children[:i], s.children[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
}

// stopAll stops every child still running, all at once.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	cs := append([]*child(nil), s.children...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { s.stop(c) })
	}
	wg.Wait()
}

// exitError describes how a child ended, for error messages.
func (c *child) exitError() error {
	if !c.exited() {
		return nil
	}
	if c.err == nil {
		return fmt.Errorf("%s exited", c.name)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return fmt.Errorf("%s exited: %v", c.name, ee)
	}
	return fmt.Errorf("%s: %w", c.name, c.err)
}

// logFile creates the file a child's output goes to.
func logFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
}
