//! The cluster as a whole: `status`, `health detail`, `df`, `mon dump`, `mon stat`.

use serde_json::json;

use super::Cmd;
use crate::types::{Df, Health, MonDump, MonStat, Status};
use crate::{CephError, Rados};

fn status_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "status"}))
}

/// `status` (what `ceph -s` shows).
pub fn status(r: &Rados) -> Result<Status, CephError> {
    status_cmd().reply(r)
}

fn health_detail_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "health", "detail": "detail"}))
}

/// `health detail`: each check with the lines that name what it is about (which pool is full, ...).
pub fn health_detail(r: &Rados) -> Result<Health, CephError> {
    health_detail_cmd().reply(r)
}

fn df_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "df", "detail": "detail"}))
}

/// `df detail`: raw capacity and each pool's use, room, quota and client I/O counts.
pub fn df(r: &Rados) -> Result<Df, CephError> {
    df_cmd().reply(r)
}

fn mon_dump_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "mon dump"}))
}

/// `mon dump`: the monmap.
pub fn mon_dump(r: &Rados) -> Result<MonDump, CephError> {
    mon_dump_cmd().reply(r)
}

fn mon_getmap_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "mon getmap"}))
}

/// `mon getmap`: the current monmap in Ceph's binary encoding (what `ceph-mon --mkfs --monmap` takes
/// to make the store of a mon that joins).
pub fn mon_getmap(r: &Rados) -> Result<Vec<u8>, CephError> {
    let cmd = mon_getmap_cmd();
    r.command_raw(cmd.target, &cmd.json, &[])
        .map(|(map, _)| map)
}

fn mon_remove_cmd(name: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "mon remove", "name": name}))
}

/// `mon remove NAME`: the mon leaves the monmap (one that is not there is no error).
pub fn mon_remove(r: &Rados, name: &str) -> Result<(), CephError> {
    match mon_remove_cmd(name).run(r) {
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
        other => other,
    }
}

fn mon_stat_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "mon stat"}))
}

/// `mon stat`: the mons and their quorum; the cheapest question a mon answers.
pub fn mon_stat(r: &Rados) -> Result<MonStat, CephError> {
    mon_stat_cmd().reply(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(status_cmd(), Target::Mon, json!({"prefix": "status"}));
        assert_cmd(
            df_cmd(),
            Target::Mon,
            json!({"prefix": "df", "detail": "detail"}),
        );
        assert_cmd(
            health_detail_cmd(),
            Target::Mon,
            json!({"prefix": "health", "detail": "detail"}),
        );
        assert_cmd(mon_dump_cmd(), Target::Mon, json!({"prefix": "mon dump"}));
        assert_cmd(mon_stat_cmd(), Target::Mon, json!({"prefix": "mon stat"}));
    }

    #[test]
    fn parses_status_with_its_service_map() {
        let s: Status =
            serde_json::from_str(include_str!("../../testdata/pacific/status.json")).unwrap();
        assert!(s.is_health_ok());
        assert_eq!(s.quorum_names, ["a"]);
        assert_eq!(s.osdmap.num_up_osds, 3);
        assert_eq!(s.unclean_pgs(), 0);
        assert_eq!(s.pgmap.num_pgs, 97);
        assert!(s.mgrmap.available);
        // Each service's daemons sit beside a `"summary": ""` that is no daemon.
        let rgw = &s.servicemap.services["rgw"].daemons;
        assert_eq!(rgw.len(), 1);
        let gw = &rgw["4159"];
        assert_eq!(gw.gid, 4159);
        assert_eq!(gw.metadata.id, "my-store");
        assert_eq!(
            gw.metadata.frontend_config,
            "beast endpoint=127.0.0.1:18733 tcp_nodelay=1"
        );
        assert_eq!(s.servicemap.services["osd"].daemons.len(), 3);
    }

    #[test]
    fn parses_df_and_mons() {
        let df: Df = serde_json::from_str(include_str!("../../testdata/pacific/df.json")).unwrap();
        assert_eq!(df.stats.total_bytes, 32212254720);
        let fast = df.pools.iter().find(|p| p.name == "fast").unwrap();
        assert_eq!(fast.stats.max_avail, 14843030528);
        let dump: MonDump =
            serde_json::from_str(include_str!("../../testdata/pacific/mon_dump.json")).unwrap();
        assert_eq!(dump.mons.len(), 1);
        assert_eq!(dump.mons[0].name, "a");
        assert_eq!(dump.mons[0].public_addr, "127.0.0.1:44435/0");
        let stat: MonStat =
            serde_json::from_str(include_str!("../../testdata/pacific/mon_stat.json")).unwrap();
        assert_eq!(stat.num_mons, 1);
        assert_eq!(stat.leader, "a");
        assert_eq!(stat.quorum[0].name, "a");
    }
}
