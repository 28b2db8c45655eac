//! librbd, loaded at run time, for the same reasons as librados (see `ffi.rs`): `rookery` must start and
//! diagnose on a host without Ceph, and building must not need `librbd-dev`.
//!
//! Types and signatures follow `rbd/librbd.h` of Ceph 16 (pacific, librbd 1.16). Only what `rbd.rs` uses
//! is declared.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use libloading::Library;

use crate::ffi::IoCtxT;
use crate::CephError;

pub type ImageT = *mut c_void;
pub type ImageOptionsT = *mut c_void;

/// `RBD_IMAGE_OPTION_*` (an anonymous enum in librbd.h; its values are part of the ABI).
pub const IMAGE_OPTION_FEATURES: c_int = 1;
pub const IMAGE_OPTION_CLONE_FORMAT: c_int = 12;
pub const IMAGE_OPTION_DATA_POOL: c_int = 10;

/// `RBD_SNAP_NAMESPACE_TYPE_USER`: snapshots users made, as opposed to trash, group and mirror ones.
pub const SNAP_NAMESPACE_TYPE_USER: c_int = 0;

/// `rbd_image_spec_t`; both strings are malloc'ed by librbd and freed by `rbd_image_spec_list_cleanup`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ImageSpec {
    pub id: *mut c_char,
    pub name: *mut c_char,
}

impl ImageSpec {
    pub const EMPTY: ImageSpec = ImageSpec {
        id: ptr::null_mut(),
        name: ptr::null_mut(),
    };
}

/// `rbd_linked_image_spec_t`. `trash` is a C `bool`; kept as `u8` so that no byte librbd leaves in it can be
/// an invalid Rust value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LinkedImageSpec {
    pub pool_id: i64,
    pub pool_name: *mut c_char,
    pub pool_namespace: *mut c_char,
    pub image_id: *mut c_char,
    pub image_name: *mut c_char,
    pub trash: u8,
}

impl LinkedImageSpec {
    pub const EMPTY: LinkedImageSpec = LinkedImageSpec {
        pool_id: 0,
        pool_name: ptr::null_mut(),
        pool_namespace: ptr::null_mut(),
        image_id: ptr::null_mut(),
        image_name: ptr::null_mut(),
        trash: 0,
    };
}

/// `rbd_snap_spec_t`; `namespace_type` is the C enum `rbd_snap_namespace_type_t` (an `int`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SnapSpec {
    pub id: u64,
    pub namespace_type: c_int,
    pub name: *mut c_char,
}

impl SnapSpec {
    pub const EMPTY: SnapSpec = SnapSpec {
        id: 0,
        namespace_type: 0,
        name: ptr::null_mut(),
    };
}

/// `rbd_snap_info_t`. A list of them ends with an entry whose `name` is null, which is what
/// `rbd_snap_list_end` walks to free the names.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SnapInfo {
    pub id: u64,
    pub size: u64,
    pub name: *const c_char,
}

impl SnapInfo {
    pub const EMPTY: SnapInfo = SnapInfo {
        id: 0,
        size: 0,
        name: ptr::null(),
    };
}

/// Called by `rbd_diff_iterate2` for each extent: (offset, length, exists, arg). Non-zero stops the walk.
/// `rbd_image_watcher_t`.
#[repr(C)]
pub struct Watcher {
    pub addr: *mut c_char,
    pub id: i64,
    pub cookie: u64,
}

/// `rbd_trash_image_info_t`; `id` and `name` are malloc'ed by librbd and freed by `rbd_trash_list_cleanup`.
/// `source` is the C enum `rbd_trash_image_source_t` (an `int`), `time_t` is 64-bit on LP64.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TrashInfo {
    pub id: *mut c_char,
    pub name: *mut c_char,
    pub source: c_int,
    pub deletion_time: i64,
    pub deferment_end_time: i64,
}

impl TrashInfo {
    pub const EMPTY: TrashInfo = TrashInfo {
        id: ptr::null_mut(),
        name: ptr::null_mut(),
        source: 0,
        deletion_time: 0,
        deferment_end_time: 0,
    };
}

