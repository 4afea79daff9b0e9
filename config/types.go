// Package config holds the gateway's config schema and loads it strictly:
// every key of the contract (../shared/spec/config.md, upstreams.md,
// throttling.md), defaults exactly as the spec's tables give them, and every
// error of a file reported together, each with its key path.
//
// The package knows no other package of the gateway; router, balancer,
// healthcheck, ratelimit and proxy compile what it loads.
package config

import (
	"math"
	"time"
)

// Seconds is a duration written as a number of seconds, fractions allowed,
// as the seed APIs (APISIX, Huawei APIG) write them.
type Seconds float64

// Duration converts s to a time.Duration. Loading keeps durations within a
// day; a value out of time.Duration's range saturates rather than wraps.
func (s Seconds) Duration() time.Duration {
	ns := float64(s) * float64(time.Second)
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(ns)
}

// Fields tagged `secret:"true"` (key-auth keys, TLS private keys, the
// control API token; plugin config types outside this package too) hold
// secrets: load errors never print their values, not even a value of the
// wrong type, and an object that holds one is not printed either when it is
// written as a scalar. A new secret-bearing key must carry the tag.

// Ignored accepts any value and keeps nothing. It marks the response-only
// fields of API7 Admin API objects (created_at, updated_at, ...) so that an
// object copied from the Admin API loads unchanged under strict decoding.
type Ignored struct{}

// NotSupported is a key of the seed APIs the gateway does not implement
// yet: present, with any value, it fails loading with "is not supported
// yet" rather than "unknown key".
type NotSupported struct{}

// Config is one loaded config file.
type Config struct {
	Revision         string                     `json:"revision"`
	Gateway          Gateway                    `json:"gateway"`
	Services         []Service                  `json:"services"`
	Upstreams        []Upstream                 `json:"upstreams"`
	ThrottlePolicies []ThrottlePolicy           `json:"throttle_policies"`
	Redis            []Redis                    `json:"redis"` // types_redis.go
	Consumers        []Consumer                 `json:"consumers"`
	GatewayResponses map[string]GatewayResponse `json:"gateway_responses"`
	GlobalPlugins    Plugins                    `json:"global_plugins"`
	Certificates     []Certificate              `json:"certificates"`
	CACertificates   []CACertificate            `json:"ca_certificates"`
	SNIs             []SNI                      `json:"snis"`
	StreamRoutes     []StreamRoute              `json:"stream_routes"` // TCP stream routes (types_stream.go)
	// Environments are Huawei API environments (environments.go).
	Environments []Environment `json:"environments"`
	// GlobalRules are API7 global rules, merged into GlobalPlugins
	// (types_seeds.go).
	GlobalRules []GlobalRule `json:"global_rules"`
	Metrics     Metrics      `json:"metrics"` // types_metrics.go

	// Source is the file the config came from ("" for built-in configs).
	Source string `json:"-"`
	// Warnings are problems that do not stop the config from loading (a
	// certificate close to expiry, TLSv1.1 allowed); `validate` prints
	// them and `run` logs them.
	Warnings Errors `json:"-"`

	// src is the file's text (Locate) and digest what Parse hashed of it
	// (digest.go).
	src    []byte
	digest *Digest
}

// Gateway holds listener, limit, client-IP and logging settings.
type Gateway struct {
	Listen             string     `json:"listen"`
	ControlListen      string     `json:"control_listen"`
	ControlAPI         ControlAPI `json:"control_api"`
	MaxRequestBodySize int64      `json:"max_request_body_size"`
	MaxHeaderSize      int        `json:"max_header_size"`
	ClientReadTimeout  Seconds    `json:"client_read_timeout"`
	ClientIdleTimeout  Seconds    `json:"client_idle_timeout"`
	MaxConnections     int        `json:"max_connections"`
	RealIP             RealIP     `json:"real_ip"`
	// Environment names the environment whose variables replace #name#.
	Environment string `json:"environment"`

	// Edge hardening (README "Security").
	ClientHeaderTimeout  Seconds `json:"client_header_timeout"`  // time to receive a request's headers
	ClientWriteTimeout   Seconds `json:"client_write_timeout"`   // time between two successful writes to a client
	MaxHeaderCount       int     `json:"max_header_count"`       // request header lines; more is a 431
	UnderscoresInHeaders bool    `json:"underscores_in_headers"` // false: drop request headers whose name has '_'
	PathPolicy           string  `json:"path_policy"`            // reject, decode or keep
	RejectPathParams     bool    `json:"reject_path_params"`     // 400 for any ';' in the path

	// TLS listener (README "TLS"); TLSListen "" means none.
	TLSListen string     `json:"tls_listen"`
	TLS       GatewayTLS `json:"tls"`

	AccessLog       AccessLog `json:"access_log"`
	LogLevel        string    `json:"log_level"`
	ReloadDebounce  Seconds   `json:"reload_debounce"`
	ShutdownTimeout Seconds   `json:"shutdown_timeout"`

	// Websocket: upgraded connections (README "WebSocket").
	Websocket GatewayWebsocket `json:"websocket"`
	// StreamListen are the TCP stream listeners; Stream their settings
	// (types_stream.go).
	StreamListen []string      `json:"stream_listen"`
	Stream       GatewayStream `json:"stream"`

	// MaxResponseHeaderSize bounds an upstream response header; a larger
	// one fails the attempt ("response header too large").
	MaxResponseHeaderSize int `json:"max_response_header_size"`

	// Resolver is the DNS client of discovery_type "dns" upstreams.
	Resolver Resolver `json:"resolver"`
}

