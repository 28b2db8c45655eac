//! `rookery disk list|plan` on real loop devices of every kind a host has: blank, too small, partitioned,
//! formatted, mounted, read-only, and two holding a real BlueStore label (one of this cluster's OSDs,
//! seen from this cluster and from another data dir). The plan names each with its reason and touches
//! none of them.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json, rookery, text, TestCluster};

/// The loop devices and the mount of a test; dropped, it takes them all away, also after a failure.
struct Prepared {
    dir: tempfile::TempDir,
    loops: Vec<(String, PathBuf)>,
    mount: Option<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(m) = &self.mount {
            let _ = Command::new("umount").arg(m).status();
        }
        for (_, dev) in &self.loops {
            let _ = Command::new("losetup").arg("-d").arg(dev).status();
        }
    }
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

impl Prepared {
    fn image(&self, name: &str, size: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.img"));
        sh(Command::new("truncate").arg("-s").arg(size).arg(&path));
        path
    }

    fn attach(&mut self, name: &str, file: &Path, extra: &[&str]) -> PathBuf {
        let dev = PathBuf::from(sh(Command::new("losetup")
            .args(["-f", "--show"])
            .args(extra)
            .arg(file)));
        self.loops.push((name.to_string(), dev.clone()));
        dev
    }

    fn device_of(&self, name: &str) -> String {
        let dev = &self.loops.iter().find(|(n, _)| n == name).unwrap().1;
        dev.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// The first 2 MiB of a device, where every signature lives.
fn head(dev: &Path) -> Vec<u8> {
    let mut buf = vec![0u8; 2 << 20];
    std::fs::File::open(dev)
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf
}

/// A file of the cluster's data dir that starts with a BlueStore label (an OSD's block file).
fn bluestore_file(dir: &Path) -> PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let mut b = [0u8; 23];
                if std::fs::File::open(&p)
                    .and_then(|mut f| f.read_exact(&mut b))
                    .is_ok()
                    && &b == b"bluestore block device\n"
                {
                    return p;
                }
            }
        }
    }
    panic!("no BlueStore block file under {}", dir.display());
}

/// Rook's cluster-test.yaml takes every blank device it sees: while it runs, no other test of this binary
/// may have a blank device attached.
static EXCLUSIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn disk_plan_names_every_skipped_device_and_touches_none() {
    let _shared = EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner());
    let c = TestCluster::new_dir();
    c.ok(&["up", "--mon-port", "0"]);
    let fsid = c.status()["fsid"].as_str().unwrap_or_default().to_string();

    let mut p = Prepared {
        dir: tempfile::Builder::new()
            .prefix("rookery-disks-")
            .tempdir()
            .unwrap(),
        loops: Vec::new(),
        mount: None,
    };
    let blank = p.image("blank", "6G");
    p.attach("blank", &blank, &[]);
    let small = p.image("small", "3G");
    p.attach("small", &small, &[]);
    let gpt = p.image("gpt", "6G");
    sh(Command::new("sgdisk")
        .args(["-o", "-n", "1:0:+1G"])
        .arg(&gpt));
    p.attach("gpt", &gpt, &[]);
    let ext4 = p.image("ext4", "6G");
    sh(Command::new("mkfs.ext4").arg("-q").arg(&ext4));
    p.attach("ext4", &ext4, &[]);
    let xfs = p.image("xfs", "6G");
    sh(Command::new("mkfs.xfs").arg("-q").arg(&xfs));
    let xfs_dev = p.attach("mounted", &xfs, &[]);
    let mnt = p.dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    sh(Command::new("mount").arg(&xfs_dev).arg(&mnt));
    p.mount = Some(mnt.clone());
    let ro = p.image("ro", "6G");
    p.attach("read-only", &ro, &["-r"]);
    // One of this cluster's OSDs, its label copied onto a device of its own.
    let osd = p.image("osd", "6G");
    let label = {
        let mut b = vec![0u8; 1 << 20];
        std::fs::File::open(bluestore_file(&c.dir))
            .unwrap()
            .read_exact(&mut b)
            .unwrap();
        b
    };
    std::fs::write(&osd, &label).unwrap();
    sh(Command::new("truncate").arg("-s").arg("6G").arg(&osd));
    p.attach("osd", &osd, &[]);

    let devices: Vec<PathBuf> = p.loops.iter().map(|(_, d)| d.clone()).collect();
    let before: Vec<Vec<u8>> = devices.iter().map(|d| head(d)).collect();

    let plan = json(&c.ok(&[
        "disk",
        "plan",
        "--device-filter",
        "^loop[0-9]+$",
        "-o",
        "json",
    ]));
    let verdict = |name: &str| {
        let dev = p.device_of(name);
        plan.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == dev.as_str())
            .unwrap_or_else(|| panic!("{name} ({dev}) is not in the plan: {plan:#}"))
            .clone()
    };
    assert_eq!(verdict("blank")["verdict"], "take", "{plan:#}");
    let why = |name: &str| verdict(name)["why"].as_str().unwrap_or("").to_string();
    assert_eq!(why("small"), "3.0 GiB, need at least 5.0 GiB");
    assert_eq!(why("gpt"), "has a partition table (gpt)");
    assert_eq!(why("ext4"), "holds an ext4 filesystem");
    assert_eq!(why("mounted"), format!("mounted at {}", mnt.display()));
    assert_eq!(why("read-only"), "read-only");
    let ours = verdict("osd");
    assert_eq!(ours["verdict"], "osd", "{ours:#}");
    assert!(ours["id"].as_u64().is_some(), "the OSD's id: {ours:#}");

    // Without the filter, loop devices are not taken, and the text says why.
    let plain = text(&c.ok(&["disk", "plan", "--use-all-devices"]));
    let blank_line = plain
        .lines()
        .find(|l| l.starts_with(&format!("{} ", p.device_of("blank"))))
        .unwrap_or_else(|| panic!("{plain}"));
    assert!(blank_line.contains("skipped: a loop device"), "{plain}");

    // From a data dir of no cluster, the OSD belongs to another cluster, which the plan names.
    let elsewhere = p.dir.path().join("other-data-dir");
    let o = rookery(
        &elsewhere,
        &[
            "disk",
            "plan",
            "--device",
            &p.device_of("osd"),
            "-o",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let other = json(&o);
    let entry = other
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == p.device_of("osd").as_str())
        .unwrap()
        .clone();
    assert_eq!(
        entry["why"],
        format!("belongs to another Ceph cluster (fsid {fsid})").as_str(),
        "{entry:#}"
    );
    assert!(
        !elsewhere.exists(),
        "disk plan made {}",
        elsewhere.display()
    );

    // `disk list` shows the mount and the OSD.
    let list = text(&c.ok(&["disk", "list"]));
    assert!(
        list.contains(&format!("mounted at {}", mnt.display())),
        "{list}"
    );
    assert!(list.contains("osd."), "{list}");

    // Bad input: exit 2, the flag named, nothing changed.
    let bad = c.run(&["disk", "plan", "--device-filter", "loop["]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("--device-filter"), "{}", text(&bad));

    let after: Vec<Vec<u8>> = devices.iter().map(|d| head(d)).collect();
    for ((name, _), (b, a)) in p.loops.iter().zip(before.iter().zip(&after)) {
        assert!(b == a, "disk plan changed the start of {name}");
    }
}

