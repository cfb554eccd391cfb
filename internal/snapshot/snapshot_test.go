package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	bolt "go.etcd.io/bbolt"
)

// makeSnapshot writes a file shaped like etcd's snapshot stream: a bbolt
// database with a "key" bucket of revisions 1..revs, then the sha256 of
// the database.
func makeSnapshot(t *testing.T, dir string, revs int) string {
	t.Helper()
	dbPath := filepath.Join(dir, "db")
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("key"))
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("meta")); err != nil {
			return err
		}
		for i := 1; i <= revs; i++ {
			k := make([]byte, 17)
			binary.BigEndian.PutUint64(k, uint64(i))
			k[8] = '_'
			if err := b.Put(k, []byte(fmt.Sprintf("value-%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	path := filepath.Join(dir, "snap.db")
	if err := os.WriteFile(path, append(data, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	path := makeSnapshot(t, dir, 250)
	meta, err := Verify(path)
	if err != nil {
		t.Fatalf("a good snapshot failed verification: %v", err)
	}
	if meta.Revision != 250 || meta.Keys != 250 || meta.SizeBytes == 0 || len(meta.SHA256) != 64 || meta.Hash == 0 {
		t.Fatalf("meta = %+v; want revision 250, 250 keys, a size, a sha256 and a hash", meta)
	}
	whole, err := SHA256File(path)
	if err != nil || whole != meta.SHA256 {
		t.Fatalf("sha256 %s, file %s (%v)", meta.SHA256, whole, err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a flipped byte", func() []byte { d := append([]byte(nil), data...); d[len(d)/2] ^= 0xff; return d }()},
		{"truncated", data[:len(data)-1000]},
		{"no trailer", data[:len(data)-32]},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(dir, "bad.db")
			if err := os.WriteFile(bad, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(bad); !errors.Is(err, ErrVerification) {
				t.Fatalf("Verify of a snapshot with %s = %v, want ErrVerification", tc.name, err)
			}
		})
	}
}

func metaAt(cluster string, minute int) Meta {
	t := time.Date(2026, 11, 21, 6, minute, 0, 0, time.UTC)
	return Meta{Name: Series{"ns", cluster}.Name("c1", t), Cluster: cluster, TakenAt: t, ClusterID: "c1"}
}

func TestRetain(t *testing.T) {
	var all []Meta
	for m := 0; m < 5; m++ {
		all = append(all, metaAt("main", m))
	}
	del := Retain(all, 3)
	if len(del) != 2 || del[0].Name != all[1].Name || del[1].Name != all[0].Name {
		t.Fatalf("Retain(5, keep 3) deletes %v; want the two oldest", del)
	}
	if del := Retain(all, 10); len(del) != 0 {
		t.Fatalf("Retain with room for all deletes %v", del)
	}
	if del := Retain(all, 0); len(del) != 4 || del[0].Name == all[4].Name {
		t.Fatalf("Retain(keep 0) must keep the newest: deletes %v", del)
	}
}

func TestVolumeStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := &VolumeStore{Dir: filepath.Join(dir, "backups", "main"), Location: "pvc://backups/main"}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	src := makeSnapshot(t, t.TempDir(), 10)
	for m := 0; m < 3; m++ {
		meta := metaAt("main", m)
		spool := store.Spool(meta.Name)
		data, _ := os.ReadFile(src)
		if err := os.WriteFile(spool, data, 0o600); err != nil {
			t.Fatal(err)
		}
		loc, err := store.Commit(ctx, spool, meta)
		if err != nil {
			t.Fatal(err)
		}
		if loc != "pvc://backups/main/"+meta.Name {
			t.Fatalf("location %s", loc)
		}
	}
	// A half-written snapshot and another cluster's are not listed.
	main := Series{"ns", "main"}
	_ = os.WriteFile(store.Spool(main.Name("c1", time.Now())), []byte("partial"), 0o600)
	_ = os.WriteFile(filepath.Join(store.Dir, Series{"ns", "other"}.Name("c1", time.Now())), []byte("x"), 0o600)
	_ = os.WriteFile(filepath.Join(store.Dir, Series{"other-ns", "main"}.Name("c1", time.Now())), []byte("x"), 0o600)
	list, err := store.List(ctx, main)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || !list[0].TakenAt.After(list[2].TakenAt) {
		t.Fatalf("List = %v; want 3 snapshots newest first", list)
	}
	out := fetchTo(t, store, list[0].Name)
	if _, err := Verify(out); err != nil {
		t.Fatalf("the fetched snapshot does not verify: %v", err)
	}
	if err := store.Delete(ctx, list[2].Name); err != nil {
		t.Fatal(err)
	}
	if list, _ := store.List(ctx, main); len(list) != 2 {
		t.Fatalf("after a delete %d snapshots are listed", len(list))
	}
}

// TestS3Store runs against a real S3 server: versitygw on loopback, built
// by hack/build-binaries.sh.
func TestS3Store(t *testing.T) {
	bin := filepath.Join("..", "..", "bin", "k8s", "versitygw")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("versitygw is not built (%v): run `make test`, which builds it", err)
	}
	port := freePort(t)
	root := t.TempDir()
	cmd := exec.Command(bin, "--port", fmt.Sprintf("127.0.0.1:%d", port), "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY=test-access", "ROOT_SECRET_KEY=test-secret-key")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)
	admin, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4("test-access", "test-secret-key", "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = admin.MakeBucket(ctx, "backups", minio.MakeBucketOptions{}); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}

	store, err := NewS3Store(S3Config{Endpoint: endpoint, Bucket: "backups", Prefix: "tenant/main", Region: "us-east-1",
		AccessKey: "test-access", SecretKey: "test-secret-key", Insecure: true, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	src := makeSnapshot(t, t.TempDir(), 20)
	data, _ := os.ReadFile(src)
	for m := 0; m < 4; m++ {
		meta := metaAt("main", m)
		meta.Revision, meta.SHA256, meta.ClusterID, meta.EtcdVersion = 20, "abc", "c1", "3.6.16"
		spool := store.Spool(meta.Name)
		if err := os.WriteFile(spool, data, 0o600); err != nil {
			t.Fatal(err)
		}
		loc, err := store.Commit(ctx, spool, meta)
		if err != nil {
			t.Fatal(err)
		}
		if loc != "s3://backups/tenant/main/"+meta.Name {
			t.Fatalf("location %s", loc)
		}
	}
	list, err := store.List(ctx, Series{"ns", "main"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 || list[0].Revision != 20 || list[0].ClusterID != "c1" || !list[0].TakenAt.After(list[3].TakenAt) {
		t.Fatalf("List = %+v", list)
	}
	info, err := admin.StatObject(ctx, "backups", "tenant/main/"+list[0].Name, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.UserMetadata["Quorum-Revision"] != "20" || info.UserMetadata["Quorum-Etcd-Version"] != "3.6.16" {
		t.Errorf("object metadata %v lacks the revision and etcd version", info.UserMetadata)
	}
	if _, err := Verify(fetchTo(t, store, list[1].Name)); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, list[3].Name); err != nil {
		t.Fatal(err)
	}

	wrong, _ := NewS3Store(S3Config{Endpoint: endpoint, Bucket: "backups", AccessKey: "test-access", SecretKey: "wrong", Insecure: true})
	if err := wrong.Check(ctx); !errors.Is(err, ErrCredentials) {
		t.Fatalf("Check with a wrong secret = %v, want ErrCredentials", err)
	}
	missing, _ := NewS3Store(S3Config{Endpoint: endpoint, Bucket: "nope", AccessKey: "test-access", SecretKey: "test-secret-key", Insecure: true})
	if err := missing.Check(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Check of a missing bucket = %v, want ErrUnreachable", err)
	}
	closed, _ := NewS3Store(S3Config{Endpoint: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Bucket: "backups", AccessKey: "a", SecretKey: "b", Insecure: true})
	if err := closed.Check(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Check of a closed port = %v, want ErrUnreachable", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func fetchTo(t *testing.T, store Store, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fetched.db")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := store.Fetch(context.Background(), name, f); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDigest feeds a snapshot to the streaming digest in pieces of every
// size around the trailer's and compares with the whole-file check.
func TestDigest(t *testing.T) {
	path := makeSnapshot(t, t.TempDir(), 50)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 31, 32, 33, 4096, len(data)} {
		d := NewDigest()
		for i := 0; i < len(data); i += chunk {
			end := i + chunk
			if end > len(data) {
				end = len(data)
			}
			_, _ = d.Write(data[i:end])
		}
		sum, err := d.Check()
		if err != nil || sum != want.SHA256 || d.Size() != int64(len(data)) {
			t.Fatalf("chunks of %d: sum %s (%v), size %d; want %s, %d", chunk, sum, err, d.Size(), want.SHA256, len(data))
		}
		bad := NewDigest()
		_, _ = bad.Write(data[:len(data)-1])
		_, _ = bad.Write([]byte{data[len(data)-1] ^ 1})
		if _, err := bad.Check(); !errors.Is(err, ErrVerification) {
			t.Fatalf("a bad trailer passed: %v", err)
		}
	}
}

// TestSeries: a snapshot's name says its namespace, cluster and cluster
// ID; a same-named cluster of another namespace, or a cluster whose name
// starts like another's, is not of the series; retention only ever prunes
// the current cluster ID.
func TestSeries(t *testing.T) {
	at := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	main := Series{"team-a", "main"}
	name := main.Name("8e9e05c52164694d", at)
	if name != "team-a_main_8e9e05c52164694d_20261121T060000Z.db" {
		t.Fatalf("name %s", name)
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{name, true},
		{"main-20261121T060000Z.db", true}, // taken before names carried the namespace
		{Series{"team-b", "main"}.Name("8e9e05c52164694d", at), false},
		{Series{"team-a", "main-2"}.Name("8e9e05c52164694d", at), false},
		{"main-2-20261121T060000Z.db", false},
		{"team-a_main_8e9e05c52164694d_20261121T060000Z.json", false},
		{"team-a_main__20261121T060000Z.db", false},
	} {
		if got := main.Owns(tc.name); got != tc.want {
			t.Errorf("Owns(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	var all []Meta
	for m := 0; m < 4; m++ {
		all = append(all, Meta{Name: main.Name("old", at.Add(time.Duration(m)*time.Minute)), ClusterID: "old", TakenAt: at.Add(time.Duration(m) * time.Minute)})
	}
	all = append(all, Meta{Name: main.Name("new", at.Add(time.Hour)), ClusterID: "new", TakenAt: at.Add(time.Hour)})
	sortNewestFirst(all)
	if del := Retain(OfClusterID(all, "new"), 1); len(del) != 0 {
		t.Fatalf("retention of the new cluster ID deletes %v: snapshots of the cluster before its restore", del)
	}
}
