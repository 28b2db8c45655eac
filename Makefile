# The two commands of the README: `make up` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
DATA_DIR ?=

.PHONY: up test deps build lint unit e2e

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

## Everything: formatting, lints, unit tests and end-to-end tests on real Ceph.
test: deps lint
	cargo test --workspace --all-targets -- --test-threads 2

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
