//! Volume management through librbd: create, inspect, resize, snapshot, clone, flatten, remove. Every
//! refusal is a typed [`VolumeError`] (see `is_bad_request`) that says what to do and changes nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use rookery_ceph::commands::{cluster, osd};
use rookery_ceph::rbd::{self, features, Image};
use rookery_ceph::rbd_objects;
use rookery_ceph::{IoCtx, Rados};
use serde::{Deserialize, Serialize};

use crate::attach::{open_image, open_pool};
use crate::holder::Holder;
use crate::index::{self, PoolIndex};
use crate::records::{MountRecord, Records};
use crate::{loopdev, mapper, tools, VolumeError, META_FS};

pub const DEFAULT_POOL: &str = "replicapool";
pub const FILESYSTEMS: &[&str] = &["ext4", "xfs", "none"];

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VolumeInfo {
    pub pool: String,
    pub name: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// The filesystem made on first mount (`ext4`, `xfs`) or `none` (raw block).
    pub fs: String,
    pub features: Vec<String>,
    pub snapshots: Vec<SnapshotInfo>,
    /// `pool/image@snapshot` this volume was cloned from, until flattened.
    pub parent: Option<String>,
    /// Who has it mounted (any host), from the image's holder record.
    pub holders: Vec<Holder>,
    /// Mounts rookery made on this host.
    pub mounts: Vec<MountRecord>,
    /// The Kubernetes claim (`namespace/name`) a CSI-made volume serves, from the driver's journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

/// The RADOS object beside a CSI-made image where the CSI driver keeps its journal (the CO's name, the
/// content source and the claim the volume serves).
pub fn csi_journal_object(image: &str) -> String {
    format!("rookery.csi.vol.{image}")
}

/// `namespace/name` of the claim in a CSI journal, when there is one.
fn claim_of(io: &rookery_ceph::IoCtx, image: &str) -> Option<String> {
    let bytes = io.read_all(&csi_journal_object(image)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let name = v["claim"]["csi.storage.k8s.io/pvc/name"].as_str()?;
    Some(
        match v["claim"]["csi.storage.k8s.io/pvc/namespace"].as_str() {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        },
    )
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotInfo {
    pub name: String,
    pub size_bytes: u64,
}

fn invalid(field: &'static str, message: impl Into<String>) -> VolumeError {
    VolumeError::Invalid {
        field,
        message: message.into(),
    }
}

/// Volume and snapshot names: what RBD allows and every shell can type without quoting.
pub fn validate_name(what: &str, name: &str) -> Result<(), VolumeError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        let field = if what == "snapshot" {
            "snapshot"
        } else {
            "name"
        };
        Err(invalid(field, format!(
            "{what} name {name:?} is not valid: use 1 to 100 letters, digits, '-', '_' or '.', not starting with '.' or '-'"
        )))
    }
}

/// A size such as `10Gi`, `500Mi` or `10G` (powers of ten, as Kubernetes reads them).
pub fn parse_size(text: &str) -> Result<u64, VolumeError> {
    let q =
        rookery_spec::Quantity::parse(text.trim()).map_err(|e| invalid("size", e.to_string()))?;
    if q.0 == 0 {
        return Err(invalid(
            "size",
            "a volume needs a size above zero, such as 1Gi",
        ));
    }
    if q.0 < 1 << 20 {
        return Err(invalid(
            "size",
            format!("{text} is below the smallest volume, 1Mi"),
        ));
    }
    Ok(q.0)
}

fn human(b: u64) -> String {
    rookery_spec::Quantity(b).to_string()
}

/// The most a pool can ever hold, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ceiling {
    bytes: u64,
    /// Its quota is below what its OSDs can hold.
    quota: bool,
    /// What its OSDs can hold, over its copies.
    capacity: u64,
}

impl Ceiling {
    /// The ceiling a volume of `size` passes, if any: with `over_commit`, only the OSDs' capacity counts
    /// (writes past the quota then stop when the pool fills).
    fn refuses(&self, size: u64, over_commit: bool) -> bool {
        if over_commit {
            size > self.capacity
        } else {
            size > self.bytes
        }
    }

    /// The refusal of a volume of `size` bytes in `pool`, with the figures and the fix.
    fn refusal(&self, pool: &str, size: u64, over_commit: bool) -> VolumeError {
        let (why, fix) = if self.quota && !over_commit {
            (
                "its quota",
                "use a smaller size, raise the pool's quota (spec.quotas.maxSize of its CephBlockPool), or over-commit on purpose (--over-commit, or the annotation rookery.io/over-commit: \"true\" on the CephBlockPool; writes stop when the pool is full)",
            )
        } else {
            (
                "its OSDs' capacity divided by its copies",
                "use a smaller size or add OSDs",
            )
        };
        invalid(
            "size",
            format!(
                "{}: pool {pool} can never hold more than {} ({why}); {fix}",
                human(size),
                human(if over_commit {
                    self.capacity
                } else {
                    self.bytes
                })
            ),
        )
    }
}

