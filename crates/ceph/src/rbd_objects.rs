//! RBD images of a pool read from their RADOS objects, without opening any image.
//!
//! Opening an image costs several round trips, a watch and (on a full pool) writes that wait; listing
//! thousands of them that way takes minutes. What a listing shows is in three kinds of objects, read many
//! at once ([`IoCtx::read_many`]):
//! - `rbd_directory`: omap `name_<image>` → the image's id (a length-prefixed string);
//! - `rbd_header.<id>`: omap `size` (u64), `order` (u8), `features` (u64), `flags` (u64, absent = 0),
//!   `snapshot_<16 hex id>` (a versioned `cls_rbd_snap`), `parent` (a versioned `cls_rbd_parent`),
//!   `metadata_<key>` (the raw value);
//! - `rbd_object_map.<id>`: a `BitVector<2>` of object states, which `rbd du` and librbd's fast-diff use
//!   for the bytes an image holds.
//!
//! The formats are Ceph's on-disk ones (cls_rbd, stable since nautilus); the end-to-end tests compare
//! every field with what librbd answers for the same images.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::object_reads::{ObjectRead, ObjectReply};
use crate::rbd::features;
use crate::{CephError, IoCtx};

pub const DIRECTORY: &str = "rbd_directory";
const NAME_PREFIX: &str = "name_";
const SNAPSHOT_PREFIX: &str = "snapshot_";
const METADATA_PREFIX: &str = "metadata_";
/// Header flags: the object map (bit 0) or the fast-diff state in it (bit 1) cannot be trusted.
const FLAGS_MAP_INVALID: u64 = 0b11;
/// `CEPH_NOSNAP`: a parent reference without a snapshot is no parent.
const NO_SNAP: u64 = u64::MAX - 1;

/// One image as its objects describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    pub id: String,
    pub size: u64,
    pub order: u8,
    pub features: u64,
    pub flags: u64,
    /// Snapshots in id order (as librbd lists them).
    pub snapshots: Vec<SnapshotRecord>,
    pub parent: Option<ParentRef>,
    /// Image metadata (`rbd image-meta`), by key.
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: u64,
    pub name: String,
    pub size: u64,
}

/// Where a clone's data comes from, as ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    pub pool_id: i64,
    pub namespace: String,
    pub image_id: String,
    pub snap_id: u64,
}

/// A decoding failure: the object is not in the format this version knows.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct FormatError {
    what: String,
    why: &'static str,
}

/// Little-endian reader over Ceph's encoding.
struct Decoder<'a> {
    bytes: &'a [u8],
    what: &'a str,
}

