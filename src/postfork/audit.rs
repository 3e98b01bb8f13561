//! The exec-time audit: what the new program would inherit (non-CLOEXEC fds, blocked
//! signals, ignored signals), reported as events and, in fix mode, repaired with an
//! undo record so that a failed exec leaves the process as it was. Small room: runs
//! in fork and vfork children between fork and exec.

use super::classify::{self, KINDS};
use super::emit::{Event, Severity};
use super::repeat::{self, Verdict};
use super::envp::{self, Argv};
use super::line::cstr;
use super::{deliberate, fdgen, fds, maps, startfds, sys, tls};
use crate::config::{self, Mode};
use crate::policy::{self, ExecKeep, FdFacts, FdFate, Held, Role};

/// How many fds get a detail (address, path) in one event.
const DETAIL_MAX: u32 = 64;
/// How many of those may cost a readlink (a path): ~7 µs each.
const PATHS_MAX: u32 = 8;
/// Beyond this many leaked fds, kinds are no longer counted (each costs syscalls).
const KIND_COUNT_MAX: u32 = 20_000;

pub struct Spawn<'a> {
    pub via: &'static str,
    pub target: &'a [u8],
    /// `target` as the caller's C string, when there is one (else NULL).
    pub target_c: *const libc::c_char,
    pub argv: Argv,
    /// The environment the new program gets (for its keep rules).
    pub envp: Argv,
    /// An fd the exec itself needs (fexecve's fd, execveat's dirfd).
    pub exec_fd: i32,
    /// True when auditing in the parent for a child it spawns (posix_spawn, system,
    /// popen): the child's pid is not known, and its own set-up fds are not ours.
    pub parent_side: bool,
    /// The caller's `posix_spawn` file actions, when the shim followed them all
    /// (hooks/spawn_actions.rs): each fd is judged as the child will hold it.
    pub actions: Option<&'a policy::FileActions>,
}

/// What was done, so that the hook can undo it if the exec fails: runs of fds in
/// `ranges`, and past those a bitmap of every fd below 65 536 (`Spill`, 8 KiB of
/// the caller's stack). Only fix mode records anything, and only fix mode pays
/// for the bitmap: a frame that large is touched page by page on entry (stack
/// probes), and in a fork child every touched stack page is a copy-on-write fault.
pub struct Undo<'s> {
    ranges: [(i32, i32); 128],
    n: usize,
    /// Zeroed on first use only.
    spill: Option<&'s mut Spill>,
    spilled: bool,
    old_mask: Option<u64>,
    reset_ign: u64,
    /// The caller repairs the recorded fds itself, in the child only (posix_spawn
    /// close actions): nothing is set here, and nothing is put back.
    deferred: bool,
    /// The highest fd the leak audit saw that the child gets on purpose (kept, passed
    /// through): close actions from above it cannot touch anything meant for the child.
    pub top_kept: i32,
    /// The ranges ran out and there is no bitmap: the leak audit stopped before it
    /// changed anything, and wants to run again with a `Spill`.
    room_wanted: bool,
}

const SPILL_WORDS: usize = 1024;

/// Room for the fds past `Undo::ranges`.
pub type Spill = core::mem::MaybeUninit<[u64; SPILL_WORDS]>;

impl<'s> Undo<'s> {
    /// Nothing past the ranges can be recorded (enough where nothing is repaired).
    pub const fn new() -> Self {
        Undo {
            ranges: [(0, -1); 128],
            n: 0,
            spill: None,
            spilled: false,
            old_mask: None,
            reset_ign: 0,
            deferred: false,
            top_kept: -1,
            room_wanted: false,
        }
    }

    /// With the bitmap for fds past the ranges.
    pub fn with_spill(spill: &'s mut Spill) -> Self {
        Undo { spill: Some(spill), ..Undo::new() }
    }

    /// The fds to repair are only recorded: the caller closes them in the child (see
    /// `deferred`). Set before the audit.
    pub fn defer_fds(&mut self) {
        self.deferred = true;
    }

    /// Async-signal-safe: the recorded fds, as runs (lo, hi), then one by one past the
    /// runs' room.
    pub fn recorded(&self) -> (&[(i32, i32)], impl Iterator<Item = i32> + '_) {
        (self.fd_ranges(), self.spilled_fds())
    }

    /// The fds are to be closed by the caller in the child (see `defer_fds`).
    pub fn deferred(&self) -> bool {
        self.deferred
    }

    /// Async-signal-safe: give up the deferral (the caller could not build its close
    /// actions): FD_CLOEXEC on the recorded fds now, put back by `revert`.
    pub fn apply_now(&mut self) {
        if self.deferred {
            self.deferred = false;
            apply_fixes(self);
        }
    }

    /// The audit stopped early for want of the bitmap (see `room_wanted`).
    pub fn wants_room(&self) -> bool {
        self.room_wanted
    }

    /// Record that `fd` got FD_CLOEXEC from us; false when the record is full (then
    /// `room_wanted` says whether a bitmap would have held it).
    fn push_fd(&mut self, fd: i32) -> bool {
        if let Some(last) = self.n.checked_sub(1).and_then(|i| self.ranges.get_mut(i)) {
            if last.1 + 1 == fd {
                last.1 = fd;
                return true;
            }
        }
        match self.ranges.get_mut(self.n) {
            Some(slot) => {
                *slot = (fd, fd);
                self.n += 1;
                true
            }
            None => {
                if fd as usize >= SPILL_WORDS * 64 {
                    return false;
                }
                let Some(spill) = self.spill.as_deref_mut() else {
                    self.room_wanted = true;
                    return false;
                };
                if !self.spilled {
                    spill.write([0; SPILL_WORDS]);
                    self.spilled = true;
                }
                // SAFETY: initialised just above (or on an earlier spill).
                let spill = unsafe { spill.assume_init_mut() };
                if let Some(w) = spill.get_mut(fd as usize / 64) {
                    *w |= 1 << (fd % 64);
                }
                true
            }
        }
    }

