package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EtcdBackupSpec is the backup a user asks for: one snapshot now, or
// snapshots on a schedule, of one etcd cluster to one destination.
// +kubebuilder:validation:XValidation:rule="has(self.etcdClusterRef) != has(self.controlPlaneRef)",message="exactly one of etcdClusterRef or controlPlaneRef must be set"
// +kubebuilder:validation:XValidation:rule="has(self.etcdClusterRef) == has(oldSelf.etcdClusterRef) && (!has(self.etcdClusterRef) || self.etcdClusterRef.name == oldSelf.etcdClusterRef.name) && has(self.controlPlaneRef) == has(oldSelf.controlPlaneRef) && (!has(self.controlPlaneRef) || self.controlPlaneRef.name == oldSelf.controlPlaneRef.name)",message="the backed-up cluster is immutable: create another EtcdBackup for another cluster"
// +kubebuilder:validation:XValidation:rule="has(self.schedule) || !has(self.timeZone)",message="timeZone is only used with a schedule"
type EtcdBackupSpec struct {
	// etcdClusterRef names the EtcdCluster, in this namespace, to back up.
	// +optional
	EtcdClusterRef *LocalObjectReference `json:"etcdClusterRef,omitempty"`

	// controlPlaneRef names a ControlPlane with stacked etcd, in this
	// namespace, to back up.
	// +optional
	ControlPlaneRef *LocalObjectReference `json:"controlPlaneRef,omitempty"`

	// schedule in cron format (minute hour day-of-month month day-of-week),
	// such as "0 */6 * * *". Absent: one snapshot is taken now.
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

	// startingDeadline is how late a missed run may still start: after
	// downtime at most one catch-up run is taken, and only within this
	// deadline. Empty means the whole interval until the next run.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="startingDeadline must be a positive duration such as 5m"
	// +optional
	StartingDeadline *metav1.Duration `json:"startingDeadline,omitempty"`

	// suspend stops new scheduled runs; a run already started finishes.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// retention says how many snapshots are kept in the destination.
	// +kubebuilder:default={}
	// +optional
	Retention BackupRetention `json:"retention"`

	// destination is where snapshots are written: exactly one of volume or s3.
	// +required
	Destination BackupDestination `json:"destination"`

	// resources of the backup pods (and of the pods that fetch a snapshot
	// to restore). Requests not given default to 50m CPU and 64Mi memory;
	// the memory limit to 256Mi. The pods' spool (/tmp) is limited to the
	// size a snapshot of the cluster can reach: its quotaBackendBytes (or
	// largest member database) and a quarter more.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// BackupRetention says which snapshots are kept. Old snapshots are deleted
// only after a new one has verified, and the last good one never is.
type BackupRetention struct {
	// keepLast is how many of the newest good snapshots are kept.
	// +kubebuilder:default=10
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="retention.keepLast must be at least 1: the last good snapshot is always kept"
	// +kubebuilder:validation:XValidation:rule="self <= 1000",message="retention.keepLast must be at most 1000"
	// +optional
	KeepLast int32 `json:"keepLast,omitempty"`
}

// BackupDestination is where snapshots go.
// +kubebuilder:validation:XValidation:rule="has(self.volume) != has(self.s3)",message="destination: exactly one of volume or s3 must be set"
type BackupDestination struct {
	// volume writes snapshots to a PersistentVolumeClaim.
	// +optional
	Volume *VolumeDestination `json:"volume,omitempty"`

	// s3 writes snapshots to an S3-compatible object store.
	// +optional
	S3 *S3Destination `json:"s3,omitempty"`
}

// VolumeDestination is a folder on a PersistentVolumeClaim.
type VolumeDestination struct {
	// claimName of the PersistentVolumeClaim, in this namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	ClaimName string `json:"claimName"`

	// path of the folder on the volume, relative, such as main/.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(p, p == '..')",message="volume.path must be relative and stay inside the volume (no leading / and no ..)"
	// +optional
	Path string `json:"path,omitempty"`
}

// S3Destination is a bucket and prefix in an S3-compatible object store.
type S3Destination struct {
	// endpoint of the object store, host[:port] such as s3.eu-west-1.amazonaws.com
	// or minio.backup.svc:9000.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9.-]+(:[0-9]{1,5})?$')",message="s3.endpoint must be host or host:port, without a scheme (set insecure for plain HTTP)"
	// +required
	Endpoint string `json:"endpoint"`

	// bucket snapshots are written to; it must exist.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')",message="s3.bucket must be an S3 bucket name: 3 to 63 lowercase letters, digits, dots and dashes"
	// +required
	Bucket string `json:"bucket"`

	// prefix of every snapshot's object key, such as tenant-a/main/.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// region of the bucket.
	// +kubebuilder:default="us-east-1"
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Region string `json:"region,omitempty"`

	// credentialsSecretRef names a Secret with the keys accessKeyID and
	// secretAccessKey.
	// +required
	CredentialsSecretRef LocalObjectReference `json:"credentialsSecretRef"`

	// caSecretRef names a Secret whose ca.crt verifies the endpoint's TLS
	// certificate. Empty means the system roots.
	// +optional
	CASecretRef *LocalObjectReference `json:"caSecretRef,omitempty"`

	// insecure talks plain HTTP to the endpoint. For test stores only.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
}

// Snapshot is one verified snapshot in the destination.
type Snapshot struct {
	// name of the snapshot (its file or object name).
	Name string `json:"name"`
	// takenAt is when the snapshot stream started.
	TakenAt metav1.Time `json:"takenAt"`
	// revision of the etcd keyspace in the snapshot.
	Revision int64 `json:"revision"`
	// sizeBytes of the snapshot file.
	SizeBytes int64 `json:"sizeBytes"`
	// sha256 of the snapshot file, hex.
	SHA256 string `json:"sha256"`
	// location of the snapshot: s3://bucket/key or pvc://claim/path.
	Location string `json:"location"`
}

// Condition types of an EtcdBackup.
const (
	// ConditionReady is true when the backup is what its spec asks: a
	// one-shot backup's snapshot verified, a scheduled backup's last run
	// (if any) succeeded. With it, Reconciling or Stalled say why not.
	ConditionReady = "Ready"
	// ConditionLastBackupSucceeded says whether the newest run produced a
	// verified snapshot; its reason says why not.
	ConditionLastBackupSucceeded = "LastBackupSucceeded"
)

// EtcdBackupStatus is the backup as observed.
type EtcdBackupStatus struct {
	// observedGeneration is the generation of the spec this status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// lastScheduleTime is when the newest run was started.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// lastSuccessfulTime is when the newest verified snapshot was taken.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`
	// nextScheduleTime is when the next run is due.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// snapshots in the destination, newest first, capped at 20.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	Snapshots []Snapshot `json:"snapshots,omitempty"`
	// snapshotCount is how many snapshots the destination holds.
	// +optional
	SnapshotCount int32 `json:"snapshotCount"`
	// conditions: Ready, LastBackupSucceeded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// EtcdBackup takes verified etcd snapshots, once or on a schedule, to a
// volume or S3, and keeps the newest of them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=eb;etcdbk,categories=quorum
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.etcdClusterRef.name`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Last Success",type=date,JSONPath=`.status.lastSuccessfulTime`
// +kubebuilder:printcolumn:name="Snapshots",type=integer,JSONPath=`.status.snapshotCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EtcdBackup struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the backup asked for.
	// +required
	Spec EtcdBackupSpec `json:"spec"`
	// status is the backup as observed.
	// Until the operator first writes it, status reads observedGeneration -1,
	// so kstatus (Flux, `kubectl wait`) and Argo CD read a just-applied
	// object as in progress, never as current.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status EtcdBackupStatus `json:"status,omitempty"`
}

// EtcdBackupList is a list of EtcdBackups.
// +kubebuilder:object:root=true
type EtcdBackupList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EtcdBackup `json:"items"`
}
