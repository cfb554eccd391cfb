package etcdcluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// Housekeeping steps: recovery from NOSPACE (decided by decideNoSpace)
// and defragmentation (decideDefrag).

// defragTimeout bounds one member's defragmentation: it rewrites the
// whole database.
const defragTimeout = 5 * time.Minute

// compact discards the key history before a.revision, and records it.
func (r *Reconciler) compact(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	cctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	if err := s.etcd.Compact(cctx, a.revision); err != nil {
		return fmt.Errorf("compacting to revision %d: %w", a.revision, err)
	}
	c.Status.LastCompaction = &quorumv1alpha1.CompactionStatus{Revision: a.revision, Time: metav1.NewTime(s.now)}
	r.Event(c, corev1.EventTypeNormal, "Compacted", fmt.Sprintf("compacted the key history to revision %d", a.revision))
	return r.persist(ctx, s)
}

// defragment rewrites a member's database without its free pages, and
// records how much came back.
func (r *Reconciler) defragment(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	m := s.members[a.member]
	url := resources.ClientURL(m.Name, c.Name, c.Namespace)
	dctx, cancel := context.WithTimeout(ctx, defragTimeout)
	defer cancel()
	if err := s.etcd.Defragment(dctx, url); err != nil {
		return fmt.Errorf("defragmenting %s: %w", m.Name, err)
	}
	reclaimed := int64(0)
	sctx, cancel2 := context.WithTimeout(ctx, etcdTimeout)
	defer cancel2()
	if after, err := s.etcd.Status(sctx, url); err == nil && m.Status != nil {
		reclaimed = m.Status.DBSize - after.DBSize
	}
	c.Status.LastDefrag = &quorumv1alpha1.DefragStatus{Member: m.Name, Time: metav1.NewTime(s.now), ReclaimedBytes: reclaimed}
	if lc := c.Status.LastCompaction; lc != nil && !slices.Contains(lc.Defragmented, m.Name) {
		lc.Defragmented = append(lc.Defragmented, m.Name)
	}
	if a.reason == reasonRequestedDefrag {
		st := c.Status.RequestedDefrag
		if st == nil || st.Trigger != a.trigger {
			st = &quorumv1alpha1.RequestedDefragStatus{Trigger: a.trigger}
			c.Status.RequestedDefrag = st
		}
		st.Defragmented = append(st.Defragmented, m.Name)
		if scheduledDefragComplete(s, st.Defragmented) {
			done := metav1.NewTime(s.now)
			st.CompletionTime = &done
		}
	}
	if !a.scheduledAt.IsZero() {
		st := c.Status.ScheduledDefrag
		if st == nil || st.LastScheduleTime == nil || !st.LastScheduleTime.Time.Equal(a.scheduledAt) {
			at := metav1.NewTime(a.scheduledAt)
			st = &quorumv1alpha1.ScheduledDefragStatus{LastScheduleTime: &at}
			c.Status.ScheduledDefrag = st
		}
		st.Defragmented = append(st.Defragmented, m.Name)
		if scheduledDefragComplete(s, st.Defragmented) {
			done := metav1.NewTime(s.now)
			st.CompletionTime = &done
		}
	}
	defrags.WithLabelValues(c.Namespace, c.Name, a.reason).Inc()
	if reclaimed > 0 {
		defragReclaimed.WithLabelValues(c.Namespace, c.Name).Add(float64(reclaimed))
	}
	r.Event(c, corev1.EventTypeNormal, "Defragmented", fmt.Sprintf("defragmented %s (%s): %d bytes given back", m.Name, a.reason, reclaimed))
	return r.persist(ctx, s)
}

// disarm clears the NOSPACE alarms: every database is back under the
// quota with room.
func (r *Reconciler) disarm(ctx context.Context, s *scope, a action) error {
	c := s.cluster
	for _, al := range s.alarms {
		if al.Type != "NOSPACE" {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, etcdTimeout)
		err := s.etcd.AlarmDisarm(dctx, al.MemberID, al.Type)
		cancel()
		if err != nil {
			return fmt.Errorf("disarming NOSPACE: %w", err)
		}
	}
	r.Event(c, corev1.EventTypeNormal, "AlarmDisarmed", a.message)
	return nil
}
