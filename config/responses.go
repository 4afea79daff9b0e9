package config

// ResponseType is one kind of gateway-made response (operations.md,
// Huawei's "gateway responses"): what gateway_responses may override and
// what a plugin step answers with when it stops a request.
type ResponseType uint8

// The gateway responses. RespNone means "no gateway response": the
// request goes on.
const (
	RespNone ResponseType = iota
	RespNotFound
	RespMethodNotAllowed
	RespBadRequest
	RespEntityTooLarge
	RespHeaderTooLarge
	RespAuthMissing
	RespAuthFailure
	RespAccessDenied
	// RespUnauthorized: an authenticated consumer or app that may not
	// call the API (consumer-restriction; Huawei's app not bound to it).
	RespUnauthorized
	RespThrottled
	// RespThrottleStoreUnavailable: a cluster throttle policy without
	// allow_degradation could not reach its Redis.
	RespThrottleStoreUnavailable
	RespBackendUnavailable
	RespBackendTimeout
	RespRequestTimeout
	// RespClientClosed is logged, never written: the client went away.
	RespClientClosed
	NumResponseTypes
)

var responseNames = [NumResponseTypes]string{
	RespNotFound:                 "NOT_FOUND",
	RespMethodNotAllowed:         "METHOD_NOT_ALLOWED",
	RespBadRequest:               "REQUEST_PARAMETERS_FAILURE",
	RespEntityTooLarge:           "REQUEST_ENTITY_TOO_LARGE",
	RespHeaderTooLarge:           "REQUEST_HEADER_TOO_LARGE",
	RespAuthMissing:              "AUTH_HEADER_MISSING",
	RespAuthFailure:              "AUTH_FAILURE",
	RespAccessDenied:             "ACCESS_DENIED",
	RespUnauthorized:             "UNAUTHORIZED",
	RespThrottled:                "THROTTLED",
	RespThrottleStoreUnavailable: "THROTTLE_STORE_UNAVAILABLE",
	RespBackendUnavailable:       "BACKEND_UNAVAILABLE",
	RespBackendTimeout:           "BACKEND_TIMEOUT",
	RespRequestTimeout:           "REQUEST_TIMEOUT",
	RespClientClosed:             "CLIENT_CLOSED_REQUEST",
}

// String is the type's name: its key in gateway_responses and its
// error_type in the access log.
func (t ResponseType) String() string { return responseNames[t] }

// Overridable reports whether gateway_responses may override the type
// (every type the gateway writes).
func (t ResponseType) Overridable() bool {
	return t > RespNone && t < NumResponseTypes && t != RespClientClosed
}
