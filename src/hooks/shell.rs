//! `system`, `popen`, `pclose`. glibc runs these through its internal posix_spawn,
//! so the audit happens in the caller. When the caller holds listening sockets (the
//! nginx `os.execute("curl …self…")` deadlock) or fix mode must change the child's
//! signal state, the shim runs the command itself — POSIX `system()` semantics kept:
//! SIGINT/SIGQUIT ignored and SIGCHLD blocked in the caller while it waits (reference
//! counted across threads, like glibc), `sh -c CMD` with the caller's mask and
//! SIGINT/SIGQUIT reset in the child, 127 as exit status when the shell cannot start,
//! waitpid retried on EINTR — and waits on a pidfd (or, where pidfd_open is refused,
//! polls) so that it can log `system_blocking` every interval while the child runs.
//! Not in the small room: these are not async-signal-safe functions in libc either;
//! still nothing allocates.

use super::exec::environ;
use super::spawn::attr_with;
use crate::config::{self, Mode};
use crate::postfork::audit::{self, Spawn, Spill, Undo};
use crate::postfork::classify;
use crate::postfork::degraded::{self, Path};
use crate::postfork::emit::{Event, Severity};
use crate::postfork::envp::{self, Mark};
use crate::postfork::line::{cstr, Buf};
use crate::postfork::{fds, sys, tls};
use crate::real;
use libc::{c_char, c_int, pid_t, FILE};
use crate::lock::SpinLock;

const SH: &[u8] = b"/bin/sh\0";

/// Async-signal-safe: count listening sockets of this process (CLOEXEC or not: a
/// blocked caller cannot serve them either way).
fn listeners() -> u32 {
    if fds::none_above_stdio() {
        return 0;
    }
    fds::FdIter::new(3).filter(|&fd| classify::kind(fd).is_listener()).count() as u32
}

fn blocking_event(via: &str, command: &[u8], child: pid_t, waited_ms: i64) {
    let _e = sys::ErrnoGuard::new();
    let mut ev = Event::start("system_blocking", Severity::Warn, false);
    ev.say(b" waiting for `");
    ev.say(command.get(..200).unwrap_or(command));
    ev.say(b"` while holding listening sockets");
    ev.str("via", via.as_bytes());
    ev.str("command", command.get(..1024).unwrap_or(command));
    ev.ident(command);
    // The start of a wait is one finding (one per call); "still blocked" reports
    // while the same call waits are another, so that Σ(1 + repeats) of the first
    // counts calls, and a long wait is not hidden behind the calls before it.
    ev.ident(&[(waited_ms > 0) as u8]);
    ev.int("child_pid", child as i64);
    ev.list("listeners");
    let mut omitted = 0u64;
    for fd in fds::FdIter::new(3) {
        if classify::kind(fd).is_listener() {
            let info = classify::classify(fd);
            ev.ident_fd(&info);
            if !ev.fd_item(&info) {
                omitted += 1;
            }
        }
    }
    ev.end_list(Some(("listeners_omitted", omitted)));
    ev.secs("waited_s", waited_ms);
    ev.emit();
}

/// Wait for `pid` like glibc's system (waitpid retried on EINTR); with `monitor`,
/// log `system_blocking` at the start and every interval until the child exits.
fn wait_child(pid: pid_t, monitor: Option<(&str, &[u8])>) -> c_int {
    let Some((via, cmd)) = monitor else { return reap(pid) };
    let interval = config::get().map(|c| c.block_interval_ms).unwrap_or(2000);
    let start = sys::mono_ms();
    blocking_event(via, cmd, pid, 0);
    // SAFETY: pidfd_open(pid, 0) on our own child.
    let pidfd = unsafe { sys::syscall!(libc::SYS_pidfd_open, pid, 0) as c_int };
    if pidfd < 0 {
        if degraded::refused(-pidfd) {
            degraded::note(Path::PidfdOpen, -pidfd);
            return watch_polling(pid, via, cmd, start, interval);
        }
        return reap(pid);
    }
    // pidfds are CLOEXEC; a poll timeout is the only moment we speak.
    loop {
        let mut p = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { crate::real::poll(&mut p, 1, interval as c_int) };
        if r == 0 {
            blocking_event(via, cmd, pid, sys::mono_ms() - start);
        } else if r > 0 || sys::errno() != libc::EINTR {
            break;
        }
    }
    sys::close(pidfd);
    reap(pid)
}

/// waitpid(pid) retried on EINTR: the status, or -1.
fn reap(pid: pid_t) -> c_int {
    let mut status: c_int = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { crate::real::waitpid(pid, &mut status, 0) };
        if r == pid {
            return status;
        }
        if r < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        return -1;
    }
}

