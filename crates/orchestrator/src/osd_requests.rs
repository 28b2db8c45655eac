//! Asking for an OSD to leave (`osd rm`) or to move to a new device under its id (`osd replace`). A
//! request is checked when it is made (the OSD exists; the others can hold its data and every pool's
//! copies), then written to `osd-requests.json` in the data dir, which the reconciler carries out step by
//! step (`planners::retire`): out, wait until safe to destroy, stop, purge or destroy, free its device.
//! The same file holds the devices freed that way, which no selection takes again until `disk add` names
//! them. Both the CLI's side and the reconciler change the file under one lock.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::state::ClusterState;
use crate::OrchestratorError;

/// One OSD to retire. `uuid` pins the request to that OSD: ids are reused once an OSD is purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OsdRequest {
    pub id: u32,
    pub uuid: String,
    /// `osd replace`: the device its successor (same id) is made on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub replace_with: Option<PathBuf>,
    pub requested_unix: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsdRequests {
    #[serde(default)]
    pub requests: Vec<OsdRequest>,
    /// Devices freed by `osd rm`: left alone by every selection until `disk add` names them.
    #[serde(default)]
    pub released: Vec<PathBuf>,
}

fn path(layout: &Layout) -> PathBuf {
    layout.root.join("osd-requests.json")
}

impl OsdRequests {
    /// The requests as they are now (none when the file does not exist or cannot be read).
    pub fn load(layout: &Layout) -> OsdRequests {
        std::fs::read(path(layout))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Changes the requests under the file's lock, so the CLI and the reconciler never lose each
    /// other's changes.
    pub fn update<T>(
        layout: &Layout,
        change: impl FnOnce(&mut OsdRequests) -> T,
    ) -> Result<T, OrchestratorError> {
        let lock_path = layout.run_dir().join("osd-requests.lock");
        let lock = File::create(&lock_path).map_err(|e| OrchestratorError::io(&lock_path, e))?;
        // SAFETY: flock on an fd we own; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(OrchestratorError::io(
                &lock_path,
                std::io::Error::last_os_error(),
            ));
        }
        let mut requests = OsdRequests::load(layout);
        let out = change(&mut requests);
        let text =
            serde_json::to_vec_pretty(&requests).map_err(|e| OrchestratorError::Corrupt {
                path: path(layout).display().to_string(),
                detail: e.to_string(),
            })?;
        rookery_ceph::conf::write_atomic(&path(layout), &text, 0o600)?;
        Ok(out)
    }
}

/// Why an OSD cannot leave now; each says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetireError {
    #[error("osd.{id} does not exist; `rookery status` lists the OSDs")]
    NoSuchOsd { id: u32 },
    #[error("pool {pool} keeps {need} copies (or chunks), each on its own OSD, and only {left} OSDs would be left; add an OSD first (attach a device the spec selects, or `rookery disk add DEVICE`), or lower the pool's size")]
    TooFewOsds { pool: String, need: u32, left: u32 },
    #[error("the other OSDs cannot hold osd.{id}'s data: {used} used, {room} free on them below Ceph's full ratio; add an OSD first, or delete data")]
    NoRoom { id: u32, used: String, room: String },
    #[error("{device} cannot take osd.{id}'s place: {why}")]
    BadDevice {
        id: u32,
        device: String,
        why: String,
    },
}

/// One OSD as the check sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OsdFacts {
    pub id: u32,
    pub up: bool,
    pub in_: bool,
    pub kb: u64,
    pub kb_used: u64,
}

/// Data stays off the last 15% of each OSD (Ceph's default nearfull ratio): above it the cluster warns,
/// and backfill stops at 90%.
const FILL_LIMIT: f64 = 0.85;

