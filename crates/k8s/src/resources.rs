//! The ceph.rook.io resources of one namespace, watched, and turned into the spec text the orchestrator
//! reads (the same YAML a standalone cluster keeps in `spec.yaml`), so every validation and default of
//! the standalone product applies unchanged to what users apply with kubectl.

use std::sync::{Arc, Mutex};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use rookery_orchestrator::reconcile_loop::SpecSource;
use rookery_orchestrator::Desired;

use crate::cache;

pub const GROUP: &str = "ceph.rook.io";
pub const VERSION: &str = "v1";

/// The kinds the operator reconciles, in the order their documents go into the spec text.
pub const KINDS: [(&str, &str); 5] = [
    ("CephCluster", "cephclusters"),
    ("CephBlockPool", "cephblockpools"),
    ("CephFilesystem", "cephfilesystems"),
    ("CephObjectStore", "cephobjectstores"),
    ("CephObjectStoreUser", "cephobjectstoreusers"),
];

/// Kinds the operator acts on outside the orchestrator's spec (a CephFilesystem's subvolume groups).
pub const EXTRA_KINDS: [(&str, &str); 1] = [(
    "CephFilesystemSubVolumeGroup",
    "cephfilesystemsubvolumegroups",
)];

/// CephFilesystemSubVolumeGroup's spec: the fields rookery reads (Rook's others are kept and ignored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubVolumeGroupSpec {
    /// The CephFilesystem the group is made in.
    pub filesystem_name: String,
    /// The group's name in the filesystem; the object's name when unset.
    #[serde(default)]
    pub name: Option<String>,
}

impl SubVolumeGroupSpec {
    /// The group's name in the filesystem: `spec.name`, else the object's name (as in Rook).
    pub fn group_name(&self, object_name: &str) -> String {
        self.name.clone().unwrap_or_else(|| object_name.to_string())
    }
}

pub fn api_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

/// Watched copies of every ceph.rook.io resource in the namespace.
#[derive(Clone)]
pub struct Resources {
    pub namespace: String,
    pub client: kube::Client,
    stores: Vec<(&'static str, ApiResource, Store<DynamicObject>)>,
}

impl Resources {
    /// Starts the watches; call on the runtime.
    pub fn start(client: kube::Client, namespace: &str) -> Resources {
        let stores = KINDS
            .iter()
            .chain(EXTRA_KINDS.iter())
            .map(|(kind, plural)| {
                let ar = api_resource(kind, plural);
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
                let store = cache::follow_typed(api, watcher::Config::default(), ar.clone());
                (*kind, ar, store)
            })
            .collect();
        Resources {
            namespace: namespace.to_string(),
            client,
            stores,
        }
    }

    pub async fn ready(&self, limit: std::time::Duration) -> bool {
        for (_, _, s) in &self.stores {
            if !cache::ready(s, limit).await {
                return false;
            }
        }
        true
    }

    /// Every object of `kind`, by name.
    pub fn of_kind(&self, kind: &str) -> Vec<Arc<DynamicObject>> {
        let mut objects: Vec<Arc<DynamicObject>> = self
            .stores
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .flat_map(|(_, _, s)| s.state())
            .collect();
        objects.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        objects
    }

    pub fn api(&self, kind: &str) -> Option<Api<DynamicObject>> {
        let (_, ar, _) = self.stores.iter().find(|(k, _, _)| *k == kind)?;
        Some(Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            ar,
        ))
    }

    /// The namespace's CephCluster (Rook allows one per namespace: the oldest counts).
    pub fn cluster(&self) -> Option<Arc<DynamicObject>> {
        self.of_kind("CephCluster")
            .into_iter()
            .min_by_key(|c| c.metadata.creation_timestamp.as_ref().map(|t| t.0))
    }

    /// The spec text of everything applied and not being deleted.
    pub fn spec_text(&self) -> String {
        self.text(false)
    }

    /// The spec text with the resources being deleted too (what a teardown removes them from).
    pub fn spec_text_including_deleted(&self) -> String {
        self.text(true)
    }

    fn text(&self, with_deleted: bool) -> String {
        let objects: Vec<(String, Arc<DynamicObject>)> = KINDS
            .iter()
            .flat_map(|(kind, _)| {
                self.of_kind(kind)
                    .into_iter()
                    .map(move |o| (kind.to_string(), o))
            })
            .collect();
        spec_text(&objects, with_deleted)
    }
}

/// The documents the orchestrator reads: each object's kind, name, namespace and spec, nothing the API
/// server added (uid, managedFields, status).
pub fn spec_text(objects: &[(String, Arc<DynamicObject>)], with_deleted: bool) -> String {
    let mut text = String::new();
    for (kind, o) in objects {
        if o.metadata.deletion_timestamp.is_some() && !with_deleted {
            continue;
        }
        let doc = serde_json::json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": kind,
            "metadata": {"name": o.metadata.name, "namespace": o.metadata.namespace},
            "spec": o.data.get("spec").cloned().unwrap_or(serde_json::json!({})),
        });
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(&doc).unwrap_or_default());
    }
    text
}

/// Why the newest spec was not taken, for the CephCluster's status.
pub type SpecProblem = Arc<Mutex<Option<String>>>;

/// The reconcile loop's source of desired state: the namespace's resources.
pub struct ResourceSource {
    pub resources: Resources,
    pub text: String,
    pub problem: SpecProblem,
}

impl ResourceSource {
    /// The current resources as desired state, or why they cannot be.
    pub fn load(&self) -> Result<(String, Desired), String> {
        let text = self.resources.spec_text();
        let res = rookery_spec::load(&text).map_err(|e| e.to_string())?;
        let desired = Desired::from_resources(&res)
            .ok_or_else(|| format!("namespace {} has no CephCluster", self.resources.namespace))?;
        Ok((text, desired))
    }
}

impl SpecSource for ResourceSource {
    fn changed(&mut self) -> Option<(String, Desired)> {
        let text = self.resources.spec_text();
        if text == self.text {
            return None;
        }
        self.text = text;
        match self.load() {
            Ok(found) => {
                *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Some(found)
            }
            Err(e) => {
                tracing::error!(error = %e, "the resources are invalid; keeping the last good spec");
                *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(yaml: &str) -> Arc<DynamicObject> {
        Arc::new(serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn the_spec_text_keeps_what_users_wrote_and_drops_the_servers_fields() {
        let cluster = object(
            "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata:\n  name: my-cluster\n  namespace: rook-ceph\n  uid: abc\n  resourceVersion: '5'\nspec:\n  mon: {count: 1, allowMultiplePerNode: true}\n  storage: {useAllNodes: true, useAllDevices: true}\nstatus: {phase: Ready}\n",
        );
        let gone = object(
            "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata:\n  name: old\n  namespace: rook-ceph\n  deletionTimestamp: '2026-01-01T00:00:00Z'\nspec: {replicated: {size: 1}}\n",
        );
        let text = spec_text(
            &[
                ("CephCluster".into(), cluster),
                ("CephBlockPool".into(), gone),
            ],
            false,
        );
        assert!(
            !text.contains("uid") && !text.contains("resourceVersion"),
            "{text}"
        );
        assert!(!text.contains("status") && !text.contains("old"), "{text}");
        let res = rookery_spec::load(&text).unwrap();
        let desired = Desired::from_resources(&res).unwrap();
        assert_eq!(desired.name, "my-cluster");
        assert_eq!(desired.mon_ids.len(), 1);
    }
}
