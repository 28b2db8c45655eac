//! The pool's volume index: one RADOS object per pool (`rookery.volumes`) whose omap holds, per volume,
//! who holds it (`holders.<volume>`, JSON) and the Kubernetes claim it serves (`claim.<volume>`,
//! `namespace/name`), and what a listing shows of its image (`image.<volume>`, JSON: the header's facts
//! and the bytes used, with when they were read). A listing reads every volume's records in a few round
//! trips instead of two reads per image.
//!
//! Image entries are written through by every change rookery makes (create, resize, snapshots, clones,
//! flatten) and re-read in the background once they are [`REFRESH_AFTER`] old, so what a listing shows
//! is at most [`MAX_AGE`] old for changes made elsewhere (another tool, and the bytes written).

use std::collections::HashMap;
use std::time::Duration;

use rookery_ceph::rbd_objects::Listed;
use rookery_ceph::IoCtx;
use serde::{Deserialize, Serialize};

use crate::holder::Holder;
use crate::VolumeError;

pub const OBJECT: &str = "rookery.volumes";
const HOLDERS: &str = "holders.";
const CLAIM: &str = "claim.";
const IMAGE: &str = "image.";

/// A listing re-reads image entries older than this.
pub const MAX_AGE: Duration = Duration::from_secs(180);
/// The background refresh re-reads image entries older than this, so listings find them fresh.
pub const REFRESH_AFTER: Duration = Duration::from_secs(120);

/// An image as last read from its objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalogued {
    pub listed: Listed,
    pub read_unix: u64,
}

impl Catalogued {
    pub fn age(&self, now_unix: u64) -> Duration {
        Duration::from_secs(now_unix.saturating_sub(self.read_unix))
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every record of one pool.
#[derive(Debug, Default)]
pub struct PoolIndex {
    pub holders: HashMap<String, Vec<Holder>>,
    pub claims: HashMap<String, String>,
    pub images: HashMap<String, Catalogued>,
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
        } else if let Some(volume) = key.strip_prefix(IMAGE) {
            // An entry this version cannot read is simply read again from the image.
            if let Ok(c) = serde_json::from_slice(&value) {
                index.images.insert(volume.to_string(), c);
            }
        }
    }
    Ok(index)
}

/// The value of one key, if set.
fn get(io: &IoCtx, key: &str) -> Result<Option<Vec<u8>>, VolumeError> {
    Ok(io.omap_get(OBJECT, key)?)
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

/// Records what was just read of these images.
pub fn store_images(io: &IoCtx, listed: &[Listed]) -> Result<(), VolumeError> {
    let now = now_unix();
    for chunk in listed.chunks(256) {
        let entries: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .filter_map(|l| {
                let c = Catalogued {
                    listed: l.clone(),
                    read_unix: now,
                };
                Some((
                    format!("{IMAGE}{}", l.record.name),
                    serde_json::to_vec(&c).ok()?,
                ))
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        io.omap_set(OBJECT, &refs)?;
    }
    Ok(())
}

/// Drops the image entries of volumes that are gone (removed by another tool).
pub fn forget_images(io: &IoCtx, volumes: &[&str]) -> Result<(), VolumeError> {
    for chunk in volumes.chunks(256) {
        let keys: Vec<String> = chunk.iter().map(|v| format!("{IMAGE}{v}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        io.omap_remove(OBJECT, &refs)?;
    }
    Ok(())
}

/// Drops every record of a volume that is gone.
pub fn forget(io: &IoCtx, volume: &str) -> Result<(), VolumeError> {
    io.omap_remove(
        OBJECT,
        &[
            &format!("{HOLDERS}{volume}"),
            &format!("{CLAIM}{volume}"),
            &format!("{IMAGE}{volume}"),
        ],
    )?;
    Ok(())
}
