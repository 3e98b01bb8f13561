//! One finding, one line: the identity of a finding (a hash of the event name, the
//! program and the fields an event marks with `Event::ident`), and the table that
//! folds its later occurrences into `"repeats": N`. Small room: the table is an
//! anonymous MAP_SHARED mapping made before the first fork (or at the first event),
//! so that fork children and vfork children count into the same finding; it is
//! written with atomics only, and never created in a vfork child.

use super::emit::{Event, Severity};
use super::sys;
use crate::config;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Findings one process family can fold; more are written in full (and counted).
pub const SLOTS: usize = 64;
/// Room for a finding's first line (after its header), replayed at exit.
const BODY_MAX: usize = 4040;
/// `Table::state`: the owner is gone.
const GONE: u64 = 1 << 32;
/// A layout entry being written (`learn`).
const BUSY: u64 = u64::MAX;
/// A finding's slot being claimed: these 32 high bits and the claimer's pid in the
/// low 32. The name is written before the key is published; a racing occurrence
/// waits for the key while the claimer lives (`wait_claimed`).
const CLAIMING: u64 = 0xFFFF_FFFF_0000_0000;

/// The pid that is claiming a slot whose key is `k`, if `k` is a claim mark.
#[inline]
fn claiming(k: u64) -> Option<i32> {
    (k & CLAIMING == CLAIMING).then_some(k as u32 as i32)
}

/// Word-wise mixing (FNV's offset and prime, one multiply per 8 bytes): an
/// exec_fd_leak with 200 fds mixes 800 words per exec, and the byte-wise FNV-1a it
/// replaced spent some 20 µs of a repeat there. The result goes through `finish`'s
/// finalizer.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const WORD_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Async-signal-safe: mix `part` into `h`, length first, so that ("ab","c") and
/// ("a","bc") differ.
#[link_section = ".text.hot.execguard"]
pub fn mix(mut h: u64, part: &[u8]) -> u64 {
    h = mix_int(h, part.len() as u64);
    // Whole words read as such; the tail (1..7 bytes) zero-padded, little-endian.
    let mut words = part.chunks_exact(8);
    for chunk in &mut words {
        let w = <[u8; 8]>::try_from(chunk).map(u64::from_le_bytes).unwrap_or(0);
        h = mix_int(h, w);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        h = mix_int(h, tail_word(tail));
    }
    h
}

/// Async-signal-safe: 1 to 7 bytes as a little-endian word, zero-padded: two
/// overlapping loads (an overlapping byte is the same in both, so `|` keeps it).
#[inline]
fn tail_word(t: &[u8]) -> u64 {
    let n = t.len();
    let byte = |i: usize| t.get(i).copied().unwrap_or(0) as u64;
    let word4 = |i: usize| t.get(i..i + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes).unwrap_or(0) as u64;
    if n >= 4 {
        word4(0) | (word4(n - 4) << (8 * (n - 4)))
    } else if n > 0 {
        byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)))
    } else {
        0
    }
}

/// Async-signal-safe: mix one integer. For a fixed `v` each step is a bijection of
/// `h` (xor, multiply by an odd constant, xorshift): nothing mixed in earlier is lost.
#[inline]
pub fn mix_int(h: u64, v: u64) -> u64 {
    let x = (h ^ v).wrapping_mul(WORD_MUL);
    (x ^ (x >> 32)).wrapping_mul(FNV_PRIME)
}

/// Async-signal-safe: the start of an identity: event name, severity and action.
#[link_section = ".text.hot.execguard"]
pub fn seed(name: &str, sev: Severity, fixed: bool) -> u64 {
    let h = mix(FNV_OFFSET, name.as_bytes());
    mix(h, &[(sev == Severity::Warn) as u8, fixed as u8])
}

/// Async-signal-safe: one leaked or listed fd as identity: its number and which open
/// file it is (type, device, inode) — one fstat, where its kind and detail would
/// cost more calls (and a readlink for a path). A different file at the same number
/// is a different inode; a socket that changes state (listen, connect) in place
/// keeps its inode: that is the one case where kind or detail can change under
/// the same identity (docs/performance.md, "Repeated findings").
#[link_section = ".text.hot.execguard"]
pub fn mix_fd(h: u64, fd: i32, id: Option<sys::FileId>) -> u64 {
    let h = mix_int(h, fd as u64);
    match id {
        Some(id) => mix_int(mix_int(mix_int(h, (id.mode & libc::S_IFMT) as u64), id.dev), id.ino),
        None => mix_int(h, u64::MAX),
    }
}

/// Async-signal-safe: the final identity: the program mixed in, then a finalizer
/// (splitmix64) so that the hex spreads; never 0 (a free slot), nor a claim mark
/// (`CLAIMING`) or BUSY.
#[link_section = ".text.leak.execguard"]
pub fn finish(h: u64, exe: u64) -> u64 {
    let mut z = mix_int(h, if exe != 0 { exe } else { exe_hash() });
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    settle(z)
}

