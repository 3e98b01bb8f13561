//! Listing the open fds of this process without allocating. Small room.
//!
//! The ladder: when the fd table has its smallest size (64 slots, which `select`
//! reveals), one `ppoll` over fds 0–64 is the whole list; otherwise `getdents64` on
//! `/proc/self/fd` into a stack buffer (exact, in fd order; a new process's first
//! look at /proc costs some 20 µs); if `/proc` is missing or we are out of fds
//! (EMFILE), probe with `poll`
//! (POLLNVAL marks a closed fd) up to a fixed cap, never up to `RLIMIT_NOFILE`,
//! which may be a million. What lies above the cap is then not seen: less context,
//! never an O(rlimit) loop.

use super::sys;
use core::mem::MaybeUninit;
use libc::c_int;

/// Highest fd the `/proc`-less fallback probes (exclusive).
pub const PROBE_CAP: i32 = 65536;
/// Slots per ppoll when listing a larger table. 128 (1 KiB of pollfds): a 256-slot
/// table (a process holding an fd above 127) takes two calls, and the listing's
/// frame stays within fewer stack pages, each of which a fork child that audits
/// writes (a copy-on-write fault).
const PROBE_BATCH: usize = 128;

pub struct FdIter {
    src: Src,
    from: i32,
    /// Every open fd ≥ `from` is listed (not the capped fallback).
    exact: bool,
}

// The small variant is the common one and must not pay for the others' buffers:
// constructing it writes 8 bytes, where a boxed or shared buffer would need memory
// the small room cannot allocate.
#[allow(clippy::large_enum_variant)]
enum Src {
    /// The fd table has 64 slots: these bits are all the open fds (one ppoll).
    Small(u64),
    Proc(ProcDir),
    Probe(Probe),
}

struct ProcDir {
    dir: c_int,
    /// Bytes below `len` are the kernel's; the rest is never read (not zeroed).
    /// 1 KiB, as the probe's batch: the larger of the two sizes every FdIter.
    buf: [MaybeUninit<u8>; 1024],
    pos: usize,
    len: usize,
}

/// Listing by ppoll: the next fd to probe, and the current batch as the kernel
/// answered it (scanned in place: no second array of the open ones).
///
/// In this order (`repr(C)`): the buffer last, after a field that starts non-zero.
/// Zero stores next to the uninitialised buffer were merged into one memset of it
/// all, a call to libc's memset (a page of its text in a fork child).
#[repr(C)]
struct Probe {
    next: i32,
    limit: i32,
    /// ppoll takes at most RLIMIT_NOFILE (soft) entries per call.
    batch_max: usize,
    /// Open fds below `next` the first look found, listed before the batches.
    low: u64,
    /// ppoll refused this batch: one fcntl per fd instead.
    refused: bool,
    batch_len: usize,
    /// Past `batch_len` (starts at 1): the next call refills.
    batch_pos: usize,
    /// Written below `batch_len` only: not zeroed.
    batch: [MaybeUninit<libc::pollfd>; PROBE_BATCH],
}

/// The first look at the fd table: which of fds 0–63 are open and whether fd 64 is
/// (one ppoll; None if ppoll refuses). An audit takes it once and hands it to what
/// lists the fds after it.
#[derive(Clone, Copy)]
pub struct Low {
    first: Option<(u64, bool)>,
    /// `table_bound`'s answer, once `none_above_stdio` asked it (None: not asked).
    bound: Option<Option<i32>>,
}

impl Low {
    /// Async-signal-safe: the same look, with the table's size an earlier listing
    /// from it found (`FdIter::bound`; None: as it was).
    #[inline]
    pub fn bounded(self, limit: Option<i32>) -> Low {
        match limit {
            Some(l) => Low { bound: Some(Some(l)), ..self },
            None => self,
        }
    }

    /// Async-signal-safe: one ppoll.
    #[link_section = ".text.startup.execguard"]
    pub fn read() -> Low {
        Low { first: poll_low(), bound: None }
    }

