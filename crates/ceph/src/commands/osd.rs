//! The OSD map and CRUSH: `osd dump|tree|metadata|df|new|out|safe-to-destroy|purge|destroy`,
//! `osd crush rule dump|create-replicated`, `osd crush class ls|set-device-class`,
//! `osd erasure-code-profile set`.

use serde::Deserialize;
use serde_json::json;

use super::Cmd;
use crate::types::{CrushRule, OsdDf, OsdDump, OsdMetadata, OsdPerfDump, OsdTree};
use crate::{CephError, Rados};

fn dump_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "osd dump"}))
}

/// `osd dump`: OSDs and pools.
pub fn dump(r: &Rados) -> Result<OsdDump, CephError> {
    dump_cmd().reply(r)
}

fn tree_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "osd tree"}))
}

/// `osd tree`: the CRUSH hierarchy.
pub fn tree(r: &Rados) -> Result<OsdTree, CephError> {
    tree_cmd().reply(r)
}

fn metadata_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "osd metadata"}))
}

/// `osd metadata` of every OSD.
pub fn metadata(r: &Rados) -> Result<Vec<OsdMetadata>, CephError> {
    metadata_cmd().reply(r)
}

fn df_cmd() -> Cmd {
    Cmd::mgr(json!({"prefix": "osd df"}))
}

/// `osd df`: each OSD's capacity and use. Served by the mgr, so it fails while no mgr is active.
pub fn df(r: &Rados) -> Result<OsdDf, CephError> {
    df_cmd().reply(r)
}

fn perf_cmd(id: u32) -> Cmd {
    Cmd {
        target: crate::Target::Osd(id),
        json: json!({"prefix": "perf dump", "logger": "osd"}),
    }
}

/// `tell osd.N perf dump osd`: the OSD's client operation counters since it started.
pub fn perf(r: &Rados, id: u32) -> Result<OsdPerfDump, CephError> {
    perf_cmd(id).reply(r)
}

fn new_cmd(uuid: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "osd new", "uuid": uuid}))
}

fn new_input(cephx_secret: &str) -> Vec<u8> {
    json!({"cephx_secret": cephx_secret})
        .to_string()
        .into_bytes()
}

fn new_with_id_cmd(uuid: &str, id: u32) -> Cmd {
    Cmd::mon(json!({"prefix": "osd new", "uuid": uuid, "id": id}))
}

/// `osd new` under the id of a destroyed OSD (its replacement keeps the id and CRUSH position).
pub fn new_with_id(r: &Rados, uuid: &str, id: u32, cephx_secret: &str) -> Result<u32, CephError> {
    let reply: NewReply =
        new_with_id_cmd(uuid, id).reply_with_input(r, &new_input(cephx_secret))?;
    Ok(match reply {
        NewReply::Object { osdid } | NewReply::Id(osdid) => osdid,
    })
}

fn crush_reweight_cmd(id: u32, weight: f64) -> Cmd {
    Cmd::mon(json!({"prefix": "osd crush reweight", "name": format!("osd.{id}"), "weight": weight}))
}

/// `osd crush reweight`: OSD `id`'s share of data follows `bytes` (CRUSH weights are TiB).
pub fn crush_reweight(r: &Rados, id: u32, bytes: u64) -> Result<(), CephError> {
    crush_reweight_cmd(id, bytes as f64 / (1u64 << 40) as f64).run(r)
}

fn out_cmd(id: u32) -> Cmd {
    Cmd::mon(json!({"prefix": "osd out", "ids": [id.to_string()]}))
}

/// `osd out`: CRUSH stops mapping data to the OSD, so its PGs move to the others.
pub fn out(r: &Rados, id: u32) -> Result<(), CephError> {
    out_cmd(id).run(r)
}

fn safe_to_destroy_cmd(id: u32) -> Cmd {
    Cmd::mgr(json!({"prefix": "osd safe-to-destroy", "ids": [id.to_string()]}))
}

/// What `osd safe-to-destroy` says of the OSDs it was asked about.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SafeToDestroy {
    pub safe_to_destroy: Vec<u32>,
    /// Still mapped to PGs.
    pub active: Vec<u32>,
    /// The mgr has no PG stats from them yet.
    pub missing_stats: Vec<u32>,
    /// Still storing PGs.
    pub stored_pgs: Vec<u32>,
}

/// `osd safe-to-destroy` (served by the mgr): whether no data would lose a copy without the OSD.
pub fn safe_to_destroy(r: &Rados, id: u32) -> Result<SafeToDestroy, CephError> {
    safe_to_destroy_cmd(id).reply(r)
}