    /// Async-signal-safe: every fd in the spill bitmap.
    fn spilled_fds(&self) -> impl Iterator<Item = i32> + '_ {
        let spill: &[u64] = match self.spill.as_deref() {
            // SAFETY: `spilled` is set only after the bitmap was zeroed.
            Some(s) if self.spilled => unsafe { s.assume_init_ref() },
            _ => &[],
        };
        spill.iter().enumerate().flat_map(|(i, &w)| {
            (0..64).filter(move |b| w & (1 << b) != 0).map(move |b| (i * 64 + b) as i32)
        })
    }

    fn fd_ranges(&self) -> &[(i32, i32)] {
        self.ranges.get(..self.n).unwrap_or(&[])
    }

    /// Async-signal-safe: put back what the fixes changed (after a failed exec).
    /// The test is inlined into the exec hook: a clean spawn whose exec failed (a
    /// shell's command not found, a PATH search by hand) runs no code beyond the
    /// start blocks for it.
    #[inline(always)]
    pub fn revert(&self) {
        // Nothing recorded (the clean spawn): no errno to keep, no loop to run.
        if self.n == 0 && !self.spilled && self.old_mask.is_none() && self.reset_ign == 0 {
            return;
        }
        self.revert_recorded();
    }

    /// Async-signal-safe: `revert`'s work, when something was recorded.
    #[inline(never)]
    fn revert_recorded(&self) {
        let _e = sys::ErrnoGuard::new();
        let ranged = self.fd_ranges().iter().flat_map(|&(lo, hi)| lo..=hi);
        // FD_CLOEXEC is the only fd flag, and these fds had it clear before we set
        // it: one F_SETFD each puts them back. Deferred: nothing was set.
        if !self.deferred {
            for fd in ranged.chain(self.spilled_fds()) {
                let _ = sys::fcntl(fd, libc::F_SETFD, 0);
            }
        }
        if let Some(m) = self.old_mask {
            let _ = sys::sigmask(libc::SIG_SETMASK, Some(m));
        }
        let mut left = self.reset_ign;
        while left != 0 {
            set_disposition(left.trailing_zeros() as i32 + 1, libc::SIG_IGN);
            left &= left - 1;
        }
    }
}

impl Default for Undo<'_> {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Outcome {
    /// Something was reported, fixed or left alone on purpose: the new program's
    /// own start-side audit should stay quiet about it.
    pub found: bool,
    /// The signals the new program starts with (ignored, blocked), for its marker.
    pub sigs: Sigs,
    /// This process's pid and parent's, when the audit asked them (what comes after
    /// it in the exec hook uses them rather than asking again).
    pub ids: Option<sys::Ids>,
    /// The exec is a server's reload of itself (`policy::Role::Reload`): `sigs` are
    /// then the signals this process passed through, and the rest of what the new
    /// image holds is its own (envp::Mark::Reload).
    pub reload: bool,
}

/// Ignored and blocked signal sets (kernel words) a new program is handed.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Sigs {
    pub ign: u64,
    pub blocked: u64,
}

const NOTHING: Outcome = Outcome { found: false, sigs: Sigs { ign: 0, blocked: 0 }, ids: None, reload: false };

/// Can the exec succeed? One `faccessat(X_OK)`, asked only once something is to be
/// reported or fixed: an exec that only passes fds or signals through reports
/// nothing, and its marker is harmless to an exec that fails.
struct CanRun<'a> {
    sp: &'a Spawn<'a>,
    known: Option<bool>,
}

impl<'a> CanRun<'a> {
    fn new(sp: &'a Spawn<'a>) -> Self {
        // An exec of an open fd (fexecve) is not checked by path.
        CanRun { sp, known: (sp.exec_fd >= 0).then_some(true) }
    }

    /// A parent-side audit (posix_spawn, system): the spawn reports its own failure.
    fn assumed(sp: &'a Spawn<'a>) -> Self {
        CanRun { sp, known: Some(true) }
    }

    /// Async-signal-safe: at most one `faccessat` per audit.
    fn ok(&mut self) -> bool {
        let sp = self.sp;
        *self.known.get_or_insert_with(|| spawn_executable(sp))
    }

    /// The check was made, and said the exec will fail.
    fn refused(&self) -> bool {
        self.known == Some(false)
    }
}

/// Async-signal-safe: audit one exec; in fix mode repair and record in `undo`.
/// The state is read first (fds, mask, dispositions): an exec with nothing to
/// report costs no more, not even the check that it can succeed, and neither does
/// one that only passes on what this process was handed (`CanRun`). An exec that
/// cannot succeed (`faccessat(X_OK)` fails: CPython tries every PATH entry with
/// execve) reports nothing and changes nothing: nothing will be inherited.
///
/// `held` gets the fds ≥ 3 that survive the exec, for the new program's marker
/// (policy::Held), or is spoilt when the audit cannot vouch for them.
#[link_section = ".text.startup.execguard"]
pub fn exec(sp: &Spawn, undo: &mut Undo, held: &mut Held) -> Outcome {
    let Some(cfg) = config::get() else { return NOTHING };
    let fix = config::mode() == Mode::Fix;
    // Only one repair can touch errno (libc's sigaction, in `set_disposition`,
    // which keeps it): everything else here is a direct system call. Not reading
    // errno at all keeps a page of libc out of every fork child.
    let mut low = fds::Low::read();
    let no_fds = low.none_above_stdio();
    let mask = sys::sigmask(libc::SIG_BLOCK, None).unwrap_or(0);
    let ign = crate::hooks::sigdisp::ignored(31);
    if no_fds && mask & !policy::GLIBC_INTERNAL == 0 && ign & !keep_ignored() == 0 {
        return NOTHING;
    }
    let mut runs = CanRun::new(sp);
    // Another thread could open an fd between this listing and the exec.
    if !crate::hooks::fork::known_single_threaded() {
        held.spoil();
    }
    let mut found = false;
    let mut ids = None;
    if no_fds {
        // Nothing beyond 0-2 is open: no fd can leak.
    } else {
        let asked = sys::Ids::ask();
        ids = Some(asked);
        found |= fd_audit(sp, cfg, (fix, &mut runs), undo, low, held, asked);
        if undo.wants_room() || runs.refused() {
            return NOTHING;
        }
    }
    // Signals this process started with and still has are passed through, like its
    // inherited fds: reported where they came in, not again at every exec below.
    let (mut start_ign, mut start_blocked) = passed_signals(sp);
    let mut to_report = mask_to_report(mask, start_blocked) != 0 || (!cfg.is_shell && ign_to_report(ign, start_ign) != 0);
    // A server's reload of itself hands its own state to itself (policy::Role::Reload).
    // The environment is read only for a reloader's name, or for signals of this
    // process's own that would be reported.
    let reload = matches!(role(sp, to_report), Role::Reload(_));
    if reload {
        (start_ign, start_blocked, to_report) = (u64::MAX, u64::MAX, false);
    }
    if to_report && !runs.ok() {
        return NOTHING;
    }
    let (mask_found, blocked) = sigmask(sp, fix, undo, mask, start_blocked);
    found |= mask_found;
    let (ign_found, ign) = if cfg.is_shell { (ign & !keep_ignored() != 0, ign) } else { sigign(sp, fix, undo, ign, start_ign) };
    found |= ign_found;
    Outcome { found, sigs: mark_sigs(sp, ign, blocked, reload), ids, reload }
}

#[link_section = ".text.hot.execguard"]
fn keep_set(sp: &Spawn, cfg: &config::Config, keep: &mut ExecKeep, pid: i32) {
    let new_pid = if sp.parent_side { None } else { Some(pid) };
    let mut facts = envp::keep_facts(sp.envp, &cfg.keep, new_pid, sp.exec_fd);
    // A reloader that names its fds (`NGINX`, `GUNICORN_FD`) has them kept by name.
    facts.keep_all = role(sp, false) != Role::Plain;
    policy::exec_keep_into(&facts, keep)
}

