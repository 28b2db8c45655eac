//! The mgr: `mgr stat`, `mgr module ls|enable` (mon commands: the mons keep the MgrMap).

use serde_json::json;

use super::Cmd;
use crate::types::{MgrModules, MgrStat};
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
}
