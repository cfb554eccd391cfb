package etcdbackup

// These tests run the EtcdBackup reconciler against a real kube-apiserver
// and etcd (envtest). No kubelet runs here, so the test plays the kubelet:
// it ends backup pods and serves the result line their container printed.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/backupjob"
	"quorum.dev/quorum/internal/reconciler"
	"quorum.dev/quorum/internal/resources"
	"quorum.dev/quorum/internal/snapshot"
	"quorum.dev/quorum/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Stop()
	os.Exit(code)
}

// logs plays the kubelet's log endpoint: what each finished pod printed.
type logs struct {
	mu sync.Mutex
	by map[string]string
}

func (l *logs) set(pod string, res backupjob.Result) {
	data, _ := json.Marshal(res)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.by[pod] = backupjob.ResultPrefix + string(data) + "\n"
}

func (l *logs) get(_ context.Context, _, pod string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	text, ok := l.by[pod]
	if !ok {
		return "", apierrors.NewNotFound(schema.GroupResource{Resource: "pods/log"}, pod)
	}
	return text, nil
}

// available makes an Available 3-member EtcdCluster "main" and the
// volume backups go to.
func available(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	ec := &quorumv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "main"},
		Spec:       quorumv1alpha1.EtcdClusterSpec{Replicas: ptr.To[int32](3), Zones: quorumv1alpha1.Zones{"zone-a", "zone-b", "zone-c"}},
	}
	if err := c.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	ec.Status.ClusterID = "8e9e05c52164694d"
	for _, m := range []string{"main-a", "main-b", "main-c"} {
		ec.Status.Members = append(ec.Status.Members, quorumv1alpha1.MemberStatus{Name: m, ClientURL: resources.ClientURL(m, "main", ns), Role: quorumv1alpha1.RoleFollower, Healthy: true})
	}
	meta.SetStatusCondition(&ec.Status.Conditions, metav1.Condition{Type: quorumv1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "QuorumHealthy"})
	if err := c.Status().Update(ctx, ec); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backups"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if err := c.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
}

func volumeBackup(ns, name, cluster string) *quorumv1alpha1.EtcdBackup {
	return &quorumv1alpha1.EtcdBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: quorumv1alpha1.EtcdBackupSpec{
			EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: cluster},
			Destination:    quorumv1alpha1.BackupDestination{Volume: &quorumv1alpha1.VolumeDestination{ClaimName: "backups", Path: cluster}},
		},
	}
}

