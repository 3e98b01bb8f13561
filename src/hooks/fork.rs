//! `fork`: an info event when a multi-threaded process forks (only async-signal-safe
//! work is allowed in the child then, and locks held by other threads stay locked).
//! Runs in the parent before the real fork.

use crate::config::{self, Mode};
use crate::postfork::emit::{Event, Severity};
use crate::postfork::{sys, tls};
use crate::real;
use core::sync::atomic::{AtomicU32, Ordering};
use libc::pid_t;

static FORKS_SEEN: AtomicU32 = AtomicU32::new(0);

/// Async-signal-safe (fork may be called from a signal handler).
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn fork() -> pid_t {
    if config::mode() != Mode::Off && real::single_threaded() != Some(true) {
        if let Some(_inside) = tls::enter() {
            let _e = sys::ErrnoGuard::new();
            note_threads();
        }
    }
    // The child finds every real function resolved and never writes the table.
    real::fill_all();
    // SAFETY: no arguments.
    let pid = unsafe { real::fork() };
    if pid == 0 && config::mode() != Mode::Off {
        // A direct getpid and a thread-local write: errno is not touched.
        tls::forked(sys::getpid());
    }
    pid
}

fn note_threads() {
    let threads = thread_count();
    if threads <= 1 {
        return;
    }
    // Rate limit: the first 4, then every power of two.
    let n = FORKS_SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    if n > 4 && !n.is_power_of_two() {
        return;
    }
    let mut ev = Event::start("fork_threads", Severity::Info, false);
    ev.int("threads", threads);
    ev.int("count", n as i64);
    ev.emit();
}

/// Async-signal-safe: the threads of this process, as the link count of
/// /proc/self/task (2 + one per thread): one stat, no fd, about 4 µs where reading
/// /proc/self/stat costs 18. Every fork pays it where the libc keeps no
/// single-thread flag (musl, glibc < 2.32). 0 when /proc is missing.
pub fn thread_count() -> i64 {
    // SAFETY: an all-zero stat is valid; the kernel fills it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let r = unsafe { sys::syscall!(libc::SYS_newfstatat, libc::AT_FDCWD, c"/proc/self/task".as_ptr(), &mut st as *mut libc::stat, 0) };
    if r != 0 {
        return 0;
    }
    (st.st_nlink as i64 - 2).max(0)
}
