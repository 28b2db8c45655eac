//! Block volumes on this host: expose an RBD image as a block device, format it once, mount it, grow it,
//! and take it all down in the right order. Shared by `rookery volume` and (later) the CSI node service.
//!
//! The mapper is chosen per host ([`mapper::best`]); on hosts without the rbd and nbd kernel modules the
//! image is served as a file by rookery's own FUSE server ([`fuse`], librbd AIO) and a loop device with
//! direct I/O sits on top. The server is the program that links this crate, run as
//! `<program> fuse-serve ...`: it must hand that subcommand to [`fuse::serve`].
//! Who holds a volume is recorded in the image itself ([`holder`]), so a second writer is refused on any
//! host and a holder that died is recognised and released.

pub mod format;
pub mod freeze;
pub mod fuse;
pub mod holder;
pub mod loopdev;
pub mod manage;
pub mod mapper;
pub mod mounts;
pub mod records;
pub mod tools;

mod attach;

pub use attach::{mount, resume_all, suspend_all, unmount, MountRequest};
pub use records::MountRecord;

/// Image metadata keys rookery uses.
pub const META_FS: &str = "rookery.fs";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The request itself is wrong (exit code 2): nothing was changed.
    #[error("{0}")]
    BadRequest(String),
    /// Someone else holds the volume.
    #[error("{0}")]
    Busy(String),
    /// The pool, volume or snapshot asked for does not exist (a bad request too: nothing was changed).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Ceph(#[from] rookery_ceph::CephError),
    #[error(transparent)]
    Tool(#[from] tools::ToolError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

impl VolumeError {
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            VolumeError::BadRequest(_) | VolumeError::Busy(_) | VolumeError::NotFound(_)
        )
    }
}