/// What a pool can ever hold: the raw capacity of all OSDs divided by the copies it keeps, or its quota
/// when that is less.
fn ceiling_of(total_bytes: u64, copies: u32, quota_bytes: u64) -> Ceiling {
    let capacity = total_bytes / u64::from(copies.max(1));
    if quota_bytes > 0 && quota_bytes < capacity {
        Ceiling {
            bytes: quota_bytes,
            quota: true,
            capacity,
        }
    } else {
        Ceiling {
            bytes: capacity,
            quota: false,
            capacity,
        }
    }
}

type Remembered = HashMap<(u64, String), (Instant, Option<Ceiling>)>;
static REMEMBERED: LazyLock<Mutex<Remembered>> = LazyLock::new(Default::default);

/// Forgets the remembered ceilings, after a change to a pool's size, quota or over-commit mark made in
/// this process (the supervisor applies specs and answers volume requests), so the next request sees it.
pub fn forget_pool_ceilings() {
    REMEMBERED.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn pool_ceiling(rados: &Rados, pool: &str) -> Result<Option<Ceiling>, VolumeError> {
    let key = (rados.serial(), pool.to_string());
    let remembered = REMEMBERED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .filter(|(at, _)| at.elapsed() < CEILING_KEPT)
        .map(|(_, c)| *c);
    if let Some(c) = remembered {
        return Ok(c);
    }
    let df = cluster::df(rados)?;
    let dump = osd::dump(rados)?;
    let ceiling = dump
        .pools
        .iter()
        .find(|p| p.pool_name == pool)
        // A pool marked for over-commit (its CephBlockPool's annotation) is held to its OSDs only.
        .map(|p| {
            let quota = if p.allows_over_commit() {
                0
            } else {
                p.quota_max_bytes
            };
            ceiling_of(df.stats.total_bytes, p.size, quota)
        });
    REMEMBERED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (Instant::now(), ceiling));
    Ok(ceiling)
}

/// How long a pool's ceiling is trusted: it changes only when OSDs come or go or the pool's size changes,
/// and asking the mons for it twice per volume made up a tenth of a create.
const CEILING_KEPT: Duration = Duration::from_secs(10);

pub fn create(
    rados: &Rados,
    pool: &str,
    name: &str,
    size: u64,
    fs: &str,
) -> Result<(), VolumeError> {
    create_in(rados, pool, name, size, fs, None)
}

/// `create`, with the data in `data_pool` (an erasure-coded pool) when given.
pub fn create_in(
    rados: &Rados,
    pool: &str,
    name: &str,
    size: u64,
    fs: &str,
    data_pool: Option<&str>,
) -> Result<(), VolumeError> {
    let made = create_volume(
        rados,
        &NewVolume {
            pool,
            name,
            size,
            fs,
            features: mapper::default_features(),
            data_pool,
            over_commit: false,
        },
    )?;
    refuse_existing(made, pool, name)
}

/// Whether an exclusive create or clone made the volume or found it made. Callers that are retried by
/// design (the CSI driver) look at what exists; the CLI refuses to reuse a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Made now, `size` bytes large.
    Created { size: u64 },
    /// A volume of that name was there already; nothing was changed.
    Existed,
}

pub fn refuse_existing(made: Made, pool: &str, name: &str) -> Result<(), VolumeError> {
    match made {
        Made::Created { .. } => Ok(()),
        Made::Existed => Err(VolumeError::Exists(format!(
            "a volume named {name:?} already exists in pool {pool}; choose another name"
        ))),
    }
}

/// What [`create_volume`] makes.
pub struct NewVolume<'a> {
    pub pool: &'a str,
    pub name: &'a str,
    pub size: u64,
    /// One of [`FILESYSTEMS`]; `none` marks a raw block volume that nothing ever formats.
    pub fs: &'a str,
    /// RBD image feature bits ([`mapper::default_features`] unless asked otherwise).
    pub features: u64,
    /// An erasure-coded pool for the data.
    pub data_pool: Option<&'a str>,
    /// Larger than the pool's quota on purpose (never larger than its OSDs can hold).
    pub over_commit: bool,
}

