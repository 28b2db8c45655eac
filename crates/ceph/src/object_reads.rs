//! Many small object reads in flight at once: what lists thousands of volumes in a bounded time.
//!
//! Each [`ObjectRead`] is one compound RADOS read (a range of omap values and/or the first bytes of the
//! data) of one object, one round trip. [`IoCtx::read_many`] keeps up to [`IN_FLIGHT`] of them outstanding,
//! so the time is set by the OSDs' throughput rather than by one round trip per object.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, CString};
use std::ptr;

use crate::ffi::{self, CompletionT, OmapIterT, ReadOpT};
use crate::rados::{cstring, IoCtx};
use crate::CephError;

/// Reads outstanding at once: half the client's default throttle (1024 ops), enough to keep
/// three OSDs on two cores busy.
pub const IN_FLIGHT: usize = 512;

/// The most omap values one read returns: the OSD's own cap (`osd_max_omap_entries_per_request`).
pub const OMAP_PAGE: u64 = 1024;

/// What to read from one object.
#[derive(Debug, Clone, Default)]
pub struct ObjectRead {
    pub oid: String,
    /// Omap values whose keys start with `prefix`, after the key `after` (empty: from the first).
    pub omap: Option<OmapRange>,
    /// Up to this many bytes of the object's data, from its start.
    pub data_len: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct OmapRange {
    pub after: String,
    pub prefix: String,
    pub max: u64,
}

impl ObjectRead {
    /// The first page of omap values under `prefix`.
    pub fn omap(oid: impl Into<String>, prefix: &str) -> ObjectRead {
        ObjectRead {
            oid: oid.into(),
            omap: Some(OmapRange {
                after: String::new(),
                prefix: prefix.to_string(),
                max: OMAP_PAGE,
            }),
            data_len: None,
        }
    }

