//! End to end on real Ceph: one cluster, driven through the CLI through its whole life: create, write,
//! failures healed by the supervisor, supervisor loss, restart, data intact, purge.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{
    checksum, json, monitoring, processes_mentioning, promtool_check, pseudo_random, sample,
    scrape, scrape_socket_openmetrics, text, TestCluster,
};
use rookery_ceph::Rados;

const OBJECTS: usize = 100;

fn content(i: usize) -> Vec<u8> {
    // Sizes from 1 byte to ~200 KiB, contents unique per object.
    pseudo_random(i as u64 + 1, 1 + (i * 2039) % (200 * 1024))
}

fn kill9(pid: u32) {
    assert!(
        rookery_platform::proc::signal(pid, libc::SIGKILL),
        "kill -9 {pid}"
    );
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn cluster_lifecycle_on_real_ceph() {
    let c = TestCluster::new_dir();
    let heal = Duration::from_secs(180);

    // Create.
    let up = c.ok(&["up", "--mon-port", "0", "--metrics-port", "0", "-o", "json"]);
    let report = json(&up);
    assert_eq!(report["ready"], true, "{}", text(&up));
    eprintln!(
        "fresh `up` reached HEALTH_OK in {:.1} s",
        report["elapsed_secs"].as_f64().unwrap()
    );
    assert_eq!(report["ceph"]["health"], "HEALTH_OK");
    assert_eq!(report["ceph"]["osds"].as_array().unwrap().len(), 3);
    assert!(report["supervisor"]["rss_bytes"].as_u64().unwrap() > 0);

    // Metrics: on 127.0.0.1 only, well-formed for promtool, and saying what status says.
    let metrics = report["supervisor"]["metrics_address"]
        .as_str()
        .unwrap_or_else(|| panic!("no metrics address: {report:#}"))
        .to_string();
    assert!(metrics.starts_with("127.0.0.1:"), "{metrics}");
    let m = scrape(&metrics);
    promtool_check(&m);
    // Every metric the shipped alert rules and Grafana dashboard use is served (the CSI driver's own
    // are checked by csi.rs), and a real Prometheus loads those rules and scrapes this supervisor.
    monitoring::assert_served(
        &m,
        monitoring::metric_names()
            .iter()
            // A labelled family appears once it has a sample: no pass has failed here (the name
            // is checked by the orchestrator's unit test).
            .filter(|n| !n.starts_with("rookery_csi_") && *n != "rookery_reconcile_failures_total"),
    );
    let prometheus = monitoring::Prometheus::start(&metrics);
    assert_eq!(sample(&m, "rookery_ceph_up"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "rookery_ceph_osds_up"), Some(3.0), "{m}");
    assert_eq!(sample(&m, "rookery_ceph_osds_in"), Some(3.0), "{m}");
    assert_eq!(
        sample(&m, "rookery_ceph_health_status{status=\"HEALTH_OK\"}"),
        Some(1.0)
    );
    assert!(sample(&m, "rookery_ceph_raw_capacity_bytes").unwrap() > 0.0);
    assert!(sample(&m, "rookery_ceph_pgs{state=\"active+clean\"}").unwrap() > 0.0);
    assert!(
        sample(
            &m,
            "rookery_ceph_pool_max_avail_bytes{pool=\"replicapool\"}"
        )
        .unwrap()
            > 0.0
    );
    assert!(
        sample(&m, "rookery_reconcile_runs_total").unwrap() > 0.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "rookery_reconcile_runs_total"),
        sample(&m, "rookery_reconcile_duration_seconds_count")
    );
    assert_eq!(
        sample(
            &m,
            "rookery_daemon_state{daemon=\"osd.1\",state=\"running\"}"
        ),
        Some(1.0)
    );
    let om = scrape_socket_openmetrics(&c.dir.join("rookery.sock"));
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE rookery_reconcile_runs counter\n"),
        "{om}"
    );
    assert!(String::from_utf8_lossy(&c.ok(&["status"]).stdout)
        .contains(&format!("http://{metrics}/metrics")));

    // Secrets are private.
    assert_eq!(mode(&c.dir), 0o700);
    assert_eq!(
        mode(&c.dir.join("keyring/ceph.client.admin.keyring")),
        0o600
    );
    assert_eq!(mode(&c.dir.join("keyring/mon.keyring")), 0o600);
    assert_eq!(mode(&c.dir.join("osd/ceph-0/keyring")), 0o600);
    assert_eq!(mode(&c.dir.join("rookery.sock")), 0o600);

    // Re-running `up` on a running cluster changes nothing.
    let again = c.ok(&["up"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already running"),
        "{}",
        text(&again)
    );

    // Store data natively.
    let conf = c.dir.join("ceph.conf");
    let sums: Vec<u64> = {
        let rados = Rados::connect(&conf, "admin", Duration::from_secs(10)).unwrap();
        let io = rados.ioctx("replicapool").unwrap();
        (0..OBJECTS)
            .map(|i| {
                let data = content(i);
                io.write_full(&format!("obj-{i}"), &data).unwrap();
                checksum(&data)
            })
            .collect()
    };

    // kill -9 an OSD: the supervisor restarts it and the cluster heals.
    let osd = c.daemon_pid("osd.1");
    kill9(osd);
    std::thread::sleep(Duration::from_secs(2));
    let took = c.wait_ready(heal);
    eprintln!(
        "healthy again {:.1} s after kill -9 of osd.1",
        took.as_secs_f64() + 2.0
    );
    let s = c.status();
    let d = s["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "osd.1")
        .unwrap()
        .clone();
    assert!(d["restarts"].as_u64().unwrap() >= 1, "{d}");
    assert_ne!(d["pid"].as_u64().unwrap() as u32, osd);
    let m = scrape(&metrics);
    assert_eq!(
        sample(&m, "rookery_daemon_restarts_total{daemon=\"osd.1\"}"),
        d["restarts"].as_f64(),
        "{m}"
    );
    assert_eq!(sample(&m, "rookery_ceph_osds_up"), Some(3.0));

    // An OSD that cannot start (its block file moved away) is given up on after six quick deaths, its
    // output in the status; with the file back, `daemon retry` starts it and the cluster heals.
    let block = c.dir.join("osd/ceph-2.block");
    let aside = c.dir.join("osd/ceph-2.block.aside");
    std::fs::rename(&block, &aside).unwrap();
    kill9(c.daemon_pid("osd.2"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let osd2 = loop {
        let s = c.status();
        let d = s["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "osd.2")
            .cloned()
            .unwrap();
        if d["state"] == "gave-up" || Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(osd2["state"], "gave-up", "{osd2:#}");
    // The shipped alerts fire in a real Prometheus: the OSD down for over a minute, the daemon given up.
    let took = prometheus.wait_firing("RookeryOsdDown", "osd.2", Duration::from_secs(150));
    eprintln!(
        "RookeryOsdDown firing in Prometheus {:.0} s after osd.2 gave up",
        took.as_secs_f64()
    );
    prometheus.wait_firing("RookeryDaemonGaveUp", "osd.2", Duration::from_secs(10));
    assert!(!osd2["log_tail"].as_array().unwrap().is_empty(), "{osd2:#}");
    let said = text(&c.ok(&["status"]));
    assert!(said.contains("rookery daemon retry osd.2"), "{said}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        c.status()["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "osd.2")
            .unwrap()["restarts"],
        osd2["restarts"],
        "a daemon given up on is not restarted"
    );
    std::fs::rename(&aside, &block).unwrap();
    let retried = json(&c.ok(&["daemon", "retry", "osd.2", "-o", "json"]));
    assert_eq!(retried["daemon"], "osd.2", "{retried}");
    c.wait_ready(heal);
    prometheus.wait_resolved("RookeryOsdDown", "osd.2", Duration::from_secs(30));
    prometheus.wait_resolved("RookeryDaemonGaveUp", "osd.2", Duration::from_secs(30));
    drop(prometheus);
    let unknown = c.run(&["daemon", "retry", "osd.9"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("osd.9"), "{}", text(&unknown));

    // Logs stay under their cap while the OSDs log at debug level (about 6 MB/s each here): a file past
    // 64 MiB is kept once as .1 and emptied in place within 1 s.
    let conf_path = c.dir.join("ceph.conf");
    let ceph = |args: &[&str]| {
        let o = std::process::Command::new("ceph")
            .arg("--conf")
            .arg(&conf_path)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "ceph {args:?}: {}", text(&o));
    };
    for (option, level) in [
        ("debug_osd", "20/20"),
        ("debug_bluestore", "20/20"),
        ("debug_ms", "1/1"),
    ] {
        ceph(&["config", "set", "osd", option, level]);
    }
    let bench = std::process::Command::new("rados")
        .arg("--conf")
        .arg(&conf_path)
        .args([
            "-p",
            "replicapool",
            "bench",
            "25",
            "write",
            "-b",
            "4096",
            "-t",
            "16",
        ])
        .output()
        .unwrap();
    assert!(bench.status.success(), "{}", text(&bench));
    std::thread::sleep(Duration::from_secs(6));
    for option in ["debug_osd", "debug_bluestore", "debug_ms"] {
        ceph(&["config", "rm", "osd", option]);
    }
    let cap = rookery_platform::logs::LOG_CAP;
    let logs: Vec<(String, u64)> = std::fs::read_dir(c.dir.join("log"))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert!(
        logs.iter().any(|(n, _)| n.ends_with(".log.1")),
        "no log was rotated: {logs:?}"
    );
    for (name, len) in &logs {
        // What a daemon writes between two checks comes on top of the cap.
        assert!(*len < 2 * cap, "{name} is {len} bytes: {logs:?}");
    }

    // kill -9 the mon.
    let mon = c.daemon_pid("mon.a");
    kill9(mon);
    std::thread::sleep(Duration::from_secs(1));
    let took = c.wait_ready(heal);
    eprintln!(
        "healthy again {:.1} s after kill -9 of mon.a",
        took.as_secs_f64() + 1.0
    );
    assert_ne!(c.daemon_pid("mon.a"), mon, "mon.a was not restarted");

    // kill -9 the supervisor: daemons keep running; status still answers; `up` adopts them.
    let before = c.status();
    let sup = before["supervisor"]["pid"].as_u64().unwrap() as u32;
    let daemon_pids: Vec<u64> = before["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pid"].as_u64().unwrap())
        .collect();
    kill9(sup);
    std::thread::sleep(Duration::from_millis(500));
    let offline = c.status();
    assert!(offline["supervisor"].is_null(), "{offline:#}");
    assert_eq!(offline["ceph"]["health"], "HEALTH_OK", "{offline:#}");
    c.ok(&["up"]);
    let after = c.status();
    for d in after["daemons"].as_array().unwrap() {
        assert_eq!(d["adopted"], true, "{d}");
        assert!(
            daemon_pids.contains(&d["pid"].as_u64().unwrap()),
            "{d} was started anew, not adopted"
        );
    }
    assert_ne!(after["supervisor"]["pid"].as_u64().unwrap() as u32, sup);

    // A spec of another cluster is refused against this data dir, and nothing changes.
    let spec_before = std::fs::read(c.dir.join("spec.yaml")).unwrap();
    let other = c.dir.parent().unwrap().join("other.yaml");
    std::fs::write(
        &other,
        rookery_spec::DEFAULT_YAML.replace("name: rookery", "name: other"),
    )
    .unwrap();
    let refused = c.run(&["up", "-f", other.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("belongs to another cluster"),
        "{}",
        text(&refused)
    );
    assert_eq!(std::fs::read(c.dir.join("spec.yaml")).unwrap(), spec_before);

    // Down: nothing of the cluster runs; status still answers, from disk.
    c.ok(&["down"]);
    let left = processes_mentioning(&c.dir.display().to_string());
    assert!(left.is_empty(), "processes left after down: {left:?}");
    let stopped = c.status();
    assert!(stopped["supervisor"].is_null());
    assert!(
        stopped["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "stopped"),
        "{stopped:#}"
    );
    // The commands the supervisor carries out say it is down and how to start it, and change nothing.
    let spec_before = std::fs::read(c.dir.join("spec.yaml")).unwrap();
    let pool_file = c.dir.parent().unwrap().join("pool.yaml");
    std::fs::write(
        &pool_file,
        "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {name: later}\nspec: {replicated: {size: 1}}\n",
    )
    .unwrap();
    for args in [
        vec!["get", "pools"],
        vec!["volume", "create", "later", "--size", "64Mi"],
        vec!["volume", "list"],
        vec!["apply", "-f", pool_file.to_str().unwrap()],
    ] {
        let o = c.run(&args);
        assert_eq!(o.status.code(), Some(1), "rookery {args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("not running") && err.contains("rookery up"),
            "rookery {args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(c.dir.join("spec.yaml")).unwrap(), spec_before);

    // A cluster made by a newer Ceph than the one installed is not started: Ceph cannot go back.
    let state_file = c.dir.join("cluster.json");
    let state_text = std::fs::read_to_string(&state_file).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&state_text).unwrap();
    assert!(
        state["ceph_version"]["major"].as_u64().is_some(),
        "{state:#}"
    );
    state["ceph_version"]["major"] = 99.into();
    std::fs::write(&state_file, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    let refused = c.run(&["up"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("cannot go back"),
        "{}",
        text(&refused)
    );
    assert!(processes_mentioning(&c.dir.display().to_string()).is_empty());
    std::fs::write(&state_file, &state_text).unwrap();

    // Up again: the same cluster, all data back.
    let up = c.ok(&["up", "-o", "json"]);
    assert_eq!(json(&up)["fsid"], report["fsid"]);
    {
        let rados = Rados::connect(&conf, "admin", Duration::from_secs(10)).unwrap();
        let io = rados.ioctx("replicapool").unwrap();
        for (i, sum) in sums.iter().enumerate() {
            let data = io.read_all(&format!("obj-{i}")).unwrap();
            assert_eq!(checksum(&data), *sum, "obj-{i} changed");
            assert_eq!(data, content(i));
        }
    }

    // The smoke test and the control-plane benchmark run against it.
    c.ok(&["smoke-test", "--count", "10"]);
    let bench = json(&c.ok(&["bench", "control-plane", "--count", "5", "-o", "json"]));
    let all = bench["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "all")
        .unwrap()
        .clone();
    assert!(all["ratio"].as_f64().unwrap() > 1.0, "{bench:#}");

    // Purge needs the confirmation, and without it changes nothing.
    let refused = c.run(&["down", "--purge"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes-really-destroy-data"));
    assert!(c.dir.join("cluster.json").exists());
    c.wait_ready(heal);

    c.ok(&["down", "--purge", "--yes-really-destroy-data"]);
    assert!(!c.dir.exists(), "data dir left behind");
    let left = processes_mentioning(&c.dir.display().to_string());
    assert!(left.is_empty(), "processes left after purge: {left:?}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&c.dir.display().to_string()),
        "a mount was left behind"
    );
    for loopdev in std::fs::read_dir("/sys/block").unwrap().flatten() {
        if let Ok(backing) = std::fs::read_to_string(loopdev.path().join("loop/backing_file")) {
            assert!(
                !backing.contains(&c.dir.display().to_string()),
                "loop device left behind: {backing}"
            );
        }
    }
}

/// The fewest OSDs up in any OSD map seen every 0.1 s until `watching` turns false.
fn fewest_osds_up(
    c: &TestCluster,
    watching: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let conf = c.dir.join("ceph.conf");
    std::thread::spawn(move || {
        let r = Rados::connect(&conf, "admin", Duration::from_secs(10)).unwrap();
        let mut fewest = usize::MAX;
        while watching.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(d) = rookery_ceph::commands::osd::dump(&r) {
                fewest = fewest.min(d.osds.iter().filter(|o| o.up == 1).count());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        fewest
    })
}

/// What `osd.N` runs with for `option`, as the mgr reports it (`config show`).
fn running_value(r: &Rados, who: &str, option: &str) -> Option<String> {
    let shown: Vec<serde_json::Value> = r
        .command(
            rookery_ceph::Target::Mgr,
            serde_json::json!({"prefix": "config show", "who": who, "format": "json"}),
        )
        .unwrap();
    shown
        .iter()
        .find(|o| o["name"] == option)
        .and_then(|o| o["value"].as_str().map(String::from))
}

#[test]
fn ceph_config_reaches_running_daemons() {
    let c = TestCluster::new_dir();
    c.ok(&["up", "--mon-port", "0"]);
    let r = c.rados();
    let spec = |osd: &str| {
        let file = c.dir.parent().unwrap().join("config.yaml");
        std::fs::write(
            &file,
            format!(
                "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {{name: rookery}}\nspec:\n  storage: {{osdFiles: {{count: 3, size: 10Gi}}}}\n  cephConfig:\n    osd: {{{osd}}}\n"
            ),
        )
        .unwrap();
        file
    };

    // An option Ceph changes at run time: in every OSD, nothing restarted.
    let before = common::pids(&c);
    c.ok(&[
        "apply",
        "-f",
        spec("osd_max_backfills: \"4\"").to_str().unwrap(),
    ]);
    for id in 0..3 {
        let who = format!("osd.{id}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while running_value(&r, &who, "osd_max_backfills").as_deref() != Some("4") {
            assert!(
                Instant::now() < deadline,
                "{who} never ran with osd_max_backfills 4"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(
        common::pids(&c),
        before,
        "a run-time option restarted daemons"
    );

    // One that needs a restart: every OSD restarts, never two at once, the mon and mgr untouched.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fewest_up = fewest_osds_up(&c, watching.clone());
    let started = Instant::now();
    c.ok(&[
        "apply",
        "-f",
        spec("osd_max_backfills: \"4\", osd_op_num_shards: \"3\"")
            .to_str()
            .unwrap(),
    ]);
    eprintln!("rolling restart of 3 OSDs took {:?}", started.elapsed());
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let fewest = fewest_up.join().unwrap();
    assert!(
        fewest >= 2,
        "{fewest} OSDs were up at one point: two were down at once"
    );
    let after = common::pids(&c);
    for (name, pid) in &before {
        if name.starts_with("osd.") {
            assert_ne!(after.get(name), Some(pid), "{name} was not restarted");
            assert_eq!(
                running_value(&r, name, "osd_op_num_shards").as_deref(),
                Some("3"),
                "{name}"
            );
        } else {
            assert_eq!(after.get(name), Some(pid), "{name} was restarted");
        }
    }
    let s = c.status();
    assert_eq!(s["reconcile"]["converged"], true, "{s:#}");
    assert!(
        s["reconcile"]["recent"]
            .to_string()
            .contains("every daemon runs with the spec's config"),
        "{s:#}"
    );
}

/// `rookery` (the program at `exe`) with the test's PATH, where the Ceph programs are copies it can
/// replace as a package upgrade would.
fn rookery_with(
    exe: &std::path::Path,
    path: &str,
    dir: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn upgrades_keep_a_written_volume_going() {
    let c = TestCluster::new_dir();
    let work = c.dir.parent().unwrap().to_path_buf();
    let bin = work.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let install = |program: &str, from: &std::path::Path| {
        // A new file (new inode) moved over the old one, as dpkg does.
        let staged = bin.join(format!("{program}.new"));
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, bin.join(program)).unwrap();
    };
    for p in ["ceph-mon", "ceph-mgr", "ceph-osd"] {
        install(p, &std::path::Path::new("/usr/bin").join(p));
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let original = std::path::PathBuf::from(env!("CARGO_BIN_EXE_rookery"));
    let run = |exe: &std::path::Path, args: &[&str]| {
        let o = rookery_with(exe, &path, &c.dir, args);
        assert!(o.status.success(), "rookery {args:?}: {}", text(&o));
        o
    };
    run(&original, &["up", "--mon-port", "0"]);
    run(&original, &["volume", "create", "data", "--size", "256Mi"]);
    let mnt = work.join("data");
    std::fs::create_dir(&mnt).unwrap();
    run(
        &original,
        &["volume", "mount", "data", mnt.to_str().unwrap()],
    );
    let _mounted = common::Unmount(mnt.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = common::ring_writer(mnt.join("blocks.bin"), stop.clone());
    let before = common::pids(&c);
    let supervisor = c.status()["supervisor"]["pid"].as_u64().unwrap();

    // 1. A rebuilt rookery: `up` replaces the supervisor, every daemon keeps running.
    let rebuilt = bin.join("rookery");
    std::fs::copy(&original, &rebuilt).unwrap();
    let up = text(&run(&rebuilt, &["up"]));
    assert!(
        up.contains("replaced, with every daemon left running"),
        "{up}"
    );
    let s = c.status();
    assert_ne!(s["supervisor"]["pid"].as_u64(), Some(supervisor), "{s:#}");
    assert_eq!(
        common::pids(&c),
        before,
        "daemons were restarted with the supervisor"
    );
    assert_eq!(s["ready"], true, "{s:#}");

    // 2. New Ceph programs: every daemon restarts onto them, mons first, one at a time, never two
    // OSDs down, while the volume is written.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let fewest_up = fewest_osds_up(&c, watching.clone());
    let started = Instant::now();
    for p in ["ceph-mon", "ceph-mgr", "ceph-osd"] {
        install(p, &std::path::Path::new("/usr/bin").join(p));
    }
    loop {
        let now = common::pids(&c);
        let s = c.status();
        if before
            .iter()
            .all(|(name, pid)| now.get(name).is_some_and(|p| p != pid && *p != 0))
            && s["ready"] == true
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not every daemon restarted onto the new programs: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "rolling upgrade of every daemon took {:?}",
        started.elapsed()
    );
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let fewest = fewest_up.join().unwrap();
    assert!(fewest >= 2, "{fewest} OSDs were up at one point");
    let events = c.status()["reconcile"]["recent"].to_string();
    let order: Vec<usize> = ["restarting mon.a", "restarting mgr.a", "restarting osd.0"]
        .iter()
        .map(|e| {
            events
                .find(e)
                .unwrap_or_else(|| panic!("no `{e}` in {events}"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "not in upgrade order: {events}"
    );

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let blocks = common::verify_ring(&mnt.join("blocks.bin"), written.join().unwrap());
    eprintln!("the volume took {blocks} writes of 64 KiB through both upgrades without an error");
    run(&rebuilt, &["volume", "unmount", mnt.to_str().unwrap()]);
}
