//! The web dashboard on a real cluster (with a filesystem, an object store and a CSI-made volume):
//! every route refuses without a session (the API included), a wrong key is refused, changes need the
//! CSRF token, a rotated key ends the old sessions, no secret reaches a page, log or /metrics unless
//! asked for; then Debian's chromium, driven by playwright-core (tests/browser/dashboard.mjs), logs in
//! and checks every page against the API, creates a volume (seen by `rookery volume list`), sees a
//! refusal that changes nothing, and the claim of the CSI volume. Screenshots of every page go to
//! target/dashboard-screenshots (docs/screenshots with ROOKERY_WRITE_SCREENSHOTS=1).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http, json, scrape, text, TestCluster};
use rookery_csi::pb;

const FS: &str = "apiVersion: ceph.rook.io/v1
kind: CephFilesystem
metadata:
  name: dashfs
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
";

fn store(port: u16) -> String {
    format!(
        "apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata:
  name: dashstore
spec:
  metadataPool:
    replicated:
      size: 3
  dataPool:
    replicated:
      size: 3
  gateway:
    port: {port}
    instances: 1
"
    )
}

/// The driver process, stopped when dropped.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A volume made by the RBD CSI driver for claim `default/dash-claim`: its id (POOL/NAME).
fn csi_volume(c: &TestCluster) -> String {
    let socket = c.dir.parent().unwrap().join("csi-dash/csi.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(&c.dir)
        .args(["csi", "--endpoint"])
        .arg(format!("unix://{}", socket.display()))
        .args(["--node-id", "node-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the CSI driver did not serve");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ctl =
            pb::controller_client::ControllerClient::new(common::csi_channel(socket.clone()).await);
        let cap = pb::VolumeCapability {
            access_type: Some(pb::volume_capability::AccessType::Mount(
                pb::volume_capability::MountVolume {
                    fs_type: "ext4".into(),
                    ..Default::default()
                },
            )),
            access_mode: Some(pb::volume_capability::AccessMode {
                mode: pb::volume_capability::access_mode::Mode::SingleNodeWriter as i32,
            }),
        };
        let v = ctl
            .create_volume(pb::CreateVolumeRequest {
                name: "pvc-dashboard".into(),
                capacity_range: Some(pb::CapacityRange {
                    required_bytes: 16 << 20,
                    limit_bytes: 0,
                }),
                volume_capabilities: vec![cap],
                parameters: [
                    ("pool", "replicapool"),
                    ("csi.storage.k8s.io/pvc/name", "dash-claim"),
                    ("csi.storage.k8s.io/pvc/namespace", "default"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        v.volume.unwrap().volume_id
    })
}

fn screenshots_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if std::env::var_os("ROOKERY_WRITE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/dashboard-screenshots")
    }
}

/// Logs in with `key`: the session cookie, or the status code of the refusal.
fn login(address: &str, key: &str) -> Result<String, u16> {
    let body = format!("key={key}");
    let (code, head, _) = http(
        address,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&body),
    )
    .unwrap();
    if code != 303 {
        return Err(code);
    }
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    Ok(cookie.to_string())
}

/// The page's CSRF token for a session.
fn csrf(address: &str, cookie: &str) -> String {
    let (code, _, page) = http(address, "GET", "/", &[("Cookie", cookie)], None).unwrap();
    assert_eq!(code, 200, "{page}");
    let marker = "name=\"csrf\" content=\"";
    let at = page.find(marker).unwrap() + marker.len();
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn dashboard_on_real_ceph() {
    let c = TestCluster::new_dir();
    let metrics_port = free_port().to_string();
    let up = json(&c.ok(&[
        "up",
        "--mon-port",
        "0",
        "--dashboard-port",
        "0",
        "--metrics-port",
        &metrics_port,
        "-o",
        "json",
    ]));
    let key = up["dashboard_access_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no access key: {up:#}"))
        .to_string();
    let address = up["supervisor"]["dashboard_address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    // Only the key's digest is kept, 0600; a second `up` prints no key.
    let key_file = c.dir.join("dashboard/access-key.sha256");
    assert_eq!(mode(&key_file), 0o600);
    assert!(!std::fs::read_to_string(&key_file).unwrap().contains(&key));
    let again = json(&c.ok(&["up", "-o", "json"]));
    assert!(again.get("dashboard_access_key").is_none(), "{again:#}");

    // Without a session every route refuses, the API's included; so does a made-up cookie.
    let routes = [
        ("GET", "/"),
        ("GET", "/assets/app.js"),
        ("GET", "/assets/app.css"),
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/history"),
        ("GET", "/api/v1/pools"),
        ("GET", "/api/v1/volumes"),
        ("GET", "/api/v1/volumes/replicapool/x"),
        (
            "GET",
            "/api/v1/objectstores/dashstore/users/u?showSecrets=true",
        ),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/volumes"),
        ("POST", "/api/v1/resources"),
        ("DELETE", "/api/v1/volumes/replicapool/x"),
        ("POST", "/api/v1/shutdown"),
        ("POST", "/logout"),
        ("GET", "/metrics"),
        ("GET", "/no/such/page"),
    ];
    // ...and every operation of the control API, as /api/... (its parameters filled with "x").
    let openapi: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut every: Vec<(String, String)> = routes
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for (path, ops) in openapi["paths"].as_object().unwrap() {
        let filled: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            every.push((method.to_uppercase(), format!("/api{filled}")));
        }
    }
    assert!(every.len() > 40, "{every:?}");
    for cookie in [None, Some("rookery_session=made-up")] {
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", *c)).collect();
        for (method, path) in &every {
            let (method, path) = (method.as_str(), path.as_str());
            let (code, head, body) = http(&address, method, path, &headers, Some("")).unwrap();
            let to_login = code == 303 && head.to_lowercase().contains("location: /login");
            assert!(
                code == 401 || to_login,
                "{method} {path} without a session answered {code}:\n{head}\n{body}"
            );
            assert!(!body.contains("\"fsid\""), "{method} {path}: {body}");
        }
    }
    assert_eq!(login(&address, "wrong-key"), Err(401));
    let cookie = login(&address, &key).unwrap();
    let token = csrf(&address, &cookie);
    let (code, _, status) = http(
        &address,
        "GET",
        "/api/v1/status",
        &[("Cookie", &cookie)],
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "{status}");
    // A change needs the session's CSRF token; what the dashboard does not do is refused.
    let create = r#"{"name":"csrf-less","size":"16Mi"}"#;
    let (code, _, body) = http(
        &address,
        "POST",
        "/api/v1/volumes",
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        Some(create),
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    let (code, _, body) = http(
        &address,
        "POST",
        "/api/v1/shutdown",
        &[("Cookie", &cookie), ("X-CSRF-Token", &token)],
        Some(""),
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not_in_dashboard"), "{body}");
    let cluster_doc = "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: x}\n";
    let (code, _, body) = http(
        &address,
        "POST",
        "/api/v1/resources",
        &[("Cookie", &cookie), ("X-CSRF-Token", &token)],
        Some(cluster_doc),
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("CephCluster"), "{body}");
    let listed = json(&c.ok(&["volume", "list", "-o", "json"]));
    assert!(!listed.to_string().contains("csrf-less"), "{listed}");

    // What the pages show: a filesystem with a subvolume, an object store with a user and a bucket, and
    // a volume the CSI driver made for a claim.
    let work = c.dir.parent().unwrap().to_path_buf();
    let fs_file = work.join("fs.yaml");
    std::fs::write(&fs_file, FS).unwrap();
    c.ok(&["apply", "-f", fs_file.to_str().unwrap()]);
    c.ok(&[
        "fs",
        "subvolume",
        "create",
        "dashfs",
        "app1",
        "--size",
        "1Gi",
    ]);
    let fs_mount = work.join("fsmnt");
    std::fs::create_dir_all(&fs_mount).unwrap();
    c.ok(&["fs", "mount", "dashfs:app1", fs_mount.to_str().unwrap()]);
    let store_file = work.join("store.yaml");
    std::fs::write(&store_file, store(free_port())).unwrap();
    c.ok(&["apply", "-f", store_file.to_str().unwrap()]);
    let user = json(&c.ok(&["object", "user", "create", "dashuser", "-o", "json"]));
    let secret = user["new_users"][0]["secret_key"]
        .as_str()
        .unwrap_or_else(|| panic!("{user:#}"))
        .to_string();
    c.ok(&[
        "object",
        "bucket",
        "create",
        "dashbucket",
        "--user",
        "dashuser",
    ]);
    let csi = csi_volume(&c);

    // The browser.
    let shots = screenshots_dir();
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let run = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&browser_dir)
        .env("DASHBOARD_URL", format!("http://{address}"))
        .env("DASHBOARD_KEY", &key)
        .env("SCREENSHOTS", &shots)
        .env("CSI_VOLUME", &csi)
        .env("CSI_CLAIM", "default/dash-claim")
        .output()
        .expect("node is needed (and `npm ci` in crates/cli/tests/browser): run scripts/install-deps.sh");
    assert!(
        run.status.success(),
        "the browser test failed:\n{}",
        text(&run)
    );
    let findings: serde_json::Value = serde_json::from_slice(
        run.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(findings["ok"], true, "{findings:#}");
    assert_eq!(findings["secretChecked"], true, "{findings:#}");
    assert_eq!(findings["secretShownOnRequest"], true, "{findings:#}");
    assert_eq!(findings["mounts"], 1, "{findings:#}");
    assert!(findings["events"].as_u64().unwrap() > 10, "{findings:#}");
    for page in [
        "overview",
        "osds",
        "pools",
        "volumes",
        "filesystems",
        "objects",
        "daemons",
        "events",
    ] {
        assert_eq!(findings["pages"][page], true, "{page}: {findings:#}");
        assert!(shots.join(format!("{page}.png")).exists(), "{page}.png");
    }
    eprintln!("dashboard screenshots in {}", shots.display());

    // The volume made in the UI is the CLI's too; the refused one is nowhere.
    let listed = json(&c.ok(&["volume", "list", "-o", "json"])).to_string();
    assert!(listed.contains("\"made-in-ui\""), "{listed}");
    assert!(!listed.contains("too-big"), "{listed}");

    // No secret in the log or the metrics: neither the access key nor the S3 secret.
    let log = std::fs::read_to_string(c.dir.join("log/supervisor.log")).unwrap();
    let metrics = scrape(&format!("127.0.0.1:{metrics_port}"));
    for (what, text) in [("supervisor log", &log), ("metrics", &metrics)] {
        assert!(!text.contains(&key), "the access key is in the {what}");
        assert!(!text.contains(&secret), "an S3 secret is in the {what}");
    }
    assert!(
        log.contains("dashboard login refused"),
        "refusals are logged"
    );

    // The bench logs in with a key of its own, which is gone afterwards, as are its volumes.
    let bench = json(&c.ok(&["bench", "dashboard", "--count", "20", "-o", "json"]));
    assert!(bench["pageMedianMs"].as_f64().unwrap() > 0.0, "{bench:#}");
    assert!(
        bench["supervisorMibAfter"].as_f64().unwrap() > 0.0,
        "{bench:#}"
    );
    let keys_d = c.dir.join("dashboard/keys.d");
    assert_eq!(
        std::fs::read_dir(&keys_d).map(|d| d.count()).unwrap_or(0),
        0,
        "the bench's key stayed"
    );
    assert!(
        !json(&c.ok(&["volume", "list", "-o", "json"]))
            .to_string()
            .contains("bench-dashboard"),
        "the bench's volumes stayed"
    );
    let (code, _, _) = http(
        &address,
        "GET",
        "/api/v1/status",
        &[("Cookie", &cookie)],
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "the bench ended the person's session");

    // A new key: the old one is refused and its sessions end.
    let rotated = json(&c.ok(&["dashboard", "rotate-key", "-o", "json"]));
    let new_key = rotated["access_key"].as_str().unwrap();
    assert_ne!(new_key, key);
    let (code, _, _) = http(
        &address,
        "GET",
        "/api/v1/status",
        &[("Cookie", &cookie)],
        None,
    )
    .unwrap();
    assert_eq!(code, 401, "a session of the old key still answers");
    assert_eq!(login(&address, &key), Err(401));
    assert!(login(&address, new_key).is_ok());
    let bad = common::rookery(
        Path::new("/nonexistent-rookery"),
        &["dashboard", "rotate-key"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
