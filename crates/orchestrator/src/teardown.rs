//! Deleting resources is planned like creating them: [`Teardown::of`] says what deleting some documents
//! removes (pools, a filesystem and its pools, a store and its pools, users), [`blockers`] decides from
//! what was observed whether anything stands in the way (volumes, mounts, subvolumes, users, buckets) and
//! names it, and [`Teardown::steps`] orders the removal. All three are pure; `execute` carries the steps
//! out, each idempotent, after the reconciler has stopped the daemons the spec no longer wants.

use std::collections::BTreeMap;

use rookery_ceph::commands::{auth, fs as cephfs, pool};
use rookery_ceph::Rados;
use rookery_platform::Stores;
use rookery_spec::Resources;
use serde::Serialize;

use crate::layout::Layout;
use crate::OrchestratorError;

/// What deleting some documents removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Teardown {
    /// Block pools (Ceph's names).
    pub pools: Vec<String>,
    pub filesystems: Vec<FsTeardown>,
    pub stores: Vec<StoreTeardown>,
    pub users: Vec<UserTeardown>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsTeardown {
    pub name: String,
    /// `preserveFilesystemOnDelete`: the filesystem stays in Ceph (its MDS daemons stop).
    pub keep_filesystem: bool,
    /// The pools deleted with it (none when the filesystem or its pools are preserved).
    pub pools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreTeardown {
    pub name: String,
    /// The pools deleted with it (none with `preservePoolsOnDelete`; `.rgw.root` only with the last store).
    pub pools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserTeardown {
    pub store: String,
    pub uid: String,
}

/// What was found standing in the way of a teardown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InTheWay {
    /// Pool -> its volumes.
    pub volumes: BTreeMap<String, Vec<String>>,
    /// Filesystem -> where it is mounted.
    pub mounts: BTreeMap<String, Vec<String>>,
    /// Filesystem -> its subvolumes.
    pub subvolumes: BTreeMap<String, Vec<String>>,
    /// (store, bucket) owned by the users or stores being removed.
    pub buckets: Vec<(String, String)>,
}

/// Why a teardown is refused. Nothing has changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Blocker {
    #[error("object store {store} still has users: {}; remove them first", .users.join(", "))]
    StoreHasUsers { store: String, users: Vec<String> },
    #[error("pool {pool} still holds volumes: {}; remove them first", .volumes.join(", "))]
    PoolHasVolumes { pool: String, volumes: Vec<String> },
    #[error("filesystem {fs} is mounted at {}; unmount it first", .paths.join(", "))]
    FilesystemMounted { fs: String, paths: Vec<String> },
    #[error("filesystem {fs} still has subvolumes: {}; remove them first", .subvolumes.join(", "))]
    FilesystemHasSubvolumes { fs: String, subvolumes: Vec<String> },
    #[error("buckets would be deleted with it: {}; delete them first, or confirm that they go too", .buckets.iter().map(|(s, b)| format!("{b} (in {s})")).collect::<Vec<_>>().join(", "))]
    BucketsWouldBeDeleted { buckets: Vec<(String, String)> },
}

impl Blocker {
    /// A stable, machine-readable name of the refusal, for API clients (the same as its serde tag).
    pub fn code(&self) -> &'static str {
        match self {
            Blocker::StoreHasUsers { .. } => "store_has_users",
            Blocker::PoolHasVolumes { .. } => "pool_has_volumes",
            Blocker::FilesystemMounted { .. } => "filesystem_mounted",
            Blocker::FilesystemHasSubvolumes { .. } => "filesystem_has_subvolumes",
            Blocker::BucketsWouldBeDeleted { .. } => "buckets_would_be_deleted",
        }
    }

    /// The resource field a client would fix.
    pub fn field(&self) -> &'static str {
        match self {
            Blocker::StoreHasUsers { .. } => "CephObjectStoreUser",
            Blocker::PoolHasVolumes { .. } => "CephBlockPool",
            Blocker::FilesystemMounted { .. } | Blocker::FilesystemHasSubvolumes { .. } => {
                "CephFilesystem"
            }
            Blocker::BucketsWouldBeDeleted { .. } => "CephObjectStoreUser",
        }
    }
}