/// An identity that is neither 0 (a free slot) nor a claim mark (BUSY included):
/// one identity in 2^32 moves.
#[inline]
fn settle(z: u64) -> u64 {
    if z == 0 {
        1
    } else if z & CLAIMING == CLAIMING {
        z & !(1 << 63)
    } else {
        z
    }
}

/// Async-signal-safe: the program's identity from its path (`/proc/self/exe`).
pub fn hash_exe(path: &[u8]) -> u64 {
    mix(FNV_OFFSET, path).max(1)
}

/// Async-signal-safe: the program's identity, read once per process family (the
/// table keeps it: every process sharing a table runs the same program).
#[link_section = ".text.hot.execguard"]
pub fn exe_hash() -> u64 {
    let t = table();
    if let Some(t) = t {
        let h = t.exe.load(Ordering::Relaxed);
        if h != 0 {
            return h;
        }
    }
    let mut exe = [core::mem::MaybeUninit::<u8>::uninit(); super::tls::EXE_MAX];
    let n = super::tls::exe(&mut exe);
    // SAFETY: the first n bytes were written; MaybeUninit<u8> has u8's layout.
    let path = unsafe { core::slice::from_raw_parts(exe.as_ptr().cast::<u8>(), n) };
    let h = hash_exe(path);
    learn_exe(h);
    h
}

/// Async-signal-safe: remember the program's identity for the family.
#[link_section = ".text.report.execguard"]
pub fn learn_exe(h: u64) {
    if let Some(t) = table() {
        t.exe.store(h, Ordering::Relaxed);
    }
}

/// What to do with one occurrence of a finding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// No table (a vfork or raw-fork child before any, or the table is full): the
    /// line is written in full, without `repeats`.
    Untracked,
    /// The first occurrence: written in full, and kept (slot) for the exit flush.
    First(usize),
    /// Counted, not written.
    Repeat,
    /// Written, with the occurrences folded since the previous line.
    Line(u64),
}

#[repr(C)]
struct Meta {
    key: AtomicU64,
    pending: AtomicU64,
    /// Monotonic ms of the last line of this finding; 0 while being claimed.
    last_ms: AtomicI64,
    /// The body is complete.
    ready: AtomicU32,
    /// bit 0: warn; bit 1: fixed; bits 8..: name length.
    flags: AtomicU32,
    name: [AtomicU64; 4],
}

#[repr(C)]
struct Body {
    len: AtomicU32,
    /// The `finding` the first line showed (see `Event::preset`).
    shown: AtomicU64,
    bytes: [u8; BODY_MAX],
}

/// Leak layouts already audited (see `known`): the key of a layout, the identity
/// its audit found, and the listening sockets among its fds.
#[repr(C)]
struct Known {
    key: AtomicU64,
    id: AtomicU64,
    listeners: AtomicU32,
    _pad: AtomicU32,
}

/// Layouts remembered per process family (direct-mapped by key).
pub const KNOWN: usize = 32;

#[repr(C)]
struct Table {
    /// Who owns the table, and whether it is gone, in one word, so that a takeover
    /// and the end of "gone" are one compare-exchange (`adopt`). Low 32 bits: the
    /// process that took the table over, or 0: the one that made it (`MAKER`). The
    /// maker does not write it, so a table nobody counted into is never touched (see
    /// `owner_of`). The owner flushes at exit or exec. `GONE`: the owner exited or
    /// exec'd, and every process flushes what it sees then.
    state: AtomicU64,
    exe: AtomicU64,
    /// Occurrences written in full because the table was full.
    untracked: AtomicU64,
    /// Some process counted a repeat into the table. `COUNTED_BY` says so for this
    /// process and its vfork children; a child forked where no hook sees it
    /// (`syscall(SYS_fork)`, a raw `clone` without CLONE_VM, qemu-user's vfork)
    /// counts in its own memory, and only this shared word tells the owner, at
    /// exit, that there is something to write.
    counted: AtomicU32,
    _pad32: u32,
    _pad: [u64; 4],
    /// Beside the header and the slots' metadata: a repeat reads the header, one
    /// layout and one slot's metadata, and each page of this shared mapping that a
    /// fork child touches is a fault of its own.
    known: [Known; KNOWN],
    meta: [Meta; SLOTS],
    bodies: [Body; SLOTS],
}

const TABLE_BYTES: usize = core::mem::size_of::<Table>();

#[link_section = ".data.execguard_hot"]
static TABLE: AtomicPtr<Table> = AtomicPtr::new(core::ptr::null_mut());
/// The pid the constructor ran in. A process whose getpid() is neither this nor
/// the pid the fork hook gave its child (tls) is a vfork or raw-fork child: it
/// never makes a table (a vfork child's mapping and pointer would be its parent's).
/// Not written in fork children: a store there would copy the page (a fault per spawn).
#[link_section = ".data.execguard_hot"]
static PROC_PID: AtomicI32 = AtomicI32::new(0);
/// The table's owner as this process knows it (made or adopted here): only it writes
/// pending counts at exec.
#[link_section = ".data.execguard_hot"]
static OWNER: AtomicI32 = AtomicI32::new(0);
/// The process that made the table (its fork children inherit the value, a vfork
/// child shares it): the owner while `Table::owner` is 0.
#[link_section = ".data.execguard_hot"]
static MAKER: AtomicI32 = AtomicI32::new(0);
/// This process forked (through the hook) while it had the table: children that
/// share it may count into it after this process exits, so its exit always says so
/// (`gone`). Not set by vfork: a vfork child has exec'd or exited when we run again.
#[link_section = ".data.execguard_hot"]
static FORKED: AtomicBool = AtomicBool::new(false);
/// The last process that counted an occurrence into the table (pid-tagged: a fork
/// child's store is its own; a vfork child's names a pid its parent is not).
#[link_section = ".data.execguard_hot"]
static COUNTED_BY: AtomicI32 = AtomicI32::new(0);

