//! The mons' config database and what daemons run with: `config dump|set|rm|show`, and whether a daemon
//! may stop now (`mon|osd|mds ok-to-stop`).

use serde::Deserialize;
use serde_json::json;

use super::Cmd;
use crate::{CephError, Rados};

/// One entry of the config database.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ConfigEntry {
    /// `global`, `osd`, `osd.3`, `client.rgw.s3`.
    pub section: String,
    pub name: String,
    pub value: String,
    /// Running daemons take a new value without a restart.
    pub can_update_at_runtime: bool,
}

fn dump_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "config dump"}))
}

/// `config dump`: every option set in the database.
pub fn dump(r: &Rados) -> Result<Vec<ConfigEntry>, CephError> {
    dump_cmd().reply(r)
}

fn set_cmd(who: &str, name: &str, value: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "config set", "who": who, "name": name, "value": value}))
}

/// `config set`: daemons of `who` (a section) get `name = value`, running ones at once where Ceph allows.
pub fn set(r: &Rados, who: &str, name: &str, value: &str) -> Result<(), CephError> {
    set_cmd(who, name, value).run(r)
}

fn rm_cmd(who: &str, name: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "config rm", "who": who, "name": name}))
}

/// `config rm`: the option goes back to what the daemon's own config or Ceph's default says.
pub fn rm(r: &Rados, who: &str, name: &str) -> Result<(), CephError> {
    rm_cmd(who, name).run(r)
}

/// An option as a running daemon has it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RunningOption {
    pub name: String,
    pub value: String,
    /// `default`, `file`, `mon`, `override`, `cmdline`, ...
    pub source: String,
}

fn show_cmd(who: &str) -> Cmd {
    Cmd::mgr(json!({"prefix": "config show", "who": who}))
}

/// `config show` (the mgr answers from what each daemon reports): the options `who` runs with that
/// differ from Ceph's defaults.
pub fn show(r: &Rados, who: &str) -> Result<Vec<RunningOption>, CephError> {
    show_cmd(who).reply(r)
}

fn ok_to_stop_cmd(kind: &str, id: &str) -> Cmd {
    let json = json!({"prefix": format!("{kind} ok-to-stop"), "ids": [id]});
    match kind {
        "mon" => Cmd::mon(json),
        _ => Cmd::mgr(json),
    }
}

/// Whether Ceph says daemon `kind.id` (mon, osd or mds) may stop now without data or service becoming
/// unavailable: `Ok(Err(why))` when not.
pub fn ok_to_stop(r: &Rados, kind: &str, id: &str) -> Result<Result<(), String>, CephError> {
    match ok_to_stop_cmd(kind, id).run(r) {
        Ok(()) => Ok(Ok(())),
        Err(CephError::Call { code, detail, .. })
            if code == -libc::EBUSY || code == -libc::EAGAIN =>
        {
            Ok(Err(detail))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(dump_cmd(), Target::Mon, json!({"prefix": "config dump"}));
        assert_cmd(
            set_cmd("osd", "osd_max_backfills", "3"),
            Target::Mon,
            json!({"prefix": "config set", "who": "osd", "name": "osd_max_backfills", "value": "3"}),
        );
        assert_cmd(
            rm_cmd("osd.1", "debug_osd"),
            Target::Mon,
            json!({"prefix": "config rm", "who": "osd.1", "name": "debug_osd"}),
        );
        assert_cmd(
            show_cmd("osd.0"),
            Target::Mgr,
            json!({"prefix": "config show", "who": "osd.0"}),
        );
        assert_cmd(
            ok_to_stop_cmd("mon", "a"),
            Target::Mon,
            json!({"prefix": "mon ok-to-stop", "ids": ["a"]}),
        );
        assert_cmd(
            ok_to_stop_cmd("osd", "2"),
            Target::Mgr,
            json!({"prefix": "osd ok-to-stop", "ids": ["2"]}),
        );
        let dumped: Vec<ConfigEntry> = serde_json::from_str(
            r#"[{"section":"osd","name":"osd_max_backfills","value":"3","level":"advanced","can_update_at_runtime":true,"mask":""}]"#,
        )
        .unwrap();
        assert!(dumped[0].can_update_at_runtime && dumped[0].section == "osd");
    }
}
