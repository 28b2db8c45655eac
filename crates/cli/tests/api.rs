//! The control API end to end on real Ceph: once `rookery up` has started the cluster, a whole workflow
//! runs through HTTP on the cluster's unix socket alone (status, apply a pool, create, resize, snapshot,
//! clone and flatten volumes, refusals, teardown), and every answer is validated against the OpenAPI
//! document the supervisor serves.

mod common;

use std::path::Path;

use common::api::{refused, request, Client, Contract};
use common::TestCluster;
use serde_json::{json, Value};

fn pool_doc(name: &str, size: u32) -> String {
    format!(
        "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: {name}, namespace: rook-ceph}}\n\
         spec:\n  failureDomain: host\n  replicated: {{size: {size}}}\n"
    )
}

fn pool_named<'a>(pools: &'a Value, name: &str) -> Option<&'a Value> {
    pools.as_array().unwrap().iter().find(|p| p["name"] == name)
}

/// The validator is not a formality: answers that break the document are caught.
fn contract_catches_wrong_answers(contract: &Contract) {
    let tpl = "/v1/volumes/{pool}/{name}";
    let wrong_error = json!({"code": 404, "message": "no"}).to_string();
    assert!(contract
        .check("GET", tpl, 404, wrong_error.as_bytes())
        .is_err());
    let wrong_volume = json!({"pool": "p", "name": "v", "size_bytes": "big"}).to_string();
    assert!(contract
        .check("GET", tpl, 200, wrong_volume.as_bytes())
        .is_err());
    assert!(contract.check("GET", tpl, 418, b"{}").is_err());
    assert!(contract.check("GET", "/v1/nothing", 200, b"{}").is_err());
    let right_error = json!({"code": "not_found", "field": null, "message": "no"}).to_string();
    contract
        .check("GET", tpl, 404, right_error.as_bytes())
        .unwrap();
}

