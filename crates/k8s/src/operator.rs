//! `rookery operator`: the orchestrator of the standalone product, fed by the namespace's ceph.rook.io
//! resources and running daemons through the Kubernetes platform. Only the holder of the Lease
//! `rookery-operator` acts; it never stops the daemons when it exits (another replica, or the restarted
//! pod, takes over the running cluster).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::Resource as _;
use rookery_orchestrator::reconcile_loop::{self, LoopView};
use rookery_orchestrator::{ClusterState, Layout, Reconciler, SharedPlatform};
use serde_json::{json, Value};

use crate::platform::{Context, KubePlatform};
use crate::resources::{ResourceSource, Resources, SpecProblem};
use crate::status::{self, Health, Observation};
use crate::{mirror, resources};

pub struct Options {
    /// The namespace whose CephCluster this operator runs.
    pub namespace: String,
    /// The image daemons run (normally the operator's own).
    pub image: String,
    /// This replica's name in the Lease (its pod name).
    pub identity: String,
    /// The node it runs on.
    pub node: Option<String>,
    /// Replaces every CephCluster's `dataDirHostPath` (tests keep the host's /var/lib/rook untouched).
    pub data_dir_host_path: Option<String>,
    /// The first mon's v2 port (v1 is the next); 3300 when unset.
    pub mon_port: Option<u16>,
    /// `useAllDevices` may take loop devices (Rook's ROOK_CEPH_ALLOW_LOOP_DEVICES).
    pub allow_loop_devices: bool,
    /// The namespace of the CSI drivers (deploy/csi/), where their ConfigMap and Secrets go.
    pub csi_namespace: String,
}

const LEASE: &str = "rookery-operator";

