// Package etcdtest is an etcd cluster in memory behind the etcd.Cluster
// interface, for envtest runs of the controllers where no member process
// runs. End-to-end suites use real members.
//
// It keeps the rules the controllers depend on: one learner at a time, a
// learner promoted only once started, a linearizable member list and a
// leader only while a majority of voters answers, alarms reported by every
// member, and credential refusals told apart from members that are down.
package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"net/url"
	"sort"
	"strings"
	"sync"

	"quorum.dev/quorum/internal/etcd"
)

// Cluster is an etcd cluster in memory: a member exists once added, and
// answers once started (its pod given an IP by the test, as a kubelet
// would) until stopped.
type Cluster struct {
	mu        sync.Mutex
	nextID    uint64
	clusterID uint64
	leader    uint64
	members   map[uint64]*fakeMember
	alarms    []etcd.Alarm
	calls     []string
	// rejectClient makes every call fail as a TLS handshake refusing the
	// caller's certificate.
	rejectClient bool
	// loseRemoveAnswers makes Remove remove the member and then fail, as
	// a member serving its own removal stops before it answers.
	loseRemoveAnswers bool
	// revision is the store's revision; compacted the last compaction;
	// live the bytes live data takes once history is compacted.
	revision, compacted int64
	live                int64
}

type fakeMember struct {
	id      uint64
	name    string // member name (from its peer URL)
	learner bool
	started bool
	down    bool
	// dbSize is the database file's size, inUse the part holding data
	// (live data plus the history not compacted yet).
	dbSize, inUse int64
}

var (
	errNoAnswer = errors.New("connection error: desc = \"transport: Error while dialing: dial tcp 10.1.0.2:2379: connect: connection refused\"")
	errRejected = errors.New("connection error: desc = \"transport: authentication handshake failed: remote error: tls: bad certificate\"")
	errNoQuorum = errors.New("context deadline exceeded")
	errStopped  = errors.New("etcdserver: server stopped")
)

// New is an empty cluster; the first member started bootstraps it.
func New() *Cluster {
	return &Cluster{nextID: 0x100, clusterID: 0xc1a5, members: map[uint64]*fakeMember{}, revision: 1, live: 16384}
}

// Dial is an etcd.Dialer onto the cluster.
func (f *Cluster) Dial([]string, *tls.Config, map[string]string) (etcd.Cluster, error) {
	return &fakeConn{f: f}, nil
}

// Start is the member's process starting (again): the first member
// bootstraps the cluster and leads.
func (f *Cluster) Start(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.byName(name); m != nil {
		m.started, m.down = true, false
		f.elect()
		return
	}
	if len(f.members) == 0 {
		f.nextID++
		f.members[f.nextID] = &fakeMember{id: f.nextID, name: name, started: true, dbSize: 20480, inUse: 16384}
		f.leader = f.nextID
	}
}

// Stop makes a member stop answering, as when its node is cut off.
func (f *Cluster) Stop(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.byName(name); m != nil {
		m.down = true
		f.elect()
	}
}

// RejectClient makes every call fail (or stop failing) as a TLS handshake
// that refuses the caller's certificate.
func (f *Cluster) RejectClient(reject bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejectClient = reject
}

// LoseRemoveAnswers makes every Remove take effect and then fail.
func (f *Cluster) LoseRemoveAnswers(lose bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseRemoveAnswers = lose
}

// RaiseAlarm raises an alarm (NOSPACE, CORRUPT) on a member.
func (f *Cluster) RaiseAlarm(name, alarm string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.byName(name); m != nil {
		f.alarms = append(f.alarms, etcd.Alarm{MemberID: m.id, Type: alarm})
	}
}

// Leader is the name of the leading member, or "".
func (f *Cluster) Leader() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.members[f.leader]; m != nil {
		return m.name
	}
	return ""
}

// Calls lists the membership calls made, in order: "add NAME", "promote
// NAME", "remove NAME", "move-leader".
func (f *Cluster) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *Cluster) record(call string) { f.calls = append(f.calls, call) }

func (f *Cluster) byName(name string) *fakeMember {
	for _, m := range f.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

func (f *Cluster) up(m *fakeMember) bool { return m.started && !m.down }

// quorum says whether a majority of voters answers.
func (f *Cluster) quorum() bool {
	voters, up := 0, 0
	for _, m := range f.members {
		if !m.learner {
			voters++
			if f.up(m) {
				up++
			}
		}
	}
	return voters > 0 && up >= voters/2+1
}

// elect keeps a leader while there is quorum: the current one if it is up,
// else the voter with the lowest ID that is.
func (f *Cluster) elect() {
	if !f.quorum() {
		f.leader = 0
		return
	}
	if m := f.members[f.leader]; m != nil && f.up(m) && !m.learner {
		return
	}
	ids := make([]uint64, 0, len(f.members))
	for id := range f.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if m := f.members[id]; f.up(m) && !m.learner {
			f.leader = id
			return
		}
	}
}

type fakeConn struct{ f *Cluster }

