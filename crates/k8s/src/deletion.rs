//! Deletion that never hangs and never loses data. Every resource carries Rook's finalizer
//! (`<kind>.ceph.rook.io`); when one is deleted the operator works out, with the standalone product's
//! teardown planner, what stands in the way: a CephCluster's dependents, the claims whose volumes live in
//! a pool, a filesystem's subvolumes, a store's users and buckets. While anything does, the resource
//! says so (condition DeletionIsBlocked, reason ObjectHasDependents, naming them, and a Warning event);
//! once nothing does, the teardown runs and the finalizer goes, with nobody having to step in.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Rook's finalizer of a kind: `cephcluster.ceph.rook.io`.
pub fn finalizer(kind: &str) -> String {
    format!("{}.ceph.rook.io", kind.to_lowercase())
}

/// The confirmation Rook's `cleanupPolicy` needs before data is destroyed.
pub const DESTROY_DATA: &str = "yes-really-destroy-data";

/// Whether a CephCluster's spec asks for its data to be destroyed with it.
pub fn destroys_data(cluster_spec: &Value) -> bool {
    cluster_spec["cleanupPolicy"]["confirmation"].as_str() == Some(DESTROY_DATA)
}

/// Rook's message for a CephCluster with dependents: `CephCluster "ns/name" will not be deleted until
/// all dependents are removed: CephBlockPool: [a b], CephFilesystem: [c]`.
pub fn dependents_message(
    kind: &str,
    ns: &str,
    name: &str,
    dependents: &BTreeMap<String, Vec<String>>,
) -> String {
    let list: Vec<String> = dependents
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(kind, names)| format!("{kind}: [{}]", names.join(" ")))
        .collect();
    format!(
        "{kind} \"{ns}/{name}\" will not be deleted until all dependents are removed: {}",
        list.join(", ")
    )
}

/// The status conditions of a blocked deletion: phase Deleting, DeletionIsBlocked naming what blocks.
pub fn blocked_status(previous: &Value, message: &str, now: &str) -> Value {
    let mut conditions: Vec<Value> = previous
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !matches!(c["type"].as_str(), Some("Deleting" | "DeletionIsBlocked")))
        .collect();
    let since = |kind: &str| {
        previous["conditions"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == kind && c["message"] == message)
            })
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_string()
    };
    conditions.push(json!({
        "type": "Deleting", "status": "True", "reason": "Deleting",
        "message": "Deleting the resource", "lastHeartbeatTime": now,
        "lastTransitionTime": since("Deleting"),
    }));
    conditions.push(json!({
        "type": "DeletionIsBlocked", "status": "True", "reason": "ObjectHasDependents",
        "message": message, "lastHeartbeatTime": now,
        "lastTransitionTime": since("DeletionIsBlocked"),
    }));
    json!({"phase": "Deleting", "message": message, "conditions": conditions})
}

/// The claims (`PVC namespace/name`) whose volumes are `volumes` of `container` (a pool's RBD images, a
/// filesystem's subvolumes), from the PVs of rookery's CSI drivers (volume handle `<container>/<volume>`);
/// a volume no claim owns is named as it is.
pub fn claims_of(pvs: &[Value], container: &str, volumes: &[String]) -> Vec<String> {
    volumes
        .iter()
        .map(|volume| {
            let wanted = format!("{container}/{volume}");
            pvs.iter()
                .find(|pv| {
                    let handle = pv["spec"]["csi"]["volumeHandle"]
                        .as_str()
                        .unwrap_or_default();
                    let ours = pv["spec"]["csi"]["driver"]
                        .as_str()
                        .is_some_and(|d| d.ends_with(".csi.rookery.io"));
                    ours && (handle == wanted || handle.ends_with(&format!("/{wanted}")))
                })
                .and_then(|pv| {
                    let c = &pv["spec"]["claimRef"];
                    Some(format!(
                        "PVC {}/{}",
                        c["namespace"].as_str()?,
                        c["name"].as_str()?
                    ))
                })
                .unwrap_or_else(|| format!("volume {wanted}"))
        })
        .collect()
}

