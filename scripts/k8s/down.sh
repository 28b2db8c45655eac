#!/usr/bin/env bash
# Stops the Kubernetes that scripts/k8s/up.sh DIR started and leaves nothing of it behind: the kubelet and
# control plane, every container and pod sandbox (with their shims), containerd, the mounts under DIR
# (volumes, overlay roots, pod network namespaces) and the pods' bridge. Safe to run twice, or after a
# partial start. With --keep, DIR's files stay (logs, for a look after a failure).
set -uo pipefail
dir=${1:?usage: down.sh DIR [--keep]}
keep=${2:-}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)
sock=$dir/containerd/containerd.sock

stop_pidfile() { # NAME: SIGTERM, then SIGKILL after a few seconds
  local f=$dir/pids/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null && grep -qa -- "$dir" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

# The kubelet first, so that nothing restarts what goes next.
stop_pidfile kubelet
# Containers outlive containerd (their shims keep them), so they go while it still answers.
if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then
  for ns in $(ctr --address "$sock" namespaces ls -q 2>/dev/null); do
    c="ctr --address $sock -n $ns"
    for t in $($c tasks ls -q 2>/dev/null); do $c tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
    for t in $($c tasks ls -q 2>/dev/null); do
      for _ in $(seq 50); do $c tasks delete "$t" >/dev/null 2>&1 && break; sleep 0.1; done
    done
    for k in $($c containers ls -q 2>/dev/null); do $c containers delete "$k" >/dev/null 2>&1; done
  done
fi
for name in kube-scheduler kube-controller-manager kube-apiserver containerd etcd; do stop_pidfile "$name"; done
# Shims (and anything they still hold) that named our containerd.
for pid in $(pgrep -f "containerd-shim.*-address $sock" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
# Loop devices over files under DIR or the shared host folders (block volumes the node plugins mapped;
# their FUSE servers are gone), while their backing paths still read as such: detached now, a device
# still mounted lets go once the unmounts below release it.
ours=("$dir")
[ -f "$dir/host-dirs" ] && while read -r what path; do [ "$what" = mounted ] && ours+=("$path"); done < "$dir/host-dirs"
# A block volume whose FUSE mount went with its container's mount namespace reads as /csi-vol-<id> (no
# such file on the host): orphaned, every I/O to it fails; detached too.
for dev in /sys/block/loop*; do
  [ -r "$dev/loop/backing_file" ] || continue
  backing=$(cat "$dev/loop/backing_file" 2>/dev/null)
  for d in "${ours[@]}"; do
    case "$backing" in "$d"/*) losetup -d "/dev/$(basename "$dev")" 2>/dev/null ;; esac
  done
  if [[ "$backing" =~ ^/csi-vol-[0-9a-f]+$ ]] && [ ! -e "$backing" ]; then
    losetup -d "/dev/$(basename "$dev")" 2>/dev/null
  fi
done
unmount_tree() { # PATH: everything mounted at or under PATH, deepest first (lazily when busy)
  local mounts m
  for _ in 1 2 3; do
    mounts=$(awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r)
    [ -z "$mounts" ] && return
    for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  done
}
# Whatever is still mounted under DIR (volumes in pods, overlay roots, netns, shm), and DIR itself (up.sh
# made it a shared mount).
unmount_tree "$dir"
# Host folders up.sh shared (KUBELET_ROOT, HOST_DIRS): what is mounted under them, their own bind
# mount, and the folders themselves where up.sh made them.
if [ -f "$dir/host-dirs" ]; then
  while read -r what path; do
    [ "$what" = mounted ] && unmount_tree "$path"
  done < "$dir/host-dirs"
  # A kubelet root outside DIR: whatever the kubelet added to it.
  root=$(awk '$1 == "root" {print $2}' "$dir/host-dirs")
  if [ -n "$root" ] && [ -d "$root" ]; then
    for entry in $(ls -A "$root"); do
      grep -qxF "kept $entry" "$dir/host-dirs" || rm -rf --one-file-system "${root:?}/$entry"
    done
  fi
  while read -r what path; do
    case $what in
      socket) rm -f "$path" ;;
      made) rm -rf --one-file-system "$path" ;;
    esac
  done < "$dir/host-dirs"
fi
# The pods' bridge (named after the API port in up.sh's CNI config).
if [ -f "$dir/cni/10-pods.conflist" ]; then
  br=$(grep -o '"bridge": "[^"]*"' "$dir/cni/10-pods.conflist" | cut -d'"' -f4)
  [ -n "$br" ] && ip link show "$br" >/dev/null 2>&1 && ip link delete "$br"
fi
if [ "$keep" != "--keep" ]; then
  rm -rf "$dir"
fi
exit 0
