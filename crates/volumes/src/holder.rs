//! Who holds a volume, recorded in the RADOS object `rookery.volume.<name>` in its pool, so every host sees it.
//!
//! A holder on this host is alive while its FUSE server process runs (and this host has not rebooted since).
//! A holder on another host is alive while that host keeps the image open: Ceph drops the watch of a dead
//! client within 30 s, so an image with no watchers has no live holder anywhere.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Holder {
    pub host: String,
    pub boot_id: String,
    /// The process serving the image (the FUSE server).
    pub pid: u32,
    pub path: String,
    pub read_only: bool,
    pub since_unix: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host {} at {} ({}, process {})",
            self.host,
            self.path,
            if self.read_only {
                "read-only"
            } else {
                "read-write"
            },
            self.pid
        )
    }
}

/// This host's name and boot id (which changes at every boot, so pids from before a reboot mean nothing).
pub fn this_host() -> (String, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .trim()
        .to_string();
    (host, boot)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone(String),
}

/// Whether `h` still holds the image. `pid_serves` says if a pid on this host is a live FUSE server;
/// `watched` if any client has the image open.
pub fn liveness(
    h: &Holder,
    here: &(String, String),
    pid_serves: impl Fn(u32) -> bool,
    watched: bool,
) -> Liveness {
    if h.host == here.0 {
        if h.boot_id != here.1 {
            return Liveness::Gone(format!("{} restarted since it mounted the volume", h.host));
        }
        if pid_serves(h.pid) {
            return Liveness::Alive;
        }
        return Liveness::Gone(format!("process {} on {} is gone", h.pid, h.host));
    }
    if watched {
        Liveness::Alive
    } else {
        Liveness::Gone(format!("{} no longer has the image open", h.host))
    }
}

/// The outcome of a claim: the holders to keep (the live ones plus the new one), the stale ones released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub holders: Vec<Holder>,
    pub released: Vec<(Holder, String)>,
}

/// Decides a claim: a read-write claim needs no live holder; a read-only claim needs no live writer.
/// Err names the live holder in the way.
pub fn claim(
    existing: Vec<Holder>,
    new: Holder,
    alive: impl Fn(&Holder) -> Liveness,
) -> Result<Claim, String> {
    let mut holders = Vec::new();
    let mut released = Vec::new();
    for h in existing {
        match alive(&h) {
            Liveness::Alive => holders.push(h),
            Liveness::Gone(why) => released.push((h, why)),
        }
    }
    let blocking = holders.iter().find(|h| !new.read_only || !h.read_only);
    if let Some(b) = blocking {
        return Err(format!(
            "the volume is already mounted {} by {b}; unmount it there first{}",
            if b.read_only {
                "read-only"
            } else {
                "read-write"
            },
            if new.read_only {
                ""
            } else {
                ", or mount it read-only if that one is read-only too"
            }
        ));
    }
    holders.push(new);
    Ok(Claim { holders, released })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(host: &str, boot: &str, pid: u32, ro: bool) -> Holder {
        Holder {
            host: host.into(),
            boot_id: boot.into(),
            pid,
            path: "/mnt/x".into(),
            read_only: ro,
            since_unix: 0,
        }
    }
    fn here() -> (String, String) {
        ("me".into(), "b1".into())
    }

    #[test]
    fn liveness_on_this_host_follows_the_process_and_the_boot() {
        assert_eq!(
            liveness(&h("me", "b1", 7, false), &here(), |p| p == 7, false),
            Liveness::Alive
        );
        assert!(matches!(
            liveness(&h("me", "b1", 8, false), &here(), |p| p == 7, true),
            Liveness::Gone(_)
        ));
        assert!(
            matches!(liveness(&h("me", "b0", 7, false), &here(), |_| true, true), Liveness::Gone(w) if w.contains("restarted"))
        );
    }

    #[test]
    fn other_hosts_live_while_the_image_is_watched() {
        assert_eq!(
            liveness(&h("other", "x", 1, false), &here(), |_| false, true),
            Liveness::Alive
        );
        assert!(matches!(
            liveness(&h("other", "x", 1, false), &here(), |_| false, false),
            Liveness::Gone(_)
        ));
    }

    #[test]
    fn one_writer_or_many_readers() {
        let alive = |_: &Holder| Liveness::Alive;
        let rw = h("me", "b1", 1, false);
        let ro = h("me", "b1", 2, true);
        assert!(claim(vec![rw.clone()], ro.clone(), alive)
            .unwrap_err()
            .contains("read-write"));
        assert!(claim(vec![ro.clone()], rw.clone(), alive).is_err());
        assert_eq!(
            claim(vec![ro.clone()], ro.clone(), alive)
                .unwrap()
                .holders
                .len(),
            2
        );
        let dead = |_: &Holder| Liveness::Gone("gone".into());
        let c = claim(vec![rw.clone()], rw.clone(), dead).unwrap();
        assert_eq!(c.holders, vec![rw.clone()]);
        assert_eq!(c.released.len(), 1);
    }
}