/// Async-signal-safe: what the new program is to this one (policy::Role). A reload
/// only where it is one: in this process itself (not a spawn audited in the
/// parent), of a reloader's name with its variable in the new environment, or, when
/// `own_sigs` (the exec hands signals of this process's own), of any program with a
/// variable that names the fds a reloader hands its new image (`NGINX`,
/// `GUNICORN_FD`: `Reload` of no name). The environment is read only then: one pass
/// over it. The names are looked up only for a basename that starts as one of them
/// (`policy::may_have_role`): the lookup is out of the start blocks.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn role(sp: &Spawn, own_sigs: bool) -> Role {
    let named = if policy::may_have_role(sp.target) { named_role(sp) } else { Role::Plain };
    match named {
        Role::Reload(var) if sp.parent_side || !has_var(sp, var) => Role::Plain,
        Role::Plain if own_sigs && !sp.parent_side && names_reload_fds(sp) => Role::Reload(b""),
        r => r,
    }
}

/// Async-signal-safe: the role of the new program by its name (policy::role), or of
/// the script an interpreter runs, its first argument past the interpreter's
/// options (policy::script_role: pyuwsgi, `ruby -S puma`). Out of the start blocks: asked only for a name `may_have_role` lets
/// through (an interpreter's exec costs a page of cold text here).
#[cold]
#[inline(never)]
fn named_role(sp: &Spawn) -> Role {
    match policy::role(sp.target) {
        Role::Plain => policy::script_role(sp.target, &mut envp::iter(sp.argv).skip(1)),
        r => r,
    }
}

/// Async-signal-safe: the new environment holds `var`. Out of the start blocks:
/// asked only at an exec of a reloader's name.
#[cold]
#[inline(never)]
fn has_var(sp: &Spawn, var: &[u8]) -> bool {
    envp::get(sp.envp, var).is_some()
}

/// Async-signal-safe: the new environment names fds for a reloaded server
/// (`policy::RELOAD_FD_VARS`, `policy::names_fds`). Out of the start blocks: asked only where signals of
/// this process's own are handed on.
#[cold]
#[inline(never)]
fn names_reload_fds(sp: &Spawn) -> bool {
    policy::RELOAD_FD_VARS.iter().any(|v| envp::get(sp.envp, v).is_some_and(|value| policy::names_fds(v, value)))
}

/// Async-signal-safe: the signals an exec passes on rather than hands over (ignored,
/// blocked): those this process started with and still has, reported where they
/// came in. For a spawn helper, every blocked one: the helper sets up the real
/// child's mask itself (Temurin 25's clears it), and its own exec judges what it
/// hands on (`mark_sigs`). (A server's reload of itself passes all: `exec`.)
#[inline]
fn passed_signals(sp: &Spawn) -> (u64, u64) {
    let (ign, blocked) = startfds::signals();
    if role(sp, false) == Role::SpawnHelper {
        (ign, u64::MAX)
    } else {
        (ign, blocked)
    }
}

/// Async-signal-safe: the signals the new program's marker names (`ign`, `blocked`:
/// what it gets). A spawn helper is told only of the blocked ones this process
/// passed through itself: a signal this process blocked is then the helper's to
/// hand on, and its exec reports it if the real child would get it (OpenJDK 17's
/// helper leaves the JVM's SIGQUIT blocked). A reloaded server (`reload`) is told
/// only of those this process passed through, and (its marker: envp::Mark::Reload)
/// that the rest are its own, as they were the old image's (it reads what it
/// ignores from the kernel).
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn mark_sigs(sp: &Spawn, ign: u64, blocked: u64, reload: bool) -> Sigs {
    if reload {
        let (start_ign, start_blocked) = startfds::signals();
        Sigs { ign: ign & start_ign, blocked: blocked & start_blocked }
    } else if role(sp, false) == Role::SpawnHelper {
        Sigs { ign, blocked: blocked & startfds::signals().1 }
    } else {
        Sigs { ign, blocked }
    }
}

/// Who is auditing, asked once per audit rather than once per fd: `pid`/`ppid` are
/// this process's; a parent-side audit (posix_spawn) trusts only its own acts.
struct Who<'a> {
    pid: i32,
    ppid: i32,
    parent_side: bool,
    /// This process (a child) swept its fds: the survivors are chosen.
    swept: bool,
    /// This process recorded set-up work (dup2 targets, CLOEXEC cleared) of its own.
    setup: bool,
    /// The start record holds anything.
    starts: bool,
    /// The spawn's file actions (`Spawn::actions`).
    actions: Option<&'a policy::FileActions>,
}

impl<'a> Who<'a> {
    /// Async-signal-safe: two thread-local loads.
    #[link_section = ".text.hot.execguard"]
    fn new(sp: &Spawn<'a>, sys::Ids { pid, ppid }: sys::Ids) -> Self {
        let parent_side = sp.parent_side;
        Who {
            pid,
            ppid,
            parent_side,
            swept: !parent_side && tls::swept(pid),
            setup: !parent_side && tls::has_setup(pid),
            starts: startfds::any(),
            actions: sp.actions,
        }
    }
}

/// Async-signal-safe: the facts about `fd` at this exec.
#[link_section = ".text.hot.execguard"]
fn facts(fd: i32, keep: &ExecKeep, cfg: &config::Config, who: &Who) -> FdFacts {
    // The spawn's own file actions close it or put something there on purpose: the
    // caller's fd is not what the child gets.
    if let Some(a) = who.actions {
        let action = a.effect(fd);
        if action != policy::ActionEffect::None {
            return FdFacts { action, ..FdFacts::default() };
        }
    }
    // The flag a hook saw set, while nothing a hook saw has changed the number
    // since (fdgen.rs); the kernel's answer otherwise.
    // A parent-side audit (posix_spawn, system) runs in the process that owns the
    // fd table: what it learns serves its next audits. A fork child's would only
    // cost it a copy-on-write fault.
    // A number its parent vouched for, unchanged since: from the start record alone
    // (no page of fdgen's tables touched, see startfds::passed_flag).
    let passed = if who.starts { startfds::passed_flag(fd, who.pid, who.ppid) } else { None };
    let cloexec = match passed.or_else(|| fdgen::known_cloexec(fd)) {
        Some(c) => c,
        None if who.parent_side => matches!(fdgen::learn(fd), Ok(true) | Err(_)),
        None => matches!(fds::cloexec(fd), Ok(true) | Err(_)),
    };
    if !policy::needs_more_facts(cloexec) {
        return FdFacts { cloexec, ..FdFacts::default() };
    }
    let set_up = who.swept
        || (who.setup && tls::is_setup(fd, who.pid))
        || deliberate::trusted(fd, who.pid, if who.parent_side { who.pid } else { who.ppid });
    // Only a jobserver-named fd costs a system call here (is it still a pipe?).
    let since = if who.starts { startfds::since(fd, who.pid, who.ppid) } else { startfds::Since { start: false, outside: false } };
    let jobserver = keep.jobserver.contains(fd);
    let fifo = jobserver && fds::is_fifo(fd);
    // After a reload of this program, what it started with is its own, as it was the
    // old image's; what came from outside is still passed through.
    // What the caller of `execguard run` held is its own (EXECGUARD_OUTSIDE), whatever
    // a variable left in its environment names (config::Config::handed_here).
    let handed = cfg.handed_here(fd) || (cfg.own_start && !since.outside);
    FdFacts { cloexec, kept: keep.rules.contains(fd), jobserver, fifo, set_up, since_start: since.start, handed, action: policy::ActionEffect::None }
}

