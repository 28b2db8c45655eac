//! Asynchronous I/O on an RBD image: the data path of a block device served from userspace.
//!
//! Each request hands librbd a buffer it owns and a callback; librbd calls back from one of its own threads
//! when the request is done, and the buffer comes back with the result. Many requests can be in flight at
//! once, from any number of threads, which is what lets a server keep the OSDs busy (a synchronous
//! `rbd_write` per request waits a full round trip each time).

use std::ffi::{c_char, c_int, c_void};
use std::ops::Range;
use std::ptr;

use crate::rados::cstring;
use crate::rbd::{features, Image};
use crate::rbd_ffi::{self, CompletionT};
use crate::{ffi, CephError, IoCtx, Rados};

/// librados' LIBRADOS_OP_FLAG_FADVISE_NOCACHE: data read is not kept in librbd's cache (it still sees
/// writes the cache holds). Whoever reads through this type has a page cache of its own above it (the
/// kernel's, over a loop device), so keeping reads here too would only spend memory and cache locking.
const FADVISE_NOCACHE: c_int = 0x40;

/// What a finished request gives back: its buffer (if it had one) and librbd's result (bytes for reads
/// and writes, 0 for the rest, or a negative errno).
pub type Done = Box<dyn FnOnce(Option<Vec<u8>>, isize) + Send + 'static>;

/// An image open for concurrent asynchronous I/O.
///
/// Unlike [`Image`], this type is `Sync`: it only offers librbd's I/O entry points (`rbd_aio_*`), the
/// size, features and parent, which librbd serialises internally and which qemu and rbd-nbd call from
/// many threads at once on one handle. Management calls are left to [`Image`].
pub struct AioImage<'a> {
    image: Image<'a>,
}

// SAFETY: see the type's documentation: only thread-safe librbd entry points are reachable through `&self`,
// and the handle is closed only by drop, which needs exclusive ownership.
unsafe impl Sync for AioImage<'_> {}

/// One request in flight; owned by librbd (as the callback argument) until the callback runs.
struct Pending {
    api: &'static rbd_ffi::Api,
    buf: Option<Vec<u8>>,
    done: Done,
}

/// librbd's completion callback: takes the request back, releases the completion, reports the result.
///
/// # Safety
/// `arg` must be a `Box<Pending>` leaked by [`AioImage::submit`] for this completion, and this must be
/// its only call (librbd calls each completion's callback once).
unsafe extern "C" fn complete(c: CompletionT, arg: *mut c_void) {
    // SAFETY: guaranteed by the caller (see above).
    let pending = unsafe { Box::from_raw(arg as *mut Pending) };
    // SAFETY: `c` is the live completion this callback belongs to; it is released once, here.
    let rv = unsafe { (pending.api.aio_get_return_value)(c) };
    // SAFETY: as above.
    unsafe { (pending.api.aio_release)(c) };
    let Pending { buf, done, .. } = *pending;
    // A panic must not unwind into librbd's C++ frames.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(buf, rv))).is_err() {
        tracing::error!("an RBD completion handler panicked");
    }
}

