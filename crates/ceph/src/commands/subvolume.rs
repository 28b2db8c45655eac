//! Subvolumes of the mgr's volumes module: `fs subvolume create|ls|info|resize|rm`, groups
//! (`fs subvolumegroup create|rm`), their metadata,
//! snapshots and clones (`fs subvolume snapshot ...`, `fs clone status`). Every one is a mgr command; the
//! module answers ENOENT for a missing filesystem, subvolume or snapshot and EEXIST for an existing one.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::{flag, Cmd};
use crate::types::{CloneStatus, NameEntry, SubvolumeInfo, SubvolumeSnapshotInfo};
use crate::{CephError, Rados};

fn create_cmd(fs: &str, name: &str, size: u64, pool: Option<&str>) -> Cmd {
    let mut cmd =
        json!({"prefix": "fs subvolume create", "vol_name": fs, "sub_name": name, "size": size});
    if let Some(pool) = pool {
        cmd["pool_layout"] = json!(pool);
    }
    Cmd::mgr(cmd)
}

/// `fs subvolume create` with a quota of `size` bytes, its data in the filesystem's first data pool.
pub fn create(r: &Rados, fs: &str, name: &str, size: u64) -> Result<(), CephError> {
    create_cmd(fs, name, size, None).run(r)
}

/// `fs subvolume create --pool_layout POOL`: its data in `pool`, one of the filesystem's data pools.
pub fn create_in_pool(
    r: &Rados,
    fs: &str,
    name: &str,
    size: u64,
    pool: &str,
) -> Result<(), CephError> {
    create_cmd(fs, name, size, Some(pool)).run(r)
}

fn group_create_cmd(fs: &str, group: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs subvolumegroup create", "vol_name": fs, "group_name": group}))
}

/// `fs subvolumegroup create` (idempotent: an existing group is kept).
pub fn group_create(r: &Rados, fs: &str, group: &str) -> Result<(), CephError> {
    group_create_cmd(fs, group).run(r)
}

fn group_rm_cmd(fs: &str, group: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs subvolumegroup rm", "vol_name": fs, "group_name": group}))
}

/// `fs subvolumegroup rm`: refused (ENOTEMPTY) while the group holds subvolumes; ENOENT when the
/// group or the filesystem is gone.
pub fn group_rm(r: &Rados, fs: &str, group: &str) -> Result<(), CephError> {
    group_rm_cmd(fs, group).run(r)
}

/// `fs subvolume ls`, in the default group or in `group`.
fn ls_cmd(fs: &str, group: Option<&str>) -> Cmd {
    let mut cmd = json!({"prefix": "fs subvolume ls", "vol_name": fs});
    if let Some(group) = group {
        cmd["group_name"] = json!(group);
    }
    Cmd::mgr(cmd)
}

fn names(r: &Rados, cmd: Cmd) -> Result<Vec<String>, CephError> {
    let ls: Vec<NameEntry> = cmd.reply(r)?;
    Ok(ls.into_iter().map(|e| e.name).collect())
}

/// `fs subvolume ls --group_name`: the names of the subvolumes in a group.
pub fn ls_in_group(r: &Rados, fs: &str, group: &str) -> Result<Vec<String>, CephError> {
    names(r, ls_cmd(fs, Some(group)))
}

/// `fs subvolume ls`: the names of the subvolumes in `fs`.
pub fn ls(r: &Rados, fs: &str) -> Result<Vec<String>, CephError> {
    names(r, ls_cmd(fs, None))
}

fn info_cmd(fs: &str, name: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs subvolume info", "vol_name": fs, "sub_name": name}))
}

/// `fs subvolume info`.
pub fn info(r: &Rados, fs: &str, name: &str) -> Result<SubvolumeInfo, CephError> {
    info_cmd(fs, name).reply(r)
}

fn resize_cmd(fs: &str, name: &str, size: u64, no_shrink: bool) -> Cmd {
    let cmd = json!({"prefix": "fs subvolume resize", "vol_name": fs, "sub_name": name, "new_size": size.to_string()});
    Cmd::mgr(flag(cmd, "no_shrink", no_shrink))
}

