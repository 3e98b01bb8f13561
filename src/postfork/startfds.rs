//! The fds ≥ 3 this process held when it started, by number, and whether each came
//! from outside the audited tree. Filled only by the constructor (which never runs in
//! a vfork child); read by the exec audit, which tells "passed through" (inherited,
//! unchanged) from "created here". No system call per fd: whatever takes such a
//! number away (close, dup2/dup3 onto it, close_range, closefrom, fclose, or a new fd
//! landing on it after a close we did not see) reaches `changed` through a hook that
//! finds the number marked (`marked`: a bit of `START_MASK` and the record itself
//! for up to BY_MASK fds, the fd's `storm::F_START` bit past that), and tags the
//! entry with the pid that did it; a flag changed through a hook reaches
//! `flag_changed` the same way. Small room: the readers are lock-free loads; the
//! writers after start are `changed`, `flag_changed`, `retire` and `forked`,
//! pid-tagged.

use super::{storm, sys};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Inherited fds recorded; a process that starts with more (a 19 000-socket pool)
/// has the rest judged as created (see docs/policy.md).
pub const MAX: usize = 1024;

struct Entry {
    fd: AtomicI32,
    /// Entered the audited tree here or higher up (EXECGUARD_OUTSIDE).
    outside: AtomicBool,
    /// The pid that closed or replaced this number (0: none). A fork child takes its
    /// parent's tags over (`forked`); a vfork child's tag, written into its parent's
    /// memory, names a pid the parent never trusts.
    changed_by: AtomicI32,
    /// Recorded from the parent's `EXECGUARD_HELD` (its exec audit's exact listing of
    /// what survives the exec): open and not close-on-exec when this process began.
    vouched: AtomicBool,
    /// The pid that changed this fd's close-on-exec flag through a hook (F_SETFD,
    /// FIOCLEX, FIONCLEX), tagged as `changed_by` is.
    flag_by: AtomicI32,
    /// The record's owner saw the number change (`retire`): later changes at this
    /// number are not the record's business. What storm's F_START bit says, for a
    /// record small enough to go without those bits (`BY_MASK`).
    retired: AtomicBool,
}

// All zero: the table is in .bss, which build.rs keeps in the file's data segment,
// after the page the loader writes (an initialised one would be placed among the
// data every start maps and relocates — measured: +4 page faults).
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry =
    Entry {
        fd: AtomicI32::new(0),
        outside: AtomicBool::new(false),
        changed_by: AtomicI32::new(0),
        vouched: AtomicBool::new(false),
        flag_by: AtomicI32::new(0),
        retired: AtomicBool::new(false),
    };

// A process that starts with fds 0–2 only never touches these pages.
static TABLE: [Entry; MAX] = [EMPTY; MAX];
/// Entries filled, in increasing fd order (published with Release). On the page the
/// loader writes anyway, as OWNER: read by every hook that asks `any()`.
#[link_section = ".data.execguard_hot"]
static LEN: AtomicUsize = AtomicUsize::new(0);
/// The process whose fd table the record describes: the constructor's, then each
/// fork child's (`forked`). Only it clears an fd's mark (F_START bit, or `retire`).
#[link_section = ".data.execguard_hot"]
static OWNER: AtomicI32 = AtomicI32::new(0);

/// A record of up to this many fds tells its numbers apart by `START_MASK` and the
/// record itself: a process handed a few fds (a caller's 10 and 251) then writes
/// no page of storm's per-fd words at start, one page fault fewer in every program
/// below a terminal or CI runner that holds strays. A larger record (a pool) marks
/// each number's F_START bit there instead, as a close must find it in one load.
pub const BY_MASK: usize = 32;

/// Bit `fd % 64` set for every number of a record of up to BY_MASK fds: the
/// common answer ("not a start fd") in one load. On the page the loader writes
/// anyway.
#[link_section = ".data.execguard_hot"]
static START_MASK: AtomicU64 = AtomicU64::new(0);

/// Constructor only: record `fd` (called in increasing fd order). False when the
/// table is full or the fd is past the hooks' per-fd table: the fd then counts as
/// created here. No system call. Inline: in its callers' pages (startup.rs).
#[inline]
pub fn record(fd: i32) -> bool {
    let n = LEN.load(Ordering::Relaxed);
    let Some(e) = TABLE.get(n) else { return false };
    if fd < 3 || fd as usize >= storm::MAX_FD {
        return false;
    }
    if n == 0 {
        OWNER.store(sys::getpid(), Ordering::Relaxed);
    }
    e.fd.store(fd, Ordering::Relaxed);
    if n < BY_MASK {
        START_MASK.fetch_or(1u64 << (fd as u32 % 64), Ordering::Relaxed);
    } else {
        if n == BY_MASK {
            // Past the mask's room: every number so far gets its F_START bit.
            for e in entries() {
                storm::mark_start(e.fd.load(Ordering::Relaxed));
            }
        }
        storm::mark_start(fd);
    }
    LEN.store(n + 1, Ordering::Release);
    true
}

