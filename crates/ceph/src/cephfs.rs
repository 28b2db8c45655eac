//! libcephfs, loaded at run time like librados ([`crate::ffi`]): a CephFS client inside this process,
//! the raw library that `rookery bench files` measures a mount against. Paths are relative to the root
//! the client mounted.

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::path::Path;
use std::sync::OnceLock;

use libloading::Library;

use crate::CephError;

type MountT = *mut c_void;

struct Api {
    _lib: Library,
    create: unsafe extern "C" fn(*mut MountT, *const c_char) -> c_int,
    conf_read_file: unsafe extern "C" fn(MountT, *const c_char) -> c_int,
    conf_set: unsafe extern "C" fn(MountT, *const c_char, *const c_char) -> c_int,
    select_filesystem: unsafe extern "C" fn(MountT, *const c_char) -> c_int,
    mount: unsafe extern "C" fn(MountT, *const c_char) -> c_int,
    unmount: unsafe extern "C" fn(MountT) -> c_int,
    release: unsafe extern "C" fn(MountT) -> c_int,
    open: unsafe extern "C" fn(MountT, *const c_char, c_int, u32) -> c_int,
    close: unsafe extern "C" fn(MountT, c_int) -> c_int,
    read: unsafe extern "C" fn(MountT, c_int, *mut c_char, i64, i64) -> c_int,
    write: unsafe extern "C" fn(MountT, c_int, *const c_char, i64, i64) -> c_int,
    fsync: unsafe extern "C" fn(MountT, c_int, c_int) -> c_int,
    mkdir: unsafe extern "C" fn(MountT, *const c_char, u32) -> c_int,
    rmdir: unsafe extern "C" fn(MountT, *const c_char) -> c_int,
    unlink: unsafe extern "C" fn(MountT, *const c_char) -> c_int,
    statx: unsafe extern "C" fn(MountT, *const c_char, *mut c_void, c_uint, c_uint) -> c_int,
}

fn api() -> Result<&'static Api, CephError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: loading a system library whose initialisers have no preconditions.
        let lib = unsafe { Library::new("libcephfs.so.2") }.map_err(|e| e.to_string())?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the types match libcephfs.h of Ceph 16 and later.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("libcephfs lacks {}: {e}", $name))?
            };
        }
        Ok(Api {
            create: sym!("ceph_create"),
            conf_read_file: sym!("ceph_conf_read_file"),
            conf_set: sym!("ceph_conf_set"),
            select_filesystem: sym!("ceph_select_filesystem"),
            mount: sym!("ceph_mount"),
            unmount: sym!("ceph_unmount"),
            release: sym!("ceph_release"),
            open: sym!("ceph_open"),
            close: sym!("ceph_close"),
            read: sym!("ceph_read"),
            write: sym!("ceph_write"),
            fsync: sym!("ceph_fsync"),
            mkdir: sym!("ceph_mkdir"),
            rmdir: sym!("ceph_rmdir"),
            unlink: sym!("ceph_unlink"),
            statx: sym!("ceph_statx"),
            _lib: lib,
        })
    })
    .as_ref()
    .map_err(|detail| CephError::LibraryMissing {
        library: "libcephfs",
        package: "libcephfs2",
        detail: detail.clone(),
    })
}

fn cstr(s: &str) -> Result<CString, CephError> {
    CString::new(s).map_err(|_| CephError::InvalidArgument(format!("{s:?} holds a NUL byte")))
}

fn check(what: &str, rc: c_int) -> Result<c_int, CephError> {
    if rc < 0 {
        Err(CephError::call(what, rc, ""))
    } else {
        Ok(rc)
    }
}

/// A mounted libcephfs client; unmounted and released on drop. Calls may come from many threads at
/// once (libcephfs serialises what it must).
pub struct CephFsClient {
    mount: MountT,
    api: &'static Api,
}

// SAFETY: libcephfs's mount handle is safe to use from several threads.
unsafe impl Send for CephFsClient {}
// SAFETY: as above.
unsafe impl Sync for CephFsClient {}

/// An open file of a [`CephFsClient`].
pub struct CephFsFile<'a> {
    client: &'a CephFsClient,
    fd: c_int,
}

