//! The caller's `posix_spawn` file actions, as it adds them: which numbers the child
//! will not get (`addclose`, `addclosefrom_np`) and which it gets on purpose
//! (`adddup2`, `addopen`). Their object's layout is private to each libc, so the
//! shim does not read it; it follows the public calls that fill it instead, in a
//! small table keyed by the object's address. The `posix_spawn` hook (spawn.rs)
//! takes a copy and the audit judges each of the caller's fds as the child will
//! hold it (policy::file_action_effect): no `exec_fd_leak` for an fd the actions
//! close, and none for one they set up, nor a `startup_fds` in the child for it.
//!
//! Where it cannot tell, the spawn is audited as before (each fd as the caller
//! holds it, the child listing its own): an object the table has no slot for (more
//! than `SLOTS` alive at once, or made before the constructor), one with more than
//! `FILE_ACTIONS_MAX` actions, one copied by value or filled in a vfork child (whose
//! memory is the parent's: nothing is written there, and nothing trusted).
//!
//! Small room: 16 slots of 33 words, written only by processes that build file
//! actions; a slot is claimed at `init` with a compare-and-swap on its key and
//! given back at `destroy`.

use crate::config::{self, Mode};
use crate::policy::{FileAction, FileActions, FILE_ACTIONS_MAX};
use crate::postfork::{fdgen, tls};
use crate::real;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use libc::{c_char, c_int, mode_t, posix_spawn_file_actions_t};

/// File-action objects followed at once.
const SLOTS: usize = 16;
/// A slot's count once its object has more actions than it holds: not known.
const UNKNOWN: usize = usize::MAX;

struct Slot {
    /// The object's address; 0: free.
    key: AtomicUsize,
    /// Actions recorded (UNKNOWN past FILE_ACTIONS_MAX).
    n: AtomicUsize,
    /// Each one packed (`pack`).
    acts: [AtomicU64; FILE_ACTIONS_MAX],
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot { key: AtomicUsize::new(0), n: AtomicUsize::new(0), acts: [const { AtomicU64::new(0) }; FILE_ACTIONS_MAX] };

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

const CLOSE: u64 = 1;
const TARGET: u64 = 2;
const CLOSE_FROM: u64 = 3;

/// Async-signal-safe.
fn pack(a: FileAction) -> u64 {
    let (kind, fd) = match a {
        FileAction::Close(fd) => (CLOSE, fd),
        FileAction::Target(fd) => (TARGET, fd),
        FileAction::CloseFrom(fd) => (CLOSE_FROM, fd),
    };
    (kind << 32) | fd as u32 as u64
}

/// Async-signal-safe.
fn unpack(w: u64) -> Option<FileAction> {
    let fd = w as u32 as i32;
    match w >> 32 {
        CLOSE => Some(FileAction::Close(fd)),
        TARGET => Some(FileAction::Target(fd)),
        CLOSE_FROM => Some(FileAction::CloseFrom(fd)),
        _ => None,
    }
}

/// Async-signal-safe: may this thread use the table? Not in `off`, and not in a
/// vfork child (its memory is its parent's; where the vfork hook is not, a vfork
/// child cannot be told apart, and the table is not used at all).
#[inline]
fn usable() -> bool {
    fdgen::recording() && config::mode() != Mode::Off && tls::may_record()
}

/// Async-signal-safe: the slot that follows `fa`.
fn slot_of(fa: *const posix_spawn_file_actions_t) -> Option<&'static Slot> {
    let key = fa as usize;
    TABLE.iter().find(|s| s.key.load(Ordering::Acquire) == key)
}

/// Async-signal-safe: follow `fa` from empty (a slot of its own, the one it had if
/// it was never destroyed); none free: it is not followed.
fn start(fa: *const posix_spawn_file_actions_t) {
    let key = fa as usize;
    if let Some(s) = slot_of(fa) {
        s.n.store(0, Ordering::Release);
        return;
    }
    for s in TABLE.iter() {
        if s.key.load(Ordering::Relaxed) == 0 && s.key.compare_exchange(0, key, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            s.n.store(0, Ordering::Release);
            return;
        }
    }
}

