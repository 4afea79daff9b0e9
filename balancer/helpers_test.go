package balancer

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// testNode is a node of a test upstream: host hostName(i), port 8080.
type testNode struct {
	weight, priority int
}

// testUpstream builds an upstream of the policy typ and a Down flag and an
// InFlight counter for each node.
func testUpstream(typ config.BalancerType, nodes ...testNode) (*config.Upstream, []NodeRef) {
	up := &config.Upstream{Type: typ}
	refs := make([]NodeRef, len(nodes))
	for i, n := range nodes {
		up.Nodes = append(up.Nodes, config.Node{Host: hostName(i), Port: 8080, Weight: n.weight, Priority: n.priority})
		refs[i] = NodeRef{Down: new(atomic.Bool), InFlight: new(atomic.Int64)}
	}
	return up, refs
}

func hostName(i int) string { return fmt.Sprintf("10.0.0.%d", i+1) }

func weights(ws ...int) []testNode {
	nodes := make([]testNode, len(ws))
	for i, w := range ws {
		nodes[i] = testNode{weight: w}
	}
	return nodes
}

// pickSeq picks n times with an empty Tried and returns the picks as letters
// ('a' for node 0), requiring that none fails open.
func pickSeq(t *testing.T, b Balancer, n int) string {
	t.Helper()
	seq := make([]byte, n)
	for i := range seq {
		idx, failOpen := b.Pick(nil, 0)
		if failOpen || idx < 0 || idx >= 26 {
			require.FailNow(t, "bad pick", "pick %d: idx %d, failOpen %v", i, idx, failOpen)
		}
		seq[i] = byte('a' + idx)
	}
	return string(seq)
}

// requireWindows checks that every window of sum(ws) consecutive picks of seq
// holds each node exactly its weight times.
func requireWindows(t *testing.T, seq string, ws []int) {
	t.Helper()
	sum := 0
	for _, w := range ws {
		sum += w
	}
	require.GreaterOrEqual(t, len(seq), sum)
	counts := make([]int, len(ws))
	for i := range len(seq) {
		counts[seq[i]-'a']++
		if i >= sum {
			counts[seq[i-sum]-'a']--
		}
		if i >= sum-1 && !slices.Equal(ws, counts) {
			require.Equal(t, ws, counts, "window ending at pick %d", i)
		}
	}
}

func gcdInts(ws []int) int {
	ms := make([]member, len(ws))
	for i, w := range ws {
		ms[i].weight = w
	}
	return gcd(ms)
}