/// Async-signal-safe: `fd` is a number this process started with and whose change
/// the record has yet to learn (the owner's change retires it). One load for a
/// process that started with nothing, two for any number whose bit is clear.
#[inline]
pub fn marked(fd: i32) -> bool {
    let n = LEN.load(Ordering::Relaxed);
    if n == 0 || fd < 3 {
        return false;
    }
    if n > BY_MASK {
        return storm::word(fd) & storm::F_START != 0;
    }
    START_MASK.load(Ordering::Relaxed) & (1u64 << (fd as u32 % 64)) != 0 && find(fd).is_some_and(|e| !e.retired.load(Ordering::Relaxed))
}

/// Async-signal-safe: a record small enough for the mask (storm's words then
/// hold no F_START bit, and `storm::forget` asks here).
#[inline]
pub fn by_mask() -> bool {
    let n = LEN.load(Ordering::Relaxed);
    n != 0 && n <= BY_MASK
}

/// Async-signal-safe: the owner learnt that `fd` changed (see `changed`): later
/// changes at the number skip the record. For a larger record storm clears the
/// number's F_START bit itself.
pub fn retire(fd: i32) {
    if let Some(e) = find(fd) {
        e.retired.store(true, Ordering::Relaxed);
    }
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

/// Async-signal-safe: a tag that says "changed" to the process `pid` whose parent
/// is `ppid`: its own, or its parent's (a vfork child's view of its parent's acts, a
/// raw fork child's of its parent's).
fn trusted(tag: i32, pid: i32, ppid: i32) -> bool {
    tag != 0 && (tag == pid || tag == ppid)
}

/// Async-signal-safe: the start fd under `fd` is gone or replaced (closed, a dup2
/// target, or a new fd landed on its number). Tags the entry unless it already says
/// so to this process. True when this process owns the record (then the caller may
/// clear the fd's F_START bit, or `retire` it; a vfork child must leave its
/// parent's mark alone). Two getpid-class calls: only reached for a marked fd.
#[cold]
pub fn changed(fd: i32) -> bool {
    owns(tag(fd, |e| &e.changed_by))
}

/// Async-signal-safe: tag `fd`'s entry (the field `which` picks) with this
/// process's pid, unless it already names this process or its parent; returns the
/// pid. Two getpid-class calls; errno kept.
fn tag(fd: i32, which: impl Fn(&Entry) -> &AtomicI32) -> i32 {
    let _e = sys::ErrnoGuard::new();
    let me = sys::getpid();
    if let Some(e) = find(fd) {
        let field = which(e);
        if !trusted(field.load(Ordering::Relaxed), me, sys::getppid()) {
            field.store(me, Ordering::Relaxed);
        }
    }
    me
}

/// Async-signal-safe: the close-on-exec flag of the start fd under `fd` was set or
/// cleared through a hook: what the start record knows of it no longer holds for
/// this process (`passed_flag`). Tags the entry as `changed` does; two getpid-class
/// calls, only for a marked fd.
#[cold]
pub fn flag_changed(fd: i32) {
    tag(fd, |e| &e.flag_by);
}

/// Async-signal-safe, loads only: `fd`'s close-on-exec flag as the start record
/// knows it, for the process `pid` whose parent is `ppid`. A number its parent
/// vouched for (`EXECGUARD_HELD`) was open and not close-on-exec at start; it still
/// is while no hook has seen the number change, its flag change, or a change to many
/// numbers at once (fdgen's epoch: close_range, closefrom). None otherwise: ask
/// fdgen or the kernel. Reads only the record's page: a fork or vfork child's exec
/// audit then touches none of fdgen's tables for what its process was handed.
#[link_section = ".text.hot.execguard"]
pub fn passed_flag(fd: i32, pid: i32, ppid: i32) -> Option<bool> {
    let e = find(fd)?;
    let unchanged = e.vouched.load(Ordering::Relaxed)
        && !trusted(e.changed_by.load(Ordering::Relaxed), pid, ppid)
        && !trusted(e.flag_by.load(Ordering::Relaxed), pid, ppid)
        && super::fdgen::epoch() == 0;
    unchanged.then_some(false)
}

/// Async-signal-safe: process `me` owns the record: the one that made it, or a fork
/// child of its line, which takes it over here, at its first need, rather than in
/// the fork hook (a store to a page its parent wrote: one copy-on-write fault in
/// every fork child, most of which exec without ever asking). A thread that a fork
/// child started before taking over answers no: the tag above still says
/// "changed", only the fd's F_START bit stays set (a later close asks again).
fn owns(me: i32) -> bool {
    if OWNER.load(Ordering::Relaxed) == me {
        return true;
    }
    if super::tls::fork_child() == me {
        OWNER.store(me, Ordering::Relaxed);
        return true;
    }
    false
}

/// Async-signal-safe: every recorded fd in `lo..=hi` was closed (close_range,
/// closefrom, the start-side fix).
pub fn closed_range(lo: u32, hi: u32) {
    if !any() {
        return;
    }
    for e in entries() {
        let fd = e.fd.load(Ordering::Relaxed);
        if fd as u32 >= lo && fd as u32 <= hi && marked(fd) {
            storm::forget(fd);
        }
    }
}

/// Async-signal-safe, in a fork child (the fork hook): what its parent changed it
/// changed too (its parent's own tags become its own, so that its children trust
/// them as their parent's). It owns the record from its first need (`owns`).
pub fn forked(pid: i32) {
    if !any() {
        return;
    }
    let ppid = sys::getppid();
    for e in entries() {
        if e.changed_by.load(Ordering::Relaxed) == ppid {
            e.changed_by.store(pid, Ordering::Relaxed);
        }
        if e.flag_by.load(Ordering::Relaxed) == ppid {
            e.flag_by.store(pid, Ordering::Relaxed);
        }
    }
}

/// Async-signal-safe, in the parent (the fork hook), once per process: map the
/// pages of the per-fd tables a fork child's exec audit reads for the recorded fds.
/// A page this process never touched is not in what a fork child inherits: each
/// child would fault it in again (a caller's fds 10 and 251 cost every fork+exec
/// four such faults). Reading them here maps the zero page, shared, for good. And
/// their close-on-exec flags are learnt (fdgen::learn), one `fcntl` each, here (the
/// vfork hook calls it too: a vfork child reads the flags from its parent's memory).
#[inline]
pub fn prefault_for_children() {
    // A load first: a store at every fork would itself be a fault (fork leaves this
    // page write-protected in the parent). The common answer inline, in the hook.
    if any() && !PREFAULTED.load(Ordering::Relaxed) {
        prefault_now();
    }
}

/// Beside the fork hooks (`.text.hot`): every shell below a terminal or CI runner
/// that holds strays comes here at its first fork or vfork.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn prefault_now() {
    // Not in a vfork child that forks or vforks again: the memory, and the flag,
    // are its parent's.
    if !super::tls::may_record() || PREFAULTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let ids = sys::Ids::ask();
    for e in entries() {
        let fd = e.fd.load(Ordering::Relaxed);
        // The children take a vouched number's flag from the record itself.
        if passed_flag(fd, ids.pid, ids.ppid).is_some() {
            continue;
        }
        // Their flags, once here rather than one fcntl each in every child; learnt
        // first: a read of the record's page before its first write would map the
        // zero page, and the write then fault a second time.
        let _ = super::fdgen::learn(fd);
        super::fdgen::prefault(fd);
    }
}

