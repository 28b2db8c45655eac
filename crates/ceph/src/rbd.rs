//! RBD images through native librbd (loaded at run time, see `rbd_ffi.rs`).
//!
//! Free functions cover what needs no open image (create, remove, list, clone); [`Image`] is an open image.
//! Every failure is a [`CephError::Call`] carrying librbd's negative errno, so callers can match on
//! [`CephError::errno`] (e.g. `-libc::EEXIST` from [`create`]).
//!
//! Clones are always format 2 ("v2"): the parent snapshot needs no protection, and removing a snapshot that
//! still has clones moves it to the snapshot trash instead of failing. See [`clone`] for why the format is
//! set explicitly.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rbd_ffi::{self, ImageOptionsT, ImageSpec, ImageT, LinkedImageSpec, SnapSpec};
use crate::{CephError, IoCtx};

/// RBD image feature bits (`rbd/features.h`) and their names as Ceph prints and parses them.
pub mod features {
    pub const LAYERING: u64 = 1;
    pub const STRIPINGV2: u64 = 1 << 1;
    pub const EXCLUSIVE_LOCK: u64 = 1 << 2;
    pub const OBJECT_MAP: u64 = 1 << 3;
    pub const FAST_DIFF: u64 = 1 << 4;
    pub const DEEP_FLATTEN: u64 = 1 << 5;
    pub const JOURNALING: u64 = 1 << 6;
    pub const DATA_POOL: u64 = 1 << 7;
    pub const OPERATIONS: u64 = 1 << 8;
    pub const MIGRATING: u64 = 1 << 9;
    pub const NON_PRIMARY: u64 = 1 << 10;
    /// Set by librbd while a persistent write-back cache holds unflushed data (pacific and later).
    pub const DIRTY_CACHE: u64 = 1 << 11;

    const NAMES: [(u64, &str); 12] = [
        (LAYERING, "layering"),
        (STRIPINGV2, "striping"),
        (EXCLUSIVE_LOCK, "exclusive-lock"),
        (OBJECT_MAP, "object-map"),
        (FAST_DIFF, "fast-diff"),
        (DEEP_FLATTEN, "deep-flatten"),
        (JOURNALING, "journaling"),
        (DATA_POOL, "data-pool"),
        (OPERATIONS, "operations"),
        (MIGRATING, "migrating"),
        (NON_PRIMARY, "non-primary"),
        (DIRTY_CACHE, "dirty-cache"),
    ];

    /// Ceph's names for the bits set in `bits`, lowest bit first. Bits this version does not know are left
    /// out: a name cannot be invented for them, and a newer librbd may define them.
    pub fn names(bits: u64) -> Vec<&'static str> {
        NAMES
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// One snapshot of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapInfo {
    pub id: u64,
    pub name: String,
    /// The image's size when the snapshot was taken.
    pub size: u64,
}

/// Where a clone comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentSpec {
    pub pool: String,
    pub image: String,
    /// The parent snapshot's name. If that snapshot was removed while the clone still used it (possible
    /// with v2 clones), it lives on in the snapshot trash under a generated name, which is what this is.
    pub snapshot: String,
}

/// A clone of an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChildSpec {
    pub pool: String,
    pub image: String,
}

/// librbd's `int` and `ssize_t` results are read and written in slices no larger than this, because its
/// synchronous I/O path passes the byte count back through an `int`.
const IO_CHUNK: usize = 1 << 30;

/// How many times a list is re-read after librbd said the buffer was too small. Only a list that keeps
/// growing between calls needs more than two.
const GROW_ATTEMPTS: usize = 8;

/// librbd's `clone_format` for clones whose parent snapshot needs no protection.
const CLONE_FORMAT_V2: u64 = 2;

fn cstring(what: &str, s: &str) -> Result<CString, CephError> {
    CString::new(s).map_err(|_| CephError::InvalidArgument(format!("{what} contains a NUL byte")))
}

fn check(op: &str, rc: c_int, detail: impl FnOnce() -> String) -> Result<(), CephError> {
    if rc < 0 {
        return Err(CephError::call(op, rc, &detail()));
    }
    Ok(())
}

/// librbd's `ssize_t` results as the `int` errno `CephError` carries. Byte counts never reach here: the
/// callers split I/O into slices that fit.
fn ssize_errno(rc: isize) -> c_int {
    c_int::try_from(rc).unwrap_or(-libc::EIO)
}

/// Copies a string librbd owns (the caller frees it afterwards through librbd).
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string that stays valid for the call.
unsafe fn copy_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

/// Calls `attempt` with a capacity until the result fits. `attempt` returns `Ok(None)` after librbd said
/// `-ERANGE`, having stored in the capacity what librbd asked for; growing to at least twice the previous
/// size also makes progress when a list grows between calls.
fn grow_until_fits<T>(
    op: &str,
    detail: &str,
    initial: usize,
    mut attempt: impl FnMut(&mut usize) -> Result<Option<T>, CephError>,
) -> Result<T, CephError> {
    let mut cap = initial.max(1);
    for _ in 0..GROW_ATTEMPTS {
        let before = cap;
        if let Some(found) = attempt(&mut cap)? {
            return Ok(found);
        }
        cap = cap.max(before.saturating_mul(2));
    }
    Err(CephError::call(
        op,
        -libc::ERANGE,
        &format!("{detail}: the list kept growing while it was read"),
    ))
}

