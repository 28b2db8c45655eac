//! Checks made before anything is changed (`rookery up`, `rookery doctor`): each problem is reported with
//! its fix, and `up` changes nothing while any check fails.

use std::path::{Path, PathBuf};

use rookery_platform::Platform;
use serde::Serialize;

use crate::state::ClusterState;
use crate::{Desired, Layout, OrchestratorError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub message: String,
    pub fix: Option<String>,
    /// The problem is in what the user gave (exit code 2), not in the host.
    #[serde(skip)]
    pub bad_input: bool,
}

impl Finding {
    pub fn ok(check: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            check,
            severity: Severity::Ok,
            message: message.into(),
            fix: None,
            bad_input: false,
        }
    }
    pub fn warn(
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            severity: Severity::Warn,
            message: message.into(),
            fix: Some(fix.into()),
            bad_input: false,
        }
    }
    pub fn error(
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            severity: Severity::Error,
            message: message.into(),
            fix: Some(fix.into()),
            bad_input: false,
        }
    }
}

/// What a data dir holds.
#[derive(Debug, Clone)]
pub enum DataDir {
    Absent,
    Empty,
    Cluster(Box<ClusterState>),
    /// Not empty and not a rookery cluster: never touched.
    Foreign(String),
}

pub fn inspect(layout: &Layout) -> Result<DataDir, OrchestratorError> {
    let root = &layout.root;
    match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DataDir::Absent),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Ok(DataDir::Foreign(format!(
                "{} is a file, not a directory",
                root.display()
            )))
        }
        Err(e) => return Err(OrchestratorError::io(root, e)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(DataDir::Empty);
            }
        }
    }
    match ClusterState::load(layout)? {
        Some(state) => Ok(DataDir::Cluster(Box::new(state))),
        None => Ok(DataDir::Foreign(format!(
            "{} is not empty and holds no rookery cluster (no cluster.json)",
            root.display()
        ))),
    }
}

/// Mon ports for a new cluster: the requested v2 port (Ceph's 3300/6789 by default) when free, otherwise
/// free ones chosen by the kernel. Returns the ports and, when they differ from the request, a note.
pub fn choose_mon_ports(
    platform: &dyn Platform,
    host: &str,
    count: usize,
    requested_v2: Option<u16>,
) -> (Vec<(u16, u16)>, Option<String>) {
    let port_free = |p| platform.port_free(host, p);
    let free_port = || platform.free_port(host).unwrap_or(0);
    let mut ports = Vec::new();
    let mut note = None;
    for i in 0..count {
        let want = match requested_v2 {
            Some(0) => None,
            Some(p) => Some((p + 2 * i as u16, p + 2 * i as u16 + 1)),
            None if i == 0 => Some((3300, 6789)),
            None => None,
        };
        let pair = match want {
            Some((a, b)) if port_free(a) && port_free(b) => (a, b),
            Some((a, b)) => {
                let got = (free_port(), free_port());
                let holder = [a, b]
                    .iter()
                    .find_map(|p| {
                        platform
                            .port_holder(host, *p)
                            .map(|who| format!("port {p} is held by {who}"))
                    })
                    .unwrap_or_else(|| format!("port {a} or {b} is in use"));
                note = Some(format!(
                    "{holder}; using {} and {} for the mon instead",
                    got.0, got.1
                ));
                got
            }
            None => (free_port(), free_port()),
        };
        ports.push(pair);
    }
    (ports, note)
}