/// Creates a volume with librbd's exclusive create: of two racing creates of one name, one makes it and
/// the other learns [`Made::Existed`].
pub fn create_volume(rados: &Rados, v: &NewVolume) -> Result<Made, VolumeError> {
    let (pool, name, size, fs) = (v.pool, v.name, v.size, v.fs);
    validate_name("volume", name)?;
    if !FILESYSTEMS.contains(&fs) {
        return Err(invalid(
            "fs",
            format!(
                "{fs:?} is no filesystem rookery makes; choose one of {}",
                FILESYSTEMS.join(", ")
            ),
        ));
    }
    if fs == "xfs" && size < 300 << 20 {
        return Err(invalid(
            "size",
            "xfs needs at least 300Mi; use a larger size or ext4",
        ));
    }
    let io = open_pool(rados, pool)?;
    if let Some(ceiling) = pool_ceiling(rados, pool)? {
        if ceiling.refuses(size, v.over_commit) {
            return Err(ceiling.refusal(pool, size, v.over_commit));
        }
    }
    if let Some(dp) = v.data_pool {
        let dump = osd::dump(rados)?;
        match dump.pools.iter().find(|p| p.pool_name == dp) {
            None => return Err(invalid("dataPool", format!("pool {dp:?} does not exist; `rookery get pools` lists them"))),
            Some(p) if p.pool_type == 3 && !p.flags_names.split(',').any(|f| f == "ec_overwrites") => {
                return Err(invalid("dataPool", format!("pool {dp} does not allow overwrites, which RBD needs; create it with `rookery apply` (erasureCoded)")))
            }
            Some(_) => {}
        }
    }
    let created = match v.data_pool {
        Some(dp) => rbd::create_with_data_pool(&io, name, size, v.features, dp),
        None => rbd::create(&io, name, size, v.features),
    };
    match created {
        Ok(()) => {}
        Err(e) if e.errno() == Some(-libc::EEXIST) => return Ok(Made::Existed),
        Err(e) => return Err(e.into()),
    }
    // ext4 is what a volume without the key gets, so only other choices cost an open and a write.
    if fs != "ext4" {
        Image::open(&io, name)?.metadata_set(META_FS, fs)?;
    }
    record_now(&io, name);
    Ok(Made::Created { size })
}

/// Names for the ids a clone's parent reference holds, looked up once each.
#[derive(Default)]
struct ParentNames {
    pools: Option<HashMap<i64, String>>,
    images: HashMap<(i64, String), Option<String>>,
    snapshots: HashMap<(i64, String, u64), Option<String>>,
}

impl ParentNames {
    /// `pool/image@snapshot`, or ids where a name cannot be found (a parent in the trash).
    fn describe(
        &mut self,
        rados: &Rados,
        here: &[rbd_objects::Listed],
        p: &rbd_objects::ParentRef,
    ) -> Result<String, VolumeError> {
        if self.pools.is_none() {
            let dump = osd::dump(rados)?;
            self.pools = Some(
                dump.pools
                    .into_iter()
                    .map(|p| (p.pool, p.pool_name))
                    .collect(),
            );
        }
        let pool = self
            .pools
            .as_ref()
            .and_then(|m| m.get(&p.pool_id).cloned())
            .unwrap_or_else(|| p.pool_id.to_string());
        // A parent in the same pool is usually in the listing itself.
        if let Some(parent) = here.iter().find(|l| l.record.id == p.image_id) {
            if let Some(snap) = parent.record.snapshots.iter().find(|s| s.id == p.snap_id) {
                return Ok(format!("{pool}/{}@{}", parent.record.name, snap.name));
            }
        }
        let key = (p.pool_id, p.image_id.clone());
        if !self.images.contains_key(&key) {
            let io = open_pool(rados, &pool)?;
            let name = rbd_objects::image_name(&io, &p.image_id)?;
            self.images.insert(key.clone(), name);
        }
        let skey = (p.pool_id, p.image_id.clone(), p.snap_id);
        if !self.snapshots.contains_key(&skey) {
            let io = open_pool(rados, &pool)?;
            let header = io.omap_all(
                &format!("rbd_header.{}", p.image_id),
                &format!("snapshot_{:016x}", p.snap_id),
            );
            let name = header
                .ok()
                .and_then(|kv| kv.into_iter().next())
                .and_then(|(k, v)| rbd_objects::decode_snapshot(&v, &k).ok())
                .map(|s| s.name);
            self.snapshots.insert(skey.clone(), name);
        }
        let image = self.images[&key]
            .clone()
            .unwrap_or_else(|| p.image_id.clone());
        let snap = self.snapshots[&skey]
            .clone()
            .unwrap_or_else(|| p.snap_id.to_string());
        Ok(format!("{pool}/{image}@{snap}"))
    }
}

/// What a listing of one pool has read: the images' objects, the pool's index and this host's records.
struct PoolView<'a> {
    rados: &'a Rados,
    pool: &'a str,
    all: &'a [rbd_objects::Listed],
    index: &'a PoolIndex,
    mounts: &'a [MountRecord],
}