impl<'a> AioImage<'a> {
    /// Opens `name` for reading and writing.
    pub fn open(io: &'a IoCtx<'_>, name: &str) -> Result<AioImage<'a>, CephError> {
        Ok(AioImage {
            image: Image::open(io, name)?,
        })
    }

    pub fn size(&self) -> Result<u64, CephError> {
        self.image.size()
    }

    /// Creates a completion for `pending` and calls `start` with it and a pointer to the buffer's first
    /// byte (null without a buffer). If either step fails, `done` runs at once with the error.
    fn submit(&self, pending: Pending, start: impl FnOnce(CompletionT, *mut u8) -> c_int) {
        let (_, api) = self.image.raw();
        let mut boxed = Box::new(pending);
        let data = boxed
            .buf
            .as_mut()
            .map_or(ptr::null_mut(), |b| b.as_mut_ptr());
        let arg = Box::into_raw(boxed);
        let mut comp: CompletionT = ptr::null_mut();
        // SAFETY: valid out-pointer; `arg` stays valid until `complete` takes it back.
        let rc = unsafe { (api.aio_create_completion)(arg as *mut c_void, complete, &mut comp) };
        if rc < 0 {
            // SAFETY: no completion exists, so nothing else will take `arg` back.
            let p = unsafe { Box::from_raw(arg) };
            (p.done)(p.buf, rc as isize);
            return;
        }
        let rc = start(comp, data);
        if rc < 0 {
            // librbd's C API reports errors through the completion once a request is queued; a negative
            // return means it was not queued, so the callback will not run and the request is ours again.
            // SAFETY: the completion was never handed to a request; released once.
            unsafe { (api.aio_release)(comp) };
            // SAFETY: as above, `arg` is ours again.
            let p = unsafe { Box::from_raw(arg) };
            (p.done)(p.buf, rc as isize);
        }
    }

    /// Writes `buf[range]` at `offset`. `done` gets the buffer back and the bytes written or -errno.
    /// A range outside the buffer fails at once with `-EINVAL`.
    pub fn write(&self, offset: u64, buf: Vec<u8>, range: Range<usize>, done: Done) {
        let (handle, api) = self.image.raw();
        if range.start > range.end || range.end > buf.len() {
            done(Some(buf), -(libc::EINVAL as isize));
            return;
        }
        let pending = Pending {
            api,
            buf: Some(buf),
            done,
        };
        self.submit(pending, |comp, data| {
            // SAFETY: `data + range` lies inside the buffer (checked above), which lives in the pending
            // request until the callback, so librbd may read it for as long as it needs; the handle is
            // open for as long as `self` is borrowed.
            unsafe {
                (api.aio_write)(
                    handle,
                    offset,
                    range.len(),
                    data.add(range.start) as *const c_char,
                    comp,
                )
            }
        });
    }

    /// Reads into `buf[range]` from `offset`. `done` gets the buffer back and the bytes read or -errno.
    pub fn read(&self, offset: u64, buf: Vec<u8>, range: Range<usize>, done: Done) {
        let (handle, api) = self.image.raw();
        if range.start > range.end || range.end > buf.len() {
            done(Some(buf), -(libc::EINVAL as isize));
            return;
        }
        let pending = Pending {
            api,
            buf: Some(buf),
            done,
        };
        self.submit(pending, |comp, data| {
            // SAFETY: as for `write`; librbd writes at most `range.len()` bytes from `data + start`.
            unsafe {
                (api.aio_read2)(
                    handle,
                    offset,
                    range.len(),
                    data.add(range.start) as *mut c_char,
                    comp,
                    FADVISE_NOCACHE,
                )
            }
        });
    }

    /// Makes every write completed so far durable on the OSDs (it matters with librbd's cache).
    pub fn flush(&self, done: Done) {
        let (handle, api) = self.image.raw();
        let pending = Pending {
            api,
            buf: None,
            done,
        };
        // SAFETY: the handle is open while `self` is borrowed.
        self.submit(pending, |comp, _| unsafe { (api.aio_flush)(handle, comp) });
    }

    /// Zeroes `len` bytes from `offset`, deallocating whole objects where it can (so reads return zeroes
    /// and the space is given back).
    pub fn write_zeroes(&self, offset: u64, len: usize, done: Done) {
        let (handle, api) = self.image.raw();
        let pending = Pending {
            api,
            buf: None,
            done,
        };
        // SAFETY: the handle is open while `self` is borrowed; flags 0 mean "deallocate where possible".
        self.submit(pending, |comp, _| unsafe {
            (api.aio_write_zeroes)(handle, offset, len, comp, 0, 0)
        });
    }
}

/// Features under which a head read from RADOS is not what librbd would return: the journal holds writes
/// not yet in the objects, a migration's objects may still be in the source image, a persistent write-back
/// cache holds writes librados cannot see.
const READ_THROUGH_LIBRBD: u64 = features::JOURNALING | features::MIGRATING | features::DIRTY_CACHE;

