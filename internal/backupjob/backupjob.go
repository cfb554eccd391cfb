// Package backupjob is what runs in a backup pod (the manager image with
// the argument backup-job): take a snapshot of a cluster into a store, or
// fetch and verify one for a restore. It ends by printing one result line,
// which the EtcdBackup and EtcdCluster controllers read from the pod's log.
//
// Memory stays bounded whatever the database size: the snapshot streams to
// a file through a 1 MiB buffer and S3 uploads hold one 16 MiB part.
package backupjob

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"quorum.dev/quorum/internal/etcd"
	"quorum.dev/quorum/internal/pki"
	"quorum.dev/quorum/internal/snapshot"
)

// ResultPrefix starts the result line in the pod's log.
const ResultPrefix = "QUORUM-RESULT "

// Result is what a backup pod reports.
type Result struct {
	OK bool `json:"ok"`
	// Reason is a condition reason when not OK: ClusterUnhealthy,
	// DestinationUnreachable, CredentialsInvalid, VerificationFailed,
	// SnapshotNotFound, SnapshotFailed.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Snapshot is the snapshot taken, verified or fetched.
	Snapshot *snapshot.Meta `json:"snapshot,omitempty"`
	// Snapshots are the newest snapshots the store holds after retention
	// (at most 20), and Total how many it holds.
	Snapshots []snapshot.Meta `json:"snapshots,omitempty"`
	Total     int             `json:"total"`
	// Deleted names the snapshots retention removed.
	Deleted []string `json:"deleted,omitempty"`
	// HeapBytes is the most heap the job took from the system: its memory
	// bound, apart from the snapshot file it maps read-only to verify.
	HeapBytes uint64 `json:"heapBytes,omitempty"`
}

// ParseResult finds the result line in a pod's log.
func ParseResult(log string) (*Result, error) {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(lines[i], ResultPrefix); ok {
			r := &Result{}
			if err := json.Unmarshal([]byte(rest), r); err != nil {
				return nil, err
			}
			return r, nil
		}
	}
	return nil, errors.New("the backup pod printed no result")
}

// Main runs a backup pod's work and returns its exit code.
func Main(args []string, stdout io.Writer) int {
	r := run(args)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapBytes = ms.HeapSys
	data, _ := json.Marshal(r)
	_, _ = fmt.Fprintln(stdout, ResultPrefix+string(data))
	if !r.OK {
		return 1
	}
	return 0
}

type options struct {
	mode      string
	cluster   string
	namespace string
	endpoints string
	tlsDir    string
	keepLast  int
	name      string
	out       string
	sha256    string

	volumeDir, location            string
	s3Endpoint, s3Bucket, s3Prefix string
	s3Region, s3CAFile, spoolDir   string
	s3Insecure                     bool
	timeout                        string
}