/// What a volume listing shows of one image.
fn volume_of(
    view: &PoolView,
    listed: &rbd_objects::Listed,
    parents: &mut ParentNames,
) -> Result<VolumeInfo, VolumeError> {
    let PoolView {
        rados,
        pool,
        all,
        index,
        mounts,
    } = *view;
    let r = &listed.record;
    // `read_and_record` measured every image without a usable object map; one still unmeasured vanished
    // while it was read.
    let used_bytes = listed.used.unwrap_or(0);
    let parent = match &r.parent {
        Some(p) => Some(parents.describe(rados, all, p)?),
        None => None,
    };
    Ok(VolumeInfo {
        pool: pool.to_string(),
        name: r.name.clone(),
        size_bytes: r.size,
        used_bytes,
        fs: r
            .metadata
            .get(META_FS)
            .cloned()
            .unwrap_or_else(|| "ext4".into()),
        features: features::names(r.features)
            .into_iter()
            .map(String::from)
            .collect(),
        snapshots: r
            .snapshots
            .iter()
            .map(|s| SnapshotInfo {
                name: s.name.clone(),
                size_bytes: s.size,
            })
            .collect(),
        parent,
        holders: index.holders.get(&r.name).cloned().unwrap_or_default(),
        mounts: mounts
            .iter()
            .filter(|m| m.pool == pool && m.volume == r.name)
            .cloned()
            .collect(),
        claim: index.claims.get(&r.name).cloned(),
    })
}

fn mounts_here(data_dir: &Path) -> Vec<MountRecord> {
    Records::open(data_dir).map(|r| r.list).unwrap_or_default()
}

