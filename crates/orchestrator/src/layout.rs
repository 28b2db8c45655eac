//! Where everything of one cluster lives inside its data dir. Every path rookery uses is named here.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }
    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// The cluster's identity and what was created (fsid, ports, OSD records).
    pub fn state(&self) -> PathBuf {
        self.at("cluster.json")
    }
    /// The resources last given to `rookery up`/`apply`.
    pub fn host_policy(&self) -> PathBuf {
        self.root.join("host.json")
    }

    pub fn spec(&self) -> PathBuf {
        self.at("spec.yaml")
    }
    pub fn conf(&self) -> PathBuf {
        self.at("ceph.conf")
    }
    pub fn keyring_dir(&self) -> PathBuf {
        self.at("keyring")
    }
    pub fn mon_keyring(&self) -> PathBuf {
        self.at("keyring/mon.keyring")
    }
    /// Named so that ceph.conf's `keyring = .../$cluster.$name.keyring` finds it.
    pub fn admin_keyring(&self) -> PathBuf {
        self.at("keyring/ceph.client.admin.keyring")
    }
    /// The keyring of the Ceph user `client.<user>` this host acts as, where ceph.conf finds it.
    pub fn user_keyring(&self, user: &str) -> PathBuf {
        self.at(&format!("keyring/ceph.client.{user}.keyring"))
    }
    /// This member's TLS certificate and key for joining hosts (the key 0600).
    pub fn join_cert(&self) -> PathBuf {
        self.at("keyring/join.crt")
    }
    pub fn join_key(&self) -> PathBuf {
        self.at("keyring/join.key")
    }
    pub fn pending_osd_secret(&self, uuid: &str) -> PathBuf {
        self.at(&format!("keyring/osd-{uuid}.pending"))
    }
    /// An object store's files: the zone set-up marker, the admin-API user, the users' keys (all 0600).
    pub fn rgw_dir(&self, store: &str) -> PathBuf {
        self.at(&format!("rgw/{store}"))
    }
    pub fn rgw_admin(&self, store: &str) -> PathBuf {
        self.rgw_dir(store).join("admin.json")
    }
    pub fn rgw_user(&self, store: &str, uid: &str) -> PathBuf {
        self.rgw_dir(store).join(format!("users/{uid}.json"))
    }
    pub fn log_dir(&self) -> PathBuf {
        self.at("log")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.at("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.at("rookery.sock")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.at("run/supervisor.pid")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.at("log/supervisor.log")
    }
    /// Marks a daemon store whose mkfs finished; a store without it is unfinished and may be redone.
    pub fn ready_marker(data: &Path) -> PathBuf {
        data.join("rookery-ready")
    }
    /// The directories made at creation, all 0700: keys and sockets live inside.
    pub fn dirs(&self) -> Vec<PathBuf> {
        [
            "", "keyring", "mon", "mgr", "osd", "mds", "rgw", "log", "run", "crash",
        ]
        .iter()
        .map(|d| self.at(d))
        .collect()
    }
}