func backupPods(t *testing.T, c client.Client, ns, backup string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels{labelBackup: backup}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// kstatusOf is what kstatus reads from the stored backup.
func kstatusOf(t *testing.T, c client.Client, ns, name string) kstatus.Status {
	t.Helper()
	b := &quorumv1alpha1.EtcdBackup{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
		t.Fatal(err)
	}
	return testenv.Kstatus(t, b)
}

// finish plays the kubelet for a backup pod that ran to the end.
func finish(t *testing.T, c client.Client, l *logs, p *corev1.Pod, res backupjob.Result) {
	t.Helper()
	p.Status.Phase = corev1.PodSucceeded
	if !res.OK {
		p.Status.Phase = corev1.PodFailed
	}
	if err := c.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	l.set(p.Name, res)
}

// TestEtcdBackupOneShot: a one-shot backup runs one pod that is not a
// member of the cluster's Services, names its snapshots by namespace,
// cluster and cluster ID, and its result lands in the status; then
// nothing more is written.
func TestEtcdBackupOneShot(t *testing.T) {
	c := testenv.Start(t)
	ns := testenv.Namespace(t, c, "backup")
	ctx := context.Background()
	available(t, c, ns)
	if err := c.Create(ctx, volumeBackup(ns, "once", "main")); err != nil {
		t.Fatal(err)
	}
	l := &logs{by: map[string]string{}}
	counter := &testenv.WriteCounter{Client: c}
	r := &Reconciler{Base: reconciler.Base{Client: counter, Recorder: counter}, Image: "quorum-manager:test", PodLogs: l.get}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "once"}}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	pods := backupPods(t, c, ns, "once")
	if len(pods) != 1 {
		t.Fatalf("%d backup pods, want 1", len(pods))
	}
	p := pods[0]
	if _, ok := p.Labels[resources.LabelCluster]; ok || p.Labels[labelBackupOf] != "main" {
		t.Fatalf("backup pod labels %v: it must name its cluster with %s, never carry %s", p.Labels, labelBackupOf, resources.LabelCluster)
	}
	if args := p.Spec.Containers[0].Args; !slices.Contains(args, "--namespace="+ns) || !slices.Contains(args, "--cluster=main") {
		t.Fatalf("backup pod args %v", args)
	}
	if got := kstatusOf(t, c, ns, "once"); got != kstatus.InProgressStatus {
		t.Fatalf("a running one-shot backup reads %s, want InProgress", got)
	}
	// A second pass while it runs starts nothing more.
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := len(backupPods(t, c, ns, "once")); n != 1 {
		t.Fatalf("%d backup pods while one runs", n)
	}

	taken := time.Now().UTC().Truncate(time.Second)
	sn := snapshot.Meta{Name: snapshot.Series{Namespace: ns, Cluster: "main"}.Name("8e9e05c52164694d", taken), Cluster: "main", TakenAt: taken,
		Revision: 42, SizeBytes: 4096, SHA256: strings.Repeat("ab", 32), ClusterID: "8e9e05c52164694d", Location: "pvc://backups/main"}
	finish(t, c, l, &p, backupjob.Result{OK: true, Snapshot: &sn, Snapshots: []snapshot.Meta{sn}, Total: 1})
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	b := &quorumv1alpha1.EtcdBackup{}
	if err := c.Get(ctx, req.NamespacedName, b); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(b.Status.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded); got == nil || got.Status != metav1.ConditionTrue || got.Reason != "SnapshotVerified" {
		t.Fatalf("LastBackupSucceeded = %+v", got)
	}
	if len(b.Status.Snapshots) != 1 || b.Status.Snapshots[0].Name != sn.Name || b.Status.SnapshotCount != 1 || b.Status.LastSuccessfulTime == nil {
		t.Fatalf("status %+v", b.Status)
	}
	if n := len(backupPods(t, c, ns, "once")); n != 0 {
		t.Fatalf("the finished pod is still there (%d pods)", n)
	}
	if got := kstatusOf(t, c, ns, "once"); got != kstatus.CurrentStatus {
		t.Fatalf("a verified one-shot backup reads %s, want Current", got)
	}

	if len(counter.Take()) == 0 {
		t.Fatal("the counter saw no write: it counts nothing")
	}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if writes := counter.Take(); len(writes) != 0 {
		t.Fatalf("reconciles of a finished one-shot backup wrote: %v", writes)
	}
}

