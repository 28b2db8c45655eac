//! `rookery agent`: one pod per node (a DaemonSet), the operator's hands on that node. It reads the
//! node's block devices, and carries out what the operator's `rookery-node-<node>` Secret asks of the
//! node's data dir (ceph.conf, keyrings, mon and OSD stores, OSD block links and releases) with the same
//! code the standalone cluster uses ([`DataDirStores`]), then reports in the ConfigMap of the same name.
//! Nothing listens on the node: both directions go through the API server, so RBAC decides who may ask.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams};
use rookery_platform::local_stores::DataDirStores;
use rookery_platform::{DaemonKind, Stores};
use tokio::sync::watch;

use crate::node::{self, NodeDesired, NodeStatus};

/// How often the node's devices are read again.
const DEVICE_PERIOD: Duration = Duration::from_secs(2);

pub struct Options {
    pub namespace: String,
    pub node: String,
    /// Where the CSI node plugins of the agent's pod read their configuration ([`crate::csi_files`]).
    pub csi_config_dir: Option<PathBuf>,
}

/// Runs until the process is stopped.
pub async fn run(client: kube::Client, options: Options) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &options.namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &options.namespace);
    let csi_files = options.csi_config_dir.clone().map(|dir| {
        tokio::spawn(crate::csi_files::follow(
            client,
            options.namespace.clone(),
            dir,
        ))
    });
    let name = node::object_name(&options.node);
    let (desired_tx, mut desired_rx) = watch::channel::<Option<NodeDesired>>(None);
    // The Secret, followed: a change reaches the node within the watch's latency.
    let follow = {
        let secrets = secrets.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(kube::runtime::watcher::watch_object(secrets, &name));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(secret) => {
                        let desired = secret.as_ref().and_then(desired_of);
                        desired_tx.send_replace(desired);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching the node's desired state");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    };
    tracing::info!(node = %options.node, namespace = %options.namespace, "agent started");
    let mut status = NodeStatus::default();
    let mut published: Option<NodeStatus> = None;
    let mut carried_out: Option<NodeDesired> = None;
    loop {
        let desired = desired_rx.borrow_and_update().clone();
        if let Some(d) = desired.filter(|d| carried_out.as_ref() != Some(d)) {
            let before = status.clone();
            let d2 = d.clone();
            status = tokio::task::spawn_blocking(move || converge(&d2, before))
                .await
                .context("the node's work panicked")?;
            carried_out = Some(d);
        }
        let data_dir = carried_out.as_ref().map(|d| d.data_dir.clone());
        status.devices = tokio::task::spawn_blocking(rookery_platform::devices::inventory)
            .await
            .unwrap_or_default();
        let purged = carried_out.as_ref().is_some_and(|d| d.purge);
        if let Some(dir) = data_dir.filter(|_| !purged) {
            status = tokio::task::spawn_blocking(move || {
                let mut s = status;
                observe(Path::new(&dir), &mut s);
                s
            })
            .await
            .context("reading the node's data dir panicked")?;
        }
        status.agent_rss_mib =
            rookery_platform::proc::rss_bytes(std::process::id()).unwrap_or(0) >> 20;
        if published.as_ref() != Some(&status) {
            match publish(&config_maps, &name, &options.node, &status).await {
                Ok(()) => published = Some(status.clone()),
                Err(e) => tracing::warn!(error = %e, "writing the node's status"),
            }
        }
        tokio::select! {
            _ = desired_rx.changed() => {}
            _ = tokio::time::sleep(DEVICE_PERIOD) => {}
        }
        if follow.is_finished() {
            anyhow::bail!("the watch on {name} ended");
        }
        if csi_files.as_ref().is_some_and(|t| t.is_finished()) {
            anyhow::bail!("following the CSI drivers' configuration ended");
        }
    }
}

fn desired_of(secret: &Secret) -> Option<NodeDesired> {
    let bytes = secret.data.as_ref()?.get(node::DESIRED_KEY)?;
    match serde_json::from_slice(&bytes.0) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(error = %e, "the node's desired state is unreadable; ignored");
            None
        }
    }
}

