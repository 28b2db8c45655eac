//! ceph.conf: rendering sections of options, and atomic file writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::CephError;

/// Sections (`global`, `mon`, `osd.0`, ...) of `option = value` lines. Option names are normalised to
/// underscores because Ceph treats `mon data` and `mon_data` as the same option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CephConf {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl CephConf {
    pub fn set(&mut self, section: &str, option: &str, value: impl Into<String>) {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(option.trim().replace(' ', "_"), value.into());
    }

    pub fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|s| s.get(&option.replace(' ', "_")))
            .map(String::as_str)
    }

    /// Reads ceph.conf's `[section]` and `option = value` lines (comments start with `#` or `;`). Lines
    /// outside a section belong to `global`, as Ceph reads them.
    pub fn parse(text: &str) -> CephConf {
        let mut conf = CephConf::default();
        let mut section = "global".to_string();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
            } else if let Some((k, v)) = line.split_once('=') {
                conf.set(&section, k, v.trim());
            }
        }
        conf
    }

    /// `global` first, then the daemon types, then single daemons, so the file reads top-down.
    pub fn render(&self) -> String {
        let rank = |name: &str| match name {
            "global" => 0,
            n if !n.contains('.') => 1,
            _ => 2,
        };
        let mut names: Vec<&String> = self.sections.keys().collect();
        names.sort_by_key(|n| (rank(n), n.as_str()));
        let mut out = String::from(
            "# Written by rookery; `spec.cephConfig` in the cluster spec overrides these.\n",
        );
        for name in names {
            let _ = writeln!(out, "\n[{name}]");
            for (k, v) in &self.sections[name] {
                let _ = writeln!(out, "{k} = {v}");
            }
        }
        out
    }
}

/// Writes `bytes` to `path` so that readers see either the old or the new file, never a part: a temporary
/// file in the same directory with `mode`, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CephError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode given to open() is masked by the umask; set it exactly.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| CephError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_what_render_writes_and_hand_written_files() {
        let mut c = CephConf::default();
        c.set("global", "fsid", "f-1");
        c.set("mon", "mon data", "/d");
        assert_eq!(CephConf::parse(&c.render()), c);
        let hand = CephConf::parse("fsid = x\n; note\n[global]\n mon host = 127.0.0.1:6789 \n");
        assert_eq!(hand.get("global", "fsid"), Some("x"));
        assert_eq!(hand.get("global", "mon_host"), Some("127.0.0.1:6789"));
    }

    #[test]
    fn renders_global_first_and_normalises_names() {
        let mut c = CephConf::default();
        c.set("osd.0", "osd data", "/x");
        c.set("osd", "osd_memory_target", "1");
        c.set("global", "fsid", "F");
        let text = c.render();
        let g = text.find("[global]").unwrap();
        let o = text.find("[osd]").unwrap();
        let o0 = text.find("[osd.0]").unwrap();
        assert!(g < o && o < o0, "{text}");
        assert!(text.contains("osd_data = /x"));
        assert_eq!(c.get("osd.0", "osd data"), Some("/x"));
    }

    #[test]
    fn atomic_write_sets_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
