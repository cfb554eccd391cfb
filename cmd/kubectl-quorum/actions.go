package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
)

// oneShotKeepLast is the retention of the backups `backup now` makes: the
// most the API allows, so that taking one deletes no snapshot the
// cluster's own backup policy keeps.
const oneShotKeepLast = 1000

// backupNow makes a one-shot EtcdBackup of cluster to where its existing
// EtcdBackup (--like, or its only one) stores snapshots, and waits for it.
func backupNow(ctx context.Context, c client.Client, ns, cluster string, o options, out io.Writer) error {
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: cluster}, &quorumv1alpha1.EtcdCluster{}); err != nil {
		return err
	}
	var like *quorumv1alpha1.EtcdBackup
	if o.like != "" {
		like = &quorumv1alpha1.EtcdBackup{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.like}, like); err != nil {
			return err
		}
	} else {
		list := &quorumv1alpha1.EtcdBackupList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		var names []string
		for i, bk := range list.Items {
			if bk.Spec.EtcdClusterRef != nil && bk.Spec.EtcdClusterRef.Name == cluster {
				like = &list.Items[i]
				names = append(names, bk.Name)
			}
		}
		switch len(names) {
		case 0:
			return fmt.Errorf("no EtcdBackup of %s says where snapshots go; create one, or name one with --like", cluster)
		case 1:
		default:
			return fmt.Errorf("%s has several EtcdBackups (%s): say which destination with --like", cluster, strings.Join(names, ", "))
		}
	}
	bk := &quorumv1alpha1.EtcdBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: cluster + "-now-"},
		Spec: quorumv1alpha1.EtcdBackupSpec{
			EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: cluster},
			Destination:    like.Spec.Destination,
			Retention:      quorumv1alpha1.BackupRetention{KeepLast: oneShotKeepLast},
			Resources:      like.Spec.Resources,
		},
	}
	if err := c.Create(ctx, bk); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "etcdbackup/%s created: a snapshot of %s to where %s stores them\n", bk.Name, cluster, like.Name)
	return waitFor(ctx, o, 5*time.Minute, out, func() (bool, string, error) {
		got := &quorumv1alpha1.EtcdBackup{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(bk), got); err != nil {
			return false, "", err
		}
		r := meta.FindStatusCondition(got.Status.Conditions, "Ready")
		switch {
		case r == nil || r.ObservedGeneration < got.Generation:
			return false, "waiting for the operator", nil
		case r.Status == metav1.ConditionTrue && len(got.Status.Snapshots) > 0:
			s := got.Status.Snapshots[0]
			return true, fmt.Sprintf("snapshot verified: %s, revision %d, %s", s.Location, s.Revision, bytes(s.SizeBytes)), nil
		case meta.IsStatusConditionTrue(got.Status.Conditions, "Stalled"):
			return false, "", fmt.Errorf("backup failed: %s: %s", r.Reason, r.Message)
		}
		return false, r.Reason + ": " + r.Message, nil
	})
}

// restore makes a new EtcdCluster from a backup's snapshot, shaped like
// the cluster the backup was taken of when that still exists.
func restore(ctx context.Context, c client.Client, ns, name string, o options, out io.Writer) error {
	bk := &quorumv1alpha1.EtcdBackup{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.from}, bk); err != nil {
		return err
	}
	spec := quorumv1alpha1.EtcdClusterSpec{}
	shaped := "default settings"
	if ref := bk.Spec.EtcdClusterRef; ref != nil {
		src := &quorumv1alpha1.EtcdCluster{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, src); err == nil {
			spec = *src.Spec.DeepCopy()
			spec.Bootstrap = nil
			spec.Version = src.Status.Version
			if spec.Version == "" {
				spec.Version = src.Spec.Version
			}
			shaped = "the settings of " + ref.Name
		}
	}
	if o.replicas > 0 {
		spec.Replicas = &o.replicas
	}
	spec.Bootstrap = &quorumv1alpha1.EtcdBootstrap{Restore: &quorumv1alpha1.EtcdRestore{
		BackupRef: quorumv1alpha1.LocalObjectReference{Name: bk.Name}, Snapshot: o.snapshot}}
	ec := &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := c.Create(ctx, ec); err != nil {
		return err
	}
	which := "its newest snapshot that verifies"
	if o.snapshot != "" {
		which = "snapshot " + o.snapshot
	}
	_, _ = fmt.Fprintf(out, "etcdcluster/%s created from EtcdBackup %s (%s), with %s\n", name, bk.Name, which, shaped)
	return waitFor(ctx, o, 10*time.Minute, out, func() (bool, string, error) {
		got := &quorumv1alpha1.EtcdCluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ec), got); err != nil {
			return false, "", err
		}
		return readiness(got.Status.Conditions, got.Generation)
	})
}

