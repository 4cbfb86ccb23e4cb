//! nftables in-process, through Debian's libnftables (the library the `nft` tool is a thin front end
//! to), loaded at run time: no `nft` process per change.
//!
//! Why the odd ending in [`Ctx::drop`]: the kernel makes the *last close* of an nf_tables netlink
//! socket after a commit wait for an RCU grace period (the transaction's cleanup work is flushed when
//! the socket is released), 15–20 ms on a small VM — most of what `nft -f` costs. The rules are in
//! force once the commit returned, so nobody needs to wait for that: a short-lived grandchild
//! inherits the socket (and nothing else: it execs `/bin/true`) and does the final close on its own
//! time, while we close our copy for free.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::OnceLock;

use libloading::Library;

type CtxNew = unsafe extern "C" fn(c_uint) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type CtxBuffer = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;

struct Lib {
    // Keeps the symbols below valid.
    _lib: Library,
    ctx_new: CtxNew,
    ctx_free: CtxFree,
    run_cmd_from_buffer: RunCmd,
    buffer_output: CtxBuffer,
    buffer_error: CtxBuffer,
    get_output_buffer: GetBuffer,
    get_error_buffer: GetBuffer,
}

fn load() -> Option<Lib> {
    // SAFETY: libnftables has no load-time side effects; the signatures match its public header
    // (nftables/libnftables.h), which has been stable since 0.9.
    unsafe {
        let lib = Library::new("libnftables.so.1").ok()?;
        Some(Lib {
            ctx_new: *lib.get::<CtxNew>(b"nft_ctx_new\0").ok()?,
            ctx_free: *lib.get::<CtxFree>(b"nft_ctx_free\0").ok()?,
            run_cmd_from_buffer: *lib.get::<RunCmd>(b"nft_run_cmd_from_buffer\0").ok()?,
            buffer_output: *lib.get::<CtxBuffer>(b"nft_ctx_buffer_output\0").ok()?,
            buffer_error: *lib.get::<CtxBuffer>(b"nft_ctx_buffer_error\0").ok()?,
            get_output_buffer: *lib.get::<GetBuffer>(b"nft_ctx_get_output_buffer\0").ok()?,
            get_error_buffer: *lib.get::<GetBuffer>(b"nft_ctx_get_error_buffer\0").ok()?,
            _lib: lib,
        })
    }
}

fn lib() -> Option<&'static Lib> {
    static LIB: OnceLock<Option<Lib>> = OnceLock::new();
    LIB.get_or_init(load).as_ref()
}

/// What one command buffer produced.
pub struct Outcome {
    /// Zero on success.
    pub status: i32,
    /// What nft would have printed on stdout.
    pub output: String,
    /// What nft would have printed on stderr.
    pub error: String,
}

struct Ctx {
    lib: &'static Lib,
    ptr: *mut c_void,
    committed: bool,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if self.committed {
            hand_off_final_close();
        }
        // SAFETY: ptr came from nft_ctx_new and is freed once.
        unsafe { (self.lib.ctx_free)(self.ptr) };
    }
}

/// The nf_tables netlink sockets this process has open (libnftables keeps one per context).
fn nftables_sockets() -> Vec<c_int> {
    // Ascending: the closing loop below relies on it.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<c_int>().ok())
        .filter(|&fd| {
            let opt = |name| {
                let mut v: c_int = 0;
                let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
                // SAFETY: plain getsockopt into a local int; fails harmlessly on non-sockets.
                let r = unsafe {
                    libc::getsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        name,
                        (&mut v as *mut c_int).cast(),
                        &mut len,
                    )
                };
                (r == 0).then_some(v)
            };
            opt(libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
                && opt(libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A tiny program for the grandchild to become (coreutils, always on Debian): exec drops every memory
/// mapping it inherited (berth's database files among them), so it pins nothing but the socket.
const NOOP_PROGRAM: &CStr = c"/bin/true";

/// Hands the final close of the nf_tables socket(s) to a grandchild that keeps only those, execs a no-op
/// and exits; its exit does the slow close. The child in between is reaped here right away, so no
/// zombie is left; neither holds any other descriptor (a pipe someone reads to EOF, say) nor, after the
/// exec, any mapping (a filesystem someone unmounts next).
fn hand_off_final_close() {
    let keep = nftables_sockets();
    if keep.is_empty() {
        return;
    }
    let argv = [NOOP_PROGRAM.as_ptr(), std::ptr::null()];
    let envp: [*const c_char; 1] = [std::ptr::null()];
    // SAFETY: the children only call close_range, fcntl, fork, execve and _exit, which are
    // async-signal-safe, so forking from a process with other threads is fine.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            let mut from: c_uint = 0;
            for &fd in &keep {
                if fd as c_uint > from {
                    libc::syscall(libc::SYS_close_range, from, fd as c_uint - 1, 0);
                }
                from = fd as c_uint + 1;
                // Survive the exec (libnftables opens it close-on-exec).
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            libc::syscall(libc::SYS_close_range, from, c_uint::MAX, 0);
            if libc::fork() == 0 {
                libc::execve(NOOP_PROGRAM.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(0);
            }
            libc::_exit(0);
        }
        if child > 0 {
            let mut status = 0;
            libc::waitpid(child, &mut status, 0);
        }
    }
}

/// Runs `commands` (nft syntax, one transaction) in-process. `None` when libnftables is not there.
pub fn run(commands: &str, changes_rules: bool) -> Option<Outcome> {
    let lib = lib()?;
    let text = CString::new(commands).ok()?;
    // SAFETY: the calls follow libnftables' documented use: new context, buffered output, run,
    // read the buffers (owned by the context), free.
    unsafe {
        let ptr = (lib.ctx_new)(0);
        if ptr.is_null() {
            return None;
        }
        let mut ctx = Ctx {
            lib,
            ptr,
            committed: false,
        };
        (lib.buffer_output)(ptr);
        (lib.buffer_error)(ptr);
        let status = (lib.run_cmd_from_buffer)(ptr, text.as_ptr());
        let read = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        let outcome = Outcome {
            status,
            output: read((lib.get_output_buffer)(ptr)),
            error: read((lib.get_error_buffer)(ptr)),
        };
        ctx.committed = changes_rules && status == 0;
        Some(outcome)
    }
}
