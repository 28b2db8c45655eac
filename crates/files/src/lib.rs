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
    /// One field of the request (`size`, `name`) has a value that cannot work; a CLI maps the field to
    /// its own option name.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The filesystem or subvolume named does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    /// Refused because it is mounted; the message says where.
    #[error("{0}")]
    InUse(String),
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
    /// A refusal that changed nothing: the caller's request, not the system, is what to change.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            FileError::BadRequest(_)
                | FileError::Invalid { .. }
                | FileError::NotFound(_)
                | FileError::Exists(_)
                | FileError::InUse(_)
        )
    }

    /// A stable, machine-readable name of what went wrong, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::BadRequest(_) => "bad_request",
            FileError::Invalid { .. } => "invalid_value",
            FileError::NotFound(_) => "not_found",
            FileError::Exists(_) => "already_exists",
            FileError::InUse(_) => "in_use",
            FileError::CloneFailed(_) => "clone_failed",
            FileError::TimedOut(_) => "timed_out",
            FileError::Ceph(e) if e.is_unreachable() => "ceph_unavailable",
            FileError::Ceph(_) => "ceph_error",
            FileError::Io(_) => "internal",
        }
    }

    /// The request field the error is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            FileError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message without the field's name (which `field` gives).
    pub fn message(&self) -> String {
        match self {
            FileError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> FileError {
    FileError::Invalid {
        field,
        message: message.into(),
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> FileError {
    FileError::BadRequest(msg.into())
}
