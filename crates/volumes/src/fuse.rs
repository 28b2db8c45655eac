//! rookery's FUSE server: serves one RBD image as one file, `<dir>/<image>`, for a loop device to sit on.
//!
//! It speaks the kernel's FUSE protocol on /dev/fuse directly (no libfuse) and turns every read, write and
//! fsync into a librbd AIO request, answered from librbd's completion callback. So many requests are in
//! flight at once: the kernel sends the loop device's direct I/O as asynchronous requests (FUSE_ASYNC_DIO,
//! up to `MAX_BACKGROUND` of them, each up to 1 MiB with FUSE_MAX_PAGES), and the file is opened with
//! direct I/O and parallel direct writes, so no inode lock or page cache sits in between. rbd-fuse, which
//! this replaces, waits for each request in turn.
//!
//! The process is started detached by `mount` (`rookery fuse-serve ...`) and outlives the command that
//! started it. It exits once its FUSE mount is gone (the kernel then ends the connection), after librbd
//! has finished every request and the image is closed, which releases its exclusive lock.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rookery_ceph::rbd_aio::{AioImage, DataObjects, Done};
use rookery_ceph::Rados;

use crate::unflushed::{self, Unflushed};
use crate::{loopdev, room, VolumeError};

/// What `rookery fuse-serve` is asked to serve.
#[derive(Debug, Clone)]
pub struct ServeArgs {
    pub conf: PathBuf,
    /// Who the server acts as.
    pub identity: rookery_ceph::Identity,
    pub pool: String,
    pub image: String,
    /// Where to mount; the image appears as `<dir>/<image>`.
    pub dir: PathBuf,
    pub read_only: bool,
}

/// The largest request: 1 MiB, the most the kernel allows here (`fs.fuse.max_pages_limit` is 256 pages).
const MAX_WRITE: u32 = 1 << 20;
const MAX_PAGES: u16 = (MAX_WRITE / 4096) as u16;
/// Asynchronous requests the kernel keeps in flight: a loop device queues 128 requests; with 1 MiB each
/// this many keep 3 OSDs busy without piling up memory (one 1 MiB buffer each).
const MAX_BACKGROUND: u16 = 64;
/// The read buffer: a whole request (header, write header, 1 MiB of data), with room to spare.
const BUF_SIZE: usize = MAX_WRITE as usize + 4096;
/// Buffers kept for reuse (1 MiB each): a queue depth of 16 and the readers. More are allocated while
/// more requests are in flight (up to `MAX_BACKGROUND`) and freed afterwards, so a mount at rest holds
/// 24 MiB of them, not 68.
const POOL_KEEP: usize = 24;
/// librbd's write-back cache, as a disk's volatile write cache: a write is answered once librbd holds it,
/// and a flush (the kernel sends one for every fsync and ext4 journal commit, the loop device passes it on
/// as FSYNC) returns only when everything written before it is on the OSDs. Until the first flush the
/// cache writes through (librbd's `rbd_cache_writethrough_until_flush`), so a user of the raw device that
/// never flushes is not exposed. Reads do not use it: an object with nothing in the cache is read straight
/// from RADOS (see [`unflushed`]), the rest through librbd without keeping what was read (see `rbd_aio`);
/// the kernel's page cache above already keeps reads.
///
/// The cache starts writing out once 8 MiB are dirty and holds at most 48 MiB dirty or in flight (64 MiB
/// in all): it answers early and merges sequential writes into whole 4 MiB objects (a quarter of the
/// operations of 1 MiB writes) while keeping the OSDs busy. Measured on 3 OSDs and 2 cores, 1 MiB direct
/// writes alternating with `rbd bench` on new clusters whose OSDs keep large buffers (see the orchestrator's
/// `OSD_MALLOC`): 0.95-1.02x of raw librbd, against 0.91-0.95x when writing out from the first MiB
/// (~2 MiB operations). With the OSDs' default malloc, 4 MiB operations cost them page faults on every
/// write and the order reverses (0.84-0.86x against 0.85-0.93x); librbd's usual shape (write-out from 32
/// MiB) left the OSDs idle while the cache filled (0.75-0.84x), librbd's write-around default 0.77-0.84x.
const WRITE_CACHE: &[(&str, &str)] = &[
    ("rbd_cache", "true"),
    ("rbd_cache_policy", "writeback"),
    ("rbd_cache_size", "67108864"),
    ("rbd_cache_max_dirty", "50331648"),
    ("rbd_cache_target_dirty", "8388608"),
];
/// Threads reading requests: each only parses and submits, librbd's threads do the waiting.
const READERS: usize = 2;

/// librados' messenger threads (`ms_async_op_threads`, default 3) for one volume's server: one per two
/// cores, at most Ceph's default. On 2 cores every hand-off between threads is a context switch the OSDs
/// would have used: with one messenger thread instead of three, 4k random reads at QD16 through the mount
/// ran 6-7 % faster (12454 against 11615 IOPS, alternating 4 s rounds on one cluster), QD1 latency and
/// 1 MiB sequential writes unchanged.
fn messenger_threads(cores: usize) -> usize {
    (cores / 2).clamp(1, 3)
}
/// How long the kernel may cache names and attributes. Short, so a resize shows within a second.
const ATTR_VALID_SECS: u64 = 1;

