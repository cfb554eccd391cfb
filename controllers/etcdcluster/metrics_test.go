package etcdcluster

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSetSeries: a member removed, an alarm cleared or a cluster deleted
// leaves no series behind; another cluster's series are untouched.
func TestSetSeries(t *testing.T) {
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_db_size_bytes"}, []string{"namespace", "cluster", "member"})
	one := func(m string, v float64) map[string]series {
		return map[string]series{m: {labels: []string{m}, value: v}}
	}
	both := map[string]series{"a": {labels: []string{"a"}, value: 1}, "b": {labels: []string{"b"}, value: 2}}
	setSeries(vec, "t", "main", both)
	setSeries(vec, "t", "other", one("x", 9))
	if n := testutil.CollectAndCount(vec); n != 3 {
		t.Fatalf("%d series, want 3", n)
	}
	setSeries(vec, "t", "main", one("b", 5))
	if n := testutil.CollectAndCount(vec); n != 2 || testutil.ToFloat64(vec.WithLabelValues("t", "main", "b")) != 5 {
		t.Fatalf("after a's removal: %d series", n)
	}
	if testutil.ToFloat64(vec.WithLabelValues("t", "other", "x")) != 9 {
		t.Fatal("the other cluster's series changed")
	}
	vec.DeletePartialMatch(prometheus.Labels{"namespace": "t", "cluster": "main"})
	if n := testutil.CollectAndCount(vec); n != 1 {
		t.Fatalf("%d series after the cluster's were dropped, want 1", n)
	}
}
