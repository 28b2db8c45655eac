//! Facts about processes on this host, read from /proc.

use std::path::Path;
use std::time::{Duration, Instant};

/// True if `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name, which is in parentheses and may itself contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The command line of `pid`, split into arguments.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Reads a pid file; None when absent or not a number.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True if `pid` is alive and runs exactly `program` with `args`: a pid file alone is not proof, since
/// the pid may have been reused by an unrelated process after a reboot.
pub fn runs(pid: u32, program: &Path, args: &[String]) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Some(cmd) = cmdline(pid) else {
        return false;
    };
    let Some((exe, rest)) = cmd.split_first() else {
        return false;
    };
    let same_program = Path::new(exe) == program
        || Path::new(exe)
            .file_name()
            .is_some_and(|n| Some(n) == program.file_name());
    same_program && rest == args
}

pub fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// SIGTERM, then SIGKILL after `grace`; returns once the process is gone (or after a further 5 s).
pub fn terminate(pid: u32, grace: Duration) {
    if !is_alive(pid) {
        return;
    }
    signal(pid, libc::SIGTERM);
    let start = Instant::now();
    while is_alive(pid) && start.elapsed() < grace {
        reap(pid);
        std::thread::sleep(Duration::from_millis(25));
    }
    if is_alive(pid) {
        signal(pid, libc::SIGKILL);
        let start = Instant::now();
        while is_alive(pid) && start.elapsed() < Duration::from_secs(5) {
            reap(pid);
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    reap(pid);
}

/// Collects the exit status of `pid` if it is our child, so it does not linger as a zombie.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on a pid that may or may not be our child is harmless.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
}

/// Resident memory of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Makes `cmd` start in a session of its own, so it outlives the caller and gets none of the terminal's
/// signals (Ctrl-C, hangup).
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe, as a pre_exec hook must be.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Memory the kernel says is available for new processes, in bytes.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Which process listens on TCP `port` (v4 or v6), as (pid, command line).
pub fn tcp_listener(port: u16) -> Option<(u32, String)> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let local_port = cols.get(1)?.rsplit_once(':')?.1;
                // State 0A is LISTEN.
                (u16::from_str_radix(local_port, 16).ok()? == port && *cols.get(3)? == "0A")
                    .then(|| cols.get(9).map(|s| s.to_string()))
                    .flatten()
            })
        })?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                let cmd = cmdline(pid).map(|c| c.join(" ")).unwrap_or_default();
                return Some((pid, cmd));
            }
        }
    }
    None
}

/// A command that runs this very program again, for the children rookery starts (supervisor, FUSE servers,
/// trash purge). It executes `/proc/self/exe`, which stays valid after the file on disk is rebuilt or
/// upgraded (the path then names a deleted file and cannot be started), and shows the program's path as
/// its name so `ps` and the pid checks see what they expect.
pub fn own_program() -> std::io::Result<std::process::Command> {
    use std::os::unix::process::CommandExt;
    let path = std::env::current_exe()?;
    let shown = path
        .to_str()
        .and_then(|p| p.strip_suffix(" (deleted)"))
        .map(std::path::PathBuf::from)
        .unwrap_or(path);
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(shown);
    Ok(cmd)
}

/// Whether process `pid` runs the very file this process runs (same device and inode): false once the
/// binary was rebuilt or upgraded under it. None when `pid` cannot be looked at.
pub fn runs_this_program(pid: u32) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    let ours = std::fs::metadata("/proc/self/exe").ok()?;
    Some(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// Whether process `pid` runs the file at `path` as it is now (same device and inode). None when either
/// cannot be looked at.
pub fn runs_file(pid: u32, path: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    let file = std::fs::metadata(path).ok()?;
    Some(theirs.dev() == file.dev() && theirs.ino() == file.ino())
}

/// Sets the name `ps`, `top` and `pgrep` show for this process (and the threads it starts from now on):
/// a child started through [`own_program`] would otherwise be called "exe".
pub fn name_this_process(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes (longer is truncated).
        unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn this_process_runs_this_program() {
        assert_eq!(runs_this_program(std::process::id()), Some(true));
        assert_eq!(runs_this_program(u32::MAX), None);
    }

    #[test]
    fn own_program_runs_this_very_program() {
        // The test binary lists its own tests when started again with --list.
        let out = own_program()
            .unwrap()
            .args(["--list", "--format", "terse"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("own_program_runs_this_very_program"));
    }

    #[test]
    fn sees_itself_and_not_a_dead_pid() {
        let _serial = serial();
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(rss_bytes(me).unwrap() > 0);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    /// Tests that start and signal processes run one at a time: with several at once in one test binary, a
    /// pid freed by one test can be reused by another's child before the first is done with it.
    pub(crate) static PROCESSES: std::sync::Mutex<()> = std::sync::Mutex::new(());

    pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
        PROCESSES.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// /proc can show the parent's command line for a moment after spawn returns, while other threads of
    /// the test binary fork too.
    pub(crate) fn wait_for_exec(pid: u32, program: &str) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !cmdline(pid).is_some_and(|c| c.first().is_some_and(|p| p.ends_with(program)))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn matches_the_exact_command_line() {
        let _serial = serial();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_for_exec(pid, "sleep");
        assert!(runs(pid, Path::new("/usr/bin/sleep"), &["30".to_string()]));
        assert!(!runs(pid, Path::new("/usr/bin/sleep"), &["31".to_string()]));
        terminate(pid, Duration::from_secs(2));
        let _ = child.wait();
        assert!(!is_alive(pid));
    }

    #[test]
    fn names_the_listener_of_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (pid, _) = tcp_listener(port).unwrap();
        assert_eq!(pid, std::process::id());
    }
}
