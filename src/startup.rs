//! The start side: in every process that loads the shim, the constructor audits what
//! the process inherited — fds ≥ 3, blocked signals, ignored signals — and reports it
//! against the parent. This catches parents the shim never ran in (static binaries,
//! raw clone, `env -i` relaunches). In fix mode it repairs, before `main`, only what
//! cannot have been meant for this program (see policy::startup_repairable).

use crate::config::Config;
use crate::policy;
use crate::postfork::audit::{ignored_set, keep_ignored, set_disposition};
use crate::postfork::classify::{self, KINDS};
use crate::postfork::emit::{Event, Severity};
use crate::postfork::line::Buf;
use crate::postfork::{fds, startfds, sys};

const DETAIL_MAX: u32 = 64;
/// Listed fds that may cost a readlink (a path, ~7 µs each).
const PATHS_MAX: u32 = 8;

#[link_section = ".text.startup.execguard"]
pub fn audit(cfg: &Config, fix: bool) {
    // The exec that started us was audited by the parent's shim already.
    let quiet = cfg.audited && !cfg.startup_always;
    let mut parent = Parent::default();
    // Checked here, before audit_fds' frame (two 4 KiB lines) is even set up: stack
    // probes would touch every page of it.
    // A marked start whose marker says what it holds records that: no listing.
    let held = quiet && cfg.held_env && startfds::record_held(crate::postfork::envp::get(crate::hooks::exec::environ(), b"EXECGUARD_HELD"), &cfg.outside);
    if !held {
        let mut low = fds::Low::read();
        if !low.none_above_stdio() {
            if quiet {
                record_fds(cfg, low);
            } else {
                audit_fds(cfg, fix, low, &mut parent);
            }
        }
    }
    if quiet {
        // What the audited parent handed over, as its marker says.
        startfds::set_signals(cfg.audited_sigs.0, cfg.audited_sigs.1);
        // The marker names the ignored signals too: this process's exec audits ask
        // the kernel only about the ones a hook sees change from here, as after a
        // start audit that read them (19 rt_sigaction calls fewer at each exec of a
        // marked process: every process below `execguard run` from a caller with
        // stray fds). Not when a hook saw a change before this constructor (another
        // library's): then nothing is trusted, and every exec asks. After a reload
        // the marker names only what the old image passed through: the start reads
        // the rest, as an unmarked one does.
        let before = crate::hooks::sigdisp::marks();
        if before == 0 {
            let audited = (1u64 << 31) - 1;
            let ign = if cfg.own_start { ignored_set(31) } else { cfg.audited_sigs.0 & audited & !policy::NOT_AUDITED_IGNORED };
            crate::hooks::sigdisp::started(ign, before);
        }
        return;
    }
    // Cheap queries first; the reporting functions (with their event lines) run only
    // when there is something to report.
    let mut blocked = sys::sigmask(libc::SIG_BLOCK, None).unwrap_or(0);
    if blocked & !policy::GLIBC_INTERNAL != 0 && audit_mask(fix, blocked, &mut parent) {
        blocked &= policy::GLIBC_INTERNAL;
    }
    let before = crate::hooks::sigdisp::marks();
    let mut ign = ignored_set(31);
    // From here an exec audit asks the kernel only about signals a hook saw change.
    crate::hooks::sigdisp::started(ign, before);
    if ign & !keep_ignored() != 0 {
        ign &= !audit_ignored(fix, ign, &mut parent);
    }
    startfds::set_signals(ign, blocked & !policy::GLIBC_INTERNAL);
}

/// Where what this process started with came from, asked only when there is
/// something to report (most processes start with nothing to report and never pay
/// for it): the parent's executable, and whether this start is a server's reload
/// of itself into the shim.
#[derive(Default)]
struct Parent {
    exe: Buf<512>,
    read: bool,
    reloaded: Option<bool>,
}

