//! cephx users: `auth get-or-create`, `auth get`, `auth rm`.

use serde_json::json;

use super::Cmd;
use crate::types::AuthEntry;
use crate::{CephError, Rados};

fn get_or_create_cmd(entity: &str, caps: &[(&str, &str)]) -> Cmd {
    let caps: Vec<&str> = caps.iter().flat_map(|(t, grant)| [*t, *grant]).collect();
    Cmd::mon(json!({"prefix": "auth get-or-create", "entity": entity, "caps": caps}))
}

fn key_of(entity: &str, reply: Vec<AuthEntry>) -> Result<String, CephError> {
    reply
        .into_iter()
        .next()
        .map(|e| e.key)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| CephError::Reply {
            command: "auth get-or-create".into(),
            detail: format!("the mons returned no key for {entity}"),
        })
}

/// `auth get-or-create`: the key of `entity` (e.g. `mgr.a`), made with `caps` (daemon type, grant) when
/// it does not exist yet. An existing entity with other caps is EINVAL.
pub fn get_or_create(r: &Rados, entity: &str, caps: &[(&str, &str)]) -> Result<String, CephError> {
    key_of(entity, get_or_create_cmd(entity, caps).reply(r)?)
}

fn get_cmd(entity: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "auth get", "entity": entity}))
}

/// `auth get`: the key of `entity` (e.g. `mon.`, which a mon joining the cluster needs for its store).
pub fn get(r: &Rados, entity: &str) -> Result<String, CephError> {
    key_of(entity, get_cmd(entity).reply(r)?)
}

fn rm_cmd(entity: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "auth rm", "entity": entity}))
}

/// `auth rm`: removes `entity` and its key.
pub fn rm(r: &Rados, entity: &str) -> Result<(), CephError> {
    rm_cmd(entity).run(r)
}

fn ls_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "auth ls"}))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthDump {
    auth_dump: Vec<AuthEntry>,
}

/// `auth ls`: the names of every cephx user (`client.admin`, `osd.0`, ...).
pub fn entities(r: &Rados) -> Result<Vec<String>, CephError> {
    let dump: AuthDump = ls_cmd().reply(r)?;
    Ok(dump.auth_dump.into_iter().map(|e| e.entity).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(
            get_or_create_cmd("mgr.a", &[("mon", "allow profile mgr"), ("osd", "allow *")]),
            Target::Mon,
            json!({"prefix": "auth get-or-create", "entity": "mgr.a",
                   "caps": ["mon", "allow profile mgr", "osd", "allow *"]}),
        );
        assert_cmd(ls_cmd(), Target::Mon, json!({"prefix": "auth ls"}));
        assert_cmd(
            rm_cmd("client.rgw.s"),
            Target::Mon,
            json!({"prefix": "auth rm", "entity": "client.rgw.s"}),
        );
    }

    #[test]
    fn reads_the_entities() {
        let dump: AuthDump = serde_json::from_str(
            r#"{"auth_dump":[{"entity":"osd.0","key":"k","caps":{"mon":"allow profile osd"}},{"entity":"client.admin","key":"k","caps":{}}]}"#,
        )
        .unwrap();
        let names: Vec<String> = dump.auth_dump.into_iter().map(|e| e.entity).collect();
        assert_eq!(names, ["osd.0", "client.admin"]);
    }

    #[test]
    fn reads_the_key() {
        let reply: Vec<AuthEntry> = serde_json::from_str(include_str!(
            "../../testdata/pacific/auth_get_or_create.json"
        ))
        .unwrap();
        assert_eq!(reply[0].entity, "client.capture");
        assert_eq!(reply[0].caps["osd"], "allow rw");
        assert_eq!(
            key_of("client.capture", reply).unwrap(),
            "AQBm5hFpAAAAABAAdGVzdC1rZXktbm90LWEtcmVhbC1vbmU="
        );
        assert!(matches!(
            key_of("client.x", vec![]),
            Err(CephError::Reply { .. })
        ));
    }
}