const ROOT_ID: u64 = 1;
const FILE_ID: u64 = 2;

mod op {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const FLUSH: u32 = 25;
    pub const INIT: u32 = 26;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const ACCESS: u32 = 34;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const BATCH_FORGET: u32 = 42;
    pub const FALLOCATE: u32 = 43;
}

/// FUSE_INIT flags (include/uapi/linux/fuse.h).
mod init {
    pub const ASYNC_READ: u32 = 1 << 0;
    pub const BIG_WRITES: u32 = 1 << 5;
    pub const ASYNC_DIO: u32 = 1 << 15;
    pub const PARALLEL_DIROPS: u32 = 1 << 18;
    pub const MAX_PAGES: u32 = 1 << 22;
}

const FOPEN_DIRECT_IO: u32 = 1 << 0;
const FOPEN_PARALLEL_DIRECT_WRITES: u32 = 1 << 6;
const FATTR_SIZE: u32 = 1 << 3;
const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
const FALLOC_FL_ZERO_RANGE: u32 = 0x10;

/// The protocol version we speak: 7.31 has every field and flag used here, and the kernel adapts to it.
const PROTO_MAJOR: u32 = 7;
const PROTO_MINOR: u32 = 31;

const IN_HEADER: usize = 40;
const OUT_HEADER: usize = 16;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Little-endian reply bodies.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn zeros(mut self, n: usize) -> Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// The connection to the kernel plus what every request handler needs. Shared with librbd's callbacks.
struct Conn {
    dev: File,
    name: Vec<u8>,
    read_only: bool,
    uid: u32,
    gid: u32,
    pool: Mutex<Vec<Vec<u8>>>,
    inflight: AtomicUsize,
    /// Requests read so far; the memory keeper looks for a pause in it.
    served: AtomicU64,
    stopping: AtomicBool,
    /// Writes, flushes and zeroings not answered yet, with when they were handed to librbd.
    unanswered: Mutex<HashMap<u64, Instant>>,
    /// The pool took no writes when last looked at: writes and flushes are answered ENOSPC at once.
    pool_full: AtomicBool,
    /// Objects librbd's cache may still hold writes for, which reads must not skip it for.
    unflushed: Mutex<Unflushed>,
}

impl Conn {
    /// Records a write or flush handed to librbd.
    fn submitted(&self, unique: u64) {
        self.lock_unanswered().insert(unique, Instant::now());
    }

    /// Whether the caller answers `unique` (false: the full-pool watchdog answered it already).
    fn claim_answer(&self, unique: u64) -> bool {
        self.lock_unanswered().remove(&unique).is_some()
    }

    fn lock_unanswered(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.unanswered.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_unflushed(&self) -> std::sync::MutexGuard<'_, Unflushed> {
        self.unflushed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a write or zeroing of `len` bytes from `offset` about to be handed to librbd (nothing to
    /// record when reads never skip librbd).
    fn change_started(
        &self,
        objects: Option<&DataObjects>,
        offset: u64,
        len: u64,
    ) -> Option<unflushed::Change> {
        let objects = objects?.objects_of(offset, len);
        Some(
            self.lock_unflushed()
                .change_started(objects, Instant::now()),
        )
    }

    fn change_ended(&self, change: Option<unflushed::Change>) {
        if let Some(change) = change {
            self.lock_unflushed().change_ended(change);
        }
    }

    fn take_buf(&self) -> Vec<u8> {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| vec![0u8; BUF_SIZE])
    }

    fn give_buf(&self, buf: Vec<u8>) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_KEEP && buf.len() == BUF_SIZE {
            pool.push(buf);
        }
    }

    /// Sends one reply. A reply the kernel no longer wants (the request was interrupted, or the
    /// connection ended) is dropped: there is nobody left to tell.
    fn send(&self, bytes: &[u8]) {
        if let Err(e) = (&self.dev).write_all(bytes) {
            if !matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENODEV)) {
                tracing::warn!(error = %e, "writing a FUSE reply failed");
            }
        }
    }

    fn reply(&self, unique: u64, error: i32, body: &[u8]) {
        let len = (OUT_HEADER + if error == 0 { body.len() } else { 0 }) as u32;
        let mut msg = Out::default().u32(len).u32(error as u32).u64(unique).0;
        if error == 0 {
            msg.extend_from_slice(body);
        }
        self.send(&msg);
    }

    fn error(&self, unique: u64, errno: i32) {
        self.reply(unique, -errno, &[]);
    }

    fn attr(&self, out: Out, node: u64, size: u64) -> Out {
        let (mode, nlink) = if node == ROOT_ID {
            (libc::S_IFDIR | 0o755, 2)
        } else {
            (
                libc::S_IFREG | if self.read_only { 0o400 } else { 0o600 },
                1,
            )
        };
        out.u64(node)
            .u64(size)
            .u64(size.div_ceil(512))
            .zeros(3 * 8 + 3 * 4) // times: the image keeps none
            .u32(mode)
            .u32(nlink)
            .u32(self.uid)
            .u32(self.gid)
            .u32(0) // rdev
            .u32(4096) // blksize
            .u32(0) // flags
    }
}

