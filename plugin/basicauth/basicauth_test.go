package basicauth

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

func hashed(t testing.TB, pw string) *credential {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	require.NoError(t, err)
	return &credential{hash: h}
}

func TestBcryptCacheHitCostsNoBcrypt(t *testing.T) {
	c := hashed(t, "pw")
	require.False(t, c.check([]byte("wrong")))
	for i := range c.verified {
		require.Nil(t, c.verified[i].Load(), "a refused password is not cached")
	}
	require.True(t, c.check([]byte("pw")))
	// bcrypt allocates on every call; a cache hit does not call it.
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if !c.check([]byte("pw")) {
			t.Fatal("refused")
		}
	}))
	require.NotZero(t, testing.AllocsPerRun(3, func() { c.check([]byte("wrong")) }), "a miss goes to bcrypt every time")
}

func BenchmarkBasicAuthBcryptCacheHit(b *testing.B) {
	c := hashed(b, "pw")
	c.check([]byte("pw"))
	pw := []byte("pw")
	b.ReportAllocs()
	for b.Loop() {
		c.check(pw)
	}
}

func BenchmarkBasicAuthBcryptMiss(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	require.NoError(b, err)
	c := &credential{hash: h}
	pw := []byte("pw")
	b.ReportAllocs()
	for b.Loop() {
		for i := range c.verified {
			c.verified[i].Store(nil)
		}
		c.check(pw)
	}
}
