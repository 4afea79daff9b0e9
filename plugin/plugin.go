// Package plugin is the gateway's plugin pipeline: the step interfaces a
// plugin implements, the registry that ties a plugin's config type (decoded
// by config) to its compile step, and the generic part every route shares:
// route > service > global_plugins precedence by name, and the order of
// steps by priority.
//
// A plugin is one sub-package that owns its config type, its validation
// (config.Validating), its compile step (config -> an immutable step that
// does not allocate per request) and its request and response steps. It
// registers itself in init with Register; plugin/builtin imports them all.
package plugin

import (
	"fmt"
	"github.com/cespare/xxhash/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/ratelimit"
	"gateway/ratelimit/redisstore"
	"gateway/router"
)

// Request is one request as steps see it. The proxy owns it (one per
// request, pooled); steps read it and set what they decide.
type Request struct {
	Ctx       *fasthttp.RequestCtx
	Now       time.Time
	ClientIP  netip.Addr
	ClientIPB []byte           // ClientIP as text
	Vars      router.VarSource // every variable of routing.md, consumer_name included

	// Set by authentication steps.
	Consumer []byte // the consumer's username
	App      []byte // the credential (app) name
	CustomID []byte // the consumer's labels.custom_id, nil when unset
	// HideHeader / HideQuery name a credential the proxy removes before
	// forwarding (key-auth's hide_credentials).
	HideHeader []byte
	HideQuery  []byte
	// DropHeaders / DropQuery are removed from the forwarded request too
	// (req_params with pass_through 2); kept across requests.
	DropHeaders [][]byte
	DropQuery   [][]byte
	// Challenge is the WWW-Authenticate value of a 401 (basic-auth's).
	Challenge []byte

	// BodyCheck, when a step sets it, sees the request body as the proxy
	// reads it and decides at its end whether it may go on (hmac-auth's
	// validate_request_body). A body that fails it never reaches a node
	// whole: a buffered one is refused before any node is tried, a
	// streamed one is cut before its last bytes.
	BodyCheck BodyCheck

	// Rate is what the X-RateLimit-* headers report.
	Rate RateState

	// Set by a step that stops the request, to shape its answer.
	Status  int    // replaces the response type's status
	Body    []byte // replaces the response type's body
	Message []byte // replaces the response type's error_msg

	// Answer, set by a request step, is written instead of calling the
	// upstream (see Answer).
	Answer *Answer

	// What the proxy saw of the upstream, for response steps.
	Forwarded       bool                // the upstream was called
	UpstreamFailure config.ResponseType // RespBackendTimeout / RespBackendUnavailable, or RespNone
	UpstreamLatency time.Duration       // from the first attempt to the response head

	// Upstream, set by traffic-split, is the id of the top-level upstream
	// to call instead of the route's own ("" keeps the route's).
	Upstream string
	// Probe marks the request a circuit breaker let through half-open.
	Probe bool
	// BreakerRule is 1 + the index of the breaker's downgrade rule that
	// matched the request (0: none), for its response step.
	BreakerRule int

	// Answered is set by a step that wrote the whole response itself in
	// Ctx.Response (cors answering a preflight): the chain stops, nothing
	// is forwarded, and no gateway error is written.
	Answered bool

	// Path is the upstream path the route gives (after strip_path_prefix).
	Path []byte
	// RouteID is the matched route's id, for steps that one compile shares
	// between routes (SharedStep) and that count per route; RouteScope is
	// RouteScopeOf(RouteID), computed once per route at compile.
	RouteID    string
	RouteScope uint64

	// Set by proxy-rewrite, read when the upstream request is built.
	// UpstreamURI replaces the upstream path (after strip-prefix); the
	// client's query is appended to it (after '&' when it has a '?' of its
	// own) unless UpstreamURIRaw, which sends it exactly as it is.
	UpstreamURI    []byte
	UpstreamURIRaw bool
	URIBuf         []byte // what UpstreamURI is rendered into, kept across requests
	// ExtraQuery is appended to the upstream query (backend_params),
	// encoded, without a leading '&'; kept across requests.
	ExtraQuery []byte
	// PathParams are backend_params of location PATH: `{name}` in
	// proxy-rewrite's uri renders them (before the route's own path
	// parameters of that name). Values are encoded, in PathBuf; both are
	// kept across requests.
	PathParams []PathParam
	PathBuf    []byte
	// RequestID is the request's X-Request-Id.
	RequestID []byte
	// UpstreamHost replaces the Host header the upstream's pass_host gives.
	UpstreamHost []byte
	// UpstreamMethod replaces the request method upstream.
	UpstreamMethod []byte

	// Scratch is a buffer a step may use for the length of its call.
	Scratch []byte
}