/// Reads images from their objects, measures those without a usable object map (opened read-only), and
/// records them in the pool's index.
fn read_and_record(
    io: &IoCtx,
    names: &[(String, String)],
) -> Result<Vec<rbd_objects::Listed>, VolumeError> {
    let mut listed = rbd_objects::read_images(io, names)?;
    for l in listed.iter_mut().filter(|l| l.used.is_none()) {
        match Image::open_read_only(io, &l.record.name) {
            Ok(image) => l.used = Some(image.used_bytes()?),
            Err(e) if e.errno() == Some(-libc::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Recording only makes the next listing faster: a full pool refuses it, which costs nothing else.
    if let Err(e) = index::store_images(io, &listed) {
        tracing::debug!(error = %e, "the images read were not recorded in the pool's index");
    }
    Ok(listed)
}

/// Each named image (name, id) as the pool's index has it when its entry is of that image and younger
/// than `max_age`, else read again and recorded. Returns them in the order given (those removed meanwhile
/// left out) and how many were read again.
fn current(
    io: &IoCtx,
    names: &[(String, String)],
    index: &PoolIndex,
    max_age: Duration,
) -> Result<(Vec<rbd_objects::Listed>, usize), VolumeError> {
    let stale = stale_of(names, index, index::now_unix(), max_age);
    let stale_names: std::collections::HashSet<&str> =
        stale.iter().map(|(n, _)| n.as_str()).collect();
    let mut read: HashMap<String, rbd_objects::Listed> = read_and_record(io, &stale)?
        .into_iter()
        .map(|l| (l.record.name.clone(), l))
        .collect();
    let listed = names
        .iter()
        .filter_map(|(name, _)| {
            // A stale entry read again is replaced; one that vanished meanwhile is left out.
            if stale_names.contains(name.as_str()) {
                read.remove(name)
            } else {
                index.images.get(name).map(|c| c.listed.clone())
            }
        })
        .collect();
    Ok((listed, stale.len()))
}

/// The images (name, id) whose index entry is missing, of another image of that name, or `max_age` old.
fn stale_of(
    names: &[(String, String)],
    index: &PoolIndex,
    now_unix: u64,
    max_age: Duration,
) -> Vec<(String, String)> {
    names
        .iter()
        .filter(|(name, id)| {
            !index
                .images
                .get(name)
                .is_some_and(|c| c.listed.record.id == *id && c.age(now_unix) < max_age)
        })
        .cloned()
        .collect()
}

/// The named images (name, id) of a pool as a listing shows them: from the pool's index when fresh
/// (see [`index::MAX_AGE`]), else read from their objects (and recorded).
pub fn current_images(
    io: &IoCtx,
    names: &[(String, String)],
) -> Result<Vec<rbd_objects::Listed>, VolumeError> {
    let index = index::read(io)?;
    Ok(current(io, names, &index, index::MAX_AGE)?.0)
}

/// Re-reads the pool index's image entries that are [`index::REFRESH_AFTER`] old (and those missing),
/// and drops entries of images that are gone: run in the background so listings find them fresh.
/// Returns how many images were read.
pub fn refresh_index(rados: &Rados, pool: &str) -> Result<usize, VolumeError> {
    let io = open_pool(rados, pool)?;
    let names = rbd_objects::directory(&io, "")?;
    let index = index::read(&io)?;
    let (_, read) = current(&io, &names, &index, index::REFRESH_AFTER)?;
    let here: std::collections::HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let gone: Vec<&str> = index
        .images
        .keys()
        .map(String::as_str)
        .filter(|n| !here.contains(n))
        .collect();
    index::forget_images(&io, &gone)?;
    Ok(read)
}

/// Records the image of volume `name` as it is now (after a change rookery made); a failure only makes
/// the next listing read it itself.
fn record_now(io: &IoCtx, name: &str) {
    let recorded = rbd_objects::image_id(io, name)
        .map_err(VolumeError::from)
        .and_then(|id| match id {
            Some(id) => read_and_record(io, &[(name.to_string(), id)]).map(drop),
            None => Ok(()),
        });
    if let Err(e) = recorded {
        tracing::debug!(volume = name, error = %e, "not recorded in the pool's index");
    }
}

/// One volume, read without opening its image (so it answers on a full pool too).
pub fn info(
    rados: &Rados,
    data_dir: &Path,
    pool: &str,
    name: &str,
) -> Result<VolumeInfo, VolumeError> {
    let io = open_pool(rados, pool)?;
    let not_found = || {
        VolumeError::NotFound(format!(
            "there is no volume {name:?} in pool {pool:?}; `rookery volume list` shows them"
        ))
    };
    let id = rbd_objects::image_id(&io, name)?.ok_or_else(not_found)?;
    let listed = read_and_record(&io, &[(name.to_string(), id)])?;
    let one = listed.first().ok_or_else(not_found)?;
    let mut index = PoolIndex::default();
    index.holders.insert(
        name.to_string(),
        crate::attach::read_holders(&io, name).unwrap_or_default(),
    );
    // Volumes made before the index recorded claims have theirs only in the CSI journal.
    if let Some(claim) = index::claim(&io, name)?.or_else(|| claim_of(&io, name)) {
        index.claims.insert(name.to_string(), claim);
    }
    let mounts = mounts_here(data_dir);
    let view = PoolView {
        rados,
        pool,
        all: &listed,
        index: &index,
        mounts: &mounts,
    };
    volume_of(&view, one, &mut ParentNames::default())
}

/// Every volume of a pool, in name order: the images' objects read many at once, the holders and claims
/// from the pool's index, never an image opened (except to measure one without a usable object map).
pub fn list(rados: &Rados, data_dir: &Path, pool: &str) -> Result<Vec<VolumeInfo>, VolumeError> {
    let io = open_pool(rados, pool)?;
    let names = rbd_objects::directory(&io, "")?;
    let index = index::read(&io)?;
    let (listed, _) = current(&io, &names, &index, index::MAX_AGE)?;
    let mounts = mounts_here(data_dir);
    let view = PoolView {
        rados,
        pool,
        all: &listed,
        index: &index,
        mounts: &mounts,
    };
    let mut parents = ParentNames::default();
    listed
        .iter()
        .map(|l| volume_of(&view, l, &mut parents))
        .collect()
}

/// Grows a volume; if it is mounted on this host, the loop device and the filesystem grow with it. Returns
/// notes for the user (e.g. a filesystem that can only grow at its next mount here).
pub fn resize(
    rados: &Rados,
    data_dir: &Path,
    pool: &str,
    name: &str,
    size: u64,
    over_commit: bool,
) -> Result<Vec<String>, VolumeError> {
    let io = open_pool(rados, pool)?;
    let image = open_image(&io, pool, name)?;
    let current = image.size()?;
    if size < current {
        return Err(invalid("size", format!(
            "{}: volume {name} is {}; shrinking would cut off the end of its filesystem and lose data, so rookery only grows volumes",
            human(size),
            human(current)
        )));
    }
    if size == current {
        return Ok(Vec::new());
    }
    if let Some(ceiling) = pool_ceiling(rados, pool)? {
        if ceiling.refuses(size, over_commit) {
            return Err(ceiling.refusal(pool, size, over_commit));
        }
    }
    image.resize(size)?;
    record_now(&io, name);
    let mut notes = Vec::new();
    for m in mounts_here(data_dir)
        .iter()
        .filter(|m| m.pool == pool && m.volume == name && m.alive())
    {
        // The FUSE server reports the new size on the next stat (after its 1 s attribute timeout); wait for it.
        let file = m.fuse_dir.join(name);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&file).map(|md| md.len()).unwrap_or(0) < size
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        loopdev::refresh_capacity(&m.loop_device)?;
        if !m.read_only {
            if let tools::Grown::AtNextMount(why) = tools::grow(&m.loop_device, &m.path, &m.fstype)?
            {
                notes.push(format!(
                    "the volume is {} now, but the filesystem at {} keeps its size until the volume is next mounted: {why}",
                    human(size),
                    m.path.display()
                ));
            }
        }
    }
    Ok(notes)
}

pub fn snapshot_create(
    rados: &Rados,
    pool: &str,
    name: &str,
    snap: &str,
) -> Result<(), VolumeError> {
    validate_name("snapshot", snap)?;
    let io = open_pool(rados, pool)?;
    let image = open_image(&io, pool, name)?;
    if image.snapshots()?.iter().any(|s| s.name == snap) {
        return Err(VolumeError::Exists(format!(
            "volume {name} already has a snapshot {snap:?}; choose another name"
        )));
    }
    image.snapshot_create(snap)?;
    record_now(&io, name);
    Ok(())
}

pub fn snapshot_remove(
    rados: &Rados,
    pool: &str,
    name: &str,
    snap: &str,
) -> Result<(), VolumeError> {
    let io = open_pool(rados, pool)?;
    let image = open_image(&io, pool, name)?;
    if !image.snapshots()?.iter().any(|s| s.name == snap) {
        return Err(VolumeError::NotFound(format!("volume {name} has no snapshot {snap:?}; `rookery volume snapshot list {name}` shows them")));
    }
    let children = children_of_snapshot(rados, pool, name, snap)?;
    if !children.is_empty() {
        return Err(VolumeError::InUse(format!(
            "snapshot {name}@{snap} has clones that depend on it: {}; remove or flatten them first (`rookery volume flatten NAME`)",
            children.join(", ")
        )));
    }
    image.snapshot_remove(snap)?;
    record_now(&io, name);
    Ok(())
}

/// Clones of `name@snap`, found by looking at the parents of the pool's images.
fn children_of_snapshot(
    rados: &Rados,
    pool: &str,
    name: &str,
    snap: &str,
) -> Result<Vec<String>, VolumeError> {
    let io = open_pool(rados, pool)?;
    let mut out = Vec::new();
    for other in rbd::list(&io)? {
        if let Ok(img) = Image::open_read_only(&io, &other) {
            if let Ok(Some(p)) = img.parent() {
                if p.pool == pool && p.image == name && p.snapshot == snap {
                    out.push(other);
                }
            }
        }
    }
    Ok(out)
}

pub fn clone(
    rados: &Rados,
    pool: &str,
    name: &str,
    snap: &str,
    new: &str,
    flatten: bool,
) -> Result<(), VolumeError> {
    let made = clone_volume(
        rados,
        &NewClone {
            from: CloneSource::Snapshot {
                pool,
                volume: name,
                snap,
            },
            pool,
            name: new,
            min_size: 0,
            features: mapper::default_features(),
            flatten,
        },
    )?;
    refuse_existing(made, pool, new)
}

/// Where a clone's data comes from.
pub enum CloneSource<'a> {
    Snapshot {
        pool: &'a str,
        volume: &'a str,
        snap: &'a str,
    },
    /// A volume as it is now, through a snapshot `temporary` made for the clone and removed after it. Its
    /// name should be the same on a retry, so a crashed attempt's snapshot is reused, not left behind.
    Volume {
        pool: &'a str,
        volume: &'a str,
        temporary: &'a str,
    },
}

/// What [`clone_volume`] makes.
pub struct NewClone<'a> {
    pub from: CloneSource<'a>,
    pub pool: &'a str,
    pub name: &'a str,
    /// The clone has its source's size, grown to this when that is smaller.
    pub min_size: u64,
    pub features: u64,
    /// Copy the parent's data in at once, so the clone no longer depends on it.
    pub flatten: bool,
}

