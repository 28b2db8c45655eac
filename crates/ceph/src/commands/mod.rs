//! Every mon and mgr command rookery sends, one typed function each, grouped by the area of Ceph they
//! manage. Each function builds its command with a private pure function (tested for the JSON it sends)
//! and sends it through [`Rados`]; the replies are the types of [`crate::types`]. Nothing outside this
//! crate spells a command.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{CephError, Rados, Target};

pub mod auth;
pub mod cluster;
pub mod config;
pub mod config_key;
pub mod fs;
pub mod mgr;
pub mod osd;
pub mod pool;
pub mod subvolume;

/// A command ready to send: the daemon that serves it and its JSON (with its `prefix`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub(crate) target: Target,
    pub(crate) json: Value,
}

impl Cmd {
    pub(crate) fn mon(json: Value) -> Cmd {
        Cmd {
            target: Target::Mon,
            json,
        }
    }

    pub(crate) fn mgr(json: Value) -> Cmd {
        Cmd {
            target: Target::Mgr,
            json,
        }
    }

    /// Sends it and parses the JSON reply.
    pub(crate) fn reply<T: DeserializeOwned>(self, r: &Rados) -> Result<T, CephError> {
        r.command(self.target, self.json)
    }

    /// Sends it with `input` (what the CLI reads from `-i`) and parses the JSON reply.
    pub(crate) fn reply_with_input<T: DeserializeOwned>(
        self,
        r: &Rados,
        input: &[u8],
    ) -> Result<T, CephError> {
        r.command_with_input(self.target, self.json, input)
    }

    /// Sends a command that answers only with a status line, which nobody reads.
    pub(crate) fn run(self, r: &Rados) -> Result<(), CephError> {
        r.command_status(self.target, self.json).map(|_| ())
    }
}

/// Adds `key: true` to a command only when `on`: leaving a flag out is how Ceph's own CLI sends "no".
pub(crate) fn flag(mut json: Value, key: &str, on: bool) -> Value {
    if on {
        if let Some(map) = json.as_object_mut() {
            map.insert(key.to_string(), Value::Bool(true));
        }
    }
    json
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Cmd;
    use crate::Target;

    /// Asserts a built command's daemon and JSON (compared as values, so key order does not matter).
    pub(crate) fn assert_cmd(cmd: Cmd, target: Target, json: serde_json::Value) {
        assert_eq!(cmd.target, target, "target of {}", cmd.json);
        assert_eq!(cmd.json, json);
    }
}
