//! What is a finding and what is kept on purpose: pure functions over bytes and
//! numbers, unit-tested, callable from the small room (no allocation, no state).

use crate::postfork::classify::Kind;

/// A small set of fd ranges (inclusive). Past its capacity it saturates: then every
/// fd counts as kept, so an overflowing keep-list can only make fix mode do less.
#[derive(Clone, Copy)]
pub struct FdRanges {
    r: [(i32, i32); 32],
    /// A u32, not a usize: four of these sit in the configuration, on the data page
    /// that every start writes, which has no byte to spare (docs/design.md).
    n: u32,
    saturated: bool,
}

impl FdRanges {
    pub const fn new() -> Self {
        FdRanges { r: [(0, -1); 32], n: 0, saturated: false }
    }

    pub fn add(&mut self, lo: i32, hi: i32) {
        if lo > hi || hi < 0 {
            return;
        }
        match self.r.get_mut(self.n as usize) {
            Some(slot) => {
                *slot = (lo.max(0), hi);
                self.n += 1;
            }
            None => self.saturated = true,
        }
    }

    pub fn contains(&self, fd: i32) -> bool {
        self.saturated || self.r.iter().take(self.n as usize).any(|&(lo, hi)| lo <= fd && fd <= hi)
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0 && !self.saturated
    }

    /// Add every range of `other` (entry by entry: no memcpy call).
    pub fn extend(&mut self, other: &FdRanges) {
        for &(lo, hi) in other.r.iter().take(other.n as usize) {
            self.add(lo, hi);
        }
        self.saturated |= other.saturated;
    }
}

impl Default for FdRanges {
    fn default() -> Self {
        Self::new()
    }
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as i64;
    }
    Some(v)
}

fn fd_num(s: &[u8]) -> Option<i32> {
    num(trim(s)).filter(|&v| v <= i32::MAX as i64).map(|v| v as i32)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `EXECGUARD_KEEP_FDS`: `3,7,10-20`. Returns false if any item was not understood
/// (the understood ones are still added).
#[link_section = ".text.hot.execguard"]
pub fn parse_fd_list(s: &[u8], out: &mut FdRanges) -> bool {
    let mut ok = true;
    for item in s.split(|&b| b == b',') {
        let item = trim(item);
        if item.is_empty() {
            continue;
        }
        let parsed = match item.iter().position(|&b| b == b'-') {
            Some(dash) => match (fd_num(item.get(..dash).unwrap_or(&[])), fd_num(item.get(dash + 1..).unwrap_or(&[]))) {
                (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
                _ => None,
            },
            None => fd_num(item).map(|fd| (fd, fd)),
        };
        match parsed {
            Some((lo, hi)) => out.add(lo, hi),
            None => ok = false,
        }
    }
    ok
}

/// make's jobserver fds from `MAKEFLAGS`: `--jobserver-auth=R,W` (make ≥ 4.2) or
/// `--jobserver-fds=R,W` (older). `--jobserver-auth=fifo:PATH` (make 4.4) passes
/// no fd. Returns the number of fds added.
#[link_section = ".text.hot.execguard"]
pub fn parse_makeflags(s: &[u8], out: &mut FdRanges) -> usize {
    let mut added = 0;
    for word in s.split(|&b| b == b' ') {
        let rest = word
            .strip_prefix(b"--jobserver-auth=")
            .or_else(|| word.strip_prefix(b"--jobserver-fds="));
        let Some(rest) = rest else { continue };
        let mut parts = rest.splitn(2, |&b| b == b',');
        let r = parts.next().and_then(fd_num);
        let w = parts.next().and_then(fd_num);
        if let (Some(r), Some(w)) = (r, w) {
            out.add(r, r);
            out.add(w, w);
            added += 2;
        }
    }
    added
}

/// nginx's binary upgrade: `NGINX=7;8;9;` (also accepts `:` and `,` separators),
/// and Gunicorn's re-exec: `GUNICORN_FD=5,6` (`RELOAD_FD_VARS`). Inlined at its two
/// callers in the blocks (the constructor's parser and the exec's keep rules): an
/// out-of-line copy was 393 bytes of the hot block, more than both inlined.
#[inline(always)]
pub fn parse_nginx(s: &[u8], out: &mut FdRanges) -> usize {
    let mut added = 0;
    for item in s.split(|&b| b == b';' || b == b':' || b == b',') {
        if let Some(fd) = fd_num(item) {
            out.add(fd, fd);
            added += 1;
        }
    }
    added
}

/// Starters that run a server's workers and hand them the listening sockets they
/// opened, naming the fds in the worker's environment: Server::Starter
/// (`start_server`, Perl, and its Go port), `SERVER_STARTER_PORT=127.0.0.1:80=4;/tmp/app.sock=5`
/// (the fd after each item's last `=`); Einhorn (Ruby), `EINHORN_FD_0=6`,
/// `EINHORN_FD_1=7` beside `EINHORN_FD_COUNT=2` (releases before 0.5: `EINHORN_FDS=6 7`).
/// Unlike `LISTEN_FDS` they name no pid and stay in the worker's environment, so
/// every program the worker runs inherits them too: they name fds handed to the
/// first program under the shim that gets them from a process that set them, not
/// to its descendants (`STARTER_TAKEN`). Adds the fds `name=value` names to `out`;
/// `None` when `name` is no starter's variable. Out of the start blocks: asked only
/// for a name that starts as one (`may_name_starter_fds`).
#[cold]
#[inline(never)]
pub fn starter_fds(name: &[u8], value: &[u8], out: &mut FdRanges) -> Option<usize> {
    let mut added = 0;
    let mut add = |item: &[u8]| {
        if let Some(fd) = fd_num(item) {
            out.add(fd, fd);
            added += 1;
        }
    };
    if name == b"SERVER_STARTER_PORT" {
        for item in value.split(|&b| b == b';') {
            let eq = item.iter().rposition(|&b| b == b'=');
            if let Some(fd) = eq.and_then(|i| item.get(i + 1..)) {
                add(fd);
            }
        }
    } else if name == b"EINHORN_FDS" {
        value.split(|&b| b == b' ').for_each(&mut add);
    } else {
        let index = name.strip_prefix(b"EINHORN_FD_")?;
        if index.is_empty() || !index.iter().all(u8::is_ascii_digit) {
            return None;
        }
        add(value);
    }
    Some(added)
}

/// Async-signal-safe: are the fds a starter's variables in the new environment name
/// kept at an exec (put in `ExecKeep::rules` by a leak audit)? Where the new
/// environment has such a variable (`named`) and this process did not start with
/// one (`own_starter`): it is the
/// starter running its worker, and the fds are the worker's (a starter written in C
/// opens them inheritable, with no call that says so). A process that started with
/// one passes on what was handed to it: its fds are judged as any it holds.
#[inline]
pub fn starter_fds_kept(own_starter: bool, named: bool) -> bool {
    named && !own_starter
}

/// Async-signal-safe: `name` may be a starter's variable (`starter_fds`): its first
/// eight bytes, two compares of a word.
#[inline]
pub fn may_name_starter_fds(name: &[u8]) -> bool {
    let head = |s: &[u8; 8]| u64::from_ne_bytes(*s);
    name.first_chunk::<8>().is_some_and(|h| head(h) == head(b"SERVER_S") || head(h) == head(b"EINHORN_"))
}

/// The mark a process that started with a starter's variable (`starter_fds`) puts
/// in the environment of the programs it runs in other processes: the fds those
/// variables name were handed to it (or higher up), not to them; to them they are
/// passed through like any inherited fd. Not at an exec in place (an exec wrapper
/// between the starter and its worker: the worker is the same process). Rewritten at
/// every marked exec (envp::is_hop_mark).
pub const STARTER_TAKEN: &[u8] = b"EXECGUARD_TAKEN=1\0";

/// Socket activation: `LISTEN_FDS=n` counts for the process whose pid is `LISTEN_PID`;
/// the fds are 3 .. 3+n-1.
#[link_section = ".text.startup.execguard"]
pub fn parse_listen(fds: &[u8], pid: &[u8], my_pid: i32, out: &mut FdRanges) -> bool {
    match (fd_num(fds), fd_num(pid)) {
        (Some(n), Some(p)) if p == my_pid && n > 0 => {
            out.add(3, 3i32.saturating_add(n - 1));
            true
        }
        _ => false,
    }
}

/// A decimal pid, for `EXECGUARD_AUDITED`, and the numbers of the settings that take
/// one. Placed with the constructor, which parses them (see `config::parse_env`).
#[link_section = ".text.startup.execguard"]
pub fn parse_pid(s: &[u8]) -> Option<i32> {
    fd_num(s)
}

/// `EXECGUARD_AUDITED`'s value: `PID`, `^PID` (the parent's) or `+PID` (a reload:
/// `Audited::own`), then optionally `:IGN:BLOCKED`, the signal sets (hex kernel
/// words) the new program was handed: ignored and blocked signals it starts with
/// that the auditing parent saw, so that at its own exec they count as passed
/// through (see docs/policy.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Audited {
    /// The pid named is the parent's (`^`: a spawn audited in the parent).
    pub parent: bool,
    pub pid: i32,
    pub ign: u64,
    pub blocked: u64,
    /// The exec was a server's reload of itself (`+`, `Role::Reload`): every fd it
    /// starts with that did not come from outside is its own, as it was the old
    /// image's: passing one on is its act, as `NGINX`'s fds are the new nginx's. So
    /// are its signals, but `ign` and `blocked`, which the old image passed through
    /// (it reads what it ignores from the kernel: the sets name only those).
    pub own: bool,
}

#[link_section = ".text.startup.execguard"]
pub fn parse_audited(v: &[u8]) -> Option<Audited> {
    let (parent, own, v) = match v.first() {
        Some(b'^') => (true, false, v.get(1..)?),
        Some(b'+') => (false, true, v.get(1..)?),
        _ => (false, false, v),
    };
    let mut parts = v.split(|&b| b == b':');
    let pid = parse_pid(parts.next()?)?;
    let (ign, blocked) = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => (0, 0),
        (Some(i), Some(b), None) => (hex(i)?, hex(b)?),
        _ => return None,
    };
    Some(Audited { parent, pid, ign, blocked, own })
}

/// Runs a `Held` list keeps: past them the list is not vouched for.
pub const HELD_RUNS: usize = 32;