fn image_detail(name: &str) -> String {
    format!("image {name:?}")
}

/// librbd's version, e.g. (1, 16, 0) for pacific.
pub fn library_version() -> Result<(i32, i32, i32), CephError> {
    let api = rbd_ffi::api()?;
    let (mut a, mut b, mut c) = (0, 0, 0);
    // SAFETY: valid out-pointers.
    unsafe { (api.version)(&mut a, &mut b, &mut c) };
    Ok((a, b, c))
}

/// How an image lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Exclusive,
    Shared,
}

/// Creates a format 2 image of `size` bytes with exactly the `features` bits (0 means none, not the
/// cluster's default) and Ceph's default object size. An existing image is `-EEXIST`.
pub fn create(io: &IoCtx, name: &str, size: u64, features: u64) -> Result<(), CephError> {
    let api = rbd_ffi::api()?;
    let name_c = cstring("image name", name)?;
    // 0 asks librbd for the configured default object size (`rbd_default_order`, 4 MiB).
    let mut order: c_int = 0;
    // SAFETY: the ioctx is open for as long as `io` is borrowed; name and out-pointer are valid.
    let rc = unsafe { (api.create2)(io.raw(), name_c.as_ptr(), size, features, &mut order) };
    check("create image", rc, || image_detail(name))
}

/// Creates an image whose data objects live in `data_pool` (an erasure-coded pool with overwrites on)
/// while its header and metadata stay in `io`'s replicated pool: RBD cannot keep metadata in an EC pool.
pub fn create_with_data_pool(
    io: &IoCtx,
    name: &str,
    size: u64,
    features: u64,
    data_pool: &str,
) -> Result<(), CephError> {
    let api = rbd_ffi::api()?;
    let name_c = cstring("image name", name)?;
    let pool_c = cstring("data pool", data_pool)?;
    let opts = ImageOptions::new(api);
    opts.set_u64(rbd_ffi::IMAGE_OPTION_FEATURES, features, "features")?;
    // SAFETY: `opts` is live until drop; DATA_POOL is a string option; librbd copies the string.
    let rc = unsafe {
        (api.image_options_set_string)(opts.opts, rbd_ffi::IMAGE_OPTION_DATA_POOL, pool_c.as_ptr())
    };
    check("set image option", rc, || "data pool".to_string())?;
    // SAFETY: the ioctx is open while `io` is borrowed; name and options are valid.
    let rc = unsafe { (api.create4)(io.raw(), name_c.as_ptr(), size, opts.opts) };
    check("create image", rc, || image_detail(name))
}

/// Removes an image and its data. Fails while it has snapshots (including snapshots kept only because
/// clones still use them) or while another client has it open; the error then says which.
pub fn remove(io: &IoCtx, name: &str) -> Result<(), CephError> {
    let api = rbd_ffi::api()?;
    let name_c = cstring("image name", name)?;
    // SAFETY: the ioctx is open for as long as `io` is borrowed; the name is NUL-terminated.
    let rc = unsafe { (api.remove)(io.raw(), name_c.as_ptr()) };
    if rc >= 0 {
        return Ok(());
    }
    let detail = match -rc {
        libc::ENOENT => format!("no image {name:?} in this pool"),
        libc::ENOTEMPTY | libc::EBUSY => why_not_removable(io, name, rc),
        libc::EMLINK => format!("image {name:?} is in a group; remove it from the group first"),
        _ => image_detail(name),
    };
    Err(CephError::call("remove image", rc, &detail))
}

/// Moves an image to the pool's trash: it leaves the image list at once (a few round trips), and its data
/// is deleted later by [`trash_remove`] (or the mgr's rbd_support task queue).
pub fn trash_move(io: &IoCtx, name: &str) -> Result<(), CephError> {
    let api = rbd_ffi::api()?;
    let name_c = cstring("image name", name)?;
    // SAFETY: the ioctx is open while `io` is borrowed; the name is NUL-terminated.
    let rc = unsafe { (api.trash_move)(io.raw(), name_c.as_ptr(), 0) };
    check("move image to trash", rc, || image_detail(name))
}

/// Who uses an image, as far as removing it needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InUse {
    /// Clients watching the image's header: every client that has it open.
    pub watchers: usize,
    /// Snapshots of any kind (user, clone parents kept in the trash namespace, mirroring).
    pub snapshots: usize,
}

