//! Daemons as processes on this host: [`LocalPlatform`] implements [`Platform`] for a cluster whose data
//! dir is on this host. Each daemon runs `<program> -f --conf <data dir>/ceph.conf <Ceph's args>` in its
//! own process group, its output in `log/<name>.stdout`, its pid in `run/<name>.pid`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rookery_ceph::tools;

use crate::local_stores::DataDirStores;
use crate::{proc, DaemonSpec, DaemonState, DaemonStatus, Host, Platform, PlatformError, Stores};

/// A daemon that stays up this long has its backoff reset.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Quick deaths in a row after which a daemon is reported as crash-looping.
const CRASH_LOOP: u32 = 3;
/// Quick deaths in a row after which restarting stops until someone asks (`rookery daemon retry`): by
/// then the backoff has given a transient cause (a mon still electing, a port still held) 15 s to pass.
const GIVE_UP_AFTER: u32 = 6;
/// Lines of a daemon's own output that its status carries once it crash-loops.
const LOG_TAIL_LINES: usize = 8;

/// This host as the standalone platform offers it: loopback only, so nothing a test or a user's first
/// cluster starts is reachable from elsewhere.
pub const THIS_HOST_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const THIS_HOST_NETWORK: &str = "127.0.0.0/8";

/// The process that runs one daemon: what the neutral spec becomes on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Environment set for it on top of the supervisor's.
    pub env: Vec<(String, String)>,
    /// stdout and stderr go here (Ceph's own log goes where ceph.conf says).
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

/// Where a cluster's daemons keep their files on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonFiles {
    pub root: PathBuf,
}

/// The ceph.conf every daemon and tool of the cluster in `root` reads.
pub(crate) fn conf_path(root: &std::path::Path) -> PathBuf {
    root.join("ceph.conf")
}

impl DaemonFiles {
    pub fn conf(&self) -> PathBuf {
        conf_path(&self.root)
    }
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join(format!("log/{name}.stdout"))
    }
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.root.join(format!("run/{name}.pid"))
    }

    /// The process for `spec`: found on PATH (or the sbin directories a non-login root shell lacks).
    pub fn process(&self, spec: &DaemonSpec) -> Result<ProcessSpec, PlatformError> {
        let program = spec.kind.program();
        let exe = tools::find_program(program).ok_or_else(|| PlatformError::NotInstalled {
            program: program.to_string(),
            package: tools::package_of(program).to_string(),
        })?;
        let name = spec.name();
        // In the foreground, so the supervisor is its parent and sees it die.
        let mut args = vec![
            "-f".to_string(),
            "--conf".to_string(),
            self.conf().display().to_string(),
        ];
        args.extend(spec.args.iter().cloned());
        Ok(ProcessSpec {
            program: exe,
            args,
            env: spec.env.clone(),
            log: self.log(&name),
            pid_file: self.pid_file(&name),
            name,
        })
    }
}

enum Process {
    /// Started by us: we hold the child and collect its exit status.
    Child(Child),
    /// Found running (an earlier supervisor started it); we can only watch its pid.
    Adopted(u32),
}

impl Process {
    fn pid(&self) -> u32 {
        match self {
            Process::Child(c) => c.id(),
            Process::Adopted(pid) => *pid,
        }
    }

    /// Some(description of the exit) once the process is gone.
    fn exited(&mut self) -> Option<String> {
        match self {
            Process::Child(c) => match c.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("lost track of it: {e}")),
            },
            Process::Adopted(pid) => (!proc::is_alive(*pid)).then(|| "exited".to_string()),
        }
    }
}

struct Daemon {
    spec: ProcessSpec,
    process: Option<Process>,
    started: Instant,
    restarts: u32,
    /// Consecutive deaths within STABLE_AFTER of a start; drives the backoff.
    quick_failures: u32,
    last_exit: Option<String>,
    restart_at: Option<Instant>,
    adopted: bool,
    /// Restarting stopped after GIVE_UP_AFTER quick deaths.
    gave_up: bool,
}

/// Supervises the daemons of one cluster on this host.
pub struct LocalPlatform {
    files: DaemonFiles,
    stores: Arc<DataDirStores>,
    host: Host,
    daemons: BTreeMap<String, Daemon>,
    logs_checked: Instant,
}

