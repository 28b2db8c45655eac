//! File and object storage end to end on real Ceph: a CephFilesystem with subvolumes mounted twice by
//! ceph-fuse, a CephObjectStore used by boto3 (a real S3 client), users with quotas, refusals of bad input
//! with nothing changed, and all of it carried across `rookery down`/`up`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{api, checksum, json, processes_mentioning, pseudo_random, text, TestCluster};
use serde_json::json;

const FS: &str = "apiVersion: ceph.rook.io/v1
kind: CephFilesystem
metadata:
  name: myfs
spec:
  metadataPool:
    replicated:
      size: 3
  dataPools:
    - name: replicated
      replicated:
        size: 3
  metadataServer:
    activeCount: 1
    activeStandby: true
";

fn store_yaml(port: u16) -> String {
    format!(
        "apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata:
  name: my-store
spec:
  metadataPool:
    replicated:
      size: 3
  dataPool:
    erasureCoded:
      dataChunks: 2
      codingChunks: 1
  gateway:
    port: {port}
    instances: 1
"
    )
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the boto3 client script; returns what it printed.
fn s3(endpoint: &str, access: &str, secret: &str, args: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/client.py");
    // The distro python has boto3 (python3-boto3); another python3 on PATH may not.
    let o = Command::new("/usr/bin/python3")
        .arg(script)
        .args([endpoint, access, secret])
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run python3");
    assert!(o.status.success(), "boto3 {args:?}:\n{}", text(&o));
    json(&o)
}

fn is_mounted(path: &Path) -> bool {
    rookery_volumes::mounts::is_mount_point(path)
}

/// Asserts a command was refused as bad input (exit 2) and left the saved spec as it was.
fn refused(c: &TestCluster, args: &[&str], needle: &str) {
    let before = std::fs::read(c.dir.join("spec.yaml")).unwrap();
    let o = c.run(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?} should be refused:\n{}",
        text(&o)
    );
    let shown = text(&o);
    assert!(
        shown.contains(needle),
        "{args:?}: {needle:?} missing:\n{shown}"
    );
    assert_eq!(
        std::fs::read(c.dir.join("spec.yaml")).unwrap(),
        before,
        "{args:?} changed the spec"
    );
}

