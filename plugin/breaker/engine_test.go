package breaker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

const sec = int64(time.Second)

func testEngine(p params) *engine {
	st := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "s"}, []string{"route"})
	tr := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t"}, []string{"route", "to"})
	e := newEngine(p, "r", zap.NewNop(), st, tr)
	e.Committed()
	return e
}

func TestCounterWindowForgetsOldFailures(t *testing.T) {
	e := testEngine(params{threshold: 3, window: 10, openFor: 5 * sec})
	t0 := 1000 * sec
	e.record(admitPass, true, t0)
	e.record(admitPass, true, t0+sec)
	// The first failure left the 10 s window: two in it, still closed.
	e.record(admitPass, true, t0+10*sec)
	require.EqualValues(t, closed, e.state.Load())
	e.record(admitPass, true, t0+10*sec)
	require.EqualValues(t, open, e.state.Load())
	require.Equal(t, admitReject, e.admit(t0+14*sec))
}

func TestPercentageNeedsMinCalls(t *testing.T) {
	e := testEngine(params{percentage: true, minCalls: 4, percent: 50, window: 60, openFor: sec})
	t0 := 1000 * sec
	e.record(admitPass, true, t0)
	e.record(admitPass, false, t0)
	e.record(admitPass, false, t0)
	require.EqualValues(t, closed, e.state.Load(), "1 of 3 calls")
	e.record(admitPass, true, t0)
	require.EqualValues(t, open, e.state.Load(), "2 of 4 calls is 50%")
}

func TestHalfOpenOneProbeAndStaleProbe(t *testing.T) {
	e := testEngine(params{threshold: 1, window: 10, openFor: 5 * sec})
	t0 := 1000 * sec
	e.record(admitPass, true, t0)
	require.Equal(t, admitReject, e.admit(t0+4*sec))
	require.Equal(t, admitProbe, e.admit(t0+5*sec))
	require.EqualValues(t, halfOpen, e.state.Load())
	require.Equal(t, admitReject, e.admit(t0+6*sec), "one probe at a time")
	// The probe never reported (its client went away): replaced.
	require.Equal(t, admitProbe, e.admit(t0+10*sec))
	e.record(admitProbe, false, t0+10*sec)
	require.EqualValues(t, closed, e.state.Load())
	require.Equal(t, admitPass, e.admit(t0+11*sec))

	// A failed probe re-opens for open_breaker_time.
	e.record(admitPass, true, t0+20*sec)
	require.Equal(t, admitProbe, e.admit(t0+25*sec))
	e.record(admitProbe, true, t0+25*sec)
	require.EqualValues(t, open, e.state.Load())
	require.Equal(t, admitReject, e.admit(t0+29*sec))
}

func TestAPISIXBackoff(t *testing.T) {
	e := testEngine(params{apisix: true, threshold: 2, successes: 2, openFor: 5 * sec, window: 1})
	t0 := 1000 * sec
	e.recordAPISIX(outcomeFail, t0)
	e.recordAPISIX(outcomeFail, t0)
	require.EqualValues(t, open, e.state.Load())
	require.Equal(t, int64(2*sec), e.openFor, "2^1 s")
	require.Equal(t, admitPass, e.admit(t0+2*sec))
	e.recordAPISIX(outcomeFail, t0+2*sec)
	e.recordAPISIX(outcomeFail, t0+2*sec)
	require.Equal(t, int64(4*sec), e.openFor, "2^2 s")
	e.recordAPISIX(outcomeFail, t0+6*sec)
	e.recordAPISIX(outcomeFail, t0+6*sec)
	require.Equal(t, int64(5*sec), e.openFor, "capped by max_breaker_sec")
	e.recordAPISIX(outcomeOK, t0+12*sec)
	e.recordAPISIX(outcomeNeutral, t0+12*sec)
	e.recordAPISIX(outcomeOK, t0+12*sec)
	require.EqualValues(t, closed, e.state.Load())
	require.Zero(t, e.unhealthy)
}

func TestParseCondition(t *testing.T) {
	c, err := parseCondition("$context.statusCode in [502, 503] or $context.statusCode >= 500 and $context.backendResponseLatency > 100")
	require.NoError(t, err)
	require.True(t, c.match(502, 0))
	require.False(t, c.match(500, 50))
	require.True(t, c.match(500, 150))
	require.False(t, c.match(200, 150))
	for _, bad := range []string{"", "$context.statusCode", "$context.statusCode => 5", "$context.statusCode > x", "$context.x > 1"} {
		_, err := parseCondition(bad)
		require.Error(t, err, bad)
	}
}
