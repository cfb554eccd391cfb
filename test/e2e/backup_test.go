package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/hack/local-cluster/cluster"
	"quorum.dev/quorum/internal/resources"
)

// TestEtcdBackup runs the EtcdBackup cases side by side, each in its own
// namespace, against versitygw running in the cluster as the S3 server.
func TestEtcdBackup(t *testing.T) {
	t.Run("backup of 10000 keys restored into a new cluster, from S3 and from a volume", testBackupAndRestore)
	t.Run("a schedule every minute keeps the last 3", testScheduleRetention)
	t.Run("wrong credentials: CredentialsInvalid, earlier snapshots untouched", testWrongCredentials)
	t.Run("a corrupted snapshot is refused and nothing is created", testCorruptedSnapshot)
	t.Run("quorum lost for good: RestoreFromBackup rebuilds from the newest snapshot", testRestoreFromBackup)
}

const (
	s3AccessKey = "e2e-access"
	s3SecretKey = "e2e-secret-key"
)

// s3Server deploys versitygw in ns with credentials in the Secret
// s3-credentials, makes bucket, and returns an admin client reaching the
// server's pod from the host.
func s3Server(t *testing.T, ns, bucket string) *minio.Client {
	t.Helper()
	ctx := context.Background()
	manifest, err := os.ReadFile(filepath.Join(local.Root, "hack", "local-cluster", "demo-s3.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest = bytes.ReplaceAll(manifest, []byte("quorum-demo-secret"), []byte(s3SecretKey))
	manifest = bytes.ReplaceAll(manifest, []byte("accessKeyID: quorum-demo"), []byte("accessKeyID: "+s3AccessKey))
	for _, doc := range strings.Split(string(manifest), "\n---\n") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if len(obj) == 0 {
			continue
		}
		u := toUnstructured(obj)
		u.SetNamespace(ns)
		if err := crClient(t).Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	var ip string
	eventually(t, "the S3 server ready", 6*time.Minute, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=s3"})
		if err != nil || len(pods.Items) == 0 {
			return false, "no pod"
		}
		p := pods.Items[0]
		ip = p.Status.PodIP
		return podReady(&p), string(p.Status.Phase)
	})
	admin, err := minio.New(ip+":7070", &minio.Options{Creds: credentials.NewStaticV4(s3AccessKey, s3SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "bucket "+bucket, time.Minute, func() (bool, string) {
		ok, err := admin.BucketExists(ctx, bucket)
		if err == nil && !ok {
			err = admin.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
			ok = err == nil
		}
		if err != nil {
			return false, err.Error()
		}
		return ok, ""
	})
	return admin
}

func s3Backup(ns, name, cluster, bucket, secret string, mutate ...func(*quorumv1alpha1.EtcdBackup)) *quorumv1alpha1.EtcdBackup {
	b := &quorumv1alpha1.EtcdBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: quorumv1alpha1.EtcdBackupSpec{
			EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: cluster},
			Destination: quorumv1alpha1.BackupDestination{S3: &quorumv1alpha1.S3Destination{
				Endpoint: "s3." + ns + ".svc.cluster.local:7070", Bucket: bucket, Prefix: cluster + "/", Insecure: true,
				CredentialsSecretRef: quorumv1alpha1.LocalObjectReference{Name: secret},
			}},
		},
	}
	for _, m := range mutate {
		m(b)
	}
	return b
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := crClient(t).Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func getBackup(t *testing.T, ns, name string) *quorumv1alpha1.EtcdBackup {
	t.Helper()
	b := &quorumv1alpha1.EtcdBackup{}
	if err := crClient(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitBackup waits for LastBackupSucceeded to be status with reason.
func waitBackup(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *quorumv1alpha1.EtcdBackup {
	t.Helper()
	var b *quorumv1alpha1.EtcdBackup
	eventually(t, fmt.Sprintf("backup %s %s %s", name, status, reason), 4*time.Minute, func() (bool, string) {
		b = getBackup(t, ns, name)
		c := meta.FindStatusCondition(b.Status.Conditions, quorumv1alpha1.ConditionLastBackupSucceeded)
		if c == nil {
			return false, "no LastBackupSucceeded yet"
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return b
}

// putKeys writes n keys under prefix with 8 writers and returns them.
func putKeys(t *testing.T, cl *clientv3.Client, prefix string, n int) map[string]string {
	t.Helper()
	keys := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				k, v := fmt.Sprintf("%s%06d", prefix, i), fmt.Sprintf("v%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cl.Put(ctx, k, v)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				keys[k] = v
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writing keys: %v", err)
	}
	return keys
}

func getPrefix(t *testing.T, cl *clientv3.Client, prefix string) (map[string]string, int64) {
	t.Helper()
	var resp *clientv3.GetResponse
	var err error
	for i := 0; i < 30; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err = cl.Get(ctx, prefix, clientv3.WithPrefix())
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out, resp.Header.Revision
}

// testBackupAndRestore: 10,000 keys, a backup to S3 and one to a volume,
// more keys, then restores into new clusters: exactly the keys at the
// snapshot's revision, and the revision bumped.
func testBackupAndRestore(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "backup-restore")
	s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 3)
	waitHealthy(t, ns, "main", 3, 4*time.Minute)
	cl := etcdClient(t, ns, "main")
	before := putKeys(t, cl, "/data/", 10000)

	create(t, s3Backup(ns, "to-s3", "main", "etcd-backups", "s3-credentials"))
	// (issue 15) In progress from the moment it is applied, current once
	// its snapshot is verified; `kubectl wait` returns then.
	if s := kstatusNow(t, "EtcdBackup", ns, "to-s3"); s != kstatus.InProgressStatus {
		t.Fatalf("just applied, kstatus reads %s, want InProgress", s)
	}
	waitReady := kubectlWaitReady(t, "EtcdBackup", ns, "to-s3", 4*time.Minute)
	create(t, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backups"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	})
	create(t, &quorumv1alpha1.EtcdBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-volume"},
		Spec: quorumv1alpha1.EtcdBackupSpec{EtcdClusterRef: &quorumv1alpha1.LocalObjectReference{Name: "main"},
			Destination: quorumv1alpha1.BackupDestination{Volume: &quorumv1alpha1.VolumeDestination{ClaimName: "backups", Path: "main/"}}},
	})
	s3b := waitBackup(t, ns, "to-s3", metav1.ConditionTrue, "SnapshotVerified")
	volb := waitBackup(t, ns, "to-volume", metav1.ConditionTrue, "SnapshotVerified")
	waitReady()
	expectKstatus(t, "EtcdBackup", ns, "to-s3", kstatus.CurrentStatus, time.Minute)
	snap := s3b.Status.Snapshots[0]
	t.Logf("S3 snapshot %s: revision %d, %d bytes; volume snapshot %s", snap.Name, snap.Revision, snap.SizeBytes, volb.Status.Snapshots[0].Location)
	if s3b.Status.SnapshotCount != 1 || snap.SHA256 == "" || !strings.HasPrefix(snap.Location, "s3://etcd-backups/main/") {
		t.Fatalf("backup status: %+v", s3b.Status)
	}
	putKeys(t, cl, "/later/", 500)

	for _, tc := range []struct{ cluster, backup string }{{"from-s3", "to-s3"}, {"from-volume", "to-volume"}} {
		newEtcdCluster(t, ns, tc.cluster, 3, func(c *quorumv1alpha1.EtcdCluster) {
			c.Spec.Bootstrap = &quorumv1alpha1.EtcdBootstrap{Restore: &quorumv1alpha1.EtcdRestore{BackupRef: quorumv1alpha1.LocalObjectReference{Name: tc.backup}}}
		})
	}
	for _, tc := range []struct{ cluster, backup string }{{"from-s3", "to-s3"}, {"from-volume", "to-volume"}} {
		start := time.Now()
		restored := waitHealthy(t, ns, tc.cluster, 3, 6*time.Minute)
		t.Logf("%s: restored and grown to 3 members in %s", tc.cluster, time.Since(start).Round(time.Second))
		if restored.Status.Restore == nil || !restored.Status.Restore.Verified {
			t.Fatalf("%s: status.restore = %+v", tc.cluster, restored.Status.Restore)
		}
		rcl := etcdClient(t, ns, tc.cluster)
		got, rev := getPrefix(t, rcl, "/data/")
		if len(got) != len(before) {
			t.Fatalf("%s holds %d of the %d keys backed up", tc.cluster, len(got), len(before))
		}
		for k, v := range before {
			if got[k] != v {
				t.Fatalf("%s: %s = %q, want %q", tc.cluster, k, got[k], v)
			}
		}
		if later, _ := getPrefix(t, rcl, "/later/"); len(later) != 0 {
			t.Fatalf("%s holds %d keys written after the snapshot", tc.cluster, len(later))
		}
		if rev < restored.Status.Restore.Revision+resources.RestoreBumpRevision {
			t.Fatalf("%s revision %d, want at least the snapshot's %d bumped by %d", tc.cluster, rev, restored.Status.Restore.Revision, resources.RestoreBumpRevision)
		}
	}
}

// testScheduleRetention: a schedule every minute with keepLast 3: after five
// runs exactly three snapshots exist in S3 and in the status.
func testScheduleRetention(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "backup-schedule")
	admin := s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 1)
	waitHealthy(t, ns, "main", 1, 3*time.Minute)
	create(t, s3Backup(ns, "every-minute", "main", "etcd-backups", "s3-credentials", func(b *quorumv1alpha1.EtcdBackup) {
		b.Spec.Schedule = "* * * * *"
		b.Spec.Retention.KeepLast = 3
	}))
	runs := map[string]bool{}
	eventually(t, "five scheduled runs", 9*time.Minute, func() (bool, string) {
		b := getBackup(t, ns, "every-minute")
		if b.Status.LastSuccessfulTime != nil {
			runs[b.Status.LastSuccessfulTime.UTC().Format(time.RFC3339)] = true
		}
		return len(runs) >= 5, fmt.Sprintf("%d runs so far", len(runs))
	})
	b := getBackup(t, ns, "every-minute")
	var objects []string
	for obj := range admin.ListObjects(context.Background(), "etcd-backups", minio.ListObjectsOptions{Prefix: "main/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		objects = append(objects, obj.Key)
	}
	if len(objects) != 3 || b.Status.SnapshotCount != 3 || len(b.Status.Snapshots) != 3 {
		t.Fatalf("after %d runs: %d objects in S3 (%v), status counts %d and lists %d; want 3 everywhere", len(runs), len(objects), objects, b.Status.SnapshotCount, len(b.Status.Snapshots))
	}
	if b.Status.NextScheduleTime == nil || b.Status.LastScheduleTime == nil {
		t.Fatalf("schedule times missing: %+v", b.Status)
	}
}

// testWrongCredentials: a backup with a wrong secret key reports
// CredentialsInvalid, the operator keeps running, and the snapshots taken
// before are untouched.
func testWrongCredentials(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "backup-creds")
	admin := s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 1)
	waitHealthy(t, ns, "main", 1, 3*time.Minute)
	create(t, s3Backup(ns, "good", "main", "etcd-backups", "s3-credentials"))
	good := waitBackup(t, ns, "good", metav1.ConditionTrue, "SnapshotVerified")

	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wrong"},
		StringData: map[string]string{"accessKeyID": s3AccessKey, "secretAccessKey": "not-the-secret"}})
	create(t, s3Backup(ns, "bad", "main", "etcd-backups", "wrong"))
	bad := waitBackup(t, ns, "bad", metav1.ConditionFalse, "CredentialsInvalid")
	if c := meta.FindStatusCondition(bad.Status.Conditions, quorumv1alpha1.ConditionReady); c == nil || c.Reason != "CredentialsInvalid" {
		t.Fatalf("Ready = %+v, want CredentialsInvalid", c)
	}
	// (issue 15) Bad credentials need a person: failed.
	if s := kstatusNow(t, "EtcdBackup", ns, "bad"); s != kstatus.FailedStatus {
		t.Fatalf("wrong credentials, kstatus reads %s, want Failed", s)
	}
	if _, err := admin.StatObject(context.Background(), "etcd-backups", "main/"+good.Status.Snapshots[0].Name, minio.StatObjectOptions{}); err != nil {
		t.Fatalf("the earlier snapshot is gone: %v", err)
	}
	if err := quorumManagerReady(t); err != nil {
		t.Fatal(err)
	}
}

// testCorruptedSnapshot: a snapshot corrupted in the store is refused by
// the restore with VerificationFailed, and no member is created.
func testCorruptedSnapshot(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "backup-corrupt")
	admin := s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 1)
	waitHealthy(t, ns, "main", 1, 3*time.Minute)
	putKeys(t, etcdClient(t, ns, "main"), "/data/", 200)
	create(t, s3Backup(ns, "once", "main", "etcd-backups", "s3-credentials"))
	b := waitBackup(t, ns, "once", metav1.ConditionTrue, "SnapshotVerified")

	// Flip bytes in the middle of the object, keeping its metadata.
	ctx := context.Background()
	key := "main/" + b.Status.Snapshots[0].Name
	obj, err := admin.GetObject(ctx, "etcd-backups", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obj.Stat()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 3; i < len(data)/3+64; i++ {
		data[i] ^= 0x5a
	}
	if _, err := admin.PutObject(ctx, "etcd-backups", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{UserMetadata: info.UserMetadata}); err != nil {
		t.Fatal(err)
	}

	newEtcdCluster(t, ns, "restored", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.Bootstrap = &quorumv1alpha1.EtcdBootstrap{Restore: &quorumv1alpha1.EtcdRestore{BackupRef: quorumv1alpha1.LocalObjectReference{Name: "once"}}}
	})
	eventually(t, "VerificationFailed", 3*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "restored")
		cond := meta.FindStatusCondition(c.Status.Conditions, quorumv1alpha1.ConditionProgressing)
		if cond == nil {
			return false, "no condition"
		}
		return cond.Reason == "VerificationFailed" && strings.Contains(cond.Message, "nothing was created"), cond.Reason + ": " + cond.Message
	})
	pods, _ := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: resources.LabelCluster + "=restored"})
	pvcs, _ := kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: resources.LabelCluster + "=restored"})
	svcs, _ := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: resources.LabelCluster + "=restored"})
	if len(pods.Items)+len(pvcs.Items)+len(svcs.Items) != 0 {
		t.Fatalf("a refused restore created %d pods, %d volumes and %d Services", len(pods.Items), len(pvcs.Items), len(svcs.Items))
	}
}

