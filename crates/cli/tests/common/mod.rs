//! Helpers for end-to-end tests: run the real `rookery` binary against a cluster in a temporary data dir,
//! on free ports, and clean up every process of it even when a test fails.

#![allow(dead_code)]

pub mod api;
pub mod hosts;
pub mod k8s;
pub mod monitoring;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs the real `rookery` binary on `data_dir`. A first `up` given no spec file gets [`TEST_SPEC`]
/// instead of the built-in default, so a test cluster needs a third of the default's free disk.
pub fn rookery(data_dir: &Path, args: &[&str]) -> Output {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let first_up = args.first().is_some_and(|a| a == "up")
        && !args.iter().any(|a| a == "-f" || a == "--file")
        && !data_dir.join("spec.yaml").exists();
    if first_up {
        let file = data_dir.with_extension("test-spec.yaml");
        std::fs::write(&file, test_spec()).expect("write the test spec");
        args.push("-f".into());
        args.push(file.display().to_string());
    }
    Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(&args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rookery")
}

/// The built-in default spec with smaller OSD files: tests write little, and the disk check asks for
/// the files' full size free (3 x 10 GiB would not fit beside a build on a shared CI disk).
pub fn test_spec() -> String {
    let spec = rookery_spec::DEFAULT_YAML.replace("size: 10Gi", "size: 4Gi");
    assert_ne!(
        spec,
        rookery_spec::DEFAULT_YAML,
        "the default spec no longer says size: 10Gi"
    );
    spec
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

/// The CephFilesystem the CSI tests use (`myfs`, which deploy/csi/'s CephFS StorageClass names).
pub const MYFS: &str = "apiVersion: ceph.rook.io/v1
kind: CephFilesystem
metadata: {name: myfs}
spec:
  metadataPool: {replicated: {size: 3}}
  dataPools: [{name: replicated, replicated: {size: 3}}]
  metadataServer: {activeCount: 1, activeStandby: true}
";

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

    /// Applies [`MYFS`] and waits until it is there.
    pub fn apply_myfs(&self) {
        let file = self.dir.parent().unwrap().join("myfs.yaml");
        std::fs::write(&file, MYFS).unwrap();
        self.ok(&["apply", "-f", file.to_str().unwrap()]);
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

    /// A librados connection to this cluster as client.admin, for checks behind the CLI's back.
    pub fn rados(&self) -> rookery_ceph::Rados {
        rookery_ceph::Rados::connect(
            &self.dir.join("ceph.conf"),
            "admin",
            Duration::from_secs(10),
        )
        .expect("connecting to the test cluster")
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

/// Mount points under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut targets: Vec<PathBuf> = rookery_volumes::mounts::table()
        .into_iter()
        .map(|m| m.target)
        .filter(|t| t.starts_with(dir))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    targets
}

/// Detaches (lazily) every mount under `dir`, deepest first: what a failed test left mounted outside
/// rookery's records (CSI publish targets, for one).
pub fn unmount_under(dir: &Path) {
    for t in mounts_under(dir) {
        if let Ok(c) = std::ffi::CString::new(t.as_os_str().as_encoded_bytes()) {
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let parent = self._parent.path().to_path_buf();
        // Mounts outside rookery's records first, so the purge's own unmounts are not refused as busy.
        let records = [self.dir.join("volumes"), self.dir.join("files")];
        let stray: Vec<PathBuf> = rookery_volumes::mounts::table()
            .into_iter()
            .map(|m| m.target)
            .filter(|t| t.starts_with(&parent) && !records.iter().any(|r| t.starts_with(r)))
            .filter(|t| !t.starts_with(&self.dir))
            .collect();
        for t in stray {
            unmount_under(&t);
        }
        if self.dir.join("cluster.json").exists() {
            let _ = self.run(&["down", "--purge", "--yes-really-destroy-data"]);
        }
        let needle = self.dir.display().to_string();
        for pid in processes_mentioning(&needle) {
            rookery_platform::proc::terminate(pid, Duration::from_secs(5));
        }
        unmount_under(&parent);
        // Loop devices whose backing file was this cluster's.
        if let Ok(entries) = std::fs::read_dir("/sys/block") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !name.starts_with("loop") {
                    continue;
                }
                let dev = PathBuf::from(format!("/dev/{name}"));
                if rookery_volumes::loopdev::backing_file(&dev)
                    .is_some_and(|b| b.starts_with(&self.dir))
                {
                    let _ = rookery_volumes::loopdev::detach(&dev);
                }
            }
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

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One HTTP/1.1 GET over `stream`; the body of a 200 answer (panics on any other).
fn http_get(mut stream: impl std::io::Read + std::io::Write, path: &str, accept: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}\n{body}"
    );
    body.to_string()
}

/// `GET /metrics` from 127.0.0.1:PORT (or ADDRESS), as a plain scraper asks (the classic text format).
pub fn scrape(address: &str) -> String {
    let stream = std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    http_get(stream, "/metrics", "*/*")
}

/// `GET /metrics` on the supervisor's control socket, asking for OpenMetrics as Prometheus does.
pub fn scrape_socket_openmetrics(socket: &Path) -> String {
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    http_get(
        stream,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
}

/// Runs `promtool check metrics` on `text`: fails on anything it reports (format errors and lint
/// problems alike).
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package `prometheus`): run scripts/install-deps.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\non:\n{text}",
        out.status.code()
    );
}

/// The value of one series, `name{labels}` exactly as exposed (labels in their exposed order).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .find_map(|v| v.split_whitespace().next()?.parse().ok())
}