/// Async-signal-safe: the constructor's pid.
#[inline]
pub fn note_pid(pid: i32) {
    PROC_PID.store(pid, Ordering::Relaxed);
}

/// Async-signal-safe: `pid` (the caller's) is the process the constructor ran in,
/// not a fork or vfork child of it that has not exec'd: only there may a hook call
/// libc functions that allocate.
pub fn started_here(pid: i32) -> bool {
    PROC_PID.load(Ordering::Relaxed) == pid
}

fn image_is_mine(pid: i32) -> bool {
    PROC_PID.load(Ordering::Relaxed) == pid || super::tls::fork_child() == pid
}

fn table() -> Option<&'static Table> {
    let p = TABLE.load(Ordering::Acquire);
    // SAFETY: a mapping of TABLE_BYTES, never unmapped once published; every field
    // is an atomic or a body written before its `ready` flag (Release).
    unsafe { p.as_ref() }
}

/// Async-signal-safe: make the table in this process if it has none. Called by the
/// fork hook in the parent (so that fork children share it) and at the first event.
/// Not in a vfork or raw-fork child (see PROC_PID). Inline: every fork asks, and
/// all but the first find the table made.
#[inline(always)]
pub fn prepare() {
    if TABLE.load(Ordering::Relaxed).is_null() {
        let _ = make();
    } else {
        adopt_if_orphaned();
    }
}

/// Async-signal-safe: the fork hook, in the parent, before a fork that shares the
/// table (see `FORKED`). One store, the first time.
#[inline(always)]
pub fn forking() {
    if !FORKED.load(Ordering::Relaxed) && !TABLE.load(Ordering::Relaxed).is_null() {
        FORKED.store(true, Ordering::Relaxed);
    }
}

/// Async-signal-safe: before a spawn from this process (fork, vfork, posix_spawn,
/// system, popen), take the table over if its owner is gone (see `adopt`). One load
/// and a getpid when a table exists; nothing more for its owner.
#[inline(always)]
pub fn adopt_if_orphaned() {
    if !TABLE.load(Ordering::Relaxed).is_null() && OWNER.load(Ordering::Relaxed) != sys::getpid() {
        adopt();
    }
}

/// A process that forks from a table whose owner is gone — exited or exec'd, or
/// dead without its destructor (daemon(3)'s parent leaves with `_exit`) — takes the
/// table over: else nobody writes at its exec what it and its children counted (a
/// worker that outlives a wrapper which exec'd loses every repeat; a daemon's exit
/// writes nothing). One `kill(owner, 0)` per fork of a process that does not own
/// the table (a pid reused since, or a zombie owner, reads as alive: no takeover).
#[cold]
#[inline(never)]
fn adopt() {
    let Some(t) = table() else { return };
    let pid = sys::getpid();
    if !image_is_mine(pid) {
        return;
    }
    let w = t.state.load(Ordering::SeqCst);
    if let Some(next) = takeover(w, MAKER.load(Ordering::Relaxed), pid, alive) {
        // From the word it judged: two helpers that find the owner gone at once
        // take it over once (with separate owner and gone words, the second could
        // read the first's new owner with the old "gone", take it over too, and
        // leave the first believing it owned the table; its children then each
        // wrote a line of their own).
        if t.state.compare_exchange(w, next, Ordering::SeqCst, Ordering::Relaxed).is_ok() {
            OWNER.store(pid, Ordering::Relaxed);
        }
    }
}

/// The table's state word after `pid` takes it over from `w` (whose owner is
/// `maker` while its low half is 0), or None while its owner is there: the new
/// owner, and no longer gone (survivors that end from now on leave their counts
/// to it).
fn takeover(w: u64, maker: i32, pid: i32, alive: impl Fn(i32) -> bool) -> Option<u64> {
    let owner = match w as u32 as i32 {
        0 => maker,
        o => o,
    };
    (w & GONE != 0 || !alive(owner)).then_some(pid as u32 as u64)
}

fn prepared() -> Option<&'static Table> {
    match table() {
        Some(t) => Some(t),
        None => make(),
    }
}