// Reset clears r for the next request, keeping its buffers.
func (r *Request) Reset() {
	if r.BodyCheck != nil {
		r.BodyCheck.Release()
	}
	scratch, uriBuf, extra := r.Scratch[:0], r.URIBuf[:0], r.ExtraQuery[:0]
	pp, pb := r.PathParams[:0], r.PathBuf[:0]
	dh, dq := r.DropHeaders[:0], r.DropQuery[:0]
	*r = Request{Scratch: scratch, URIBuf: uriBuf, ExtraQuery: extra, PathParams: pp, PathBuf: pb, DropHeaders: dh, DropQuery: dq}
}

// PathParam is one backend path parameter: its name and its encoded
// value at PathBuf[Start:End].
type PathParam struct {
	Name       []byte
	Start, End int
}

// PathParam returns the value of backend path parameter name.
func (r *Request) PathParam(name []byte) ([]byte, bool) {
	for i := range r.PathParams {
		if p := &r.PathParams[i]; string(p.Name) == string(name) {
			return r.PathBuf[p.Start:p.End], true
		}
	}
	return nil, false
}

// BodyCheck verifies a request body as it passes.
type BodyCheck interface {
	Write(p []byte) // the next bytes of the body
	Verify() bool   // at the end of the body: may it go on?
	Release()       // the request is over
	// Refusal is the gateway response for a body that fails, and its
	// error_msg.
	Refusal() (config.ResponseType, []byte)
}

// Step is one plugin's compiled form on one route. It implements
// RequestStep, ResponseStep or both.
type Step interface{}

// RequestStep runs before the upstream is called, in priority order; a
// step that returns a response type other than config.RespNone stops the
// request with that gateway response, and the steps after it do not run.
type RequestStep interface {
	OnRequest(r *Request) config.ResponseType
}

// ResponseStep runs once the response is in r.Ctx.Response (the node's, or
// a gateway-made error), before the client gets it, in priority order.
type ResponseStep interface {
	OnResponse(r *Request)
}

// Compiler turns one plugin config (the value its config.PluginDef made,
// decoded and validated) into the step of one route.
type Compiler func(conf any, env *Env) (Step, error)

type registered struct {
	def     config.PluginDef
	compile Compiler
}

var (
	regMu    sync.RWMutex
	registry = map[string]*registered{}
)

// Register declares a plugin: its config to the loader, its compile step
// to the pipeline. Call it from the plugin's init.
func Register(def config.PluginDef, compile Compiler) {
	config.RegisterPlugin(def)
	regMu.Lock()
	registry[def.Name] = &registered{def: def, compile: compile}
	regMu.Unlock()
}

func lookup(name string) *registered {
	regMu.RLock()
	defer regMu.RUnlock()
	return registry[name]
}

