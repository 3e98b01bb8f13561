//! `connect_storm`: which connections ended without an answer, per peer, and when a
//! peer's fruitless connections make a storm. The hooks (src/hooks/conn.rs) keep one
//! word per fd (set at connect, cleared by the first read that brings data) and call
//! in here only for fds that never received anything. Small room: fixed tables of
//! atomics, no lock, no allocation; the only system calls are at close of such an fd.

use super::emit::{Event, Severity};
use super::line::Buf;
use super::{classify, maps, sys, tls};
use crate::config;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// fds at or above this are not followed (counted in `DROPPED`): the table is fixed.
pub const MAX_FD: usize = super::arena::MAX_FD;

/// Per-fd word: flags in the low byte, the peer's key above.
pub const F_INET: u64 = 1;
pub const F_UNIX: u64 = 2;
/// Connected (or connecting) and nothing received yet.
pub const F_TRACKED: u64 = 4;
/// A read saw end of file / a reset before any byte.
pub const F_EOF: u64 = 8;
pub const F_RESET: u64 = 16;
/// The program shut its side down before the peer ended anything: whatever follows
/// is the program's own goodbye.
pub const F_SHUT: u64 = 32;
/// Not storm state: the fd was inherited at start and is still the one inherited
/// (src/postfork/startfds.rs). It routes a close of the number, or a new fd landing
/// on it, into `forget`, which tells the start record.
pub const F_START: u64 = 64;
const FAMILY: u64 = F_INET | F_UNIX;

/// Some word of the table (arena.rs, `storm`) was ever set (a stream socket made,
/// an inherited fd marked): until then every word is 0, and no hook reads the table
/// (each of its pages read is a zero-page fault, and every process closes or reads
/// something). Set only once the tables are made: where it is set, the close and
/// read trampolines (hooks/conn.rs) find them. A byte on the hot data page; written
/// once, never in a fork child that makes no socket.
#[link_section = ".data.execguard_hot"]
pub(crate) static USED: AtomicBool = AtomicBool::new(false);

/// Async-signal-safe: the words, once one was set.
#[inline(always)]
fn words() -> Option<&'static [AtomicU64; MAX_FD]> {
    if !USED.load(Relaxed) {
        return None;
    }
    super::arena::get().map(|a| &a.storm)
}

/// Async-signal-safe: `fd`'s word, which is about to be set (the tables made first).
#[inline(never)]
#[link_section = ".text.warm.execguard"]
fn word_to_set(fd: i32) -> Option<&'static AtomicU64> {
    if fd as u32 as usize >= MAX_FD {
        return None;
    }
    let w = super::arena::make()?.storm.get(fd as usize)?;
    if !USED.load(Relaxed) {
        USED.store(true, Relaxed);
    }
    Some(w)
}

/// Async-signal-safe: `fd`'s word, if any was ever set.
#[inline(always)]
fn word_of(fd: i32) -> Option<&'static AtomicU64> {
    words()?.get(fd as usize)
}

/// Async-signal-safe: the code address that connected `fd` (0: none kept).
#[inline]
fn caller_of(fd: i32) -> Option<&'static AtomicUsize> {
    super::arena::get()?.callers.get(fd as usize)
}

/// fds past the table, peers that found no slot: followed by nobody, but counted.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The process whose tables these are; a vfork child (same memory, other pid) never
/// counts into them (see `owner_ok`).
static OWNER: AtomicI32 = AtomicI32::new(0);

/// How a fruitless connection ended; index 0 is end of file, the rest are errnos.
pub const OUTCOMES: [i32; 9] = [
    0,
    libc::ECONNRESET,
    libc::ECONNREFUSED,
    libc::ETIMEDOUT,
    libc::EHOSTUNREACH,
    libc::ENETUNREACH,
    libc::ECONNABORTED,
    libc::ENOENT,
    libc::EAGAIN,
];
const EOF: usize = 0;
const RESET: usize = 1;
const REFUSED: usize = 2;

