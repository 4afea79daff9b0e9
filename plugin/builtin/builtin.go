// Package builtin registers every plugin the gateway ships with; importing
// it is what makes their names known to the config loader.
package builtin

import (
	_ "gateway/plugin/basicauth"           // basic-auth
	_ "gateway/plugin/breaker"             // breaker
	_ "gateway/plugin/consumerrestriction" // consumer-restriction
	_ "gateway/plugin/hmacauth"            // hmac-auth
	_ "gateway/plugin/iprestriction"       // ip-restriction
	_ "gateway/plugin/jwtauth"             // jwt-auth
	_ "gateway/plugin/keyauth"             // key-auth
	_ "gateway/plugin/limitcount"          // limit-count
	_ "gateway/plugin/mocking"             // mocking
	_ "gateway/plugin/throttle"            // throttle_policy
	_ "gateway/plugin/trafficsplit"        // traffic-split
)
