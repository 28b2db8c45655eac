//! Daemon stores and keyrings in a standalone cluster's data dir: `mon/ceph-<id>`, `mgr/ceph-<id>`,
//! `osd/ceph-<id>` (+ `osd/ceph-<id>.block`, a sparse file bluestore uses as its device), `mds/ceph-<id>`,
//! each with its `keyring` (0600); a gateway's keyring is `keyring/ceph.client.rgw.<store>.keyring`. A
//! store is finished once its `rookery-ready` marker exists; only unfinished stores are ever cleared.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rookery_ceph::keyring::{self, KeyringEntry};
use rookery_ceph::tools;

use crate::{parse_daemon_name, ConfSetting, DaemonKind, PlatformError, StoreRequest, Stores};

const READY_MARKER: &str = "rookery-ready";

/// The stores of the cluster whose data dir is `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirStores {
    pub root: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PlatformError + '_ {
    move |source| PlatformError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn mkdir_private(path: &Path) -> Result<(), PlatformError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error(path))
}

/// Removes what is at `path`, if anything.
fn remove(path: &Path) -> Result<(), PlatformError> {
    let gone = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    gone.map_err(io_error(path))
}

impl DataDirStores {
    fn kind_and_id<'a>(&self, daemon: &'a str) -> Result<(DaemonKind, &'a str), PlatformError> {
        parse_daemon_name(daemon).ok_or_else(|| PlatformError::NoStore(daemon.to_string()))
    }

    /// The daemon's own folder (none for a gateway, which keeps no store).
    fn data(&self, kind: DaemonKind, id: &str) -> Option<PathBuf> {
        match kind {
            DaemonKind::Rgw => None,
            _ => Some(self.root.join(format!("{kind}/ceph-{id}"))),
        }
    }

    fn keyring_path(&self, kind: DaemonKind, id: &str) -> PathBuf {
        match kind {
            // Named so that ceph.conf's client `keyring = .../$cluster.$name.keyring` finds it.
            DaemonKind::Rgw => self
                .root
                .join(format!("keyring/ceph.client.rgw.{id}.keyring")),
            _ => self.root.join(format!("{kind}/ceph-{id}/keyring")),
        }
    }

    /// Outside the OSD's folder on purpose: bluestore symlinks `<data>/block` to this path.
    fn block_file(&self, id: u32) -> PathBuf {
        self.root.join(format!("osd/ceph-{id}.block"))
    }

    fn log(&self, what: &str) -> PathBuf {
        self.root.join(format!("log/{what}"))
    }

    fn mark_ready(data: &Path) -> Result<(), PlatformError> {
        let marker = data.join(READY_MARKER);
        std::fs::write(&marker, b"").map_err(io_error(&marker))
    }

    fn make_mon(
        &self,
        id: &str,
        fsid: &str,
        members: &[(String, String)],
        seed: &[KeyringEntry],
    ) -> Result<(), PlatformError> {
        let data = self.root.join(format!("mon/ceph-{id}"));
        remove(&data)?;
        mkdir_private(&data)?;
        let monmap = self.root.join("run/monmap");
        tools::monmap_create(&monmap, fsid, members, &self.log("monmaptool.log"))?;
        // The seed keyring lives only as long as mkfs needs it: the mon keeps the keys in its store.
        let seed_path = self.root.join(format!("run/mon.{id}.seed.keyring"));
        keyring::write(&seed_path, seed)?;
        let made = tools::mon_mkfs(
            &crate::local::conf_path(&self.root),
            id,
            &monmap,
            &seed_path,
            &self.log(&format!("mon.{id}.mkfs.log")),
        );
        let _ = std::fs::remove_file(&seed_path);
        made?;
        Self::mark_ready(&data)
    }

    fn make_joining_mon(
        &self,
        id: &str,
        monmap: &[u8],
        mon_key: &str,
    ) -> Result<(), PlatformError> {
        let data = self.root.join(format!("mon/ceph-{id}"));
        remove(&data)?;
        mkdir_private(&data)?;
        let map_path = self.root.join(format!("run/mon.{id}.monmap"));
        rookery_ceph::conf::write_atomic(&map_path, monmap, 0o600)?;
        let key_path = self.root.join(format!("run/mon.{id}.join.keyring"));
        keyring::write(
            &key_path,
            &[KeyringEntry::new("mon.", mon_key, &[("mon", "allow *")])],
        )?;
        let made = tools::mon_mkfs(
            &crate::local::conf_path(&self.root),
            id,
            &map_path,
            &key_path,
            &self.log(&format!("mon.{id}.mkfs.log")),
        );
        let _ = std::fs::remove_file(&key_path);
        let _ = std::fs::remove_file(&map_path);
        made?;
        Self::mark_ready(&data)
    }

    fn make_osd(
        &self,
        id: u32,
        uuid: &str,
        key: &str,
        device: Option<&Path>,
        options: &[(String, String)],
    ) -> Result<(), PlatformError> {
        if let Some(d) = device {
            crate::devices::check_blank(d, uuid)?;
        }
        let data = self.root.join(format!("osd/ceph-{id}"));
        remove(&data)?;
        if device.is_none() {
            remove(&self.block_file(id))?;
        }
        mkdir_private(&data)?;
        keyring::write(
            &data.join("keyring"),
            &[KeyringEntry::new(&format!("osd.{id}"), key, &[])],
        )?;
        tools::osd_mkfs(
            &crate::local::conf_path(&self.root),
            id,
            uuid,
            device,
            options,
            &self.log(&format!("osd.{id}.mkfs.log")),
        )?;
        Self::mark_ready(&data)
    }
}