/// `fs subvolume resize` to a quota of `size` bytes. With `no_shrink`, a size below what the subvolume
/// holds is refused (EINVAL) instead of set.
pub fn resize(
    r: &Rados,
    fs: &str,
    name: &str,
    size: u64,
    no_shrink: bool,
) -> Result<(), CephError> {
    resize_cmd(fs, name, size, no_shrink).run(r)
}

fn rm_cmd(fs: &str, name: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs subvolume rm", "vol_name": fs, "sub_name": name}))
}

/// `fs subvolume rm`: the subvolume and its data (moved to the module's trash, purged in the
/// background). Refused while it has snapshots.
pub fn rm(r: &Rados, fs: &str, name: &str) -> Result<(), CephError> {
    rm_cmd(fs, name).run(r)
}

fn metadata_ls_cmd(fs: &str, name: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs subvolume metadata ls", "vol_name": fs, "sub_name": name}))
}

/// `fs subvolume metadata ls`: every key and value set on the subvolume. (`metadata get` answers in
/// plain text, so one key is read from this.)
pub fn metadata_ls(r: &Rados, fs: &str, name: &str) -> Result<BTreeMap<String, String>, CephError> {
    metadata_ls_cmd(fs, name).reply(r)
}

fn metadata_set_cmd(fs: &str, name: &str, key: &str, value: &str) -> Cmd {
    Cmd::mgr(
        json!({"prefix": "fs subvolume metadata set", "vol_name": fs, "sub_name": name, "key_name": key, "value": value}),
    )
}

/// `fs subvolume metadata set`.
pub fn metadata_set(
    r: &Rados,
    fs: &str,
    name: &str,
    key: &str,
    value: &str,
) -> Result<(), CephError> {
    metadata_set_cmd(fs, name, key, value).run(r)
}

fn snapshot_create_cmd(fs: &str, name: &str, snap: &str) -> Cmd {
    Cmd::mgr(
        json!({"prefix": "fs subvolume snapshot create", "vol_name": fs, "sub_name": name, "snap_name": snap}),
    )
}

/// `fs subvolume snapshot create`. EEXIST when the snapshot exists.
pub fn snapshot_create(r: &Rados, fs: &str, name: &str, snap: &str) -> Result<(), CephError> {
    snapshot_create_cmd(fs, name, snap).run(r)
}

fn snapshot_rm_cmd(fs: &str, name: &str, snap: &str, force: bool) -> Cmd {
    let cmd = json!({"prefix": "fs subvolume snapshot rm", "vol_name": fs, "sub_name": name, "snap_name": snap});
    Cmd::mgr(flag(cmd, "force", force))
}

/// `fs subvolume snapshot rm`. Without `force`, a missing snapshot is ENOENT; with it, success.
pub fn snapshot_rm(
    r: &Rados,
    fs: &str,
    name: &str,
    snap: &str,
    force: bool,
) -> Result<(), CephError> {
    snapshot_rm_cmd(fs, name, snap, force).run(r)
}

fn snapshot_ls_cmd(fs: &str, name: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs subvolume snapshot ls", "vol_name": fs, "sub_name": name}))
}

/// `fs subvolume snapshot ls`: the names of the subvolume's snapshots.
pub fn snapshot_ls(r: &Rados, fs: &str, name: &str) -> Result<Vec<String>, CephError> {
    let ls: Vec<NameEntry> = snapshot_ls_cmd(fs, name).reply(r)?;
    Ok(ls.into_iter().map(|e| e.name).collect())
}

fn snapshot_info_cmd(fs: &str, name: &str, snap: &str) -> Cmd {
    Cmd::mgr(
        json!({"prefix": "fs subvolume snapshot info", "vol_name": fs, "sub_name": name, "snap_name": snap}),
    )
}

/// `fs subvolume snapshot info`.
pub fn snapshot_info(
    r: &Rados,
    fs: &str,
    name: &str,
    snap: &str,
) -> Result<SubvolumeSnapshotInfo, CephError> {
    snapshot_info_cmd(fs, name, snap).reply(r)
}

fn snapshot_clone_cmd(fs: &str, name: &str, snap: &str, target: &str) -> Cmd {
    Cmd::mgr(
        json!({"prefix": "fs subvolume snapshot clone", "vol_name": fs, "sub_name": name, "snap_name": snap, "target_sub_name": target}),
    )
}