#[test]
fn filesystem_and_object_store_end_to_end() {
    let c = TestCluster::new_dir();
    let work = c.dir.parent().unwrap().to_path_buf();
    c.ok(&["up", "--mon-port", "0"]);

    // Bad input first: each is refused with its field and fix, and the spec stays as it was.
    let port = free_port();
    let bad_fs = write(
        &work,
        "bad-fs.yaml",
        &FS.replace("activeCount: 1", "activeCount: 0"),
    );
    refused(
        &c,
        &["apply", "-f", bad_fs.to_str().unwrap()],
        "spec.metadataServer.activeCount",
    );
    let bad_pool = write(
        &work,
        "bad-pool.yaml",
        &FS.replace("size: 3\n  dataPools", "size: 0\n  dataPools"),
    );
    refused(
        &c,
        &["apply", "-f", bad_pool.to_str().unwrap()],
        "spec.metadataPool.replicated.size",
    );
    let bad_port = write(
        &work,
        "bad-port.yaml",
        &store_yaml(port).replace(&format!("port: {port}"), "port: 70000"),
    );
    refused(
        &c,
        &["apply", "-f", bad_port.to_str().unwrap()],
        "spec.gateway.port",
    );
    let holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let store = write(&work, "store.yaml", &store_yaml(port));
    refused(
        &c,
        &["apply", "-f", store.to_str().unwrap()],
        "is in use by pid",
    );
    drop(holder);

    // A filesystem and an object store, timed from `apply` to usable.
    let fs = write(&work, "fs.yaml", FS);
    let t = Instant::now();
    c.ok(&["apply", "-f", fs.to_str().unwrap()]);
    let fs_secs = t.elapsed().as_secs_f64();
    supervisor_killed_during_an_apply(&c, &store);
    let t = Instant::now();
    c.ok(&["apply", "-f", store.to_str().unwrap()]);
    let store_secs = t.elapsed().as_secs_f64();
    eprintln!("apply -> usable: filesystem {fs_secs:.1} s, object store {store_secs:.1} s (after an interrupted apply and up)");
    let status = c.status();
    let myfs = &status["ceph"]["filesystems"][0];
    assert_eq!(myfs["name"], "myfs", "{status:#}");
    assert!(
        myfs["mds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["state"] == "up:active"),
        "{myfs:#}"
    );
    let endpoint = format!("http://127.0.0.1:{port}");

    // `doctor`: the checks of this host, and the cluster part as the supervisor reports it (the typed
    // `GET /v1/status` answer, with the supervisor in it: a report read without one has none).
    let doctor = c.run(&["doctor", "-o", "json"]);
    let doctor = json(&doctor);
    assert!(
        doctor["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{doctor:#}"
    );
    let cluster = &doctor["cluster"];
    assert!(
        cluster["supervisor"]["pid"].as_u64().is_some(),
        "{doctor:#}"
    );
    assert_eq!(
        cluster["ceph"]["filesystems"][0]["name"], "myfs",
        "{doctor:#}"
    );
    api::Contract::served(&c.dir.join("rookery.sock"))
        .check("GET", "/v1/status", 200, cluster.to_string().as_bytes())
        .unwrap();

    // Users: keys printed once at creation, kept 0600; duplicates and bad names refused.
    let alice = json(&c.ok(&["object", "user", "create", "alice", "-o", "json"]));
    let keys = &alice["new_users"][0];
    let (access, secret) = (
        keys["access_key"].as_str().unwrap().to_string(),
        keys["secret_key"].as_str().unwrap().to_string(),
    );
    assert_eq!(access.len(), 20);
    let mode = std::fs::metadata(c.dir.join("rgw/my-store/users/alice.json"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o600);
    refused(
        &c,
        &["object", "user", "create", "alice"],
        "already has a user alice",
    );
    refused(
        &c,
        &["object", "user", "create", "Bad_Name"],
        "not a valid name",
    );
    let shown = text(&c.ok(&["object", "user", "show", "alice"]));
    assert!(
        shown.contains(&access) && !shown.contains(&secret),
        "{shown}"
    );
    let shown = text(&c.ok(&["object", "user", "show", "alice", "--show-secret"]));
    assert!(shown.contains(&secret), "{shown}");

    // S3 with boto3: small and multipart objects, list, delete, wrong secret, latencies.
    let r = s3(&endpoint, &access, &secret, &["roundtrip", "photos"]);
    assert_eq!(r["small_equal"], true, "{r}");
    assert_eq!(r["big_equal"], true, "{r}");
    assert_eq!(r["big_multipart"], true, "{r}");
    assert_eq!(
        r["listed"],
        serde_json::json!(["big.bin", "kept.bin", "small.bin"]),
        "{r}"
    );
    assert_eq!(
        r["after_delete"],
        serde_json::json!(["big.bin", "kept.bin"]),
        "{r}"
    );
    assert_eq!(r["wrong_secret_status"], 403, "{r}");
    eprintln!(
        "S3 4 KiB x200: PUT p50 {:.1} ms p99 {:.1} ms, GET p50 {:.1} ms p99 {:.1} ms; 64 MiB multipart PUT {:.2} s, GET {:.2} s",
        r["put_ms"]["p50"].as_f64().unwrap(),
        r["put_ms"]["p99"].as_f64().unwrap(),
        r["get_ms"]["p50"].as_f64().unwrap(),
        r["get_ms"]["p99"].as_f64().unwrap(),
        r["big_put_secs"].as_f64().unwrap(),
        r["big_get_secs"].as_f64().unwrap()
    );
    // The S3 benchmark: figures for every size beside a reference gateway it starts and removes.
    let bench = json(&c.ok(&[
        "bench", "objects", "--count", "10", "--keys", "30", "-o", "json",
    ]));
    let f = &bench["figures"];
    for key in [
        "put_4k_ms",
        "get_4k_ms",
        "put_1m_ms",
        "get_64m_ms",
        "list_30_ms",
    ] {
        for side in ["ours", "tuned"] {
            let p50 = f[key][side]["p50"].as_f64().unwrap_or(0.0);
            assert!(p50 > 0.0, "{key} {side}: {bench}");
        }
    }
    eprintln!(
        "bench objects (10 requests): GET 4 KiB p50 {:.2} ms vs tuned {:.2} ms",
        f["get_4k_ms"]["ours"]["p50"].as_f64().unwrap(),
        f["get_4k_ms"]["tuned"]["p50"].as_f64().unwrap()
    );
    let users = rookery_ceph::commands::auth::entities(&c.rados()).unwrap();
    assert!(
        users.iter().any(|u| u == "client.admin")
            && !users.iter().any(|u| u.contains("rookery-bench-rgw")),
        "{users:?}"
    );
    assert!(
        processes_mentioning("rookery-bench-rgw").is_empty(),
        "the reference gateway is stopped"
    );
    let kept_sha = r["kept_sha"].as_str().unwrap().to_string();
    let buckets = json(&c.ok(&["object", "bucket", "list", "--user", "alice", "-o", "json"]));
    assert_eq!(buckets[0]["bucket"], "photos", "{buckets}");
    // A user over its quota is refused by the gateway.
    let limited = json(&c.ok(&[
        "object",
        "user",
        "create",
        "limited",
        "--max-objects",
        "3",
        "-o",
        "json",
    ]));
    let lk = &limited["new_users"][0];
    let q = s3(
        &endpoint,
        lk["access_key"].as_str().unwrap(),
        lk["secret_key"].as_str().unwrap(),
        &["quota", "limited-bucket", "3"],
    );
    assert_eq!(q["accepted"], 3, "{q}");
    assert_eq!(q["refusal"], "QuotaExceeded", "{q}");
    objects_over_the_api(&c, &secret);

    // CephFS: a quota-bounded subvolume mounted twice; each mount sees the other's writes.
    c.ok(&[
        "fs",
        "subvolume",
        "create",
        "myfs",
        "app1",
        "--size",
        "32Mi",
    ]);
    refused(
        &c,
        &["fs", "subvolume", "create", "myfs", "app1", "--size", "1Gi"],
        "already exists",
    );
    subvolumes_over_the_api(&c);
    // The CephFS benchmark: every figure on both sides; its scratch subvolume and mount are gone after.
    let bench = json(&c.ok(&[
        "bench",
        "files",
        "--size-mib",
        "8",
        "--runtime",
        "1",
        "--files",
        "50",
        "-o",
        "json",
    ]));
    let f = &bench["figures"];
    for key in [
        "seq_write_1m_mib_s",
        "seq_read_1m_mib_s",
        "rand_read_4k_iops",
        "rand_write_4k_iops",
        "create_per_s",
        "stat_per_s",
        "unlink_per_s",
    ] {
        for side in ["ours", "raw"] {
            assert!(
                f[key][side].as_f64().unwrap_or(0.0) > 0.0,
                "{key} {side}: {bench}"
            );
        }
    }
    let subvolumes = text(&c.ok(&["fs", "subvolume", "list", "myfs"]));
    assert!(!subvolumes.contains("rookery-bench"), "{subvolumes}");
    assert!(
        processes_mentioning("rookery-bench-files").is_empty(),
        "the benchmark's ceph-fuse is gone"
    );
    let (m1, m2) = (work.join("m1"), work.join("m2"));
    std::fs::create_dir_all(&m1).unwrap();
    std::fs::create_dir_all(&m2).unwrap();
    refused(
        &c,
        &["fs", "mount", "myfs:nosuch", m1.to_str().unwrap()],
        "no subvolume nosuch",
    );
    refused(
        &c,
        &[
            "fs",
            "mount",
            "myfs:app1",
            work.join("absent").to_str().unwrap(),
        ],
        "does not exist",
    );
    c.ok(&["fs", "mount", "myfs:app1", m1.to_str().unwrap()]);
    c.ok(&["fs", "mount", "myfs:app1", m2.to_str().unwrap()]);
    refused(
        &c,
        &["fs", "mount", "myfs:app1", m2.to_str().unwrap()],
        "already a mount point",
    );
    let data = pseudo_random(7, 3 << 20);
    std::fs::write(m1.join("shared.bin"), &data).unwrap();
    let seen = std::fs::read(m2.join("shared.bin")).unwrap();
    assert_eq!(
        checksum(&seen),
        checksum(&data),
        "the second mount sees other bytes"
    );
    std::fs::write(m2.join("back.txt"), b"from m2").unwrap();
    assert_eq!(std::fs::read(m1.join("back.txt")).unwrap(), b"from m2");
    // Past the quota: the write fails.
    let over = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", m1.join("big").display()),
            "bs=1M",
            "count=64",
            "conv=fsync",
        ])
        .output()
        .unwrap();
    assert!(
        !over.status.success(),
        "64 MiB fit into a 32 MiB subvolume:\n{}",
        text(&over)
    );
    std::fs::remove_file(m1.join("big")).unwrap();
    refused(
        &c,
        &["fs", "subvolume", "rm", "myfs", "app1"],
        "is mounted at",
    );
    let fs_delete = write(&work, "fs-delete.yaml", FS);
    refused(
        &c,
        &["delete", "-f", fs_delete.to_str().unwrap()],
        "is mounted at",
    );

    // Down and up: mounts are taken down with the cluster and come back; data survives.
    c.ok(&["down"]);
    assert!(!is_mounted(&m1) && !is_mounted(&m2));
    assert!(processes_mentioning("ceph-fuse").iter().all(|pid| {
        !rookery_platform::proc::cmdline(*pid)
            .is_some_and(|cmd| cmd.iter().any(|a| a.contains(&c.dir.display().to_string())))
    }));
    c.ok(&["up"]);
    assert!(is_mounted(&m1) && is_mounted(&m2), "mounts not restored");
    assert_eq!(
        checksum(&std::fs::read(m2.join("shared.bin")).unwrap()),
        checksum(&data)
    );
    let r = s3(&endpoint, &access, &secret, &["check", "photos", &kept_sha]);
    assert_eq!(r["equal"], true, "{r}");

    // Unmount leaves no ceph-fuse and no mount behind.
    c.ok(&["fs", "unmount", m1.to_str().unwrap()]);
    c.ok(&["fs", "unmount", m2.to_str().unwrap()]);
    assert!(!is_mounted(&m1) && !is_mounted(&m2));
    let deadline = Instant::now() + Duration::from_secs(10);
    let ours = |c: &TestCluster| {
        processes_mentioning(&c.dir.display().to_string())
            .into_iter()
            .filter(|pid| {
                rookery_platform::proc::cmdline(*pid)
                    .is_some_and(|cmd| cmd.first().is_some_and(|p| p.ends_with("ceph-fuse")))
            })
            .count()
    };
    while ours(&c) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ours(&c), 0, "ceph-fuse left running");

    // Deleting: a filesystem with subvolumes, a store whose users own buckets, are refused until cleared.
    refused(
        &c,
        &["delete", "-f", fs_delete.to_str().unwrap()],
        "still has subvolumes: app1",
    );
    c.ok(&["fs", "subvolume", "rm", "myfs", "app1"]);
    c.ok(&["delete", "-f", fs_delete.to_str().unwrap()]);
    let status = c.status();
    assert!(
        status["ceph"]["filesystems"].as_array().unwrap().is_empty(),
        "{status:#}"
    );
    assert!(
        !status["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"].as_str().unwrap().starts_with("mds.") && d["state"] == "running"),
        "{status:#}"
    );
    refused(
        &c,
        &["object", "user", "rm", "alice"],
        "buckets would be deleted with it: photos",
    );
    c.ok(&["object", "user", "rm", "alice", "--yes-delete-buckets"]);
    let users = json(&c.ok(&["object", "user", "list", "-o", "json"]));
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    // The store goes once its users are gone, with its pools, gateway and keys.
    refused(
        &c,
        &["delete", "-f", store.to_str().unwrap()],
        "still has users: limited",
    );
    c.ok(&["object", "user", "rm", "limited", "--yes-delete-buckets"]);
    c.ok(&["delete", "-f", store.to_str().unwrap()]);
    let status = c.status();
    let pools: Vec<&str> = status["ceph"]["pools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(!pools.iter().any(|p| p.contains("rgw")), "{pools:?}");
    assert!(!c.dir.join("rgw/my-store").exists());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the gateway still serves"
    );
}