// TestEtcdBackupRefusals: a backup of a missing cluster, or to a missing
// volume, is a condition and starts nothing; two backups of one cluster
// never run at once; a failed run is reported with its reason.
func TestEtcdBackupRefusals(t *testing.T) {
	c := testenv.Start(t)
	ns := testenv.Namespace(t, c, "backup-refusals")
	ctx := context.Background()
	l := &logs{by: map[string]string{}}
	r := &Reconciler{Base: reconciler.Base{Client: c}, Image: "quorum-manager:test", PodLogs: l.get}
	reconcile := func(name string) *quorumv1alpha1.EtcdBackup {
		t.Helper()
		req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
		b := &quorumv1alpha1.EtcdBackup{}
		if err := c.Get(ctx, req.NamespacedName, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	readyReason := func(b *quorumv1alpha1.EtcdBackup) string {
		if got := meta.FindStatusCondition(b.Status.Conditions, quorumv1alpha1.ConditionReady); got != nil {
			return string(got.Status) + " " + got.Reason
		}
		return "none"
	}

	if err := c.Create(ctx, volumeBackup(ns, "orphan", "nowhere")); err != nil {
		t.Fatal(err)
	}
	if got := readyReason(reconcile("orphan")); got != "False ClusterNotFound" || len(backupPods(t, c, ns, "orphan")) != 0 {
		t.Fatalf("a backup of a missing cluster: Ready %s, %d pods", got, len(backupPods(t, c, ns, "orphan")))
	}
	if got := kstatusOf(t, c, ns, "orphan"); got != kstatus.FailedStatus {
		t.Fatalf("a backup of a missing cluster reads %s, want Failed", got)
	}

	available(t, c, ns)
	missingVolume := volumeBackup(ns, "no-volume", "main")
	missingVolume.Spec.Destination.Volume.ClaimName = "absent"
	if err := c.Create(ctx, missingVolume); err != nil {
		t.Fatal(err)
	}
	if got := readyReason(reconcile("no-volume")); got != "False DestinationUnreachable" || len(backupPods(t, c, ns, "no-volume")) != 0 {
		t.Fatalf("a backup to a missing volume: Ready %s", got)
	}

	for _, name := range []string{"first", "second"} {
		if err := c.Create(ctx, volumeBackup(ns, name, "main")); err != nil {
			t.Fatal(err)
		}
	}
	reconcile("first")
	reconcile("second")
	first, second := backupPods(t, c, ns, "first"), backupPods(t, c, ns, "second")
	if len(first) != 1 || len(second) != 0 {
		t.Fatalf("two backups of one cluster: %d and %d pods, want one at a time", len(first), len(second))
	}
	finish(t, c, l, &first[0], backupjob.Result{Reason: "ClusterUnhealthy", Message: "no member answers"})
	b := reconcile("first")
	if got := meta.FindStatusCondition(b.Status.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded); got == nil || got.Status != metav1.ConditionFalse || got.Reason != "ClusterUnhealthy" {
		t.Fatalf("a failed run: LastBackupSucceeded = %+v", got)
	}
	if got := kstatusOf(t, c, ns, "first"); got != kstatus.FailedStatus {
		t.Fatalf("a one-shot backup whose run failed reads %s, want Failed (it does not run again)", got)
	}
	reconcile("second")
	if n := len(backupPods(t, c, ns, "second")); n != 1 {
		t.Fatalf("the second backup did not start once the first finished (%d pods)", n)
	}
}

// TestEtcdBackupPaused: a paused backup starts no run and says so;
// unpaused, it runs.
func TestEtcdBackupPaused(t *testing.T) {
	c := testenv.Start(t)
	ns := testenv.Namespace(t, c, "backup-paused")
	ctx := context.Background()
	available(t, c, ns)
	b := volumeBackup(ns, "once", "main")
	b.Annotations = map[string]string{reconciler.AnnotationPaused: "true"}
	if err := c.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	l := &logs{by: map[string]string{}}
	r := &Reconciler{Base: reconciler.Base{Client: c}, Image: "quorum-manager:test", PodLogs: l.get}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "once"}}
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(backupPods(t, c, ns, "once")); n != 0 {
		t.Fatalf("a paused backup started %d pods", n)
	}
	if err := c.Get(ctx, req.NamespacedName, b); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(b.Status.Conditions, quorumv1alpha1.ConditionReady); got == nil || got.Reason != reconciler.ReasonPaused {
		t.Fatalf("Ready = %+v, want reason Paused", got)
	}
	delete(b.Annotations, reconciler.AnnotationPaused)
	if err := c.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := len(backupPods(t, c, ns, "once")); n != 1 {
		t.Fatalf("unpaused, %d pods, want 1", n)
	}
}

// crashing is a client for an operator that dies at one point: its status
// writes fail (killed before the status was stored) or its deletes do
// (killed after).
type crashing struct {
	client.Client
	status, deletes bool
}

func (c *crashing) Status() client.SubResourceWriter {
	if c.status {
		return crashedStatus{c.Client.Status()}
	}
	return c.Client.Status()
}