/// The fds ≥ 3 a new program will hold when it starts, as the audit of its exec saw
/// them: the fds that survive the exec, in ascending runs. It travels as
/// `EXECGUARD_HELD` beside the marker, so that the new program records what it
/// inherited without listing its fd table again (two to four system calls and a
/// ppoll over every slot, at each start below a caller with stray fds). The audit
/// vouches for it only when nothing can change the fds between its listing and the
/// exec (`spoil` otherwise): then the new program lists them itself, as before.
/// Written element by element (not zeroed: a fork child calls no libc memset). In
/// this order (`repr(C)`): a zero `n` stored next to the uninitialised runs was
/// merged with them into one memset, a call to libc's (a page of its text in every
/// fork child that execs).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Held {
    n: usize,
    exact: bool,
    runs: [core::mem::MaybeUninit<(i32, i32)>; HELD_RUNS],
}

/// A place in a `Held` list (`Held::mark`).
#[derive(Clone, Copy)]
pub struct HeldMark {
    n: usize,
    exact: bool,
    last: Option<(i32, i32)>,
}

impl Held {
    /// Async-signal-safe: empty, and vouched for until spoilt.
    #[inline]
    pub const fn new() -> Self {
        Held { n: 0, exact: true, runs: [core::mem::MaybeUninit::uninit(); HELD_RUNS] }
    }

    /// Async-signal-safe: the next surviving fd (ascending). An fd out of order, or
    /// a run past HELD_RUNS, spoils the list.
    #[inline]
    pub fn push(&mut self, fd: i32) {
        if !self.exact {
            return;
        }
        if let Some((lo, hi)) = self.last() {
            if fd <= hi {
                self.exact = false;
                return;
            }
            if fd == hi + 1 {
                if let Some(r) = self.n.checked_sub(1).and_then(|i| self.runs.get_mut(i)) {
                    r.write((lo, fd));
                }
                return;
            }
        }
        match self.runs.get_mut(self.n) {
            Some(r) if fd >= 3 => {
                r.write((fd, fd));
                self.n += 1;
            }
            _ => self.exact = false,
        }
    }

    /// Async-signal-safe: where the list stands, to go back to with `rewind`.
    #[inline]
    pub fn mark(&self) -> HeldMark {
        HeldMark { n: self.n, exact: self.exact, last: self.last() }
    }

    /// Async-signal-safe: the list as it was at `m` (what was pushed since is gone,
    /// a spoil since too; the last run as it was, if a push extended it).
    #[inline]
    pub fn rewind(&mut self, m: HeldMark) {
        self.n = m.n;
        self.exact = m.exact;
        if let (Some(run), Some(i)) = (m.last, m.n.checked_sub(1)) {
            if let Some(r) = self.runs.get_mut(i) {
                r.write(run);
            }
        }
    }

    /// The audit cannot vouch for the list.
    #[inline]
    pub fn spoil(&mut self) {
        self.exact = false;
    }

    fn last(&self) -> Option<(i32, i32)> {
        // SAFETY: runs below n were written by push.
        self.n.checked_sub(1).and_then(|i| self.runs.get(i)).map(|r| unsafe { r.assume_init() })
    }

    /// The runs, ascending, when the list is vouched for.
    pub fn runs(&self) -> Option<impl Iterator<Item = (i32, i32)> + '_> {
        let n = if self.exact { self.n } else { return None };
        // SAFETY: runs below n were written by push.
        Some(self.runs.iter().take(n).map(|r| unsafe { r.assume_init() }))
    }

    /// `EXECGUARD_HELD`'s value into `self` (empty, as `new` makes it): `10,251-253`,
    /// ascending runs of fds ≥ 3 (empty: none). False, and `self` spoilt, when it is
    /// not such a list: the new program then lists its fds. (Filled in place: a
    /// returned `Held` is a call to libc's memcpy.)
    #[link_section = ".text.startup.execguard"]
    pub fn parse(&mut self, v: &[u8]) -> bool {
        let ok = self.parse_runs(v).is_some();
        if !ok {
            self.exact = false;
        }
        ok
    }

    fn parse_runs(&mut self, v: &[u8]) -> Option<()> {
        for item in v.split(|&b| b == b',') {
            if item.is_empty() && v.is_empty() {
                break;
            }
            let (lo, hi) = match item.iter().position(|&b| b == b'-') {
                Some(dash) => (fd_num(item.get(..dash)?)?, fd_num(item.get(dash + 1..)?)?),
                None => (fd_num(item)?, fd_num(item)?),
            };
            if lo < 3 || hi < lo || self.last().is_some_and(|(_, top)| lo <= top + 1) || self.n >= HELD_RUNS {
                return None;
            }
            self.runs.get_mut(self.n)?.write((lo, hi));
            self.n += 1;
        }
        Some(())
    }
}

impl Default for Held {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| Some(acc << 4 | (c as char).to_digit(16)? as u64))
}

use crate::postfork::names::fixed;

const SHELLS: [[u8; 12]; 12] = [
    fixed("sh"), fixed("bash"), fixed("dash"), fixed("ash"), fixed("zsh"), fixed("ksh"), fixed("mksh"), fixed("pdksh"), fixed("ksh93"), fixed("yash"), fixed("posh"), fixed("busybox"),
];

/// Programs that only adjust something and exec the next one, passing on exactly
/// what they were given: the decision about those fds was made by their parent.
const WRAPPERS: [[u8; 12]; 22] = [
    fixed("env"), fixed("nohup"), fixed("nice"), fixed("timeout"), fixed("stdbuf"), fixed("setsid"), fixed("chrt"), fixed("taskset"), fixed("ionice"), fixed("flock"),
    fixed("time"), fixed("xargs"), fixed("sudo"), fixed("su"), fixed("runuser"), fixed("setpriv"), fixed("unshare"), fixed("nsenter"), fixed("chroot"), fixed("tini"),
    fixed("dumb-init"), fixed("catatonit"),
];

/// The shells' and wrappers' names, each packed into two little-endian words
/// (zero-padded to 16 bytes), for `is_shell`'s one loop.
// Evaluated at compile time only; the loop condition bounds every index.
#[allow(clippy::indexing_slicing)]
const NAMES: [[u64; 2]; SHELLS.len() + WRAPPERS.len()] = {
    let mut out = [[0u64; 2]; SHELLS.len() + WRAPPERS.len()];
    let mut i = 0;
    while i < out.len() {
        let n = if i < SHELLS.len() { SHELLS[i] } else { WRAPPERS[i - SHELLS.len()] };
        out[i] = packed(&n);
        i += 1;
    }
    out
};

/// Up to 12 bytes as two little-endian words, zero-padded.
// In a const fn (`get` is not usable there); `i < 12` bounds both indexes.
#[allow(clippy::indexing_slicing)]
const fn packed(n: &[u8; 12]) -> [u64; 2] {
    let mut w = [0u64; 2];
    let mut i = 0;
    while i < 12 {
        w[i / 8] |= (n[i] as u64) << ((i % 8) * 8);
        i += 1;
    }
    w
}

/// A shell hands its fds and ignored signals to its commands on purpose, and so does
/// an exec wrapper (`env`, `nohup`, `timeout`, …). A process counts as one when the
/// basename of its executable is a known shell's or wrapper's, or one of the extra
/// names in `EXECGUARD_SHELLS` (colon list).
///
/// Runs at every process start, twice: the basename is packed once and compared
/// two words at a time, in a loop the compiler may not unroll (unrolled over the 34
/// names it was 2.2 KiB of the startup block, docs/design.md).
#[link_section = ".text.startup.execguard"]
pub fn is_shell(exe: &[u8], extra: &[u8]) -> bool {
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
    if base.is_empty() {
        return false;
    }
    if base.len() <= 12 {
        let (mut lo, mut hi) = (0u64, 0u64);
        for (i, &b) in base.iter().enumerate() {
            if i < 8 {
                lo |= (b as u64) << (i * 8);
            } else {
                hi |= (b as u64) << ((i - 8) * 8);
            }
        }
        let w = [lo, hi];
        // An opaque count: the loop stays a loop.
        let n = core::hint::black_box(NAMES.len());
        let mut i = 0;
        while i < n {
            if NAMES.get(i) == Some(&w) {
                return true;
            }
            i += 1;
        }
    }
    !extra.is_empty() && extra.split(|&b| b == b':').any(|n| !n.is_empty() && same(n, base))
}

/// Byte slices equal, compared here: a slice `==` calls libc's `bcmp` through the
/// GOT, 68 calls at every process start for this check alone.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Bit of signal `sig` in a kernel sigset word.
pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that children commonly need and that a blocked mask silently takes away.
pub const NEEDED: u64 = bit(libc::SIGALRM)
    | bit(libc::SIGCHLD)
    | bit(libc::SIGTERM)
    | bit(libc::SIGINT)
    | bit(libc::SIGHUP)
    | bit(libc::SIGUSR1)
    | bit(libc::SIGUSR2)
    | bit(libc::SIGPIPE);

/// glibc's internal signals (32: cancellation, 33: setxid) are not the program's.
pub const GLIBC_INTERNAL: u64 = bit(32) | bit(33);

/// Signals whose disposition cannot be changed.
pub const UNCHANGEABLE: u64 = bit(libc::SIGKILL) | bit(libc::SIGSTOP);

/// Signals whose default action is already to do nothing, and for which SIG_IGN
/// changes nothing a program can observe (the kernel continues a stopped process
/// on SIGCONT whatever its disposition). Inheriting them ignored is harmless, so the
/// audits do not query them: three system calls fewer per start and per exec.
/// (SIGCHLD is not one: ignoring it makes the kernel reap children, and `wait`
/// fails with ECHILD.)
pub const IGNORING_CHANGES_NOTHING: u64 = bit(libc::SIGCONT) | bit(libc::SIGURG) | bit(libc::SIGWINCH);

/// Signals the kernel delivers with the default action whenever it raises them
/// itself (a fault, a breakpoint, a seccomp trap), ignored or not, and that
/// `abort()` resets before raising: SIG_IGN only silences a `kill` from another
/// process. Not worth seven system calls per start and per exec either.
pub const FORCED_WHEN_IT_MATTERS: u64 = bit(libc::SIGILL)
    | bit(libc::SIGTRAP)
    | bit(libc::SIGABRT)
    | bit(libc::SIGBUS)
    | bit(libc::SIGFPE)
    | bit(libc::SIGSEGV)
    | bit(libc::SIGSYS);

/// Signals the ignored-signal audits never query (see the two sets above).
pub const NOT_AUDITED_IGNORED: u64 = GLIBC_INTERNAL | UNCHANGEABLE | IGNORING_CHANGES_NOTHING | FORCED_WHEN_IT_MATTERS;

/// Ignored signals that stay ignored even in fix mode (`nohup` ignores SIGHUP for
/// the program it runs, on purpose).
pub const KEEP_IGNORED: u64 = bit(libc::SIGHUP);

/// Which ignored signals the start side resets in fix mode: only SIGPIPE, the one a
/// runtime ignores for itself and forgets to restore (Python, Node, JVM launchers);
/// other ignored signals may be a parent's deliberate choice and are only logged.
pub const STARTUP_RESET_IGNORED: u64 = bit(libc::SIGPIPE);