// testRestoreFromBackup: a 3-member cluster loses two members for good;
// with RestoreFromBackup it comes back with the newest snapshot's data and
// reports the data-loss window.
func testRestoreFromBackup(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "backup-recover")
	s3Server(t, ns, "etcd-backups")
	newEtcdCluster(t, ns, "main", 3, func(c *quorumv1alpha1.EtcdCluster) {
		c.Spec.QuorumLossPolicy = quorumv1alpha1.QuorumLossRestoreFromBackup
	})
	before := waitHealthy(t, ns, "main", 3, 4*time.Minute)
	cl := etcdClient(t, ns, "main")
	saved := putKeys(t, cl, "/data/", 1000)
	create(t, s3Backup(ns, "once", "main", "etcd-backups", "s3-credentials"))
	waitBackup(t, ns, "once", metav1.ConditionTrue, "SnapshotVerified")
	putKeys(t, cl, "/after/", 100)

	// Two members lost for good: pods and volumes gone together.
	ctx := context.Background()
	for _, m := range before.Status.Members[:2] {
		_ = kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, resources.PVCName(m.Name), metav1.DeleteOptions{})
		_ = kube.CoreV1().Pods(ns).Delete(ctx, m.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}
	start := time.Now()
	eventually(t, "rebuilt from the snapshot", 6*time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "main")
		rs := c.Status.Restore
		return rs != nil && rs.Verified && rs.DataLossWindow != "" && c.Status.ClusterID != "" && c.Status.ClusterID != before.Status.ClusterID,
			fmt.Sprintf("restore %+v, %s", rs, conditionSummary(c))
	})
	c := waitHealthy(t, ns, "main", 3, 5*time.Minute)
	t.Logf("rebuilt from backup in %s; data-loss window %s (snapshot %s, quorum lost %s)", time.Since(start).Round(time.Second),
		c.Status.Restore.DataLossWindow, c.Status.Restore.TakenAt, c.Status.Restore.QuorumLostAt)
	rcl := etcdClient(t, ns, "main")
	got, _ := getPrefix(t, rcl, "/data/")
	if len(got) != len(saved) {
		t.Fatalf("the rebuilt cluster holds %d of %d backed-up keys", len(got), len(saved))
	}
	if after, _ := getPrefix(t, rcl, "/after/"); len(after) != 0 {
		t.Fatalf("the rebuilt cluster holds %d keys written after the snapshot", len(after))
	}
	// Its clients keep their address and certificates.
	if _, err := kube.CoreV1().Services(ns).Get(ctx, "main-client", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func toUnstructured(obj map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}

// quorumManagerReady checks that the operator did not crash on the
// bad input: its Deployment is still fully ready.
func quorumManagerReady(t *testing.T) error {
	t.Helper()
	return cluster.WaitDeploymentReady(context.Background(), kube, cluster.QuorumNamespace, "quorum-manager", time.Minute)
}
