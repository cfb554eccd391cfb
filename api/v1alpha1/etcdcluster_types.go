package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// QuorumLossPolicy says what the operator may do once a cluster has lost
// quorum.
// +kubebuilder:validation:Enum=Wait;RestoreFromBackup;ForceNewCluster
type QuorumLossPolicy string

const (
	// QuorumLossWait reports the loss and waits for members to come back.
	// Nothing is removed or rebuilt.
	QuorumLossWait QuorumLossPolicy = "Wait"
	// QuorumLossRestoreFromBackup rebuilds the cluster from the newest good
	// snapshot of the EtcdBackups of this cluster.
	QuorumLossRestoreFromBackup QuorumLossPolicy = "RestoreFromBackup"
	// QuorumLossForceNewCluster restarts the cluster from the most up-to-date
	// surviving member (etcd --force-new-cluster) and grows it back.
	QuorumLossForceNewCluster QuorumLossPolicy = "ForceNewCluster"
)

// EtcdClusterSpec is the etcd cluster a user asks for.
// +kubebuilder:validation:XValidation:rule="!has(self.maintenance) || !has(self.maintenance.quotaBackendBytes) || !has(self.storage.size) || has(self.storage.emptyDir) || quantity(self.storage.size).compareTo(quantity(self.maintenance.quotaBackendBytes).add(quantity(self.maintenance.quotaBackendBytes))) >= 0",message="maintenance.quotaBackendBytes must be at most half of storage.size: defragmentation rewrites the database next to the old one"
type EtcdClusterSpec struct {
	// replicas is the number of voting members: 1, 3, 5, 7 or 9. An even
	// count tolerates no more failures than the odd count below it, so it is
	// refused. Scaling passes through one learner at a time.
	// +kubebuilder:default=3
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 9",message="replicas must be between 1 and 9"
	// +kubebuilder:validation:XValidation:rule="self < 1 || self > 9 || self % 2 == 1",message="replicas must be odd (1, 3, 5, 7 or 9): an even count adds no failure tolerance"
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// version of etcd, such as 3.6.16. Changing it rolls the members one at
	// a time; only patch changes and one minor step up are carried out.
	// +kubebuilder:default="3.6.16"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+[.][0-9]+[.][0-9]+$')",message="version must be an etcd release of the form major.minor.patch, such as 3.6.16"
	// +optional
	Version string `json:"version,omitempty"`

	// image overrides the container image. Empty means
	// registry.k8s.io/etcd:<version>-0. The image must carry etcd, etcdctl
	// and etcdutl in /usr/local/bin.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// zones the members are spread over (max skew 1). Empty means members
	// are not pinned to zones.
	// +optional
	Zones Zones `json:"zones,omitempty"`

	// storage of each member's data directory.
	// +kubebuilder:default={}
	// +optional
	Storage EtcdStorage `json:"storage"`

	// tls of peer and client traffic. mTLS is always on; by default the
	// operator makes and rotates its own CA and certificates.
	// +kubebuilder:default={}
	// +optional
	TLS EtcdTLS `json:"tls"`

	// failurePolicy says when a member is failed and whether it is replaced.
	// +kubebuilder:default={}
	// +optional
	FailurePolicy FailurePolicy `json:"failurePolicy"`

	// quorumLossPolicy says what happens once a majority of voters has been
	// lost for longer than failurePolicy.unhealthyAfter. Wait (the default)
	// never repairs destructively; RestoreFromBackup rebuilds from the newest
	// snapshot of this cluster's EtcdBackups; ForceNewCluster restarts from
	// the most up-to-date survivor.
	// +kubebuilder:default=Wait
	// +optional
	QuorumLossPolicy QuorumLossPolicy `json:"quorumLossPolicy,omitempty"`

	// maintenance is etcd's housekeeping: its backend quota and automatic
	// compaction. Changing it restarts members one at a time, the leader
	// last, only while every member is healthy.
	// +optional
	Maintenance EtcdMaintenance `json:"maintenance,omitempty"`

	// deletionPolicy says what deleting this object does to its data:
	// Retain (the default) keeps the volumes and certificates, and a new
	// EtcdCluster of the same name in this namespace adopts them and comes
	// back with the same data and cluster ID; Delete removes them.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// bootstrap builds the cluster from a snapshot instead of empty. It takes
	// effect at creation only.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bootstrap is immutable: a cluster is bootstrapped once, at creation"
	// +optional
	Bootstrap *EtcdBootstrap `json:"bootstrap,omitempty"`

	// podTemplate shapes every member's pod.
	// +optional
	PodTemplate PodTemplate `json:"podTemplate,omitempty"`
}