/// Async-signal-safe: the outcome index of a failed connect's errno, if that errno
/// means the peer did not take the connection (not a bad argument of ours).
pub fn outcome_of(err: i32) -> Option<usize> {
    OUTCOMES.iter().skip(1).position(|&e| e == err).map(|i| i + 1)
}

/// Async-signal-safe: a connect that failed with `err` got past reading its address
/// (the only failures `connected` looks at).
pub fn address_taken(err: i32) -> bool {
    err == libc::EINPROGRESS || err == libc::EINTR || outcome_of(err).is_some()
}

/// Async-signal-safe: the fd's word (0: nothing to do).
#[inline(always)]
pub fn word(fd: i32) -> u64 {
    match word_of(fd) {
        Some(w) => w.load(Relaxed),
        None => 0,
    }
}

/// Async-signal-safe: a new fd under this number (socket, accept, open, dup…), or
/// this one being closed: what the table says about an earlier fd of that number
/// (closed behind our back, by fclose or closefrom) is stale. Not in a vfork child:
/// it shares the table but not the fds, so its close or dup2 of an inherited
/// connection leaves the parent's open and followed (one getpid, only for a set word).
/// An fd inherited at start (F_START) is told to the start record, which tags it
/// with the pid (a vfork child's tag is not its parent's; see startfds.rs).
#[inline]
#[link_section = ".text.warm.execguard"]
pub fn forget(fd: i32) {
    // A small start record keeps its numbers out of these words (startfds::BY_MASK).
    if super::startfds::by_mask() && super::startfds::marked(fd) && super::startfds::changed(fd) {
        super::startfds::retire(fd);
    }
    if let Some(w) = word_of(fd) {
        let old = w.load(Relaxed);
        if old == 0 {
            return;
        }
        let mut keep = old & F_START;
        if keep != 0 && super::startfds::changed(fd) {
            keep = 0;
        }
        if old & !F_START != 0 && (OWNER.load(Relaxed) == 0 || owner_ok()) {
            w.store(keep, Relaxed);
        } else if keep == 0 && old & F_START != 0 {
            w.fetch_and(!F_START, Relaxed);
        }
    }
}

/// Constructor only: `fd` was inherited (startfds::record).
pub fn mark_start(fd: i32) {
    if let Some(w) = word_to_set(fd) {
        w.fetch_or(F_START, Relaxed);
    }
}

/// Async-signal-safe: socket() made a stream socket that connect may then track.
#[inline]
pub fn made(fd: i32, domain: i32, ty: i32, proto: i32) {
    if ty & 0xf != libc::SOCK_STREAM || !(proto == 0 || proto == libc::IPPROTO_TCP) {
        return;
    }
    let flag = match domain {
        libc::AF_INET | libc::AF_INET6 => F_INET,
        libc::AF_UNIX => F_UNIX,
        _ => return,
    };
    match word_to_set(fd) {
        // A vfork child's socket keeps its parent's start bit (forget left it).
        Some(w) => w.store(flag | (w.load(Relaxed) & F_START), Relaxed),
        None => {
            DROPPED.fetch_add(1, Relaxed);
        }
    }
}

/// Async-signal-safe: after a read-like call on a tracked fd returned `r`.
#[inline]
pub fn after_read(fd: i32, r: isize) {
    let Some(w) = word_of(fd) else { return };
    if r > 0 {
        // Data came: this connection was answered, whatever happens next.
        w.store(0, Relaxed);
    } else if r == 0 {
        w.fetch_or(F_EOF, Relaxed);
    } else if sys::errno() == libc::ECONNRESET {
        w.fetch_or(F_RESET, Relaxed);
    }
}

/// Async-signal-safe: `shutdown` with a write side on a tracked fd.
#[inline]
pub fn shut(fd: i32) {
    if let Some(w) = word_of(fd) {
        if w.load(Relaxed) & (F_EOF | F_RESET) == 0 {
            w.fetch_or(F_SHUT, Relaxed);
        }
    }
}

