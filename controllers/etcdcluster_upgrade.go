package controllers

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// semver is a parsed major.minor.patch version.
type semver struct{ major, minor, patch int }

func parseVersion(v string) (semver, error) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) != 3 {
		return semver{}, fmt.Errorf("%q is not a major.minor.patch version", v)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return semver{}, fmt.Errorf("%q is not a major.minor.patch version", v)
		}
		n[i] = x
	}
	return semver{n[0], n[1], n[2]}, nil
}

func (v semver) less(o semver) bool {
	if v.major != o.major {
		return v.major < o.major
	}
	if v.minor != o.minor {
		return v.minor < o.minor
	}
	return v.patch < o.patch
}

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// versionStep says whether a cluster running current may move to target:
// patch changes and one minor step up are supported; etcd does not support
// downgrades through member restarts, nor skipping a minor version.
func versionStep(current, target string) error {
	return minorStep(current, target, "", "etcd does not support downgrades by restarting members")
}

// minorStep allows patch changes and one minor step up from current to
// target; versions are printed with prefix, and a downgrade is refused
// with downgradeWhy.
func minorStep(current, target, prefix, downgradeWhy string) error {
	cur, err := parseVersion(current)
	if err != nil {
		return err
	}
	tgt, err := parseVersion(target)
	if err != nil {
		return err
	}
	switch {
	case tgt == cur:
		return nil
	case tgt.major != cur.major:
		return fmt.Errorf("version %s%s is a different major version than the running %s%s: not supported", prefix, tgt, prefix, cur)
	case tgt.minor < cur.minor:
		return fmt.Errorf("version %s%s is older than the running %s%s: %s", prefix, tgt, prefix, cur, downgradeWhy)
	case tgt.minor > cur.minor+1:
		return fmt.Errorf("version %s%s is %d minor versions ahead of the running %s%s: upgrade one minor version at a time", prefix, tgt, tgt.minor-cur.minor, prefix, cur)
	}
	return nil
}

// decideUpgrade rolls members to spec.version one at a time, zone by zone,
// followers first and the leader last, only while every member is healthy
// and after a preflight pod proved the new image runs.
func decideUpgrade(s *scope, h health) (action, bool) {
	target := s.cluster.Spec.Version
	var stale []*memberState
	current := ""
	for _, m := range s.voters() {
		if m.PodVersion != target {
			stale = append(stale, m)
		}
		if v, err := parseVersion(m.PodVersion); err == nil {
			if c, err := parseVersion(current); err != nil || v.less(c) {
				current = m.PodVersion
			}
		}
	}
	if len(stale) == 0 {
		if s.preflight != nil {
			return action{kind: actDeletePreflight}, true
		}
		return action{}, false
	}
	if err := versionStep(current, target); err != nil {
		return action{kind: actWait, reason: "UpgradeRefused", message: err.Error()}, true
	}
	if h.healthyVoters != h.voters {
		return action{kind: actWait, reason: "UpgradeWaiting", message: fmt.Sprintf("the upgrade to %s waits until every member is healthy", target)}, true
	}
	if s.preflight == nil || s.preflight.Labels[labelPreflight] != target {
		return action{kind: actPreflight, version: target, message: fmt.Sprintf("checking that the image of etcd %s runs before touching any member", target)}, true
	}
	if msg, failed := preflightFailure(s.preflight); failed {
		return action{kind: actWait, reason: "VersionUnavailable", message: fmt.Sprintf("version %s cannot run, no member was touched: %s", target, msg)}, true
	}
	if s.preflight.Status.Phase != corev1.PodSucceeded {
		return action{kind: actWait, reason: "Preflight", message: fmt.Sprintf("checking that the image of etcd %s runs", target)}, true
	}
	zoneRank := map[string]int{}
	for i, z := range s.cluster.Spec.Zones {
		zoneRank[z] = i
	}
	sort.SliceStable(stale, func(i, j int) bool {
		a, b := stale[i], stale[j]
		if a.Leader != b.Leader {
			return !a.Leader
		}
		if zoneRank[a.Zone] != zoneRank[b.Zone] {
			return zoneRank[a.Zone] < zoneRank[b.Zone]
		}
		return a.Name < b.Name
	})
	next := stale[0]
	if next.Leader {
		if to := transferee(s, next.Name); to != nil {
			return action{kind: actMoveLeader, member: next.Name, transferee: to.Name, message: fmt.Sprintf("moving leadership from %s to %s before upgrading it", next.Name, to.Name)}, true
		}
	}
	return action{kind: actRestartMember, member: next.Name, zone: next.Zone, version: target, reason: "Upgrade",
		message: fmt.Sprintf("upgrading %s from %s to %s", next.Name, next.PodVersion, target)}, true
}

// preflightFailure says whether the preflight pod proved the version cannot
// run: its image cannot be pulled, or etcd --version failed.
func preflightFailure(p *corev1.Pod) (string, bool) {
	for _, st := range p.Status.ContainerStatuses {
		if w := st.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerError":
				return fmt.Sprintf("image %s: %s: %s", st.Image, w.Reason, w.Message), true
			}
		}
		if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("etcd --version in image %s exited %d", st.Image, t.ExitCode), true
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return "the preflight pod failed: " + ptr.Deref(&p.Status.Message, ""), true
	}
	return "", false
}
