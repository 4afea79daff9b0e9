// Package testnet holds what tests of several packages share to put real
// traffic on loopback: loopback listeners, free and dead addresses, a
// fasthttp server run for the length of a test (listen.go), a raw-socket
// node that records every byte it receives and misbehaves on command, and
// a raw-socket client (raw.go).
package testnet

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// RawBackend is a node written on raw sockets: it records every byte it
// receives and every request it could parse, and misbehaves on command.
// The command is the request's X-Act header (or the backend's default):
//
//	ok         200, body "id=<X-Id>", X-Id echoed
//	extra      ok, then bytes of a second, unasked-for response on the same write
//	extra-late ok, then the unasked-for response 50 ms later
//	body       ok with a body even to HEAD, and on 204/304 (with X-Status)
//	readclose  read the whole request, then close without answering
//	close-after ok, then close (without saying Connection: close)
//	drip       ok, body "id=<X-Id>" one byte every X-Drip-Ms (default 100) ms
//	stall      header, then nothing: the body never comes
//	reset      header with Content-Length 100, 10 bytes, then a TCP reset
//	bigheader  ok with a header of X-Header-Size bytes
//	chunked    ok, with the body in two chunks
//	badheader  a response head that does not parse, after a Set-Cookie
//	upgrade    101 Switching Protocols
type RawBackend struct {
	t    testing.TB
	ln   net.Listener
	Addr string
	act  string // default command

	mu       sync.Mutex
	conns    int
	raw      map[int]*bytes.Buffer // every byte received, per connection
	requests []RawRequest
	wg       sync.WaitGroup
	open     map[net.Conn]struct{}
	done     chan struct{} // closed on cleanup: ends every sleep

	lateExtras atomic.Int64 // extra-late injections written
}

// sleep waits d, or less when the backend is closing; false if closing.
func (b *RawBackend) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-b.done:
		return false
	}
}

// RawRequest is one request as the backend parsed it.
type RawRequest struct {
	Conn     int
	Method   string
	Path     string
	ID       string
	Header   map[string]string // lower-case names, last value
	Body     []byte
	Complete bool // the framing reached its end (Content-Length bytes or the last chunk)
}

// StartRawBackend starts a raw node on a loopback port whose default
// command is act; it stops when the test ends.
func StartRawBackend(t testing.TB, act string) *RawBackend {
	t.Helper()
	ln := Listen(t)
	b := &RawBackend{t: t, ln: ln, Addr: ln.Addr().String(), act: act, raw: map[int]*bytes.Buffer{}, open: map[net.Conn]struct{}{}, done: make(chan struct{})}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

// Port returns the node's port, as text.
func (b *RawBackend) Port() string { return Port(b.Addr) }

func (b *RawBackend) close() {
	close(b.done)
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.open {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *RawBackend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns++
		id := b.conns
		buf := &bytes.Buffer{}
		b.raw[id] = buf
		b.open[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go b.serve(id, c, buf)
	}
}

// recorder keeps every byte read from the connection.
type recorder struct {
	c   net.Conn
	b   *RawBackend
	buf *bytes.Buffer
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	r.b.mu.Lock()
	r.buf.Write(p[:n])
	r.b.mu.Unlock()
	return n, err
}

func (b *RawBackend) serve(connID int, c net.Conn, buf *bytes.Buffer) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.open, c)
		b.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(recorder{c: c, b: b, buf: buf})
	for {
		req, ok := readRawRequest(br)
		if req.Method == "" {
			return
		}
		req.Conn = connID
		b.mu.Lock()
		b.requests = append(b.requests, req)
		b.mu.Unlock()
		if !ok {
			return // framing broken or cut short: nothing to answer
		}
		act := req.Header["x-act"]
		if act == "" {
			act = b.act
		}
		if !b.respond(c, req, act) {
			return
		}
	}
}

