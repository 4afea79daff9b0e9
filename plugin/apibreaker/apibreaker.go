// Package apibreaker reserves APISIX's api-breaker plugin: its config is
// recognised and refused ("not supported yet"); the `breaker` plugin is
// the gateway's circuit breaker.
package apibreaker

import (
	"errors"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "api-breaker"

// Priority is APISIX's (1005).
const Priority = 1005

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config has APISIX's keys, so that the only error is the one below.
type Config struct {
	BreakResponseCode    config.Ignored `json:"break_response_code"`
	BreakResponseBody    config.Ignored `json:"break_response_body"`
	BreakResponseHeaders config.Ignored `json:"break_response_headers"`
	MaxBreakerSec        config.Ignored `json:"max_breaker_sec"`
	Unhealthy            config.Ignored `json:"unhealthy"`
	Healthy              config.Ignored `json:"healthy"`
}

// Validate implements config.Validating: always refused.
func (c *Config) Validate(ch *config.Check) {
	ch.Errorf(`"api-breaker" is not supported yet (use "breaker")`)
}

func compile(any, *plugin.Env) (plugin.Step, error) {
	return nil, errors.New(`"api-breaker" is not supported yet`)
}