// Resolver configures the DNS client of service discovery. Without
// nameservers the gateway uses those of /etc/resolv.conf.
type Resolver struct {
	Nameservers []string `json:"nameservers"` // "ip" or "ip:port" (53)
	Timeout     Seconds  `json:"timeout"`     // per query and server
}

// ControlAPI protects the control API. Token, when set, is required as
// `Authorization: Bearer <token>` on every path but /healthz, /readyz and
// /metrics (that one too when ProtectMetrics). A token written as
// `$env://NAME` is replaced by that environment variable's value when the
// file loads.
type ControlAPI struct {
	Token          string   `json:"token" secret:"true"`
	ProtectMetrics bool     `json:"protect_metrics"`
	AllowedHosts   []string `json:"allowed_hosts"`
}

// RealIP says which header carries the client address and which peers are
// believed when they send it.
type RealIP struct {
	Header           string   `json:"header"`
	TrustedAddresses []string `json:"trusted_addresses"`
	Recursive        bool     `json:"recursive"`
}

// AccessLog configures the per-request JSON log.
type AccessLog struct {
	Enabled bool   `json:"enabled"`
	Path    string `json:"path"`
}

// Service is an API7 published service: hosts, a path prefix, an upstream
// and its routes.
type Service struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Desc            string            `json:"desc"`
	Labels          map[string]string `json:"labels"`
	Type            string            `json:"type"`
	Hosts           []string          `json:"hosts"`
	PathPrefix      string            `json:"path_prefix"`
	StripPathPrefix bool              `json:"strip_path_prefix"`
	Upstream        *Upstream         `json:"upstream"`
	UpstreamID      string            `json:"upstream_id"`
	Plugins         Plugins           `json:"plugins"`
	ThrottlePolicy  string            `json:"throttle_policy"`
	Routes          []Route           `json:"routes"`
	// HTTPSRedirect answers plain-HTTP requests with a redirect to https
	// (Huawei APIG is_http_redirect_to_https).
	HTTPSRedirect bool `json:"https_redirect"`

	CreatedAt                   Ignored `json:"created_at"`
	UpdatedAt                   Ignored `json:"updated_at"`
	LastPublished               Ignored `json:"last_published"`
	PublishedGatewayGroupsCount Ignored `json:"published_gateway_groups_count"`
	ServiceVersionID            Ignored `json:"service_version_id"`
	ServiceID                   Ignored `json:"service_id"` // the service template's id
	GatewayGroupID              Ignored `json:"gateway_group_id"`
	GatewayGroupName            Ignored `json:"gateway_group_name"`
	UnhealthyNodesCount         Ignored `json:"unhealthy_nodes_count"`
	PublishTime                 Ignored `json:"publish_time"`
	Version                     Ignored `json:"version"`
	Status                      Ignored `json:"status"`
}

// Route is one route of a service. Paths are relative to the service's
// path_prefix.
type Route struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Desc            string            `json:"desc"`
	Labels          map[string]string `json:"labels"`
	Paths           []string          `json:"paths"`
	Methods         []string          `json:"methods"`
	Vars            []Var             `json:"vars"`
	Priority        int               `json:"priority"`
	Plugins         Plugins           `json:"plugins"`
	ThrottlePolicy  string            `json:"throttle_policy"`
	Timeout         *RouteTimeout     `json:"timeout"`
	EnableWebsocket bool              `json:"enable_websocket"`
	Websocket       *RouteWebsocket   `json:"websocket"`
	ServiceID       string            `json:"service_id"`
	// ReqParams are Huawei request parameters (params.go).
	ReqParams []ReqParam `json:"req_params"`
	// BackendParams are Huawei backend parameters (params.go).
	BackendParams []BackendParam `json:"backend_params"`
	// Remark is a Huawei API's description, kept like desc.
	Remark string `json:"remark"`

	CreatedAt        Ignored `json:"created_at"`
	UpdatedAt        Ignored `json:"updated_at"`
	ServiceVersionID Ignored `json:"service_version_id"`
	RouteID          Ignored `json:"route_id"`
}

