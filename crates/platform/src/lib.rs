//! Where daemons run, behind one trait: [`Platform`]. The orchestrator describes each daemon with a
//! neutral [`DaemonSpec`] (which host, which Ceph daemon, its arguments, environment, ports and needs) and
//! asks the platform to run it, stop it, report on it and say whether the instance a Ceph map records is
//! the one running now. It never sees a process, a pid, a pod or a local path.
//!
//! - [`local::LocalPlatform`]: processes on this host, started from the data dir, restarted with backoff,
//!   adopted from an earlier supervisor through their pid files.
//! - A Kubernetes platform turns the same specs into Deployments pinned to Nodes (host network, so the
//!   addresses in the monmap stay stable), keyrings into Secrets and ceph.conf into a ConfigMap; hosts are
//!   Nodes, `watch` follows pod events, and the instance check compares the map's nonce with the pod's.
//! - Daemons on other hosts that joined are run by those hosts' own supervisors; their `Platform` is the
//!   same local one, reached through the control API of that host.

pub mod devices;
pub mod local;
pub mod local_stores;
pub mod logs;
pub mod proc;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rookery_ceph::keyring::KeyringEntry;
use serde::{Deserialize, Serialize};

/// A machine daemons can run on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// Where its daemons serve: mons, OSDs and gateways bind here.
    pub address: IpAddr,
    /// The network clients reach daemons on (Ceph's `public_network`), in CIDR notation.
    pub public_network: String,
    pub labels: BTreeMap<String, String>,
}

/// The Ceph daemons rookery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonKind {
    Mon,
    Mgr,
    Osd,
    Mds,
    Rgw,
}

impl DaemonKind {
    pub const ALL: [DaemonKind; 5] = [
        DaemonKind::Mon,
        DaemonKind::Mgr,
        DaemonKind::Osd,
        DaemonKind::Mds,
        DaemonKind::Rgw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DaemonKind::Mon => "mon",
            DaemonKind::Mgr => "mgr",
            DaemonKind::Osd => "osd",
            DaemonKind::Mds => "mds",
            DaemonKind::Rgw => "rgw",
        }
    }

    pub fn parse(kind: &str) -> Option<DaemonKind> {
        DaemonKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The program that runs it (a container image's entry point on Kubernetes).
    pub fn program(self) -> &'static str {
        match self {
            DaemonKind::Mon => "ceph-mon",
            DaemonKind::Mgr => "ceph-mgr",
            DaemonKind::Osd => "ceph-osd",
            DaemonKind::Mds => "ceph-mds",
            DaemonKind::Rgw => "radosgw",
        }
    }

    /// The order daemons stop in: clients of the cluster first, the mons last, so no daemon outlives the
    /// mons it reports to.
    pub const STOP_ORDER: [DaemonKind; 5] = [
        DaemonKind::Rgw,
        DaemonKind::Mds,
        DaemonKind::Osd,
        DaemonKind::Mgr,
        DaemonKind::Mon,
    ];

    /// The order daemons are restarted in for a config change or an upgrade: mons, mgrs, OSDs, then
    /// MDS daemons and gateways (Ceph's upgrade order).
    pub const START_ORDER: [DaemonKind; 5] = [
        DaemonKind::Mon,
        DaemonKind::Mgr,
        DaemonKind::Osd,
        DaemonKind::Mds,
        DaemonKind::Rgw,
    ];
}

impl fmt::Display for DaemonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a daemon needs of its host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// The memory it is expected to stay under (a pod's limit on Kubernetes).
    pub memory_bytes: Option<u64>,
}

/// Everything needed to run one daemon, wherever it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// The host it runs on (`Host::name`).
    pub host: String,
    pub kind: DaemonKind,
    /// Ceph's id: `a` of `mon.a`, `0` of `osd.0`, the store of `rgw.<store>`.
    pub id: String,
    /// A container image to run it from (Kubernetes); the local platform runs the host's program.
    pub image: Option<String>,
    /// Ceph's own arguments naming the daemon (`-i a`, `-n client.rgw.s`). The platform adds how it runs
    /// (in the foreground, where its config is).
    pub args: Vec<String>,
    /// Environment set for it.
    pub env: Vec<(String, String)>,
    /// TCP ports it listens on (beyond those Ceph picks itself).
    pub ports: Vec<u16>,
    pub resources: Resources,
    /// True when it keeps a store of its own that must survive restarts (mon, OSD); the platform keeps
    /// it where the daemon runs (a folder of the data dir, a host path on Kubernetes).
    pub persistent_store: bool,
}

