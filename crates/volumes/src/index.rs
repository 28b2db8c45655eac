//! The pool's volume index: one RADOS object per pool (`rookery.volumes`) whose omap holds, per volume,
//! who holds it (`holders.<volume>`, JSON) and the Kubernetes claim it serves (`claim.<volume>`,
//! `namespace/name`). A listing reads every volume's records in a few round trips instead of one read per
//! volume.

use std::collections::HashMap;

use rookery_ceph::object_reads::ObjectRead;
use rookery_ceph::IoCtx;

use crate::holder::Holder;
use crate::VolumeError;

pub const OBJECT: &str = "rookery.volumes";
const HOLDERS: &str = "holders.";
const CLAIM: &str = "claim.";

/// Every record of one pool.
#[derive(Debug, Default)]
pub struct PoolIndex {
    pub holders: HashMap<String, Vec<Holder>>,
    pub claims: HashMap<String, String>,
}

pub fn read(io: &IoCtx) -> Result<PoolIndex, VolumeError> {
    let entries = match io.omap_all(OBJECT, "") {
        Ok(e) => e,
        Err(e) if e.errno() == Some(-libc::ENOENT) => return Ok(PoolIndex::default()),
        Err(e) => return Err(e.into()),
    };
    let mut index = PoolIndex::default();
    for (key, value) in entries {
        if let Some(volume) = key.strip_prefix(HOLDERS) {
            // A damaged entry shows as no holder in listings; claims read it strictly (`holders`).
            if let Ok(h) = serde_json::from_slice(&value) {
                index.holders.insert(volume.to_string(), h);
            }
        } else if let Some(volume) = key.strip_prefix(CLAIM) {
            index.claims.insert(
                volume.to_string(),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
    }
    Ok(index)
}

/// The value of one key, if set.
fn get(io: &IoCtx, key: &str) -> Result<Option<Vec<u8>>, VolumeError> {
    let mut read = ObjectRead::omap(OBJECT, key);
    if let Some(range) = read.omap.as_mut() {
        range.max = 1;
    }
    match io.read_one(&read) {
        Ok(r) => Ok(r.omap.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)),
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The holder record of `volume` as stored (None: never recorded here).
pub(crate) fn holders_raw(io: &IoCtx, volume: &str) -> Result<Option<Vec<u8>>, VolumeError> {
    get(io, &format!("{HOLDERS}{volume}"))
}

pub(crate) fn set_holders(io: &IoCtx, volume: &str, json: &[u8]) -> Result<(), VolumeError> {
    io.omap_set(OBJECT, &[(&format!("{HOLDERS}{volume}"), json)])?;
    Ok(())
}

/// The claim `volume` serves, if recorded.
pub fn claim(io: &IoCtx, volume: &str) -> Result<Option<String>, VolumeError> {
    Ok(get(io, &format!("{CLAIM}{volume}"))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

pub fn set_claim(io: &IoCtx, volume: &str, claim: &str) -> Result<(), VolumeError> {
    io.omap_set(OBJECT, &[(&format!("{CLAIM}{volume}"), claim.as_bytes())])?;
    Ok(())
}

/// Drops every record of a volume that is gone.
pub fn forget(io: &IoCtx, volume: &str) -> Result<(), VolumeError> {
    io.omap_remove(
        OBJECT,
        &[&format!("{HOLDERS}{volume}"), &format!("{CLAIM}{volume}")],
    )?;
    Ok(())
}
