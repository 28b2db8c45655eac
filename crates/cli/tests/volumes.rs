//! Block volumes end to end on real Ceph: the librbd bindings, then volumes through the CLI: create,
//! mount, write, move between mount points, resize while mounted, snapshot and clone, refusals, a dead
//! holder recovered, and mounts carried across `down`/`up`.

mod common;
mod rbd_library;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{checksum, json, pseudo_random, text, TestCluster};

/// Writes `count` files with known contents and returns their checksums.
fn write_files(dir: &Path, prefix: &str, count: usize) -> Vec<(PathBuf, u64)> {
    (0..count)
        .map(|i| {
            let data = pseudo_random(i as u64 + prefix.len() as u64, 4096 + i * 100_003);
            let p = dir.join(format!("{prefix}-{i}"));
            std::fs::write(&p, &data).unwrap();
            (PathBuf::from(p.file_name().unwrap()), checksum(&data))
        })
        .collect()
}

fn same_files(dir: &Path, files: &[(PathBuf, u64)]) {
    for (name, sum) in files {
        let data = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
        assert_eq!(checksum(&data), *sum, "{} changed", name.display());
    }
}

/// fio writes a 32 MiB file in `dir` at queue depth 16 with checksummed blocks and reads them back, some
/// while later writes are still in flight or only in the FUSE server's write-back cache;
/// `--verify_only` just reads and checks what an earlier run wrote.
fn fio_verify(dir: &Path, rw: &str, bs: &str, extra: &[&str]) {
    let out = Command::new("fio")
        .args([
            "--name=verify",
            &format!("--filename={}", dir.join(format!("fio-{rw}.dat")).display()),
            "--size=32M",
            "--direct=1",
            "--ioengine=libaio",
            "--iodepth=16",
            &format!("--rw={rw}"),
            &format!("--bs={bs}"),
            "--randrepeat=1",
            "--verify=crc32c",
            "--verify_fatal=1",
            // No verify-state file in the working directory.
            "--verify_state_save=0",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fio {rw} {extra:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// dd with direct I/O on `coherence.dat` in `dir`, `blocks` 4 KiB blocks from block `block`: writes
/// `write` (then fsyncs if `sync`), or reads and returns what it read.
fn dd_direct(dir: &Path, write: Option<&[u8]>, block: u64, blocks: usize, sync: bool) -> Vec<u8> {
    let file = dir.join("coherence.dat");
    let mut cmd = Command::new("dd");
    cmd.args(["bs=4096", &format!("count={blocks}")]);
    match write {
        Some(_) => cmd.args([
            format!("of={}", file.display()),
            format!("seek={block}"),
            "oflag=direct".into(),
            if sync {
                "conv=notrunc,fsync"
            } else {
                "conv=notrunc"
            }
            .into(),
        ]),
        None => cmd.args([
            format!("if={}", file.display()),
            format!("skip={block}"),
            "iflag=direct".into(),
        ]),
    };
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(data) = write {
            stdin.write_all(data).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The FUSE server reads an object straight from RADOS once what was written to it is flushed, and
/// through librbd's write-back cache otherwise: a read right after an unflushed write must still see that
/// write, and a read after the flush (the user's, or the server's own once writes pause) what was written
/// last.
fn reads_see_every_write(dir: &Path) {
    // 8 MiB: two RBD objects; blocks 1023-1024 straddle the boundary. Each dd closes the file, which
    // flushes nothing: a read right after an unflushed write finds it only in librbd's cache.
    let first = pseudo_random(71, 8 << 20);
    dd_direct(dir, Some(&first), 0, 2048, true);
    let mut expected = first.clone();
    for round in 0..6u64 {
        // Past the server's idle flush (1 s) on even rounds; at once on odd ones.
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(1500));
        }
        assert_eq!(
            checksum(&dd_direct(dir, None, 0, 2048, false)),
            checksum(&expected),
            "round {round}: a read after the writes settled returned old data"
        );
        let block = [3u64, 1023, 1500][round as usize % 3];
        let update = pseudo_random(100 + round, 2 * 4096);
        dd_direct(dir, Some(&update), block, 2, false);
        let at = block as usize * 4096;
        expected[at..at + update.len()].copy_from_slice(&update);
        assert_eq!(
            dd_direct(dir, None, block, 2, false),
            update,
            "round {round}: a read right after an unflushed write at block {block} missed it"
        );
    }
    let _ = std::fs::remove_file(dir.join("coherence.dat"));
}

fn fs_size(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_blocks as u64 * s.f_frsize as u64
}

fn is_mounted(path: &Path) -> bool {
    let canon = std::fs::canonicalize(path).unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(canon.to_str().unwrap()))
}

fn refused(c: &TestCluster, args: &[&str], needles: &[&str]) {
    let o = c.run(args);
    assert_eq!(o.status.code(), Some(2), "rookery {args:?}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "rookery {args:?}: {err:?} lacks {n:?}");
    }
}

#[test]
fn volumes_on_real_ceph() {
    let c = TestCluster::new_dir();
    c.ok(&["up", "--mon-port", "0"]);
    let conf = c.dir.join("ceph.conf");

    rbd_library::rbd_images_through_their_life(&conf, "replicapool");

    let mnt = tempfile::tempdir().unwrap();
    let m = |n: &str| {
        let p = mnt.path().join(n);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let (m1, m2, m3) = (m("m1"), m("m2"), m("m3"));
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Create, and bad input.
    c.ok(&["volume", "create", "v1", "--size", "256Mi"]);
    refused(
        &c,
        &["volume", "create", "v1", "--size", "256Mi"],
        &["already exists"],
    );
    refused(
        &c,
        &["volume", "create", "v2", "--size", "0"],
        &["--size", "above zero"],
    );
    refused(
        &c,
        &["volume", "create", "v2", "--size=-5Gi"],
        &["--size", "invalid size"],
    );
    refused(
        &c,
        &["volume", "create", "v2", "--size", "ten"],
        &["--size", "10Gi"],
    );
    refused(
        &c,
        &["volume", "create", "v2", "--size", "100Ti"],
        &["can never hold"],
    );
    refused(
        &c,
        &["volume", "create", "bad@name", "--size", "1Gi"],
        &["not valid"],
    );
    refused(
        &c,
        &["volume", "create", "v2", "--size", "1Gi", "--pool", "nope"],
        &["pool \"nope\" does not exist"],
    );
    // A path is not a name, and a pool is named once.
    refused(
        &c,
        &["volume", "create", "../x", "--size", "1Gi"],
        &["\"../x\" is not a volume name", "POOL/NAME"],
    );
    refused(
        &c,
        &[
            "volume",
            "create",
            "replicapool/x",
            "--size",
            "1Gi",
            "--pool",
            "other",
        ],
        &["--pool says other"],
    );
    // One rule for fractions: rounded up to a whole byte.
    c.ok(&["volume", "create", "replicapool/frac", "--size", "100.3Mi"]);
    let frac = json(&c.ok(&["volume", "info", "frac", "-o", "json"]));
    assert_eq!(frac["size_bytes"], 105_172_173, "{frac:#}");
    c.ok(&["volume", "rm", "frac"]);
    refused(
        &c,
        &["volume", "mount", "v1", &s(&mnt.path().join("missing"))],
        &["does not exist"],
    );
    refused(&c, &["volume", "mount", "nosuch", &s(&m1)], &["no volume"]);
    let listed = json(&c.ok(&["volume", "list", "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");

    // Mount (formats the blank volume), write, move to another mount point.
    c.ok(&["volume", "mount", "v1", &s(&m1)]);
    let files = write_files(&m1, "a", 5);
    fio_verify(&m1, "randwrite", "4k", &["--verify_backlog=64"]);
    fio_verify(&m1, "write", "1M", &[]);
    refused(
        &c,
        &["volume", "mount", "v1", &s(&m2)],
        &["already mounted", "host"],
    );
    refused(&c, &["volume", "rm", "v1"], &["mounted"]);
    c.ok(&["volume", "unmount", &s(&m1)]);
    assert!(!is_mounted(&m1));
    c.ok(&["volume", "mount", "v1", &s(&m2)]);
    same_files(&m2, &files);
    fio_verify(&m2, "randwrite", "4k", &["--verify_only"]);
    fio_verify(&m2, "write", "1M", &["--verify_only"]);
    reads_see_every_write(&m2);

    // A mount point in use is refused.
    c.ok(&["volume", "create", "v2", "--size", "64Mi"]);
    refused(&c, &["volume", "mount", "v2", &s(&m2)], &["already in use"]);

    // Grow while mounted; shrinking is refused. A mounted ext4 grows at once where the kernel allows it
    // (CAP_SYS_RESOURCE), else at the next mount; xfs grows at once.
    let before = fs_size(&m2);
    let o = c.ok(&["volume", "resize", "v1", "--size", "512Mi"]);
    if String::from_utf8_lossy(&o.stderr).contains("until the volume is next mounted") {
        c.ok(&["volume", "unmount", "v1"]);
        c.ok(&["volume", "mount", "v1", &s(&m2)]);
    }
    let after = fs_size(&m2);
    assert!(
        after > before + (200 << 20),
        "filesystem did not grow: {before} -> {after}"
    );
    refused(
        &c,
        &["volume", "resize", "v1", "--size", "128Mi"],
        &["shrink"],
    );
    same_files(&m2, &files);
    c.ok(&["volume", "create", "x1", "--size", "320Mi", "--fs", "xfs"]);
    let mx = m("mx");
    c.ok(&["volume", "mount", "x1", &s(&mx)]);
    let before = fs_size(&mx);
    c.ok(&["volume", "resize", "x1", "--size", "640Mi"]);
    let after = fs_size(&mx);
    assert!(
        after > before + (250 << 20),
        "xfs did not grow while mounted: {before} -> {after}"
    );
    c.ok(&["volume", "unmount", "x1"]);
    c.ok(&["volume", "rm", "x1"]);

    // Snapshot, write more, clone the snapshot: the clone has only the old content, including what was
    // written just before the snapshot and not synced (the mounted filesystem is frozen for it).
    let fresh = write_files(&m2, "f", 3);
    c.ok(&["volume", "snapshot", "create", "v1", "s1"]);
    let later = write_files(&m2, "b", 2);
    c.ok(&["volume", "clone", "v1@s1", "c1"]);
    c.ok(&["volume", "mount", "c1", &s(&m3)]);
    same_files(&m3, &files);
    same_files(&m3, &fresh);
    assert!(
        !m3.join(&later[0].0).exists(),
        "the clone sees data written after the snapshot"
    );
    c.ok(&["volume", "unmount", "c1"]);
    refused(&c, &["volume", "snapshot", "rm", "v1", "s1"], &["c1"]);

    // kill -9 of the process that serves the mount: the next mount releases the dead holder. (What was
    // synced survives; unsynced writes die with the process, as with a pulled disk.)
    std::process::Command::new("sync").status().unwrap();
    let info = json(&c.ok(&["volume", "info", "v1", "-o", "json"]));
    let fuse_pid = info["mounts"][0]["fuse_pid"].as_u64().unwrap() as u32;
    assert!(rookery_platform::proc::signal(fuse_pid, libc::SIGKILL));
    std::thread::sleep(Duration::from_millis(300));
    // Its watch on the image lingers until Ceph times it out (30 s): rm counts the silent client as a user.
    refused(&c, &["volume", "rm", "v1"], &["open by 1 other client"]);
    c.ok(&["volume", "mount", "v1", &s(&m1)]);
    same_files(&m1, &files);
    same_files(&m1, &later);
    assert!(!is_mounted(&m2), "the dead mount was not cleared");

    // A holder on another host that is gone (it no longer has the image open) does not block a mount.
    c.ok(&["volume", "create", "ghosted", "--size", "64Mi"]);
    {
        let rados = c.rados();
        let io = rados.ioctx("replicapool").unwrap();
        let ghost = serde_json::json!([{"host": "ghost-host", "boot_id": "x", "pid": 4242, "path": "/mnt/elsewhere",
                                        "read_only": false, "since_unix": 1}]);
        io.write_full("rookery.volume.ghosted", ghost.to_string().as_bytes())
            .unwrap();
    }
    let listed = json(&c.ok(&["volume", "info", "ghosted", "-o", "json"]));
    assert_eq!(listed["holders"][0]["host"], "ghost-host");
    let mg = m("ghost");
    c.ok(&["volume", "mount", "ghosted", &s(&mg)]);
    let listed = json(&c.ok(&["volume", "info", "ghosted", "-o", "json"]));
    assert_eq!(listed["holders"].as_array().unwrap().len(), 1, "{listed:#}");
    assert_ne!(listed["holders"][0]["host"], "ghost-host");
    c.ok(&["volume", "unmount", "ghosted"]);
    c.ok(&["volume", "rm", "ghosted"]);

    // A client that is no rookery mount (here: this test, through librbd) has a volume open: rm is
    // refused until it lets go.
    c.ok(&["volume", "create", "foreign", "--size", "64Mi"]);
    {
        let rados = c.rados();
        let io = rados.ioctx("replicapool").unwrap();
        let image = rookery_ceph::rbd::Image::open(&io, "foreign").unwrap();
        refused(
            &c,
            &["volume", "rm", "foreign"],
            &["open by 1 other client"],
        );
        drop(image);
        // Removing a volume that does not exist is refused and leaves no holder record behind.
        refused(&c, &["volume", "rm", "nosuch"], &["no volume"]);
        assert!(
            io.read_all("rookery.volume.nosuch").is_err(),
            "rm of a missing volume left its holder object"
        );
    }
    // A client that died with the volume open keeps its watch until Ceph times it out (30 s). It cannot
    // answer, so rm counts it as a user; mounting again releases it (blocklist), and then rm works.
    let mf = m("foreign");
    c.ok(&["volume", "mount", "foreign", &s(&mf)]);
    let info = json(&c.ok(&["volume", "info", "foreign", "-o", "json"]));
    let dead = info["mounts"][0]["fuse_pid"].as_u64().unwrap() as u32;
    assert!(rookery_platform::proc::signal(dead, libc::SIGKILL));
    std::thread::sleep(Duration::from_millis(300));
    refused(
        &c,
        &["volume", "rm", "foreign"],
        &["open by 1 other client"],
    );
    c.ok(&["volume", "mount", "foreign", &s(&mf)]);
    c.ok(&["volume", "unmount", "foreign"]);
    c.ok(&["volume", "rm", "foreign"]);

    // Across down/up the mount is taken down and restored.
    c.ok(&["down"]);
    assert!(!is_mounted(&m1));
    c.ok(&["up"]);
    assert!(is_mounted(&m1), "not mounted again after up");
    same_files(&m1, &later);

    // A host restart: every process dies at once and the kernel forgets mounts and loop devices. `up`
    // brings the cluster back and mounts the volume again.
    std::process::Command::new("sync").status().unwrap();
    let info = json(&c.ok(&["volume", "info", "v1", "-o", "json"]));
    let mount = info["mounts"][0].clone();
    let status = c.status();
    let mut pids = vec![status["supervisor"]["pid"].as_u64().unwrap() as u32];
    pids.extend(
        status["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["pid"].as_u64())
            .map(|p| p as u32),
    );
    pids.push(mount["fuse_pid"].as_u64().unwrap() as u32);
    for pid in pids {
        rookery_platform::proc::signal(pid, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(500));
    for target in [
        m1.clone(),
        PathBuf::from(mount["fuse_dir"].as_str().unwrap()),
    ] {
        let t = std::ffi::CString::new(target.to_str().unwrap()).unwrap();
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
    rookery_volumes::loopdev::detach(Path::new(mount["loop_device"].as_str().unwrap())).unwrap();
    assert!(!is_mounted(&m1));
    let up = c.ok(&["up"]);
    assert!(
        is_mounted(&m1),
        "not mounted again after a host restart: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    same_files(&m1, &files);
    same_files(&m1, &later);

    // Tidy up through the CLI: every refusal lifted in order.
    c.ok(&["volume", "unmount", "v1"]);
    c.ok(&["volume", "flatten", "c1"]);
    c.ok(&["volume", "snapshot", "rm", "v1", "s1"]);
    // A removed volume goes to the trash. Looked at right after the rm: the supervisor's purge, a child
    // started every minute, takes entries once they have been there for 2 s, so a later look can find
    // the trash emptied already.
    let in_trash = |name: &str| {
        let rados = c.rados();
        let io = rados.ioctx("replicapool").unwrap();
        rookery_ceph::rbd::trash_list(&io)
            .unwrap()
            .iter()
            .any(|e| e.name == name)
    };
    for v in ["c1", "v1", "v2"] {
        c.ok(&["volume", "rm", v]);
        assert!(in_trash(v), "volume rm {v} left nothing in the trash");
    }
    assert!(json(&c.ok(&["volume", "list", "-o", "json"]))
        .as_array()
        .unwrap()
        .is_empty());
    let loops = rookery_volumes::loopdev::attached_under(&c.dir);
    assert!(loops.is_empty(), "loop devices left: {loops:?}");

    // The purge the supervisor runs deletes the removed volumes' data.
    let trashed = || {
        let rados = c.rados();
        let io = rados.ioctx("replicapool").unwrap();
        rookery_ceph::rbd::trash_list(&io).unwrap().len()
    };
    // The supervisor's own run may hold an entry while this one looks (it then leaves it to the next
    // run), so the trash must be empty after a few runs, not after the first.
    let purging = Instant::now();
    loop {
        c.ok(&["purge-trash"]);
        if trashed() == 0 {
            break;
        }
        assert!(
            purging.elapsed() < Duration::from_secs(60),
            "the purge left removed volumes in the trash"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    pools(&c, mnt.path());
    a_full_pool_is_named(&c, mnt.path());
    a_writer_on_a_full_pool_gets_an_error(&c, mnt.path());
    an_xfs_volume_on_a_full_pool(&c, mnt.path());
    the_listing_matches_librbd(&c);
    bench_scale_measures_and_cleans_up(&c);
}

/// `rookery bench scale` at a small count: every listing is timed next to `rbd ls -l`, and the volumes
/// it made are gone afterwards.
fn bench_scale_measures_and_cleans_up(c: &TestCluster) {
    let listed = |c: &TestCluster| json(&c.ok(&["volume", "list", "-o", "json"]));
    let before = listed(c);
    let figures = json(&c.ok(&["bench", "scale", "--count", "30", "-o", "json"]));
    eprintln!("rookery bench scale --count 30: {figures}");
    for key in [
        "rbdLsLongSecs",
        "volumeListSecs",
        "volumeListJsonSecs",
        "volumeListColdSecs",
        "csiListVolumesSecs",
        "getPoolsSecs",
    ] {
        assert!(figures[key].as_f64().unwrap() > 0.0, "{key}: {figures}");
    }
    assert_eq!(figures["volumes"], 30);
    assert!(
        figures["supervisorMiB"]["after"].as_u64().unwrap() > 0,
        "{figures}"
    );
    assert_eq!(listed(c), before, "the bench left volumes behind");
}

/// A pool that reached its quota is named in `status`, with the volumes in it and the fix; raising the
/// quota clears it.
fn a_full_pool_is_named(c: &TestCluster, scratch: &Path) {
    let file = scratch.join("tiny.yaml");
    let spec = |quota: &str| {
        format!("apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: tiny}}\nspec:\n  failureDomain: osd\n  replicated: {{size: 1}}\n  quotas: {{maxSize: {quota}}}\n")
    };
    std::fs::write(&file, spec("4Mi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    c.ok(&["volume", "create", "tiny/held", "--size", "2Mi"]);
    // Past the quota with one write (the quota is checked against the pool's statistics).
    let rados = c.rados();
    rados
        .ioctx("tiny")
        .unwrap()
        .write_full("filler", &vec![7u8; 6 << 20])
        .unwrap();
    let check = wait_pool_full(c, true);
    let details = check["details"].to_string();
    assert!(
        details.contains("pool 'tiny' is full") && details.contains("volumes in pool tiny: held"),
        "{check:#}"
    );
    let shown = text(&c.ok(&["status"]));
    assert!(shown.contains("volumes in pool tiny: held"), "{shown}");
    assert!(shown.contains("spec.quotas.maxSize"), "{shown}");
    // Raised, the check clears and the pool takes writes and deletions again.
    std::fs::write(&file, spec("1Gi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    wait_pool_full(c, false);
    rados.ioctx("tiny").unwrap().remove("filler").unwrap();
    c.ok(&["volume", "rm", "tiny/held"]);
    c.ok(&["delete", "-f", file.to_str().unwrap()]);
}

/// Waits until `status` has (or, with `present` false, no longer has) the POOL_FULL check.
fn wait_pool_full(c: &TestCluster, present: bool) -> serde_json::Value {
    wait_pool_check(c, "POOL_FULL", present)
}

fn wait_pool_check(c: &TestCluster, code: &str, present: bool) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let status = c.status();
        let found = status["ceph"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["code"] == code)
            .cloned();
        if found.is_some() == present {
            return found.unwrap_or_default();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{code} {}: {status:#}",
            if present { "never came" } else { "stayed" }
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Waits until the pool's statistics count another client's `bytes` in `pool`, then for the volume's
/// server to sample them (every second while the room is short). A client racing the volume's own
/// writer is covered only by the margin the server keeps.
fn let_the_server_see_the_fillers(rados: &rookery_ceph::Rados, pool: &str, bytes: u64) {
    let counted = Instant::now();
    while rookery_ceph::commands::cluster::df(rados)
        .unwrap()
        .pools
        .iter()
        .find(|p| p.name == pool)
        .is_none_or(|p| p.stats.stored < bytes)
    {
        assert!(
            counted.elapsed() < Duration::from_secs(30),
            "the pool's statistics never counted the fillers"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(5));
}

/// The pool stopped short of full, so the file system's journal lives.
fn never_full(c: &TestCluster) {
    assert!(
        !c.status()["ceph"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["code"] == "POOL_FULL"),
        "the pool filled under the file system"
    );
}

/// A mounted volume whose pool fills up: the writer gets ENOSPC from the file system in bounded time and
/// can be killed, written data reads back, listings answer, status names the pool and the volume, the pool
/// itself never fills (so the journal lives), and after the quota is raised the same mount takes writes
/// again.
fn a_writer_on_a_full_pool_gets_an_error(c: &TestCluster, scratch: &Path) {
    let file = scratch.join("tight.yaml");
    let spec = |quota: &str| {
        format!("apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: tight}}\nspec:\n  failureDomain: osd\n  replicated: {{size: 1}}\n  quotas: {{maxSize: {quota}}}\n")
    };
    std::fs::write(&file, spec("128Mi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    refused(
        c,
        &["volume", "create", "tight/w", "--size", "200Mi"],
        &["--size", "128Mi", "quota"],
    );
    // Over the quota on purpose: allowed, and `status` warns with the figures.
    c.ok(&[
        "volume",
        "create",
        "tight/oc",
        "--size",
        "200Mi",
        "--over-commit",
    ]);
    let over = c.status()["ceph"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["code"] == "VOLUME_OVER_QUOTA")
        .cloned()
        .unwrap_or_default();
    assert!(
        over["details"]
            .to_string()
            .contains("volume tight/oc is 200 MiB; the quota of pool tight is 128 MiB"),
        "{over:#}"
    );
    c.ok(&["volume", "rm", "tight/oc"]);
    // Or the pool's spec says so (Rook's CephBlockPool has no field for it: an annotation); taken back,
    // the refusal returns.
    let annotated = spec("128Mi").replace(
        "metadata: {name: tight}",
        "metadata: {name: tight, annotations: {rookery.io/over-commit: 'true'}}",
    );
    std::fs::write(&file, annotated).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    c.ok(&["volume", "create", "tight/oc", "--size", "200Mi"]);
    std::fs::write(&file, spec("128Mi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    refused(
        c,
        &["volume", "create", "tight/oc2", "--size", "200Mi"],
        &["--size", "128Mi", "rookery.io/over-commit"],
    );
    c.ok(&["volume", "rm", "tight/oc"]);
    c.ok(&["volume", "create", "tight/w", "--size", "128Mi"]);
    let mnt = scratch.join("tight");
    std::fs::create_dir_all(&mnt).unwrap();
    c.ok(&["volume", "mount", "tight/w", mnt.to_str().unwrap()]);
    let known = pseudo_random(7, 1 << 20);
    std::fs::write(mnt.join("known"), &known).unwrap();
    assert!(Command::new("sync").status().unwrap().success());
    // Another client takes half the quota; the volume's writer then fills what is left.
    let rados = c.rados();
    let fillers = ["filler0", "filler1"];
    for f in fillers {
        rados
            .ioctx("tight")
            .unwrap()
            .write_full(f, &vec![7u8; 31 << 20])
            .unwrap();
    }
    let_the_server_see_the_fillers(&rados, "tight", 62 << 20);
    let dd = |name: &str, count: &str, extra: &[&str]| {
        Command::new("dd")
            .args([
                "if=/dev/zero",
                &format!("of={}", mnt.join(name).display()),
                "bs=1M",
                count,
            ])
            .args(extra)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let started = Instant::now();
    let mut writer = dd("fill", "count=100", &["oflag=direct", "conv=fsync"]);
    let outcome = loop {
        if let Some(status) = writer.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            // Unblock the writer before failing, so the cleanup can unmount.
            let mut io = rados.ioctx("tight").unwrap();
            io.fail_writes_when_full();
            for f in fillers {
                let _ = io.remove(f);
            }
            let log =
                std::fs::read_to_string(c.dir.join("log/fuse.tight.w.log")).unwrap_or_default();
            panic!("a writer on a full pool got no error within 30 s; FUSE server log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let said = text(&writer.wait_with_output().unwrap());
    assert!(!outcome.success(), "dd succeeded on a full pool: {said}");
    assert!(said.contains("No space left on device"), "{said}");
    eprintln!(
        "writer on a full pool: failed after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        said.lines().next().unwrap_or("")
    );
    // Another writer, buffered, ends as quickly, or can be killed.
    let mut other = dd("more", "count=100", &["conv=fsync"]);
    std::thread::sleep(Duration::from_secs(2));
    let _ = other.kill();
    let killed = Instant::now();
    while other.try_wait().unwrap().is_none() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "a writer on a full pool could not be killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `df` in the volume tells the truth: (almost) nothing left.
    let df = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(&mnt)
        .output()
        .unwrap();
    let avail: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(avail < 8 << 20, "df shows {avail} bytes available");
    assert_eq!(std::fs::read(mnt.join("known")).unwrap(), known);
    let listed = json(&c.ok(&["volume", "list", "--pool", "tight", "-o", "json"]));
    assert_eq!(listed[0]["name"], "w", "{listed:#}");
    c.ok(&["volume", "info", "tight/w"]);
    // Status names the pool and its volume; the pool never filled, so the file system's journal lives.
    let quota = rookery_ceph::commands::pool::get_quota(&rados, "tight").unwrap();
    eprintln!(
        "pool tight after the writers: {} of {} MiB (the quota's measure)",
        quota.current_num_bytes >> 20,
        quota.quota_max_bytes >> 20
    );
    let check = wait_pool_check(c, "POOL_NEAR_FULL", true);
    assert!(
        check["details"]
            .to_string()
            .contains("volumes in pool tight: w"),
        "{check:#}"
    );
    never_full(c);
    // Room again: the same mount takes writes once the server has seen the new quota.
    std::fs::write(&file, spec("1Gi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    let raised = Instant::now();
    loop {
        let again = dd("after", "count=8", &["oflag=direct", "conv=fsync"])
            .wait_with_output()
            .unwrap();
        if again.status.success() {
            break;
        }
        assert!(
            raised.elapsed() < Duration::from_secs(60),
            "the volume took no writes within 60 s of the quota raised: {}",
            text(&again)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "writes went on on the same mount {:.1} s after the quota was raised",
        raised.elapsed().as_secs_f64()
    );
    wait_pool_check(c, "POOL_NEAR_FULL", false);
    assert_eq!(std::fs::read(mnt.join("known")).unwrap(), known);
    c.ok(&["volume", "unmount", mnt.to_str().unwrap()]);
    c.ok(&["volume", "rm", "tight/w"]);
    for f in fillers {
        rados.ioctx("tight").unwrap().remove(f).unwrap();
    }
    c.ok(&["delete", "-f", file.to_str().unwrap()]);
}

/// The same for xfs, whose free blocks are held back through its reserve pool instead of ext4's
/// reserved clusters: ENOSPC from the file system, the pool never full, the same mount writing again.
fn an_xfs_volume_on_a_full_pool(c: &TestCluster, scratch: &Path) {
    let file = scratch.join("xfsfull.yaml");
    let spec = |quota: &str| {
        format!("apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: xfsfull}}\nspec:\n  failureDomain: osd\n  replicated: {{size: 1}}\n  quotas: {{maxSize: {quota}}}\n")
    };
    std::fs::write(&file, spec("512Mi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    c.ok(&[
        "volume",
        "create",
        "xfsfull/x",
        "--size",
        "500Mi",
        "--fs",
        "xfs",
    ]);
    let mnt = scratch.join("xfsfull");
    std::fs::create_dir_all(&mnt).unwrap();
    c.ok(&["volume", "mount", "xfsfull/x", mnt.to_str().unwrap()]);
    let rados = c.rados();
    let fillers = ["filler0", "filler1", "filler2", "filler3"];
    for f in fillers {
        rados
            .ioctx("xfsfull")
            .unwrap()
            .write_full(f, &vec![7u8; 50 << 20])
            .unwrap();
    }
    let_the_server_see_the_fillers(&rados, "xfsfull", 200 << 20);
    let dd = |name: &str, count: &str| {
        Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", "oflag=direct", "conv=fsync", count])
            .arg(format!("of={}", mnt.join(name).display()))
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let filled = dd("fill", "count=400");
    assert!(!filled.status.success(), "{}", text(&filled));
    assert!(
        text(&filled).contains("No space left on device"),
        "{}",
        text(&filled)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let check = wait_pool_check(c, "POOL_NEAR_FULL", true);
    assert!(
        check["details"]
            .to_string()
            .contains("volumes in pool xfsfull: x"),
        "{check:#}"
    );
    never_full(c);
    std::fs::write(&file, spec("2Gi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    let raised = Instant::now();
    while !dd("after", "count=8").status.success() {
        assert!(
            raised.elapsed() < Duration::from_secs(60),
            "the xfs volume took no writes within 60 s of the quota raised"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    c.ok(&["volume", "unmount", mnt.to_str().unwrap()]);
    c.ok(&["volume", "rm", "xfsfull/x"]);
    for f in fillers {
        rados.ioctx("xfsfull").unwrap().remove(f).unwrap();
    }
    c.ok(&["delete", "-f", file.to_str().unwrap()]);
}

/// `volume list` reads images' objects instead of opening them: every field agrees with what librbd says
/// (through the `rbd` tool) for images with snapshots, a clone, data, other metadata and no object map.
fn the_listing_matches_librbd(c: &TestCluster) {
    let conf = c.dir.join("ceph.conf");
    let rbd = |args: &[&str]| {
        let out = Command::new("rbd")
            .arg("--conf")
            .arg(&conf)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "rbd {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let p = "replicapool";
    rbd(&["create", &format!("{p}/lm1"), "--size", "100M"]);
    rbd(&[
        "image-meta",
        "set",
        &format!("{p}/lm1"),
        "rookery.fs",
        "xfs",
    ]);
    rbd(&["snap", "create", &format!("{p}/lm1@s1")]);
    rbd(&["resize", &format!("{p}/lm1"), "--size", "200M"]);
    rbd(&["snap", "protect", &format!("{p}/lm1@s1")]);
    rbd(&["clone", &format!("{p}/lm1@s1"), &format!("{p}/lm2")]);
    rbd(&[
        "create",
        &format!("{p}/lm3"),
        "--size",
        "10M",
        "--image-feature",
        "layering",
    ]);
    for (image, io) in [("lm1", "12M"), ("lm2", "8M"), ("lm3", "3M")] {
        rbd(&[
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "1M",
            "--io-pattern",
            "rand",
            "--io-total",
            io,
            &format!("{p}/{image}"),
        ]);
    }
    let du = json_of(&rbd(&["du", "-p", p, "--format", "json"]));
    let mut infos = Vec::new();
    for image in ["lm1", "lm2", "lm3"] {
        // `info` reads the image's objects now (and records them in the pool's index).
        let ours = json(&c.ok(&["volume", "info", image, "-o", "json"]));
        let info = json_of(&rbd(&["info", &format!("{p}/{image}"), "--format", "json"]));
        assert_eq!(ours["size_bytes"], info["size"], "{image}");
        assert_eq!(ours["features"], info["features"], "{image}");
        let used = du["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == image && i.get("snapshot").is_none())
            .unwrap();
        assert_eq!(ours["used_bytes"], used["used_size"], "{image}: {used}");
        let snaps = json_of(&rbd(&[
            "snap",
            "ls",
            &format!("{p}/{image}"),
            "--format",
            "json",
        ]));
        let theirs: Vec<(String, u64)> = snaps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().into(),
                    s["size"].as_u64().unwrap(),
                )
            })
            .collect();
        let mine: Vec<(String, u64)> = ours["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().into(),
                    s["size_bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(mine, theirs, "{image}");
        let parent = info.get("parent").map(|p| {
            format!(
                "{}/{}@{}",
                p["pool"].as_str().unwrap(),
                p["image"].as_str().unwrap(),
                p["snapshot"].as_str().unwrap()
            )
        });
        assert_eq!(ours["parent"].as_str().map(String::from), parent, "{image}");
        infos.push(ours);
    }
    assert_eq!(infos[0]["fs"], "xfs");
    assert_eq!(infos[2]["fs"], "ext4");
    // The listing answers from the pool's index, which `info` just brought up to date.
    let listed = json(&c.ok(&["volume", "list", "-o", "json"]));
    for ours in &infos {
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == ours["name"])
            .unwrap_or_else(|| panic!("{} not listed: {listed:#}", ours["name"]));
        assert_eq!(entry, ours);
    }
    rbd(&["rm", &format!("{p}/lm2")]);
    rbd(&["snap", "unprotect", &format!("{p}/lm1@s1")]);
    rbd(&["snap", "rm", &format!("{p}/lm1@s1")]);
    rbd(&["rm", &format!("{p}/lm1")]);
    rbd(&["rm", &format!("{p}/lm3")]);
}

fn json_of(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// CephBlockPool through apply/get/delete: settings reach Ceph, a pool in use is not deleted.
fn pools(c: &TestCluster, scratch: &Path) {
    let file = scratch.join("pool.yaml");
    let write = |size: u32, mode: &str| {
        std::fs::write(
            &file,
            format!(
                "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: fast, namespace: rook-ceph}}\n\
                 spec:\n  failureDomain: host\n  replicated: {{size: {size}}}\n  deviceClass: hdd\n\
                 \x20 quotas: {{maxSize: 1Gi, maxObjects: 500}}\n  parameters: {{compression_mode: {mode}}}\n"
            ),
        )
        .unwrap();
    };
    let f = file.to_str().unwrap();
    let pool = |c: &TestCluster| {
        json(&c.ok(&["get", "pools", "-o", "json"]))
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "fast")
            .cloned()
    };
    write(2, "aggressive");
    c.ok(&["apply", "-f", f]);
    let p = pool(c).expect("pool fast was not created");
    assert_eq!(p["size"], 2);
    assert_eq!(p["quota_max_bytes"], 1u64 << 30);
    assert_eq!(p["quota_max_objects"], 500);
    assert_eq!(p["crush_rule"], "rookery-replicated-hdd");
    let rados = c.rados();
    let mode = rookery_ceph::commands::pool::get(&rados, "fast", "compression_mode").unwrap();
    assert_eq!(mode, "aggressive");

    // A change is reconciled; an impossible one is refused before anything changes.
    write(3, "passive");
    c.ok(&["apply", "-f", f]);
    assert_eq!(pool(c).unwrap()["size"], 3);
    write(5, "passive");
    refused(
        c,
        &["apply", "-f", f],
        &["spec.replicated.size", "only 3 OSDs"],
    );
    assert_eq!(pool(c).unwrap()["size"], 3);

    // A volume its quota can never hold is refused, with the figures.
    write(3, "passive");
    refused(
        c,
        &["volume", "create", "big", "--size", "2Gi", "--pool", "fast"],
        &[
            "can never hold more than 1Gi (its quota)",
            "spec.quotas.maxSize",
        ],
    );

    // Delete is refused while a volume lives in the pool.
    c.ok(&["volume", "create", "pv", "--size", "64Mi", "--pool", "fast"]);
    refused(c, &["delete", "-f", f], &["still holds volumes", "pv"]);
    assert!(pool(c).is_some());
    c.ok(&["volume", "rm", "fast/pv"]);
    c.ok(&["delete", "-f", f]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(pool(c).is_none(), "pool fast came back after delete");

    // Erasure coding where the OSD count allows it: a volume's data in a 2+1 pool.
    let ec = scratch.join("ec.yaml");
    let ec_spec = |k: u32, m: u32| {
        format!("apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: ec}}\nspec:\n  erasureCoded: {{dataChunks: {k}, codingChunks: {m}}}\n")
    };
    std::fs::write(&ec, ec_spec(3, 1)).unwrap();
    refused(
        c,
        &["apply", "-f", ec.to_str().unwrap()],
        &["need 4 OSDs", "only 3"],
    );
    std::fs::write(&ec, ec_spec(2, 1)).unwrap();
    c.ok(&["apply", "-f", ec.to_str().unwrap()]);
    c.ok(&[
        "volume",
        "create",
        "ecv",
        "--size",
        "128Mi",
        "--data-pool",
        "ec",
    ]);
    let info = json(&c.ok(&["volume", "info", "ecv", "-o", "json"]));
    assert!(
        info["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "data-pool"),
        "{info:#}"
    );
    let m = scratch.join("ecm");
    std::fs::create_dir_all(&m).unwrap();
    c.ok(&["volume", "mount", "ecv", m.to_str().unwrap()]);
    let files = write_files(&m, "e", 3);
    c.ok(&["volume", "unmount", "ecv"]);
    c.ok(&["volume", "mount", "ecv", m.to_str().unwrap()]);
    same_files(&m, &files);
    c.ok(&["volume", "unmount", "ecv"]);
    c.ok(&["volume", "rm", "ecv"]);
}