impl Teardown {
    /// What deleting the documents `gone` (kind, metadata.name) from `current` removes.
    pub fn of(current: &Resources, gone: &[(String, String)]) -> Teardown {
        let is_gone = |kind: &str, name: &str| gone.iter().any(|(k, n)| k == kind && n == name);
        let stores: Vec<_> = current
            .object_stores
            .iter()
            .filter(|s| is_gone("CephObjectStore", &s.metadata.name))
            .collect();
        let stores_left = current.object_stores.len() - stores.len();
        Teardown {
            pools: current
                .pools
                .iter()
                .filter(|p| is_gone("CephBlockPool", &p.metadata.name))
                .map(|p| p.pool_name().to_string())
                .collect(),
            filesystems: current
                .filesystems
                .iter()
                .filter(|f| is_gone("CephFilesystem", &f.metadata.name))
                .map(|f| {
                    let keep_filesystem = f.spec.preserve_filesystem_on_delete;
                    let mut pools = Vec::new();
                    if !keep_filesystem && !f.spec.preserve_pools_on_delete {
                        pools.push(f.metadata_pool_name());
                        pools.extend(f.data_pool_names());
                    }
                    FsTeardown {
                        name: f.metadata.name.clone(),
                        keep_filesystem,
                        pools,
                    }
                })
                .collect(),
            stores: stores
                .iter()
                .map(|s| {
                    let mut pools = Vec::new();
                    if !s.spec.preserve_pools_on_delete {
                        pools = s.metadata_pool_names();
                        pools.push(s.data_pool_name());
                        // Every store's realm lives in .rgw.root.
                        pools.retain(|p| p != ".rgw.root" || stores_left == 0);
                    }
                    StoreTeardown {
                        name: s.metadata.name.clone(),
                        pools,
                    }
                })
                .collect(),
            users: current
                .object_users
                .iter()
                .filter(|u| is_gone("CephObjectStoreUser", &u.metadata.name))
                .map(|u| UserTeardown {
                    store: u.spec.store.clone(),
                    uid: u.metadata.name.clone(),
                })
                .collect(),
        }
    }

    /// Users of the stores being removed that are not removed with them.
    pub fn users_left_behind(&self, current: &Resources) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for store in &self.stores {
            for u in current
                .object_users
                .iter()
                .filter(|u| u.spec.store == store.name)
            {
                if !self.users.iter().any(|t| t.uid == u.metadata.name) {
                    out.entry(store.name.clone())
                        .or_default()
                        .push(u.metadata.name.clone());
                }
            }
        }
        out
    }

    /// The filesystems whose subvolumes would be lost (not preserved).
    pub fn filesystems_removed(&self) -> impl Iterator<Item = &FsTeardown> {
        self.filesystems.iter().filter(|f| !f.keep_filesystem)
    }

    /// The steps that remove it, in order, once its daemons are stopped.
    pub fn steps(&self, delete_buckets: bool, buckets: &[(String, String)]) -> Vec<TeardownStep> {
        let mut out = Vec::new();
        for p in &self.pools {
            out.push(TeardownStep::DeletePool { pool: p.clone() });
        }
        for f in &self.filesystems {
            if !f.keep_filesystem {
                out.push(TeardownStep::RemoveFilesystem { fs: f.name.clone() });
            }
            out.extend(
                f.pools
                    .iter()
                    .map(|p| TeardownStep::DeletePool { pool: p.clone() }),
            );
            out.push(TeardownStep::ForgetMdsDaemons { fs: f.name.clone() });
        }
        for s in &self.stores {
            if delete_buckets {
                out.extend(buckets.iter().filter(|(store, _)| store == &s.name).map(
                    |(store, bucket)| TeardownStep::RemoveBucket {
                        store: store.clone(),
                        bucket: bucket.clone(),
                    },
                ));
            }
            out.extend(
                s.pools
                    .iter()
                    .map(|p| TeardownStep::DeletePool { pool: p.clone() }),
            );
            out.push(TeardownStep::ForgetGateway {
                store: s.name.clone(),
            });
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
            && self.filesystems.is_empty()
            && self.stores.is_empty()
            && self.users.is_empty()
    }
}

