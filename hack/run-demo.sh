#!/usr/bin/env bash
# `make run` after `local-cluster up --demo`: applies the samples to the
# local cluster in the quorum-demo namespace, with an S3 server (versitygw)
# for the backup sample, then shows Quorum at work: the EtcdCluster and the
# hosted control plane on it come up, a backup is taken now, and a member
# whose pod and volume are deleted is replaced by a new one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export KUBECONFIG=$root/.local/kubeconfig
kubectl=$root/.local/bin/kubectl
ns=quorum-demo
k() { $kubectl -n $ns "$@"; }
step() { printf '\n== %s\n' "$*"; }
since() { echo "$(($(date +%s) - $1))s"; }

step "Applying the samples (EtcdCluster main, ControlPlane tenant-a, EtcdBackup main-every-6h) and an S3 server"
$kubectl create namespace $ns --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
k apply -f "$root/hack/local-cluster/demo-s3.yaml"
k apply -k "$root/config/samples"
k rollout status deployment/s3 --timeout=120s

step "Waiting for the EtcdCluster: three members, one per zone, joined as learners and promoted"
t=$(date +%s)
k wait etcdcluster/main --for=condition=Ready --timeout=5m
echo "Ready in $(since "$t")"
k get etcdcluster main
k get pods -l quorum.dev/etcd-cluster=main -o wide

step "Waiting for the ControlPlane tenant-a: three apiserver, controller-manager and scheduler replicas on main"
t=$(date +%s)
k wait controlplane/tenant-a --for=condition=Ready --timeout=8m
echo "Ready in $(since "$t")"
k get controlplane tenant-a

step "Taking a backup now: a one-shot EtcdBackup to the S3 server, verified"
cat <<EOF | k apply -f -
apiVersion: quorum.dev/v1alpha1
kind: EtcdBackup
metadata:
  name: now
spec:
  etcdClusterRef: {name: main}
  destination:
    s3:
      endpoint: s3.quorum-demo.svc.cluster.local:7070
      bucket: etcd-backups
      prefix: main/
      insecure: true
      credentialsSecretRef: {name: s3-credentials}
EOF
t=$(date +%s)
k wait etcdbackup/now --for=condition=Ready --timeout=5m
echo "verified in $(since "$t"):" \
	"$(k get etcdbackup now -o jsonpath='{.status.snapshots[0].location}, revision {.status.snapshots[0].revision}, {.status.snapshots[0].sizeBytes} bytes')"

step "Losing a member: its pod and its volume deleted"
victim=$(k get etcdcluster main -o jsonpath='{.status.members[0].name}')
victimID=$(k get etcdcluster main -o jsonpath='{.status.members[0].id}')
echo "deleting pod $victim (member $victimID) and its PVC"
t=$(date +%s)
k delete pvc "$victim-data" --wait=false
k delete pod "$victim"
echo "Quorum sees the member's volume is gone: it removes the member (quorum allows it), adds a learner in the same zone and promotes it once in sync"
for _ in $(seq 1 60); do
	ids=$(k get etcdcluster main -o jsonpath='{.status.members[*].id}')
	ready=$(k get etcdcluster main -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
	[[ " $ids " != *" $victimID "* && $ready == True ]] && break
	sleep 5
done
k wait etcdcluster/main --for=condition=Ready --timeout=5m
echo "replaced in $(since "$t")"
k get etcdcluster main -o jsonpath='{range .status.members[*]}{.name}{"\t"}{.id}{"\t"}{.zone}{"\t"}{.role}{"\n"}{end}'
k get events --field-selector involvedObject.kind=EtcdCluster,involvedObject.name=main --sort-by=.lastTimestamp | tail -8

cat <<EOT

What runs now, in namespace $ns:
  EtcdCluster main        three etcd members over zone-a/b/c with mTLS; the
                          member lost above was replaced in its zone
  ControlPlane tenant-a   a hosted Kubernetes control plane on main: three
                          replicas of kube-apiserver, controller-manager and
                          scheduler behind the Service tenant-a (admin
                          kubeconfig in the Secret tenant-a-admin-kubeconfig)
  EtcdBackup now          the snapshot taken above, verified, in the S3 server
  EtcdBackup main-every-6h  a snapshot every six hours, the last 10 kept

Look further:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get nodes -L topology.kubernetes.io/zone
  $kubectl -n $ns get etcdclusters,controlplanes,etcdbackups,pods -o wide
  $kubectl -n $ns describe etcdcluster main
  $kubectl -n $ns scale etcdcluster main --replicas=5
  bin/local-cluster stop-node node-b      # a zone outage; start-node node-b brings it back
Tear down:
  make cluster-down
EOT
