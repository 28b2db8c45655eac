//! Hosts for tests over several hosts, made on this machine: each host is a network namespace with its
//! own address and data dir. The hosts' links meet on a bridge that lives in a namespace of its own, so
//! no address of the machine is reachable from them and their traffic stays inside the namespaces the
//! test made. A host can be cut off (its link down) and brought back. Everything is removed on drop,
//! processes in the namespaces first, even when the test fails.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The hosts' network, inside the test's namespaces only.
const PREFIX: [u8; 3] = [10, 77, 0];

pub struct TestHost {
    pub name: String,
    /// The network namespace (`ip netns` name).
    pub netns: String,
    pub address: Ipv4Addr,
    /// Its own data dir.
    pub dir: tempfile::TempDir,
    /// Its end of the link, in the bridge's namespace.
    link: String,
}

impl TestHost {
    /// A command run inside this host's network namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let ns = std::ffi::CString::new(
            netns_path(&self.netns)
                .into_os_string()
                .into_encoded_bytes(),
        )
        .expect("a namespace path without NUL");
        // SAFETY: only async-signal-safe calls (open, setns, close) run between fork and exec; the path
        // was made before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(ns.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let rc = libc::setns(fd, libc::CLONE_NEWNET);
                libc::close(fd);
                if rc != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// N hosts on one bridge, removed on drop.
pub struct TestHosts {
    pub hosts: Vec<TestHost>,
    /// The namespace that holds the bridge.
    fabric: String,
}

fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestHosts {
    /// Makes `n` hosts, `host1` to `hostN`, at 10.77.0.1 to 10.77.0.N.
    pub fn new(n: usize) -> TestHosts {
        assert!((1..=250).contains(&n));
        let tag = format!("rk{}", std::process::id());
        let fabric = format!("{tag}-fabric");
        // Made first, so that a failure below still removes what exists.
        let mut made = TestHosts {
            hosts: Vec::new(),
            fabric: fabric.clone(),
        };
        ip(&["netns", "add", &fabric]);
        ip(&["-n", &fabric, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &fabric, "link", "set", "br0", "up"]);
        for i in 1..=n {
            let host = TestHost {
                name: format!("host{i}"),
                netns: format!("{tag}-h{i}"),
                address: Ipv4Addr::new(PREFIX[0], PREFIX[1], PREFIX[2], i as u8),
                dir: tempfile::Builder::new()
                    .prefix(&format!("rookery-host{i}-"))
                    .tempdir()
                    .expect("a host's data dir"),
                link: format!("h{i}"),
            };
            ip(&["netns", "add", &host.netns]);
            made.hosts.push(host);
            let host = &made.hosts[i - 1];
            let cidr = format!("{}/24", host.address);
            ip(&["-n", &host.netns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &fabric,
                "link",
                "add",
                &host.link,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &host.netns,
            ]);
            ip(&["-n", &fabric, "link", "set", &host.link, "master", "br0"]);
            ip(&["-n", &fabric, "link", "set", &host.link, "up"]);
            ip(&["-n", &host.netns, "addr", "add", &cidr, "dev", "eth0"]);
            ip(&["-n", &host.netns, "link", "set", "eth0", "up"]);
        }
        made
    }

    /// Cuts host `i` (0-based) off: its link is down, so nothing reaches it and it reaches nobody.
    pub fn cut(&self, i: usize) {
        ip(&[
            "-n",
            &self.fabric,
            "link",
            "set",
            &self.hosts[i].link,
            "down",
        ]);
    }

    /// Kills every process of host `i` (0-based) at once, as a host that loses power.
    pub fn kill(&self, i: usize) {
        kill_all_in(&self.hosts[i].netns);
    }

    /// Brings host `i` back on the network.
    pub fn restore(&self, i: usize) {
        ip(&["-n", &self.fabric, "link", "set", &self.hosts[i].link, "up"]);
    }

    /// The network namespaces this set made (for checks that nothing is left).
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.fabric.clone())
            .chain(self.hosts.iter().map(|h| h.netns.clone()))
            .collect()
    }
}

/// Kills every process in a network namespace (what a test started there and did not stop).
fn kill_all_in(netns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        for ns in self.namespaces() {
            kill_all_in(&ns);
        }
        // A failed test keeps the hosts' logs: the data dirs go with their TempDirs.
        if std::thread::panicking() {
            let kept =
                std::env::temp_dir().join(format!("rookery-hosts-logs-{}", std::process::id()));
            for h in &self.hosts {
                let to = kept.join(&h.name);
                let _ = std::fs::create_dir_all(&to);
                let _ = Command::new("cp")
                    .arg("-r")
                    .arg(h.data_dir().join("log"))
                    .arg(&to)
                    .output();
            }
            eprintln!("the hosts' logs are kept in {}", kept.display());
        }
        // Deleting a namespace deletes its links, and each veth takes its peer with it.
        for ns in self.namespaces() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}