/// In a vfork child that the vfork hook marked (and that `kcmp` says shares its
/// parent's memory), the table is made for the parent, whose memory this is: the mapping and the pointer stay with the parent after the
/// child's exec, and the parent is its maker and owner. So a shell's vfork (every
/// `system()`) makes no table when its child finds nothing: an mmap, a shared page
/// and an munmap at exit, about 10 µs of every `system()`.
#[cold]
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn make() -> Option<&'static Table> {
    let me = sys::getpid();
    let pid = if image_is_mine(me) {
        me
    } else {
        match super::tls::vfork_parent(me) {
            // A raw fork child of a thread that vforked earlier carries the mark too:
            // only a child that shares the parent's memory makes it there. Where
            // kcmp is refused the mark is trusted: such a raw child then makes a
            // table of its own memory, counts the first occurrence written in full
            // as before, and loses only the repeats it counts itself and never
            // writes (docs/design.md).
            Some(parent) if image_is_mine(parent) && sys::same_memory(me, parent) != Some(false) => parent,
            _ => return None,
        }
    };
    // Zero-filled, so every slot is free.
    let p = sys::map_zeroed(TABLE_BYTES, true)? as *mut Table;
    // Not a word written into the mapping: its owner is MAKER while `owner` is 0. A
    // page of it first touched costs a shared page's allocation (and the exit its
    // release): about 20 µs of every shell that forks, where nothing is found.
    MAKER.store(pid, Ordering::Release);
    match TABLE.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            OWNER.store(pid, Ordering::Relaxed);
            table()
        }
        Err(_) => {
            // Another thread of this process was first.
            sys::unmap(p as *mut u8, TABLE_BYTES);
            table()
        }
    }
}

fn interval_ms() -> i64 {
    config::get().map(|c| c.repeat_interval_ms).unwrap_or(60_000)
}

/// Async-signal-safe: one occurrence of finding `id` (from `finish`).
#[link_section = ".text.leak.execguard"]
pub fn occur(id: u64, name: &str, sev: Severity, fixed: bool) -> Verdict {
    occur_at(id, name, sev, fixed, sys::mono_ms)
}

/// Async-signal-safe: `occur` for a hook that runs in a process's own context (not
/// a fork child on its way to exec), where the vDSO's clock is mapped and costs no
/// system call: the fork hook of a multi-threaded parent, at every fork.
pub fn occur_here(id: u64, name: &str, sev: Severity, fixed: bool) -> Verdict {
    occur_at(id, name, sev, fixed, sys::mono_ms)
}

#[inline(always)]
fn occur_at(id: u64, name: &str, sev: Severity, fixed: bool, clock: fn() -> i64) -> Verdict {
    let Some(t) = prepared() else { return Verdict::Untracked };
    let Some((i, m, fresh)) = find_or_claim(t, id, name, sev, fixed) else {
        t.untracked.fetch_add(1, Ordering::Relaxed);
        return Verdict::Untracked;
    };
    if fresh {
        return Verdict::First(i);
    }
    let interval = interval_ms();
    if interval == 0 {
        return Verdict::Line(0);
    }
    m.pending.fetch_add(1, Ordering::SeqCst);
    // This process has a count in the table that its own exec may have to write.
    // Stored only when it changes: a store into a page that the last fork
    // write-protected is a fault (with TLB shootdowns in a busy parent) at every
    // repeat of a multi-threaded fork.
    // A fork child that does not own the table notes it in its own thread state
    // instead, a page its fork already wrote (the owner's exit, which reads
    // COUNTED_BY, is never this child's).
    let me = sys::getpid();
    let noted = OWNER.load(Ordering::Relaxed) != me && super::tls::note_counted_in_fork_child(me);
    if !noted && COUNTED_BY.load(Ordering::Relaxed) != me {
        COUNTED_BY.store(me, Ordering::Relaxed);
    }
    // A child no fork hook saw (nor a vfork child, whose memory may be its own
    // under qemu-user) tells its parent through the table: its COUNTED_BY is its
    // own copy, and its parent's exit would skip the flush. Only such a child
    // touches the header's page here (one fault in a fork child).
    if !image_is_mine(me) && t.counted.load(Ordering::Relaxed) == 0 {
        t.counted.store(1, Ordering::Relaxed);
    }
    let now = clock().max(1);
    let last = m.last_ms.load(Ordering::Relaxed);
    if last == 0 || now - last < interval || m.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return Verdict::Repeat;
    }
    match m.pending.swap(0, Ordering::SeqCst) {
        // A flush took ours along: it is written.
        0 => Verdict::Repeat,
        p => Verdict::Line(p - 1),
    }
}

