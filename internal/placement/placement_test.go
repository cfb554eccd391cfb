package placement

import (
	"testing"
	"time"
)

var (
	abc     = []string{"a", "b", "c"}
	allUp   = map[string]bool{"a": true, "b": true, "c": true}
	bDown   = map[string]bool{"a": true, "c": true}
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	healthy = true
)

func m(name, zone string, ok bool, age int) Member {
	return Member{Name: name, Zone: zone, Healthy: ok, Created: t0.Add(time.Duration(age) * time.Minute)}
}

func TestZoneForNewMember(t *testing.T) {
	for _, tc := range []struct {
		name      string
		zones     []string
		ready     map[string]bool
		members   []Member
		preferred string
		want      string
		ok        bool
	}{
		{"first member goes to the first zone", abc, allUp, nil, "", "a", true},
		{"second to the next empty zone", abc, allUp, []Member{m("1", "a", healthy, 0)}, "", "b", true},
		{"third to the last empty zone", abc, allUp, []Member{m("1", "a", healthy, 0), m("2", "b", healthy, 0)}, "", "c", true},
		{"fourth wraps around to the first zone", abc, allUp, []Member{m("1", "a", healthy, 0), m("2", "b", healthy, 0), m("3", "c", healthy, 0)}, "", "a", true},
		{"a NotReady zone is skipped", abc, bDown, []Member{m("1", "a", healthy, 0)}, "", "c", true},
		{"replacement returns to its zone", abc, allUp, []Member{m("1", "a", healthy, 0), m("3", "c", healthy, 0)}, "b", "b", true},
		{"replacement for a lost zone goes to the emptiest Ready zone", abc, bDown, []Member{m("1", "a", healthy, 0), m("3", "c", healthy, 1), m("4", "c", healthy, 2)}, "b", "a", true},
		{"preferred zone no longer asked for is ignored", []string{"a", "c"}, allUp, []Member{m("1", "a", healthy, 0)}, "b", "c", true},
		{"no Ready zone", abc, map[string]bool{}, nil, "", "", false},
		{"no zones asked: not pinned", nil, nil, nil, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ZoneForNewMember(tc.zones, tc.ready, tc.members, tc.preferred)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ZoneForNewMember = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMemberToRemove(t *testing.T) {
	for _, tc := range []struct {
		name    string
		zones   []string
		members []Member
		want    string
	}{
		{"from the zone with the most members", abc, []Member{m("a1", "a", healthy, 0), m("b1", "b", healthy, 0), m("b2", "b", healthy, 1), m("c1", "c", healthy, 0)}, "b1"},
		{"unhealthy before healthy in that zone", abc, []Member{m("a1", "a", healthy, 0), m("b1", "b", healthy, 0), m("b2", "b", !healthy, 1), m("c1", "c", healthy, 0)}, "b2"},
		{"zone count beats health", abc, []Member{m("a1", "a", !healthy, 0), m("b1", "b", healthy, 0), m("b2", "b", healthy, 1), m("c1", "c", healthy, 0)}, "b1"},
		{"oldest when all else is equal", abc, []Member{m("a1", "a", healthy, 5), m("b1", "b", healthy, 3), m("c1", "c", healthy, 4)}, "b1"},
		{"5 to 3 over three zones", abc, []Member{m("a1", "a", healthy, 0), m("a2", "a", healthy, 1), m("b1", "b", healthy, 0), m("b2", "b", healthy, 2), m("c1", "c", healthy, 0)}, "a1"},
		{"a member outside the asked zones first", []string{"a", "b"}, []Member{m("a1", "a", healthy, 0), m("a2", "a", healthy, 1), m("c1", "c", healthy, 5)}, "c1"},
		{"no zones: oldest", nil, []Member{m("x", "", healthy, 2), m("y", "", healthy, 1)}, "y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := MemberToRemove(tc.zones, tc.members)
			if !ok || got.Name != tc.want {
				t.Fatalf("MemberToRemove = %q, %v; want %q", got.Name, ok, tc.want)
			}
		})
	}
	if _, ok := MemberToRemove(abc, nil); ok {
		t.Fatal("MemberToRemove of no members returned one")
	}
}

func TestNextToRepair(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failed []Member
		want   string
	}{
		{"one failed member", []Member{m("b1", "b", !healthy, 0)}, "b1"},
		{"zone order: a before c", []Member{m("c1", "c", !healthy, 0), m("a1", "a", !healthy, 5)}, "a1"},
		{"within a zone, the oldest", []Member{m("b2", "b", !healthy, 2), m("b1", "b", !healthy, 1)}, "b1"},
		{"outside the asked zones last", []Member{m("x1", "x", !healthy, 0), m("c1", "c", !healthy, 9)}, "c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NextToRepair(abc, tc.failed)
			if !ok || got.Name != tc.want {
				t.Fatalf("NextToRepair = %q; want %q", got.Name, tc.want)
			}
		})
	}
}

func TestZoneToRestore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		zones   []string
		ready   map[string]bool
		members []Member
		want    string
		ok      bool
	}{
		{"even spread", abc, allUp, []Member{m("a1", "a", healthy, 0), m("b1", "b", healthy, 0), m("c1", "c", healthy, 0)}, "", false},
		{"zone b back after its member moved to a", abc, allUp, []Member{m("a1", "a", healthy, 0), m("a2", "a", healthy, 1), m("c1", "c", healthy, 0)}, "b", true},
		{"zone b still down", abc, bDown, []Member{m("a1", "a", healthy, 0), m("a2", "a", healthy, 1), m("c1", "c", healthy, 0)}, "", false},
		{"5 over 3 zones is fine at 2/2/1", abc, allUp, []Member{m("a1", "a", healthy, 0), m("a2", "a", healthy, 0), m("b1", "b", healthy, 0), m("b2", "b", healthy, 0), m("c1", "c", healthy, 0)}, "", false},
		{"1 over 3 zones is fine", abc, allUp, []Member{m("a1", "a", healthy, 0)}, "", false},
		{"member outside the asked zones moves in", []string{"a", "b"}, allUp, []Member{m("a1", "a", healthy, 0), m("c1", "c", healthy, 0)}, "b", true},
		{"no zones asked", nil, nil, []Member{m("x", "", healthy, 0)}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ZoneToRestore(tc.zones, tc.ready, tc.members)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ZoneToRestore = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSkew(t *testing.T) {
	if s := Skew(abc, []Member{m("a1", "a", healthy, 0), m("a2", "a", healthy, 0), m("c1", "c", healthy, 0)}); s != 2 {
		t.Fatalf("Skew = %d, want 2", s)
	}
	if s := Skew(abc, []Member{m("a1", "a", healthy, 0), m("b1", "b", healthy, 0), m("c1", "c", healthy, 0)}); s != 0 {
		t.Fatalf("Skew = %d, want 0", s)
	}
}