fn nearest_existing(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

fn free_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

fn writable(dir: &Path) -> bool {
    tempfile_in(dir).is_ok()
}

fn tempfile_in(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(format!(
        ".rookery-write-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&p, b"")?;
    std::fs::remove_file(&p)
}

/// Whether files in `dir` take user extended attributes (`user.*`), which Ceph's tools set on OSD and
/// mon folders in places (ceph-volume, the FileStore heritage of `ceph-objectstore-tool`). None when it
/// could not be tried.
fn user_xattrs(dir: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    let p = dir.join(format!(
        ".rookery-xattr-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&p, b"").ok()?;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let name = c"user.rookery.test";
    // SAFETY: both strings are NUL-terminated and live through the call; the value is 1 byte.
    let rc = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), b"1".as_ptr().cast(), 1, 0) };
    let err = std::io::Error::last_os_error().raw_os_error();
    let _ = std::fs::remove_file(&p);
    match (rc, err) {
        (0, _) => Some(true),
        (_, Some(libc::ENOTSUP)) => Some(false),
        _ => None,
    }
}

/// Whether files in `dir` can be opened for direct I/O, as BlueStore opens its block file (some FUSE
/// and network filesystems, and tmpfs before Linux 6.6, refuse it with EINVAL). None when it could not
/// be tried.
fn direct_io(dir: &Path) -> Option<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = dir.join(format!(
        ".rookery-direct-io-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&p);
    let answer = match &opened {
        Ok(_) => Some(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Some(false),
        Err(_) => None,
    };
    drop(opened);
    let _ = std::fs::remove_file(&p);
    answer
}

/// The release of every installed Ceph daemon program, asked side by side (each takes ~50 ms to load).
fn daemon_versions() -> Vec<(
    &'static str,
    Result<rookery_ceph::tools::CephVersion, String>,
)> {
    let programs: Vec<&'static str> = ["ceph-mon", "ceph-mgr", "ceph-osd", "ceph-mds", "radosgw"]
        .into_iter()
        .filter(|p| rookery_ceph::tools::find_program(p).is_some())
        .collect();
    std::thread::scope(|s| {
        let asked: Vec<_> = programs
            .iter()
            .map(|p| {
                s.spawn(move || rookery_ceph::tools::program_version(p).map_err(|e| e.to_string()))
            })
            .collect();
        programs
            .iter()
            .zip(asked)
            .map(|(p, h)| {
                let v = h
                    .join()
                    .unwrap_or_else(|_| Err("asking it for its version failed".into()));
                (*p, v)
            })
            .collect()
    })
}

/// One Ceph release for every daemon, and none older than the one the cluster last recorded.
pub fn check_versions(
    versions: &[(&str, Result<rookery_ceph::tools::CephVersion, String>)],
    recorded: Option<&rookery_ceph::tools::CephVersion>,
) -> Finding {
    let mut read = Vec::new();
    for (program, v) in versions {
        match v {
            Ok(v) => read.push((*program, v)),
            Err(e) => {
                return Finding::error(
                    "ceph version",
                    format!("{program} does not say which Ceph it is: {e}"),
                    format!(
                        "reinstall it: apt-get install --reinstall -y {}",
                        rookery_ceph::tools::package_of(program)
                    ),
                )
            }
        }
    }
    let Some((_, first)) = read.first() else {
        return Finding::ok("ceph version", "no Ceph daemon program installed to ask");
    };
    if read.iter().any(|(_, v)| v.major != first.major) {
        let list: Vec<String> = read.iter().map(|(p, v)| format!("{p} {v}")).collect();
        return Finding::error(
            "ceph version",
            format!("the Ceph programs are of different releases: {}", list.join(", ")),
            "install one release of every Ceph package (apt-get install -y ceph-mon ceph-mgr ceph-osd ceph-mds radosgw, all from the same source)",
        );
    }
    if let Some(r) = recorded {
        if first.major < r.major {
            return Finding::error(
                "ceph version",
                format!(
                    "this cluster was made with Ceph {r}, and the installed programs are Ceph {first}: Ceph cannot go back to an older release",
                ),
                format!("install Ceph {} or newer again", r.major),
            );
        }
    }
    Finding::ok("ceph version", format!("Ceph {first}"))
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Everything checked before `up` changes anything on `host`. `dir` says what the data dir holds.
pub fn check(
    layout: &Layout,
    desired: &Desired,
    dir: &DataDir,
    platform: &dyn Platform,
    host: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let missing: Vec<&str> = rookery_ceph::tools::REQUIRED_PROGRAMS
        .iter()
        .filter(|(p, _)| rookery_ceph::tools::find_program(p).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        out.push(Finding::ok(
            "ceph",
            "the Ceph daemons and tools are installed",
        ));
    } else {
        out.push(Finding::error(
            "ceph",
            format!("Ceph is not installed (missing: {})", missing.join(", ")),
            format!("apt-get install -y {}", missing.join(" ")),
        ));
    }
    match rookery_ceph::Rados::library_version() {
        Ok((a, b, c)) => out.push(Finding::ok("librados", format!("librados {a}.{b}.{c}"))),
        Err(e) => out.push(Finding::error(
            "librados",
            e.to_string(),
            "apt-get install -y librados2",
        )),
    }

    let existing = match dir {
        DataDir::Foreign(why) => {
            out.push(Finding {
                bad_input: true,
                ..Finding::error("data dir", why.clone(), "choose another --data-dir (rookery never writes into a folder it did not create)")
            });
            None
        }
        DataDir::Cluster(state) if state.name != desired.name => {
            out.push(Finding {
                bad_input: true,
                ..Finding::error(
                    "data dir",
                    format!(
                        "{} belongs to another cluster, {:?} (fsid {}), not {:?}",
                        layout.root.display(),
                        state.name,
                        state.fsid,
                        desired.name
                    ),
                    format!(
                        "use another --data-dir for {:?}, or name the cluster {:?} in the spec",
                        desired.name, state.name
                    ),
                )
            });
            None
        }
        DataDir::Cluster(state) => Some(state.as_ref()),
        DataDir::Absent | DataDir::Empty => None,
    };

    let alone = platform
        .hosts()
        .first()
        .is_some_and(|h| h.address.is_loopback());
    for (kind, check, count, multiple) in [
        (
            "mon",
            "mons",
            desired.mon_ids.len(),
            desired.mon_allow_multiple,
        ),
        (
            "mgr",
            "mgrs",
            desired.mgr_ids.len(),
            desired.mgr_allow_multiple,
        ),
    ] {
        if alone && count > 1 && !multiple {
            out.push(Finding {
                bad_input: true,
                ..Finding::error(
                    check,
                    format!("{count} {kind}s need allowMultiplePerNode: true, because this cluster is this one host (it serves on loopback only)"),
                    format!("set spec.{kind}.allowMultiplePerNode: true, or use count: 1, or bring the cluster up for several hosts with `rookery up --address IP` (each {kind} then runs on a host of its own)"),
                )
            });
        }
    }

    for store in desired.object_stores.iter().filter(|s| s.instances > 1) {
        if alone {
            out.push(Finding {
                bad_input: true,
                ..Finding::error(
                    "gateways",
                    format!("object store {} asks for {} gateways, each on a host of its own, but this cluster is this one host (it serves on loopback only)", store.name, store.instances),
                    "set spec.gateway.instances: 1, or bring the cluster up for several hosts with `rookery up --address IP`",
                )
            });
        }
    }

    let base = nearest_existing(&layout.root);
    if writable(&base) {
        out.push(Finding::ok(
            "data dir",
            format!("{} is writable", layout.root.display()),
        ));
    } else {
        out.push(Finding::error(
            "data dir",
            format!("{} is not writable", base.display()),
            "run as root, or pass a --data-dir you own",
        ));
    }

    if user_xattrs(&base) == Some(false) {
        out.push(Finding::warn(
            "extended attributes",
            format!(
                "the filesystem of {} does not take user extended attributes, which some Ceph tools set on OSD folders",
                base.display()
            ),
            "remount it with user_xattr (ext4: mount -o remount,user_xattr), or use a --data-dir on ext4, xfs or btrfs",
        ));
    }
    match direct_io(&base) {
        Some(false) => out.push(Finding::error(
            "direct I/O",
            format!(
                "the filesystem of {} refuses direct I/O, which the OSDs' BlueStore needs for its block files",
                base.display()
            ),
            "use a --data-dir on ext4, xfs or btrfs (not a FUSE or network filesystem, nor an old kernel's tmpfs)",
        )),
        Some(true) => out.push(Finding::ok("direct I/O", "the data dir's filesystem supports direct I/O")),
        None => {}
    }
    out.push(check_versions(
        &daemon_versions(),
        existing.and_then(|s| s.ceph_version.as_ref()),
    ));

    // OSD files are sparse but fill up as data arrives; an OSD that cannot grow its file crashes.
    let created = existing.map(|s| s.osds.len() as u64).unwrap_or(0);
    let new_osds = (desired.osd_count as u64).saturating_sub(created);
    let need = new_osds * desired.osd_size + if existing.is_some() { 0 } else { GIB };
    match free_bytes(&base) {
        Some(free) if free < need => out.push(Finding::error(
            "disk",
            format!("{} free on {}, but {new_osds} new OSD file(s) of {} need {}", human(free), base.display(), human(desired.osd_size), human(need)),
            "free disk space, lower spec.storage.osdFiles.size or count, or use a --data-dir on a larger disk",
        )),
        Some(free) => out.push(Finding::ok("disk", format!("{} free, {} needed", human(free), human(need)))),
        None => out.push(Finding::warn("disk", "could not read the free space", "check `df` by hand")),
    }

    if let Some(state) = existing {
        for m in &state.mons {
            for port in [m.v2_port, m.v1_port] {
                if platform.port_free(host, port) {
                    continue;
                }
                match platform.port_holder(host, port) {
                    // Our own mon, still running, holds it.
                    Some(who)
                        if !(who.contains("ceph-mon")
                            && who.contains(&layout.conf().display().to_string())) =>
                    {
                        out.push(Finding::error(
                            "ports",
                            format!("mon.{} needs port {port}, which {who} holds", m.id),
                            format!(
                                "stop {who}; the cluster's mon addresses are fixed in its monmap"
                            ),
                        ))
                    }
                    _ => {}
                }
            }
        }
    }

    let running = |_: &str| false;
    let want = desired.mon_ids.iter().filter(|id| !running(id)).count() as u64 * 256 * MIB
        + desired.mgr_ids.len() as u64 * 512 * MIB
        + desired.osd_count as u64 * GIB;
    match platform.memory_available(host) {
        Some(avail) if avail < want && existing.is_none() => out.push(Finding::error(
            "memory",
            format!(
                "{} available, but {} mon(s), {} mgr(s) and {} OSD(s) need about {}",
                human(avail),
                desired.mon_ids.len(),
                desired.mgr_ids.len(),
                desired.osd_count,
                human(want)
            ),
            "free memory, or ask for fewer OSDs (spec.storage.osdFiles.count)",
        )),
        Some(avail) => out.push(Finding::ok(
            "memory",
            format!("{} available, about {} needed", human(avail), human(want)),
        )),
        None => out.push(Finding::warn(
            "memory",
            format!("could not read the memory available on {host}"),
            "check `free` by hand",
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_platform::local::{LocalPlatform, THIS_HOST_ADDRESS};

    fn v(major: u32, release: &str) -> rookery_ceph::tools::CephVersion {
        rookery_ceph::tools::CephVersion {
            major,
            minor: 2,
            patch: 1,
            release: Some(release.into()),
        }
    }

    #[test]
    fn one_release_and_never_an_older_one() {
        let same = [
            ("ceph-mon", Ok(v(16, "pacific"))),
            ("ceph-osd", Ok(v(16, "pacific"))),
        ];
        let f = check_versions(&same, Some(&v(16, "pacific")));
        assert_eq!(f.severity, Severity::Ok, "{f:?}");
        assert_eq!(f.message, "Ceph 16.2.1 (pacific)");
        let mixed = [
            ("ceph-mon", Ok(v(16, "pacific"))),
            ("ceph-osd", Ok(v(18, "reef"))),
        ];
        let f = check_versions(&mixed, None);
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("ceph-osd 18.2.1 (reef)"), "{f:?}");
        let f = check_versions(&same, Some(&v(17, "quincy")));
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("cannot go back"), "{f:?}");
        // An upgrade is no error here: the daemons restart on the new release.
        assert_eq!(
            check_versions(&same, Some(&v(15, "octopus"))).severity,
            Severity::Ok
        );
        let broken = [("radosgw", Err("printed no version".to_string()))];
        assert!(check_versions(&broken, None).message.contains("radosgw"));
    }

    #[test]
    fn this_data_dir_filesystem_takes_user_xattrs() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(user_xattrs(d.path()), Some(true));
        assert_eq!(user_xattrs(&d.path().join("missing")), None);
    }

    #[test]
    fn this_data_dir_filesystem_takes_direct_io() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(direct_io(d.path()), Some(true));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    fn desired() -> Desired {
        Desired::from_resources(&rookery_spec::default_resources()).unwrap()
    }

    fn local() -> (LocalPlatform, String) {
        let p = LocalPlatform::new(std::env::temp_dir());
        let host = p.hosts()[0].name.clone();
        (p, host)
    }

    #[test]
    fn a_foreign_dir_is_bad_input_and_untouched() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("precious.txt"), b"x").unwrap();
        let layout = Layout::new(d.path());
        let dir = inspect(&layout).unwrap();
        assert!(matches!(dir, DataDir::Foreign(_)));
        let (p, host) = local();
        let f = check(&layout, &desired(), &dir, &p, &host);
        assert!(f
            .iter()
            .any(|f| f.bad_input && f.severity == Severity::Error));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn another_clusters_dir_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::new(d.path().join("c"));
        let (p, host) = local();
        crate::create_cluster(&layout, "other", &["a".into()], &[(1, 2)], &p.hosts()[0]).unwrap();
        let dir = inspect(&layout).unwrap();
        let f = check(&layout, &desired(), &dir, &p, &host);
        let e = f.iter().find(|f| f.bad_input).unwrap();
        assert!(e.message.contains("\"other\""), "{}", e.message);
    }

    #[test]
    fn a_taken_port_is_replaced_and_named() {
        let l = std::net::TcpListener::bind((THIS_HOST_ADDRESS, 0)).unwrap();
        let taken = l.local_addr().unwrap().port();
        let (p, host) = local();
        let (ports, note) = choose_mon_ports(&p, &host, 1, Some(taken));
        assert_ne!(ports[0].0, taken);
        let note = note.unwrap();
        // This test process holds it, and the note names it.
        assert!(
            note.contains(&format!("port {taken} is held by pid ")),
            "{note}"
        );
    }

    #[test]
    fn too_large_osd_files_fail_the_disk_check() {
        let d = tempfile::tempdir().unwrap();
        let mut want = desired();
        want.osd_size = 1 << 60;
        let (p, host) = local();
        let f = check(
            &Layout::new(d.path().join("c")),
            &want,
            &DataDir::Absent,
            &p,
            &host,
        );
        assert!(f
            .iter()
            .any(|f| f.check == "disk" && f.severity == Severity::Error));
    }
}
