//! Where daemons run. [`local::LocalPlatform`] supervises processes on this host: it starts each daemon from a
//! [`DaemonSpec`], restarts it with backoff when it dies, adopts daemons left running by an earlier
//! supervisor (found through pid files), and stops them in order.

pub mod local;
pub mod proc;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything needed to run one daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Ceph's name for it: `mon.a`, `mgr.a`, `osd.0`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Environment set for it on top of the supervisor's.
    pub env: Vec<(String, String)>,
    /// stdout and stderr go here (Ceph's own log goes where ceph.conf says).
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaemonState {
    Running,
    /// Died; will be started again after a backoff.
    Restarting,
    Stopped,
}

/// What the platform reports of one daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub name: String,
    pub state: DaemonState,
    pub pid: Option<u32>,
    /// Restarts since this supervisor started.
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Seconds since the current process started (as seen by this supervisor).
    pub uptime_secs: Option<u64>,
    /// True when this supervisor found the daemon running and took it over.
    pub adopted: bool,
    /// It keeps dying within a minute of each start: restarting alone will not fix it.
    #[serde(default)]
    pub crash_looping: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("could not start {name} (`{program}`): {source}")]
    Start {
        name: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
