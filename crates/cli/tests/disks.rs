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

#[test]
fn disk_plan_names_every_skipped_device_and_touches_none() {
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
