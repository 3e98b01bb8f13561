//! The per-fd tables — fdgen's records, storm's words and callers, deliberate's
//! and origins' entries, 3.7 MiB of zeros — in one private anonymous mapping, made
//! by the first hook that has something to write in them. Until then every entry
//! reads as zero, and the process maps nothing for them: in `.bss` they cost every
//! process that loads the library an anonymous mapping (the loader's `mmap` over
//! its reservation, then that mapping's teardown at exit or exec) and a 4 MiB image
//! that the kernel places on a 2 MiB boundary, whether or not a table is ever used
//! (`/bin/true`, most shells between their own fds; docs/performance.md, 6 Dec).
//! The rest of the library's writable state is small and lies in the file's data
//! segment (build.rs), so the loader maps no anonymous memory for it.
//!
//! Small room: one load to find the tables; a raw `mmap` the first time, a
//! compare-and-swap to publish it. A fork child inherits the pointer and a private
//! copy, as it did the `.bss`; a vfork child shares both with its parent. Where the
//! mapping cannot be made (out of memory, a seccomp filter), the tables stay absent
//! and every user takes the path it takes for an fd past its table.

use super::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Numbers at and past this have no entry in any table.
pub const MAX_FD: usize = 65536;

/// Field order is page order: the records first (nearly every program that uses the
/// tables writes their first page), then what fewer programs touch.
#[repr(C)]
pub struct Arena {
    pub recs: [super::fdgen::Rec; MAX_FD],
    pub storm: [AtomicU64; MAX_FD],
    pub callers: [AtomicUsize; MAX_FD],
    pub deliberate_pid: [AtomicI32; MAX_FD],
    pub deliberate_ino: [AtomicU64; MAX_FD],
    pub origins_addr: [AtomicUsize; MAX_FD],
    pub origins_ino: [AtomicU64; MAX_FD],
}

const BYTES: usize = core::mem::size_of::<Arena>();
const _: () = assert!(BYTES.is_multiple_of(4096) && core::mem::offset_of!(Arena, recs) == 0);

/// One byte of data in the section that build.rs fills with `.bss`: the section is
/// then data, kept in the file, and the loader maps no anonymous memory for us.
#[used]
#[link_section = ".data.execguard_bss"]
static IN_FILE: u8 = 1;

/// The mapping, or null. On the page of hot data the loader writes anyway.
#[link_section = ".data.execguard_hot"]
pub(crate) static ARENA: AtomicPtr<Arena> = AtomicPtr::new(core::ptr::null_mut());
/// The mapping was asked for and refused: not asked again (each hook would pay a
/// failing system call).
#[link_section = ".data.execguard_hot"]
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Async-signal-safe: the tables, if made.
#[inline(always)]
pub fn get() -> Option<&'static Arena> {
    // SAFETY: a mapping of BYTES, published once (Release) and never unmapped; every
    // field is an atomic or an array of them, valid at all zeros.
    unsafe { ARENA.load(Ordering::Acquire).as_ref() }
}

/// Async-signal-safe: the tables, made now if need be. None where the kernel
/// refused the mapping, and in `off` mode. errno is untouched (raw system calls).
#[inline]
pub fn make() -> Option<&'static Arena> {
    match get() {
        Some(a) => Some(a),
        None => make_slow(),
    }
}

/// Async-signal-safe: until the tables are made, every entry is zero; after a
/// refusal nothing is known (a write was lost).
#[inline]
pub fn refused() -> bool {
    REFUSED.load(Ordering::Relaxed)
}

/// Once per process that uses the tables (most do, at their first close or open
/// through a hook): in the block of the fd hooks, not a page of its own.
#[cold]
#[inline(never)]
#[link_section = ".text.warm.execguard"]
fn make_slow() -> Option<&'static Arena> {
    if refused() {
        return None;
    }
    // `off` passes everything through: nothing ever reads a table, and the moves a
    // hook still makes there (the close trampoline's) are skipped. Before the
    // constructor has published the mode, a move is kept: it may be log or fix.
    if crate::config::get().is_some() && crate::config::mode() == crate::config::Mode::Off {
        return None;
    }
    let Some(p) = sys::map_zeroed(BYTES, false) else {
        REFUSED.store(true, Ordering::Relaxed);
        return None;
    };
    let p = p as *mut Arena;
    if ARENA.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // Another thread (or a signal handler) was first: its mapping is the one.
        sys::unmap(p as *mut u8, BYTES);
    }
    get()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn made_once_and_zero() {
        let a = make().expect("an anonymous mapping");
        assert!(get().is_some_and(|g| core::ptr::eq(a, g)));
        assert!(make().is_some_and(|m| core::ptr::eq(a, m)));
        assert!(!refused());
        assert_eq!(a.storm.last().map(|w| w.load(Ordering::Relaxed)), Some(0));
        assert_eq!(a.origins_ino.last().map(|w| w.load(Ordering::Relaxed)), Some(0));
    }
}