impl Stores for DataDirStores {
    fn put_keyring(&self, daemon: &str, entry: &KeyringEntry) -> Result<(), PlatformError> {
        let (kind, id) = self.kind_and_id(daemon)?;
        if let Some(data) = self.data(kind, id) {
            mkdir_private(&data)?;
        }
        keyring::write(&self.keyring_path(kind, id), std::slice::from_ref(entry))?;
        Ok(())
    }

    fn has_keyring(&self, daemon: &str) -> bool {
        self.kind_and_id(daemon)
            .is_ok_and(|(kind, id)| self.keyring_path(kind, id).exists())
    }

    fn prepare(&self, request: &StoreRequest) -> Result<(), PlatformError> {
        // A joining mon's store is asked for only when this host has none for a mon placed here; one
        // marked ready is of an earlier mon of that id that was replaced, and removed from the map.
        let joining = matches!(request, StoreRequest::JoiningMon { .. });
        if self.is_ready(&request.daemon()) && !joining {
            return Ok(());
        }
        match request {
            StoreRequest::Mon {
                id,
                fsid,
                members,
                seed,
            } => self.make_mon(id, fsid, members, seed),
            StoreRequest::JoiningMon {
                id,
                monmap,
                mon_key,
            } => self.make_joining_mon(id, monmap, mon_key),
            StoreRequest::Osd {
                id,
                uuid,
                key,
                device,
                options,
            } => self.make_osd(*id, uuid, key, device.as_deref(), options),
        }
    }

    fn is_ready(&self, daemon: &str) -> bool {
        self.kind_and_id(daemon)
            .ok()
            .and_then(|(kind, id)| self.data(kind, id))
            .is_some_and(|d| d.join(READY_MARKER).exists())
    }

    fn data_location(&self, daemon: &str) -> Option<PathBuf> {
        let (kind, id) = self.kind_and_id(daemon).ok()?;
        match kind {
            DaemonKind::Osd => {
                let n = id.parse().ok()?;
                self.osd_block(n).or_else(|| Some(self.block_file(n)))
            }
            _ => self.data(kind, id),
        }
    }

    fn osd_block(&self, id: u32) -> Option<PathBuf> {
        std::fs::read_link(self.root.join(format!("osd/ceph-{id}/block"))).ok()
    }

    fn link_osd_block(&self, id: u32, device: &Path) -> Result<(), PlatformError> {
        let link = self.root.join(format!("osd/ceph-{id}/block"));
        let staged = self.root.join(format!("osd/ceph-{id}/block.new"));
        remove(&staged)?;
        std::os::unix::fs::symlink(device, &staged).map_err(io_error(&staged))?;
        std::fs::rename(&staged, &link).map_err(io_error(&link))
    }

    fn release_osd(&self, id: u32, uuid: &str, device: Option<&Path>) -> Result<(), PlatformError> {
        let linked = self.osd_block(id);
        match device {
            Some(d) => crate::devices::wipe_osd_label(d, uuid)?,
            // An OSD file: its block is ours to delete (never a device: those are wiped by label).
            None if linked.is_none() || linked.as_deref() == Some(&self.block_file(id)) => {
                remove(&self.block_file(id))?
            }
            None => {}
        }
        remove(&self.root.join(format!("osd/ceph-{id}")))
    }