/// `fs subvolume snapshot clone`: starts copying the snapshot into the new subvolume `target`, in the
/// background ([`clone_status`] follows it). EEXIST when `target` exists, ENOENT without the snapshot.
pub fn snapshot_clone(
    r: &Rados,
    fs: &str,
    name: &str,
    snap: &str,
    target: &str,
) -> Result<(), CephError> {
    snapshot_clone_cmd(fs, name, snap, target).run(r)
}

fn clone_status_cmd(fs: &str, clone: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "fs clone status", "vol_name": fs, "clone_name": clone}))
}

#[derive(Deserialize)]
struct CloneStatusReply {
    status: CloneStatus,
}

/// `fs clone status` of the clone into `clone`.
pub fn clone_status(r: &Rados, fs: &str, clone: &str) -> Result<CloneStatus, CephError> {
    let reply: CloneStatusReply = clone_status_cmd(fs, clone).reply(r)?;
    Ok(reply.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        let m = Target::Mgr;
        assert_cmd(
            create_cmd("myfs", "sv", 1 << 30, None),
            m,
            json!({"prefix": "fs subvolume create", "vol_name": "myfs", "sub_name": "sv", "size": 1073741824u64}),
        );
        assert_cmd(
            create_cmd("myfs", "sv", 1 << 30, Some("myfs-replicated")),
            m,
            json!({"prefix": "fs subvolume create", "vol_name": "myfs", "sub_name": "sv", "size": 1073741824u64,
                   "pool_layout": "myfs-replicated"}),
        );
        assert_cmd(
            group_create_cmd("myfs", "csi"),
            m,
            json!({"prefix": "fs subvolumegroup create", "vol_name": "myfs", "group_name": "csi"}),
        );
        assert_cmd(
            group_rm_cmd("myfs", "csi"),
            m,
            json!({"prefix": "fs subvolumegroup rm", "vol_name": "myfs", "group_name": "csi"}),
        );
        assert_cmd(
            ls_cmd("myfs", Some("csi")),
            m,
            json!({"prefix": "fs subvolume ls", "vol_name": "myfs", "group_name": "csi"}),
        );
        assert_cmd(
            ls_cmd("myfs", None),
            m,
            json!({"prefix": "fs subvolume ls", "vol_name": "myfs"}),
        );
        assert_cmd(
            info_cmd("myfs", "sv"),
            m,
            json!({"prefix": "fs subvolume info", "vol_name": "myfs", "sub_name": "sv"}),
        );
        assert_cmd(
            resize_cmd("myfs", "sv", 2048, true),
            m,
            json!({"prefix": "fs subvolume resize", "vol_name": "myfs", "sub_name": "sv",
                   "new_size": "2048", "no_shrink": true}),
        );
        assert_cmd(
            resize_cmd("myfs", "sv", 2048, false),
            m,
            json!({"prefix": "fs subvolume resize", "vol_name": "myfs", "sub_name": "sv", "new_size": "2048"}),
        );
        assert_cmd(
            rm_cmd("myfs", "sv"),
            m,
            json!({"prefix": "fs subvolume rm", "vol_name": "myfs", "sub_name": "sv"}),
        );
        assert_cmd(
            metadata_ls_cmd("myfs", "sv"),
            m,
            json!({"prefix": "fs subvolume metadata ls", "vol_name": "myfs", "sub_name": "sv"}),
        );
        assert_cmd(
            metadata_set_cmd("myfs", "sv", "csi.volname", "pvc-1"),
            m,
            json!({"prefix": "fs subvolume metadata set", "vol_name": "myfs", "sub_name": "sv",
                   "key_name": "csi.volname", "value": "pvc-1"}),
        );
        assert_cmd(
            snapshot_create_cmd("myfs", "sv", "s1"),
            m,
            json!({"prefix": "fs subvolume snapshot create", "vol_name": "myfs", "sub_name": "sv", "snap_name": "s1"}),
        );
        assert_cmd(
            snapshot_rm_cmd("myfs", "sv", "s1", true),
            m,
            json!({"prefix": "fs subvolume snapshot rm", "vol_name": "myfs", "sub_name": "sv",
                   "snap_name": "s1", "force": true}),
        );
        assert_cmd(
            snapshot_rm_cmd("myfs", "sv", "s1", false),
            m,
            json!({"prefix": "fs subvolume snapshot rm", "vol_name": "myfs", "sub_name": "sv", "snap_name": "s1"}),
        );
        assert_cmd(
            snapshot_ls_cmd("myfs", "sv"),
            m,
            json!({"prefix": "fs subvolume snapshot ls", "vol_name": "myfs", "sub_name": "sv"}),
        );
        assert_cmd(
            snapshot_info_cmd("myfs", "sv", "s1"),
            m,
            json!({"prefix": "fs subvolume snapshot info", "vol_name": "myfs", "sub_name": "sv", "snap_name": "s1"}),
        );
        assert_cmd(
            snapshot_clone_cmd("myfs", "sv", "s1", "copy"),
            m,
            json!({"prefix": "fs subvolume snapshot clone", "vol_name": "myfs", "sub_name": "sv",
                   "snap_name": "s1", "target_sub_name": "copy"}),
        );
        assert_cmd(
            clone_status_cmd("myfs", "copy"),
            m,
            json!({"prefix": "fs clone status", "vol_name": "myfs", "clone_name": "copy"}),
        );
    }

    #[test]
    fn parses_info_with_and_without_quota() {
        let with: SubvolumeInfo = serde_json::from_str(include_str!(
            "../../testdata/pacific/fs_subvolume_info.json"
        ))
        .unwrap();
        assert_eq!(with.bytes_quota, Some(1 << 30));
        assert_eq!(with.bytes_used, 0);
        assert_eq!(with.state, "complete");
        assert_eq!(with.kind, "subvolume");
        assert_eq!(with.created_at, "2026-12-04 20:00:15");
        assert!(with.path.starts_with("/volumes/_nogroup/sv1/"));
        let without: SubvolumeInfo = serde_json::from_str(include_str!(
            "../../testdata/pacific/fs_subvolume_info_no_quota.json"
        ))
        .unwrap();
        assert_eq!(without.bytes_quota, None);
    }

    #[test]
    fn parses_lists_and_metadata() {
        let subs: Vec<NameEntry> =
            serde_json::from_str(include_str!("../../testdata/pacific/fs_subvolume_ls.json"))
                .unwrap();
        let names: Vec<&str> = subs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["sv1", "clone1", "sv2"]);
        let snaps: Vec<NameEntry> = serde_json::from_str(include_str!(
            "../../testdata/pacific/fs_subvolume_snapshot_ls.json"
        ))
        .unwrap();
        assert_eq!(snaps[0].name, "snap1");
        let meta: BTreeMap<String, String> = serde_json::from_str(include_str!(
            "../../testdata/pacific/fs_subvolume_metadata_ls.json"
        ))
        .unwrap();
        assert_eq!(meta["csi.volname"], "pvc-name-1");
        assert_eq!(meta["csi.storage.k8s.io/pvc/name"], "claim1");
    }

    #[test]
    fn parses_snapshot_info_and_clone_status() {
        let info: SubvolumeSnapshotInfo = serde_json::from_str(include_str!(
            "../../testdata/pacific/fs_subvolume_snapshot_info.json"
        ))
        .unwrap();
        assert_eq!(info.created_at, "2026-12-04 20:00:18.412344");
        assert_eq!(info.has_pending_clones, "no");
        let done: CloneStatusReply =
            serde_json::from_str(include_str!("../../testdata/pacific/fs_clone_status.json"))
                .unwrap();
        assert_eq!(done.status.state, "complete");
        assert!(done.status.failure.is_none());
        // A failed clone, as the volumes module reports it (errno as a string).
        let failed: CloneStatusReply = serde_json::from_value(json!({"status": {
            "state": "failed", "source": {"volume": "myfs", "subvolume": "sv1", "snapshot": "snap1"},
            "failure": {"errno": "122", "error_msg": "Disk quota exceeded"}}}))
        .unwrap();
        assert_eq!(
            failed.status.failure.unwrap().error_msg,
            "Disk quota exceeded"
        );
    }
}