/// Everything that stands in the way, or nothing. The order is the order a person would fix them in.
pub fn blockers(
    teardown: &Teardown,
    current: &Resources,
    found: &InTheWay,
    delete_buckets: bool,
) -> Vec<Blocker> {
    let mut out = Vec::new();
    for (store, users) in teardown.users_left_behind(current) {
        out.push(Blocker::StoreHasUsers { store, users });
    }
    for pool in &teardown.pools {
        if let Some(v) = found.volumes.get(pool).filter(|v| !v.is_empty()) {
            out.push(Blocker::PoolHasVolumes {
                pool: pool.clone(),
                volumes: v.clone(),
            });
        }
    }
    for fs in &teardown.filesystems {
        if let Some(paths) = found.mounts.get(&fs.name).filter(|m| !m.is_empty()) {
            out.push(Blocker::FilesystemMounted {
                fs: fs.name.clone(),
                paths: paths.clone(),
            });
        }
    }
    for fs in teardown.filesystems_removed() {
        if let Some(subs) = found.subvolumes.get(&fs.name).filter(|s| !s.is_empty()) {
            out.push(Blocker::FilesystemHasSubvolumes {
                fs: fs.name.clone(),
                subvolumes: subs.clone(),
            });
        }
    }
    if !found.buckets.is_empty() && !delete_buckets {
        out.push(Blocker::BucketsWouldBeDeleted {
            buckets: found.buckets.clone(),
        });
    }
    out
}

/// The object store admin-API client of a store, when it is set up.
pub type AdminOf<'a> = &'a dyn Fn(&str) -> Option<rookery_objects::admin::Admin>;

/// Looks for what stands in the way of `teardown`: volumes in its pools, this host's mounts of its
/// filesystems, their subvolumes, the buckets of its users and stores.
pub fn observe(
    rados: &Rados,
    layout: &Layout,
    teardown: &Teardown,
    admin_of: AdminOf,
) -> Result<InTheWay, OrchestratorError> {
    let mut found = InTheWay::default();
    for pool in &teardown.pools {
        // A pool that is not there holds nothing.
        if let Ok(io) = rados.ioctx(pool) {
            found
                .volumes
                .insert(pool.clone(), rookery_ceph::rbd::list(&io)?);
        }
    }
    if !teardown.filesystems.is_empty() {
        let mounts = rookery_files::mount::list(&layout.root).unwrap_or_default();
        for fs in &teardown.filesystems {
            let here: Vec<String> = mounts
                .iter()
                .filter(|m| m.fs == fs.name)
                .map(|m| m.path.display().to_string())
                .collect();
            found.mounts.insert(fs.name.clone(), here);
        }
        for fs in teardown.filesystems_removed() {
            // A filesystem that is already gone has no subvolumes.
            let subs = rookery_ceph::commands::subvolume::ls(rados, &fs.name).unwrap_or_default();
            found.subvolumes.insert(fs.name.clone(), subs);
        }
    }
    for u in &teardown.users {
        if let Some(admin) = admin_of(&u.store) {
            let names = admin
                .buckets(&u.uid)
                .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            found
                .buckets
                .extend(names.into_iter().map(|b| (u.store.clone(), b)));
        }
    }
    for s in &teardown.stores {
        if let Some(admin) = admin_of(&s.name) {
            let names = admin.buckets("").unwrap_or_default();
            found
                .buckets
                .extend(names.into_iter().map(|b| (s.name.clone(), b)));
        }
    }
    found.buckets.sort();
    found.buckets.dedup();
    Ok(found)
}

/// Removes the users being deleted from their gateways (with their buckets, which [`blockers`] allowed),
/// before the spec drops them: afterwards nothing would know their store's admin user.
pub fn remove_object_users(
    teardown: &Teardown,
    admin_of: AdminOf,
) -> Result<(), OrchestratorError> {
    for u in &teardown.users {
        if let Some(admin) = admin_of(&u.store) {
            admin
                .remove_user(&u.uid, true)
                .map_err(|e| OrchestratorError::Other(e.to_string()))?;
        }
    }
    Ok(())
}

/// One step of removing resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TeardownStep {
    DeletePool {
        pool: String,
    },
    /// `fs fail` then `fs rm`.
    RemoveFilesystem {
        fs: String,
    },
    /// The keys and stores of a filesystem's MDS daemons.
    ForgetMdsDaemons {
        fs: String,
    },
    RemoveBucket {
        store: String,
        bucket: String,
    },
    /// The gateway's key, its zone marker and users' key records.
    ForgetGateway {
        store: String,
    },
}