/// Without a pidfd (kernel < 5.3, or a seccomp profile that refuses pidfd_open),
/// nothing wakes a waiting thread at an interval without touching the host's signal
/// handling (a SIGCHLD taken with sigtimedwait may be another child's, which the
/// host's own handler must see). So look with waitpid(WNOHANG), sleeping 1 ms,
/// doubling up to POLL_MAX_MS between looks: the caller returns at most 16 ms after
/// its child exits, and a 2 s interval costs about 130 looks.
fn watch_polling(pid: pid_t, via: &str, cmd: &[u8], start: i64, interval: i64) -> c_int {
    const POLL_MAX_MS: i64 = 16;
    let (mut step, mut next) = (1i64, start + interval);
    loop {
        let mut status: c_int = 0;
        // SAFETY: a non-blocking look at our own child.
        let r = unsafe { crate::real::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        if r < 0 && sys::errno() != libc::EINTR {
            return -1;
        }
        let now = sys::mono_ms();
        if now >= next {
            blocking_event(via, cmd, pid, now - start);
            next = now + interval;
        }
        let ms = step.min(next - now).max(1);
        let ts = libc::timespec { tv_sec: 0, tv_nsec: ms * 1_000_000 };
        // SAFETY: a relative sleep; EINTR just ends it early.
        unsafe { sys::syscall!(libc::SYS_nanosleep, &ts as *const libc::timespec, 0) };
        step = (step * 2).min(POLL_MAX_MS);
    }
}

/// SIGINT/SIGQUIT ignored while any thread is in system(), restored by the last one.
struct Quiet {
    users: u32,
    intr: libc::sigaction,
    quit: libc::sigaction,
}

// SAFETY: plain data behind a lock.
unsafe impl Send for Quiet {}

static QUIET: SpinLock<Quiet> = SpinLock::new(Quiet {
    users: 0,
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask).
    intr: unsafe { core::mem::zeroed() },
    // SAFETY: as above.
    quit: unsafe { core::mem::zeroed() },
});

fn quiet_enter() -> (bool, bool) {
    super::sigdisp::touch(libc::SIGINT);
    super::sigdisp::touch(libc::SIGQUIT);
    let mut q = QUIET.lock();
    if q.users == 0 {
        // SAFETY: zeroed sigaction with SIG_IGN; old actions saved for restore.
        unsafe {
            let mut ign: libc::sigaction = core::mem::zeroed();
            ign.sa_sigaction = libc::SIG_IGN;
            let q = &mut *q;
            crate::real::sigaction(libc::SIGINT, &ign, &mut q.intr);
            crate::real::sigaction(libc::SIGQUIT, &ign, &mut q.quit);
        }
    }
    q.users += 1;
    (q.intr.sa_sigaction != libc::SIG_IGN, q.quit.sa_sigaction != libc::SIG_IGN)
}

fn quiet_leave() {
    let mut q = QUIET.lock();
    q.users = q.users.saturating_sub(1);
    if q.users == 0 {
        // SAFETY: restoring the saved actions.
        unsafe {
            crate::real::sigaction(libc::SIGINT, &q.intr, core::ptr::null_mut());
            crate::real::sigaction(libc::SIGQUIT, &q.quit, core::ptr::null_mut());
        }
    }
}

/// Spawn `sh -c cmd` with the plan applied; the fd record is reverted right after.
fn spawn_sh(
    cmd: *const c_char,
    fa: *const libc::posix_spawn_file_actions_t,
    mask: Option<u64>,
    default: u64,
    mark: Mark,
    held: &crate::policy::Held,
    undo: &Undo,
) -> Result<pid_t, c_int> {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, core::ptr::null()];
    let attr = attr_with(core::ptr::null(), mask, default);
    let mut pid: pid_t = 0;
    let r = envp::with_env(environ(), mark, (Some(held), None), |env| {
        // SAFETY: valid argv/attr; file actions are ours or NULL.
        unsafe { real::posix_spawn(&mut pid, SH.as_ptr() as *const c_char, fa, &attr, argv.as_ptr(), env) }
    });
    undo.revert();
    // SAFETY: attr was initialised by attr_with.
    unsafe { crate::real::posix_spawnattr_destroy(&attr as *const _ as *mut _) };
    if r == 0 {
        Ok(pid)
    } else {
        Err(r)
    }
}

struct Audit<'s> {
    undo: Undo<'s>,
    plan: audit::ParentPlan,
    /// The fds ≥ 3 the shell will hold: ours are the only file actions (0/1, and
    /// the close actions of leaked fds), which the audit accounts for.
    held: crate::policy::Held,
    listeners: u32,
}

