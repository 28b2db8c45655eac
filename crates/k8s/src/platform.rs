//! The Kubernetes implementation of the orchestrator's [`Platform`]: hosts are Nodes, a daemon is a
//! Deployment of one pod pinned to its node on the host's network (so the addresses in the monmap stay
//! put), running rookery's image with the node's data dir mounted at the same path; keyrings, ceph.conf
//! and stores are made on the node by its agent ([`crate::agent`]), asked through the node's Secret.
//!
//! The trait is synchronous (the reconcile loop is a thread of its own); calls that reach the API server
//! run on the operator's tokio runtime through its handle, and reads come from watched caches.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use rookery_ceph::keyring::KeyringEntry;
use rookery_platform::devices::Device;
use rookery_platform::{
    ConfSetting, DaemonKind, DaemonSpec, DaemonState, DaemonStatus, Host, Platform, PlatformError,
    StoreRequest, Stores,
};
use serde_json::json;

use crate::cache;
use crate::node::{self, NodeDesired, NodeStatus, Release, Store as NodeStore};

/// The label every object rookery makes carries, and the one naming a daemon's pods.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "rookery");
pub const DAEMON_LABEL: &str = "rookery.io/daemon";
/// A node annotation giving the address its daemons serve on (else its InternalIP).
pub const ADDRESS_ANNOTATION: &str = "rookery.io/address";
/// A node annotation giving Ceph's public network for it (else the address alone).
pub const NETWORK_ANNOTATION: &str = "rookery.io/public-network";
/// How long a node's agent may take to carry out a request (an OSD's mkfs is the slow one).
const AGENT_LIMIT: Duration = Duration::from_secs(180);

/// What every part of the Kubernetes platform shares.
pub struct Context {
    pub handle: tokio::runtime::Handle,
    pub client: kube::Client,
    pub namespace: String,
    /// The image daemons run (rookery's own, with Ceph's packages).
    pub image: String,
    /// The cluster's data dir on every node (`dataDirHostPath`/namespace); the operator keeps its own
    /// copy of the cluster's state at the same path in its container, so one ceph.conf fits both.
    pub data_dir: PathBuf,
    /// The CephCluster every object is owned by.
    pub owner: OwnerReference,
    /// The node the operator runs on, preferred as the home host.
    pub operator_node: Option<String>,
}

impl Context {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }
}

fn api_error(what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Io {
        path: what.to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The Deployment's name for a daemon, as Rook names them.
pub fn deployment_name(kind: DaemonKind, id: &str) -> String {
    match kind {
        DaemonKind::Rgw => format!("rook-ceph-rgw-{id}-a"),
        _ => format!("rook-ceph-{kind}-{id}"),
    }
}

/// A short digest of what a Deployment runs, so an unchanged spec is not applied again.
fn digest(value: &serde_json::Value) -> String {
    rookery_orchestrator::spec_digest(&value.to_string())
}

/// The Deployment that runs `spec` (pure: unit-tested; the operator applies it server-side).
pub fn deployment(
    spec: &DaemonSpec,
    ctx_image: &str,
    namespace: &str,
    data_dir: &Path,
    owner: &OwnerReference,
) -> serde_json::Value {
    let name = deployment_name(spec.kind, &spec.id);
    let daemon = spec.name();
    let kind = spec.kind.as_str();
    let labels = json!({
        "app": format!("rook-ceph-{kind}"),
        "ceph_daemon_type": kind,
        "ceph_daemon_id": spec.id,
        "rook_cluster": namespace,
        MANAGED_BY.0: MANAGED_BY.1,
        DAEMON_LABEL: daemon,
    });
    let data = data_dir.display().to_string();
    let mut args = vec![
        "-f".to_string(),
        "--conf".to_string(),
        format!("{data}/ceph.conf"),
    ];
    args.extend(spec.args.iter().cloned());
    let env: Vec<serde_json::Value> = spec
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut mounts = vec![json!({"name": "data", "mountPath": data})];
    let mut volumes =
        vec![json!({"name": "data", "hostPath": {"path": data, "type": "DirectoryOrCreate"}})];
    // An OSD opens its block device; only a privileged container sees the host's devices.
    let devices = spec.kind == DaemonKind::Osd;
    if devices {
        mounts.push(json!({"name": "dev", "mountPath": "/dev"}));
        volumes.push(json!({"name": "dev", "hostPath": {"path": "/dev"}}));
    }
    let mut container = json!({
        "name": kind,
        "image": spec.image.as_deref().unwrap_or(ctx_image),
        "imagePullPolicy": "IfNotPresent",
        "command": [spec.kind.program()],
        "args": args,
        "env": env,
        "volumeMounts": mounts,
        "securityContext": {"privileged": devices},
    });
    if let Some(bytes) = spec.resources.memory_bytes {
        container["resources"] = json!({"limits": {"memory": bytes.to_string()}});
    }
    let template_spec = json!({
        "nodeSelector": {"kubernetes.io/hostname": spec.host},
        "hostNetwork": true,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
    });
    let hash = digest(&template_spec);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"rookery.io/spec-digest": hash},
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": 1,
            // Never two of one daemon at once: they would share one store.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {DAEMON_LABEL: daemon}},
            "template": {
                "metadata": {"labels": labels},
                "spec": template_spec,
            },
        },
    })
}

