// Package etcdtest is an etcd cluster in memory behind the etcd.Cluster
// interface, for envtest runs of the controllers where no member process
// runs. End-to-end suites use real members.
package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"net/url"
	"strings"
	"sync"

	"quorum.dev/quorum/internal/etcd"
)

// Cluster is an etcd cluster in memory: a member exists once added, and
// answers once started (its pod given an IP by the test, as a kubelet
// would).
type Cluster struct {
	mu        sync.Mutex
	nextID    uint64
	clusterID uint64
	leader    uint64
	members   map[uint64]*fakeMember
	calls     []string
}

type fakeMember struct {
	id      uint64
	name    string // member name (from its peer URL)
	learner bool
	started bool
}

// New is an empty cluster; the first member started bootstraps it.
func New() *Cluster {
	return &Cluster{nextID: 0x100, clusterID: 0xc1a5, members: map[uint64]*fakeMember{}}
}

// Dial is an etcd.Dialer onto the cluster.
func (f *Cluster) Dial(endpoints []string, _ *tls.Config) (etcd.Cluster, error) {
	return &fakeConn{f: f}, nil
}

// Start is the member's process starting: the first member bootstraps the
// cluster and leads.
func (f *Cluster) Start(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.name == name {
			m.started = true
			return
		}
	}
	if len(f.members) == 0 {
		f.nextID++
		f.members[f.nextID] = &fakeMember{id: f.nextID, name: name, started: true}
		f.leader = f.nextID
	}
}

func (f *Cluster) record(call string) { f.calls = append(f.calls, call) }

// Calls lists the membership calls made, in order: "add NAME", "promote
// NAME", "remove NAME", "move-leader".
func (f *Cluster) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type fakeConn struct{ f *Cluster }

func hostMember(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.SplitN(parsed.Hostname(), ".", 2)[0]
}

func (c *fakeConn) MemberList(context.Context) ([]etcd.Member, uint64, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	var out []etcd.Member
	anyStarted := false
	for _, m := range c.f.members {
		name := ""
		if m.started {
			name, anyStarted = m.name, true
		}
		out = append(out, etcd.Member{ID: m.id, Name: name, PeerURLs: []string{"https://" + m.name + ".main-peer.ns.svc:2380"}, IsLearner: m.learner})
	}
	if !anyStarted {
		return nil, 0, errors.New("context deadline exceeded")
	}
	return out, c.f.clusterID, nil
}

func (c *fakeConn) AddLearner(_ context.Context, peerURL string) (etcd.Member, []etcd.Member, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	for _, m := range c.f.members {
		if m.learner {
			return etcd.Member{}, nil, errors.New("etcdserver: too many learner members in cluster")
		}
	}
	c.f.nextID++
	m := &fakeMember{id: c.f.nextID, name: hostMember(peerURL), learner: true}
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
	if !m.started {
		return etcd.ErrLearnerNotReady
	}
	m.learner = false
	c.f.record("promote " + m.name)
	return nil
}

func (c *fakeConn) Remove(_ context.Context, id uint64) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if m, ok := c.f.members[id]; ok {
		c.f.record("remove " + m.name)
	}
	delete(c.f.members, id)
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
	name := hostMember(clientURL)
	for _, m := range c.f.members {
		if m.name == name && m.started {
			return &etcd.Status{MemberID: m.id, Leader: c.f.leader, RaftIndex: 42, DBSize: 20480, Version: "3.6.16", IsLearner: m.learner}, nil
		}
	}
	return nil, errors.New("connection refused")
}

func (c *fakeConn) Close() error { return nil }
