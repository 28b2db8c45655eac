#!/usr/bin/env bash
# Builds the Kubernetes parts our tests run and links them into target/k8s/bin: k8s/components/go.mod pins
# the control plane, kubelet, etcd and kubectl, k8s/sidecars/go.mod the CSI sidecars and csi-sanity (one
# module, so the packages they share compile once). Each module's tools build in one `go build`. Builds
# are cached outside the clone, keyed by each module's go.mod + go.sum and the Go version, so a new clone
# on the same machine builds nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
cache=${ROOKERY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rookery/k8s}
bin=$repo/target/k8s/bin
mkdir -p "$cache" "$bin"
command -v go >/dev/null || { echo "error: Go is needed to build the Kubernetes test parts; install it (https://go.dev/doc/install) and re-run" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

for mod in k8s/*/go.mod; do
  dir=$(dirname "$mod"); name=$(basename "$dir")
  key=$( (cat "$dir/go.mod" "$dir/go.sum"; go version) | sha256sum | cut -c1-16)
  out=$cache/$name-$key
  if [ ! -e "$out/.complete" ]; then
    echo "building the Kubernetes test parts of k8s/$name (cached in $out; a cold build takes many minutes)"
    rm -rf "$out.tmp"; mkdir -p "$out.tmp"
    tools=$(cd "$dir" && go mod edit -json | python3 -c 'import json,sys; print(" ".join(t["Path"] for t in json.load(sys.stdin).get("Tool") or []))')
    # Components report the version they were built from (the kubelet registers it with its node). Only
    # they: other modules may have k8s.io/kubernetes in their module graph without building from it.
    kver=""
    case " $tools " in *" k8s.io/kubernetes/"*) kver=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/kubernetes) ;; esac
    ldflags="-s -w"
    if [ -n "$kver" ]; then
      minor=$(echo "$kver" | cut -d. -f2)
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$kver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      done
    fi
    start=$SECONDS
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" $tools)
    # etcd's main package is its server module; name the binary as people know it.
    [ -e "$out.tmp/server" ] && mv "$out.tmp/server" "$out.tmp/etcd"
    touch "$out.tmp/.complete"
    rm -rf "$out"; mv "$out.tmp" "$out"
    echo "built k8s/$name in $((SECONDS - start)) s"
  fi
  for f in "$out"/*; do ln -sfn "$f" "$bin/$(basename "$f")"; done
done