/// 56-bit key of a peer address (never 0); None for what is not a peer we follow.
fn key_of(sa: &[u8]) -> Option<u64> {
    let fam = u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]) as i32;
    let body = match fam {
        libc::AF_INET => sa.get(2..8)?,
        libc::AF_INET6 => sa.get(2..24)?,
        libc::AF_UNIX if sa.len() > 2 => sa.get(2..)?,
        _ => return None,
    };
    // FNV-1a: small, no table, good enough to tell a handful of peers apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ fam as u64;
    for &b in body {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Some((h >> 8) | 1)
}

const SLOTS: usize = 64;
const PROBE: usize = 8;
const ADDR_WORDS: usize = 14;

/// One peer: its address (for the event) and the current window's counts.
struct Peer {
    key: AtomicU64,
    addr: [AtomicU64; ADDR_WORDS],
    len: AtomicU32,
    /// 0: no storm; 1: started in the current window (reported at once); 2: going on.
    storming: AtomicU32,
    n: AtomicU32,
    outcomes: [AtomicU32; OUTCOMES.len()],
    win_start: AtomicI64,
    last: AtomicI64,
    caller: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const PEER: Peer = Peer {
    key: AtomicU64::new(0),
    addr: [const { AtomicU64::new(0) }; ADDR_WORDS],
    len: AtomicU32::new(0),
    storming: AtomicU32::new(0),
    n: AtomicU32::new(0),
    outcomes: [const { AtomicU32::new(0) }; OUTCOMES.len()],
    win_start: AtomicI64::new(0),
    last: AtomicI64::new(0),
    caller: AtomicUsize::new(0),
};
static PEERS: [Peer; SLOTS] = [PEER; SLOTS];

fn probe(key: u64) -> impl Iterator<Item = &'static Peer> {
    let start = (key ^ (key >> 17)) as usize;
    (0..PROBE).filter_map(move |i| PEERS.get((start + i) % SLOTS))
}

fn find(key: u64) -> Option<&'static Peer> {
    probe(key).find(|p| p.key.load(Relaxed) == key)
}

/// Async-signal-safe: `connect` on a stream socket this table knows returned `r`
/// (`err` its errno). Success and a connect under way are tracked until the first
/// data; a refusal counts at once.
#[inline]
pub fn connected(fd: i32, sa: &[u8], r: i32, err: i32, caller: usize) {
    let Some(w) = word_of(fd) else { return };
    let fam = w.load(Relaxed) & FAMILY;
    if fam == 0 {
        return;
    }
    let Some(key) = key_of(sa) else { return };
    if r == 0 || err == libc::EINPROGRESS || err == libc::EINTR {
        if find(key).is_none() && !insert(key, sa) {
            DROPPED.fetch_add(1, Relaxed);
            return;
        }
        w.store((key << 8) | fam | F_TRACKED, Relaxed);
        if let Some(c) = caller_of(fd) {
            c.store(caller, Relaxed);
        }
    } else if let Some(o) = outcome_of(err) {
        // Counted here, so no longer followed: a connect under way whose failure the
        // program takes by calling connect again would count a second time at close.
        w.store(fam, Relaxed);
        if find(key).is_some() || insert(key, sa) {
            fruitless(key, o, caller);
        }
    }
}

/// A slot for a new peer: a free one, or one whose peer has had no fruitless
/// connection for two windows (it cannot be in a storm). None free: dropped.
#[cold]
fn insert(key: u64, sa: &[u8]) -> bool {
    let _e = sys::ErrnoGuard::new();
    if OWNER.load(Relaxed) == 0 {
        let _ = OWNER.compare_exchange(0, sys::getpid(), Relaxed, Relaxed);
    }
    let stale_before = sys::mono_ms() - 2 * window_ms();
    for p in probe(key) {
        let k = p.key.load(Relaxed);
        let free = k == 0 || (p.last.load(Relaxed) < stale_before && p.storming.load(Relaxed) == 0);
        if free && p.key.compare_exchange(k, key, Relaxed, Relaxed).is_ok() {
            let mut bytes = [0u8; ADDR_WORDS * 8];
            let n = sa.len().min(bytes.len());
            if let (Some(d), Some(s)) = (bytes.get_mut(..n), sa.get(..n)) {
                d.copy_from_slice(s);
            }
            for (w, chunk) in p.addr.iter().zip(bytes.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                w.store(u64::from_ne_bytes(b), Relaxed);
            }
            p.len.store(n as u32, Relaxed);
            p.n.store(0, Relaxed);
            p.storming.store(0, Relaxed);
            p.last.store(0, Relaxed);
            p.win_start.store(0, Relaxed);
            for o in &p.outcomes {
                o.store(0, Relaxed);
            }
            return true;
        }
    }
    false
}

