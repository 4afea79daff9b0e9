// Package dnstest is a small authoritative DNS server on loopback UDP for
// tests of DNS service discovery: records and error codes set per name,
// changed while it runs.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers from its records; a name without records of the asked type
// gets an empty NOERROR answer, an unknown name NXDOMAIN.
type Server struct {
	Addr string // 127.0.0.1:port

	srv *dns.Server

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	rcodes  map[string]int      // forced answer code by FQDN
	queries map[string]int      // by FQDN + "/" + type
}

// SRV is one SRV record's data.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// Start starts a server on an ephemeral loopback UDP port; the test's
// cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string][]dns.RR{}, rcodes: map[string]int{}, queries: map[string]int{}}
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = s.srv.Shutdown()
		<-done
	})
	return s
}

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// SetA replaces name's A and AAAA records with ips (v4 or v6) at ttl
// seconds, and clears a forced answer code.
func (s *Server) SetA(name string, ttl uint32, ips ...string) {
	k := key(name)
	var rrs []dns.RR
	for _, ip := range ips {
		p := net.ParseIP(ip)
		if p4 := p.To4(); p4 != nil {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: k, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: p4})
		} else {
			rrs = append(rrs, &dns.AAAA{Hdr: dns.RR_Header{Name: k, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: p})
		}
	}
	s.set(k, rrs, dns.TypeA, dns.TypeAAAA)
}

// SetSRV replaces name's SRV records.
func (s *Server) SetSRV(name string, ttl uint32, recs ...SRV) {
	k := key(name)
	var rrs []dns.RR
	for _, r := range recs {
		rrs = append(rrs, &dns.SRV{Hdr: dns.RR_Header{Name: k, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
			Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: dns.Fqdn(r.Target)})
	}
	s.set(k, rrs, dns.TypeSRV)
}

func (s *Server) set(k string, rrs []dns.RR, types ...uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rcodes, k)
	kept := s.records[k][:0:0]
	for _, rr := range s.records[k] {
		drop := false
		for _, t := range types {
			drop = drop || rr.Header().Rrtype == t
		}
		if !drop {
			kept = append(kept, rr)
		}
	}
	s.records[k] = append(kept, rrs...)
}

// SetRcode makes every question for name answered with rcode
// (dns.RcodeNameError for NXDOMAIN, dns.RcodeServerFailure...);
// dns.RcodeSuccess goes back to the records.
func (s *Server) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(s.rcodes, key(name))
	} else {
		s.rcodes[key(name)] = rcode
	}
}

// Queries returns how many questions of type qtype for name were asked.
func (s *Server) Queries(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[key(name)+"/"+dns.TypeToString[qtype]]
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		k := strings.ToLower(q.Name)
		s.mu.Lock()
		s.queries[k+"/"+dns.TypeToString[q.Qtype]]++
		rrs, known := s.records[k]
		if code, forced := s.rcodes[k]; forced {
			resp.Rcode = code
		} else if !known {
			resp.Rcode = dns.RcodeNameError
		} else {
			for _, rr := range rrs {
				if rr.Header().Rrtype == q.Qtype {
					resp.Answer = append(resp.Answer, dns.Copy(rr))
				}
			}
		}
		s.mu.Unlock()
	}
	_ = w.WriteMsg(resp)
}
