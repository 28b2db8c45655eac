# The two commands of the README: `make up` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/usr/local/go/bin:$(PATH)
DATA_DIR ?=
# Where `make k8s-up` keeps its Kubernetes (certificates, logs, the kubelet's root): not a user's default.
K8S_DIR ?= /tmp/rookery-k8s

.PHONY: up test deps build lint unit e2e k8s-build image k8s-up k8s-down

deps:
	@scripts/install-deps.sh

build: deps
	cargo build --release

## Build, bring up the default cluster on this host with a filesystem and an object store, and show
## block, file and object storage working.
up: build
	target/release/rookery up $(if $(DATA_DIR),--data-dir $(DATA_DIR))
	target/release/rookery apply $(if $(DATA_DIR),--data-dir $(DATA_DIR)) -f examples/filesystem.yaml
	target/release/rookery apply $(if $(DATA_DIR),--data-dir $(DATA_DIR)) -f examples/object-store.yaml
	target/release/rookery smoke-test $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --count 100
	target/release/rookery bench control-plane $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --count 20

## Everything: formatting, lints, unit tests, end-to-end tests on real Ceph and on a real Kubernetes
## (whose parts are built once and cached, in the background of the Ceph tests; see scripts/test.sh).
test: deps lint
	scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## The Kubernetes parts the tests run (control plane, kubelet, etcd, kubectl, CSI sidecars, csi-sanity),
## built from the Go modules pinned in k8s/ and cached outside the clone.
k8s-build: deps
	scripts/k8s/build.sh

## The images pods run (rookery, the pod sandbox, the CSI sidecars), as OCI archives in target/images.
image: build k8s-build
	scripts/image/build.sh

## A single-node Kubernetes on this host for trying rookery's CSI drivers by hand (README: "On Kubernetes").
k8s-up: image
	KUBELET_ROOT=/var/lib/kubelet HOST_DIRS=/var/lib/rookery-csi scripts/k8s/up.sh $(K8S_DIR)
	@echo "export KUBECONFIG=$(K8S_DIR)/kubeconfig; kubectl: $(CURDIR)/target/k8s/bin/kubectl"

k8s-down:
	scripts/k8s/down.sh $(K8S_DIR)