/// Minimum count of inherited sockets of one kind that makes a "pool".
pub const POOL_MIN_DEFAULT: u32 = 64;

/// Start side, fix mode: may an inherited fd of this kind be closed before `main`?
/// Only what cannot have been meant for this program: a listening socket nobody
/// declared (LISTEN_FDS/NGINX fds are kept before this is asked), event-loop
/// plumbing of the parent, and one member of a large pool of like sockets.
pub fn startup_repairable(kind: Kind, count_of_kind: u32, pool_min: u32) -> bool {
    match kind {
        Kind::TcpListen | Kind::UnixListen => true,
        Kind::Epoll | Kind::Eventfd | Kind::Timerfd | Kind::Signalfd | Kind::Inotify => true,
        Kind::Tcp | Kind::Udp | Kind::Unix => count_of_kind >= pool_min,
        Kind::Pipe | Kind::File | Kind::Other => false,
    }
}

/// What the exec audit found out about one open fd ≥ 3 at an exec. Facts after the
/// first are gathered only for an fd that is not close-on-exec (each costs a
/// system call or two, and a closed fd has no fate to decide).
#[derive(Clone, Copy, Default, Debug)]
pub struct FdFacts {
    /// Close-on-exec, or not readable (then nothing is inherited either).
    pub cloexec: bool,
    /// Named by a keep rule for the new program: `EXECGUARD_KEEP_FDS`, its
    /// `LISTEN_FDS`/`NGINX` fds, the exec's own fd (see `exec_keep`).
    pub kept: bool,
    /// Named as a jobserver fd by the new program's `MAKEFLAGS`.
    pub jobserver: bool,
    /// A pipe or FIFO (asked only for a `jobserver` fd).
    pub fifo: bool,
    /// Set up for the child on purpose: a dup2/dup3 target or CLOEXEC cleared by the
    /// exec'ing process between fork and exec, an fd a fork child created, survivors
    /// of a bulk close, or made inheritable by this process or its parent.
    pub set_up: bool,
    /// Held since this process started: same number, same open file (st_dev/st_ino),
    /// not replaced by a dup2 since.
    pub since_start: bool,
    /// Handed to this program for its own use (`LISTEN_FDS` naming its pid, `NGINX`).
    pub handed: bool,
    /// What the caller's `posix_spawn` file actions do to the number in the child
    /// (`file_action_effect`); `None` at every other exec.
    pub action: ActionEffect,
}

/// One `posix_spawn` file action, as far as the child's fd table goes: the source of
/// a `dup2` does not matter (the caller's fd is left as it was), only the number it
/// lands on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileAction {
    /// `addclose(fd)`.
    Close(i32),
    /// `adddup2(_, fd)` (also onto itself, which clears FD_CLOEXEC) or
    /// `addopen(fd, …)`: the child gets a number the caller chose for it.
    Target(i32),
    /// `addclosefrom_np(fd)`: every number from `fd` up.
    CloseFrom(i32),
}

/// What a spawn's file actions do to one number of the caller's fd table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ActionEffect {
    /// Untouched: the child gets the caller's fd as an exec would hand it on.
    #[default]
    None,
    /// Closed before the exec: the child does not get it.
    Closes,
    /// Replaced or set up for the child on purpose.
    SetsUp,
}

/// Most file actions of one `posix_spawn_file_actions_t` the shim follows; past
/// them it does not know what the child gets (hooks/spawn_actions.rs).
pub const FILE_ACTIONS_MAX: usize = 32;

/// The file actions of one spawn, in the caller's order.
#[derive(Clone, Copy)]
pub struct FileActions {
    n: usize,
    acts: [FileAction; FILE_ACTIONS_MAX],
}

impl FileActions {
    /// Async-signal-safe: none.
    pub const fn new() -> Self {
        FileActions { n: 0, acts: [FileAction::Close(-1); FILE_ACTIONS_MAX] }
    }

    /// Async-signal-safe: append one; false (nothing kept) when full.
    pub fn push(&mut self, a: FileAction) -> bool {
        match self.acts.get_mut(self.n) {
            Some(slot) => {
                *slot = a;
                self.n += 1;
                true
            }
            None => false,
        }
    }

    pub fn as_slice(&self) -> &[FileAction] {
        self.acts.get(..self.n).unwrap_or(&[])
    }

    /// Async-signal-safe: what they do to the caller's `fd` (`file_action_effect`).
    /// Out of line and out of the start blocks: only a parent-side audit of a spawn
    /// with file actions asks, in a process whose text is mapped already.
    #[inline(never)]
    pub fn effect(&self, fd: i32) -> ActionEffect {
        file_action_effect(self.as_slice(), fd)
    }

    /// Async-signal-safe: some action gives the child a number ≥ 3 the caller chose
    /// for it. Then the new program's start stays quiet about what it holds, as
    /// below a fork child that set fds up with `dup2`: it was not handed them from
    /// outside.
    #[inline(never)]
    pub fn sets_up_any(&self) -> bool {
        self.as_slice().iter().any(|a| matches!(*a, FileAction::Target(fd) if fd >= 3))
    }
}

impl Default for FileActions {
    fn default() -> Self {
        Self::new()
    }
}

/// The child runs the actions in order, then execs: the last action that names
/// `fd` (a close, a close-from below it, a dup2 or open onto it) decides what the
/// child holds there. `None` when no action names it.
pub fn file_action_effect(acts: &[FileAction], fd: i32) -> ActionEffect {
    acts.iter().fold(ActionEffect::None, |e, a| match *a {
        FileAction::Close(f) if f == fd => ActionEffect::Closes,
        FileAction::CloseFrom(f) if fd >= f => ActionEffect::Closes,
        FileAction::Target(f) if f == fd => ActionEffect::SetsUp,
        _ => e,
    })
}

/// What happens to an fd at an exec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FdFate {
    /// The exec closes it.
    Closed,
    /// Inherited on purpose (a keep rule, or set up for the child).
    Kept,
    /// Inherited by this program and handed on unchanged: not its leak. Reported
    /// once where it entered the audited tree (`startup_fds`, `"from":"outside"`)
    /// or at the exec of the program that created it.
    PassedThrough,
    /// This program's leak: reported, and fixed in fix mode.
    Leaked,
}

/// Blame the creator: an fd is this program's leak only if it made the fd (or
/// replaced it, or was handed it for its own use) and nothing says it is meant for
/// the child. A spawn's file actions come first: the child does not get a number
/// they close, and gets one they set up on purpose.
#[link_section = ".text.hot.execguard"]
pub fn fd_fate(f: &FdFacts) -> FdFate {
    match f.action {
        ActionEffect::Closes => return FdFate::Closed,
        ActionEffect::SetsUp => return FdFate::Kept,
        ActionEffect::None => {}
    }
    if f.cloexec {
        FdFate::Closed
    } else if f.kept || f.set_up || (f.jobserver && f.fifo) {
        FdFate::Kept
    } else if f.since_start && !f.handed {
        FdFate::PassedThrough
    } else {
        FdFate::Leaked
    }
}

/// Which of an exec's facts the audit must gather: the ones `fd_fate` reads past
/// `cloexec` only matter when the fd is inherited at all.
pub fn needs_more_facts(cloexec: bool) -> bool {
    !cloexec
}

/// Was the exec "found" to hand something over (a leak reported, an fd kept or passed
/// through)? Then the new program's start side stays quiet about what it inherited,
/// and the child's environment carries the marks (`EXECGUARD_AUDITED`, and
/// `EXECGUARD_OUTSIDE` for outside fds passed on).
#[link_section = ".text.hot.execguard"]
pub fn marks_child(fate: FdFate) -> bool {
    fate != FdFate::Closed
}

/// The keep-rule facts of one exec, gathered from configuration and environments.
pub struct ExecKeepFacts<'a> {
    /// `EXECGUARD_KEEP_FDS` of this process.
    pub keep: &'a FdRanges,
    /// The new program's environment: `MAKEFLAGS`, `NGINX` or `GUNICORN_FD`
    /// (`RELOAD_FD_VARS`: one server sets one), `LISTEN_FDS`, `LISTEN_PID`.
    pub makeflags: &'a [u8],
    pub reload_fds: &'a [u8],
    pub listen_fds: &'a [u8],
    pub listen_pid: &'a [u8],
    /// The new program's pid, when known (an exec in this process); a parent-side
    /// audit (posix_spawn, system, popen) does not know it, so `LISTEN_PID` cannot
    /// name the child there.
    pub new_pid: Option<i32>,
    /// fexecve's fd, execveat's dirfd (negative: none).
    pub exec_fd: i32,
    /// Every fd is handed to the new program on purpose: a spawn helper, or a
    /// server's reload of itself (`Role`).
    pub keep_all: bool,
    /// The new environment has a variable that may be a starter's
    /// (`may_name_starter_fds`): its fds are read only then (`starter_fds_kept`).
    pub starter_named: bool,
}

/// The fds kept at an exec by the rules.
pub struct ExecKeep {
    /// Kept whatever they are (see `FdFacts::kept`).
    pub rules: FdRanges,
    /// `ExecKeepFacts::starter_named`: a leak audit adds a starter's fds to `rules`
    /// (see `starter_fds_kept`).
    pub starter_named: bool,
    /// Kept when they are pipes (see `FdFacts::jobserver`): make 4.3 leaves
    /// `--jobserver-auth=3,4` in `MAKEFLAGS` for every recipe but closes the pipe at
    /// exec for recipes not marked `+`, so fd 3 of such a command is often something
    /// else entirely — a listener it opened, say.
    pub jobserver: FdRanges,
}

impl ExecKeep {
    pub const fn new() -> Self {
        ExecKeep { rules: FdRanges::new(), jobserver: FdRanges::new(), starter_named: false }
    }
}

/// The fds kept at an exec by the rules (see `FdFacts::kept`).
#[cfg(test)]
pub fn exec_keep(f: &ExecKeepFacts) -> ExecKeep {
    let mut k = ExecKeep::new();
    exec_keep_into(f, &mut k);
    k
}

/// `exec_keep`, into an empty `k` in place: in a fork child the copies a returned
/// value costs are calls to libc's memcpy, one more page of libc's text faulted in.
#[link_section = ".text.hot.execguard"]
pub fn exec_keep_into(f: &ExecKeepFacts, k: &mut ExecKeep) {
    k.rules.extend(f.keep);
    k.starter_named = f.starter_named;
    parse_makeflags(f.makeflags, &mut k.jobserver);
    parse_nginx(f.reload_fds, &mut k.rules);
    if let Some(pid) = f.new_pid {
        parse_listen(f.listen_fds, f.listen_pid, pid, &mut k.rules);
    }
    if f.exec_fd >= 0 {
        k.rules.add(f.exec_fd, f.exec_fd);
    }
    if f.keep_all {
        k.rules.add(3, i32::MAX);
    }
}