impl<'a> AioImage<'a> {
    /// The image's data objects, for reads that go to RADOS without librbd's dispatch layers and cache
    /// (one object read instead of librbd's queue, cache lookup and object request). `None` when only
    /// librbd can read the image right: a clone (a missing object is read from the parent), data
    /// striped over several objects, or one of [`READ_THROUGH_LIBRBD`]. What librbd's write-back cache
    /// holds is not in the objects yet: the caller reads only objects with nothing written since its last
    /// completed flush (see `rookery_volumes::unflushed`).
    pub fn data_objects(&self, rados: &'a Rados) -> Result<Option<DataObjects<'a>>, CephError> {
        if self.image.parent()?.is_some() || self.image.features()? & READ_THROUGH_LIBRBD != 0 {
            return Ok(None);
        }
        let (handle, api) = self.image.raw();
        let mut stripes = 0u64;
        // SAFETY: the handle is open while `self` is borrowed; valid out-pointer.
        let rc = unsafe { (api.get_stripe_count)(handle, &mut stripes) };
        if rc < 0 || stripes > 1 {
            return Ok(None);
        }
        let mut info = rbd_ffi::ImageInfo::EMPTY;
        // SAFETY: as above; `info` has the size passed.
        let rc = unsafe { (api.stat)(handle, &mut info, std::mem::size_of_val(&info)) };
        if rc < 0 || !info.obj_size.is_power_of_two() {
            return Ok(None);
        }
        let mut prefix = vec![0u8; 128];
        // SAFETY: as above; the buffer has the length passed, and librbd NUL-terminates what it writes.
        let rc = unsafe {
            (api.get_block_name_prefix)(handle, prefix.as_mut_ptr() as *mut c_char, prefix.len())
        };
        if rc < 0 {
            return Ok(None);
        }
        let Some(end) = prefix.iter().position(|b| *b == 0) else {
            return Ok(None);
        };
        prefix.truncate(end);
        // Format 2 names data objects `rbd_data.<id>.<16 hex digits>`; an old format 1 image (`rb.0.…`,
        // 12 digits) is left to librbd.
        let Some(prefix) = String::from_utf8(prefix)
            .ok()
            .filter(|p| p.starts_with("rbd_data."))
        else {
            return Ok(None);
        };
        // SAFETY: as above.
        let pool_id = unsafe { (api.get_data_pool_id)(handle) };
        if pool_id < 0 {
            return Ok(None);
        }
        Ok(Some(DataObjects {
            io: rados.ioctx_by_id(pool_id)?,
            prefix,
            order: info.obj_size.trailing_zeros(),
        }))
    }

    /// Whether reads from [`DataObjects`] still return what librbd would (a feature in
    /// [`READ_THROUGH_LIBRBD`] can be enabled while the image is open).
    pub fn objects_readable(&self) -> bool {
        self.image
            .features()
            .is_ok_and(|f| f & READ_THROUGH_LIBRBD == 0)
    }
}

/// The RADOS objects that hold an unstriped image's data: object `n` holds bytes `n << order` up to the
/// next object's.
pub struct DataObjects<'a> {
    io: IoCtx<'a>,
    prefix: String,
    order: u32,
}

// SAFETY: librados' AIO entry points may be called on one ioctx from any number of threads at once (its
// objecter serialises them); the ioctx is only destroyed by drop, which needs exclusive ownership.
unsafe impl Sync for DataObjects<'_> {}
// SAFETY: the ioctx holds no thread-local state.
unsafe impl Send for DataObjects<'_> {}

/// One object read in flight; owned by librados (as the callback argument) until the callback runs.
struct ObjectPending {
    api: &'static ffi::Api,
    buf: Vec<u8>,
    range: Range<usize>,
    done: Done,
}

/// librados' completion callback for [`DataObjects::read`].
///
/// # Safety
/// `arg` must be a `Box<ObjectPending>` leaked by [`DataObjects::read`] for this completion, and this must
/// be its only call.
unsafe extern "C" fn object_read_complete(c: ffi::CompletionT, arg: *mut c_void) {
    // SAFETY: guaranteed by the caller (see above).
    let pending = unsafe { Box::from_raw(arg as *mut ObjectPending) };
    // SAFETY: `c` is the live completion this callback belongs to; it is released once, here.
    let rv = unsafe { (pending.api.aio_get_return_value)(c) };
    // SAFETY: as above.
    unsafe { (pending.api.aio_release)(c) };
    let ObjectPending {
        mut buf,
        range,
        done,
        ..
    } = *pending;
    let rv = zero_filled(&mut buf, range, rv);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(Some(buf), rv))).is_err()
    {
        tracing::error!("an object read's completion handler panicked");
    }
}

/// What an image read returns for an object read's result `rv` into `buf[range]`: an object that does not
/// exist, or ends before the range does, reads as zeroes (as librbd reads an unwritten part of an image
/// without a parent).
fn zero_filled(buf: &mut [u8], range: Range<usize>, rv: c_int) -> isize {
    let read = match rv {
        n if n >= 0 => (n as usize).min(range.len()),
        n if n == -libc::ENOENT => 0,
        n => return n as isize,
    };
    buf[range.start + read..range.end].fill(0);
    range.len() as isize
}

