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
pub type ReadOpT = *mut c_void;
pub type WriteOpT = *mut c_void;
pub type CompletionT = *mut c_void;
pub type OmapIterT = *mut c_void;
type Callback = Option<unsafe extern "C" fn(CompletionT, *mut c_void)>;

/// `rados_osd_command`: a command to one OSD (its id first), otherwise as [`CommandFn`].
type OsdCommandFn = unsafe extern "C" fn(
    RadosT,
    c_int,
    *const *const c_char,
    usize,
    *const c_char,
    usize,
    *mut *mut c_char,
    *mut usize,
    *mut *mut c_char,
    *mut usize,
) -> c_int;

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
    pub osd_command: OsdCommandFn,
    pub buffer_free: unsafe extern "C" fn(*mut c_char),
    pub ioctx_create: unsafe extern "C" fn(RadosT, *const c_char, *mut IoCtxT) -> c_int,
    pub ioctx_destroy: unsafe extern "C" fn(IoCtxT),
    pub ioctx_create2: unsafe extern "C" fn(RadosT, i64, *mut IoCtxT) -> c_int,
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
    pub set_pool_full_try: unsafe extern "C" fn(IoCtxT),
    // Compound reads (one round trip may carry several sub-reads of one object), sent asynchronously.
    pub create_read_op: unsafe extern "C" fn() -> ReadOpT,
    pub release_read_op: unsafe extern "C" fn(ReadOpT),
    pub read_op_omap_get_vals2: unsafe extern "C" fn(
        ReadOpT,
        *const c_char,
        *const c_char,
        u64,
        *mut OmapIterT,
        *mut u8,
        *mut c_int,
    ),
    pub read_op_read:
        unsafe extern "C" fn(ReadOpT, u64, usize, *mut c_char, *mut usize, *mut c_int),
    pub aio_create_completion2:
        unsafe extern "C" fn(*mut c_void, Callback, *mut CompletionT) -> c_int,
    pub aio_read_op_operate:
        unsafe extern "C" fn(ReadOpT, IoCtxT, CompletionT, *const c_char, c_int) -> c_int,
    pub aio_read:
        unsafe extern "C" fn(IoCtxT, *const c_char, CompletionT, *mut c_char, usize, u64) -> c_int,
    pub aio_wait_for_complete: unsafe extern "C" fn(CompletionT) -> c_int,
    pub aio_get_return_value: unsafe extern "C" fn(CompletionT) -> c_int,
    pub aio_release: unsafe extern "C" fn(CompletionT),
    pub omap_get_next2: unsafe extern "C" fn(
        OmapIterT,
        *mut *mut c_char,
        *mut *mut c_char,
        *mut usize,
        *mut usize,
    ) -> c_int,
    pub omap_get_end: unsafe extern "C" fn(OmapIterT),
    pub create_write_op: unsafe extern "C" fn() -> WriteOpT,
    pub release_write_op: unsafe extern "C" fn(WriteOpT),
    pub write_op_omap_set2: unsafe extern "C" fn(
        WriteOpT,
        *const *const c_char,
        *const *const c_char,
        *const usize,
        *const usize,
        usize,
    ),
    pub write_op_omap_rm_keys2:
        unsafe extern "C" fn(WriteOpT, *const *const c_char, *const usize, usize),
    pub write_op_operate:
        unsafe extern "C" fn(WriteOpT, IoCtxT, *const c_char, *mut libc::time_t, c_int) -> c_int,
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
        osd_command: sym!("rados_osd_command"),
        buffer_free: sym!("rados_buffer_free"),
        ioctx_create: sym!("rados_ioctx_create"),
        ioctx_destroy: sym!("rados_ioctx_destroy"),
        ioctx_create2: sym!("rados_ioctx_create2"),
        write_full: sym!("rados_write_full"),
        read: sym!("rados_read"),
        stat: sym!("rados_stat"),
        remove: sym!("rados_remove"),
        lock_exclusive: sym!("rados_lock_exclusive"),
        unlock: sym!("rados_unlock"),
        exec: sym!("rados_exec"),
        notify2: sym!("rados_notify2"),
        set_pool_full_try: sym!("rados_set_pool_full_try"),
        create_read_op: sym!("rados_create_read_op"),
        release_read_op: sym!("rados_release_read_op"),
        read_op_omap_get_vals2: sym!("rados_read_op_omap_get_vals2"),
        read_op_read: sym!("rados_read_op_read"),
        aio_create_completion2: sym!("rados_aio_create_completion2"),
        aio_read_op_operate: sym!("rados_aio_read_op_operate"),
        aio_read: sym!("rados_aio_read"),
        aio_wait_for_complete: sym!("rados_aio_wait_for_complete"),
        aio_get_return_value: sym!("rados_aio_get_return_value"),
        aio_release: sym!("rados_aio_release"),
        omap_get_next2: sym!("rados_omap_get_next2"),
        omap_get_end: sym!("rados_omap_get_end"),
        create_write_op: sym!("rados_create_write_op"),
        release_write_op: sym!("rados_release_write_op"),
        write_op_omap_set2: sym!("rados_write_op_omap_set2"),
        write_op_omap_rm_keys2: sym!("rados_write_op_omap_rm_keys2"),
        write_op_operate: sym!("rados_write_op_operate"),
        _lib: lib,
    })
}