/// The subvolume endpoints on the socket, every answer checked against the served OpenAPI document.
/// The supervisor killed (-9) while an apply makes an object store: `apply` exits non-zero, saying the
/// supervisor stopped and naming `rookery up`, never that it applied; `up` then converges the store.
fn supervisor_killed_during_an_apply(c: &TestCluster, store: &Path) {
    let supervisor = c.status()["supervisor"]["pid"].as_u64().unwrap() as i32;
    let apply = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(&c.dir)
        .args(["apply", "-f"])
        .arg(store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the store is in the saved spec, while the supervisor reconciles it.
    let started = Instant::now();
    while !std::fs::read_to_string(c.dir.join("spec.yaml"))
        .unwrap_or_default()
        .contains("CephObjectStore")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the store was never saved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a plain kill(2) of the test's own supervisor.
    assert_eq!(unsafe { libc::kill(supervisor, libc::SIGKILL) }, 0);
    let out = apply.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        said.contains("stopped before it answered") && said.contains("rookery up"),
        "{said}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("applied"),
        "{}",
        text(&out)
    );
    c.ok(&["up"]);
}

fn subvolumes_over_the_api(c: &TestCluster) {
    let socket = c.dir.join("rookery.sock");
    let api = api::Client {
        socket: &socket,
        contract: api::Contract::served(&socket),
    };
    let (subs, sub) = (
        "/v1/filesystems/{fs}/subvolumes",
        "/v1/filesystems/{fs}/subvolumes/{name}",
    );
    let create = |name: &str, size: &str| {
        api.json(
            "POST",
            "/v1/filesystems/myfs/subvolumes",
            subs,
            json!({"name": name, "size": size}),
        )
    };
    let a = create("apisub", "16Mi");
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["quota_bytes"], 16 << 20);
    api::refused(
        &create("apisub", "16Mi"),
        409,
        "already_exists",
        None,
        &["apisub"],
    );
    api::refused(
        &create("other", "0"),
        400,
        "invalid_value",
        Some("size"),
        &[],
    );
    api::refused(
        &create("-bad", "16Mi"),
        400,
        "invalid_value",
        Some("name"),
        &["-bad"],
    );
    api::refused(
        &api.get("/v1/filesystems/nofs/subvolumes", subs),
        404,
        "not_found",
        None,
        &["nofs"],
    );
    let list = api.get("/v1/filesystems/myfs/subvolumes", subs).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"apisub") && names.contains(&"app1"),
        "{list:#}"
    );
    let a = api.json(
        "POST",
        "/v1/filesystems/myfs/subvolumes/apisub/resize",
        "/v1/filesystems/{fs}/subvolumes/{name}/resize",
        json!({"size": "32Mi"}),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let info = api
        .get("/v1/filesystems/myfs/subvolumes/apisub", sub)
        .json();
    assert_eq!(info["quota_bytes"], 32 << 20, "{info:#}");
    assert_eq!(
        api.delete("/v1/filesystems/myfs/subvolumes/apisub", sub)
            .status,
        204
    );
    api::refused(
        &api.get("/v1/filesystems/myfs/subvolumes/apisub", sub),
        404,
        "not_found",
        None,
        &["apisub"],
    );
}

