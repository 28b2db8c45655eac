//! A safe handle over a librados cluster connection: mon/mgr commands with typed replies, and object I/O.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ffi::{self, IoCtxT, RadosT};
use crate::CephError;

/// A connected cluster handle. librados handles are thread-safe, so one is shared by every task.
pub struct Rados {
    handle: RadosT,
    api: &'static ffi::Api,
    serial: u64,
    /// How it was made, so mgr commands can get a client of their own (see [`Rados::command_raw`]).
    params: ConnectParams,
    mgr_client: Mutex<Option<Arc<Rados>>>,
}

/// No Debug: `options` may hold a cephx key.
#[derive(Clone)]
struct ConnectParams {
    conf: PathBuf,
    user: String,
    timeout: Duration,
    op_timeouts: bool,
    options: Vec<(String, String)>,
}

// SAFETY: librados documents rados_t as safe to use from several threads at once.
unsafe impl Send for Rados {}
unsafe impl Sync for Rados {}

/// Which daemon answers a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Mon,
    Mgr,
    /// One OSD, by id (`ceph tell osd.N ...`).
    Osd(u32),
}

pub(crate) fn cstring(what: &str, s: &str) -> Result<CString, CephError> {
    CString::new(s).map_err(|_| CephError::InvalidArgument(format!("{what} contains a NUL byte")))
}

/// Takes ownership of a librados-allocated buffer and copies it out.
///
/// # Safety
/// `buf` must be null or a buffer of `len` bytes returned by librados.
unsafe fn take_buffer(api: &ffi::Api, buf: *mut c_char, len: usize) -> Vec<u8> {
    if buf.is_null() {
        return Vec::new();
    }
    let out = std::slice::from_raw_parts(buf as *const u8, len).to_vec();
    (api.buffer_free)(buf);
    out
}

impl Rados {
    /// Connects as `client.<user>` using `conf` (which names the keyring). `timeout` bounds the connect and
    /// every later mon, mgr and OSD operation, so a dead cluster gives an error instead of a hang.
    pub fn connect(conf: &Path, user: &str, timeout: Duration) -> Result<Rados, CephError> {
        Self::connect_with(conf, user, timeout, true, &[])
    }

