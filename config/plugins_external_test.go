package config_test

// The shipped plugins register themselves with config; importing them here,
// in the external test package, puts them in the config test binary, so
// that the internal tests can load configs that use them. (config itself
// never imports a plugin.)
import _ "gateway/plugin/builtin"