func run(args []string) Result {
	if len(args) == 0 {
		return Result{Reason: "BadArguments", Message: "usage: backup-job snapshot|fetch [flags]"}
	}
	o := options{mode: args[0]}
	fs := flag.NewFlagSet("backup-job "+o.mode, flag.ContinueOnError)
	fs.StringVar(&o.cluster, "cluster", "", "name of the EtcdCluster")
	fs.StringVar(&o.namespace, "namespace", "", "namespace of the EtcdCluster (snapshot names start with <namespace>_<cluster>_<clusterID>_)")
	fs.StringVar(&o.endpoints, "endpoints", "", "comma-separated client URLs of the members")
	fs.StringVar(&o.tlsDir, "tls-dir", "/etc/quorum/etcd-client", "folder with ca.crt, tls.crt and tls.key for etcd; empty for plain HTTP")
	fs.IntVar(&o.keepLast, "keep-last", 10, "snapshots to keep")
	fs.StringVar(&o.name, "name", "", "snapshot to fetch; empty means the newest that verifies")
	fs.StringVar(&o.out, "out", "", "file to fetch the snapshot to")
	fs.StringVar(&o.sha256, "sha256", "", "sha256 the fetched snapshot must have")
	fs.StringVar(&o.volumeDir, "volume-dir", "", "folder of a volume destination")
	fs.StringVar(&o.location, "location", "", "location prefix of a volume destination (pvc://claim/path)")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", "S3 endpoint host:port")
	fs.StringVar(&o.s3Bucket, "s3-bucket", "", "S3 bucket")
	fs.StringVar(&o.s3Prefix, "s3-prefix", "", "S3 key prefix")
	fs.StringVar(&o.s3Region, "s3-region", "us-east-1", "S3 region")
	fs.BoolVar(&o.s3Insecure, "s3-insecure", false, "plain HTTP to S3")
	fs.StringVar(&o.s3CAFile, "s3-ca-file", "", "CA bundle for the S3 endpoint")
	fs.StringVar(&o.spoolDir, "spool-dir", "/tmp", "local folder a snapshot is written to before upload")
	fs.StringVar(&o.timeout, "timeout", "30m", "how long the whole job may take")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		return Result{Reason: "BadArguments", Message: err.Error()}
	}
	timeout, err := time.ParseDuration(o.timeout)
	if err != nil {
		return Result{Reason: "BadArguments", Message: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	store, err := o.store()
	if err != nil {
		return Result{Reason: "DestinationUnreachable", Message: err.Error()}
	}
	switch o.mode {
	case "snapshot":
		return takeSnapshot(ctx, o, store)
	case "fetch":
		return fetch(ctx, o, store)
	}
	return Result{Reason: "BadArguments", Message: "unknown mode " + o.mode}
}

func (o options) store() (snapshot.Store, error) {
	if o.volumeDir != "" {
		return &snapshot.VolumeStore{Dir: o.volumeDir, Location: o.location}, nil
	}
	var ca []byte
	if o.s3CAFile != "" {
		var err error
		if ca, err = os.ReadFile(o.s3CAFile); err != nil {
			return nil, err
		}
	}
	return snapshot.NewS3Store(snapshot.S3Config{
		Endpoint: o.s3Endpoint, Bucket: o.s3Bucket, Prefix: o.s3Prefix, Region: o.s3Region,
		AccessKey: os.Getenv("S3_ACCESS_KEY_ID"), SecretKey: os.Getenv("S3_SECRET_ACCESS_KEY"),
		Insecure: o.s3Insecure, CAPEM: ca, SpoolDir: o.spoolDir,
	})
}

// storeFailure turns a store error into a result with a reason.
func storeFailure(err error) Result {
	switch {
	case errors.Is(err, snapshot.ErrCredentials):
		return Result{Reason: "CredentialsInvalid", Message: err.Error()}
	case errors.Is(err, snapshot.ErrVerification):
		return Result{Reason: "VerificationFailed", Message: err.Error()}
	case errors.Is(err, snapshot.ErrNotFound):
		return Result{Reason: "SnapshotNotFound", Message: err.Error()}
	}
	return Result{Reason: "DestinationUnreachable", Message: err.Error()}
}

// takeSnapshot streams a snapshot from the best member into the store,
// verifies it, commits it, then applies retention.
func takeSnapshot(ctx context.Context, o options, store snapshot.Store) Result {
	if err := store.Check(ctx); err != nil {
		return storeFailure(err)
	}
	tlsConfig, err := loadTLS(o.tlsDir)
	if err != nil {
		return Result{Reason: "ClusterUnhealthy", Message: err.Error()}
	}
	endpoint, clusterID, err := pickMember(ctx, strings.Split(o.endpoints, ","), tlsConfig)
	if err != nil {
		return Result{Reason: "ClusterUnhealthy", Message: err.Error()}
	}
	takenAt := time.Now().UTC()
	series := snapshot.Series{Namespace: o.namespace, Cluster: o.cluster}
	name := series.Name(clusterID, takenAt)
	spool := store.Spool(name)
	if err := os.MkdirAll(filepath.Dir(spool), 0o750); err != nil {
		return storeFailure(err)
	}
	f, err := os.Create(spool)
	if err != nil {
		return storeFailure(err)
	}
	defer func() { _ = os.Remove(spool) }()
	digest := snapshot.NewDigest()
	_, version, err := etcd.Snapshot(ctx, endpoint, tlsConfig, io.MultiWriter(f, digest))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{Reason: "SnapshotFailed", Message: fmt.Sprintf("streaming the snapshot from %s: %v", endpoint, err)}
	}
	meta, err := snapshot.VerifyDigested(spool, digest)
	if err != nil {
		return storeFailure(err)
	}
	meta.Name, meta.Cluster, meta.TakenAt, meta.EtcdVersion, meta.ClusterID = name, o.cluster, takenAt, version, clusterID
	if meta.Location, err = store.Commit(ctx, spool, meta); err != nil {
		return storeFailure(err)
	}

	// Retention works from what the store holds, after the new snapshot is
	// committed: the newest (this one) is never deleted, nor any snapshot
	// of an earlier incarnation of the cluster (another cluster ID: before
	// a restore, its data may exist nowhere else).
	res := Result{OK: true, Snapshot: &meta}
	all, err := store.List(ctx, series)
	if err != nil {
		return storeFailure(err)
	}
	for _, old := range snapshot.Retain(snapshot.OfClusterID(all, clusterID), o.keepLast) {
		if old.Name == meta.Name {
			continue
		}
		if err := store.Delete(ctx, old.Name); err != nil {
			return storeFailure(err)
		}
		res.Deleted = append(res.Deleted, old.Name)
	}
	if all, err = store.List(ctx, series); err != nil {
		return storeFailure(err)
	}
	res.Total = len(all)
	if len(all) > 20 {
		all = all[:20]
	}
	res.Snapshots = all
	return res
}

