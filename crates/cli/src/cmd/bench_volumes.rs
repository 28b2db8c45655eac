//! `rookery bench volumes`: volume management and I/O, each next to its baseline measured in the same run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rookery_ceph::Rados;
use rookery_orchestrator::Layout;
use rookery_volumes::manage;
use serde_json::{json, Value};

use crate::{CmdResult, Output};

const POOL: &str = manage::DEFAULT_POOL;

fn program(name: &str, package: &str) -> Result<PathBuf> {
    rookery_ceph::tools::find_program(name)
        .ok_or_else(|| anyhow!("the benchmark needs `{name}`: apt-get install -y {package}"))
}

fn exec(program: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Create+delete of `count` volumes through the `rbd` CLI and through rookery (librbd in process).
fn management(rados: &Rados, conf: &Path, count: usize) -> Result<Value> {
    let rbd = program("rbd", "ceph-common")?;
    let conf_s = conf.display().to_string();
    let stamp = std::process::id();
    let (mut cli_create, mut cli_rm) = (Vec::new(), Vec::new());
    for i in 0..count {
        let t = Instant::now();
        exec(
            &rbd,
            &[
                "--conf",
                &conf_s,
                "create",
                "--size",
                "64M",
                &format!("{POOL}/bench-cli-{stamp}-{i}"),
            ],
        )?;
        cli_create.push(t.elapsed());
    }
    for i in 0..count {
        let t = Instant::now();
        exec(
            &rbd,
            &[
                "--conf",
                &conf_s,
                "rm",
                "--no-progress",
                &format!("{POOL}/bench-cli-{stamp}-{i}"),
            ],
        )?;
        cli_rm.push(t.elapsed());
    }
    let (mut our_create, mut our_rm) = (Vec::new(), Vec::new());
    for i in 0..count {
        let t = Instant::now();
        manage::create(
            rados,
            POOL,
            &format!("bench-ours-{stamp}-{i}"),
            64 << 20,
            "ext4",
        )?;
        our_create.push(t.elapsed());
    }
    for i in 0..count {
        let t = Instant::now();
        manage::remove(rados, POOL, &format!("bench-ours-{stamp}-{i}"))?;
        our_rm.push(t.elapsed());
    }
    // The same work as a provisioner under load does it: requests side by side on one connection.
    let t = Instant::now();
    super::bench::parallel(WORKERS, count, |i| {
        manage::create(
            rados,
            POOL,
            &format!("bench-par-{stamp}-{i}"),
            64 << 20,
            "ext4",
        )
    })?;
    let par_create = t.elapsed();
    let t = Instant::now();
    super::bench::parallel(WORKERS, count, |i| {
        manage::remove(rados, POOL, &format!("bench-par-{stamp}-{i}"))
    })?;
    let par_rm = t.elapsed();
    // The target is stated for 120 volumes.
    let t = Instant::now();
    super::bench::parallel(WORKERS, 120, |i| {
        manage::create(
            rados,
            POOL,
            &format!("bench-120-{stamp}-{i}"),
            64 << 20,
            "ext4",
        )
    })?;
    let create_120 = t.elapsed();
    super::bench::parallel(WORKERS, 120, |i| {
        manage::remove(rados, POOL, &format!("bench-120-{stamp}-{i}"))
    })?;
    purge_own_trash(rados, stamp)?;
    let total = |a: &[Duration], b: &[Duration]| a.iter().chain(b).sum::<Duration>().as_secs_f64();
    let cli_total = total(&cli_create, &cli_rm);
    let our_total = total(&our_create, &our_rm);
    let par_total = (par_create + par_rm).as_secs_f64();
    Ok(json!({
        "count": count,
        "cli": {"create_median_ms": median(cli_create).as_secs_f64() * 1e3, "rm_median_ms": median(cli_rm).as_secs_f64() * 1e3, "total_secs": cli_total},
        "ours_sequential": {"create_median_ms": median(our_create).as_secs_f64() * 1e3, "rm_median_ms": median(our_rm).as_secs_f64() * 1e3,
                            "total_secs": our_total, "ratio": cli_total / our_total},
        "ours_parallel": {"workers": WORKERS, "create_secs": par_create.as_secs_f64(), "rm_secs": par_rm.as_secs_f64(),
                          "total_secs": par_total, "ratio": cli_total / par_total},
        "create_120_secs": create_120.as_secs_f64(),
    }))
}

const WORKERS: usize = 32;

/// How long a fio run lasts: a time, or an amount of data (to compare with `rbd bench`, which knows only
/// amounts).
#[derive(Clone, Copy)]
enum Span<'a> {
    Secs(u64),
    Bytes(&'a str),
}

/// fio fallocates its file at the start of every run, even one laid out before. On ext4 that is a
/// metadata change, and the journal commit it brings 5 s later flushes the volume: the loop device
/// passes the commit's flush and FUA on as two FSYNCs and holds the volume's writes back behind them
/// (~150 ms in a 6 s run, measured with the fuse tracepoints). Raw librbd's runs have no counterpart.
const FIO_NO_FALLOCATE: &str = "--fallocate=none";

/// One fio run on a file in `dir`; returns (MiB/s, IOPS).
fn fio(fio: &Path, dir: &Path, rw: &str, bs: &str, span: Span) -> Result<(f64, f64)> {
    let file = dir.join("fio.dat");
    let span_args = match span {
        Span::Secs(s) => vec![format!("--runtime={s}"), "--time_based".to_string()],
        // The file is written once before the timed part (not timed), so the comparison with raw librbd
        // measures writes through the volume, not ext4 turning preallocated extents into written ones.
        Span::Bytes(b) => vec![format!("--io_size={b}"), "--overwrite=1".to_string()],
    };
    let mut args = vec![
        "--name=bench".to_string(),
        format!("--filename={}", file.display()),
        "--size=512M".into(),
        "--direct=1".into(),
        FIO_NO_FALLOCATE.into(),
        "--ioengine=libaio".into(),
        "--iodepth=16".into(),
        format!("--rw={rw}"),
        format!("--bs={bs}"),
        "--output-format=json".into(),
    ];
    args.extend(span_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = exec(fio, &args)?;
    let v: Value = serde_json::from_str(&out).context("parsing fio's output")?;
    let side = if rw.contains("read") { "read" } else { "write" };
    let job = &v["jobs"][0][side];
    Ok((
        job["bw"].as_f64().unwrap_or(0.0) / 1024.0,
        job["iops"].as_f64().unwrap_or(0.0),
    ))
}

/// Where a latency run of fio goes: a file in a mounted volume, or an image through fio's own librbd
/// engine (raw librbd, the baseline).
enum FioTarget<'a> {
    Dir(&'a Path),
    Image { conf: &'a Path, image: &'a str },
}

/// What a latency run measured: completion latency percentiles (µs) and throughput, per direction.
#[derive(Debug, Default, Clone, Copy)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    mib_s: f64,
}

/// One direct fio run of `rw` with `bs` at `iodepth` for `runtime` s: read and write figures.
fn fio_latency(
    fio: &Path,
    target: &FioTarget,
    rw: &str,
    bs: &str,
    iodepth: u32,
    runtime: u64,
) -> Result<(Latency, Latency)> {
    let mut args = vec![
        "--name=latency".to_string(),
        "--size=512M".into(),
        "--direct=1".into(),
        format!("--iodepth={iodepth}"),
        format!("--rw={rw}"),
        format!("--bs={bs}"),
        format!("--runtime={runtime}"),
        "--time_based".into(),
        "--output-format=json".into(),
    ];
    let mut cmd = Command::new(fio);
    match target {
        FioTarget::Dir(dir) => {
            args.push(format!("--filename={}", dir.join("fio.dat").display()));
            args.push("--ioengine=libaio".into());
            args.push(FIO_NO_FALLOCATE.into());
        }
        FioTarget::Image { conf, image } => {
            args.extend([
                "--ioengine=rbd".to_string(),
                "--clientname=admin".into(),
                format!("--pool={POOL}"),
                format!("--rbdname={image}"),
            ]);
            // fio's rbd engine reads the cluster's ceph.conf from CEPH_CONF.
            cmd.env("CEPH_CONF", conf);
        }
    }
    let out = cmd
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .context("running fio")?;
    if !out.status.success() {
        return Err(anyhow!(
            "fio {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("parsing fio's output")?;
    let side = |name: &str| {
        let job = &v["jobs"][0][name];
        let pct = |p: &str| job["clat_ns"]["percentile"][p].as_f64().unwrap_or(0.0) / 1000.0;
        Latency {
            p50_us: pct("50.000000"),
            p99_us: pct("99.000000"),
            mib_s: job["bw"].as_f64().unwrap_or(0.0) / 1024.0,
        }
    };
    Ok((side("read"), side("write")))
}

/// QD1 4k random read and write latency, and 64k random reads and writes mixed half and half at QD16.
struct LatencyFigures {
    qd1_read: Latency,
    qd1_write: Latency,
    mixed_64k_mib_s: f64,
}

fn latency_figures(fio: &Path, target: &FioTarget, runtime: u64) -> Result<LatencyFigures> {
    let (qd1_read, _) = fio_latency(fio, target, "randread", "4k", 1, runtime)?;
    let (_, qd1_write) = fio_latency(fio, target, "randwrite", "4k", 1, runtime)?;
    let (r, w) = fio_latency(fio, target, "randrw", "64k", 16, runtime)?;
    Ok(LatencyFigures {
        qd1_read,
        qd1_write,
        mixed_64k_mib_s: r.mib_s + w.mib_s,
    })
}

/// dd's own figure for 200 MiB of direct 1 MiB writes, in MB/s.
fn dd(dir: &Path) -> Result<f64> {
    let target = dir.join("dd.bin");
    let out = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", target.display()),
            "bs=1M",
            "count=200",
            "oflag=direct",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running dd")?;
    let text = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_file(&target);
    dd_rate(&text).ok_or_else(|| anyhow!("could not read dd's figure: {text}"))
}

/// The rate in dd's last line ("... copied, 1.4 s, 146 MB/s"), in MB/s.
pub(crate) fn dd_rate(text: &str) -> Option<f64> {
    let rate = text.trim_end().lines().last()?.rsplit(", ").next()?;
    let mut it = rate.split_whitespace();
    let n: f64 = it.next()?.parse().ok()?;
    Some(match it.next()? {
        "GB/s" => n * 1000.0,
        "kB/s" => n / 1000.0,
        "MB/s" => n,
        _ => return None,
    })
}

/// Raw librbd through `rbd bench`; returns (MiB/s, IOPS).
fn rbd_bench(
    conf: &Path,
    image: &str,
    io_type: &str,
    size: &str,
    pattern: &str,
    total: &str,
) -> Result<(f64, f64)> {
    let rbd = program("rbd", "ceph-common")?;
    let out = exec(
        &rbd,
        &[
            "--conf",
            &conf.display().to_string(),
            "bench",
            "--io-type",
            io_type,
            "--io-size",
            size,
            "--io-threads",
            "16",
            "--io-total",
            total,
            "--io-pattern",
            pattern,
            &format!("{POOL}/{image}"),
        ],
    )?;
    // Last line: "elapsed: 6   ops: 1024   ops/sec: 160.3   bytes/sec: 160 MiB/s"
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("ops/sec"))
        .ok_or_else(|| anyhow!("no summary from rbd bench: {out}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |k: &str| {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let iops = after("ops/sec:").unwrap_or(0.0);
    let mib = after("bytes/sec:")
        .map(|n| match words.last().copied() {
            Some("GiB/s") => n * 1024.0,
            Some("KiB/s") => n / 1024.0,
            Some("B/s") => n / 1048576.0,
            _ => n,
        })
        .unwrap_or(0.0);
    Ok((mib, iops))
}

/// Deletes the data of the volumes this run removed (the supervisor would purge them in the background a
/// little later), so that the I/O part does not share the OSDs with the purge: it ran during the first
/// side's fio runs and not during the second's.
fn purge_own_trash(rados: &Rados, stamp: u32) -> Result<()> {
    let stamp = stamp.to_string();
    let own = |name: &str| name.starts_with("bench-") && name.split('-').nth(2) == Some(&stamp);
    let trashed: Vec<_> = manage::trashed(rados)?
        .into_iter()
        .filter(|t| t.pool == POOL && own(&t.name))
        .collect();
    super::bench::parallel(WORKERS, trashed.len(), |i| {
        match manage::purge(rados, &trashed[i]) {
            // The supervisor's own purge got there first.
            Err(rookery_volumes::VolumeError::Ceph(e)) if e.errno() == Some(-libc::ENOENT) => {
                Ok(())
            }
            other => other,
        }
    })?;
    Ok(())
}

struct Workloads {
    seq_write_mib: f64,
    rand_write_iops: f64,
    rand_read_iops: f64,
    dd_mbs: f64,
}

/// fio's three workloads and dd on a mounted filesystem; `seq_write` given when it was measured already.
fn workloads(
    fio_exe: &Path,
    dir: &Path,
    runtime: u64,
    seq_write: Option<f64>,
) -> Result<Workloads> {
    let seq = match seq_write {
        Some(v) => v,
        None => fio(fio_exe, dir, "write", "1M", Span::Bytes(SEQ_BYTES))?.0,
    };
    let (_, rw) = fio(fio_exe, dir, "randwrite", "4k", Span::Secs(runtime))?;
    let (_, rr) = fio(fio_exe, dir, "randread", "4k", Span::Secs(runtime))?;
    let _ = std::fs::remove_file(dir.join("fio.dat"));
    let dd_mbs = dd(dir)?;
    Ok(Workloads {
        seq_write_mib: seq,
        rand_write_iops: rw,
        rand_read_iops: rr,
        dd_mbs,
    })
}

/// Who writes in each round of the sequential-write comparison with raw librbd, in order. On a new
/// cluster both sides speed up through the first ~10 GiB the OSDs take (measured: 340 -> 450 MiB/s for
/// either side within eight rounds), so a side that always goes first, or a statistic that picks the
/// latest round, favours the other side. In this order (ABBA BAAB) each side's positions add up to the
/// same, so a steady trend falls equally on both and their means compare.
const SEQ_ORDER: [Side; 8] = [
    Side::Ours,
    Side::Raw,
    Side::Raw,
    Side::Ours,
    Side::Raw,
    Side::Ours,
    Side::Ours,
    Side::Raw,
];
/// What each side writes per round: 2 GiB is 5-8 s here.
const SEQ_BYTES: &str = "2G";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Ours,
    Raw,
}

/// A side's figure: the mean of its rounds.
fn mean(rounds: &[f64]) -> f64 {
    if rounds.is_empty() {
        return 0.0;
    }
    rounds.iter().sum::<f64>() / rounds.len() as f64
}

/// The hand-made path from ceph-notes §3: rbd-fuse, `losetup --direct-io=on`, mkfs, mount.
struct PlainMount {
    fuse_dir: PathBuf,
    mnt: PathBuf,
    loop_dev: String,
    fuse: std::process::Child,
}

impl PlainMount {
    fn new(conf: &Path, image: &str, base: &Path) -> Result<PlainMount> {
        let fuse_dir = base.join("plain-fuse");
        let mnt = base.join("plain-mnt");
        std::fs::create_dir_all(&fuse_dir)?;
        std::fs::create_dir_all(&mnt)?;
        let exe = program("rbd-fuse", "rbd-fuse")?;
        let fuse = Command::new(exe)
            .args([
                fuse_dir.to_str().unwrap_or_default(),
                "-c",
                conf.to_str().unwrap_or_default(),
                "-p",
                POOL,
                "-r",
                image,
                "-f",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let file = fuse_dir.join(image);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !file.exists() {
            if Instant::now() > deadline {
                bail!("rbd-fuse did not serve {}", file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let losetup = program("losetup", "mount")?;
        let loop_dev = exec(
            &losetup,
            &[
                "--find",
                "--show",
                "--direct-io=on",
                file.to_str().unwrap_or_default(),
            ],
        )?
        .trim()
        .to_string();
        let mut plain = PlainMount {
            fuse_dir,
            mnt,
            loop_dev,
            fuse,
        };
        exec(
            &program("mkfs.ext4", "e2fsprogs")?,
            &["-q", "-E", "nodiscard", &plain.loop_dev],
        )?;
        exec(
            &program("mount", "mount")?,
            &[&plain.loop_dev, plain.mnt.to_str().unwrap_or_default()],
        )?;
        plain.fuse_dir = plain.fuse_dir.clone();
        Ok(plain)
    }
}

impl Drop for PlainMount {
    fn drop(&mut self) {
        let _ = rookery_volumes::mounts::unmount(&self.mnt);
        let _ = rookery_volumes::loopdev::detach(Path::new(&self.loop_dev));
        let _ = rookery_volumes::mounts::unmount(&self.fuse_dir);
        let _ = self.fuse.wait();
    }
}

/// What the I/O part leaves written at most, per copy: the raw image written whole by the sequential
/// rounds (2 GiB), and the 512 MiB fio file with ext4's metadata in each of the two mounted volumes.
const IO_WRITES: u64 = (2 << 30) + 2 * (640 << 20);
/// Room kept free beyond that: a pool past Ceph's nearfull ratio (85 %) slows down, and our FUSE server
/// holds writes back as the pool fills, which would skew the figures.
const IO_HEADROOM: f64 = 0.25;

/// Refuses to start when the pool cannot take what the I/O part writes: on a full pool fio's writes wait
/// for room that never comes, and the bench would hang instead of measuring.
fn room_refusal(pool: &str, left: u64) -> Option<String> {
    let need = IO_WRITES + (IO_WRITES as f64 * IO_HEADROOM) as u64;
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    (left < need).then(|| {
        format!(
            "pool {pool} can take {:.1} GiB more (after its copies); the I/O benchmark writes about {:.1} GiB and needs {:.1} GiB free. \
             Give the OSDs more room (a larger spec.storage.osdFiles.size on a new cluster, or another disk: `rookery disk add DEVICE`), \
             free space in the pool, or run `rookery bench volumes --only management`",
            gib(left),
            gib(IO_WRITES),
            gib(need)
        )
    })
}

fn io(rados: &Rados, layout: &Layout, runtime: u64) -> Result<Value> {
    let fio_exe = program("fio", "fio")?;
    let room = rookery_volumes::room::sample(rados, POOL)
        .context("asking Ceph for the pool's room")?
        .ok_or_else(|| {
            anyhow!("the cluster has no pool {POOL}; `rookery apply` a CephBlockPool named {POOL} first")
        })?;
    if let Some(reason) = room_refusal(POOL, room.left) {
        bail!(reason);
    }
    let conf = layout.conf();
    let data = &layout.root;
    let stamp = std::process::id();
    let base = tempfile::Builder::new()
        .prefix("rookery-bench-")
        .tempdir()?;
    let (ours_name, raw_name, plain_name) = (
        format!("bench-io-{stamp}"),
        format!("bench-raw-{stamp}"),
        format!("bench-plain-{stamp}"),
    );
    for n in [&ours_name, &raw_name, &plain_name] {
        manage::create(rados, POOL, n, 2 << 30, "ext4")?;
    }
    let result = (|| -> Result<Value> {
        let mnt = base.path().join("ours");
        std::fs::create_dir_all(&mnt)?;
        let req = rookery_volumes::MountRequest {
            pool: POOL.into(),
            volume: ours_name.clone(),
            path: mnt.clone(),
            read_only: false,
            conf: conf.clone(),
            identity: rookery_ceph::Identity::admin(),
            data_dir: data.clone(),
            raw: false,
        };
        rookery_volumes::mount(rados, &req)?;
        let ours = (|| -> Result<(Workloads, Vec<f64>, Vec<f64>, LatencyFigures)> {
            // Both sides overwrite data in every timed round: fio lays its file out before its first
            // round (untimed), and the raw image is written once here, so raw librbd's first round does
            // not create its objects.
            rbd_bench(&conf, &raw_name, "write", "4M", "seq", SEQ_BYTES)?;
            let (mut ours_seq, mut raw_seq) = (Vec::new(), Vec::new());
            for side in SEQ_ORDER {
                match side {
                    Side::Ours => {
                        ours_seq.push(fio(&fio_exe, &mnt, "write", "1M", Span::Bytes(SEQ_BYTES))?.0)
                    }
                    Side::Raw => raw_seq
                        .push(rbd_bench(&conf, &raw_name, "write", "1M", "seq", SEQ_BYTES)?.0),
                }
            }
            let work = workloads(&fio_exe, &mnt, runtime, Some(mean(&ours_seq)))?;
            let latency = latency_figures(&fio_exe, &FioTarget::Dir(&mnt), runtime)?;
            let _ = std::fs::remove_file(mnt.join("fio.dat"));
            Ok((work, ours_seq, raw_seq, latency))
        })();
        rookery_volumes::unmount(rados, data, mnt.to_str().unwrap_or_default())?;
        let (ours, ours_seq_rounds, raw_seq_rounds, ours_latency) = ours?;
        // The raw image was written whole by the sequential rounds, so its reads read data.
        let raw_latency = latency_figures(
            &fio_exe,
            &FioTarget::Image {
                conf: &conf,
                image: &raw_name,
            },
            runtime,
        )?;
        let raw_seq = mean(&raw_seq_rounds);

        let plain = {
            let p = PlainMount::new(&conf, &plain_name, base.path())?;
            workloads(&fio_exe, &p.mnt, runtime, None)?
        };

        let (_, raw_rw) = rbd_bench(&conf, &raw_name, "write", "4K", "rand", "48M")?;
        let (_, raw_rr) = rbd_bench(&conf, &raw_name, "read", "4K", "rand", "128M")?;

        Ok(json!({
            "seq_write_1m_mib_s": {"ours": ours.seq_write_mib, "raw_librbd": raw_seq, "plain_fuse_loop": plain.seq_write_mib,
                                   "ratio_vs_raw": ours.seq_write_mib / raw_seq,
                                   "rounds": {"ours": ours_seq_rounds, "raw_librbd": raw_seq_rounds}},
            "rand_write_4k_iops": {"ours": ours.rand_write_iops, "raw_librbd": raw_rw, "plain_fuse_loop": plain.rand_write_iops,
                                   "ratio_vs_plain": ours.rand_write_iops / plain.rand_write_iops},
            "rand_read_4k_iops": {"ours": ours.rand_read_iops, "raw_librbd": raw_rr, "plain_fuse_loop": plain.rand_read_iops,
                                  "ratio_vs_plain": ours.rand_read_iops / plain.rand_read_iops},
            "dd_200m_direct_mb_s": {"ours": ours.dd_mbs, "plain_fuse_loop": plain.dd_mbs},
            "qd1_read_4k_us": {"ours": {"p50": ours_latency.qd1_read.p50_us, "p99": ours_latency.qd1_read.p99_us},
                               "raw_librbd": {"p50": raw_latency.qd1_read.p50_us, "p99": raw_latency.qd1_read.p99_us},
                               "ratio_p50": ours_latency.qd1_read.p50_us / raw_latency.qd1_read.p50_us.max(1e-9)},
            "qd1_write_4k_us": {"ours": {"p50": ours_latency.qd1_write.p50_us, "p99": ours_latency.qd1_write.p99_us},
                                "raw_librbd": {"p50": raw_latency.qd1_write.p50_us, "p99": raw_latency.qd1_write.p99_us},
                                "ratio_p50": ours_latency.qd1_write.p50_us / raw_latency.qd1_write.p50_us.max(1e-9)},
            "mixed_64k_mib_s": {"ours": ours_latency.mixed_64k_mib_s, "raw_librbd": raw_latency.mixed_64k_mib_s,
                                "ratio_vs_raw": ours_latency.mixed_64k_mib_s / raw_latency.mixed_64k_mib_s.max(1e-9)},
            "runtime_secs": runtime,
        }))
    })();
    for n in [&ours_name, &raw_name, &plain_name] {
        let _ = manage::remove(rados, POOL, n);
    }
    result
}

/// One part of the volume benchmark.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Management,
    Io,
}

pub fn run(
    layout: &Layout,
    count: usize,
    runtime: u64,
    only: Option<Part>,
    output: Output,
) -> CmdResult {
    let rados = super::connect(layout)?;
    let mgmt = match only {
        Some(Part::Io) => Value::Null,
        _ => management(&rados, &layout.conf(), count)?,
    };
    let io = match only {
        Some(Part::Management) => Value::Null,
        _ => io(&rados, layout, runtime)?,
    };
    let report = json!({"bench": "volumes", "management": mgmt, "io": io});
    match output {
        Output::Json => println!("{report}"),
        Output::Text => {
            let m = &report["management"];
            let f = |v: &Value| v.as_f64().unwrap_or(0.0);
            if !m.is_null() {
                println!("volumes: create+delete of {count} volumes (64 MiB each); rookery deletes by trash move; its supervisor purges the data in the background");
                println!(
                    "  rbd CLI (base)         create {:.1} ms, rm {:.1} ms median; total {:.2} s",
                    f(&m["cli"]["create_median_ms"]),
                    f(&m["cli"]["rm_median_ms"]),
                    f(&m["cli"]["total_secs"])
                );
                println!(
                "  rookery, one by one    create {:.1} ms, rm {:.1} ms median; total {:.2} s   ratio {:.1}x",
                f(&m["ours_sequential"]["create_median_ms"]),
                f(&m["ours_sequential"]["rm_median_ms"]),
                f(&m["ours_sequential"]["total_secs"]),
                f(&m["ours_sequential"]["ratio"])
            );
                println!(
                "  rookery, {WORKERS} at a time  create {:.2} s, rm {:.2} s; total {:.2} s   ratio {:.1}x",
                f(&m["ours_parallel"]["create_secs"]),
                f(&m["ours_parallel"]["rm_secs"]),
                f(&m["ours_parallel"]["total_secs"]),
                f(&m["ours_parallel"]["ratio"])
            );
                println!(
                    "  120 volumes created by rookery ({WORKERS} at a time) in {:.2} s",
                    f(&m["create_120_secs"])
                );
            }
            let i = &report["io"];
            if !i.is_null() {
                println!("I/O ({runtime} s per fio run, iodepth 16, direct):");
                println!(
                    "{:<22} {:>12} {:>14} {:>16} {:>10}",
                    "workload", "ours", "raw librbd", "rbd-fuse+loop", "ratio"
                );
                let row = |name: &str, v: &Value, unit: &str, ratio_key: &str| {
                    println!(
                        "{:<22} {:>9.0} {unit} {:>11.0} {unit} {:>13.0} {unit} {:>9.2}x",
                        name,
                        v["ours"].as_f64().unwrap_or(0.0),
                        v["raw_librbd"].as_f64().unwrap_or(0.0),
                        v["plain_fuse_loop"].as_f64().unwrap_or(0.0),
                        v[ratio_key].as_f64().unwrap_or(0.0)
                    );
                };
                row(
                    "seq write 1M (MiB/s)",
                    &i["seq_write_1m_mib_s"],
                    "  ",
                    "ratio_vs_raw",
                );
                row(
                    "randwrite 4k (IOPS)",
                    &i["rand_write_4k_iops"],
                    "  ",
                    "ratio_vs_plain",
                );
                row(
                    "randread 4k (IOPS)",
                    &i["rand_read_4k_iops"],
                    "  ",
                    "ratio_vs_plain",
                );
                let rounds = |side: &str| {
                    i["seq_write_1m_mib_s"]["rounds"][side]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .map(|x| format!("{:.0}", x.as_f64().unwrap_or(0.0)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()
                };
                println!(
                    "  (seq write: {SEQ_BYTES} per round, mean of {} rounds each in ABBA BAAB order, ours {} vs raw librbd {} MiB/s;\n   the ratio is against raw librbd. Random ratios are against plain rbd-fuse + loop)",
                    SEQ_ORDER.len() / 2,
                    rounds("ours"),
                    rounds("raw_librbd")
                );
                let lat = |key: &str, side: &str, p: &str| i[key][side][p].as_f64().unwrap_or(0.0);
                for (name, key) in [
                    ("QD1 randread 4k", "qd1_read_4k_us"),
                    ("QD1 randwrite 4k", "qd1_write_4k_us"),
                ] {
                    println!(
                        "{name:<22} p50 {:>7.0} µs, p99 {:>7.0} µs; raw librbd p50 {:>7.0} µs, p99 {:>7.0} µs   p50 ratio {:.2}x",
                        lat(key, "ours", "p50"),
                        lat(key, "ours", "p99"),
                        lat(key, "raw_librbd", "p50"),
                        lat(key, "raw_librbd", "p99"),
                        i[key]["ratio_p50"].as_f64().unwrap_or(0.0)
                    );
                }
                println!(
                    "{:<22} {:>9.0} MiB/s; raw librbd {:.0} MiB/s   ratio {:.2}x  (random, half reads, QD16)",
                    "mixed 64k",
                    i["mixed_64k_mib_s"]["ours"].as_f64().unwrap_or(0.0),
                    i["mixed_64k_mib_s"]["raw_librbd"].as_f64().unwrap_or(0.0),
                    i["mixed_64k_mib_s"]["ratio_vs_raw"].as_f64().unwrap_or(0.0)
                );
                println!(
                    "dd 200 MiB oflag=direct: ours {:.0} MB/s, plain rbd-fuse + loop {:.0} MB/s",
                    i["dd_200m_direct_mb_s"]["ours"].as_f64().unwrap_or(0.0),
                    i["dd_200m_direct_mb_s"]["plain_fuse_loop"]
                        .as_f64()
                        .unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequential_rounds_cancel_a_steady_trend() {
        let positions = |side| {
            SEQ_ORDER
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == side)
                .map(|(i, _)| i as f64)
                .collect::<Vec<_>>()
        };
        let (ours, raw) = (positions(Side::Ours), positions(Side::Raw));
        assert_eq!(ours.len(), raw.len());
        // Throughput rising by 10 MiB/s a round reaches both sides' means alike.
        let rising = |p: &[f64]| mean(&p.iter().map(|i| 340.0 + 10.0 * i).collect::<Vec<_>>());
        assert_eq!(rising(&ours), rising(&raw));
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn the_io_part_needs_room_for_what_it_writes() {
        let gib = 1u64 << 30;
        let refusal = room_refusal("replicapool", gib).expect("1 GiB is too little");
        assert!(
            refusal.contains("pool replicapool can take 1.0 GiB"),
            "{refusal}"
        );
        assert!(refusal.contains("--only management"), "{refusal}");
        assert!(room_refusal("replicapool", 5 * gib).is_none());
        // Three 4 GiB OSD files with three copies hold ~3.6 GiB: refused, not a hang.
        assert!(room_refusal("replicapool", 3 * gib + gib / 2).is_some());
        // The default cluster (three 10 GiB OSD files, three copies) has ~9 GiB to give.
        assert!(room_refusal("replicapool", 9 * gib).is_none());
        assert!(room_refusal("replicapool", IO_WRITES).is_some());
    }
}