    /// Like [`Rados::connect`], as `client.<user>` with `key` (a cephx secret given by a caller, e.g. in a
    /// CSI request's secrets) instead of a keyring file.
    pub fn connect_with_key(
        conf: &Path,
        user: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Rados, CephError> {
        Self::connect_with(conf, user, timeout, true, &[("key", key), ("keyring", "")])
    }

    /// Like [`Rados::connect`], but `timeout` bounds only the connect: mon and OSD operations wait as
    /// long as they must. For a data path (a served block device), where an OSD that restarts must
    /// delay I/O, not fail it, as a slow disk would. `options` are set after ceph.conf is read.
    pub fn connect_data_path(
        conf: &Path,
        user: &str,
        timeout: Duration,
        options: &[(&str, &str)],
    ) -> Result<Rados, CephError> {
        Self::connect_with(conf, user, timeout, false, options)
    }

    fn connect_with(
        conf: &Path,
        user: &str,
        timeout: Duration,
        op_timeouts: bool,
        options: &[(&str, &str)],
    ) -> Result<Rados, CephError> {
        Self::connect_params(ConnectParams {
            conf: conf.to_path_buf(),
            user: user.to_string(),
            timeout,
            op_timeouts,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    fn connect_params(params: ConnectParams) -> Result<Rados, CephError> {
        let (conf, user, timeout, op_timeouts) = (
            params.conf.as_path(),
            params.user.as_str(),
            params.timeout,
            params.op_timeouts,
        );
        let api = ffi::api()?;
        let mut handle: RadosT = ptr::null_mut();
        let cluster = cstring("cluster", "ceph")?;
        let name = cstring("name", &format!("client.{user}"))?;
        // SAFETY: valid out-pointer and NUL-terminated strings.
        let rc = unsafe { (api.create2)(&mut handle, cluster.as_ptr(), name.as_ptr(), 0) };
        if rc < 0 {
            return Err(CephError::call("rados_create2", rc, ""));
        }
        static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let serial = SERIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let options = params.options.clone();
        let rados = Rados {
            handle,
            api,
            serial,
            params: params.clone(),
            mgr_client: Mutex::new(None),
        };
        let conf_c = cstring("config path", &conf.to_string_lossy())?;
        // SAFETY: handle is live until drop.
        let rc = unsafe { (api.conf_read_file)(rados.handle, conf_c.as_ptr()) };
        if rc < 0 {
            return Err(CephError::call(
                "read ceph.conf",
                rc,
                &format!("cannot read {}", conf.display()),
            ));
        }
        let secs = timeout.as_secs().max(1).to_string();
        let op_secs = if op_timeouts { secs.as_str() } else { "0" };
        for (opt, val) in [
            ("client_mount_timeout", secs.as_str()),
            ("rados_mon_op_timeout", op_secs),
            ("rados_osd_op_timeout", op_secs),
            // A short-lived admin client needs no log file or admin socket of its own.
            ("log_file", ""),
            ("admin_socket", ""),
        ] {
            rados.conf_set(opt, val)?;
        }
        for (opt, val) in &options {
            rados.conf_set(opt, val)?;
        }
        // SAFETY: handle is configured and not yet connected.
        let rc = unsafe { (api.connect)(rados.handle) };
        if rc < 0 {
            return Err(CephError::call(
                "connect to the cluster",
                rc,
                "no mon answered; is the cluster running? (`rookery status` says)",
            ));
        }
        Ok(rados)
    }

    /// Tells this connection apart from every other one made by this process (never reused), as a key for
    /// what callers remember per connection.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    fn conf_set(&self, opt: &str, val: &str) -> Result<(), CephError> {
        let o = cstring("option", opt)?;
        let v = cstring("value", val)?;
        // SAFETY: handle is live; strings are NUL-terminated.
        let rc = unsafe { (self.api.conf_set)(self.handle, o.as_ptr(), v.as_ptr()) };
        if rc < 0 {
            return Err(CephError::call("rados_conf_set", rc, opt));
        }
        Ok(())
    }

    /// librados' version, e.g. (3, 0, 0).
    pub fn library_version() -> Result<(i32, i32, i32), CephError> {
        let api = ffi::api()?;
        let (mut a, mut b, mut c) = (0, 0, 0);
        // SAFETY: valid out-pointers.
        unsafe { (api.version)(&mut a, &mut b, &mut c) };
        Ok((a, b, c))
    }

    /// Sends one command (a JSON object with a `prefix`) and returns (output buffer, status string).
    ///
    /// A mgr command must never time out inside librados: in Ceph 16 a mgr reply that arrives after
    /// `rados_mon_op_timeout` writes into buffers the timed-out call has already freed (ceph tracker
    /// 65985; seen here as "double free or corruption" in `MgrClient::handle_command_reply`, killing the
    /// supervisor when `up` asked for `osd df` while the mgr was starting). So on a connection with
    /// operation timeouts, mgr commands go through a second client of this connection's user that has
    /// none, on a thread of their own; the caller gets its timeout here, and the thread keeps that
    /// client and the call's buffers alive until the reply comes.
    pub fn command_raw(
        &self,
        target: Target,
        cmd: &Value,
        input: &[u8],
    ) -> Result<(Vec<u8>, String), CephError> {
        if target == Target::Mgr && self.params.op_timeouts {
            return self.mgr_command_bounded(cmd, input);
        }
        self.command_now(target, cmd, input)
    }

    fn mgr_command_bounded(
        &self,
        cmd: &Value,
        input: &[u8],
    ) -> Result<(Vec<u8>, String), CephError> {
        let prefix = cmd
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let client = {
            let mut slot = self.mgr_client.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(Rados::connect_params(ConnectParams {
                        op_timeouts: false,
                        ..self.params.clone()
                    })?);
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (cmd, input) = (cmd.clone(), input.to_vec());
        std::thread::Builder::new()
            .name("mgr-command".into())
            .spawn(move || {
                let _ = tx.send(client.command_now(Target::Mgr, &cmd, &input));
            })
            .map_err(|e| CephError::call(&prefix, -libc::EAGAIN, &e.to_string()))?;
        let timeout = self.params.timeout.max(Duration::from_secs(1));
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(_) => Err(CephError::call(
                &prefix,
                -libc::ETIMEDOUT,
                &format!("the mgr did not answer within {} s", timeout.as_secs()),
            )),
        }
    }

    fn command_now(
        &self,
        target: Target,
        cmd: &Value,
        input: &[u8],
    ) -> Result<(Vec<u8>, String), CephError> {
        let text = cmd.to_string();
        let cmd_c = cstring("command", &text)?;
        let cmds = [cmd_c.as_ptr()];
        let mut outbuf: *mut c_char = ptr::null_mut();
        let mut outbuf_len = 0usize;
        let mut outs: *mut c_char = ptr::null_mut();
        let mut outs_len = 0usize;
        // SAFETY: all pointers are valid for the call; librados allocates the outputs, which we free.
        let (rc, out, status) = unsafe {
            let rc = match target {
                Target::Mon | Target::Mgr => {
                    let f = if target == Target::Mon {
                        self.api.mon_command
                    } else {
                        self.api.mgr_command
                    };
                    f(
                        self.handle,
                        cmds.as_ptr(),
                        1,
                        input.as_ptr() as *const c_char,
                        input.len(),
                        &mut outbuf,
                        &mut outbuf_len,
                        &mut outs,
                        &mut outs_len,
                    )
                }
                Target::Osd(id) => (self.api.osd_command)(
                    self.handle,
                    id as libc::c_int,
                    cmds.as_ptr(),
                    1,
                    input.as_ptr() as *const c_char,
                    input.len(),
                    &mut outbuf,
                    &mut outbuf_len,
                    &mut outs,
                    &mut outs_len,
                ),
            };
            let out = take_buffer(self.api, outbuf, outbuf_len);
            let status = take_buffer(self.api, outs, outs_len);
            (rc, out, status)
        };
        let status = String::from_utf8_lossy(&status).trim().to_string();
        if rc < 0 {
            let prefix = cmd.get("prefix").and_then(Value::as_str).unwrap_or("?");
            return Err(CephError::call(prefix, rc, &status));
        }
        Ok((out, status))
    }

    /// Sends a command with `format: json` added and parses the reply into `T`.
    pub fn command<T: DeserializeOwned>(&self, target: Target, cmd: Value) -> Result<T, CephError> {
        self.command_with_input(target, cmd, &[])
    }

    /// Like [`Rados::command`], with an input buffer (what the CLI reads from `-i`).
    pub fn command_with_input<T: DeserializeOwned>(
        &self,
        target: Target,
        cmd: Value,
        input: &[u8],
    ) -> Result<T, CephError> {
        let mut cmd = cmd;
        if let Some(map) = cmd.as_object_mut() {
            map.insert("format".into(), Value::from("json"));
        }
        let (out, _) = self.command_raw(target, &cmd, input)?;
        let prefix = cmd
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        serde_json::from_slice(&out).map_err(|e| CephError::Reply {
            command: prefix,
            detail: e.to_string(),
        })
    }

    /// A command whose reply is only a status line.
    pub fn command_status(&self, target: Target, cmd: Value) -> Result<String, CephError> {
        self.command_raw(target, &cmd, &[]).map(|(_, s)| s)
    }

    pub fn ioctx(&self, pool: &str) -> Result<IoCtx<'_>, CephError> {
        let pool_c = cstring("pool", pool)?;
        let mut io: IoCtxT = ptr::null_mut();
        // SAFETY: handle is live; out-pointer valid.
        let rc = unsafe { (self.api.ioctx_create)(self.handle, pool_c.as_ptr(), &mut io) };
        if rc < 0 {
            return Err(CephError::call("open pool", rc, &format!("pool {pool:?}")));
        }
        Ok(IoCtx { io, rados: self })
    }

    /// Opens a pool by its id (what librbd reports for an image's data pool).
    pub fn ioctx_by_id(&self, pool_id: i64) -> Result<IoCtx<'_>, CephError> {
        let mut io: IoCtxT = ptr::null_mut();
        // SAFETY: handle is live; out-pointer valid.
        let rc = unsafe { (self.api.ioctx_create2)(self.handle, pool_id, &mut io) };
        if rc < 0 {
            return Err(CephError::call(
                "open pool",
                rc,
                &format!("pool id {pool_id}"),
            ));
        }
        Ok(IoCtx { io, rados: self })
    }
}

impl Drop for Rados {
    fn drop(&mut self) {
        // SAFETY: the handle was created by rados_create2 and is shut down once.
        unsafe { (self.api.shutdown)(self.handle) };
    }
}

/// An open pool. Borrowing the `Rados` keeps the cluster handle alive for as long as the pool is open.
pub struct IoCtx<'a> {
    io: IoCtxT,
    rados: &'a Rados,
}