#[link_section = ".text.hot.execguard"]
fn fate(fd: i32, keep: &ExecKeep, cfg: &config::Config, who: &Who) -> FdFate {
    policy::fd_fate(&facts(fd, keep, cfg, who))
}

/// The fd audit of an exec: what every fd ≥ 3 is, and what becomes of it. First a
/// scan that only sorts (`scan`); only when it meets an fd that leaks does the leak
/// audit (`fd_leak`, in the leak block) run, from the first fd again. A fork child
/// below a caller with strays, whose fds are all passed through, so runs no code
/// outside the first 64 KiB of text (one page fault fewer in each such child). A
/// shell hands its fds and ignored signals to its commands on purpose: for it the
/// scan only notes that there was something, so the command's start side stays
/// quiet. True when the new program's start audit should stay quiet.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn fd_audit(sp: &Spawn, cfg: &config::Config, runs: (bool, &mut CanRun<'_>), undo: &mut Undo, low: fds::Low, held: &mut Held, ids: sys::Ids) -> bool {
    let mut keep = ExecKeep::new();
    keep_set(sp, cfg, &mut keep, ids.pid);
    let who = Who::new(sp, ids);
    let mark = held.mark();
    match scan(cfg, low, held, undo, (&keep, &who), !cfg.is_shell) {
        Scan::Clean(any) => any,
        Scan::Leaks(limit) => {
            // The leak audit lists and records the fds again, from the first, with
            // the table's size the scan found.
            held.rewind(mark);
            starter_keep(sp, cfg, &mut keep);
            fd_leak(sp, cfg, runs, undo, low.bounded(limit), None, held, (&keep, &who))
        }
    }
}

/// The parent side's leak audit (posix_spawn, system, popen), which also counts the
/// listeners: it runs in the parent, whose text stays mapped, so with no scan first.
#[inline(never)]
fn parent_fd_leak(sp: &Spawn, cfg: &config::Config, runs: (bool, &mut CanRun<'_>), undo: &mut Undo, low: fds::Low, count: Option<&mut u32>, held: &mut Held) -> bool {
    let ids = sys::Ids::ask();
    let mut keep = ExecKeep::new();
    keep_set(sp, cfg, &mut keep, ids.pid);
    starter_keep(sp, cfg, &mut keep);
    let who = Who::new(sp, ids);
    fd_leak(sp, cfg, runs, undo, low, count, held, (&keep, &who))
}

/// Async-signal-safe: the keep rule for a starter's fds (policy::starter_fds_kept),
/// added only where an fd would leak and the new environment has such a variable:
/// only then is it read for them, out of the hot block. Inline: a call to the
/// general text at every leaking exec was a page fault in each fork child (the
/// repeated-leak fork+exec line read ×1.10–1.11 with it, ×1.09 before).
#[inline(always)]
fn starter_keep(sp: &Spawn, cfg: &config::Config, keep: &mut ExecKeep) {
    if policy::starter_fds_kept(cfg.starter, keep.starter_named) {
        envp::starter_fds(sp.envp, &mut keep.rules);
    }
}

/// What `scan` found.
enum Scan {
    /// No fd leaks: each is passed through, kept, handed over or closed at the exec;
    /// true when the new program gets any of them.
    Clean(bool),
    /// An fd leaks (only when asked to stop there): nothing else was decided. With
    /// the table's size the listing went by (`FdIter::bound`).
    Leaks(Option<i32>),
}

/// Async-signal-safe: the fds ≥ 3 sorted by their fate, recording what `fd_leak`
/// records for them when none leaks (the survivors in `held`; the highest fd the
/// child gets on purpose in `undo.top_kept`). `stop_at_leak`: return at the first
/// fd that leaks (a shell hands every fd on: it does not stop). A frame of its own,
/// with the listing's buffer, gone before `fd_leak`'s is made.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn scan(cfg: &config::Config, low: fds::Low, held: &mut Held, undo: &mut Undo, (keep, who): (&ExecKeep, &Who), stop_at_leak: bool) -> Scan {
    let mut fds = fds::FdIter::after(3, low);
    let mut any = false;
    // Every fd, not up to the first: the survivors are the new program's record.
    #[allow(clippy::while_let_on_iterator)]
    while let Some(fd) = fds.next() {
        let f = fate(fd, keep, cfg, who);
        if f == FdFate::Leaked && stop_at_leak {
            return Scan::Leaks(fds.bound());
        }
        if policy::marks_child(f) {
            any = true;
            if stop_at_leak {
                undo.top_kept = fd;
            }
        }
        if f != FdFate::Closed {
            held.push(fd);
        }
    }
    if !fds.exact() {
        held.spoil();
    }
    Scan::Clean(any)
}

#[link_section = ".text.report.execguard"]
fn header(ev: &mut Event, sp: &Spawn) {
    ev.exec_env(sp.envp);
    ev.str("via", sp.via.as_bytes());
    ev.str("target", cap(sp.target, 1024));
}

fn cap(s: &[u8], n: usize) -> &[u8] {
    s.get(..n).unwrap_or(s)
}

#[link_section = ".text.report.execguard"]
fn argv(ev: &mut Event, argv: Argv) {
    // argv gets at most about a third of the line: the fds matter more.
    ev.soft_limit(Some(1600));
    ev.list("argv");
    let mut omitted = 0u64;
    let mut room = true;
    for a in envp::iter(argv) {
        if room && ev.str_item(cap(a, 256)) {
            continue;
        }
        room = false;
        omitted += 1;
    }
    ev.end_list(Some(("argv_omitted", omitted)));
    ev.soft_limit(None);
}

#[link_section = ".text.report.execguard"]
fn leak_event<'e>(slot: &'e mut core::mem::MaybeUninit<Event>, sp: &Spawn, fix: bool) -> &'e mut Event {
    let ev = Event::start_in(slot, "exec_fd_leak", Severity::Warn, fix);
    ev.say(b" ");
    ev.say(cap(sp.target, 1024));
    ev.say(b" inherits");
    ev.exec_env(sp.envp);
    ev.json_only(|ev| {
        header(ev, sp);
        argv(ev, sp.argv);
    });
    ev.list("fds");
    ev
}

/// One listed fd as the identity pass saw it (its fstat), for the words pass.
#[derive(Clone, Copy)]
struct Seen {
    fd: i32,
    mode: u32,
    ino: u64,
}