pub fn run(options: Options) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = rt
        .block_on(kube::Client::try_default())
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let shutdown = shutdown.clone();
        rt.spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("asked to stop; the daemons keep running");
            shutdown.store(true, Ordering::SeqCst);
        });
    }

    tracing::info!(identity = %options.identity, "waiting to lead (Lease {LEASE})");
    let mut leading = rt.block_on(async {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), LEASE)
            .with_namespace(&options.namespace)
            .with_identity(&options.identity)
            .with_duration(15)
            .with_grace(5)
            .with_create_mode(kube_lease_manager::LeaseCreateMode::AutoCreate)
            .build()
            .await?;
        let (rx, _task) = manager.watch().await;
        Ok::<_, anyhow::Error>(rx)
    })?;
    rt.block_on(async {
        while !*leading.borrow_and_update() {
            if shutdown.load(Ordering::SeqCst) {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), leading.changed()).await;
        }
    });
    if shutdown.load(Ordering::SeqCst) {
        return Ok(());
    }
    tracing::info!("leading");
    {
        let shutdown = shutdown.clone();
        let mut leading = leading.clone();
        rt.spawn(async move {
            while leading.changed().await.is_ok() {
                if !*leading.borrow() {
                    tracing::warn!("lost the Lease; stopping so that only one operator acts");
                    shutdown.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
    }

    let resources = {
        let _guard = rt.enter();
        Resources::start(client.clone(), &options.namespace)
    };
    if !rt.block_on(resources.ready(Duration::from_secs(60))) {
        bail!("could not list the ceph.rook.io resources of {}; are the CRDs (deploy/operator) applied and the RBAC in place?", options.namespace);
    }
    let cluster = loop {
        if let Some(c) = resources.cluster() {
            break c;
        }
        if shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
    let owner = owner_of(&cluster)?;
    let host_path = options.data_dir_host_path.clone().unwrap_or_else(|| {
        cluster.data["spec"]["dataDirHostPath"]
            .as_str()
            .unwrap_or("/var/lib/rook")
            .to_string()
    });
    let data_dir = PathBuf::from(host_path).join(&options.namespace);
    let layout = Layout::new(&data_dir);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &options.namespace);
    if let Some(files) = rt.block_on(mirror::load(&secrets))? {
        mirror::restore(&layout.root, &files)?;
        tracing::info!(files = files.len(), "restored the cluster's state");
    }
    for dir in layout.dirs() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    rookery_orchestrator::state::HostPolicy {
        allow_loop_devices: options.allow_loop_devices,
        member: None,
    }
    .save(&layout)?;

    let ctx = Arc::new(Context {
        handle: rt.handle().clone(),
        client: client.clone(),
        namespace: options.namespace.clone(),
        image: options.image.clone(),
        data_dir: data_dir.clone(),
        owner: owner.clone(),
        operator_node: options.node.clone(),
    });
    let platform = rt.block_on(KubePlatform::start(ctx.clone()))?;
    let node_stores = platform.node_stores();
    let platform: SharedPlatform = Arc::new(Mutex::new(platform));

    let problem: SpecProblem = Arc::new(Mutex::new(None));
    let mut source = ResourceSource {
        resources: resources.clone(),
        text: String::new(),
        problem: problem.clone(),
    };
    let mut writer = StatusWriter::new(
        &rt,
        client.clone(),
        resources.clone(),
        problem.clone(),
        node_stores.clone(),
    );
    // The first valid spec: until then, say what is wrong in the CephCluster's status.
    let (text, desired) = loop {
        match source.load() {
            Ok(found) => break found,
            Err(e) => {
                *problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                writer.publish(&LoopView::default());
            }
        }
        if shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    *problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
    source.text = text.clone();

    if ClusterState::load(&layout)?.is_none() {
        // A new cluster never starts on another cluster's stores (left by a CephCluster deleted without
        // cleanupPolicy): it would take that mon store as its own.
        loop {
            let home = platform
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .hosts()
                .into_iter()
                .next();
            let Some(home) = home else { break };
            let report = node_stores.node_report(&home.name)?;
            let left = stale_stores(&report, &data_dir, &home.name);
            let Some(message) = left else { break };
            *problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
            writer.publish(&LoopView::default());
            if shutdown.load(Ordering::SeqCst) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(3));
        }
        *problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let host = platform
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hosts()
            .into_iter()
            .next()
            .context("no Node has an address daemons can serve on")?;
        // One mon per node unless several may share one (mons on further nodes: not yet, reported).
        let first_mons = if desired.mon_allow_multiple {
            &desired.mon_ids[..]
        } else {
            &desired.mon_ids[..desired.mon_ids.len().min(1)]
        };
        let ports: Vec<(u16, u16)> = (0..first_mons.len())
            .map(|i| {
                let base = options.mon_port.unwrap_or(3300) + 2 * i as u16;
                // Rook's ports: msgr2 on 3300, msgr1 on 6789.
                if options.mon_port.is_none() && i == 0 {
                    (3300, 6789)
                } else {
                    (base, base + 1)
                }
            })
            .collect();
        rookery_orchestrator::create_cluster(&layout, &cluster_name, first_mons, &ports, &host)?;
        rt.block_on(mirror::save(
            &secrets,
            &mirror::collect(&layout.root),
            &owner,
        ))?;
        tracing::info!(cluster = %cluster_name, node = %host.name, "new cluster");
    }

    let reconciler = Reconciler::new(layout.clone(), desired, platform.clone())?;
    let mut deleter = crate::deletion::Deleter::new(&options.namespace, client.clone());
    let clean_up = AtomicBool::new(false);
    let hand_over = AtomicBool::new(true);
    let mut mirrored = mirror::collect(&layout.root);
    let mut csi =
        crate::csi_wiring::CsiWiring::new(&options.namespace, &options.csi_namespace, &owner);
    let mut csi_tried: Option<Instant> = None;
    let mut rook_objects = crate::rook_objects::RookObjects::new(&options.namespace, &owner);
    reconcile_loop::run(reconciler, source, text, &shutdown, &hand_over, |view| {
        if let (Some(r), Some(state)) = (&view.rados, &view.state) {
            let due = csi_tried.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
            if due {
                csi_tried = Some(Instant::now());
                if let Err(e) = csi.wire(&rt, &client, r, state) {
                    tracing::warn!(error = format!("{e:#}"), "wiring the CSI drivers");
                }
            }
        }
        let now = now_rfc3339();
        deleter.add_finalizers(&rt, &resources);
        if deleter.cluster(&rt, &resources, &now) == crate::deletion::ClusterDeletion::CleanUp {
            tracing::info!("the CephCluster is deleted and nothing depends on it: cleaning up");
            clean_up.store(true, Ordering::SeqCst);
            shutdown.store(true, Ordering::SeqCst);
            return;
        }
        if let (Some(r), Some(state)) = (&view.rados, &view.state) {
            let address = state.mons.first().map(|m| m.address);
            if let Some(address) = address {
                deleter.resources(
                    &rt,
                    &client,
                    &resources,
                    &layout,
                    r,
                    node_stores.as_ref(),
                    address,
                    &now,
                );
            }
        }
        if let Some(state) = &view.state {
            rook_objects.sync(
                &rt,
                &client,
                &resources,
                state,
                &layout,
                view.rados.as_deref(),
                view.plan.steps.is_empty(),
            );
        }
        let files = mirror::collect(&layout.root);
        if files != mirrored {
            match rt.block_on(mirror::save(&secrets, &files, &owner)) {
                Ok(()) => mirrored = files,
                Err(e) => tracing::warn!(error = %e, "mirroring the cluster's state"),
            }
        }
        if view.state.is_some() {
            writer.publish(&view);
        }
    });
    if clean_up.load(Ordering::SeqCst) {
        clean_up_cluster(
            &rt,
            &resources,
            &platform,
            &node_stores,
            &layout,
            &secrets,
            &deleter,
        )?;
    }
    Ok(())
}

/// A deleted CephCluster with nothing depending on it: its daemons stop; with Rook's cleanupPolicy
/// confirmation its OSDs' devices are released (only their labels, and only where the label names
/// one of its OSDs) and its data dir leaves every node; then its finalizer goes. Without the
/// confirmation the data stays on the nodes, as with Rook.
fn clean_up_cluster(
    rt: &tokio::runtime::Runtime,
    resources: &Resources,
    platform: &SharedPlatform,
    stores: &Arc<crate::platform::KubeStores>,
    layout: &Layout,
    secrets: &Api<Secret>,
    deleter: &crate::deletion::Deleter,
) -> Result<()> {
    let Some(cluster) = resources.cluster() else {
        return Ok(());
    };
    rookery_orchestrator::stop_every_daemon(
        &mut *platform.lock().unwrap_or_else(|p| p.into_inner()),
    );
    tracing::info!("every daemon is stopped");
    if crate::deletion::destroys_data(&cluster.data["spec"]) {
        use rookery_platform::Stores as _;
        if let Some(state) = ClusterState::load(layout)? {
            for osd in &state.osds {
                let Some(id) = osd.id else { continue };
                let device = osd.device.as_ref().and_then(|_| stores.osd_block(id));
                stores
                    .release_osd(id, &osd.uuid, device.as_deref())
                    .with_context(|| format!("releasing osd.{id}"))?;
            }
        }
        stores
            .purge_nodes()
            .context("removing the data dir from the nodes")?;
        tracing::info!("the cluster's data is destroyed, as its cleanupPolicy confirms");
    }
    match rt.block_on(secrets.delete(mirror::SECRET, &Default::default())) {
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        other => {
            other?;
        }
    }
    deleter.remove_finalizer(rt, resources, "CephCluster", &cluster)?;
    Ok(())
}

/// Where the reconciler's events not yet published start in its window of recent events: just after
/// the last one published, found again; when that one scrolled out of the window, from its second on;
/// before anything was published, from this operator's start.
pub fn unpublished(
    events: &[rookery_orchestrator::Event],
    last: Option<&(u64, String)>,
    started: u64,
) -> usize {
    let from_second = |unix: u64| {
        events
            .iter()
            .position(|e| e.unix >= unix)
            .unwrap_or(events.len())
    };
    match last {
        None => from_second(started),
        Some((unix, message)) => events
            .iter()
            .rposition(|e| e.unix == *unix && e.message == *message)
            .map(|i| i + 1)
            .unwrap_or_else(|| from_second(*unix)),
    }
}

/// Why a new cluster cannot start on `node`: its data dir holds stores a cluster made before (None
/// when it holds none).
pub fn stale_stores(
    report: &crate::node::NodeStatus,
    data_dir: &std::path::Path,
    node: &str,
) -> Option<String> {
    if report.ready.is_empty() {
        return None;
    }
    let which = report
        .fsid
        .as_deref()
        .map(|f| format!("cluster {f}"))
        .unwrap_or_else(|| "another cluster".into());
    Some(format!(
        "node {node}: {} holds the stores of {which} ({}), left by a CephCluster deleted without cleanupPolicy; \
         nothing was created. Remove that folder on the node to start a new cluster (its data is lost), \
         or set dataDirHostPath to another folder",
        data_dir.display(),
        report.ready.iter().cloned().collect::<Vec<_>>().join(", ")
    ))
}

fn owner_of(o: &DynamicObject) -> Result<OwnerReference> {
    Ok(OwnerReference {
        api_version: format!("{}/{}", resources::GROUP, resources::VERSION),
        kind: "CephCluster".into(),
        name: o
            .metadata
            .name
            .clone()
            .context("the CephCluster has no name")?,
        uid: o
            .metadata
            .uid
            .clone()
            .context("the CephCluster has no uid")?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Writes resources' status (when it changed, or a minute passed) and the reconciler's events.
struct StatusWriter<'a> {
    rt: &'a tokio::runtime::Runtime,
    resources: Resources,
    problem: SpecProblem,
    recorder: Recorder,
    /// What was last written per (kind, name), without its clock fields, and when.
    written: BTreeMap<(String, String), (Value, Instant)>,
    health: Option<(Health, Instant)>,
    /// The last reconciler event published (when, what), and when this operator started.
    last_event: Option<(u64, String)>,
    started_unix: u64,
    nodes: Arc<crate::platform::KubeStores>,
    /// The device lines last announced in an Event, per node.
    devices_said: BTreeMap<String, Vec<String>>,
}

impl<'a> StatusWriter<'a> {
    fn new(
        rt: &'a tokio::runtime::Runtime,
        client: kube::Client,
        resources: Resources,
        problem: SpecProblem,
        nodes: Arc<crate::platform::KubeStores>,
    ) -> StatusWriter<'a> {
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: "rookery-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        StatusWriter {
            rt,
            resources,
            problem,
            recorder,
            written: BTreeMap::new(),
            health: None,
            last_event: None,
            started_unix: rookery_orchestrator::now_unix(),
            nodes,
            devices_said: BTreeMap::new(),
        }
    }

    /// Ceph's health and capacity, asked at most every 5 s.
    fn health(&mut self, view: &LoopView) -> Option<Health> {
        if let Some((h, at)) = &self.health {
            if at.elapsed() < Duration::from_secs(5) {
                return Some(h.clone());
            }
        }
        let r = view.rados.as_ref()?;
        let st = rookery_ceph::commands::cluster::status(r).ok()?;
        let df = rookery_ceph::commands::cluster::df(r).ok();
        let h = Health {
            status: st.health.status.clone(),
            details: st
                .health
                .checks
                .iter()
                .map(|(code, c)| {
                    (
                        code.clone(),
                        (c.severity.clone(), c.summary.message.clone()),
                    )
                })
                .collect(),
            bytes_total: df.as_ref().map(|d| d.stats.total_bytes).unwrap_or(0),
            bytes_used: df
                .as_ref()
                .map(|d| d.stats.total_used_raw_bytes)
                .unwrap_or(0),
            bytes_available: df.as_ref().map(|d| d.stats.total_avail_bytes).unwrap_or(0),
            osds: (
                st.osdmap.num_up_osds,
                st.osdmap.num_in_osds,
                st.osdmap.num_osds,
            ),
            pgs: (
                st.pgmap
                    .pgs_by_state
                    .iter()
                    .filter(|p| p.state_name == "active+clean")
                    .map(|p| p.count)
                    .sum(),
                st.pgmap.num_pgs,
            ),
        };
        self.health = Some((h.clone(), Instant::now()));
        Some(h)
    }

    fn publish(&mut self, view: &LoopView) {
        let now = now_rfc3339();
        let health = self.health(view);
        let observation = Observation {
            steps: view.plan.steps.iter().map(|s| format!("{s:?}")).collect(),
            waiting: view.plan.waiting.clone(),
            blocked: view.plan.blocked.clone(),
            problems: view.plan.problems.clone(),
            last_error: view.last_error.clone(),
            spec_problem: self
                .problem
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            notices: view.notices.clone(),
            health,
            fsid: view
                .state
                .as_ref()
                .map(|s| s.fsid.clone())
                .unwrap_or_default(),
            devices: if view.plan.devices.is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([(
                    view.state
                        .as_ref()
                        .and_then(|s| s.mons.first())
                        .and_then(|m| m.host.clone())
                        .unwrap_or_default(),
                    view.plan.devices.clone(),
                )])
            },
            operator_rss_mib: rookery_platform::proc::rss_bytes(std::process::id()).unwrap_or(0)
                >> 20,
            agents_rss_mib: self.nodes.agents_rss_mib(),
        };
        if let Some(cluster) = self
            .resources
            .cluster()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
        {
            let previous = cluster.data.get("status").cloned().unwrap_or(json!({}));
            let status =
                status::cluster_status(&previous, cluster.metadata.generation, &observation, &now);
            self.write("CephCluster", &cluster, status);
            self.events(view, &cluster);
            self.device_events(&observation, &cluster);
        }
        let converged = view.plan.steps.is_empty() && view.state.is_some();
        for (kind, _) in resources::KINDS.iter().skip(1) {
            for o in self.resources.of_kind(kind) {
                if o.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let previous = o.data.get("status").cloned().unwrap_or(json!({}));
                let problem = observation.spec_problem.as_deref();
                let pending = (!converged).then_some("the cluster is being reconciled");
                let status = status::resource_status(
                    &previous,
                    o.metadata.generation,
                    pending,
                    problem,
                    &now,
                );
                self.write(kind, &o, status);
            }
        }
    }

    fn write(&mut self, kind: &str, o: &DynamicObject, status: Value) {
        let Some(name) = o.metadata.name.clone() else {
            return;
        };
        let key = (kind.to_string(), name.clone());
        let bare = status::without_times(&status);
        if let Some((last, at)) = self.written.get(&key) {
            if *last == bare && at.elapsed() < Duration::from_secs(60) {
                return;
            }
        }
        let Some(api) = self.resources.api(kind) else {
            return;
        };
        let patch = json!({"status": status});
        match self.rt.block_on(api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )) {
            Ok(_) => {
                self.written.insert(key, (bare, Instant::now()));
            }
            Err(e) => tracing::debug!(%kind, %name, error = %e, "writing status"),
        }
    }

    /// Each node's device plan, as an Event on the CephCluster whenever it changes: why a disk is
    /// skipped is in `kubectl describe`, not in a job's log.
    fn device_events(&mut self, o: &Observation, cluster: &DynamicObject) {
        for (node, plans) in &o.devices {
            let lines: Vec<String> = plans.iter().map(status::device_line).collect();
            if self.devices_said.get(node) == Some(&lines) {
                continue;
            }
            let ar = resources::api_resource("CephCluster", "cephclusters");
            let event = KubeEvent {
                type_: EventType::Normal,
                reason: "DevicePlan".into(),
                note: Some(
                    format!("node {node}: {}", lines.join("; "))
                        .chars()
                        .take(1000)
                        .collect(),
                ),
                action: "SelectDevices".into(),
                secondary: None,
            };
            match self
                .rt
                .block_on(self.recorder.publish(&event, &cluster.object_ref(&ar)))
            {
                Ok(()) => {
                    self.devices_said.insert(node.clone(), lines);
                }
                Err(e) => tracing::debug!(error = %e, "publishing the device plan"),
            }
        }
    }

    /// The reconciler's new events, as Kubernetes Events on the CephCluster (`kubectl describe`).
    fn events(&mut self, view: &LoopView, cluster: &DynamicObject) {
        let ar = resources::api_resource("CephCluster", "cephclusters");
        let reference = cluster.object_ref(&ar);
        let events = &view.events;
        let from = unpublished(events, self.last_event.as_ref(), self.started_unix);
        for e in &events[from..] {
            let event = KubeEvent {
                type_: EventType::Normal,
                reason: e.action.clone().unwrap_or_else(|| "Reconciling".into()),
                note: Some(e.message.chars().take(1000).collect()),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(err) = self.rt.block_on(self.recorder.publish(&event, &reference)) {
                tracing::debug!(error = %err, "publishing an event");
            }
        }
        if let Some(last) = events.last() {
            self.last_event = Some((last.unix, last.message.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(unix: u64, message: &str) -> rookery_orchestrator::Event {
        rookery_orchestrator::Event {
            unix,
            message: message.into(),
            action: None,
        }
    }

    #[test]
    fn events_of_one_second_are_all_published_once() {
        let events = vec![ev(9, "old"), ev(10, "a"), ev(10, "b"), ev(10, "c")];
        assert_eq!(unpublished(&events, None, 10), 1);
        assert_eq!(unpublished(&events, Some(&(10, "a".into())), 10), 2);
        assert_eq!(unpublished(&events, Some(&(10, "c".into())), 10), 4);
        // The last one published scrolled out of the window: from its second on.
        assert_eq!(unpublished(&events[2..], Some(&(10, "a".into())), 10), 0);
    }

    #[test]
    fn a_new_cluster_refuses_another_clusters_stores() {
        let mut report = crate::node::NodeStatus::default();
        let dir = std::path::Path::new("/var/lib/rook/rook-ceph");
        assert_eq!(stale_stores(&report, dir, "n1"), None);
        report.ready.insert("mon.a".into());
        report.fsid = Some("f00".into());
        let m = stale_stores(&report, dir, "n1").unwrap();
        assert!(
            m.contains("node n1") && m.contains("cluster f00") && m.contains("mon.a"),
            "{m}"
        );
        assert!(m.contains("/var/lib/rook/rook-ceph"), "{m}");
    }
}