/// `defer`: fix mode closes leaked fds in the shell by close actions of our own
/// (see `spawn::close_actions`), not by marking them in the caller and back.
fn audit_shell<'s>(via: &'static str, cmd: *const c_char, child_mask: u64, child_ign: u64, spill: &'s mut Spill, defer: bool) -> Audit<'s> {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, core::ptr::null()];
    let mut undo = Undo::with_spill(spill);
    if defer {
        undo.defer_fds();
    }
    // The command names what the user meant to run (`curl …`); argv shows the shell.
    // SAFETY: cmd is the caller's C string.
    let target = unsafe { cstr(cmd, 4096) };
    let sp = Spawn { via, target, target_c: core::ptr::null(), argv: argv.as_ptr(), envp: environ(), exec_fd: -1, parent_side: true, actions: None };
    let mut held = crate::policy::Held::new();
    let plan = audit::parent(&sp, (child_mask, child_ign), &mut undo, (true, false), &mut held);
    let listeners = plan.listeners.unwrap_or_else(listeners);
    Audit { undo, plan, held, listeners }
}

#[no_mangle]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    if cmd.is_null() || config::mode() == Mode::Off {
        // SAFETY: forwarded.
        return unsafe { real::system(cmd) };
    }
    // SAFETY: forwarded.
    let Some(inside) = tls::enter() else { return unsafe { real::system(cmd) } };
    let saved = sys::errno();
    let mask = sys::sigmask(libc::SIG_BLOCK, None).unwrap_or(0);
    // The child of system() gets SIGINT/SIGQUIT reset unless the caller ignores them.
    let mut spill = Spill::uninit();
    // Fix mode closes the leaked fds in the shell (the system() below is always our
    // own spawn then): 200 leaked fds cost the caller 400 fcntl calls when they were
    // marked CLOEXEC and put back. glibc allocates the actions: only in the process
    // the constructor ran in (see spawn.rs).
    let defer = config::mode() == Mode::Fix && crate::postfork::repeat::started_here(sys::getpid());
    let mut a = audit_shell("system", cmd, mask, super::sigdisp::ignored(31), &mut spill, defer);
    // Our own spawn whenever anything is fixed, so the fds are CLOEXEC only for the
    // spawn itself, not for as long as the command runs.
    // And whenever the shell will load the shim after a report: glibc's system()
    // cannot add the mark that keeps the shell's start side from reporting (and
    // listing) the same fds again.
    // And in follow mode when `environ` has dropped the shim: glibc's system()
    // would exec the shell with it as it is.
    let own = a.listeners > 0
        || a.plan.child_mask.is_some()
        || a.plan.child_default != 0
        || a.plan.fds_fixed
        || (a.plan.found && envp::may_load_shim(environ()))
        || envp::follow_needed(environ());
    drop(inside);
    sys::set_errno(saved);
    if !own {
        // glibc's system() ignores SIGINT and SIGQUIT in the caller while it waits.
        super::sigdisp::touch(libc::SIGINT);
        super::sigdisp::touch(libc::SIGQUIT);
        // SAFETY: forwarded.
        return unsafe { real::system(cmd) };
    }
    let (reset_int, reset_quit) = quiet_enter();
    let omask = sys::sigmask(libc::SIG_BLOCK, Some(crate::policy::bit(libc::SIGCHLD))).unwrap_or(mask);
    let mut default = a.plan.child_default;
    if reset_int {
        default |= crate::policy::bit(libc::SIGINT);
    }
    if reset_quit {
        default |= crate::policy::bit(libc::SIGQUIT);
    }
    let mask = a.plan.child_mask.unwrap_or(omask);
    let child_mask = Some(mask);
    let sigs = audit::Sigs { ign: a.plan.sigs.ign & !default, blocked: mask & !crate::policy::GLIBC_INTERNAL };
    let mark = if a.plan.found { Mark::ParentPid(sigs) } else { Mark::No };
    // SAFETY: cmd is the caller's C string.
    let command = unsafe { cstr(cmd, 4096) };
    // SAFETY: all-zero is a valid value to hand to posix_spawn_file_actions_init.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { core::mem::zeroed() };
    let actions_made = defer && a.plan.fds_fixed && super::spawn::close_actions(&mut actions, &a.undo);
    if defer && a.plan.fds_fixed && !actions_made {
        a.undo.apply_now();
    }
    let fa = if actions_made { &actions as *const libc::posix_spawn_file_actions_t } else { core::ptr::null() };
    let spawned = spawn_sh(cmd, fa, child_mask, default, mark, &a.held, &a.undo);
    if actions_made {
        // SAFETY: initialised by close_actions.
        unsafe { real::posix_spawn_file_actions_destroy(&mut actions) };
    }
    let status = match spawned {
        Ok(pid) => wait_child(pid, if a.listeners > 0 { Some(("system", command)) } else { None }),
        Err(_) => 127 << 8,
    };
    // -1: waitpid failed (ECHILD when the host ignores SIGCHLD), and its errno is
    // the caller's answer, as from glibc's system.
    let err = if status == -1 { sys::errno() } else { saved };
    quiet_leave();
    let _ = sys::sigmask(libc::SIG_SETMASK, Some(omask));
    sys::set_errno(err);
    status
}

