//! Volume and snapshot ids, and the image names derived from CO-given names.
//!
//! A CreateVolume name maps to one image name by a hash (`csi-vol-<32 hex>`), so the mapping lives in Ceph
//! itself: a restarted or second controller finds the same image, and two concurrent requests race on
//! librbd's exclusive create instead of making two images. The image's metadata keeps the full name, so a
//! hash collision is detected instead of served.

use sha2::{Digest, Sha256};

/// Journal keys of the claim a volume serves (the CO passes them as parameters of CreateVolume).
pub const META_CLAIM: &str = "csi.storage.k8s.io/pvc/name";
pub const META_NAMESPACE: &str = "csi.storage.k8s.io/pvc/namespace";
pub const META_PV: &str = "csi.storage.k8s.io/pv/name";

fn digest(prefix: &str, name: &str) -> String {
    let h = Sha256::digest(name.as_bytes());
    format!("{prefix}{}", &hex::encode(h)[..32])
}

pub fn image_for(name: &str) -> String {
    digest("csi-vol-", name)
}

pub fn snapshot_for(name: &str) -> String {
    digest("csi-snap-", name)
}

/// `<pool>/<image>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeId {
    pub pool: String,
    pub image: String,
}

impl VolumeId {
    pub fn parse(id: &str) -> Option<VolumeId> {
        let (pool, image) = id.split_once('/')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        (ok(pool) && ok(image)).then(|| VolumeId {
            pool: pool.into(),
            image: image.into(),
        })
    }
}

impl std::fmt::Display for VolumeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.pool, self.image)
    }
}

/// `<pool>/<image>@<snapshot>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotId {
    pub volume: VolumeId,
    pub snap: String,
}

impl SnapshotId {
    pub fn parse(id: &str) -> Option<SnapshotId> {
        let (vol, snap) = id.split_once('@')?;
        let volume = VolumeId::parse(vol)?;
        let ok = !snap.is_empty()
            && snap
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        ok.then(|| SnapshotId {
            volume,
            snap: snap.into(),
        })
    }
}

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.volume, self.snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_stable_image_names() {
        assert_eq!(image_for("pvc-1"), image_for("pvc-1"));
        assert_ne!(image_for("pvc-1"), image_for("pvc-2"));
        assert!(image_for("pvc-1").starts_with("csi-vol-"));
        assert_eq!(image_for("x").len(), "csi-vol-".len() + 32);
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let v = VolumeId::parse("replicapool/csi-vol-ab").unwrap();
        assert_eq!(v.to_string(), "replicapool/csi-vol-ab");
        let s = SnapshotId::parse("replicapool/csi-vol-ab@csi-snap-cd").unwrap();
        assert_eq!(s.volume, v);
        assert_eq!(s.to_string(), "replicapool/csi-vol-ab@csi-snap-cd");
        for bad in ["", "nopool", "/x", "p/", "p/a b", "p/x/y"] {
            assert!(VolumeId::parse(bad).is_none(), "{bad}");
        }
        assert!(SnapshotId::parse("p/x").is_none());
        assert!(SnapshotId::parse("p/x@").is_none());
    }
}