    /// Async-signal-safe: true when no fd ≥ 3 is open (see `none_above_stdio`).
    #[link_section = ".text.startup.execguard"]
    pub fn none_above_stdio(&mut self) -> bool {
        let Some((open, fd64)) = self.first else {
            // A soft RLIMIT_NOFILE below 65 (EINVAL): ask /proc.
            return none_above_stdio_proc();
        };
        if open >> 3 != 0 || fd64 {
            return false;
        }
        let Some(bound) = larger_table_bound() else { return true };
        // A table that grew past 64 slots, nothing open in 3–64: a high fd (a
        // caller's pipe at 251), or one that was closed again. Up to 256 slots the
        // listing answers for two ppolls; /proc would cost a new process (a fork
        // child, a new program) some 12 µs at its first look.
        // The listing after it reuses the bound.
        self.bound = Some(bound);
        if bound.is_some_and(|b| b <= 2 * PROBE_BATCH as i32) {
            return false;
        }
        none_above_stdio_proc()
    }
}

impl FdIter {
    /// Async-signal-safe: fds >= `from`, in increasing order.
    #[link_section = ".text.hot.execguard"]
    pub fn new(from: i32) -> Self {
        Self::after(from, Low::read())
    }

    /// Async-signal-safe: as `new`, from a first look the caller already took (the
    /// fds may not have changed since, other than by other threads, as ever).
    #[link_section = ".text.hot.execguard"]
    pub fn after(from: i32, low: Low) -> Self {
        // Most processes have a small table: then one ppoll lists everything, where
        // /proc/self/fd would cost a new process about 20 µs (see small_table_fds).
        let mut bound = low.bound;
        let low = low.first;
        let below = if from <= 0 { 0 } else if from >= 64 { u64::MAX } else { (1u64 << from) - 1 };
        if let Some((open, false)) = low {
            // A bound already found means the table is not the small one.
            if bound.is_none() {
                match larger_table_bound() {
                    None => return FdIter { src: Src::Small(open & !below), from, exact: true },
                    Some(b) => bound = Some(b),
                }
            }
        }
        // A larger table, up to POLL_LIST_MAX slots: ppoll in batches from fd 64 on
        // (the first look has the ones below). Listing /proc/self/fd makes the kernel
        // build an entry per open fd (some 2.5 µs each here), ppoll costs
        // nanoseconds per slot.
        if let Some((open, _)) = low {
            if let Some(limit) = bound.unwrap_or_else(|| table_bound_from(crate::postfork::startfds::highest_held())) {
                let mut probe = Probe::new(from.max(SMALL_TABLE), limit);
                probe.low = open & !below;
                return FdIter { src: Src::Probe(probe), from, exact: true };
            }
        }
        let dir = sys::open(b"/proc/self/fd\0", libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0).unwrap_or(-1);
        if dir >= 0 {
            // `pos` past `len` (empty) asks for the first batch. Not 0: two zero
            // stores beside the uninitialised buffer were merged into one memset of
            // the whole buffer, a call to libc's memset (a page of its text in a
            // fork child).
            // Not vouched for: a getdents64 that fails midway ends the listing.
            return FdIter { src: Src::Proc(ProcDir { dir, buf: [MaybeUninit::uninit(); 1024], pos: 1, len: 0 }), from, exact: false };
        }
        let (limit, soft) = probe_limit();
        let mut probe = Probe::new(from, limit);
        probe.batch_max = soft.clamp(1, PROBE_BATCH as u64) as usize;
        FdIter { src: Src::Probe(probe), from, exact: false }
    }
}

impl FdIter {
    /// Async-signal-safe: the table's size this listing went by, for another listing
    /// from the same first look (`Low::bounded`), which then asks the kernel nothing
    /// more about it (a larger table's bound is up to four system calls). None where
    /// it lists /proc or guesses.
    #[inline]
    pub fn bound(&self) -> Option<i32> {
        match &self.src {
            Src::Small(_) => Some(SMALL_TABLE),
            Src::Probe(p) if self.exact => Some(p.limit),
            _ => None,
        }
    }