/// Completion of an AIO request: answer the kernel, give the buffer back.
fn finish(conn: &Conn, unique: u64, rv: isize, body: impl FnOnce(usize) -> Vec<u8>) {
    if rv < 0 {
        conn.error(unique, i32::try_from(-rv).unwrap_or(libc::EIO));
    } else {
        conn.reply(unique, 0, &body(rv.unsigned_abs()));
    }
    conn.inflight.fetch_sub(1, Ordering::SeqCst);
}

/// Completion of a request that changes the image (write, flush, zeroing): answered unless the full-pool
/// watchdog answered it already.
fn finish_change(conn: &Conn, unique: u64, rv: isize, body: impl FnOnce(usize) -> Vec<u8>) {
    if conn.claim_answer(unique) {
        finish(conn, unique, rv, body);
    } else {
        conn.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Mounts `dir` as a FUSE file system served through `dev`.
fn mount_fuse(dev: &File, dir: &Path) -> Result<(), VolumeError> {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let data = format!(
        "fd={},rootmode=40000,user_id={uid},group_id={gid}",
        dev.as_raw_fd()
    );
    let c = |s: &[u8]| {
        std::ffi::CString::new(s).map_err(|_| VolumeError::Other("path contains a NUL byte".into()))
    };
    let (source, target, fstype, data) = (
        c(b"rookery")?,
        c(dir.as_os_str().as_encoded_bytes())?,
        c(b"fuse.rookery")?,
        c(data.as_bytes())?,
    );
    // SAFETY: all strings are NUL-terminated and live across the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr() as *const libc::c_void,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(VolumeError::Other(format!(
            "mounting FUSE at {}: {e}",
            dir.display()
        )));
    }
    Ok(())
}

