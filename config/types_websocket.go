package config

// GatewayWebsocket holds the gateway-wide WebSocket (HTTP/1.1 Upgrade)
// settings: gateway.websocket.
type GatewayWebsocket struct {
	// IdleTimeout closes an upgraded connection with no traffic in either
	// direction for this long (default 600 s).
	IdleTimeout Seconds `json:"idle_timeout"`
}

// RouteWebsocket overrides gateway.websocket for one route with
// enable_websocket: route.websocket.
type RouteWebsocket struct {
	// IdleTimeout replaces gateway.websocket.idle_timeout; 0 keeps it.
	IdleTimeout Seconds `json:"idle_timeout"`
}

// websocket checks gateway.websocket.
func (v *validator) gatewayWebsocket(path string, w *GatewayWebsocket) {
	v.positive(field(path, "idle_timeout"), w.IdleTimeout)
}

// routeWebsocket checks a route's enable_websocket and websocket: the
// settings of a route that does not upgrade would be ignored, so they are
// refused.
func (v *validator) routeWebsocket(path string, r *Route) {
	if r.Websocket == nil {
		return
	}
	if !r.EnableWebsocket {
		v.add(field(path, "websocket"), "is set but enable_websocket is false: set enable_websocket: true or remove it")
		return
	}
	v.nonNegative(field(field(path, "websocket"), "idle_timeout"), r.Websocket.IdleTimeout)
}