// defrag asks for a defragmentation of every member (the quorum.dev/defrag
// annotation) and waits until each is done.
func defrag(ctx context.Context, c client.Client, ns, name string, o options, out io.Writer) error {
	ec := &quorumv1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	trigger := time.Now().UTC().Format(time.RFC3339Nano)
	if err := annotate(ctx, c, ec, "quorum.dev/defrag", &trigger); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "etcdcluster/%s: defragmentation asked (quorum.dev/defrag=%s); members go one at a time, the leader last, while all are healthy\n", name, trigger)
	return waitFor(ctx, o, 10*time.Minute, out, func() (bool, string, error) {
		got := &quorumv1alpha1.EtcdCluster{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ec), got); err != nil {
			return false, "", err
		}
		rd := got.Status.RequestedDefrag
		if rd == nil || rd.Trigger != trigger {
			p := meta.FindStatusCondition(got.Status.Conditions, "Progressing")
			if p != nil && p.Reason == "DefragWaiting" {
				return false, p.Message, nil
			}
			return false, "waiting for the operator", nil
		}
		msg := fmt.Sprintf("%d of %d members defragmented (%s)", len(rd.Defragmented), len(got.Status.Members), strings.Join(rd.Defragmented, ", "))
		if ld := got.Status.LastDefrag; rd.CompletionTime != nil && ld != nil {
			msg += fmt.Sprintf("; the last, %s, gave back %s", ld.Member, bytes(ld.ReclaimedBytes))
		}
		return rd.CompletionTime != nil, msg, nil
	})
}

// pause sets or removes quorum.dev/paused.
func pause(ctx context.Context, c client.Client, ns string, args []string, on bool, out io.Writer) error {
	kind, name, err := kindAndName(args, "etcdcluster", "controlplane", "etcdbackup")
	if err != nil {
		return err
	}
	var obj client.Object
	switch kind {
	case "etcdcluster":
		obj = &quorumv1alpha1.EtcdCluster{}
	case "controlplane":
		obj = &quorumv1alpha1.ControlPlane{}
	default:
		obj = &quorumv1alpha1.EtcdBackup{}
	}
	obj.SetNamespace(ns)
	obj.SetName(name)
	var value *string
	verb := "resumed: the operator acts on it again"
	if on {
		v := "true"
		value, verb = &v, "paused: the operator observes it and changes nothing until `kubectl quorum resume`"
	}
	if err := annotate(ctx, c, obj, "quorum.dev/paused", value); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "%s/%s %s\n", kind, name, verb)
	return nil
}

// annotate sets (or with nil removes) one annotation with a merge patch,
// which fails when the object does not exist.
func annotate(ctx context.Context, c client.Client, obj client.Object, key string, value *string) error {
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: value}}})
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
}

// readiness reads Ready, Stalled and the generation as kstatus does.
func readiness(conds []metav1.Condition, generation int64) (bool, string, error) {
	r := meta.FindStatusCondition(conds, "Ready")
	switch {
	case r == nil || r.ObservedGeneration < generation:
		return false, "waiting for the operator", nil
	case r.Status == metav1.ConditionTrue:
		return true, "Ready: " + r.Message, nil
	}
	if s := meta.FindStatusCondition(conds, "Stalled"); s != nil && s.Status == metav1.ConditionTrue {
		return false, "", fmt.Errorf("stalled: %s: %s", s.Reason, s.Message)
	}
	return false, r.Reason + ": " + r.Message, nil
}

// waitFor polls check every 2 s, printing each new message, until it is
// done, fails, or the wait (--wait, or def) runs out; --wait 0 returns
// at once.
func waitFor(ctx context.Context, o options, def time.Duration, out io.Writer, check func() (bool, string, error)) error {
	wait := o.wait
	if wait < 0 {
		wait = def
	}
	if wait == 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	last := ""
	for {
		done, msg, err := check()
		if err != nil {
			return err
		}
		if msg != last && msg != "" {
			_, _ = fmt.Fprintln(out, "  "+msg)
			last = msg
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s (it goes on; --wait sets how long to wait)", wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
