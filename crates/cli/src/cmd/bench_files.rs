//! `rookery bench files`: a CephFS mount as `rookery fs mount` makes it (ceph-fuse) next to the raw
//! client library (libcephfs in this process) on the same filesystem, in one scratch subvolume: the
//! same work through both, one after the other.
//!
//! Both sides start the reads cold (the mount made again, a new library client); random I/O is
//! O_DIRECT on both (libcephfs honours the flag as the kernel does: no client cache).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rookery_ceph::cephfs::CephFsClient;
use rookery_files::{mount, subvolume};
use rookery_orchestrator::Layout;
use serde_json::{json, Value};

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct FilesBenchArgs {
    /// The filesystem (CephFilesystem); the only one when left out.
    #[arg(long)]
    pub fs: Option<String>,
    /// MiB written and read sequentially (1 MiB at a time) by each side.
    #[arg(long, default_value_t = 256)]
    pub size_mib: u64,
    /// Seconds of each random 4k workload.
    #[arg(long, default_value_t = 10)]
    pub runtime: u64,
    /// Small files created, stat'ed and removed by each side.
    #[arg(long, default_value_t = 10_000)]
    pub files: usize,
}

/// Requests in flight for the random workloads: one thread each, one request at a time.
const QUEUE_DEPTH: usize = 16;
const BLOCK: usize = 4096;
const SEQ_BLOCK: usize = 1 << 20;

