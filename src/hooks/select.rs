//! `select`/`pselect` past FD_SETSIZE: the caller's fd_set holds 1024 bits, so
//! `nfds > 1024` means the kernel reads and writes past it. Reported with the fds
//! set above 1024; the call itself goes to the kernel unchanged. The hot path is
//! one comparison.

use crate::config::{self, Mode};
use crate::postfork::emit::{Event, Severity};
use crate::postfork::degraded::{self, Path};
use crate::postfork::{fds, sys, tls};
use crate::real;
use core::sync::atomic::{AtomicU64, Ordering};
use libc::{c_int, fd_set, sigset_t, timespec, timeval};

const FD_SETSIZE: c_int = 1024;

#[link_section = ".data.execguard_hot"]
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

const CHUNK: usize = 64;

/// Async-signal-safe: copy up to `n` words of the caller's memory at `p` without
/// ever faulting on it; returns how many whole words were copied (a short or
/// unmapped set ends the copy, as it will end the real call with EFAULT).
/// process_vm_readv on ourselves is one call; where it is refused (a seccomp profile,
/// or a kernel built without it) the kernel copies through a pipe instead.
fn safe_read(p: *const u64, dst: &mut [u64; CHUNK], n: usize, pipe: &mut Pipe) -> usize {
    let n = n.min(CHUNK);
    if !degraded::known(Path::ProcessVmReadv) {
        let local = libc::iovec { iov_base: dst.as_mut_ptr() as *mut libc::c_void, iov_len: n * 8 };
        let remote = libc::iovec { iov_base: p as *mut libc::c_void, iov_len: n * 8 };
        // SAFETY: the kernel validates the remote range; local is our stack buffer.
        let r = unsafe { sys::syscall!(libc::SYS_process_vm_readv, sys::getpid(), &local as *const libc::iovec, 1, &remote as *const libc::iovec, 1, 0) };
        if r >= 0 {
            return r as usize / 8;
        }
        if !degraded::refused(-r as i32) {
            return 0;
        }
        degraded::note(Path::ProcessVmReadv, -r as i32);
    }
    pipe.copy(p as *const u8, dst, n)
}

/// A pipe the kernel copies the caller's memory through: write(2) from the set stops
/// at an unmapped page (short count or EFAULT) where a plain read would fault.
/// Opened on first use by one `overflow` call, closed at its end (the shim holds no
/// fd between events); both ends CLOEXEC, non-blocking, and a chunk (512 bytes) is
/// below the pipe's capacity, so neither end ever blocks.
struct Pipe {
    fds: [libc::c_int; 2],
}

impl Pipe {
    fn new() -> Self {
        Pipe { fds: [-1, -1] }
    }

    fn copy(&mut self, p: *const u8, dst: &mut [u64; CHUNK], n: usize) -> usize {
        if self.fds[0] < 0 {
            let mut fds = [-1 as libc::c_int; 2];
            // SAFETY: fds has room for two ints.
            if unsafe { sys::syscall!(libc::SYS_pipe2, fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
                return 0;
            }
            self.fds = fds;
        }
        // SAFETY: the kernel reads at most n * 8 bytes at p, and reports a fault.
        let w = unsafe { sys::syscall!(libc::SYS_write, self.fds[1], p, n * 8) };
        if w <= 0 {
            return 0;
        }
        // SAFETY: dst holds CHUNK >= n words; w <= n * 8 bytes wait in the pipe.
        let r = unsafe { sys::syscall!(libc::SYS_read, self.fds[0], dst.as_mut_ptr(), w) };
        if r != w {
            return 0;
        }
        w as usize / 8
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        for fd in self.fds {
            if fd >= 0 {
                sys::close(fd);
            }
        }
    }
}

/// Async-signal-safe. Reads the sets no further than `nfds` bits (whole words, as
/// the kernel does), and no further than the highest open fd: the kernel stops at
/// its fd table, so bits past it are garbage the call never looks at.
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
    ev.ident(func.as_bytes());
    ev.int("nfds", nfds as i64);
    ev.list("fds");
    let top = fds::FdIter::new(FD_SETSIZE).last().map(|fd| fd + 1).unwrap_or(0);
    let limit = (nfds as usize).min(top.max(0) as usize);
    let words = limit.div_ceil(64);
    let (mut omitted, mut room) = (0u64, true);
    let mut chunk = [[0u64; CHUNK]; 3];
    let mut pipe = Pipe::new();
    let mut word = FD_SETSIZE as usize / 64;
    while word < words {
        let n = (words - word).min(CHUNK);
        // A short buffer ends the scan (the real call will report EFAULT).
        let mut got = n;
        for (set, dst) in sets.iter().zip(chunk.iter_mut()) {
            if !set.is_null() {
                got = got.min(safe_read((*set as *const u64).wrapping_add(word), dst, n, &mut pipe));
            }
        }
        for i in 0..got {
            let w = word + i;
            let mut bits = 0u64;
            for (set, src) in sets.iter().zip(chunk.iter()) {
                if !set.is_null() {
                    bits |= src.get(i).copied().unwrap_or(0);
                }
            }
            if w + 1 == words && !limit.is_multiple_of(64) {
                bits &= (1u64 << (limit % 64)) - 1;
            }
            while bits != 0 {
                let fd = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                ev.ident(&(fd as u64).to_le_bytes());
                if room && ev.int_item(fd as i64) {
                    continue;
                }
                room = false;
                omitted += 1;
            }
        }
        if got < n {
            break;
        }
        word += n;
    }
    ev.end_list(Some(("fds_omitted", omitted)));
    ev.int("count", count as i64);
    ev.emit();
}