/// Serves the image until its FUSE mount goes away. Runs in the `rookery fuse-serve` process.
pub fn serve(args: &ServeArgs) -> Result<(), VolumeError> {
    // Two malloc arenas instead of glibc's 8 per core: librbd's threads allocate and free 1 MiB buffers
    // all the time, and every arena keeps what it freed. Measured after a random-I/O burst: 260 MB
    // resident instead of 390-460 MB, at the same throughput.
    // No fastbins: librados allocates a buffer of a few KiB for every reply it receives, and glibc
    // consolidates all fastbins before any allocation of 1 KiB or more. Measured with perf during 4k
    // random reads at QD16: malloc took 12 % of this server's CPU (malloc_consolidate alone 2 %),
    // ~4.5 % without fastbins (the per-thread cache still serves small allocations).
    // SAFETY: mallopt only changes allocator tuning; called before librados starts its threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MXFAST, 0);
    }
    let key = args.identity.options()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = messenger_threads(cores).to_string();
    let options: Vec<(&str, &str)> = WRITE_CACHE
        .iter()
        .copied()
        .chain([("ms_async_op_threads", threads.as_str())])
        .chain(key.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let rados = Arc::new(Rados::connect_data_path(
        &args.conf,
        &args.identity.user,
        Duration::from_secs(30),
        &options,
    )?);
    let io = rados.ioctx(&args.pool)?;
    let image = AioImage::open(&io, &args.image)?;
    let objects = match image.data_objects(&rados) {
        Ok(Some(objects)) => Some(objects),
        Ok(None) => {
            tracing::info!(
                "every read goes through librbd (a clone, striped, journaled or old-format image)"
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not look up the image's data objects; every read goes through librbd");
            None
        }
    };
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/fuse")
        .map_err(|e| VolumeError::Other(format!("opening /dev/fuse: {e}")))?;
    std::fs::create_dir_all(&args.dir)?;
    mount_fuse(&dev, &args.dir)?;
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let conn = Arc::new(Conn {
        dev,
        name: args.image.as_bytes().to_vec(),
        read_only: args.read_only,
        uid,
        gid,
        pool: Mutex::new(Vec::new()),
        inflight: AtomicUsize::new(0),
        served: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        unanswered: Mutex::new(HashMap::new()),
        pool_full: AtomicBool::new(false),
        unflushed: Mutex::new(Unflushed::default()),
    });
    tracing::info!(pool = %args.pool, image = %args.image, dir = %args.dir.display(), "serving");
    std::thread::scope(|s| {
        let keeper = s.spawn(|| give_back_memory_at_rest(&conn));
        let watchdog = s.spawn(|| answer_writes_on_a_full_pool(&conn, &rados, &args.pool));
        let room_keeper = s.spawn(|| keep_the_file_system_inside_the_pool(&conn, &rados, args));
        let flusher = s.spawn(|| flush_when_writes_pause(&conn, &image));
        let readers: Vec<_> = (0..READERS)
            .map(|_| s.spawn(|| read_loop(&conn, &image, objects.as_ref())))
            .collect();
        for reader in readers {
            let _ = reader.join();
        }
        // The readers set `stopping` as they end. The unmount waits for this process to exit, so the
        // keeper is woken rather than left to finish its nap.
        keeper.thread().unpark();
        watchdog.thread().unpark();
        room_keeper.thread().unpark();
        flusher.thread().unpark();
    });
    // The mount is gone. Let librbd finish what is in flight (nothing, normally: the kernel waits for
    // its requests before it lets the mount go), then flush and close.
    while conn.inflight.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    image.flush(Box::new(move |_, rv| {
        let _ = tx.send(rv);
    }));
    if let Ok(rv) = rx.recv() {
        if rv < 0 {
            tracing::warn!(error = rv, "the last flush failed");
        }
    }
    drop(objects);
    drop(image);
    drop(io);
    drop(rados);
    tracing::info!("unmounted; image closed");
    Ok(())
}

/// How long a write may wait in librbd before the server asks whether its pool is full.
const STUCK: Duration = Duration::from_secs(5);

/// Whether the pool takes writes: Ceph marks a pool `full` at its quota (`full_quota`) or when its OSDs
/// are full.
fn pool_is_full(rados: &Rados, pool: &str) -> Option<bool> {
    let dump = rookery_ceph::commands::osd::dump(rados).ok()?;
    let p = dump.pools.iter().find(|p| p.pool_name == pool)?;
    Some(
        p.flags_names
            .split(',')
            .any(|f| f == "full" || f == "full_quota"),
    )
}

/// On a full pool librbd holds writes until the pool has room again, and the writer above the loop device
/// waits in the kernel where no signal reaches it. This watchdog bounds the wait: once a write has waited
/// [`STUCK`] and the pool is full, waiting writes, flushes and zeroings (a loop device's write-zeroes,
/// which ext4's lazy inode table init sends) are answered ENOSPC, and so are new ones
/// until the pool has room again. What librbd still holds is written when room returns (the kernel was
/// told those writes failed, so their blocks' contents are undefined until rewritten, as after any failed
/// write). Reads are served throughout.
fn answer_writes_on_a_full_pool(conn: &Conn, rados: &Rados, pool: &str) {
    let mut last_look = Instant::now();
    while !conn.stopping.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_secs(1));
        let full = conn.pool_full.load(Ordering::SeqCst);
        let oldest = conn.lock_unanswered().values().min().copied();
        let stuck = oldest.is_some_and(|t| t.elapsed() >= STUCK);
        // Looked at only when a write is stuck, or every 2 s while the pool is known full.
        if !(stuck || (full && last_look.elapsed() >= Duration::from_secs(2))) {
            continue;
        }
        last_look = Instant::now();
        let Some(now_full) = pool_is_full(rados, pool) else {
            continue;
        };
        if now_full != full {
            tracing::warn!(pool, full = now_full, "the pool's room for writes changed");
            conn.pool_full.store(now_full, Ordering::SeqCst);
        }
        if now_full {
            let waiting: Vec<u64> = conn.lock_unanswered().drain().map(|(u, _)| u).collect();
            for unique in waiting {
                conn.error(unique, libc::ENOSPC);
            }
        }
    }
}

/// The file system on this file (through its loop device) and what it holds back by itself.
struct KeptFs {
    mount: room::KeptMount,
    own_reserve: u64,
    /// What rookery last set the reserve to, if it changed it.
    set: Option<u64>,
}

/// The pool's room, asked on a thread of its own: the data path's connection waits for the mons as long
/// as it takes, and a server whose mons are gone must still be able to end.
fn sample_room(
    rados: &Arc<Rados>,
    pool: &str,
) -> std::sync::mpsc::Receiver<Option<room::PoolRoom>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (rados, pool) = (Arc::clone(rados), pool.to_string());
    std::thread::spawn(move || {
        let _ = tx.send(room::sample(&rados, &pool).ok().flatten());
    });
    rx
}

