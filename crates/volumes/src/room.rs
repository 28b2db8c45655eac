//! Keeps a volume's file system (ext4 or xfs) inside what its pool can still take.
//!
//! A journaling file system cannot survive a full pool: the first journal write the pool refuses aborts
//! the journal (xfs shuts down) and the file system stays read-only until it is mounted again, and
//! holding that write instead leaves every `fsync` waiting where no signal reaches it. So the pool must
//! never fill under a file system. The FUSE server samples its pool's room (`df`, and `osd pool
//! get-quota` for what the quota is held to) and holds back the file system's free blocks beyond that
//! room less a margin: ext4's `reserved_clusters` (sysfs: blocks no allocation may take, root's
//! included), xfs's reserve pool (`XFS_IOC_SET_RESBLKS`). Writers then get ENOSPC from the file system at
//! once, stay killable, and the pool keeps room for the journal; `df` inside the volume shows the room
//! that is really left. When the quota is raised or OSDs are added, the next sample gives the blocks
//! back and writing goes on on the same mount.
//!
//! The pool's statistics lag behind writes by a few seconds, so what the file system allocated in the
//! last [`STATS_LAG`] is subtracted from the sampled room as well.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rookery_ceph::commands::pool::PoolQuota;
use rookery_ceph::types::DfPoolStats;

/// How far the pool's statistics (OSD → mgr → mon) may trail the writes they count: rookery's clusters
/// report them every second at each step (`mgr_stats_period`, `mon_mgr_digest_period`), so ~2 s, with
/// room for a busy mgr. (On a cluster with Ceph's 5 s defaults only the margin covers the rest.) Counting
/// more than the real lag stops writers early by the excess.
pub const STATS_LAG: Duration = Duration::from_secs(5);

/// A sample older than this is not acted on (the growth history is kept for a minute).
pub const SAMPLE_KEPT: Duration = Duration::from_secs(45);

/// What a pool can still take, from one `df` sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRoom {
    /// Bytes the pool can still take before it is full (at its quota, or its OSDs at their full ratio).
    pub left: u64,
    /// The most the pool can hold: its quota, or what it holds plus what the OSDs can still take.
    pub limit: u64,
}

/// The room of a pool from its `df detail` statistics and, for a pool with a quota, what the quota is
/// held to (`osd pool get-quota`: the objects' logical sizes, not `df`'s stored bytes).
pub fn pool_room(stats: &DfPoolStats, quota: Option<&PoolQuota>) -> PoolRoom {
    let by_capacity = PoolRoom {
        left: stats.max_avail,
        limit: stats.stored.saturating_add(stats.max_avail),
    };
    // Without the quota's own measure (the command refused), `df`'s figures, which can be less.
    let (max, current) = match quota {
        Some(q) => (q.quota_max_bytes, q.current_num_bytes),
        None => (stats.quota_bytes, stats.stored),
    };
    if max == 0 {
        return by_capacity;
    }
    PoolRoom {
        left: max.saturating_sub(current).min(by_capacity.left),
        limit: max.min(by_capacity.limit),
    }
}

/// The pool's room now: its `df detail` statistics, and its quota's own measure when it has one. None
/// when the cluster has no such pool.
pub fn sample(
    rados: &rookery_ceph::Rados,
    pool: &str,
) -> Result<Option<PoolRoom>, rookery_ceph::CephError> {
    let Some(stats) = rookery_ceph::commands::cluster::df(rados)?
        .pools
        .into_iter()
        .find(|p| p.name == pool)
        .map(|p| p.stats)
    else {
        return Ok(None);
    };
    let quota = (stats.quota_bytes > 0)
        .then(|| rookery_ceph::commands::pool::get_quota(rados, pool).ok())
        .flatten();
    Ok(Some(pool_room(&stats, quota.as_ref())))
}