/// Whether OSD `id` may leave: the up and in OSDs left must number at least each pool's copies, and hold
/// what it holds below the fill limit. Pure: the facts come from `osd dump` and `osd df`.
pub fn refusal(id: u32, osds: &[OsdFacts], pools: &[(String, u32)]) -> Option<RetireError> {
    let Some(leaving) = osds.iter().find(|o| o.id == id) else {
        return Some(RetireError::NoSuchOsd { id });
    };
    let others: Vec<&OsdFacts> = osds
        .iter()
        .filter(|o| o.id != id && o.up && o.in_)
        .collect();
    let left = others.len() as u32;
    if let Some((pool, need)) = pools
        .iter()
        .filter(|(_, n)| *n > left)
        .max_by_key(|(_, n)| *n)
    {
        return Some(RetireError::TooFewOsds {
            pool: pool.clone(),
            need: *need,
            left,
        });
    }
    if !leaving.in_ {
        return None;
    }
    let used: u64 = others.iter().map(|o| o.kb_used).sum::<u64>() + leaving.kb_used;
    let limit = (others.iter().map(|o| o.kb).sum::<u64>() as f64 * FILL_LIMIT) as u64;
    (used > limit).then(|| RetireError::NoRoom {
        id,
        used: crate::preflight::human(used * 1024),
        room: crate::preflight::human(limit * 1024),
    })
}

/// Checks a request against the cluster now and records it; asking again for the same is a no-op.
pub fn request(
    layout: &Layout,
    r: &rookery_ceph::Rados,
    id: u32,
    replace_with: Option<&Path>,
) -> Result<OsdRequest, RequestError> {
    use rookery_ceph::commands::osd;
    let state = ClusterState::load(layout)?
        .ok_or_else(|| OrchestratorError::Other("no cluster here".into()))?;
    let Some(record) = state.osds.iter().find(|o| o.id == Some(id)) else {
        return Err(RetireError::NoSuchOsd { id }.into());
    };
    if let Some(existing) = OsdRequests::load(layout)
        .requests
        .into_iter()
        .find(|q| q.uuid == record.uuid && q.replace_with.as_deref() == replace_with)
    {
        return Ok(existing);
    }
    let dump = osd::dump(r)?;
    let df = osd::df(r)?;
    let facts: Vec<OsdFacts> = dump
        .osds
        .iter()
        .map(|o| {
            let d = df.nodes.iter().find(|n| n.id == i64::from(o.osd));
            OsdFacts {
                id: o.osd,
                up: o.up == 1,
                in_: o.in_ == 1,
                kb: d.map_or(0, |d| d.kb),
                kb_used: d.map_or(0, |d| d.kb_used),
            }
        })
        .collect();
    let pools: Vec<(String, u32)> = dump
        .pools
        .iter()
        .map(|p| (p.pool_name.clone(), p.size))
        .collect();
    // A replacement takes the place of the one that leaves: the pools' copies must fit meanwhile too.
    if let Some(e) = refusal(id, &facts, &pools) {
        return Err(e.into());
    }
    if let Some(device) = replace_with {
        replacement_fits(layout, &state, id, device)?;
    }
    // An OSD file leaves the spec's count before the request is recorded: in between, the planner only
    // sees one file too many (refused, nothing done), never one too few (which it would make again).
    if record.device.is_none() {
        lower_file_count(layout)?;
    }
    let request = OsdRequest {
        id,
        uuid: record.uuid.clone(),
        replace_with: replace_with.map(Path::to_path_buf),
        requested_unix: crate::now_unix(),
    };
    let recorded = request.clone();
    OsdRequests::update(layout, move |q| {
        q.requests.retain(|o| o.uuid != recorded.uuid);
        q.requests.push(recorded);
    })?;
    Ok(request)
}

/// Saves the cluster's spec with `spec.storage.osdFiles.count` one lower (validated as a whole).
fn lower_file_count(layout: &Layout) -> Result<(), OrchestratorError> {
    use crate::resources::{edited_spec, save, saved_docs};
    let other = |e: crate::resources::ResourceError| OrchestratorError::Other(e.to_string());
    let mut cluster = saved_docs(layout)
        .map_err(other)?
        .into_iter()
        .find(|d| d.get("kind").and_then(|k| k.as_str()) == Some("CephCluster"))
        .ok_or_else(|| OrchestratorError::Other("the saved spec has no CephCluster".into()))?;
    let count = cluster
        .get_mut("spec")
        .and_then(|s| s.get_mut("storage"))
        .and_then(|s| s.get_mut("osdFiles"))
        .and_then(|f| f.get_mut("count"));
    if let Some(count) = count {
        let n = count.as_u64().unwrap_or(0);
        *count = serde_yaml::Value::from(n.saturating_sub(1));
    }
    let text =
        serde_yaml::to_string(&cluster).map_err(|e| OrchestratorError::Other(e.to_string()))?;
    let (merged, _) = edited_spec(layout, &text, "osd rm", false).map_err(other)?;
    save(layout, &merged).map_err(other)
}