/// Async-signal-safe: the tracked fd `fd` (word `w`) is being closed and never
/// received a byte. Reads the socket's state (the only system calls of this
/// module) to say whether the peer ended it.
#[cold]
#[inline(never)]
pub fn closing(fd: i32, w: u64) {
    let _e = sys::ErrnoGuard::new();
    let outcome = if w & F_INET != 0 { tcp_outcome(fd, w) } else { unix_outcome(fd, w) };
    if let Some(o) = outcome {
        let caller = caller_of(fd).map(|c| c.load(Relaxed)).unwrap_or(0);
        fruitless(w >> 8, o, caller);
    }
}

/// Linux `tcp_states`.
const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;

/// What `TCP_INFO` says about a connection being closed, as a pure function:
/// `received` is `tcpi_bytes_received` (kernel ≥ 4.1), `segs_in` `tcpi_segs_in`
/// (≥ 4.2), `so_error` the pending error.
pub fn tcp_verdict(state: u8, received: Option<u64>, segs_in: Option<u32>, so_error: i32, flags: u64) -> Option<usize> {
    // The peer's FIN takes one number of the sequence space, and the kernel's byte
    // count is made of sequence numbers.
    if flags & F_SHUT != 0 {
        return None;
    }
    let fin = matches!(state, TCP_CLOSE_WAIT | TCP_LAST_ACK) || (state == TCP_CLOSE && flags & F_EOF != 0);
    if received.is_some_and(|b| b > fin as u64) {
        // Data came by a read path we do not see (or was never read): answered.
        return None;
    }
    match state {
        // The peer closed first and sent nothing.
        TCP_CLOSE_WAIT | TCP_LAST_ACK => Some(EOF),
        TCP_CLOSE => match so_error {
            0 if flags & F_RESET != 0 => Some(RESET),
            0 if flags & F_EOF != 0 => Some(EOF),
            // The program took the error itself (getsockopt, a read): a connection
            // that never got past the SYN (one segment in: the RST) was refused.
            0 => Some(if segs_in.is_some_and(|s| s <= 1) { REFUSED } else { RESET }),
            e => outcome_of(e),
        },
        // Established, or we closed first (FIN_WAIT, TIME_WAIT, CLOSING), or still
        // connecting: the program ended it, not the peer.
        _ => None,
    }
}

fn tcp_outcome(fd: i32, w: u64) -> Option<usize> {
    let mut info = [0u8; 232];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: info/len are valid out-pointers; the kernel writes at most len bytes.
    let r = unsafe {
        sys::syscall!(libc::SYS_getsockopt, fd, libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr(), &mut len as *mut libc::socklen_t)
    };
    if r != 0 {
        // Not TCP after all (a stale entry): nothing to say.
        return None;
    }
    let len = len as usize;
    let state = *info.first()?;
    let u64_at = |off: usize| info.get(off..off + 8).filter(|_| len >= off + 8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_ne_bytes(a)
    });
    let u32_at = |off: usize| info.get(off..off + 4).filter(|_| len >= off + 4).map(|b| {
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        u32::from_ne_bytes(a)
    });
    let so_error = if state == TCP_CLOSE { sys::sockopt_int(fd, libc::SO_ERROR).unwrap_or(0) } else { 0 };
    tcp_verdict(state, u64_at(128), u32_at(140), so_error, w)
}