/// What the identity pass keeps of the leaked fds for the words: type and inode of
/// the first DETAIL_MAX (the ones a line lists), the file type of every remembered
/// one (the kinds counted). 1.3 KiB, where a type and inode for each was 4 KiB: in a
/// fork child each stack page a first report writes is a copy-on-write fault.
struct Words {
    seen: [core::mem::MaybeUninit<Seen>; DETAIL_MAX as usize],
    /// `st_mode >> 12` (0: fstat failed).
    types: [core::mem::MaybeUninit<u8>; SEEN_MAX],
    n: usize,
}

impl Words {
    /// Async-signal-safe: empty, in the caller's `slot`, without writing the arrays
    /// (a `Words` literal became a call to libc's memset: in a fork child, a page of
    /// libc's text).
    fn new_in(slot: &mut core::mem::MaybeUninit<Words>) -> &mut Words {
        let p = slot.as_mut_ptr();
        // SAFETY: the arrays are MaybeUninit and need nothing; `n` is written here.
        unsafe {
            core::ptr::addr_of_mut!((*p).n).write(0);
            slot.assume_init_mut()
        }
    }

    /// Async-signal-safe: the next leaked fd's fstat (the `n`th of `leaked`).
    fn push(&mut self, fd: i32, id: Option<sys::FileId>) {
        let (mode, ino) = id.map(|id| (id.mode, id.ino)).unwrap_or((0, 0));
        if let Some(s) = self.seen.get_mut(self.n) {
            s.write(Seen { fd, mode, ino });
        }
        if let Some(t) = self.types.get_mut(self.n) {
            t.write((mode >> 12) as u8);
            self.n += 1;
        }
    }

    /// Async-signal-safe: the listed fds' type and inode.
    fn seen(&self) -> &[Seen] {
        let s = self.seen.get(..self.n.min(self.seen.len())).unwrap_or(&[]);
        // SAFETY: the first min(n, DETAIL_MAX) entries were written by push;
        // MaybeUninit<Seen> has Seen's layout.
        unsafe { &*(s as *const [core::mem::MaybeUninit<Seen>] as *const [Seen]) }
    }

    /// Async-signal-safe: every remembered fd's file type, in `leaked`'s order.
    fn types(&self) -> &[u8] {
        let t = self.types.get(..self.n).unwrap_or(&[]);
        // SAFETY: the first n entries were written by push; MaybeUninit<u8> has
        // u8's layout.
        unsafe { &*(t as *const [core::mem::MaybeUninit<u8>] as *const [u8]) }
    }
}

/// Leaked fds remembered between the two passes; past these, the words pass walks
/// the fds again (only for a line that is written).
const SEEN_MAX: usize = 256;

/// Entered only when fds exist. `listeners`, when given, counts the listening
/// sockets among all fds (CLOEXEC or not) in the same pass: `system()`/`popen()`
/// need that count, and a second pass would classify every leaked fd twice.
///
/// Facts, then verdict, then words. The first pass asks each fd's close-on-exec flag
/// (and the other facts of its fate) and builds the layout key: the leaked numbers
/// with their generations (fdgen.rs) and the process whose fds they are. A layout
/// this process family audited before has its identity in the table (repeat.rs,
/// `known`): a repeat then costs no `fstat` at all, and stops here. Everything else
/// (one `fstat` per leaked fd for a new layout's identity; kinds, addresses, paths
/// and the program's name for a line that is written) is in `leak_identity` and
/// `report_leak`, out of line: their frames (the identities, the line) are not
/// this one's, so a repeat's stack probes touch as few pages as the clean path's
/// (in a fork child each touched page is a copy-on-write fault).
#[inline(never)]
#[link_section = ".text.leak.execguard"]
#[allow(clippy::too_many_arguments)]
fn fd_leak(
    sp: &Spawn,
    cfg: &config::Config,
    (fix, runs): (bool, &mut CanRun<'_>),
    undo: &mut Undo,
    low: fds::Low,
    mut listeners: Option<&mut u32>,
    held: &mut Held,
    (keep, who): (&ExecKeep, &Who),
) -> bool {
    let id = repeat::mix(repeat::seed(LEAK, Severity::Warn, fix), cap(sp.target, 1024));
    // The fds leaked here are the auditing process's own, unchanged since it forked
    // us (our own set-up work is never "leaked"): its pid salts their generations.
    let owner = if sp.parent_side { who.pid } else { who.ppid };
    let mut layout = Some(repeat::mix_int(repeat::mix_int(id, owner as u64), fdgen::epoch()));
    // The leaked numbers (1 KiB). Not initialised: only the entries filled are
    // touched (a fork child faults in each stack page it writes).
    let mut leaked = [core::mem::MaybeUninit::<i32>::uninit(); SEEN_MAX];
    let (mut total, mut n_leaked) = (0u32, 0usize);
    let mut fix_errors = 0u32;
    let mut kept_any = false;
    // Not a `for` loop: that moves the iterator (and its 1 KiB buffer) into a
    // second place in this frame.
    let mut fds = fds::FdIter::after(3, low);
    #[allow(clippy::while_let_on_iterator)]
    while let Some(fd) = fds.next() {
        let f = fate(fd, keep, cfg, who);
        // What survives the exec: all but the close-on-exec ones, and the leaked
        // ones fix mode closes.
        if f != FdFate::Closed && !(fix && f == FdFate::Leaked) {
            held.push(fd);
        }
        if f != FdFate::Leaked {
            if policy::marks_child(f) {
                kept_any = true;
                undo.top_kept = fd;
            }
            if let Some(l) = listeners.as_deref_mut() {
                *l += classify::kind(fd).is_listener() as u32;
            }
            continue;
        }
        // The first leak: will the exec run at all? (Nothing was changed or counted
        // yet; the caller sees `runs.refused()`.)
        if total == 0 && !runs.ok() {
            return false;
        }
        total += 1;
        layout = layout.zip(fdgen::of(fd)).map(|(h, g)| repeat::mix_int(repeat::mix_int(h, fd as u64), g as u64));
        if let Some(s) = leaked.get_mut(n_leaked) {
            s.write(fd);
            n_leaked += 1;
        }
        if fix {
            // Record for undo; past the record's room, fix without undo.
            let recorded = undo.push_fd(fd);
            if undo.wants_room() {
                // Nothing was changed or counted yet: the caller starts again with
                // the bitmap.
                return false;
            }
            if !recorded && sys::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC as libc::c_long).is_err() {
                fix_errors += 1;
            }
        }
    }
    if !fds.exact() || fix_errors > 0 {
        held.spoil();
    }
    if total == 0 {
        // Nothing to report, but fds handed over on purpose or passed through still
        // make the new program's start side stay quiet.
        return kept_any;
    }
    let leaked = leaked.get(..n_leaked).unwrap_or(&[]);
    // SAFETY: the first n_leaked entries were written above; MaybeUninit<i32> has
    // i32's layout.
    let leaked: &[i32] = unsafe { &*(leaked as *const [core::mem::MaybeUninit<i32>] as *const [i32]) };
    // Past SEEN_MAX leaked fds the layout is not remembered (the rest is walked again).
    let layout = layout.filter(|_| total as usize <= SEEN_MAX).map(repeat::layout_key);
    let found = Found { total, fix_errors, layout };
    match layout.and_then(repeat::known) {
        Some((known_id, l)) => {
            if let Some(sum) = listeners.as_deref_mut() {
                *sum += l;
            }
            let verdict = repeat::occur(known_id, LEAK, Severity::Warn, fix);
            if verdict == Verdict::Repeat {
                if fix {
                    apply_fixes(undo);
                }
                return true;
            }
            leak_identity(sp, (keep, cfg, who), fix, undo, leaked, found, Err((known_id, verdict)), listeners);
        }
        None => leak_identity(sp, (keep, cfg, who), fix, undo, leaked, found, Ok(id), listeners),
    }
    true
}

