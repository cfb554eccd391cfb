package linearizability

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

// TestKVModel: histories a correct store can give are accepted, and the
// anomalies the suite must catch are not: a lost acknowledged write, a
// stale read, a CAS that succeeded against the wrong value, a delete that
// found nothing after a put.
func TestKVModel(t *testing.T) {
	put := func(c int, call, ret int64, k, v string) porcupine.Operation {
		return op(c, call, ret, Input{Op: "put", Key: k, Value: v}, Output{})
	}
	get := func(c int, call, ret int64, k, v string) porcupine.Operation {
		return op(c, call, ret, Input{Op: "get", Key: k}, Output{Value: v})
	}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"read your write", []porcupine.Operation{put(0, 0, 10, "k", "a"), get(1, 20, 30, "k", "a")}, true},
		{"a read concurrent with a write sees either", []porcupine.Operation{put(0, 0, 10, "k", "a"), put(0, 20, 40, "k", "b"), get(1, 25, 35, "k", "a")}, true},
		{"an acknowledged write lost", []porcupine.Operation{put(0, 0, 10, "k", "a"), get(1, 20, 30, "k", "")}, false},
		{"a stale read after a newer one", []porcupine.Operation{put(0, 0, 10, "k", "a"), put(0, 20, 30, "k", "b"), get(1, 40, 50, "k", "b"), get(2, 60, 70, "k", "a")}, false},
		{"keys are independent", []porcupine.Operation{put(0, 0, 10, "k", "a"), put(1, 0, 10, "j", "b"), get(2, 20, 30, "k", "a"), get(2, 40, 50, "j", "b")}, true},
		{"a CAS that succeeded on the wrong value", []porcupine.Operation{put(0, 0, 10, "k", "a"),
			op(1, 20, 30, Input{Op: "cas", Key: "k", Value: "c", Expect: "b"}, Output{OK: true})}, false},
		{"a CAS that failed on the right value", []porcupine.Operation{put(0, 0, 10, "k", "a"),
			op(1, 20, 30, Input{Op: "cas", Key: "k", Value: "c", Expect: "a"}, Output{OK: false})}, false},
		{"a CAS on an absent key", []porcupine.Operation{op(1, 0, 10, Input{Op: "cas", Key: "k", Value: "c", Expect: ""}, Output{OK: true}), get(0, 20, 30, "k", "c")}, true},
		{"a delete that found nothing after a put", []porcupine.Operation{put(0, 0, 10, "k", "a"),
			op(1, 20, 30, Input{Op: "delete", Key: "k"}, Output{OK: false})}, false},
		{"a write of unknown outcome seen later", []porcupine.Operation{
			op(0, 0, math.MaxInt64, Input{Op: "put", Key: "k", Value: "a"}, Output{Unknown: true}), get(1, 20, 30, "k", "a")}, true},
		{"a write of unknown outcome never seen", []porcupine.Operation{
			op(0, 0, math.MaxInt64, Input{Op: "put", Key: "k", Value: "a"}, Output{Unknown: true}), get(1, 20, 30, "k", "")}, true},
		{"a write of unknown outcome seen before it was made", []porcupine.Operation{
			get(1, 0, 10, "k", "a"), op(0, 20, math.MaxInt64, Input{Op: "put", Key: "k", Value: "a"}, Output{Unknown: true})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(KVModel, tc.history); got != tc.ok {
				t.Fatalf("linearizable = %v, want %v", got, tc.ok)
			}
		})
	}
}
