//! Mounting and unmounting filesystems with the mount(2)/umount2(2) system calls, and reading the
//! mount table.

use std::ffi::CString;
use std::path::{Path, PathBuf};

fn cpath(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))
}

pub fn mount(device: &Path, target: &Path, fstype: &str, read_only: bool) -> std::io::Result<()> {
    let src = cpath(device)?;
    let dst = cpath(target)?;
    let ty = CString::new(fstype).map_err(|_| std::io::Error::other("bad filesystem type"))?;
    // A read-only mount must not replay a journal onto a device another host may be writing.
    let data = match (read_only, fstype) {
        (true, "ext4") => "noload",
        (true, "xfs") => "norecovery",
        _ => "",
    };
    let data = CString::new(data).map_err(|_| std::io::Error::other("bad mount options"))?;
    let flags = if read_only { libc::MS_RDONLY } else { 0 };
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            ty.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!(
                "mounting {} ({fstype}) on {}: {e}",
                device.display(),
                target.display()
            ),
        ));
    }
    Ok(())
}

/// Unmounts `target`; a target that is not mounted is fine.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    if !is_mount_point(target) {
        return Ok(());
    }
    let dst = cpath(target)?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::umount2(dst.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!(
                "unmounting {}: {e}{}",
                target.display(),
                if e.raw_os_error() == Some(libc::EBUSY) {
                    " (a process still uses files there; `fuser -m` names it)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub target: PathBuf,
    pub fstype: String,
    pub source: String,
}

pub fn table() -> Vec<MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let target = left.split_whitespace().nth(4)?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            let source = r.next().unwrap_or("");
            Some(MountEntry {
                target: PathBuf::from(rookery_platform::devices::unescape_mount_path(target)),
                fstype: fstype.to_string(),
                source: rookery_platform::devices::unescape_mount_path(source),
            })
        })
        .collect()
}

pub fn is_mount_point(target: &Path) -> bool {
    let canon = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    table().iter().any(|m| m.target == canon)
}

/// What is mounted at `target`, if anything.
pub fn mounted_at(target: &Path) -> Option<MountEntry> {
    let canon = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    table().into_iter().rev().find(|m| m.target == canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mount_table() {
        assert!(table().iter().any(|m| m.target == Path::new("/")));
        assert!(is_mount_point(Path::new("/")));
        assert!(!is_mount_point(Path::new("/definitely/not/mounted")));
        assert_eq!(
            rookery_platform::devices::unescape_mount_path("/a\\040b"),
            "/a b"
        );
    }
}