/// See [`room`]: while an ext4 or xfs file system is mounted on this file, its allocations are kept
/// inside what the pool can still take, so that a full pool never reaches the file system's journal. A
/// raw block volume is left to [`answer_writes_on_a_full_pool`].
fn keep_the_file_system_inside_the_pool(conn: &Conn, rados: &Arc<Rados>, args: &ServeArgs) {
    if args.read_only {
        return;
    }
    let file = args.dir.join(&args.image);
    let pool = args.pool.as_str();
    let started = Instant::now();
    let (mut loop_dev, mut kept): (Option<PathBuf>, Option<KeptFs>) = (None, None);
    let mut next_look = Instant::now();
    let mut sample: Option<(Instant, room::PoolRoom)> = None;
    let mut asked: Option<std::sync::mpsc::Receiver<Option<room::PoolRoom>>> = None;
    let mut next_sample = Instant::now();
    let mut growth = room::Growth::default();
    let mut warned = false;
    while !conn.stopping.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_secs(1));
        let now = Instant::now();
        // Still ours: the loop device on this file, the file system on the loop device.
        let ours = kept.as_ref().is_some_and(|k| {
            k.mount.sysfs.is_dir()
                && loopdev::backing_file(&k.mount.dev).as_deref() == Some(file.as_path())
        });
        let Some(fs) = kept.as_mut().filter(|_| ours) else {
            // Not mounted yet, or unmounted (and perhaps mounted again elsewhere). The file system is
            // usually mounted within seconds of the server starting: look every second at first.
            kept = None;
            if now >= next_look {
                let every = if started.elapsed() < Duration::from_secs(60) {
                    1
                } else {
                    10
                };
                next_look = now + Duration::from_secs(every);
                if loop_dev
                    .as_deref()
                    .and_then(loopdev::backing_file)
                    .as_deref()
                    != Some(&file)
                {
                    // The server's folder holds only the served file.
                    loop_dev = loopdev::attached_under(&args.dir).into_iter().next();
                }
                kept = loop_dev
                    .as_deref()
                    .and_then(room::mounted_on)
                    .and_then(|mount| {
                        let own_reserve = mount.open()?.reserve()?;
                        Some(KeptFs {
                            mount,
                            own_reserve,
                            set: None,
                        })
                    });
            }
            continue;
        };
        let Some(open) = fs.mount.open() else {
            kept = None;
            continue;
        };
        let Some(space) = open.space() else {
            continue;
        };
        growth.record(now, space.used_bytes());
        if asked.is_none() && now >= next_sample {
            asked = Some(sample_room(rados, pool));
        }
        if let Some(rx) = &asked {
            // Usually answered within milliseconds; a slow answer is picked up on a later pass.
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(r) => {
                    asked = None;
                    next_sample = now
                        + match r {
                            Some(r) => {
                                sample = Some((now, r));
                                room::next_sample_in(r, &space)
                            }
                            None => Duration::from_secs(5),
                        };
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => asked = None,
            }
        }
        // An old sample (the mons not answering) is not acted on: what is held back stays as it is.
        let Some((at, r)) = sample.filter(|(at, _)| at.elapsed() < room::SAMPLE_KEPT) else {
            continue;
        };
        let grown = growth.since(
            at.checked_sub(room::STATS_LAG).unwrap_or(at),
            space.used_bytes(),
        );
        let allowed = room::allowed_bytes(r, space.total_bytes(), grown);
        let want = room::clusters_to_reserve(&space, allowed, fs.own_reserve);
        if fs.set.unwrap_or(fs.own_reserve) == want {
            continue;
        }
        match open.set_reserve(want) {
            Ok(()) => {
                let before = fs.set.replace(want);
                if want == fs.own_reserve {
                    fs.set = None;
                    tracing::info!(pool, image = %args.image, "the pool has room again: the file system takes new data");
                } else if before.is_none() {
                    tracing::warn!(
                        pool,
                        image = %args.image,
                        allowed_mib = allowed >> 20,
                        "the pool is nearly full: the file system takes no more new data than the pool can hold (ENOSPC beyond)"
                    );
                }
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, mount = %fs.mount.mount_point.display(), "holding back the file system's free blocks failed: it is not kept inside its pool");
            }
            Err(_) => {}
        }
    }
}

/// How long the server must see no request before it hands freed memory back to the system.
const REST: Duration = Duration::from_secs(5);

/// Once the volume is at rest, frees the pooled request buffers and returns the heap memory freed by
/// librbd and by requests to the system.
/// glibc keeps freed memory in its per-thread arenas: after a burst of I/O a server held ~390 MB of which
/// ~210 MB was free (measured with malloc_trim from a debugger). Trimming only at rest costs nothing
/// under load.
fn give_back_memory_at_rest(conn: &Conn) {
    let (mut seen, mut since, mut trimmed) = (0, Instant::now(), true);
    while !conn.stopping.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_millis(500));
        let served = conn.served.load(Ordering::Relaxed);
        if served != seen {
            (seen, since, trimmed) = (served, Instant::now(), false);
            continue;
        }
        if since.elapsed() >= REST && !trimmed {
            conn.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
            // SAFETY: malloc_trim only releases free memory; it has no preconditions.
            unsafe { libc::malloc_trim(0) };
            trimmed = true;
        }
    }
}

/// Once writes pause, flushes what librbd's cache holds, so that reads of what was written go straight to
/// RADOS again. Only for a user that flushes: until the first flush the cache writes through, and a flush
/// of ours would end that.
fn flush_when_writes_pause(conn: &Arc<Conn>, image: &AioImage) {
    while !conn.stopping.load(Ordering::SeqCst) {
        std::thread::park_timeout(unflushed::IDLE_BEFORE_FLUSH / 4);
        let flush = {
            let mut unflushed = conn.lock_unflushed();
            if !unflushed.wants_flush(Instant::now()) {
                continue;
            }
            unflushed.flush_started(false)
        };
        conn.inflight.fetch_add(1, Ordering::SeqCst);
        let c = conn.clone();
        image.flush(Box::new(move |_, rv| {
            c.lock_unflushed().flush_ended(flush, rv >= 0);
            c.inflight.fetch_sub(1, Ordering::SeqCst);
        }));
    }
}