/// What is kept free in the pool under the file system: room for what ext4 writes that its free-space
/// count does not show (its journal filling up, inode tables zeroed after mount: together up to ~4% of a
/// file system, measured 8 MiB on a new 128 MiB one), and for what is in flight between the file system
/// and the pool. 5% of the pool's limit or of the file system (larger than the pool when over-committed),
/// at least 16 MiB, at most 1 GiB.
pub fn margin(limit: u64, fs_bytes: u64) -> u64 {
    (limit.max(fs_bytes) / 20).clamp(16 << 20, 1 << 30)
}

/// The file system's space, from statfs (in its blocks; rookery makes ext4 without bigalloc, so a
/// cluster is a block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    pub block_bytes: u64,
    pub total_blocks: u64,
    /// Free blocks less those promised to delayed allocation, before any reserve is taken out.
    pub free_blocks: u64,
}

impl FsSpace {
    pub fn total_bytes(&self) -> u64 {
        self.total_blocks * self.block_bytes
    }

    pub fn used_bytes(&self) -> u64 {
        self.total_blocks.saturating_sub(self.free_blocks) * self.block_bytes
    }
}

/// The blocks to hold back so that the file system allocates at most `allowed_bytes` more. Never below
/// what it reserves by itself (`own`), never the whole file system (ext4 refuses that).
pub fn clusters_to_reserve(fs: &FsSpace, allowed_bytes: u64, own: u64) -> u64 {
    let allowed = allowed_bytes / fs.block_bytes.max(1);
    fs.free_blocks
        .saturating_sub(allowed)
        .max(own)
        .min(fs.total_blocks.saturating_sub(1))
}

/// What the file system may still allocate: the pool's room less the margin and less what the file
/// system allocated since the oldest moment the sample may not count yet.
pub fn allowed_bytes(room: PoolRoom, fs_bytes: u64, grown_since_sample: u64) -> u64 {
    room.left
        .saturating_sub(margin(room.limit, fs_bytes))
        .saturating_sub(grown_since_sample)
}

/// How long until the next `df` sample: every second while the file system could fill what is left in
/// a few seconds' writing, else every 20 s (one or two mon commands per mounted volume).
pub fn next_sample_in(room: PoolRoom, fs: &FsSpace) -> Duration {
    let fs_free_bytes = fs.free_blocks * fs.block_bytes;
    let spare = room
        .left
        .saturating_sub(margin(room.limit, fs.total_bytes()));
    if spare < fs_free_bytes.saturating_mul(2) || spare < (4 << 30) {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(20)
    }
}

/// The file system's use over the last minute, to tell how much it grew since a moment.
#[derive(Debug, Default)]
pub struct Growth {
    seen: VecDeque<(Instant, u64)>,
}

impl Growth {
    pub fn record(&mut self, at: Instant, used_bytes: u64) {
        self.seen.push_back((at, used_bytes));
        while self
            .seen
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > Duration::from_secs(60))
        {
            self.seen.pop_front();
        }
    }

    /// Bytes allocated since `since` (what was used then: the last record at or before it, else the
    /// oldest kept; freed space counts as nothing, since the pool does not get it back).
    pub fn since(&self, since: Instant, used_now: u64) -> u64 {
        let then = self
            .seen
            .iter()
            .rev()
            .find(|(t, _)| *t <= since)
            .or(self.seen.front())
            .map_or(used_now, |(_, used)| *used);
        used_now.saturating_sub(then)
    }
}

/// A file system rookery can keep inside its pool, mounted on the loop device over the served file.
#[derive(Debug, Clone)]
pub struct KeptMount {
    pub kind: FsKind,
    /// The loop device and its device number, which the mounted file system reports as its own.
    pub dev: PathBuf,
    dev_number: u64,
    /// `/sys/fs/<kind>/loopN`: there while the file system is mounted.
    pub sysfs: PathBuf,
    /// Where it is mounted, for statfs and ioctls.
    pub mount_point: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// Held back through sysfs `reserved_clusters` (blocks no allocation may take).
    Ext4,
    /// Held back through the reserve pool (`XFS_IOC_SET_RESBLKS`), taken out of the free blocks.
    Xfs,
}