fn unix_outcome(fd: i32, w: u64) -> Option<usize> {
    if w & F_SHUT != 0 {
        return None;
    }
    if w & F_RESET != 0 {
        return Some(RESET);
    }
    if w & F_EOF != 0 {
        return Some(EOF);
    }
    let mut b = [0u8; 1];
    // SAFETY: one byte of valid buffer; a peek changes nothing the host could see.
    let r = unsafe {
        sys::syscall!(libc::SYS_recvfrom, fd, b.as_mut_ptr(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT, 0, 0)
    };
    match r {
        0 => Some(EOF),
        r if r == -(libc::ECONNRESET as libc::c_long) => Some(RESET),
        // Data waiting (answered), the peer still there, or never connected.
        _ => None,
    }
}

/// Async-signal-safe: this process owns the tables. A fork child (the fork hook
/// marked it) takes them over; a vfork child shares its parent's memory and leaves
/// them alone.
fn owner_ok() -> bool {
    let me = sys::getpid();
    match OWNER.load(Relaxed) {
        o if o == me => true,
        0 => OWNER.compare_exchange(0, me, Relaxed, Relaxed).is_ok(),
        o if tls::fork_child() == me => OWNER.compare_exchange(o, me, Relaxed, Relaxed).is_ok(),
        _ => false,
    }
}

fn window_ms() -> i64 {
    config::get().map(|c| c.storm_ms).unwrap_or(1000)
}

/// Async-signal-safe: one fruitless connection to peer `key`.
fn fruitless(key: u64, o: usize, caller: usize) {
    if !owner_ok() {
        return;
    }
    let Some(p) = find(key) else {
        DROPPED.fetch_add(1, Relaxed);
        return;
    };
    let Some(cfg) = config::get() else { return };
    let (need, win) = (cfg.storm_n.max(1), cfg.storm_ms.max(1));
    let now = sys::mono_ms();
    let ws = p.win_start.load(Relaxed);
    if now - ws >= win && p.win_start.compare_exchange(ws, now, Relaxed, Relaxed).is_ok() {
        // This thread closes the window: the storm goes on, or it has ended.
        let prev = p.n.swap(0, Relaxed);
        let mut counts = [0u32; OUTCOMES.len()];
        for (c, a) in counts.iter_mut().zip(p.outcomes.iter()) {
            *c = a.swap(0, Relaxed);
        }
        let state = p.storming.load(Relaxed);
        // A window that ended long ago is not reported now: the storm is over, and
        // a line stamped with a later time would say it went on.
        let next = if state != 0 && prev >= need && now - ws < 2 * win {
            if state == 2 {
                report(p, prev, &counts, win);
            }
            2
        } else {
            0
        };
        p.storming.store(next, Relaxed);
    }
    let n = p.n.fetch_add(1, Relaxed) + 1;
    if let Some(c) = p.outcomes.get(o) {
        c.fetch_add(1, Relaxed);
    }
    p.last.store(now, Relaxed);
    if caller != 0 {
        p.caller.store(caller, Relaxed);
    }
    if n >= need && p.storming.compare_exchange(0, 1, Relaxed, Relaxed).is_ok() {
        let mut counts = [0u32; OUTCOMES.len()];
        for (c, a) in counts.iter_mut().zip(p.outcomes.iter()) {
            *c = a.load(Relaxed);
        }
        report(p, n, &counts, win);
    }
}

/// Async-signal-safe: write the event for peer `p`.
#[cold]
fn report(p: &Peer, connects: u32, counts: &[u32; OUTCOMES.len()], win_ms: i64) {
    let Some(_inside) = tls::enter() else { return };
    let _e = sys::ErrnoGuard::new();
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    let mut bytes = [0u8; ADDR_WORDS * 8];
    for (chunk, w) in bytes.chunks_exact_mut(8).zip(p.addr.iter()) {
        chunk.copy_from_slice(&w.load(Relaxed).to_ne_bytes());
    }
    let len = (p.len.load(Relaxed) as usize).min(bytes.len());
    // SAFETY: sockaddr_storage (128 bytes) holds the 112 copied; both are plain bytes.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), &mut ss as *mut _ as *mut u8, bytes.len()) };
    let mut peer = Buf::<160>::new();
    classify::addr(&ss, len, &mut peer);
    let mut site = Buf::<600>::new();
    let have_site = maps::module_offset(p.caller.load(Relaxed), &mut site);

    let mut ev = Event::start("connect_storm", Severity::Warn, false);
    ev.ident(peer.as_bytes());
    ev.str("peer", peer.as_bytes());
    ev.int("connects", connects as i64);
    ev.secs("window_s", win_ms);
    let mut pairs = [(0i32, 0u64); OUTCOMES.len()];
    for ((pair, &e), &c) in pairs.iter_mut().zip(OUTCOMES.iter()).zip(counts.iter()) {
        *pair = (e, c as u64);
    }
    ev.errno_counts("outcomes", &pairs);
    if have_site {
        ev.ident(site.as_bytes());
        ev.str("caller", site.as_bytes());
    }
    let dropped = DROPPED.load(Relaxed);
    if dropped > 0 {
        ev.int("dropped", dropped as i64);
    }
    ev.emit();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        // The write-up: the upstream read the request and closed; nothing came back.
        assert_eq!(tcp_verdict(TCP_CLOSE_WAIT, Some(1), Some(3), 0, F_TRACKED), Some(EOF));
        // An answer came (read by a path we do not hook): never fruitless.
        assert_eq!(tcp_verdict(TCP_CLOSE_WAIT, Some(2), Some(3), 0, F_TRACKED), None);
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(1), Some(3), 0, F_TRACKED), None);
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(1), Some(3), 0, F_TRACKED | F_EOF), Some(EOF));
        // Our FIN first, then the peer's: the kernel has moved the socket to CLOSE.
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(1), Some(3), 0, F_TRACKED | F_SHUT | F_EOF), None);
        // One-way protocol: the program closes while the peer is still there.
        assert_eq!(tcp_verdict(1, Some(0), Some(2), 0, F_TRACKED), None);
        // We closed first (TIME_WAIT after shutdown and the peer's FIN).
        assert_eq!(tcp_verdict(6, Some(0), Some(3), 0, F_EOF), None);
        // Non-blocking connect refused, error still pending / already taken.
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(0), Some(1), libc::ECONNREFUSED, F_TRACKED), Some(REFUSED));
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(0), Some(1), 0, F_TRACKED), Some(REFUSED));
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(0), Some(3), 0, F_TRACKED), Some(RESET));
        assert_eq!(tcp_verdict(TCP_CLOSE, Some(0), None, 0, F_TRACKED | F_RESET), Some(RESET));
        // Old kernel: no byte count, the read hooks' word decides.
        assert_eq!(tcp_verdict(TCP_CLOSE_WAIT, None, None, 0, F_TRACKED), Some(EOF));
    }

    #[test]
    fn connect_errors() {
        assert_eq!(outcome_of(libc::ECONNREFUSED), Some(REFUSED));
        assert_eq!(outcome_of(libc::EINPROGRESS), None);
        assert_eq!(outcome_of(libc::EBADF), None);
        assert_eq!(outcome_of(0), None);
        assert!(address_taken(libc::EINPROGRESS) && address_taken(libc::EINTR) && address_taken(libc::ENOENT));
        assert!(!address_taken(libc::EFAULT) && !address_taken(libc::EINVAL) && !address_taken(libc::EBADF));
    }

    #[test]
    fn keys() {
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        a[2..4].copy_from_slice(&8080u16.to_be_bytes());
        a[4..8].copy_from_slice(&[127, 0, 0, 1]);
        let k = key_of(&a).unwrap();
        assert!(k != 0 && k < (1 << 56));
        let mut b = a;
        b[3] ^= 1;
        assert_ne!(key_of(&b), Some(k));
        // Padding after the address does not matter.
        b = a;
        b[12] = 9;
        assert_eq!(key_of(&b), Some(k));
        assert_eq!(key_of(&a[..1]), None);
    }
}
