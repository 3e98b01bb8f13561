//! The fds ≥ 3 this process held when it started: number and identity (st_dev,
//! st_ino), and whether each came from outside the audited tree. Filled only by the
//! constructor (which never runs in a vfork child); read by the exec audit, which
//! tells "passed through" (inherited, unchanged) from "created here". Small room:
//! the readers are lock-free loads; the one writer after start is `replaced`, pid-tagged.

use super::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Inherited fds recorded with their identity; a process that starts with more
/// (a 19 000-socket pool) has the rest judged as created (see docs/policy.md).
pub const MAX: usize = 1024;

struct Entry {
    fd: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
    /// Entered the audited tree here or higher up (EXECGUARD_OUTSIDE).
    outside: AtomicBool,
    /// The pid that dup2/dup3'd another file onto this number (0: none).
    replaced_by: AtomicI32,
}

// All zero: the table lives in .bss (an initialised one would grow the library's
// data, which every process start maps and relocates — measured: +4 page faults).
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry = Entry {
    fd: AtomicI32::new(0),
    dev: AtomicU64::new(0),
    ino: AtomicU64::new(0),
    outside: AtomicBool::new(false),
    replaced_by: AtomicI32::new(0),
};

// In .bss: a process that starts with fds 0–2 only never touches these pages.
static TABLE: [Entry; MAX] = [EMPTY; MAX];
/// Entries filled, in increasing fd order (published with Release).
static LEN: AtomicUsize = AtomicUsize::new(0);

/// Constructor only: record `fd` (called in increasing fd order). False when the
/// table is full or fstat fails: the fd then counts as created here.
pub fn record(fd: i32) -> bool {
    let n = LEN.load(Ordering::Relaxed);
    // Full: no fstat for the rest (a process may start with 19 000 fds).
    let Some(e) = TABLE.get(n) else { return false };
    let Ok(st) = sys::fstat(fd) else { return false };
    e.fd.store(fd, Ordering::Relaxed);
    e.dev.store(st.st_dev, Ordering::Relaxed);
    e.ino.store(st.st_ino, Ordering::Relaxed);
    LEN.store(n + 1, Ordering::Release);
    true
}

/// Constructor only: `fd` (recorded) came from outside the audited tree.
pub fn set_outside(fd: i32) {
    if let Some(e) = find(fd) {
        e.outside.store(true, Ordering::Relaxed);
    }
}

fn entries() -> &'static [Entry] {
    TABLE.get(..LEN.load(Ordering::Acquire)).unwrap_or(&[])
}

fn find(fd: i32) -> Option<&'static Entry> {
    let t = entries();
    t.binary_search_by_key(&fd, |e| e.fd.load(Ordering::Relaxed)).ok().and_then(|i| t.get(i))
}

/// Constructor only: no room left.
pub fn full() -> bool {
    LEN.load(Ordering::Relaxed) >= MAX
}

/// Async-signal-safe: anything recorded at all (one load: the common answer is no).
#[inline]
pub fn any() -> bool {
    LEN.load(Ordering::Relaxed) != 0
}

/// Async-signal-safe: a dup2/dup3 put another open file onto `fd`. Tagged with the
/// pid that did it: a vfork child's tag is never trusted by its parent.
pub fn replaced(fd: i32) {
    if let Some(e) = find(fd) {
        e.replaced_by.store(sys::getpid(), Ordering::Relaxed);
    }
}

/// What the start record says about an fd at an exec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Since {
    /// Held since this process started: same number, same open file as far as
    /// st_dev/st_ino tell, not replaced by a dup2 of this process (or its fork parent).
    pub start: bool,
    /// ... and it came from outside the audited tree.
    pub outside: bool,
}

/// Async-signal-safe: one fstat, and only for an fd recorded at start.
pub fn since(fd: i32, pid: i32, ppid: i32) -> Since {
    let no = Since { start: false, outside: false };
    let Some(e) = find(fd) else { return no };
    let tag = e.replaced_by.load(Ordering::Relaxed);
    if tag != 0 && (tag == pid || tag == ppid) {
        return no;
    }
    match sys::fstat(fd) {
        Ok(st) if st.st_dev == e.dev.load(Ordering::Relaxed) && st.st_ino == e.ino.load(Ordering::Relaxed) => {
            Since { start: true, outside: e.outside.load(Ordering::Relaxed) }
        }
        _ => no,
    }
}

/// Async-signal-safe: the recorded fds that came from outside, in increasing order.
pub fn outside() -> impl Iterator<Item = i32> {
    entries().iter().filter(|e| e.outside.load(Ordering::Relaxed)).map(|e| e.fd.load(Ordering::Relaxed))
}

/// Async-signal-safe: `EXECGUARD_OUTSIDE=…` (NUL-terminated) into `out`: the fds that
/// came from outside and that this exec still passes on unchanged, as a comma list
/// with runs folded (`10,251-253`). False when there is none. What does not fit is
/// left out (a child of an unaudited process may then name it once more).
pub fn outside_env<const N: usize>(out: &mut super::line::Buf<N>) -> bool {
    let (pid, ppid) = (sys::getpid(), sys::getppid());
    out.clear();
    out.s("EXECGUARD_OUTSIDE=");
    let head = out.len();
    let mut run: Option<(i32, i32)> = None;
    let passed = outside().filter(|&fd| super::fds::cloexec(fd) == Ok(false) && since(fd, pid, ppid).start);
    for fd in passed.map(Some).chain(core::iter::once(None)) {
        match (run, fd) {
            (Some((lo, hi)), Some(fd)) if fd == hi + 1 => run = Some((lo, fd)),
            (prev, next) => {
                if let Some((lo, hi)) = prev {
                    let keep = out.len();
                    if out.len() > head {
                        out.byte(b',');
                    }
                    out.int(lo as i64);
                    if hi > lo {
                        out.byte(b'-');
                        out.int(hi as i64);
                    }
                    // Room for the NUL.
                    if out.overflowed() || out.room() < 1 {
                        out.truncate(keep);
                        break;
                    }
                }
                run = next.map(|fd| (fd, fd));
            }
        }
    }
    if out.len() == head {
        return false;
    }
    out.byte(0);
    !out.overflowed()
}
