// Package placement decides where members go and which member leaves:
// pure functions over the zones asked for, the zones that can run pods now,
// and the members that exist. Both EtcdCluster and ControlPlane use them.
package placement

import (
	"slices"
	"sort"
	"time"
)

// Member is what placement needs to know of a member or replica.
type Member struct {
	Name    string
	Zone    string
	Healthy bool
	Created time.Time
}

// counts returns the number of members per zone, with every asked zone
// present (zero where empty).
func counts(zones []string, members []Member) map[string]int {
	n := map[string]int{}
	for _, z := range zones {
		n[z] = 0
	}
	for _, m := range members {
		n[m.Zone]++
	}
	return n
}

// ZoneForNewMember picks the zone the next member goes to: among the asked
// zones that are Ready, the one with the fewest members, ties broken by the
// order the zones are listed in. preferred, when Ready, wins (a replacement
// goes back to the zone it replaces). With no zones asked, members are not
// pinned and the answer is "". ok is false when no asked zone is Ready.
func ZoneForNewMember(zones []string, ready map[string]bool, members []Member, preferred string) (zone string, ok bool) {
	if len(zones) == 0 {
		return "", true
	}
	if preferred != "" && ready[preferred] && slices.Contains(zones, preferred) {
		return preferred, true
	}
	n := counts(zones, members)
	best, found := "", false
	for _, z := range zones {
		if !ready[z] {
			continue
		}
		if !found || n[z] < n[best] {
			best, found = z, true
		}
	}
	return best, found
}

// MemberToRemove picks the member that leaves on a scale-down: from the
// zone with the most members (members outside the asked zones first), an
// unhealthy member before a healthy one, then the oldest. It returns false
// for an empty list.
func MemberToRemove(zones []string, members []Member) (Member, bool) {
	if len(members) == 0 {
		return Member{}, false
	}
	n := counts(zones, members)
	sorted := append([]Member(nil), members...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if ao, bo := !slices.Contains(zones, a.Zone) && len(zones) > 0, !slices.Contains(zones, b.Zone) && len(zones) > 0; ao != bo {
			return ao
		}
		if n[a.Zone] != n[b.Zone] {
			return n[a.Zone] > n[b.Zone]
		}
		if a.Healthy != b.Healthy {
			return !a.Healthy
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Name < b.Name
	})
	return sorted[0], true
}

// NextToRepair orders failed members so that one zone is repaired before
// the next is touched: the failed member of the first asked zone that has
// any, then members outside the asked zones, oldest first within a zone.
func NextToRepair(zones []string, failed []Member) (Member, bool) {
	if len(failed) == 0 {
		return Member{}, false
	}
	rank := func(z string) int {
		for i, x := range zones {
			if x == z {
				return i
			}
		}
		return len(zones)
	}
	sorted := append([]Member(nil), failed...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if rank(a.Zone) != rank(b.Zone) {
			return rank(a.Zone) < rank(b.Zone)
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Name < b.Name
	})
	return sorted[0], true
}

// ZoneToRestore says which Ready zone is short of members when the spread
// can be improved: a zone whose count is more than one below the fullest
// zone's (max skew 1 is broken), or a Ready asked zone with no member while
// another zone holds two or more. It returns false when the spread is fine
// or cannot be improved with the Ready zones.
func ZoneToRestore(zones []string, ready map[string]bool, members []Member) (string, bool) {
	if len(zones) == 0 {
		return "", false
	}
	n := counts(zones, members)
	maxCount := 0
	for _, m := range members {
		if n[m.Zone] > maxCount {
			maxCount = n[m.Zone]
		}
	}
	best, found := "", false
	for _, z := range zones {
		if !ready[z] {
			continue
		}
		if maxCount-n[z] > 1 && (!found || n[z] < n[best]) {
			best, found = z, true
		}
	}
	// Members outside the asked zones (a zone was removed from the spec)
	// move back into an asked zone.
	if !found {
		for _, m := range members {
			if !slices.Contains(zones, m.Zone) {
				return ZoneForNewMember(zones, ready, members, "")
			}
		}
	}
	return best, found
}

// Skew is the difference between the fullest and the emptiest asked zone.
func Skew(zones []string, members []Member) int {
	if len(zones) == 0 {
		return 0
	}
	n := counts(zones, members)
	lo, hi := -1, 0
	for _, z := range zones {
		if lo < 0 || n[z] < lo {
			lo = n[z]
		}
		if n[z] > hi {
			hi = n[z]
		}
	}
	return hi - lo
}

// Of lists items as placement members, with member saying what each one is.
func Of[T any](items []T, member func(T) Member) []Member {
	out := make([]Member, 0, len(items))
	for _, it := range items {
		out = append(out, member(it))
	}
	return out
}