impl LocalPlatform {
    /// The platform of the cluster whose data dir is `root`, on this host's loopback.
    pub fn new(root: impl Into<PathBuf>) -> LocalPlatform {
        LocalPlatform::on(root, this_host())
    }

    /// The platform of the cluster whose data dir is `root`, as `host` (a host of a cluster over several
    /// hosts, with its own name and address).
    pub fn on(root: impl Into<PathBuf>, host: Host) -> LocalPlatform {
        let root = root.into();
        LocalPlatform {
            stores: Arc::new(DataDirStores { root: root.clone() }),
            files: DaemonFiles { root },
            host,
            daemons: BTreeMap::new(),
            logs_checked: Instant::now(),
        }
    }

    pub fn files(&self) -> &DaemonFiles {
        &self.files
    }

    /// Stops any process still using this cluster (a supervisor that lost its socket, a daemon whose pid
    /// file was lost), found through /proc by its config path or `--data-dir`, so a purge leaves nothing
    /// running.
    pub fn stop_leftovers(&self) {
        let conf = self.files.conf().display().to_string();
        let root = self.files.root.display().to_string();
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Some(cmd) = proc::cmdline(pid) {
                let uses = cmd.iter().any(|a| a == &conf)
                    || cmd.windows(2).any(|w| w[0] == "--data-dir" && w[1] == root)
                        && cmd.iter().any(|a| a == "supervise");
                if uses {
                    proc::terminate(pid, Duration::from_secs(10));
                }
            }
        }
    }

    /// Runs a process: adopts a live one that runs exactly this spec (from its pid file), otherwise
    /// starts it. A no-op for a daemon already supervised with the same spec.
    pub fn ensure_process(&mut self, spec: ProcessSpec) -> Result<(), PlatformError> {
        if let Some(d) = self.daemons.get(&spec.name) {
            if d.spec == spec {
                return Ok(());
            }
            // A new command line replaces the old process; it must not keep running unsupervised.
            let name = spec.name.clone();
            self.stop_one(&name, Duration::from_secs(20));
        }
        let (process, adopted) = match adoptable(&spec) {
            Some(pid) => {
                tracing::info!(daemon = %spec.name, pid, "adopted running daemon");
                (Process::Adopted(pid), true)
            }
            None => (Process::Child(start(&spec)?), false),
        };
        self.daemons.insert(
            spec.name.clone(),
            Daemon {
                spec,
                process: Some(process),
                started: Instant::now(),
                restarts: 0,
                quick_failures: 0,
                last_exit: None,
                restart_at: None,
                adopted,
                gave_up: false,
            },
        );
        Ok(())
    }

    /// Starts a daemon that was given up on again, with a fresh backoff; a no-op for one that runs or
    /// waits for its backoff.
    pub fn retry(&mut self, name: &str) -> Result<(), PlatformError> {
        let d = self
            .daemons
            .get_mut(name)
            .ok_or_else(|| PlatformError::UnknownDaemon(name.to_string()))?;
        if d.gave_up {
            tracing::info!(daemon = %name, "retrying a daemon that was given up on");
            d.gave_up = false;
            d.quick_failures = 0;
            d.restart_at = Some(Instant::now());
        }
        Ok(())
    }

    /// Notices deaths and restarts daemons whose backoff has passed; every few seconds, rotates the logs
    /// that grew past their cap.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.logs_checked) >= crate::logs::CHECK_EVERY {
            self.logs_checked = now;
            for file in crate::logs::rotate_over(&self.files.root.join("log"), crate::logs::LOG_CAP)
            {
                tracing::info!(%file, cap_bytes = crate::logs::LOG_CAP, "rotated a log");
            }
        }
        for d in self.daemons.values_mut() {
            if let Some(p) = d.process.as_mut() {
                if let Some(exit) = p.exited() {
                    let ran = now.duration_since(d.started);
                    d.quick_failures = if ran < STABLE_AFTER {
                        d.quick_failures + 1
                    } else {
                        1
                    };
                    let backoff = backoff(d.quick_failures);
                    d.process = None;
                    if d.quick_failures >= GIVE_UP_AFTER {
                        tracing::error!(daemon = %d.spec.name, %exit, deaths = d.quick_failures, "daemon keeps dying at start; not restarting it until `rookery daemon retry`");
                        d.gave_up = true;
                        d.restart_at = None;
                    } else {
                        tracing::warn!(daemon = %d.spec.name, %exit, ran_secs = ran.as_secs(), backoff_secs = backoff.as_secs_f32(), "daemon died; restarting after backoff");
                        d.restart_at = Some(now + backoff);
                    }
                    d.last_exit = Some(exit);
                }
            }
            if d.process.is_none() && d.restart_at.is_some_and(|t| t <= now) {
                match start(&d.spec) {
                    Ok(child) => {
                        d.process = Some(Process::Child(child));
                        d.started = now;
                        d.restarts += 1;
                        d.restart_at = None;
                        d.adopted = false;
                    }
                    Err(e) => {
                        tracing::error!(daemon = %d.spec.name, error = %e, "restart failed");
                        d.quick_failures += 1;
                        d.restart_at = Some(now + backoff(d.quick_failures));
                    }
                }
            }
        }
    }

    /// Stops one daemon and forgets it (no restart).
    pub fn stop_one(&mut self, name: &str, grace: Duration) {
        if let Some(mut d) = self.daemons.remove(name) {
            if let Some(p) = d.process.as_mut() {
                proc::terminate(p.pid(), grace);
                if let Process::Child(c) = p {
                    let _ = c.wait();
                }
            }
            let _ = std::fs::remove_file(&d.spec.pid_file);
        }
    }

    fn statuses(&self) -> Vec<DaemonStatus> {
        self.daemons
            .values()
            .map(|d| DaemonStatus {
                name: d.spec.name.clone(),
                state: match (&d.process, d.restart_at) {
                    (Some(_), _) => DaemonState::Running,
                    (None, Some(_)) => DaemonState::Restarting,
                    (None, None) if d.gave_up => DaemonState::GaveUp,
                    (None, None) => DaemonState::Stopped,
                },
                pid: d.process.as_ref().map(Process::pid),
                restarts: d.restarts,
                last_exit: d.last_exit.clone(),
                uptime_secs: d.process.as_ref().map(|_| d.started.elapsed().as_secs()),
                adopted: d.adopted,
                crash_looping: d.gave_up
                    || d.quick_failures >= CRASH_LOOP && d.started.elapsed() < STABLE_AFTER,
                log_tail: if d.gave_up || d.quick_failures >= CRASH_LOOP {
                    log_tail(&d.spec.log, LOG_TAIL_LINES)
                } else {
                    Vec::new()
                },
            })
            .collect()
    }
}