/// Programs a parent runs only to start the real child from what it hands them:
/// each takes its stdio and the fds its arguments name, closes every other fd and
/// execs the target (which its own exec audit judges, the
/// shim being preloaded there too). OpenJDK's `jspawnhelper`: `ProcessBuilder` and
/// `Runtime.exec` run every child through it (the POSIX_SPAWN launch mechanism, the
/// default on Linux), from a `posix_spawn` that hands it the stdio pipes, the pipes
/// its arguments name (`10:11:13`) and whatever else the JVM holds.
const SPAWN_HELPERS: [&[u8]; 1] = [b"jspawnhelper"];

/// Servers that reload by exec'ing their own binary in place, keeping what the new
/// image needs open across the exec (their listening sockets, so that no connection
/// is refused meanwhile; the channels to their workers), and the variable each has
/// in its environment then. Each closes what it does not hand over itself, so every
/// fd it keeps is kept on purpose. uWSGI's master (SIGHUP, `--reload`,
/// touch-reload, the master FIFO's `r`) keeps its sockets, emperor fds and log pipes
/// and execs `binary_path` with its own arguments; `UWSGI_RELOADS` is in the
/// environment of every uWSGI process (it sets it at start). HAProxy's master in
/// master-worker mode (`-W`, `-Ws` under systemd) re-execs itself at start (into
/// its wait mode) and at every reload (USR2), keeping the socketpairs to its
/// workers, with `HAPROXY_MWORKER_REEXEC=1` (taken out of the environment of the
/// programs it runs). PHP-FPM's master (USR2) re-execs itself with its listening
/// sockets named in `FPM_SOCKETS`. The Ruby and Perl servers are scripts their
/// interpreter runs (`script_role`): Unicorn's master (USR2) execs a new master from
/// a fork child with its listeners in `UNICORN_FD`, having made every other fd up to
/// 1024 close-on-exec; Puma (USR2, single mode) execs itself in place with its
/// listeners in `PUMA_INHERIT_0`…; Hypnotoad (Mojolicious) execs itself once at
/// start and, for a hot deployment (USR2), from a fork child of its manager, with
/// `HYPNOTOAD_REV` counting the execs and its listeners in `MOJO_REUSE` (opened
/// inheritable, `$^F = 1023`; Perl opens every other fd close-on-exec). Matched by
/// basename: these names and their variants after a `-`, `_` or a digit (Debian's
/// `uwsgi-core`, `uwsgi_python3`, `php-fpm8.2`).
const RELOADERS: [(&[u8], &[u8]); 6] = [
    (b"uwsgi", b"UWSGI_RELOADS"),
    (b"haproxy", b"HAPROXY_MWORKER_REEXEC"),
    (b"php-fpm", b"FPM_SOCKETS"),
    (b"unicorn", b"UNICORN_FD"),
    (b"puma", b"PUMA_INHERIT_0"),
    (b"hypnotoad", b"HYPNOTOAD_REV"),
];

/// The variables with which a server names the fds it hands a new image of itself
/// (its listeners) when it upgrades or reloads by exec: nginx's binary upgrade
/// (`NGINX=7;8;`, from a fork child of the old master), Gunicorn's USR2 re-exec
/// (`GUNICORN_FD=5,6`, the same; the new master takes it out of its environment),
/// Unicorn's USR2 re-exec (`UNICORN_FD=8,9`, the same, left in the new master's
/// environment), Puma's hot restart (`PUMA_INHERIT_0=5:tcp://0.0.0.0:9292`, one
/// variable per listener from 0, exec in place; Puma takes them out) and
/// Hypnotoad's hot deployment (`MOJO_REUSE=127.0.0.1:8080:3,unix:/tmp/s:4`, left in
/// the environment of the manager, its workers and what they run). The fds named
/// are the new image's own (`reload_fds`); nginx's and Gunicorn's are kept at that
/// exec by name (the Ruby and Perl servers' execs are reloads by name, `RELOADERS`:
/// every fd kept). An exec with one of these in its new environment is a
/// `Role::Reload` for the signals this process hands on.
pub const RELOAD_FD_VARS: [&[u8]; 5] = [b"NGINX", b"GUNICORN_FD", b"UNICORN_FD", b"PUMA_INHERIT_0", b"MOJO_REUSE"];

/// The fds a reloader's variable (`RELOAD_FD_VARS`, and Puma's `PUMA_INHERIT_n` for
/// every n) names, into `out`: `parse_nginx`'s lists, Puma's `FD:URL`, or
/// Mojolicious's `ADDRESS:PORT:FD` items (the fd after each item's last `:`). `None`
/// when `name` is no such variable. Out of the start blocks (the constructor reads
/// `NGINX` and `GUNICORN_FD` itself, and asks this for the others, see
/// `may_name_handover`).
#[cold]
#[inline(never)]
pub fn reload_fds(name: &[u8], value: &[u8], out: &mut FdRanges) -> Option<usize> {
    if name == b"MOJO_REUSE" {
        let mut added = 0;
        for item in value.split(|&b| b == b',') {
            if let Some(fd) = item.rsplit(|&b| b == b':').next().filter(|_| item.contains(&b':')).and_then(fd_num) {
                out.add(fd, fd);
                added += 1;
            }
        }
        return Some(added);
    }
    if let Some(index) = name.strip_prefix(b"PUMA_INHERIT_") {
        if index.is_empty() || !index.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let fd = value.split(|&b| b == b':').next().and_then(fd_num)?;
        out.add(fd, fd);
        return Some(1);
    }
    RELOAD_FD_VARS.contains(&name).then(|| parse_nginx(value, out))
}

/// Async-signal-safe: `name` may be Puma's `PUMA_INHERIT_n` (`reload_fds`).
#[inline]
pub fn may_be_puma_inherit(name: &[u8]) -> bool {
    name.starts_with(b"PUMA_INHERIT_")
}

/// Async-signal-safe: `name` may be a variable the constructor reads out of its
/// start block, in a second pass (config::handovers): a starter's
/// (`may_name_starter_fds`), Unicorn's `UNICORN_FD`, Puma's `PUMA_INHERIT_n` or
/// Mojolicious's `MOJO_REUSE` (`reload_fds`). Its first eight bytes, inline where every variable is looked at
/// (four compares of a word; the whole names, or an arm each in the constructor's
/// match, made its text 0.4 to 0.9 KiB longer).
#[inline]
pub fn may_name_handover(name: &[u8]) -> bool {
    const fn word(s: &[u8; 8]) -> u64 {
        u64::from_ne_bytes(*s)
    }
    const HEADS: [u64; 5] = [word(b"SERVER_S"), word(b"EINHORN_"), word(b"UNICORN_"), word(b"PUMA_INH"), word(b"MOJO_REU")];
    name.first_chunk::<8>().is_some_and(|h| HEADS.contains(&u64::from_ne_bytes(*h)))
}

/// Async-signal-safe: a reloader's variable `var` (`RELOAD_FD_VARS`) names at least
/// one fd: `parse_nginx`'s lists, Puma's `FD:URL` by its first item (a URL alone
/// names none, though its port is a number).
pub fn names_fds(var: &[u8], v: &[u8]) -> bool {
    if var.starts_with(b"PUMA_INHERIT_") {
        return v.split(|&b| b == b':').next().and_then(fd_num).is_some();
    }
    if var == b"MOJO_REUSE" {
        return v.split(|&b| b == b',').any(|item| item.contains(&b':') && item.rsplit(|&b| b == b':').next().and_then(fd_num).is_some());
    }
    v.split(|&b| b == b';' || b == b':' || b == b',').any(|item| fd_num(item).is_some())
}

/// What the program an exec starts is to the program that starts it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Any program: each fd and signal it gets is judged.
    Plain,
    /// A spawn helper (`SPAWN_HELPERS`): the fds are handed to it on purpose: none
    /// of the caller's is its leak there, and fix mode leaves them alone (the helper
    /// needs them; what the real child gets is judged at the helper's own exec, and
    /// so is the blocked mask, which the helper may clear).
    SpawnHelper,
    /// Possibly a server's reload of itself (`RELOADERS`): it is one when the new
    /// environment holds this variable and the exec happens in the process itself
    /// (not a spawn). A reload hands the old image's state to the new one: fds it
    /// keeps (for `RELOADERS`, all: they closed the rest themselves) and signals it
    /// ignores or blocks are nobody's leak there, and are the new image's own after
    /// it (`Audited::own`). So is an exec with `RELOAD_FD_VARS` in its new
    /// environment, whatever its name: its fds are kept by name.
    Reload(&'static [u8]),
}

/// Interpreters that may run a reloader as a script (`script_role`): pyuwsgi, uWSGI
/// built as a Python module (`pip install pyuwsgi`, whose `uwsgi` command is a
/// Python entry-point script), reloads by exec'ing the interpreter with the script
/// and its arguments again (`python3.11 /usr/local/bin/uwsgi --master …`), keeping
/// its sockets as uWSGI does; Unicorn and Puma are Ruby's (`ruby3.1 /usr/bin/unicorn`;
/// Puma restarts with `ruby -S puma …` when its `$0` is not a file in its working
/// directory, and with `-I lib` when it was started so), Hypnotoad Perl's
/// (`perl /usr/bin/hypnotoad`).
/// Each with the reloaders it may run (a Perl script named `uwsgi` is no reload) and
/// the way its options are written (`script_of`).
const SCRIPT_HOSTS: [ScriptHost; 3] =
    [(b"python", &[b"uwsgi"], &PYTHON_OPTIONS), (b"ruby", &[b"unicorn", b"puma"], &RUBY_OPTIONS), (b"perl", &[b"hypnotoad"], &PERL_OPTIONS)];

/// An interpreter's basename, the reloaders it may run, and how its options are
/// written.
type ScriptHost = (&'static [u8], &'static [&'static [u8]], &'static HostOptions);

/// How an interpreter's command line is written, as far as finding the script it
/// runs needs (`script_of`). Options come first, one letter each, several letters to
/// one argument (`-uB`); `--` ends them, `-` alone reads the program from stdin.
struct HostOptions {
    /// Letters that take a value: the rest of their argument or, when that is
    /// empty, the next argument (`-X dev`, `-Xdev`, `-I lib`).
    value: &'static [u8],
    /// Letters whose value, if any, is the rest of their argument only (`ruby
    /// -W0`, `perl -Mstrict`, `-i.bak`): no further letters follow in it.
    attached: &'static [u8],
    /// Letters that give the program on the command line, or a module, instead of
    /// a script (`-c`, `-e`, `-m`): no script is run.
    no_script: &'static [u8],
    /// Long options that take the next argument as their value when not written
    /// with `=`.
    long_value: &'static [&'static [u8]],
}