// EtcdStorage is where each member keeps its data.
// +kubebuilder:validation:XValidation:rule="!(has(self.emptyDir) && has(self.storageClassName))",message="storage: emptyDir and storageClassName are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="has(self.emptyDir) == has(oldSelf.emptyDir)",message="storage.emptyDir is immutable: members cannot move between a volume and an emptyDir"
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storage.storageClassName is immutable: existing volumes cannot change class"
// +kubebuilder:validation:XValidation:rule="!has(self.size) || !has(oldSelf.size) || quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",message="storage.size may not shrink: a volume cannot be made smaller than its data"
type EtcdStorage struct {
	// size of each member's PersistentVolumeClaim. A larger size expands
	// every member's volume where its StorageClass allows expansion (else
	// Stalled says so, and new members get the new size); it never shrinks.
	// +kubebuilder:default="8Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(self).isGreaterThan(quantity('0'))",message="storage.size must be a positive quantity such as 8Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of each member's PersistentVolumeClaim. Empty means
	// the cluster's default StorageClass.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// emptyDir keeps data in the pod's emptyDir instead of a volume: for
	// throwaway clusters only, since a restarted pod comes back empty and is
	// replaced as a new member.
	// +optional
	EmptyDir *corev1.EmptyDirVolumeSource `json:"emptyDir,omitempty"`
}

// EtcdMaintenance is etcd's housekeeping settings.
type EtcdMaintenance struct {
	// quotaBackendBytes is etcd's --quota-backend-bytes: the database size
	// at which etcd raises NOSPACE and refuses writes (etcd's default is
	// 2Gi). It must leave room on the volume to defragment: at most half of
	// storage.size. After a NOSPACE alarm the operator compacts,
	// defragments and disarms once the database is back under 80% of it.
	// +kubebuilder:validation:XValidation:rule="quantity(self).compareTo(quantity('16Mi')) >= 0",message="maintenance.quotaBackendBytes must be at least 16Mi"
	// +optional
	QuotaBackendBytes *resource.Quantity `json:"quotaBackendBytes,omitempty"`

	// autoCompaction is etcd's automatic compaction of key history.
	// +optional
	AutoCompaction *AutoCompaction `json:"autoCompaction,omitempty"`

	// defrag defragments members' databases, one member at a time,
	// followers first and the leader last after leadership moved, only
	// while every member is healthy: every member on a schedule, and any
	// member whose fragmentation passes a threshold.
	// +optional
	Defrag *DefragPolicy `json:"defrag,omitempty"`
}

