// Package router compiles the routes of every service into one matcher and
// matches requests against it (../shared/spec/routing.md).
//
// Compile builds, per host key, a radix tree over full paths (service
// path_prefix + route path): exact hosts in a map, wildcard hosts in a map
// by suffix, and one tree for the services without hosts. A Router is
// immutable and safe for concurrent use. Each request brings its own Match,
// which the caller reuses across requests (fasthttp's RequestCtx lifetime):
// Match keeps the buffers it grows, so that matching allocates nothing in
// steady state and its cost grows with the length of the path and host, not
// with the number of routes.
//
// Where routing.md leaves a choice open, the router does this:
//
//   - Path: only escapes of unreserved characters are decoded; a broken
//     escape ("%zz", "%4") is a 400 like a path that climbs above "/".
//     A percent-escape in a config path is normalised the same way.
//   - Host: besides the port, one trailing dot is dropped ("example.com."),
//     and an IPv6 literal keeps its brackets ("[::1]"), as nginx's $host.
//   - Patterns: "{name}" and ":name" are parameters only as a whole segment
//     of a route path ("/v1/orders:cancel" is static); '*' is a prefix only
//     as the last character, and then a byte prefix ("/files*" matches
//     "/files" and "/filesx"); a service path_prefix is always literal.
//   - Precedence: the class of the pattern (exact, parameter, prefix) comes
//     first, then its shape (static before parameter at the leftmost
//     difference; for prefixes, the one whose '*' starts further right),
//     then the longer service path_prefix, the higher priority and file
//     order (service, route, path). So "/api/{x}" under "/" beats "/*"
//     under "/api".
//   - Methods: a route without methods takes every method, extension
//     methods included; HEAD is not implied by GET. Allow lists methods in
//     the config's order: GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS,
//     TRACE, CONNECT.
//   - 404 or 405: 405 only when every candidate (in every host tier tried)
//     failed on methods alone; a candidate that failed on vars makes it a
//     404, since no method would have been served.
//   - vars: a variable is missing when VarSource returns nil (a present but
//     empty value is the empty string); the router's own are missing when
//     the host is empty or the pattern has no such parameter. "!=" is
//     accepted as "~=". Numbers are decimal, with an optional exponent.
package router
