//! The cluster's resources as a set of Rook documents: the data dir's `spec.yaml`. Applying merges
//! documents into it by (kind, metadata.name) and validates the whole set before anything is saved; the
//! supervisor then reconciles to the saved text. Shared by `rookery apply` and the control API.

use rookery_ceph::commands::{cluster, osd};
use rookery_ceph::{CephError, Rados};
use rookery_platform::Platform;
use rookery_spec::{Resources, SpecErrors};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::teardown::{self, AdminOf, Blocker, InTheWay, Teardown};
use crate::{Layout, OrchestratorError};

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{origin} is not YAML: {detail}")]
    NotYaml { origin: String, detail: String },
    #[error("{origin} is not valid:\n{errors}")]
    Invalid { origin: String, errors: SpecErrors },
    #[error("{0} holds no cluster")]
    NoCluster(String),
    #[error("{0} has no CephCluster; add one (kind: CephCluster, apiVersion: ceph.rook.io/v1)")]
    MissingCluster(String),
    #[error(
        "deleting the CephCluster destroys all its data; that is a purge of the whole cluster"
    )]
    ClusterDelete,
    #[error("{origin} describes cluster {given:?}, but this data dir holds {held:?}")]
    OtherCluster {
        origin: String,
        given: String,
        held: String,
    },
    #[error("there is no {kind} named {name:?} to delete")]
    NotFound { kind: String, name: String },
    #[error("CephObjectStore/{store}: spec.gateway.port {port} is in use by {holder}; choose a free port or stop that process")]
    PortInUse {
        store: String,
        port: u16,
        holder: String,
    },
    #[error("CephObjectStore/{store}: {instances} gateways each need a host of their own, but this cluster is this one host (it serves on loopback only); use spec.gateway.instances: 1")]
    GatewaysNeedHosts { store: String, instances: u64 },
    #[error("`{program}` is not installed; install it with: apt-get install -y {package}")]
    ProgramMissing {
        program: String,
        package: &'static str,
    },
    /// A delete refused: each names what stands in the way. Nothing was changed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Blocked(Vec<Blocker>),
    #[error(transparent)]
    Ceph(#[from] CephError),
    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
    #[error("{0}")]
    Other(String),
}

impl ResourceError {
    /// A stable, machine-readable name of what went wrong, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            ResourceError::NotYaml { .. } => "not_yaml",
            ResourceError::Invalid { errors, .. } => errors.code(),
            ResourceError::NoCluster(_) => "no_cluster",
            ResourceError::MissingCluster(_) => "missing_cluster",
            ResourceError::ClusterDelete => "cluster_delete_refused",
            ResourceError::OtherCluster { .. } => "other_cluster",
            ResourceError::NotFound { .. } => "not_found",
            ResourceError::PortInUse { .. } => "port_in_use",
            ResourceError::GatewaysNeedHosts { .. } => "gateways_need_hosts",
            ResourceError::ProgramMissing { .. } => "program_missing",
            ResourceError::Blocked(b) => b.first().map(Blocker::code).unwrap_or("blocked"),
            ResourceError::Ceph(e) if e.is_unreachable() => "ceph_unavailable",
            ResourceError::Ceph(_) => "ceph_error",
            ResourceError::Orchestrator(OrchestratorError::Ceph(e)) if e.is_unreachable() => {
                "ceph_unavailable"
            }
            ResourceError::Orchestrator(_) | ResourceError::Other(_) => "internal",
        }
    }

    /// The field (path in the documents) the error is about, when it is about one.
    pub fn field(&self) -> Option<String> {
        match self {
            ResourceError::Invalid { errors, .. } => errors.0.first().map(|e| e.path.clone()),
            ResourceError::OtherCluster { .. } => Some("metadata.name".into()),
            ResourceError::PortInUse { store, .. } => {
                Some(format!("CephObjectStore/{store}.spec.gateway.port"))
            }
            ResourceError::GatewaysNeedHosts { store, .. } => {
                Some(format!("CephObjectStore/{store}.spec.gateway.instances"))
            }
            ResourceError::Blocked(b) => b.first().map(|b| b.field().to_string()),
            _ => None,
        }
    }

    /// The caller's input, not the system, is what to change.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            ResourceError::Ceph(_) | ResourceError::Orchestrator(_) | ResourceError::Other(_)
        )
    }
}

/// (kind, metadata.name) of a document.
pub fn key(doc: &Value) -> (String, String) {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    (
        s(doc.get("kind")),
        s(doc.get("metadata").and_then(|m| m.get("name"))),
    )
}

