//! A generation per fd number: every change to what a number holds that goes through
//! a hook (close, the fd-making calls of hooks/origins.rs, dup2/dup3, F_DUPFD, a
//! CLOEXEC change by fcntl or ioctl, fclose, closedir) moves it on; close_range and
//! closefrom move `EPOCH` instead. Between two audits of the same process, a leaked
//! fd whose number and generation are unchanged is the same open file: a repeated
//! `exec_fd_leak` then takes its identity from what the first audit found (see
//! repeat.rs, `known`) instead of one `fstat` per fd.
//!
//! The close-on-exec flag, too, when a hook saw it set: the call that made the fd
//! (`O_CLOEXEC`, `SOCK_CLOEXEC`, `dup3`'s flags, `F_DUPFD_CLOEXEC`; plain `dup`,
//! `dup2`, `pipe`, `accept` make none) or the last `F_SETFD`/`FIOCLEX`/`FIONCLEX`.
//! Each number's record (arena.rs, `recs`) keeps it with the generation and epoch it was seen at, so that any later
//! change through a hook (a close, a new file at that number, `close_range`) voids
//! it, and an audit asks the kernel (`F_GETFD`) only for the fds whose flag no hook
//! saw. A repeated leak of 200 fds made that way costs no system call per fd.
//! A hook that changes an existing number (`F_SETFD`, `FIOCLEX`/`FIONCLEX`, `dup2`
//! and `dup3` onto it) moves its generation before the real call too, so that a fork
//! by another thread in between asks the kernel rather than trust the old record; a
//! new number's old record was voided when its last file was closed (the close
//! trampoline moves the generation before the real close).
//!
//! Not seen: a number closed inside libc (closelog, a stream's `freopen`) or by a raw
//! `close` system call, and then reused with no hooked call between them, keeps its
//! generation: that later file, if it leaks too, counts into the earlier finding's
//! repeats, and its flag is taken from the earlier file's record. So is a flag
//! changed by a raw `fcntl`/`ioctl` system call (docs/policy.md). Small room:
//! relaxed atomics only. A vfork child's moves land in its parent's table, which
//! only makes the parent's next audit ask the kernel; the flags a vfork child sets
//! are of its own fd table and are not recorded (tls::may_record).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Numbers at and past this have no generation; an audit that leaks one takes the
/// slow path.
pub const MAX_FD: usize = super::arena::MAX_FD;

/// One number's entries side by side: the first files a process opens write one
/// page of this table, where the generation and the flag in two tables cost two
/// zero-fill faults at the start of nearly every program. In the tables' mapping
/// (arena.rs), made by the first change a hook records: a page is touched only by a
/// process that uses fds in its range.
#[repr(C)]
pub(crate) struct Rec {
    /// The flag each number had when a hook last saw it set: `pack(epoch,
    /// generation, cloexec)`, 0 for none.
    known: AtomicU64,
    /// The generation. The close trampoline (hooks/conn.rs) adds 1 here itself, at
    /// `16 * fd + 8` from the start of the mapping.
    gen: AtomicU32,
    _pad: u32,
}

const _: () = assert!(core::mem::size_of::<Rec>() == 16 && core::mem::offset_of!(Rec, gen) == 8);

/// Async-signal-safe: `fd`'s generation and flag record, None past the table or
/// before the tables are made (every record is then zero: see `of`).
#[inline]
fn rec(fd: i32) -> Option<(&'static AtomicU32, &'static AtomicU64)> {
    super::arena::get()?.recs.get(fd as usize).map(|r| (&r.gen, &r.known))
}

/// Async-signal-safe: the same, the tables made first: a generation must never
/// miss a move (a number closed and reused would pass for the same file). One copy,
/// out of line: every fd hook calls it, and the hooks must fit the start blocks.
#[inline(never)]
#[link_section = ".text.warm.execguard"]
fn rec_made(fd: i32) -> Option<(&'static AtomicU32, &'static AtomicU64)> {
    if fd as u32 as usize >= MAX_FD {
        return None;
    }
    super::arena::make()?.recs.get(fd as usize).map(|r| (&r.gen, &r.known))
}

/// Moved by every change that may touch many numbers at once. On the page the
/// loader writes anyway (relocations): in .bss it had a page to itself, a fault in
/// every process whose audit reads a learnt flag.
#[link_section = ".data.execguard_hot"]
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: what `fd` holds may have changed.
#[inline]
pub fn bump(fd: i32) {
    if let Some((g, _)) = rec_made(fd) {
        g.fetch_add(1, Relaxed);
    }
}

/// Async-signal-safe: what any number holds may have changed.
#[inline]
pub fn bump_all() {
    EPOCH.fetch_add(1, Relaxed);
}

/// Async-signal-safe: read `fd`'s entries and the epoch, so that their pages are
/// mapped in this process (see startfds::prefault_for_children).
pub fn prefault(fd: i32) {
    core::hint::black_box(rec(fd).map(|(g, k)| (g.load(Relaxed), k.load(Relaxed))));
    core::hint::black_box(epoch());
}

/// Async-signal-safe: `fd`'s generation, None past the table (or where the tables
/// could not be made: a move may have been lost). 0 before they are made: every
/// move makes them.
#[inline]
pub fn of(fd: i32) -> Option<u32> {
    match rec(fd) {
        Some((g, _)) => Some(g.load(Relaxed)),
        None if (fd as u32 as usize) < MAX_FD && super::arena::get().is_none() && !super::arena::refused() => Some(0),
        None => None,
    }
}