impl CephFsClient {
    /// Mounts `root` of filesystem `fs` as cephx user `id` (without `client.`), with `conf`'s settings
    /// and keyring, and `options` set on top.
    pub fn mount(
        conf: &Path,
        id: &str,
        fs: &str,
        root: &str,
        options: &[(&str, &str)],
    ) -> Result<CephFsClient, CephError> {
        let api = api()?;
        let mut mount: MountT = std::ptr::null_mut();
        let id = cstr(id)?;
        // SAFETY: out-pointer to a handle; id is a valid C string.
        check("ceph_create", unsafe {
            (api.create)(&mut mount, id.as_ptr())
        })?;
        let client = CephFsClient { mount, api };
        let conf = cstr(&conf.display().to_string())?;
        // SAFETY: a created handle and valid C strings, here and below.
        check("ceph_conf_read_file", unsafe {
            (api.conf_read_file)(mount, conf.as_ptr())
        })?;
        for (k, v) in options {
            let (k, v) = (cstr(k)?, cstr(v)?);
            check("ceph_conf_set", unsafe {
                (api.conf_set)(mount, k.as_ptr(), v.as_ptr())
            })?;
        }
        let fs = cstr(fs)?;
        check("ceph_select_filesystem", unsafe {
            (api.select_filesystem)(mount, fs.as_ptr())
        })?;
        let root = cstr(root)?;
        check("ceph_mount", unsafe { (api.mount)(mount, root.as_ptr()) })?;
        Ok(client)
    }

    /// Opens `path` with open(2) flags and mode.
    pub fn open(&self, path: &str, flags: i32, mode: u32) -> Result<CephFsFile<'_>, CephError> {
        let p = cstr(path)?;
        // SAFETY: a mounted handle and a valid C string.
        let fd = check(&format!("ceph_open {path}"), unsafe {
            (self.api.open)(self.mount, p.as_ptr(), flags, mode)
        })?;
        Ok(CephFsFile { client: self, fd })
    }

    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), CephError> {
        let p = cstr(path)?;
        // SAFETY: as in `open`.
        check(&format!("ceph_mkdir {path}"), unsafe {
            (self.api.mkdir)(self.mount, p.as_ptr(), mode)
        })
        .map(drop)
    }

    pub fn rmdir(&self, path: &str) -> Result<(), CephError> {
        let p = cstr(path)?;
        // SAFETY: as in `open`.
        check(&format!("ceph_rmdir {path}"), unsafe {
            (self.api.rmdir)(self.mount, p.as_ptr())
        })
        .map(drop)
    }

    pub fn unlink(&self, path: &str) -> Result<(), CephError> {
        let p = cstr(path)?;
        // SAFETY: as in `open`.
        check(&format!("ceph_unlink {path}"), unsafe {
            (self.api.unlink)(self.mount, p.as_ptr())
        })
        .map(drop)
    }

    /// Whether `path` exists (its basic attributes fetched, as stat(2) does).
    pub fn stat(&self, path: &str) -> Result<(), CephError> {
        /// CEPH_STATX_BASIC_STATS.
        const BASIC_STATS: c_uint = 0x7ff;
        let p = cstr(path)?;
        // struct ceph_statx is 152 bytes in Ceph 16; room to spare for later versions.
        let mut stx = [0u64; 64];
        // SAFETY: as in `open`; `stx` is larger than struct ceph_statx.
        check(&format!("ceph_statx {path}"), unsafe {
            (self.api.statx)(
                self.mount,
                p.as_ptr(),
                stx.as_mut_ptr().cast(),
                BASIC_STATS,
                0,
            )
        })
        .map(drop)
    }
}

impl Drop for CephFsClient {
    fn drop(&mut self) {
        // SAFETY: the handle was created by ceph_create and is not used after this.
        unsafe {
            (self.api.unmount)(self.mount);
            (self.api.release)(self.mount);
        }
    }
}

impl CephFsFile<'_> {
    /// Reads into `buf` at `offset`; returns the bytes read.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, CephError> {
        // SAFETY: an open fd and a buffer of the length given.
        let n = check("ceph_read", unsafe {
            (self.client.api.read)(
                self.client.mount,
                self.fd,
                buf.as_mut_ptr().cast(),
                buf.len() as i64,
                offset as i64,
            )
        })?;
        Ok(n as usize)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), CephError> {
        let mut done = 0usize;
        while done < buf.len() {
            // SAFETY: an open fd and the rest of a buffer of the length given.
            let n = check("ceph_write", unsafe {
                (self.client.api.write)(
                    self.client.mount,
                    self.fd,
                    buf[done..].as_ptr().cast(),
                    (buf.len() - done) as i64,
                    (offset + done as u64) as i64,
                )
            })?;
            if n == 0 {
                return Err(CephError::call("ceph_write", -libc::EIO, "wrote nothing"));
            }
            done += n as usize;
        }
        Ok(())
    }

    pub fn fsync(&self) -> Result<(), CephError> {
        // SAFETY: an open fd.
        check("ceph_fsync", unsafe {
            (self.client.api.fsync)(self.client.mount, self.fd, 0)
        })
        .map(drop)
    }
}

impl Drop for CephFsFile<'_> {
    fn drop(&mut self) {
        // SAFETY: an open fd, closed once.
        unsafe {
            (self.client.api.close)(self.client.mount, self.fd);
        }
    }
}
