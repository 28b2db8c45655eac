//! A cluster over three hosts (network namespaces on this machine, `common::hosts`), on real Ceph:
//! bootstrap on host1, hosts 2 and 3 join with tokens (bad, expired, reused and foreign tokens refused
//! first, changing nothing), three mons in quorum on three hosts and copies across hosts; then host2
//! loses power and its link, the cluster keeps reading and writing, and host2 comes back with its data.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::hosts::{TestHost, TestHosts};
use common::{json, text};

/// Three mons (one per host, as hosts join), a standby mgr on a joined host, three OSD files per host,
/// a pool of three copies that asks for different hosts, mons replaced after 20 s out of quorum.
const SPEC: &str = "apiVersion: ceph.rook.io/v1
kind: CephCluster
metadata: {name: multi}
spec:
  mon: {count: 3}
  mgr: {count: 2}
  healthCheck: {daemonHealth: {mon: {timeout: 20s}}}
  storage:
    useAllNodes: false
    useAllDevices: false
    osdFiles: {count: 3, size: 5Gi}
---
apiVersion: ceph.rook.io/v1
kind: CephBlockPool
metadata: {name: replicapool}
spec:
  failureDomain: host
  replicated: {size: 3}
";

/// An object store served by two hosts' gateways.
const STORE_PORT: u16 = 8480;
fn store() -> String {
    format!(
        "apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata: {{name: s3}}
spec:
  metadataPool: {{replicated: {{size: 3}}}}
  dataPool: {{replicated: {{size: 3}}}}
  gateway: {{port: {STORE_PORT}, instances: 2}}
"
    )
}