func (c *crashing) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if c.deletes {
		return errors.New("the operator was killed")
	}
	return c.Client.Delete(ctx, obj, opts...)
}

type crashedStatus struct{ client.SubResourceWriter }

func (crashedStatus) Update(context.Context, client.Object, ...client.SubResourceUpdateOption) error {
	return errors.New("the operator was killed")
}

func (crashedStatus) Patch(context.Context, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
	return errors.New("the operator was killed")
}

// TestEtcdBackupResultSurvivesAKill: a finished backup pod is deleted only
// after its result is stored. Killed before the status write, the next
// operator finds the pod and collects the result; killed after it but
// before the delete, the next one deletes the pod and reports the snapshot
// once (no second event).
func TestEtcdBackupResultSurvivesAKill(t *testing.T) {
	c := testenv.Start(t)
	ns := testenv.Namespace(t, c, "backup")
	ctx := context.Background()
	available(t, c, ns)
	if err := c.Create(ctx, volumeBackup(ns, "once", "main")); err != nil {
		t.Fatal(err)
	}
	l := &logs{by: map[string]string{}}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "once"}}
	operator := func(cl client.Client, rec *testenv.WriteCounter) *Reconciler {
		r := &Reconciler{Base: reconciler.Base{Client: cl}, Image: "quorum-manager:test", PodLogs: l.get}
		if rec != nil {
			r.Recorder = rec
		}
		return r
	}
	if _, err := operator(c, nil).Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	pods := backupPods(t, c, ns, "once")
	if len(pods) != 1 {
		t.Fatalf("%d backup pods, want 1", len(pods))
	}
	taken := time.Now().UTC().Truncate(time.Second)
	sn := snapshot.Meta{Name: snapshot.Series{Namespace: ns, Cluster: "main"}.Name("8e9e05c52164694d", taken), Cluster: "main", TakenAt: taken,
		Revision: 42, SizeBytes: 4096, SHA256: strings.Repeat("ab", 32), ClusterID: "8e9e05c52164694d", Location: "pvc://backups/main"}
	finish(t, c, l, &pods[0], backupjob.Result{OK: true, Snapshot: &sn, Snapshots: []snapshot.Meta{sn}, Total: 1})

	// Killed before the status is stored: the pod must stay.
	if _, err := operator(&crashing{Client: c, status: true}, nil).Reconcile(ctx, req); err == nil {
		t.Fatal("a reconcile whose status write failed reported success")
	}
	if n := len(backupPods(t, c, ns, "once")); n != 1 {
		t.Fatalf("the finished pod was deleted before its result was stored (%d pods left): the result is lost", n)
	}

	// Killed after the status is stored, before the delete.
	if _, err := operator(&crashing{Client: c, deletes: true}, nil).Reconcile(ctx, req); err == nil {
		t.Fatal("a reconcile whose delete failed reported success")
	}
	b := &quorumv1alpha1.EtcdBackup{}
	if err := c.Get(ctx, req.NamespacedName, b); err != nil {
		t.Fatal(err)
	}
	if len(b.Status.Snapshots) != 1 || b.Status.Snapshots[0].Name != sn.Name {
		t.Fatalf("the result is not stored: %+v", b.Status)
	}

	// The next operator deletes the pod and reports nothing twice.
	events := &testenv.WriteCounter{Client: c}
	if _, err := operator(c, events).Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := len(backupPods(t, c, ns, "once")); n != 0 {
		t.Fatalf("the collected pod is still there (%d pods)", n)
	}
	for _, w := range events.Take() {
		if strings.Contains(w, "SnapshotTaken") {
			t.Fatalf("the snapshot was reported again after the restart: %s", w)
		}
	}
	if err := c.Get(ctx, req.NamespacedName, b); err != nil {
		t.Fatal(err)
	}
	if got := meta.FindStatusCondition(b.Status.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded); got == nil || got.Status != metav1.ConditionTrue {
		t.Fatalf("LastBackupSucceeded = %+v", got)
	}
}