// Env is what compile steps may use: the route, the whole config, the
// long-lived state that outlives snapshots, and a cache shared by every
// route of one snapshot (for what plugins compile once, such as the
// consumers' keys).
type Env struct {
	Config    *config.Config
	Route     *router.Route
	RouteID   string
	ServiceID string

	// Limits holds throttling counters across reloads.
	Limits *ratelimit.Store
	// Throttled is gateway_throttled_total{policy,route,counter}.
	Throttled *prometheus.CounterVec
	// Redis holds the clients of the top-level redis entries across
	// reloads (cluster throttle policies); nil: none can be used.
	Redis *redisstore.Clients
	// Long is the long-lived plugin state staged for this snapshot.
	Long *LongStage
	// AddUpstream compiles an upstream a plugin carries inline
	// (traffic-split) under id, as if it were a top-level one: its own
	// balancer, pools and health checks. The same id twice is compiled
	// once. Set by the proxy; nil where no proxy compiles (an error then).
	AddUpstream func(id string, u *config.Upstream) error

	shared map[string]any
	// reuse is the route environment Chain.Reuse hands to steps, one for
	// every route of a compile (a reload keeps thousands of chains).
	reuse *Env
	// sharedReuse is Chain.Reuse's answer for shared chains, which holds
	// for every route that has them (a reload keeps 10,000 routes of one
	// shared chain: their steps are asked once).
	sharedReuse map[*Chain]bool
}

// NewEnv starts the compile environment of one snapshot.
func NewEnv(cfg *config.Config, limits *ratelimit.Store, throttled *prometheus.CounterVec) *Env {
	return &Env{Config: cfg, Limits: limits, Throttled: throttled, shared: map[string]any{}, sharedReuse: map[*Chain]bool{}}
}

// ForRoute is env for compiling route r's steps.
func (e *Env) ForRoute(r *router.Route) *Env {
	re := *e
	re.Route, re.RouteID, re.ServiceID = r, r.ID, r.Service.ID
	return &re
}

// Shared returns the value cached under key for this snapshot, building
// it on first use.
func (e *Env) Shared(key string, build func() (any, error)) (any, error) {
	if v, ok := e.shared[key]; ok {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return nil, err
	}
	e.shared[key] = v
	return v, nil
}

// ThrottlePolicyPlugin is the name under which a route's throttle_policy
// (a field of services and routes, not a plugins entry) joins the route's
// plugins: its config is the *config.ThrottlePolicy it names.
const ThrottlePolicyPlugin = "throttle-policy"

// ReqParamsPlugin is the name under which a route's req_params (a route
// key, not a plugins entry) joins the route's plugins: its config is the
// []config.ReqParam.
const ReqParamsPlugin = "req_params"

// BackendParamsPlugin is the same for a route's backend_params: its config
// is the *config.Route (the parameters and the req_params they read).
const BackendParamsPlugin = "backend_params"

// QueryCredential is implemented by steps that read a credential from a
// query argument (key-auth's `query`): the access log masks that
// argument's value.
type QueryCredential interface {
	CredentialQuery() string
}

// Reusable is implemented by a step that a later snapshot may serve with
// as it is while nothing it was compiled from changed: the route, its
// service and the config outside the services (consumers, policies, global
// plugins...), which proxy's incremental compile checks by their hashes
// (config.Digest). Reuse asks env again for the long-lived state the step
// holds, as its compile did, so that the new snapshot keeps that state;
// false means the step must be compiled again. A step that does not
// implement it is always compiled again. env is valid during the call
// only: Reuse must not keep it (it is reused for the next route).
//
// A Reusable step must not hold on to the config it was compiled from
// (the *config.Route, the service): it copies what it needs, so that steps
// kept across many reloads do not keep older configs alive.
type Reusable interface {
	Reuse(env *Env) bool
}

// Stateless is embedded by steps that hold no long-lived state (counters,
// breakers, upstreams): they are Reusable as they are.
type Stateless struct{}

// Reuse reports true: there is nothing to ask for again.
func (Stateless) Reuse(*Env) bool { return true }

func (Stateless) stateless() {}

type stateless interface{ stateless() }

// Chain is the compiled steps of one route, in priority order. There is
// one per route (10,000 in the bench's full config): what the routes of a
// service share is held once per snapshot (chainInfo).
type Chain struct {
	steps    []Step
	request  []RequestStep
	response []ResponseStep
	info     *chainInfo
	shared   bool // every step a SharedStep: the chain holds nothing of a route
}

