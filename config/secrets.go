package config

import "strings"

// Secret references (API7/APISIX secret syntax). The value of any field
// tagged `secret:"true"` that starts with one of these prefixes is a
// reference, never a literal: `$env://NAME` (envPrefix) is replaced at
// load (and so at each reload) by the process environment variable NAME
// (lookupEnv); a `$secret://` reference names a secret manager (vault,
// aws, gcp in API7), which the gateway does not have, and is a load error.
// Every other value is literal, bcrypt hashes such as `$2b$...` included.
const secretRefPrefix = "$secret://"

// resolveSecret returns the value a secret field stands for. ok is false
// when it cannot be resolved; msg then says why, naming the variable or
// provider and never a value.
func resolveSecret(s string) (value, msg string, ok bool) {
	switch {
	case strings.HasPrefix(s, envPrefix):
		value, msg = lookupEnv(s[len(envPrefix):])
		return value, msg, msg == ""
	case strings.HasPrefix(s, secretRefPrefix):
		provider, _, _ := strings.Cut(s[len(secretRefPrefix):], "/")
		return "", "secret provider " + quote(provider) + " is not supported (only $env://NAME references are)", false
	}
	return s, "", true
}