/// The host a Node is, if it has an address daemons can serve on.
pub fn host_of(node: &Node) -> Option<Host> {
    let name = node.metadata.name.clone()?;
    let annotations = node.metadata.annotations.clone().unwrap_or_default();
    let address: IpAddr = match annotations.get(ADDRESS_ANNOTATION) {
        Some(a) => a.parse().ok()?,
        None => node
            .status
            .as_ref()?
            .addresses
            .as_ref()?
            .iter()
            .find(|a| a.type_ == "InternalIP")?
            .address
            .parse()
            .ok()?,
    };
    let public_network = annotations
        .get(NETWORK_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| match address {
            IpAddr::V4(a) if a.is_loopback() => "127.0.0.0/8".to_string(),
            IpAddr::V4(a) => format!("{a}/32"),
            IpAddr::V6(a) => format!("{a}/128"),
        });
    Some(Host {
        name,
        address,
        public_network,
        labels: node.metadata.labels.clone().unwrap_or_default(),
    })
}

/// Hosts in the order the orchestrator wants them: the operator's node first, then by name.
pub fn order_hosts(mut hosts: Vec<Host>, first: Option<&str>) -> Vec<Host> {
    hosts.sort_by(|a, b| {
        let key = |h: &Host| (Some(h.name.as_str()) != first, h.name.clone());
        key(a).cmp(&key(b))
    });
    hosts
}

/// What a daemon's newest pod says of it.
pub fn pod_status(name: &str, pod: Option<&Pod>) -> DaemonStatus {
    let mut status = DaemonStatus {
        name: name.to_string(),
        state: DaemonState::Restarting,
        pid: None,
        restarts: 0,
        last_exit: None,
        uptime_secs: None,
        adopted: false,
        crash_looping: false,
        log_tail: vec![],
    };
    let Some(container) = pod
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
    else {
        return status;
    };
    status.restarts = u32::try_from(container.restart_count).unwrap_or(0);
    if let Some(t) = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
    {
        status.last_exit = Some(format!(
            "exit code {}{}",
            t.exit_code,
            t.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    if let Some(state) = &container.state {
        if let Some(running) = &state.running {
            status.state = DaemonState::Running;
            status.uptime_secs = running.started_at.as_ref().map(|t| {
                let started = t.0.as_second();
                let now = rookery_orchestrator::now_unix() as i64;
                u64::try_from(now - started).unwrap_or(0)
            });
        } else if let Some(waiting) = &state.waiting {
            status.crash_looping = waiting.reason.as_deref() == Some("CrashLoopBackOff");
            if let Some(m) = &waiting.message {
                status.log_tail = vec![m.clone()];
            }
        }
    }
    status
}

/// The daemon's pod that counts: the newest one not being deleted.
fn current_pod<'a>(pods: &'a [Arc<Pod>], daemon: &str) -> Option<&'a Pod> {
    pods.iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(DAEMON_LABEL))
                    .is_some_and(|d| d == daemon)
        })
        .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map(|p| p.as_ref())
}

pub struct KubePlatform {
    ctx: Arc<Context>,
    nodes: Store<Node>,
    deployments: Store<Deployment>,
    pods: Store<Pod>,
    stores: Arc<KubeStores>,
}