impl DaemonSpec {
    /// Ceph's name for it: `mon.a`, `osd.0`, `rgw.<store>`.
    pub fn name(&self) -> String {
        daemon_name(self.kind, &self.id)
    }
}

pub fn daemon_name(kind: DaemonKind, id: &str) -> String {
    format!("{kind}.{id}")
}

/// Splits `mon.a` into its kind and id.
pub fn parse_daemon_name(name: &str) -> Option<(DaemonKind, &str)> {
    let (kind, id) = name.split_once('.')?;
    Some((DaemonKind::parse(kind)?, id)).filter(|(_, id)| !id.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DaemonState {
    Running,
    /// Died; will be started again after a backoff.
    Restarting,
    /// Died at start too many times in a row: not restarted until asked (`rookery daemon retry`).
    GaveUp,
    Stopped,
}

/// What the platform reports of one daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DaemonStatus {
    pub name: String,
    pub state: DaemonState,
    /// The process id where daemons are processes the platform can see (local).
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
    /// The last lines of its own output, while it crash-loops or was given up on: the reason, mostly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// A daemon store to make where the daemon runs.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreRequest {
    /// A mon's store, from the initial monmap (`members`: id and address vector of every mon) and the
    /// keys that seed the cluster's auth database.
    Mon {
        id: String,
        fsid: String,
        members: Vec<(String, String)>,
        seed: Vec<KeyringEntry>,
    },
    /// The store of a mon that joins a running cluster: made from the current monmap (`mon getmap`) and
    /// the mons' shared key; the mon adds itself to the map when it first starts.
    JoiningMon {
        id: String,
        monmap: Vec<u8>,
        mon_key: String,
    },
    /// A bluestore OSD, registered with the mons already (`osd new`) with `key`, on `device` (claimed
    /// and checked blank at the last moment) or, when None, on a file the platform makes.
    Osd {
        id: u32,
        uuid: String,
        key: String,
        device: Option<PathBuf>,
        /// Options from the mons' config database that apply to this OSD: mkfs runs without the mons,
        /// so it is given them on its command line (e.g. `bluestore_min_alloc_size`).
        options: Vec<(String, String)>,
    },
}

impl StoreRequest {
    pub fn daemon(&self) -> String {
        match self {
            StoreRequest::Mon { id, .. } | StoreRequest::JoiningMon { id, .. } => {
                daemon_name(DaemonKind::Mon, id)
            }
            StoreRequest::Osd { id, .. } => daemon_name(DaemonKind::Osd, &id.to_string()),
        }
    }
}

/// A ceph.conf setting the platform decides: where daemons keep their data, keys, logs and sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfSetting {
    pub section: String,
    pub key: String,
    pub value: String,
}

/// Where daemons keep their keyrings and stores. Shared as an `Arc`, apart from [`Platform`], so that
/// stores are made side by side (an OSD's takes seconds) without holding the supervision lock.
pub trait Stores: Send + Sync {
    /// Puts the keyring of `daemon` (`mgr.a`, `osd.3`, `mds.fs-a`, `rgw.<store>`) where it reads it
    /// (local: beside its store, 0600; Kubernetes: a Secret mounted into its pod).
    fn put_keyring(&self, daemon: &str, entry: &KeyringEntry) -> Result<(), PlatformError>;

    fn has_keyring(&self, daemon: &str) -> bool;

    /// Makes a daemon's store. An unfinished one (never marked ready) is ours and holds no data, so it is
    /// cleared first; a finished one is never touched.
    fn prepare(&self, request: &StoreRequest) -> Result<(), PlatformError>;

    /// True once `prepare` finished for the daemon.
    fn is_ready(&self, daemon: &str) -> bool;

    /// Where the daemon's data lives, for people (an OSD's block file, a device, a volume).
    fn data_location(&self, daemon: &str) -> Option<PathBuf>;

    /// What an OSD's store points at as its block device now (None: no store, or no link).
    fn osd_block(&self, id: u32) -> Option<PathBuf>;

    /// Points OSD `id`'s store at `device`, the device whose BlueStore label names it (device names
    /// change when devices come and go; the label does not).
    fn link_osd_block(&self, id: u32, device: &Path) -> Result<(), PlatformError>;

    /// Frees what a removed OSD held: its store and keyring, its block file, or its device's BlueStore
    /// label (only when that label names `uuid`) so the device is blank again. `device` is where the label
    /// is now; None when the device is gone.
    fn release_osd(&self, id: u32, uuid: &str, device: Option<&Path>) -> Result<(), PlatformError>;

