//! `select`/`pselect` past FD_SETSIZE: the caller's fd_set holds 1024 bits, so
//! `nfds > 1024` means the kernel reads and writes past it. Reported with the fds
//! set above 1024; the call itself goes to the kernel unchanged. The hot path is
//! one comparison.

use crate::config::{self, Mode};
use crate::postfork::emit::{Event, Severity};
use crate::postfork::{sys, tls};
use crate::real;
use core::sync::atomic::{AtomicU64, Ordering};
use libc::{c_int, fd_set, sigset_t, timespec, timeval};

const FD_SETSIZE: c_int = 1024;

static OVERFLOWS: AtomicU64 = AtomicU64::new(0);

#[no_mangle]
pub unsafe extern "C" fn select(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int {
    if nfds > FD_SETSIZE {
        // SAFETY: the sets are read up to nfds bits, as the kernel will read them.
        unsafe { overflow("select", nfds, [r, w, e]) };
    }
    // SAFETY: forwarded unchanged.
    unsafe { real::select(nfds, r, w, e, t) }
}

#[no_mangle]
pub unsafe extern "C" fn pselect(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *const timespec, m: *const sigset_t) -> c_int {
    if nfds > FD_SETSIZE {
        // SAFETY: as in select.
        unsafe { overflow("pselect", nfds, [r, w, e]) };
    }
    // SAFETY: forwarded unchanged.
    unsafe { real::pselect(nfds, r, w, e, t, m) }
}

/// Async-signal-safe: one word of the caller's memory via process_vm_readv on
/// ourselves, which fails with EFAULT instead of faulting.
fn safe_word(p: *const u64) -> Option<u64> {
    let mut v: u64 = 0;
    let local = libc::iovec { iov_base: &mut v as *mut u64 as *mut libc::c_void, iov_len: 8 };
    let remote = libc::iovec { iov_base: p as *mut libc::c_void, iov_len: 8 };
    // SAFETY: the kernel validates the remote range; local is our stack word.
    let n = unsafe { libc::syscall(libc::SYS_process_vm_readv, sys::getpid(), &local as *const libc::iovec, 1, &remote as *const libc::iovec, 1, 0) };
    if n == 8 {
        Some(v)
    } else {
        None
    }
}

/// Async-signal-safe. Reads each set only up to `nfds` bits, rounded up to whole
/// words as the kernel does, never further.
unsafe fn overflow(func: &str, nfds: c_int, sets: [*mut fd_set; 3]) {
    if config::mode() == Mode::Off {
        return;
    }
    let Some(_inside) = tls::enter() else { return };
    let _e = sys::ErrnoGuard::new();
    // Rate limit: the first 8, then every power of two.
    let count = OVERFLOWS.fetch_add(1, Ordering::Relaxed) + 1;
    if count > 8 && !count.is_power_of_two() {
        return;
    }
    let mut ev = Event::start("select_fd_overflow", Severity::Warn, false);
    ev.str("func", func.as_bytes());
    ev.int("nfds", nfds as i64);
    ev.list("fds");
    let words = (nfds as usize).div_ceil(64);
    let (mut omitted, mut room) = (0u64, true);
    for word in (FD_SETSIZE as usize / 64)..words {
        let mut bits = 0u64;
        for set in sets {
            if !set.is_null() {
                // word < ceil(nfds/64): within what the caller asked the kernel to
                // read, copied through the kernel so a short buffer is EFAULT (the
                // real call will say so too), never a crash in the host.
                bits |= safe_word((set as *const u64).wrapping_add(word)).unwrap_or(0);
            }
        }
        if word + 1 == words && nfds as usize % 64 != 0 {
            bits &= (1u64 << (nfds as usize % 64)) - 1;
        }
        while bits != 0 {
            let fd = word * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if room && ev.int_item(fd as i64) {
                continue;
            }
            room = false;
            omitted += 1;
        }
    }
    ev.end_list(Some(("fds_omitted", omitted)));
    ev.int("count", count as i64);
    ev.emit();
}