// DefragPolicy says when members' databases are defragmented: a
// defragmentation rewrites a member's database without its free pages,
// giving the space back to the volume.
// +kubebuilder:validation:XValidation:rule="has(self.schedule) || has(self.whenFragmentedAbove)",message="defrag: set a schedule, whenFragmentedAbove, or both"
// +kubebuilder:validation:XValidation:rule="has(self.schedule) || !has(self.timeZone)",message="defrag.timeZone is only used with a schedule"
// +kubebuilder:validation:XValidation:rule="has(self.whenFragmentedAbove) || !has(self.minReclaimable)",message="defrag.minReclaimable is only used with whenFragmentedAbove"
type DefragPolicy struct {
	// schedule in cron format (minute hour day-of-month month day-of-week),
	// read as EtcdBackup reads its schedule: every member is defragmented
	// once per run; after downtime at most one catch-up run is taken.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('(?i)^(([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?(,([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]{1,2})?)*) +(([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?(,([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]{1,2})?)*) +([?]|([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]{1,2})?)*) +(([*]|(0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(-(0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))?)(/[0-9]{1,2})?(,([*]|(0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(-(0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))?)(/[0-9]{1,2})?)*) +([?]|([*]|([0-7]|sun|mon|tue|wed|thu|fri|sat)(-([0-7]|sun|mon|tue|wed|thu|fri|sat))?)(/[0-9]{1,2})?(,([*]|([0-7]|sun|mon|tue|wed|thu|fri|sat)(-([0-7]|sun|mon|tue|wed|thu|fri|sat))?)(/[0-9]{1,2})?)*)$') || self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$|^@every ([0-9]+(ns|us|ms|s|m|h))+$')",message="schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week) such as \"0 */6 * * *\", or @hourly, @daily, @weekly, @monthly, @yearly or @every <duration>"
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// timeZone the schedule is read in, an IANA name such as Europe/Paris.
	// Empty means UTC.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][-+A-Za-z0-9_]*(/[-+A-Za-z0-9_]+)*$')",message="timeZone must be an IANA time zone name such as UTC or Europe/Paris"
	// +optional
	TimeZone *string `json:"timeZone,omitempty"`

	// whenFragmentedAbove defragments a member once the share of its
	// database that is free pages (dbSize - dbSizeInUse, of dbSize) passes
	// this percentage, such as "45%", and at least minReclaimable bytes
	// would come back.
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]?%$`
	// +optional
	WhenFragmentedAbove string `json:"whenFragmentedAbove,omitempty"`

	// minReclaimable is the least a threshold defragmentation must give
	// back (default 16Mi), so small databases are not rewritten for
	// nothing.
	// +kubebuilder:validation:XValidation:rule="quantity(self).compareTo(quantity('0')) >= 0",message="defrag.minReclaimable must not be negative"
	// +optional
	MinReclaimable *resource.Quantity `json:"minReclaimable,omitempty"`
}

// AutoCompaction is etcd's --auto-compaction-mode and -retention.
// +kubebuilder:validation:XValidation:rule="self.mode == 'periodic' ? self.retention.matches('^([0-9]+(ns|us|ms|s|m|h))+$') : self.retention.matches('^[0-9]+$')",message="autoCompaction.retention must be a duration such as 5m (periodic) or a number of revisions such as 1000 (revision)"
type AutoCompaction struct {
	// mode: periodic keeps the history of the last retention period;
	// revision keeps the last retention revisions.
	// +kubebuilder:validation:Enum=periodic;revision
	Mode string `json:"mode"`
	// retention: a duration (periodic) or a revision count (revision).
	// +kubebuilder:validation:MaxLength=32
	Retention string `json:"retention"`
}

// EtcdTLS says where the certificates for peer and client mTLS come from.
// +kubebuilder:validation:XValidation:rule="(has(self.auto) ? self.auto : true) == (has(oldSelf.auto) ? oldSelf.auto : true)",message="tls.auto is immutable: switching certificate source would cut members off from each other"
// +kubebuilder:validation:XValidation:rule="!has(self.auto) || self.auto || (has(self.peerSecretRef) && has(self.serverSecretRef) && has(self.clientSecretRef))",message="tls: with auto false, peerSecretRef, serverSecretRef and clientSecretRef are all required"
// +kubebuilder:validation:XValidation:rule="(has(self.auto) && !self.auto) || !(has(self.peerSecretRef) || has(self.serverSecretRef) || has(self.clientSecretRef))",message="tls: secret references are only read when auto is false"
// +kubebuilder:validation:XValidation:rule="!has(self.certificateValidity) || !has(self.certificateRenewBefore) || duration(self.certificateRenewBefore) < duration(self.certificateValidity)",message="certificateRenewBefore must be shorter than certificateValidity"
type EtcdTLS struct {
	// auto makes the operator create a CA (in a Secret) and issue peer,
	// server and client certificates from it.
	// +kubebuilder:default=true
	// +optional
	Auto *bool `json:"auto,omitempty"`

	// peerSecretRef names a kubernetes.io/tls Secret (tls.crt, tls.key,
	// ca.crt) for member-to-member traffic, when auto is false.
	// +optional
	PeerSecretRef *LocalObjectReference `json:"peerSecretRef,omitempty"`

	// serverSecretRef names a kubernetes.io/tls Secret (tls.crt, tls.key,
	// ca.crt) members serve clients with, when auto is false.
	// +optional
	ServerSecretRef *LocalObjectReference `json:"serverSecretRef,omitempty"`

	// clientSecretRef names a kubernetes.io/tls Secret (tls.crt, tls.key,
	// ca.crt) the operator uses as an etcd client, when auto is false.
	// +optional
	ClientSecretRef *LocalObjectReference `json:"clientSecretRef,omitempty"`

	// certificateValidity is how long the member and client certificates
	// the operator issues are valid.
	// +kubebuilder:default="8760h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('10m')",message="certificateValidity must be a duration of at least 10m, such as 8760h"
	// +optional
	CertificateValidity *metav1.Duration `json:"certificateValidity,omitempty"`

	// certificateRenewBefore is how long before a certificate expires it is
	// reissued: members are restarted onto theirs one at a time, only while
	// every member is healthy, the leader last; the client certificate is
	// replaced in place.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1m')",message="certificateRenewBefore must be a duration of at least 1m, such as 720h"
	// +optional
	CertificateRenewBefore *metav1.Duration `json:"certificateRenewBefore,omitempty"`
}

// EtcdBootstrap builds a new cluster from existing data.
type EtcdBootstrap struct {
	// restore builds the cluster from a snapshot taken by an EtcdBackup.
	// +required
	Restore *EtcdRestore `json:"restore"`
}

// EtcdRestore names the snapshot a cluster is built from.
type EtcdRestore struct {
	// backupRef names the EtcdBackup, in this namespace, whose snapshots are
	// used.
	// +required
	BackupRef LocalObjectReference `json:"backupRef"`

	// snapshot names one snapshot of that backup. Empty means the newest
	// snapshot that verifies.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Snapshot string `json:"snapshot,omitempty"`
}

// MemberRole is a member's place in the raft group.
// +kubebuilder:validation:Enum=leader;follower;learner
type MemberRole string

const (
	// RoleLeader is the raft leader.
	RoleLeader MemberRole = "leader"
	// RoleFollower is a voting member that is not the leader.
	RoleFollower MemberRole = "follower"
	// RoleLearner is a non-voting member catching up before promotion.
	RoleLearner MemberRole = "learner"
)

// MemberStatus is one etcd member as observed.
type MemberStatus struct {
	// name of the member (and of its pod).
	Name string `json:"name"`
	// id is the etcd member ID in hex.
	// +optional
	ID string `json:"id,omitempty"`
	// zone the member runs in.
	// +optional
	Zone string `json:"zone,omitempty"`
	// peerURL other members reach it on.
	// +optional
	PeerURL string `json:"peerURL,omitempty"`
	// clientURL clients reach it on.
	// +optional
	ClientURL string `json:"clientURL,omitempty"`
	// role: leader, follower or learner.
	// +optional
	Role MemberRole `json:"role,omitempty"`
	// healthy is true when the member answered the operator and knows a
	// leader. Alarms do not make a member unhealthy: they are in
	// status.alarms.
	Healthy bool `json:"healthy"`
	// version of etcd the member runs.
	// +optional
	Version string `json:"version,omitempty"`
	// dbSizeBytes is the size of the member's backend database.
	// +optional
	DBSizeBytes int64 `json:"dbSizeBytes,omitempty"`
	// dbSizeInUseBytes is the part of it holding data; the rest is free
	// pages a defragmentation gives back.
	// +optional
	DBSizeInUseBytes int64 `json:"dbSizeInUseBytes,omitempty"`
	// since is when the member last changed health or role.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// Condition types of an EtcdCluster, besides Available, Progressing and
// Degraded.
const (
	// ConditionQuorumAtRisk is true when one more failure, or the action the
	// operator would take next, would lose quorum; the message names the
	// members and the reason.
	ConditionQuorumAtRisk = "QuorumAtRisk"
	// ConditionQuorumLost is true when a majority of voters has failed at
	// the network level, with no reachable member knowing a leader, for
	// failurePolicy.unhealthyAfter, while the operator's credentials work;
	// Unknown while that evidence is younger; the message lists what was
	// lost.
	ConditionQuorumLost = "QuorumLost"
	// ConditionAlarmActive is true while etcd reports an alarm (NOSPACE,
	// CORRUPT); the alarm never makes a member unhealthy.
	ConditionAlarmActive = "AlarmActive"
	// ConditionCertificatesExpiring is true while a certificate the
	// operator issued is inside its renewal window and not yet renewed
	// (renewal waits for healthy members, or cannot outlive its CA); the
	// message names them and why.
	ConditionCertificatesExpiring = "CertificatesExpiring"
	// ConditionEtcdUnreachable is true when the operator itself cannot talk
	// to the members: its client certificate is invalid or refused, or its
	// network does not reach members that their kubelets report serving.
	// Nothing is removed or rebuilt while it is true.
	ConditionEtcdUnreachable = "EtcdUnreachable"
)

// CompactionStatus is a compaction of the key history.
type CompactionStatus struct {
	// revision compacted to.
	Revision int64 `json:"revision"`
	// time it was made.
	Time metav1.Time `json:"time"`
	// defragmented are the members defragmented since: a member's freed
	// pages only show in its own figures after its next write, which a
	// NOSPACE alarm refuses, so every member is defragmented once.
	// +optional
	// +listType=set
	Defragmented []string `json:"defragmented,omitempty"`
}

// DefragStatus is a defragmentation of a member's database.
type DefragStatus struct {
	// member defragmented.
	Member string `json:"member"`
	// time it was made.
	Time metav1.Time `json:"time"`
	// reclaimedBytes the database file shrank by.
	ReclaimedBytes int64 `json:"reclaimedBytes"`
}

// CARotationPhase is a step of a CA rotation.
type CARotationPhase string

// The phases of a CA rotation, in order. Each ends when every member runs
// certificates of the phase, and every ControlPlane on the cluster runs
// its replicas on them.
const (
	// CARotationTrustBoth: a new CA is made; every trust bundle holds the
	// old and the new; leaves are still the old CA's.
	CARotationTrustBoth CARotationPhase = "TrustBoth"
	// CARotationReissueLeaves: every leaf (members, clients) is reissued
	// from the new CA; bundles still hold both.
	CARotationReissueLeaves CARotationPhase = "ReissueLeaves"
	// CARotationDropOldCA: the old CA leaves every bundle.
	CARotationDropOldCA CARotationPhase = "DropOldCA"
	// CARotationCompleted: every holder trusts the new CA only.
	CARotationCompleted CARotationPhase = "Completed"
)

// CARotationStatus is a rotation of the cluster's CA.
type CARotationStatus struct {
	// phase the rotation is in.
	Phase CARotationPhase `json:"phase"`
	// trigger is the value of the quorum.dev/rotate-ca annotation the
	// rotation answered ("" for one started inside the CA's renewal
	// window).
	// +optional
	Trigger string `json:"trigger,omitempty"`
	// startedAt is when the new CA was made.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// completedAt is when the old CA left the last bundle.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// message says what the phase waits for.
	// +optional
	Message string `json:"message,omitempty"`
}

// ScheduledDefragStatus is a scheduled defragmentation of every member.
type ScheduledDefragStatus struct {
	// lastScheduleTime is the due time of the run under way or last made.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// defragmented are the members done in that run, in order.
	// +optional
	// +listType=atomic
	Defragmented []string `json:"defragmented,omitempty"`
	// completionTime is when every member was done; absent while the run
	// is under way.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// nextScheduleTime is when the next run is due.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
}

// RequestedDefragStatus is the defragmentation of every member the
// annotation quorum.dev/defrag asked for.
type RequestedDefragStatus struct {
	// trigger is the annotation's value this run answers; a new value
	// starts a new run.
	Trigger string `json:"trigger"`
	// defragmented are the members done in this run, in order.
	// +optional
	// +listType=atomic
	Defragmented []string `json:"defragmented,omitempty"`
	// completionTime is when every member was done; absent while the run
	// is under way.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// AlarmStatus is an alarm etcd reports.
type AlarmStatus struct {
	// member that raised the alarm.
	Member string `json:"member"`
	// alarm: NOSPACE or CORRUPT.
	Alarm string `json:"alarm"`
}

// RecoveryStatus says how the cluster came back from its last loss of
// quorum by ForceNewCluster, and what that cost.
type RecoveryStatus struct {
	// member the cluster was restarted from.
	Member string `json:"member"`
	// raftIndex of that member when it was chosen: the most history any
	// reachable member had.
	// +optional
	RaftIndex uint64 `json:"raftIndex,omitempty"`
	// revision of that member's key-value store when it was chosen: the
	// cluster goes on from it. An acknowledged write with a higher revision
	// was committed by the lost majority only and is gone (etcd also drops
	// the entries the member held but did not yet know committed).
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// quorumLostAt is when the majority stopped answering.
	// +optional
	QuorumLostAt *metav1.Time `json:"quorumLostAt,omitempty"`
	// memberLastHealthyAt is when the chosen member last knew a leader, as
	// the operator saw it (it looks at a healthy cluster every 10 s, so to
	// within that): writes the lost majority committed after it are lost.
	// revision is the exact bound.
	// +optional
	MemberLastHealthyAt *metav1.Time `json:"memberLastHealthyAt,omitempty"`
	// dataLossWindow is the time between the two: at most this much of the
	// writes acknowledged before the loss may be gone.
	// +optional
	DataLossWindow string `json:"dataLossWindow,omitempty"`
}

// EtcdClusterStatus is the etcd cluster as observed.
type EtcdClusterStatus struct {
	// observedGeneration is the generation of the spec this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// replicas is the number of voting members.
	// +optional
	Replicas int32 `json:"replicas"`
	// readyReplicas is the number of healthy voting members.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// leader is the name of the member that leads.
	// +optional
	Leader string `json:"leader,omitempty"`
	// clusterID is the etcd cluster ID in hex; it never changes for the life
	// of the cluster, recoveries included.
	// +optional
	ClusterID string `json:"clusterID,omitempty"`
	// members as observed, voters and learners.
	// +optional
	// +listType=map
	// +listMapKey=name
	Members []MemberStatus `json:"members,omitempty"`
	// certificates the operator issued for this cluster, with when each
	// expires: the CA, the client certificate, and each member's (the
	// earlier of its peer and server certificates).
	// +optional
	// +listType=map
	// +listMapKey=name
	Certificates []CertificateStatus `json:"certificates,omitempty"`
	// caRotation is the CA rotation under way, or the last one made.
	// +optional
	CARotation *CARotationStatus `json:"caRotation,omitempty"`
	// lastCompaction is the last compaction the operator made (NOSPACE
	// recovery): the revision history was discarded before, and when.
	// +optional
	LastCompaction *CompactionStatus `json:"lastCompaction,omitempty"`
	// scheduledDefrag is the progress of spec.maintenance.defrag.schedule:
	// the run under way or last finished, and when the next is due.
	// +optional
	ScheduledDefrag *ScheduledDefragStatus `json:"scheduledDefrag,omitempty"`
	// requestedDefrag is the progress of the defragmentation the annotation
	// quorum.dev/defrag asked for (kubectl quorum defrag).
	// +optional
	RequestedDefrag *RequestedDefragStatus `json:"requestedDefrag,omitempty"`

	// lastDefrag is the last defragmentation the operator made: when, and
	// how many bytes it gave back.
	// +optional
	LastDefrag *DefragStatus `json:"lastDefrag,omitempty"`
	// alarms etcd reports, by member.
	// +optional
	// +listType=atomic
	Alarms []AlarmStatus `json:"alarms,omitempty"`
	// conditions: Available, Progressing, Degraded, QuorumAtRisk, QuorumLost,
	// AlarmActive, EtcdUnreachable.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// selector of the member pods, for the /scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// version is the oldest etcd version any member runs.
	// +optional
	Version string `json:"version,omitempty"`
	// pendingChange is the membership change the operator has started and
	// not finished. It is recorded before the operator acts, so a restarted
	// operator finishes or undoes it instead of guessing.
	// +optional
	PendingChange *MembershipChange `json:"pendingChange,omitempty"`
	// restore says which snapshot the cluster was built from, when it was.
	// +optional
	Restore *RestoreStatus `json:"restore,omitempty"`
	// recovery says which member the cluster was restarted from after its
	// last loss of quorum (ForceNewCluster), and the data-loss window.
	// +optional
	Recovery *RecoveryStatus `json:"recovery,omitempty"`
	// failedUpgrade is an upgrade that was rolled back because a member
	// restarted at its version did not become healthy within
	// failurePolicy.startTimeout. It is not tried again until the spec
	// changes.
	// +optional
	FailedUpgrade *FailedUpgrade `json:"failedUpgrade,omitempty"`
}

// FailedUpgrade is an upgrade that was rolled back.
type FailedUpgrade struct {
	// version that did not run.
	Version string `json:"version"`
	// member that was restarted at it and rolled back.
	Member string `json:"member"`
	// generation of the spec that asked for it; a newer spec tries again.
	Generation int64 `json:"generation"`
	// message says what happened.
	// +optional
	Message string `json:"message,omitempty"`
}

// ChangeType is the kind of a membership change.
// +kubebuilder:validation:Enum=AddMember;RemoveMember;RestartMember;ForceNewCluster;RestoreFromBackup
type ChangeType string

const (
	// ChangeAddMember adds a learner, starts its pod and promotes it.
	ChangeAddMember ChangeType = "AddMember"
	// ChangeRemoveMember removes a member, then deletes its pod and volume.
	ChangeRemoveMember ChangeType = "RemoveMember"
	// ChangeRestartMember replaces a member's pod, keeping its data and ID
	// (upgrades).
	ChangeRestartMember ChangeType = "RestartMember"
	// ChangeForceNewCluster restarts the most up-to-date survivor as a new
	// one-member cluster with the same data and cluster ID.
	ChangeForceNewCluster ChangeType = "ForceNewCluster"
	// ChangeRestoreFromBackup deletes every member after quorum loss, so the
	// cluster is bootstrapped again from the newest snapshot.
	ChangeRestoreFromBackup ChangeType = "RestoreFromBackup"
)

// RestoreStatus says which snapshot a cluster was (or is being) built from.
type RestoreStatus struct {
	// backup is the EtcdBackup the snapshot belongs to.
	Backup string `json:"backup"`
	// snapshot is the snapshot's name.
	Snapshot string `json:"snapshot"`
	// location of the snapshot.
	// +optional
	Location string `json:"location,omitempty"`
	// revision of the keyspace in the snapshot; the restored cluster starts
	// one billion revisions later, so clients' watches and caches see the
	// restore as newer than anything they knew.
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// sha256 of the snapshot file.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// takenAt is when the snapshot was taken.
	// +optional
	TakenAt *metav1.Time `json:"takenAt,omitempty"`
	// verified is true once the snapshot was fetched from its destination
	// and verified, before any member was created from it.
	Verified bool `json:"verified"`
	// quorumLostAt is, for a RestoreFromBackup recovery, when quorum was lost.
	// +optional
	QuorumLostAt *metav1.Time `json:"quorumLostAt,omitempty"`
	// dataLossWindow is, for a RestoreFromBackup recovery, the time between
	// the snapshot and the loss of quorum: writes made in it are lost.
	// +optional
	DataLossWindow string `json:"dataLossWindow,omitempty"`
}

// MembershipChange is one change to the membership, recorded before it is
// carried out.
type MembershipChange struct {
	// type of the change.
	Type ChangeType `json:"type"`
	// member is the name of the member added, removed or restarted.
	Member string `json:"member"`
	// id is the member's etcd ID in hex, once etcd has assigned it.
	// +optional
	ID string `json:"id,omitempty"`
	// zone the member is (or goes) in.
	// +optional
	Zone string `json:"zone,omitempty"`
	// reason: Bootstrap, ScaleUp, ScaleDown, Replace, Rebalance, Upgrade,
	// QuorumLoss.
	// +optional
	Reason string `json:"reason,omitempty"`
	// replaceZone is, for a removal that replaces a failed member, the zone
	// the replacement should go to.
	// +optional
	ReplaceZone string `json:"replaceZone,omitempty"`
	// version is, for a restart, the version the member is restarted at;
	// fromVersion the version it ran before, which it is rolled back to
	// when it does not become healthy within failurePolicy.startTimeout.
	// +optional
	Version string `json:"version,omitempty"`
	// +optional
	FromVersion string `json:"fromVersion,omitempty"`
	// startedAt is when the change was recorded.
	StartedAt metav1.Time `json:"startedAt"`
}

// EtcdCluster is an etcd cluster of an odd number of members spread over
// zones, grown and repaired one member at a time without losing quorum.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=ec;etcdc,categories=quorum
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Leader",type=string,JSONPath=`.status.leader`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EtcdCluster struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the cluster asked for.
	// +required
	Spec EtcdClusterSpec `json:"spec"`
	// status is the cluster as observed.
	// Until the operator first writes it, status reads observedGeneration -1,
	// so kstatus (Flux, `kubectl wait`) and Argo CD read a just-applied
	// object as in progress, never as current.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status EtcdClusterStatus `json:"status,omitempty"`
}

// EtcdClusterList is a list of EtcdClusters.
// +kubebuilder:object:root=true
type EtcdClusterList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EtcdCluster `json:"items"`
}

// DesiredReplicas is spec.replicas, or its default.
func (s *EtcdClusterSpec) DesiredReplicas() int { return replicasOrDefault(s.Replicas) }