/// Reads [`InUse`] with three small object calls instead of opening the image, which costs about a dozen
/// round trips and a copy of the whole client configuration. `None` when the name has no format-2 image.
/// Watchers that neither answer nor lapse within `timeout` are counted as users.
pub fn in_use_without_open(
    io: &IoCtx,
    name: &str,
    timeout: std::time::Duration,
) -> Result<Option<InUse>, CephError> {
    let id = match io.exec(&format!("rbd_id.{name}"), "rbd", "get_id", &[]) {
        Ok(out) => crate::wire::string(&out).ok_or_else(|| {
            CephError::call("read the image id", -libc::EINVAL, &image_detail(name))
        })?,
        Err(e) if e.errno() == Some(-libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let header = format!("rbd_header.{id}");
    let snapshots = match io.exec(&header, "rbd", "get_snapcontext", &[]) {
        Ok(out) => crate::wire::snapshot_count(&out).ok_or_else(|| {
            CephError::call("read the snapshot list", -libc::EINVAL, &image_detail(name))
        })?,
        // Half-created or half-removed: let the caller's full open say what is wrong.
        Err(e) if e.errno() == Some(-libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let watchers = io.notify_watchers(&header, timeout)?;
    Ok(Some(InUse {
        watchers,
        snapshots,
    }))
}

/// Deletes a trashed image and its data, by image id. Without `force`, an image whose deferment time has
/// not passed yet is refused (`-EPERM`).
pub fn trash_remove(io: &IoCtx, id: &str, force: bool) -> Result<(), CephError> {
    let api = rbd_ffi::api()?;
    let id_c = cstring("image id", id)?;
    // SAFETY: the ioctx is open while `io` is borrowed; the id is NUL-terminated.
    let rc = unsafe { (api.trash_remove)(io.raw(), id_c.as_ptr(), force) };
    check("remove image from trash", rc, || format!("image id {id}"))
}

/// One image in a pool's trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashEntry {
    pub id: String,
    pub name: String,
    /// Moved there by a client with [`trash_move`] (not by mirroring, migration or a removal underway).
    pub by_user: bool,
    /// Unix time after which it may be removed without `force`.
    pub deferment_end: i64,
}

/// The images in the pool's trash.
pub fn trash_list(io: &IoCtx) -> Result<Vec<TrashEntry>, CephError> {
    let api = rbd_ffi::api()?;
    grow_until_fits("list trash", "rbd_trash_list", 16, |cap| {
        let mut buf = vec![rbd_ffi::TrashInfo::EMPTY; *cap];
        let mut count = buf.len();
        // SAFETY: `buf` has `count` writable entries; the ioctx is open while `io` is borrowed.
        let rc = unsafe { (api.trash_list)(io.raw(), buf.as_mut_ptr(), &mut count) };
        if rc == -libc::ERANGE {
            *cap = count;
            return Ok(None);
        }
        check("list trash", rc, String::new)?;
        let count = count.min(buf.len());
        let entries = buf[..count]
            .iter()
            // SAFETY: librbd filled the first `count` entries with strings it allocated.
            .map(|t| unsafe {
                TrashEntry {
                    id: copy_str(t.id),
                    name: copy_str(t.name),
                    by_user: t.source == rbd_ffi::TRASH_SOURCE_USER,
                    deferment_end: t.deferment_end_time,
                }
            })
            .collect::<Vec<_>>();
        // SAFETY: frees exactly the `count` entries librbd filled, once.
        unsafe { (api.trash_list_cleanup)(buf.as_mut_ptr(), count) };
        Ok(Some(entries))
    })
}

/// librbd answers `-ENOTEMPTY` or `-EBUSY` for several reasons; looking at the image tells the user which
/// one to fix. Only runs after a failure, so its cost does not matter.
fn why_not_removable(io: &IoCtx, name: &str, rc: c_int) -> String {
    let found = Image::open_read_only(io, name).and_then(|image| {
        let children = image.children()?;
        let snaps = image.snapshots()?;
        Ok((children, snaps))
    });
    match found {
        Ok((children, _)) if !children.is_empty() => {
            let list: Vec<String> = children
                .iter()
                .map(|c| format!("{}/{}", c.pool, c.image))
                .collect();
            format!(
                "image {name:?} has clones ({}); flatten or remove them, then remove its snapshots",
                list.join(", ")
            )
        }
        Ok((_, snaps)) if !snaps.is_empty() => {
            let list: Vec<&str> = snaps.iter().map(|s| s.name.as_str()).collect();
            format!(
                "image {name:?} has snapshots ({}); remove them first",
                list.join(", ")
            )
        }
        _ if rc == -libc::EBUSY => {
            format!("image {name:?} is open by another client (it has a watcher); close it first")
        }
        _ => format!("image {name:?} has snapshots; remove them first"),
    }
}

/// The names of the images in the pool, sorted.
pub fn list(io: &IoCtx) -> Result<Vec<String>, CephError> {
    let api = rbd_ffi::api()?;
    let mut names = grow_until_fits("list images", "rbd_list2", 64, |cap| {
        let mut specs = vec![ImageSpec::EMPTY; *cap];
        let mut count = specs.len();
        // SAFETY: `specs` has `count` writable entries; the ioctx is open while `io` is borrowed.
        let rc = unsafe { (api.list2)(io.raw(), specs.as_mut_ptr(), &mut count) };
        if rc == -libc::ERANGE {
            *cap = count;
            return Ok(None);
        }
        check("list images", rc, String::new)?;
        let count = count.min(specs.len());
        let names = specs[..count]
            .iter()
            // SAFETY: librbd filled the first `count` entries with strings it allocated.
            .map(|s| unsafe { copy_str(s.name) })
            .collect::<Vec<_>>();
        // SAFETY: frees exactly the `count` entries librbd filled, once.
        unsafe { (api.image_spec_list_cleanup)(specs.as_mut_ptr(), count) };
        Ok(Some(names))
    })?;
    names.sort();
    Ok(names)
}

/// Options for `rbd_clone3`, destroyed on drop.
struct ImageOptions {
    api: &'static rbd_ffi::Api,
    opts: ImageOptionsT,
}

impl ImageOptions {
    fn new(api: &'static rbd_ffi::Api) -> ImageOptions {
        let mut opts: ImageOptionsT = ptr::null_mut();
        // SAFETY: valid out-pointer; librbd allocates the options object.
        unsafe { (api.image_options_create)(&mut opts) };
        ImageOptions { api, opts }
    }

    fn set_u64(&self, option: c_int, value: u64, what: &str) -> Result<(), CephError> {
        // SAFETY: `opts` is live until drop; both options we set are of type uint64 in librbd.
        let rc = unsafe { (self.api.image_options_set_uint64)(self.opts, option, value) };
        check("set image option", rc, || what.to_string())
    }
}

impl Drop for ImageOptions {
    fn drop(&mut self) {
        // SAFETY: created by rbd_image_options_create, destroyed once.
        unsafe { (self.api.image_options_destroy)(self.opts) };
    }
}

/// Clones `parent@snapshot` into a new image `child` as a format 2 clone.
///
/// The format is set explicitly: pacific's `rbd_default_clone_format` is "auto", which picks format 1
/// (requiring a protected snapshot) unless the cluster's `require-min-compat-client` is mimic or newer,
/// and a new cluster's is luminous. `LAYERING` is always added to `features`: a clone cannot exist without
/// it. The clone's object size is its parent's.
pub fn clone(
    parent_io: &IoCtx,
    parent: &str,
    snapshot: &str,
    child_io: &IoCtx,
    child: &str,
    features: u64,
) -> Result<(), CephError> {
    let api = rbd_ffi::api()?;
    let parent_c = cstring("parent image name", parent)?;
    let snap_c = cstring("snapshot name", snapshot)?;
    let child_c = cstring("image name", child)?;
    let opts = ImageOptions::new(api);
    opts.set_u64(
        rbd_ffi::IMAGE_OPTION_FEATURES,
        features | features::LAYERING,
        "features",
    )?;
    opts.set_u64(
        rbd_ffi::IMAGE_OPTION_CLONE_FORMAT,
        CLONE_FORMAT_V2,
        "clone format",
    )?;
    // SAFETY: both ioctxs are open while borrowed; strings are NUL-terminated; `opts` lives past the call.
    let rc = unsafe {
        (api.clone3)(
            parent_io.raw(),
            parent_c.as_ptr(),
            snap_c.as_ptr(),
            child_io.raw(),
            child_c.as_ptr(),
            opts.opts,
        )
    };
    check("clone image", rc, || {
        format!("{parent:?}@{snapshot:?} to {child:?}")
    })
}

/// An open image. Closed on drop.
///
/// `Image` is `Send` but not `Sync`: the handle is not tied to the thread that opened it, so it may move
/// to another thread, but rookery does not rely on librbd's internal locking for concurrent calls on one
/// handle (closing while another call runs, or several management operations at once, are not safe), so
/// it cannot be shared. Open one handle per thread instead.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<rookery_ceph::rbd::Image<'static>>();
/// ```
pub struct Image<'a> {
    handle: ImageT,
    api: &'static rbd_ffi::Api,
    name: String,
    /// librbd copies the ioctx at open, but the copy depends on the cluster connection behind it, which
    /// the borrow keeps alive for as long as the image is open.
    _io: PhantomData<&'a ()>,
}

// SAFETY: a librbd image handle holds no thread-local state and may be used from any one thread at a
// time; the raw pointer field keeps `Image` from being `Sync`, so `&Image` cannot reach a second thread.
unsafe impl Send for Image<'_> {}

type OpenFn =
    unsafe extern "C" fn(crate::ffi::IoCtxT, *const c_char, *mut ImageT, *const c_char) -> c_int;

impl<'a> Image<'a> {
    /// Opens an image for reading and writing, at its head (no snapshot).
    pub fn open(io: &'a IoCtx<'_>, name: &str) -> Result<Image<'a>, CephError> {
        let api = rbd_ffi::api()?;
        Self::open_with(api, api.open, io, name)
    }

    /// Opens an image without taking a watch on it, for clients that may not write. Writes fail with
    /// `-EROFS`, and what librbd reports (size, snapshots, parent) is not refreshed after another client
    /// changes it, so use it for short-lived look-ups.
    pub fn open_read_only(io: &'a IoCtx<'_>, name: &str) -> Result<Image<'a>, CephError> {
        let api = rbd_ffi::api()?;
        Self::open_with(api, api.open_read_only, io, name)
    }

    fn open_with(
        api: &'static rbd_ffi::Api,
        open: OpenFn,
        io: &'a IoCtx<'_>,
        name: &str,
    ) -> Result<Image<'a>, CephError> {
        let name_c = cstring("image name", name)?;
        let mut handle: ImageT = ptr::null_mut();
        // SAFETY: the ioctx is open while borrowed; a null snapshot name opens the head.
        let rc = unsafe { open(io.raw(), name_c.as_ptr(), &mut handle, ptr::null()) };
        check("open image", rc, || {
            if rc == -libc::ENOENT {
                format!("no image {name:?} in this pool")
            } else {
                image_detail(name)
            }
        })?;
        Ok(Image {
            handle,
            api,
            name: name.to_string(),
            _io: PhantomData,
        })
    }
}

