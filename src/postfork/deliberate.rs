//! fds a process made inheritable on purpose, by clearing FD_CLOEXEC itself
//! (`fcntl(F_SETFD, 0)`, `ioctl(FIONCLEX)` — Python's `os.set_inheritable`). Unlike
//! the per-thread record of what a child sets up between fork and exec (tls.rs),
//! this one is process-wide and outlives the fork: a child trusts an entry written
//! by its parent or by itself, and only while the fd still names the same inode
//! (a closed and reused number is not trusted).
//! Small room: entries are a pid tag and an inode, written with relaxed stores; an
//! entry a vfork child writes carries the child's pid, which its parent never
//! trusts.

use super::sys;
use core::sync::atomic::{AtomicBool, Ordering};

/// Some entry was ever written (by this process or a fork parent): until then an
/// audit reads none of the entries (arena.rs: `deliberate_pid`, `deliberate_ino`;
/// each page read in a fork child is a fault, even on zeros).
#[link_section = ".data.execguard_hot"]
static ANY: AtomicBool = AtomicBool::new(false);

/// Async-signal-safe: `fd` was made inheritable on purpose by this process.
pub fn mark(fd: i32) {
    if fd as u32 as usize >= super::arena::MAX_FD {
        return;
    }
    let Some(a) = super::arena::make() else { return };
    let (Some(p), Some(i)) = (a.deliberate_pid.get(fd as usize), a.deliberate_ino.get(fd as usize)) else { return };
    let Ok(st) = sys::fstat(fd) else { return };
    i.store(st.st_ino, Ordering::Relaxed);
    p.store(sys::getpid(), Ordering::Relaxed);
    if !ANY.load(Ordering::Relaxed) {
        ANY.store(true, Ordering::Relaxed);
    }
}

/// Async-signal-safe: did this process (`pid`) or its parent make `fd` inheritable?
#[link_section = ".text.hot.execguard"]
pub fn trusted(fd: i32, pid: i32, ppid: i32) -> bool {
    if !ANY.load(Ordering::Relaxed) {
        return false;
    }
    let Some(a) = super::arena::get() else { return false };
    let (Some(p), Some(i)) = (a.deliberate_pid.get(fd as usize), a.deliberate_ino.get(fd as usize)) else { return false };
    let tag = p.load(Ordering::Relaxed);
    if tag == 0 || (tag != pid && tag != ppid) {
        return false;
    }
    matches!(sys::fstat(fd), Ok(st) if st.st_ino == i.load(Ordering::Relaxed))
}