/// `Kind/name` of a document, as it is named to people.
pub fn display_name(doc: &Value) -> String {
    let (kind, name) = key(doc);
    format!("{kind}/{name}")
}

/// The documents of a YAML (or JSON) text; empty documents are skipped.
pub fn documents(text: &str, origin: &str) -> Result<Vec<Value>, ResourceError> {
    let mut out = Vec::new();
    for d in serde_yaml::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(d).map_err(|e| ResourceError::NotYaml {
            origin: origin.to_string(),
            detail: e.to_string(),
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

pub fn render(docs: &[Value]) -> Result<String, ResourceError> {
    let parts: Result<Vec<String>, _> = docs.iter().map(serde_yaml::to_string).collect();
    Ok(parts
        .map_err(|e| ResourceError::Other(e.to_string()))?
        .join("---\n"))
}

/// Validates resources given as text; `need_cluster` when the text must be a whole cluster spec.
pub fn validate(text: &str, origin: &str, need_cluster: bool) -> Result<Resources, ResourceError> {
    let res = rookery_spec::load(text).map_err(|errors| ResourceError::Invalid {
        origin: origin.to_string(),
        errors,
    })?;
    if need_cluster && res.cluster.is_none() {
        return Err(ResourceError::MissingCluster(origin.to_string()));
    }
    Ok(res)
}

/// The spec's documents as they are saved now.
pub fn saved_docs(layout: &Layout) -> Result<Vec<Value>, ResourceError> {
    let saved = std::fs::read_to_string(layout.spec())
        .map_err(|_| ResourceError::NoCluster(layout.root.display().to_string()))?;
    documents(&saved, "the cluster's spec")
}

/// The saved resources, validated.
pub fn saved_resources(layout: &Layout) -> Result<Resources, ResourceError> {
    validate(&render(&saved_docs(layout)?)?, "the cluster's spec", true)
}

/// Validates `text` (from `origin`) and the cluster's spec with it applied (or removed), returning the
/// new spec text and the documents of `text`.
pub fn edited_spec(
    layout: &Layout,
    text: &str,
    origin: &str,
    remove: bool,
) -> Result<(String, Vec<Value>), ResourceError> {
    validate(text, origin, false)?;
    let mut docs = saved_docs(layout)?;
    let new = documents(text, origin)?;
    for doc in &new {
        let k = key(doc);
        if k.0 == "CephCluster" {
            if remove {
                return Err(ResourceError::ClusterDelete);
            }
            let current = docs.iter().find(|d| key(d).0 == "CephCluster").map(key);
            if let Some(current) = current.filter(|c| c.1 != k.1) {
                return Err(ResourceError::OtherCluster {
                    origin: origin.to_string(),
                    given: k.1,
                    held: current.1,
                });
            }
        }
        match docs.iter().position(|d| key(d) == k) {
            Some(i) if remove => {
                docs.remove(i);
            }
            Some(i) => docs[i] = doc.clone(),
            None if remove => {
                return Err(ResourceError::NotFound {
                    kind: k.0,
                    name: k.1,
                });
            }
            None => docs.push(doc.clone()),
        }
    }
    let merged = render(&docs)?;
    validate(&merged, "the cluster's spec with this change", true)?;
    Ok((merged, new))
}

/// A port wanted by an object store that something other than that store's gateway listens on, or
/// gateways on several hosts asked of a cluster of one.
fn check_gateway_ports(
    layout: &Layout,
    platform: &dyn Platform,
    new: &[Value],
) -> Result<(), ResourceError> {
    let Some(host) = platform.hosts().into_iter().next() else {
        return Ok(());
    };
    for doc in new.iter().filter(|d| key(d).0 == "CephObjectStore") {
        let store = key(doc).1;
        let gateway = doc.get("spec").and_then(|s| s.get("gateway"));
        let instances = gateway
            .and_then(|g| g.get("instances"))
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if instances > 1 && host.address.is_loopback() {
            return Err(ResourceError::GatewaysNeedHosts { store, instances });
        }
        let port = gateway
            .and_then(|g| g.get("port"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        if let Some(holder) = platform.port_holder(&host.name, port) {
            let ours = holder.contains(&format!("client.rgw.{store}"))
                && holder.contains(&layout.conf().display().to_string());
            if !ours {
                return Err(ResourceError::PortInUse {
                    store,
                    port,
                    holder,
                });
            }
        }
    }
    Ok(())
}

/// The Ceph programs the new resources run, each checked before anything is saved.
fn check_programs(new: &[Value]) -> Result<(), ResourceError> {
    let mut needed = Vec::new();
    for doc in new {
        match key(doc).0.as_str() {
            "CephFilesystem" => needed.extend(["ceph-mds", "ceph-fuse"]),
            "CephObjectStore" => needed.extend(["radosgw", "radosgw-admin"]),
            _ => {}
        }
    }
    for program in needed {
        if rookery_ceph::tools::find_program(program).is_none() {
            return Err(ResourceError::ProgramMissing {
                program: program.to_string(),
                package: rookery_ceph::tools::package_of(program),
            });
        }
    }
    Ok(())
}

/// Writes the spec text atomically; the supervisor picks it up on its next pass.
pub fn save(layout: &Layout, text: &str) -> Result<(), ResourceError> {
    rookery_ceph::conf::write_atomic(&layout.spec(), text.as_bytes(), 0o600).map_err(Into::into)
}

/// An apply checked against the whole spec, not saved yet.
pub struct Apply {
    /// The spec text with the documents merged in.
    pub merged: String,
    /// The documents given.
    pub new: Vec<Value>,
    before: Vec<(String, String)>,
}

/// A user made by an apply, with the keys it was given (shown this once).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    pub store: String,
    pub user: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Apply {
    /// Validates `text` merged into the saved spec, and that the ports and programs it needs are
    /// there. Changes nothing.
    pub fn prepare(
        layout: &Layout,
        platform: &dyn Platform,
        text: &str,
        origin: &str,
    ) -> Result<Apply, ResourceError> {
        let before = saved_docs(layout)?.iter().map(key).collect();
        let (merged, new) = edited_spec(layout, text, origin, false)?;
        check_gateway_ports(layout, platform, &new)?;
        check_programs(&new)?;
        Ok(Apply {
            merged,
            new,
            before,
        })
    }

    pub fn save(&self, layout: &Layout) -> Result<(), ResourceError> {
        save(layout, &self.merged)
    }

    /// `Kind/name` of every document given.
    pub fn names(&self) -> Vec<String> {
        self.new.iter().map(display_name).collect()
    }

    /// The object stores given, with their gateway ports, so a client can name their S3 endpoints.
    pub fn new_object_stores(&self) -> Vec<(String, u16)> {
        self.new
            .iter()
            .filter(|d| key(d).0 == "CephObjectStore")
            .map(|d| {
                let port = d
                    .get("spec")
                    .and_then(|s| s.get("gateway"))
                    .and_then(|g| g.get("port"))
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0);
                (key(d).1, port)
            })
            .collect()
    }

    /// The object store users this apply made, with their keys (once the supervisor made them).
    pub fn new_users(&self, layout: &Layout) -> Result<Vec<NewUser>, ResourceError> {
        let mut out = Vec::new();
        for doc in self
            .new
            .iter()
            .filter(|d| key(d).0 == "CephObjectStoreUser")
        {
            let k = key(doc);
            if self.before.contains(&k) {
                continue;
            }
            let store = doc
                .get("spec")
                .and_then(|s| s.get("store"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let record = crate::objectstore::read(&layout.rgw_user(&store, &k.1))
                .map_err(|e| ResourceError::Other(e.to_string()))?;
            if let Some(r) = record {
                out.push(NewUser {
                    store,
                    user: k.1,
                    access_key: r.access_key,
                    secret_key: r.secret_key,
                });
            }
        }
        Ok(out)
    }
}

/// (kind, metadata.name) of every document but the cluster.
fn resource_keys(res: &Resources) -> Vec<(String, String)> {
    let of = |kind: &str, name: &str| (kind.to_string(), name.to_string());
    res.pools
        .iter()
        .map(|p| of("CephBlockPool", &p.metadata.name))
        .chain(
            res.filesystems
                .iter()
                .map(|f| of("CephFilesystem", &f.metadata.name)),
        )
        .chain(
            res.object_stores
                .iter()
                .map(|s| of("CephObjectStore", &s.metadata.name)),
        )
        .chain(
            res.object_users
                .iter()
                .map(|u| of("CephObjectStoreUser", &u.metadata.name)),
        )
        .collect()
}

/// A delete of documents, checked and planned, nothing changed yet. It runs in two halves around the
/// supervisor's reconcile: [`Delete::start`] removes the users and saves the spec without the
/// documents; once the supervisor reconciled to [`Delete::merged`] (and so stopped the daemons they had
/// and can no longer recreate them), [`Delete::finish`] removes what is left in Ceph and on disk.
pub struct Delete {
    /// The spec text without the documents.
    pub merged: String,
    gone: Vec<(String, String)>,
    plan: Teardown,
    found: InTheWay,
    delete_buckets: bool,
}

/// What a delete removed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    /// `Kind/name` of every document deleted.
    pub deleted: Vec<String>,
    pub deleted_pools: Vec<String>,
    pub deleted_buckets: Vec<String>,
}

impl Delete {
    /// Plans deleting the documents in `text`, looks for what stands in the way and refuses with every
    /// blocker found; `delete_buckets` is the confirmation that buckets go with their users and stores.
    pub fn prepare(
        rados: &Rados,
        layout: &Layout,
        text: &str,
        origin: &str,
        delete_buckets: bool,
        admin_of: AdminOf,
    ) -> Result<Delete, ResourceError> {
        let current = saved_resources(layout)?;
        let given = validate(text, origin, false)?;
        let gone = resource_keys(&given);
        let plan = Teardown::of(&current, &gone);
        let found = teardown::observe(rados, layout, &plan, admin_of)?;
        let blockers = teardown::blockers(&plan, &current, &found, delete_buckets);
        if !blockers.is_empty() {
            return Err(ResourceError::Blocked(blockers));
        }
        let (merged, _) = edited_spec(layout, text, origin, true)?;
        Ok(Delete {
            merged,
            gone,
            plan,
            found,
            delete_buckets,
        })
    }

    /// Removes the users being deleted from their gateways and saves the spec without the documents.
    pub fn start(&self, layout: &Layout, admin_of: AdminOf) -> Result<(), ResourceError> {
        teardown::remove_object_users(&self.plan, admin_of)?;
        save(layout, &self.merged)
    }

    /// Removes pools, filesystems, gateways' keys and files, once the supervisor dropped the documents.
    pub fn finish(
        &self,
        rados: &Rados,
        layout: &Layout,
        stores: &dyn rookery_platform::Stores,
        admin_of: AdminOf,
    ) -> Result<Deleted, ResourceError> {
        teardown::forget_users(layout, &self.plan.users);
        let steps = self.plan.steps(self.delete_buckets, &self.found.buckets);
        teardown::execute(rados, layout, stores, &steps, admin_of)?;
        let deleted_pools = self
            .plan
            .pools
            .iter()
            .chain(self.plan.filesystems.iter().flat_map(|f| &f.pools))
            .chain(self.plan.stores.iter().flat_map(|s| &s.pools))
            .cloned()
            .collect();
        let deleted_buckets = if self.delete_buckets {
            self.found.buckets.iter().map(|(_, b)| b.clone()).collect()
        } else {
            vec![]
        };
        Ok(Deleted {
            deleted: self.gone.iter().map(|(k, n)| format!("{k}/{n}")).collect(),
            deleted_pools,
            deleted_buckets,
        })
    }
}

/// A pool as `rookery get pools` and `GET /v1/pools` show it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolRow {
    pub name: String,
    pub size: u32,
    pub min_size: u32,
    pub pg_num: u32,
    pub applications: Vec<String>,
    pub crush_rule: String,
    pub stored_bytes: u64,
    pub objects: u64,
    pub max_avail_bytes: u64,
    pub quota_max_bytes: u64,
    pub quota_max_objects: u64,
    /// Volumes in an RBD pool; absent for other pools.
    pub volumes: Option<usize>,
}

/// Every pool with its copies, usage, quotas and volume count.
pub fn pools(rados: &Rados) -> Result<Vec<PoolRow>, CephError> {
    let dump = osd::dump(rados)?;
    let df = cluster::df(rados)?;
    let rules = osd::crush_rule_dump(rados)?;
    Ok(dump
        .pools
        .iter()
        .map(|p| {
            let usage = df.pools.iter().find(|d| d.name == p.pool_name);
            let volumes = p
                .application_metadata
                .contains_key("rbd")
                .then(|| {
                    rados
                        .ioctx(&p.pool_name)
                        .ok()
                        .and_then(|io| rookery_ceph::rbd::list(&io).ok().map(|v| v.len()))
                })
                .flatten();
            PoolRow {
                name: p.pool_name.clone(),
                size: p.size,
                min_size: p.min_size,
                pg_num: p.pg_num,
                applications: p.application_metadata.keys().cloned().collect(),
                crush_rule: rules
                    .iter()
                    .find(|r| r.rule_id == p.crush_rule)
                    .map(|r| r.rule_name.clone())
                    .unwrap_or_default(),
                stored_bytes: usage.map(|u| u.stats.stored).unwrap_or(0),
                objects: usage.map(|u| u.stats.objects).unwrap_or(0),
                max_avail_bytes: usage.map(|u| u.stats.max_avail).unwrap_or(0),
                quota_max_bytes: p.quota_max_bytes,
                quota_max_objects: p.quota_max_objects,
                volumes,
            }
        })
        .collect())
}
