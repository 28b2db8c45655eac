//! `rookery bench`: our native path next to the baseline people use today, measured in the same run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use rookery_ceph::commands::{cluster, pool};
use rookery_ceph::Rados;
use rookery_orchestrator::Layout;
use serde_json::json;

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: Bench,
}

#[derive(Subcommand)]
pub enum Bench {
    /// Read operations (cluster status, pool list): native librados vs `ceph` CLI execs.
    ///
    /// Example: rookery bench control-plane --count 50
    ControlPlane {
        /// Calls of each operation on each path.
        #[arg(long, default_value_t = 50)]
        count: usize,
    },
    /// Volumes: create+delete through librbd vs `rbd` CLI execs; fio on a mounted volume next to raw
    /// librbd (fio's rbd engine, `rbd bench` for sequential writes) in alternating rounds, and a
    /// hand-made rbd-fuse + loop mount.
    ///
    /// Example: rookery bench volumes --count 100 --runtime 10
    Volumes {
        /// Volumes created and deleted on each path.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Seconds: each side runs every time-based workload in 8 rounds of half this; each fio run on
        /// the rbd-fuse + loop mount runs this long.
        #[arg(long, default_value_t = 10)]
        runtime: u64,
        /// Run only one part.
        #[arg(long, value_enum)]
        only: Option<super::bench_volumes::Part>,
    },
    /// The CSI driver: CreateVolume one by one and all at once vs `rbd create` execs; stage+publish.
    ///
    /// Example: rookery bench csi --count 100
    Csi {
        /// Volumes created at once (and `rbd create` execs for the baseline).
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
    /// Listing many volumes: `volume list` (text and JSON), CSI ListVolumes (every page) and `get pools`
    /// next to `rbd ls -l` on the same pool, with the supervisor's memory; the volumes are made first
    /// and removed at the end.
    ///
    /// Example: rookery bench scale --count 10000
    Scale {
        /// Volumes made for the run (64 MiB each, thin).
        #[arg(long, default_value_t = 2000)]
        count: usize,
    },
    /// The web dashboard's volumes page with many volumes: its server time through the dashboard next
    /// to the same reads on the control socket, and the supervisor's memory before and after; the
    /// volumes are made first and removed at the end. Needs `rookery up --dashboard-port`.
    ///
    /// Example: rookery bench dashboard --count 1000
    Dashboard {
        /// Volumes made for the run (64 MiB each, thin).
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// CephFS: a mount as `rookery fs mount` makes it next to the raw client library (libcephfs in
    /// this process) on the same filesystem: sequential 1M write and read, 4k random read and write at
    /// QD16 (O_DIRECT), and create, stat and unlink of many small files; in a scratch subvolume that
    /// is removed at the end.
    ///
    /// Example: rookery bench files --fs myfs --size-mib 256 --runtime 10 --files 10000
    Files(super::bench_files::FilesBenchArgs),
    /// Object storage: PUT and GET of 4 KiB, 1 MiB and 64 MiB objects (p50, p99) and a listing of many
    /// keys through a store's gateway, next to the same requests to a hand-tuned radosgw that the run
    /// starts on the same zone (and stops at the end).
    ///
    /// Example: rookery bench objects --store my-store --count 300 --keys 10000
    Objects(super::bench_objects::ObjectsBenchArgs),
    /// Under Kubernetes: a claim until Bound (p50, p99), many claims at once, a pod with a new claim
    /// until Running, dd in a pod; next to claims bound to hostPath volumes made beforehand, the floor
    /// that Kubernetes itself costs. Needs deploy/csi/ applied (see deploy/csi/README.md).
    ///
    /// Example: rookery bench k8s --kubeconfig /tmp/rookery-k8s/kubeconfig --count 50 --burst 100
    K8s(super::bench_k8s::K8sBenchArgs),
    /// Under Kubernetes with deploy/operator/ applied: a CephCluster applied until Ready with HEALTH_OK,
    /// and the operator's and agents' memory while they build it and at rest; next to `rookery up` of the
    /// same spec on this host (OSD files), the floor without Kubernetes.
    ///
    /// Example: rookery bench operator --kubeconfig /tmp/rookery-k8s/kubeconfig -f cluster.yaml
    Operator(super::bench_operator::OperatorBenchArgs),
}

pub fn run(layout: &Layout, args: &BenchArgs, output: Output) -> CmdResult {
    match args.which {
        Bench::ControlPlane { count } => control_plane(layout, count.max(1), output),
        Bench::Volumes {
            count,
            runtime,
            only,
        } => super::bench_volumes::run(layout, count.max(1), runtime.max(1), only, output),
        Bench::Csi { count } => super::bench_csi::run(layout, count.max(5), output),
        Bench::Scale { count } => super::bench_scale::run(layout, count.max(1), output),
        Bench::Dashboard { count } => super::bench_dashboard::run(layout, count.max(1), output),
        Bench::Files(ref f) => super::bench_files::run(layout, f, output),
        Bench::Objects(ref o) => super::bench_objects::run(layout, o, output),
        Bench::K8s(ref k8s) => super::bench_k8s::run(k8s, output),
        Bench::Operator(ref op) => super::bench_operator::run(op, output),
    }
}

/// Runs `op(0..count)` on `workers` threads; the first error wins.
pub(crate) fn parallel<E: Into<anyhow::Error> + Send>(
    workers: usize,
    count: usize,
    op: impl Fn(usize) -> Result<(), E> + Sync,
) -> anyhow::Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= count {
                    break;
                }
                if let Err(e) = op(i) {
                    errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(e.into());
                    break;
                }
            });
        }
    });
    match errors
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .next()
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn control_plane(layout: &Layout, count: usize, output: Output) -> CmdResult {
    let conf = layout.conf();
    if !conf.exists() {
        return Err(Failure::bad_input(format!(
            "{} holds no cluster; run `rookery up` first",
            layout.root.display()
        )));
    }
    let ceph_cli = rookery_ceph::tools::find_program("ceph").ok_or_else(|| {
        Failure::from(anyhow!(
            "the baseline needs the `ceph` CLI: apt-get install -y ceph-common"
        ))
    })?;
    let connect_start = Instant::now();
    let rados = Rados::connect(&conf, "admin", Duration::from_secs(10))
        .context("connecting to the cluster")?;
    let connect = connect_start.elapsed();

    type Native = fn(&Rados) -> Result<(), rookery_ceph::CephError>;
    let ops: [(&str, Native, &[&str]); 2] = [
        ("status", |r| cluster::status(r).map(drop), &["status"]),
        (
            "pool list",
            |r| pool::ls(r).map(drop),
            &["osd", "pool", "ls"],
        ),
    ];
    let mut rows = Vec::new();
    let (mut all_native, mut all_cli) = (Vec::new(), Vec::new());
    for (name, call, words) in ops {
        let mut native = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            call(&rados).map_err(anyhow::Error::from)?;
            native.push(t.elapsed());
        }
        let mut cli = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            let out = Command::new(&ceph_cli)
                .arg("--conf")
                .arg(&conf)
                .args(words)
                .args(["-f", "json"])
                .stdin(Stdio::null())
                .output()
                .context("running the ceph CLI")?;
            if !out.status.success() {
                return Err(Failure::from(anyhow!(
                    "`ceph {}` failed: {}",
                    words.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            cli.push(t.elapsed());
        }
        all_native.extend(&native);
        all_cli.extend(&cli);
        rows.push((name, median(native), median(cli)));
    }
    rows.push(("all", median(all_native), median(all_cli)));
    match output {
        Output::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|(n, a, b)| json!({"operation": n, "native_median_ms": ms(*a), "cli_median_ms": ms(*b), "ratio": b.as_secs_f64() / a.as_secs_f64()}))
                .collect();
            println!(
                "{}",
                json!({"bench": "control-plane", "count": count, "connect_ms": ms(connect), "results": v})
            );
        }
        Output::Text => {
            println!("control-plane: {count} calls of each operation per path (librados connect, once: {:.1} ms)", ms(connect));
            println!(
                "{:<10} {:>16} {:>16} {:>9}",
                "operation", "ceph CLI (base)", "native (ours)", "ratio"
            );
            for (n, a, b) in &rows {
                println!(
                    "{:<10} {:>13.2} ms {:>13.3} ms {:>8.0}x",
                    n,
                    ms(*b),
                    ms(*a),
                    b.as_secs_f64() / a.as_secs_f64()
                );
            }
        }
    }
    Ok(())
}