fn purge_cmd(id: u32) -> Cmd {
    Cmd::mgr(json!({"prefix": "osd purge", "id": id, "yes_i_really_mean_it": true}))
}

/// `osd purge` (the mgr checks it is safe, then has the mons do it): the OSD leaves CRUSH, the OSD map
/// and auth.
pub fn purge(r: &Rados, id: u32) -> Result<(), CephError> {
    purge_cmd(id).run(r)
}

fn purge_forced_cmd(id: u32) -> Cmd {
    Cmd::mgr(json!({"prefix": "osd purge", "id": id, "force": true, "yes_i_really_mean_it": true}))
}

/// `osd purge --force`: purges a down OSD without the mgr's check that its data is safe elsewhere
/// (`host rm --force` of a host that is gone, whose PGs may never become clean without it).
pub fn purge_forced(r: &Rados, id: u32) -> Result<(), CephError> {
    purge_forced_cmd(id).run(r)
}

fn crush_rm_cmd(name: &str) -> Cmd {
    Cmd::mon(json!({"prefix": "osd crush rm", "name": name}))
}

/// `osd crush rm NAME`: removes an empty bucket (a removed host's); one that is not there is no error.
pub fn crush_rm(r: &Rados, name: &str) -> Result<(), CephError> {
    match crush_rm_cmd(name).run(r) {
        Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
        other => other,
    }
}

fn destroy_cmd(id: u32) -> Cmd {
    Cmd::mgr(json!({"prefix": "osd destroy", "id": id, "yes_i_really_mean_it": true}))
}

/// `osd destroy`: the OSD's key goes and it is marked destroyed; its id and CRUSH position stay for a
/// replacement (`new_with_id`).
pub fn destroy(r: &Rados, id: u32) -> Result<(), CephError> {
    destroy_cmd(id).run(r)
}

/// `osd new` answers `{"osdid": N}` in JSON format and a bare number otherwise.
#[derive(Deserialize)]
#[serde(untagged)]
enum NewReply {
    Object { osdid: u32 },
    Id(u32),
}

/// `osd new`: registers the OSD `uuid` with its cephx key and returns its id. The same uuid and key
/// again give the same id, so a crash between this and writing the id down is harmless.
pub fn new(r: &Rados, uuid: &str, cephx_secret: &str) -> Result<u32, CephError> {
    let reply: NewReply = new_cmd(uuid).reply_with_input(r, &new_input(cephx_secret))?;
    Ok(match reply {
        NewReply::Object { osdid } | NewReply::Id(osdid) => osdid,
    })
}

fn crush_rule_dump_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "osd crush rule dump"}))
}

/// `osd crush rule dump`: every CRUSH rule.
pub fn crush_rule_dump(r: &Rados) -> Result<Vec<CrushRule>, CephError> {
    crush_rule_dump_cmd().reply(r)
}

fn crush_rule_create_replicated_cmd(
    name: &str,
    root: &str,
    failure_domain: &str,
    device_class: &str,
) -> Cmd {
    Cmd::mon(json!({
        "prefix": "osd crush rule create-replicated",
        "name": name, "root": root, "type": failure_domain, "class": device_class,
    }))
}

/// `osd crush rule create-replicated`: a rule placing copies under `root`, one per `failure_domain`
/// (a CRUSH type: `osd`, `host`, ...), on devices of `device_class` only.
pub fn crush_rule_create_replicated(
    r: &Rados,
    name: &str,
    root: &str,
    failure_domain: &str,
    device_class: &str,
) -> Result<(), CephError> {
    crush_rule_create_replicated_cmd(name, root, failure_domain, device_class).run(r)
}

fn crush_class_ls_cmd() -> Cmd {
    Cmd::mon(json!({"prefix": "osd crush class ls"}))
}

/// `osd crush class ls`: the device classes of the OSDs, e.g. `hdd`.
pub fn crush_class_ls(r: &Rados) -> Result<Vec<String>, CephError> {
    crush_class_ls_cmd().reply(r)
}

fn crush_rm_device_class_cmd(id: u32) -> Cmd {
    Cmd::mon(json!({"prefix": "osd crush rm-device-class", "ids": [id.to_string()]}))
}

fn crush_set_device_class_cmd(id: u32, class: &str) -> Cmd {
    Cmd::mon(json!({
        "prefix": "osd crush set-device-class",
        "class": class,
        "ids": [id.to_string()],
    }))
}

