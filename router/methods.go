package router

import "fmt"

// methodSet is a bit set of the nine methods a route may name. A route's
// methods, the request's method and the methods collected for a 405 are all
// one word, so checking a candidate is a single AND.
type methodSet uint16

// The bit order is the canonical order of the Allow header. It follows the
// config's list of methods (config.md, Route.methods).
const (
	mGET methodSet = 1 << iota
	mPOST
	mPUT
	mDELETE
	mPATCH
	mHEAD
	mOPTIONS
	mTRACE
	mCONNECT

	numMethods = iota
)

var methodNames = [numMethods]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"}

// allowHeaders holds the Allow header value of every method set, built once,
// so that a 405 answer slices a ready value instead of joining names per
// request.
var allowHeaders = func() (t [1 << numMethods][]byte) {
	for s := range t {
		var b []byte
		for i, name := range methodNames {
			if s&(1<<i) == 0 {
				continue
			}
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, name...)
		}
		t[s] = b
	}
	return t
}()

// requestMethod maps a request method to its bit. An extension method (or a
// lower-case one: methods are case-sensitive) maps to 0, which only routes
// without methods accept.
func requestMethod(b []byte) methodSet {
	// switch on string(b) compiles to comparisons without a conversion.
	switch string(b) {
	case "GET":
		return mGET
	case "POST":
		return mPOST
	case "PUT":
		return mPUT
	case "DELETE":
		return mDELETE
	case "PATCH":
		return mPATCH
	case "HEAD":
		return mHEAD
	case "OPTIONS":
		return mOPTIONS
	case "TRACE":
		return mTRACE
	case "CONNECT":
		return mCONNECT
	}
	return 0
}

// compileMethods turns a route's methods into a set; an empty list is 0,
// meaning every method, extension methods included.
func compileMethods(names []string) (methodSet, error) {
	var s methodSet
	for i, name := range names {
		b := requestMethod([]byte(name))
		if b == 0 {
			return 0, &indexError{"methods", i, fmt.Errorf("unknown method %q", name)}
		}
		s |= b
	}
	return s, nil
}

// accepts reports whether a route with method set s takes a request with
// method bit m.
func (s methodSet) accepts(m methodSet) bool { return s == 0 || s&m != 0 }
