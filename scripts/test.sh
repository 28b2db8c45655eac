#!/usr/bin/env bash
# The suite of `make test` after the lints: unit tests and the end-to-end tests on real Ceph, then the
# tests that need the Kubernetes parts (csi_sanity, k8s). On a machine that has not built those parts yet
# (Go: about 20 minutes of both cores) they are built in the background, at the lowest CPU priority,
# while the Ceph tests run, which leave the CPU idle much of the time; the image's Debian layer with them.
# Once built they are cached outside the clone and that step takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
k8s_tests=(csi_sanity k8s operator)
ceph_tests=()
for f in crates/cli/tests/*.rs; do
  name=$(basename "$f" .rs)
  [[ " ${k8s_tests[*]} " == *" $name "* ]] || ceph_tests+=(--test "$name")
done

log=target/k8s-parts.log
# In a session of its own, so that stopping it stops the go and mmdebstrap processes under it.
setsid nice -n 19 bash -c 'scripts/image/build.sh --base-only && scripts/k8s/build.sh' > "$log" 2>&1 &
parts=$!
trap 'kill -- -$parts 2>/dev/null || true' EXIT

cargo test --workspace --lib --bins "${ceph_tests[@]}" -- --test-threads 2

if ! wait $parts; then
  echo "error: building the Kubernetes test parts failed; the end of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
trap - EXIT
grep -E '^built|^building' "$log" || true
cargo test -p rookery $(printf -- '--test %s ' "${k8s_tests[@]}") -- --test-threads 2