/// Removes a deleted CephFilesystemSubVolumeGroup's group from its filesystem, as Rook does: None once
/// it is gone (or was never made), else the subvolumes it still holds, which block the deletion.
fn remove_subvolume_group(
    rados: &rookery_ceph::Rados,
    o: &kube::api::DynamicObject,
) -> Result<Option<Vec<String>>, rookery_ceph::CephError> {
    use rookery_ceph::commands::subvolume;
    let Ok(spec) =
        serde_json::from_value::<crate::resources::SubVolumeGroupSpec>(o.data["spec"].clone())
    else {
        return Ok(None);
    };
    let group = spec.group_name(o.metadata.name.as_deref().unwrap_or_default());
    let fs = spec.filesystem_name.as_str();
    let gone = rookery_ceph::CephError::is_not_found;
    match subvolume::ls_in_group(rados, fs, &group) {
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
        Ok(held) if !held.is_empty() => return Ok(Some(held)),
        Ok(_) => {}
    }
    match subvolume::group_rm(rados, fs, &group) {
        Err(e) if !gone(&e) => Err(e),
        _ => {
            tracing::info!(%fs, %group, "subvolume group removed");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizers_and_messages_as_rook_words_them() {
        assert_eq!(finalizer("CephCluster"), "cephcluster.ceph.rook.io");
        assert_eq!(finalizer("CephBlockPool"), "cephblockpool.ceph.rook.io");
        let deps = BTreeMap::from([
            (
                "CephBlockPool".to_string(),
                vec!["builtin-mgr".to_string(), "replicapool".to_string()],
            ),
            ("CephFilesystem".to_string(), vec!["myfs".to_string()]),
            ("CephObjectStore".to_string(), vec![]),
        ]);
        assert_eq!(
            dependents_message("CephCluster", "rook-ceph", "my-cluster", &deps),
            "CephCluster \"rook-ceph/my-cluster\" will not be deleted until all dependents are removed: CephBlockPool: [builtin-mgr replicapool], CephFilesystem: [myfs]"
        );
    }

    #[test]
    fn a_blocked_deletion_keeps_its_transition_time() {
        let first = blocked_status(
            &json!({"conditions": [{"type": "Ready", "status": "True"}]}),
            "m",
            "t1",
        );
        assert_eq!(first["phase"], "Deleting");
        let types: Vec<&str> = first["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Ready", "Deleting", "DeletionIsBlocked"]);
        let second = blocked_status(&first, "m", "t2");
        assert_eq!(second["conditions"][2]["lastTransitionTime"], "t1");
        assert_eq!(second["conditions"][2]["reason"], "ObjectHasDependents");
    }

    #[test]
    fn volumes_are_named_by_their_claims() {
        let pvs = vec![json!({"spec": {
            "csi": {"driver": "rbd.csi.rookery.io", "volumeHandle": "fsid/replicapool/csi-vol-1"},
            "claimRef": {"namespace": "default", "name": "rbd-pvc"}}})];
        let named = claims_of(&pvs, "replicapool", &["csi-vol-1".into(), "manual".into()]);
        assert_eq!(named, ["PVC default/rbd-pvc", "volume replicapool/manual"]);
        assert!(destroys_data(
            &json!({"cleanupPolicy": {"confirmation": "yes-really-destroy-data"}})
        ));
        assert!(!destroys_data(
            &json!({"cleanupPolicy": {"confirmation": "yes"}})
        ));
    }
}

/// What to do about a CephCluster this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterDeletion {
    NotDeleting,
    /// Deleted, but dependents remain: said in its status.
    Blocked,
    /// Deleted and nothing depends on it: stop the reconcile loop and clean up.
    CleanUp,
}

/// The I/O of deletion: finalizers, blocked statuses, teardowns.
pub struct Deleter {
    ns: String,
    recorder: kube::runtime::events::Recorder,
    /// The last blocked message of each object, so a Warning event is written once per change.
    warned: BTreeMap<(String, String), String>,
}

fn has_finalizer(o: &kube::api::DynamicObject, kind: &str) -> bool {
    o.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.contains(&finalizer(kind)))
}