impl KubePlatform {
    /// Starts the watches it reads from and loads the nodes' desired states. Called on the runtime.
    pub async fn start(ctx: Arc<Context>) -> anyhow::Result<KubePlatform> {
        let ns = ctx.namespace.clone();
        let managed = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
        let nodes = cache::follow(
            Api::<Node>::all(ctx.client.clone()),
            watcher::Config::default(),
        );
        let deployments = cache::follow(
            Api::<Deployment>::namespaced(ctx.client.clone(), &ns),
            watcher::Config::default().labels(&managed),
        );
        let pods = cache::follow(
            Api::<Pod>::namespaced(ctx.client.clone(), &ns),
            watcher::Config::default().labels(&managed),
        );
        let statuses = cache::follow(
            Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns),
            watcher::Config::default().labels(&format!("{}=status", node::ROLE_LABEL)),
        );
        let limit = Duration::from_secs(30);
        for ok in [
            cache::ready(&nodes, limit).await,
            cache::ready(&deployments, limit).await,
            cache::ready(&pods, limit).await,
            cache::ready(&statuses, limit).await,
        ] {
            if !ok {
                anyhow::bail!("could not list Nodes, Deployments, Pods and ConfigMaps within 30 s; check the operator's RBAC");
            }
        }
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        let mut desired = BTreeMap::new();
        for s in secrets
            .list(&ListParams::default().labels(&format!("{}=desired", node::ROLE_LABEL)))
            .await?
        {
            let Some(node) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(node::NODE_LABEL))
            else {
                continue;
            };
            let d: NodeDesired = s
                .data
                .as_ref()
                .and_then(|d| d.get(node::DESIRED_KEY))
                .and_then(|b| serde_json::from_slice(&b.0).ok())
                .unwrap_or_default();
            desired.insert(node.clone(), d);
        }
        let stores = Arc::new(KubeStores {
            ctx: ctx.clone(),
            nodes: nodes.clone(),
            statuses,
            desired: Mutex::new(desired),
        });
        Ok(KubePlatform {
            ctx,
            nodes,
            deployments,
            pods,
            stores,
        })
    }

    /// The stores, as the Kubernetes type (the cluster's cleanup purges nodes).
    pub fn node_stores(&self) -> Arc<KubeStores> {
        self.stores.clone()
    }

    fn node_names(&self) -> BTreeSet<String> {
        self.nodes
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    }

    fn deployment_of(&self, daemon: &str) -> Option<Arc<Deployment>> {
        self.deployments.state().into_iter().find(|d| {
            d.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(DAEMON_LABEL))
                .is_some_and(|n| n == daemon)
        })
    }
}

impl Platform for KubePlatform {
    fn stores(&self) -> Arc<dyn Stores> {
        self.stores.clone()
    }

