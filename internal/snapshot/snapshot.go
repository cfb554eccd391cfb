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
	// List lists the committed snapshots of a cluster, newest first.
	List(ctx context.Context, cluster string) ([]Meta, error)
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

// Name is the name of a snapshot of cluster taken at t: sortable, and
// unique to the second.
func Name(cluster string, t time.Time) string {
	return fmt.Sprintf("%s-%s.db", cluster, t.UTC().Format("20060102T150405Z"))
}

// ofCluster says whether a snapshot name belongs to cluster.
func ofCluster(name, cluster string) bool {
	rest, ok := strings.CutPrefix(name, cluster+"-")
	return ok && strings.HasSuffix(rest, ".db") && len(rest) == len("20060102T150405Z.db")
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