/// One side of the comparison: the mounted directory or the library client, both rooted at the
/// subvolume.
enum Side<'a> {
    Mount(&'a Path),
    Raw(&'a CephFsClient),
}

/// A buffer aligned for O_DIRECT.
struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Aligned {
    fn new(len: usize, fill: u8) -> Result<Aligned> {
        let layout = std::alloc::Layout::from_size_align(len, 4096)?;
        // SAFETY: a non-zero size and a valid alignment.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            bail!("out of memory for a {len}-byte buffer");
        }
        // SAFETY: `ptr` holds `len` bytes.
        unsafe { std::ptr::write_bytes(ptr, fill, len) };
        Ok(Aligned { ptr, layout })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` holds `layout.size()` initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

impl Side<'_> {
    fn name(&self) -> &'static str {
        match self {
            Side::Mount(_) => "mount",
            Side::Raw(_) => "raw",
        }
    }

    /// Writes `mib` MiB to `name`, 1 MiB at a time, then fsync; MiB/s.
    fn seq_write(&self, name: &str, mib: u64) -> Result<f64> {
        let mut buf = Aligned::new(SEQ_BLOCK, 0x5a)?;
        let t = Instant::now();
        match self {
            Side::Mount(dir) => {
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(dir.join(name))?;
                for i in 0..mib {
                    f.write_all_at(buf.bytes(), i * SEQ_BLOCK as u64)?;
                }
                f.sync_all()?;
            }
            Side::Raw(c) => {
                let f = c.open(name, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644)?;
                for i in 0..mib {
                    f.write_at(buf.bytes(), i * SEQ_BLOCK as u64)?;
                }
                f.fsync()?;
            }
        }
        Ok(mib as f64 / t.elapsed().as_secs_f64())
    }

    /// Reads `name` whole, 1 MiB at a time; MiB/s.
    fn seq_read(&self, name: &str, mib: u64) -> Result<f64> {
        let mut buf = Aligned::new(SEQ_BLOCK, 0)?;
        let t = Instant::now();
        let mut total = 0u64;
        match self {
            Side::Mount(dir) => {
                let f = OpenOptions::new().read(true).open(dir.join(name))?;
                loop {
                    let n = f.read_at(buf.bytes(), total)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
            }
            Side::Raw(c) => {
                let f = c.open(name, libc::O_RDONLY, 0)?;
                loop {
                    let n = f.read_at(buf.bytes(), total)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
            }
        }
        if total != mib * SEQ_BLOCK as u64 {
            bail!(
                "{} read {total} bytes of {name}, not {mib} MiB",
                self.name()
            );
        }
        Ok(mib as f64 / t.elapsed().as_secs_f64())
    }

    /// 4 KiB requests at random offsets of `name` (the first `mib` MiB), O_DIRECT, [`QUEUE_DEPTH`] at a
    /// time, for `runtime`; IOPS.
    fn random(&self, name: &str, mib: u64, write: bool, runtime: Duration) -> Result<f64> {
        let blocks = mib * (SEQ_BLOCK / BLOCK) as u64;
        let done = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let flags = libc::O_DIRECT | if write { libc::O_RDWR } else { libc::O_RDONLY };
        let t = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..QUEUE_DEPTH)
                .map(|w| {
                    let (done, stop) = (&done, &stop);
                    s.spawn(move || -> Result<()> {
                        let mut buf = Aligned::new(BLOCK, w as u8)?;
                        let mut x = (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        let mut next = || {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            (x % blocks) * BLOCK as u64
                        };
                        match self {
                            Side::Mount(dir) => {
                                let f = OpenOptions::new()
                                    .read(true)
                                    .write(write)
                                    .custom_flags(libc::O_DIRECT)
                                    .open(dir.join(name))?;
                                while !stop.load(Ordering::Relaxed) {
                                    if write {
                                        f.write_all_at(buf.bytes(), next())?;
                                    } else {
                                        f.read_exact_at(buf.bytes(), next())?;
                                    }
                                    done.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Side::Raw(c) => {
                                let f = c.open(name, flags, 0)?;
                                while !stop.load(Ordering::Relaxed) {
                                    if write {
                                        f.write_at(buf.bytes(), next())?;
                                    } else if f.read_at(buf.bytes(), next())? != BLOCK {
                                        bail!("a short read of {name}");
                                    }
                                    done.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            std::thread::sleep(runtime);
            stop.store(true, Ordering::Relaxed);
            for w in workers {
                w.join().map_err(|_| anyhow!("a worker panicked"))??;
            }
            Ok(())
        })?;
        Ok(done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64())
    }

    /// Creates `count` empty files in a new directory, stats each, removes each; operations per second
    /// of each phase.
    fn metadata(&self, dir_name: &str, count: usize) -> Result<[f64; 3]> {
        let name = |i: usize| format!("{dir_name}/f{i:05}");
        let rate = |t: Instant| count as f64 / t.elapsed().as_secs_f64();
        match self {
            Side::Mount(dir) => {
                std::fs::create_dir(dir.join(dir_name))?;
                let t = Instant::now();
                for i in 0..count {
                    drop(
                        OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(dir.join(name(i)))?,
                    );
                }
                let create = rate(t);
                let t = Instant::now();
                for i in 0..count {
                    std::fs::metadata(dir.join(name(i)))?;
                }
                let stat = rate(t);
                let t = Instant::now();
                for i in 0..count {
                    std::fs::remove_file(dir.join(name(i)))?;
                }
                let unlink = rate(t);
                std::fs::remove_dir(dir.join(dir_name))?;
                Ok([create, stat, unlink])
            }
            Side::Raw(c) => {
                c.mkdir(dir_name, 0o755)?;
                let t = Instant::now();
                for i in 0..count {
                    drop(c.open(
                        &name(i),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                        0o644,
                    )?);
                }
                let create = rate(t);
                let t = Instant::now();
                for i in 0..count {
                    c.stat(&name(i))?;
                }
                let stat = rate(t);
                let t = Instant::now();
                for i in 0..count {
                    c.unlink(&name(i))?;
                }
                let unlink = rate(t);
                c.rmdir(dir_name)?;
                Ok([create, stat, unlink])
            }
        }
    }
}

fn row(ours: f64, raw: f64) -> Value {
    json!({"ours": ours, "raw": raw, "ratio": ours / raw.max(1e-9)})
}

/// The workloads, each through the mount, then the library. Before the reads both start cold: the
/// mount is made again and the library client is a new one, and each reads the file it wrote.
fn measure(
    mounted: &Path,
    remount: impl Fn() -> Result<()>,
    client: impl Fn() -> Result<CephFsClient>,
    args: &FilesBenchArgs,
) -> Result<Value> {
    let mib = args.size_mib.max(1);
    let runtime = Duration::from_secs(args.runtime.max(1));
    let ours = Side::Mount(mounted);
    let writer = client()?;
    let seq_write = row(
        ours.seq_write("mount.dat", mib)?,
        Side::Raw(&writer).seq_write("raw.dat", mib)?,
    );
    drop(writer);
    remount()?;
    let raw = client()?;
    let lib = Side::Raw(&raw);
    let seq_read = row(
        ours.seq_read("mount.dat", mib)?,
        lib.seq_read("raw.dat", mib)?,
    );
    let rand_read = row(
        ours.random("mount.dat", mib, false, runtime)?,
        lib.random("raw.dat", mib, false, runtime)?,
    );
    let rand_write = row(
        ours.random("mount.dat", mib, true, runtime)?,
        lib.random("raw.dat", mib, true, runtime)?,
    );
    let count = args.files.max(1);
    let [mc, ms, mu] = ours.metadata("meta-mount", count)?;
    let [rc, rs, ru] = lib.metadata("meta-raw", count)?;
    Ok(json!({
        "seq_write_1m_mib_s": seq_write,
        "seq_read_1m_mib_s": seq_read,
        "rand_read_4k_iops": rand_read,
        "rand_write_4k_iops": rand_write,
        "create_per_s": row(mc, rc),
        "stat_per_s": row(ms, rs),
        "unlink_per_s": row(mu, ru),
        "size_mib": mib,
        "runtime_secs": runtime.as_secs(),
        "files": count,
        "queue_depth": QUEUE_DEPTH,
    }))
}

pub fn run(layout: &Layout, args: &FilesBenchArgs, output: Output) -> CmdResult {
    let res = super::resources::saved_resources(layout)?;
    let names: Vec<&str> = res
        .filesystems
        .iter()
        .map(|f| f.metadata.name.as_str())
        .collect();
    let fs = match (&args.fs, names.as_slice()) {
        (Some(f), _) if names.contains(&f.as_str()) => f.clone(),
        (Some(f), _) => {
            return Err(Failure::bad_input(format!(
                "no filesystem {f} in this cluster (it has: {}); name one with --fs",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )))
        }
        (None, [only]) => only.to_string(),
        (None, []) => {
            return Err(Failure::bad_input(
                "this cluster has no filesystem; apply a CephFilesystem first (`rookery apply -f fs.yaml`)",
            ))
        }
        (None, many) => {
            return Err(Failure::bad_input(format!(
                "this cluster has {} filesystems ({}); name one with --fs",
                many.len(),
                many.join(", ")
            )))
        }
    };
    let rados = super::connect(layout)?;
    let scratch = format!("rookery-bench-{}", std::process::id());
    // Room for both sides' files and the small files, with a margin.
    let quota = (2 * args.size_mib.max(1) + 256) << 20;
    let info = subvolume::create(&rados, &fs, &scratch, quota)
        .with_context(|| format!("making scratch subvolume {scratch} in {fs}"))?;
    let dir = tempfile::Builder::new()
        .prefix("rookery-bench-files-")
        .tempdir()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let req = mount::MountRequest {
        fs: fs.clone(),
        subvolume: Some(scratch.clone()),
        path: dir.path().to_path_buf(),
        read_only: false,
        conf: layout.conf(),
        identity: rookery_ceph::Identity::admin(),
        data_dir: layout.root.clone(),
    };
    let mountpoint = dir.path().display().to_string();
    let measured = (|| -> Result<Value> {
        mount::mount(&rados, &req)?;
        measure(
            dir.path(),
            || {
                mount::unmount(&layout.root, &mountpoint)?;
                mount::mount(&rados, &req)?;
                Ok(())
            },
            || {
                CephFsClient::mount(&layout.conf(), "admin", &fs, &info.path, &[])
                    .context("mounting the scratch subvolume with libcephfs")
            },
            args,
        )
    })();
    let unmounted = mount::unmount(&layout.root, &mountpoint);
    let removed = subvolume::remove(&rados, &fs, &scratch);
    let measured = measured?;
    if let Err(e) = unmounted {
        tracing::warn!(error = %e, "unmounting the scratch subvolume");
    }
    removed.with_context(|| format!("removing scratch subvolume {scratch}"))?;
    let report = json!({"bench": "files", "fs": fs, "figures": measured});
    match output {
        Output::Json => println!("{report}"),
        Output::Text => print_text(&fs, &measured),
    }
    Ok(())
}

fn print_text(fs: &str, v: &Value) {
    let f = |x: &Value| x.as_f64().unwrap_or(0.0);
    println!(
        "files: filesystem {fs}, a ceph-fuse mount (as `rookery fs mount` makes it) next to libcephfs in one process"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>8}",
        "workload", "mount", "libcephfs", "ratio"
    );
    let rows = [
        (
            format!("seq write 1M, {} MiB (MiB/s)", f(&v["size_mib"])),
            "seq_write_1m_mib_s",
        ),
        ("seq read 1M (MiB/s)".to_string(), "seq_read_1m_mib_s"),
        (
            format!("randread 4k QD{QUEUE_DEPTH} direct (IOPS)"),
            "rand_read_4k_iops",
        ),
        (
            format!("randwrite 4k QD{QUEUE_DEPTH} direct (IOPS)"),
            "rand_write_4k_iops",
        ),
        (
            format!("create {} files (/s)", f(&v["files"])),
            "create_per_s",
        ),
        ("stat (/s)".to_string(), "stat_per_s"),
        ("unlink (/s)".to_string(), "unlink_per_s"),
    ];
    for (label, key) in rows {
        println!(
            "{label:<34} {:>10.0} {:>10.0} {:>7.2}x",
            f(&v[key]["ours"]),
            f(&v[key]["raw"]),
            f(&v[key]["ratio"])
        );
    }
}
