//! Loop devices through the kernel's ioctl interface (no `losetup` exec).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_DIRECT_IO: u32 = 16;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn last_error(what: &str, path: &Path) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Attaches `backing` to a free loop device with direct I/O (reads and writes go straight to the file,
/// not through a second page cache) and returns the device path.
pub fn attach(backing: &Path, read_only: bool) -> std::io::Result<PathBuf> {
    let file = OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(backing)?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // Another process may take the device we were told is free; try again a few times.
    for _ in 0..10 {
        // SAFETY: ioctl on an open fd with an integer-less request.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(last_error(
                "finding a free loop device via",
                Path::new("/dev/loop-control"),
            ));
        }
        let dev = PathBuf::from(format!("/dev/loop{n}"));
        let loopf = match OpenOptions::new().read(true).write(!read_only).open(&dev) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{} does not exist (the kernel has it but /dev does not); detach unused loop devices", dev.display()),
                ))
            }
            Err(e) => return Err(e),
        };
        let mut name = [0u8; 64];
        let src = backing.as_os_str().as_encoded_bytes();
        let len = src.len().min(63);
        name[..len].copy_from_slice(&src[..len]);
        let config = LoopConfig {
            fd: file.as_raw_fd() as u32,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_DIRECT_IO | if read_only { LO_FLAGS_READ_ONLY } else { 0 },
                lo_file_name: name,
                lo_crypt_name: [0; 64],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads a loop_config struct laid out as declared above.
        let rc = unsafe {
            libc::ioctl(
                loopf.as_raw_fd(),
                LOOP_CONFIGURE,
                &config as *const LoopConfig,
            )
        };
        if rc == 0 {
            return Ok(dev);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(std::io::Error::new(
                e.kind(),
                format!("attaching {} to {}: {e}", backing.display(), dev.display()),
            ));
        }
    }
    Err(std::io::Error::other("no free loop device after 10 tries"))
}

/// Detaches a loop device; a device that is already free is fine.
pub fn detach(dev: &Path) -> std::io::Result<()> {
    let f = match File::open(dev) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // SAFETY: ioctl on an open fd.
    if unsafe { libc::ioctl(f.as_raw_fd(), LOOP_CLR_FD) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENXIO) {
            return Ok(());
        }
        return Err(std::io::Error::new(
            e.kind(),
            format!("detaching {}: {e}", dev.display()),
        ));
    }
    Ok(())
}

/// The file behind a loop device, if it is attached.
pub fn backing_file(dev: &Path) -> Option<PathBuf> {
    let name = dev.file_name()?.to_str()?;
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim()))
}

/// Loop devices whose backing file lies under `dir`.
pub fn attached_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = PathBuf::from(format!("/dev/{name}"));
            backing_file(&dev)
                .filter(|b| b.starts_with(dir))
                .map(|_| dev)
        })
        .collect()
}

/// The size of a block device in bytes.
pub fn size_bytes(dev: &Path) -> Option<u64> {
    let name = dev.file_name()?.to_str()?;
    let sectors: u64 = std::fs::read_to_string(format!("/sys/block/{name}/size"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(sectors * 512)
}

/// Re-reads the backing file's size after it grew (LOOP_SET_CAPACITY).
pub fn refresh_capacity(dev: &Path) -> std::io::Result<()> {
    const LOOP_SET_CAPACITY: libc::c_ulong = 0x4C07;
    let f = File::open(dev)?;
    // SAFETY: ioctl on an open fd without an argument.
    if unsafe { libc::ioctl(f.as_raw_fd(), LOOP_SET_CAPACITY, 0) } != 0 {
        return Err(last_error("refreshing the size of", dev));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_and_detach_a_file() {
        if !Path::new("/dev/loop-control").exists() || unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root and /dev/loop-control");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("img");
        let file = File::create(&f).unwrap();
        file.set_len(8 << 20).unwrap();
        let dev = attach(&f, false).unwrap();
        assert_eq!(backing_file(&dev).unwrap(), f);
        assert_eq!(size_bytes(&dev), Some(8 << 20));
        assert_eq!(attached_under(d.path()), vec![dev.clone()]);
        file.set_len(16 << 20).unwrap();
        refresh_capacity(&dev).unwrap();
        assert_eq!(size_bytes(&dev), Some(16 << 20));
        detach(&dev).unwrap();
        assert!(attached_under(d.path()).is_empty());
        detach(&dev).unwrap();
    }
}
