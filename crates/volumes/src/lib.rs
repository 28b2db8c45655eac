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
pub mod index;
pub mod loopdev;
pub mod manage;
pub mod mapper;
pub mod mounts;
pub mod records;
pub mod room;
pub mod tools;
pub mod unflushed;

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
    /// One field of the request has a value that cannot work; `field` is the request's field name
    /// (`size`, `fs`, `dataPool`, `name`, `snapshot`), which a CLI maps to its own option names.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The volume, snapshot or pool named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A volume or snapshot of that name exists already.
    #[error("{0}")]
    Exists(String),
    /// Refused because something depends on the volume (mounts, other clients, snapshots, clones); the
    /// message names it.
    #[error("{0}")]
    InUse(String),
    /// Someone else holds the volume.
    #[error("{0}")]
    Busy(String),
    /// Flattening a volume that has no parent snapshot: it depends on nothing already.
    #[error("{0}")]
    NotAClone(String),
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
    /// A refusal that changed nothing: the caller's request, not the system, is what to change.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            VolumeError::BadRequest(_)
                | VolumeError::Invalid { .. }
                | VolumeError::NotFound(_)
                | VolumeError::Exists(_)
                | VolumeError::InUse(_)
                | VolumeError::Busy(_)
                | VolumeError::NotAClone(_)
        )
    }

    /// A stable, machine-readable name of what went wrong, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            VolumeError::BadRequest(_) => "bad_request",
            VolumeError::Invalid { .. } => "invalid_value",
            VolumeError::NotFound(_) => "not_found",
            VolumeError::Exists(_) => "already_exists",
            VolumeError::InUse(_) => "in_use",
            VolumeError::Busy(_) => "busy",
            VolumeError::NotAClone(_) => "not_a_clone",
            VolumeError::Ceph(e) if e.is_unreachable() => "ceph_unavailable",
            VolumeError::Ceph(_) => "ceph_error",
            VolumeError::Tool(_) => "tool_failed",
            VolumeError::Io(_) | VolumeError::Other(_) => "internal",
        }
    }

    /// The request field the error is about, when it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            VolumeError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message without the field name in front (the field travels on its own).
    pub fn message(&self) -> String {
        match self {
            VolumeError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}
