//! Per-thread state of the shim. Small room. A vfork child runs on its parent
//! thread's memory, TLS included: the "in hook" flag is cleared before every real
//! exec, and the record of fds the child set up is tagged with the pid that wrote
//! it, so the parent thread never trusts what its vfork child left there.

use super::sys;
use core::cell::{Cell, UnsafeCell};

const SETUP_MAX: usize = 64;

/// All-zero is the initial state (the C block starts zeroed in every thread).
#[repr(C)]
pub struct ThreadState {
    /// The tid inside the shim, or 0. A tid, not a flag: a vfork child killed in the
    /// middle of a hook must not leave its parent thread "inside" forever.
    in_hook: Cell<i32>,
    setup_pid: Cell<i32>,
    setup_n: Cell<usize>,
    setup_saturated: Cell<bool>,
    setup_fds: [Cell<i32>; SETUP_MAX],
    /// Where this thread last blocked a commonly needed signal (return address).
    blocked_by: Cell<usize>,
    /// Set by the fork hook in the child: this thread is a fork child's only thread,
    /// and fds it creates before exec are made for the new program.
    fork_child: Cell<i32>,
    /// A fork child that counted a repeat into the table (repeat.rs): its pid. Here,
    /// beside `fork_child` (a page the fork hook has written in the child), not in
    /// the library's data: a store there is a copy-on-write fault per repeat.
    counted_pid: Cell<i32>,
    /// The pid that closed fds in bulk up to the top (close_range/closefrom): what
    /// survives in it was chosen (CPython's close_fds with pass_fds).
    swept_pid: Cell<i32>,
    /// The pid that last vforked on this thread, until it runs a recording hook
    /// again: a vfork child runs on this very state, so a hook that finds it set
    /// and another pid is in a vfork child (see may_record).
    vfork_pid: Cell<i32>,
    /// The program's path as this thread last read it (`exe`), its length + 1 in
    /// `exe_n` (0: not read). An exec starts every thread afresh, so it never goes
    /// stale; a vfork child writes the same path its parent would.
    exe_n: Cell<u16>,
    exe: UnsafeCell<[u8; EXE_MAX]>,
}

/// The program path's room: as an event's `exe` field has.
pub const EXE_MAX: usize = 512;

extern "C" {
    fn execguard_tls() -> *mut ThreadState;
    /// The block itself (a thread-local, initial-exec): only the x86-64 signal-mask
    /// trampolines name it, to read `blocked_by` at its %fs-relative address.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) static execguard_tls_block: u8;
    static execguard_tls_bytes: libc::c_ulong;
}

const _: () = assert!(core::mem::size_of::<ThreadState>() <= 1024, "src/c/tls.c holds 1024 bytes");

/// Async-signal-safe: the program's path (`/proc/self/exe`) into `out`, its length.
/// Read once per thread: a first report needs it twice (the finding's identity and
/// the line's `exe`), and each readlink of /proc/self/exe costs microseconds in a
/// fork child.
#[link_section = ".text.report.execguard"]
pub fn exe(out: &mut [core::mem::MaybeUninit<u8>; EXE_MAX]) -> usize {
    TS.with(|t| {
        // SAFETY: this thread's own block; `exe` is only touched here, and a signal
        // handler that runs this in the middle writes the same bytes.
        let cached = unsafe { &mut *t.exe.get() };
        let n = t.exe_n.get() as usize;
        if n > 0 {
            let len = (n - 1).min(EXE_MAX);
            super::line::copy_bytes(out, cached.get(..len).unwrap_or(&[]));
            return len;
        }
        let len = sys::readlink(b"/proc/self/exe\0", cached).unwrap_or(0).min(EXE_MAX);
        // A failure (no /proc in a sandbox) is asked again next time, as before.
        if len > 0 {
            t.exe_n.set(len as u16 + 1);
        }
        super::line::copy_bytes(out, cached.get(..len).unwrap_or(&[]));
        len
    })
}

/// Where `blocked_by` lies in the thread's block (the x86-64 signal-mask trampolines
/// read it there).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const BLOCKED_BY_AT: usize = core::mem::offset_of!(ThreadState, blocked_by);

/// Async-signal-safe: this thread's state (a thread-local block in src/c/tls.c).
struct Ts;

impl Ts {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&ThreadState) -> R) -> R {
        // SAFETY: the C block is at least size_of::<ThreadState>() bytes (checked at
        // compile time against the C constant, and at load time in debug builds),
        // 16-aligned, zero-initialised — a valid ThreadState — and private to this
        // thread, so shared references to its Cells never cross threads.
        f(unsafe { &*execguard_tls() })
    }
}

static TS: Ts = Ts;

/// Load time: the C block must be as large as the Rust layout.
pub fn layout_ok() -> bool {
    // SAFETY: a constant defined in src/c/tls.c.
    unsafe { execguard_tls_bytes as usize >= core::mem::size_of::<ThreadState>() }
}

/// Held while a hook does its own work; nested hooks pass straight through.
pub struct InHook(());

/// Async-signal-safe: enter the shim unless this thread is already inside it.
#[inline]
#[link_section = ".text.startup.execguard"]
pub fn enter() -> Option<InHook> {
    let tid = sys::gettid();
    TS.with(|t| {
        if t.in_hook.get() == tid {
            None
        } else {
            t.in_hook.set(tid);
            Some(InHook(()))
        }
    })
}

