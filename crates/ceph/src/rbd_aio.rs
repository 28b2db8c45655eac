//! Asynchronous I/O on an RBD image: the data path of a block device served from userspace.
//!
//! Each request hands librbd a buffer it owns and a callback; librbd calls back from one of its own threads
//! when the request is done, and the buffer comes back with the result. Many requests can be in flight at
//! once, from any number of threads, which is what lets a server keep the OSDs busy (a synchronous
//! `rbd_write` per request waits a full round trip each time).

use std::ffi::{c_char, c_int, c_void};
use std::ops::Range;
use std::ptr;

use crate::rbd::Image;
use crate::rbd_ffi::{self, CompletionT};
use crate::{CephError, IoCtx};

/// librados' LIBRADOS_OP_FLAG_FADVISE_NOCACHE: data read is not kept in librbd's cache (it still sees
/// writes the cache holds). Whoever reads through this type has a page cache of its own above it (the
/// kernel's, over a loop device), so keeping reads here too would only spend memory and cache locking.
const FADVISE_NOCACHE: c_int = 0x40;

/// What a finished request gives back: its buffer (if it had one) and librbd's result (bytes for reads
/// and writes, 0 for the rest, or a negative errno).
pub type Done = Box<dyn FnOnce(Option<Vec<u8>>, isize) + Send + 'static>;

/// An image open for concurrent asynchronous I/O.
///
/// Unlike [`Image`], this type is `Sync`: it only offers librbd's I/O entry points (`rbd_aio_*`) and the
/// size, which librbd serialises internally and which qemu and rbd-nbd call from many threads at once on
/// one handle. Management calls are left to [`Image`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aio_image_is_shareable() {
        fn shared<T: Sync + Send>() {}
        shared::<AioImage<'static>>();
    }
}
