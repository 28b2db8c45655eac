//! CephFS on this host: subvolumes (quota-bounded directories, through the mgr's `volumes` module by native
//! mgr commands) and mounts by ceph-fuse (the kernel here has no CephFS client), tracked like block mounts
//! so `rookery down`/`up` and a host restart neither lose nor block them.

pub mod mount;
pub mod subvolume;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The request cannot be done as asked; the text says why and what to do. Nothing was changed.
    #[error("{0}")]
    BadRequest(String),
    /// The filesystem, subvolume or snapshot asked for does not exist (a bad request too).
    #[error("{0}")]
    NotFound(String),
    /// A clone the mgr copies in the background failed or was canceled.
    #[error("{0}")]
    CloneFailed(String),
    /// A clone did not finish in the time given; it goes on in the background.
    #[error("{0}")]
    TimedOut(String),
    #[error(transparent)]
    Ceph(#[from] rookery_ceph::CephError),
    #[error("{0}")]
    Io(String),
}

impl FileError {
    pub fn is_bad_request(&self) -> bool {
        matches!(self, FileError::BadRequest(_) | FileError::NotFound(_))
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> FileError {
    FileError::BadRequest(msg.into())
}