/// `ceph ARGS` on `host`'s cluster, its output.
fn ceph_text(host: &TestHost, args: &[&str]) -> String {
    let o = host
        .command("ceph")
        .args(["-c", host.data_dir().join("ceph.conf").to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "ceph {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes or checks objects through librados (python-rados), from inside a host.
const OBJECTS: &str = r#"
import hashlib, sys, rados
conf, user, mode, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
c = rados.Rados(conffile=conf, name=user)
c.conf_set('client_mount_timeout', '30')
c.conf_set('rados_osd_op_timeout', '60')
c.connect(timeout=30)
io = c.open_ioctx('replicapool')
for i in range(n):
    name = f"{prefix}{i}"
    data = hashlib.sha256(name.encode()).digest() * 4096
    if mode == 'write':
        io.write_full(name, data)
    else:
        got = io.read(name, len(data) + 1)
        assert got == data, f"{name}: {len(got)} bytes differ"
io.close()
c.shutdown()
print('ok')
"#;

/// Where host1 mounts a volume and a CephFS subvolume; whatever is still mounted there (and the loop
/// devices of host1's volumes) is let go on drop, before the hosts' processes are killed.
struct Mounts {
    dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
}

impl Mounts {
    fn new(host: &TestHost) -> Mounts {
        Mounts {
            dir: tempfile::Builder::new()
                .prefix("rookery-multihost-mnt-")
                .tempdir()
                .unwrap(),
            data_dir: host.data_dir().to_path_buf(),
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        common::unmount_under(self.dir.path());
        common::unmount_under(&self.data_dir);
        if let Ok(entries) = std::fs::read_dir("/sys/block") {
            for e in entries.flatten() {
                let dev =
                    std::path::PathBuf::from(format!("/dev/{}", e.file_name().to_string_lossy()));
                if rookery_volumes::loopdev::backing_file(&dev)
                    .is_some_and(|b| b.starts_with(&self.data_dir))
                {
                    let _ = rookery_volumes::loopdev::detach(&dev);
                }
            }
        }
    }
}

fn write_synced(path: &std::path::Path, data: &[u8]) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

/// Reads after this come from Ceph, not from this machine's page cache.
fn drop_caches() {
    std::fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
}

fn rk(host: &TestHost, args: &[&str]) -> Output {
    host.command(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(host.data_dir())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rookery")
}

fn ok(host: &TestHost, args: &[&str]) -> Output {
    let o = rk(host, args);
    assert!(
        o.status.success(),
        "rookery {args:?} on {}: {}",
        host.name,
        text(&o)
    );
    o
}

fn bad_input(host: &TestHost, args: &[&str], says: &str) {
    let o = rk(host, args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
}

fn token(member: &TestHost, host: &str, extra: &[&str]) -> String {
    let mut args = vec!["host", "add", host];
    args.extend_from_slice(extra);
    String::from_utf8_lossy(&ok(member, &args).stdout)
        .trim()
        .to_string()
}

fn join_args<'a>(token: &'a str, host: &'a TestHost, address: &'a str) -> Vec<&'a str> {
    vec![
        "join",
        token,
        "--address",
        address,
        "--host-name",
        &host.name,
        "--wait-secs",
        "180",
    ]
}

/// The Ceph user a host acts as: the admin on the host that made the cluster, its own on the others.
fn user(host: &TestHost) -> String {
    if host.name == "host1" {
        "client.admin".into()
    } else {
        format!("client.rookery-host-{}", host.name)
    }
}

fn objects(host: &TestHost, mode: &str, prefix: &str, n: u32) {
    let conf = host.data_dir().join("ceph.conf");
    let out = host
        // Debian's python, where python3-rados is installed.
        .command("/usr/bin/python3")
        .args(["-c", OBJECTS])
        .arg(&conf)
        .arg(user(host))
        .args([mode, prefix, &n.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{mode} {prefix}* from {}: {}",
        host.name,
        text(&out)
    );
}

fn status(host: &TestHost) -> serde_json::Value {
    json(&ok(host, &["status", "-o", "json"]))
}

/// Waits until `host` reports HEALTH_OK with `osds` OSDs up, three mons in quorum and every PG
/// active+clean.
fn wait_healthy(host: &TestHost, osds: usize, limit: Duration) -> serde_json::Value {
    wait_healthy_with(host, osds, 3, limit)
}

/// Whether `host`'s status lists `daemon` as running.
fn runs_on(host: &TestHost, daemon: &str) -> bool {
    status(host)["daemons"].as_array().is_some_and(|d| {
        d.iter()
            .any(|d| d["name"] == daemon && d["state"] == "running")
    })
}

fn host_state(s: &serde_json::Value, name: &str) -> String {
    s["ceph"]["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == name))
        .map(|h| h["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn three_hosts_join_and_survive_the_loss_of_one() {
    let set = TestHosts::new(4);
    let [h1, h2, h3, h4] = [&set.hosts[0], &set.hosts[1], &set.hosts[2], &set.hosts[3]];
    let spec = h1
        .data_dir()
        .parent()
        .unwrap()
        .join(format!("{}.yaml", h1.netns));
    std::fs::write(&spec, SPEC).unwrap();
    let addr = |h: &TestHost| h.address.to_string();
    let (a1, a2, a3, a4) = (addr(h1), addr(h2), addr(h3), addr(h4));

    let started = Instant::now();
    ok(
        h1,
        &[
            "up",
            "-f",
            spec.to_str().unwrap(),
            "--address",
            &a1,
            "--host-name",
            "host1",
        ],
    );
    let _ = std::fs::remove_file(&spec);

    // Bad tokens change nothing: a pasted fragment, a token for another host, an expired one.
    bad_input(h2, &join_args("rookery-join-xyz", h2, &a2), "damaged");
    let for_host2 = token(h1, "host2", &[]);
    bad_input(
        h3,
        &join_args(&for_host2, h3, &a3),
        "made for host \"host2\"",
    );
    let short = token(h1, "host3", &["--valid-for", "1"]);
    std::thread::sleep(Duration::from_secs(2));
    bad_input(h3, &join_args(&short, h3, &a3), "expired");
    assert!(std::fs::read_dir(h3.data_dir()).unwrap().next().is_none());
    // A host of another cluster is refused before anything is sent.
    let other = tempfile::tempdir().unwrap();
    let other_layout = rookery_orchestrator::Layout::new(other.path());
    let here = rookery_platform::local::host_at("host3", h3.address.into(), "10.77.0.0/24");
    rookery_orchestrator::create_cluster(
        &other_layout,
        "other",
        &["a".into()],
        &[(3300, 6789)],
        &here,
    )
    .unwrap();
    let for_host3 = token(h1, "host3", &[]);
    let o = h3
        .command(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(other.path())
        .args(join_args(&for_host3, h3, &a3))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already belongs to cluster"),
        "{}",
        text(&o)
    );

    // The two joins.
    ok(h2, &join_args(&for_host2, h2, &a2));
    ok(h3, &join_args(&for_host3, h3, &a3));
    // A token works once.
    let again = rk(h3, &join_args(&for_host2, h2, &a2));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let s = wait_healthy(h1, 9, Duration::from_secs(240));
    eprintln!(
        "first `up` to the third host's OSDs active+clean: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Three mons in quorum on three hosts, every host up, copies on different hosts.
    let mons = s["ceph"]["mons"].as_array().unwrap();
    assert_eq!(mons.len(), 3, "{s}");
    assert!(mons.iter().all(|m| m["in_quorum"] == true), "{s}");
    let mut mon_addresses: Vec<String> = mons
        .iter()
        .map(|m| {
            m["address"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    mon_addresses.sort();
    assert_eq!(mon_addresses, [a1.clone(), a2.clone(), a3.clone()]);
    for name in ["host1", "host2", "host3"] {
        assert_eq!(host_state(&s, name), "up", "{s}");
    }
    // The standby mgr runs on a joined host.
    let standby = Instant::now();
    while status(h2)["daemons"].as_array().is_none_or(|d| {
        !d.iter()
            .any(|d| d["name"] == "mgr.b" && d["state"] == "running")
    }) || status(h1)["ceph"]["mgr"]["standbys"] != 1
    {
        assert!(
            standby.elapsed() < Duration::from_secs(60),
            "no standby mgr.b on host2: {}",
            status(h1)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // Copies move to different hosts once the third host's OSDs are in CRUSH (the mgr's pool too).
    let moving = Instant::now();
    for pool in ["replicapool", "device_health_metrics"] {
        loop {
            let rule = h1
                .command("ceph")
                .args(["-c", h1.data_dir().join("ceph.conf").to_str().unwrap()])
                .args(["osd", "pool", "get", pool, "crush_rule"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&rule.stdout).contains("rookery-host") {
                break;
            }
            assert!(
                moving.elapsed() < Duration::from_secs(30),
                "{pool}: {}",
                text(&rule)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    wait_healthy(h1, 9, Duration::from_secs(120));
    // Every member answers status, and lists the same hosts.
    let members = json(&ok(h3, &["host", "list", "-o", "json"]));
    assert_eq!(members.as_array().map(Vec::len), Some(3), "{members}");

    // Data (RADOS objects, a file on a mounted volume, a file on CephFS), then host2 loses power and
    // its link.
    let mounts = Mounts::new(h1);
    let myfs = h1
        .data_dir()
        .parent()
        .unwrap()
        .join(format!("{}-myfs.yaml", h1.netns));
    std::fs::write(&myfs, format!("{}---\n{}", common::MYFS, store())).unwrap();
    ok(h1, &["apply", "-f", myfs.to_str().unwrap()]);
    let _ = std::fs::remove_file(&myfs);
    // The standby MDS and the second gateway run on a joined host, and that gateway serves the zone.
    let spread = Instant::now();
    while !(runs_on(h2, "mds.myfs-b") && runs_on(h2, "rgw.s3")) {
        assert!(
            spread.elapsed() < Duration::from_secs(120),
            "no mds.myfs-b and rgw.s3 on host2: {}\nhost1: {}",
            status(h2),
            status(h1)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let host1_daemons = status(h1)["daemons"].clone();
    assert!(
        host1_daemons
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["name"] != "mds.myfs-b"),
        "{host1_daemons}"
    );
    let gateway = Instant::now();
    loop {
        let o = h1
            .command("curl")
            .args(["-s", &format!("http://{a2}:{STORE_PORT}/")])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stdout).contains("ListAllMyBucketsResult") {
            break;
        }
        assert!(
            gateway.elapsed() < Duration::from_secs(60),
            "host2's gateway does not answer: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mds = Instant::now();
    while !ceph_text(h1, &["mds", "stat"]).contains("standby") {
        assert!(
            mds.elapsed() < Duration::from_secs(60),
            "myfs has no standby: {}",
            ceph_text(h1, &["mds", "stat"])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    ok(
        h1,
        &["fs", "subvolume", "create", "myfs", "app1", "--size", "1Gi"],
    );
    ok(h1, &["volume", "create", "data1", "--size", "256Mi"]);
    let volume = mounts.dir.path().join("volume");
    let files = mounts.dir.path().join("files");
    for d in [&volume, &files] {
        std::fs::create_dir_all(d).unwrap();
    }
    ok(h1, &["volume", "mount", "data1", volume.to_str().unwrap()]);
    ok(h1, &["fs", "mount", "myfs:app1", files.to_str().unwrap()]);
    let data = common::pseudo_random(7, 8 << 20);
    for dir in [&volume, &files] {
        write_synced(&dir.join("before.bin"), &data);
    }
    objects(h1, "write", "before-", 40);
    set.kill(1);
    set.cut(1);
    objects(h1, "read", "before-", 40);
    objects(h3, "write", "during-", 40);
    let during = common::pseudo_random(8, 8 << 20);
    drop_caches();
    for dir in [&volume, &files] {
        assert_eq!(
            common::checksum(&std::fs::read(dir.join("before.bin")).unwrap()),
            common::checksum(&data),
            "{}",
            dir.display()
        );
        write_synced(&dir.join("during.bin"), &during);
    }
    let down = Instant::now();
    loop {
        let s = status(h1);
        if host_state(&s, "host2") == "down" {
            break;
        }
        assert!(
            down.elapsed() < Duration::from_secs(60),
            "host2 not reported down: {s}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // After the spec's 20 s, what host2 ran (the standby mgr and MDS, the second gateway) runs on
    // host3.
    let moving = Instant::now();
    while !["mgr.b", "mds.myfs-b", "rgw.s3"]
        .iter()
        .all(|d| runs_on(h3, d))
    {
        assert!(
            moving.elapsed() < Duration::from_secs(120),
            "host2's daemons did not move to host3: {}",
            status(h3)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "host2 down -> its mgr, MDS and gateway run on host3: {:.1} s",
        moving.elapsed().as_secs_f64()
    );

    // With host2's mon out, removing host3 would leave a and b with only a in quorum: refused.
    let o = rk(h1, &["host", "rm", "host3"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("of which 1 in quorum"),
        "{}",
        text(&o)
    );

    // Back: its supervisor starts again and adopts nothing stale; the data is whole.
    set.restore(1);
    ok(h2, &["up"]);
    wait_healthy(h1, 9, Duration::from_secs(180));
    objects(h2, "read", "before-", 40);
    objects(h2, "read", "during-", 40);
    drop_caches();
    for dir in [&volume, &files] {
        for (name, want) in [("before.bin", &data), ("during.bin", &during)] {
            let got = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(
                common::checksum(&got),
                common::checksum(want),
                "{name} in {}",
                dir.display()
            );
        }
    }
    ok(h1, &["volume", "unmount", volume.to_str().unwrap()]);
    ok(h1, &["fs", "unmount", files.to_str().unwrap()]);
    let osds = status(h1)["ceph"]["osds"].as_array().unwrap().len();
    assert_eq!(osds, 9, "no OSD was made twice");

    bad_input(h2, &["host", "rm", "host9"], "not a host of this cluster");

    // The refusals above recorded nothing.
    let s = status(h1);
    assert!(
        s["reconcile"]["leaving"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{s}"
    );

    // host3 leaves while data is written: drained, then gone from every map.
    let removing = Instant::now();
    let (rm, writer) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            h1.command("/usr/bin/python3")
                .args(["-c", OBJECTS])
                .arg(h1.data_dir().join("ceph.conf"))
                .arg(user(h1))
                .args(["write", "leaving-", "150"])
                .output()
                .unwrap()
        });
        let rm = rk(h1, &["host", "rm", "host3", "--wait-secs", "600"]);
        (rm, writer.join().unwrap())
    });
    assert!(rm.status.success(), "host rm: {}", text(&rm));
    assert!(writer.status.success(), "{}", text(&writer));
    eprintln!(
        "host rm host3 (3 OSDs drained, mon removed): {:.1} s",
        removing.elapsed().as_secs_f64()
    );
    let ceph = |args: &[&str]| ceph_text(h1, args);
    let tree = ceph(&["osd", "tree"]);
    assert!(
        !tree.contains("host3") && !tree.contains("osd.6 "),
        "{tree}"
    );
    let auth = ceph(&["auth", "ls"]);
    assert!(
        !auth.contains("rookery-host-host3") && !auth.contains("osd.6\n"),
        "{auth}"
    );
    let monmap = ceph(&["mon", "dump"]);
    assert!(
        !monmap.contains("mon.c") && !monmap.contains(&a3),
        "{monmap}"
    );
    let s = wait_healthy_with(h1, 6, 2, Duration::from_secs(240));
    assert_eq!(host_state(&s, "host3"), "", "host3 still listed: {s}");
    objects(h1, "read", "leaving-", 150);
    objects(h1, "read", "before-", 40);

    // host3 comes back under the same name, from a cleared data dir: fresh OSDs and key.
    ok(h3, &["down", "--purge", "--yes-really-destroy-data"]);
    let again = token(h1, "host3", &[]);
    ok(h3, &join_args(&again, h3, &a3));
    wait_healthy(h1, 9, Duration::from_secs(240));
    objects(h3, "read", "leaving-", 150);
    objects(h3, "write", "back-", 10);

    // A fourth host joins (no mon: three are enough); then host3, with mon.c, dies for good. After
    // the spec's 20 s, mon.c is made again on host4 and the quorum is three again.
    let for_host4 = token(h1, "host4", &[]);
    ok(h4, &join_args(&for_host4, h4, &a4));
    wait_healthy(h1, 12, Duration::from_secs(240));
    set.kill(2);
    set.cut(2);
    let lost = Instant::now();
    loop {
        let s = status(h1);
        let mons = s["ceph"]["mons"].as_array().cloned().unwrap_or_default();
        let on_host4 = mons
            .iter()
            .any(|m| m["name"] == "c" && m["address"].as_str().unwrap_or("").starts_with(&a4));
        if on_host4 && mons.len() == 3 && mons.iter().all(|m| m["in_quorum"] == true) {
            break;
        }
        assert!(
            lost.elapsed() < Duration::from_secs(180),
            "mon.c was not replaced on host4: {}",
            serde_json::to_string_pretty(&s["ceph"]["mons"]).unwrap()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "host3 lost -> mon.c in quorum on host4: {:.1} s (timeout 20 s)",
        lost.elapsed().as_secs_f64()
    );
    // The dead host is removed with --force, from a host that joined: its OSDs are purged without it.
    let rm = rk(
        h4,
        &["host", "rm", "host3", "--force", "--wait-secs", "300"],
    );
    assert!(rm.status.success(), "host rm --force: {}", text(&rm));
    assert!(
        String::from_utf8_lossy(&rm.stderr).contains("are lost"),
        "the risk is said: {}",
        text(&rm)
    );
    wait_healthy(h1, 9, Duration::from_secs(300));
    objects(h4, "read", "before-", 40);
    objects(h4, "read", "leaving-", 150);

    // No host is special: the first host dies for good. host2, the first of the others to have
    // joined, takes over the cluster-wide work once the lead has been silent for 30 s; a pool applied
    // there is made; host1 is removed from host2 and the cluster is whole on host2 and host4.
    assert_eq!(status(h1)["reconcile"]["leader"], "host1");
    let later = h2.data_dir().parent().unwrap().join("later.yaml");
    std::fs::write(
        &later,
        "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {name: later}\nspec: {failureDomain: host, replicated: {size: 3}}\n",
    )
    .unwrap();
    // A change of the spec is the leader's to make.
    bad_input(
        h2,
        &["apply", "-f", later.to_str().unwrap()],
        "run this on host1",
    );
    set.kill(0);
    set.cut(0);
    let lost = Instant::now();
    while status(h2)["reconcile"]["leader"] != "host2" {
        assert!(
            lost.elapsed() < Duration::from_secs(120),
            "host2 did not take over: {}",
            status(h2)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "host1 lost -> host2 leads: {:.1} s",
        lost.elapsed().as_secs_f64()
    );
    ok(h2, &["apply", "-f", later.to_str().unwrap()]);
    let _ = std::fs::remove_file(&later);
    let rm = rk(
        h2,
        &["host", "rm", "host1", "--force", "--wait-secs", "300"],
    );
    assert!(rm.status.success(), "host rm host1 --force: {}", text(&rm));
    let s = wait_healthy_with(h2, 6, 2, Duration::from_secs(300));
    assert_eq!(host_state(&s, "host1"), "", "host1 still listed: {s}");
    let member_ceph = |host: &TestHost, args: &[&str]| {
        let o = host
            .command("ceph")
            .args(["-c", host.data_dir().join("ceph.conf").to_str().unwrap()])
            .args(["--name", &user(host)])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "ceph {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let pools = member_ceph(h4, &["osd", "pool", "ls"]);
    assert!(pools.lines().any(|l| l == "later"), "{pools}");
    let tree = member_ceph(h4, &["osd", "tree"]);
    assert!(!tree.contains("host1"), "{tree}");
    objects(h4, "read", "before-", 40);
    objects(h2, "read", "leaving-", 150);
}

fn wait_healthy_with(
    host: &TestHost,
    osds: usize,
    mons: usize,
    limit: Duration,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let s = status(host);
        let c = &s["ceph"];
        let up = c["osds"]
            .as_array()
            .map_or(0, |o| o.iter().filter(|o| o["up"] == true).count());
        let total = c["osds"].as_array().map_or(0, Vec::len);
        let pgs = &c["pgs"];
        let clean = pgs["by_state"]["active+clean"].as_u64() == pgs["total"].as_u64();
        let in_quorum = c["mons"].as_array().cloned().unwrap_or_default();
        let quorum = in_quorum.len() == mons && in_quorum.iter().all(|m| m["in_quorum"] == true);
        if c["health"] == "HEALTH_OK" && up == osds && total == osds && clean && quorum {
            return s;
        }
        assert!(
            started.elapsed() < limit,
            "not healthy after {limit:?}: {}",
            serde_json::to_string_pretty(&s).unwrap()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