/// A loop device name no other test of this binary and no attached device uses: the spec can name it
/// before it exists (`losetup` makes the node when it attaches).
fn unused_loop_name(from: u32) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    loop {
        let n = from + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let size = std::fs::read_to_string(format!("/sys/block/loop{n}/size")).unwrap_or_default();
        if size.trim().is_empty() || size.trim() == "0" {
            return format!("loop{n}");
        }
    }
}

fn osd_ids(c: &TestCluster) -> Vec<u64> {
    let s = c.status();
    let mut ids: Vec<u64> = s["ceph"]["osds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

fn osds_up(c: &TestCluster) -> usize {
    c.status()["ceph"]["osds"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|o| o["up"] == true).count())
}

#[test]
fn osds_on_devices_come_and_go_while_a_volume_is_written() {
    let _shared = EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner());
    let mut p = Prepared {
        dir: tempfile::Builder::new()
            .prefix("rookery-osd-devices-")
            .tempdir()
            .unwrap(),
        loops: Vec::new(),
        mount: None,
    };
    let picked = unused_loop_name(200);
    let spec = p.dir.path().join("cluster.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: ceph.rook.io/v1
kind: CephCluster
metadata: {{name: devices}}
spec:
  storage:
    osdFiles: {{count: 2, size: 6Gi}}
    devices: [{{name: /dev/{picked}}}]
    config: {{deviceClass: ssd}}
  cephConfig:
    global: {{osd_pool_default_size: \"2\"}}
---
apiVersion: ceph.rook.io/v1
kind: CephBlockPool
metadata: {{name: replicapool}}
spec: {{failureDomain: osd, replicated: {{size: 2}}}}
"
        ),
    )
    .unwrap();
    let c = TestCluster::new_dir();
    let up = c.run(&[
        "up",
        "-f",
        spec.to_str().unwrap(),
        "--mon-port",
        "0",
        "--wait-secs",
        "120",
    ]);
    assert!(up.status.success(), "{}", text(&up));
    // The named device is not there yet: said so, not an error of the cluster's.
    let s = c.status();
    assert!(
        s["reconcile"]["blocked"].to_string().contains(&picked),
        "{s:#}"
    );
    assert_eq!(osd_ids(&c), [0, 1]);

    // A volume written all along, checksummed.
    c.ok(&["volume", "create", "data", "--size", "512Mi"]);
    let mnt = p.dir.path().join("data");
    std::fs::create_dir(&mnt).unwrap();
    c.ok(&["volume", "mount", "data", mnt.to_str().unwrap()]);
    // Unmounted before the cluster goes, also when an assertion fails.
    let _mounted = common::Unmount(mnt.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = common::ring_writer(mnt.join("blocks.bin"), stop.clone());

    // 1. The device the spec names appears: an OSD within 15 s, nothing restarted.
    let daemons_before = common::pids(&c);
    let a = p.image("a", "6G");
    let attached = std::time::Instant::now();
    sh(Command::new("losetup")
        .arg(format!("/dev/{picked}"))
        .arg(&a));
    p.loops
        .push(("a".into(), PathBuf::from(format!("/dev/{picked}"))));
    while osds_up(&c) < 3 {
        assert!(
            attached.elapsed() < std::time::Duration::from_secs(15),
            "no OSD on /dev/{picked} within 15 s: {:#}",
            c.status()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!("OSD on the new device up after {:?}", attached.elapsed());
    let now = common::pids(&c);
    for (name, pid) in &daemons_before {
        assert_eq!(now.get(name), Some(pid), "{name} was restarted");
    }
    let device_osd = 2;
    assert_eq!(osd_ids(&c), [0, 1, device_osd]);
    let r = c.rados();
    let tree: serde_json::Value = r
        .command(
            rookery_ceph::Target::Mon,
            serde_json::json!({"prefix": "osd tree", "format": "json"}),
        )
        .unwrap();
    let class = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == device_osd)
        .map(|n| n["device_class"].clone());
    assert_eq!(class, Some(serde_json::json!("ssd")), "{tree:#}");

    // 2. Bad input leaves everything as it was: exit 2, the reason named, the spec unchanged.
    let spec_before = std::fs::read(c.dir.join("spec.yaml")).unwrap();
    let spec_unchanged = |what: &str| {
        assert_eq!(
            std::fs::read(c.dir.join("spec.yaml")).unwrap(),
            spec_before,
            "{what} changed the spec"
        );
    };
    let root = json(&c.ok(&["disk", "list", "-o", "json"]))
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["device"]["mounts"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x == "/"))
        })
        .map(|d| d["device"]["path"].as_str().unwrap().to_string());
    if let Some(root) = root {
        let o = c.run(&["disk", "add", &root]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("mounted at /"), "{}", text(&o));
    }
    spec_unchanged("disk add of the root disk");
    let o = c.run(&["disk", "add", "/dev/no-such-disk"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such block device"), "{}", text(&o));
    let zero = p.dir.path().join("zero.yaml");
    std::fs::write(
        &zero,
        "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: devices}\nspec:\n  storage:\n    osdFiles: {count: 2, size: 6Gi}\n    config: {osdsPerDevice: 0}\n",
    )
    .unwrap();
    let o = c.run(&["apply", "-f", zero.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("spec.storage.config.osdsPerDevice"),
        "{}",
        text(&o)
    );
    spec_unchanged("osdsPerDevice: 0");
    let three = p.dir.path().join("three.yaml");
    std::fs::write(
        &three,
        "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {name: triple}\nspec: {failureDomain: osd, replicated: {size: 3}}\n",
    )
    .unwrap();
    c.ok(&["apply", "-f", three.to_str().unwrap()]);
    let o = c.run(&["osd", "rm", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("pool triple keeps 3 copies"),
        "{}",
        text(&o)
    );
    assert_eq!(osd_ids(&c), [0, 1, device_osd]);
    assert!(
        !c.dir.join("osd-requests.json").exists()
            || !std::fs::read_to_string(c.dir.join("osd-requests.json"))
                .unwrap()
                .contains("\"id\": 0"),
        "a refused removal was recorded"
    );
    c.ok(&["delete", "-f", three.to_str().unwrap()]);

    // 3. The device's OSD leaves: data moved, gone from the maps and auth, the device blank again.
    let dev_a = PathBuf::from(format!("/dev/{picked}"));
    c.ok(&["osd", "rm", &device_osd.to_string()]);
    assert_eq!(osd_ids(&c), [0, 1]);
    let auth = r.command_status(
        rookery_ceph::Target::Mon,
        serde_json::json!({"prefix": "auth get", "entity": format!("osd.{device_osd}")}),
    );
    assert!(auth.is_err(), "osd.{device_osd} still has a key");
    assert!(
        !head(&dev_a).starts_with(b"bluestore"),
        "the device was not freed"
    );
    let plan = text(&c.ok(&["status"]));
    assert!(plan.contains("freed by `rookery osd rm`"), "{plan}");
    // ... and reusable: `disk add` makes it an OSD again.
    let added = text(&c.ok(&["disk", "add", dev_a.to_str().unwrap()]));
    assert!(added.contains("is osd."), "{added}");

    // 4. A file OSD moves to a new device under its id.
    let b = p.image("b", "7G");
    let dev_b = p.attach("b", &b, &[]);
    let replaced = text(&c.ok(&["osd", "replace", "1", dev_b.to_str().unwrap()]));
    assert!(replaced.contains("osd.1 now lives on"), "{replaced}");
    let s = c.status();
    let osd1 = s["ceph"]["osds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == 1)
        .cloned()
        .unwrap();
    assert_eq!(osd1["up"], true, "{s:#}");
    assert!(
        !c.dir.join("osd/ceph-1.block").exists(),
        "the old file stayed"
    );
    // Its share of data follows the new device (7 GiB), not the 6 GiB file it replaced.
    let tree: serde_json::Value = r
        .command(
            rookery_ceph::Target::Mon,
            serde_json::json!({"prefix": "osd tree", "format": "json"}),
        )
        .unwrap();
    let weight = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == 1)
        .and_then(|n| n["crush_weight"].as_f64())
        .unwrap_or_default();
    assert!(
        (weight - 7.0 / 1024.0).abs() < 0.0002,
        "osd.1's CRUSH weight is {weight}: {tree:#}"
    );

    // 5. A device that goes away: its OSD is dead, stopped (not restarted forever) and reported with
    // the command that removes it, which then works.
    let pid = c.daemon_pid("osd.1");
    sh(Command::new("losetup").arg("-d").arg(&dev_b));
    // The loop device goes once its last opener, the OSD, lets go of it.
    rookery_platform::proc::signal(pid, libc::SIGKILL);
    let gone = std::time::Instant::now();
    loop {
        let s = c.status();
        let problems = s["reconcile"]["problems"].to_string();
        let running = s["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "osd.1");
        if problems.contains("osd.1 is dead") && problems.contains("rookery osd rm 1") && !running {
            break;
        }
        assert!(
            gone.elapsed() < std::time::Duration::from_secs(30),
            "osd.1 lost its device but is not reported dead and stopped: {s:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    eprintln!(
        "osd.1 reported dead {:?} after its device went",
        gone.elapsed()
    );
    c.ok(&["osd", "rm", "1"]);
    assert_eq!(osd_ids(&c), [0, device_osd]);

    // 6. The writer never failed and every block reads back as written.
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let blocks = common::verify_ring(&mnt.join("blocks.bin"), written.join().unwrap());
    eprintln!("the writer wrote {blocks} blocks of 64 KiB without an error");
    c.ok(&["volume", "unmount", mnt.to_str().unwrap()]);
}

#[test]
fn rooks_cluster_test_yaml_takes_a_spare_loop_device_unchanged() {
    let _alone = EXCLUSIVE.write().unwrap_or_else(|p| p.into_inner());
    let mut p = Prepared {
        dir: tempfile::Builder::new()
            .prefix("rookery-rook-test-")
            .tempdir()
            .unwrap(),
        loops: Vec::new(),
        mount: None,
    };
    let spare = p.image("spare", "6G");
    let dev = p.attach("spare", &spare, &[]);
    // useAllDevices takes every blank device of the host: refuse to run where it would take one that
    // is not this test's.
    let nowhere = p.dir.path().join("no-cluster");
    let o = rookery(
        &nowhere,
        &[
            "disk",
            "plan",
            "--use-all-devices",
            "--allow-loop-devices",
            "-o",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let taken: Vec<String> = json(&o)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verdict"] == "take")
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        taken,
        [dev.display().to_string()],
        "this host has blank devices besides the test's, which Rook's cluster-test.yaml would take; detach them to run this test"
    );

    let yaml = p.dir.path().join("cluster-test.yaml");
    std::fs::write(
        &yaml,
        include_str!("../../spec/tests/fixtures/test-cluster.yaml"),
    )
    .unwrap();
    let c = TestCluster::new_dir();
    let up = c.run(&[
        "up",
        "-f",
        yaml.to_str().unwrap(),
        "--allow-loop-devices",
        "--mon-port",
        "0",
        "--wait-secs",
        "180",
    ]);
    assert!(up.status.success(), "{}", text(&up));
    let s = c.status();
    assert_eq!(s["ready"], true, "{s:#}");
    let devices = s["reconcile"]["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ours = devices
        .iter()
        .find(|d| d["path"] == dev.display().to_string().as_str())
        .unwrap_or_else(|| panic!("{dev:?} is not in the status: {s:#}"));
    assert_eq!(ours["verdict"], "osd", "{s:#}");
    let osds = s["ceph"]["osds"].as_array().unwrap();
    assert_eq!(osds.len(), 1, "{s:#}");
    assert_eq!(osds[0]["up"], true, "{s:#}");
}
