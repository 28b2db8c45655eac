//! The Kubernetes CSI conformance suite, csi-sanity (kubernetes-csi/csi-test, pinned in
//! `k8s/sidecars/go.mod` and built by `scripts/k8s/build.sh`), against both CSI drivers on one real
//! cluster: `rookery csi --driver rbd.csi.rookery.io` and `cephfs.csi.rookery.io`, each serving the
//! controller and the node on one socket, with the staging and mount folders in the test's temporary
//! folder; RBD once with filesystem volumes and once with raw block ones. Every spec csi-sanity runs must
//! pass; the ones it skips must be those for capabilities the drivers do not advertise on purpose (each
//! listed with why). Afterwards nothing it staged or published may still be mounted, and no volume it
//! made may be left behind. `CSI_SANITY_ARGS` adds flags (e.g. `--ginkgo.v --ginkgo.focus=Node`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestCluster;

/// The driver process, stopped when dropped.
struct DriverProcess(Child);

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Detaches whatever is still mounted under a folder when dropped (deepest first), so a failed run leaves
/// no stray publish target or staging mount even before the cluster's own cleanup runs.
struct Unmounter(PathBuf);

impl Drop for Unmounter {
    fn drop(&mut self) {
        for t in common::mounts_under(&self.0) {
            if let Ok(c) = std::ffi::CString::new(t.as_os_str().as_encoded_bytes()) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn csi_sanity() -> PathBuf {
    let bin = common::k8s::repo().join("target/k8s/bin/csi-sanity");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/k8s/build.sh (make k8s-build) first",
        bin.display()
    );
    bin
}

/// The size of the volumes csi-sanity makes, and what it expands them to (whole MiB, as rookery sizes
/// volumes; small, so staging formats quickly).
const VOLUME_SIZE: u64 = 64 << 20;
const EXPAND_SIZE: u64 = 96 << 20;

/// csi-sanity's totals, from its summary lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    ran: u32,
    of: u32,
    passed: u32,
    failed: u32,
    pending: u32,
    skipped: u32,
}

/// Reads Ginkgo's `Ran N of M Specs in ...` and `SUCCESS! -- P Passed | F Failed | X Pending | S Skipped`.
fn totals(output: &str) -> Option<Totals> {
    let mut t = Totals::default();
    let ran = output.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Ran ")?;
        let mut w = rest.split_whitespace();
        let ran = w.next()?.parse().ok()?;
        (w.next()? == "of").then_some(())?;
        Some((ran, w.next()?.parse().ok()?))
    })?;
    (t.ran, t.of) = ran;
    let counts = output
        .lines()
        .find(|l| l.contains(" Passed | ") && l.contains(" Skipped"))?;
    for part in counts.rsplit("--").next()?.split('|') {
        let mut w = part.split_whitespace();
        let n: u32 = w.next()?.parse().ok()?;
        match w.next()? {
            "Passed" => t.passed = n,
            "Failed" => t.failed = n,
            "Pending" => t.pending = n,
            "Skipped" => t.skipped = n,
            _ => {}
        }
    }
    Some(t)
}

