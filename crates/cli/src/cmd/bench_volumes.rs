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

/// Where a fio run goes: a file in a mounted volume, or the first 512 MiB of an image through fio's own
/// librbd engine (raw librbd, the baseline).
#[derive(Clone, Copy)]
enum FioTarget<'a> {
    Dir(&'a Path),
    Image { conf: &'a Path, image: &'a str },
}

/// The shape of a fio run's I/O.
#[derive(Clone, Copy)]
struct Job<'a> {
    rw: &'a str,
    bs: &'a str,
    iodepth: u32,
}

impl<'a> Job<'a> {
    const fn new(rw: &'a str, bs: &'a str, iodepth: u32) -> Job<'a> {
        Job { rw, bs, iodepth }
    }
}

/// What a fio run measured in one direction; latencies are completion latencies.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Direction {
    iops: f64,
    mib_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// One fio run: both directions, and how long it ran.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct FioRun {
    read: Direction,
    write: Direction,
    secs: f64,
}

fn fio_run(fio: &Path, target: FioTarget, job: Job, span: Span) -> Result<FioRun> {
    let mut args = vec![
        "--name=bench".to_string(),
        "--size=512M".into(),
        "--direct=1".into(),
        format!("--iodepth={}", job.iodepth),
        format!("--rw={}", job.rw),
        format!("--bs={}", job.bs),
        "--output-format=json".into(),
    ];
    match span {
        Span::Secs(s) => args.extend([format!("--runtime={s}"), "--time_based".into()]),
        // fio lays its file out before the timed part, so the comparison with raw librbd measures writes
        // through the volume, not ext4 turning preallocated extents into written ones.
        Span::Bytes(b) => args.extend([format!("--io_size={b}"), "--overwrite=1".into()]),
    }
    let mut cmd = Command::new(fio);
    match target {
        FioTarget::Dir(dir) => args.extend([
            format!("--filename={}", dir.join(FIO_FILE).display()),
            "--ioengine=libaio".into(),
            FIO_NO_FALLOCATE.into(),
        ]),
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
        bail!(
            "fio {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    fio_figures(&out.stdout)
}

/// The figures of fio's JSON report (`--output-format=json`) of one job.
fn fio_figures(report: &[u8]) -> Result<FioRun> {
    let v: Value = serde_json::from_slice(report).context("parsing fio's output")?;
    let job = &v["jobs"][0];
    if job.is_null() {
        bail!("fio reported no job");
    }
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let direction = |name: &str| {
        let d = &job[name];
        let pct = |p: &str| num(&d["clat_ns"]["percentile"][p]) / 1000.0;
        Direction {
            iops: num(&d["iops"]),
            mib_s: num(&d["bw"]) / 1024.0,
            p50_us: pct("50.000000"),
            p99_us: pct("99.000000"),
        }
    };
    Ok(FioRun {
        read: direction("read"),
        write: direction("write"),
        secs: num(&job["job_runtime"]) / 1000.0,
    })
}

/// fio's file in a mounted volume.
const FIO_FILE: &str = "fio.dat";

/// Waits until what a volume's cache still holds of fio's writes is on the OSDs (an fsync of fio's
/// file, which ext4 and the loop device pass down as a flush) and returns how long that took. Counted
/// in a round's figures, it charges our write-back cache for the writes it answered early; done between
/// rounds, it keeps the next round (either side's) from sharing the OSDs with them.
fn settle(dir: &Path) -> Result<f64> {
    let file = dir.join(FIO_FILE);
    let started = Instant::now();
    std::fs::File::open(&file)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {}", file.display()))?;
    Ok(started.elapsed().as_secs_f64())
}

/// A fio run on a mounted volume and the flush after it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Settled {
    run: FioRun,
    settle_secs: f64,
}

impl Settled {
    /// The share of the run's time and its flush that the run had: throughput times this is throughput
    /// to the OSDs.
    fn kept(&self) -> f64 {
        let whole = self.run.secs + self.settle_secs;
        if whole > 0.0 {
            self.run.secs / whole
        } else {
            0.0
        }
    }

    /// Operations per second, both directions, counting the flush.
    fn iops(&self) -> f64 {
        (self.run.read.iops + self.run.write.iops) * self.kept()
    }

    /// MiB per second, both directions, counting the flush.
    fn mib_s(&self) -> f64 {
        (self.run.read.mib_s + self.run.write.mib_s) * self.kept()
    }
}

/// fio on a mounted volume, then [`settle`].
fn fio_settled(fio: &Path, dir: &Path, job: Job, span: Span) -> Result<Settled> {
    let run = fio_run(fio, FioTarget::Dir(dir), job, span)?;
    Ok(Settled {
        run,
        settle_secs: settle(dir)?,
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

const SEQ_WRITE: Job = Job::new("write", "1M", 16);
const RAND_WRITE: Job = Job::new("randwrite", "4k", 16);
const RAND_READ: Job = Job::new("randread", "4k", 16);
const QD1_READ: Job = Job::new("randread", "4k", 1);
const QD1_WRITE: Job = Job::new("randwrite", "4k", 1);
/// Random 64 KiB reads and writes, half and half.
const MIXED_64K: Job = Job::new("randrw", "64k", 16);

/// The plain rbd-fuse + loop mount's figures: a reference beside ours (raw librbd is the baseline).
struct PlainFigures {
    seq_write_mib: f64,
    rand_write_iops: f64,
    rand_read_iops: f64,
    dd_mbs: f64,
}

fn plain_figures(fio_exe: &Path, dir: &Path, runtime: u64) -> Result<PlainFigures> {
    let seq = fio_settled(fio_exe, dir, SEQ_WRITE, Span::Bytes(SEQ_BYTES))?;
    let rand_write = fio_settled(fio_exe, dir, RAND_WRITE, Span::Secs(runtime))?;
    let rand_read = fio_settled(fio_exe, dir, RAND_READ, Span::Secs(runtime))?;
    let _ = std::fs::remove_file(dir.join(FIO_FILE));
    Ok(PlainFigures {
        seq_write_mib: seq.mib_s(),
        rand_write_iops: rand_write.iops(),
        rand_read_iops: rand_read.iops(),
        dd_mbs: dd(dir)?,
    })
}

/// Which side runs each round of a comparison with raw librbd, in order. On a new cluster both sides
/// speed up through the first ~10 GiB the OSDs take (measured: 340 -> 450 MiB/s for either side within
/// eight rounds of sequential writes), and this host's own load drifts over minutes; a side that always
/// goes first, or a statistic that picks the latest round, favours one side. In this order (ABBA BAAB
/// BAAB ABBA, the Thue-Morse sequence) each side's positions add up to the same, and so do their
/// squares, so a steady trend, or one that flattens out, falls equally on both and their means compare.
/// Eight rounds a side rather than four: a 5 s round of 4k random reads varies by +/-10 % here, which
/// left +/-5 % of noise in one run's ratio.
const ROUND_ORDER: [Side; 16] = {
    use Side::{Ours as A, Raw as B};
    [A, B, B, A, B, A, A, B, B, A, A, B, A, B, B, A]
};
/// [`ROUND_ORDER`] as the report prints it, ours as A: "ABBA BAAB ...".
fn round_order_label() -> String {
    ROUND_ORDER
        .chunks(4)
        .map(|four| {
            four.iter()
                .map(|side| match side {
                    Side::Ours => 'A',
                    Side::Raw => 'B',
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}
/// What each side writes per sequential round: 2 GiB is 5-8 s here.
const SEQ_BYTES: &str = "2G";
/// Untimed sequential rounds of each side before the timed ones. With one, ours' first timed round (the
/// first of all) ran below its other three in 9 bench runs out of 9 on new clusters, by 11 % on average
/// (422 against 475 MiB/s), while raw librbd's first was in line with its others (467 against 468): the
/// rise had not flattened yet. With three, hand-run on new clusters, ours' first round was in line.
const SEQ_WARM_UP_ROUNDS: usize = 3;

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

/// Each side's rounds of one workload, in the order they ran.
struct Rounds<T> {
    ours: Vec<T>,
    raw: Vec<T>,
}

/// Runs `round` for each side in [`ROUND_ORDER`].
fn balanced<T>(mut round: impl FnMut(Side) -> Result<T>) -> Result<Rounds<T>> {
    let mut rounds = Rounds {
        ours: Vec::new(),
        raw: Vec::new(),
    };
    for side in ROUND_ORDER {
        let figure = round(side)?;
        match side {
            Side::Ours => rounds.ours.push(figure),
            Side::Raw => rounds.raw.push(figure),
        }
    }
    Ok(rounds)
}

impl<T> Rounds<T> {
    fn figures(&self, figure: impl Fn(&T) -> f64) -> (Vec<f64>, Vec<f64>) {
        (
            self.ours.iter().map(&figure).collect(),
            self.raw.iter().map(&figure).collect(),
        )
    }

    /// Each side's mean of a throughput `figure`, ours against raw librbd's, and the rounds.
    fn throughput(&self, figure: impl Fn(&T) -> f64) -> Value {
        let (ours, raw) = self.figures(figure);
        let (o, r) = (mean(&ours), mean(&raw));
        json!({"ours": o, "raw_librbd": r, "ratio_vs_raw": o / r.max(1e-9),
               "rounds": {"ours": ours, "raw_librbd": raw}})
    }

    /// Each side's mean p50 and p99 of a latency `direction`, ours' p50 against raw librbd's.
    fn latency(&self, direction: impl Fn(&T) -> Direction) -> Value {
        let (ours50, raw50) = self.figures(|t| direction(t).p50_us);
        let (ours99, raw99) = self.figures(|t| direction(t).p99_us);
        json!({"ours": {"p50": mean(&ours50), "p99": mean(&ours99)},
               "raw_librbd": {"p50": mean(&raw50), "p99": mean(&raw99)},
               "ratio_p50": mean(&ours50) / mean(&raw50).max(1e-9),
               "rounds": {"ours_p50": ours50, "raw_librbd_p50": raw50}})
    }
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
        let raw = FioTarget::Image {
            conf: &conf,
            image: &raw_name,
        };
        let round_secs = (runtime / 2).max(1);
        let compared = (|| -> Result<Value> {
            // Both sides overwrite data in every timed round: the raw image is written whole here, so
            // raw librbd's rounds do not create its objects and its reads read data; fio lays its file
            // out before its first run. Then untimed rounds of each side: the OSDs of a new cluster
            // write faster through their first GiBs, a rise that flattens out, which the balanced order
            // cancels only while it is steady, and the first timed round is always ours.
            rbd_bench(&conf, &raw_name, "write", "4M", "seq", SEQ_BYTES)?;
            let seq_round = |side| match side {
                Side::Ours => {
                    Ok(fio_settled(&fio_exe, &mnt, SEQ_WRITE, Span::Bytes(SEQ_BYTES))?.mib_s())
                }
                Side::Raw => Ok(rbd_bench(&conf, &raw_name, "write", "1M", "seq", SEQ_BYTES)?.0),
            };
            for _ in 0..SEQ_WARM_UP_ROUNDS {
                seq_round(Side::Raw)?;
                seq_round(Side::Ours)?;
            }
            let seq = balanced(seq_round)?;
            // fio's own librbd engine writes through librbd's cache until a flush, which it never
            // sends: what it counts is on the OSDs, nothing to settle.
            let timed = |job: Job| {
                // An untimed round of each side first. What the previous workload left the OSDs to do
                // (deferred writes, compaction) falls on it, not on the first timed round, which is
                // always ours; and the OSDs hold both sides' object metadata before the timed rounds
                // (after random writes, ours' first read round ran 10-20 % below its others when
                // only raw librbd had warmed up).
                let round = |side, span| match side {
                    Side::Ours => fio_settled(&fio_exe, &mnt, job, span),
                    Side::Raw => Ok(Settled {
                        run: fio_run(&fio_exe, raw, job, span)?,
                        settle_secs: 0.0,
                    }),
                };
                let warm_up = Span::Secs((round_secs / 2).max(1));
                round(Side::Raw, warm_up)?;
                round(Side::Ours, warm_up)?;
                balanced(|side| round(side, Span::Secs(round_secs)))
            };
            let rand_write = timed(RAND_WRITE)?;
            let rand_read = timed(RAND_READ)?;
            let qd1_read = timed(QD1_READ)?;
            let qd1_write = timed(QD1_WRITE)?;
            let mixed = timed(MIXED_64K)?;
            let _ = std::fs::remove_file(mnt.join(FIO_FILE));
            Ok(json!({
                "seq_write_1m_mib_s": seq.throughput(|v| *v),
                "rand_write_4k_iops": rand_write.throughput(Settled::iops),
                "rand_read_4k_iops": rand_read.throughput(Settled::iops),
                "qd1_read_4k_us": qd1_read.latency(|s| s.run.read),
                "qd1_write_4k_us": qd1_write.latency(|s| s.run.write),
                "mixed_64k_mib_s": mixed.throughput(Settled::mib_s),
                "dd_200m_direct_mb_s": {"ours": dd(&mnt)?},
                "round_secs": round_secs,
                "rounds_per_side": ROUND_ORDER.len() / 2,
            }))
        })();
        rookery_volumes::unmount(rados, data, mnt.to_str().unwrap_or_default())?;
        let mut report = compared?;
        let plain = {
            let p = PlainMount::new(&conf, &plain_name, base.path())?;
            plain_figures(&fio_exe, &p.mnt, runtime)?
        };
        for (key, figure) in [
            ("seq_write_1m_mib_s", plain.seq_write_mib),
            ("rand_write_4k_iops", plain.rand_write_iops),
            ("rand_read_4k_iops", plain.rand_read_iops),
            ("dd_200m_direct_mb_s", plain.dd_mbs),
        ] {
            report[key]["plain_fuse_loop"] = json!(figure);
        }
        Ok(report)
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
                print_io(i);
            }
        }
    }
    Ok(())
}

/// The I/O part as a table: each workload's means, ours against raw librbd.
fn print_io(i: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!(
        "I/O, direct, QD16 unless said; {} rounds per side in {} order ({} s each, sequential writes {SEQ_BYTES} each); \
         means, ours through a mounted volume against raw librbd (fio's rbd engine; `rbd bench` for sequential writes):",
        f(&i["rounds_per_side"]),
        round_order_label(),
        f(&i["round_secs"])
    );
    println!(
        "{:<24} {:>10} {:>11} {:>7} {:>15}",
        "workload", "ours", "raw librbd", "ratio", "rbd-fuse+loop"
    );
    for (name, key) in [
        ("seq write 1M (MiB/s)", "seq_write_1m_mib_s"),
        ("randwrite 4k (IOPS)", "rand_write_4k_iops"),
        ("randread 4k (IOPS)", "rand_read_4k_iops"),
        ("mixed 64k r/w (MiB/s)", "mixed_64k_mib_s"),
    ] {
        let v = &i[key];
        let plain = match v["plain_fuse_loop"].as_f64() {
            Some(p) => format!("{p:.0}"),
            None => "-".into(),
        };
        println!(
            "{name:<24} {:>10.0} {:>11.0} {:>6.2}x {:>15}",
            f(&v["ours"]),
            f(&v["raw_librbd"]),
            f(&v["ratio_vs_raw"]),
            plain
        );
    }
    for (name, key) in [
        ("QD1 randread 4k", "qd1_read_4k_us"),
        ("QD1 randwrite 4k", "qd1_write_4k_us"),
    ] {
        let v = &i[key];
        println!(
            "{name:<24} p50 {:>5.0} µs, p99 {:>6.0} µs; raw librbd p50 {:>5.0} µs, p99 {:>6.0} µs   p50 ratio {:.2}x",
            f(&v["ours"]["p50"]),
            f(&v["ours"]["p99"]),
            f(&v["raw_librbd"]["p50"]),
            f(&v["raw_librbd"]["p99"]),
            f(&v["ratio_p50"])
        );
    }
    println!(
        "  (write figures count the flush after each round of ours: throughput to the OSDs, not into the cache)"
    );
    println!(
        "dd 200 MiB oflag=direct: ours {:.0} MB/s, plain rbd-fuse + loop {:.0} MB/s",
        f(&i["dd_200m_direct_mb_s"]["ours"]),
        f(&i["dd_200m_direct_mb_s"]["plain_fuse_loop"])
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_rounds_cancel_a_steady_trend() {
        let positions = |side| {
            ROUND_ORDER
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == side)
                .map(|(i, _)| i as f64)
                .collect::<Vec<_>>()
        };
        let (ours, raw) = (positions(Side::Ours), positions(Side::Raw));
        assert_eq!(ours.len(), raw.len());
        // Throughput rising by 10 MiB/s a round reaches both sides' means alike, and so does a rise
        // that flattens out.
        let trend =
            |p: &[f64], at: fn(f64) -> f64| mean(&p.iter().map(|&i| at(i)).collect::<Vec<_>>());
        let rising = |i| 340.0 + 10.0 * i;
        assert_eq!(trend(&ours, rising), trend(&raw, rising));
        let flattening = |i| 340.0 + 30.0 * i - i * i;
        assert_eq!(trend(&ours, flattening), trend(&raw, flattening));
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn the_report_names_the_round_order() {
        assert_eq!(round_order_label(), "ABBA BAAB BAAB ABBA");
    }

    #[test]
    fn balanced_rounds_give_each_side_its_own_rounds_in_order() {
        let mut n = 0.0;
        let rounds = balanced(|side| {
            n += 1.0;
            Ok((side, n))
        })
        .unwrap();
        assert!(rounds.ours.iter().all(|(s, _)| *s == Side::Ours));
        assert!(rounds.raw.iter().all(|(s, _)| *s == Side::Raw));
        let (ours, raw) = rounds.figures(|(_, n)| *n);
        assert_eq!(ours, [1.0, 4.0, 6.0, 7.0, 10.0, 11.0, 13.0, 16.0]);
        assert_eq!(raw, [2.0, 3.0, 5.0, 8.0, 9.0, 12.0, 14.0, 15.0]);
        let v = rounds.throughput(|(_, n)| *n);
        assert_eq!(v["ours"], 8.5);
        assert_eq!(v["ratio_vs_raw"], 1.0);
    }

    #[test]
    fn fio_figures_come_from_its_json_report() {
        let report = br#"{"jobs": [{"job_runtime": 5000,
            "read": {"iops": 1000.5, "bw": 4002, "clat_ns": {"percentile": {"50.000000": 250000, "99.000000": 900000}}},
            "write": {"iops": 0, "bw": 0, "clat_ns": {}}}]}"#;
        let run = fio_figures(report).unwrap();
        assert_eq!(run.secs, 5.0);
        assert_eq!(run.read.iops, 1000.5);
        assert!((run.read.mib_s - 4002.0 / 1024.0).abs() < 1e-9);
        assert_eq!(run.read.p50_us, 250.0);
        assert_eq!(run.read.p99_us, 900.0);
        assert_eq!(run.write, Direction::default());
        assert!(fio_figures(b"{\"jobs\": []}").is_err());
        assert!(fio_figures(b"fio: failed").is_err());
    }

    #[test]
    fn a_flush_after_the_run_counts_against_its_throughput() {
        let mut s = Settled {
            run: FioRun {
                write: Direction {
                    iops: 3000.0,
                    mib_s: 300.0,
                    ..Direction::default()
                },
                secs: 5.0,
                ..FioRun::default()
            },
            settle_secs: 0.0,
        };
        assert_eq!(s.iops(), 3000.0);
        s.settle_secs = 1.0;
        assert!((s.iops() - 2500.0).abs() < 1e-9);
        assert!((s.mib_s() - 250.0).abs() < 1e-9);
        assert_eq!(Settled::default().iops(), 0.0);
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