/// The user and bucket endpoints on the socket, checked against the served OpenAPI document.
fn objects_over_the_api(c: &TestCluster, secret: &str) {
    let socket = c.dir.join("rookery.sock");
    let api = api::Client {
        socket: &socket,
        contract: api::Contract::served(&socket),
    };
    let (users, user, buckets, bucket) = (
        "/v1/objectstores/{store}/users",
        "/v1/objectstores/{store}/users/{uid}",
        "/v1/objectstores/{store}/buckets",
        "/v1/objectstores/{store}/buckets/{bucket}",
    );
    let list = api.get("/v1/objectstores/my-store/users", users).json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|u| u["user"] == "alice"),
        "{list:#}"
    );
    api::refused(
        &api.get("/v1/objectstores/nostore/users", users),
        404,
        "no_such_store",
        None,
        &["nostore"],
    );
    let a = api.get("/v1/objectstores/my-store/users/alice", user);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let shown = a.json();
    assert!(shown["secret_key"].is_null(), "the secret without asking");
    assert!(!String::from_utf8_lossy(&a.body).contains(secret));
    let shown = api
        .get(
            "/v1/objectstores/my-store/users/alice?showSecrets=true",
            user,
        )
        .json();
    assert_eq!(shown["secret_key"], secret);
    assert_eq!(shown["buckets"], json!(["photos"]), "{shown:#}");
    api::refused(
        &api.get("/v1/objectstores/my-store/users/nobody", user),
        404,
        "no_such_user",
        None,
        &["nobody"],
    );
    // Buckets are made with their owner's own keys; asking again for one's own bucket changes nothing,
    // another user's bucket is refused.
    let create = |store: &str, bucket: &str, user: &str| {
        api.json(
            "POST",
            &format!("/v1/objectstores/{store}/buckets"),
            buckets,
            json!({"bucket": bucket, "user": user}),
        )
    };
    let a = create("my-store", "apibucket", "alice");
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.json(),
        json!({"store": "my-store", "bucket": "apibucket", "owner": "alice", "created": true})
    );
    let a = create("my-store", "apibucket", "alice");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["created"], false);
    api::refused(
        &create("my-store", "limited-bucket", "alice"),
        409,
        "bucket_exists",
        None,
        &["limited-bucket", "user limited"],
    );
    api::refused(
        &create("my-store", "Bad_Bucket", "alice"),
        400,
        "invalid_value",
        Some("bucket"),
        &["Bad_Bucket"],
    );
    api::refused(
        &create("my-store", "fine-bucket", "nobody"),
        404,
        "no_such_user",
        None,
        &["nobody"],
    );
    api::refused(
        &create("nostore", "fine-bucket", "alice"),
        404,
        "no_such_store",
        None,
        &["nostore"],
    );
    let made = json(&c.ok(&[
        "object",
        "bucket",
        "create",
        "clibucket",
        "--user",
        "alice",
        "-o",
        "json",
    ]));
    assert_eq!(made["created"], true, "{made}");
    let again = text(&c.ok(&["object", "bucket", "create", "clibucket", "--user", "alice"]));
    assert!(again.contains("already belongs to alice"), "{again}");
    refused(
        c,
        &[
            "object",
            "bucket",
            "create",
            "limited-bucket",
            "--user",
            "alice",
        ],
        "belongs to user limited",
    );
    let list = api
        .get("/v1/objectstores/my-store/buckets?user=alice", buckets)
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["bucket"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{list:#}");
    assert!(
        names.contains(&"apibucket") && names.contains(&"clibucket") && names.contains(&"photos"),
        "{list:#}"
    );
    let a = api.delete("/v1/objectstores/my-store/buckets/photos", bucket);
    api::refused(&a, 409, "bucket_not_empty", None, &["photos"]);
    let a = api.delete("/v1/objectstores/my-store/buckets/apibucket", bucket);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["objects_removed"], 0);
    let a = api.delete("/v1/objectstores/my-store/buckets/apibucket", bucket);
    assert_eq!(a.status, 404, "{}", String::from_utf8_lossy(&a.body));
    c.ok(&["object", "bucket", "rm", "clibucket"]);
}
