//! rookery's only door to Ceph.
//!
//! - [`rados`]: native librados (loaded at run time) for mon/mgr commands and object I/O;
//! - [`commands`]: every mon/mgr command rookery sends, one typed function each;
//! - [`types`]: typed replies of those commands;
//! - [`keyring`] and [`conf`]: the files Ceph daemons read;
//! - [`tools`]: the few Ceph executables that have no library API (`--mkfs`, the daemons themselves),
//!   each named in one place, with their stderr turned into a plain error.

pub mod cephfs;
pub mod commands;
pub mod conf;
mod ffi;
pub mod identity;
pub mod keyring;
pub mod object_reads;
pub mod rados;
pub mod rbd;
pub mod rbd_aio;
mod rbd_ffi;
pub mod rbd_objects;
pub mod tools;
pub mod types;
mod wire;

pub use identity::Identity;
pub use rados::{IoCtx, Rados, Target};

#[derive(Debug, thiserror::Error)]
pub enum CephError {
    #[error(
        "{library} is not installed ({detail}); install it with: apt-get install -y {package}"
    )]
    LibraryMissing {
        library: &'static str,
        package: &'static str,
        detail: String,
    },
    #[error("{op} failed: {reason}{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    Call {
        op: String,
        code: i32,
        reason: String,
        detail: String,
    },
    #[error("could not understand Ceph's reply to `{command}`: {detail}")]
    Reply { command: String, detail: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Tool(#[from] tools::ToolError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl CephError {
    pub(crate) fn call(op: &str, rc: i32, detail: &str) -> CephError {
        CephError::Call {
            op: op.to_string(),
            code: rc,
            reason: rados::errno_text(rc),
            detail: detail.to_string(),
        }
    }

    /// The negative errno of a failed call, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CephError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Ceph answered that what was named does not exist (ENOENT).
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(-libc::ENOENT)
    }

    /// Ceph did not answer (timed out, or no mon could be reached), as opposed to answering with an error.
    pub fn is_unreachable(&self) -> bool {
        self.errno().is_some_and(|e| {
            [
                libc::ETIMEDOUT,
                libc::ENOTCONN,
                libc::ECONNREFUSED,
                libc::EHOSTUNREACH,
                libc::ESHUTDOWN,
            ]
            .contains(&-e)
        })
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> CephError {
        CephError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