/// The ext4 or xfs file system mounted from `dev` in this process's mount namespace, if any.
pub fn mounted_on(dev: &Path) -> Option<KeptMount> {
    let dev_number = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(dev).ok()?);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (kind, mount_point) = mount_of(&mountinfo, dev_number)?;
    let dir = match kind {
        FsKind::Ext4 => "/sys/fs/ext4",
        FsKind::Xfs => "/sys/fs/xfs",
    };
    let sysfs = Path::new(dir).join(dev.file_name()?);
    sysfs.is_dir().then(|| KeptMount {
        kind,
        dev: dev.to_path_buf(),
        dev_number,
        sysfs,
        mount_point,
    })
}

/// The kind and first mount point of an ext4 or xfs file system on device `dev_number` in a mountinfo
/// text.
fn mount_of(mountinfo: &str, dev_number: u64) -> Option<(FsKind, PathBuf)> {
    let dev = format!("{}:{}", libc::major(dev_number), libc::minor(dev_number));
    rookery_platform::devices::parse_mountinfo(mountinfo)
        .into_iter()
        .filter(|m| m.dev == dev)
        .find_map(|m| match m.fstype.as_str() {
            "ext4" => Some((FsKind::Ext4, m.point)),
            "xfs" => Some((FsKind::Xfs, m.point)),
            _ => None,
        })
}

impl KeptMount {
    /// The mount point, opened and checked to be this file system (its device is the loop device): a
    /// path outlives its mount, and then names whatever file system is under it. Held only for one pass,
    /// since an open directory would keep the file system from being unmounted.
    pub fn open(&self) -> Option<OpenFs<'_>> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.mount_point)
            .ok()?;
        (dir.metadata().ok()?.dev() == self.dev_number).then_some(OpenFs { mount: self, dir })
    }
}

/// A checked, open handle on the kept file system.
pub struct OpenFs<'a> {
    mount: &'a KeptMount,
    dir: std::fs::File,
}

impl OpenFs<'_> {
    /// The file system's space, counting blocks held in xfs's reserve pool as free (so the use does not
    /// change when rookery moves blocks in or out of it).
    pub fn space(&self) -> Option<FsSpace> {
        use std::os::fd::AsRawFd;
        // SAFETY: statvfs is plain data.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: the fd is open and the struct lives across the call.
        if unsafe { libc::fstatvfs(self.dir.as_raw_fd(), &mut st) } != 0 {
            return None;
        }
        let held = match self.mount.kind {
            FsKind::Ext4 => 0,
            FsKind::Xfs => xfs_resblks(&self.dir, None).ok()?.resblks_avail,
        };
        Some(FsSpace {
            block_bytes: st.f_frsize,
            total_blocks: st.f_blocks,
            free_blocks: st.f_bfree + held,
        })
    }

    /// The blocks held back now.
    pub fn reserve(&self) -> Option<u64> {
        match self.mount.kind {
            FsKind::Ext4 => std::fs::read_to_string(self.mount.sysfs.join("reserved_clusters"))
                .ok()?
                .trim()
                .parse()
                .ok(),
            FsKind::Xfs => xfs_resblks(&self.dir, None).ok().map(|r| r.resblks),
        }
    }

    pub fn set_reserve(&self, blocks: u64) -> std::io::Result<()> {
        match self.mount.kind {
            FsKind::Ext4 => std::fs::write(
                self.mount.sysfs.join("reserved_clusters"),
                format!("{blocks}\n"),
            ),
            FsKind::Xfs => match xfs_resblks(&self.dir, Some(blocks)) {
                // Fewer blocks free than asked: xfs holds what there is and fills the reserve first as
                // blocks are freed, which is what is wanted.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Ok(()),
                r => r.map(|_| ()),
            },
        }
    }
}