/// What the first pass of `fd_leak` found besides the numbers.
#[derive(Clone, Copy)]
struct Found {
    total: u32,
    fix_errors: u32,
    /// The layout key, when it can be remembered.
    layout: Option<u64>,
}

/// The leaked fds' identities (one `fstat` each), then the verdict and the line
/// when `id` is `Ok` (the hash so far: a layout not known); only the identities
/// for the line when it is `Err` (a known finding whose line is due).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
#[link_section = ".text.report.execguard"]
fn leak_identity(
    sp: &Spawn,
    (keep, cfg, who): (&ExecKeep, &config::Config, &Who),
    fix: bool,
    undo: &mut Undo,
    leaked: &[i32],
    found: Found,
    id: Result<u64, (u64, Verdict)>,
    listeners: Option<&mut u32>,
) {
    let mut slot = core::mem::MaybeUninit::uninit();
    let words = Words::new_in(&mut slot);
    let leaked = leaked.get(..SEEN_MAX).unwrap_or(leaked);
    let after = leaked.last().map(|&fd| fd + 1).unwrap_or(3);
    let (id, verdict) = match id {
        Err(known) => {
            // The identity is known: each fd's type and inode only, for the words.
            for &fd in leaked {
                words.push(fd, sys::fstat_id(fd));
            }
            known
        }
        Ok(mut id) => {
            let mut leaked_listeners = 0u32;
            for &fd in leaked {
                let (h, fid) = identify(id, fd, &mut leaked_listeners);
                id = h;
                words.push(fd, fid);
            }
            if found.total as usize > SEEN_MAX {
                id = identify_rest(id, after, (keep, cfg, who), &mut leaked_listeners);
            }
            if let Some(sum) = listeners {
                *sum += leaked_listeners;
            }
            let id = repeat::finish(id, 0);
            if let Some(key) = found.layout {
                repeat::learn(key, id, leaked_listeners);
            }
            let verdict = repeat::occur(id, LEAK, Severity::Warn, fix);
            if verdict == Verdict::Repeat {
                if fix {
                    apply_fixes(undo);
                }
                return;
            }
            (id, verdict)
        }
    };
    let rest = || fds::FdIter::new(after).filter(move |&fd| fate(fd, keep, cfg, who) == FdFate::Leaked);
    report_leak(sp, fix, (leaked, words), found.total, (id, verdict), undo, found.fix_errors, rest);
}

/// Async-signal-safe: the identities of the leaked fds from `after` on (past the
/// SEEN_MAX remembered ones). Out of line: its fd iterator (2 KiB) is not in the
/// frame every first report enters.
#[inline(never)]
#[cold]
fn identify_rest(mut id: u64, after: i32, (keep, cfg, who): (&ExecKeep, &config::Config, &Who), listeners: &mut u32) -> u64 {
    let mut fds = fds::FdIter::new(after);
    #[allow(clippy::while_let_on_iterator)]
    while let Some(fd) = fds.next() {
        if fate(fd, keep, cfg, who) == FdFate::Leaked {
            id = identify(id, fd, listeners).0;
        }
    }
    id
}

/// Async-signal-safe: one leaked fd's identity (one `fstat`: its type, device and
/// inode) mixed into `h`, and the `fstat`'s answer for the words; a listening socket
/// among them is counted.
#[link_section = ".text.leak.execguard"]
fn identify(h: u64, fd: i32, listeners: &mut u32) -> (u64, Option<sys::FileId>) {
    let id = sys::fstat_id(fd);
    let h = repeat::mix_fd(h, fd, id);
    if let Some(i) = id.filter(|i| i.mode & libc::S_IFMT == libc::S_IFSOCK) {
        *listeners += classify::kind_of_stat(fd, i.mode, i.ino).is_listener() as u32;
    }
    (h, id)
}

/// A line that is written. Out of line, with the event in its own frame: a repeat,
/// which never gets here, then probes no stack page for it (in a fork child each is
/// a page fault).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
#[link_section = ".text.report.execguard"]
fn report_leak<I: Iterator<Item = i32>>(
    sp: &Spawn,
    fix: bool,
    (leaked, words): (&[i32], &Words),
    total: u32,
    (id, verdict): (u64, Verdict),
    undo: &mut Undo,
    mut fix_errors: u32,
    rest: impl FnOnce() -> I,
) {
    // The words are gathered before the repairs: past SEEN_MAX they walk the fds again.
    // Built in place: an event is 5 KiB, and each move of it was a memcpy (libc's
    // text) and more stack pages, both faults in a fork child.
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = leak_event(&mut slot, sp, fix);
    leak_words(ev, sp, (leaked, words), total, rest);
    if fix {
        fix_errors += apply_fixes(undo);
    }
    if fix_errors > 0 {
        ev.int("fix_errors", fix_errors as i64);
    }
    ev.human_only(|ev| ev.str("via", sp.via.as_bytes()));
    ev.preset(id, verdict);
    ev.emit();
}

/// Async-signal-safe: FD_CLOEXEC on every fd recorded in `undo`; the failures.
#[link_section = ".text.leak.execguard"]
fn apply_fixes(undo: &Undo) -> u32 {
    if undo.deferred {
        return 0;
    }
    let mut errors = 0;
    for &(lo, hi) in undo.fd_ranges() {
        if sys::close_range(lo as u32, hi as u32, sys::CLOSE_RANGE_CLOEXEC).is_err() {
            for fd in lo..=hi {
                if sys::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC as libc::c_long).is_err() {
                    errors += 1;
                }
            }
        }
    }
    for fd in undo.spilled_fds() {
        if sys::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC as libc::c_long).is_err() {
            errors += 1;
        }
    }
    errors
}

const LEAK: &str = "exec_fd_leak";