    /// Async-signal-safe: the listing covers every open fd ≥ `from` (a table of up
    /// to POLL_LIST_MAX slots, listed by ppoll), as far as the process's own threads
    /// leave it alone.
    pub fn exact(&self) -> bool {
        self.exact
    }
}

impl Probe {
    /// Async-signal-safe.
    fn new(from: i32, limit: i32) -> Self {
        Probe { next: from.max(0), limit, batch_max: PROBE_BATCH, low: 0, refused: false, batch_len: 0, batch_pos: 1, batch: [MaybeUninit::uninit(); PROBE_BATCH] }
    }
}

impl ProcDir {
    /// Async-signal-safe.
    #[link_section = ".text.hot.execguard"]
    fn next(&mut self, from: i32) -> Option<i32> {
        loop {
            if self.pos >= self.len {
                self.len = sys::getdents64(self.dir, &mut self.buf).ok()?.min(self.buf.len());
                self.pos = 0;
                if self.len == 0 {
                    return None;
                }
            }
            // SAFETY: the kernel wrote the first `len` bytes (len <= buf.len()).
            let filled: &[u8] = unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) };
            // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
            let rec = filled.get(self.pos..)?;
            let reclen = u16::from_ne_bytes([*rec.get(16)?, *rec.get(17)?]) as usize;
            if reclen == 0 {
                return None;
            }
            let name = rec.get(19..reclen.min(rec.len()))?;
            self.pos += reclen;
            if let Some(fd) = parse_fd(name) {
                if fd >= from && fd != self.dir {
                    return Some(fd);
                }
            }
        }
    }
}

impl Probe {
    /// Async-signal-safe. Out of line: it is not the common (small table) case.
    #[inline(never)]
    #[link_section = ".text.hot.execguard"]
    fn next(&mut self) -> Option<i32> {
        if self.low != 0 {
            let fd = self.low.trailing_zeros() as i32;
            self.low &= self.low - 1;
            return Some(fd);
        }
        loop {
            while self.batch_pos < self.batch_len {
                // SAFETY: entries below batch_len were written by this batch's refill.
                let p = unsafe { self.batch.get(self.batch_pos)?.assume_init() };
                self.batch_pos += 1;
                let open = if self.refused { sys::fcntl(p.fd, libc::F_GETFD, 0).is_ok() } else { p.revents & libc::POLLNVAL == 0 };
                if open {
                    return Some(p.fd);
                }
            }
            if self.next >= self.limit {
                return None;
            }
            let start = self.next;
            let n = ((self.limit - start) as usize).min(self.batch_max).min(PROBE_BATCH);
            for (i, p) in self.batch.iter_mut().take(n).enumerate() {
                p.write(libc::pollfd { fd: start + i as i32, events: 0, revents: 0 });
            }
            self.next = start + n as i32;
            // SAFETY: the first n entries of batch were written above; timeout 0
            // never blocks.
            let r = unsafe {
                crate::postfork::sys::syscall!(libc::SYS_ppoll, self.batch.as_mut_ptr(), n as libc::c_long, &libc::timespec { tv_sec: 0, tv_nsec: 0 } as *const libc::timespec, core::ptr::null::<u8>(), 0 as libc::c_long)
            };
            // ppoll refused (EINVAL past a tiny soft limit): one fcntl per fd.
            self.refused = r < 0;
            self.batch_len = n;
            self.batch_pos = 0;
        }
    }
}

impl Iterator for FdIter {
    type Item = i32;
    /// Async-signal-safe. In the hot block: every exec audit of a process that holds
    /// an fd ≥ 3 (a caller's strays, a leak) walks its fds with it, in a fork child.
    #[link_section = ".text.hot.execguard"]
    fn next(&mut self) -> Option<i32> {
        match &mut self.src {
            Src::Small(bits) => {
                if *bits == 0 {
                    return None;
                }
                let fd = bits.trailing_zeros() as i32;
                *bits &= *bits - 1;
                Some(fd)
            }
            Src::Proc(p) => p.next(self.from),
            Src::Probe(p) => p.next(),
        }
    }
}