// chainInfo is what chains with the same plugins share: their names and
// the query arguments that carry their credentials. Read-only.
type chainInfo struct {
	names     []string
	credQuery []string
}

// Reuse reports whether the chain, compiled for an earlier snapshot, may
// serve route r of the snapshot env compiles, every one of its steps being
// Reusable (see there): it then has asked env for their long-lived state.
func (c *Chain) Reuse(env *Env, r *router.Route) bool {
	if !c.shared || env.sharedReuse == nil {
		return c.reuse(env, r)
	}
	ok, asked := env.sharedReuse[c]
	if !asked {
		ok = c.reuse(env, r)
		env.sharedReuse[c] = ok
	}
	return ok
}

func (c *Chain) reuse(env *Env, r *router.Route) bool {
	all := true
	for _, s := range c.steps {
		if _, ok := s.(stateless); !ok {
			all = false
			break
		}
	}
	if all {
		return true // nothing to ask for: no route environment needed
	}
	if env.reuse == nil {
		env.reuse = new(Env)
	}
	renv := env.reuse
	*renv = *env
	renv.reuse = nil
	renv.Route, renv.RouteID, renv.ServiceID = r, r.ID, r.Service.ID
	for _, s := range c.steps {
		if ru, ok := s.(Reusable); !ok || !ru.Reuse(renv) {
			return false
		}
	}
	return true
}

// CredentialQueries lists the query arguments that carry credentials on
// this route (QueryCredential).
func (c *Chain) CredentialQueries() []string {
	if c.info == nil {
		return nil
	}
	return c.info.credQuery
}

// Names lists the plugins of the chain in the order they run.
func (c *Chain) Names() []string {
	if c.info == nil {
		return nil
	}
	return c.info.names
}

// OnRequest runs the request steps; the first that stops the request
// decides its answer, and one that answered it itself (r.Answered) stops
// the chain with config.RespNone.
func (c *Chain) OnRequest(r *Request) config.ResponseType {
	for _, s := range c.request {
		if t := s.OnRequest(r); t != config.RespNone || r.Answered {
			return t
		}
	}
	return config.RespNone
}

// OnResponse runs the response steps.
func (c *Chain) OnResponse(r *Request) {
	for _, s := range c.response {
		s.OnResponse(r)
	}
}

// HasResponseSteps reports whether OnResponse does anything.
func (c *Chain) HasResponseSteps() bool { return len(c.response) > 0 }

// Effective resolves the plugins of route r by name: a route's plugin
// replaces its service's, which replaces the one in global_plugins; the
// route's (or else the service's) throttle_policy joins as
// ThrottlePolicyPlugin.
func Effective(cfg *config.Config, r *router.Route) (map[string]any, error) {
	out := map[string]any{}
	for _, layer := range []config.Plugins{cfg.GlobalPlugins, r.Service.Plugins, r.Config.Plugins} {
		for name, conf := range layer {
			out[name] = conf
		}
	}
	policyID := r.Config.ThrottlePolicy
	if policyID == "" {
		policyID = r.Service.ThrottlePolicy
	}
	if policyID != "" {
		for i := range cfg.ThrottlePolicies {
			if p := &cfg.ThrottlePolicies[i]; p.ID == policyID {
				out[ThrottlePolicyPlugin] = p
			}
		}
		if out[ThrottlePolicyPlugin] == nil {
			return nil, fmt.Errorf("throttle policy %q not found", policyID)
		}
	}
	if len(r.Config.ReqParams) > 0 {
		out[ReqParamsPlugin] = r.Config.ReqParams
	}
	if len(r.Config.BackendParams) > 0 {
		out[BackendParamsPlugin] = r.Config
	}
	return out, nil
}