/// Async-signal-safe: the key of a slot that another process or thread is claiming
/// (`CLAIMING`), once it is published — a handful of stores away, so a short wait
/// keeps one finding in one slot when workers race to its first occurrence. A
/// claimer descheduled in between (a busy machine; qemu-user, where it took longer
/// than 16 `sched_yield`s and the finding got a second slot and a fourth line) is
/// waited for while it lives, in 100 µs sleeps, at most 100 ms, once: then the
/// slot is marked abandoned. One that died in between never finishes: its pid is
/// in the mark, the wait ends at the first look after the spins, and the slot is
/// marked abandoned too. Either way the finding then takes another slot, and the
/// sum over its lines stays exact.
fn wait_claimed(m: &Meta) -> u64 {
    let mut k = 0;
    for round in 0..256u32 {
        k = m.key.load(Ordering::Acquire);
        match claiming(k) {
            // Published, or abandoned (pid 0): nothing to wait for.
            None | Some(0) => return k,
            Some(_) => {}
        }
        if round % 16 == 15 {
            // SAFETY: no arguments; never fails in a way that matters here.
            unsafe { sys::syscall!(libc::SYS_sched_yield) };
        } else {
            core::hint::spin_loop();
        }
    }
    let nap = libc::timespec { tv_sec: 0, tv_nsec: 100_000 };
    for _ in 0..1000 {
        match claiming(k) {
            None => return k,
            Some(pid) if alive(pid) => {}
            Some(_) => break,
        }
        // SAFETY: a valid timespec; no remainder wanted.
        unsafe { sys::syscall!(libc::SYS_nanosleep, &nap as *const libc::timespec, 0) };
        k = m.key.load(Ordering::Acquire);
    }
    // A claimer that died inside its claim, or one still there after 100 ms (stopped,
    // or killed and not reaped yet): the slot is marked abandoned (pid 0, never
    // alive), so that no later occurrence spins or waits for it again. A claimer
    // that does finish stores its key over the mark.
    if claiming(k).is_some() {
        let _ = m.key.compare_exchange(k, CLAIMING, Ordering::AcqRel, Ordering::Acquire);
    }
    k
}

#[link_section = ".text.leak.execguard"]
fn find_or_claim<'t>(t: &'t Table, id: u64, name: &str, sev: Severity, fixed: bool) -> Option<(usize, &'t Meta, bool)> {
    let start = (id % SLOTS as u64) as usize;
    for k in 0..SLOTS {
        let i = (start + k) % SLOTS;
        let m = t.meta.get(i)?;
        // Not collapsed into guards: waiting for a claim is not a pattern's test.
        #[allow(clippy::collapsible_match)]
        match m.key.load(Ordering::Acquire) {
            v if v == id => return Some((i, m, false)),
            v if claiming(v).is_some() => {
                if wait_claimed(m) == id {
                    return Some((i, m, false));
                }
            }
            0 => {
                // The clock and the pid first: no system call between the mark and
                // the key keeps racing workers waiting.
                let now = sys::mono_ms().max(1);
                let mark = CLAIMING | sys::getpid() as u32 as u64;
                if m.key.compare_exchange(0, mark, Ordering::Acquire, Ordering::Acquire).is_err() {
                    if wait_claimed(m) == id {
                        return Some((i, m, false));
                    }
                    continue;
                }
                // A concurrent first occurrence of the same finding that gave up
                // waiting (`wait_claimed`) claims a second slot: both then carry the
                // same `finding`, and the sum over its lines stays exact.
                let nb = name.as_bytes();
                let n = nb.len().min(32);
                let mut words = [0u64; 4];
                for (j, b) in nb.iter().take(n).enumerate() {
                    if let Some(w) = words.get_mut(j / 8) {
                        *w |= (*b as u64) << ((j % 8) * 8);
                    }
                }
                for (dst, w) in m.name.iter().zip(words) {
                    dst.store(w, Ordering::Relaxed);
                }
                m.flags.store((sev == Severity::Warn) as u32 | (fixed as u32) << 1 | (n as u32) << 8, Ordering::Relaxed);
                m.last_ms.store(now, Ordering::Relaxed);
                m.key.store(id, Ordering::Release);
                return Some((i, m, true));
            }
            _ => {}
        }
    }
    None
}

/// Async-signal-safe: keep the first line's body (everything after its header) for
/// lines written later without an occurrence at hand (exit, exec).
#[link_section = ".text.report.execguard"]
pub fn keep_body(slot: usize, body: &[u8], shown: u64) {
    let Some(t) = table() else { return };
    let (Some(m), Some(b)) = (t.meta.get(slot), t.bodies.get(slot)) else { return };
    if body.len() > BODY_MAX || m.ready.load(Ordering::Relaxed) != 0 {
        return;
    }
    // SAFETY: only the process that claimed the slot writes its body, once, before
    // `ready` publishes it; the bytes live in our shared mapping. Not libc's memcpy
    // (a page of libc's text in a fork child).
    unsafe {
        let dst = b.bytes.as_ptr() as *mut u8;
        super::line::copy_ptr(dst, body.as_ptr(), body.len());
    }
    b.len.store(body.len() as u32, Ordering::Relaxed);
    b.shown.store(shown, Ordering::Relaxed);
    m.ready.store(1, Ordering::Release);
}

/// Async-signal-safe: at an exec of the table's owner (which loses the table), write
/// what is pending, its exec'd and exited children's counts included. A fork child
/// that execs leaves its counts to the owner while the owner lives; once the owner is
/// gone (a helper that outlived a wrapper which exec'd, and now execs itself), it
/// writes them, or its last occurrence, counted after the owner's flush, is lost.
/// Inline, and no read of the table unless this process owns it or counted into it:
/// every exec of a fork child asks, and a shared page not yet touched in the child
/// would cost it a fault.
#[inline(always)]
pub fn flush_at_exec(pid: Option<i32>) {
    if !TABLE.load(Ordering::Relaxed).is_null() {
        let me = pid.unwrap_or_else(sys::getpid);
        if OWNER.load(Ordering::Relaxed) == me
            || COUNTED_BY.load(Ordering::Relaxed) == me
            || super::tls::counted_in_fork_child(me)
        {
            flush_owned(false);
        }
    }
}