impl Drop for InHook {
    #[inline]
    fn drop(&mut self) {
        TS.with(|t| t.in_hook.set(0))
    }
}

/// Async-signal-safe: this process set `fd` up for its child on purpose (a dup2/dup3
/// target, CLOEXEC cleared, F_DUPFD result).
pub fn note_setup(fd: i32) {
    let pid = sys::getpid();
    TS.with(|t| {
        if t.setup_pid.get() != pid {
            t.setup_pid.set(pid);
            t.setup_n.set(0);
            t.setup_saturated.set(false);
        }
        t.push(fd);
    })
}

impl ThreadState {
    fn push(&self, fd: i32) {
        let n = self.setup_n.get();
        match self.setup_fds.get(n) {
            Some(slot) => {
                slot.set(fd);
                self.setup_n.set(n + 1);
            }
            None => self.setup_saturated.set(true),
        }
    }
}

/// Async-signal-safe: the fork hook, in the child: start a fresh record for `pid`.
pub fn forked(pid: i32) {
    TS.with(|t| {
        t.fork_child.set(pid);
        t.vfork_pid.set(0);
        t.setup_pid.set(pid);
        t.setup_n.set(0);
        t.setup_saturated.set(false);
    })
}

/// Async-signal-safe: the vfork hook, in the parent, before the child shares this
/// thread's memory. A vfork child that vforks again keeps its parent's mark.
// Only the vfork trampolines call it (x86-64 and arm64: build.rs).
#[cfg_attr(not(execguard_vfork_hook), allow(dead_code))]
pub fn vforking(pid: i32) {
    TS.with(|t| {
        if t.vfork_pid.get() == 0 {
            t.vfork_pid.set(pid)
        }
    })
}

/// Async-signal-safe: the parent this thread runs for as a vfork child (`pid` is
/// the caller's own), if the vfork hook marked it: its memory is that parent's.
pub fn vfork_parent(pid: i32) -> Option<i32> {
    TS.with(|t| {
        let v = t.vfork_pid.get();
        (v != 0 && v != pid).then_some(v)
    })
}

/// Async-signal-safe: may a hook record what it saw of this process's fd table
/// (fdgen::made)? Not in a vfork child: its fds are its own, its memory is the
/// parent's. One TLS load; after a vfork, one getpid in the first hook that asks
/// (the parent, resumed, clears the mark: its child has exec'd or exited by then).
#[inline]
pub fn may_record() -> bool {
    TS.with(|t| {
        let v = t.vfork_pid.get();
        if v == 0 {
            return true;
        }
        if sys::getpid() == v {
            t.vfork_pid.set(0);
            return true;
        }
        false
    })
}

/// Async-signal-safe: the pid the fork hook gave this thread's process (0 if none).
#[inline]
pub fn fork_child() -> i32 {
    TS.with(|t| t.fork_child.get())
}

/// Async-signal-safe: this thread is the fork child `pid`: it notes that it counted
/// into the repeat table (and says so); otherwise nothing is written.
#[inline]
pub fn note_counted_in_fork_child(pid: i32) -> bool {
    TS.with(|t| {
        if t.fork_child.get() != pid {
            return false;
        }
        if t.counted_pid.get() != pid {
            t.counted_pid.set(pid);
        }
        true
    })
}

/// Async-signal-safe: did this thread, as the fork child `pid`, count into the table?
#[inline]
pub fn counted_in_fork_child(pid: i32) -> bool {
    TS.with(|t| t.counted_pid.get() == pid)
}

/// Async-signal-safe: an fd was created; in a fork child that is set-up work for
/// the program it will exec. One TLS load otherwise (no syscall: the pid is known).
#[inline]
pub fn note_created(fd: i32) {
    TS.with(|t| {
        let pid = t.fork_child.get();
        if pid != 0 && !t.setup_saturated.get() && t.setup_pid.get() == pid {
            t.push(fd);
        }
    })
}

/// Async-signal-safe: did process `pid` (this one) set `fd` up on purpose? When more
/// fds were set up than the record holds, every fd counts as set up (fix less, never more).
pub fn is_setup(fd: i32, pid: i32) -> bool {
    TS.with(|t| {
        if t.setup_pid.get() != pid {
            return false;
        }
        t.setup_saturated.get() || t.setup_fds.iter().take(t.setup_n.get()).any(|c| c.get() == fd)
    })
}

/// Async-signal-safe: did process `pid` (this one) record any set-up fd?
pub fn has_setup(pid: i32) -> bool {
    TS.with(|t| t.setup_pid.get() == pid && (t.setup_saturated.get() || t.setup_n.get() > 0))
}

/// Async-signal-safe: this process closed every fd above some point.
pub fn note_sweep() {
    let pid = sys::getpid();
    TS.with(|t| t.swept_pid.set(pid))
}

/// Async-signal-safe: did process `pid` (this one) sweep its fds?
pub fn swept(pid: i32) -> bool {
    TS.with(|t| t.swept_pid.get() == pid)
}

/// Async-signal-safe.
pub fn set_blocked_by(addr: usize) {
    TS.with(|t| t.blocked_by.set(addr))
}

/// Async-signal-safe.
pub fn blocked_by() -> usize {
    TS.with(|t| t.blocked_by.get())
}
