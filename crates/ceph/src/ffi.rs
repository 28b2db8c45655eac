//! librados, loaded at run time.
//!
//! We `dlopen` the system library instead of linking it so that `rookery` starts (and `rookery doctor`
//! can say what to install) on a host without Ceph, and so that building needs no `-dev` package.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use libloading::Library;

use crate::CephError;

pub type RadosT = *mut c_void;
pub type IoCtxT = *mut c_void;

type CommandFn = unsafe extern "C" fn(
    RadosT,
    *const *const c_char,
    usize,
    *const c_char,
    usize,
    *mut *mut c_char,
    *mut usize,
    *mut *mut c_char,
    *mut usize,
) -> c_int;

/// Function pointers into librados.so.2; valid for the life of the process because the library is never
/// unloaded (it lives in a `static`).
pub struct Api {
    _lib: Library,
    pub version: unsafe extern "C" fn(*mut c_int, *mut c_int, *mut c_int),
    pub create2: unsafe extern "C" fn(*mut RadosT, *const c_char, *const c_char, u64) -> c_int,
    pub conf_read_file: unsafe extern "C" fn(RadosT, *const c_char) -> c_int,
    pub conf_set: unsafe extern "C" fn(RadosT, *const c_char, *const c_char) -> c_int,
    pub connect: unsafe extern "C" fn(RadosT) -> c_int,
    pub shutdown: unsafe extern "C" fn(RadosT),
    pub mon_command: CommandFn,
    pub mgr_command: CommandFn,
    pub buffer_free: unsafe extern "C" fn(*mut c_char),
    pub ioctx_create: unsafe extern "C" fn(RadosT, *const c_char, *mut IoCtxT) -> c_int,
    pub ioctx_destroy: unsafe extern "C" fn(IoCtxT),
    pub write_full: unsafe extern "C" fn(IoCtxT, *const c_char, *const c_char, usize) -> c_int,
    pub read: unsafe extern "C" fn(IoCtxT, *const c_char, *mut c_char, usize, u64) -> c_int,
    pub stat: unsafe extern "C" fn(IoCtxT, *const c_char, *mut u64, *mut libc::time_t) -> c_int,
    pub remove: unsafe extern "C" fn(IoCtxT, *const c_char) -> c_int,
    pub lock_exclusive: unsafe extern "C" fn(
        IoCtxT,
        *const c_char,
        *const c_char,
        *const c_char,
        *const c_char,
        *mut libc::timeval,
        u8,
    ) -> c_int,
    pub unlock: unsafe extern "C" fn(IoCtxT, *const c_char, *const c_char, *const c_char) -> c_int,
    pub exec: unsafe extern "C" fn(
        IoCtxT,
        *const c_char,
        *const c_char,
        *const c_char,
        *const c_char,
        usize,
        *mut c_char,
        usize,
    ) -> c_int,
    pub notify2: unsafe extern "C" fn(
        IoCtxT,
        *const c_char,
        *const c_char,
        c_int,
        u64,
        *mut *mut c_char,
        *mut usize,
    ) -> c_int,
}

// SAFETY: the struct holds only function pointers into a library that stays loaded; librados documents its
// cluster handle functions as thread-safe.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

pub const LIBRARY: &str = "librados.so.2";

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// The loaded library, or a plain error that says which package provides it.
pub fn api() -> Result<&'static Api, CephError> {
    API.get_or_init(load)
        .as_ref()
        .map_err(|detail| CephError::LibraryMissing {
            library: LIBRARY,
            package: "librados2",
            detail: detail.clone(),
        })
}

fn load() -> Result<Api, String> {
    // SAFETY: loading librados runs its static initialisers, which have no preconditions.
    let lib = unsafe { Library::new(LIBRARY) }.map_err(|e| e.to_string())?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol's type is the one declared in rados/librados.h (Ceph 16+).
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{}: {e}", $name))?
        };
    }
    Ok(Api {
        version: sym!("rados_version"),
        create2: sym!("rados_create2"),
        conf_read_file: sym!("rados_conf_read_file"),
        conf_set: sym!("rados_conf_set"),
        connect: sym!("rados_connect"),
        shutdown: sym!("rados_shutdown"),
        mon_command: sym!("rados_mon_command"),
        mgr_command: sym!("rados_mgr_command"),
        buffer_free: sym!("rados_buffer_free"),
        ioctx_create: sym!("rados_ioctx_create"),
        ioctx_destroy: sym!("rados_ioctx_destroy"),
        write_full: sym!("rados_write_full"),
        read: sym!("rados_read"),
        stat: sym!("rados_stat"),
        remove: sym!("rados_remove"),
        lock_exclusive: sym!("rados_lock_exclusive"),
        unlock: sym!("rados_unlock"),
        exec: sym!("rados_exec"),
        notify2: sym!("rados_notify2"),
        _lib: lib,
    })
}
