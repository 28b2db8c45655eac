//! The Ceph executables rookery runs, each named here and nowhere else. Only steps without a library API
//! live here: creating a mon or OSD store (`--mkfs`) and the daemons themselves.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The executables a cluster needs and the Debian/Ubuntu package of each.
pub const REQUIRED_PROGRAMS: &[(&str, &str)] = &[
    ("ceph-mon", "ceph-mon"),
    ("ceph-mgr", "ceph-mgr"),
    ("ceph-osd", "ceph-osd"),
    ("monmaptool", "ceph-base"),
];

/// Executables needed only by some resources (a CephFilesystem, a CephObjectStore, file mounts).
pub const FEATURE_PROGRAMS: &[(&str, &str)] = &[
    ("ceph-mds", "ceph-mds"),
    ("radosgw", "radosgw"),
    ("radosgw-admin", "radosgw"),
    ("ceph-fuse", "ceph-fuse"),
];

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{program}` is not installed; install it with: apt-get install -y {package}")]
    NotInstalled { program: String, package: String },
    #[error("{step} failed: `{program}` {outcome}{}{}", tail_text(.stderr_tail), hint_text(.hint))]
    Failed {
        step: String,
        program: String,
        outcome: String,
        stderr_tail: String,
        hint: Option<&'static str>,
    },
    #[error("{step}: could not run `{program}`: {source}")]
    Spawn {
        step: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
}

fn tail_text(t: &str) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!("; it said:\n{t}")
    }
}

fn hint_text(h: &Option<&'static str>) -> String {
    h.map(|h| format!("\nwhat to do: {h}")).unwrap_or_default()
}

/// Known failure messages of Ceph tools, turned into advice.
const HINTS: &[(&str, &str)] = &[
    ("No space left on device", "free disk space on the data dir's filesystem, or give the OSD files a smaller size"),
    ("Address already in use", "another process holds the port; `rookery doctor` names it"),
    ("failed to fetch mon config", "the OSD's key was not registered with the mon before mkfs; re-run `rookery up`, it redoes this step"),
    ("Permission denied", "run rookery as root, or give it a --data-dir you own"),
    ("File exists", "a half-made store is in the way; re-run `rookery up`, which removes unfinished stores before retrying"),
];

fn hint_for(stderr: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(pat, _)| stderr.contains(pat))
        .map(|(_, h)| *h)
}

/// The package that provides `program`.
pub fn package_of(program: &str) -> &str {
    REQUIRED_PROGRAMS
        .iter()
        .chain(FEATURE_PROGRAMS)
        .find(|(p, _)| *p == program)
        .map(|(_, pkg)| *pkg)
        .unwrap_or("ceph")
}

/// Where `program` is on PATH (plus the sbin directories, which a non-login root shell may lack).
/// A Ceph release as its programs print it: `ceph version 16.2.15 (618f...) pacific (stable)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CephVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The release's name (`pacific`, `reef`), when printed.
    pub release: Option<String>,
}

