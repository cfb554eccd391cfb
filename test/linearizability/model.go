// Package linearizability is the key-value model the robustness suite
// checks histories against with porcupine.
package linearizability

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// Input is one operation on one key. CAS puts value when the key holds
// expect ("" = absent).
type Input struct {
	Op            string // put, get, cas, delete
	Key           string
	Value, Expect string
}

// Output is what etcd answered; unknown when the outcome is not known.
type Output struct {
	Unknown bool
	Value   string // get: the value read ("" = absent)
	OK      bool   // cas: succeeded; delete: a key was deleted
}

// KVModel is a key-value register per key: the history is checked one key
// at a time.
var KVModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		s, in, out := state.(string), input.(Input), output.(Output)
		switch in.Op {
		case "put":
			return true, in.Value
		case "get":
			return out.Value == s, s
		case "cas":
			if out.Unknown {
				// Placed by the checker: it applied if it could.
				if s == in.Expect {
					return true, in.Value
				}
				return true, s
			}
			if out.OK {
				return s == in.Expect, in.Value
			}
			return s != in.Expect, s
		case "delete":
			if out.Unknown {
				return true, ""
			}
			return out.OK == (s != ""), ""
		}
		return false, s
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(Input), output.(Output)
		res := fmt.Sprintf("%q ok=%v", out.Value, out.OK)
		if out.Unknown {
			res = "unknown"
		}
		return fmt.Sprintf("%s(%s, %q, expect %q) -> %s", in.Op, in.Key, in.Value, in.Expect, res)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("%q", state) },
}