/// Clones a snapshot or a volume into a new volume with the source's filesystem. An existing target is
/// [`Made::Existed`], left as it is.
pub fn clone_volume(rados: &Rados, c: &NewClone) -> Result<Made, VolumeError> {
    validate_name("volume", c.name)?;
    let (src_pool, src, snap, temporary) = match c.from {
        CloneSource::Snapshot { pool, volume, snap } => (pool, volume, snap, false),
        CloneSource::Volume {
            pool,
            volume,
            temporary,
        } => (pool, volume, temporary, true),
    };
    let src_io = open_pool(rados, src_pool)?;
    let image = open_image(&src_io, src_pool, src)?;
    if temporary {
        match image.snapshot_create(snap) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(-libc::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    } else if !image.snapshots()?.iter().any(|s| s.name == snap) {
        return Err(VolumeError::NotFound(format!("volume {src} has no snapshot {snap:?}; create it with `rookery volume snapshot create {src} {snap}`")));
    }
    let made = clone_snapshot(rados, &src_io, &image, src, snap, c);
    if temporary {
        // The clone is flattened (or failed): nothing depends on the snapshot any more.
        let _ = image.snapshot_remove(snap);
    }
    record_now(&src_io, src);
    if matches!(made, Ok(Made::Created { .. })) {
        if let Ok(io) = open_pool(rados, c.pool) {
            record_now(&io, c.name);
        }
    }
    made
}

fn clone_snapshot(
    rados: &Rados,
    src_io: &IoCtx,
    image: &Image,
    src: &str,
    snap: &str,
    c: &NewClone,
) -> Result<Made, VolumeError> {
    let fs = image
        .metadata_get(META_FS)?
        .unwrap_or_else(|| "ext4".into());
    let io = open_pool(rados, c.pool)?;
    match rbd::clone(src_io, src, snap, &io, c.name, c.features) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(-libc::EEXIST) => return Ok(Made::Existed),
        Err(e) => return Err(e.into()),
    }
    let child = Image::open(&io, c.name)?;
    child.metadata_set(META_FS, &fs)?;
    let mut size = child.size()?;
    if size < c.min_size {
        child.resize(c.min_size)?;
        size = c.min_size;
    }
    if c.flatten {
        child.flatten()?;
    }
    Ok(Made::Created { size })
}