    fn hosts(&self) -> Vec<Host> {
        let hosts = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| host_of(n))
            .collect();
        order_hosts(hosts, self.ctx.operator_node.as_deref())
    }

    fn ensure(&mut self, spec: DaemonSpec) -> Result<(), PlatformError> {
        if !self.node_names().contains(&spec.host) {
            return Err(PlatformError::UnknownHost(spec.host));
        }
        // The daemon reads ceph.conf from the node's data dir as it starts.
        self.stores.sync_node(&spec.host, |_| {})?;
        let want = deployment(
            &spec,
            &self.ctx.image,
            &self.ctx.namespace,
            &self.ctx.data_dir,
            &self.ctx.owner,
        );
        let name = deployment_name(spec.kind, &spec.id);
        let wanted_digest = want["metadata"]["annotations"]["rookery.io/spec-digest"].as_str();
        let current = self.deployment_of(&spec.name());
        let same = current
            .as_ref()
            .and_then(|d| d.metadata.annotations.as_ref())
            .and_then(|a| a.get("rookery.io/spec-digest"))
            .is_some_and(|d| Some(d.as_str()) == wanted_digest);
        if same {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.ctx.namespace);
        self.ctx
            .block_on(api.patch(
                &name,
                &PatchParams::apply("rookery").force(),
                &Patch::Apply(&want),
            ))
            .map_err(|e| api_error(&format!("applying Deployment {name}"), e))?;
        tracing::info!(daemon = %spec.name(), deployment = %name, node = %spec.host, "daemon deployed");
        Ok(())
    }

    fn stop(&mut self, names: &[String], grace: Duration) {
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.ctx.namespace);
        for name in names {
            let Some((kind, id)) = rookery_platform::parse_daemon_name(name) else {
                continue;
            };
            let deployment = deployment_name(kind, id);
            let deleted = self
                .ctx
                .block_on(api.delete(&deployment, &DeleteParams::background()));
            if let Err(e) = deleted {
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    tracing::warn!(%deployment, error = %e, "deleting a daemon's Deployment");
                }
            }
        }
        // The pods go with their Deployments; wait for them so a store is never opened twice.
        let until = Instant::now() + grace + Duration::from_secs(10);
        while Instant::now() < until {
            let pods = self.pods.state();
            if names.iter().all(|n| {
                current_pod(&pods, n).is_none()
                    && pods.iter().all(|p| {
                        p.metadata.labels.as_ref().and_then(|l| l.get(DAEMON_LABEL)) != Some(n)
                    })
            }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status(&self) -> Vec<DaemonStatus> {
        let pods = self.pods.state();
        let mut out: Vec<DaemonStatus> = self
            .deployments
            .state()
            .iter()
            .filter(|d| d.metadata.deletion_timestamp.is_none())
            .filter_map(|d| d.metadata.labels.as_ref()?.get(DAEMON_LABEL).cloned())
            .map(|daemon| pod_status(&daemon, current_pod(&pods, &daemon)))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The kubelet restarts containers that die; nothing to do here.
    fn watch(&mut self) {}

    fn retry(&mut self, name: &str) -> Result<(), PlatformError> {
        let pods = self.pods.state();
        let pod = current_pod(&pods, name)
            .and_then(|p| p.metadata.name.clone())
            .ok_or_else(|| PlatformError::UnknownDaemon(name.to_string()))?;
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ctx.namespace);
        self.ctx
            .block_on(api.delete(&pod, &DeleteParams::default()))
            .map_err(|e| api_error(&format!("deleting pod {pod}"), e))?;
        Ok(())
    }

    /// A daemon that is pid 1 of its container picks a random nonce; the pod cannot tell.
    fn is_current_instance(&self, _name: &str, _map_nonce: u64) -> Option<bool> {
        None
    }

    /// A new program comes with a new image, which changes the Deployment and restarts the pod.
    fn runs_installed_program(&self, _name: &str) -> Option<bool> {
        None
    }

    fn port_holder(&self, _host: &str, _port: u16) -> Option<String> {
        None
    }

    fn port_free(&self, _host: &str, _port: u16) -> bool {
        true
    }

    fn free_port(&self, _host: &str) -> Option<u16> {
        None
    }

    fn memory_available(&self, host: &str) -> Option<u64> {
        let node = self
            .nodes
            .state()
            .into_iter()
            .find(|n| n.metadata.name.as_deref() == Some(host))?;
        let memory = node.status.as_ref()?.allocatable.as_ref()?.get("memory")?;
        rookery_spec::Quantity::parse(&memory.0).ok().map(|q| q.0)
    }

    fn log_location(&self, name: &str) -> String {
        match rookery_platform::parse_daemon_name(name) {
            Some((kind, id)) => format!(
                "kubectl -n {} logs deploy/{}",
                self.ctx.namespace,
                deployment_name(kind, id)
            ),
            None => format!("the pod of {name}"),
        }
    }

    fn devices(&self, host: &str) -> Vec<Device> {
        self.stores
            .status_of(host)
            .map(|s| s.devices)
            .unwrap_or_default()
    }

    fn is_running(&self, name: &str) -> bool {
        let pods = self.pods.state();
        self.deployment_of(name).is_some()
            && pod_status(name, current_pod(&pods, name)).state == DaemonState::Running
    }
}

/// Keyrings and stores on the nodes, through their agents.
pub struct KubeStores {
    ctx: Arc<Context>,
    nodes: Store<Node>,
    statuses: Store<ConfigMap>,
    /// Each node's desired state: this operator is its only writer while it leads.
    desired: Mutex<BTreeMap<String, NodeDesired>>,
}

impl KubeStores {
    /// The node a daemon's store is on: the home host (every daemon runs there until daemons are
    /// spread over nodes).
    fn home(&self) -> Result<String, PlatformError> {
        let hosts: Vec<Host> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| host_of(n))
            .collect();
        order_hosts(hosts, self.ctx.operator_node.as_deref())
            .into_iter()
            .next()
            .map(|h| h.name)
            .ok_or_else(|| PlatformError::UnknownHost("(no node with an address)".into()))
    }

    pub fn status_of(&self, node: &str) -> Option<NodeStatus> {
        let name = node::object_name(node);
        self.statuses
            .state()
            .into_iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            .and_then(|c| {
                let text = c.data.as_ref()?.get(node::STATUS_KEY)?.clone();
                serde_json::from_str(&text).ok()
            })
    }

    /// Changes `node`'s desired state (and refreshes its ceph.conf from the operator's copy), writes it
    /// when it changed, and waits until the node's agent has carried it out.
    fn sync_node(
        &self,
        node: &str,
        change: impl FnOnce(&mut NodeDesired),
    ) -> Result<NodeStatus, PlatformError> {
        let conf = std::fs::read_to_string(self.ctx.data_dir.join("ceph.conf")).ok();
        let serial = {
            let mut all = self.desired.lock().unwrap_or_else(|p| p.into_inner());
            let entry = all.entry(node.to_string()).or_default();
            let mut next = entry.clone();
            next.data_dir = self.ctx.data_dir.display().to_string();
            if conf.is_some() {
                next.conf = conf;
            }
            change(&mut next);
            if next != *entry {
                next.serial = entry.serial + 1;
                self.write(node, &next)?;
                *entry = next;
            }
            entry.serial
        };
        self.wait(node, serial)
    }

    /// Asks the home node's agent for `change` and waits until it is done; then `done` takes a one-shot
    /// request back out of the desired state. The agent's error under `key` fails it, worded as `what`.
    fn ask(
        &self,
        key: &str,
        what: &str,
        change: impl FnOnce(&mut NodeDesired),
        done: impl FnOnce(&mut NodeDesired),
    ) -> Result<(), PlatformError> {
        let node = self.home()?;
        let status = self.sync_node(&node, change)?;
        self.sync_node(&node, done)?;
        match status.errors.get(key) {
            Some(e) => Err(api_error(&format!("{what} on {node}"), e)),
            None => Ok(()),
        }
    }

    /// Each reporting node's agent's resident memory, in MiB.
    pub fn agents_rss_mib(&self) -> BTreeMap<String, u64> {
        self.statuses
            .state()
            .iter()
            .filter_map(|c| {
                let node = c.metadata.labels.as_ref()?.get(node::NODE_LABEL)?.clone();
                let text = c.data.as_ref()?.get(node::STATUS_KEY)?;
                let status: NodeStatus = serde_json::from_str(text).ok()?;
                Some((node, status.agent_rss_mib))
            })
            .collect()
    }

    /// What `node`'s agent reports of the cluster's data dir there, once it has looked.
    pub fn node_report(&self, node: &str) -> Result<NodeStatus, PlatformError> {
        self.sync_node(node, |_| {})
    }

    /// Removes the cluster's data dir from every node that had its requests (after the OSDs were
    /// released); waits for each node's agent.
    pub fn purge_nodes(&self) -> Result<(), PlatformError> {
        let nodes: Vec<String> = self
            .desired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for node in nodes {
            self.sync_node(&node, |d| {
                *d = NodeDesired {
                    serial: d.serial,
                    data_dir: d.data_dir.clone(),
                    purge: true,
                    ..Default::default()
                };
            })?;
        }
        Ok(())
    }

    fn write(&self, node: &str, desired: &NodeDesired) -> Result<(), PlatformError> {
        let name = node::object_name(node);
        let body = serde_json::to_vec(desired).map_err(|e| api_error("encoding", e))?;
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.ctx.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (node::NODE_LABEL.to_string(), node.to_string()),
                    (node::ROLE_LABEL.to_string(), "desired".to_string()),
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                ])),
                owner_references: Some(vec![self.ctx.owner.clone()]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                node::DESIRED_KEY.to_string(),
                ByteString(body),
            )])),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &self.ctx.namespace);
        let mut value = serde_json::to_value(&secret).map_err(|e| api_error("encoding", e))?;
        value["apiVersion"] = json!("v1");
        value["kind"] = json!("Secret");
        self.ctx
            .block_on(api.patch(
                &name,
                &PatchParams::apply("rookery").force(),
                &Patch::Apply(&value),
            ))
            .map_err(|e| api_error(&format!("writing Secret {name}"), e))?;
        Ok(())
    }

    fn wait(&self, node: &str, serial: u64) -> Result<NodeStatus, PlatformError> {
        let until = Instant::now() + AGENT_LIMIT;
        loop {
            if let Some(s) = self.status_of(node).filter(|s| s.serial >= serial) {
                return Ok(s);
            }
            if Instant::now() > until {
                let seen = self.status_of(node).is_some();
                return Err(api_error(
                    &format!("node {node}"),
                    if seen {
                        format!("its rookery agent did not carry out the operator's request within {} s; see `kubectl -n {} logs` of the agent pod on {node}", AGENT_LIMIT.as_secs(), self.ctx.namespace)
                    } else {
                        format!("no rookery agent reports from node {node}; is the agent DaemonSet (deploy/operator) running there?")
                    },
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Stores for KubeStores {
    fn put_keyring(&self, daemon: &str, entry: &KeyringEntry) -> Result<(), PlatformError> {
        self.ask(
            daemon,
            &format!("{daemon}'s keyring"),
            |d| {
                d.keyrings.insert(daemon.to_string(), entry.into());
            },
            |_| {},
        )
    }

    fn has_keyring(&self, daemon: &str) -> bool {
        let Ok(node) = self.home() else { return false };
        let desired = self.desired.lock().unwrap_or_else(|p| p.into_inner());
        desired
            .get(&node)
            .is_some_and(|d| d.keyrings.contains_key(daemon))
            || self
                .status_of(&node)
                .is_some_and(|s| s.keyrings.contains(daemon))
    }

    fn prepare(&self, request: &StoreRequest) -> Result<(), PlatformError> {
        let node = self.home()?;
        let daemon = request.daemon();
        let status = self.sync_node(&node, |d| {
            d.stores.insert(daemon.clone(), NodeStore::from(request));
        })?;
        let made = status.ready.contains(&daemon);
        let error = status.errors.get(&daemon).cloned();
        // Made or failed, the request (and a mon's seed keys in it) leaves the node's Secret.
        self.sync_node(&node, |d| {
            d.stores.remove(&daemon);
        })?;
        match (made, error) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(api_error(&format!("making {daemon}'s store on {node}"), e)),
            (false, None) => Err(api_error(
                &format!("making {daemon}'s store on {node}"),
                "the agent finished without making it",
            )),
        }
    }

    fn is_ready(&self, daemon: &str) -> bool {
        self.home()
            .ok()
            .and_then(|n| self.status_of(&n))
            .is_some_and(|s| s.ready.contains(daemon))
    }

    fn data_location(&self, daemon: &str) -> Option<PathBuf> {
        let node = self.home().ok()?;
        self.status_of(&node)?.data_locations.get(daemon).cloned()
    }

    fn osd_block(&self, id: u32) -> Option<PathBuf> {
        let node = self.home().ok()?;
        self.status_of(&node)?.osd_blocks.get(&id).cloned()
    }

    fn link_osd_block(&self, id: u32, device: &Path) -> Result<(), PlatformError> {
        self.ask(
            &format!("osd.{id}"),
            &format!("linking osd.{id}"),
            |d| {
                d.osd_links.insert(id, device.to_path_buf());
            },
            |_| {},
        )
    }

    fn release_osd(&self, id: u32, uuid: &str, device: Option<&Path>) -> Result<(), PlatformError> {
        let daemon = format!("osd.{id}");
        self.ask(
            &format!("release.{daemon}"),
            &format!("releasing {daemon}"),
            |d| {
                d.releases.push(Release {
                    id,
                    uuid: uuid.to_string(),
                    device: device.map(Path::to_path_buf),
                });
                d.keyrings.remove(&daemon);
                d.osd_links.remove(&id);
            },
            |d| d.releases.retain(|r| r.id != id),
        )
    }

    fn forget(&self, daemon: &str) -> Result<(), PlatformError> {
        self.ask(
            daemon,
            &format!("removing {daemon}'s store"),
            |d| {
                d.keyrings.remove(daemon);
                d.forget.insert(daemon.to_string());
            },
            |d| {
                d.forget.remove(daemon);
            },
        )
    }

    fn with_keyrings(&self) -> Vec<String> {
        let Ok(node) = self.home() else { return vec![] };
        let desired = self.desired.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: BTreeSet<String> = desired
            .get(&node)
            .map(|d| d.keyrings.keys().cloned().collect())
            .unwrap_or_default();
        drop(desired);
        if let Some(s) = self.status_of(&node) {
            names.extend(
                s.keyrings
                    .into_iter()
                    .filter(|d| !d.starts_with("mon.") && !d.starts_with("osd.")),
            );
        }
        names.into_iter().collect()
    }

    /// The node's data dir has the standalone layout, at the same path as the operator's own copy.
    fn conf_settings(&self, host: &str) -> Vec<ConfSetting> {
        rookery_platform::local_stores::DataDirStores {
            root: self.ctx.data_dir.clone(),
        }
        .conf_settings(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_platform::Resources;

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "ceph.rook.io/v1".into(),
            kind: "CephCluster".into(),
            name: "my-cluster".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn spec(kind: DaemonKind, id: &str) -> DaemonSpec {
        DaemonSpec {
            host: "node-1".into(),
            kind,
            id: id.into(),
            image: None,
            args: vec!["-i".into(), id.into()],
            env: vec![],
            ports: vec![],
            resources: Resources::default(),
            persistent_store: true,
        }
    }

    #[test]
    fn a_mon_is_pinned_to_its_node_on_the_host_network() {
        let d = deployment(
            &spec(DaemonKind::Mon, "a"),
            "rookery.local/rookery:0.1.0",
            "rook-ceph",
            Path::new("/var/lib/rook/rook-ceph"),
            &owner(),
        );
        assert_eq!(d["metadata"]["name"], "rook-ceph-mon-a");
        assert_eq!(d["metadata"]["labels"]["app"], "rook-ceph-mon");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "node-1");
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        let c = &pod["containers"][0];
        assert_eq!(c["command"][0], "ceph-mon");
        assert_eq!(
            c["args"],
            json!([
                "-f",
                "--conf",
                "/var/lib/rook/rook-ceph/ceph.conf",
                "-i",
                "a"
            ])
        );
        assert_eq!(c["securityContext"]["privileged"], false);
        assert_eq!(d["metadata"]["ownerReferences"][0]["kind"], "CephCluster");
    }

    #[test]
    fn an_osd_sees_the_hosts_devices_and_a_changed_spec_changes_the_digest() {
        let a = deployment(
            &spec(DaemonKind::Osd, "0"),
            "img:1",
            "rook-ceph",
            Path::new("/d"),
            &owner(),
        );
        assert_eq!(a["metadata"]["name"], "rook-ceph-osd-0");
        assert_eq!(
            a["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"],
            true
        );
        let b = deployment(
            &spec(DaemonKind::Osd, "0"),
            "img:2",
            "rook-ceph",
            Path::new("/d"),
            &owner(),
        );
        assert_ne!(
            a["metadata"]["annotations"]["rookery.io/spec-digest"],
            b["metadata"]["annotations"]["rookery.io/spec-digest"]
        );
        assert_eq!(
            deployment_name(DaemonKind::Rgw, "my-store"),
            "rook-ceph-rgw-my-store-a"
        );
    }

    #[test]
    fn hosts_take_the_annotated_address_and_the_operators_node_comes_first() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "b", "annotations": {ADDRESS_ANNOTATION: "127.0.0.1"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.2"}]},
        }))
        .unwrap();
        let h = host_of(&node).unwrap();
        assert_eq!(h.address.to_string(), "127.0.0.1");
        assert_eq!(h.public_network, "127.0.0.0/8");
        let other: Node = serde_json::from_value(json!({
            "metadata": {"name": "a"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]},
        }))
        .unwrap();
        let o = host_of(&other).unwrap();
        assert_eq!(o.public_network, "10.0.0.5/32");
        let ordered = order_hosts(vec![o.clone(), h.clone()], Some("b"));
        assert_eq!(ordered[0].name, "b");
        let ordered = order_hosts(vec![h, o], None);
        assert_eq!(ordered[0].name, "a");
    }

    #[test]
    fn a_crash_looping_pod_is_reported_as_such() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [{
                "name": "mon", "image": "i", "imageID": "", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }]},
        }))
        .unwrap();
        let s = pod_status("mon.a", Some(&pod));
        assert_eq!(s.state, DaemonState::Restarting);
        assert!(s.crash_looping);
        assert_eq!(s.restarts, 4);
        assert_eq!(s.last_exit.as_deref(), Some("exit code 1 (Error)"));
        assert_eq!(pod_status("mon.a", None).state, DaemonState::Restarting);
    }
}