impl Image<'_> {
    fn detail(&self) -> String {
        image_detail(&self.name)
    }

    /// The raw handle and the library table, for the AIO wrapper (`rbd_aio.rs`).
    pub(crate) fn raw(&self) -> (ImageT, &'static rbd_ffi::Api) {
        (self.handle, self.api)
    }

    /// The name the image was opened by.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> Result<u64, CephError> {
        let mut size = 0u64;
        // SAFETY: the handle is open until drop; valid out-pointer.
        let rc = unsafe { (self.api.get_size)(self.handle, &mut size) };
        check("get image size", rc, || self.detail())?;
        Ok(size)
    }

    /// The image's feature bits; see [`features`].
    pub fn features(&self) -> Result<u64, CephError> {
        let mut bits = 0u64;
        // SAFETY: the handle is open until drop; valid out-pointer.
        let rc = unsafe { (self.api.get_features)(self.handle, &mut bits) };
        check("get image features", rc, || self.detail())?;
        Ok(bits)
    }

    /// Grows or shrinks the image. Shrinking discards the data past the new end.
    pub fn resize(&self, size: u64) -> Result<(), CephError> {
        // SAFETY: the handle is open until drop.
        let rc = unsafe { (self.api.resize)(self.handle, size) };
        check("resize image", rc, || {
            format!("{} to {size} bytes", self.detail())
        })
    }

    pub fn snapshot_create(&self, name: &str) -> Result<(), CephError> {
        let snap_c = cstring("snapshot name", name)?;
        // SAFETY: the handle is open until drop; the name is NUL-terminated.
        let rc = unsafe { (self.api.snap_create)(self.handle, snap_c.as_ptr()) };
        check("create snapshot", rc, || {
            format!("{}@{name:?}", self.detail())
        })
    }

    /// Removes a snapshot. One that v2 clones still use succeeds too: librbd moves it to the snapshot
    /// trash (so [`Image::snapshots`] no longer lists it, and the clones' [`ParentSpec::snapshot`] becomes
    /// a generated name), and deletes it when its last clone is flattened or removed.
    pub fn snapshot_remove(&self, name: &str) -> Result<(), CephError> {
        let snap_c = cstring("snapshot name", name)?;
        // SAFETY: the handle is open until drop; the name is NUL-terminated.
        let rc = unsafe { (self.api.snap_remove)(self.handle, snap_c.as_ptr()) };
        check("remove snapshot", rc, || {
            format!("{}@{name:?}", self.detail())
        })
    }

    /// The snapshots users made, oldest first. Snapshots in other namespaces are left out: trash ones
    /// (removed but kept for v2 clones, named by a generated id), group and mirror ones. `rbd_snap_list`
    /// returns those too, but they cannot be removed by name, so a caller looping over this list to
    /// remove snapshots would fail on them.
    pub fn snapshots(&self) -> Result<Vec<SnapInfo>, CephError> {
        let mut user = Vec::new();
        for snap in self.all_snapshots()? {
            let mut kind: c_int = -1;
            // SAFETY: the handle is open until drop; valid out-pointer for the C enum (an int).
            let rc = unsafe { (self.api.snap_get_namespace_type)(self.handle, snap.id, &mut kind) };
            if rc == -libc::ENOENT {
                // Removed since it was listed.
                continue;
            }
            check("get snapshot namespace", rc, || {
                format!("{}@{:?}", self.detail(), snap.name)
            })?;
            if kind == rbd_ffi::SNAP_NAMESPACE_TYPE_USER {
                user.push(snap);
            }
        }
        Ok(user)
    }

    /// Every snapshot librbd knows, whatever its namespace.
    fn all_snapshots(&self) -> Result<Vec<SnapInfo>, CephError> {
        let detail = self.detail();
        grow_until_fits("list snapshots", &detail, 16, |cap| {
            // Zeroed entries matter: the list ends at the first null name, which is what
            // rbd_snap_list_end walks, and librbd writes no terminator when the image has vanished.
            let mut buf = vec![rbd_ffi::SnapInfo::EMPTY; *cap];
            let mut max = c_int::try_from(buf.len()).unwrap_or(c_int::MAX);
            // SAFETY: `buf` has at least `max` writable entries; the handle is open until drop.
            let rc = unsafe { (self.api.snap_list)(self.handle, buf.as_mut_ptr(), &mut max) };
            if rc == -libc::ERANGE {
                *cap = usize::try_from(max).unwrap_or(0);
                return Ok(None);
            }
            check("list snapshots", rc, || detail.clone())?;
            // rc is the number of snapshots; librbd made sure an extra terminating entry fit.
            let count = usize::try_from(rc).unwrap_or(0).min(buf.len());
            let snaps = buf[..count]
                .iter()
                .map(|s| SnapInfo {
                    id: s.id,
                    // SAFETY: librbd filled the first `count` entries with names it allocated.
                    name: unsafe { copy_str(s.name) },
                    size: s.size,
                })
                .collect();
            // SAFETY: frees the names up to the terminating entry, once.
            unsafe { (self.api.snap_list_end)(buf.as_mut_ptr()) };
            Ok(Some(snaps))
        })
    }

    /// The snapshot this image was cloned from, or `None` if it is not a clone (or was flattened).
    pub fn parent(&self) -> Result<Option<ParentSpec>, CephError> {
        let mut image = LinkedImageSpec::EMPTY;
        let mut snap = SnapSpec::EMPTY;
        // SAFETY: the handle is open until drop; both out-structs are valid and zeroed.
        let rc = unsafe { (self.api.get_parent)(self.handle, &mut image, &mut snap) };
        if rc == -libc::ENOENT {
            return Ok(None);
        }
        check("get parent", rc, || self.detail())?;
        // SAFETY: on success librbd filled both structs with strings it allocated.
        let spec = unsafe {
            ParentSpec {
                pool: copy_str(image.pool_name),
                image: copy_str(image.image_name),
                snapshot: copy_str(snap.name),
            }
        };
        // SAFETY: frees what librbd allocated in each struct, once.
        unsafe {
            (self.api.linked_image_spec_cleanup)(&mut image);
            (self.api.snap_spec_cleanup)(&mut snap);
        }
        Ok(Some(spec))
    }

    /// The direct clones of every snapshot of this image (clones of clones are not included), sorted.
    ///
    /// Uses `rbd_list_children3`: on a handle opened at the head, as [`Image`]s are, pacific's librbd
    /// walks all of the image's snapshots itself (including ones in the snapshot trash), so no
    /// `rbd_snap_set` per snapshot is needed. Clones in the image trash are included too: they still
    /// depend on this image.
    pub fn children(&self) -> Result<Vec<ChildSpec>, CephError> {
        let detail = self.detail();
        let mut children = grow_until_fits("list clones", &detail, 16, |cap| {
            let mut buf = vec![LinkedImageSpec::EMPTY; *cap];
            let mut count = buf.len();
            // SAFETY: `buf` has `count` writable entries; the handle is open until drop.
            let rc =
                unsafe { (self.api.list_children3)(self.handle, buf.as_mut_ptr(), &mut count) };
            if rc == -libc::ERANGE {
                *cap = count;
                return Ok(None);
            }
            check("list clones", rc, || detail.clone())?;
            let count = count.min(buf.len());
            let found = buf[..count]
                .iter()
                // SAFETY: librbd filled the first `count` entries with strings it allocated.
                .map(|c| unsafe {
                    ChildSpec {
                        pool: copy_str(c.pool_name),
                        image: copy_str(c.image_name),
                    }
                })
                .collect::<Vec<_>>();
            // SAFETY: frees exactly the `count` entries librbd filled, once.
            unsafe { (self.api.linked_image_spec_list_cleanup)(buf.as_mut_ptr(), count) };
            Ok(Some(found))
        })?;
        children.sort();
        Ok(children)
    }

    /// Copies the parent's data into this clone and detaches it, so that the parent snapshot can go.
    pub fn flatten(&self) -> Result<(), CephError> {
        // SAFETY: the handle is open until drop.
        let rc = unsafe { (self.api.flatten)(self.handle) };
        check("flatten image", rc, || {
            if rc == -libc::EINVAL {
                format!("{} is not a clone", self.detail())
            } else {
                self.detail()
            }
        })
    }

    /// Bytes of storage the image's own objects take, counted in whole objects like `rbd du` (data
    /// inherited from a parent is not counted). Uses the object map when the image has one, and asks the
    /// OSDs otherwise.
    pub fn used_bytes(&self) -> Result<u64, CephError> {
        let size = self.size()?;
        let total = AtomicU64::new(0);
        // SAFETY: the handle is open until drop; a null snapshot means "since the image was created";
        // `total` outlives the call, which is the only time librbd uses the callback and its argument.
        let rc = unsafe {
            (self.api.diff_iterate2)(
                self.handle,
                ptr::null(),
                0,
                size,
                0, // without the parent's data
                1, // whole objects: fast, and what is allocated anyway
                add_allocated,
                &total as *const AtomicU64 as *mut c_void,
            )
        };
        check("measure image usage", rc, || self.detail())?;
        Ok(total.load(Ordering::Relaxed))
    }

    /// The value stored under `key` in the image's metadata, if any.
    pub fn metadata_get(&self, key: &str) -> Result<Option<String>, CephError> {
        let key_c = cstring("metadata key", key)?;
        let detail = format!("{} key {key:?}", self.detail());
        grow_until_fits("get image metadata", &detail, 256, |cap| {
            let mut buf = vec![0u8; *cap];
            let mut len = buf.len();
            // SAFETY: `buf` has `len` writable bytes; the handle is open until drop.
            let rc = unsafe {
                (self.api.metadata_get)(
                    self.handle,
                    key_c.as_ptr(),
                    buf.as_mut_ptr() as *mut c_char,
                    &mut len,
                )
            };
            match rc {
                _ if rc == -libc::ENOENT => return Ok(Some(None)),
                _ if rc == -libc::ERANGE => {
                    *cap = len;
                    return Ok(None);
                }
                _ => check("get image metadata", rc, || detail.clone())?,
            }
            let value = CStr::from_bytes_until_nul(&buf)
                .map_err(|_| reply_error(&detail, "value is not NUL-terminated"))?;
            let value = String::from_utf8(value.to_bytes().to_vec())
                .map_err(|_| reply_error(&detail, "value is not UTF-8"))?;
            Ok(Some(Some(value)))
        })
    }

    pub fn metadata_set(&self, key: &str, value: &str) -> Result<(), CephError> {
        let key_c = cstring("metadata key", key)?;
        let value_c = cstring("metadata value", value)?;
        // SAFETY: the handle is open until drop; strings are NUL-terminated.
        let rc = unsafe { (self.api.metadata_set)(self.handle, key_c.as_ptr(), value_c.as_ptr()) };
        check("set image metadata", rc, || {
            format!("{} key {key:?}", self.detail())
        })
    }

    /// Removes `key` from the image's metadata; a key that is not there is not an error.
    pub fn metadata_remove(&self, key: &str) -> Result<(), CephError> {
        let key_c = cstring("metadata key", key)?;
        // SAFETY: the handle is open until drop; the key is NUL-terminated.
        let rc = unsafe { (self.api.metadata_remove)(self.handle, key_c.as_ptr()) };
        if rc == -libc::ENOENT {
            return Ok(());
        }
        check("remove image metadata", rc, || {
            format!("{} key {key:?}", self.detail())
        })
    }

    /// Reads into `buf` from `offset` and returns how many bytes were read: fewer than `buf.len()` only at
    /// the end of the image. An offset at or past the end is `-EINVAL`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, CephError> {
        let mut done = 0usize;
        for chunk in buf.chunks_mut(IO_CHUNK) {
            let at = offset.saturating_add(done as u64);
            // SAFETY: `chunk` is writable for its length; the handle is open until drop.
            let rc = unsafe {
                (self.api.read)(
                    self.handle,
                    at,
                    chunk.len(),
                    chunk.as_mut_ptr() as *mut c_char,
                )
            };
            if rc < 0 {
                return Err(CephError::call(
                    "read image",
                    ssize_errno(rc),
                    &format!("{} at offset {at}", self.detail()),
                ));
            }
            let got = rc.unsigned_abs();
            done += got;
            if got < chunk.len() {
                break;
            }
        }
        Ok(done)
    }

    /// Writes all of `data` at `offset`. librbd clips a write that runs past the end of the image; that
    /// is reported as an error (`-EFBIG`), although the part that fit has been written.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), CephError> {
        let mut done = 0usize;
        for chunk in data.chunks(IO_CHUNK) {
            let at = offset.saturating_add(done as u64);
            // SAFETY: `chunk` is readable for its length; the handle is open until drop.
            let rc = unsafe {
                (self.api.write)(
                    self.handle,
                    at,
                    chunk.len(),
                    chunk.as_ptr() as *const c_char,
                )
            };
            if rc < 0 {
                return Err(CephError::call(
                    "write image",
                    ssize_errno(rc),
                    &format!("{} at offset {at}", self.detail()),
                ));
            }
            let put = rc.unsigned_abs();
            done += put;
            if put < chunk.len() {
                return Err(CephError::call(
                    "write image",
                    -libc::EFBIG,
                    &format!(
                        "{}: only {done} of {} bytes from offset {offset} fit before the end of the image",
                        self.detail(),
                        data.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The image's id (stable across renames; names it in the trash).
    pub fn id(&self) -> Result<String, CephError> {
        let mut buf = vec![0u8; 64];
        // SAFETY: the buffer has `len` writable bytes; librbd NUL-terminates the id.
        let rc =
            unsafe { (self.api.get_id)(self.handle, buf.as_mut_ptr() as *mut c_char, buf.len()) };
        check("get image id", rc, || self.detail())?;
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// How many clients have the image open (each open handle keeps a watch on its header). A client that
    /// dies loses its watch within `osd_client_watch_timeout` (30 s).
    pub fn watchers(&self) -> Result<usize, CephError> {
        let mut cap = 8usize;
        loop {
            let mut list: Vec<rbd_ffi::Watcher> = (0..cap)
                .map(|_| rbd_ffi::Watcher {
                    addr: std::ptr::null_mut(),
                    id: 0,
                    cookie: 0,
                })
                .collect();
            let mut n = cap;
            // SAFETY: the array has `n` entries; librbd fills at most `n` and sets `n` to the count.
            let rc = unsafe { (self.api.watchers_list)(self.handle, list.as_mut_ptr(), &mut n) };
            if rc == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            check("list watchers", rc, || self.detail())?;
            // SAFETY: the first `n` entries were filled by rbd_watchers_list.
            unsafe { (self.api.watchers_list_cleanup)(list.as_mut_ptr(), n) };
            return Ok(n);
        }
    }

    /// The clients holding the image's exclusive (or shared) lock, as (mode, owner), e.g. `client.4235`.
    pub fn lock_owners(&self) -> Result<Vec<(LockMode, String)>, CephError> {
        let mut cap = 4usize;
        loop {
            let mut owners: Vec<*mut c_char> = vec![ptr::null_mut(); cap];
            let mut n = cap;
            let mut mode: c_int = 0;
            // SAFETY: `owners` has room for `n` pointers; librbd allocates each string, freed by cleanup.
            let rc = unsafe {
                (self.api.lock_get_owners)(self.handle, &mut mode, owners.as_mut_ptr(), &mut n)
            };
            if rc == -libc::ENOENT {
                return Ok(Vec::new());
            }
            if rc == -libc::ERANGE {
                cap = n.max(cap * 2);
                continue;
            }
            check("list lock owners", rc, || self.detail())?;
            let mode = if mode == 1 {
                LockMode::Shared
            } else {
                LockMode::Exclusive
            };
            let out = owners[..n]
                .iter()
                .filter(|p| !p.is_null())
                // SAFETY: each non-null entry is a NUL-terminated string from librbd.
                .map(|p| {
                    (
                        mode,
                        unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            // SAFETY: frees exactly the `n` strings librbd returned.
            unsafe { (self.api.lock_get_owners_cleanup)(owners.as_mut_ptr(), n) };
            return Ok(out);
        }
    }

    /// Takes the lock away from `owner` and blocklists that client, so a process believed dead cannot come
    /// back and write. Only for owners known to be gone.
    pub fn break_lock(&self, mode: LockMode, owner: &str) -> Result<(), CephError> {
        let o = CString::new(owner)
            .map_err(|_| CephError::InvalidArgument("lock owner contains a NUL byte".into()))?;
        let m = match mode {
            LockMode::Exclusive => 0,
            LockMode::Shared => 1,
        };
        // SAFETY: the handle is open; `o` is NUL-terminated.
        let rc = unsafe { (self.api.lock_break)(self.handle, m, o.as_ptr()) };
        check("break the image lock", rc, || self.detail())
    }

    /// Waits until every write so far is on the OSDs (matters when librbd's cache is on).
    pub fn flush(&self) -> Result<(), CephError> {
        // SAFETY: the handle is open until drop.
        let rc = unsafe { (self.api.flush)(self.handle) };
        check("flush image", rc, || self.detail())
    }
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from rbd_open / rbd_open_read_only and is closed once.
        let rc = unsafe { (self.api.close)(self.handle) };
        if rc < 0 {
            tracing::warn!(
                image = %self.name,
                error = %crate::rados::errno_text(rc),
                "closing an RBD image failed"
            );
        }
    }
}

fn reply_error(detail: &str, problem: &str) -> CephError {
    CephError::Reply {
        command: "rbd_metadata_get".to_string(),
        detail: format!("{detail}: {problem}"),
    }
}

/// `rbd_diff_iterate2` callback for [`Image::used_bytes`]: adds up the extents that hold data.
///
/// # Safety
/// `arg` must point to an `AtomicU64` that outlives the iteration. librbd may call this from its own
/// threads, hence the atomic. It must not unwind: nothing in it can panic.
unsafe extern "C" fn add_allocated(
    _offset: u64,
    len: usize,
    exists: c_int,
    arg: *mut c_void,
) -> c_int {
    if exists != 0 {
        // SAFETY: the caller guarantees `arg` is a live `AtomicU64`.
        let total = unsafe { &*(arg as *const AtomicU64) };
        total.fetch_add(len as u64, Ordering::Relaxed);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_follow_ceph() {
        assert!(features::names(0).is_empty());
        assert_eq!(features::names(features::LAYERING), ["layering"]);
        assert_eq!(
            features::names(
                features::LAYERING
                    | features::EXCLUSIVE_LOCK
                    | features::OBJECT_MAP
                    | features::FAST_DIFF
                    | features::DEEP_FLATTEN
            ),
            [
                "layering",
                "exclusive-lock",
                "object-map",
                "fast-diff",
                "deep-flatten"
            ]
        );
        assert_eq!(
            features::names((1 << 11) - 1),
            [
                "layering",
                "striping",
                "exclusive-lock",
                "object-map",
                "fast-diff",
                "deep-flatten",
                "journaling",
                "data-pool",
                "operations",
                "migrating",
                "non-primary"
            ]
        );
    }

    #[test]
    fn unknown_feature_bits_are_left_out() {
        assert_eq!(
            features::names(1 << 40 | features::JOURNALING),
            ["journaling"]
        );
    }

    #[test]
    fn feature_bits_match_features_h() {
        assert_eq!(features::STRIPINGV2, 2);
        assert_eq!(features::EXCLUSIVE_LOCK, 4);
        assert_eq!(features::OBJECT_MAP, 8);
        assert_eq!(features::FAST_DIFF, 16);
        assert_eq!(features::DEEP_FLATTEN, 32);
        assert_eq!(features::JOURNALING, 64);
        assert_eq!(features::DATA_POOL, 128);
        assert_eq!(features::OPERATIONS, 256);
        assert_eq!(features::MIGRATING, 512);
        assert_eq!(features::NON_PRIMARY, 1024);
    }

    #[test]
    fn image_can_move_between_threads() {
        fn sendable<T: Send>() {}
        sendable::<Image<'static>>();
    }

    #[test]
    fn growing_stops_when_the_list_fits() {
        let mut seen = Vec::new();
        let got = grow_until_fits("op", "d", 4, |cap| {
            seen.push(*cap);
            if *cap < 20 {
                *cap = 20;
                return Ok(None);
            }
            Ok(Some(*cap))
        })
        .unwrap();
        assert_eq!(got, 20);
        assert_eq!(seen, [4, 20]);
    }

    #[test]
    fn growing_doubles_when_librbd_asks_for_too_little() {
        let mut seen = Vec::new();
        let err = grow_until_fits("list images", "d", 1, |cap| {
            seen.push(*cap);
            *cap = 0;
            Ok::<Option<()>, CephError>(None)
        })
        .unwrap_err();
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(err.errno(), Some(-libc::ERANGE));
    }

    #[test]
    fn nul_in_names_is_rejected_before_calling_librbd() {
        let err = cstring("image name", "a\0b").unwrap_err();
        assert!(matches!(err, CephError::InvalidArgument(_)));
    }
}