/// The words of an `exec_fd_leak` line: details for the first DETAIL_MAX fds (paths
/// for PATHS_MAX of them), kinds counted for all; `rest` yields the leaked fds past
/// the remembered ones.
#[inline(always)]
fn leak_words<I: Iterator<Item = i32>>(ev: &mut Event, sp: &Spawn, (leaked, words): (&[i32], &Words), total: u32, rest: impl FnOnce() -> I) {
    ev.ident(cap(sp.target, 1024));
    let (mut listed, mut omitted, mut paths) = (0u32, 0u64, 0u32);
    let mut counts = [0u32; KINDS.len()];
    let mut info = classify::FdInfo::new();
    let (seen, types) = (words.seen(), words.types());
    let n = leaked.len().min(types.len());
    // The listed ones (the first DETAIL_MAX, each with its Seen): details, items.
    let mut i = 0;
    while i < n && listed < DETAIL_MAX {
        let Some(s) = seen.get(i) else { break };
        let want = if paths < PATHS_MAX { classify::Want::Full } else { classify::Want::Cheap };
        classify::classify_stat_into(&mut info, s.fd, s.mode, s.ino, want);
        paths += info.linked as u32;
        ev.ident_fd(&info);
        if ev.fd_item(&info) {
            listed += 1;
        } else {
            omitted += 1;
            listed = DETAIL_MAX;
        }
        if let Some(k) = counts.get_mut(info.kind.index()) {
            *k += 1;
        }
        i += 1;
    }
    // The other remembered ones: kinds counted (a loop of their own: most of a large
    // leak is here, and a pipe's or a device's kind is its file type alone).
    let (rest_fds, rest_types) = (leaked.get(i..n).unwrap_or(&[]), types.get(i..n).unwrap_or(&[]));
    omitted += rest_fds.len() as u64;
    for (&fd, &ty) in rest_fds.iter().zip(rest_types) {
        if let Some(k) = counts.get_mut(classify::kind_of_stat(fd, (ty as u32) << 12, 0).index()) {
            *k += 1;
        }
    }
    if leaked.len() == SEEN_MAX {
        for (i, fd) in rest().enumerate() {
            omitted += 1;
            // Beyond this many leaked fds, kinds are no longer counted (each costs syscalls).
            if i as u32 + SEEN_MAX as u32 <= KIND_COUNT_MAX {
                if let Some(k) = counts.get_mut(classify::kind(fd).index()) {
                    *k += 1;
                }
            }
        }
    }
    ev.end_list(Some(("fds_omitted", omitted)));
    ev.int("fds_total", total as i64);
    ev.kinds(&counts);
    for n in counts {
        ev.ident(&n.to_le_bytes());
    }
}

/// What a parent-side audit (posix_spawn, system, popen) wants the child to get in
/// fix mode; the hook applies it through spawn attributes, never to the parent.
pub struct ParentPlan {
    pub found: bool,
    /// The signals the child starts with (ignored, blocked), for its marker.
    pub sigs: Sigs,
    /// Some(empty) when the child's mask must be cleared.
    pub child_mask: Option<u64>,
    /// Signals to reset to SIG_DFL in the child.
    pub child_default: u64,
    /// fds were given FD_CLOEXEC for the duration of the spawn (see `Undo`).
    pub fds_fixed: bool,
    /// Listening sockets among all the parent's fds, when the audit looked at every
    /// fd (not for a shell, which is only asked whether anything leaks).
    pub listeners: Option<u32>,
}

/// Async-signal-safe: audit a spawn from the parent's side. `child_mask` and
/// `child_ign` are what the child would start with; leaked fds get FD_CLOEXEC
/// (recorded in `undo`, which the hook reverts right after the spawn). With
/// `want_listeners`, `listeners` counts the listening sockets among all the fds.
///
/// `held` gets the fds ≥ 3 the child will hold (policy::Held); the caller spoils it
/// first when the spawn itself changes fds (file actions of the caller's).
#[link_section = ".text.hot.execguard"]
pub fn parent(sp: &Spawn, (child_mask, child_ign): (u64, u64), undo: &mut Undo, (want_listeners, check_target): (bool, bool), held: &mut Held) -> ParentPlan {
    let _e = sys::ErrnoGuard::new();
    const UNTOUCHED: ParentPlan = ParentPlan { found: false, sigs: Sigs { ign: 0, blocked: 0 }, child_mask: None, child_default: 0, fds_fixed: false, listeners: None };
    let mut plan = UNTOUCHED;
    let Some(cfg) = config::get() else { return plan };
    // `check_target`: the spawn runs `sp.target` (posix_spawn), which may not exist;
    // asked only once something is to be reported or fixed, as at an exec. A spawn
    // that will fail hands nothing over: the plan then changes nothing.
    let mut runs = if check_target { CanRun::new(sp) } else { CanRun::assumed(sp) };
    // This process counts its children's findings: its exec or exit must write them.
    repeat::adopt_if_orphaned();
    let fix = config::mode() == Mode::Fix;
    let mut low = fds::Low::read();
    let no_fds = low.none_above_stdio();
    if !crate::hooks::fork::known_single_threaded() {
        held.spoil();
    }
    // Signals this process started with and still hands on are passed through.
    let (start_ign, start_blocked) = passed_signals(sp);
    if cfg.is_shell {
        plan.found |= (!no_fds && fd_audit(sp, cfg, (fix, &mut runs), undo, low, held, sys::Ids::ask())) || child_ign & !keep_ignored() != 0;
    } else {
        let mut listeners = 0u32;
        let count = if want_listeners { Some(&mut listeners) } else { None };
        let leaked = !no_fds && parent_fd_leak(sp, cfg, (fix, &mut runs), undo, low, count, held);
        if runs.refused() {
            return UNTOUCHED;
        }
        plan.listeners = want_listeners.then_some(listeners);
        plan.fds_fixed = fix && (undo.n > 0 || undo.spilled);
        plan.found |= leaked;
        let notable = child_ign & !keep_ignored();
        let report = ign_to_report(child_ign, start_ign);
        if (report != 0 || mask_to_report(child_mask, start_blocked) != 0) && !runs.ok() {
            return UNTOUCHED;
        }
        if report != 0 {
            report_sigign(sp, report, child_ign & keep_ignored(), fix);
            if fix {
                plan.child_default = report;
            }
        }
        plan.found |= notable != 0;
    }
    // A number ≥ 3 the file actions set up: the child holds it on purpose.
    plan.found |= sp.actions.is_some_and(|a| a.sets_up_any());
    let blocked = child_mask & !policy::GLIBC_INTERNAL;
    let report = mask_to_report(child_mask, start_blocked);
    if report != 0 && !runs.ok() {
        return UNTOUCHED;
    }
    if report != 0 {
        report_sigmask(sp, report, fix);
        if fix {
            plan.child_mask = Some(child_mask & start_blocked);
        }
    }
    plan.found |= blocked != 0;
    plan.sigs = mark_sigs(sp, child_ign & !plan.child_default, plan.child_mask.unwrap_or(child_mask) & !policy::GLIBC_INTERNAL, false);
    plan
}

/// The blocked signals of `mask` an exec reports: not glibc's own, not `passed`
/// (held since start). What `sigmask` reports, and what makes an audit ask whether
/// the exec can run (`CanRun`).
#[inline]
fn mask_to_report(mask: u64, passed: u64) -> u64 {
    mask & !policy::GLIBC_INTERNAL & !passed
}

/// The ignored signals of `ign` an exec reports: not kept by policy, not `passed`.
#[inline]
fn ign_to_report(ign: u64, passed: u64) -> u64 {
    ign & !keep_ignored() & !passed
}

