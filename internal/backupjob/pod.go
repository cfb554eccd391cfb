package backupjob

import (
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	quorumv1alpha1 "quorum.dev/quorum/api/v1alpha1"
	"quorum.dev/quorum/internal/resources"
)

// PodDeadline bounds one run of a backup pod; a pod past it is stopped and
// the run counts as failed.
const PodDeadline = time.Hour

// PodSpec is what a backup pod is made of.
type PodSpec struct {
	Image, Namespace, Name string
	Labels                 map[string]string
	// EtcdClientSecret is the Secret of the etcd client certificate, if
	// the pod talks to etcd.
	EtcdClientSecret string
	Destination      quorumv1alpha1.BackupDestination
	Args             []string
	// Resources are the EtcdBackup's; defaults fill what it does not say.
	Resources *corev1.ResourceRequirements
	// Spool bounds the spool directory: the largest snapshot expected.
	Spool resource.Quantity
}

// SpoolLimit is the spool a snapshot of c needs: its quota (or its largest
// member database, if larger) and a quarter more.
func SpoolLimit(c *quorumv1alpha1.EtcdCluster) resource.Quantity {
	size := int64(2 << 30) // etcd's default quota
	if q := c.Spec.Maintenance.QuotaBackendBytes; q != nil {
		size = q.Value()
	}
	for _, m := range c.Status.Members {
		size = max(size, m.DBSizeBytes)
	}
	return *resource.NewQuantity(size+size/4, resource.BinarySI)
}

// Pod builds a pod running `manager backup-job ...` against a destination:
// the volume mounted at /backup, or S3 credentials from their Secret; a
// spool emptyDir of bounded size; the etcd client Secret when given.
// Backup, restore-verify and restore-fetch pods are all built here.
func Pod(p PodSpec) *corev1.Pod {
	image, namespace, name, labels, etcdClientSecret, d, args := p.Image, p.Namespace, p.Name, p.Labels, p.EtcdClientSecret, p.Destination, p.Args
	spool := &corev1.EmptyDirVolumeSource{}
	if !p.Spool.IsZero() {
		spool.SizeLimit = &p.Spool
	}
	res := corev1.ResourceRequirements{Requests: resources.BackupRequests.DeepCopy(), Limits: corev1.ResourceList{corev1.ResourceMemory: resources.BackupMemoryLimit}}
	if p.Resources != nil {
		res = resources.WithDefaultRequests(*p.Resources, resources.BackupRequests)
	}
	volumes := []corev1.Volume{{Name: "spool", VolumeSource: corev1.VolumeSource{EmptyDir: spool}}}
	mounts := []corev1.VolumeMount{{Name: "spool", MountPath: "/tmp"}}
	var env []corev1.EnvVar
	if etcdClientSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "etcd-client", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: etcdClientSecret, DefaultMode: ptr.To[int32](0o440)}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "etcd-client", MountPath: "/etc/quorum/etcd-client", ReadOnly: true})
	}
	if v := d.Volume; v != nil {
		volumes = append(volumes, corev1.Volume{Name: "backup", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.ClaimName}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "backup", MountPath: "/backup"})
		args = append(args, "--volume-dir="+path.Join("/backup", v.Path), "--location=pvc://"+path.Join(v.ClaimName, v.Path))
	} else if s := d.S3; s != nil {
		args = append(args, "--s3-endpoint="+s.Endpoint, "--s3-bucket="+s.Bucket, "--s3-prefix="+s.Prefix,
			"--s3-region="+s.Region, fmt.Sprintf("--s3-insecure=%v", s.Insecure), "--spool-dir=/tmp")
		env = append(env,
			corev1.EnvVar{Name: "S3_ACCESS_KEY_ID", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: s.CredentialsSecretRef.Name}, Key: "accessKeyID"}}},
			corev1.EnvVar{Name: "S3_SECRET_ACCESS_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: s.CredentialsSecretRef.Name}, Key: "secretAccessKey"}}})
		if s.CASecretRef != nil {
			volumes = append(volumes, corev1.Volume{Name: "s3-ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s.CASecretRef.Name}}})
			mounts = append(mounts, corev1.VolumeMount{Name: "s3-ca", MountPath: "/etc/quorum/s3-ca", ReadOnly: true})
			args = append(args, "--s3-ca-file=/etc/quorum/s3-ca/ca.crt")
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(int64(PodDeadline.Seconds())),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "backup", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"/manager"}, Args: args, Env: env, VolumeMounts: mounts,
				Resources: res,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: volumes,
		},
	}
}