const PYTHON_OPTIONS: HostOptions = HostOptions { value: b"WXQ", attached: b"", no_script: b"cm", long_value: &[b"--check-hash-based-pycs"] };
const RUBY_OPTIONS: HostOptions = HostOptions {
    value: b"IrEC",
    attached: b"WxTK0Fi",
    no_script: b"e",
    long_value: &[b"--enable", b"--disable", b"--encoding", b"--external-encoding", b"--internal-encoding", b"--dump", b"--backtrace-limit"],
};
const PERL_OPTIONS: HostOptions = HostOptions { value: b"I", attached: b"MmxdDl0iCVF", no_script: b"eE", long_value: &[] };

/// Async-signal-safe: the script an interpreter's arguments (after `argv[0]`) run:
/// the first that is neither an option nor an option's value (`ruby -S puma …`,
/// `ruby -I /app/lib /usr/bin/puma …`, `python3 -X dev -u /usr/local/bin/uwsgi …`).
/// None when the options give the program another way (`python3 -c …`, `-m`,
/// `ruby -e …`, `-` for stdin) or no argument is left.
/// One copy for every caller (`args` by reference to a trait object): the exec side
/// and the start side read the arguments from different places.
#[inline(never)]
fn script_of<'a>(opts: &HostOptions, args: &mut dyn Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    while let Some(a) = args.next() {
        if a == b"--" {
            return args.next();
        }
        let Some(letters) = a.strip_prefix(b"-").filter(|l| !l.is_empty()) else {
            // Not an option (or `-`, the program on stdin, which is no script).
            return Some(a).filter(|a| *a != b"-");
        };
        if letters.starts_with(b"-") {
            if !a.contains(&b'=') && opts.long_value.contains(&a) {
                args.next();
            }
            continue;
        }
        for (i, l) in letters.iter().enumerate() {
            if opts.no_script.contains(l) {
                return None;
            }
            if opts.value.contains(l) {
                if letters.get(i + 1..).is_none_or(|rest| rest.is_empty()) {
                    args.next();
                }
                break;
            }
            if opts.attached.contains(l) {
                break;
            }
        }
    }
    None
}

/// Async-signal-safe: the basename of `target` starts as a name `role` or
/// `script_role` knows (its first four bytes: `php-` lets the PHP interpreter,
/// `php` or `php8.2`, through no more than `sh`): most execs never look the names
/// up. One copy, in the hot block: a fork child's exec audit asks.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
pub fn may_have_role(target: &[u8]) -> bool {
    let base = target.rsplit(|&b| b == b'/').next().unwrap_or(target);
    let Some(four) = base.get(..4) else { return false };
    SPAWN_HELPERS.iter().chain(RELOADERS.iter().map(|(name, _)| name)).chain(SCRIPT_HOSTS.iter().map(|(host, _, _)| host)).any(|n| n.starts_with(four))
}

/// Async-signal-safe: the role of `target` running the script its arguments `args`
/// (after `argv[0]`) name (`script_of`: past the interpreter's options), when
/// `target` is an interpreter (`SCRIPT_HOSTS`: basename `python`, `python3`,
/// `python3.11`, `ruby3.1`, `perl`) and the script is a reloader it runs (`role`):
/// a reload of that server (pyuwsgi, Unicorn, Puma, Hypnotoad), under the same
/// conditions. Plain otherwise (a spawn helper is never run as a script).
#[inline(never)]
pub fn script_role(target: &[u8], args: &mut dyn Iterator<Item = &[u8]>) -> Role {
    let base = target.rsplit(|&b| b == b'/').next().unwrap_or(target);
    let host = SCRIPT_HOSTS.iter().find(|(h, _, _)| base.strip_prefix(*h).is_some_and(|rest| rest.iter().all(|&b| b.is_ascii_digit() || b == b'.')));
    let Some((_, runs, opts)) = host else { return Role::Plain };
    let Some(script) = script_of(opts, args) else { return Role::Plain };
    let name = script.rsplit(|&b| b == b'/').next().unwrap_or(script);
    match role(script) {
        r @ Role::Reload(_) if runs.iter().any(|n| name.starts_with(n)) => r,
        _ => Role::Plain,
    }
}

/// Async-signal-safe: the role of `target`, by the basename of the path the caller
/// runs. Out of the start blocks: asked only when `may_have_role`.
#[inline(never)]
pub fn role(target: &[u8]) -> Role {
    let base = target.rsplit(|&b| b == b'/').next().unwrap_or(target);
    if SPAWN_HELPERS.iter().any(|h| same(h, base)) {
        return Role::SpawnHelper;
    }
    for (name, var) in RELOADERS {
        if let Some(rest) = base.strip_prefix(name) {
            if rest.first().is_none_or(|&b| b == b'-' || b == b'_' || b.is_ascii_digit()) {
                return Role::Reload(var);
            }
        }
    }
    Role::Plain
}

/// A start that no audited parent marked, in a server that has just reloaded itself:
/// the path it was run by is a reloader's (`role`) and its variable is in the
/// environment (or the interpreter runs a reloader's script, `script_role`: `args`
/// are its arguments after `argv[0]`), or a `RELOAD_FD_VARS` variable names an fd (nginx and Gunicorn take
/// theirs out of what their children get). Its image before ran without the shim:
/// the shim was rolled out under the running server (installed at a path
/// `LD_PRELOAD` already named, or put in /etc/ld.so.preload). Everything it holds
/// was kept across the exec on purpose, by a program that closes the rest itself,
/// and so are its ignored and blocked signals: the start reports them once (it
/// cannot tell them from strays its first start inherited) but never repairs them
/// (`startup_fd`, `startup_signals_repaired`). `env`
/// looks a variable up. Cold: asked only when a start has something to report.
pub fn reloaded_start<'a, 'e>(execfn: &[u8], args: &mut dyn Iterator<Item = &'a [u8]>, env: impl Fn(&[u8]) -> Option<&'e [u8]>) -> bool {
    let by_name = match (role(execfn), script_role(execfn, args)) {
        (Role::Reload(var), _) | (_, Role::Reload(var)) => env(var).is_some(),
        _ => false,
    };
    by_name || RELOAD_FD_VARS.iter().any(|v| env(v).is_some_and(|value| names_fds(v, value)))
}

/// Start side: the program's own arguments name `fd` as handed to it, by a parent
/// that passed a listener and told the program its number on the command line:
/// `fd://N` in an argument (Gunicorn's and Hypercorn's `--bind fd://3`), or an
/// option `--fd`, or one whose name ends in `-fd` or `_fd` (`uvicorn --fd 3`,
/// `daphne --fd=3`, `chaussette --fd 3` under Circus, `--listen-fd 5`), the number
/// after its `=` or as the next argument. Such a listener is declared: a start that
/// no audited parent marked reports it but does not close it in fix mode (before,
/// a supervisor the shim was not in, handing Gunicorn `--bind fd://3`, saw its
/// Gunicorn die at once: "Socket operation on non-socket"). Cold: asked only for an
/// fd fix mode would close.
#[cold]
#[inline(never)]
pub fn args_name_fd<'a>(args: impl Iterator<Item = &'a [u8]>, fd: i32) -> bool {
    let leading = |s: &[u8]| {
        let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
        s.get(..n).and_then(fd_num)
    };
    let mut value_next = false;
    for a in args {
        if core::mem::take(&mut value_next) && fd_num(a) == Some(fd) {
            return true;
        }
        let url = a.windows(5).position(|w| w == b"fd://").and_then(|i| a.get(i + 5..));
        if url.and_then(leading) == Some(fd) {
            return true;
        }
        let Some(opt) = a.strip_prefix(b"--") else { continue };
        let (name, value) = match opt.iter().position(|&b| b == b'=') {
            Some(eq) => (opt.get(..eq).unwrap_or(&[]), opt.get(eq + 1..)),
            None => (opt, None),
        };
        if name == b"fd" || name.ends_with(b"-fd") || name.ends_with(b"_fd") {
            match value {
                Some(v) if fd_num(v) == Some(fd) => return true,
                Some(_) => {}
                None => value_next = true,
            }
        }
    }
    false
}

/// Fix mode repairs the blocked and ignored signals a start that no audited parent
/// marked inherited, except in a server that reloaded itself (`reloaded_start`):
/// reported there, as its fds are, and left as they are (its exec blocked or ignored
/// them on purpose, or passed on what its own first start got: the start cannot
/// tell which).
pub fn startup_signals_repaired(fix: bool, reloaded: bool) -> bool {
    fix && !reloaded
}

/// What the start side does with one inherited fd when the parent was not audited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StartFd {
    /// Report it (`startup_fds`, `"from":"outside"` when the parent was not audited).
    Report,
    /// Fix mode: close it before `main` (reported as fixed).
    Repair,
    /// Already named higher up in the tree (`EXECGUARD_OUTSIDE`): not again.
    Known,
}

