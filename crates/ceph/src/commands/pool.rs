//! Pools: `osd pool create|set|get|set-quota|delete|ls`, `osd pool application enable`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::Cmd;
use crate::{CephError, Rados};

fn create_replicated_cmd(name: &str, size: u32) -> Cmd {
    Cmd::mon(
        json!({"prefix": "osd pool create", "pool": name, "pool_type": "replicated", "size": size}),
    )
}

/// `osd pool create` of a replicated pool keeping `size` copies (the default CRUSH rule).
pub fn create_replicated(r: &Rados, name: &str, size: u32) -> Result<(), CephError> {
    create_replicated_cmd(name, size).run(r)
}

fn create_erasure_cmd(name: &str, profile: &str) -> Cmd {
    Cmd::mon(
        json!({"prefix": "osd pool create", "pool": name, "pool_type": "erasure", "erasure_code_profile": profile}),
    )
}

/// `osd pool create` of an erasure-coded pool with the erasure-code profile `profile`.
pub fn create_erasure(r: &Rados, name: &str, profile: &str) -> Result<(), CephError> {
    create_erasure_cmd(name, profile).run(r)
}

fn set_cmd(name: &str, var: &str, value: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "osd pool set", "pool": name, "var": var, "val": value}))
}

/// `osd pool set <pool> <var> <value>`, e.g. `compression_mode aggressive`.
pub fn set(r: &Rados, name: &str, var: &str, value: &str) -> Result<(), CephError> {
    set_cmd(name, var, value).run(r)
}

/// `osd pool set <pool> size`: the number of copies.
pub fn set_size(r: &Rados, name: &str, size: u32) -> Result<(), CephError> {
    set(r, name, "size", &size.to_string())
}

/// `osd pool set <pool> crush_rule`: which CRUSH rule places the pool's data.
pub fn set_crush_rule(r: &Rados, name: &str, rule: &str) -> Result<(), CephError> {
    set(r, name, "crush_rule", rule)
}

/// `osd pool set <pool> allow_ec_overwrites true`: lets an erasure-coded pool be written in place, which
/// RBD and CephFS need.
pub fn allow_ec_overwrites(r: &Rados, name: &str) -> Result<(), CephError> {
    set(r, name, "allow_ec_overwrites", "true")
}

fn get_cmd(name: &str, var: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "osd pool get", "pool": name, "var": var}))
}

/// One setting's value as `osd pool get` sends it: a string, a number or a flag.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Setting {
    Text(String),
    Number(serde_json::Number),
    Flag(bool),
}

/// The reply to `osd pool get <pool> <var>`: `{"pool": .., "pool_id": .., "<var>": value}`.
#[derive(Debug, Clone, Deserialize)]
struct GetReply {
    #[serde(flatten)]
    settings: BTreeMap<String, Setting>,
}

impl GetReply {
    /// The value of `var`, written as the CLI's plain format writes it (`aggressive`, `3`, `false`).
    fn value(self, var: &str) -> Result<String, CephError> {
        match self.settings.get(var) {
            Some(Setting::Text(s)) => Ok(s.clone()),
            Some(Setting::Number(n)) => Ok(n.to_string()),
            Some(Setting::Flag(b)) => Ok(b.to_string()),
            None => Err(CephError::Reply {
                command: "osd pool get".into(),
                detail: format!("no {var} in the reply"),
            }),
        }
    }
}

/// `osd pool get <pool> <var>`: the setting as text. A setting never set (e.g. `compression_mode` on a
/// new pool) is ENOENT.
pub fn get(r: &Rados, name: &str, var: &str) -> Result<String, CephError> {
    get_cmd(name, var).reply::<GetReply>(r)?.value(var)
}

fn set_quota_cmd(name: &str, field: &str, value: u64) -> Cmd {
    Cmd::mon(
        json!({"prefix": "osd pool set-quota", "pool": name, "field": field, "val": value.to_string()}),
    )
}

/// `osd pool set-quota`: `field` is `max_bytes` or `max_objects`; 0 removes that quota.
pub fn set_quota(r: &Rados, name: &str, field: &str, value: u64) -> Result<(), CephError> {
    set_quota_cmd(name, field, value).run(r)
}

fn get_quota_cmd(name: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "osd pool get-quota", "pool": name}))
}

/// `osd pool get-quota`: a pool's quotas and what they are measured against.
pub fn get_quota(r: &Rados, name: &str) -> Result<PoolQuota, CephError> {
    get_quota_cmd(name).reply(r)
}

/// `osd pool get-quota`. `current_num_bytes` is what the quota is held to: the objects' logical sizes
/// (an RBD object written only near its end counts whole), which can be more than `df`'s `stored`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PoolQuota {
    pub quota_max_bytes: u64,
    pub current_num_bytes: u64,
    pub quota_max_objects: u64,
    pub current_num_objects: u64,
}

fn delete_cmd(name: &str) -> Cmd {
    Cmd::mon(
        json!({"prefix": "osd pool delete", "pool": name, "pool2": name, "yes_i_really_really_mean_it": true}),
    )
}

/// `osd pool delete`: the pool and all its data. ENOENT when there is no such pool; EPERM unless the mons
/// allow pool deletion (`mon_allow_pool_delete`).
pub fn delete(r: &Rados, name: &str) -> Result<(), CephError> {
    delete_cmd(name).run(r)
}

fn application_enable_cmd(name: &str, application: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "osd pool application enable", "pool": name, "app": application}))
}