    fn forget(&self, daemon: &str) -> Result<(), PlatformError> {
        let (kind, id) = self.kind_and_id(daemon)?;
        match kind {
            DaemonKind::Mds => remove(&self.root.join(format!("mds/ceph-{id}"))),
            DaemonKind::Rgw => remove(&self.keyring_path(kind, id)),
            _ => Err(PlatformError::NoStore(daemon.to_string())),
        }
    }

    fn with_keyrings(&self) -> Vec<String> {
        let listed = |dir: &str, prefix: &str, suffix: &str, kind: DaemonKind| -> Vec<String> {
            let mut found: Vec<String> = std::fs::read_dir(self.root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.to_string();
                    let id = n.strip_prefix(prefix)?.strip_suffix(suffix)?.to_string();
                    Some(crate::daemon_name(kind, &id))
                })
                .filter(|name| self.has_keyring(name))
                .collect();
            found.sort();
            found
        };
        let mut out = listed("mgr", "ceph-", "", DaemonKind::Mgr);
        out.extend(listed("mds", "ceph-", "", DaemonKind::Mds));
        out.extend(listed(
            "keyring",
            "ceph.client.rgw.",
            ".keyring",
            DaemonKind::Rgw,
        ));
        out
    }

    fn conf_settings(&self, _host: &str) -> Vec<ConfSetting> {
        let dir = self.root.display().to_string();
        let s = |section: &str, key: &str, value: String| ConfSetting {
            section: section.to_string(),
            key: key.to_string(),
            value,
        };
        vec![
            s("global", "run_dir", format!("{dir}/run")),
            s("global", "crash_dir", format!("{dir}/crash")),
            s(
                "global",
                "log_file",
                format!("{dir}/log/$cluster-$name.log"),
            ),
            s(
                "client",
                "keyring",
                format!("{dir}/keyring/$cluster.$name.keyring"),
            ),
            // One file per client name, appended to by every process: a file per pid left an empty
            // log behind for every `ceph` or `rbd` command run against the cluster.
            s(
                "client",
                "log_file",
                format!("{dir}/log/$cluster-$name.log"),
            ),
            s("mon", "mon_data", format!("{dir}/mon/$cluster-$id")),
            s("mgr", "mgr_data", format!("{dir}/mgr/$cluster-$id")),
            s("mgr", "keyring", format!("{dir}/mgr/$cluster-$id/keyring")),
            s("osd", "osd_data", format!("{dir}/osd/$cluster-$id")),
            s("osd", "keyring", format!("{dir}/osd/$cluster-$id/keyring")),
            s(
                "osd",
                "bluestore_block_path",
                format!("{dir}/osd/$cluster-$id.block"),
            ),
            s("mds", "mds_data", format!("{dir}/mds/$cluster-$id")),
            s("mds", "keyring", format!("{dir}/mds/$cluster-$id/keyring")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyrings_go_where_ceph_conf_says_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let s = DataDirStores {
            root: d.path().to_path_buf(),
        };
        std::fs::create_dir_all(d.path().join("keyring")).unwrap();
        let entry = KeyringEntry::new("mgr.a", "AQ==", &[]);
        s.put_keyring("mgr.a", &entry).unwrap();
        s.put_keyring("rgw.s3", &KeyringEntry::new("client.rgw.s3", "AQ==", &[]))
            .unwrap();
        let mgr = d.path().join("mgr/ceph-a/keyring");
        assert_eq!(
            std::fs::metadata(&mgr).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(s.has_keyring("mgr.a") && s.has_keyring("rgw.s3") && !s.has_keyring("mds.x-a"));
        assert_eq!(s.with_keyrings(), ["mgr.a", "rgw.s3"]);
        let conf = s.conf_settings("h");
        let mgr_keyring = conf
            .iter()
            .find(|c| c.section == "mgr" && c.key == "keyring")
            .unwrap();
        assert_eq!(
            mgr_keyring.value.replace("$cluster-$id", "ceph-a"),
            mgr.display().to_string()
        );
        s.forget("rgw.s3").unwrap();
        assert!(!s.has_keyring("rgw.s3"));
        // The stores of mons and OSDs hold the cluster's data: never forgotten.
        assert!(s.forget("osd.0").is_err());
        assert!(!s.is_ready("osd.0"));
        assert_eq!(
            s.data_location("osd.3"),
            Some(d.path().join("osd/ceph-3.block"))
        );
    }
}
