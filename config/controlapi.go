package config

import (
	"os"
	"strings"
)

// envPrefix marks a value that is read from the environment when the file
// loads, as APISIX writes secrets: `$env://NAME`.
const envPrefix = "$env://"

// minTokenLen is the shortest control API token accepted: the control API
// has no rate limit, so a short token could be guessed.
const minTokenLen = 16

// controlAPI checks gateway.control_api. The token's value is
// a secret: no message here prints it, only the key path and, for
// `$env://NAME`, the variable's name.
func (v *validator) controlAPI(path string, c *ControlAPI) {
	// A `$env://NAME` token was resolved by the decoder, as every secret
	// field is (secrets.go).
	tp := field(path, "token")
	if c.Token != "" {
		switch {
		case len(c.Token) < minTokenLen:
			v.add(tp, "must have at least %d characters, got %d", minTokenLen, len(c.Token))
		case !visibleASCII(c.Token):
			v.add(tp, "must be printable ASCII without spaces (it is sent in an Authorization header)")
		}
	}
	if c.ProtectMetrics && c.Token == "" {
		v.add(field(path, "protect_metrics"), "needs gateway.control_api.token")
	}
	for i, h := range c.AllowedHosts {
		hp := indexPath(field(path, "allowed_hosts"), i)
		if !validHostname(h) {
			v.add(hp, "must be a host name or IP address without a port, got %s", quote(h))
			continue
		}
		c.AllowedHosts[i] = strings.ToLower(h)
	}
}

// lookupEnv reads the variable of a `$env://NAME` value. It returns a
// message naming the variable (never a value) when it cannot be used.
func lookupEnv(name string) (val, msg string) {
	if !validEnvName(name) {
		return "", "invalid environment variable name " + quote(name) + " after " + envPrefix
	}
	val, ok := os.LookupEnv(name)
	switch {
	case !ok:
		return "", "environment variable " + name + " is not set"
	case val == "":
		return "", "environment variable " + name + " is empty"
	}
	return val, ""
}

func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) {
			return false
		}
	}
	return true
}

func visibleASCII(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
