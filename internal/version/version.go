// Package version holds Quorum's version rules for etcd and Kubernetes:
// which step from a running version to a wanted one is supported, and which
// version of several is the oldest. Parsing is apimachinery's.
package version

import (
	"fmt"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// EtcdStep says whether an etcd cluster running current may move to
// target: patch changes and one minor step up. etcd does not support
// downgrades through member restarts, nor skipping a minor version.
func EtcdStep(current, target string) error {
	return minorStep(current, target, "", "etcd does not support downgrades by restarting members")
}

// KubernetesStep says whether control-plane replicas running current may
// be rolled to target: patch changes and one minor step up.
func KubernetesStep(current, target string) error {
	return minorStep(current, target, "v", "control planes are not downgraded across minor versions")
}

// minorStep allows patch changes and one minor step up from current to
// target; versions are printed with prefix, and a downgrade is refused
// with downgradeWhy.
func minorStep(current, target, prefix, downgradeWhy string) error {
	cur, err := parse(current)
	if err != nil {
		return err
	}
	tgt, err := parse(target)
	if err != nil {
		return err
	}
	show := func(v *utilversion.Version) string {
		return fmt.Sprintf("%s%d.%d.%d", prefix, v.Major(), v.Minor(), v.Patch())
	}
	switch {
	case tgt.EqualTo(cur):
		return nil
	case tgt.Major() != cur.Major():
		return fmt.Errorf("version %s is a different major version than the running %s: not supported", show(tgt), show(cur))
	case tgt.Minor() < cur.Minor():
		return fmt.Errorf("version %s is older than the running %s: %s", show(tgt), show(cur), downgradeWhy)
	case tgt.Minor() > cur.Minor()+1:
		return fmt.Errorf("version %s is %d minor versions ahead of the running %s: upgrade one minor version at a time",
			show(tgt), tgt.Minor()-cur.Minor(), show(cur))
	}
	return nil
}

// Lowest is the oldest of versions, as written; versions that do not parse
// are ignored, and "" means none parsed.
func Lowest(versions ...string) string {
	lowest := ""
	var low *utilversion.Version
	for _, s := range versions {
		v, err := parse(s)
		if err != nil {
			continue
		}
		if low == nil || v.LessThan(low) {
			lowest, low = s, v
		}
	}
	return lowest
}

// Target is the version new members or replicas get when the running ones
// are at versions and spec asks for wanted: wanted when step allows it (or
// nothing runs yet), else the oldest running version. refused says why
// wanted is not carried out.
func Target(wanted string, step func(current, target string) error, running ...string) (version, refused string) {
	current := Lowest(running...)
	if current == "" {
		return wanted, ""
	}
	if err := step(current, wanted); err != nil {
		return current, err.Error()
	}
	return wanted, ""
}

// parse reads major.minor.patch, with or without a leading v.
func parse(s string) (*utilversion.Version, error) {
	v, err := utilversion.ParseSemantic(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a major.minor.patch version", s)
	}
	return v, nil
}