/// Async-signal-safe.
#[inline]
pub fn epoch() -> u64 {
    EPOCH.load(Relaxed)
}

/// A record: the low 30 bits of the epoch, the generation, "seen", the flag.
#[inline]
const fn pack(epoch: u64, gen: u32, cloexec: bool) -> u64 {
    ((epoch & 0x3fff_ffff) << 34) | ((gen as u64) << 2) | 2 | cloexec as u64
}

/// What a record says about the number now: its flag while the generation and epoch
/// it was written at still hold.
#[inline]
const fn read(record: u64, epoch: u64, gen: u32) -> Option<bool> {
    let cloexec = record & 1 != 0;
    if record & 2 != 0 && record == pack(epoch, gen, cloexec) {
        Some(cloexec)
    } else {
        None
    }
}

/// Async-signal-safe: a hooked call made `fd` (or set its flag) and says whether it
/// is close-on-exec. The generation moves on as with `bump`; the flag is recorded
/// unless this thread is a vfork child's (its fd table is not ours).
#[inline]
pub fn made(fd: i32, cloexec: bool) {
    let Some((g, k)) = rec_made(fd) else { return };
    let gen = g.fetch_add(1, Relaxed).wrapping_add(1);
    if recording() && super::tls::may_record() {
        k.store(pack(epoch(), gen, cloexec), Relaxed);
    }
}

/// Async-signal-safe: what `fd` holds changed, but not its flag (a socket that
/// starts to listen): the generation moves on and a valid record moves with it.
#[inline]
pub fn renew(fd: i32) {
    let Some((g, k)) = rec_made(fd) else { return };
    let old = g.fetch_add(1, Relaxed);
    let epoch = epoch();
    if let Some(cloexec) = read(k.load(Relaxed), epoch, old) {
        if super::tls::may_record() {
            k.store(pack(epoch, old.wrapping_add(1), cloexec), Relaxed);
        }
    }
}

/// Async-signal-safe: `fd`'s close-on-exec flag, when a hook saw it set and nothing
/// a hook saw has changed the number since. None: ask the kernel.
#[inline]
pub fn known_cloexec(fd: i32) -> Option<bool> {
    let (g, k) = rec(fd)?;
    read(k.load(Relaxed), epoch(), g.load(Relaxed))
}

/// Async-signal-safe: ask the kernel for `fd`'s flag (`F_GETFD`) and, in the
/// process whose fd table this memory describes (not a vfork child), record the
/// answer as a hook's would be: with the generation and epoch read before the
/// question, so that a change through a hook meanwhile voids it. For the numbers no
/// hook saw made (those inherited at start): a later audit of this process, or of
/// a fork child of it, takes the flag from here instead of one `fcntl` each.
/// Err: not open.
#[link_section = ".text.warm.execguard"]
pub fn learn(fd: i32) -> super::sys::R<bool> {
    let Some((g, k)) = rec_made(fd) else { return super::fds::cloexec(fd) };
    let (gen, epoch) = (g.load(Relaxed), epoch());
    let flag = super::fds::cloexec(fd)?;
    if recording() && super::tls::may_record() {
        k.store(pack(epoch, gen, flag), Relaxed);
    }
    Ok(flag)
}

/// Where the vfork hook is not (it is written for x86-64 and arm64: build.rs), a
/// vfork child's hooks could not be told from its parent's: nothing is recorded
/// there.
#[inline]
pub(crate) const fn recording() -> bool {
    cfg!(execguard_vfork_hook)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_record_holds_until_the_generation_or_the_epoch_moves() {
        let r = pack(7, 41, true);
        assert_eq!(read(r, 7, 41), Some(true));
        assert_eq!(read(pack(7, 41, false), 7, 41), Some(false));
        assert_eq!(read(r, 7, 42), None, "a close or a new file at the number");
        assert_eq!(read(r, 8, 41), None, "close_range or closefrom");
        assert_eq!(read(0, 0, 0), None, "never seen");
    }

    #[test]
    fn a_record_survives_wrapping_counters() {
        let e = (1u64 << 40) + 3;
        assert_eq!(read(pack(e, u32::MAX, false), e, u32::MAX), Some(false));
        assert_eq!(read(pack(e, u32::MAX, false), e, 0), None);
    }

    /// On numbers past what the test process opens: the table is process-wide.
    #[test]
    fn hooks_record_and_void_the_flag() {
        let fd = MAX_FD as i32 - 7;
        assert_eq!(known_cloexec(fd), None);
        if !recording() {
            // No vfork hook on this architecture: nothing is ever recorded.
            made(fd, false);
            assert_eq!(known_cloexec(fd), None);
            return;
        }
        made(fd, false);
        assert_eq!(known_cloexec(fd), Some(false));
        renew(fd);
        assert_eq!(known_cloexec(fd), Some(false), "listen keeps the flag");
        made(fd, true);
        assert_eq!(known_cloexec(fd), Some(true));
        bump(fd);
        assert_eq!(known_cloexec(fd), None, "closed");
        renew(fd);
        assert_eq!(known_cloexec(fd), None, "nothing to carry");
        // (close_range moves the process-wide epoch: see the pure test above; not
        // moved here, where other tests audit in parallel.)
        assert_eq!(known_cloexec(MAX_FD as i32 + 3), None);
        made(MAX_FD as i32 + 3, true);
        assert_eq!(known_cloexec(-1), None);
    }
}