    /// The first `len` bytes of the object's data.
    pub fn data(oid: impl Into<String>, len: usize) -> ObjectRead {
        ObjectRead {
            oid: oid.into(),
            omap: None,
            data_len: Some(len),
        }
    }
}

/// What came back for one [`ObjectRead`].
#[derive(Debug, Clone, Default)]
pub struct ObjectReply {
    /// The omap values, in key order.
    pub omap: Vec<(String, Vec<u8>)>,
    /// More omap values follow the last one returned.
    pub omap_more: bool,
    pub data: Vec<u8>,
}

/// One read in flight. Boxed, so the addresses librados writes into stay put until it completes.
struct InFlight {
    index: usize,
    op: ReadOpT,
    completion: CompletionT,
    _oid: CString,
    _after: CString,
    _prefix: CString,
    iter: OmapIterT,
    more: u8,
    omap_rval: c_int,
    wants_omap: bool,
    buf: Vec<u8>,
    bytes_read: usize,
    read_rval: c_int,
    wants_data: bool,
}

impl IoCtx<'_> {
    /// Reads every object of `reads`, many at once. The replies are in the order of `reads`; a missing
    /// object is an error with errno ENOENT, for that read alone.
    pub fn read_many(&self, reads: &[ObjectRead]) -> Vec<Result<ObjectReply, CephError>> {
        let mut out: Vec<Option<Result<ObjectReply, CephError>>> =
            (0..reads.len()).map(|_| None).collect();
        let mut pending: VecDeque<Box<InFlight>> = VecDeque::new();
        for (index, read) in reads.iter().enumerate() {
            if pending.len() >= IN_FLIGHT {
                if let Some(oldest) = pending.pop_front() {
                    let i = oldest.index;
                    out[i] = Some(self.finish(oldest, &reads[i].oid));
                }
            }
            match self.start(index, read) {
                Ok(f) => pending.push_back(f),
                Err(e) => out[index] = Some(Err(e)),
            }
        }
        while let Some(f) = pending.pop_front() {
            let i = f.index;
            out[i] = Some(self.finish(f, &reads[i].oid));
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(CephError::call("read object", -libc::EIO, "lost"))))
            .collect()
    }

    /// One read, waited for.
    pub fn read_one(&self, read: &ObjectRead) -> Result<ObjectReply, CephError> {
        self.read_many(std::slice::from_ref(read))
            .pop()
            .unwrap_or_else(|| Err(CephError::call("read object", -libc::EIO, &read.oid)))
    }

    /// The omap value of `key` in `oid`, if both exist.
    pub fn omap_get(&self, oid: &str, key: &str) -> Result<Option<Vec<u8>>, CephError> {
        // Keys come sorted, so the first one under the prefix `key` is `key` itself when it is there.
        let mut read = ObjectRead::omap(oid, key);
        if let Some(range) = read.omap.as_mut() {
            range.max = 1;
        }
        match self.read_one(&read) {
            Ok(r) => Ok(r.omap.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)),
            Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every omap value of `oid` under `prefix`, page after page.
    pub fn omap_all(&self, oid: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, CephError> {
        let mut all = Vec::new();
        let mut read = ObjectRead::omap(oid, prefix);
        loop {
            let reply = self.read_one(&read)?;
            let more = reply.omap_more;
            all.extend(reply.omap);
            match (more, all.last(), read.omap.as_mut()) {
                (true, Some((last, _)), Some(range)) => range.after = last.clone(),
                _ => return Ok(all),
            }
        }
    }

    fn start(&self, index: usize, read: &ObjectRead) -> Result<Box<InFlight>, CephError> {
        let api = self.api();
        let range = read.omap.clone().unwrap_or_default();
        let mut f = Box::new(InFlight {
            index,
            op: ptr::null_mut(),
            completion: ptr::null_mut(),
            _oid: cstring("object name", &read.oid)?,
            _after: cstring("omap key", &range.after)?,
            _prefix: cstring("omap key prefix", &range.prefix)?,
            iter: ptr::null_mut(),
            more: 0,
            omap_rval: 0,
            wants_omap: read.omap.is_some(),
            buf: vec![0u8; read.data_len.unwrap_or(0)],
            bytes_read: 0,
            read_rval: 0,
            wants_data: read.data_len.is_some(),
        });
        // SAFETY: no preconditions; null on allocation failure.
        f.op = unsafe { (api.create_read_op)() };
        if f.op.is_null() {
            return Err(CephError::call("read object", -libc::ENOMEM, &read.oid));
        }
        if f.wants_omap {
            // SAFETY: the op is live; every pointer is into the box, which outlives the op (it is released
            // in `finish` or below, after completion).
            unsafe {
                (api.read_op_omap_get_vals2)(
                    f.op,
                    f._after.as_ptr(),
                    f._prefix.as_ptr(),
                    range.max.max(1),
                    &mut f.iter,
                    &mut f.more,
                    &mut f.omap_rval,
                )
            };
        }
        if f.wants_data {
            let len = f.buf.len();
            let buf = f.buf.as_mut_ptr() as *mut c_char;
            // SAFETY: as above; `buf` has `len` writable bytes and is not moved until completion.
            unsafe { (api.read_op_read)(f.op, 0, len, buf, &mut f.bytes_read, &mut f.read_rval) };
        }
        // SAFETY: valid out-pointer; no callback, the completion is waited for in `finish`.
        let rc = unsafe { (api.aio_create_completion2)(ptr::null_mut(), None, &mut f.completion) };
        if rc < 0 {
            self.release(&mut f);
            return Err(CephError::call("read object", rc, &read.oid));
        }
        // SAFETY: op, ioctx and completion are live; the object name lives in the box.
        let rc = unsafe {
            (api.aio_read_op_operate)(f.op, self.raw(), f.completion, f._oid.as_ptr(), 0)
        };
        if rc < 0 {
            self.release(&mut f);
            return Err(CephError::call("read object", rc, &read.oid));
        }
        Ok(f)
    }

    fn finish(&self, mut f: Box<InFlight>, oid: &str) -> Result<ObjectReply, CephError> {
        let api = self.api();
        // SAFETY: the completion is live and was handed to a submitted op.
        let rc = unsafe {
            (api.aio_wait_for_complete)(f.completion);
            (api.aio_get_return_value)(f.completion)
        };
        let reply = if rc < 0 {
            Err(CephError::call("read object", rc, oid))
        } else if f.wants_omap && f.omap_rval < 0 {
            Err(CephError::call("read omap", f.omap_rval, oid))
        } else if f.wants_data && f.read_rval < 0 {
            Err(CephError::call("read object", f.read_rval, oid))
        } else {
            let mut reply = ObjectReply {
                omap_more: f.more != 0,
                ..ObjectReply::default()
            };
            if f.wants_omap {
                reply.omap = omap_entries(api, f.iter);
            }
            if f.wants_data {
                let mut data = std::mem::take(&mut f.buf);
                data.truncate(f.bytes_read);
                reply.data = data;
            }
            Ok(reply)
        };
        self.release(&mut f);
        reply
    }

    /// Frees what `start` made: the iterator (allocated as soon as the omap read is added, so it is freed
    /// even if the op never ran), the op and the completion.
    fn release(&self, f: &mut InFlight) {
        let api = self.api();
        // SAFETY: each handle is released once and only after its op completed or was never submitted.
        unsafe {
            if !f.iter.is_null() {
                (api.omap_get_end)(f.iter);
                f.iter = ptr::null_mut();
            }
            if !f.op.is_null() {
                (api.release_read_op)(f.op);
                f.op = ptr::null_mut();
            }
            if !f.completion.is_null() {
                (api.aio_release)(f.completion);
                f.completion = ptr::null_mut();
            }
        }
    }
}

/// The key/value pairs of a filled omap iterator (valid until `rados_omap_get_end`, so copied out).
fn omap_entries(api: &ffi::Api, iter: OmapIterT) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if iter.is_null() {
        return out;
    }
    loop {
        let mut key: *mut c_char = ptr::null_mut();
        let mut val: *mut c_char = ptr::null_mut();
        let (mut key_len, mut val_len) = (0usize, 0usize);
        // SAFETY: iter is a live, filled iterator; the out-pointers are valid.
        let rc =
            unsafe { (api.omap_get_next2)(iter, &mut key, &mut val, &mut key_len, &mut val_len) };
        if rc < 0 || key.is_null() {
            return out;
        }
        // SAFETY: librados hands out `key_len`/`val_len` readable bytes that live until get_end.
        let k = unsafe { std::slice::from_raw_parts(key as *const u8, key_len) };
        let v = if val.is_null() {
            &[][..]
        } else {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts(val as *const u8, val_len) }
        };
        out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
    }
}