/// Async-signal-safe: `fa` had `a` added (the real call succeeded).
fn add(fa: *const posix_spawn_file_actions_t, a: FileAction) {
    if !usable() {
        return;
    }
    let Some(s) = slot_of(fa) else { return };
    let n = s.n.load(Ordering::Acquire);
    match s.acts.get(n) {
        Some(w) => {
            w.store(pack(a), Ordering::Relaxed);
            s.n.store(n + 1, Ordering::Release);
        }
        None => s.n.store(UNKNOWN, Ordering::Release),
    }
}

/// Async-signal-safe: the actions added to `fa` since its `init`, when the table
/// followed all of them.
pub fn of(fa: *const posix_spawn_file_actions_t) -> Option<FileActions> {
    if fa.is_null() || !usable() {
        return None;
    }
    let s = slot_of(fa)?;
    let n = s.n.load(Ordering::Acquire);
    let mut out = FileActions::new();
    for w in s.acts.get(..n)? {
        if !out.push(unpack(w.load(Ordering::Relaxed))?) {
            return None;
        }
    }
    // Still this object's (not given back and claimed again meanwhile).
    (s.key.load(Ordering::Acquire) == fa as usize && s.n.load(Ordering::Acquire) == n).then_some(out)
}

/// `posix_spawn_file_actions_init`. Async-signal-safe as far as the shim goes.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn_file_actions_init(fa: *mut posix_spawn_file_actions_t) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::posix_spawn_file_actions_init(fa) };
    if r == 0 && usable() {
        start(fa);
    }
    r
}

/// `posix_spawn_file_actions_destroy`. Async-signal-safe as far as the shim goes.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn_file_actions_destroy(fa: *mut posix_spawn_file_actions_t) -> c_int {
    if usable() {
        if let Some(s) = slot_of(fa) {
            s.n.store(UNKNOWN, Ordering::Release);
            s.key.store(0, Ordering::Release);
        }
    }
    // SAFETY: forwarded.
    unsafe { real::posix_spawn_file_actions_destroy(fa) }
}

/// `posix_spawn_file_actions_addclose`. Async-signal-safe as far as the shim goes
/// (atomics on its own table; libc's call allocates).
#[no_mangle]
pub unsafe extern "C" fn posix_spawn_file_actions_addclose(fa: *mut posix_spawn_file_actions_t, fd: c_int) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::posix_spawn_file_actions_addclose(fa, fd) };
    if r == 0 {
        add(fa, FileAction::Close(fd));
    }
    r
}

/// `posix_spawn_file_actions_adddup2`: the child gets `new` on purpose (also when
/// `new == fd`, which clears its FD_CLOEXEC in the child). Async-signal-safe as far
/// as the shim goes.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn_file_actions_adddup2(fa: *mut posix_spawn_file_actions_t, fd: c_int, new: c_int) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::posix_spawn_file_actions_adddup2(fa, fd, new) };
    if r == 0 {
        add(fa, FileAction::Target(new));
    }
    r
}

/// `posix_spawn_file_actions_addopen`: the child gets `fd` on purpose.
/// Async-signal-safe as far as the shim goes.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn_file_actions_addopen(fa: *mut posix_spawn_file_actions_t, fd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::posix_spawn_file_actions_addopen(fa, fd, path, flags, mode) };
    if r == 0 {
        add(fa, FileAction::Target(fd));
    }
    r
}

/// `posix_spawn_file_actions_addclosefrom_np` (glibc ≥ 2.34). Async-signal-safe as
/// far as the shim goes.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn_file_actions_addclosefrom_np(fa: *mut posix_spawn_file_actions_t, from: c_int) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::posix_spawn_file_actions_addclosefrom_np(fa, from) };
    if r == 0 {
        add(fa, FileAction::CloseFrom(from));
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn actions_pack_and_unpack() {
        for a in [FileAction::Close(3), FileAction::Target(0), FileAction::CloseFrom(1 << 20), FileAction::Target(i32::MAX)] {
            assert_eq!(unpack(pack(a)), Some(a));
        }
        assert_eq!(unpack(0), None, "a word never written");
    }
}
