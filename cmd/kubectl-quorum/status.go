package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

func status(ctx context.Context, c client.Client, ns string, args []string, now time.Time, out io.Writer) error {
	kind, name, err := kindAndName(args, "etcdcluster", "controlplane")
	if err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	backups := &quorumv1alpha1.EtcdBackupList{}
	if err := c.List(ctx, backups, client.InNamespace(ns)); err != nil {
		return err
	}
	if kind == "controlplane" {
		cp := &quorumv1alpha1.ControlPlane{}
		if err := c.Get(ctx, key, cp); err != nil {
			return err
		}
		_, err := io.WriteString(out, renderControlPlane(cp, backups.Items, now))
		return err
	}
	ec := &quorumv1alpha1.EtcdCluster{}
	if err := c.Get(ctx, key, ec); err != nil {
		return err
	}
	_, err = io.WriteString(out, renderEtcdCluster(ec, backups.Items, now))
	return err
}

// kindAndName reads "[KIND] NAME", KIND one of kinds (the first by
// default), also as KIND/NAME.
func kindAndName(args []string, kinds ...string) (string, string, error) {
	norm := func(k string) string {
		k = strings.ToLower(k)
		for _, want := range kinds {
			if k == want || k == want+"s" {
				return want
			}
		}
		return ""
	}
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		k, n, _ := strings.Cut(args[0], "/")
		if norm(k) == "" {
			return "", "", fmt.Errorf("unknown kind %q: want one of %s", k, strings.Join(kinds, ", "))
		}
		return norm(k), n, nil
	case len(args) == 1:
		return kinds[0], args[0], nil
	case len(args) == 2 && norm(args[0]) != "":
		return norm(args[0]), args[1], nil
	case len(args) == 2:
		return "", "", fmt.Errorf("unknown kind %q: want one of %s", args[0], strings.Join(kinds, ", "))
	}
	return "", "", fmt.Errorf("want [%s] NAME", strings.Join(kinds, "|"))
}

// renderEtcdCluster is the one screen of an EtcdCluster.
func renderEtcdCluster(c *quorumv1alpha1.EtcdCluster, backups []quorumv1alpha1.EtcdBackup, now time.Time) string {
	var b strings.Builder
	healthy := 0
	for _, m := range c.Status.Members {
		if m.Healthy && m.Role != quorumv1alpha1.RoleLearner {
			healthy++
		}
	}
	fmt.Fprintf(&b, "EtcdCluster %s/%s  etcd %s  %d of %d voters healthy  leader %s  cluster ID %s\n",
		c.Namespace, c.Name, orDash(c.Status.Version), healthy, replicas(c.Spec.Replicas), orDash(c.Status.Leader), orDash(c.Status.ClusterID))
	writeReadiness(&b, c.Annotations, c.Status.Conditions, c.Generation)

	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "MEMBER\tID\tZONE\tROLE\tHEALTHY\tVERSION\tDB SIZE\tIN USE")
	for _, m := range c.Status.Members {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, orDash(m.ID), orDash(m.Zone), orDash(string(m.Role)),
			yesNo(m.Healthy), orDash(m.Version), bytes(m.DBSizeBytes), bytes(m.DBSizeInUseBytes))
	}
	_ = tw.Flush()
	if p := c.Status.PendingChange; p != nil {
		fmt.Fprintf(&b, "in flight: %s %s (%s) since %s\n", p.Type, p.Member, p.Reason, ago(p.StartedAt.Time, now))
	}

	b.WriteString("\n")
	if len(c.Status.Alarms) == 0 {
		b.WriteString("alarms: none\n")
	}
	for _, a := range c.Status.Alarms {
		fmt.Fprintf(&b, "alarm: %s on %s\n", a.Alarm, a.Member)
	}
	writeCertificates(&b, c.Status.Certificates, c.Status.CARotation, now)
	if lc := c.Status.LastCompaction; lc != nil {
		fmt.Fprintf(&b, "last compaction: revision %d, %s\n", lc.Revision, ago(lc.Time.Time, now))
	}
	if ld := c.Status.LastDefrag; ld != nil {
		fmt.Fprintf(&b, "last defragmentation: %s, %s, %s given back\n", ld.Member, ago(ld.Time.Time, now), bytes(ld.ReclaimedBytes))
	}
	if rd := c.Status.RequestedDefrag; rd != nil && rd.CompletionTime == nil {
		fmt.Fprintf(&b, "defragmentation asked: %d of %d members done\n", len(rd.Defragmented), len(c.Status.Members))
	}
	writeLastBackup(&b, backups, func(bk quorumv1alpha1.EtcdBackup) bool {
		return bk.Spec.EtcdClusterRef != nil && bk.Spec.EtcdClusterRef.Name == c.Name
	}, now)
	return b.String()
}

