package plugin

import (
	"time"

	"github.com/valyala/fasthttp"
)

// Answer is a response built at compile time that stands in for the
// upstream's: a request step sets Request.Answer (mocking, an open circuit
// breaker's downgrade response) and, when no later step stops the request,
// the proxy writes it instead of calling the upstream. Response steps
// still run on it.
type Answer struct {
	Status      int
	ContentType []byte // not set when empty
	Body        []byte
	Headers     [][2][]byte // name, value
	Delay       time.Duration
}

// Write puts the answer into resp without copying its body (the body is
// shared, read-only, by every request the answer serves).
func (a *Answer) Write(resp *fasthttp.Response) {
	if a.Delay > 0 {
		time.Sleep(a.Delay)
	}
	resp.Reset()
	resp.SetStatusCode(a.Status)
	if len(a.ContentType) > 0 {
		resp.Header.SetContentTypeBytes(a.ContentType)
	}
	for _, h := range a.Headers {
		resp.Header.SetBytesKV(h[0], h[1])
	}
	resp.SetBodyRaw(a.Body)
}

// HeaderKV is a header as Huawei's configs spell one: {key, value}.
type HeaderKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// AddHeaders appends hs to the answer's headers.
func (a *Answer) AddHeaders(hs []HeaderKV) {
	for _, h := range hs {
		a.Headers = append(a.Headers, [2][]byte{[]byte(h.Key), []byte(h.Value)})
	}
}
