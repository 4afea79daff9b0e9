package config

import (
	"net"
	"strconv"
)

// BalancerType is upstream.type.
type BalancerType string

// Balancer types of upstreams.md.
const (
	RoundRobin BalancerType = "roundrobin"
	CHash      BalancerType = "chash"
	LeastConn  BalancerType = "least_conn"
)

// PassHost is upstream.pass_host: the Host header sent upstream.
type PassHost string

// pass_host values of upstreams.md.
const (
	PassHostPass    PassHost = "pass"    // the client's Host
	PassHostNode    PassHost = "node"    // the node's host:port
	PassHostRewrite PassHost = "rewrite" // upstream_host
)

// Scheme is the protocol spoken to an upstream or a health-check probe.
type Scheme string

// Schemes of upstream.scheme and checks.*.type; SchemeTCP is only a check
// type.
const (
	SchemeHTTP  Scheme = "http"
	SchemeHTTPS Scheme = "https"
	SchemeTCP   Scheme = "tcp"
)

// HashOn is upstream.hash_on: how a chash key is read.
type HashOn string

// hash_on values of upstreams.md.
const (
	HashOnVars             HashOn = "vars"
	HashOnHeader           HashOn = "header"
	HashOnCookie           HashOn = "cookie"
	HashOnConsumer         HashOn = "consumer"
	HashOnVarsCombinations HashOn = "vars_combinations"
)

// Addr is the node's identity, host:port: the key of its pool, its health
// state, its metrics and the tried-set of retries.
func (n *Node) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }
