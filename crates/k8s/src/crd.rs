//! The CustomResourceDefinitions of the ceph.rook.io kinds rookery reconciles (`rookery crds`), under
//! Rook's names, so Rook's manifests apply unchanged. Each spec's schema is generated from the Rust type
//! the spec is read into, so the API server refuses a wrong type (`mon.count: three`) at once. The
//! schemas keep every other field (a field of Rook's that rookery does not support is reported in the
//! resource's status by the operator, never pruned in silence); the values are then checked by the same
//! code as the standalone product's `rookery apply`.

use rookery_spec::{ClusterSpec, FilesystemSpec, ObjectStoreSpec, ObjectUserSpec, PoolSpec};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::resources::{SubVolumeGroupSpec, EXTRA_KINDS, GROUP, KINDS, VERSION};

/// The openAPIV3Schema of a kind's spec.
fn spec_schema(kind: &str) -> Value {
    match kind {
        "CephCluster" => structural_schema::<ClusterSpec>(),
        "CephBlockPool" => structural_schema::<PoolSpec>(),
        "CephFilesystem" => structural_schema::<FilesystemSpec>(),
        "CephObjectStore" => structural_schema::<ObjectStoreSpec>(),
        "CephObjectStoreUser" => structural_schema::<ObjectUserSpec>(),
        "CephFilesystemSubVolumeGroup" => structural_schema::<SubVolumeGroupSpec>(),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    }
}

/// A type's schema in the structural form Kubernetes takes: inlined, without defaults (the operator
/// applies them, so an object stays as its author wrote it), optional fields as `nullable`, and every
/// object keeping the fields the type does not name.
fn structural_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    make_structural(&mut schema);
    schema
}

fn make_structural(schema: &mut Value) {
    let Value::Object(m) = schema else {
        return;
    };
    for key in [
        "$schema",
        "title",
        "default",
        "components",
        "definitions",
        "$defs",
    ] {
        m.remove(key);
    }
    // An Option<T> whose T has no type of its own (a quantity) comes as `anyOf: [T, null]`.
    if let Some(Value::Array(branches)) = m.get_mut("anyOf") {
        let before = branches.len();
        branches.retain(|b| !is_null_branch(b));
        let had_null = branches.len() < before;
        if branches.len() == 1 {
            if let Some(Value::Object(only)) = branches.pop() {
                m.remove("anyOf");
                for (k, v) in only {
                    m.entry(k).or_insert(v);
                }
            }
        }
        if had_null {
            m.insert("nullable".into(), Value::Bool(true));
        }
    }
    if m.contains_key("properties") {
        m.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
    if let Some(Value::Object(properties)) = m.get_mut("properties") {
        properties.values_mut().for_each(make_structural);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = m.get_mut(key) {
            make_structural(v);
        }
    }
    if let Some(Value::Array(branches)) = m.get_mut("anyOf") {
        branches.iter_mut().for_each(make_structural);
    }
}

fn is_null_branch(branch: &Value) -> bool {
    let null = Value::Null;
    branch.get("type") == Some(&Value::String("null".into()))
        || branch
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| e == &vec![null])
        || branch
            == &Value::Object(Map::from_iter([(
                "nullable".to_string(),
                Value::Bool(true),
            )]))
}

/// Printer columns, as Rook's CRDs have them (`kubectl get cephcluster` shows health at a glance).
fn columns(kind: &str) -> Value {
    match kind {
        "CephCluster" => json!([
            {"name": "DataDirHostPath", "type": "string", "jsonPath": ".spec.dataDirHostPath", "description": "Directory used on the K8s nodes"},
            {"name": "MonCount", "type": "string", "jsonPath": ".spec.mon.count", "description": "Number of MONs"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Phase"},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "description": "Message"},
            {"name": "Health", "type": "string", "jsonPath": ".status.ceph.health", "description": "Ceph Health"},
            {"name": "External", "type": "boolean", "jsonPath": ".spec.external.enable"},
            {"name": "FSID", "type": "string", "jsonPath": ".status.ceph.fsid", "description": "Ceph FSID"},
        ]),
        _ => json!([
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]),
    }
}

fn short_names(kind: &str) -> Value {
    match kind {
        "CephCluster" => json!(["ceph"]),
        "CephBlockPool" => json!(["cephbp"]),
        "CephFilesystem" => json!(["cephfs"]),
        "CephObjectStore" => json!(["cephos"]),
        "CephObjectStoreUser" => json!(["rcou", "objectuser"]),
        "CephFilesystemSubVolumeGroup" => json!(["cephfssvg"]),
        _ => json!([]),
    }
}

/// One CRD.
pub fn crd(kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_lowercase(),
                "shortNames": short_names(kind),
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns(kind),
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["metadata", "spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(kind),
                        "status": {"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true},
                    },
                }},
            }],
        },
    })
}