// fetch copies a snapshot out of the store and verifies it: its sha256
// against the recorded one, then its trailer and database.
func fetch(ctx context.Context, o options, store snapshot.Store) Result {
	name := o.name
	if name == "" {
		all, err := store.List(ctx, snapshot.Series{Namespace: o.namespace, Cluster: o.cluster})
		if err != nil {
			return storeFailure(err)
		}
		if len(all) == 0 {
			return Result{Reason: "SnapshotNotFound", Message: "the destination holds no snapshot of " + o.cluster}
		}
		name = all[0].Name
	}
	out := o.out
	if out == "" {
		out = filepath.Join(o.spoolDir, name)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return storeFailure(err)
	}
	f, err := os.Create(out)
	if err != nil {
		return storeFailure(err)
	}
	digest := snapshot.NewDigest()
	recorded, err := store.Fetch(ctx, name, io.MultiWriter(f, digest))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out)
		return storeFailure(err)
	}
	want := o.sha256
	if want == "" {
		want = recorded.SHA256
	}
	got, err := snapshot.VerifyDigested(out, digest)
	if err == nil && got.SHA256 != want {
		err = fmt.Errorf("%w: sha256 is %s, the backup recorded %s", snapshot.ErrVerification, got.SHA256, want)
	}
	if err != nil {
		_ = os.Remove(out)
		return storeFailure(err)
	}
	recorded.SizeBytes, recorded.Keys, recorded.Hash = got.SizeBytes, got.Keys, got.Hash
	return Result{OK: true, Snapshot: &recorded}
}

// pickMember chooses the member to snapshot: a healthy follower with the
// highest raft index, sparing the leader; the leader when it is the only
// healthy member.
func pickMember(ctx context.Context, endpoints []string, tlsConfig *tls.Config) (string, string, error) {
	cl, err := etcd.Dial(endpoints, tlsConfig, nil)
	if err != nil {
		return "", "", err
	}
	defer func() { _ = cl.Close() }()
	type cand struct {
		url    string
		st     *etcd.Status
		leader bool
	}
	var cands []cand
	var errs []string
	for _, ep := range endpoints {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := cl.Status(sctx, ep)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", ep, err))
			continue
		}
		if len(st.Errors) > 0 || st.Leader == 0 || st.IsLearner {
			errs = append(errs, fmt.Sprintf("%s: not healthy", ep))
			continue
		}
		cands = append(cands, cand{ep, st, st.Leader == st.MemberID})
	}
	if len(cands) == 0 {
		return "", "", fmt.Errorf("no healthy member to take a snapshot from: %s", strings.Join(errs, "; "))
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].leader != cands[j].leader {
			return !cands[i].leader
		}
		return cands[i].st.RaftIndex > cands[j].st.RaftIndex
	})
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, clusterID, err := cl.MemberList(lctx, false)
	if err != nil {
		return "", "", err
	}
	return cands[0].url, etcd.FormatID(clusterID), nil
}

func loadTLS(dir string) (*tls.Config, error) {
	if dir == "" {
		// Plain HTTP endpoints (benchmarks on loopback).
		return nil, nil
	}
	var pems [3][]byte
	for i, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("the etcd client certificate: %w", err)
		}
		pems[i] = data
	}
	cfg, err := pki.ClientTLSConfig(pems[0], pems[1], pems[2])
	if err != nil {
		return nil, fmt.Errorf("the etcd client certificate: %w", err)
	}
	return cfg, nil
}
