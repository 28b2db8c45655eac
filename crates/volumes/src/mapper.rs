//! Which way this host can expose an RBD image as a block device, and which image features that way can
//! open. Kernel rbd and rbd-nbd are detected; rookery maps through its FUSE server + loop, which every Linux host
//! with FUSE and loop devices offers (and the only one on hosts without the kernel modules).

use std::path::Path;

use rookery_ceph::rbd::features;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapper {
    /// The kernel's rbd driver.
    Krbd,
    /// rbd-nbd over the nbd module.
    Nbd,
    /// rookery's FUSE server (librbd AIO) exposes the image as a file; a loop device (direct I/O) makes it a
    /// block device.
    FuseLoop,
}

/// What this host offers, best first.
pub fn available() -> Vec<Mapper> {
    let mut v = Vec::new();
    if Path::new("/sys/bus/rbd").exists() {
        v.push(Mapper::Krbd);
    }
    if Path::new("/sys/module/nbd").exists() {
        v.push(Mapper::Nbd);
    }
    if Path::new("/dev/fuse").exists() && Path::new("/dev/loop-control").exists() {
        v.push(Mapper::FuseLoop);
    }
    v
}

/// The mapper rookery uses on this host. krbd and nbd are reported by `available` but not driven yet,
/// so FUSE + loop is used wherever it exists.
pub fn best() -> Option<Mapper> {
    available().into_iter().find(|m| *m == Mapper::FuseLoop)
}

/// The features a mapper can open. librbd in userspace (the FUSE server, rbd-nbd) opens everything; the kernel
/// lacks journaling and the newer flags.
pub fn supported(m: Mapper) -> u64 {
    match m {
        Mapper::Krbd => {
            features::LAYERING
                | features::STRIPINGV2
                | features::EXCLUSIVE_LOCK
                | features::OBJECT_MAP
                | features::FAST_DIFF
                | features::DEEP_FLATTEN
                | features::DATA_POOL
                | features::OPERATIONS
        }
        Mapper::Nbd | Mapper::FuseLoop => u64::MAX,
    }
}

/// The features new images get: what every mapper can open (so a volume made here can later be mapped by
/// the kernel elsewhere), with object-map and fast-diff for fast usage figures and flatten.
pub fn default_features() -> u64 {
    features::LAYERING
        | features::EXCLUSIVE_LOCK
        | features::OBJECT_MAP
        | features::FAST_DIFF
        | features::DEEP_FLATTEN
}

/// Features of an image that `m` cannot open, with the command that removes them; None when compatible.
pub fn incompatibility(m: Mapper, image: &str, pool: &str, image_features: u64) -> Option<String> {
    let extra = image_features & !supported(m);
    if extra == 0 {
        return None;
    }
    let names = features::names(extra).join(",");
    Some(format!(
        "volume {image} has image features {names}, which the {m:?} mapper cannot open; remove them with: rbd feature disable {pool}/{image} {}",
        names.replace(',', " ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_cannot_open_journaling_and_says_how_to_fix() {
        let f = default_features() | features::JOURNALING;
        let msg = incompatibility(Mapper::Krbd, "v1", "replicapool", f).unwrap();
        assert!(msg.contains("journaling"), "{msg}");
        assert!(
            msg.contains("rbd feature disable replicapool/v1 journaling"),
            "{msg}"
        );
        assert_eq!(
            incompatibility(Mapper::Krbd, "v1", "p", default_features()),
            None
        );
        assert_eq!(incompatibility(Mapper::FuseLoop, "v1", "p", f), None);
    }
}