impl DataObjects<'_> {
    /// The objects `len` bytes from `offset` fall in (at least the first, for an empty range).
    pub fn objects_of(&self, offset: u64, len: u64) -> std::ops::RangeInclusive<u64> {
        (offset >> self.order)..=(offset.saturating_add(len.saturating_sub(1)) >> self.order)
    }

    /// The object that holds all of `len` bytes from `offset`, if one does.
    pub fn object_of(&self, offset: u64, len: usize) -> Option<u64> {
        let last = offset.checked_add((len as u64).checked_sub(1)?)?;
        let first = offset >> self.order;
        (first == last >> self.order).then_some(first)
    }

    /// Reads `buf[range]` from image offset `offset`, which [`Self::object_of`] placed in one object.
    /// `done` gets the buffer back and `range.len()` (what the object does not hold reads as zeroes) or
    /// -errno.
    pub fn read(&self, offset: u64, buf: Vec<u8>, range: Range<usize>, done: Done) {
        if range.start > range.end || range.end > buf.len() {
            done(Some(buf), -(libc::EINVAL as isize));
            return;
        }
        let Some(object) = self.object_of(offset, range.len()) else {
            done(Some(buf), -(libc::EINVAL as isize));
            return;
        };
        let oid = match cstring("object name", &format!("{}.{object:016x}", self.prefix)) {
            Ok(o) => o,
            Err(_) => {
                done(Some(buf), -(libc::EINVAL as isize));
                return;
            }
        };
        let api = self.io.api();
        let within = offset & ((1u64 << self.order) - 1);
        let len = range.len();
        let mut boxed = Box::new(ObjectPending {
            api,
            buf,
            range: range.clone(),
            done,
        });
        // SAFETY: `range` lies inside the buffer (checked above); the buffer's heap data does not move
        // when the box does.
        let data = unsafe { boxed.buf.as_mut_ptr().add(range.start) };
        let arg = Box::into_raw(boxed);
        let mut comp: ffi::CompletionT = ptr::null_mut();
        // SAFETY: valid out-pointer; `arg` stays valid until the callback takes it back.
        let rc = unsafe {
            (api.aio_create_completion2)(arg as *mut c_void, Some(object_read_complete), &mut comp)
        };
        if rc < 0 {
            // SAFETY: no completion exists, so nothing else will take `arg` back.
            let p = unsafe { Box::from_raw(arg) };
            (p.done)(Some(p.buf), rc as isize);
            return;
        }
        // SAFETY: the ioctx is open while `self` is borrowed; `data` has `len` writable bytes that live in
        // the pending request until the callback; the name is copied by librados before the call returns.
        let rc = unsafe {
            (api.aio_read)(
                self.io.raw(),
                oid.as_ptr(),
                comp,
                data as *mut c_char,
                len,
                within,
            )
        };
        if rc < 0 {
            // SAFETY: the read was not queued: the callback will not run, the completion and `arg` are
            // ours again; each is released once.
            unsafe { (api.aio_release)(comp) };
            // SAFETY: as above.
            let p = unsafe { Box::from_raw(arg) };
            (p.done)(Some(p.buf), rc as isize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aio_image_is_shareable() {
        fn shared<T: Sync + Send>() {}
        shared::<AioImage<'static>>();
        shared::<DataObjects<'static>>();
    }

    #[test]
    fn missing_or_short_objects_read_as_zeroes() {
        let mut buf = vec![7u8; 16];
        assert_eq!(zero_filled(&mut buf, 4..12, 3), 8);
        assert_eq!(&buf[..], &[7, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 7, 7, 7, 7]);
        let mut buf = vec![7u8; 8];
        assert_eq!(zero_filled(&mut buf, 0..8, -libc::ENOENT), 8);
        assert_eq!(buf, vec![0; 8]);
        let mut buf = vec![7u8; 8];
        assert_eq!(zero_filled(&mut buf, 0..8, 8), 8);
        assert_eq!(buf, vec![7; 8]);
        assert_eq!(
            zero_filled(&mut buf, 0..8, -libc::EIO),
            -(libc::EIO as isize)
        );
        assert_eq!(buf, vec![7; 8]);
    }
}