impl Drop for FdIter {
    fn drop(&mut self) {
        if let Src::Proc(p) = &self.src {
            sys::close(p.dir);
        }
    }
}

/// Async-signal-safe: (the probing bound, the soft limit). The bound is
/// min(max(soft, hard RLIMIT_NOFILE), PROBE_CAP): fds opened before the soft limit
/// was lowered sit above it.
fn probe_limit() -> (i32, u64) {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is a valid out-pointer; prlimit64 with pid 0 = self.
    let r = unsafe {
        crate::postfork::sys::syscall!(libc::SYS_prlimit64, 0 as libc::c_long, libc::RLIMIT_NOFILE as libc::c_long, core::ptr::null::<u8>(), &mut rl as *mut libc::rlimit)
    };
    if r < 0 {
        return (PROBE_CAP, PROBE_BATCH as u64);
    }
    (rl.rlim_cur.max(rl.rlim_max).min(PROBE_CAP as u64) as i32, rl.rlim_cur)
}

/// Async-signal-safe: true when no fd ≥ 3 is open, known without touching /proc.
///
/// A new process's first access to `/proc/self` builds its procfs entries (12 µs
/// here), more than the rest of the constructor. Instead: one `ppoll` over fds 0–64
/// says which of them are open (POLLNVAL marks a closed one, 2 µs), and one `select`
/// proves nothing lies above 64 — the kernel clamps `nfds` to the size of the fd
/// table, so a set bit for the closed fd 64 draws EBADF only when the table has
/// slots beyond 64. A table of 64 slots (the size every small process has) holds no
/// fd above 63. A larger table answers false up to 256 slots (the caller lists it),
/// and through the /proc method below beyond that.
#[link_section = ".text.startup.execguard"]
pub fn none_above_stdio() -> bool {
    Low::read().none_above_stdio()
}

/// Async-signal-safe: every open fd as a bit mask, when the fd table has only
/// SMALL_TABLE slots (so no fd above 63 can exist); None otherwise.
#[cfg(test)]
fn small_table_fds() -> Option<u64> {
    let (open, fd64) = poll_low()?;
    if fd64 || !table_is_small() {
        return None;
    }
    Some(open)
}

/// Async-signal-safe: which of fds 0–63 are open (bit mask), and whether fd 64 is;
/// one ppoll with no events (POLLNVAL marks a closed fd). None if ppoll refuses.
#[link_section = ".text.startup.execguard"]
fn poll_low() -> Option<(u64, bool)> {
    const N: usize = SMALL_TABLE as usize + 1;
    // Built element by element: a zero-filled array would call libc's memset (one
    // more page of libc in every fork child).
    let mut p: [libc::pollfd; N] = core::array::from_fn(|fd| libc::pollfd { fd: fd as i32, events: 0, revents: 0 });
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: N valid pollfds, zero timeout, no signal mask.
    let r = unsafe { crate::postfork::sys::syscall!(libc::SYS_ppoll, p.as_mut_ptr(), N as libc::c_long, &zero as *const libc::timespec, core::ptr::null::<u8>(), 0 as libc::c_long) };
    if r < 0 {
        return None;
    }
    let mut open = 0u64;
    for (i, q) in p.iter().take(64).enumerate() {
        if q.revents & libc::POLLNVAL == 0 {
            open |= 1u64 << i;
        }
    }
    let fd64 = p.get(64).is_some_and(|q| q.revents & libc::POLLNVAL == 0);
    Some((open, fd64))
}

/// Slots in the smallest fd table the kernel gives a process (NR_OPEN_DEFAULT).
const SMALL_TABLE: i32 = 64;

/// Largest fd table listed with ppoll rather than /proc (16 calls of 256 slots).
const POLL_LIST_MAX: usize = 4096;

