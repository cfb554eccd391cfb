// Package snapshot holds etcd snapshots: verifying a snapshot file, and the
// stores snapshots are written to (a folder on a volume, or S3) behind one
// small interface.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Meta describes one snapshot: what etcd it came from and what it holds.
type Meta struct {
	Name        string    `json:"name"`
	Cluster     string    `json:"cluster"`
	TakenAt     time.Time `json:"takenAt"`
	Revision    int64     `json:"revision"`
	SizeBytes   int64     `json:"sizeBytes"`
	SHA256      string    `json:"sha256"`
	Keys        int64     `json:"keys"`
	Hash        uint32    `json:"hash"`
	EtcdVersion string    `json:"etcdVersion,omitempty"`
	ClusterID   string    `json:"clusterID,omitempty"`
	Location    string    `json:"location,omitempty"`
}

// Store is where snapshots live. A snapshot is first written to a spool
// path, verified there, then committed: only a committed snapshot is
// listed, so a half-written one is never mistaken for a backup.
type Store interface {
	// Check says whether the store can be used now: reachable, and the
	// credentials accepted.
	Check(ctx context.Context) error
	// Spool is the local path a snapshot named name is written to before it
	// is committed.
	Spool(name string) string
	// Commit makes the spooled snapshot visible under meta.Name, atomically,
	// and returns its location.
	Commit(ctx context.Context, spool string, meta Meta) (string, error)
	// List lists the committed snapshots of a series, newest first.
	List(ctx context.Context, series Series) ([]Meta, error)
	// Fetch copies a snapshot into w and returns its description.
	Fetch(ctx context.Context, name string, w io.Writer) (Meta, error)
	// Delete removes a snapshot.
	Delete(ctx context.Context, name string) error
}

// Errors a store reports, for conditions with a reason.
var (
	// ErrCredentials: the store refused the credentials.
	ErrCredentials = errors.New("credentials rejected")
	// ErrUnreachable: the store did not answer, or its bucket or folder is
	// missing.
	ErrUnreachable = errors.New("destination unreachable")
	// ErrNotFound: no such snapshot.
	ErrNotFound = errors.New("snapshot not found")
	// ErrVerification: the snapshot is not a complete, consistent etcd
	// snapshot.
	ErrVerification = errors.New("snapshot verification failed")
)

// Series is the snapshots of one EtcdCluster, wherever its backups write
// them. A snapshot's name says whose it is:
// <namespace>_<cluster>_<clusterID>_<time>.db, so that clusters of the same
// name in two namespaces sharing a bucket never touch each other's, and a
// cluster rebuilt under a new ID (a restore) never prunes the snapshots of
// the one before. Kubernetes names have no "_".
type Series struct {
	Namespace, Cluster string
}

const timeLayout = "20060102T150405Z"

// Name is the name of a snapshot of the series, of etcd cluster clusterID,
// taken at t: sortable, and unique to the second.
func (s Series) Name(clusterID string, t time.Time) string {
	return fmt.Sprintf("%s%s_%s.db", s.prefix(), clusterID, t.UTC().Format(timeLayout))
}

func (s Series) prefix() string { return s.Namespace + "_" + s.Cluster + "_" }

// legacyPrefix starts the names of snapshots taken before names carried the
// namespace and cluster ID: <cluster>-<time>.db. They are listed (they may
// be the only copy of some data) and never pruned by retention unless
// their recorded cluster ID is the current one.
func (s Series) legacyPrefix() string { return s.Cluster + "-" }

// Owns says whether a snapshot name belongs to the series.
func (s Series) Owns(name string) bool {
	if rest, ok := strings.CutPrefix(name, s.prefix()); ok {
		id, ts, ok := strings.Cut(rest, "_")
		return ok && id != "" && !strings.Contains(ts, "_") && validTime(ts)
	}
	rest, ok := strings.CutPrefix(name, s.legacyPrefix())
	return ok && validTime(rest)
}

func validTime(ts string) bool {
	stamp, ok := strings.CutSuffix(ts, ".db")
	if !ok {
		return false
	}
	_, err := time.Parse(timeLayout, stamp)
	return err == nil
}

// OfClusterID keeps the snapshots taken of etcd cluster clusterID: the
// ones retention may prune.
func OfClusterID(metas []Meta, clusterID string) []Meta {
	var out []Meta
	for _, m := range metas {
		if m.ClusterID == clusterID && clusterID != "" {
			out = append(out, m)
		}
	}
	return out
}

func sortNewestFirst(metas []Meta) {
	sort.SliceStable(metas, func(i, j int) bool {
		if !metas[i].TakenAt.Equal(metas[j].TakenAt) {
			return metas[i].TakenAt.After(metas[j].TakenAt)
		}
		return metas[i].Name > metas[j].Name
	})
}

// Retain chooses the snapshots to delete so that the keep newest remain.
// It never chooses the newest, whatever keep says: the last good snapshot
// is always kept.
func Retain(snapshots []Meta, keep int) (deletions []Meta) {
	if keep < 1 {
		keep = 1
	}
	sorted := append([]Meta(nil), snapshots...)
	sortNewestFirst(sorted)
	if len(sorted) <= keep {
		return nil
	}
	return sorted[keep:]
}