/// Async-signal-safe: at exit, write what is pending if this process is the one to do
/// it: the table's owner (which may outlive its fork children, and whose exec'd
/// children left their counts here), or anyone once the owner is gone. With the
/// hot code: a fork child that counted a repeat asks this at its exec (and the
/// owner is nearly always still there).
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn flush_owned(at_exit: bool) {
    let Some(t) = table() else { return };
    if config::mode() == config::Mode::Off {
        return;
    }
    let me = sys::getpid();
    if at_exit
        && OWNER.load(Ordering::Relaxed) == me
        && !FORKED.load(Ordering::Relaxed)
        && COUNTED_BY.load(Ordering::Relaxed) == 0
        && t.counted.load(Ordering::Relaxed) == 0
    {
        // Nothing was ever counted into it — not by this process, nor by a vfork
        // child (which shares COUNTED_BY), nor by a child forked where no hook saw
        // it (`counted`) — and no fork child of ours shares it (vfork children have
        // exec'd by now): nothing to write.
        return;
    }
    if owner_of(t) == me {
        // First say so: a child that ends after this point flushes for itself.
        t.state.fetch_or(GONE, Ordering::SeqCst);
    } else if t.state.load(Ordering::SeqCst) & GONE == 0 {
        return;
    }
    flush(t);
}

/// Async-signal-safe: the table's owner (see `Table::state`).
fn owner_of(t: &Table) -> i32 {
    match t.state.load(Ordering::Relaxed) as u32 as i32 {
        0 => MAKER.load(Ordering::Acquire),
        pid => pid,
    }
}

/// Async-signal-safe: `pid` exists (signal 0 only checks; a zombie counts as alive).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 delivers nothing.
    pid > 0 && unsafe { sys::syscall!(libc::SYS_kill, pid, 0) } != -(libc::ESRCH as i64)
}

#[cold]
#[inline(never)]
fn flush(t: &Table) {
    for (i, m) in t.meta.iter().enumerate() {
        let key = m.key.load(Ordering::Acquire);
        if key == 0 || claiming(key).is_some() || m.pending.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let p = m.pending.swap(0, Ordering::SeqCst);
        if p == 0 {
            continue;
        }
        m.last_ms.store(sys::mono_ms().max(1), Ordering::Relaxed);
        replay(t, i, m, key, p - 1);
    }
}

/// Async-signal-safe: a line of finding `key` for `repeats` + 1 pending occurrences,
/// with a fresh header and the first line's body.
fn replay(t: &Table, i: usize, m: &Meta, key: u64, repeats: u64) {
    let flags = m.flags.load(Ordering::Relaxed);
    let mut name = [0u8; 32];
    for (j, w) in m.name.iter().enumerate() {
        let w = w.load(Ordering::Relaxed).to_le_bytes();
        if let Some(dst) = name.get_mut(j * 8..j * 8 + 8) {
            dst.copy_from_slice(&w);
        }
    }
    let n = ((flags >> 8) as usize).min(32);
    let Ok(name) = core::str::from_utf8(name.get(..n).unwrap_or(&[])) else { return };
    let sev = if flags & 1 != 0 { Severity::Warn } else { Severity::Info };
    let mut ev = Event::begin(name, sev, flags & 2 != 0);
    let mut shown = key;
    if m.ready.load(Ordering::Acquire) != 0 {
        if let Some(b) = t.bodies.get(i) {
            let len = (b.len.load(Ordering::Relaxed) as usize).min(BODY_MAX);
            ev.raw_body(b.bytes.get(..len).unwrap_or(&[]));
            shown = b.shown.load(Ordering::Relaxed).max(1);
        }
    }
    ev.preset(shown, Verdict::Line(repeats));
    ev.emit();
}

/// The library's destructor: `exit()` in the middle of a spawn loop still writes
/// the pending counts. `_exit`, a fatal signal and `kill -9` do not run it.
#[used]
#[link_section = ".fini_array"]
static DESTRUCTOR: extern "C" fn() = destructor;

/// With the start-up code: every process runs it at exit, most of them only to find
/// no table (one load of a hot static, no page fault).
#[link_section = ".text.startup.execguard"]
extern "C" fn destructor() {
    if !TABLE.load(Ordering::Relaxed).is_null() {
        destructor_flush();
    }
}

#[cold]
#[inline(never)]
fn destructor_flush() {
    let Some(_inside) = super::tls::enter() else { return };
    let _e = sys::ErrnoGuard::new();
    flush_owned(true);
}

/// Async-signal-safe: a layout key as the table stores it: `finish` is never 0 (a
/// free entry) or BUSY (one being written).
#[link_section = ".text.hot.execguard"]
pub fn layout_key(h: u64) -> u64 {
    finish(h, 1)
}

fn known_slot(t: &Table, key: u64) -> Option<&Known> {
    t.known.get((key % KNOWN as u64) as usize)
}