// Build compiles the chain of route r: its effective plugins, each by its
// registered compiler, in priority order.
func Build(env *Env, r *router.Route) (*Chain, error) {
	eff, err := Effective(env.Config, r)
	if err != nil {
		return nil, err
	}
	renv := env.ForRoute(r)
	c := &Chain{steps: make([]Step, 0, len(eff))}
	var names, credQuery []string
	var last []ResponseStep
	for _, def := range config.RegisteredPlugins() {
		conf, ok := eff[def.Name]
		if !ok {
			continue
		}
		reg := lookup(def.Name)
		if reg == nil {
			return nil, fmt.Errorf("plugin %q has a config type but no compile step", def.Name)
		}
		step, err := reg.compile(conf, renv)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: %w", def.Name, err)
		}
		c.steps = append(c.steps, step)
		names = append(names, def.Name)
		if s, ok := step.(RequestStep); ok {
			c.request = append(c.request, s)
		}
		if s, ok := step.(ResponseStep); ok {
			if _, encodes := step.(Encoder); encodes {
				last = append(last, s)
			} else {
				c.response = append(c.response, s)
			}
		}
		if s, ok := step.(QueryCredential); ok && s.CredentialQuery() != "" {
			credQuery = append(credQuery, s.CredentialQuery())
		}
	}
	c.request = groupAuthenticators(c.request)
	c.response = append(c.response, last...)
	if key, ok := sharedChainKey(c.steps); ok {
		// Every step is one the compile shares between routes: so is the
		// chain (the 10,000 routes of the bench's full config have one).
		c.shared = true
		v, _ := env.Shared(key, func() (any, error) { return c.withInfo(env, names, credQuery), nil })
		return v.(*Chain), nil
	}
	return c.withInfo(env, names, credQuery), nil
}

// SharedStep is implemented by a step that one snapshot's compile shares
// between the routes with the same config of its plugin: it holds nothing
// of any route (what it keeps per route it finds by Request.RouteID).
// SharedKey is the Env.Shared key it is kept under. The routes whose steps
// are all shared, and the same, share one Chain.
type SharedStep interface {
	SharedKey() string
}

// sharedChainKey is the Env.Shared key of a chain of steps that are all
// SharedSteps, each key with its length so that no two lists make the same
// key; ok is false when a step is not shared.
func sharedChainKey(steps []Step) (key string, ok bool) {
	if len(steps) == 0 {
		return "", false
	}
	var b strings.Builder
	b.WriteString("chain")
	for _, st := range steps {
		sh, ok := st.(SharedStep)
		if !ok {
			return "", false
		}
		k := sh.SharedKey()
		b.WriteString("|" + strconv.Itoa(len(k)) + ":" + k)
	}
	return b.String(), true
}

// withInfo sets c's chainInfo: one per snapshot for each list of names
// and queries, the routes of a service mostly having the same plugins.
func (c *Chain) withInfo(env *Env, names, credQuery []string) *Chain {
	info, _ := env.Shared(chainInfoKey(names, credQuery), func() (any, error) {
		return &chainInfo{names: names, credQuery: credQuery}, nil
	})
	c.info = info.(*chainInfo)
	return c
}

// chainInfoKey is the Env.Shared key of a chainInfo: each string with its
// length, so that no two lists make the same key.
func chainInfoKey(names, credQuery []string) string {
	var b strings.Builder
	b.WriteString("chain-info")
	for i, list := range [][]string{names, credQuery} {
		b.WriteString("|" + strconv.Itoa(i) + "|")
		for _, s := range list {
			b.WriteString(strconv.Itoa(len(s)) + ":" + s)
		}
	}
	return b.String()
}

// Encoder is implemented by response steps that encode the body for the
// wire (gzip): they run after every other response step, whatever their
// priority, as nginx's gzip filter runs after the body filters, so that
// response-rewrite's filters see the body uncompressed.
type Encoder interface{ EncodesBody() }

// RouteScopeOf is the counter scope of route id: the route's id, so that
// its counters carry over reloads that move the route.
func RouteScopeOf(id string) uint64 { return xxhash.Sum64String(id) }