/// Carries out teardown steps. Each is idempotent: what is already gone is skipped.
pub fn execute(
    rados: &Rados,
    layout: &Layout,
    stores: &dyn Stores,
    steps: &[TeardownStep],
    admin_of: AdminOf,
) -> Result<(), OrchestratorError> {
    for step in steps {
        tracing::info!(?step, "teardown");
        match step {
            TeardownStep::DeletePool { pool: name } => gone_already_ok(pool::delete(rados, name))?,
            TeardownStep::RemoveFilesystem { fs } => {
                // Fails when the filesystem is down or gone already; `fs rm` says which matters.
                let _ = cephfs::fail(rados, fs);
                gone_already_ok(cephfs::rm(rados, fs))?;
            }
            TeardownStep::ForgetMdsDaemons { fs } => {
                for daemon in mds_daemons_made(stores, fs) {
                    gone_already_ok(auth::rm(rados, &daemon))?;
                    stores.forget(&daemon)?;
                }
            }
            TeardownStep::RemoveBucket { store, bucket } => {
                // Best effort, as a bucket may be gone already; the store's pools go next anyway.
                if let Some(admin) = admin_of(store) {
                    let _ = admin.remove_bucket(bucket, true);
                }
            }
            TeardownStep::ForgetGateway { store } => {
                gone_already_ok(auth::rm(rados, &format!("client.rgw.{store}")))?;
                stores.forget(&format!("rgw.{store}"))?;
                let dir = layout.rgw_dir(store);
                match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(OrchestratorError::io(&dir, e))
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A removal of something that is not there has nothing left to do.
fn gone_already_ok(result: Result<(), rookery_ceph::CephError>) -> Result<(), OrchestratorError> {
    match result {
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
        other => Ok(other?),
    }
}

/// Removes the key records of users that are gone from the spec (after their removal from RGW).
pub fn forget_users(layout: &Layout, users: &[UserTeardown]) {
    for u in users {
        let _ = std::fs::remove_file(layout.rgw_user(&u.store, &u.uid));
    }
}

/// The MDS daemons ever made for filesystem `fs` (`mds.<fs>-a`, `mds.<fs>-b`, ...), by their keyrings.
fn mds_daemons_made(stores: &dyn Stores, fs: &str) -> Vec<String> {
    let prefix = format!("mds.{fs}-");
    stores
        .with_keyrings()
        .into_iter()
        .filter(|name| {
            name.strip_prefix(&prefix).is_some_and(|letter| {
                letter.len() == 1 && letter.chars().all(|c| c.is_ascii_lowercase())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(yaml: &str) -> Resources {
        rookery_spec::load(yaml).unwrap()
    }

    const CLUSTER: &str = "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: c}\nspec: {storage: {osdFiles: {count: 3, size: 10Gi}}}\n";

    fn two_stores() -> Resources {
        resources(&format!(
            "{CLUSTER}---
apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata: {{name: s1}}
spec: {{gateway: {{port: 7480}}}}
---
apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata: {{name: s2}}
spec: {{gateway: {{port: 7481}}, preservePoolsOnDelete: true}}
---
apiVersion: ceph.rook.io/v1
kind: CephObjectStoreUser
metadata: {{name: alice}}
spec: {{store: s1}}
---
apiVersion: ceph.rook.io/v1
kind: CephBlockPool
metadata: {{name: rbd-pool}}
spec: {{replicated: {{size: 3}}}}
---
apiVersion: ceph.rook.io/v1
kind: CephFilesystem
metadata: {{name: fs1}}
spec:
  metadataPool: {{replicated: {{size: 3}}}}
  dataPools: [{{replicated: {{size: 3}}}}]
  metadataServer: {{activeCount: 1}}
"
        ))
    }

    fn gone(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn a_store_keeps_the_shared_realm_pool_while_another_store_remains() {
        let current = two_stores();
        let t = Teardown::of(&current, &gone(&[("CephObjectStore", "s1")]));
        assert_eq!(t.stores.len(), 1);
        assert!(!t.stores[0].pools.contains(&".rgw.root".to_string()));
        assert!(t.stores[0].pools.iter().any(|p| p.starts_with("s1.rgw.")));
        let both = Teardown::of(
            &current,
            &gone(&[("CephObjectStore", "s1"), ("CephObjectStore", "s2")]),
        );
        // s2 preserves its pools; s1, the last with pools to delete, takes the realm pool.
        assert!(both.stores[0].pools.contains(&".rgw.root".to_string()));
        assert!(both.stores[1].pools.is_empty());
    }

    #[test]
    fn a_store_with_users_left_is_refused_naming_them() {
        let current = two_stores();
        let t = Teardown::of(&current, &gone(&[("CephObjectStore", "s1")]));
        let b = blockers(&t, &current, &InTheWay::default(), false);
        assert_eq!(
            b,
            [Blocker::StoreHasUsers {
                store: "s1".into(),
                users: vec!["alice".into()]
            }]
        );
        assert!(b[0].to_string().contains("still has users: alice"));
        let with_user = Teardown::of(
            &current,
            &gone(&[("CephObjectStore", "s1"), ("CephObjectStoreUser", "alice")]),
        );
        assert!(blockers(&with_user, &current, &InTheWay::default(), false).is_empty());
    }

    #[test]
    fn volumes_mounts_subvolumes_and_buckets_each_block_and_are_named() {
        let current = two_stores();
        let t = Teardown::of(
            &current,
            &gone(&[
                ("CephBlockPool", "rbd-pool"),
                ("CephFilesystem", "fs1"),
                ("CephObjectStoreUser", "alice"),
            ]),
        );
        let found = InTheWay {
            volumes: BTreeMap::from([("rbd-pool".into(), vec!["pv1".into()])]),
            mounts: BTreeMap::from([("fs1".into(), vec!["/mnt/x".into()])]),
            subvolumes: BTreeMap::from([("fs1".into(), vec!["app1".into()])]),
            buckets: vec![("s1".into(), "photos".into())],
        };
        let b = blockers(&t, &current, &found, false);
        let text: Vec<String> = b.iter().map(|b| b.to_string()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].contains("pool rbd-pool still holds volumes: pv1"));
        assert!(text[1].contains("filesystem fs1 is mounted at /mnt/x"));
        assert!(text[2].contains("filesystem fs1 still has subvolumes: app1"));
        assert!(text[3].contains("buckets would be deleted with it: photos (in s1)"));
        // Confirmed, buckets no longer block; the rest still does.
        assert_eq!(blockers(&t, &current, &found, true).len(), 3);
        // Nothing found: nothing blocks.
        assert!(blockers(&t, &current, &InTheWay::default(), false).is_empty());
    }

    #[test]
    fn a_preserved_filesystem_keeps_its_subvolumes_and_pools() {
        let mut current = two_stores();
        current.filesystems[0].spec.preserve_filesystem_on_delete = true;
        let t = Teardown::of(&current, &gone(&[("CephFilesystem", "fs1")]));
        assert!(t.filesystems[0].pools.is_empty());
        let found = InTheWay {
            subvolumes: BTreeMap::from([("fs1".into(), vec!["app1".into()])]),
            ..Default::default()
        };
        assert!(blockers(&t, &current, &found, false).is_empty());
        assert_eq!(
            t.steps(false, &[]),
            [TeardownStep::ForgetMdsDaemons { fs: "fs1".into() }]
        );
    }

    #[test]
    fn steps_remove_the_filesystem_before_its_pools_and_buckets_before_theirs() {
        let current = two_stores();
        let t = Teardown::of(
            &current,
            &gone(&[
                ("CephFilesystem", "fs1"),
                ("CephObjectStore", "s1"),
                ("CephObjectStoreUser", "alice"),
            ]),
        );
        let steps = t.steps(true, &[("s1".into(), "photos".into())]);
        let pos = |s: &TeardownStep| steps.iter().position(|x| x == s).unwrap();
        let fs_rm = pos(&TeardownStep::RemoveFilesystem { fs: "fs1".into() });
        let meta = pos(&TeardownStep::DeletePool {
            pool: "fs1-metadata".into(),
        });
        assert!(fs_rm < meta);
        let bucket = pos(&TeardownStep::RemoveBucket {
            store: "s1".into(),
            bucket: "photos".into(),
        });
        let first_store_pool = steps
            .iter()
            .position(|s| matches!(s, TeardownStep::DeletePool { pool } if pool.starts_with("s1.")))
            .unwrap();
        assert!(bucket < first_store_pool);
        assert_eq!(
            steps.last(),
            Some(&TeardownStep::ForgetGateway { store: "s1".into() })
        );
        // Without the confirmation no bucket is removed.
        assert!(!t
            .steps(false, &[("s1".into(), "photos".into())])
            .iter()
            .any(|s| matches!(s, TeardownStep::RemoveBucket { .. })));
    }
}