impl<'a> Decoder<'a> {
    fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Decoder { bytes, what }
    }

    fn fail(&self, why: &'static str) -> FormatError {
        FormatError {
            what: self.what.to_string(),
            why,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.bytes.len() < n {
            return Err(self.fail("too short"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, FormatError> {
        let len = self.u32()? as usize;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.fail("a string is not UTF-8"))
    }

    /// `ENCODE_START`'s header: version, oldest compatible version, and the payload as its own decoder.
    fn versioned(&mut self) -> Result<(u8, u8, Decoder<'a>), FormatError> {
        let v = self.u8()?;
        let compat = self.u8()?;
        let len = self.u32()? as usize;
        let body = self.take(len)?;
        Ok((v, compat, Decoder::new(body, self.what)))
    }
}

fn u64_value(bytes: &[u8], what: &str) -> Result<u64, FormatError> {
    Decoder::new(bytes, what).u64()
}

/// `name_<image>` → `<id>` entries of a directory page, as (name, id).
pub fn directory_entries(omap: &[(String, Vec<u8>)]) -> Result<Vec<(String, String)>, FormatError> {
    omap.iter()
        .filter_map(|(k, v)| k.strip_prefix(NAME_PREFIX).map(|name| (name, v)))
        .map(|(name, v)| Ok((name.to_string(), Decoder::new(v, DIRECTORY).string()?)))
        .collect()
}

/// A snapshot record (`cls_rbd_snap`, any version): its id, name and the image size at the snapshot.
pub fn decode_snapshot(bytes: &[u8], what: &str) -> Result<SnapshotRecord, FormatError> {
    let (_, _, mut body) = Decoder::new(bytes, what).versioned()?;
    Ok(SnapshotRecord {
        id: body.u64()?,
        name: body.string()?,
        size: body.u64()?,
    })
}

/// The head's parent (`cls_rbd_parent` v1 or v2), if the head still reads through one.
pub fn decode_parent(bytes: &[u8], what: &str) -> Result<Option<ParentRef>, FormatError> {
    let (v, _, mut body) = Decoder::new(bytes, what).versioned()?;
    let pool_id = body.u64()? as i64;
    let (namespace, image_id, snap_id, has_overlap) = if v >= 2 {
        let namespace = body.string()?;
        let image_id = body.string()?;
        let snap_id = body.u64()?;
        // v2 keeps the reference after a detach and says so by dropping the head's overlap.
        let has_overlap = body.u8()? != 0;
        (namespace, image_id, snap_id, has_overlap)
    } else {
        let image_id = body.string()?;
        let snap_id = body.u64()?;
        (String::new(), image_id, snap_id, true)
    };
    let exists = pool_id >= 0 && !image_id.is_empty() && snap_id != NO_SNAP;
    Ok((exists && has_overlap).then_some(ParentRef {
        pool_id,
        namespace,
        image_id,
        snap_id,
    }))
}

/// An image's header omap as a record.
pub fn decode_header(
    name: &str,
    id: &str,
    omap: &[(String, Vec<u8>)],
) -> Result<ImageRecord, FormatError> {
    let what = format!("rbd_header.{id}");
    let mut rec = ImageRecord {
        name: name.to_string(),
        id: id.to_string(),
        size: 0,
        order: 0,
        features: 0,
        flags: 0,
        snapshots: Vec::new(),
        parent: None,
        metadata: HashMap::new(),
    };
    let (mut has_size, mut has_order) = (false, false);
    for (key, value) in omap {
        match key.as_str() {
            "size" => {
                rec.size = u64_value(value, &what)?;
                has_size = true;
            }
            "order" => {
                rec.order = Decoder::new(value, &what).u8()?;
                has_order = true;
            }
            "features" => rec.features = u64_value(value, &what)?,
            "flags" => rec.flags = u64_value(value, &what)?,
            "parent" => rec.parent = decode_parent(value, &what)?,
            k => {
                if k.starts_with(SNAPSHOT_PREFIX) {
                    rec.snapshots.push(decode_snapshot(value, &what)?);
                } else if let Some(meta) = k.strip_prefix(METADATA_PREFIX) {
                    rec.metadata.insert(
                        meta.to_string(),
                        String::from_utf8_lossy(value).into_owned(),
                    );
                }
            }
        }
    }
    if !(has_size && has_order) {
        return Err(FormatError {
            what,
            why: "no size or order (not a format 2 image header)",
        });
    }
    rec.snapshots.sort_by_key(|s| s.id);
    Ok(rec)
}

impl ImageRecord {
    fn object_size(&self) -> u64 {
        1u64 << self.order.min(63)
    }

    fn objects(&self) -> u64 {
        self.size.div_ceil(self.object_size())
    }

    /// Whether the object map can say what the image holds: kept (fast-diff), valid, and one object per
    /// stripe (fancy striping would need the whole striper).
    pub fn map_is_usable(&self) -> bool {
        let needed = features::OBJECT_MAP | features::FAST_DIFF;
        self.features & needed == needed
            && self.flags & FLAGS_MAP_INVALID == 0
            && self.features & features::STRIPINGV2 == 0
    }

    /// The object map's object, and how many bytes of it hold every state of the image's objects.
    pub fn map_read(&self) -> ObjectRead {
        ObjectRead::data(
            format!("rbd_object_map.{}", self.id),
            MAP_HEADER + self.objects().div_ceil(4) as usize,
        )
    }

    /// Bytes in objects that exist, each counted up to the image's end: what librbd's whole-object diff
    /// from the image's creation (the head's object map) counts.
    pub fn used_from_map(&self, map: &[u8]) -> Result<u64, FormatError> {
        let what = format!("rbd_object_map.{}", self.id);
        let mut d = Decoder::new(map, &what);
        let header_len = d.u32()? as usize;
        let mut header = Decoder::new(d.take(header_len)?, &what);
        let (_, _, mut counted) = header.versioned()?;
        let entries = counted.u64()?;
        let objects = self.objects();
        if entries < objects {
            return Err(FormatError {
                what,
                why: "the object map has fewer entries than the image has objects",
            });
        }
        let data = d.take(objects.div_ceil(4) as usize)?;
        let object_size = self.object_size();
        let mut used = 0u64;
        for i in 0..objects {
            let state = (data[(i / 4) as usize] >> ((3 - (i % 4)) * 2)) & 0b11;
            if state != 0 {
                used += object_size.min(self.size - i * object_size);
            }
        }
        Ok(used)
    }
}

/// Bytes before an object map's states: the u32 header length, then the 14-byte versioned header.
const MAP_HEADER: usize = 4 + 14;

/// A listed image and the bytes it holds (None when only opening it can tell).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listed {
    pub record: ImageRecord,
    pub used: Option<u64>,
}

/// (name, size) of every image of the pool: the directory and one small read per image.
pub fn sizes(io: &IoCtx) -> Result<Vec<(String, u64)>, CephError> {
    let names = directory(io, "")?;
    let replies = io.read_many(
        &names
            .iter()
            .map(|(_, id)| ObjectRead::omap(format!("rbd_header.{id}"), "size"))
            .collect::<Vec<_>>(),
    );
    let mut out = Vec::new();
    for ((name, _), reply) in names.into_iter().zip(replies) {
        let Ok(reply) = reply else { continue };
        if let Some((_, v)) = reply.omap.iter().find(|(k, _)| k == "size") {
            out.push((name, u64_value(v, "size").map_err(format_error)?));
        }
    }
    Ok(out)
}

/// (name, id) of every image whose name starts with `name_prefix`, in name order.
pub fn directory(io: &IoCtx, name_prefix: &str) -> Result<Vec<(String, String)>, CephError> {
    match io.omap_all(DIRECTORY, &format!("{NAME_PREFIX}{name_prefix}")) {
        Ok(entries) => directory_entries(&entries).map_err(format_error),
        // A pool where no image was ever made has no directory.
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The named images' headers (by name and id), read many at once; images gone since are left out.
pub fn read_headers(io: &IoCtx, names: &[(String, String)]) -> Result<Vec<ImageRecord>, CephError> {
    let headers = io.read_many(
        &names
            .iter()
            .map(|(_, id)| ObjectRead::omap(format!("rbd_header.{id}"), ""))
            .collect::<Vec<_>>(),
    );
    let mut records = Vec::with_capacity(names.len());
    for ((name, id), reply) in names.iter().zip(headers) {
        let omap = match reply {
            Ok(ObjectReply {
                omap_more: true, ..
            }) => io.omap_all(&format!("rbd_header.{id}"), "")?,
            Ok(r) => r.omap,
            Err(e) if e.errno() == Some(-libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        records.push(decode_header(name, id, &omap).map_err(format_error)?);
    }
    Ok(records)
}

/// The named images (by name and id) and the bytes they hold, read many at once.
pub fn read_images(io: &IoCtx, names: &[(String, String)]) -> Result<Vec<Listed>, CephError> {
    let records = read_headers(io, names)?;
    let usable: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].map_is_usable())
        .collect();
    let maps = io.read_many(
        &usable
            .iter()
            .map(|&i| records[i].map_read())
            .collect::<Vec<_>>(),
    );
    let mut used: Vec<Option<u64>> = vec![None; records.len()];
    for (&i, reply) in usable.iter().zip(maps) {
        used[i] = reply
            .ok()
            .and_then(|r| records[i].used_from_map(&r.data).ok());
    }
    Ok(records
        .into_iter()
        .zip(used)
        .map(|(record, used)| Listed { record, used })
        .collect())
}

/// The id of image `name`, if the pool has it.
pub fn image_id(io: &IoCtx, name: &str) -> Result<Option<String>, CephError> {
    directory_string(io, &format!("{NAME_PREFIX}{name}"))
}

/// The name of the image with `id`, if the pool has it.
pub fn image_name(io: &IoCtx, id: &str) -> Result<Option<String>, CephError> {
    directory_string(io, &format!("id_{id}"))
}

/// A directory entry's value (a length-prefixed string), if the key is there.
fn directory_string(io: &IoCtx, key: &str) -> Result<Option<String>, CephError> {
    io.omap_get(DIRECTORY, key)?
        .map(|v| Decoder::new(&v, DIRECTORY).string().map_err(format_error))
        .transpose()
}

fn format_error(e: FormatError) -> CephError {
    CephError::InvalidArgument(format!(
        "an RBD object is not in a format this rookery knows ({e}); `rbd info` can still read it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn versioned(v: u8, compat: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![v, compat];
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    // The 60-byte record of snapshot 4 "s1" of a 100 MiB image, as a pacific OSD wrote it.
    fn snapshot_v8() -> Vec<u8> {
        let mut body = 4u64.to_le_bytes().to_vec();
        body.extend(string("s1"));
        body.extend((100u64 << 20).to_le_bytes());
        body.push(2); // protected
        body.extend(0u64.to_le_bytes()); // flags
        body.extend(versioned(1, 1, &0u32.to_le_bytes())); // user namespace
        body.extend([0u8; 8]); // timestamp
        body.extend(0u32.to_le_bytes()); // children
        body.push(0); // no parent overlap
        versioned(8, 8, &body)
    }

    #[test]
    fn a_snapshot_record_gives_its_id_name_and_size() {
        let bytes = snapshot_v8();
        assert_eq!(bytes.len(), 60);
        let s = decode_snapshot(&bytes, "t").unwrap();
        assert_eq!(
            s,
            SnapshotRecord {
                id: 4,
                name: "s1".into(),
                size: 100 << 20
            }
        );
        assert!(decode_snapshot(&bytes[..20], "t").is_err());
    }

    #[test]
    fn a_parent_counts_only_while_the_head_overlaps_it() {
        let mut body = 1u64.to_le_bytes().to_vec();
        body.extend(string(""));
        body.extend(string("101771649ccf"));
        body.extend(4u64.to_le_bytes());
        let mut attached = body.clone();
        attached.push(1);
        attached.extend((100u64 << 20).to_le_bytes());
        let p = decode_parent(&versioned(2, 2, &attached), "t")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.pool_id, p.image_id.as_str(), p.snap_id),
            (1, "101771649ccf", 4)
        );
        let mut detached = body;
        detached.push(0);
        assert_eq!(
            decode_parent(&versioned(2, 2, &detached), "t").unwrap(),
            None
        );
    }

    fn header(size: u64, features: u64, flags: Option<u64>) -> Vec<(String, Vec<u8>)> {
        let mut omap = vec![
            ("features".to_string(), features.to_le_bytes().to_vec()),
            ("metadata_rookery.fs".to_string(), b"xfs".to_vec()),
            ("order".to_string(), vec![22]),
            ("size".to_string(), size.to_le_bytes().to_vec()),
            ("snapshot_0000000000000004".to_string(), snapshot_v8()),
        ];
        if let Some(f) = flags {
            omap.push(("flags".to_string(), f.to_le_bytes().to_vec()));
        }
        omap
    }

    #[test]
    fn a_header_gives_size_features_snapshots_and_metadata() {
        let r = decode_header("img1", "abc", &header(200 << 20, 0x3d, None)).unwrap();
        assert_eq!(r.size, 200 << 20);
        assert_eq!(r.order, 22);
        assert_eq!(r.features, 0x3d);
        assert_eq!(r.snapshots.len(), 1);
        assert_eq!(
            r.metadata.get("rookery.fs").map(String::as_str),
            Some("xfs")
        );
        assert!(r.map_is_usable());
        let invalid = decode_header("img1", "abc", &header(1 << 30, 0x3d, Some(2))).unwrap();
        assert!(!invalid.map_is_usable());
        let no_fast_diff = decode_header("img1", "abc", &header(1 << 30, 0x0d, None)).unwrap();
        assert!(!no_fast_diff.map_is_usable());
        assert!(decode_header("x", "y", &[]).is_err());
    }

    #[test]
    fn the_object_map_counts_existing_objects_up_to_the_image_end() {
        // 50 objects of 4 MiB; objects 0, 3 and 6 exist (as `rbd bench` left a live image).
        let r = decode_header("img1", "abc", &header(200 << 20, 0x3d, None)).unwrap();
        let mut map = 14u32.to_le_bytes().to_vec();
        map.extend(versioned(1, 1, &50u64.to_le_bytes()));
        let mut data = vec![0u8; 13];
        data[0] = 0x41;
        data[1] = 0x04;
        map.extend(&data);
        assert_eq!(r.map_read().data_len, Some(18 + 13));
        assert_eq!(r.used_from_map(&map).unwrap(), 12 << 20);
        // The last object of a 6 MiB image holds 2 MiB at most; CLEAN (3) counts as existing.
        let small = decode_header("s", "abc", &header(6 << 20, 0x3d, None)).unwrap();
        let mut map = 14u32.to_le_bytes().to_vec();
        map.extend(versioned(1, 1, &2u64.to_le_bytes()));
        map.push(0b0111_0000);
        assert_eq!(small.used_from_map(&map).unwrap(), 6 << 20);
        // A map shorter than the image cannot say.
        let mut short = 14u32.to_le_bytes().to_vec();
        short.extend(versioned(1, 1, &1u64.to_le_bytes()));
        short.push(0);
        assert!(small.used_from_map(&short).is_err());
    }

    #[test]
    fn directory_entries_map_names_to_ids() {
        let omap = vec![
            ("name_a".to_string(), string("10fa")),
            ("name_b".to_string(), string("20fb")),
        ];
        assert_eq!(
            directory_entries(&omap).unwrap(),
            vec![("a".into(), "10fa".into()), ("b".into(), "20fb".into())]
        );
    }
}
