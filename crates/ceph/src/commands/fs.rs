//! CephFS filesystems (mon commands): `fs ls|dump|new|add_data_pool|set|fail|rm`.

use serde_json::json;

use super::{flag, Cmd};
use crate::types::{FsDump, FsListEntry};
use crate::{CephError, Rados};

fn ls_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "fs ls"}))
}

/// `fs ls`: every filesystem with its pools.
pub fn ls(r: &Rados) -> Result<Vec<FsListEntry>, CephError> {
    ls_cmd().reply(r)
}

fn dump_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "fs dump"}))
}

/// `fs dump`: the FSMap (filesystems, their settings and MDS daemons, standbys).
pub fn dump(r: &Rados) -> Result<FsDump, CephError> {
    dump_cmd().reply(r)
}

fn new_cmd(name: &str, metadata_pool: &str, data_pool: &str, force: bool) -> Cmd {
    let cmd =
        json!({"prefix": "fs new", "fs_name": name, "metadata": metadata_pool, "data": data_pool});
    Cmd::mon(flag(cmd, "force", force))
}

/// `fs new`. `force` skips the check that the pools are empty (and that the data pool is not
/// erasure-coded).
pub fn new(
    r: &Rados,
    name: &str,
    metadata_pool: &str,
    data_pool: &str,
    force: bool,
) -> Result<(), CephError> {
    new_cmd(name, metadata_pool, data_pool, force).run(r)
}

fn add_data_pool_cmd(name: &str, pool: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "fs add_data_pool", "fs_name": name, "pool": pool}))
}

/// `fs add_data_pool`.
pub fn add_data_pool(r: &Rados, name: &str, pool: &str) -> Result<(), CephError> {
    add_data_pool_cmd(name, pool).run(r)
}

fn set_cmd(name: &str, var: &str, value: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "fs set", "fs_name": name, "var": var, "val": value}))
}

/// `fs set <fs> <var> <value>`, e.g. `max_mds 2` or `allow_standby_replay true`.
pub fn set(r: &Rados, name: &str, var: &str, value: &str) -> Result<(), CephError> {
    set_cmd(name, var, value).run(r)
}

fn fail_cmd(name: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "fs fail", "fs_name": name}))
}

/// `fs fail`: takes the filesystem down (its MDS ranks failed), as `fs rm` requires.
pub fn fail(r: &Rados, name: &str) -> Result<(), CephError> {
    fail_cmd(name).run(r)
}

fn rm_cmd(name: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "fs rm", "fs_name": name, "yes_i_really_mean_it": true}))
}

/// `fs rm`: removes the filesystem from the FSMap (its pools stay). ENOENT when there is none of that
/// name; EINVAL while it is up.
pub fn rm(r: &Rados, name: &str) -> Result<(), CephError> {
    rm_cmd(name).run(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(ls_cmd(), Target::Mon, json!({"prefix": "fs ls"}));
        assert_cmd(dump_cmd(), Target::Mon, json!({"prefix": "fs dump"}));
        assert_cmd(
            new_cmd("myfs", "myfs-metadata", "myfs-data0", true),
            Target::Mon,
            json!({"prefix": "fs new", "fs_name": "myfs", "metadata": "myfs-metadata",
                   "data": "myfs-data0", "force": true}),
        );
        assert_cmd(
            new_cmd("myfs", "m", "d", false),
            Target::Mon,
            json!({"prefix": "fs new", "fs_name": "myfs", "metadata": "m", "data": "d"}),
        );
        assert_cmd(
            add_data_pool_cmd("myfs", "myfs-data1"),
            Target::Mon,
            json!({"prefix": "fs add_data_pool", "fs_name": "myfs", "pool": "myfs-data1"}),
        );
        assert_cmd(
            set_cmd("myfs", "max_mds", "2"),
            Target::Mon,
            json!({"prefix": "fs set", "fs_name": "myfs", "var": "max_mds", "val": "2"}),
        );
        assert_cmd(
            fail_cmd("myfs"),
            Target::Mon,
            json!({"prefix": "fs fail", "fs_name": "myfs"}),
        );
        assert_cmd(
            rm_cmd("myfs"),
            Target::Mon,
            json!({"prefix": "fs rm", "fs_name": "myfs", "yes_i_really_mean_it": true}),
        );
    }

    #[test]
    fn parses_fs_ls() {
        let ls: Vec<FsListEntry> =
            serde_json::from_str(include_str!("../../testdata/pacific/fs_ls.json")).unwrap();
        assert_eq!(ls.len(), 1);
        assert_eq!(ls[0].name, "myfs");
        assert_eq!(ls[0].metadata_pool, "myfs-metadata");
        assert_eq!(ls[0].data_pools, ["myfs-replicated"]);
    }

    #[test]
    fn parses_fs_dump() {
        let d: FsDump =
            serde_json::from_str(include_str!("../../testdata/pacific/fs_dump.json")).unwrap();
        assert!(d.standbys.is_empty());
        let map = &d.filesystems[0].mdsmap;
        assert_eq!(map.fs_name, "myfs");
        assert_eq!(map.max_mds, 1);
        assert_eq!(map.data_pools, [5]);
        assert_eq!(map.metadata_pool, 4);
        // Pacific has no flags_state: standby-replay is read from the bits (50 has 0x20 set).
        assert!(map.flags_state.is_none());
        assert!(map.allows_standby_replay());
        let mut mds: Vec<(&str, &str, i64)> = map
            .info
            .values()
            .map(|m| (m.name.as_str(), m.state.as_str(), m.rank))
            .collect();
        mds.sort();
        assert_eq!(
            mds,
            [
                ("myfs-a", "up:standby-replay", 0),
                ("myfs-b", "up:active", 0)
            ]
        );
    }

    #[test]
    fn standby_replay_prefers_the_named_flag() {
        let d: FsDump = serde_json::from_value(json!({"filesystems": [{"mdsmap": {
            "fs_name": "f", "flags": 0x20, "flags_state": {"allow_standby_replay": false}}}],
            "standbys": [{"name": "f-c", "state": "up:standby"}]}))
        .unwrap();
        assert!(!d.filesystems[0].mdsmap.allows_standby_replay());
        assert_eq!(d.standbys[0].rank, -1);
    }
}