/// `rbd_image_info_t`, filled by `rbd_stat`. The prefix and parent fields are fixed-size and deprecated;
/// only the sizes are read.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ImageInfo {
    pub size: u64,
    pub obj_size: u64,
    pub num_objs: u64,
    pub order: c_int,
    pub block_name_prefix: [c_char; 24],
    pub parent_pool: i64,
    pub parent_name: [c_char; 96],
}

impl ImageInfo {
    pub const EMPTY: ImageInfo = ImageInfo {
        size: 0,
        obj_size: 0,
        num_objs: 0,
        order: 0,
        block_name_prefix: [0; 24],
        parent_pool: 0,
        parent_name: [0; 96],
    };
}

/// `RBD_TRASH_IMAGE_SOURCE_USER`: moved to the trash by a client (as opposed to mirroring, migration or
/// an `rbd_remove` in progress).
pub const TRASH_SOURCE_USER: c_int = 0;

/// `rbd_completion_t`: an AIO completion, created with a callback and released once it has fired.
pub type CompletionT = *mut c_void;
/// `rbd_callback_t`: called once per completion, from one of librbd's threads.
pub type AioCallback = unsafe extern "C" fn(CompletionT, *mut c_void);

pub type DiffCallback = unsafe extern "C" fn(u64, usize, c_int, *mut c_void) -> c_int;

/// Function pointers into librbd.so.1; valid for the life of the process because the library is never
/// unloaded (it lives in a `static`). Function pointers and `Library` are `Send + Sync`, so the table can be
/// shared as is; whether a given *handle* may be shared is decided by the safe wrappers in `rbd.rs`.
pub struct Api {
    _lib: Library,
    pub version: unsafe extern "C" fn(*mut c_int, *mut c_int, *mut c_int),

    pub image_options_create: unsafe extern "C" fn(*mut ImageOptionsT),
    pub image_options_destroy: unsafe extern "C" fn(ImageOptionsT),
    pub image_options_set_uint64: unsafe extern "C" fn(ImageOptionsT, c_int, u64) -> c_int,
    pub image_options_set_string:
        unsafe extern "C" fn(ImageOptionsT, c_int, *const c_char) -> c_int,
    pub create4: unsafe extern "C" fn(IoCtxT, *const c_char, u64, ImageOptionsT) -> c_int,

    pub image_spec_list_cleanup: unsafe extern "C" fn(*mut ImageSpec, usize),
    pub linked_image_spec_cleanup: unsafe extern "C" fn(*mut LinkedImageSpec),
    pub linked_image_spec_list_cleanup: unsafe extern "C" fn(*mut LinkedImageSpec, usize),
    pub snap_spec_cleanup: unsafe extern "C" fn(*mut SnapSpec),

    pub list2: unsafe extern "C" fn(IoCtxT, *mut ImageSpec, *mut usize) -> c_int,
    pub create2: unsafe extern "C" fn(IoCtxT, *const c_char, u64, u64, *mut c_int) -> c_int,
    pub clone3: unsafe extern "C" fn(
        IoCtxT,
        *const c_char,
        *const c_char,
        IoCtxT,
        *const c_char,
        ImageOptionsT,
    ) -> c_int,
    pub remove: unsafe extern "C" fn(IoCtxT, *const c_char) -> c_int,

    pub open: unsafe extern "C" fn(IoCtxT, *const c_char, *mut ImageT, *const c_char) -> c_int,
    pub open_read_only:
        unsafe extern "C" fn(IoCtxT, *const c_char, *mut ImageT, *const c_char) -> c_int,
    pub close: unsafe extern "C" fn(ImageT) -> c_int,

    pub get_size: unsafe extern "C" fn(ImageT, *mut u64) -> c_int,
    pub get_features: unsafe extern "C" fn(ImageT, *mut u64) -> c_int,
    pub resize: unsafe extern "C" fn(ImageT, u64) -> c_int,
    pub get_parent: unsafe extern "C" fn(ImageT, *mut LinkedImageSpec, *mut SnapSpec) -> c_int,
    pub list_children3: unsafe extern "C" fn(ImageT, *mut LinkedImageSpec, *mut usize) -> c_int,
    pub flatten: unsafe extern "C" fn(ImageT) -> c_int,

    pub snap_list: unsafe extern "C" fn(ImageT, *mut SnapInfo, *mut c_int) -> c_int,
    pub snap_list_end: unsafe extern "C" fn(*mut SnapInfo),
    pub snap_create: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,
    pub snap_remove: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,
    pub snap_get_namespace_type: unsafe extern "C" fn(ImageT, u64, *mut c_int) -> c_int,

