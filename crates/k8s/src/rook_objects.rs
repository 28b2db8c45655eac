//! The Kubernetes objects Rook users and their tools look for, kept current after each pass: the mons'
//! ConfigMap `rook-ceph-mon-endpoints` and Secret `rook-ceph-mon`, each object store user's Secret
//! `rook-ceph-object-user-<store>-<user>` (AccessKey, SecretKey, Endpoint), and the subvolume groups of
//! CephFilesystemSubVolumeGroup resources.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::Result;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use rookery_ceph::Rados;
use rookery_orchestrator::{ClusterState, Layout};
use serde_json::{json, Value};

use crate::resources::{Resources, SubVolumeGroupSpec};

/// The name of a user's Secret, as Rook names it.
pub fn user_secret_name(store: &str, user: &str) -> String {
    format!("rook-ceph-object-user-{store}-{user}")
}

/// `rook-ceph-mon-endpoints`: `data` is `a=ADDR:PORT,...` (msgr1 ports, as Rook writes them),
/// `mapping` where each mon runs.
pub fn mon_endpoints(state: &ClusterState, ns: &str, owner: &OwnerReference) -> Value {
    let data: Vec<String> = state
        .mons
        .iter()
        .map(|m| {
            format!(
                "{}={}",
                m.id,
                std::net::SocketAddr::new(m.address, m.v1_port)
            )
        })
        .collect();
    let node: BTreeMap<&str, Value> = state
        .mons
        .iter()
        .map(|m| {
            let host = m.host.clone().unwrap_or_default();
            (
                m.id.as_str(),
                json!({"Name": host, "Hostname": host, "Address": m.address.to_string()}),
            )
        })
        .collect();
    let max_id = state.mons.len().saturating_sub(1);
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "rook-ceph-mon-endpoints", "namespace": ns, "ownerReferences": [owner],
                     "annotations": {"ceph.rook.io/disaster-protection": "true"}},
        "data": {
            "data": data.join(","),
            "maxMonId": max_id.to_string(),
            "mapping": json!({"node": node}).to_string(),
            "csi-cluster-config-json": "[]",
        },
    })
}

fn secret(
    ns: &str,
    name: &str,
    owner: &OwnerReference,
    labels: Value,
    data: BTreeMap<&str, String>,
) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/rook",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner], "labels": labels},
        "stringData": data,
    })
}

/// Where a store's gateway serves: the home node's address and the store's port.
pub fn endpoint(address: IpAddr, port: u16) -> String {
    format!("http://{}", std::net::SocketAddr::new(address, port))
}

pub struct RookObjects {
    ns: String,
    owner: OwnerReference,
    /// Digest of each object last written, by name.
    written: BTreeMap<String, String>,
    /// Subvolume groups made, by (filesystem, group).
    groups: std::collections::BTreeSet<(String, String)>,
}

impl RookObjects {
    pub fn new(ns: &str, owner: &OwnerReference) -> RookObjects {
        RookObjects {
            ns: ns.to_string(),
            owner: owner.clone(),
            written: BTreeMap::new(),
            groups: Default::default(),
        }
    }

