package proxy

import (
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/config"
)

// errType is one kind of gateway-made error response (operations.md,
// Huawei's "gateway responses").
type errType uint8

const (
	errNone errType = iota
	errNotFound
	errMethodNotAllowed
	errBadRequest
	errEntityTooLarge
	errHeaderTooLarge
	errAuthMissing
	errAuthFailure
	errAccessDenied
	errThrottled
	errBackendUnavailable
	errBackendTimeout
	errRequestTimeout
	// errClientClosed is logged, never written: the client went away.
	errClientClosed
	numErrTypes
)

type errDef struct {
	name   string // the key in gateway_responses, and error_type in the access log
	status int
	code   string
	msg    string
}

var errDefs = [numErrTypes]errDef{
	errNone:               {},
	errNotFound:           {"NOT_FOUND", 404, "APIG.0101", "No route matches the request"},
	errMethodNotAllowed:   {"METHOD_NOT_ALLOWED", 405, "APIG.0102", "The route does not allow this method"},
	errBadRequest:         {"REQUEST_PARAMETERS_FAILURE", 400, "APIG.0201", "Malformed request"},
	errEntityTooLarge:     {"REQUEST_ENTITY_TOO_LARGE", 413, "APIG.0201", "Request body too large"},
	errHeaderTooLarge:     {"REQUEST_HEADER_TOO_LARGE", 431, "APIG.0201", "Request headers too large"},
	errAuthMissing:        {"AUTH_HEADER_MISSING", 401, "APIG.0303", "No API key in the request"},
	errAuthFailure:        {"AUTH_FAILURE", 401, "APIG.0301", "Invalid API key"},
	errAccessDenied:       {"ACCESS_DENIED", 403, "APIG.0401", "Access denied"},
	errThrottled:          {"THROTTLED", 429, "APIG.0308", "Request throttled"},
	errBackendUnavailable: {"BACKEND_UNAVAILABLE", 502, "APIG.0202", "Backend unavailable"},
	errBackendTimeout:     {"BACKEND_TIMEOUT", 504, "APIG.0203", "Backend timeout"},
	errRequestTimeout:     {"REQUEST_TIMEOUT", 408, "APIG.0201", "Request body not received in time"},
	errClientClosed:       {"CLIENT_CLOSED_REQUEST", 499, "APIG.0201", "Client closed the request"},
}

func (t errType) String() string { return errDefs[t].name }

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
		if o, ok := overrides[def.name]; ok {
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
				buf = appendJSONString(buf, msg)
			} else {
				buf = append(buf, def.msg...)
			}
		case partRequestID:
			buf = appendJSONString(buf, requestID)
		}
	}
	ctx.Response.SetBody(buf)
	return buf
}

// appendJSONString appends s escaped for use inside a JSON string. Request
// ids come from clients, so they may hold quotes or control bytes.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