/// A gRPC channel to a CSI driver's unix socket.
pub async fn csi_channel(path: PathBuf) -> tonic::transport::Channel {
    tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap()
}

/// One HTTP/1.0 request (so the answer is never chunked) to 127.0.0.1:PORT: the status code, the
/// head and the body; None when nothing answers.
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {address}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, head.to_string(), body.to_string()))
}

/// A mount taken away when dropped.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The writer's ring: this many 64 KiB blocks, overwritten round and round.
pub const RING_BLOCKS: usize = 256;

/// Writes checksummed 64 KiB blocks round a 16 MiB ring in a file on the mounted volume until told to
/// stop, each one synced; returns each slot's last checksum, how many blocks were written, and every
/// error seen.
pub fn ring_writer(
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(Vec<Option<u64>>, u64, Vec<String>)> {
    std::thread::spawn(move || {
        use std::io::{Seek, SeekFrom, Write};
        let mut sums = vec![None; RING_BLOCKS];
        let mut errors = Vec::new();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut seq: u64 = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let slot = (seq as usize) % RING_BLOCKS;
            let block = pseudo_random(seq + 1, 64 << 10);
            let wrote = f
                .seek(SeekFrom::Start((slot as u64) * (64 << 10)))
                .and_then(|_| f.write_all(&block))
                .and_then(|_| f.sync_data());
            match wrote {
                Ok(()) => sums[slot] = Some(checksum(&block)),
                Err(e) => errors.push(e.to_string()),
            }
            seq += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (sums, seq, errors)
    })
}

/// Checks a ring written by [`ring_writer`]: no write failed, it went round at least once, every slot
/// holds what was last written there. Returns how many blocks were written.
pub fn verify_ring(file: &Path, written: (Vec<Option<u64>>, u64, Vec<String>)) -> u64 {
    let (sums, blocks, errors) = written;
    assert!(errors.is_empty(), "the writer saw errors: {errors:?}");
    assert!(
        blocks as usize > RING_BLOCKS,
        "only {blocks} blocks written"
    );
    let data = std::fs::read(file).unwrap();
    for (i, sum) in sums.iter().enumerate() {
        let block = &data[i * (64 << 10)..(i + 1) * (64 << 10)];
        assert_eq!(Some(checksum(block)), *sum, "block {i} changed");
    }
    blocks
}

/// Every daemon of the cluster with its pid (0 when not running), as `status` has them.
pub fn pids(c: &TestCluster) -> std::collections::BTreeMap<String, u64> {
    c.status()["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["pid"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}
