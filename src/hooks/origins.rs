//! The calls that create fds. In a fork child they note the new fd as set up for
//! the program it will exec (bash opens `cmd 3>file` straight onto fd 3).
//! Opt-in provenance (`EXECGUARD_ORIGINS=1`): they also record, per
//! fd number, the caller's return address and the new file's inode, so that a leak
//! event can say where the leaked fd was made (`origin`: module+offset). An fd made
//! by a path these hooks do not see (glibc-internal opens) and
//! whose number was reused is caught by the inode check and gets no origin. The
//! arrays are written from any process, vfork children included: an entry a vfork
//! child writes names the child's file, so the parent's inode check rejects it —
//! the parent can lose an origin that way, never get a wrong one.
//! Off by default: the hooks then cost one relaxed load after the real call.
//! Small room: recording is a fstat and two relaxed stores.

use crate::postfork::sys;
use crate::real;
use core::sync::atomic::{AtomicBool, Ordering};
use libc::{c_char, c_int, c_uint, mode_t, sockaddr, socklen_t};

#[link_section = ".data.execguard_hot"]
static ON: AtomicBool = AtomicBool::new(false);

/// Constructor only.
#[link_section = ".text.warm.execguard"]
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Async-signal-safe: `fd` was made, close-on-exec or not as the call said.
#[inline]
#[link_section = ".text.warm.execguard"]
fn record(fd: c_int, cloexec: bool, caller: usize) {
    if fd < 0 {
        return;
    }
    crate::postfork::fdgen::made(fd, cloexec);
    crate::postfork::storm::forget(fd);
    crate::postfork::tls::note_created(fd);
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    // fdgen::made above made the tables (arena.rs: `origins_addr`, `origins_ino`).
    let Some(t) = crate::postfork::arena::get() else { return };
    let (Some(a), Some(i)) = (t.origins_addr.get(fd as usize), t.origins_ino.get(fd as usize)) else { return };
    let _e = sys::ErrnoGuard::new();
    let ino = sys::fstat(fd).map(|st| st.st_ino).unwrap_or(0);
    a.store(caller, Ordering::Relaxed);
    i.store(ino, Ordering::Relaxed);
}

/// Async-signal-safe: an fd a stream opened inside libc (fopen): as the fd-making
/// hooks, with no caller to record.
#[link_section = ".text.warm.execguard"]
pub fn made_inside_libc(fd: c_int, cloexec: bool) {
    record(fd, cloexec, 0);
}

/// Async-signal-safe: where `fd` was made, if recorded and still the same file.
#[link_section = ".text.warm.execguard"]
pub fn of(fd: c_int) -> usize {
    if fd < 0 || !ON.load(Ordering::Relaxed) {
        return 0;
    }
    let Some(t) = crate::postfork::arena::get() else { return 0 };
    let (Some(a), Some(i)) = (t.origins_addr.get(fd as usize), t.origins_ino.get(fd as usize)) else { return 0 };
    let addr = a.load(Ordering::Relaxed);
    if addr == 0 {
        return 0;
    }
    let _e = sys::ErrnoGuard::new();
    match sys::fstat(fd) {
        Ok(st) if st.st_ino == i.load(Ordering::Relaxed) => addr,
        _ => 0,
    }
}