/// popen streams the shim started itself: (FILE*, child pid, monitor, command).
/// `file == 0` marks a free slot: an all-zero table lives in .bss and costs a
/// process nothing until its first popen (an `Option` here would put 19 KiB of
/// initialised data in the library, and push the hot statics onto more pages).
struct Stream {
    file: usize,
    pid: pid_t,
    fd: c_int,
    monitor: bool,
    command: Buf<256>,
}

const STREAMS: usize = 64;
const FREE: Stream = Stream { file: 0, pid: 0, fd: 0, monitor: false, command: Buf::new() };
static OURS: SpinLock<[Stream; STREAMS]> = SpinLock::new([FREE; STREAMS]);

#[no_mangle]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut FILE {
    if cmd.is_null() || mode.is_null() || config::mode() == Mode::Off {
        // SAFETY: forwarded.
        return unsafe { real::popen(cmd, mode) };
    }
    // SAFETY: forwarded.
    let Some(inside) = tls::enter() else { return unsafe { real::popen(cmd, mode) } };
    let saved = sys::errno();
    // SAFETY: mode is the caller's C string.
    let m = unsafe { cstr(mode, 16) };
    let reading = m.first() == Some(&b'r');
    let valid = matches!(m.first(), Some(b'r' | b'w'));
    let mask = sys::sigmask(libc::SIG_BLOCK, None).unwrap_or(0);
    let mut spill = Spill::uninit();
    // As in system(): fix mode closes leaked fds in the shell, by close actions added
    // to our own spawn's.
    let defer = valid && config::mode() == Mode::Fix && crate::postfork::repeat::started_here(sys::getpid());
    let mut a = audit_shell("popen", cmd, mask, super::sigdisp::ignored(31), &mut spill, defer);
    // As in system(): our own spawn also when only the mark is needed, and in fix
    // mode to close the leaked fds in the shell (`fix_only`: for nothing else).
    let for_more = a.listeners > 0
        || a.plan.child_mask.is_some()
        || a.plan.child_default != 0
        || (a.plan.found && envp::may_load_shim(environ()));
    let fix_only = !for_more && defer && a.plan.fds_fixed;
    // And in follow mode when `environ` has dropped the shim (as in system()).
    let follow_only = !for_more && !fix_only && envp::follow_needed(environ());
    let own = valid && (for_more || fix_only || follow_only);
    drop(inside);
    sys::set_errno(saved);
    if !own {
        // SAFETY: forwarded.
        let r = unsafe { real::popen(cmd, mode) };
        let e = sys::errno();
        a.undo.revert();
        sys::set_errno(e);
        return r;
    }
    // Own spawn only to close leaked fds (or to follow): with every slot of ours
    // taken, glibc's popen does it, the fds marked in the caller for the spawn and
    // put back (the shell then without the shim).
    // SAFETY: cmd/mode are C strings; every resource is released on each error path.
    match unsafe { own_popen(cmd, reading, m.contains(&b'e'), &mut a) } {
        Ok(f) => {
            sys::set_errno(saved);
            f
        }
        Err(NO_SLOT) if fix_only || follow_only => {
            if fix_only {
                a.undo.apply_now();
            }
            sys::set_errno(saved);
            // SAFETY: forwarded.
            let r = unsafe { real::popen(cmd, mode) };
            let e = sys::errno();
            a.undo.revert();
            sys::set_errno(e);
            r
        }
        Err(NO_SLOT) => {
            sys::set_errno(libc::EMFILE);
            core::ptr::null_mut()
        }
        Err(e) => {
            sys::set_errno(e);
            core::ptr::null_mut()
        }
    }
}

/// own_popen's answer when every stream slot is taken (not an errno).
const NO_SLOT: c_int = -1;