impl Deleter {
    pub fn new(ns: &str, client: kube::Client) -> Deleter {
        Deleter {
            ns: ns.to_string(),
            recorder: kube::runtime::events::Recorder::new(
                client,
                kube::runtime::events::Reporter {
                    controller: "rookery-operator".into(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            ),
            warned: BTreeMap::new(),
        }
    }

    /// Puts Rook's finalizer on every live resource that lacks it (with the object's resourceVersion, so
    /// a concurrent change of its finalizers is not overwritten).
    pub fn add_finalizers(
        &self,
        rt: &tokio::runtime::Runtime,
        resources: &crate::resources::Resources,
    ) {
        for (kind, _) in crate::resources::KINDS
            .iter()
            .chain(crate::resources::EXTRA_KINDS.iter())
        {
            let Some(api) = resources.api(kind) else {
                continue;
            };
            for o in resources.of_kind(kind) {
                if o.metadata.deletion_timestamp.is_some() || has_finalizer(&o, kind) {
                    continue;
                }
                let mut list = o.metadata.finalizers.clone().unwrap_or_default();
                list.push(finalizer(kind));
                let patch = json!({"metadata": {"finalizers": list, "resourceVersion": o.metadata.resource_version}});
                let name = o.metadata.name.clone().unwrap_or_default();
                if let Err(e) = rt.block_on(api.patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )) {
                    tracing::debug!(%kind, %name, error = %e, "adding the finalizer");
                }
            }
        }
    }

    /// Removes Rook's finalizer: the API server then deletes the object.
    pub fn remove_finalizer(
        &self,
        rt: &tokio::runtime::Runtime,
        resources: &crate::resources::Resources,
        kind: &str,
        o: &kube::api::DynamicObject,
    ) -> anyhow::Result<()> {
        let api = resources
            .api(kind)
            .ok_or_else(|| anyhow::anyhow!("no API for {kind}"))?;
        let list: Vec<String> = o
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| *f != finalizer(kind))
            .collect();
        let patch = json!({"metadata": {"finalizers": list, "resourceVersion": o.metadata.resource_version}});
        let name = o.metadata.name.clone().unwrap_or_default();
        rt.block_on(api.patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        ))?;
        tracing::info!(%kind, %name, "deleted");
        Ok(())
    }

    /// Says in the object's status (and once per change in a Warning event) what blocks its deletion.
    fn blocked(
        &mut self,
        rt: &tokio::runtime::Runtime,
        resources: &crate::resources::Resources,
        kind: &str,
        o: &kube::api::DynamicObject,
        message: &str,
        now: &str,
    ) {
        let name = o.metadata.name.clone().unwrap_or_default();
        let previous = o.data.get("status").cloned().unwrap_or(json!({}));
        let status = blocked_status(&previous, message, now);
        if let Some(api) = resources.api(kind) {
            let unchanged =
                crate::status::without_times(&previous) == crate::status::without_times(&status);
            if !unchanged {
                let patch = json!({"status": status});
                if let Err(e) = rt.block_on(api.patch_status(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )) {
                    tracing::debug!(%kind, %name, error = %e, "writing status");
                }
            }
        }
        let key = (kind.to_string(), name.clone());
        if self.warned.get(&key).map(String::as_str) != Some(message) {
            self.warned.insert(key, message.to_string());
            use kube::Resource as _;
            let plural = crate::resources::KINDS
                .iter()
                .chain(crate::resources::EXTRA_KINDS.iter())
                .find(|(k, _)| *k == kind)
                .map(|(_, p)| *p)
                .unwrap_or_default();
            let reference = o.object_ref(&crate::resources::api_resource(kind, plural));
            let event = kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Warning,
                reason: "ReconcileFailed".into(),
                note: Some(message.chars().take(1000).collect()),
                action: "Delete".into(),
                secondary: None,
            };
            if let Err(e) = rt.block_on(self.recorder.publish(&event, &reference)) {
                tracing::debug!(error = %e, "publishing an event");
            }
        }
    }

    /// The CephCluster: blocked while any resource of its namespace remains.
    pub fn cluster(
        &mut self,
        rt: &tokio::runtime::Runtime,
        resources: &crate::resources::Resources,
        now: &str,
    ) -> ClusterDeletion {
        let Some(cluster) = resources.cluster() else {
            return ClusterDeletion::NotDeleting;
        };
        if cluster.metadata.deletion_timestamp.is_none() || !has_finalizer(&cluster, "CephCluster")
        {
            return ClusterDeletion::NotDeleting;
        }
        let dependents: BTreeMap<String, Vec<String>> = crate::resources::KINDS
            .iter()
            .skip(1)
            .chain(crate::resources::EXTRA_KINDS.iter())
            .map(|(kind, _)| {
                let names = resources
                    .of_kind(kind)
                    .iter()
                    .filter_map(|o| o.metadata.name.clone())
                    .collect();
                (kind.to_string(), names)
            })
            .collect();
        if dependents.values().all(Vec::is_empty) {
            return ClusterDeletion::CleanUp;
        }
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let message = dependents_message("CephCluster", &self.ns, &name, &dependents);
        self.blocked(rt, resources, "CephCluster", &cluster, &message, now);
        ClusterDeletion::Blocked
    }

    /// Deletes what each deleted pool, filesystem, object store, user or subvolume group stands for in
    /// Ceph, or says what stands in the way.
    #[allow(clippy::too_many_arguments)]
    pub fn resources(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &kube::Client,
        resources: &crate::resources::Resources,
        layout: &rookery_orchestrator::Layout,
        rados: &rookery_ceph::Rados,
        stores: &dyn rookery_platform::Stores,
        gateway_address: std::net::IpAddr,
        now: &str,
    ) {
        use rookery_orchestrator::teardown::{self, Blocker};
        let deleting: Vec<(&str, std::sync::Arc<kube::api::DynamicObject>)> =
            crate::resources::KINDS
                .iter()
                .skip(1)
                .chain(crate::resources::EXTRA_KINDS.iter())
                .flat_map(|(kind, _)| resources.of_kind(kind).into_iter().map(move |o| (*kind, o)))
                .filter(|(kind, o)| {
                    o.metadata.deletion_timestamp.is_some() && has_finalizer(o, kind)
                })
                .collect();
        if deleting.is_empty() {
            return;
        }
        let current = match rookery_spec::load(&resources.spec_text_including_deleted()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "the resources are invalid; deletions wait");
                return;
            }
        };
        let port_of = |store: &str| {
            current
                .object_stores
                .iter()
                .find(|s| s.metadata.name == store)
                .and_then(|s| u16::try_from(s.spec.gateway.port).ok())
        };
        let admin_of = |store: &str| {
            rookery_orchestrator::objectstore::admin(
                layout,
                store,
                gateway_address,
                port_of(store)?,
            )
            .ok()
            .flatten()
        };
        for (kind, o) in deleting {
            let name = o.metadata.name.clone().unwrap_or_default();
            if kind == "CephFilesystemSubVolumeGroup" {
                match remove_subvolume_group(rados, &o) {
                    Ok(None) => {
                        if let Err(e) = self.remove_finalizer(rt, resources, kind, &o) {
                            tracing::warn!(%kind, %name, error = %e, "removing the finalizer");
                        }
                    }
                    Ok(Some(subvolumes)) => {
                        let message = format!(
                            "{kind} \"{}/{name}\" will not be deleted until these are removed: subvolumes {}",
                            self.ns,
                            subvolumes.join(", ")
                        );
                        self.blocked(rt, resources, kind, &o, &message, now);
                    }
                    Err(e) => {
                        tracing::warn!(%kind, %name, error = %e, "removing the subvolume group")
                    }
                }
                continue;
            }
            let gone = [(kind.to_string(), name.clone())];
            let plan = teardown::Teardown::of(&current, &gone);
            let found = match teardown::observe(rados, layout, &plan, &admin_of) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(%kind, %name, error = %e, "looking for what a deletion would remove");
                    continue;
                }
            };
            let blockers = teardown::blockers(&plan, &current, &found, false);
            if !blockers.is_empty() {
                let needs_claims = blockers.iter().any(|b| {
                    matches!(
                        b,
                        Blocker::PoolHasVolumes { .. } | Blocker::FilesystemHasSubvolumes { .. }
                    )
                });
                let pvs: Vec<Value> = if needs_claims {
                    let api: kube::Api<k8s_openapi::api::core::v1::PersistentVolume> =
                        kube::Api::all(client.clone());
                    rt.block_on(api.list(&Default::default()))
                        .map(|l| {
                            l.items
                                .iter()
                                .filter_map(|pv| serde_json::to_value(pv).ok())
                                .collect()
                        })
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                let parts: Vec<String> = blockers
                    .iter()
                    .map(|b| match b {
                        Blocker::PoolHasVolumes { pool, volumes } => {
                            format!(
                                "pool {pool} holds volumes of {}",
                                claims_of(&pvs, pool, volumes).join(", ")
                            )
                        }
                        Blocker::FilesystemHasSubvolumes { fs, subvolumes } => {
                            format!(
                                "filesystem {fs} holds volumes of {}",
                                claims_of(&pvs, fs, subvolumes).join(", ")
                            )
                        }
                        other => other.to_string(),
                    })
                    .collect();
                let message = format!(
                    "{kind} \"{}/{name}\" will not be deleted until these are removed: {}",
                    self.ns,
                    parts.join("; ")
                );
                self.blocked(rt, resources, kind, &o, &message, now);
                continue;
            }
            let result = (|| -> anyhow::Result<()> {
                if kind == "CephObjectStoreUser" {
                    teardown::remove_object_users(&plan, &admin_of)?;
                    teardown::forget_users(layout, &plan.users);
                    if let Some(store) = o.data["spec"]["store"].as_str() {
                        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
                            kube::Api::namespaced(client.clone(), &self.ns);
                        let secret = crate::rook_objects::user_secret_name(store, &name);
                        match rt.block_on(secrets.delete(&secret, &Default::default())) {
                            Err(kube::Error::Api(s)) if s.code == 404 => {}
                            other => {
                                other?;
                            }
                        }
                    }
                }
                let steps = plan.steps(false, &found.buckets);
                teardown::execute(rados, layout, stores, &steps, &admin_of)?;
                Ok(())
            })();
            match result {
                Ok(()) => {
                    if let Err(e) = self.remove_finalizer(rt, resources, kind, &o) {
                        tracing::warn!(%kind, %name, error = %e, "removing the finalizer");
                    }
                }
                Err(e) => tracing::warn!(%kind, %name, error = format!("{e:#}"), "deleting"),
            }
        }
    }
}