fn read_loop(conn: &Arc<Conn>, image: &AioImage, objects: Option<&DataObjects>) {
    let mut buf = conn.take_buf();
    while !conn.stopping.load(Ordering::SeqCst) {
        if buf.len() != BUF_SIZE {
            buf = conn.take_buf();
        }
        let n = match (&conn.dev).read(&mut buf) {
            Ok(n) => n,
            Err(e) => match e.raw_os_error() {
                // Interrupted, or a request that was withdrawn before we read it.
                Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::ENOENT) => continue,
                // The mount is gone: the connection has ended.
                Some(libc::ENODEV) => break,
                _ => {
                    tracing::error!(error = %e, "reading from /dev/fuse failed; stopping");
                    break;
                }
            },
        };
        // A request handler may keep the buffer (AIO in flight); a fresh one is taken on the next turn.
        if let Some(kept) = dispatch(conn, image, objects, buf, n) {
            buf = kept;
        } else {
            buf = Vec::new();
        }
    }
    conn.stopping.store(true, Ordering::SeqCst);
}

/// Handles one request of `n` bytes in `buf`. Returns the buffer if it is free again.
fn dispatch(
    conn: &Arc<Conn>,
    image: &AioImage,
    objects: Option<&DataObjects>,
    buf: Vec<u8>,
    n: usize,
) -> Option<Vec<u8>> {
    let req = &buf[..n.min(buf.len())];
    conn.served.fetch_add(1, Ordering::Relaxed);
    let (Some(opcode), Some(unique), Some(node)) =
        (u32_at(req, 4), u64_at(req, 8), u64_at(req, 16))
    else {
        tracing::warn!(bytes = n, "a request too short to read; ignored");
        return Some(buf);
    };
    let body = req.get(IN_HEADER..).unwrap_or(&[]);
    match opcode {
        op::INIT => {
            let minor = u32_at(body, 4).unwrap_or(0);
            let readahead = u32_at(body, 8).unwrap_or(0);
            let offered = u32_at(body, 12).unwrap_or(0);
            let wanted = init::ASYNC_READ
                | init::BIG_WRITES
                | init::ASYNC_DIO
                | init::PARALLEL_DIROPS
                | init::MAX_PAGES;
            let flags = offered & wanted;
            tracing::info!(
                kernel_minor = minor,
                offered = format_args!("{offered:#x}"),
                agreed = format_args!("{flags:#x}"),
                "FUSE connection initialised"
            );
            let out = Out::default()
                .u32(PROTO_MAJOR)
                .u32(minor.min(PROTO_MINOR))
                .u32(readahead)
                .u32(flags)
                .u16(MAX_BACKGROUND)
                .u16(MAX_BACKGROUND * 3 / 4) // congestion threshold
                .u32(MAX_WRITE)
                .u32(1) // time granularity (ns)
                .u16(MAX_PAGES)
                .u16(0) // map alignment
                .zeros(24); // flags2, max_stack_depth, padding: 64 bytes in all
            conn.reply(unique, 0, &out.0);
        }
        op::DESTROY => {
            conn.reply(unique, 0, &[]);
            conn.stopping.store(true, Ordering::SeqCst);
        }
        op::LOOKUP => {
            let name = body.split(|b| *b == 0).next().unwrap_or(&[]);
            if node != ROOT_ID || name != conn.name.as_slice() {
                conn.error(unique, libc::ENOENT);
            } else {
                match image.size() {
                    Ok(size) => {
                        let out = Out::default()
                            .u64(FILE_ID)
                            .u64(1) // generation
                            .u64(ATTR_VALID_SECS)
                            .u64(ATTR_VALID_SECS)
                            .u32(0)
                            .u32(0);
                        conn.reply(unique, 0, &conn.attr(out, FILE_ID, size).0);
                    }
                    Err(e) => conn.error(unique, errno_of(&e)),
                }
            }
        }
        op::FORGET | op::BATCH_FORGET | op::INTERRUPT => {} // no reply expected; nothing to cancel
        op::GETATTR | op::SETATTR => {
            if opcode == op::SETATTR
                && node == FILE_ID
                && u32_at(body, 0).unwrap_or(0) & FATTR_SIZE != 0
            {
                // The file is the image: its size changes only through `rookery volume resize`.
                if image.size().ok() != u64_at(body, 16) {
                    conn.error(unique, libc::EPERM);
                    return Some(buf);
                }
            }
            let size = match node {
                ROOT_ID => Ok(0),
                FILE_ID => image.size(),
                _ => {
                    conn.error(unique, libc::ENOENT);
                    return Some(buf);
                }
            };
            match size {
                Ok(size) => {
                    let out = Out::default().u64(ATTR_VALID_SECS).u32(0).u32(0);
                    conn.reply(unique, 0, &conn.attr(out, node, size).0);
                }
                Err(e) => conn.error(unique, errno_of(&e)),
            }
        }
        op::OPEN => {
            let flags = u32_at(body, 0).unwrap_or(0) as i32;
            if node != FILE_ID {
                conn.error(unique, libc::EISDIR);
            } else if conn.read_only && flags & libc::O_ACCMODE != libc::O_RDONLY {
                conn.error(unique, libc::EROFS);
            } else {
                let out = Out::default()
                    .u64(0)
                    .u32(FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES)
                    .u32(0);
                conn.reply(unique, 0, &out.0);
            }
        }
        op::OPENDIR => conn.reply(unique, 0, &Out::default().u64(0).u32(0).u32(0).0),
        op::READDIR => {
            let offset = u64_at(body, 8).unwrap_or(0);
            let size = u32_at(body, 16).unwrap_or(0) as usize;
            let entries: [(&[u8], u64, u32); 3] = [
                (b".", ROOT_ID, libc::DT_DIR as u32),
                (b"..", ROOT_ID, libc::DT_DIR as u32),
                (&conn.name, FILE_ID, libc::DT_REG as u32),
            ];
            let mut out = Out::default();
            for (i, (name, ino, kind)) in entries.iter().enumerate().skip(offset as usize) {
                let entry_len = (24 + name.len()).next_multiple_of(8);
                if out.0.len() + entry_len > size {
                    break;
                }
                out = out
                    .u64(*ino)
                    .u64(i as u64 + 1)
                    .u32(name.len() as u32)
                    .u32(*kind);
                out.0.extend_from_slice(name);
                out = out.zeros(entry_len - 24 - name.len());
            }
            conn.reply(unique, 0, &out.0);
        }
        // FLUSH comes with every close(2), which promises nothing about durability (fsync does). Passed on
        // as a librbd flush, the close that hands the file to the loop device ended librbd's
        // write-through-until-flush at every mount, so a raw block user that never flushes lost writes
        // the cache still held when the server died. The server flushes before it exits.
        op::FLUSH | op::RELEASE | op::RELEASEDIR | op::FSYNCDIR | op::ACCESS => {
            conn.reply(unique, 0, &[])
        }
        op::STATFS => {
            let blocks = image.size().unwrap_or(0) / 4096;
            let out = Out::default()
                .u64(blocks)
                .u64(0)
                .u64(0)
                .u64(1)
                .u64(0)
                .u32(4096) // bsize
                .u32(255) // namelen
                .u32(4096) // frsize
                .zeros(4 + 6 * 4);
            conn.reply(unique, 0, &out.0);
        }
        op::GETXATTR | op::LISTXATTR => conn.error(unique, libc::ENOSYS),
        op::READ => {
            let offset = u64_at(body, 8).unwrap_or(0);
            let want = u32_at(body, 16).unwrap_or(0) as usize;
            let size = match image.size() {
                Ok(s) => s,
                Err(e) => {
                    conn.error(unique, errno_of(&e));
                    return Some(buf);
                }
            };
            let len = want
                .min(BUF_SIZE - OUT_HEADER)
                .min(size.saturating_sub(offset) as usize);
            if len == 0 {
                conn.reply(unique, 0, &[]);
                return Some(buf);
            }
            // The request buffer becomes the reply: header first, then the data read into it.
            conn.inflight.fetch_add(1, Ordering::SeqCst);
            let c = conn.clone();
            let done: Done = Box::new(move |buf, rv| {
                match buf {
                    Some(mut buf) if rv >= 0 => {
                        let total = OUT_HEADER + rv.unsigned_abs().min(len);
                        let header = Out::default().u32(total as u32).u32(0).u64(unique).0;
                        buf[..OUT_HEADER].copy_from_slice(&header);
                        c.send(&buf[..total]);
                        c.give_buf(buf);
                    }
                    _ => c.error(unique, i32::try_from(-rv).unwrap_or(libc::EIO).max(1)),
                }
                c.inflight.fetch_sub(1, Ordering::SeqCst);
            });
            let range = OUT_HEADER..OUT_HEADER + len;
            match objects.filter(|o| {
                o.object_of(offset, len)
                    .is_some_and(|object| conn.lock_unflushed().is_flushed(object))
                    && image.objects_readable()
            }) {
                Some(objects) => objects.read(offset, buf, range, done),
                None => image.read(offset, buf, range, done),
            }
            return None;
        }
        op::WRITE => {
            if conn.read_only {
                conn.error(unique, libc::EROFS);
                return Some(buf);
            }
            let offset = u64_at(body, 8).unwrap_or(0);
            let len = u32_at(body, 16).unwrap_or(0) as usize;
            let start = IN_HEADER + 40;
            if start + len > n {
                conn.error(unique, libc::EINVAL);
                return Some(buf);
            }
            if conn.pool_full.load(Ordering::SeqCst) {
                conn.error(unique, libc::ENOSPC);
                return Some(buf);
            }
            conn.inflight.fetch_add(1, Ordering::SeqCst);
            conn.submitted(unique);
            let change = conn.change_started(objects, offset, len as u64);
            let c = conn.clone();
            image.write(
                offset,
                buf,
                start..start + len,
                Box::new(move |buf, rv| {
                    c.change_ended(change);
                    finish_change(&c, unique, rv, |_| Out::default().u32(len as u32).u32(0).0);
                    if let Some(buf) = buf {
                        c.give_buf(buf);
                    }
                }),
            );
            return None;
        }
        op::FSYNC => {
            if conn.pool_full.load(Ordering::SeqCst) {
                conn.error(unique, libc::ENOSPC);
                return Some(buf);
            }
            conn.inflight.fetch_add(1, Ordering::SeqCst);
            conn.submitted(unique);
            let flush = conn.lock_unflushed().flush_started(true);
            let c = conn.clone();
            image.flush(Box::new(move |_, rv| {
                c.lock_unflushed().flush_ended(flush, rv >= 0);
                finish_change(&c, unique, rv, |_| Vec::new())
            }));
        }
        op::FALLOCATE => {
            let offset = u64_at(body, 8).unwrap_or(0);
            let len = u64_at(body, 16).unwrap_or(0);
            let mode = u32_at(body, 24).unwrap_or(0);
            let zeroing = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) != 0;
            if conn.read_only {
                conn.error(unique, libc::EROFS);
            } else if !zeroing
                || mode & FALLOC_FL_KEEP_SIZE == 0
                || mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) != 0
            {
                // Preallocation cannot be promised by a thin image, and the size is the image's.
                conn.error(unique, libc::EOPNOTSUPP);
            } else if conn.pool_full.load(Ordering::SeqCst) {
                conn.error(unique, libc::ENOSPC);
            } else {
                // Punching a hole must read back as zeroes (a loop device's write-zeroes becomes one),
                // which librbd's write-zeroes guarantees and its discard does not for partial objects.
                let size = image.size().unwrap_or(0);
                let len = len.min(size.saturating_sub(offset));
                conn.inflight.fetch_add(1, Ordering::SeqCst);
                conn.submitted(unique);
                let change = conn.change_started(objects, offset, len);
                let c = conn.clone();
                image.write_zeroes(
                    offset,
                    usize::try_from(len).unwrap_or(usize::MAX),
                    Box::new(move |_, rv| {
                        c.change_ended(change);
                        finish_change(&c, unique, rv, |_| Vec::new())
                    }),
                );
            }
        }
        other => {
            tracing::debug!(opcode = other, "unsupported FUSE request");
            conn.error(unique, libc::ENOSYS);
        }
    }
    Some(buf)
}