impl Parent {
    /// policy::reloaded_start, by the path this process was run by (AT_EXECFN, as
    /// the exec side goes by the path an exec names), its arguments (the first
    /// 512 bytes of /proc/self/cmdline, read only for a name that may be an
    /// interpreter's: `script_role`) and its environment. After an audited exec (`EXECGUARD_STARTUP=always` lists such a
    /// start too) the old image's shim said whether it was a reload (`+`).
    fn reloaded(&mut self) -> bool {
        *self.reloaded.get_or_insert_with(|| {
            match crate::config::get() {
                Some(c) if c.audited => return c.own_start,
                None => return false,
                Some(_) => {}
            }
            // SAFETY: getauxval is always safe; AT_EXECFN is a C string in the auxv area.
            let execfn = unsafe { crate::postfork::line::cstr(libc::getauxval(libc::AT_EXECFN) as *const libc::c_char, 500) };
            let mut cmdline = [0u8; 512];
            let args = if policy::may_have_role(execfn) { arguments(&mut cmdline) } else { &[][..] };
            let env = crate::hooks::exec::environ();
            let mut args = split_args(args);
            policy::reloaded_start(execfn, &mut args, |var| crate::postfork::envp::get(env, var))
        })
    }

    fn exe(&mut self) -> &[u8] {
        if !self.read {
            self.read = true;
            let mut path = Buf::<40>::new();
            path.s("/proc/");
            path.int(sys::getppid() as i64);
            path.s("/exe");
            path.byte(0);
            let mut tmp = [0u8; 500];
            if let Ok(n) = sys::readlink(path.as_bytes(), &mut tmp) {
                self.exe.raw(tmp.get(..n).unwrap_or(&[]));
            }
        }
        self.exe.as_bytes()
    }
}

/// Async-signal-safe (the constructor's): /proc/self/cmdline into `buf`, as far as
/// whole arguments go (each NUL-terminated; one cut short by the buffer's end is
/// left out); empty when it cannot be read.
fn cmdline(buf: &mut [u8]) -> &[u8] {
    let n = match sys::open(b"/proc/self/cmdline\0", libc::O_RDONLY | libc::O_CLOEXEC, 0) {
        Ok(fd) => {
            let n = sys::read(fd, buf).unwrap_or(0);
            sys::close(fd);
            n
        }
        Err(_) => 0,
    };
    let got = buf.get(..n).unwrap_or(&[]);
    got.iter().rposition(|&b| b == 0).and_then(|last| got.get(..=last)).unwrap_or(&[])
}

/// Async-signal-safe (the constructor's): this process's arguments, as far as the
/// first 4 KiB of /proc/self/cmdline go, name `fd` (policy::args_name_fd). Out of
/// the start blocks, with its buffer in a frame of its own: asked only for a
/// listener fix mode would close.
#[cold]
#[inline(never)]
fn named_in_args(fd: i32) -> bool {
    let mut buf = [0u8; 4096];
    let all = cmdline(&mut buf);
    policy::args_name_fd(split_args(all).skip(1), fd)
}

/// This process's arguments after argv[0], each NUL-terminated, from
/// /proc/self/cmdline into `buf` as far as whole ones fit (`cmdline`).
fn arguments(buf: &mut [u8; 512]) -> &[u8] {
    let all = cmdline(buf);
    all.iter().position(|&b| b == 0).and_then(|end| all.get(end + 1..)).unwrap_or(&[])
}

/// The NUL-terminated arguments in `args`, one by one (none for an empty slice).
fn split_args(args: &[u8]) -> impl Iterator<Item = &[u8]> {
    args.strip_suffix(b"\0").unwrap_or(args).split(|&b| b == 0).take(if args.is_empty() { 0 } else { usize::MAX })
}

fn kept(cfg: &Config, fd: i32) -> bool {
    let ours = cfg.keep.contains(fd) || cfg.handed_here(fd);
    // The rest of inherited_keep is make's jobserver: an fd only while it is a pipe
    // (make 4.3 names fds it did not pass, see policy::ExecKeep).
    let jobserver = !ours && cfg.inherited_keep.contains(fd);
    let fifo = jobserver && fds::is_fifo(fd);
    policy::fd_fate(&policy::FdFacts { kept: ours, jobserver, fifo, ..Default::default() }) == policy::FdFate::Kept
}

/// What the exec audit needs to tell passed-through fds from created ones: the
/// number of every fd held at start (no system call per fd), and which of them came from outside (named
/// by the audited parent in EXECGUARD_OUTSIDE).
#[inline(never)]
fn record_fds(cfg: &Config, low: fds::Low) {
    for fd in fds::FdIter::after(3, low) {
        if startfds::full() {
            break;
        }
        if startfds::record(fd) && cfg.outside.contains(fd) {
            startfds::set_outside(fd);
        }
    }
}