// Var is one `[var, op, value]` condition of a route, or
// `["!", var, op, value]` when negated.
type Var struct {
	Negate bool
	Name   string // e.g. "arg_debug", "http_x_user", "uri"
	Op     string // ==, ~=, >, >=, <, <=, ~~, ~*, in, has, ipmatch
	Value  string // the operand of every operator but in / ipmatch
	Values []string

	// Ref is Name parsed (ParseVar), kept by validation; the router reads
	// it and never the name. The zero value is no known variable.
	Ref VarRef
}

// Upstream is a set of nodes and how to reach them.
type Upstream struct {
	ID            string            `json:"id"` // an inline upstream gets its service's id when loading
	Name          string            `json:"name"`
	Desc          string            `json:"desc"`
	Labels        map[string]string `json:"labels"`
	Scheme        Scheme            `json:"scheme"`
	Type          BalancerType      `json:"type"`
	HashOn        HashOn            `json:"hash_on"`
	Key           string            `json:"key"`
	Nodes         []Node            `json:"nodes"`
	Timeout       Timeout           `json:"timeout"`
	Retries       *int              `json:"retries"` // never nil after loading: defaults to len(Nodes)-1
	RetryTimeout  Seconds           `json:"retry_timeout"`
	KeepalivePool KeepalivePool     `json:"keepalive_pool"`
	PassHost      PassHost          `json:"pass_host"`
	UpstreamHost  string            `json:"upstream_host"`
	Checks        *Checks           `json:"checks"`
	TLS           UpstreamTLS       `json:"tls"`

	// Service discovery (issue 21, README "DNS discovery"): with
	// discovery_type "dns" the nodes are the addresses service_name
	// resolves to, kept current by package discovery. DiscoveryArgs has no
	// key the gateway implements: only null or {} load.
	ServiceName   string             `json:"service_name"`
	DiscoveryType string             `json:"discovery_type"`
	DiscoveryArgs map[string]Ignored `json:"discovery_args"`

	// RetryOnStatuses are node statuses retried on another node, within
	// the rules of a failed attempt after sending (upstreams.md).
	RetryOnStatuses []int `json:"retry_on_statuses"`

	// HashKey is Key parsed as HashOn says (ParseHashKey) when Type is
	// chash, set by validation; the zero value hashes on remote_addr.
	HashKey KeyTemplate `json:"-"`

	// Remark is a Huawei VPC channel's description, kept like desc.
	Remark string `json:"remark"`

	CreatedAt Ignored `json:"created_at"`
	UpdatedAt Ignored `json:"updated_at"`
}

// Node is one backend address of an upstream.
type Node struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Weight   int    `json:"weight"`
	Priority int    `json:"priority"`
}

// Timeout holds the three upstream timeouts.
type Timeout struct {
	Connect Seconds `json:"connect"`
	Send    Seconds `json:"send"`
	Read    Seconds `json:"read"`
}

// RouteTimeout overrides an upstream's timeouts for one route; a zero
// field keeps the upstream's value.
type RouteTimeout struct {
	Connect Seconds `json:"connect"`
	Send    Seconds `json:"send"`
	Read    Seconds `json:"read"`
}

// KeepalivePool bounds the idle connections kept per node.
type KeepalivePool struct {
	Size        int     `json:"size"`
	IdleTimeout Seconds `json:"idle_timeout"`
	Requests    int     `json:"requests"`
}

// UpstreamTLS configures TLS to nodes when scheme is https.
type UpstreamTLS struct {
	Verify     bool   `json:"verify"`
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key" secret:"true"`
	// CACertificates are ids of ca_certificates trusted besides the
	// system roots; ServerName is the SNI and the name verified ("": the
	// node host, or upstream_host with pass_host rewrite).
	CACertificates []string `json:"ca_certificates"`
	ServerName     string   `json:"server_name"`

	// CAPEM is the PEM of the CA certificates named, filled when loading.
	CAPEM []byte `json:"-"`
}

// Checks are an upstream's health checks.
type Checks struct {
	Active  *ActiveCheck  `json:"active"`
	Passive *PassiveCheck `json:"passive"`
}

// ActiveCheck probes nodes in the background.
type ActiveCheck struct {
	Type                   Scheme          `json:"type"`
	Timeout                Seconds         `json:"timeout"`
	Concurrency            int             `json:"concurrency"`
	Host                   string          `json:"host"`
	Port                   int             `json:"port"`
	HTTPPath               string          `json:"http_path"`
	HTTPSVerifyCertificate bool            `json:"https_verify_certificate"`
	ReqHeaders             []string        `json:"req_headers"`
	Healthy                ActiveHealthy   `json:"healthy"`
	Unhealthy              ActiveUnhealthy `json:"unhealthy"`
}