    pub diff_iterate2: unsafe extern "C" fn(
        ImageT,
        *const c_char,
        u64,
        u64,
        u8,
        u8,
        DiffCallback,
        *mut c_void,
    ) -> c_int,

    pub metadata_get: unsafe extern "C" fn(ImageT, *const c_char, *mut c_char, *mut usize) -> c_int,
    pub metadata_set: unsafe extern "C" fn(ImageT, *const c_char, *const c_char) -> c_int,
    pub metadata_remove: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,

    pub read: unsafe extern "C" fn(ImageT, u64, usize, *mut c_char) -> isize,
    pub write: unsafe extern "C" fn(ImageT, u64, usize, *const c_char) -> isize,
    pub flush: unsafe extern "C" fn(ImageT) -> c_int,
    pub watchers_list: unsafe extern "C" fn(ImageT, *mut Watcher, *mut usize) -> c_int,
    pub watchers_list_cleanup: unsafe extern "C" fn(*mut Watcher, usize),
    pub lock_get_owners:
        unsafe extern "C" fn(ImageT, *mut c_int, *mut *mut c_char, *mut usize) -> c_int,
    pub lock_get_owners_cleanup: unsafe extern "C" fn(*mut *mut c_char, usize),
    pub lock_break: unsafe extern "C" fn(ImageT, c_int, *const c_char) -> c_int,
    pub trash_move: unsafe extern "C" fn(IoCtxT, *const c_char, u64) -> c_int,
    pub trash_remove: unsafe extern "C" fn(IoCtxT, *const c_char, bool) -> c_int,
    pub get_id: unsafe extern "C" fn(ImageT, *mut c_char, usize) -> c_int,
    pub stat: unsafe extern "C" fn(ImageT, *mut ImageInfo, usize) -> c_int,
    pub get_block_name_prefix: unsafe extern "C" fn(ImageT, *mut c_char, usize) -> c_int,
    pub get_data_pool_id: unsafe extern "C" fn(ImageT) -> i64,
    pub get_stripe_count: unsafe extern "C" fn(ImageT, *mut u64) -> c_int,
    pub aio_create_completion:
        unsafe extern "C" fn(*mut c_void, AioCallback, *mut CompletionT) -> c_int,
    pub aio_get_return_value: unsafe extern "C" fn(CompletionT) -> isize,
    pub aio_release: unsafe extern "C" fn(CompletionT),
    pub aio_write: unsafe extern "C" fn(ImageT, u64, usize, *const c_char, CompletionT) -> c_int,
    pub aio_read2:
        unsafe extern "C" fn(ImageT, u64, usize, *mut c_char, CompletionT, c_int) -> c_int,
    pub aio_flush: unsafe extern "C" fn(ImageT, CompletionT) -> c_int,
    pub aio_write_zeroes:
        unsafe extern "C" fn(ImageT, u64, usize, CompletionT, c_int, c_int) -> c_int,
    pub trash_list: unsafe extern "C" fn(IoCtxT, *mut TrashInfo, *mut usize) -> c_int,
    pub trash_list_cleanup: unsafe extern "C" fn(*mut TrashInfo, usize),
}

pub const LIBRARY: &str = "librbd.so.1";
pub const PACKAGE: &str = "librbd1";

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// The loaded library, or a plain error that says which package provides it.
pub fn api() -> Result<&'static Api, CephError> {
    API.get_or_init(load).as_ref().map_err(|d| missing(d))
}

fn missing(detail: &str) -> CephError {
    CephError::LibraryMissing {
        library: LIBRARY,
        package: PACKAGE,
        detail: detail.to_string(),
    }
}

