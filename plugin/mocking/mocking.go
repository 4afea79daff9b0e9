// Package mocking is APISIX's mocking plugin: the gateway answers the
// route itself with a fixed response, built once at compile time, and
// never calls the upstream. Request steps that stop requests (auth,
// restrictions, limits) still run first: the mock stands in for the
// backend, not for the gateway.
package mocking

import (
	"sort"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "mocking"

// Priority is APISIX's (10900). The answer is written only after every
// request step ran, so the priority orders nothing that matters.
const Priority = 10900

// DefaultContentType is APISIX's default content_type.
const DefaultContentType = "application/json;charset=utf8"

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config on a route, a service or global_plugins.
type Config struct {
	Delay           config.Seconds    `json:"delay"`
	ResponseStatus  int               `json:"response_status"`
	ContentType     string            `json:"content_type"`
	ResponseExample string            `json:"response_example"`
	ResponseHeaders map[string]string `json:"response_headers"`
	WithMockHeader  bool              `json:"with_mock_header"`
	ResponseSchema  *Schema           `json:"response_schema"`

	// Huawei's MOCK backend spelling of the same answer.
	StatusCode    int               `json:"status_code"`
	ResultContent string            `json:"result_content"`
	Headers       []plugin.HeaderKV `json:"headers"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.ResponseStatus = 200
	c.ContentType = DefaultContentType
	c.WithMockHeader = true
}

// MaxDelay bounds delay: a mock that holds a connection for longer is a
// mistake.
const MaxDelay = 60

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	ch.Field("response_status").IntRange(int64(c.ResponseStatus), 100, 599)
	if c.Delay < 0 || c.Delay > MaxDelay {
		ch.Field("delay").Errorf("must be 0..%d seconds, got %v", MaxDelay, float64(c.Delay))
	}
	for name := range c.ResponseHeaders {
		ch.Field("response_headers").HeaderName(name)
	}
	if c.StatusCode != 0 {
		if c.ResponseStatus != 200 {
			ch.Errorf("at most one of response_status and status_code")
		}
		ch.Field("status_code").IntRange(int64(c.StatusCode), 100, 599)
	}
	if c.ResultContent != "" && c.ResponseExample != "" {
		ch.Errorf("at most one of response_example and result_content")
	}
	if len(c.Headers) > 0 && len(c.ResponseHeaders) > 0 {
		ch.Errorf("at most one of response_headers and headers")
	}
	for i, h := range c.Headers {
		ch.Field("headers").Index(i).Field("key").HeaderName(h.Key)
	}
	if c.ResponseSchema != nil {
		if c.ResponseExample != "" || c.ResultContent != "" {
			ch.Errorf("at most one of response_example (or result_content) and response_schema")
		}
		c.ResponseSchema.validate(ch.Field("response_schema"), 0)
	}
}

// mockBy is the header with_mock_header adds (APISIX: x-mock-by).
var mockBy = [2][]byte{[]byte("X-Mock-By"), []byte("gateway")}

// Compile builds the answer of c; breaker's downgrade response uses it too.
func Compile(c *Config) *plugin.Answer {
	a := &plugin.Answer{
		Status:      c.ResponseStatus,
		ContentType: []byte(c.ContentType),
		Body:        []byte(c.ResponseExample + c.ResultContent), // at most one is set
		Delay:       c.Delay.Duration(),
	}
	if c.StatusCode != 0 {
		a.Status = c.StatusCode
	}
	if c.ResponseSchema != nil {
		a.Body = c.ResponseSchema.Generate()
	}
	a.AddHeaders(c.Headers)
	names := make([]string, 0, len(c.ResponseHeaders))
	for n := range c.ResponseHeaders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a.Headers = append(a.Headers, [2][]byte{[]byte(n), []byte(c.ResponseHeaders[n])})
	}
	if c.WithMockHeader {
		a.Headers = append(a.Headers, mockBy)
	}
	return a
}

type step struct {
	plugin.Stateless // no long-lived state: a reload may keep it (issue 20)
	answer           *plugin.Answer
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	return &step{answer: Compile(conf.(*Config))}, nil
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	r.Answer = s.answer
	return config.RespNone
}