/// A host of a cluster over several hosts: its daemons bind to `address`, clients reach them on
/// `public_network`.
pub fn host_at(name: &str, address: IpAddr, public_network: &str) -> Host {
    Host {
        name: name.to_string(),
        address,
        public_network: public_network.to_string(),
        labels: BTreeMap::new(),
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most len bytes into our buffer.
    let rc = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    if rc == 0 {
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    } else {
        "localhost".to_string()
    }
}

/// The one host of a standalone cluster.
fn this_host() -> Host {
    host_at(&host_name(), THIS_HOST_ADDRESS, THIS_HOST_NETWORK)
}

impl Platform for LocalPlatform {
    fn stores(&self) -> Arc<dyn Stores> {
        self.stores.clone()
    }

    fn hosts(&self) -> Vec<Host> {
        vec![self.host.clone()]
    }

    fn ensure(&mut self, spec: DaemonSpec) -> Result<(), PlatformError> {
        if spec.host != self.host.name {
            return Err(PlatformError::UnknownHost(spec.host));
        }
        let process = self.files.process(&spec)?;
        self.ensure_process(process)
    }

    /// SIGTERM to all of them first, then a wait for each: a group stops in parallel, since each daemon
    /// may take a few seconds to flush.
    fn stop(&mut self, names: &[String], grace: Duration) {
        for n in names {
            if let Some(pid) = self
                .daemons
                .get(n)
                .and_then(|d| d.process.as_ref())
                .map(Process::pid)
            {
                proc::signal(pid, libc::SIGTERM);
            }
        }
        for n in names {
            self.stop_one(n, grace);
        }
    }

    fn status(&self) -> Vec<DaemonStatus> {
        self.statuses()
    }

    fn watch(&mut self) {
        self.tick();
    }

    fn retry(&mut self, name: &str) -> Result<(), PlatformError> {
        LocalPlatform::retry(self, name)
    }

    /// Ceph's address nonce of a daemon process is its pid.
    fn is_current_instance(&self, name: &str, map_nonce: u64) -> Option<bool> {
        let pid = self.daemons.get(name)?.process.as_ref()?.pid();
        Some(u64::from(pid) == map_nonce)
    }

    fn runs_installed_program(&self, name: &str) -> Option<bool> {
        let d = self.daemons.get(name)?;
        let pid = d.process.as_ref()?.pid();
        proc::runs_file(pid, &d.spec.program)
    }

    fn port_holder(&self, host: &str, port: u16) -> Option<String> {
        if host != self.host.name {
            return None;
        }
        proc::tcp_listener(port).map(|(pid, cmd)| format!("pid {pid} ({cmd})"))
    }

    fn port_free(&self, _host: &str, port: u16) -> bool {
        TcpListener::bind((self.host.address, port)).is_ok()
    }

    fn free_port(&self, _host: &str) -> Option<u16> {
        TcpListener::bind((self.host.address, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()
    }

    fn memory_available(&self, _host: &str) -> Option<u64> {
        proc::mem_available()
    }

    fn log_location(&self, name: &str) -> String {
        self.files.log(name).display().to_string()
    }

    fn devices(&self, host: &str) -> Vec<crate::devices::Device> {
        if host == self.host.name {
            crate::devices::inventory()
        } else {
            Vec::new()
        }
    }

    fn is_running(&self, name: &str) -> bool {
        self.daemons.get(name).is_some_and(|d| d.process.is_some())
    }

    fn names(&self) -> Vec<String> {
        self.daemons.keys().cloned().collect()
    }
}

/// The last `lines` lines of a log file (at most its last 64 KiB are read).
fn log_tail(path: &std::path::Path, lines: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 << 10)));
    let mut text = Vec::new();
    if f.read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

fn backoff(quick_failures: u32) -> Duration {
    // 0.5 s, 1 s, 2 s, ... capped: the first restart is quick because most deaths are one-off kills.
    let exp = quick_failures.saturating_sub(1).min(8);
    (Duration::from_millis(500) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

/// The pid of a live process that runs exactly `spec`, from its pid file.
pub fn adoptable(spec: &ProcessSpec) -> Option<u32> {
    let pid = proc::read_pid_file(&spec.pid_file)?;
    proc::runs(pid, &spec.program, &spec.args).then_some(pid)
}

fn start(spec: &ProcessSpec) -> Result<Child, PlatformError> {
    let io_err = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| PlatformError::Io { path, source }
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(io_err(&spec.log))?;
    let log2 = log.try_clone().map_err(io_err(&spec.log))?;
    let child = Command::new(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Its own process group: a Ctrl-C meant for a foreground supervisor must not reach the daemons,
        // which the supervisor stops in order itself.
        .process_group(0)
        .spawn()
        .map_err(|source| PlatformError::Start {
            name: spec.name.clone(),
            program: spec.program.display().to_string(),
            source,
        })?;
    tracing::info!(daemon = %spec.name, pid = child.id(), "started");
    if let Err(e) = std::fs::write(&spec.pid_file, format!("{}\n", child.id())) {
        // Without its pid file no later supervisor could find it: better not running than untracked.
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        return Err(io_err(&spec.pid_file)(e));
    }
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_root() -> PathBuf {
        std::env::temp_dir()
    }

    fn sleeper(dir: &std::path::Path, name: &str, secs: &str) -> ProcessSpec {
        ProcessSpec {
            name: name.into(),
            program: "/usr/bin/sleep".into(),
            args: vec![secs.into()],
            env: vec![],
            log: dir.join(format!("{name}.log")),
            pid_file: dir.join(format!("{name}.pid")),
        }
    }

    #[test]
    fn restarts_a_killed_daemon_with_backoff() {
        let _serial = crate::proc::tests::serial();
        let d = tempfile::tempdir().unwrap();
        let mut p = LocalPlatform::new(dir_root());
        p.ensure_process(sleeper(d.path(), "a", "30")).unwrap();
        let pid = p.statuses()[0].pid.unwrap();
        proc::signal(pid, libc::SIGKILL);
        std::thread::sleep(Duration::from_millis(100));
        p.tick();
        assert_eq!(p.statuses()[0].state, DaemonState::Restarting);
        std::thread::sleep(Duration::from_millis(600));
        p.tick();
        let s = &p.statuses()[0];
        assert_eq!(s.state, DaemonState::Running);
        assert_eq!(s.restarts, 1);
        assert_ne!(s.pid, Some(pid));
        assert!(s.last_exit.as_deref().unwrap().contains("signal"), "{s:?}");
        assert!(!s.crash_looping);
        p.stop_one("a", Duration::from_secs(1));
        assert!(p.statuses().is_empty());
    }

    #[test]
    fn a_new_supervisor_adopts_instead_of_duplicating() {
        let _serial = crate::proc::tests::serial();
        let d = tempfile::tempdir().unwrap();
        let spec = sleeper(d.path(), "b", "31");
        let mut first = LocalPlatform::new(dir_root());
        first.ensure_process(spec.clone()).unwrap();
        let pid = first.statuses()[0].pid.unwrap();
        crate::proc::tests::wait_for_exec(pid, "sleep");
        // The first supervisor "dies" without stopping its daemons.
        std::mem::forget(first);
        let mut second = LocalPlatform::new(dir_root());
        second.ensure_process(spec.clone()).unwrap();
        let s = &second.statuses()[0];
        assert_eq!(s.pid, Some(pid));
        assert!(s.adopted);
        // A pid file naming another program is not adopted.
        let other = sleeper(d.path(), "b", "32");
        assert_eq!(adoptable(&other), None);
        second.stop_one("b", Duration::from_secs(1));
        assert!(
            !proc::is_alive(pid)
                || proc::cmdline(pid).is_none_or(|c| c.last().map(String::as_str) != Some("31"))
        );
    }

    #[test]
    fn a_daemon_that_keeps_dying_is_reported_as_crash_looping() {
        let _serial = crate::proc::tests::serial();
        let d = tempfile::tempdir().unwrap();
        let spec = ProcessSpec {
            name: "c".into(),
            program: "/usr/bin/false".into(),
            args: vec![],
            env: vec![],
            log: d.path().join("c.log"),
            pid_file: d.path().join("c.pid"),
        };
        let mut p = LocalPlatform::new(dir_root());
        p.ensure_process(spec).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.statuses()[0].crash_looping && Instant::now() < deadline {
            p.tick();
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = &p.statuses()[0];
        assert!(s.crash_looping, "{s:?}");
        assert!(s.restarts >= 2, "{s:?}");
        p.stop_one("c", Duration::from_secs(1));
    }

    #[test]
    fn a_daemon_that_keeps_dying_is_given_up_on_until_retried() {
        let _serial = crate::proc::tests::serial();
        let d = tempfile::tempdir().unwrap();
        let spec = ProcessSpec {
            name: "g".into(),
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "echo cannot open the block device >&2; exit 3".into(),
            ],
            env: vec![],
            log: d.path().join("g.log"),
            pid_file: d.path().join("g.pid"),
        };
        let mut p = LocalPlatform::new(dir_root());
        p.ensure_process(spec).unwrap();
        // The backoffs before the sixth death add up to 15.5 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        while p.statuses()[0].state != DaemonState::GaveUp && Instant::now() < deadline {
            p.tick();
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = p.statuses()[0].clone();
        assert_eq!(s.state, DaemonState::GaveUp, "{s:?}");
        assert_eq!(s.restarts, GIVE_UP_AFTER - 1, "{s:?}");
        assert!(s.crash_looping);
        assert!(
            s.log_tail
                .iter()
                .any(|l| l.contains("cannot open the block device")),
            "{s:?}"
        );
        // Given up means no more starts, however long it waits.
        std::thread::sleep(Duration::from_millis(600));
        p.tick();
        assert_eq!(p.statuses()[0].restarts, s.restarts);
        p.retry("g").unwrap();
        p.tick();
        let again = &p.statuses()[0];
        assert_eq!(again.restarts, s.restarts + 1, "{again:?}");
        assert!(matches!(
            p.retry("nope"),
            Err(PlatformError::UnknownDaemon(_))
        ));
        p.stop_one("g", Duration::from_secs(1));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }
}