impl std::fmt::Display for CephVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(r) = &self.release {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

/// Reads `ceph version X.Y.Z (hash) name (stable)`; None for anything else.
pub fn parse_version(text: &str) -> Option<CephVersion> {
    let rest = text.trim().strip_prefix("ceph version ")?;
    let mut words = rest.split_whitespace();
    let mut numbers = words.next()?.split(['.', '-']);
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    let patch = numbers.next()?.parse().ok()?;
    // After the hash in parentheses comes the release's name.
    let release = words
        .find(|w| !w.starts_with('('))
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        .map(String::from);
    Some(CephVersion {
        major,
        minor,
        patch,
        release,
    })
}

/// The version an installed Ceph program reports (`<program> --version`).
pub fn program_version(program: &str) -> Result<CephVersion, ToolError> {
    let exe = resolve(program)?;
    let out = Command::new(&exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn {
            step: "reading the Ceph version".into(),
            program: program.to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| ToolError::Failed {
        step: "reading the Ceph version".into(),
        program: program.to_string(),
        outcome: format!("printed no version ({})", out.status),
        stderr_tail: text.trim().to_string(),
        hint: None,
    })
}

pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn resolve(program: &str) -> Result<PathBuf, ToolError> {
    find_program(program).ok_or_else(|| ToolError::NotInstalled {
        program: program.to_string(),
        package: package_of(program).to_string(),
    })
}

/// Runs a Ceph tool to completion with its output in `log`, killing it after `timeout`.
fn run(
    step: &str,
    program: &str,
    args: &[String],
    log: &Path,
    timeout: Duration,
) -> Result<(), ToolError> {
    let exe = resolve(program)?;
    let spawn_err = |source| ToolError::Spawn {
        step: step.to_string(),
        program: program.to_string(),
        source,
    };
    let out = std::fs::File::create(log).map_err(spawn_err)?;
    let err = out.try_clone().map_err(spawn_err)?;
    tracing::debug!(step, program, ?args, "running");
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(spawn_err)?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(spawn_err)? {
            Some(s) => break Some(s),
            None if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if let Some(s) = status {
        if s.success() {
            return Ok(());
        }
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("\n");
    Err(ToolError::Failed {
        step: step.to_string(),
        program: program.to_string(),
        outcome: match status {
            Some(s) => format!("exited with {s}"),
            None => format!(
                "did not finish within {}s and was stopped",
                timeout.as_secs()
            ),
        },
        hint: hint_for(&text),
        stderr_tail: tail,
    })
}

/// Writes the initial monmap: `mons` are (id, addrvec such as `[v2:127.0.0.1:3300,v1:127.0.0.1:6789]`).
pub fn monmap_create(
    path: &Path,
    fsid: &str,
    mons: &[(String, String)],
    log: &Path,
) -> Result<(), ToolError> {
    let mut args = vec![
        "--create".into(),
        "--clobber".into(),
        "--fsid".into(),
        fsid.to_string(),
    ];
    for (id, addrs) in mons {
        args.extend(["--addv".into(), id.clone(), addrs.clone()]);
    }
    args.push(path.display().to_string());
    run(
        "writing the initial monmap",
        "monmaptool",
        &args,
        log,
        Duration::from_secs(30),
    )
}

/// Creates a mon store from the initial monmap and the keyring that seeds the auth database.
pub fn mon_mkfs(
    conf: &Path,
    id: &str,
    monmap: &Path,
    keyring: &Path,
    log: &Path,
) -> Result<(), ToolError> {
    let args = [
        "--conf".into(),
        conf.display().to_string(),
        "--mkfs".into(),
        "-i".into(),
        id.to_string(),
        "--monmap".into(),
        monmap.display().to_string(),
        "--keyring".into(),
        keyring.display().to_string(),
    ];
    run(
        &format!("creating the store of mon.{id}"),
        "ceph-mon",
        &args,
        log,
        Duration::from_secs(60),
    )
}

/// Creates an OSD store (bluestore). The OSD's key must already be registered (`osd new`) and written to
/// its keyring; `--no-mon-config` keeps mkfs from asking the mons for config it cannot yet authenticate for.
pub fn osd_mkfs(
    conf: &Path,
    id: u32,
    uuid: &str,
    device: Option<&Path>,
    options: &[(String, String)],
    log: &Path,
) -> Result<(), ToolError> {
    let mut args = vec![
        "--conf".into(),
        conf.display().to_string(),
        "-i".into(),
        id.to_string(),
        "--mkfs".into(),
        "--osd-uuid".into(),
        uuid.to_string(),
        "--no-mon-config".into(),
    ];
    if let Some(device) = device {
        // Over ceph.conf's block file: bluestore links `block` in the OSD's folder to the device.
        args.push("--bluestore-block-path".into());
        args.push(device.display().to_string());
    }
    for (name, value) in options {
        args.push(format!("--{name}"));
        args.push(value.clone());
    }
    run(
        &format!("creating the store of osd.{id}"),
        "ceph-osd",
        &args,
        log,
        Duration::from_secs(300),
    )
}

/// Runs `radosgw-admin` and parses what it prints. Its output can hold secret keys, so stdout stays in
/// memory; only stderr goes to `log`.
fn radosgw_admin(
    step: &str,
    conf: &Path,
    user: &str,
    args: &[&str],
    log: &Path,
) -> Result<Result<serde_json::Value, i32>, ToolError> {
    let exe = resolve("radosgw-admin")?;
    let spawn_err = |source| ToolError::Spawn {
        step: step.to_string(),
        program: "radosgw-admin".into(),
        source,
    };
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(spawn_err)?;
    tracing::debug!(step, ?args, "running radosgw-admin");
    let out = Command::new(exe)
        .arg("--conf")
        .arg(conf)
        .arg("--id")
        .arg(user)
        // Give up instead of hanging when PGs are not active (the reconciler retries).
        .args([
            "--rados_osd_op_timeout",
            "60",
            "--rados_mon_op_timeout",
            "30",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stderr(err)
        .output()
        .map_err(spawn_err)?;
    if !out.status.success() {
        return Ok(Err(out.status.code().unwrap_or(-1)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(Ok(serde_json::Value::Null));
    }
    serde_json::from_str(&text)
        .map(Ok)
        .map_err(|e| ToolError::Failed {
            step: step.to_string(),
            program: "radosgw-admin".into(),
            outcome: format!("printed something that is not JSON ({e})"),
            stderr_tail: String::new(),
            hint: None,
        })
}

fn admin_failed(step: &str, code: i32, log: &Path) -> ToolError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    ToolError::Failed {
        step: step.to_string(),
        program: "radosgw-admin".into(),
        outcome: format!("exited with code {code}"),
        stderr_tail: lines[lines.len().saturating_sub(6)..].join("\n"),
        hint: hint_for(&text),
    }
}

/// Makes realm, zonegroup and zone `store` (so the zone's pools are `<store>.rgw.*`, as in Rook) and
/// commits the period. Each part is made only when missing, so a repeat after a crash converges. Ceph has
/// no library call for this: the zone configuration lives in encoded objects only radosgw-admin writes.
/// `user` is the Ceph user it acts as (without `client.`).
pub fn rgw_realm_setup(
    conf: &Path,
    user: &str,
    store: &str,
    port: u16,
    log: &Path,
) -> Result<(), ToolError> {
    let step = format!("setting up the object store {store}");
    let endpoint = format!("--endpoints=http://127.0.0.1:{port}");
    let r = format!("--rgw-realm={store}");
    let g = format!("--rgw-zonegroup={store}");
    let z = format!("--rgw-zone={store}");
    let parts: [(&[&str], Vec<&str>); 3] = [
        (&["realm", "get", &r], vec!["realm", "create", &r]),
        (
            &["zonegroup", "get", &r, &g],
            vec!["zonegroup", "create", &r, &g, "--master", &endpoint],
        ),
        (
            &["zone", "get", &r, &g, &z],
            vec!["zone", "create", &r, &g, &z, "--master", &endpoint],
        ),
    ];
    for (get, create) in parts {
        if radosgw_admin(&step, conf, user, get, log)?.is_ok() {
            continue;
        }
        if let Err(code) = radosgw_admin(&step, conf, user, &create, log)? {
            return Err(admin_failed(&step, code, log));
        }
    }
    let commit = ["period", "update", "--commit", &r, &g, &z];
    if let Err(code) = radosgw_admin(&step, conf, user, &commit, log)? {
        return Err(admin_failed(&step, code, log));
    }
    Ok(())
}

/// The access and secret key of the store's admin-API user `uid` (capabilities on users, buckets, usage
/// and metadata), made when missing. The only identity RGW's admin API cannot create for itself.
pub fn rgw_admin_user(
    conf: &Path,
    user: &str,
    store: &str,
    uid: &str,
    log: &Path,
) -> Result<(String, String), ToolError> {
    let step = format!("making the admin API user of object store {store}");
    let r = format!("--rgw-realm={store}");
    let z = format!("--rgw-zone={store}");
    let u = format!("--uid={uid}");
    let info = match radosgw_admin(&step, conf, user, &["user", "info", &r, &z, &u], log)? {
        Ok(v) => v,
        Err(_) => {
            let create = [
                "user",
                "create",
                &r,
                &z,
                &u,
                "--display-name=rookery admin API",
                "--caps=users=*;buckets=*;usage=*;metadata=*",
            ];
            radosgw_admin(&step, conf, user, &create, log)?
                .map_err(|code| admin_failed(&step, code, log))?
        }
    };
    let key = info.get("keys").and_then(|k| k.as_array()).and_then(|k| {
        k.iter()
            .find(|k| k.get("user").and_then(|u| u.as_str()) == Some(uid))
    });
    let field = |name: &str| {
        key.and_then(|k| k.get(name))
            .and_then(|v| v.as_str())
            .map(String::from)
    };
    match (field("access_key"), field("secret_key")) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => Err(ToolError::Failed {
            step,
            program: "radosgw-admin".into(),
            outcome: "returned a user without S3 keys".into(),
            stderr_tail: String::new(),
            hint: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read() {
        let v = parse_version(
            "ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)\n",
        )
        .unwrap();
        assert_eq!((v.major, v.minor, v.patch), (16, 2, 15));
        assert_eq!(v.to_string(), "16.2.15 (pacific)");
        let dev = parse_version("ceph version 19.3.0-1234-gabc (abc) squid (dev)").unwrap();
        assert_eq!(dev.major, 19);
        assert_eq!(parse_version("radosgw: unknown option"), None);
    }

    #[test]
    fn missing_program_names_its_package() {
        let e = resolve("ceph-does-not-exist").unwrap_err();
        assert!(e.to_string().contains("apt-get install -y ceph"), "{e}");
    }

    #[test]
    fn failures_carry_the_tail_and_a_hint() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        let args = [
            "-c".to_string(),
            "echo one; echo 'write: No space left on device' >&2; exit 4".to_string(),
        ];
        let e = run("testing", "sh", &args, &log, Duration::from_secs(5)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("testing failed"), "{text}");
        assert!(text.contains("No space left on device"), "{text}");
        assert!(text.contains("free disk space"), "{text}");
    }

    #[test]
    fn hung_tools_are_stopped() {
        let d = tempfile::tempdir().unwrap();
        let e = run(
            "waiting",
            "sleep",
            &["5".into()],
            &d.path().join("log"),
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
    }
}
