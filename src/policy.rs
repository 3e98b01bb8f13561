//! What is a finding and what is kept on purpose: pure functions over bytes and
//! numbers, unit-tested, callable from the small room (no allocation, no state).

use crate::postfork::classify::Kind;

/// A small set of fd ranges (inclusive). Past its capacity it saturates: then every
/// fd counts as kept, so an overflowing keep-list can only make fix mode do less.
#[derive(Clone, Copy)]
pub struct FdRanges {
    r: [(i32, i32); 32],
    n: usize,
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
        match self.r.get_mut(self.n) {
            Some(slot) => {
                *slot = (lo.max(0), hi);
                self.n += 1;
            }
            None => self.saturated = true,
        }
    }

    pub fn contains(&self, fd: i32) -> bool {
        self.saturated || self.r.iter().take(self.n).any(|&(lo, hi)| lo <= fd && fd <= hi)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.n == 0 && !self.saturated
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

/// nginx's binary upgrade: `NGINX=7;8;9;` (also accepts `:` and `,` separators).
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

/// A decimal pid, for `EXECGUARD_AUDITED`.
pub fn parse_pid(s: &[u8]) -> Option<i32> {
    fd_num(s)
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

/// A shell hands its fds and ignored signals to its commands on purpose, and so does
/// an exec wrapper (`env`, `nohup`, `timeout`, …). A process counts as one when the
/// basename of its executable is a known shell's or wrapper's, or one of the extra
/// names in `EXECGUARD_SHELLS` (colon list).
#[link_section = ".text.startup.execguard"]
pub fn is_shell(exe: &[u8], extra: &[u8]) -> bool {
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(exe);
    // A prefix compare on the fixed 12-byte names: no length scan per name (this
    // runs at every process start, twice).
    let named = |n: &[u8; 12]| n.get(..base.len()).is_some_and(|p| p == base) && n.get(base.len()).is_none_or(|&b| b == 0);
    !base.is_empty() && SHELLS.iter().chain(WRAPPERS.iter()).any(named)
        || (!extra.is_empty() && extra.split(|&b| b == b':').any(|n| !n.is_empty() && n == base))
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn repairable() {
        assert!(startup_repairable(Kind::TcpListen, 1, 64));
        assert!(!startup_repairable(Kind::Udp, 10, 64));
        assert!(startup_repairable(Kind::Udp, 1030, 64));
        assert!(!startup_repairable(Kind::File, 1000, 64));
    }
}