fn load() -> Result<Api, String> {
    // SAFETY: loading librbd runs its (and librados') static initialisers, which have no preconditions; if
    // librados is already loaded by `ffi.rs` the loader reuses that copy, so handles from it are valid here.
    let lib = unsafe { Library::new(LIBRARY) }.map_err(|e| e.to_string())?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the field this initialises has the type declared for the symbol in rbd/librbd.h
            // (Ceph 16); the pointer stays valid because `lib` is stored next to it and never unloaded.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{}: {e}", $name))?
        };
    }
    Ok(Api {
        version: sym!("rbd_version"),
        image_options_create: sym!("rbd_image_options_create"),
        image_options_destroy: sym!("rbd_image_options_destroy"),
        image_options_set_uint64: sym!("rbd_image_options_set_uint64"),
        image_options_set_string: sym!("rbd_image_options_set_string"),
        create4: sym!("rbd_create4"),
        image_spec_list_cleanup: sym!("rbd_image_spec_list_cleanup"),
        linked_image_spec_cleanup: sym!("rbd_linked_image_spec_cleanup"),
        linked_image_spec_list_cleanup: sym!("rbd_linked_image_spec_list_cleanup"),
        snap_spec_cleanup: sym!("rbd_snap_spec_cleanup"),
        list2: sym!("rbd_list2"),
        create2: sym!("rbd_create2"),
        clone3: sym!("rbd_clone3"),
        remove: sym!("rbd_remove"),
        open: sym!("rbd_open"),
        open_read_only: sym!("rbd_open_read_only"),
        close: sym!("rbd_close"),
        get_size: sym!("rbd_get_size"),
        get_features: sym!("rbd_get_features"),
        resize: sym!("rbd_resize"),
        get_parent: sym!("rbd_get_parent"),
        list_children3: sym!("rbd_list_children3"),
        flatten: sym!("rbd_flatten"),
        snap_list: sym!("rbd_snap_list"),
        snap_list_end: sym!("rbd_snap_list_end"),
        snap_create: sym!("rbd_snap_create"),
        snap_remove: sym!("rbd_snap_remove"),
        snap_get_namespace_type: sym!("rbd_snap_get_namespace_type"),
        diff_iterate2: sym!("rbd_diff_iterate2"),
        metadata_get: sym!("rbd_metadata_get"),
        metadata_set: sym!("rbd_metadata_set"),
        metadata_remove: sym!("rbd_metadata_remove"),
        read: sym!("rbd_read"),
        write: sym!("rbd_write"),
        flush: sym!("rbd_flush"),
        watchers_list: sym!("rbd_watchers_list"),
        watchers_list_cleanup: sym!("rbd_watchers_list_cleanup"),
        lock_get_owners: sym!("rbd_lock_get_owners"),
        lock_get_owners_cleanup: sym!("rbd_lock_get_owners_cleanup"),
        lock_break: sym!("rbd_lock_break"),
        trash_move: sym!("rbd_trash_move"),
        trash_remove: sym!("rbd_trash_remove"),
        get_id: sym!("rbd_get_id"),
        stat: sym!("rbd_stat"),
        get_block_name_prefix: sym!("rbd_get_block_name_prefix"),
        get_data_pool_id: sym!("rbd_get_data_pool_id"),
        get_stripe_count: sym!("rbd_get_stripe_count"),
        aio_create_completion: sym!("rbd_aio_create_completion"),
        aio_get_return_value: sym!("rbd_aio_get_return_value"),
        aio_release: sym!("rbd_aio_release"),
        aio_write: sym!("rbd_aio_write"),
        aio_read2: sym!("rbd_aio_read2"),
        aio_flush: sym!("rbd_aio_flush"),
        aio_write_zeroes: sym!("rbd_aio_write_zeroes"),
        trash_list: sym!("rbd_trash_list"),
        trash_list_cleanup: sym!("rbd_trash_list_cleanup"),
        _lib: lib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_names_the_package() {
        let msg = missing("librbd.so.1: cannot open shared object file").to_string();
        assert!(msg.contains("apt-get install -y librbd1"), "{msg}");
        assert!(msg.contains("librbd.so.1"), "{msg}");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn struct_layouts_match_librbd_h_on_lp64() {
        // Sizes as the C compiler lays them out on 64-bit Linux; a mismatch would corrupt arrays librbd fills.
        assert_eq!(std::mem::size_of::<ImageSpec>(), 16);
        assert_eq!(std::mem::size_of::<LinkedImageSpec>(), 48);
        assert_eq!(std::mem::size_of::<SnapSpec>(), 24);
        assert_eq!(std::mem::size_of::<SnapInfo>(), 24);
        assert_eq!(std::mem::size_of::<TrashInfo>(), 40);
        assert_eq!(std::mem::size_of::<ImageInfo>(), 160);
    }
}