/// `struct xfs_fsop_resblks`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct XfsResblks {
    resblks: u64,
    resblks_avail: u64,
}

const XFS_IOC_GET_RESBLKS: libc::Ioctl = libc::_IOR::<XfsResblks>(b'X' as u32, 115);
const XFS_IOC_SET_RESBLKS: libc::Ioctl = libc::_IOWR::<XfsResblks>(b'X' as u32, 114);

/// Reads (`set` None) or sets xfs's reserve pool (CAP_SYS_ADMIN).
fn xfs_resblks(dir: &std::fs::File, set: Option<u64>) -> std::io::Result<XfsResblks> {
    use std::os::fd::AsRawFd;
    let mut arg = XfsResblks {
        resblks: set.unwrap_or(0),
        resblks_avail: 0,
    };
    let request = if set.is_some() {
        XFS_IOC_SET_RESBLKS
    } else {
        XFS_IOC_GET_RESBLKS
    };
    // SAFETY: the argument is the kernel's struct, alive across the call; the fd is open.
    let rc = unsafe { libc::ioctl(dir.as_raw_fd(), request as _, &mut arg) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn stats(stored: u64, max_avail: u64) -> DfPoolStats {
        DfPoolStats {
            stored,
            max_avail,
            ..Default::default()
        }
    }

    fn quota(max: u64, current: u64) -> PoolQuota {
        PoolQuota {
            quota_max_bytes: max,
            current_num_bytes: current,
            ..Default::default()
        }
    }

    #[test]
    fn room_is_the_quota_left_or_what_the_osds_can_take() {
        // The quota is held to the objects' logical sizes (110 MiB), not the bytes stored (100 MiB).
        assert_eq!(
            pool_room(
                &stats(100 * MIB, 10_000 * MIB),
                Some(&quota(128 * MIB, 110 * MIB))
            ),
            PoolRoom {
                left: 18 * MIB,
                limit: 128 * MIB
            }
        );
        // Over its quota already.
        assert_eq!(
            pool_room(
                &stats(100 * MIB, 10_000 * MIB),
                Some(&quota(128 * MIB, 130 * MIB))
            )
            .left,
            0
        );
        // A quota larger than the OSDs can hold: the OSDs are the limit.
        assert_eq!(
            pool_room(
                &stats(100 * MIB, 50 * MIB),
                Some(&quota(1 << 40, 100 * MIB))
            ),
            PoolRoom {
                left: 50 * MIB,
                limit: 150 * MIB
            }
        );
        let by_osds = PoolRoom {
            left: 50 * MIB,
            limit: 150 * MIB,
        };
        assert_eq!(pool_room(&stats(100 * MIB, 50 * MIB), None), by_osds);
        // The quota from `df` when `get-quota` was not answered.
        let from_df = DfPoolStats {
            quota_bytes: 128 * MIB,
            ..stats(100 * MIB, 10_000 * MIB)
        };
        assert_eq!(pool_room(&from_df, None).left, 28 * MIB);
        assert_eq!(
            pool_room(&stats(100 * MIB, 50 * MIB), Some(&quota(0, 100 * MIB))),
            by_osds
        );
    }

    #[test]
    fn the_margin_is_five_percent_within_bounds() {
        assert_eq!(margin(128 * MIB, 128 * MIB), 16 * MIB);
        assert_eq!(margin(1000 * MIB, 500 * MIB), 50 * MIB);
        // Over-committed: the file system is larger than the pool, and its journal with it.
        assert_eq!(margin(1000 * MIB, 4000 * MIB), 200 * MIB);
        assert_eq!(margin(1 << 50, 0), 1 << 30);
    }

    fn fs(free_mib: u64) -> FsSpace {
        FsSpace {
            block_bytes: 4096,
            total_blocks: 32768, // 128 MiB
            free_blocks: free_mib * 256,
        }
    }

    #[test]
    fn ext4_keeps_back_what_the_pool_cannot_take() {
        // 100 MiB free in the file system, 40 MiB allowed: 60 MiB kept back.
        assert_eq!(clusters_to_reserve(&fs(100), 40 * MIB, 1638), 60 * 256);
        // The pool has more room than the file system: ext4's own reserve is left alone.
        assert_eq!(clusters_to_reserve(&fs(100), 500 * MIB, 1638), 1638);
        // Nothing allowed: everything free is kept back, but never the whole file system.
        assert_eq!(clusters_to_reserve(&fs(100), 0, 1638), 100 * 256);
        let full = FsSpace {
            free_blocks: 32768,
            ..fs(0)
        };
        assert_eq!(clusters_to_reserve(&full, 0, 1638), 32767);
    }

    #[test]
    fn allocation_stops_a_margin_before_the_pool_is_full() {
        let room = PoolRoom {
            left: 60 * MIB,
            limit: 128 * MIB,
        };
        assert_eq!(allowed_bytes(room, 128 * MIB, 0), 44 * MIB);
        // 20 MiB written that the sample does not count yet.
        assert_eq!(allowed_bytes(room, 128 * MIB, 20 * MIB), 24 * MIB);
        assert_eq!(allowed_bytes(room, 128 * MIB, 80 * MIB), 0);
    }

    #[test]
    fn samples_are_frequent_only_when_the_room_is_short() {
        let big = PoolRoom {
            left: 1 << 40,
            limit: 1 << 41,
        };
        let with_free = |free_mib: u64| FsSpace {
            block_bytes: 4096,
            total_blocks: free_mib * 256 * 2,
            free_blocks: free_mib * 256,
        };
        assert_eq!(
            next_sample_in(big, &with_free(10 << 10)),
            Duration::from_secs(20)
        );
        let small = PoolRoom {
            left: 60 * MIB,
            limit: 128 * MIB,
        };
        assert_eq!(
            next_sample_in(small, &with_free(100)),
            Duration::from_secs(1)
        );
        // Plenty for this file system, but little in absolute terms: another writer may take it fast.
        let modest = PoolRoom {
            left: 2 << 30,
            limit: 100 << 30,
        };
        assert_eq!(
            next_sample_in(modest, &with_free(100)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn growth_counts_allocations_since_a_moment_but_not_frees() {
        let t0 = Instant::now();
        let mut g = Growth::default();
        g.record(t0, 10 * MIB);
        g.record(t0 + Duration::from_secs(5), 30 * MIB);
        g.record(t0 + Duration::from_secs(10), 50 * MIB);
        assert_eq!(g.since(t0 + Duration::from_secs(6), 50 * MIB), 20 * MIB);
        assert_eq!(g.since(t0, 50 * MIB), 40 * MIB);
        // Before the first record: from the oldest kept.
        assert_eq!(
            g.since(
                t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0),
                50 * MIB
            ),
            40 * MIB
        );
        assert_eq!(g.since(t0 + Duration::from_secs(10), 20 * MIB), 0);
    }

    #[test]
    fn the_file_system_on_a_loop_device() {
        let info = "36 25 7:3 / /mnt/x rw,relatime shared:1 - xfs /dev/loop3 rw\n\
                    37 25 7:4 / /var/lib/a\\040b rw,relatime shared:2 - ext4 /dev/loop4 rw\n\
                    38 25 7:5 / /mnt/b rw,relatime shared:3 - btrfs /dev/loop5 rw\n";
        let loop_n = |n: u32| libc::makedev(7, n);
        assert_eq!(
            mount_of(info, loop_n(4)),
            Some((FsKind::Ext4, PathBuf::from("/var/lib/a b")))
        );
        assert_eq!(
            mount_of(info, loop_n(3)),
            Some((FsKind::Xfs, PathBuf::from("/mnt/x")))
        );
        assert_eq!(mount_of(info, loop_n(5)), None);
        assert_eq!(mount_of(info, loop_n(6)), None);
    }
}