/// Async-signal-safe: a bound (a power of two up to POLL_LIST_MAX) that every open
/// fd lies below; None beyond POLL_LIST_MAX. For each candidate P, one `pselect6`
/// on fd P (see `table_has_slot`): EBADF (closed, with a slot) or a ready fd says
/// the table reaches P; only a 0 (no slot, or an open fd that is not ready) costs
/// an fcntl to tell which. The search starts at the first power of two above `hint`
/// (any fd whose slot exists; 0: none known): a bound found from there is no less an
/// upper bound, and a table smaller than the hint only makes the listing longer. A
/// 256-slot table costs three calls from 128, two from a hint of 251.
/// Past SELECT_MAX the size comes from /proc/self/status instead (one read).
#[link_section = ".text.hot.execguard"]
fn table_bound_from(hint: i32) -> Option<i32> {
    let mut p = 2 * SMALL_TABLE;
    while p <= hint && (p as usize) <= POLL_LIST_MAX {
        p *= 2;
    }
    while p as usize <= POLL_LIST_MAX {
        if p > SELECT_MAX {
            return table_size_from_status().filter(|&size| size as usize <= POLL_LIST_MAX);
        }
        if !table_has_slot(p) && sys::fcntl(p, libc::F_GETFD, 0).is_err() {
            return Some(p);
        }
        p *= 2;
    }
    None
}

/// Highest fd `table_has_slot` asks about: FD_SETSIZE - 1. The kernel takes any nfds,
/// but qemu-user (an arm64 container on an x86-64 host, as multi-arch image builds
/// run them) copies the set into a host `fd_set` of FD_SETSIZE bits, and its
/// fortified `FD_SET` kills the process past it ("bit out of range 0 - FD_SETSIZE
/// on fd_set"): an audited exec in a process that had once held an fd above 511 (a
/// table of 1024 slots or more) died there.
const SELECT_MAX: i32 = 1023;

