//! The CSI drivers wired to the in-cluster Ceph, as Rook does it: once the mons answer, the operator
//! makes one Ceph user per driver (never client.admin) and writes what the drivers of deploy/csi/ read
//! (ConfigMap `rookery-ceph-config` with ceph.conf and the clusterID, Secrets `rookery-csi-rbd` and
//! `rookery-csi-cephfs`, in the drivers' namespace) and the Secrets that Rook's StorageClasses name
//! (`rook-csi-rbd-provisioner`, `rook-csi-rbd-node`, `rook-csi-cephfs-provisioner`,
//! `rook-csi-cephfs-node`, in the cluster's namespace). StorageClasses use the cluster's namespace as
//! their clusterID, as with Rook.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rookery_ceph::Rados;
use rookery_orchestrator::external::ExternalAccess;
use rookery_orchestrator::ClusterState;
use serde_json::{json, Value};

/// The ConfigMap with the cluster's ceph.conf and the clusterID StorageClasses name.
pub const CONFIG_MAP: &str = "rookery-ceph-config";

/// The drivers, by the short name of their Secret and files.
pub const DRIVERS: [&str; 2] = ["rbd", "cephfs"];

/// The Secret with a driver's Ceph user.
pub fn driver_secret_name(short: &str) -> String {
    format!("rookery-csi-{short}")
}

/// The objects to write: (namespace, manifest).
pub fn objects(
    access: &ExternalAccess,
    cluster_ns: &str,
    csi_ns: &str,
    owner: &OwnerReference,
) -> Vec<(String, Value)> {
    let labels =
        json!({"app.kubernetes.io/part-of": "rookery", "app.kubernetes.io/managed-by": "rookery"});
    let mut out = vec![(
        csi_ns.to_string(),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "namespace": csi_ns, "labels": labels},
            "data": {"ceph.conf": access.ceph_conf(), "clusterID": cluster_ns},
        }),
    )];
    let secret = |ns: &str, name: &str, data: BTreeMap<&str, String>, owned: bool| {
        let mut metadata = json!({"name": name, "namespace": ns, "labels": labels});
        // Owner references work within a namespace only.
        if owned {
            metadata["ownerReferences"] = json!([owner]);
        }
        (
            ns.to_string(),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata, "stringData": data}),
        )
    };
    for d in &access.drivers {
        let short = d.driver.split('.').next().unwrap_or(d.driver);
        out.push(secret(
            csi_ns,
            &driver_secret_name(short),
            BTreeMap::from([("userID", d.user.to_string()), ("userKey", d.key.clone())]),
            csi_ns == cluster_ns,
        ));
        let data = match short {
            // Rook's CephFS secrets carry the provisioner's identity as adminID/adminKey.
            "cephfs" => {
                BTreeMap::from([("adminID", d.user.to_string()), ("adminKey", d.key.clone())])
            }
            _ => BTreeMap::from([("userID", d.user.to_string()), ("userKey", d.key.clone())]),
        };
        for role in ["provisioner", "node"] {
            out.push(secret(
                cluster_ns,
                &format!("rook-csi-{short}-{role}"),
                data.clone(),
                true,
            ));
        }
    }
    out
}

/// Where the CSI objects go, and what was last written there.
pub struct CsiWiring {
    pub cluster_ns: String,
    pub csi_ns: String,
    pub owner: OwnerReference,
    /// A digest of the objects last written.
    written: Option<String>,
}

impl CsiWiring {
    pub fn new(cluster_ns: &str, csi_ns: &str, owner: &OwnerReference) -> CsiWiring {
        CsiWiring {
            cluster_ns: cluster_ns.to_string(),
            csi_ns: csi_ns.to_string(),
            owner: owner.clone(),
            written: None,
        }
    }

    /// Makes the drivers' users and writes the objects when they changed since the last write.
    pub fn wire(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &kube::Client,
        rados: &Rados,
        state: &ClusterState,
    ) -> Result<()> {
        let access = rookery_orchestrator::external::csi_access(rados, state)
            .context("making the CSI drivers' Ceph users")?;
        let objects = objects(&access, &self.cluster_ns, &self.csi_ns, &self.owner);
        let digest = rookery_orchestrator::spec_digest(&serde_json::to_string(&objects)?);
        if self.written.as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        for (ns, object) in &objects {
            crate::apply::core_object(rt, client, ns, object)?;
        }
        tracing::info!(namespace = %self.csi_ns, "CSI drivers wired to the cluster");
        self.written = Some(digest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_orchestrator::external::DriverCredentials;

    #[test]
    fn rooks_secret_names_and_keys_are_written() {
        let access = ExternalAccess {
            fsid: "f".into(),
            mon_host: "[v2:127.0.0.1:3300/0]".into(),
            drivers: vec![
                DriverCredentials {
                    driver: "rbd.csi.rookery.io",
                    user: "rookery-csi-rbd",
                    key: "K1".into(),
                },
                DriverCredentials {
                    driver: "cephfs.csi.rookery.io",
                    user: "rookery-csi-cephfs",
                    key: "K2".into(),
                },
            ],
        };
        let owner = OwnerReference {
            name: "c".into(),
            ..Default::default()
        };
        let objects = objects(&access, "rook-ceph", "rookery-csi", &owner);
        let find = |name: &str| {
            objects
                .iter()
                .find(|(_, o)| o["metadata"]["name"] == name)
                .unwrap()
                .clone()
        };
        let (ns, cm) = find("rookery-ceph-config");
        assert_eq!(ns, "rookery-csi");
        assert_eq!(cm["data"]["clusterID"], "rook-ceph");
        assert!(cm["data"]["ceph.conf"]
            .as_str()
            .unwrap()
            .contains("mon_host"));
        let (ns, s) = find("rook-csi-rbd-provisioner");
        assert_eq!(ns, "rook-ceph");
        assert_eq!(s["stringData"]["userID"], "rookery-csi-rbd");
        let (_, s) = find("rook-csi-cephfs-node");
        assert_eq!(s["stringData"]["adminKey"], "K2");
        let (_, s) = find("rookery-csi-rbd");
        assert!(s["metadata"].get("ownerReferences").is_none());
    }
}
