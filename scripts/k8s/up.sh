#!/usr/bin/env bash
# Starts a real, single-node Kubernetes on this host for tests and for trying rookery by hand: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd and one kubelet, every server on
# 127.0.0.1 (free ports) and every file under DIR. Pods get their own network namespaces on a bridge with
# no address on the host, so they reach nothing outside; pods that must reach the API use hostNetwork.
#
#   scripts/k8s/up.sh DIR      then: export KUBECONFIG=DIR/kubeconfig; kubectl get nodes
#   scripts/k8s/down.sh DIR    stops it all and leaves nothing behind (processes, containers, mounts)
#
# The binaries come from scripts/k8s/build.sh (target/k8s/bin); images from scripts/image/build.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: up.sh DIR}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
bin=$repo/target/k8s/bin
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  [ -x "$bin/$b" ] || { echo "error: $bin/$b is missing; run scripts/k8s/build.sh (or make k8s-build) first" >&2; exit 1; }
done
for b in containerd containerd-shim-runc-v2 runc ctr openssl; do
  command -v $b >/dev/null || { echo "error: $b is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
if [ -e "$dir/pids" ] && ls "$dir/pids"/*.pid >/dev/null 2>&1; then
  echo "error: $dir already holds a Kubernetes started by up.sh; stop it first with scripts/k8s/down.sh $dir" >&2; exit 1
fi
# The kubelet's root: inside DIR (tests), or KUBELET_ROOT (`make k8s-up`: /var/lib/kubelet, the path
# deploy/csi/ names, so the manifests apply unchanged). HOST_DIRS: more host folders pods mount with
# bidirectional propagation (`make k8s-up`: /var/lib/rookery-csi, the node plugins' records).
kubelet_root=${KUBELET_ROOT:-$dir/kubelet}
if [ "$kubelet_root" != "$dir/kubelet" ] && pgrep -x kubelet >/dev/null; then
  echo "error: a kubelet already runs on this host; stop it, or start this one without KUBELET_ROOT" >&2; exit 1
fi
mkdir -p "$dir"/{pki,pids,logs,etcd,containerd/root,containerd/state,cni,kubelet,manifests}
# Bidirectional mount propagation (a CSI node plugin's mounts reaching the pods) needs those folders on a
# shared mount; / is private on hosts without systemd. Each becomes a shared mount of its own, and
# down.sh undoes it (removing the host folders this made).
: > "$dir/host-dirs"
for shared in "$dir" "$kubelet_root" ${HOST_DIRS:-}; do
  if [ "$shared" != "$dir" ] && [ "${shared#"$dir"/}" = "$shared" ]; then
    [ -e "$shared" ] || { mkdir -p "$shared"; echo "made $shared" >> "$dir/host-dirs"; }
    mountpoint -q "$shared" || echo "mounted $shared" >> "$dir/host-dirs"
  fi
  mountpoint -q "$shared" || mount --bind "$shared" "$shared"
  mount --make-rshared "$shared"
done
chmod 700 "$dir" "$dir/pki"
log() { printf '%s %s\n' "$(date +%T)" "$*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port); kubelet_port=$(free_port)
kubelet_healthz=$(free_port)
node=localhost   # resolves to 127.0.0.1: the API server reaches the kubelet (logs, exec) by this name

# --- credentials: a CA of our own, the API server's certificate, service-account keys, one token per identity
pki=$dir/pki
(
  cd "$pki"; umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.crt -subj "/CN=rookery-test-ca" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' > san.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile san.ext -out apiserver.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr -subj "/CN=kube-apiserver-kubelet-client/O=system:masters" 2>/dev/null
  openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out kubelet-client.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  admin=$(token); cm=$(token); sched=$(token); kubelet=$(token)
  {
    echo "$admin,admin,admin,\"system:masters\""
    echo "$cm,system:kube-controller-manager,system:kube-controller-manager"
    echo "$sched,system:kube-scheduler,system:kube-scheduler"
    echo "$kubelet,system:node:$node,system:node:$node,\"system:nodes\""
  } > tokens.csv
  kubeconfig() { # NAME TOKEN
    cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: rookery-test
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}
users:
- name: user
  user: {token: "$2"}
contexts:
- name: rookery-test
  context: {cluster: rookery-test, user: user}
current-context: rookery-test
KC
  }
  kubeconfig "$dir/kubeconfig" "$admin"
  kubeconfig controller-manager.kubeconfig "$cm"
  kubeconfig scheduler.kubeconfig "$sched"
  kubeconfig kubelet.kubeconfig "$kubelet"
)
chmod 600 "$dir/kubeconfig"

start() { # NAME COMMAND...: in its own session, logs in logs/NAME.log, pid in pids/NAME.pid
  local name=$1; shift
  setsid "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
  echo $! > "$dir/pids/$name.pid"
}
wait_for() { # WHAT SECONDS COMMAND...
  local what=$1 limit=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      echo "error: $what did not come up within ${limit}s; its log is in $dir/logs (last lines below)" >&2
      tail -n 20 "$dir/logs/"*.log >&2; exit 1
    fi
    sleep 0.2
  done
}
cat > "$dir/env" <<ENV
K8S_DIR=$dir
KUBECONFIG=$dir/kubeconfig
K8S_API_PORT=$api_port
K8S_NODE=$node
K8S_KUBELET_ROOT=$kubelet_root
K8S_CONTAINERD_SOCKET=$dir/containerd/containerd.sock
ENV

# --- etcd (no fsync: a test cluster's state is thrown away)
log "starting etcd on 127.0.0.1:$etcd_port"
start etcd "$bin/etcd" --name test --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "test=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --quota-backend-bytes 2147483648 \
  --listen-metrics-urls "" --log-level warn
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

# --- kube-apiserver
log "starting kube-apiserver on https://127.0.0.1:$api_port"
start kube-apiserver "$bin/kube-apiserver" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
  --token-auth-file "$pki/tokens.csv" --anonymous-auth=false \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" --api-audiences https://kubernetes.default.svc \
  --service-cluster-ip-range 10.96.0.0/24 --allow-privileged=true --endpoint-reconciler-type none \
  --kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
  --kubelet-preferred-address-types Hostname --profiling=false --event-ttl 30m \
  --feature-gates MutatingAdmissionPolicy=true --runtime-config admissionregistration.k8s.io/v1beta1=true
kubectl() { "$bin/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
wait_for kube-apiserver 90 kubectl get --raw /readyz

# This cluster has no kube-proxy (it would rewrite the host's packet filter), so the API's service
# address routes nowhere. Pods on the host's network reach the API on 127.0.0.1 instead: an admission
# policy gives their containers that address, as kube-proxy's routing would.
kubectl apply -f - >/dev/null <<MAP
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: rookery-test-loopback-api}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  matchConditions:
    - name: host-network
      expression: "has(object.spec.hostNetwork) && object.spec.hostNetwork"
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >
          Object{spec: Object.spec{containers: object.spec.containers.map(c, Object.spec.containers{
            name: c.name,
            env: [Object.spec.containers.env{name: "KUBERNETES_SERVICE_HOST", value: "127.0.0.1"},
                  Object.spec.containers.env{name: "KUBERNETES_SERVICE_PORT", value: "$api_port"}]})}}
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: rookery-test-loopback-api}
spec:
  policyName: rookery-test-loopback-api
MAP

log "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$pki/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" --profiling=false
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$pki/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --profiling=false

# --- containerd: its own root, state and socket; pods on a bridge without a host address
cat > "$dir/cni/10-pods.conflist" <<CNI
{"cniVersion": "1.0.0", "name": "rookery-test-pods", "plugins": [
  {"type": "bridge", "bridge": "rkt$(printf '%05d' $((api_port % 100000)))", "isGateway": false, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": "$dir/cni/ipam"}}]}
CNI
cat > "$dir/containerd/config.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "rookery.local/pause:1"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
TOML
log "starting containerd"
start containerd containerd --config "$dir/containerd/config.toml"
wait_for containerd 30 ctr --address "$dir/containerd/containerd.sock" version

# Images built locally (no registry is reachable): the pod sandbox and rookery's own.
for archive in "$repo"/target/images/*.tar; do
  [ -e "$archive" ] || continue
  ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import "$archive" >/dev/null
done

# --- kubelet
cat > "$dir/kubelet/config.yaml" <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kubelet_port
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
readOnlyPort: 0
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
maxPods: 110
podLogsDir: $dir/pod-logs
KCFG
# What the kubelet writes outside its folders goes at down.sh: its device-plugin socket, whose place is
# fixed (/var/lib/kubelet/device-plugins) whatever its root, and what it adds to a root outside DIR.
for d in /var/lib/kubelet /var/lib/kubelet/device-plugins; do
  [ -e "$d" ] || echo "made $d" >> "$dir/host-dirs"
done
echo "socket /var/lib/kubelet/device-plugins/kubelet.sock" >> "$dir/host-dirs"
if [ "$kubelet_root" != "$dir/kubelet" ]; then
  ls -A "$kubelet_root" | sed 's/^/kept /' >> "$dir/host-dirs"
  echo "root $kubelet_root" >> "$dir/host-dirs"
fi
log "starting kubelet (node $node)"
start kubelet "$bin/kubelet" --config "$dir/kubelet/config.yaml" --kubeconfig "$pki/kubelet.kubeconfig" \
  --root-dir "$kubelet_root" --hostname-override "$node" --cert-dir "$dir/kubelet/pki" --v 1
wait_for "the node $node" 90 kubectl get node "$node"
wait_for "node $node Ready" 120 bash -c "'$bin/kubectl' --kubeconfig '$dir/kubeconfig' get node $node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
# VolumeSnapshots, as a distribution provides them: the CRDs and the snapshot-controller of
# kubernetes-csi/external-snapshotter, from the version that k8s/sidecars pins (its image comes from
# scripts/image/build.sh). On the host's network, so it reaches the API (see the admission policy above).
snap_mod=github.com/kubernetes-csi/external-snapshotter
snap_dir=$(cd "$repo/k8s/sidecars" && go list -m -f '{{.Dir}}' $snap_mod/v8 2>/dev/null || true)
snap_client=$(cd "$repo/k8s/sidecars" && go list -m -f '{{.Dir}}' $snap_mod/client/v8 2>/dev/null || true)
snap_ver=$(cd "$repo/k8s/sidecars" && go list -m -f '{{.Version}}' $snap_mod/v8 2>/dev/null || true)
if [ -n "$snap_dir" ] && [ -n "$snap_client" ] && ctr --address "$dir/containerd/containerd.sock" -n k8s.io images ls -q | grep -q "snapshot-controller:$snap_ver"; then
  log "installing the VolumeSnapshot CRDs and snapshot-controller $snap_ver"
  for kind in volumesnapshotclasses volumesnapshotcontents volumesnapshots; do
    kubectl apply -f "$snap_client/config/crd/snapshot.storage.k8s.io_$kind.yaml" >/dev/null
  done
  kubectl apply -f "$snap_dir/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml" >/dev/null
  patch='{"spec":{"replicas":1,"minReadySeconds":0,"template":{"spec":{"hostNetwork":true,"containers":[
    {"name":"snapshot-controller","image":"registry.k8s.io/sig-storage/snapshot-controller:'"$snap_ver"'",
     "command":["/snapshot-controller"],"args":["--leader-election=false"]}]}}}}'
  kubectl patch --local -o yaml --type strategic -p "$patch" \
    -f "$snap_dir/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml" | kubectl apply -f - >/dev/null
fi
log "Kubernetes is up: export KUBECONFIG=$dir/kubeconfig"