/// Async-signal-safe: the fd table's size, `FDSize:` in /proc/self/status (every
/// open fd lies below it); None when it cannot be read. Out of the start blocks:
/// asked only for a table past SELECT_MAX slots.
#[cold]
#[inline(never)]
fn table_size_from_status() -> Option<i32> {
    let mut buf = [0u8; 768];
    let fd = sys::open(b"/proc/self/status\0", libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let n = sys::read(fd, &mut buf).unwrap_or(0);
    sys::close(fd);
    fd_size_field(buf.get(..n).unwrap_or(&[]))
}

/// Async-signal-safe: the number after `FDSize:` in the text of /proc/PID/status.
fn fd_size_field(status: &[u8]) -> Option<i32> {
    const KEY: &[u8] = b"\nFDSize:";
    let at = status.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = status.get(at + KEY.len()..)?;
    let digits = rest.iter().skip_while(|b| **b == b' ' || **b == b'\t');
    let mut v: i32 = 0;
    let mut any = false;
    for &b in digits.take_while(|b| b.is_ascii_digit()) {
        v = v.checked_mul(10)?.checked_add(i32::from(b - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

/// Async-signal-safe: None for a table of SMALL_TABLE slots (fd 64 must be closed),
/// else `table_bound`'s answer. A number this process started with and, as far as
/// the hooks saw, still holds (a caller's pipe at 251) says the table is larger: the
/// search starts there (two calls for 256 slots, where it took four). A wrong hint
/// (closed by a raw system call) costs only a longer listing.
#[link_section = ".text.hot.execguard"]
fn larger_table_bound() -> Option<Option<i32>> {
    let hint = crate::postfork::startfds::highest_held();
    if hint < SMALL_TABLE && table_is_small() {
        return None;
    }
    Some(table_bound_from(hint))
}

/// Async-signal-safe: the fd table has exactly SMALL_TABLE slots (fd 64 must be
/// closed).
#[link_section = ".text.startup.execguard"]
fn table_is_small() -> bool {
    !table_has_slot(SMALL_TABLE)
}

/// Async-signal-safe: whether the fd table has a slot for `fd` (0 < fd ≤
/// SELECT_MAX), exact when `fd` is closed. `pselect6` clamps nfds to the table
/// size before it checks the set bits: with only `fd` set, a table that reaches it
/// draws EBADF (a closed fd), a smaller one returns 0. An open `fd` answers true
/// when it is ready to read, and false when it is not.
#[link_section = ".text.startup.execguard"]
fn table_has_slot(fd: i32) -> bool {
    // The fd set on the stack, as small as `fd` allows: the 64-slot check runs at
    // every start, and zeroing 520 bytes would call libc's memset.
    if fd < 128 {
        select_one::<2>(fd)
    } else {
        select_one::<{ SELECT_MAX as usize / 64 + 1 }>(fd)
    }
}

/// Async-signal-safe: `pselect6(fd + 1, {fd})` with zero timeout is not 0 (see
/// `table_has_slot`); `W` words must hold fd + 1 bits.
#[link_section = ".text.startup.execguard"]
fn select_one<const W: usize>(fd: i32) -> bool {
    // Only the fd / 64 + 1 words the kernel reads are zeroed, inline (see
    // line::copy_bytes).
    let mut set = [core::mem::MaybeUninit::<u64>::uninit(); W];
    let fd = fd.clamp(0, (W * 64 - 1) as i32) as usize;
    let used = set.get_mut(..fd / 64 + 1).unwrap_or(&mut []);
    crate::postfork::line::zero_words(used);
    if let Some(w) = used.last_mut() {
        w.write(1u64 << (fd % 64));
    }
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `set` holds W * 64 > fd bits (the kernel reads and writes back at most
    // fd + 1 of them); zero timeout; no signal mask.
    let r = unsafe {
        crate::postfork::sys::syscall!(
            libc::SYS_pselect6,
            (fd + 1) as libc::c_long,
            set.as_mut_ptr(),
            core::ptr::null_mut::<u64>(),
            core::ptr::null_mut::<u64>(),
            &zero as *const libc::timespec,
            core::ptr::null::<u8>(),
        )
    };
    r != 0
}

/// Async-signal-safe: the /proc answer — since Linux 6.2 the size of /proc/self/fd
/// is the number of open fds; compare it with how many of 0–2 are open. Anything
/// unclear (older kernel: size 0, no /proc) answers false, and the caller lists.
fn none_above_stdio_proc() -> bool {
    // SAFETY: an all-zero stat is a valid value; the kernel fills it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: NUL-terminated path, valid out-pointer.
    let r = unsafe {
        crate::postfork::sys::syscall!(libc::SYS_newfstatat, libc::AT_FDCWD, c"/proc/self/fd".as_ptr(), &mut st as *mut libc::stat, 0)
    };
    if r != 0 || st.st_size <= 0 {
        return false;
    }
    let mut p = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: three valid pollfds, zero timeout.
    let r = unsafe { crate::postfork::sys::syscall!(libc::SYS_ppoll, p.as_mut_ptr(), 3, &ts as *const libc::timespec, core::ptr::null::<u8>(), 0) };
    if r < 0 {
        return false;
    }
    let low = p.iter().filter(|p| p.revents & libc::POLLNVAL == 0).count() as i64;
    st.st_size == low
}

/// A decimal fd name from `/proc/self/fd` (NUL-terminated in the dirent).
pub fn parse_fd(name: &[u8]) -> Option<i32> {
    let mut v: i64 = 0;
    let mut any = false;
    for &b in name {
        if b == 0 {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as i64;
        if v > i32::MAX as i64 {
            return None;
        }
        any = true;
    }
    if any {
        Some(v as i32)
    } else {
        None
    }
}

/// Async-signal-safe: FD_CLOEXEC is set (or the fd is not open: Err).
#[link_section = ".text.hot.execguard"]
pub fn cloexec(fd: c_int) -> sys::R<bool> {
    sys::fcntl(fd, libc::F_GETFD, 0).map(|f| f & libc::FD_CLOEXEC != 0)
}

/// Async-signal-safe: a pipe or FIFO (what a make jobserver fd must be).
#[link_section = ".text.hot.execguard"]
pub fn is_fifo(fd: c_int) -> bool {
    sys::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// The table's size is read from /proc/PID/status as the kernel writes it.
    #[test]
    fn fd_size_is_read_from_status() {
        let status = b"Name:\tcat\nUmask:\t0022\nState:\tR (running)\nTgid:\t5\nPid:\t5\nFDSize:\t2048\nGroups:\t\n";
        assert_eq!(fd_size_field(status), Some(2048));
        assert_eq!(fd_size_field(b"Name:\tx\nFDSize:   64\n"), Some(64));
        assert_eq!(fd_size_field(b"Name:\tFDSize:\t64\n"), None, "only at a line's start");
        assert_eq!(fd_size_field(b"Name:\tx\nFDSize:\t\n"), None);
        assert_eq!(fd_size_field(b"Name:\tx\nFDSize:\t99999999999\n"), None);
        assert_eq!(fd_size_field(b""), None);
        // This process's own: a power of two that every open fd lies below.
        let size = table_size_from_status().unwrap();
        assert!(size >= 64 && (size as u32).is_power_of_two(), "{size}");
        assert!(FdIter::new(0).all(|fd| fd < size));
    }

    /// On an fd number no other test thread opens (they run in parallel, and a low
    /// number freed here is soon reused by one of them).
    #[test]
    fn lists_what_is_open() {
        let low = sys::open(b"/dev/null\0", libc::O_RDONLY, 0).unwrap();
        let a = sys::fcntl(low, libc::F_DUPFD, 700).unwrap();
        sys::close(low);
        let seen: Vec<i32> = FdIter::new(3).collect();
        assert!(seen.contains(&a), "{seen:?} lacks {a}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        sys::close(a);
        let seen: Vec<i32> = FdIter::new(3).collect();
        assert!(!seen.contains(&a), "{seen:?} still has {a}");
    }

    /// The ppoll listings agree with /proc: in a process with a small table for sure,
    /// in ones whose table grew to 256, 1024 and 8192 slots (the last listed through
    /// /proc), with the high fd open or closed again; and the table's bound searched
    /// from hints above and below its size. A fork sizes the child's table by the fds
    /// open in the parent, so the child closes everything above 2 and forks again.
    #[test]
    fn ppoll_listings_agree_with_proc() {
        fn check(high: Option<(i32, bool)>, verdict_fd: i32) -> Result<(), String> {
            let a = sys::open(b"/dev/null\0", libc::O_RDONLY, 0).unwrap_or(-1);
            // SAFETY: plain dup2/close on our own fds.
            unsafe { libc::dup2(a, 40) };
            let mut want = vec![a, 40];
            if let Some((fd, open)) = high {
                // SAFETY: as above.
                unsafe { libc::dup2(a, fd) };
                if open {
                    want.push(fd);
                } else {
                    // SAFETY: as above.
                    unsafe { libc::close(fd) };
                }
            }
            let listed: Vec<i32> = FdIter::new(3).filter(|&fd| fd != verdict_fd).collect();
            let small = small_table_fds().is_some();
            let bound = table_bound_from(0);
            let want_bound = match high {
                None => None,
                Some((fd, _)) if fd < 4096 => Some((fd as u32 + 1).next_power_of_two().max(128) as i32),
                Some(_) => None,
            };
            if listed != want || small != high.is_none() || (!small && bound != want_bound) {
                return Err(format!("listed {listed:?} want {want:?} small {small} bound {bound:?} want {want_bound:?}"));
            }
            // From a hint (startfds::highest_held), right or wrong: the larger of the
            // table's size and the first power of two above the hint, none past 4096;
            // from 1024 on (past SELECT_MAX), the table's size from /proc/self/status.
            let table = high.map_or(64, |(fd, _)| (fd as u32 + 1).next_power_of_two().max(128) as i32);
            for hint in [0, 63, 100, 200, 251, 256, 700, 1500, 3000, 5000] {
                let from_hint = (hint as u32 + 1).next_power_of_two().max(128) as i32;
                let want = if from_hint > 4096 {
                    None
                } else if from_hint > SELECT_MAX {
                    Some(table).filter(|&b| b <= 4096)
                } else {
                    Some(from_hint.max(table)).filter(|&b| b <= 4096)
                };
                let got = table_bound_from(hint);
                if got != want {
                    return Err(format!("table {table}, hint {hint}: bound {got:?} want {want:?}"));
                }
            }
            Ok(())
        }
        let cases = [None, Some((200, true)), Some((200, false)), Some((1000, true)), Some((5000, true)), Some((5000, false))];
        for high in cases {
            let mut p = [0i32; 2];
            // SAFETY: a pipe for the child's verdict.
            assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
            // SAFETY: the children only make system calls, run `check` and exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let w = p[1];
                // SAFETY: our own child: keep only the verdict pipe, moved to fd 9.
                unsafe {
                    libc::dup2(w, 9);
                    libc::syscall(libc::SYS_close_range, 3u32, 8u32, 0u32);
                    libc::syscall(libc::SYS_close_range, 10u32, u32::MAX, 0u32);
                }
                // SAFETY: as above.
                let inner = unsafe { libc::fork() };
                if inner == 0 {
                    // SAFETY: the grandchild drops the verdict pipe from its own list.
                    let w2 = unsafe { libc::dup(9) };
                    unsafe { libc::close(9) };
                    let verdict = check(high, w2).err().unwrap_or_default();
                    let _ = sys::write(w2, verdict.as_bytes());
                    // SAFETY: leave without the test harness's exit path.
                    unsafe { libc::_exit(0) };
                }
                let mut st = 0;
                // SAFETY: waiting for our child, then leaving.
                unsafe {
                    libc::waitpid(inner, &mut st, 0);
                    libc::_exit(0);
                }
            }
            // SAFETY: closing our copy of the write end.
            unsafe { libc::close(p[1]) };
            let mut buf = [0u8; 512];
            let mut got = Vec::new();
            while let Ok(n) = sys::read(p[0], &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            sys::close(p[0]);
            let mut st = 0;
            // SAFETY: waiting for our child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            assert!(got.is_empty(), "{high:?}: {}", String::from_utf8_lossy(&got));
        }
    }

    /// A caller's lone high fd (nothing open in 3–64, a table of 256 slots): the
    /// first look says "not only stdio", keeps the table bound it found, and the
    /// listing after it finds the fd without probing the table again.
    #[test]
    fn a_lone_high_fd_is_listed_with_the_bound_already_found() {
        let mut p = [0i32; 2];
        // SAFETY: a pipe for the child's verdict.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        // SAFETY: the child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: our own child: only the verdict pipe, moved to fd 250; then a
            // grandchild, whose table is sized by what is open now (256 slots).
            unsafe {
                libc::dup2(p[1], 250);
                libc::syscall(libc::SYS_close_range, 3u32, 249u32, 0u32);
                libc::syscall(libc::SYS_close_range, 251u32, u32::MAX, 0u32);
                if libc::fork() == 0 {
                    let mut low = Low::read();
                    let lone = !low.none_above_stdio() && low.bound == Some(Some(256));
                    let listed: Vec<i32> = FdIter::after(3, low).collect();
                    let ok = lone && listed == [250] && FdIter::after(3, low).exact();
                    let _ = sys::write(250, if ok { b"ok" } else { b"no" });
                    libc::_exit(0);
                }
                let mut st = 0;
                libc::wait(&mut st);
                // Leave without the test harness's exit path.
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(p[1]) };
        let mut buf = [0u8; 8];
        let n = sys::read(p[0], &mut buf).unwrap_or(0);
        sys::close(p[0]);
        let mut st = 0;
        // SAFETY: waiting for our child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert_eq!(&buf[..n], b"ok");
    }

    #[test]
    fn parse_names() {
        assert_eq!(parse_fd(b"17\0"), Some(17));
        assert_eq!(parse_fd(b".\0"), None);
        assert_eq!(parse_fd(b"99999999999\0"), None);
    }
}