// respond acts out one command; false closes the connection.
func (b *RawBackend) respond(c net.Conn, req RawRequest, act string) bool {
	body := "id=" + req.ID
	status := "200 OK"
	if s := req.Header["x-status"]; s != "" {
		status = s + " X"
	}
	head := func(extra string, cl int) string {
		return "HTTP/1.1 " + status + "\r\nX-Id: " + req.ID + "\r\nContent-Length: " + strconv.Itoa(cl) + "\r\n" + extra + "\r\n"
	}
	okResp := head("", len(body))
	if req.Method != "HEAD" && !strings.HasPrefix(status, "204") && !strings.HasPrefix(status, "304") {
		okResp += body
	}
	evil := "HTTP/1.1 200 OK\r\nX-Id: evil\r\nContent-Length: 8\r\n\r\nid=evil!"
	var err error
	switch act {
	case "extra":
		_, err = io.WriteString(c, okResp+evil)
	case "extra-late":
		if _, err = io.WriteString(c, okResp); err == nil {
			b.sleep(50 * time.Millisecond)
			_, err = io.WriteString(c, evil)
			b.lateExtras.Add(1)
		}
	case "body":
		_, err = io.WriteString(c, head("", len(body))+body)
	case "readclose":
		return false
	case "close-after":
		_, _ = io.WriteString(c, okResp)
		return false
	case "drip":
		ms, _ := strconv.Atoi(req.Header["x-drip-ms"])
		if ms == 0 {
			ms = 100
		}
		if _, err = io.WriteString(c, head("", len(body))); err != nil {
			return false
		}
		for i := 0; i < len(body) && err == nil; i++ {
			if !b.sleep(time.Duration(ms) * time.Millisecond) {
				return false
			}
			_, err = c.Write([]byte{body[i]})
		}
	case "stall":
		_, _ = io.WriteString(c, head("", 100))
		b.sleep(time.Minute)
		return false
	case "reset":
		_, _ = io.WriteString(c, head("", 100)+"0123456789")
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return false
	case "bigheader":
		n, _ := strconv.Atoi(req.Header["x-header-size"])
		_, err = io.WriteString(c, head("X-Big: "+strings.Repeat("b", n)+"\r\n", len(body))+body)
	case "chunked":
		_, err = io.WriteString(c, "HTTP/1.1 "+status+"\r\nX-Id: "+req.ID+"\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"3\r\nid=\r\n"+strconv.FormatInt(int64(len(req.ID)), 16)+"\r\n"+req.ID+"\r\n0\r\n\r\n")
	case "badheader":
		_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nSet-Cookie: session=NODE-SECRET-COOKIE\r\nContent-Length: 0\r\nBroken header line\r\n\r\n")
		return false
	case "upgrade":
		_, err = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		b.sleep(100 * time.Millisecond)
		return false
	default:
		_, err = io.WriteString(c, okResp)
	}
	return err == nil
}

// readRawRequest parses one HTTP/1.1 request as leniently as a backend
// would, reporting whether its body framing completed.
func readRawRequest(br *bufio.Reader) (RawRequest, bool) {
	var r RawRequest
	parts, err := readStartLine(br)
	if err != nil {
		return r, false
	}
	r.Method, r.Path = parts[0], parts[1]
	r.Header = map[string]string{}
	if readHeader(br, r.Header) != nil {
		return r, false
	}
	r.ID = r.Header["x-id"]
	if strings.EqualFold(r.Header["transfer-encoding"], "chunked") {
		for {
			n, err := readChunkSize(br)
			if err != nil {
				return r, false
			}
			if n == 0 {
				line, err := br.ReadString('\n')
				r.Complete = err == nil && line == "\r\n"
				return r, r.Complete
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return r, false
			}
			r.Body = append(r.Body, chunk[:n]...)
		}
	}
	cl, _ := strconv.Atoi(r.Header["content-length"])
	r.Body = make([]byte, cl)
	n, err := io.ReadFull(br, r.Body)
	r.Body = r.Body[:n]
	r.Complete = err == nil
	return r, r.Complete
}

// readStartLine reads a request or status line and returns its (at most
// three) space-separated parts, at least two.
func readStartLine(br *bufio.Reader) ([]string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
	if len(parts) < 2 {
		return nil, io.ErrUnexpectedEOF
	}
	return parts, nil
}

// readHeader reads header lines up to the empty line into h: names in
// lower case, the last value of each. On an error h holds what was read.
func readHeader(br *bufio.Reader, h map[string]string) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return nil
		}
		k, v, _ := strings.Cut(line, ":")
		h[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
}