fn errno_of(e: &rookery_ceph::CephError) -> i32 {
    e.errno()
        .map(|n| -n)
        .filter(|n| *n > 0)
        .unwrap_or(libc::EIO)
}

/// Whether `cmdline` is a rookery FUSE server (or an rbd-fuse from before it) serving `dir`, or any dir.
pub fn is_server(cmdline: &[String], dir: Option<&Path>) -> bool {
    let ours = cmdline.iter().any(|a| a == "fuse-serve")
        || cmdline.first().is_some_and(|p| p.ends_with("rbd-fuse"));
    ours && dir.is_none_or(|d| cmdline.iter().any(|a| Path::new(a) == d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_have_the_kernels_layout() {
        let conn_attr_len = {
            let out = Out::default();
            // fuse_attr: 6 u64 + 10 u32.
            let dummy = Conn {
                dev: match File::open("/dev/null") {
                    Ok(f) => f,
                    Err(_) => return,
                },
                name: b"img".to_vec(),
                read_only: false,
                uid: 0,
                gid: 0,
                pool: Mutex::new(Vec::new()),
                inflight: AtomicUsize::new(0),
                served: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
                unanswered: Mutex::new(HashMap::new()),
                pool_full: AtomicBool::new(false),
                unflushed: Mutex::new(Unflushed::default()),
            };
            dummy.attr(out, FILE_ID, 1 << 20).0.len()
        };
        assert_eq!(conn_attr_len, 88);
    }

    #[test]
    fn messenger_threads_follow_the_cores_up_to_cephs_default() {
        assert_eq!(messenger_threads(1), 1);
        assert_eq!(messenger_threads(2), 1);
        assert_eq!(messenger_threads(4), 2);
        assert_eq!(messenger_threads(64), 3);
    }

    #[test]
    fn servers_are_recognised_by_command_line() {
        let ours: Vec<String> = ["/x/rookery", "fuse-serve", "--pool", "p", "/d/f1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_server(&ours, None));
        assert!(is_server(&ours, Some(Path::new("/d/f1"))));
        assert!(!is_server(&ours, Some(Path::new("/d/f2"))));
        let other: Vec<String> = ["/x/rookery", "volume", "mount", "/d/f1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(!is_server(&other, None));
    }
}
