//! The executables the volume layer runs, each in one place: filesystem probing, creation and growth, and
//! rookery's own FUSE server (which exposes an RBD image as a file).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::format::Signature;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{program}` is not installed; install it with: apt-get install -y {package}")]
    NotInstalled { program: String, package: String },
    #[error("{step} failed: `{program}` exited with {status}: {stderr}")]
    Failed {
        step: String,
        program: String,
        status: String,
        stderr: String,
    },
}

fn package_of(program: &str) -> &'static str {
    match program {
        "blkid" => "util-linux",
        "mkfs.ext4" | "resize2fs" | "dumpe2fs" | "e2fsck" => "e2fsprogs",
        "mkfs.xfs" | "xfs_growfs" => "xfsprogs",
        _ => "util-linux",
    }
}

fn run(step: &str, program: &str, args: &[&str]) -> Result<std::process::Output, ToolError> {
    let exe =
        rookery_ceph::tools::find_program(program).ok_or_else(|| ToolError::NotInstalled {
            program: program.into(),
            package: package_of(program).into(),
        })?;
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ToolError::Failed {
            step: step.into(),
            program: program.into(),
            status: "no start".into(),
            stderr: e.to_string(),
        })
}

fn check(step: &str, program: &str, args: &[&str]) -> Result<(), ToolError> {
    let out = run(step, program, args)?;
    into_result(step, program, &out)
}

/// A finished program's outcome, with the last lines of what it complained about.
fn into_result(step: &str, program: &str, out: &std::process::Output) -> Result<(), ToolError> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    Err(ToolError::Failed {
        step: step.into(),
        program: program.into(),
        status: out.status.to_string(),
        stderr: lines[lines.len().saturating_sub(4)..].join("; "),
    })
}

/// What the device already carries, as `blkid -p` tells it. Low-level probing (`-p`) reads the device
/// itself, not a cache, so a signature written by another host is seen.
pub fn probe(device: &Path) -> Result<Signature, ToolError> {
    let dev = device.display().to_string();
    let out = run(
        "checking the device for a filesystem",
        "blkid",
        &["-p", "-o", "export", &dev],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code() {
        // 2 means "nothing found", but blkid also says so when it could not read the device.
        Some(2) if stderr.is_empty() => Ok(Signature::Blank),
        Some(2) => Ok(Signature::Unclear(stderr)),
        Some(0) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let get = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k).map(str::to_string))
            };
            Ok(Signature::Found(
                get("TYPE=")
                    .or_else(|| get("PTTYPE="))
                    .unwrap_or_else(|| "unknown signature".into()),
            ))
        }
        _ => Err(ToolError::Failed {
            step: "checking the device for a filesystem".into(),
            program: "blkid".into(),
            status: out.status.to_string(),
            stderr,
        }),
    }
}

/// mkfs.ext4's extended options. Formatting happens only on an image that reads as zeroes everywhere
/// (blkid found nothing, librbd reports nothing written and there is no parent: see `format`), and
/// e2fsprogs 1.47 can be told so. It then neither zeroes inode tables and journal nor leaves them to
/// ext4lazyinit, which otherwise writes zeroes through the volume for minutes after the first mount
/// (the inode tables: 32 MiB for 2 GiB, every object it touches becoming allocated), each zeroing a
/// request the loop device waits for while the volume's own I/O queues behind it (50-70 ms apiece,
/// measured). No discard pass either: a new RBD image is already all holes.
const EXT4_PREZEROED: &str = "nodiscard,assume_storage_prezeroed=1";
/// The same for e2fsprogs before 1.47, which does not know `assume_storage_prezeroed`.
const EXT4_LAZY: &str = "nodiscard,lazy_itable_init=1,lazy_journal_init=1";