#[test]
fn control_api_on_real_ceph() {
    let c = TestCluster::new_dir();
    c.ok(&["up", "--mon-port", "0"]);
    // From here on: HTTP on the unix socket only.
    let socket = c.dir.join("rookery.sock");

    let served = request(&socket, "GET", "/v1/openapi.json", "application/json", b"");
    assert_eq!(served.status, 200);
    let doc = served.json();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc, committed,
        "the served document is not the committed one"
    );
    let contract = Contract { doc };
    contract_catches_wrong_answers(&contract);
    let api = Client {
        socket: &socket,
        contract,
    };

    let ping = api.get("/v1/ping", "/v1/ping").json();
    assert!(ping["pid"].as_u64().unwrap() > 0);
    // The status report, typed in the document (the client validated it against ClusterReport).
    let status = api.get("/v1/status", "/v1/status").json();
    assert_eq!(status["supervisor"]["pid"], ping["pid"], "{status:#}");
    assert!(
        status["ceph"]["osds"]
            .as_array()
            .is_some_and(|o| !o.is_empty()),
        "{status:#}"
    );
    let untyped = json!({"name": "c", "fsid": "f", "data_dir": "/d", "ready": "yes",
        "not_ready": [], "daemons": []})
    .to_string();
    assert!(api
        .contract
        .check("GET", "/v1/status", 200, untyped.as_bytes())
        .is_err());
    let a = request(&socket, "GET", "/v1/nothing", "application/json", b"");
    refused(&a, 404, "no_such_endpoint", None, &["/v1/nothing"]);

    // Apply a pool: answered once the supervisor made it.
    let pools = api.get("/v1/pools", "/v1/pools").json();
    assert!(pool_named(&pools, "replicapool").is_some(), "{pools:#}");
    let a = api.yaml("/v1/resources", "/v1/resources", &pool_doc("apipool", 2));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let applied = a.json();
    assert_eq!(applied["applied"], json!(["CephBlockPool/apipool"]));
    assert_eq!(applied["reconciled"], true);
    let pools = api.get("/v1/pools", "/v1/pools").json();
    let p = pool_named(&pools, "apipool").unwrap_or_else(|| panic!("{pools:#}"));
    assert_eq!(p["size"], 2);
    assert_eq!(p["volumes"], 0);

    // Bad documents change nothing and say which field.
    let a = api.yaml("/v1/resources", "/v1/resources", &pool_doc("apipool", 7));
    let body = a.json();
    assert_eq!(
        (a.status, &body["code"]),
        (400, &json!("invalid_spec")),
        "{body:#}"
    );
    assert!(
        body["field"]
            .as_str()
            .is_some_and(|f| f.ends_with("spec.replicated.size")),
        "{body:#}"
    );
    let a = api.yaml("/v1/resources", "/v1/resources", "kind: [unclosed");
    // A syntax error is located by line and column in `field`.
    refused(&a, 400, "invalid_spec", Some("line 2 column 1"), &["YAML"]);

    // A volume: created, listed, refused twice, grown.
    let vol = "/v1/volumes/{pool}/{name}";
    let create = |name: &str, size: &str| {
        api.json(
            "POST",
            "/v1/volumes",
            "/v1/volumes",
            json!({"name": name, "pool": "apipool", "size": size}),
        )
    };
    let a = create("vol1", "64Mi");
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let info = a.json();
    assert_eq!(info["size_bytes"], 64 << 20);
    assert_eq!(info["fs"], "ext4");
    refused(
        &create("vol1", "64Mi"),
        409,
        "already_exists",
        None,
        &["vol1", "apipool"],
    );
    refused(
        &create("vol2", "0"),
        400,
        "invalid_value",
        Some("size"),
        &[],
    );
    refused(
        &create("-bad", "64Mi"),
        400,
        "invalid_value",
        Some("name"),
        &["-bad"],
    );
    let a = api.call(
        "POST",
        "/v1/volumes",
        "/v1/volumes",
        "application/json",
        b"{\"name\": \"v\", \"sise\": \"1Gi\"}",
    );
    refused(&a, 400, "invalid_body", None, &["sise"]);
    let list = api.get("/v1/volumes?pool=apipool", "/v1/volumes").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["vol1"]);
    refused(
        &api.get("/v1/volumes?pool=nopool", "/v1/volumes"),
        404,
        "not_found",
        None,
        &["nopool"],
    );
    refused(
        &api.get("/v1/volumes/apipool/nope", vol),
        404,
        "not_found",
        None,
        &["nope"],
    );
    let resize = "/v1/volumes/{pool}/{name}/resize";
    let a = api.json(
        "POST",
        "/v1/volumes/apipool/vol1/resize",
        resize,
        json!({"size": "128Mi"}),
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["volume"]["size_bytes"], 128 << 20);
    let a = api.json(
        "POST",
        "/v1/volumes/apipool/vol1/resize",
        resize,
        json!({"size": "64Mi"}),
    );
    refused(&a, 400, "invalid_value", Some("size"), &["shrinking"]);

    // A snapshot; the volume cannot go while it has one.
    let snaps = "/v1/volumes/{pool}/{name}/snapshots";
    let a = api.json(
        "POST",
        "/v1/volumes/apipool/vol1/snapshots",
        snaps,
        json!({"name": "s1"}),
    );
    assert_eq!(a.status, 201);
    assert_eq!(a.json()["snapshot"], "s1");
    let a = api.json(
        "POST",
        "/v1/volumes/apipool/vol1/snapshots",
        snaps,
        json!({"name": "s1"}),
    );
    refused(&a, 409, "already_exists", None, &["s1"]);
    let info = api.get("/v1/volumes/apipool/vol1", vol).json();
    assert_eq!(info["snapshots"][0]["name"], "s1");
    refused(
        &api.delete("/v1/volumes/apipool/vol1", vol),
        409,
        "in_use",
        None,
        &["s1"],
    );

    // A clone of the snapshot: it depends on the snapshot until flattened, then it stands alone.
    let clone = "/v1/volumes/{pool}/{name}/clone";
    let clone_of = |snapshot: &str, name: &str, flatten: bool| {
        api.json(
            "POST",
            "/v1/volumes/apipool/vol1/clone",
            clone,
            json!({"snapshot": snapshot, "name": name, "flatten": flatten}),
        )
    };
    let a = clone_of("s1", "clone1", false);
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let info = a.json();
    assert_eq!(info["name"], "clone1");
    assert_eq!(info["parent"], "apipool/vol1@s1", "{info:#}");
    assert_eq!(info["size_bytes"], 128 << 20);
    refused(
        &clone_of("s1", "clone1", false),
        409,
        "already_exists",
        None,
        &["clone1"],
    );
    refused(
        &clone_of("nosnap", "clone2", false),
        404,
        "not_found",
        None,
        &["nosnap"],
    );
    refused(
        &clone_of("s1", "-bad", false),
        400,
        "invalid_value",
        Some("name"),
        &["-bad"],
    );
    refused(
        &api.json(
            "POST",
            "/v1/volumes/apipool/nope/clone",
            clone,
            json!({"snapshot": "s1", "name": "clone2"}),
        ),
        404,
        "not_found",
        None,
        &["nope"],
    );
    let snap = "/v1/volumes/{pool}/{name}/snapshots/{snapshot}";
    refused(
        &api.delete("/v1/volumes/apipool/vol1/snapshots/s1", snap),
        409,
        "in_use",
        None,
        &["clone1"],
    );
    let flatten = "/v1/volumes/{pool}/{name}/flatten";
    let a = api.call(
        "POST",
        "/v1/volumes/apipool/clone1/flatten",
        flatten,
        "application/json",
        b"",
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["parent"].is_null(), "{:#}", a.json());
    let a = api.call(
        "POST",
        "/v1/volumes/apipool/clone1/flatten",
        flatten,
        "application/json",
        b"",
    );
    refused(&a, 409, "not_a_clone", None, &["clone1"]);
    refused(
        &api.call(
            "POST",
            "/v1/volumes/apipool/nope/flatten",
            flatten,
            "application/json",
            b"",
        ),
        404,
        "not_found",
        None,
        &["nope"],
    );
    // Flattened as it is made: no parent from the start.
    let a = clone_of("s1", "clone2", true);
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["parent"].is_null(), "{:#}", a.json());
    for name in ["clone1", "clone2"] {
        let a = api.delete(&format!("/v1/volumes/apipool/{name}"), vol);
        assert_eq!(a.status, 204, "{}", String::from_utf8_lossy(&a.body));
    }

    // Deleting the pool is refused while it holds the volume, and names it.
    let delete = "/v1/resources/delete";
    let a = api.yaml(delete, delete, &pool_doc("apipool", 2));
    refused(
        &a,
        409,
        "pool_has_volumes",
        Some("CephBlockPool"),
        &["apipool", "vol1"],
    );
    let pools = api.get("/v1/pools", "/v1/pools").json();
    assert!(pool_named(&pools, "apipool").is_some());

    // Snapshot and volume go, then the pool.
    let a = api.delete("/v1/volumes/apipool/vol1/snapshots/s1", snap);
    assert_eq!(a.status, 204);
    refused(
        &api.delete("/v1/volumes/apipool/vol1/snapshots/s1", snap),
        404,
        "not_found",
        None,
        &["s1"],
    );
    assert_eq!(api.delete("/v1/volumes/apipool/vol1", vol).status, 204);
    refused(
        &api.delete("/v1/volumes/apipool/vol1", vol),
        404,
        "not_found",
        None,
        &["vol1"],
    );
    let a = api.yaml(delete, delete, &pool_doc("apipool", 2));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let deleted = a.json();
    assert_eq!(deleted["deleted"], json!(["CephBlockPool/apipool"]));
    assert_eq!(deleted["deleted_pools"], json!(["apipool"]));
    let pools = api.get("/v1/pools", "/v1/pools").json();
    assert!(pool_named(&pools, "apipool").is_none(), "{pools:#}");
    let a = api.yaml(delete, delete, &pool_doc("apipool", 2));
    refused(&a, 404, "not_found", None, &["apipool"]);
}