pub fn flatten(rados: &Rados, pool: &str, name: &str) -> Result<(), VolumeError> {
    let io = open_pool(rados, pool)?;
    let image = open_image(&io, pool, name)?;
    if image.parent()?.is_none() {
        return Err(VolumeError::NotAClone(format!(
            "volume {name} is not a clone (or is flattened already); it depends on no snapshot, so there is nothing to flatten"
        )));
    }
    image.flatten()?;
    record_now(&io, name);
    Ok(())
}

/// Removes a volume: refused while it is mounted anywhere, has snapshots, or has clones.
///
/// The volume leaves the list at once (a trash move); its data is deleted in the background by the
/// supervisor ([`trashed`], [`purge`]), as ceph-csi leaves it to the mgr. Measured on a 3-OSD cluster, a trash move
/// costs about a third of a full removal, and the mgr's task queue (one command per image, handled one at a
/// time by its Python module) was the slowest step of all when many volumes went at once.
pub fn remove(rados: &Rados, pool: &str, name: &str) -> Result<(), VolumeError> {
    let io = open_pool(rados, pool)?;
    // Under the claim lock, so a mount cannot slip in between the checks and the removal.
    let claim = crate::attach::ClaimLock::take(&io, name)?;
    // Most volumes being removed have no snapshots and nobody using them: that is told without opening
    // the image. Anything else takes the full look, which names what is in the way.
    let claim = match rbd::in_use_without_open(&io, name, WATCHER_ANSWER)? {
        Some(u) if u.snapshots == 0 => {
            refuse_if_in_use(&io, name, u.watchers)?;
            claim
        }
        _ => full_checks(rados, &io, pool, name, claim)?,
    };
    rbd::trash_move(&io, name)?;
    // The holder record goes, and with it the claim lock (a lock lives on its object).
    claim.remove_object(name);
    Ok(())
}

/// How long a client that has a volume open gets to answer before it counts as a user anyway.
const WATCHER_ANSWER: Duration = Duration::from_secs(3);

/// Refuses a removal while a live holder mounts the volume or another client has it open (`watchers`:
/// clients watching its header, none of them us).
fn refuse_if_in_use(io: &IoCtx, name: &str, watchers: usize) -> Result<(), VolumeError> {
    let here = crate::holder::this_host();
    let watched = watchers > 0;
    let live: Vec<String> = crate::attach::read_holders(io, name)?
        .into_iter()
        .filter(|h| {
            crate::holder::liveness(h, &here, crate::attach::fuse_serves, watched)
                == crate::holder::Liveness::Alive
        })
        .map(|h| h.to_string())
        .collect();
    if !live.is_empty() {
        return Err(VolumeError::InUse(format!(
            "volume {name} is mounted by {}; unmount it first (`rookery volume unmount {name}`)",
            live.join(", ")
        )));
    }
    if watched {
        return Err(VolumeError::InUse(format!(
            "volume {name} is open by {watchers} other client(s); unmount it everywhere first"
        )));
    }
    Ok(())
}

/// The checks of [`remove`] with the image open: it exists, is unused, and has no snapshots or clones.
/// Gives the claim back for the removal; for a volume that does not exist, drops it with its object
/// (taking the lock created it).
fn full_checks<'a>(
    rados: &Rados,
    io: &IoCtx,
    pool: &str,
    name: &str,
    claim: crate::attach::ClaimLock<'a>,
) -> Result<crate::attach::ClaimLock<'a>, VolumeError> {
    // Read-only: the checks need no watch of our own (registering and dropping one are two writes to the
    // header), and with none of ours, every watcher is another client.
    let image = match Image::open_read_only(io, name) {
        Ok(image) => image,
        Err(e) if e.errno() == Some(-libc::ENOENT) => {
            claim.remove_object(name);
            return Err(VolumeError::NotFound(format!(
                "there is no volume {name:?} in pool {pool:?}; `rookery volume list` shows them"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    refuse_if_in_use(io, name, image.watchers()?)?;
    let snaps = image.snapshots()?;
    let mut clones = Vec::new();
    for s in &snaps {
        clones.extend(
            children_of_snapshot(rados, pool, name, &s.name)?
                .into_iter()
                .map(|c| format!("{c} (from @{})", s.name)),
        );
    }
    if !clones.is_empty() {
        return Err(VolumeError::InUse(format!(
            "volume {name} has clones that depend on it: {}; remove them or flatten them first",
            clones.join(", ")
        )));
    }
    if !snaps.is_empty() {
        let names: Vec<String> = snaps.iter().map(|s| s.name.clone()).collect();
        return Err(VolumeError::InUse(format!(
            "volume {name} has snapshots: {}; remove them first (`rookery volume snapshot rm {name} SNAPSHOT`)",
            names.join(", ")
        )));
    }
    Ok(claim)
}

/// A removed volume whose data is still to be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Trashed {
    pub pool: String,
    pub id: String,
    pub name: String,
}

impl std::fmt::Display for Trashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} (id {})", self.pool, self.name, self.id)
    }
}