    /// Removes the keyring and store of a daemon that is gone for good (an MDS of a deleted filesystem,
    /// the gateway of a deleted store). Never used for mons or OSDs, whose stores hold the cluster's data.
    fn forget(&self, daemon: &str) -> Result<(), PlatformError>;

    /// Daemons that have a keyring here, whether or not they run (`mgr.a`, `mds.fs-a`, `rgw.s`).
    fn with_keyrings(&self) -> Vec<String>;

    /// What ceph.conf must say for daemons on `host` to find their stores, keys, logs and sockets.
    fn conf_settings(&self, host: &str) -> Vec<ConfSetting>;
}

/// Where daemons run. Implementations decide how (processes, pods); the orchestrator only says what.
pub trait Platform: Send {
    /// Where this platform keeps daemons' keyrings and stores.
    fn stores(&self) -> Arc<dyn Stores>;

    /// The hosts daemons can run on, the first one being where this orchestrator runs.
    fn hosts(&self) -> Vec<Host>;

    /// Makes sure the daemon runs as specified: a no-op when it already does, a restart when its spec
    /// changed, an adoption when a daemon left by an earlier supervisor runs exactly this spec.
    fn ensure(&mut self, spec: DaemonSpec) -> Result<(), PlatformError>;

    /// Stops these daemons together and forgets them (no restart), waiting up to `grace` for each.
    fn stop(&mut self, names: &[String], grace: Duration);

    fn status(&self) -> Vec<DaemonStatus>;

    /// Notices daemons that died and starts them again once their backoff has passed. Called about every
    /// 200 ms; never blocks on Ceph.
    fn watch(&mut self);

    /// Starts again a daemon it gave up on (state `GaveUp`), once its cause is fixed.
    fn retry(&mut self, name: &str) -> Result<(), PlatformError>;

    /// Whether the instance a Ceph map records for `name` (its address nonce) is the one running now.
    /// None when the platform runs no such daemon or cannot tell.
    fn is_current_instance(&self, name: &str, map_nonce: u64) -> Option<bool>;

    /// Whether daemon `name` runs the program installed now: false once its binary was replaced on
    /// disk (a package upgrade) under the running process. None when not running or unknown.
    fn runs_installed_program(&self, name: &str) -> Option<bool>;

    /// Who holds TCP `port` on `host`, in words (`pid 12 (nginx -g ...)`), when something does.
    fn port_holder(&self, host: &str, port: u16) -> Option<String>;

    /// Whether TCP `port` can be bound on `host`.
    fn port_free(&self, host: &str, port: u16) -> bool;

    /// A TCP port free on `host` now.
    fn free_port(&self, host: &str) -> Option<u16>;

    /// Memory available for new daemons on `host`, in bytes.
    fn memory_available(&self, host: &str) -> Option<u64>;

    /// Where an operator reads a daemon's own output (`log/osd.0.stdout`, a pod's log).
    fn log_location(&self, name: &str) -> String;

    /// The block devices of `host` as facts (read only); empty for a host this platform cannot see.
    fn devices(&self, host: &str) -> Vec<devices::Device>;

    /// The names of the daemons it runs.
    fn names(&self) -> Vec<String> {
        self.status().into_iter().map(|s| s.name).collect()
    }

    /// True if `name` runs now.
    fn is_running(&self, name: &str) -> bool {
        self.status()
            .iter()
            .any(|s| s.name == name && s.state == DaemonState::Running)
    }
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
    #[error("{program} is not installed; install it with: apt-get install -y {package}")]
    NotInstalled { program: String, package: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no host named {0}")]
    UnknownHost(String),
    #[error("no daemon named {0} runs here; `rookery status` lists them")]
    UnknownDaemon(String),
    #[error(transparent)]
    Tool(#[from] rookery_ceph::tools::ToolError),
    #[error(transparent)]
    Ceph(#[from] rookery_ceph::CephError),
    #[error("{0} keeps no store this platform can make or remove")]
    NoStore(String),
    #[error(transparent)]
    Claim(#[from] devices::ClaimError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_names_round_trip() {
        assert_eq!(parse_daemon_name("mon.a"), Some((DaemonKind::Mon, "a")));
        assert_eq!(
            parse_daemon_name("rgw.my-store"),
            Some((DaemonKind::Rgw, "my-store"))
        );
        assert_eq!(parse_daemon_name("osd."), None);
        assert_eq!(parse_daemon_name("client.admin"), None);
        assert_eq!(daemon_name(DaemonKind::Osd, "3"), "osd.3");
    }
}