/// The specs Ginkgo's JSON report says were skipped, by the reason given (csi-sanity skips a spec whose
/// capability the driver does not advertise, saying which).
fn skipped(report: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let text =
        std::fs::read_to_string(report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
    let suites: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for spec in suites
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["SpecReports"].as_array())
        .flatten()
        .filter(|s| s["State"] == "skipped")
    {
        let mut name: Vec<&str> = spec["ContainerHierarchyTexts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        name.extend(spec["LeafNodeText"].as_str());
        let reason = spec["Failure"]["Message"]
            .as_str()
            .filter(|m| !m.is_empty())
            .unwrap_or("(no reason given)")
            .to_string();
        out.entry(reason).or_default().push(name.join(" "));
    }
    out
}

/// Starts the driver serving controller and node on `socket`; its log goes to `log`.
fn start_driver(c: &TestCluster, driver: &str, socket: &Path, log: &Path) -> DriverProcess {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(&c.dir)
        .args(["csi", "--driver", driver, "--node-id", "sanity-node"])
        .arg("--endpoint")
        .arg(format!("unix://{}", socket.display()))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let guard = DriverProcess(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "{driver} did not serve");
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

/// csi-sanity's reasons for skipping specs that apply to neither driver: capabilities they do not
/// advertise, on purpose.
const SKIPPED_BY_DESIGN: &[&str] = &[
    // No controller publish: a node maps the volume when it stages it (attachRequired: false).
    "ControllerPublishVolume not supported",
    "ControllerUnpublishVolume not supported",
    "Controller Publish, UnpublishVolume not supported",
    // No VolumeAttributesClass (MODIFY_VOLUME).
    "ControllerModifyVolume not supported",
    "Modify volume not supported",
    "Modify Volume not supported",
    // Health and GetSnapshot RPCs of CSI 1.12/1.13 that the driver's spec (proto/csi.proto) predates.
    "ControllerGetVolumeHealth not supported",
    "ControllerListVolumeHealth not supported",
    "NodeGetVolumeHealth not supported",
    "NodeGetStorageHealth not supported",
    "GetSnapshot not supported",
    // No group snapshots, no topology (every node reaches the cluster).
    "GroupControllerService not supported",
    "SNAPSHOT_ACCESSIBILITY_CONSTRAINTS not supported",
    // SINGLE_NODE_MULTI_WRITER is not advertised (Kubernetes' ReadWriteOncePod is not offered).
    "Service does not have single node multi writer capability",
];

/// One csi-sanity run: a driver, its StorageClass parameters, the access type the specs ask for, and the
/// skip reasons expected beyond [`SKIPPED_BY_DESIGN`].
struct Run {
    name: &'static str,
    driver: &'static str,
    parameters: &'static str,
    access_type: &'static str,
    also_skipped: &'static [&'static str],
}

/// Runs csi-sanity as `run` says; returns its totals, after printing its report and the skipped specs.
fn sanity(c: &TestCluster, run: &Run) -> Totals {
    let name = run.name;
    let dir = c.dir.parent().unwrap().join(format!("sanity-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _unmount = Unmounter(dir.clone());
    let socket = dir.join("csi.sock");
    let driver_log = dir.join("driver.log");
    let _driver = start_driver(c, run.driver, &socket, &driver_log);
    let params = dir.join("parameters.yaml");
    std::fs::write(&params, run.parameters).unwrap();
    // csi-sanity makes (and removes) these itself, once per spec.
    let (staging, mount) = (dir.join("staging"), dir.join("mount"));
    let report_file = dir.join("report.json");
    let started = Instant::now();
    let out = Command::new(csi_sanity())
        .arg(format!("--csi.endpoint=unix://{}", socket.display()))
        .arg(format!("--csi.stagingdir={}", staging.display()))
        .arg(format!("--csi.mountdir={}", mount.display()))
        .arg(format!("--csi.testvolumeparameters={}", params.display()))
        .arg(format!("--csi.testvolumeaccesstype={}", run.access_type))
        .arg(format!("--csi.testvolumesize={VOLUME_SIZE}"))
        .arg(format!("--csi.testvolumeexpandsize={EXPAND_SIZE}"))
        .arg(format!("--ginkgo.json-report={}", report_file.display()))
        .args(["--ginkgo.no-color", "--ginkgo.timeout=30m"])
        // More of csi-sanity's or Ginkgo's flags when debugging: e.g. "--ginkgo.v --ginkgo.focus=Node".
        .args(
            std::env::var("CSI_SANITY_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("==== csi-sanity: {name} ({}) ====\n{report}", run.driver);
    let t = totals(&report).unwrap_or_else(|| panic!("csi-sanity printed no summary:\n{report}"));
    println!(
        "csi-sanity {name}: Ran {} of {} Specs in {:.0?}: {} Passed | {} Failed | {} Pending | {} Skipped",
        t.ran,
        t.of,
        started.elapsed(),
        t.passed,
        t.failed,
        t.pending,
        t.skipped
    );
    let skips = skipped(&report_file);
    println!("csi-sanity {name}: skipped specs, by csi-sanity's reason:");
    for (reason, specs) in &skips {
        println!("  {reason} ({}):", specs.len());
        for s in specs {
            println!("    - {s}");
        }
    }
    let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
    assert!(
        out.status.success() && t.failed == 0 && t.passed == t.ran && t.ran > 0,
        "csi-sanity failed: {name} (exit {:?}); the driver's log:\n{log}",
        out.status.code()
    );
    // A spec skipped for another reason means a capability went missing.
    let unexpected: Vec<&String> = skips
        .keys()
        .filter(|r| {
            !SKIPPED_BY_DESIGN.contains(&r.as_str()) && !run.also_skipped.contains(&r.as_str())
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: specs skipped for reasons not expected: {unexpected:?}"
    );
    let left = common::mounts_under(&dir);
    assert!(
        left.is_empty(),
        "still mounted after csi-sanity's cleanup: {left:?}"
    );
    t
}

/// One cluster with a filesystem; csi-sanity against each driver on it (RBD both as filesystems and as
/// raw block devices).
#[test]
fn csi_sanity_passes_for_both_drivers() {
    let c = TestCluster::new_dir();
    c.ok(&["up", "--mon-port", "0"]);
    c.apply_myfs();

    let runs = [
        Run {
            name: "rbd",
            driver: rookery_csi::RBD_DRIVER,
            parameters: "pool: replicapool\ncsi.storage.k8s.io/fstype: ext4\n",
            access_type: "mount",
            also_skipped: &[],
        },
        Run {
            name: "rbd-block",
            driver: rookery_csi::RBD_DRIVER,
            parameters: "pool: replicapool\n",
            access_type: "block",
            also_skipped: &[],
        },
        Run {
            name: "cephfs",
            driver: rookery_csi::CEPHFS_DRIVER,
            parameters: "fsName: myfs\n",
            access_type: "mount",
            // A subvolume's quota is its size on every mount at once: nothing grows on the node.
            also_skipped: &["NodeExpandVolume not supported"],
        },
    ];
    let totals: Vec<Totals> = runs.iter().map(|r| sanity(&c, r)).collect();
    for (run, t) in runs.iter().zip(&totals) {
        println!(
            "csi-sanity {} ({}): Ran {} of {} Specs: {} Passed | {} Failed | {} Pending | {} Skipped",
            run.name, run.driver, t.ran, t.of, t.passed, t.failed, t.pending, t.skipped
        );
    }

    // What csi-sanity made, it deleted: no CSI volume is left in either.
    let images = common::json(&c.ok(&["volume", "list", "-o", "json"]));
    assert!(
        !images.to_string().contains("csi-vol-"),
        "RBD volumes left behind: {images:#}"
    );
    let subvolumes =
        String::from_utf8_lossy(&c.ok(&["fs", "subvolume", "list", "myfs"]).stdout).to_string();
    assert!(
        !subvolumes.contains("csi-vol-"),
        "subvolumes left behind:\n{subvolumes}"
    );
}

#[test]
fn reads_ginkgo_summaries() {
    let out = "Ran 58 of 92 Specs in 301.2 seconds\nSUCCESS! -- 58 Passed | 0 Failed | 0 Pending | 34 Skipped\nPASS\n";
    assert_eq!(
        totals(out),
        Some(Totals {
            ran: 58,
            of: 92,
            passed: 58,
            failed: 0,
            pending: 0,
            skipped: 34
        })
    );
    let failed =
        "Ran 3 of 9 Specs in 1.0 seconds\nFAIL! -- 2 Passed | 1 Failed | 0 Pending | 6 Skipped\n";
    assert_eq!(totals(failed).map(|t| t.failed), Some(1));
    assert_eq!(totals("no summary"), None);
}
