//! Size-capped logs: every file in a cluster's log folder (daemons' output, Ceph's own logs, clients'
//! logs) that grows past [`LOG_CAP`] is copied to `<name>.1` (replacing the previous one) and emptied in
//! place. Emptied, not renamed: daemons and clients keep their file open (Ceph opens its log with
//! O_APPEND, and so does the platform for daemons' output), so their next line lands at the start of
//! the same file. A daemon's log therefore never takes more than twice the cap plus what it writes
//! in the second between two checks.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::time::Duration;

/// The size past which a log file is rotated.
pub const LOG_CAP: u64 = 64 << 20;
/// How often the platform looks.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Rotates every file of `dir` larger than `cap`; returns the names rotated.
pub fn rotate_over(dir: &Path, cap: u64) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut rotated = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let big = e.metadata().is_ok_and(|m| m.is_file() && m.len() > cap);
        if !big || name.ends_with(".1") {
            continue;
        }
        match rotate(&path) {
            Ok(()) => rotated.push(name),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "could not rotate a log"),
        }
    }
    rotated
}

fn rotate(path: &Path) -> std::io::Result<()> {
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    fs::copy(path, &old)?;
    OpenOptions::new().write(true).open(path)?.set_len(0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_log_over_the_cap_is_kept_once_and_emptied_in_place() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("ceph-osd.0.log");
        let small = d.path().join("osd.0.stdout");
        // A writer that keeps its file open in append mode, as Ceph does.
        let mut writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&big)
            .unwrap();
        writer.write_all(&vec![b'x'; 2000]).unwrap();
        fs::write(&small, b"short").unwrap();
        assert_eq!(rotate_over(d.path(), 1000), ["ceph-osd.0.log"]);
        assert_eq!(fs::metadata(&big).unwrap().len(), 0);
        assert_eq!(
            fs::read(d.path().join("ceph-osd.0.log.1")).unwrap().len(),
            2000
        );
        assert_eq!(fs::read(&small).unwrap(), b"short");
        writer.write_all(b"next line\n").unwrap();
        assert_eq!(fs::read(&big).unwrap(), b"next line\n");
        // The kept copy is never rotated itself; the next rotation replaces it.
        writer.write_all(&vec![b'y'; 1500]).unwrap();
        assert_eq!(rotate_over(d.path(), 1000), ["ceph-osd.0.log"]);
        assert_eq!(
            fs::read(d.path().join("ceph-osd.0.log.1")).unwrap().len(),
            1510
        );
        assert!(rotate_over(&d.path().join("missing"), 1).is_empty());
    }
}