// ActiveHealthy says when probes count a node as healthy.
type ActiveHealthy struct {
	Interval     Seconds `json:"interval"`
	HTTPStatuses []int   `json:"http_statuses" statuses:"list or http_code"`
	Successes    int     `json:"successes"`
}

// ActiveUnhealthy says when probes count a node as unhealthy.
type ActiveUnhealthy struct {
	Interval     Seconds `json:"interval"`
	HTTPStatuses []int   `json:"http_statuses" statuses:"list or http_code"`
	HTTPFailures int     `json:"http_failures"`
	TCPFailures  int     `json:"tcp_failures"`
	Timeouts     int     `json:"timeouts"`
}

// PassiveCheck observes real traffic.
type PassiveCheck struct {
	Type      Scheme           `json:"type"`
	Healthy   PassiveHealthy   `json:"healthy"`
	Unhealthy PassiveUnhealthy `json:"unhealthy"`
}

// PassiveHealthy says which responses count as successes.
type PassiveHealthy struct {
	HTTPStatuses []int `json:"http_statuses" statuses:"list or http_code"`
	Successes    int   `json:"successes"`
}

// PassiveUnhealthy says which responses and failures count against a node.
type PassiveUnhealthy struct {
	HTTPStatuses []int `json:"http_statuses" statuses:"list or http_code"`
	HTTPFailures int   `json:"http_failures"`
	TCPFailures  int   `json:"tcp_failures"`
	Timeouts     int   `json:"timeouts"`
}

// ThrottlePolicy is a Huawei APIG request throttling policy.
type ThrottlePolicy struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Desc           string    `json:"desc"`
	APICallLimits  int64     `json:"api_call_limits"`
	UserCallLimits int64     `json:"user_call_limits"` // 0: not set
	AppCallLimits  int64     `json:"app_call_limits"`  // 0: not set
	IPCallLimits   int64     `json:"ip_call_limits"`   // 0: not set
	TimeInterval   int64     `json:"time_interval"`
	TimeUnit       string    `json:"time_unit"` // SECOND, MINUTE, HOUR, DAY
	Type           int       `json:"type"`      // 1: per route, 2: shared
	Window         string    `json:"window"`    // fixed, sliding
	Specials       []Special `json:"specials"`
	// Cluster counting in Redis (types_redis.go).
	ThrottleStrategy string `json:"throttle_strategy"` // local (default), cluster
	RedisID          string `json:"redis_id"`
	AllowDegradation bool   `json:"allow_degradation"` // default true
	ClusterBatch     int64  `json:"cluster_batch"`     // permits per round trip; 0, 1: off

	// Huawei's own keys (issue 21): remark is kept like desc;
	// enable_adaptive_control loads only as "FALSE" (or empty).
	Remark                 string  `json:"remark"`
	EnableAdaptiveControl  string  `json:"enable_adaptive_control"`
	CreateTime             Ignored `json:"create_time"`
	UpdateTime             Ignored `json:"update_time"`
	BindNum                Ignored `json:"bind_num"`
	IsIncluSpecialThrottle Ignored `json:"is_inclu_special_throttle"`
}

// Special replaces the app or user limit of a policy for one object.
type Special struct {
	ObjectType string `json:"object_type"` // APP or USER
	ObjectID   string `json:"object_id"`
	CallLimits int64  `json:"call_limits"`
}

// Consumer is a user of the APIs; each credential is an app.
type Consumer struct {
	ID          Ignored           `json:"id"`
	Name        Ignored           `json:"name"`
	Username    string            `json:"username"`
	Desc        string            `json:"desc"`
	Labels      map[string]string `json:"labels"`
	Plugins     ConsumerPlugins   `json:"plugins"`
	Credentials []Credential      `json:"credentials"`

	CreatedAt Ignored `json:"created_at"`
	UpdatedAt Ignored `json:"updated_at"`
}

// Credential is one app of a consumer (API7 consumer credential).
type Credential struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Desc    string            `json:"desc"`
	Labels  map[string]string `json:"labels"`
	Plugins ConsumerPlugins   `json:"plugins"`

	CreatedAt Ignored `json:"created_at"`
	UpdatedAt Ignored `json:"updated_at"`
}

// GatewayResponse overrides one gateway-made error response.
type GatewayResponse struct {
	Status  int             `json:"status"`
	Body    string          `json:"body"`
	Headers ResponseHeaders `json:"headers"` // or Huawei's [{key, value}]
	// Default is Huawei's "this is the platform's own response" flag;
	// it changes nothing but lets an unproduced type load (types_seeds.go).
	Default bool `json:"default"`
}