/// Exported trampolines: pass the caller's return address as the argument after
/// the function's own `n` arguments, then jump to the Rust body.
macro_rules! hook {
    ($name:ident, $imp:ident, $x86reg:literal, $armreg:literal, ($($a:ident: $t:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.warm.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name($($a: $t),*) -> c_int {
            core::arch::naked_asm!(concat!("mov ", $x86reg, ", [rsp]"), "jmp {imp}", imp = sym $imp)
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.warm.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name($($a: $t),*) -> c_int {
            core::arch::naked_asm!(concat!("mov ", $armreg, ", x30"), "b {imp}", imp = sym $imp)
        }
    };
}

/// `$cloexec`: whether the new fd is close-on-exec, from the call's own arguments.
macro_rules! body {
    ($imp:ident, $real:ident, ($($a:ident: $t:ty),*), $cloexec:expr) => {
        #[link_section = ".text.warm.execguard"]
        unsafe extern "C" fn $imp($($a: $t,)* caller: usize) -> c_int {
            // SAFETY: forwarded unchanged.
            let r = unsafe { real::$real($($a),*) };
            record(r, $cloexec, caller);
            r
        }
    };
}

hook!(socket, socket_impl, "rcx", "x3", (d: c_int, t: c_int, p: c_int));
#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn socket_impl(d: c_int, t: c_int, p: c_int, caller: usize) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::socket(d, t, p) };
    record(r, t & libc::SOCK_CLOEXEC != 0, caller);
    if r >= 0 && crate::config::mode() != crate::config::Mode::Off {
        crate::postfork::storm::made(r, d, t, p);
    }
    r
}
hook!(accept, accept_impl, "rcx", "x3", (fd: c_int, a: *mut sockaddr, l: *mut socklen_t));
body!(accept_impl, accept, (fd: c_int, a: *mut sockaddr, l: *mut socklen_t), false);
hook!(accept4, accept4_impl, "r8", "x4", (fd: c_int, a: *mut sockaddr, l: *mut socklen_t, f: c_int));
body!(accept4_impl, accept4, (fd: c_int, a: *mut sockaddr, l: *mut socklen_t, f: c_int), f & libc::SOCK_CLOEXEC != 0);
hook!(open, open_impl, "rcx", "x3", (p: *const c_char, f: c_int, m: mode_t));
body!(open_impl, open, (p: *const c_char, f: c_int, m: mode_t), f & libc::O_CLOEXEC != 0);
hook!(open64, open64_impl, "rcx", "x3", (p: *const c_char, f: c_int, m: mode_t));
body!(open64_impl, open64, (p: *const c_char, f: c_int, m: mode_t), f & libc::O_CLOEXEC != 0);
hook!(openat, openat_impl, "r8", "x4", (d: c_int, p: *const c_char, f: c_int, m: mode_t));
body!(openat_impl, openat, (d: c_int, p: *const c_char, f: c_int, m: mode_t), f & libc::O_CLOEXEC != 0);
hook!(openat64, openat64_impl, "r8", "x4", (d: c_int, p: *const c_char, f: c_int, m: mode_t));
body!(openat64_impl, openat64, (d: c_int, p: *const c_char, f: c_int, m: mode_t), f & libc::O_CLOEXEC != 0);
// _FORTIFY_SOURCE builds (Debian's packages) call these for an `open` whose flags
// are not a constant.
hook!(__open_2, open_2_impl, "rdx", "x2", (p: *const c_char, f: c_int));
body!(open_2_impl, __open_2, (p: *const c_char, f: c_int), f & libc::O_CLOEXEC != 0);
hook!(__open64_2, open64_2_impl, "rdx", "x2", (p: *const c_char, f: c_int));
body!(open64_2_impl, __open64_2, (p: *const c_char, f: c_int), f & libc::O_CLOEXEC != 0);
hook!(__openat_2, openat_2_impl, "rcx", "x3", (d: c_int, p: *const c_char, f: c_int));
body!(openat_2_impl, __openat_2, (d: c_int, p: *const c_char, f: c_int), f & libc::O_CLOEXEC != 0);
hook!(__openat64_2, openat64_2_impl, "rcx", "x3", (d: c_int, p: *const c_char, f: c_int));
body!(openat64_2_impl, __openat64_2, (d: c_int, p: *const c_char, f: c_int), f & libc::O_CLOEXEC != 0);
hook!(creat, creat_impl, "rdx", "x2", (p: *const c_char, m: mode_t));
body!(creat_impl, creat, (p: *const c_char, m: mode_t), false);
hook!(dup, dup_impl, "rsi", "x1", (fd: c_int));
body!(dup_impl, dup, (fd: c_int), false);
hook!(epoll_create, epoll_create_impl, "rsi", "x1", (n: c_int));
body!(epoll_create_impl, epoll_create, (n: c_int), false);
hook!(epoll_create1, epoll_create1_impl, "rsi", "x1", (f: c_int));
body!(epoll_create1_impl, epoll_create1, (f: c_int), f & libc::EPOLL_CLOEXEC != 0);
hook!(eventfd, eventfd_impl, "rdx", "x2", (v: c_uint, f: c_int));
body!(eventfd_impl, eventfd, (v: c_uint, f: c_int), f & libc::EFD_CLOEXEC != 0);

hook!(pipe, pipe_impl, "rsi", "x1", (p: *mut c_int));
#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn pipe_impl(p: *mut c_int, caller: usize) -> c_int {
    // SAFETY: forwarded unchanged; on success p holds two fds.
    let r = unsafe { real::pipe(p) };
    if r == 0 {
        // SAFETY: as above.
        unsafe { pair(p, false, caller) };
    }
    r
}

hook!(pipe2, pipe2_impl, "rdx", "x2", (p: *mut c_int, f: c_int));

/// Async-signal-safe: `pipe2` for the library's own pipes (popen's), seen by the
/// hook's body as a call from here, without a symbol for the loader to bind.
pub(crate) unsafe fn pipe2_here(p: *mut c_int, f: c_int) -> c_int {
    // SAFETY: forwarded; the caller is an address of ours, as the hook would see it.
    unsafe { pipe2_impl(p, f, pipe2_here as *const () as usize) }
}
#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn pipe2_impl(p: *mut c_int, f: c_int, caller: usize) -> c_int {
    // SAFETY: as in pipe_impl.
    let r = unsafe { real::pipe2(p, f) };
    if r == 0 {
        // SAFETY: as above.
        unsafe { pair(p, f & libc::O_CLOEXEC != 0, caller) };
    }
    r
}

hook!(socketpair, socketpair_impl, "r8", "x4", (d: c_int, t: c_int, pr: c_int, sv: *mut c_int));
#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn socketpair_impl(d: c_int, t: c_int, pr: c_int, sv: *mut c_int, caller: usize) -> c_int {
    // SAFETY: as in pipe_impl.
    let r = unsafe { real::socketpair(d, t, pr, sv) };
    if r == 0 {
        // SAFETY: as above.
        unsafe { pair(sv, t & libc::SOCK_CLOEXEC != 0, caller) };
    }
    r
}

#[link_section = ".text.warm.execguard"]
unsafe fn pair(p: *const c_int, cloexec: bool, caller: usize) {
    if p.is_null() {
        return;
    }
    // SAFETY: the call succeeded, so both slots hold fds.
    unsafe {
        record(*p, cloexec, caller);
        record(*p.add(1), cloexec, caller);
    }
}
