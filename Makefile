# Quorum's make targets are its interface: test, run, manifests, generate,
# lint, e2e, bench. Tools are pinned and installed with `go install` into the
# git-ignored bin/.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= quorum.dev/quorum-manager:dev
LOCALBIN ?= $(CURDIR)/bin
K8S_BIN ?= $(LOCALBIN)/k8s

CONTROLLER_GEN_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# Test package selections: unit and envtest run on the real API server from
# hack/build-binaries.sh; e2e needs the local cluster.
UNIT_PKGS = $(shell go list ./... | grep -v /test/e2e)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and RBAC from the markers in api/ and controllers/, Argo CD's health check ConfigMap and the PrometheusRule.
	$(CONTROLLER_GEN) rbac:roleName=manager crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	go run ./hack/gen-integrations

.PHONY: generate
generate: controller-gen ## Generate the deepcopy code of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint vet ## golangci-lint and go vet.
	$(GOLANGCI_LINT) run ./...

.PHONY: test-binaries
test-binaries: ## Build kube-apiserver, etcd and kubectl for envtest, versitygw, promtool and helm (cached).
	hack/build-binaries.sh kube-apiserver etcd kubectl versitygw promtool helm

.PHONY: unit
unit: manifests generate test-binaries ## Unit and envtest suites against a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS=$(K8S_BIN) go test $(UNIT_PKGS) -count=1

.PHONY: test
test: unit ## The README's test command: unit and envtest suites, then e2e on a local cluster it starts and always stops.
	@status=0; $(MAKE) --no-print-directory cluster-up && $(MAKE) --no-print-directory e2e || status=$$?; \
	$(MAKE) --no-print-directory cluster-down || status=$$((status ? status : 1)); \
	if [ -s $(TEST_RECAP) ]; then echo; cat $(TEST_RECAP); fi; exit $$status

.PHONY: bench
bench: build ## Snapshot and restore of ~1 GiB: Quorum's backup job against etcdctl and etcdutl.
	hack/build-binaries.sh etcd etcdctl etcdutl
	go run ./hack/bench --bin $(K8S_BIN) --manager $(LOCALBIN)/manager

##@ Local cluster

LOCAL_CLUSTER = $(LOCALBIN)/local-cluster
KUBECTL = $(CURDIR)/.local/bin/kubectl
export KUBECONFIG_LOCAL = $(CURDIR)/.local/kubeconfig

.PHONY: local-cluster
local-cluster: | $(LOCALBIN)
	go build -o $(LOCAL_CLUSTER) ./hack/local-cluster

.PHONY: cluster-up
cluster-up: local-cluster kustomize manifests ## Start a three-zone cluster on this machine (root) with Quorum deployed.
	$(LOCAL_CLUSTER) up

.PHONY: cluster-down
cluster-down: local-cluster ## Stop the local cluster and remove everything it made.
	$(LOCAL_CLUSTER) down

.PHONY: cluster-status
cluster-status: local-cluster ## Say what of the local cluster runs.
	$(LOCAL_CLUSTER) status

# The e2e output goes through testrecap, which ends it with each failed
# test's last lines (also kept in $(TEST_RECAP)): CI logs keep only a tail.
TEST_RECAP = $(CURDIR)/.local/e2e-recap.txt

.PHONY: testrecap
testrecap: | $(LOCALBIN)
	go build -o $(LOCALBIN)/testrecap ./hack/testrecap

.PHONY: e2e
e2e: testrecap ## End-to-end suites against the running local cluster.
	go test ./test/e2e/... -count=1 -timeout 45m -json -parallel 8 | $(LOCALBIN)/testrecap -recap $(TEST_RECAP)

.PHONY: chaos
chaos: testrecap local-cluster ## Every chaos scenario under the linearizability-checked workload, against the running local cluster (make cluster-up first; the previous etcd patch release is built and loaded for the upgrade scenario); a summary table at the end.
	hack/build-binaries.sh previous-etcd
	$(LOCAL_CLUSTER) up
	go test ./test/e2e/ -run 'TestChaos' -chaos -count=1 -timeout 60m -json -parallel 8 | $(LOCALBIN)/testrecap -recap $(TEST_RECAP)

CONFORMANCE_FOCUS ?= \[Conformance\]
CONFORMANCE_TIMEOUT ?= 150m
.PHONY: conformance
conformance: local-cluster ## The upstream [Conformance] tests (e2e.test and ginkgo built from k8s.io/kubernetes) against a 3-replica ControlPlane with two tenant nodes joined by kubeadm join: passed, failed, skipped. CONFORMANCE_FOCUS='<regexp>' narrows them; CONFORMANCE_TIMEOUT (150m) bounds each phase.
	hack/build-binaries.sh e2e.test ginkgo agnhost conformance-images
	$(LOCAL_CLUSTER) up
	go test ./test/e2e/ -run '^TestConformance$$' -conformance -conformance.focus '$(CONFORMANCE_FOCUS)' -conformance.timeout $(CONFORMANCE_TIMEOUT) -count=1 -timeout 330m -v

.PHONY: run
run: local-cluster kustomize manifests ## The main demo: cluster up (without the previous Kubernetes version), Quorum deployed, the samples applied, a backup taken, a member replaced.
	$(LOCAL_CLUSTER) up --demo
	hack/run-demo.sh

.PHONY: chart
chart: manifests kustomize ## Write the Helm chart charts/quorum from config/default (hack/gen-chart).
	$(KUSTOMIZE) build config/default | go run ./hack/gen-chart charts/quorum

.PHONY: check-generated
check-generated: manifests generate chart ## Fail when generated files differ from what is committed.
	@if [ -n "$$(git status --porcelain -- api config charts)" ]; then \
		echo "generated files are out of date; run 'make manifests generate chart' and commit:"; \
		git status --porcelain -- api config charts; git diff -- api config charts | head -50; exit 1; fi

##@ Build

.PHONY: build
build: generate ## Build the manager binary.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/manager .

.PHONY: plugin
plugin: | $(LOCALBIN) ## Build the kubectl plugin bin/kubectl-quorum (put it on PATH, call it as `kubectl quorum`).
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/kubectl-quorum ./cmd/kubectl-quorum

.PHONY: docker-build
docker-build: ## Build the manager image with a container engine (none on these machines).
	docker build -t $(IMG) .

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_GEN_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# go-install-tool installs package $2 at version $3 as $1, so a version bump
# in this file installs the new tool beside the old one.
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
echo "installing $(2)@$(3)"; \
tmp=$$(mktemp -d); \
GOBIN=$$tmp go install $(2)@$(3); \
mv "$$tmp"/* $(1); \
rm -rf "$$tmp"; \
}
endef
