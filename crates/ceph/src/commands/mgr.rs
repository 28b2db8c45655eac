//! The mgr: `mgr stat`, `mgr module ls|enable` (mon commands: the mons keep the MgrMap).

use serde_json::json;

use super::Cmd;
use crate::types::{MgrModules, MgrStat, RbdPerfImageStats};
use crate::{CephError, Rados};

fn stat_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "mgr stat"}))
}

/// `mgr stat`: whether a mgr is active, and which.
pub fn stat(r: &Rados) -> Result<MgrStat, CephError> {
    stat_cmd().reply(r)
}

fn module_ls_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "mgr module ls"}))
}

/// `mgr module ls`.
pub fn module_ls(r: &Rados) -> Result<MgrModules, CephError> {
    module_ls_cmd().reply(r)
}

fn module_enable_cmd(module: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "mgr module enable", "module": module}))
}

/// `mgr module enable`. A module the active mgr does not have is ENOENT.
pub fn module_enable(r: &Rados, module: &str) -> Result<(), CephError> {
    module_enable_cmd(module).run(r)
}

fn rbd_image_stats_cmd() -> Cmd {
    Cmd::mgr(json!({"prefix": "rbd perf image stats"}))
}

/// `rbd perf image stats` (rbd_support, always on): every image's I/O of the last few seconds. The
/// first call registers the mgr's query, so figures come from the next interval on; an unasked query
/// expires after a while, so a scraper keeps it alive.
pub fn rbd_image_stats(r: &Rados) -> Result<RbdPerfImageStats, CephError> {
    rbd_image_stats_cmd().reply(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(stat_cmd(), Target::Mon, json!({"prefix": "mgr stat"}));
        assert_cmd(
            module_ls_cmd(),
            Target::Mon,
            json!({"prefix": "mgr module ls"}),
        );
        assert_cmd(
            rbd_image_stats_cmd(),
            Target::Mgr,
            json!({"prefix": "rbd perf image stats"}),
        );
        assert_cmd(
            module_enable_cmd("prometheus"),
            Target::Mon,
            json!({"prefix": "mgr module enable", "module": "prometheus"}),
        );
    }

    #[test]
    fn parses_stat_and_modules() {
        let stat: MgrStat =
            serde_json::from_str(include_str!("../../testdata/pacific/mgr_stat.json")).unwrap();
        assert!(stat.available);
        assert_eq!(stat.active_name, "a");
        let ls: MgrModules =
            serde_json::from_str(include_str!("../../testdata/pacific/mgr_module_ls.json"))
                .unwrap();
        assert_eq!(ls.enabled_modules, ["iostat"]);
        let running: Vec<&str> = ls.running().collect();
        assert!(running.contains(&"iostat"));
        assert!(running.contains(&"volumes"));
        assert!(!running.contains(&"prometheus"));
    }

    #[test]
    fn parses_image_io() {
        // Captured from 16.2.15 while dd wrote to io1 (the second pool is made up, with a namespace).
        let stats: RbdPerfImageStats = serde_json::from_str(include_str!(
            "../../testdata/pacific/rbd_perf_image_stats.json"
        ))
        .unwrap();
        let io = stats.images();
        assert_eq!(io.len(), 2);
        assert_eq!(io[0].pool, "replicapool");
        assert_eq!(io[0].image, "io1");
        assert_eq!(io[0].write_ops_per_sec, 20.0);
        assert_eq!(io[0].read_ops_per_sec, 4.0);
        assert_eq!(io[0].write_bytes_per_sec, 71303168.0);
        assert_eq!(io[0].read_bytes_per_sec, 16384.0);
        assert!((io[0].write_latency_secs - 0.0373).abs() < 1e-3);
        assert_eq!(io[1].pool, "other/ns1");
        let idle: RbdPerfImageStats = serde_json::from_str(
            r#"{"stat_descriptors": ["write_ops"], "pool_descriptors": {}, "stats": []}"#,
        )
        .unwrap();
        assert!(idle.images().is_empty());
    }
}