unsafe fn own_popen(cmd: *const c_char, reading: bool, cloexec: bool, a: &mut Audit) -> Result<*mut FILE, c_int> {
    let mut slots = OURS.lock();
    let Some(slot) = slots.iter().position(|s| s.file == 0) else {
        a.undo.revert();
        return Err(NO_SLOT);
    };
    let mut p = [0 as c_int; 2];
    // SAFETY: p has room for two fds.
    if unsafe { super::origins::pipe2_here(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        a.undo.revert();
        return Err(sys::errno());
    }
    let (parent_end, child_end, target) = if reading { (p[0], p[1], 1) } else { (p[1], p[0], 0) };
    // SAFETY: zeroed then initialised file actions (init does not allocate in glibc).
    let mut fa: libc::posix_spawn_file_actions_t = unsafe { core::mem::zeroed() };
    unsafe {
        crate::real::posix_spawn_file_actions_init(&mut fa);
        if child_end != target {
            crate::real::posix_spawn_file_actions_adddup2(&mut fa, child_end, target);
        } else {
            // Already on 0/1 but CLOEXEC: a dup elsewhere and back clears the flag.
            crate::real::posix_spawn_file_actions_adddup2(&mut fa, child_end, 1023);
            crate::real::posix_spawn_file_actions_adddup2(&mut fa, 1023, target);
            crate::real::posix_spawn_file_actions_addclose(&mut fa, 1023);
        }
        // POSIX: streams of earlier popen() calls are closed in the new child.
        for s in slots.iter().filter(|s| s.file != 0) {
            crate::real::posix_spawn_file_actions_addclose(&mut fa, s.fd);
        }
    }
    // Fix mode, deferred: the leaked fds are closed in the shell, after the dup2 onto
    // its stdin or stdout; where that cannot be said in close actions, they are
    // marked in the caller now and put back after the spawn (spawn_sh).
    if a.undo.deferred() && a.plan.fds_fixed {
        let added = super::spawn::ClosePlan::of(&a.undo).is_some_and(|plan| plan.add_to(&mut fa));
        if !added {
            a.undo.apply_now();
        }
    }
    // Unlike system(), popen's child keeps the caller's SIGINT/SIGQUIT dispositions.
    let mark = if a.plan.found { Mark::ParentPid(a.plan.sigs) } else { Mark::No };
    let r = spawn_sh(cmd, &fa, a.plan.child_mask, a.plan.child_default, mark, &a.held, &a.undo);
    // SAFETY: fa was initialised above.
    unsafe { crate::real::posix_spawn_file_actions_destroy(&mut fa) };
    sys::close(child_end);
    let pid = match r {
        Ok(pid) => pid,
        Err(e) => {
            sys::close(parent_end);
            return Err(e);
        }
    };
    if !cloexec {
        let _ = sys::fcntl(parent_end, libc::F_SETFD, 0);
    }
    // The caller's new fd, made here where no hook sees it: as an fd-making hook.
    crate::postfork::fdgen::made(parent_end, cloexec);
    let fmode: &[u8] = if reading { b"r\0" } else { b"w\0" };
    // SAFETY: parent_end is our open pipe end.
    let f = unsafe { crate::real::fdopen(parent_end, fmode.as_ptr() as *const c_char) };
    if f.is_null() {
        let e = sys::errno();
        sys::close(parent_end);
        wait_child(pid, None);
        return Err(e);
    }
    let mut command = Buf::<256>::new();
    // SAFETY: cmd is a C string.
    command.raw(unsafe { cstr(cmd, 255) });
    if let Some(s) = slots.get_mut(slot) {
        *s = Stream { file: f as usize, pid, fd: parent_end, monitor: a.listeners > 0, command };
    }
    Ok(f)
}

#[no_mangle]
pub unsafe extern "C" fn pclose(f: *mut FILE) -> c_int {
    let mine = {
        let mut slots = OURS.lock();
        slots.iter_mut().find(|s| s.file != 0 && s.file == f as usize).map(|s| core::mem::replace(s, FREE))
    };
    let Some(s) = mine else {
        // glibc closes the stream's fd inside, as fclose does.
        let fd = super::fdtrack::stream_fd(f);
        // SAFETY: a stream glibc's popen made.
        let r = unsafe { real::pclose(f) };
        super::fdtrack::closed_inside_libc(fd);
        return r;
    };
    // SAFETY: our fdopen'd stream. The hook's body: `libc::fclose` would be a
    // symbol the loader binds at every start.
    unsafe { super::fdtrack::closing(f) };
    let saved = sys::errno();
    let status = wait_child(s.pid, if s.monitor { Some(("popen", s.command.as_bytes())) } else { None });
    // As in system: a failed wait answers with its own errno.
    if status != -1 {
        sys::set_errno(saved);
    }
    status
}