#[link_section = ".data.execguard_hot"]
static PREFAULTED: AtomicBool = AtomicBool::new(false);

/// What the start record says about an fd at an exec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Since {
    /// Held since this process started: recorded at start, and nothing of this
    /// process (or its fork parent) closed or replaced the number since.
    pub start: bool,
    /// ... and it came from outside the audited tree.
    pub outside: bool,
}

/// Async-signal-safe, loads only: the highest fd this process started with that no
/// hook has seen closed or replaced (by anyone), or 0. A hint, not a fact: a raw
/// close leaves no tag. Its slot exists in the fd table (tables never shrink, and a
/// fork child's reaches its highest open fd), so a search for the table's size can
/// start there.
#[link_section = ".text.hot.execguard"]
pub fn highest_held() -> i32 {
    entries().iter().rev().find(|e| e.changed_by.load(Ordering::Relaxed) == 0).map_or(0, |e| e.fd.load(Ordering::Relaxed))
}

/// Async-signal-safe: loads only.
#[link_section = ".text.hot.execguard"]
pub fn since(fd: i32, pid: i32, ppid: i32) -> Since {
    let no = Since { start: false, outside: false };
    let Some(e) = find(fd) else { return no };
    if trusted(e.changed_by.load(Ordering::Relaxed), pid, ppid) {
        return no;
    }
    Since { start: true, outside: e.outside.load(Ordering::Relaxed) }
}