    fn apply(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &kube::Client,
        object: &Value,
    ) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let digest = rookery_orchestrator::spec_digest(&object.to_string());
        let key = format!("{kind}/{name}");
        if self.written.get(&key) == Some(&digest) {
            return Ok(());
        }
        crate::apply::core_object(rt, client, &self.ns, object)?;
        self.written.insert(key, digest);
        Ok(())
    }

    /// Brings every object up to date; errors are logged and tried again on the next call.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &kube::Client,
        resources: &Resources,
        state: &ClusterState,
        layout: &Layout,
        rados: Option<&Rados>,
        converged: bool,
    ) {
        let mut objects = vec![mon_endpoints(state, &self.ns, &self.owner)];
        let admin = std::fs::read_to_string(layout.admin_keyring())
            .ok()
            .and_then(|t| key_of(&t));
        let mon = std::fs::read_to_string(layout.mon_keyring())
            .ok()
            .and_then(|t| key_of(&t));
        if let (Some(admin), Some(mon)) = (admin, mon) {
            objects.push(secret(
                &self.ns,
                "rook-ceph-mon",
                &self.owner,
                json!({"app.kubernetes.io/managed-by": "rookery"}),
                BTreeMap::from([
                    ("fsid", state.fsid.clone()),
                    ("cluster-name", self.ns.clone()),
                    ("admin-secret", admin),
                    ("mon-secret", mon),
                ]),
            ));
        }
        let address = state.mons.first().map(|m| m.address);
        let stores: BTreeMap<String, u16> = resources
            .of_kind("CephObjectStore")
            .iter()
            .filter_map(|s| {
                Some((
                    s.metadata.name.clone()?,
                    u16::try_from(s.data["spec"]["gateway"]["port"].as_u64()?).ok()?,
                ))
            })
            .collect();
        for user in resources.of_kind("CephObjectStoreUser") {
            let (Some(name), Some(store)) = (
                user.metadata.name.clone(),
                user.data["spec"]["store"].as_str(),
            ) else {
                continue;
            };
            let Ok(Some(keys)) =
                rookery_orchestrator::objectstore::read(&layout.rgw_user(store, &name))
            else {
                continue;
            };
            let (Some(port), Some(address)) = (stores.get(store), address) else {
                continue;
            };
            objects.push(secret(
                &self.ns,
                &user_secret_name(store, &name),
                &self.owner,
                json!({"app": "rook-ceph-rgw", "rook_cluster": self.ns, "rook_object_store": store, "user": name}),
                BTreeMap::from([
                    ("AccessKey", keys.access_key.clone()),
                    ("SecretKey", keys.secret_key.clone()),
                    ("Endpoint", endpoint(address, *port)),
                ]),
            ));
        }
        for object in objects {
            if let Err(e) = self.apply(rt, client, &object) {
                tracing::warn!(error = format!("{e:#}"), "writing Rook's objects");
            }
        }
        if let (Some(r), true) = (rados, converged) {
            self.subvolume_groups(rt, resources, r);
        }
    }

    /// Makes each CephFilesystemSubVolumeGroup's group once its filesystem exists, and says so in its status.
    fn subvolume_groups(&mut self, rt: &tokio::runtime::Runtime, resources: &Resources, r: &Rados) {
        let Some(api) = resources.api("CephFilesystemSubVolumeGroup") else {
            return;
        };
        for g in resources.of_kind("CephFilesystemSubVolumeGroup") {
            let Some(name) = g.metadata.name.clone() else {
                continue;
            };
            if g.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let spec = serde_json::from_value::<SubVolumeGroupSpec>(g.data["spec"].clone());
            let (phase, message) = match spec {
                Err(e) => (
                    "Failure",
                    format!("spec: {e}; set spec.filesystemName to the CephFilesystem's name"),
                ),
                Ok(spec) => self.make_group(r, &spec, &name),
            };
            let ready = phase == "Ready";
            let current = g.data["status"]["phase"] == phase
                && g.data["status"]["message"] == message.as_str()
                && (!ready
                    || g.data["status"]["observedGeneration"] == json!(g.metadata.generation));
            if current {
                continue;
            }
            let status = json!({"status": {"phase": phase, "message": message,
                "observedGeneration": if ready { json!(g.metadata.generation) } else { Value::Null }}});
            if let Err(e) = rt.block_on(api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&status),
            )) {
                tracing::debug!(group = %name, error = %e, "writing status");
            }
        }
    }

    /// Makes a group once; the phase and message of its status.
    fn make_group(
        &mut self,
        r: &Rados,
        spec: &SubVolumeGroupSpec,
        object_name: &str,
    ) -> (&'static str, String) {
        let fs = spec.filesystem_name.clone();
        let group = spec.group_name(object_name);
        let key = (fs.clone(), group.clone());
        if self.groups.contains(&key) {
            ("Ready", String::new())
        } else {
            match rookery_ceph::commands::subvolume::group_create(r, &fs, &group) {
                Ok(()) => {
                    self.groups.insert(key);
                    ("Ready", String::new())
                }
                Err(e) => (
                    "Progressing",
                    format!("making subvolume group {group} in {fs}: {e}"),
                ),
            }
        }
    }
}

/// The `key = ...` of a keyring's first entry.
fn key_of(keyring: &str) -> Option<String> {
    keyring.lines().find_map(|l| {
        let (k, v) = l.trim().split_once('=')?;
        (k.trim() == "key").then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_orchestrator::state::MonRecord;

    #[test]
    fn mon_endpoints_as_rook_writes_them() {
        let state = ClusterState {
            name: "my-cluster".into(),
            fsid: "f".into(),
            mons: vec![MonRecord {
                id: "a".into(),
                host: Some("node-1".into()),
                address: "10.0.0.5".parse().unwrap(),
                v2_port: 3300,
                v1_port: 6789,
            }],
            osds: vec![],
            created_unix: 0,
            ceph_version: None,
            config_applied: Default::default(),
            config_settled: None,
            member_user: None,
            removed: false,
        };
        let cm = mon_endpoints(&state, "rook-ceph", &OwnerReference::default());
        assert_eq!(cm["data"]["data"], "a=10.0.0.5:6789");
        assert_eq!(cm["data"]["maxMonId"], "0");
        let mapping: Value = serde_json::from_str(cm["data"]["mapping"].as_str().unwrap()).unwrap();
        assert_eq!(mapping["node"]["a"]["Name"], "node-1");
        assert_eq!(
            user_secret_name("my-store", "my-user"),
            "rook-ceph-object-user-my-store-my-user"
        );
        assert_eq!(
            key_of("[client.admin]\n\tkey = AQ==\n"),
            Some("AQ==".into())
        );
    }
}