#[inline(never)]
fn audit_fds(cfg: &Config, fix: bool, low: fds::Low, parent: &mut Parent) {
    // Pass 1: record, and count by kind (pools are judged by their size).
    let mut counts = [0u32; KINDS.len()];
    let mut total = 0u32;
    for fd in fds::FdIter::after(3, low) {
        startfds::record(fd);
        if kept(cfg, fd) {
            continue;
        }
        total += 1;
        if let Some(c) = counts.get_mut(classify::kind(fd).index()) {
            *c += 1;
        }
    }
    if total == 0 {
        return;
    }
    // Pass 2: list, and in fix mode close what cannot be intentional.
    let mut fixed_ev = Event::start("startup_fds", Severity::Warn, true);
    let mut left_ev = Event::start("startup_fds", Severity::Warn, false);
    for ev in [&mut fixed_ev, &mut left_ev] {
        ev.say(b" inherited");
        ev.list("fds");
    }
    let (mut nfixed, mut nleft) = (0u32, 0u32);
    let (mut lfixed, mut lleft) = (0u32, 0u32);
    let (mut cfixed, mut cleft) = ([0u32; KINDS.len()], [0u32; KINDS.len()]);
    let mut to_close = Undo::new();
    let mut paths = 0u32;
    // A parent we did not audit: what we hold entered the audited tree here.
    let entering = !cfg.audited;
    for fd in fds::FdIter::new(3) {
        if kept(cfg, fd) {
            continue;
        }
        let kind = classify::kind(fd);
        let n_kind = counts.get(kind.index()).copied().unwrap_or(0);
        // A listener the program's arguments name (`--bind fd://3`) is declared. Only
        // a listener is looked up: a pool of a thousand sockets reads no command line.
        let listener = matches!(kind, classify::Kind::TcpListen | classify::Kind::UnixListen);
        let fixable = fix && policy::startup_repairable(kind, n_kind, cfg.pool_min) && !(listener && named_in_args(fd));
        let repair = match policy::startup_fd(fixable, cfg.outside.contains(fd), fixable && parent.reloaded()) {
            policy::StartFd::Known => {
                startfds::set_outside(fd);
                continue;
            }
            policy::StartFd::Report => {
                if entering {
                    startfds::set_outside(fd);
                }
                false
            }
            policy::StartFd::Repair => true,
        };
        let (ev, n, listed, c) = if repair {
            to_close.push(fd);
            (&mut fixed_ev, &mut nfixed, &mut lfixed, &mut cfixed)
        } else {
            (&mut left_ev, &mut nleft, &mut lleft, &mut cleft)
        };
        *n += 1;
        if let Some(k) = c.get_mut(kind.index()) {
            *k += 1;
        }
        // Addresses and paths only for what fits in the line (19 000 inherited fds
        // would otherwise cost 19 000 readlinks).
        if *listed < DETAIL_MAX {
            let want = if paths < PATHS_MAX { classify::Want::Full } else { classify::Want::Cheap };
            let info = classify::classify_with(fd, want);
            paths += info.linked as u32;
            ev.ident_fd(&info);
            if ev.fd_item(&info) {
                *listed += 1;
            } else {
                *listed = DETAIL_MAX;
            }
        }
    }
    to_close.close_all();
    for (ev, n, listed, c) in [(fixed_ev, nfixed, lfixed, cfixed), (left_ev, nleft, lleft, cleft)] {
        if n == 0 {
            continue;
        }
        let mut ev = ev;
        ev.end_list(Some(("fds_omitted", (n - listed.min(n)) as u64)));
        ev.int("fds_total", n as i64);
        ev.kinds(&c);
        if entering {
            ev.str("from", b"outside");
        }
        origin(&mut ev, parent);
        ev.emit();
    }
}

/// fds to close after the listing (closing during it would be fine for /proc, but
/// not for the poll fallback's batches).
struct Undo {
    ranges: [(i32, i32); 64],
    n: usize,
}