// readChunkSize reads a chunk-size line (hexadecimal, no extensions).
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimRight(line, "\r\n"), 16, 64)
}

// LateExtrasSent counts the unasked-for responses extra-late has written,
// so that a test can wait for them instead of guessing a delay.
func (b *RawBackend) LateExtrasSent() int64 { return b.lateExtras.Load() }

// Received returns the requests parsed so far.
func (b *RawBackend) Received() []RawRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]RawRequest(nil), b.requests...)
}

// Bytes returns every byte received, on all connections, in connection order.
func (b *RawBackend) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []byte
	for i := 1; i <= b.conns; i++ {
		out = append(out, b.raw[i].Bytes()...)
	}
	return out
}

// Count returns how many requests with this method (and id, if set) arrived.
func (b *RawBackend) Count(method, id string) int {
	n := 0
	for _, r := range b.Received() {
		if r.Method == method && (id == "" || r.ID == id) {
			n++
		}
	}
	return n
}

// RawClient is a client on a raw socket.
type RawClient struct {
	t    testing.TB
	Conn net.Conn
	br   *bufio.Reader
}

// NewRawClient wraps an open connection (for clients made without a T,
// in goroutines).
func NewRawClient(c net.Conn) *RawClient { return &RawClient{Conn: c, br: bufio.NewReader(c)} }

func DialRaw(t testing.TB, addr string) *RawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	t.Cleanup(func() { _ = c.Close() })
	return &RawClient{t: t, Conn: c, br: bufio.NewReader(c)}
}

func (rc *RawClient) Send(s string) {
	rc.t.Helper()
	_, err := io.WriteString(rc.Conn, s)
	require.NoError(rc.t, err)
}

func (rc *RawClient) CloseWrite() {
	require.NoError(rc.t, rc.Conn.(*net.TCPConn).CloseWrite())
}

// RawReply is a response as the client read it.
type RawReply struct {
	Status int
	Header map[string]string
	Body   string
}

// ReadResponse reads one response (Content-Length framed, or chunked, or
// nothing for HEAD); err is set when the connection ended first.
func (rc *RawClient) ReadResponse(head bool) (RawReply, error) {
	var r RawReply
	parts, err := readStartLine(rc.br)
	if err != nil {
		return r, err
	}
	r.Status, _ = strconv.Atoi(parts[1])
	r.Header = map[string]string{}
	if err := readHeader(rc.br, r.Header); err != nil {
		return r, err
	}
	if head || r.Status == 204 || r.Status == 304 || r.Status < 200 {
		return r, nil
	}
	if strings.EqualFold(r.Header["transfer-encoding"], "chunked") {
		var body []byte
		for {
			n, err := readChunkSize(rc.br)
			if err != nil {
				return r, err
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(rc.br, chunk); err != nil {
				return r, err
			}
			if n == 0 {
				break
			}
			body = append(body, chunk[:n]...)
		}
		r.Body = string(body)
		return r, nil
	}
	cl, _ := strconv.Atoi(r.Header["content-length"])
	body := make([]byte, cl)
	_, err = io.ReadFull(rc.br, body)
	r.Body = string(body)
	return r, err
}

// RawDo sends one request on a new connection and reads its response.
func RawDo(t testing.TB, addr, request string) (RawReply, error) {
	t.Helper()
	rc := DialRaw(t, addr)
	rc.Send(request)
	return rc.ReadResponse(strings.HasPrefix(request, "HEAD "))
}

// RawReq builds a request without a body, with an id and a command.
func RawReq(method, path, id, act string, extra ...string) string {
	s := method + " " + path + " HTTP/1.1\r\nHost: t\r\nX-Id: " + id + "\r\n"
	if act != "" {
		s += "X-Act: " + act + "\r\n"
	}
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s + "\r\n"
}
