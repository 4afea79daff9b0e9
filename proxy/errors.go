package proxy

import (
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
)

// errType is one kind of gateway-made error response; config owns the list
// (plugins answer with them too).
type errType = config.ResponseType

const (
	errNone               = config.RespNone
	errNotFound           = config.RespNotFound
	errMethodNotAllowed   = config.RespMethodNotAllowed
	errBadRequest         = config.RespBadRequest
	errEntityTooLarge     = config.RespEntityTooLarge
	errHeaderTooLarge     = config.RespHeaderTooLarge
	errAuthMissing        = config.RespAuthMissing
	errAuthFailure        = config.RespAuthFailure
	errAccessDenied       = config.RespAccessDenied
	errUnauthorized       = config.RespUnauthorized
	errThrottled          = config.RespThrottled
	errThrottleStore      = config.RespThrottleStoreUnavailable
	errBackendUnavailable = config.RespBackendUnavailable
	errBackendTimeout     = config.RespBackendTimeout
	errRequestTimeout     = config.RespRequestTimeout
	errClientClosed       = config.RespClientClosed
	numErrTypes           = config.NumResponseTypes
)

type errDef struct {
	status int
	code   string
	msg    string
}

var errDefs = [numErrTypes]errDef{
	errNone:               {},
	errNotFound:           {404, "APIG.0101", "No route matches the request"},
	errMethodNotAllowed:   {405, "APIG.0102", "The route does not allow this method"},
	errBadRequest:         {400, "APIG.0201", "Malformed request"},
	errEntityTooLarge:     {413, "APIG.0201", "Request body too large"},
	errHeaderTooLarge:     {431, "APIG.0201", "Request headers too large"},
	errAuthMissing:        {401, "APIG.0303", "No API key in the request"},
	errAuthFailure:        {401, "APIG.0301", "Invalid API key"},
	errAccessDenied:       {403, "APIG.0401", "Access denied"},
	errUnauthorized:       {403, "APIG.0302", "The consumer is not authorized to access this API"},
	errThrottled:          {429, "APIG.0308", "Request throttled"},
	errThrottleStore:      {503, "APIG.0309", "Throttling counters unavailable"},
	errBackendUnavailable: {502, "APIG.0202", "Backend unavailable"},
	errBackendTimeout:     {504, "APIG.0203", "Backend timeout"},
	errRequestTimeout:     {408, "APIG.0201", "Request body not received in time"},
	errClientClosed:       {499, "APIG.0201", "Client closed the request"},
}

// Template pieces: literal text or one of the $context variables.
const (
	partLiteral = iota
	partCode
	partMessage
	partRequestID
)

type templatePart struct {
	kind int
	text string
}

// errResponse is one compiled gateway response.
type errResponse struct {
	status      int
	contentType string
	headers     [][2]string
	body        []templatePart
}

// errResponses holds every error type's response for one snapshot.
type errResponses [numErrTypes]errResponse

const defaultErrorBody = `{"error_code":"$context.error.code","error_msg":"$context.error.message","request_id":"$context.requestId"}`

func compileErrResponses(overrides map[string]config.GatewayResponse) *errResponses {
	var r errResponses
	for t := errNotFound; t < numErrTypes; t++ {
		def := errDefs[t]
		er := errResponse{status: def.status, contentType: "application/json", body: parseTemplate(defaultErrorBody)}
		o, ok := overrides[t.String()]
		if !ok {
			// Huawei's catch-alls: a type without its own entry takes
			// DEFAULT_4XX or DEFAULT_5XX by its status class.
			o, ok = overrides[defaultResponseFor(def.status)]
		}
		if ok {
			if o.Status != 0 {
				er.status = o.Status
			}
			if o.Body != "" {
				er.body = parseTemplate(o.Body)
			}
			for k, v := range o.Headers {
				if strings.EqualFold(k, "Content-Type") {
					er.contentType = v
					continue
				}
				er.headers = append(er.headers, [2]string{k, v})
			}
		}
		r[t] = er
	}
	return &r
}

// defaultResponseFor names the Huawei catch-all response of a status.
func defaultResponseFor(status int) string {
	if status >= 500 {
		return config.Default5XX
	}
	return config.Default4XX
}

var templateVars = []struct {
	name string
	kind int
}{
	{"$context.error.code", partCode},
	{"$context.error.message", partMessage},
	{"$context.requestId", partRequestID},
}

func parseTemplate(s string) []templatePart {
	var parts []templatePart
	for len(s) > 0 {
		next, kind, nameLen := -1, 0, 0
		for _, v := range templateVars {
			if i := strings.Index(s, v.name); i >= 0 && (next < 0 || i < next) {
				next, kind, nameLen = i, v.kind, len(v.name)
			}
		}
		if next < 0 {
			parts = append(parts, templatePart{kind: partLiteral, text: s})
			break
		}
		if next > 0 {
			parts = append(parts, templatePart{kind: partLiteral, text: s[:next]})
		}
		parts = append(parts, templatePart{kind: kind})
		s = s[next+nameLen:]
	}
	return parts
}

// write sends error t to the client; msg, when set, replaces the type's
// error message. buf is the request's scratch buffer; the body is built
// there and copied into the response.
func (r *errResponses) write(ctx *fasthttp.RequestCtx, t errType, requestID, msg, buf []byte) []byte {
	er := &r[t]
	def := &errDefs[t]
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(er.status)
	ctx.Response.Header.SetContentType(er.contentType)
	for _, h := range er.headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
	buf = buf[:0]
	for _, p := range er.body {
		switch p.kind {
		case partLiteral:
			buf = append(buf, p.text...)
		case partCode:
			buf = append(buf, def.code...)
		case partMessage:
			if msg != nil {
				buf = plugin.AppendJSONString(buf, msg)
			} else {
				buf = append(buf, def.msg...)
			}
		case partRequestID:
			buf = plugin.AppendJSONString(buf, requestID)
		}
	}
	ctx.Response.SetBody(buf)
	return buf
}
