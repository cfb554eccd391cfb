// Package etcd is the only code that talks to etcd: members, learners,
// promotion, removal, leadership moves, member status and (with the backup
// work) snapshots. Controllers use the Cluster interface, so their decisions
// can be tested with a fake and their effects against real members.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Member is one member of the raft group as the cluster lists it.
type Member struct {
	ID         uint64
	Name       string // empty for a member added but not started yet
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Status is one member's own view, from its Maintenance.Status.
type Status struct {
	MemberID  uint64
	Leader    uint64
	RaftIndex uint64
	RaftTerm  uint64
	DBSize    int64
	// DBSizeInUse is the part of DBSize holding live data; the rest is
	// free pages a defragmentation gives back.
	DBSizeInUse int64
	// Revision is the key-value store's revision as the member knows it.
	Revision  int64
	Version   string
	IsLearner bool
	// Errors are what etcd reports beside the status: "etcdserver: no
	// leader" and the cluster's alarms. An alarm is not a sign of an
	// unhealthy member: every member reports every alarm.
	Errors []string
}

// Alarm is an alarm raised on a member.
type Alarm struct {
	MemberID uint64
	// Type is NOSPACE or CORRUPT.
	Type string
}

// Cluster is what a controller may ask of one etcd cluster.
type Cluster interface {
	// MemberList lists the members, voters and learners, with the cluster
	// ID. A linearizable list goes through the leader and is the
	// membership as it stands; a serializable one is a member's own,
	// possibly lagging, view, answered without quorum.
	MemberList(ctx context.Context, linearizable bool) (members []Member, clusterID uint64, err error)
	// AlarmList lists the alarms raised in the cluster.
	AlarmList(ctx context.Context) ([]Alarm, error)
	// AddLearner adds a non-voting member with peerURL and returns it with
	// the membership after the change.
	AddLearner(ctx context.Context, peerURL string) (added Member, members []Member, err error)
	// Promote makes a learner a voter. etcd refuses while the learner is not
	// in sync; that refusal is ErrLearnerNotReady.
	Promote(ctx context.Context, id uint64) error
	// Remove removes a member. Removing a member that is already gone is
	// not an error.
	Remove(ctx context.Context, id uint64) error
	// MoveLeader hands leadership to the voter transferee; leaderURL is the
	// current leader's client URL, the only member that can move it.
	MoveLeader(ctx context.Context, leaderURL string, transferee uint64) error
	// Status asks one member, by client URL, for its own view.
	Status(ctx context.Context, clientURL string) (*Status, error)
	// Compact discards the key-value history before revision, for every
	// member. Compacting to a revision already compacted is not an error.
	Compact(ctx context.Context, revision int64) error
	// Defragment gives a member's free pages back to the file system; the
	// member answers nothing else while it runs.
	Defragment(ctx context.Context, clientURL string) error
	// AlarmDisarm clears an alarm (NOSPACE) raised on a member.
	AlarmDisarm(ctx context.Context, memberID uint64, alarm string) error
	// Close releases the connections.
	Close() error
}

// ErrLearnerNotReady is etcd's refusal to promote a learner that has not
// caught up with the leader yet: retry later, it is not a failure.
var ErrLearnerNotReady = errors.New("the learner is not yet in sync with the leader")

// Dialer opens a Cluster on a set of client URLs. addresses maps a URL's
// host name to the address to connect to (a member's pod IP), so that
// reaching a member does not depend on cluster DNS while TLS still
// verifies the member's name; a host not in it is resolved as usual.
type Dialer func(endpoints []string, tlsConfig *tls.Config, addresses map[string]string) (Cluster, error)

// Dial connects to the members at endpoints with mutual TLS.
func Dial(endpoints []string, tlsConfig *tls.Config, addresses map[string]string) (Cluster, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints to dial")
	}
	c, err := newClient(endpoints, tlsConfig, addresses)
	if err != nil {
		return nil, err
	}
	return &cluster{client: c, tls: tlsConfig, addresses: addresses}, nil
}

func newClient(endpoints []string, tlsConfig *tls.Config, addresses map[string]string) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:            endpoints,
		TLS:                  tlsConfig,
		DialTimeout:          3 * time.Second,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// The operator's logs speak for it; the client's own are noise.
		Logger: zap.NewNop(),
	}
	if len(addresses) > 0 {
		cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip, ok := addresses[host]; ok {
				addr = net.JoinHostPort(ip, port)
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		})}
	}
	return clientv3.New(cfg)
}

type cluster struct {
	client    *clientv3.Client
	tls       *tls.Config
	addresses map[string]string
}

func (c *cluster) MemberList(ctx context.Context, linearizable bool) ([]Member, uint64, error) {
	var opts []clientv3.OpOption
	if !linearizable {
		opts = append(opts, clientv3.WithSerializable())
	}
	resp, err := c.client.MemberList(ctx, opts...)
	if err != nil {
		return nil, 0, err
	}
	return convert(resp.Members), resp.Header.ClusterId, nil
}