/// Async-signal-safe: what an earlier audit of this process family found for the
/// leak layout `key` (fd numbers, their generations, the auditing process: see
/// audit.rs): the finding's identity and the listening sockets among the leaked
/// fds. Loads only; a layout being rewritten reads as unknown.
#[link_section = ".text.hot.execguard"]
pub fn known(key: u64) -> Option<(u64, u32)> {
    let k = known_slot(table()?, key)?;
    if k.key.load(Ordering::Acquire) != key {
        return None;
    }
    let (id, listeners) = (k.id.load(Ordering::Relaxed), k.listeners.load(Ordering::Relaxed));
    core::sync::atomic::fence(Ordering::Acquire);
    (k.key.load(Ordering::Relaxed) == key).then_some((id, listeners))
}

/// Async-signal-safe: remember what the audit of layout `key` found (making the
/// table where `occur` would). Another writer on the same entry wins; nothing waits.
#[link_section = ".text.hot.execguard"]
pub fn learn(key: u64, id: u64, listeners: u32) {
    let Some(k) = prepared().and_then(|t| known_slot(t, key)) else { return };
    let cur = k.key.load(Ordering::Relaxed);
    if cur == key || cur == BUSY || k.key.compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return;
    }
    k.id.store(id, Ordering::Relaxed);
    k.listeners.store(listeners, Ordering::Relaxed);
    k.key.store(key, Ordering::Release);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn identity_parts_are_length_prefixed_and_ordered() {
        let s = seed("exec_fd_leak", Severity::Warn, false);
        assert_ne!(mix(mix(s, b"ab"), b"c"), mix(mix(s, b"a"), b"bc"));
        assert_ne!(mix(mix(s, b"a"), b"b"), mix(mix(s, b"b"), b"a"));
        assert_eq!(mix(mix(s, b"a"), b"b"), mix(mix(s, b"a"), b"b"));
        assert_ne!(s, seed("exec_fd_leak", Severity::Warn, true));
        assert_ne!(s, seed("exec_sigmask", Severity::Warn, false));
        assert_ne!(finish(s, 7), finish(s, 8));
        assert_ne!(finish(s, 7), 0);
    }

    /// Two helpers find the owner gone: the one whose compare-exchange lands first
    /// owns the table and it is no longer gone; the other, judging from the same
    /// word, fails, and from the new word sees a live owner.
    #[test]
    fn a_gone_owner_is_taken_over_once() {
        let (maker, a, b) = (100, 200, 300);
        let live = |p: i32| p == a || p == b;
        let state = AtomicU64::new(GONE);
        let w = state.load(Ordering::SeqCst);
        let (na, nb) = (takeover(w, maker, a, live).unwrap(), takeover(w, maker, b, live).unwrap());
        assert!(state.compare_exchange(w, na, Ordering::SeqCst, Ordering::SeqCst).is_ok());
        assert!(state.compare_exchange(w, nb, Ordering::SeqCst, Ordering::SeqCst).is_err());
        let now = state.load(Ordering::SeqCst);
        assert_eq!((now as u32 as i32, now & GONE), (a, 0));
        assert_eq!(takeover(now, maker, b, live), None, "a live owner that is not gone");
        // A dead maker (the low half 0) is taken over without "gone".
        assert_eq!(takeover(0, maker, b, live), Some(b as u64));
        assert_eq!(takeover(a as u64, maker, b, |_| true), None);
    }

    #[test]
    fn no_identity_reads_as_a_free_slot_or_a_claim() {
        for z in [0, BUSY, CLAIMING, CLAIMING | 4242, u64::MAX - 1] {
            let k = settle(z);
            assert!(k != 0 && claiming(k).is_none(), "{z:#x} -> {k:#x}");
        }
        assert_eq!(settle(0x1234_5678_9abc_def0), 0x1234_5678_9abc_def0);
        assert_eq!(claiming(CLAIMING | 4242), Some(4242));
        assert_eq!(claiming(0x7fff_ffff_0000_0001), None);
    }

    /// A claimer that is slow to publish (descheduled: a busy machine, qemu-user) is
    /// waited for while it lives; one that is gone is not.
    #[test]
    fn a_claim_is_waited_for_while_its_claimer_lives() {
        // SAFETY: all-zero atomics are valid.
        let m: &'static Meta = Box::leak(Box::new(unsafe { core::mem::zeroed::<Meta>() }));
        m.key.store(CLAIMING | sys::getpid() as u32 as u64, Ordering::Release);
        let publisher = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            m.key.store(0x0123_4567_89ab_cdef, Ordering::Release);
        });
        assert_eq!(wait_claimed(m), 0x0123_4567_89ab_cdef, "the key, not the mark");
        publisher.join().unwrap();
        // A claimer that died between its mark and its key: the mark comes back (the
        // finding takes another slot).
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mark = CLAIMING | dead as u64;
        m.key.store(mark, Ordering::Release);
        assert_eq!(wait_claimed(m), mark);
        assert_eq!(m.key.load(Ordering::Acquire), CLAIMING, "abandoned at once");
        assert_eq!(wait_claimed(m), CLAIMING, "and never waited for again");
        // A claimer that lives and never publishes (stopped): waited for once, up to
        // the bound, then the slot is marked abandoned and nobody waits again.
        let mark = CLAIMING | sys::getpid() as u32 as u64;
        m.key.store(mark, Ordering::Release);
        assert_eq!(wait_claimed(m), mark);
        assert_eq!(m.key.load(Ordering::Acquire), CLAIMING, "abandoned");
        assert_eq!(claiming(CLAIMING), Some(0));
        assert!(!alive(0));
    }

    #[test]
    fn fd_identity_is_number_and_open_file() {
        let a = sys::FileId { mode: libc::S_IFREG | 0o644, dev: 3, ino: 42 };
        let b = sys::FileId { ino: 43, ..a };
        let c = sys::FileId { mode: libc::S_IFREG | 0o600, ..a };
        let h = seed("exec_fd_leak", Severity::Warn, false);
        assert_ne!(mix_fd(h, 5, Some(a)), mix_fd(h, 6, Some(a)));
        assert_ne!(mix_fd(h, 5, Some(a)), mix_fd(h, 5, Some(b)));
        // Permission bits are not identity: the same open file.
        assert_eq!(mix_fd(h, 5, Some(a)), mix_fd(h, 5, Some(c)));
        assert_ne!(mix_fd(h, 5, Some(a)), mix_fd(h, 5, None));
    }

    /// The word-wise reading is the byte-wise definition (a finding's hex must not
    /// change between releases: baselines and `--since` compare them).
    #[test]
    fn mix_reads_words_as_the_bytewise_definition() {
        fn bytewise(mut h: u64, part: &[u8]) -> u64 {
            h = mix_int(h, part.len() as u64);
            for chunk in part.chunks(8) {
                let mut w = 0u64;
                for (i, &b) in chunk.iter().enumerate() {
                    w |= (b as u64) << (8 * i);
                }
                h = mix_int(h, w);
            }
            h
        }
        let bytes: [u8; 41] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(1));
        for n in 0..=bytes.len() {
            let part = bytes.get(..n).unwrap();
            assert_eq!(mix(FNV_OFFSET, part), bytewise(FNV_OFFSET, part), "{n} bytes");
        }
    }

    fn pending(id: u64) -> u64 {
        let t = table().unwrap();
        t.meta.iter().filter(|m| m.key.load(Ordering::Relaxed) == id).map(|m| m.pending.load(Ordering::Relaxed)).sum()
    }

    /// One test: the table is one per process, and the steps depend on each other.
    #[test]
    fn table_folds_counts_across_fork_and_overflows_in_full() {
        let me = sys::getpid();
        // The library's constructor runs in this test binary too, and its start
        // audit may have made the table already.
        if table().is_none() {
            note_pid(me + 1);
            // Not this image's pid (a vfork or raw-fork child): no table is made.
            assert_eq!(occur(finish(1, 1), "x", Severity::Warn, false), Verdict::Untracked);
            assert!(table().is_none());
        }
        note_pid(me);
        let id = finish(seed("exec_fd_leak", Severity::Warn, false), 9);
        let first = occur(id, "exec_fd_leak", Severity::Warn, false);
        assert!(matches!(first, Verdict::First(_)), "{first:?}");
        if let Verdict::First(slot) = first {
            // The body as the human form has it (unit tests log to stderr).
            keep_body(slot, b" /bin/true inherits fds=[fd 3 (file /dev/null)] (unit test)", id);
            assert_eq!(table().unwrap().meta[slot].ready.load(Ordering::Relaxed), 1);
        }
        for _ in 0..5 {
            assert_eq!(occur(id, "exec_fd_leak", Severity::Warn, false), Verdict::Repeat);
        }
        assert_eq!(pending(id), 5);
        // A fork child counts into the parent's finding (shared mapping, atomics).
        // SAFETY: the child only does atomics and raw syscalls, then _exit.
        let child = unsafe { libc::fork() };
        if child == 0 {
            for _ in 0..7 {
                occur(id, "exec_fd_leak", Severity::Warn, false);
            }
            // SAFETY: leaving the child without running the harness's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(child, &mut st, 0) }, child);
        assert_eq!(pending(id), 12);
        // Fill the table: what does not fit is written in full, and counted.
        let used = table().unwrap().meta.iter().filter(|m| m.key.load(Ordering::Relaxed) != 0).count() as u64;
        let mut untracked = 0;
        for k in 0..(SLOTS as u64 + 3) {
            if occur(finish(k, 77), "y", Severity::Info, false) == Verdict::Untracked {
                untracked += 1;
            }
        }
        assert_eq!(untracked, 3 + used, "64 slots, {used} of them used before");
        assert!(table().unwrap().untracked.load(Ordering::Relaxed) >= untracked);
        // Still counted where it was.
        assert_eq!(occur(id, "exec_fd_leak", Severity::Warn, false), Verdict::Repeat);
        assert_eq!(pending(id), 13);
        // The flush (owner: this process) takes every pending count, and writes one
        // line for it on stderr: "… (unit test) (repeated 12×)".
        flush(table().unwrap());
        assert_eq!(pending(id), 0);
    }
}
