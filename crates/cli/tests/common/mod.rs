//! Helpers for end-to-end tests: run the real `rookery` binary against a cluster in a temporary data dir,
//! on free ports, and clean up every process of it even when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn rookery(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rookery")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(o)))
}

/// Pids of every process whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .filter(|pid| rookery_platform::proc::is_alive(*pid))
        .collect()
}

/// A cluster in a temporary data dir, destroyed (processes and files) when dropped.
pub struct TestCluster {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl TestCluster {
    /// A data dir path that does not exist yet.
    pub fn new_dir() -> TestCluster {
        let parent = tempfile::Builder::new()
            .prefix("rookery-e2e-")
            .tempdir()
            .unwrap();
        TestCluster {
            dir: parent.path().join("cluster"),
            _parent: parent,
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        rookery(&self.dir, args)
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "rookery {args:?} failed:\n{}", text(&o));
        o
    }

    pub fn status(&self) -> serde_json::Value {
        json(&self.ok(&["status", "-o", "json"]))
    }

    /// Waits until `status` says ready; panics with the last status after `limit`.
    pub fn wait_ready(&self, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.status();
            if s["ready"] == true {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "not ready after {limit:?}: {:#}",
                s
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn daemon_pid(&self, name: &str) -> u32 {
        let s = self.status();
        s["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["pid"].as_u64())
            .unwrap_or_else(|| panic!("{name} has no pid: {s:#}")) as u32
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.dir.join("cluster.json").exists() {
            let _ = self.run(&["down", "--purge", "--yes-really-destroy-data"]);
        }
        let needle = self.dir.display().to_string();
        for pid in processes_mentioning(&needle) {
            rookery_platform::proc::terminate(pid, Duration::from_secs(5));
        }
    }
}

/// Bytes unique to `seed` (xorshift), so a mixed-up read cannot pass for a right one.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a: enough to tell any changed byte apart in a test.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