impl IoCtx<'_> {
    /// The librados handle, for librbd calls that take a `rados_ioctx_t`. It stays valid only while this
    /// `IoCtx` is borrowed.
    pub(crate) fn raw(&self) -> IoCtxT {
        self.io
    }

    pub fn write_full(&self, oid: &str, data: &[u8]) -> Result<(), CephError> {
        let o = cstring("object name", oid)?;
        // SAFETY: io is live; buffer valid for len bytes.
        let rc = unsafe {
            (self.rados.api.write_full)(
                self.io,
                o.as_ptr(),
                data.as_ptr() as *const c_char,
                data.len(),
            )
        };
        if rc < 0 {
            return Err(CephError::call("write object", rc, oid));
        }
        Ok(())
    }

    pub fn size(&self, oid: &str) -> Result<u64, CephError> {
        let o = cstring("object name", oid)?;
        let mut size = 0u64;
        let mut mtime: libc::time_t = 0;
        // SAFETY: io is live; out-pointers valid.
        let rc = unsafe { (self.rados.api.stat)(self.io, o.as_ptr(), &mut size, &mut mtime) };
        if rc < 0 {
            return Err(CephError::call("stat object", rc, oid));
        }
        Ok(size)
    }

    /// Reads a whole object.
    pub fn read_all(&self, oid: &str) -> Result<Vec<u8>, CephError> {
        let size = self.size(oid)? as usize;
        let o = cstring("object name", oid)?;
        let mut buf = vec![0u8; size];
        let mut done = 0usize;
        while done < size {
            // SAFETY: the destination has `size - done` writable bytes from `done`.
            let rc = unsafe {
                (self.rados.api.read)(
                    self.io,
                    o.as_ptr(),
                    buf[done..].as_mut_ptr() as *mut c_char,
                    size - done,
                    done as u64,
                )
            };
            if rc < 0 {
                return Err(CephError::call("read object", rc, oid));
            }
            if rc == 0 {
                break;
            }
            done += rc as usize;
        }
        buf.truncate(done);
        Ok(buf)
    }

    pub(crate) fn api(&self) -> &'static ffi::Api {
        self.rados.api
    }

    /// Writes to a full pool fail at once (ENOSPC, or EDQUOT past a quota) instead of waiting until it has
    /// room again; images opened through this pool afterwards do the same.
    pub fn fail_writes_when_full(&mut self) {
        // SAFETY: io is live and exclusively borrowed (the setting is not thread-safe).
        unsafe { (self.rados.api.set_pool_full_try)(self.io) };
    }

    /// Sets omap values of `oid` (made if missing), all at once.
    pub fn omap_set(&self, oid: &str, entries: &[(&str, &[u8])]) -> Result<(), CephError> {
        let keys: Vec<*const c_char> = entries
            .iter()
            .map(|(k, _)| k.as_ptr() as *const c_char)
            .collect();
        let vals: Vec<*const c_char> = entries
            .iter()
            .map(|(_, v)| v.as_ptr() as *const c_char)
            .collect();
        let key_lens: Vec<usize> = entries.iter().map(|(k, _)| k.len()).collect();
        let val_lens: Vec<usize> = entries.iter().map(|(_, v)| v.len()).collect();
        self.write_op(oid, "set omap values", |op| {
            // SAFETY: the four arrays have `entries.len()` elements and outlive the synchronous write.
            unsafe {
                (self.rados.api.write_op_omap_set2)(
                    op,
                    keys.as_ptr(),
                    vals.as_ptr(),
                    key_lens.as_ptr(),
                    val_lens.as_ptr(),
                    entries.len(),
                )
            }
        })
    }

    /// Removes omap keys of `oid`; keys that are not there are no error.
    pub fn omap_remove(&self, oid: &str, keys: &[&str]) -> Result<(), CephError> {
        let ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr() as *const c_char).collect();
        let lens: Vec<usize> = keys.iter().map(|k| k.len()).collect();
        let result = self.write_op(oid, "remove omap keys", |op| {
            // SAFETY: both arrays have `keys.len()` elements and outlive the synchronous write.
            unsafe {
                (self.rados.api.write_op_omap_rm_keys2)(
                    op,
                    ptrs.as_ptr(),
                    lens.as_ptr(),
                    keys.len(),
                )
            }
        });
        match result {
            Err(e) if e.errno() == Some(-libc::ENOENT) => Ok(()),
            other => other,
        }
    }

    fn write_op(
        &self,
        oid: &str,
        what: &str,
        add: impl FnOnce(ffi::WriteOpT),
    ) -> Result<(), CephError> {
        let o = cstring("object name", oid)?;
        let api = self.rados.api;
        // SAFETY: no preconditions; null on allocation failure.
        let op = unsafe { (api.create_write_op)() };
        if op.is_null() {
            return Err(CephError::call(what, -libc::ENOMEM, oid));
        }
        add(op);
        // LIBRADOS_OPERATION_FULL_TRY: on a full pool, fail at once (EDQUOT/ENOSPC) rather than wait for
        // room until the op times out; these small records are never worth a 10 s stall.
        const FULL_TRY: i32 = 64;
        // SAFETY: op and io are live; no mtime (the OSD's clock).
        let rc =
            unsafe { (api.write_op_operate)(op, self.io, o.as_ptr(), ptr::null_mut(), FULL_TRY) };
        // SAFETY: created above, released once after the synchronous operate returned.
        unsafe { (api.release_write_op)(op) };
        if rc < 0 {
            return Err(CephError::call(what, rc, oid));
        }
        Ok(())
    }

    pub fn remove(&self, oid: &str) -> Result<(), CephError> {
        let o = cstring("object name", oid)?;
        // SAFETY: io is live.
        let rc = unsafe { (self.rados.api.remove)(self.io, o.as_ptr()) };
        if rc < 0 {
            return Err(CephError::call("remove object", rc, oid));
        }
        Ok(())
    }
}