func hostMember(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.SplitN(parsed.Hostname(), ".", 2)[0]
}

func (c *fakeConn) MemberList(_ context.Context, linearizable bool) ([]etcd.Member, uint64, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.rejectClient {
		return nil, 0, errRejected
	}
	var out []etcd.Member
	anyUp := false
	for _, m := range c.f.members {
		name := ""
		if m.started {
			name = m.name
		}
		anyUp = anyUp || c.f.up(m)
		out = append(out, etcd.Member{ID: m.id, Name: name, PeerURLs: []string{"https://" + m.name + ".main-peer.ns.svc:2380"}, IsLearner: m.learner})
	}
	if !anyUp || (linearizable && !c.f.quorum()) {
		return nil, 0, errNoQuorum
	}
	return out, c.f.clusterID, nil
}

func (c *fakeConn) AlarmList(context.Context) ([]etcd.Alarm, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.rejectClient {
		return nil, errRejected
	}
	if !c.f.quorum() {
		return nil, errNoQuorum
	}
	return append([]etcd.Alarm(nil), c.f.alarms...), nil
}

func (c *fakeConn) AddLearner(_ context.Context, peerURL string) (etcd.Member, []etcd.Member, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.f.quorum() {
		return etcd.Member{}, nil, errNoQuorum
	}
	for _, m := range c.f.members {
		if m.learner {
			return etcd.Member{}, nil, errors.New("etcdserver: too many learner members in cluster")
		}
	}
	c.f.nextID++
	m := &fakeMember{id: c.f.nextID, name: hostMember(peerURL), learner: true, dbSize: 20480, inUse: 16384}
	c.f.members[m.id] = m
	c.f.record("add " + m.name)
	return etcd.Member{ID: m.id, PeerURLs: []string{peerURL}, IsLearner: true}, nil, nil
}

func (c *fakeConn) Promote(_ context.Context, id uint64) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	m, ok := c.f.members[id]
	if !ok {
		return errors.New("member not found")
	}
	if !c.f.up(m) {
		return etcd.ErrLearnerNotReady
	}
	m.learner = false
	c.f.record("promote " + m.name)
	return nil
}

func (c *fakeConn) Remove(_ context.Context, id uint64) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.f.quorum() {
		return errNoQuorum
	}
	if m, ok := c.f.members[id]; ok {
		c.f.record("remove " + m.name)
	}
	delete(c.f.members, id)
	c.f.elect()
	if c.f.loseRemoveAnswers {
		return errStopped
	}
	return nil
}

func (c *fakeConn) MoveLeader(_ context.Context, _ string, to uint64) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.leader = to
	c.f.record("move-leader")
	return nil
}

func (c *fakeConn) Status(_ context.Context, clientURL string) (*etcd.Status, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.rejectClient {
		return nil, errRejected
	}
	m := c.f.byName(hostMember(clientURL))
	if m == nil || !c.f.up(m) {
		return nil, errNoAnswer
	}
	st := &etcd.Status{MemberID: m.id, Leader: c.f.leader, RaftIndex: 42, DBSize: m.dbSize, DBSizeInUse: m.inUse, Revision: c.f.revision, Version: "3.6.16", IsLearner: m.learner}
	if st.Leader == 0 {
		st.Errors = append(st.Errors, "etcdserver: no leader")
	}
	return st, nil
}

func (c *fakeConn) Compact(_ context.Context, revision int64) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.f.quorum() {
		return errNoQuorum
	}
	if revision > c.f.compacted {
		c.f.compacted = revision
		for _, m := range c.f.members {
			m.inUse = c.f.live
		}
	}
	c.f.record("compact")
	return nil
}

func (c *fakeConn) Defragment(_ context.Context, clientURL string) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	m := c.f.byName(hostMember(clientURL))
	if m == nil || !c.f.up(m) {
		return errNoAnswer
	}
	m.dbSize = m.inUse
	c.f.record("defrag " + m.name)
	return nil
}

func (c *fakeConn) AlarmDisarm(_ context.Context, memberID uint64, alarm string) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	var kept []etcd.Alarm
	for _, a := range c.f.alarms {
		if a.MemberID != memberID || a.Type != alarm {
			kept = append(kept, a)
		}
	}
	c.f.alarms = kept
	c.f.record("disarm " + alarm)
	return nil
}

func (c *fakeConn) Close() error { return nil }

// Fill makes every member's database dbSize bytes, of which live are live
// data (the rest history a compaction frees), at a newer revision, as a
// client overwriting keys would.
func (f *Cluster) Fill(dbSize, live int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revision += 1000
	f.live = live
	for _, m := range f.members {
		m.dbSize, m.inUse = dbSize, dbSize
	}
}

// Fragment makes member name's database dbSize bytes, of which inUse are
// in use (the rest free pages a defragmentation gives back).
func (f *Cluster) Fragment(name string, dbSize, inUse int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.byName(name); m != nil {
		m.dbSize, m.inUse = dbSize, inUse
	}
}
