package plugin

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// fakeAuth finds its credential when has is true and answers with answer.
type fakeAuth struct {
	has       bool
	answer    config.ResponseType
	ran       *[]string
	name      string
	challenge []byte
}

func (f *fakeAuth) HasCredential(*Request) bool { return f.has }
func (f *fakeAuth) OnRequest(*Request) config.ResponseType {
	*f.ran = append(*f.ran, f.name)
	return f.answer
}

type fakeChallenger struct{ fakeAuth }

func (f *fakeChallenger) Challenge() []byte { return f.challenge }

type plainStep struct {
	ran  *[]string
	name string
}

func (p *plainStep) OnRequest(*Request) config.ResponseType {
	*p.ran = append(*p.ran, p.name)
	return config.RespNone
}

func TestAuthenticatorsAreGrouped(t *testing.T) {
	var ran []string
	before := &plainStep{&ran, "before"}
	after := &plainStep{&ran, "after"}
	a := &fakeAuth{ran: &ran, name: "a", answer: config.RespAuthFailure}
	b := &fakeChallenger{fakeAuth{ran: &ran, name: "b", answer: config.RespNone, challenge: []byte("Basic")}}
	c := &fakeAuth{ran: &ran, name: "c", answer: config.RespNone}

	one := []RequestStep{before, a, after}
	require.Equal(t, one, groupAuthenticators(one), "one authenticator is not grouped")

	steps := groupAuthenticators([]RequestStep{before, a, b, after, c})
	require.Len(t, steps, 3, "the authenticators became one step at the first one's place")
	chain := &Chain{request: steps}
	run := func() (config.ResponseType, *Request) {
		ran = nil
		r := &Request{}
		return chain.OnRequest(r), r
	}

	b.has, c.has = true, true
	got, _ := run()
	require.Equal(t, config.RespNone, got)
	require.Equal(t, []string{"before", "b", "after"}, ran, "the first that has its credential decides alone")

	a.has = true
	got, _ = run()
	require.Equal(t, config.RespAuthFailure, got)
	require.Equal(t, []string{"before", "a"}, ran, "a refusal is final: the next authenticator does not run")

	a.has, b.has, c.has = false, false, false
	got, r := run()
	require.Equal(t, config.RespAuthMissing, got)
	require.Equal(t, []string{"before"}, ran, "none ran")
	require.Equal(t, "Basic", string(r.Challenge), "the first challenge among them")
}