impl Undo {
    fn new() -> Self {
        Undo { ranges: [(0, -1); 64], n: 0 }
    }

    fn push(&mut self, fd: i32) {
        if let Some(last) = self.n.checked_sub(1).and_then(|i| self.ranges.get_mut(i)) {
            if last.1 + 1 == fd {
                last.1 = fd;
                return;
            }
        }
        match self.ranges.get_mut(self.n) {
            Some(slot) => {
                *slot = (fd, fd);
                self.n += 1;
            }
            // Out of room: close it now.
            None => {
                sys::close(fd);
                crate::postfork::fdgen::bump(fd);
                startfds::closed_range(fd as u32, fd as u32);
            }
        }
    }

    fn close_all(&self) {
        if self.n > 0 {
            // Closed where no hook sees it: what the hooks recorded of these
            // numbers no longer holds (fdgen.rs).
            crate::postfork::fdgen::bump_all();
        }
        for &(lo, hi) in self.ranges.iter().take(self.n) {
            if sys::close_range(lo as u32, hi as u32, 0).is_err() {
                for fd in lo..=hi {
                    sys::close(fd);
                }
            }
            // The start record no longer holds these numbers.
            startfds::closed_range(lo as u32, hi as u32);
        }
    }
}

#[inline(never)]
/// The mask was cleared (fix mode): true. Not in a server that reloaded itself into
/// the shim (policy::startup_signals_repaired): its exec blocked them on purpose,
/// and a pending signal unblocked before its handlers exist would end it.
fn audit_mask(fix: bool, old: u64, parent: &mut Parent) -> bool {
    let blocked = old & !policy::GLIBC_INTERNAL;
    let repair = policy::startup_signals_repaired(fix, parent.reloaded());
    let fixed = repair && sys::sigmask(libc::SIG_SETMASK, Some(old & policy::GLIBC_INTERNAL)).is_ok();
    let mut ev = Event::start("startup_sigmask", Severity::Warn, fixed);
    ev.say(b" started with blocked");
    ev.signals("signals", blocked);
    ev.ident(&blocked.to_le_bytes());
    origin(&mut ev, parent);
    ev.emit();
    fixed
}

/// `parent_exe`, and `"via":"reload"` in a server that reloaded itself into the
/// shim (what it started with was held across its own exec).
fn origin(ev: &mut Event, parent: &mut Parent) {
    ev.str("parent_exe", parent.exe());
    if parent.reloaded() {
        ev.str("via", b"reload");
    }
}

/// The signals reset to SIG_DFL (fix mode; not in a server that reloaded itself
/// into the shim, as in audit_mask).
#[inline(never)]
fn audit_ignored(fix: bool, ign: u64, parent: &mut Parent) -> u64 {
    let report = ign & !keep_ignored();
    let mut reset = 0u64;
    if policy::startup_signals_repaired(fix, parent.reloaded()) {
        for sig in 1..=64 {
            let b = policy::bit(sig);
            if report & policy::STARTUP_RESET_IGNORED & b != 0 && set_disposition(sig, libc::SIG_DFL) {
                reset |= b;
            }
        }
    }
    for (set, fixed) in [(reset, true), (report & !reset, false)] {
        if set == 0 {
            continue;
        }
        let mut ev = Event::start("startup_sigign", Severity::Warn, fixed);
        ev.say(b" started with ignored");
        ev.signals("signals", set);
        ev.signals("kept", ign & keep_ignored());
        ev.ident(&set.to_le_bytes());
        ev.ident(&(ign & keep_ignored()).to_le_bytes());
        origin(&mut ev, parent);
        ev.emit();
    }
    reset
}

#[cfg(test)]
mod tests {
    use super::split_args;

    /// /proc/self/cmdline's NUL-terminated arguments, one by one, empty ones kept.
    #[test]
    fn arguments_split_at_their_nul() {
        let all = |b: &[u8]| split_args(b).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>();
        assert_eq!(all(b"-S\0puma\0-b\0tcp://x\0"), ["-S", "puma", "-b", "tcp://x"]);
        assert_eq!(all(b"\0x\0"), ["", "x"]);
        assert_eq!(all(b"one\0"), ["one"]);
        assert!(all(b"").is_empty());
    }
}