async fn publish(api: &Api<ConfigMap>, name: &str, node: &str, status: &NodeStatus) -> Result<()> {
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {node::NODE_LABEL: node, node::ROLE_LABEL: "status"},
        },
        "data": {node::STATUS_KEY: serde_json::to_string(status)?},
    });
    api.patch(
        name,
        &PatchParams::apply("rookery-agent").force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// Carries out the desired state on the node's data dir, every request independent of the others: one
/// that fails is named in the status and tried again with the next change.
pub fn converge(desired: &NodeDesired, mut status: NodeStatus) -> NodeStatus {
    status.errors.clear();
    status.data_dir = desired.data_dir.clone();
    let root = PathBuf::from(&desired.data_dir);
    if desired.data_dir.is_empty() || !root.is_absolute() {
        status
            .errors
            .insert("dataDir".into(), "no data dir given".into());
        status.serial = desired.serial;
        return status;
    }
    if desired.purge {
        match std::fs::remove_dir_all(&root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                status
                    .errors
                    .insert("purge".into(), format!("{}: {e}", root.display()));
            }
            _ => tracing::info!(dir = %root.display(), "the cluster's data dir is removed"),
        }
        status.ready.clear();
        status.keyrings.clear();
        status.osd_blocks.clear();
        status.data_locations.clear();
        status.serial = desired.serial;
        return status;
    }
    if let Err(e) = make_dirs(&root) {
        status.errors.insert("dataDir".into(), e);
        status.serial = desired.serial;
        return status;
    }
    let stores = DataDirStores { root: root.clone() };
    if let Some(conf) = &desired.conf {
        let path = root.join("ceph.conf");
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(conf.as_str()) {
            if let Err(e) = rookery_ceph::conf::write_atomic(&path, conf.as_bytes(), 0o644) {
                status.errors.insert("conf".into(), e.to_string());
            }
        }
    }
    for (daemon, keyring) in &desired.keyrings {
        if let Err(e) = stores.put_keyring(daemon, &keyring.into()) {
            status.errors.insert(daemon.clone(), e.to_string());
        }
    }
    for daemon in &desired.forget {
        if let Err(e) = stores.forget(daemon) {
            status.errors.insert(daemon.clone(), e.to_string());
        }
    }
    for r in &desired.releases {
        if let Err(e) = stores.release_osd(r.id, &r.uuid, r.device.as_deref()) {
            status
                .errors
                .insert(format!("release.osd.{}", r.id), e.to_string());
        }
    }
    for (id, device) in &desired.osd_links {
        if stores.osd_block(*id).as_deref() != Some(device.as_path()) {
            if let Err(e) = stores.link_osd_block(*id, device) {
                status.errors.insert(format!("osd.{id}"), e.to_string());
            }
        }
    }
    // Stores side by side: an OSD's mkfs takes seconds.
    let failures: Vec<(String, String)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = desired
            .stores
            .iter()
            .map(|(daemon, store)| {
                let stores = &stores;
                scope.spawn(move || {
                    let request = store.into();
                    stores
                        .prepare(&request)
                        .err()
                        .map(|e| (daemon.clone(), e.to_string()))
                })
            })
            .collect();
        jobs.into_iter()
            .filter_map(|j| {
                j.join()
                    .unwrap_or_else(|_| Some(("store".into(), "panicked".into())))
            })
            .collect()
    });
    for (daemon, error) in failures {
        tracing::warn!(%daemon, %error, "making a store failed");
        status.errors.insert(daemon, error);
    }
    observe(&root, &mut status);
    status.serial = desired.serial;
    status
}

fn make_dirs(root: &Path) -> Result<(), String> {
    for dir in [
        "", "keyring", "mon", "mgr", "osd", "mds", "rgw", "log", "run", "crash",
    ] {
        let path = root.join(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// What the data dir holds now: ready stores, keyrings, OSD block links, data locations.
fn observe(root: &Path, status: &mut NodeStatus) {
    let stores = DataDirStores {
        root: root.to_path_buf(),
    };
    let mut daemons: Vec<String> = stores.with_keyrings();
    for kind in [DaemonKind::Mon, DaemonKind::Osd] {
        let dir = root.join(kind.as_str());
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if let Some(id) = name.strip_prefix("ceph-").filter(|id| !id.contains('.')) {
                daemons.push(rookery_platform::daemon_name(kind, id));
            }
        }
    }
    daemons.sort();
    daemons.dedup();
    status.fsid = std::fs::read_to_string(root.join("ceph.conf"))
        .ok()
        .and_then(|t| {
            rookery_ceph::conf::CephConf::parse(&t)
                .get("global", "fsid")
                .map(str::to_string)
        });
    status.ready = daemons
        .iter()
        .filter(|d| stores.is_ready(d))
        .cloned()
        .collect();
    status.keyrings = daemons
        .iter()
        .filter(|d| stores.has_keyring(d))
        .cloned()
        .collect();
    status.data_locations = daemons
        .iter()
        .filter_map(|d| Some((d.clone(), stores.data_location(d)?)))
        .collect::<BTreeMap<_, _>>();
    status.osd_blocks = daemons
        .iter()
        .filter_map(|d| {
            let id: u32 = d.strip_prefix("osd.")?.parse().ok()?;
            Some((id, stores.osd_block(id)?))
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Keyring;

    #[test]
    fn converge_writes_conf_and_keyrings_and_reports_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rook-ceph");
        let mut desired = NodeDesired {
            serial: 7,
            data_dir: root.display().to_string(),
            conf: Some("[global]\nfsid = x\n".into()),
            ..Default::default()
        };
        desired.keyrings.insert(
            "mgr.a".into(),
            Keyring {
                entity: "mgr.a".into(),
                key: "AQBzbm90YXJlYWxrZXkAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
                caps: vec![],
            },
        );
        let status = converge(&desired, NodeStatus::default());
        assert_eq!(status.serial, 7);
        assert!(status.errors.is_empty(), "{:?}", status.errors);
        assert_eq!(
            std::fs::read_to_string(root.join("ceph.conf")).unwrap(),
            "[global]\nfsid = x\n"
        );
        assert!(status.keyrings.contains("mgr.a"), "{status:?}");
        assert!(!status.ready.contains("mgr.a"));
    }

    #[test]
    fn purge_removes_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rook-ceph");
        std::fs::create_dir_all(root.join("mon/ceph-a")).unwrap();
        let desired = NodeDesired {
            serial: 2,
            data_dir: root.display().to_string(),
            purge: true,
            ..Default::default()
        };
        let status = converge(&desired, NodeStatus::default());
        assert!(status.errors.is_empty(), "{:?}", status.errors);
        assert!(!root.exists());
        assert!(dir.path().exists(), "only the cluster's own folder goes");
    }

    #[test]
    fn a_relative_data_dir_is_refused() {
        let desired = NodeDesired {
            serial: 1,
            data_dir: "var/lib/rook".into(),
            ..Default::default()
        };
        let status = converge(&desired, NodeStatus::default());
        assert!(status.errors.contains_key("dataDir"));
        assert_eq!(status.serial, 1);
    }
}
