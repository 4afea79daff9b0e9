package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWebsocketDefaultsAndOverride(t *testing.T) {
	cfg := mustParse(t, withRoute("{paths: [/ws], enable_websocket: true, websocket: {idle_timeout: 30}}"))
	require.Equal(t, Seconds(600), cfg.Gateway.Websocket.IdleTimeout)
	r := cfg.Services[0].Routes[0]
	require.True(t, r.EnableWebsocket)
	require.Equal(t, Seconds(30), r.Websocket.IdleTimeout)

	cfg = mustParse(t, "gateway: {websocket: {idle_timeout: 5}}\n"+withRoute("{paths: [/ws], enable_websocket: true}"))
	require.Equal(t, Seconds(5), cfg.Gateway.Websocket.IdleTimeout)
	require.Nil(t, cfg.Services[0].Routes[0].Websocket)
}

func TestValidateWebsocket(t *testing.T) {
	runErrCases(t, []errCase{
		{"websocket without enable_websocket", withRoute("{paths: [/ws], websocket: {idle_timeout: 30}}"),
			"services[0].routes[0].websocket", []string{"enable_websocket is false"}},
		{"route idle_timeout negative", withRoute("{paths: [/ws], enable_websocket: true, websocket: {idle_timeout: -1}}"),
			"services[0].routes[0].websocket.idle_timeout", []string{"must be 0 or"}},
		{"gateway idle_timeout zero", "gateway: {websocket: {idle_timeout: 0}}\n" + withRoute("{paths: [/ws]}"),
			"gateway.websocket.idle_timeout", []string{"must be"}},
		{"unknown websocket key", withRoute("{paths: [/ws], enable_websocket: true, websocket: {idle: 3}}"),
			"services[0].routes[0].websocket.idle", nil},
	})
}