/// A replacement device must be one a selection naming it would take.
fn replacement_fits(
    layout: &Layout,
    state: &ClusterState,
    id: u32,
    device: &Path,
) -> Result<(), RequestError> {
    use crate::disks::{self, Selection, Verdict};
    let inventory = rookery_platform::devices::inventory();
    let bad = |why: String| RetireError::BadDevice {
        id,
        device: device.display().to_string(),
        why,
    };
    let selection = Selection {
        devices: vec![device.display().to_string()],
        ..Default::default()
    };
    let Some(d) = inventory.iter().find(|d| {
        d.path == device
            || d.name == device.to_string_lossy()
            || d.links.iter().any(|l| l == device)
    }) else {
        return Err(bad("no such block device on this host".into()).into());
    };
    let known = disks::Known::of(layout, Some(state)).map_err(|e| {
        OrchestratorError::Other(format!("reading this cluster's volume mounts: {e}"))
    })?;
    match disks::verdict(d, &selection, &known) {
        Verdict::Take => Ok(()),
        Verdict::Osd { id: Some(other) } => Err(bad(format!("it is osd.{other} already")).into()),
        Verdict::Osd { id: None } => Err(bad("it holds an OSD of this cluster".into()).into()),
        Verdict::Skip { reason } => Err(bad(reason.to_string()).into()),
    }
}

/// A request that could not be made: a refusal (bad input) or a failure to check.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Refused(#[from] RetireError),
    #[error(transparent)]
    Failed(#[from] OrchestratorError),
}

impl From<rookery_ceph::CephError> for RequestError {
    fn from(e: rookery_ceph::CephError) -> Self {
        RequestError::Failed(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn osd(id: u32, kb: u64, kb_used: u64) -> OsdFacts {
        OsdFacts {
            id,
            up: true,
            in_: true,
            kb,
            kb_used,
        }
    }

    #[test]
    fn an_osd_leaves_only_when_the_others_hold_every_copy_and_its_data() {
        let three = [osd(0, 100, 10), osd(1, 100, 10), osd(2, 100, 10)];
        let pools = [("replicapool".to_string(), 2)];
        assert_eq!(refusal(2, &three, &pools), None);
        assert_eq!(
            refusal(2, &three, &[("replicapool".to_string(), 3)]),
            Some(RetireError::TooFewOsds {
                pool: "replicapool".into(),
                need: 3,
                left: 2
            })
        );
        assert_eq!(
            refusal(7, &three, &pools),
            Some(RetireError::NoSuchOsd { id: 7 })
        );
        // Full: 180 KiB used in all, and 170 KiB is 85% of the two that stay.
        let full = [osd(0, 100, 60), osd(1, 100, 60), osd(2, 100, 60)];
        assert!(matches!(
            refusal(2, &full, &pools),
            Some(RetireError::NoRoom { .. })
        ));
        // A down OSD does not count among those left.
        let mut one_down = three.clone();
        one_down[1].up = false;
        assert!(matches!(
            refusal(2, &one_down, &pools),
            Some(RetireError::TooFewOsds { left: 1, .. })
        ));
        let e = refusal(2, &three, &[("replicapool".to_string(), 3)]).unwrap();
        assert!(e.to_string().contains("add an OSD first"));
    }

    #[test]
    fn requests_are_changed_under_a_lock_and_survive_reading() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        std::fs::create_dir_all(l.run_dir()).unwrap();
        assert_eq!(OsdRequests::load(&l), OsdRequests::default());
        OsdRequests::update(&l, |q| {
            q.requests.push(OsdRequest {
                id: 2,
                uuid: "u2".into(),
                replace_with: None,
                requested_unix: 1,
            });
            q.released.push("/dev/loop4".into());
        })
        .unwrap();
        let back = OsdRequests::load(&l);
        assert_eq!(back.requests[0].uuid, "u2");
        assert_eq!(back.released, [PathBuf::from("/dev/loop4")]);
    }
}