/// Say once where stray fds came in: an fd named in `EXECGUARD_OUTSIDE` was reported
/// (or named as `execguard run`'s caller's) higher up. The start-side fix rules
/// (`repairable`: fix mode and `startup_repairable`) still apply to it, except in a
/// server that reloaded itself (`reloaded_start`): what it kept across its own exec
/// is its listeners and worker channels.
pub fn startup_fd(repairable: bool, known_outside: bool, reloaded: bool) -> StartFd {
    if repairable && !reloaded {
        StartFd::Repair
    } else if known_outside {
        StartFd::Known
    } else {
        StartFd::Report
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn held_runs(h: &Held) -> Option<Vec<(i32, i32)>> {
        h.runs().map(|r| r.collect())
    }

    /// The surviving fds fold into ascending runs; anything the list cannot say
    /// exactly (an fd out of order, a stdio fd, a run past HELD_RUNS) spoils it, and
    /// a spoilt list says nothing (the new program lists its fds itself).
    #[test]
    fn held_fds_fold_into_runs_or_spoil() {
        let mut h = Held::new();
        assert_eq!(held_runs(&h), Some(vec![]));
        for fd in [3, 4, 5, 10, 251, 252] {
            h.push(fd);
        }
        assert_eq!(held_runs(&h), Some(vec![(3, 5), (10, 10), (251, 252)]));
        let mut back = h;
        back.push(7);
        assert_eq!(held_runs(&back), None);
        let mut dup = h;
        dup.push(252);
        assert_eq!(held_runs(&dup), None);
        let mut stdio = Held::new();
        stdio.push(2);
        assert_eq!(held_runs(&stdio), None);
        let mut many = Held::new();
        for i in 0..HELD_RUNS as i32 {
            many.push(3 + 2 * i);
        }
        assert_eq!(held_runs(&many).map(|r| r.len()), Some(HELD_RUNS));
        many.push(3 + 2 * HELD_RUNS as i32 - 1);
        assert_eq!(held_runs(&many).map(|r| r.len()), Some(HELD_RUNS), "adjacent: the last run grows");
        many.push(1000);
        assert_eq!(held_runs(&many), None, "one run too many");
        let mut spoilt = h;
        spoilt.spoil();
        assert!(held_runs(&spoilt).is_none());
    }

    /// The exec audit's scan records the survivors, and when it meets a leak the leak
    /// audit records them again from the first: `rewind` takes the list back to its
    /// mark, a run the scan extended, a run it added and a spoil included.
    #[test]
    fn held_rewinds_to_a_mark() {
        let mut h = Held::new();
        let empty = h.mark();
        for fd in [3, 4, 10] {
            h.push(fd);
        }
        let mark = h.mark();
        let before = held_runs(&h);
        for fd in [11, 12, 20] {
            h.push(fd);
        }
        assert_eq!(held_runs(&h), Some(vec![(3, 4), (10, 12), (20, 20)]));
        h.rewind(mark);
        assert_eq!(held_runs(&h), before);
        h.push(5);
        assert_eq!(held_runs(&h), None, "spoilt: out of order");
        h.rewind(mark);
        assert_eq!(held_runs(&h), Some(vec![(3, 4), (10, 10)]));
        h.push(11);
        assert_eq!(held_runs(&h), Some(vec![(3, 4), (10, 11)]), "what follows the rewind folds as before");
        h.rewind(empty);
        assert_eq!(held_runs(&h), Some(vec![]));
        let mut spoilt = Held::new();
        spoilt.spoil();
        let m = spoilt.mark();
        spoilt.rewind(m);
        assert!(held_runs(&spoilt).is_none(), "a spoil before the mark stays");
    }

    /// EXECGUARD_HELD: what `push` would have made, or nothing at all.
    #[test]
    fn held_list_parses_strictly() {
        let parsed = |v: &[u8]| -> Option<Vec<(i32, i32)>> {
            let mut h = Held::new();
            let ok = h.parse(v);
            assert_eq!(ok, held_runs(&h).is_some(), "{}", String::from_utf8_lossy(v));
            held_runs(&h)
        };
        assert_eq!(parsed(b""), Some(vec![]));
        assert_eq!(parsed(b"10"), Some(vec![(10, 10)]));
        assert_eq!(parsed(b"3-5,10,251-252"), Some(vec![(3, 5), (10, 10), (251, 252)]));
        let long: String = (0..HELD_RUNS).map(|i| (3 + 2 * i).to_string()).collect::<Vec<_>>().join(",");
        assert_eq!(parsed(long.as_bytes()).map(|r| r.len()), Some(HELD_RUNS));
        let too_long = format!("{long},{}", 10_000);
        for bad in [&b"2"[..], b"0-4", b"5-4", b"10,10", b"10,11", b"10,9", b"4-6,6", b"x", b"10,", b",10", b"-5", b"5-", b"1-2-3", too_long.as_bytes()] {
            assert!(parsed(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn audited_marker_names_the_pid_and_the_signals_handed_over() {
        let a = |parent, pid, ign, blocked, own| Some(Audited { parent, pid, ign, blocked, own });
        assert_eq!(parse_audited(b"1234"), a(false, 1234, 0, 0, false));
        assert_eq!(parse_audited(b"^77"), a(true, 77, 0, 0, false));
        assert_eq!(parse_audited(b"^77:1000:200"), a(true, 77, 0x1000, 0x200, false));
        assert_eq!(parse_audited(b"5:ffffffffffffffff:0"), a(false, 5, u64::MAX, 0, false));
        // A reload: the signals it passes through, and that the rest is its own.
        assert_eq!(parse_audited(b"+5:800:0"), a(false, 5, 0x800, 0, true));
        assert_eq!(parse_audited(b"+5"), a(false, 5, 0, 0, true));
        // Malformed: the whole marker is refused (the start side then audits itself).
        for bad in [&b""[..], b"x", b"5:", b"5:1", b"5:1:2:3", b"5:g:0", b"5:10000000000000000:0", b"-3", b"+", b"^", b"+^5", b"^+5", b"++5", b"5+", b"+-5"] {
            assert_eq!(parse_audited(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn keep_list() {
        let mut r = FdRanges::new();
        assert!(parse_fd_list(b"3, 7,10-12", &mut r));
        assert!(r.contains(3) && r.contains(7) && r.contains(11) && !r.contains(9) && !r.contains(13));
        let mut r = FdRanges::new();
        assert!(!parse_fd_list(b"x,5,9-2,-1,99999999999", &mut r));
        assert!(r.contains(5) && !r.contains(9) && !r.contains(2));
    }

    #[test]
    fn saturation_keeps_everything() {
        let mut r = FdRanges::new();
        for i in 0..40 {
            r.add(i * 10, i * 10);
        }
        assert!(r.contains(12345));
    }

    #[test]
    fn makeflags_forms() {
        let mut r = FdRanges::new();
        assert_eq!(parse_makeflags(b" -j4 --jobserver-auth=3,4", &mut r), 2);
        assert!(r.contains(3) && r.contains(4) && !r.contains(5));
        let mut r = FdRanges::new();
        assert_eq!(parse_makeflags(b"--jobserver-fds=5,6 -j", &mut r), 2);
        assert!(r.contains(6));
        let mut r = FdRanges::new();
        assert_eq!(parse_makeflags(b"--jobserver-auth=fifo:/tmp/GMfifo1", &mut r), 0);
        assert!(r.is_empty());
    }

    #[test]
    fn nginx_and_listen() {
        let mut r = FdRanges::new();
        assert_eq!(parse_nginx(b"6;7;", &mut r), 2);
        assert!(r.contains(6) && r.contains(7));
        let mut r = FdRanges::new();
        assert!(parse_listen(b"2", b"100", 100, &mut r));
        assert!(r.contains(3) && r.contains(4) && !r.contains(5));
        assert!(!parse_listen(b"2", b"101", 100, &mut FdRanges::new()));
    }

    #[test]
    fn shells() {
        assert!(is_shell(b"/usr/bin/bash", b""));
        assert!(is_shell(b"/bin/dash", b""));
        assert!(!is_shell(b"/usr/bin/bashful", b""));
        assert!(is_shell(b"/opt/fish", b"fish:csh"));
        assert!(!is_shell(b"/usr/sbin/nginx", b""));
        assert!(is_shell(b"/usr/bin/env", b""));
        assert!(is_shell(b"/usr/bin/nohup", b""));
        // Every listed name, bare and as a path's basename; no prefix, extension or
        // truncation of one.
        for n in SHELLS.iter().chain(WRAPPERS.iter()) {
            let name = crate::postfork::names::unfixed(n);
            assert!(is_shell(name, b"") && is_shell(&[b"/usr/bin/".as_slice(), name].concat(), b""), "{name:?}");
            assert!(!is_shell(&[name, b"x"].concat(), b""), "{name:?}x");
            assert!(!is_shell(&[b"x".as_slice(), name].concat(), b""), "x{name:?}");
            assert!(!is_shell(&name[..name.len() - 1], b"") || SHELLS.iter().chain(WRAPPERS.iter()).any(|m| crate::postfork::names::unfixed(m) == &name[..name.len() - 1]));
        }
        // The packed compare at its limits: 12 bytes (the longest a name can be), 13,
        // an empty basename, NULs.
        assert!(!is_shell(b"/bin/busyboxbusy", b"") && !is_shell(b"/bin/abcdefghijkl", b""));
        assert!(is_shell(b"/bin/abcdefghijkl", b"x:abcdefghijkl") && is_shell(b"abcdefghijklm", b"abcdefghijklm"));
        assert!(!is_shell(b"/bin/", b"") && !is_shell(b"", b"") && !is_shell(b"/bin/\0", b""));
    }

    #[test]
    fn repairable() {
        assert!(startup_repairable(Kind::TcpListen, 1, 64));
        assert!(!startup_repairable(Kind::Udp, 10, 64));
        assert!(startup_repairable(Kind::Udp, 1030, 64));
        assert!(!startup_repairable(Kind::File, 1000, 64));
    }

    #[test]
    fn blame_the_creator() {
        let open = FdFacts::default();
        assert_eq!(fd_fate(&FdFacts { cloexec: true, since_start: true, ..open }), FdFate::Closed);
        // Created here, nothing says it is meant: this program's leak.
        assert_eq!(fd_fate(&open), FdFate::Leaked);
        // Inherited at start and unchanged: passed through.
        assert_eq!(fd_fate(&FdFacts { since_start: true, ..open }), FdFate::PassedThrough);
        // Handed to this program (LISTEN_FDS): its own from then on.
        assert_eq!(fd_fate(&FdFacts { since_start: true, handed: true, ..open }), FdFate::Leaked);
        // Kept rules and child set-up win over everything but CLOEXEC.
        assert_eq!(fd_fate(&FdFacts { kept: true, handed: true, since_start: true, ..open }), FdFate::Kept);
        assert_eq!(fd_fate(&FdFacts { set_up: true, ..open }), FdFate::Kept);
        assert!(!marks_child(FdFate::Closed));
        assert!(marks_child(FdFate::PassedThrough) && marks_child(FdFate::Kept) && marks_child(FdFate::Leaked));
        assert!(needs_more_facts(false) && !needs_more_facts(true));
    }

    #[test]
    fn a_spawns_file_actions_decide_first() {
        use FileAction::{Close, CloseFrom, Target};
        let acts = [Target(9), Close(3), CloseFrom(40), Target(5), Target(41), Close(9)];
        let effect = |fd| file_action_effect(&acts, fd);
        // Closed, then nothing names it again.
        assert_eq!(effect(3), ActionEffect::Closes);
        // A dup2 onto 9, then a close of 9: the last one decides.
        assert_eq!(effect(9), ActionEffect::Closes);
        assert_eq!(effect(5), ActionEffect::SetsUp);
        // Above a close-from, unless set up after it.
        assert_eq!(effect(40), ActionEffect::Closes);
        assert_eq!(effect(1000), ActionEffect::Closes);
        assert_eq!(effect(41), ActionEffect::SetsUp);
        // Named by nothing; a dup2's source is not touched.
        assert_eq!(effect(4), ActionEffect::None);
        assert_eq!(file_action_effect(&[Target(7), Close(7), Target(7)], 7), ActionEffect::SetsUp);
        assert_eq!(file_action_effect(&[], 3), ActionEffect::None);

        let open = FdFacts::default();
        // Whatever else is known: an fd the child does not get is not its leak, one
        // set up for it is kept (dup2 onto itself clears CLOEXEC).
        assert_eq!(fd_fate(&FdFacts { action: ActionEffect::Closes, ..open }), FdFate::Closed);
        assert_eq!(fd_fate(&FdFacts { action: ActionEffect::Closes, handed: true, ..open }), FdFate::Closed);
        assert_eq!(fd_fate(&FdFacts { action: ActionEffect::SetsUp, cloexec: true, ..open }), FdFate::Kept);
        assert_eq!(fd_fate(&FdFacts { action: ActionEffect::None, ..open }), FdFate::Leaked);

        let mut fa = FileActions::new();
        assert!(!fa.sets_up_any());
        assert!(fa.push(Target(1)) && fa.push(Close(3)));
        assert!(!fa.sets_up_any(), "stdio set-ups and closes leave the start audit alone");
        assert!(fa.push(Target(12)) && fa.sets_up_any());
        assert_eq!(fa.effect(12), ActionEffect::SetsUp);
        assert_eq!(fa.effect(3), ActionEffect::Closes);
        for i in fa.as_slice().len()..FILE_ACTIONS_MAX {
            assert!(fa.push(Close(100 + i as i32)));
        }
        assert!(!fa.push(Close(7)), "full: the caller then knows nothing");
        assert_eq!(fa.as_slice().len(), FILE_ACTIONS_MAX);
    }

    #[test]
    fn a_reloaders_variables_name_their_fds() {
        let named = |name: &[u8], value: &[u8]| {
            let mut out = FdRanges::new();
            reload_fds(name, value, &mut out).map(|n| (n, (0..40).filter(|&fd| out.contains(fd)).collect::<Vec<i32>>()))
        };
        assert_eq!(named(b"UNICORN_FD", b"8,9"), Some((2, vec![8, 9])));
        assert_eq!(named(b"GUNICORN_FD", b"5"), Some((1, vec![5])));
        assert_eq!(named(b"NGINX", b"6;7;"), Some((2, vec![6, 7])));
        // Puma's FD:URL: the port is not an fd.
        assert_eq!(named(b"PUMA_INHERIT_0", b"5:tcp://127.0.0.1:22"), Some((1, vec![5])));
        assert_eq!(named(b"PUMA_INHERIT_12", b"7:unix:///tmp/puma.sock"), Some((1, vec![7])));
        assert_eq!(named(b"PUMA_INHERIT_0", b"tcp://127.0.0.1:22"), None);
        // Mojolicious's ADDRESS:PORT:FD items, and a unix socket's path.
        assert_eq!(named(b"MOJO_REUSE", b"127.0.0.1:8080:3,unix:/tmp/a:b.sock:4,[::1]:80:5"), Some((3, vec![3, 4, 5])));
        assert_eq!(named(b"MOJO_REUSE", b"8080,x:y"), Some((0, vec![])));
        assert!(names_fds(b"MOJO_REUSE", b"0.0.0.0:8080:6") && !names_fds(b"MOJO_REUSE", b"8080") && !names_fds(b"MOJO_REUSE", b""));
        for name in [&b"PUMA_INHERIT_"[..], b"PUMA_INHERIT_X", b"UNICORN_FDS", b"UNICORN_WORKER"] {
            assert_eq!(named(name, b"3"), None, "{}", String::from_utf8_lossy(name));
        }
        for name in [&b"UNICORN_FD"[..], b"PUMA_INHERIT_0", b"MOJO_REUSE", b"SERVER_STARTER_PORT", b"EINHORN_FD_0"] {
            assert!(may_name_handover(name), "{}", String::from_utf8_lossy(name));
        }
        for name in [&b"UNICORN"[..], b"PUMA", b"PATH", b"USER", b"SERVER_NAME"] {
            assert!(!may_name_handover(name), "{}", String::from_utf8_lossy(name));
        }
        // The quick test lets Einhorn's other variables through; the second pass
        // finds no fd in them.
        assert!(may_name_handover(b"EINHORN_MASTER_PID") && starter_fds(b"EINHORN_MASTER_PID", b"3", &mut FdRanges::new()).is_none());
    }

    #[test]
    fn a_starters_variables_name_their_fds() {
        let named = |name: &[u8], value: &[u8]| {
            let mut out = FdRanges::new();
            starter_fds(name, value, &mut out).map(|n| (n, (0..40).filter(|&fd| out.contains(fd)).collect::<Vec<i32>>()))
        };
        assert_eq!(named(b"SERVER_STARTER_PORT", b"127.0.0.1:8080=4;/tmp/app.sock=5;80=6"), Some((3, vec![4, 5, 6])));
        // A unix path may itself hold `=`: the fd is after the last one.
        assert_eq!(named(b"SERVER_STARTER_PORT", b"/tmp/a=b.sock=7"), Some((1, vec![7])));
        assert_eq!(named(b"SERVER_STARTER_PORT", b"8080;x=;=y"), Some((0, vec![])));
        assert_eq!(named(b"EINHORN_FD_0", b"6"), Some((1, vec![6])));
        assert_eq!(named(b"EINHORN_FD_12", b" 9 "), Some((1, vec![9])));
        assert_eq!(named(b"EINHORN_FDS", b"6 7"), Some((2, vec![6, 7])));
        // Einhorn's other variables, and names that only start as one: not a starter's fds.
        for name in [&b"EINHORN_FD_COUNT"[..], b"EINHORN_FD_FAMILY_0", b"EINHORN_FD_", b"SERVER_STARTER_GENERATION", b"SERVER_STARTER_PORTS"] {
            assert_eq!(named(name, b"3"), None, "{}", String::from_utf8_lossy(name));
        }
        assert!(may_name_starter_fds(b"SERVER_STARTER_PORT") && may_name_starter_fds(b"EINHORN_FD_0") && may_name_starter_fds(b"EINHORN_FDS"));
        assert!(!may_name_starter_fds(b"SERVER_") && !may_name_starter_fds(b"SERVER_NAME") && !may_name_starter_fds(b"SHELL") && !may_name_starter_fds(b"EXECGUARD_TAKEN"));
        // Kept at the starter's exec of its worker, not at the worker's own execs.
        assert!(starter_fds_kept(false, true) && !starter_fds_kept(true, true) && !starter_fds_kept(false, false));
        assert!(STARTER_TAKEN.ends_with(b"\0") && STARTER_TAKEN.starts_with(b"EXECGUARD_TAKEN="));
    }

    #[test]
    fn exec_keep_rules() {
        let mut keep = FdRanges::new();
        keep.add(20, 21);
        let facts = ExecKeepFacts {
            keep: &keep,
            makeflags: b"-j2 --jobserver-auth=5,6",
            reload_fds: b"8;11,12",
            listen_fds: b"1",
            listen_pid: b"42",
            new_pid: Some(42),
            exec_fd: 30,
            keep_all: false,
            starter_named: false,
        };
        let k = exec_keep(&facts);
        for fd in [3, 8, 11, 12, 20, 21, 30] {
            assert!(k.rules.contains(fd), "{fd}");
        }
        assert!(!k.rules.contains(4) && !k.rules.contains(7) && !k.rules.contains(5));
        assert!(k.jobserver.contains(5) && k.jobserver.contains(6) && !k.jobserver.contains(3));
        // Parent side: LISTEN_PID cannot name the child.
        // A spawn helper gets every fd.
        let k = exec_keep(&ExecKeepFacts { keep_all: true, ..facts });
        assert!(k.rules.contains(3) && k.rules.contains(4) && k.rules.contains(70_000) && k.rules.contains(i32::MAX));
        for helper in [&b"/usr/lib/jvm/java-17-openjdk-amd64/lib/jspawnhelper"[..], b"jspawnhelper"] {
            assert_eq!(role(helper), Role::SpawnHelper);
        }
        assert_eq!(role(b"/usr/sbin/php-fpm8.2"), Role::Reload(b"FPM_SOCKETS"));
        assert_eq!(role(b"php-fpm"), Role::Reload(b"FPM_SOCKETS"));
        for uwsgi in [&b"/usr/bin/uwsgi"[..], b"uwsgi", b"/usr/bin/uwsgi-core", b"/usr/bin/uwsgi_python3", b"./uwsgi_python311", b"uwsgi2"] {
            assert_eq!(role(uwsgi), Role::Reload(b"UWSGI_RELOADS"), "{}", String::from_utf8_lossy(uwsgi));
        }
        assert_eq!(role(b"/usr/sbin/haproxy"), Role::Reload(b"HAPROXY_MWORKER_REEXEC"));
        // The quick look at four bytes lets every known name through, and most others not.
        for named in [&b"/usr/lib/jvm/x/lib/jspawnhelper"[..], b"uwsgi_python3", b"/usr/sbin/haproxy", b"/usr/bin/uwsgitop", b"/usr/sbin/php-fpm8.2"] {
            assert!(may_have_role(named), "{}", String::from_utf8_lossy(named));
        }
        // An interpreter that may run a reloader's script (pyuwsgi).
        for (host, script, r) in [
            (&b"/usr/bin/python3.11"[..], &b"/usr/local/bin/uwsgi"[..], Role::Reload(b"UWSGI_RELOADS")),
            (b"python3", b"./uwsgi_python3", Role::Reload(b"UWSGI_RELOADS")),
            (b"/usr/bin/python", b"/usr/local/bin/uwsgi", Role::Reload(b"UWSGI_RELOADS")),
            (b"/usr/bin/python3", b"/usr/bin/uwsgitop", Role::Plain),
            (b"/usr/bin/python3", b"-c", Role::Plain),
            (b"/usr/bin/python3", b"/usr/lib/jvm/x/lib/jspawnhelper", Role::Plain),
            (b"/usr/bin/python3-config", b"uwsgi", Role::Plain),
            (b"/usr/bin/perl", b"uwsgi", Role::Plain),
            (b"/usr/local/bin/uwsgi", b"uwsgi", Role::Plain),
            (b"/usr/bin/ruby3.1", b"/usr/bin/unicorn", Role::Reload(b"UNICORN_FD")),
            (b"/usr/bin/ruby", b"/usr/local/bin/puma", Role::Reload(b"PUMA_INHERIT_0")),
            (b"/usr/bin/perl", b"/usr/bin/hypnotoad", Role::Reload(b"HYPNOTOAD_REV")),
            (b"/usr/bin/perl5.36.0", b"hypnotoad", Role::Reload(b"HYPNOTOAD_REV")),
            (b"/usr/bin/perl", b"/usr/bin/unicorn", Role::Plain),
            (b"/usr/bin/ruby3.1", b"/usr/bin/hypnotoad", Role::Plain),
            (b"/usr/bin/python3", b"/usr/bin/puma", Role::Plain),
            (b"/usr/bin/ruby3.1", b"/usr/bin/pumactl", Role::Plain),
            (b"/usr/bin/rubyx", b"/usr/bin/unicorn", Role::Plain),
        ] {
            assert_eq!(script_role(host, &mut [script].into_iter()), r, "{} {}", String::from_utf8_lossy(host), String::from_utf8_lossy(script));
        }
        assert!(may_have_role(b"/usr/bin/python3.11") && may_have_role(b"python"));
        assert!(may_have_role(b"/usr/bin/ruby3.1") && may_have_role(b"/usr/bin/perl") && may_have_role(b"/usr/bin/hypnotoad"));
        for other in [&b"/bin/sh"[..], b"java", b"u", b"", b"/usr/bin/", b"/usr/bin/head", b"/usr/bin/php", b"/usr/bin/php8.2", b"uws"] {
            assert!(!may_have_role(other), "{}", String::from_utf8_lossy(other));
        }
        for plain in [&b"/usr/bin/jspawnhelper2"[..], b"/opt/jspawnhelper/bin/java", b"", b"/usr/bin/uwsgitop", b"/opt/uwsgi/bin/python3", b"/usr/bin/xuwsgi", b"/usr/sbin/haproxyctl", b"/usr/bin/php8.2", b"php-fpm.conf.d"] {
            assert_eq!(role(plain), Role::Plain, "{}", String::from_utf8_lossy(plain));
        }
        let k = exec_keep(&ExecKeepFacts { new_pid: None, exec_fd: -1, ..facts });
        assert!(!k.rules.contains(3) && !k.rules.contains(30));
        // A jobserver fd is kept only while it is the jobserver's pipe.
        let open = FdFacts::default();
        assert_eq!(fd_fate(&FdFacts { jobserver: true, fifo: true, ..open }), FdFate::Kept);
        assert_eq!(fd_fate(&FdFacts { jobserver: true, ..open }), FdFate::Leaked);
    }

    #[test]
    fn a_listener_named_on_the_command_line_is_declared() {
        let yes = |args: &[&str], fd| args_name_fd(args.iter().map(|a| a.as_bytes()), fd);
        assert!(yes(&["gunicorn", "-w", "2", "-b", "fd://3", "app:app"], 3));
        assert!(yes(&["gunicorn", "--bind=fd://12"], 12));
        assert!(yes(&["hypercorn", "--bind", "fd://4", "--bind", "fd://5"], 5));
        assert!(yes(&["uvicorn", "--fd", "3", "app:app"], 3));
        assert!(yes(&["daphne", "--fd=7", "app"], 7));
        assert!(yes(&["server", "--listen-fd", "5"], 5));
        assert!(yes(&["server", "--socket_fd=6"], 6));
        assert!(!yes(&["gunicorn", "-b", "fd://3"], 4));
        assert!(!yes(&["gunicorn", "-b", "fd://30"], 3));
        assert!(!yes(&["uvicorn", "--fd"], 3));
        assert!(!yes(&["uvicorn", "--fd", "x", "3"], 3), "only the option's own value");
        assert!(!yes(&["prog", "3"], 3));
        assert!(!yes(&["prog", "--fds", "3"], 3));
        assert!(!yes(&["prog", "--port", "3"], 3));
        assert!(!yes(&[], 3));
    }

    /// The script an interpreter runs is found past its options, as each
    /// interpreter writes them.
    #[test]
    fn an_interpreters_script_is_found_past_its_options() {
        let role_of = |cmd: &str| {
            let mut words = cmd.split(' ').map(str::as_bytes);
            let target = words.next().unwrap_or_default();
            script_role(target, &mut words)
        };
        let puma = Role::Reload(b"PUMA_INHERIT_0");
        let unicorn = Role::Reload(b"UNICORN_FD");
        let uwsgi = Role::Reload(b"UWSGI_RELOADS");
        let hypnotoad = Role::Reload(b"HYPNOTOAD_REV");
        for (cmd, r) in [
            // Puma's restart when its $0 is not a file in its directory, and when
            // it was started with -Ilib.
            ("/usr/bin/ruby3.1 -S puma -b tcp://127.0.0.1:9292", puma),
            ("/usr/bin/ruby3.1 -I /app/lib /usr/bin/puma -C config/puma.rb", puma),
            ("/usr/bin/ruby3.1 -I/app/lib -S puma", puma),
            ("/usr/bin/ruby3.1 /usr/bin/puma-wild -I /a:/b", puma),
            ("/usr/bin/ruby -W0 -rbundler/setup /usr/bin/unicorn -c u.rb", unicorn),
            ("/usr/bin/ruby --disable gems --enable=frozen-string-literal /usr/bin/unicorn", unicorn),
            ("/usr/bin/ruby -W:no-deprecated /usr/bin/unicorn", unicorn),
            ("/usr/bin/ruby -w -- /usr/bin/unicorn", unicorn),
            ("/usr/bin/python3 -u -X dev /usr/local/bin/uwsgi --master", uwsgi),
            ("/usr/bin/python3.11 -Wignore -OO -B /usr/local/bin/uwsgi", uwsgi),
            ("/usr/bin/python3 --check-hash-based-pycs never /usr/local/bin/uwsgi", uwsgi),
            ("/usr/bin/perl -w -Mstrict -I /opt/lib /usr/bin/hypnotoad -f app.pl", hypnotoad),
            ("/usr/bin/perl -Iinc -x /usr/bin/hypnotoad", hypnotoad),
            // No script, or a script of another name.
            ("/usr/bin/ruby -e exec('/usr/bin/puma')", Role::Plain),
            ("/usr/bin/ruby -we puma", Role::Plain),
            ("/usr/bin/ruby -I puma /usr/bin/rake", Role::Plain),
            ("/usr/bin/ruby -r puma /app/server.rb", Role::Plain),
            ("/usr/bin/python3 -c import uwsgi", Role::Plain),
            ("/usr/bin/python3 -m uwsgi", Role::Plain),
            ("/usr/bin/python3 -X uwsgi /usr/bin/uwsgitop", Role::Plain),
            ("/usr/bin/python3 - /usr/local/bin/uwsgi", Role::Plain),
            ("/usr/bin/python3 -u", Role::Plain),
            ("/usr/bin/perl -e hypnotoad", Role::Plain),
            ("/usr/bin/perl -I hypnotoad script.pl", Role::Plain),
            ("/usr/bin/perl -Mhypnotoad script.pl", Role::Plain),
            ("/bin/sh -u /usr/bin/puma", Role::Plain),
        ] {
            assert_eq!(role_of(cmd), r, "{cmd}");
        }
    }

    #[test]
    fn say_once_where_strays_came_in() {
        assert_eq!(startup_fd(false, false, false), StartFd::Report);
        assert_eq!(startup_fd(false, true, false), StartFd::Known);
        // The start-side fix rules still apply to what came from outside.
        assert_eq!(startup_fd(true, true, false), StartFd::Repair);
        assert_eq!(startup_fd(true, false, false), StartFd::Repair);
        // ... but not in a server that reloaded itself into the shim: reported once.
        assert_eq!(startup_fd(true, false, true), StartFd::Report);
        assert_eq!(startup_fd(true, true, true), StartFd::Known);
        assert_eq!(startup_fd(false, false, true), StartFd::Report);
        // Its signals likewise.
        assert!(startup_signals_repaired(true, false));
        assert!(!startup_signals_repaired(true, true) && !startup_signals_repaired(false, false));
    }

    /// A start the shim did not see coming is a server's reload of itself only by a
    /// reloader's name with its variable, or by an fd a reload variable names.
    #[test]
    fn a_reload_into_the_shim_is_told_by_name_and_variable() {
        type Vars = &'static [(&'static [u8], &'static [u8])];
        let env = |vars: Vars| move |name: &[u8]| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let reloads: [(&[u8], Vars); 9] = [
            (b"/usr/bin/perl", &[(b"MOJO_REUSE", b"127.0.0.1:8080:3")]),
            (b"/usr/bin/ruby3.1", &[(b"UNICORN_FD", b"8")]),
            (b"/usr/bin/ruby3.1", &[(b"PUMA_INHERIT_0", b"5:tcp://127.0.0.1:9292")]),
            (b"/usr/bin/uwsgi", &[(b"UWSGI_RELOADS", b"0")]),
            (b"./uwsgi_python3", &[(b"PATH", b"/bin"), (b"UWSGI_RELOADS", b"")]),
            (b"/usr/sbin/php-fpm8.2", &[(b"FPM_SOCKETS", b"127.0.0.1:9000=7")]),
            (b"/usr/sbin/haproxy", &[(b"HAPROXY_MWORKER_REEXEC", b"1")]),
            (b"/usr/sbin/nginx", &[(b"NGINX", b"6;7;")]),
            (b"/usr/bin/python3", &[(b"GUNICORN_FD", b"5,6")]),
        ];
        for (name, vars) in reloads {
            assert!(reloaded_start(name, &mut core::iter::empty(), env(vars)), "{}", String::from_utf8_lossy(name));
        }
        // pyuwsgi: the interpreter runs uWSGI's entry-point script.
        let uwsgi_env = env(&[(b"UWSGI_RELOADS", b"1")]);
        assert!(reloaded_start(b"/usr/local/bin/python3.11", &mut [&b"/usr/local/bin/uwsgi"[..]].into_iter(), uwsgi_env));
        assert!(!reloaded_start(b"/usr/local/bin/python3.11", &mut [&b"/usr/local/bin/uwsgitop"[..]].into_iter(), uwsgi_env));
        assert!(!reloaded_start(b"/usr/local/bin/python3.11", &mut [&b"/usr/local/bin/uwsgi"[..]].into_iter(), env(&[])));
        assert!(!reloaded_start(b"/usr/bin/perl", &mut [&b"/usr/local/bin/uwsgi"[..]].into_iter(), uwsgi_env));
        let starts: [(&[u8], Vars); 7] = [
            (b"/usr/bin/ruby3.1", &[(b"PUMA_INHERIT_0", b"tcp://127.0.0.1:9292")]),
            (b"/usr/bin/uwsgi", &[(b"PATH", b"/bin")]),
            (b"/usr/bin/uwsgitop", &[(b"UWSGI_RELOADS", b"0")]),
            (b"/usr/sbin/haproxy", &[(b"FPM_SOCKETS", b"x=3")]),
            (b"/usr/sbin/nginx", &[(b"NGINX", b"")]),
            (b"/usr/bin/python3", &[(b"GUNICORN_FD", b"x")]),
            (b"", &[]),
        ];
        for (name, vars) in starts {
            assert!(!reloaded_start(name, &mut core::iter::empty(), env(vars)), "{}", String::from_utf8_lossy(name));
        }
    }
}
