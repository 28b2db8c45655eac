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

/// The claims (`namespace/name`) whose volumes are the RBD images `images` of `pool`, from the PVs of
/// rookery's RBD driver; an image no claim owns is named as it is.
pub fn claims_of(pvs: &[Value], pool: &str, images: &[String]) -> Vec<String> {
    images
        .iter()
        .map(|image| {
            pvs.iter()
                .find(|pv| {
                    let handle = pv["spec"]["csi"]["volumeHandle"]
                        .as_str()
                        .unwrap_or_default();
                    pv["spec"]["csi"]["driver"] == "rbd.csi.rookery.io"
                        && handle.rsplit('/').next() == Some(image.as_str())
                        && handle.contains(pool)
                })
                .and_then(|pv| {
                    let c = &pv["spec"]["claimRef"];
                    Some(format!(
                        "PVC {}/{}",
                        c["namespace"].as_str()?,
                        c["name"].as_str()?
                    ))
                })
                .unwrap_or_else(|| format!("image {pool}/{image}"))
        })
        .collect()
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
        assert_eq!(named, ["PVC default/rbd-pvc", "image replicapool/manual"]);
        assert!(destroys_data(
            &json!({"cleanupPolicy": {"confirmation": "yes-really-destroy-data"}})
        ));
        assert!(!destroys_data(
            &json!({"cleanupPolicy": {"confirmation": "yes"}})
        ));
    }
}