/// Creates a filesystem. Only ever called on a device `probe` found blank.
pub fn mkfs(device: &Path, fstype: &str) -> Result<(), ToolError> {
    let dev = device.display().to_string();
    match fstype {
        "ext4" => {
            let step = "creating an ext4 filesystem";
            let out = run(step, "mkfs.ext4", &["-q", "-E", EXT4_PREZEROED, &dev])?;
            // An option mke2fs does not know is refused before it writes anything.
            if !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("assume_storage_prezeroed")
            {
                return check(step, "mkfs.ext4", &["-q", "-E", EXT4_LAZY, &dev]);
            }
            into_result(step, "mkfs.ext4", &out)
        }
        "xfs" => check(
            "creating an xfs filesystem",
            "mkfs.xfs",
            &["-q", "-K", &dev],
        ),
        other => Err(ToolError::Failed {
            step: "creating a filesystem".into(),
            program: "mkfs".into(),
            status: "not run".into(),
            stderr: format!("unsupported filesystem {other}"),
        }),
    }
}

/// How a mounted filesystem's growth went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grown {
    Now,
    /// The kernel refused to grow it while mounted; it grows at its next mount.
    AtNextMount(String),
}

/// Grows a mounted filesystem to its device's size. Growing a mounted ext4 needs CAP_SYS_RESOURCE, which
/// some containers drop; then the growth waits for the next mount ([`grow_unmounted_ext4`]).
pub fn grow(device: &Path, mount_point: &Path, fstype: &str) -> Result<Grown, ToolError> {
    match fstype {
        "ext4" => match check("growing the ext4 filesystem", "resize2fs", &[&device.display().to_string()]) {
            Err(ToolError::Failed { stderr, .. }) if stderr.contains("Permission denied") => Ok(Grown::AtNextMount(
                "this host does not let a mounted ext4 grow (the CAP_SYS_RESOURCE capability is missing)".into(),
            )),
            other => other.map(|_| Grown::Now),
        },
        "xfs" => check("growing the xfs filesystem", "xfs_growfs", &[&mount_point.display().to_string()]).map(|_| Grown::Now),
        _ => Ok(Grown::Now),
    }
}

/// The size of the ext4 filesystem on an unmounted device, from its superblock.
fn ext4_size(device: &Path) -> Result<u64, ToolError> {
    let out = run(
        "reading the ext4 superblock",
        "dumpe2fs",
        &["-h", &device.display().to_string()],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    match (field("Block count:"), field("Block size:")) {
        (Some(n), Some(b)) => Ok(n * b),
        _ => Err(ToolError::Failed {
            step: "reading the ext4 superblock".into(),
            program: "dumpe2fs".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

/// Before mounting: grows an ext4 that is smaller than its device (a resize made while it was mounted on a
/// host that could not grow it then). Offline growth needs a clean check first, which `e2fsck -p` does.
pub fn grow_unmounted_ext4(device: &Path, device_size: u64) -> Result<bool, ToolError> {
    if ext4_size(device)? + (1 << 20) > device_size {
        return Ok(false);
    }
    let dev = device.display().to_string();
    let out = run(
        "checking the ext4 filesystem before growing it",
        "e2fsck",
        &["-f", "-p", &dev],
    )?;
    // 0: clean, 1: errors corrected. Anything else needs a person.
    if !matches!(out.status.code(), Some(0) | Some(1)) {
        return Err(ToolError::Failed {
            step: "checking the ext4 filesystem before growing it".into(),
            program: "e2fsck".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        });
    }
    check("growing the ext4 filesystem", "resize2fs", &[&dev])?;
    Ok(true)
}

/// The command that serves one RBD image as the file `<mount_dir>/<image>` in the foreground: this
/// same program's `fuse-serve` subcommand (see [`crate::fuse`]). The directory comes last, where
/// [`crate::fuse::is_server`] finds it.
pub fn fuse_server_command(
    conf: &Path,
    identity: &rookery_ceph::Identity,
    pool: &str,
    image: &str,
    mount_dir: &Path,
    read_only: bool,
) -> std::io::Result<std::process::Command> {
    let mut cmd = rookery_platform::proc::own_program()?;
    let mut args = vec![
        "fuse-serve".to_string(),
        "--conf".into(),
        conf.display().to_string(),
        "--user".into(),
        identity.user.clone(),
        "--pool".into(),
        pool.to_string(),
        "--image".into(),
        image.to_string(),
    ];
    if let Some(key_file) = &identity.key_file {
        args.push("--key-file".into());
        args.push(key_file.display().to_string());
    }
    if read_only {
        args.push("--read-only".into());
    }
    args.push(mount_dir.display().to_string());
    cmd.args(args);
    Ok(cmd)
}
