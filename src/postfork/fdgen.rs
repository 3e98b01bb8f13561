//! A generation per fd number: every change to what a number holds that goes through
//! a hook (close, the fd-making calls of hooks/origins.rs, dup2/dup3, F_DUPFD, a
//! CLOEXEC change by fcntl or ioctl, fclose) moves it on; close_range and closefrom
//! move `EPOCH` instead. Between two audits of the same process, a leaked fd whose
//! number and generation are unchanged is the same open file: a repeated
//! `exec_fd_leak` then takes its identity from what the first audit found (see
//! repeat.rs, `known`) instead of one `fstat` per fd. Its close-on-exec flag is still
//! asked of the kernel at every audit, so what leaks and what fix mode repairs never
//! rests on this record.
//!
//! Not seen: a number closed inside libc (closedir, closelog) and then reused by an
//! fd made inside libc (fopen, opendir) with no hooked call between them keeps its
//! generation; that later file, if it leaks too, counts into the earlier finding's
//! repeats (docs/policy.md). Small room: relaxed atomics only; a vfork child's moves
//! land in its parent's table, which only makes the parent's next audit take the
//! slow path.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Numbers at and past this have no generation; an audit that leaks one takes the
/// slow path.
pub const MAX_FD: usize = super::storm::MAX_FD;

/// In .bss: a page is touched only by a process that uses fds in its range. The
/// close trampoline (hooks/conn.rs) adds 1 here itself.
pub(crate) static GEN: [AtomicU32; MAX_FD] = [const { AtomicU32::new(0) }; MAX_FD];
/// Moved by every change that may touch many numbers at once.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: what `fd` holds may have changed.
#[inline]
pub fn bump(fd: i32) {
    if let Some(g) = GEN.get(fd as usize) {
        g.fetch_add(1, Relaxed);
    }
}

/// Async-signal-safe: what any number holds may have changed.
#[inline]
pub fn bump_all() {
    EPOCH.fetch_add(1, Relaxed);
}

/// Async-signal-safe: `fd`'s generation, None past the table.
#[inline]
pub fn of(fd: i32) -> Option<u32> {
    GEN.get(fd as usize).map(|g| g.load(Relaxed))
}

/// Async-signal-safe.
#[inline]
pub fn epoch() -> u64 {
    EPOCH.load(Relaxed)
}
