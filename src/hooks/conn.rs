//! `connect`, `close`, `shutdown` and the read family, for `connect_storm` (src/postfork/storm.rs
//! keeps the state). A read or close costs one load of the fd's word when the fd
//! is not a connection waiting for its first byte; `connect` tracks the stream
//! sockets that `socket()` made. Small room.

use crate::config::{self, Mode};
use crate::postfork::storm::{self, F_TRACKED};
use crate::postfork::sys;
use crate::real;
use libc::{c_int, c_void, iovec, msghdr, sockaddr, socklen_t};

#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
/// Async-signal-safe. The return address goes to the body as a 4th argument.
pub unsafe extern "C" fn connect(fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int {
    core::arch::naked_asm!("mov rcx, [rsp]", "jmp {imp}", imp = sym connect_impl)
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
/// Async-signal-safe. The return address goes to the body as a 4th argument.
pub unsafe extern "C" fn connect(fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int {
    core::arch::naked_asm!("mov x3, x30", "b {imp}", imp = sym connect_impl)
}

unsafe extern "C" fn connect_impl(fd: c_int, a: *const sockaddr, l: socklen_t, caller: usize) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::connect(fd, a, l) };
    if config::mode() != Mode::Off && storm::word(fd) != 0 && !a.is_null() {
        let err = if r == 0 { 0 } else { sys::errno() };
        // SAFETY: the caller passed l bytes of address (the kernel read them too).
        let sa = unsafe { core::slice::from_raw_parts(a as *const u8, (l as usize).min(128)) };
        storm::connected(fd, sa, r, err, caller);
        if r != 0 {
            sys::set_errno(err);
        }
    }
    r
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let w = storm::word(fd);
    if w != 0 {
        // Before the real close: the socket's state is gone after it, and the number
        // may be reused by another thread at once.
        storm::forget(fd);
        if w & F_TRACKED != 0 {
            storm::closing(fd, w);
        }
    }
    // SAFETY: forwarded.
    unsafe { real::close(fd) }
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    if how != libc::SHUT_RD && storm::word(fd) & F_TRACKED != 0 {
        storm::shut(fd);
    }
    // SAFETY: forwarded.
    unsafe { real::shutdown(fd, how) }
}

#[inline(always)]
fn seen(fd: c_int, r: isize) -> isize {
    if storm::word(fd) & F_TRACKED != 0 {
        storm::after_read(fd, r);
    }
    r
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, b: *mut c_void, n: usize) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::read(fd, b, n) })
}

/// Async-signal-safe. `_FORTIFY_SOURCE` builds (Debian's nginx) call this for read.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(fd: c_int, b: *mut c_void, n: usize, cap: usize) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::__read_chk(fd, b, n, cap) })
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, v: *const iovec, n: c_int) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::readv(fd, v, n) })
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, b: *mut c_void, n: usize, f: c_int) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::recv(fd, b, n, f) })
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn __recv_chk(fd: c_int, b: *mut c_void, n: usize, cap: usize, f: c_int) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::__recv_chk(fd, b, n, cap, f) })
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(fd: c_int, b: *mut c_void, n: usize, f: c_int, a: *mut sockaddr, l: *mut socklen_t) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::recvfrom(fd, b, n, f, a, l) })
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, m: *mut msghdr, f: c_int) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::recvmsg(fd, m, f) })
}
