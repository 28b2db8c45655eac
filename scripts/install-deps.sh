#!/usr/bin/env bash
# Installs what rookery needs on Debian/Ubuntu, and only what is missing. Needs root for apt-get.
set -euo pipefail

# Ceph daemons and tools (monmaptool is in ceph-base; the `ceph` and `rbd` CLIs, used only as benchmark
# baselines, in ceph-common), librados and librbd, the volume path (rbd-fuse, FUSE, filesystems),
# CephFS and object storage (ceph-mds, radosgw, ceph-fuse), and what the benchmarks and S3 tests use
# (fio, boto3), protoc with the well-known types for the CSI driver's gRPC code, and promtool (only in
# Debian's `prometheus` package) for the tests that check /metrics; for the Kubernetes tests, containerd,
# runc and the CNI plugins the kubelet runs pods with, mmdebstrap and catatonit for the images, openssl
# for the test cluster's certificates; Debian's chromium for the dashboard's browser test. (containerd is
# only installed: its own service is never started.)
packages=(ceph-mon ceph-mgr ceph-osd ceph-mds radosgw ceph-base ceph-common librados2 librbd1 rbd-fuse ceph-fuse
          e2fsprogs xfsprogs util-linux fio procps python3-boto3
          protobuf-compiler libprotobuf-dev prometheus
          containerd runc containernetworking-plugins mmdebstrap catatonit openssl iproute2 curl chromium)
# Node.js drives the browser test (playwright-core); the machine's own is used when there is one.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing packages needs root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Only promtool is wanted from `prometheus`: its server must not start (it would listen on all
  # addresses), so service starts are refused while installing, unless a policy already rules them.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  # Ceph's postinst scripts try to talk to systemd; on hosts without it they print harmless errors.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Nor containerd's: the Kubernetes tests start containerd of their own, with its own root and socket.
  for service in prometheus containerd; do
    if [[ " ${missing[*]} " == *" $service "* ]] && [ -d /run/systemd/system ] \
        && systemctl is-enabled "$service" >/dev/null 2>&1; then
      systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
  done
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /root/.cargo/bin; do [ -x "$d/cargo" ] && export PATH="$d:$PATH"; done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: a Rust toolchain (cargo) is needed; install it with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi

# The Kubernetes test parts (scripts/k8s/build.sh) are built with Go from their own modules.
if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin "$HOME/go/bin"; do [ -x "$d/go" ] && export PATH="$d:$PATH"; done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go 1.26 or newer is needed to build the Kubernetes test parts; install it (https://go.dev/doc/install) and re-run" >&2
  exit 1
fi

# playwright-core for the dashboard's browser test, at the version package-lock.json pins.
browser="$(dirname "$0")/../crates/cli/tests/browser"
if [ ! -d "$browser/node_modules/playwright-core" ] \
    || [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
  echo "installing playwright-core (npm ci in crates/cli/tests/browser)"
  (cd "$browser" && npm ci --no-audit --no-fund --silent)
fi