/// `osd pool application enable`: tags the pool with the application using it (`rbd`, `cephfs`, `rgw`).
pub fn application_enable(r: &Rados, name: &str, application: &str) -> Result<(), CephError> {
    application_enable_cmd(name, application).run(r)
}

/// The application metadata key (under `rbd`) that lets a pool's volumes be larger than its quota.
pub const OVER_COMMIT_KEY: &str = "rookery.over-commit";

fn application_set_cmd(name: &str, application: &str, key: &str, value: &str) -> Cmd {
    Cmd::mon(
        json!({"prefix": "osd pool application set", "pool": name, "app": application, "key": key, "value": value}),
    )
}

/// `osd pool application set`: one key of the application's metadata on the pool (the application must
/// be enabled).
pub fn application_set(
    r: &Rados,
    name: &str,
    application: &str,
    key: &str,
    value: &str,
) -> Result<(), CephError> {
    application_set_cmd(name, application, key, value).run(r)
}

fn application_rm_cmd(name: &str, application: &str, key: &str) -> Cmd {
    Cmd::mon(
        json!({"prefix": "osd pool application rm", "pool": name, "app": application, "key": key}),
    )
}

/// `osd pool application rm`: removes one key of the application's metadata.
pub fn application_rm(
    r: &Rados,
    name: &str,
    application: &str,
    key: &str,
) -> Result<(), CephError> {
    application_rm_cmd(name, application, key).run(r)
}

fn ls_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "osd pool ls"}))
}

/// `osd pool ls`: every pool's name.
pub fn ls(r: &Rados) -> Result<Vec<String>, CephError> {
    ls_cmd().reply(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(
            create_replicated_cmd("replicapool", 3),
            Target::Mon,
            json!({"prefix": "osd pool create", "pool": "replicapool", "pool_type": "replicated", "size": 3}),
        );
        assert_cmd(
            create_erasure_cmd("ec", "rookery-ec"),
            Target::Mon,
            json!({"prefix": "osd pool create", "pool": "ec", "pool_type": "erasure",
                   "erasure_code_profile": "rookery-ec"}),
        );
        assert_cmd(
            set_cmd("fast", "compression_mode", "aggressive"),
            Target::Mon,
            json!({"prefix": "osd pool set", "pool": "fast", "var": "compression_mode", "val": "aggressive"}),
        );
        assert_cmd(
            get_cmd("fast", "size"),
            Target::Mon,
            json!({"prefix": "osd pool get", "pool": "fast", "var": "size"}),
        );
        assert_cmd(
            set_quota_cmd("fast", "max_bytes", 1 << 30),
            Target::Mon,
            json!({"prefix": "osd pool set-quota", "pool": "fast", "field": "max_bytes", "val": "1073741824"}),
        );
        assert_cmd(
            delete_cmd("fast"),
            Target::Mon,
            json!({"prefix": "osd pool delete", "pool": "fast", "pool2": "fast",
                   "yes_i_really_really_mean_it": true}),
        );
        assert_cmd(
            application_enable_cmd("fast", "rbd"),
            Target::Mon,
            json!({"prefix": "osd pool application enable", "pool": "fast", "app": "rbd"}),
        );
        assert_cmd(
            application_set_cmd("fast", "rbd", OVER_COMMIT_KEY, "true"),
            Target::Mon,
            json!({"prefix": "osd pool application set", "pool": "fast", "app": "rbd",
                   "key": "rookery.over-commit", "value": "true"}),
        );
        assert_cmd(
            application_rm_cmd("fast", "rbd", OVER_COMMIT_KEY),
            Target::Mon,
            json!({"prefix": "osd pool application rm", "pool": "fast", "app": "rbd",
                   "key": "rookery.over-commit"}),
        );
        assert_cmd(ls_cmd(), Target::Mon, json!({"prefix": "osd pool ls"}));
        assert_cmd(
            get_quota_cmd("fast"),
            Target::Mon,
            json!({"prefix": "osd pool get-quota", "pool": "fast"}),
        );
    }

    #[test]
    fn reads_a_quota_and_its_measure() {
        // As 16.2.15 answers.
        let q: PoolQuota = serde_json::from_str(
            r#"{"pool_name":"tight","pool_id":3,"quota_max_objects":0,"current_num_objects":34,"quota_max_bytes":134217728,"current_num_bytes":134230016}"#,
        )
        .unwrap();
        assert_eq!(q.quota_max_bytes, 134217728);
        assert_eq!(q.current_num_bytes, 134230016);
        assert_eq!(q.current_num_objects, 34);
    }

    #[test]
    fn reads_settings_of_every_kind() {
        let get = |reply: &str, var: &str| {
            serde_json::from_str::<GetReply>(reply)
                .unwrap()
                .value(var)
                .unwrap()
        };
        let mode = include_str!("../../testdata/pacific/osd_pool_get_compression_mode.json");
        assert_eq!(get(mode, "compression_mode"), "aggressive");
        let size = include_str!("../../testdata/pacific/osd_pool_get_size.json");
        assert_eq!(get(size, "size"), "2");
        let flag = include_str!("../../testdata/pacific/osd_pool_get_nodelete.json");
        assert_eq!(get(flag, "nodelete"), "false");
        let reply: GetReply = serde_json::from_str(size).unwrap();
        assert!(matches!(
            reply.value("min_size"),
            Err(CephError::Reply { .. })
        ));
    }

    #[test]
    fn parses_pool_list() {
        let names: Vec<String> =
            serde_json::from_str(include_str!("../../testdata/pacific/osd_pool_ls.json")).unwrap();
        assert_eq!(names.len(), 13);
        assert_eq!(names[0], "replicapool");
    }
}