impl IoCtx<'_> {
    /// Takes the advisory exclusive lock `name` on object `oid` for `duration`, after which it lapses by
    /// itself (so a holder that crashes cannot keep it). EBUSY when someone else holds it.
    pub fn lock_exclusive(
        &self,
        oid: &str,
        name: &str,
        cookie: &str,
        duration: std::time::Duration,
    ) -> Result<(), CephError> {
        let (o, n, c, d) = (
            cstring("object name", oid)?,
            cstring("lock name", name)?,
            cstring("cookie", cookie)?,
            cstring("description", "rookery")?,
        );
        let mut tv = libc::timeval {
            tv_sec: duration.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: io is live; strings are NUL-terminated; tv is a valid timeval.
        let rc = unsafe {
            (self.rados.api.lock_exclusive)(
                self.io,
                o.as_ptr(),
                n.as_ptr(),
                c.as_ptr(),
                d.as_ptr(),
                &mut tv,
                0,
            )
        };
        if rc < 0 {
            return Err(CephError::call("lock object", rc, oid));
        }
        Ok(())
    }

    pub fn unlock(&self, oid: &str, name: &str, cookie: &str) -> Result<(), CephError> {
        let (o, n, c) = (
            cstring("object name", oid)?,
            cstring("lock name", name)?,
            cstring("cookie", cookie)?,
        );
        // SAFETY: io is live; strings are NUL-terminated.
        let rc = unsafe { (self.rados.api.unlock)(self.io, o.as_ptr(), n.as_ptr(), c.as_ptr()) };
        if rc < 0 {
            return Err(CephError::call("unlock object", rc, oid));
        }
        Ok(())
    }
}