// renderControlPlane is the one screen of a ControlPlane.
func renderControlPlane(cp *quorumv1alpha1.ControlPlane, backups []quorumv1alpha1.EtcdBackup, now time.Time) string {
	var b strings.Builder
	etcd := "stacked etcd"
	if ref := cp.Spec.Etcd.ClusterRef; ref != nil {
		etcd = "EtcdCluster " + ref.Name
	} else if cp.Spec.Etcd.External != nil {
		etcd = "external etcd"
	}
	fmt.Fprintf(&b, "ControlPlane %s/%s  Kubernetes %s  %d of %d replicas ready  %s  endpoint %s\n",
		cp.Namespace, cp.Name, orDash(cp.Status.Version), cp.Status.ReadyReplicas, replicas(cp.Spec.Replicas), etcd, orDash(cp.Status.Endpoint))
	writeReadiness(&b, cp.Annotations, cp.Status.Conditions, cp.Generation)

	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "REPLICA\tZONE\tREADY\tVERSION")
	for _, r := range cp.Status.ReplicaStatus {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, orDash(r.Zone), yesNo(r.Ready), orDash(r.Version))
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "leaders: controller-manager %s, scheduler %s\n", orDash(cp.Status.Leaders.ControllerManager), orDash(cp.Status.Leaders.Scheduler))
	if ref := cp.Status.KubeconfigSecretRef; ref != nil {
		fmt.Fprintf(&b, "admin kubeconfig: Secret %s\n", ref.Name)
	}
	b.WriteString("\n")
	writeCertificates(&b, cp.Status.Certificates, cp.Status.CARotation, now)
	writeLastBackup(&b, backups, func(bk quorumv1alpha1.EtcdBackup) bool {
		return (bk.Spec.ControlPlaneRef != nil && bk.Spec.ControlPlaneRef.Name == cp.Name) ||
			(bk.Spec.EtcdClusterRef != nil && cp.Spec.Etcd.ClusterRef != nil && bk.Spec.EtcdClusterRef.Name == cp.Spec.Etcd.ClusterRef.Name)
	}, now)
	return b.String()
}

// writeReadiness says Ready, and every condition that is not as a healthy
// object has it.
func writeReadiness(b *strings.Builder, annotations map[string]string, conds []metav1.Condition, generation int64) {
	if annotations["quorum.dev/paused"] == "true" {
		b.WriteString("PAUSED: no change is made until `kubectl quorum resume`\n")
	}
	ready := meta.FindStatusCondition(conds, "Ready")
	switch {
	case ready == nil:
		b.WriteString("Ready: not reported yet\n")
	case ready.ObservedGeneration < generation:
		fmt.Fprintf(b, "Ready: %s for generation %d; generation %d not acted on yet\n", ready.Status, ready.ObservedGeneration, generation)
	default:
		fmt.Fprintf(b, "Ready: %s (%s) %s\n", ready.Status, ready.Reason, ready.Message)
	}
	// A condition whose True means trouble, and those whose False does.
	bad := map[string]metav1.ConditionStatus{
		"Degraded": metav1.ConditionTrue, "QuorumAtRisk": metav1.ConditionTrue, "QuorumLost": metav1.ConditionTrue,
		"AlarmActive": metav1.ConditionTrue, "CertificatesExpiring": metav1.ConditionTrue, "EtcdUnreachable": metav1.ConditionTrue,
		"Stalled": metav1.ConditionTrue, "Progressing": metav1.ConditionTrue,
		"Available": metav1.ConditionFalse, "EtcdAvailable": metav1.ConditionFalse,
	}
	sorted := slices.Clone(conds)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Type < sorted[j].Type })
	for _, cond := range sorted {
		if want, ok := bad[cond.Type]; ok && (cond.Status == want || cond.Status == metav1.ConditionUnknown) {
			fmt.Fprintf(b, "  %s=%s (%s) %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
}

// writeCertificates names the certificate that expires first and any CA
// rotation under way.
func writeCertificates(b *strings.Builder, certs []quorumv1alpha1.CertificateStatus, rot *quorumv1alpha1.CARotationStatus, now time.Time) {
	if len(certs) == 0 {
		b.WriteString("certificates: none reported\n")
	} else {
		first := slices.MinFunc(certs, func(x, y quorumv1alpha1.CertificateStatus) int { return x.NotAfter.Compare(y.NotAfter.Time) })
		fmt.Fprintf(b, "certificates: %d; the first to expire is %s on %s (in %s)\n", len(certs), first.Name,
			first.NotAfter.UTC().Format(time.RFC3339), within(first.NotAfter.Sub(now)))
	}
	if rot != nil && rot.CompletedAt == nil && rot.StartedAt != nil {
		fmt.Fprintf(b, "CA rotation: phase %s, started %s\n", rot.Phase, ago(rot.StartedAt.Time, now))
	}
}

// writeLastBackup names the newest snapshot of the backups that cover the
// object, and any backup whose last run failed.
func writeLastBackup(b *strings.Builder, backups []quorumv1alpha1.EtcdBackup, covers func(quorumv1alpha1.EtcdBackup) bool, now time.Time) {
	var newest *quorumv1alpha1.Snapshot
	var from string
	var failing []string
	for _, bk := range backups {
		if !covers(bk) {
			continue
		}
		for i := range bk.Status.Snapshots {
			s := &bk.Status.Snapshots[i]
			if newest == nil || s.TakenAt.After(newest.TakenAt.Time) {
				newest, from = s, bk.Name
			}
		}
		if r := meta.FindStatusCondition(bk.Status.Conditions, "Ready"); r != nil && r.Status == metav1.ConditionFalse && r.Reason != "Running" {
			failing = append(failing, fmt.Sprintf("%s (%s: %s)", bk.Name, r.Reason, r.Message))
		}
	}
	if newest == nil {
		b.WriteString("last backup: none\n")
	} else {
		fmt.Fprintf(b, "last backup: %s by EtcdBackup %s, revision %d, %s, %s\n", ago(newest.TakenAt.Time, now), from, newest.Revision, bytes(newest.SizeBytes), newest.Location)
	}
	for _, f := range failing {
		fmt.Fprintf(b, "backup not ready: %s\n", f)
	}
}

func replicas(n *int32) int32 {
	if n == nil {
		return 3
	}
	return *n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

// within renders a time left: days when over two, else hours and minutes.
func within(d time.Duration) string {
	if d > 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}

func bytes(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
