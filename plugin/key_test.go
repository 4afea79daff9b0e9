package plugin

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/router"
)

// vars is a VarSource over a map keyed by kind and name.
type vars map[router.VarKind]map[string]string

func (v vars) Var(kind router.VarKind, name []byte) []byte {
	if s, ok := v[kind][string(name)]; ok {
		return []byte(s)
	}
	return nil
}

func TestKeyRendersParsedTemplates(t *testing.T) {
	src := vars{
		config.VarRemoteAddr:   {"": "10.0.0.7"},
		config.VarHTTP:         {"x-user": "alice"},
		config.VarArg:          {"id": "42"},
		config.VarConsumerName: {"": "bob"},
	}
	render := func(t config.KeyTemplate) string {
		k := NewKey(t)
		return string(k.Append(nil, src))
	}
	tmpl, err := config.ParseKeyTemplate("u=$http_X_User;$arg_id;$arg_missing.")
	require.NoError(t, err)
	require.Equal(t, "u=alice;42;.", render(tmpl))

	hk, err := config.ParseHashKey(config.HashOnVars, "arg_id")
	require.NoError(t, err)
	require.Equal(t, "42", render(hk))
	hk, err = config.ParseHashKey(config.HashOnConsumer, "")
	require.NoError(t, err)
	require.Equal(t, "bob", render(hk))
	hk, err = config.ParseHashKey(config.HashOnHeader, "")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.7", render(hk), "an empty key hashes on remote_addr")

	require.Equal(t, "const", render(config.LiteralKey("const")))
	require.Empty(t, render(config.KeyTemplate{}), "the zero template renders nothing: callers fall back to the client address")
}