/// The volumes [`remove`] moved to the trash, in every RBD pool, that may be purged now: entries a client
/// put there whose deferment has passed (what `rbd trash purge` would take).
pub fn trashed(rados: &Rados) -> Result<Vec<Trashed>, VolumeError> {
    let dump = osd::dump(rados)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut out = Vec::new();
    for pool in dump
        .pools
        .iter()
        .filter(|p| p.application_metadata.contains_key("rbd"))
    {
        let io = match rados.ioctx(&pool.pool_name) {
            Ok(io) => io,
            // Deleted since the dump.
            Err(e) if e.errno() == Some(-libc::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        out.extend(
            rbd::trash_list(&io)?
                .into_iter()
                .filter(|t| t.by_user && t.deferment_end <= now)
                .map(|t| Trashed {
                    pool: pool.pool_name.clone(),
                    id: t.id,
                    name: t.name,
                }),
        );
    }
    Ok(out)
}

/// Deletes a trashed volume's data (run by the supervisor in the background). Not forced: an image a user
/// deferred stays until its time.
pub fn purge(rados: &Rados, t: &Trashed) -> Result<(), VolumeError> {
    let io = rados.ioctx(&t.pool)?;
    rbd::trash_remove(&io, &t.id, false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_are_read_again_when_missing_replaced_or_old() {
        let entry = |id: &str, read_unix: u64| index::Catalogued {
            listed: rbd_objects::Listed {
                record: rbd_objects::ImageRecord {
                    name: String::new(),
                    id: id.into(),
                    size: 1,
                    order: 22,
                    features: 0,
                    flags: 0,
                    snapshots: Vec::new(),
                    parent: None,
                    metadata: HashMap::new(),
                },
                used: Some(0),
            },
            read_unix,
        };
        let mut index = PoolIndex::default();
        index.images.insert("fresh".into(), entry("1", 1000));
        index.images.insert("old".into(), entry("2", 700));
        index.images.insert("replaced".into(), entry("3", 1000));
        let names: Vec<(String, String)> = [
            ("fresh", "1"),
            ("old", "2"),
            ("replaced", "9"),
            ("new", "4"),
        ]
        .iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect();
        let stale: Vec<String> = stale_of(&names, &index, 1060, Duration::from_secs(180))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(stale, ["old", "replaced", "new"]);
    }

    #[test]
    fn a_quota_below_the_capacity_is_the_ceiling_and_named() {
        let gib = 1u64 << 30;
        // 30 GiB raw, three copies: 10 GiB; a 256 MiB quota is less.
        let c = ceiling_of(30 * gib, 3, 256 << 20);
        assert_eq!(
            c,
            Ceiling {
                bytes: 256 << 20,
                quota: true,
                capacity: 10 * gib,
            }
        );
        assert!(c.refuses(gib, false));
        let said = c.refusal("replicapool", gib, false).to_string();
        assert!(
            said.contains("1Gi: pool replicapool can never hold more than 256Mi (its quota)"),
            "{said}"
        );
        assert!(said.contains("spec.quotas.maxSize"), "{said}");
        assert!(said.contains("--over-commit"), "{said}");
        // Over-committed on purpose: past the quota, never past the OSDs.
        assert!(!c.refuses(gib, true));
        assert!(c.refuses(11 * gib, true));
        let said = c.refusal("replicapool", 11 * gib, true).to_string();
        assert!(
            said.contains("more than 10Gi (its OSDs' capacity"),
            "{said}"
        );
        // No quota, or one above the capacity: the capacity.
        assert_eq!(
            ceiling_of(30 * gib, 3, 0),
            Ceiling {
                bytes: 10 * gib,
                quota: false,
                capacity: 10 * gib,
            }
        );
        assert_eq!(
            ceiling_of(30 * gib, 3, 40 * gib),
            Ceiling {
                bytes: 10 * gib,
                quota: false,
                capacity: 10 * gib,
            }
        );
        assert!(ceiling_of(30 * gib, 3, 0)
            .refusal("p", 11 * gib, false)
            .to_string()
            .contains("add OSDs"));
    }
}