impl IoCtx<'_> {
    /// Calls method `method` of object class `class` on `oid` (what librbd does for its metadata), and
    /// returns the method's output.
    pub fn exec(
        &self,
        oid: &str,
        class: &str,
        method: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, CephError> {
        let (o, c, m) = (
            cstring("object name", oid)?,
            cstring("class name", class)?,
            cstring("method name", method)?,
        );
        let mut cap = 4096usize;
        loop {
            let mut out = vec![0u8; cap];
            // SAFETY: io is live; strings are NUL-terminated; `input` and `out` are valid for their lengths.
            let rc = unsafe {
                (self.rados.api.exec)(
                    self.io,
                    o.as_ptr(),
                    c.as_ptr(),
                    m.as_ptr(),
                    input.as_ptr() as *const c_char,
                    input.len(),
                    out.as_mut_ptr() as *mut c_char,
                    out.len(),
                )
            };
            if rc == -libc::ERANGE && cap < 64 << 20 {
                cap *= 16;
                continue;
            }
            if rc < 0 {
                return Err(CephError::call(&format!("call {class}.{method}"), rc, oid));
            }
            out.truncate(rc as usize);
            return Ok(out);
        }
    }

    /// Sends an empty notification to the watchers of `oid` and counts them: those that answered and those
    /// that did not within `timeout` (a client that died and whose watch has not lapsed yet). Unlike a
    /// listing of watchers, which librados offers only in C++, this reaches every live one.
    pub fn notify_watchers(
        &self,
        oid: &str,
        timeout: std::time::Duration,
    ) -> Result<usize, CephError> {
        let o = cstring("object name", oid)?;
        let mut reply: *mut c_char = std::ptr::null_mut();
        let mut reply_len = 0usize;
        // SAFETY: io is live; an empty payload needs no buffer; librados allocates the reply, freed below.
        let rc = unsafe {
            (self.rados.api.notify2)(
                self.io,
                o.as_ptr(),
                std::ptr::null(),
                0,
                timeout.as_millis() as u64,
                &mut reply,
                &mut reply_len,
            )
        };
        // SAFETY: librados set `reply` to null or to a buffer of `reply_len` bytes it allocated.
        let bytes = unsafe { take_buffer(self.rados.api, reply, reply_len) };
        if rc < 0 && rc != -libc::ETIMEDOUT {
            return Err(CephError::call("notify watchers", rc, oid));
        }
        let counted = crate::wire::notify_watchers(&bytes)
            .ok_or_else(|| CephError::call("read the watchers' answers", -libc::EINVAL, oid))?;
        // A timeout means some watcher did not answer, whatever the reply managed to list.
        Ok(if rc == -libc::ETIMEDOUT {
            counted.max(1)
        } else {
            counted
        })
    }
}

impl Drop for IoCtx<'_> {
    fn drop(&mut self) {
        // SAFETY: created by rados_ioctx_create, destroyed once.
        unsafe { (self.rados.api.ioctx_destroy)(self.io) };
    }
}

/// `strerror` for a negative librados return code.
pub(crate) fn errno_text(rc: i32) -> String {
    // SAFETY: strerror returns a pointer to a static (thread-local in glibc) string.
    let p = unsafe { libc::strerror(-rc) };
    if p.is_null() {
        return format!("error {rc}");
    }
    // SAFETY: non-null NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