/// Signals this process started with: ignored, and blocked (the main thread's mask).
/// On the page the loader writes anyway (relocations): a store to an untouched
/// `.bss` page would cost every process start a page fault.
#[link_section = ".data.execguard_hot"]
static START_IGN: AtomicU64 = AtomicU64::new(0);
#[link_section = ".data.execguard_hot"]
static START_BLOCKED: AtomicU64 = AtomicU64::new(0);

/// Constructor only: the ignored and blocked signals this process started with (after
/// the start side's own repairs). Most processes start with neither: nothing written.
pub fn set_signals(ign: u64, blocked: u64) {
    if ign != 0 {
        START_IGN.store(ign, Ordering::Relaxed);
    }
    if blocked != 0 {
        START_BLOCKED.store(blocked, Ordering::Relaxed);
    }
}

/// Async-signal-safe: (ignored, blocked) at start. An exec that still has them
/// passes them through: they were reported where they came in.
pub fn signals() -> (u64, u64) {
    (START_IGN.load(Ordering::Relaxed), START_BLOCKED.load(Ordering::Relaxed))
}

/// Async-signal-safe: the recorded fds that came from outside, in increasing order.
pub fn outside() -> impl Iterator<Item = i32> {
    entries().iter().filter(|e| e.outside.load(Ordering::Relaxed)).map(|e| e.fd.load(Ordering::Relaxed))
}

/// Async-signal-safe: `EXECGUARD_HELD=…` (NUL-terminated) into `out`: the fds the
/// new program starts with, as ascending runs (`10,251-253`; empty: none). False
/// when the list is not vouched for or does not fit: the new program lists them.
#[link_section = ".text.hot.execguard"]
pub fn held_env<const N: usize>(out: &mut super::line::Buf<N>, held: &crate::policy::Held) -> bool {
    let Some(runs) = held.runs() else { return false };
    out.clear();
    out.s("EXECGUARD_HELD=");
    let head = out.len();
    for (lo, hi) in runs {
        push_run(out, head, lo, hi);
    }
    out.byte(0);
    !out.overflowed()
}

/// Async-signal-safe: one run of an fd list (`10` or `251-253`) after `head`,
/// comma-separated from the one before.
fn push_run<const N: usize>(out: &mut super::line::Buf<N>, head: usize, lo: i32, hi: i32) {
    if out.len() > head {
        out.byte(b',');
    }
    out.int(lo as i64);
    if hi > lo {
        out.byte(b'-');
        out.int(hi as i64);
    }
}

/// Constructor only, in a process whose exec was audited: record what the marker's
/// `EXECGUARD_HELD` says this process started with (see policy::Held), the outside
/// ones among them as `outside` names them. False, with nothing recorded, when there
/// is no such list or it is not one: the caller lists the fds itself.
pub fn record_held(value: Option<&[u8]>, outside: &crate::policy::FdRanges) -> bool {
    let Some(value) = value else { return false };
    let mut held = crate::policy::Held::new();
    if !held.parse(value) {
        return false;
    }
    let Some(runs) = held.runs() else { return false };
    for (lo, hi) in runs {
        for fd in lo..=hi {
            if full() || !record(fd) {
                // Past the record's room (or the hooks' per-fd table): counted as
                // created here, as a listing would leave it.
                return true;
            }
            if let Some(e) = find(fd) {
                e.vouched.store(true, Ordering::Relaxed);
            }
            if outside.contains(fd) {
                set_outside(fd);
            }
        }
    }
    true
}

/// Async-signal-safe: `EXECGUARD_OUTSIDE=…` (NUL-terminated) into `out`: the fds that
/// came from outside and that this exec still passes on unchanged, as a comma list
/// with runs folded (`10,251-253`). False when there is none. What does not fit is
/// left out (a child of an unaudited process may then name it once more).
#[link_section = ".text.hot.execguard"]
pub fn outside_env<const N: usize>(out: &mut super::line::Buf<N>, sys::Ids { pid, ppid }: sys::Ids) -> bool {
    out.clear();
    out.s("EXECGUARD_OUTSIDE=");
    let head = out.len();
    let mut run: Option<(i32, i32)> = None;
    let passed = outside().filter(|&fd| {
        let cloexec = passed_flag(fd, pid, ppid).or_else(|| super::fdgen::known_cloexec(fd)).map(Ok).unwrap_or_else(|| super::fds::cloexec(fd));
        cloexec == Ok(false) && since(fd, pid, ppid).start
    });
    for fd in passed.map(Some).chain(core::iter::once(None)) {
        match (run, fd) {
            (Some((lo, hi)), Some(fd)) if fd == hi + 1 => run = Some((lo, fd)),
            (prev, next) => {
                if let Some((lo, hi)) = prev {
                    let keep = out.len();
                    push_run(out, head, lo, hi);
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
