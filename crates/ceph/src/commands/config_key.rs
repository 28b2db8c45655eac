//! The mons' config-key store (`config-key set|get|rm|ls`): small values (up to
//! `mon_config_key_max_entry_size`, 64 KiB) under string keys, replicated with the mons. rookery keeps
//! a cluster's membership there, so every member can read it. Anyone with a mon `r` cap can read it:
//! never put a secret there, only digests of one.

use serde_json::json;

use super::Cmd;
use crate::{CephError, Rados};

fn set_cmd(key: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "config-key set", "key": key}))
}

/// `config-key set KEY -i VALUE`: the value goes as the command's input, so any bytes are kept as given.
pub fn set(r: &Rados, key: &str, value: &[u8]) -> Result<(), CephError> {
    let cmd = set_cmd(key);
    r.command_raw(cmd.target, &cmd.json, value).map(|_| ())
}

fn get_cmd(key: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "config-key get", "key": key}))
}

/// `config-key get KEY`: the value's bytes, or None when there is no such key.
pub fn get(r: &Rados, key: &str) -> Result<Option<Vec<u8>>, CephError> {
    let cmd = get_cmd(key);
    match r.command_raw(cmd.target, &cmd.json, &[]) {
        Ok((value, _)) => Ok(Some(value)),
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn rm_cmd(key: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "config-key rm", "key": key}))
}

/// `config-key rm KEY`: removing a key that is not there is not an error.
pub fn rm(r: &Rados, key: &str) -> Result<(), CephError> {
    rm_cmd(key).run(r)
}

fn dump_cmd(prefix: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "config-key dump", "key": prefix}))
}

/// `config-key dump PREFIX`: every key under `prefix` with its value, in one call (values must be
/// text, as rookery's JSON records are).
pub fn dump(
    r: &Rados,
    prefix: &str,
) -> Result<std::collections::BTreeMap<String, String>, CephError> {
    dump_cmd(prefix).reply(r)
}

fn ls_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "config-key ls", "format": "json"}))
}

/// `config-key ls`: every key (no values), of which callers keep those under their prefix.
pub fn ls(r: &Rados, prefix: &str) -> Result<Vec<String>, CephError> {
    let all: Vec<String> = ls_cmd().reply(r)?;
    Ok(all.into_iter().filter(|k| k.starts_with(prefix)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_config_key_commands() {
        assert_cmd(
            set_cmd("rookery/join/ab"),
            Target::Mon,
            json!({"prefix": "config-key set", "key": "rookery/join/ab"}),
        );
        assert_cmd(
            get_cmd("rookery/hosts/host2"),
            Target::Mon,
            json!({"prefix": "config-key get", "key": "rookery/hosts/host2"}),
        );
        assert_cmd(
            rm_cmd("rookery/join/ab"),
            Target::Mon,
            json!({"prefix": "config-key rm", "key": "rookery/join/ab"}),
        );
        assert_cmd(
            ls_cmd(),
            Target::Mon,
            json!({"prefix": "config-key ls", "format": "json"}),
        );
    }
}