func (c *cluster) AlarmList(ctx context.Context) ([]Alarm, error) {
	resp, err := c.client.AlarmList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Alarm, 0, len(resp.Alarms))
	for _, a := range resp.Alarms {
		if a.Alarm != etcdserverpb.AlarmType_NONE {
			out = append(out, Alarm{MemberID: a.MemberID, Type: a.Alarm.String()})
		}
	}
	return out, nil
}

func (c *cluster) AddLearner(ctx context.Context, peerURL string) (Member, []Member, error) {
	resp, err := c.client.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return Member{}, nil, err
	}
	added := convert([]*etcdserverpb.Member{resp.Member})[0]
	return added, convert(resp.Members), nil
}

func (c *cluster) Promote(ctx context.Context, id uint64) error {
	_, err := c.client.MemberPromote(ctx, id)
	if err != nil && (errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || strings.Contains(err.Error(), "not in sync")) {
		return fmt.Errorf("%w: %w", ErrLearnerNotReady, err)
	}
	return err
}

func (c *cluster) Remove(ctx context.Context, id uint64) error {
	_, err := c.client.MemberRemove(ctx, id)
	if err != nil && (errors.Is(err, rpctypes.ErrMemberNotFound) || strings.Contains(err.Error(), "member not found")) {
		return nil
	}
	return err
}

func (c *cluster) MoveLeader(ctx context.Context, leaderURL string, transferee uint64) error {
	// MoveLeader must reach the leader itself.
	leader, err := newClient([]string{leaderURL}, c.tls, c.addresses)
	if err != nil {
		return err
	}
	defer func() { _ = leader.Close() }()
	_, err = leader.MoveLeader(ctx, transferee)
	return err
}

func (c *cluster) Status(ctx context.Context, clientURL string) (*Status, error) {
	resp, err := c.client.Status(ctx, clientURL)
	if err != nil {
		return nil, err
	}
	return &Status{
		MemberID:    resp.Header.MemberId,
		Leader:      resp.Leader,
		RaftIndex:   resp.RaftIndex,
		RaftTerm:    resp.RaftTerm,
		DBSize:      resp.DbSize,
		DBSizeInUse: resp.DbSizeInUse,
		Revision:    resp.Header.Revision,
		Version:     resp.Version,
		IsLearner:   resp.IsLearner,
		Errors:      resp.Errors,
	}, nil
}

func (c *cluster) Compact(ctx context.Context, revision int64) error {
	_, err := c.client.Compact(ctx, revision, clientv3.WithCompactPhysical())
	if err != nil && (errors.Is(err, rpctypes.ErrCompacted) || strings.Contains(err.Error(), "required revision has been compacted")) {
		return nil
	}
	return err
}

func (c *cluster) Defragment(ctx context.Context, clientURL string) error {
	_, err := c.client.Defragment(ctx, clientURL)
	return err
}

func (c *cluster) AlarmDisarm(ctx context.Context, memberID uint64, alarm string) error {
	t, ok := etcdserverpb.AlarmType_value[alarm]
	if !ok {
		return fmt.Errorf("unknown alarm %q", alarm)
	}
	_, err := c.client.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: memberID, Alarm: etcdserverpb.AlarmType(t)})
	return err
}

func (c *cluster) Close() error { return c.client.Close() }

// Quorum is the number of voters a membership of n voters needs to make
// progress.
func Quorum(voters int) int { return voters/2 + 1 }

// FormatID renders a member or cluster ID as etcdctl does.
func FormatID(id uint64) string { return fmt.Sprintf("%x", id) }

func convert(in []*etcdserverpb.Member) []Member {
	out := make([]Member, 0, len(in))
	for _, m := range in {
		out = append(out, Member{
			ID:         m.ID,
			Name:       m.Name,
			PeerURLs:   append([]string(nil), m.PeerURLs...),
			ClientURLs: append([]string(nil), m.ClientURLs...),
			IsLearner:  m.IsLearner,
		})
	}
	return out
}

// Snapshot streams the database of the member at clientURL into w through
// the Maintenance API, without holding it in memory. The stream ends with
// the sha256 of the database, as etcd sends it; snapshot.Verify checks it.
// It returns the bytes written and the member's etcd version.
//
// Before the stream starts, a linearizable read through the same member
// makes it apply everything the cluster committed before the call (etcd's
// ReadIndex): a follower's snapshot then holds every write acknowledged
// before Snapshot was called, so a time taken before the call honestly
// bounds what the snapshot holds.
func Snapshot(ctx context.Context, clientURL string, tlsConfig *tls.Config, w io.Writer) (int64, string, error) {
	c, err := newClient([]string{clientURL}, tlsConfig, nil)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = c.Close() }()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = c.Get(rctx, "\x00", clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return 0, "", fmt.Errorf("reading through %s before the snapshot: %w", clientURL, err)
	}
	resp, err := c.SnapshotWithVersion(ctx)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Snapshot.Close() }()
	n, err := io.CopyBuffer(w, resp.Snapshot, make([]byte, 1<<20))
	return n, resp.Version, err
}