/// Every CRD, as one YAML stream.
pub fn yaml() -> String {
    let mut out = String::from("# Generated by `rookery crds`; do not edit.\n");
    for (kind, plural) in KINDS.into_iter().chain(EXTRA_KINDS) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd(kind, plural)).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_crd_with_status_and_columns() {
        let text = yaml();
        for (kind, plural) in KINDS {
            assert!(
                text.contains(&format!("name: {plural}.ceph.rook.io")),
                "{kind}"
            );
        }
        let c = crd("CephCluster", "cephclusters");
        assert_eq!(
            c["spec"]["versions"][0]["additionalPrinterColumns"][5]["jsonPath"],
            ".status.ceph.health"
        );
    }

    fn schema_of(kind: &str) -> Value {
        let plural = KINDS
            .iter()
            .chain(EXTRA_KINDS.iter())
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| *p)
            .unwrap();
        crd(kind, plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    fn problems(kind: &str, object: &Value) -> Vec<String> {
        let schema = schema_of(kind);
        let validator = jsonschema::validator_for(&schema).unwrap();
        validator
            .iter_errors(object)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn rooks_manifests_fit_the_schemas() {
        let text = include_str!("../../spec/tests/fixtures/test-cluster.yaml");
        let mut kinds = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            let object: Value = serde::Deserialize::deserialize(doc).unwrap();
            let kind = object["kind"].as_str().unwrap().to_string();
            assert_eq!(problems(&kind, &object), Vec::<String>::new(), "{kind}");
            kinds.push(kind);
        }
        assert_eq!(kinds, ["CephCluster", "CephBlockPool"]);
        let group = json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephFilesystemSubVolumeGroup",
            "metadata": {"name": "csi"}, "spec": {"filesystemName": "myfs", "quota": "10G"}});
        assert_eq!(
            problems("CephFilesystemSubVolumeGroup", &group),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_wrong_type_is_refused_by_the_schema_and_named() {
        let cluster = json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
            "metadata": {"name": "c"}, "spec": {"mon": {"count": "three"}, "placement": {"all": {}}}});
        let found = problems("CephCluster", &cluster);
        assert!(
            found.len() == 1 && found[0].starts_with("/spec/mon/count"),
            "{found:?}"
        );
        let pool = json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephBlockPool",
            "metadata": {"name": "p"}, "spec": {"replicated": {"size": -1}, "quotas": {"maxSize": "10Gi"}}});
        let found = problems("CephBlockPool", &pool);
        assert!(
            found.len() == 1 && found[0].starts_with("/spec/replicated/size"),
            "{found:?}"
        );
        let group = json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephFilesystemSubVolumeGroup",
            "metadata": {"name": "csi"}, "spec": {}});
        assert_eq!(problems("CephFilesystemSubVolumeGroup", &group).len(), 1);
    }

    #[test]
    fn the_committed_crds_are_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/operator/crds.yaml"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if std::env::var_os("ROOKERY_WRITE_CRDS").is_some() {
            std::fs::write(path, yaml()).unwrap();
            return;
        }
        assert!(committed == yaml(), "deploy/operator/crds.yaml is stale: run `ROOKERY_WRITE_CRDS=1 cargo test -p rookery-k8s the_committed_crds_are_current`");
    }
}
