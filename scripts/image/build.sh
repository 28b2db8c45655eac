#!/usr/bin/env bash
# Builds the container images that pods run, locally (no registry is reachable): the pod sandbox image
# (Debian's static catatonit in pause mode) and the rookery image (a Debian root filesystem with the Ceph
# packages, and our release binary as a layer of its own). Each is written as an OCI archive in
# target/images/, which scripts/k8s/up.sh imports into containerd. The Debian layer is cached outside the
# clone, keyed by its package list, so a rebuild after a code change only redoes the binary's layer.
#
#   scripts/image/build.sh            (make image)
#   scripts/image/build.sh --base-only   only the cached Debian layer (no binary needed)
set -euo pipefail
base_only=false
[ "${1:-}" = --base-only ] && base_only=true
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${ROOKERY_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rookery/images}
out=$repo/target/images
binary=${ROOKERY_BINARY:-$repo/target/release/rookery}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)
: "${version:?cannot read the workspace version from Cargo.toml}"
mkdir -p "$cache" "$out"
$base_only || [ -x "$binary" ] || { echo "error: $binary is missing; run cargo build --release (or make build) first" >&2; exit 1; }
for b in mmdebstrap catatonit sha256sum; do
  command -v $b >/dev/null || { echo "error: $b is missing; run scripts/install-deps.sh" >&2; exit 1; }
done

sha() { sha256sum "$1" | cut -d' ' -f1; }
# oci_archive NAME:TAG[,NAME:TAG...] ARCHIVE CONFIG_JSON LAYER_TAR...: an OCI image layout holding one
# image (under each name given), as a tar.
oci_archive() {
  local ref=$1 archive=$2 config_body=$3; shift 3
  local work; work=$(mktemp -d); mkdir -p "$work/blobs/sha256"
  local layers="" diffs="" l d s
  for l in "$@"; do
    d=$(sha "$l"); s=$(stat -c %s "$l")
    ln "$l" "$work/blobs/sha256/$d" 2>/dev/null || cp "$l" "$work/blobs/sha256/$d"
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$s}"
    diffs+="${diffs:+,}\"sha256:$d\""
  done
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$config_body" "$diffs" > "$work/config.json"
  local cd cs; cd=$(sha "$work/config.json"); cs=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$work/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$cd" "$cs" "$layers" > "$work/manifest.json"
  local md ms; md=$(sha "$work/manifest.json"); ms=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$work/blobs/sha256/$md"
  local entries="" r
  for r in ${ref//,/ }; do
    entries+="${entries:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$md\",\"size\":$ms,\"annotations\":{\"io.containerd.image.name\":\"$r\",\"org.opencontainers.image.ref.name\":\"${r##*:}\"}}"
  done
  printf '{"schemaVersion":2,"manifests":[%s]}' "$entries" > "$work/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
  tar -C "$work" -cf "$archive.tmp" oci-layout index.json blobs
  mv "$archive.tmp" "$archive"
  rm -rf "$work"
}

start=$SECONDS
# --- the pod sandbox: one static binary that holds the pod's namespaces and reaps nothing else
pause_root=$(mktemp -d)
install -m 755 "$(command -v catatonit)" "$pause_root/pause"
tar --numeric-owner --owner 0 --group 0 -C "$pause_root" -cf "$cache/pause-layer.tar" pause
rm -rf "$pause_root"
oci_archive rookery.local/pause:1 "$out/pause.tar" '{"Entrypoint":["/pause","-P"],"WorkingDir":"/"}' "$cache/pause-layer.tar"

# --- the rookery image's Debian layer: Ceph's daemons and clients, and the tools volumes need
packages=(ceph-mon ceph-mgr ceph-osd ceph-mds radosgw ceph-base ceph-common librados2 librbd1 ceph-fuse
          e2fsprogs xfsprogs util-linux mount fuse3 procps ca-certificates)
key=$(printf '%s\n' "${packages[@]}" bookworm v1 | sha256sum | cut -c1-16)
base=$cache/rookery-base-$key.tar
if [ ! -e "$base" ]; then
  echo "building the image's Debian layer (${#packages[@]} packages and their dependencies; a few minutes)"
  mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    --format=tar bookworm "$base.tmp" \
    "deb http://deb.debian.org/debian bookworm main" "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"
  mv "$base.tmp" "$base"
fi
$base_only && exit 0
# --- our binary, a layer of its own
bin_root=$(mktemp -d)
install -D -m 755 "$binary" "$bin_root/usr/local/bin/rookery"
# A test build carries its debug info: not needed in a pod, and most of the size.
strip --strip-debug "$bin_root/usr/local/bin/rookery"
tar --numeric-owner --owner 0 --group 0 --mtime=@0 -C "$bin_root" -cf "$cache/rookery-bin-layer.tar" usr
rm -rf "$bin_root"
oci_archive "rookery.local/rookery:$version" "$out/rookery.tar" \
  '{"Entrypoint":["/usr/local/bin/rookery"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}' \
  "$base" "$cache/rookery-bin-layer.tar"
# --- the CSI sidecars, built from k8s/sidecars/go.mod (scripts/k8s/build.sh), under the names of their
# upstream images so that deploy/csi/ runs unchanged: one image of static binaries, each at /NAME as in
# the upstream images, listed once per name, tagged with the version of the kubernetes-csi/external-*
# module that the tool comes from (csi-sanity, also there, is no sidecar).
sidecar_refs=()
sidecar_root=$(mktemp -d)
while read -r name ver; do
  [ -x "$repo/target/k8s/bin/$name" ] || continue
  install -m 755 "$repo/target/k8s/bin/$name" "$sidecar_root/$name"
  sidecar_refs+=("registry.k8s.io/sig-storage/$name:$ver")
done < <(cd "$repo/k8s/sidecars" && go mod edit -json | python3 -c '
import json, sys
m = json.load(sys.stdin)
req = {r["Path"]: r["Version"] for r in m.get("Require") or []}
for t in m.get("Tool") or []:
    mod = t["Path"].split("/cmd/")[0]
    if mod.startswith("github.com/kubernetes-csi/external-"):
        print(t["Path"].rsplit("/", 1)[1], req[mod])')
if [ ${#sidecar_refs[@]} -gt 0 ]; then
  tar --numeric-owner --owner 0 --group 0 --mtime=@0 -C "$sidecar_root" -cf "$cache/sidecars-layer.tar" .
  oci_archive "$(IFS=,; echo "${sidecar_refs[*]}")" "$out/csi-sidecars.tar" '{"WorkingDir":"/"}' "$cache/sidecars-layer.tar"
fi
rm -rf "$sidecar_root"
echo "images in $out: rookery.local/rookery:$version ($(du -m "$out/rookery.tar" | cut -f1) MiB), rookery.local/pause:1; $((SECONDS - start)) s"