/// Gives OSD `id` the device class `class`, replacing the one Ceph guessed (hdd or ssd). Set before the
/// OSD first boots, it keeps it: an OSD only sets its class itself when it has none.
pub fn crush_set_device_class(r: &Rados, id: u32, class: &str) -> Result<(), CephError> {
    crush_rm_device_class_cmd(id).run(r)?;
    crush_set_device_class_cmd(id, class).run(r)
}

/// What an erasure-code profile says: `data_chunks` (k) plus `coding_chunks` (m) chunks per object, each
/// on a different `failure_domain` (a CRUSH type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureCodeProfile<'a> {
    pub data_chunks: u32,
    pub coding_chunks: u32,
    pub failure_domain: &'a str,
}

fn erasure_code_profile_set_cmd(name: &str, profile: &ErasureCodeProfile) -> Cmd {
    Cmd::mon(json!({
        "prefix": "osd erasure-code-profile set",
        "name": name,
        "profile": [
            format!("k={}", profile.data_chunks),
            format!("m={}", profile.coding_chunks),
            format!("crush-failure-domain={}", profile.failure_domain),
        ],
        // Replaces a profile of that name with other settings instead of failing with EPERM.
        "force": true,
    }))
}

/// `osd erasure-code-profile set`, replacing a profile of that name.
pub fn erasure_code_profile_set(
    r: &Rados,
    name: &str,
    profile: &ErasureCodeProfile,
) -> Result<(), CephError> {
    erasure_code_profile_set_cmd(name, profile).run(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::assert_cmd;
    use crate::Target;

    #[test]
    fn builds_commands() {
        assert_cmd(dump_cmd(), Target::Mon, json!({"prefix": "osd dump"}));
        assert_cmd(
            perf_cmd(3),
            Target::Osd(3),
            json!({"prefix": "perf dump", "logger": "osd"}),
        );
        assert_cmd(
            metadata_cmd(),
            Target::Mon,
            json!({"prefix": "osd metadata"}),
        );
        assert_cmd(df_cmd(), Target::Mgr, json!({"prefix": "osd df"}));
        assert_cmd(
            new_with_id_cmd("u", 3),
            Target::Mon,
            json!({"prefix": "osd new", "uuid": "u", "id": 3}),
        );
        assert_cmd(
            crush_reweight_cmd(3, 0.5),
            Target::Mon,
            json!({"prefix": "osd crush reweight", "name": "osd.3", "weight": 0.5}),
        );
        assert_cmd(
            out_cmd(3),
            Target::Mon,
            json!({"prefix": "osd out", "ids": ["3"]}),
        );
        assert_cmd(
            safe_to_destroy_cmd(3),
            Target::Mgr,
            json!({"prefix": "osd safe-to-destroy", "ids": ["3"]}),
        );
        assert_cmd(
            purge_cmd(3),
            Target::Mgr,
            json!({"prefix": "osd purge", "id": 3, "yes_i_really_mean_it": true}),
        );
        assert_cmd(
            destroy_cmd(3),
            Target::Mgr,
            json!({"prefix": "osd destroy", "id": 3, "yes_i_really_mean_it": true}),
        );
        let reply: SafeToDestroy = serde_json::from_str(
            r#"{"safe_to_destroy":[],"active":[2],"missing_stats":[],"stored_pgs":[]}"#,
        )
        .unwrap();
        assert_eq!(reply.active, [2]);
        assert_cmd(
            crush_set_device_class_cmd(4, "nvme"),
            Target::Mon,
            json!({"prefix": "osd crush set-device-class", "class": "nvme", "ids": ["4"]}),
        );
        assert_cmd(
            crush_rm_device_class_cmd(4),
            Target::Mon,
            json!({"prefix": "osd crush rm-device-class", "ids": ["4"]}),
        );
        assert_cmd(
            new_cmd("2c6f7d0e-8b55-4a5e-9a3e-0a1b2c3d4e5f"),
            Target::Mon,
            json!({"prefix": "osd new", "uuid": "2c6f7d0e-8b55-4a5e-9a3e-0a1b2c3d4e5f"}),
        );
        let input: serde_json::Value = serde_json::from_slice(&new_input("AQB=")).unwrap();
        assert_eq!(input, json!({"cephx_secret": "AQB="}));
        assert_cmd(
            crush_rule_dump_cmd(),
            Target::Mon,
            json!({"prefix": "osd crush rule dump"}),
        );
        assert_cmd(
            crush_rule_create_replicated_cmd("rookery-replicated-ssd", "default", "osd", "ssd"),
            Target::Mon,
            json!({"prefix": "osd crush rule create-replicated", "name": "rookery-replicated-ssd",
                   "root": "default", "type": "osd", "class": "ssd"}),
        );
        assert_cmd(
            crush_class_ls_cmd(),
            Target::Mon,
            json!({"prefix": "osd crush class ls"}),
        );
        let profile = ErasureCodeProfile {
            data_chunks: 2,
            coding_chunks: 1,
            failure_domain: "osd",
        };
        assert_cmd(
            erasure_code_profile_set_cmd("rookery-ec", &profile),
            Target::Mon,
            json!({"prefix": "osd erasure-code-profile set", "name": "rookery-ec",
                   "profile": ["k=2", "m=1", "crush-failure-domain=osd"], "force": true}),
        );
    }

    #[test]
    fn parses_osd_perf() {
        // `tell osd.0 perf dump osd` of 16.2.15 (the counters rookery reads, and a few it does not).
        let p: OsdPerfDump = serde_json::from_str(include_str!(
            "../../testdata/pacific/osd_perf_dump_osd.json"
        ))
        .unwrap();
        assert_eq!(p.osd.op_r, 3);
        assert_eq!(p.osd.op_w, 1914);
        assert_eq!(p.osd.op_w_in_bytes, 34444315);
        assert_eq!(p.osd.op_r_out_bytes, 24);
        assert_eq!(p.osd.op_w_latency.avgcount, 1914);
        assert!((p.osd.op_w_latency.sum - 822.08).abs() < 0.01);
    }

    #[test]
    fn parses_osd_dump() {
        let d: OsdDump =
            serde_json::from_str(include_str!("../../testdata/pacific/osd_dump.json")).unwrap();
        assert_eq!(d.osds.len(), 4);
        assert_eq!((d.osds[0].up, d.osds[0].in_), (1, 1));
        assert!(d.osds[0].instance_nonce().is_some());
        // osd.3 was registered with `osd new` and never started: no address, no process.
        assert_eq!(d.osds[3].instance_nonce(), None);
        let fast = d.pools.iter().find(|p| p.pool_name == "fast").unwrap();
        assert_eq!((fast.size, fast.pool_type, fast.crush_rule), (2, 1, 2));
        assert_eq!(fast.quota_max_bytes, 1 << 30);
        assert_eq!(fast.quota_max_objects, 500);
        assert!(fast.application_metadata.contains_key("rbd"));
        let ec = d
            .pools
            .iter()
            .find(|p| p.pool_name == "my-store.rgw.buckets.data")
            .unwrap();
        assert_eq!(ec.pool_type, 3);
    }

    #[test]
    fn parses_osd_metadata_and_df() {
        let m: Vec<OsdMetadata> =
            serde_json::from_str(include_str!("../../testdata/pacific/osd_metadata.json")).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].osd_objectstore, "bluestore");
        assert_eq!(m[0].bluestore_bdev_size, "10737418240");
        let df: OsdDf =
            serde_json::from_str(include_str!("../../testdata/pacific/osd_df.json")).unwrap();
        assert_eq!(df.nodes.len(), 3);
        assert_eq!(df.nodes[0].kb, 10 << 20);
        assert!(df.nodes[0].kb_used > 0);
    }

    #[test]
    fn parses_osd_new_in_either_form() {
        let parse = |s: &str| match serde_json::from_str::<NewReply>(s).unwrap() {
            NewReply::Object { osdid } | NewReply::Id(osdid) => osdid,
        };
        assert_eq!(
            parse(include_str!("../../testdata/pacific/osd_new.json")),
            3
        );
        assert_eq!(parse("3"), 3);
    }

    #[test]
    fn parses_crush_rules_and_classes() {
        let rules: Vec<CrushRule> = serde_json::from_str(include_str!(
            "../../testdata/pacific/osd_crush_rule_dump.json"
        ))
        .unwrap();
        let names: Vec<(i64, &str)> = rules
            .iter()
            .map(|r| (r.rule_id, r.rule_name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (0, "replicated_rule"),
                (1, "my-store.rgw.buckets.data"),
                (2, "rookery-replicated-hdd")
            ]
        );
        let classes: Vec<String> = serde_json::from_str(include_str!(
            "../../testdata/pacific/osd_crush_class_ls.json"
        ))
        .unwrap();
        assert_eq!(classes, ["hdd"]);
    }
}
