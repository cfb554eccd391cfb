#!/usr/bin/env bash
# `make run` after `make cluster-up`: applies the samples to the local cluster
# in the quorum-demo namespace, with an S3 server (versitygw) for the backup
# sample, waits, and shows what Quorum made of them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export KUBECONFIG=$root/.local/kubeconfig
kubectl=$root/.local/bin/kubectl
ns=quorum-demo

$kubectl create namespace $ns --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
$kubectl apply -n $ns -f "$root/hack/local-cluster/demo-s3.yaml"
$kubectl apply -n $ns -k "$root/config/samples"
$kubectl -n $ns rollout status deployment/s3 --timeout=120s

echo
echo "Waiting up to 3 minutes for Quorum to bring up the EtcdCluster..."
for i in $(seq 1 36); do
	observed=$($kubectl -n $ns get etcdcluster main -o jsonpath='{.status.observedGeneration}' 2>/dev/null || true)
	ready=$($kubectl -n $ns get etcdcluster main -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
	[ "${ready:-0}" = 3 ] && break
	if [ -z "$observed" ] && [ "$i" -ge 6 ]; then
		echo "nothing has acted on the EtcdCluster after 30 s"
		break
	fi
	sleep 5
done

echo
$kubectl -n $ns get etcdclusters,controlplanes,etcdbackups
echo
$kubectl -n $ns get pods -o wide
cat <<EOT

Quorum runs the EtcdCluster "main": three members, one per zone; the
EtcdBackup "main-every-6h" snapshots it to the in-cluster S3 server every six
hours. The ControlPlane controller is not built yet: that object is stored
and validated by the API server, and its status stays empty.

Look further:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get nodes -L topology.kubernetes.io/zone
  $kubectl -n quorum-system logs deploy/quorum-manager
  $kubectl -n $ns describe etcdcluster main
  $kubectl -n $ns scale etcdcluster main --replicas=5
  bin/local-cluster stop-node node-b      # a zone outage; start-node node-b brings it back
Tear down:
  make cluster-down
EOT