/// Async-signal-safe: blocked signals at an exec, those not `passed` (held since
/// start) reported and, in fix mode, unblocked. (found, what the program gets).
#[link_section = ".text.startup.execguard"]
fn sigmask(sp: &Spawn, fix: bool, undo: &mut Undo, old: u64, passed: u64) -> (bool, u64) {
    let blocked = old & !policy::GLIBC_INTERNAL;
    let report = mask_to_report(old, passed);
    if report == 0 {
        return (blocked != 0, blocked);
    }
    let fixed = fix && sys::sigmask(libc::SIG_SETMASK, Some(old & (policy::GLIBC_INTERNAL | passed))).is_ok();
    if fixed {
        undo.old_mask = Some(old);
    }
    report_sigmask(sp, report, fixed);
    (true, if fixed { blocked & passed } else { blocked })
}

/// Async-signal-safe: the identity of an exec_sigmask/exec_sigign finding (target
/// and signals), and whether to write it; a repeat is counted and builds nothing.
fn signal_finding(name: &'static str, sp: &Spawn, fixed: bool, sets: [u64; 2]) -> Option<(u64, Verdict)> {
    let mut h = repeat::mix(repeat::seed(name, Severity::Warn, fixed), cap(sp.target, 1024));
    for set in sets {
        h = repeat::mix_int(h, set);
    }
    let id = repeat::finish(h, 0);
    let v = repeat::occur(id, name, Severity::Warn, fixed);
    (v != Verdict::Repeat).then_some((id, v))
}

#[inline(never)]
fn report_sigmask(sp: &Spawn, blocked: u64, fixed: bool) {
    let Some((id, v)) = signal_finding("exec_sigmask", sp, fixed, [blocked, 0]) else { return };
    let mut ev = Event::start("exec_sigmask", Severity::Warn, fixed);
    ev.preset(id, v);
    ev.say(b" ");
    ev.say(cap(sp.target, 1024));
    ev.say(b" starts with blocked");
    header(&mut ev, sp);
    ev.signals("signals", blocked);
    blocked_by(&mut ev);
    ev.emit();
}

/// Async-signal-safe: `blocked_by` from this thread's record of its last blocking call.
fn blocked_by(ev: &mut Event) {
    let addr = tls::blocked_by();
    let mut where_ = crate::postfork::line::Buf::<600>::new();
    if maps::module_offset(addr, &mut where_) {
        ev.str("blocked_by", where_.as_bytes());
    }
}

/// Async-signal-safe: ignored signals that stay ignored in fix mode.
#[link_section = ".text.startup.execguard"]
pub fn keep_ignored() -> u64 {
    config::get().map(|c| c.keep_ignored).unwrap_or(policy::KEEP_IGNORED)
}

/// Async-signal-safe: the set of signals 1..=`upto` whose disposition is SIG_IGN.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
pub fn ignored_set(upto: i32) -> u64 {
    read_ignored(upto, u64::MAX)
}

/// Async-signal-safe: as `ignored_set`, asking the kernel only about the signals in
/// `which` (see hooks/sigdisp.rs).
pub fn read_ignored(upto: i32, which: u64) -> u64 {
    let mut set = 0u64;
    for sig in 1..=upto.min(64) {
        let b = policy::bit(sig);
        if b & policy::NOT_AUDITED_IGNORED != 0 || b & which == 0 {
            continue;
        }
        if sys::sig_handler(sig) == Ok(libc::SIG_IGN) {
            set |= b;
        }
    }
    set
}

/// Async-signal-safe: set a disposition with no handler function (SIG_DFL/SIG_IGN).
pub fn set_disposition(sig: i32, disp: libc::sighandler_t) -> bool {
    // libc's sigaction sets errno on failure: the caller's is kept.
    let _e = sys::ErrnoGuard::new();
    crate::hooks::sigdisp::touch(sig);
    // SAFETY: zeroed sigaction is valid; sigaction(2) via glibc is async-signal-safe
    // and not hooked by the shim.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = disp;
        crate::real::sigaction(sig, &sa, core::ptr::null_mut()) == 0
    }
}

/// Async-signal-safe: ignored signals at an exec, those not `passed` (held since
/// start) and not kept by policy reported and, in fix mode, reset. (found, what the
/// program gets).
#[link_section = ".text.startup.execguard"]
fn sigign(sp: &Spawn, fix: bool, undo: &mut Undo, ign: u64, passed: u64) -> (bool, u64) {
    let notable = ign & !keep_ignored();
    let report = ign_to_report(ign, passed);
    if report == 0 {
        return (notable != 0, ign);
    }
    let mut fixed = fix;
    let mut reset = 0u64;
    if fix {
        for sig in 1..=64 {
            if report & policy::bit(sig) != 0 {
                if set_disposition(sig, libc::SIG_DFL) {
                    undo.reset_ign |= policy::bit(sig);
                    reset |= policy::bit(sig);
                } else {
                    fixed = false;
                }
            }
        }
    }
    report_sigign(sp, report, ign & keep_ignored(), fixed);
    (true, ign & !reset)
}

#[inline(never)]
fn report_sigign(sp: &Spawn, report: u64, kept: u64, fixed: bool) {
    let Some((id, v)) = signal_finding("exec_sigign", sp, fixed, [report, kept]) else { return };
    let mut ev = Event::start("exec_sigign", Severity::Warn, fixed);
    ev.preset(id, v);
    ev.say(b" ");
    ev.say(cap(sp.target, 1024));
    ev.say(b" starts with ignored");
    header(&mut ev, sp);
    ev.signals("signals", report);
    ev.signals("kept", kept);
    ev.emit();
}

/// Async-signal-safe: can this path be executed at all? An exec that will fail
/// (CPython's child tries every PATH entry with execve) is not audited.
#[link_section = ".text.startup.execguard"]
pub fn spawn_executable(sp: &Spawn) -> bool {
    if sp.target_c.is_null() {
        return executable(sp.target);
    }
    // SAFETY: the caller's NUL-terminated path.
    unsafe { crate::postfork::sys::syscall!(libc::SYS_faccessat, libc::AT_FDCWD, sp.target_c, libc::X_OK, 0) == 0 }
}

/// Async-signal-safe. Out of line: its 4 KiB path buffer is a frame of its own.
#[inline(never)]
pub fn executable(path: &[u8]) -> bool {
    let mut p = crate::postfork::line::Buf::<4100>::new();
    p.raw(path);
    p.byte(0);
    if p.overflowed() || path.is_empty() {
        return true;
    }
    // SAFETY: NUL-terminated path.
    unsafe { crate::postfork::sys::syscall!(libc::SYS_faccessat, libc::AT_FDCWD, p.as_bytes().as_ptr(), libc::X_OK, 0) == 0 }
}

/// Async-signal-safe: a target path from a C string.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string.
pub unsafe fn target(p: *const libc::c_char) -> &'static [u8] {
    // SAFETY: forwarded contract.
    unsafe { cstr(p, 4096) }
}
