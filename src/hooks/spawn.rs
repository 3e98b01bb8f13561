//! `posix_spawn`/`posix_spawnp`: audited from the parent (glibc's child calls its
//! internal execve, which no hook sees), each fd as the child will hold it after the
//! caller's file actions when the shim followed them (spawn_actions.rs), as the
//! caller holds it otherwise. Fix mode works through the spawn itself:
//! the caller's attributes are copied and given an empty mask / SIG_DFL for ignored
//! signals. Leaked fds are closed in the child by close actions of our own when the
//! caller passes no file actions and one close-from covers them (at most a few below
//! it); otherwise (the caller's file actions cannot be extended) they get FD_CLOEXEC
//! for the duration of the call only.
//!
//! The race, in that second case: while the spawn runs, those fds are CLOEXEC in the whole process, so a
//! fork+exec in another thread at that instant does not pass them either. That
//! exec is under the shim too and, in fix mode, would drop them anyway unless it
//! set them up on purpose — which it does with dup2/fcntl in its own child, on its
//! own copy of the flags, which this cannot touch. docs/policy.md has the details.

use super::exec::resolve_path;
use crate::config::{self, Mode};
use crate::postfork::audit::{self, Spawn, Spill, Undo};
use crate::postfork::envp::{self, Argv, Mark};
use crate::postfork::line::{cstr, Buf};
use crate::postfork::{sys, tls};
use crate::real;
use libc::{c_char, c_int, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t};

/// Kernel sigset word of a sigset_t.
pub(crate) fn word(set: &libc::sigset_t) -> u64 {
    // SAFETY: sigset_t is at least 8 bytes; the first word is signals 1..64.
    unsafe { core::ptr::read_unaligned(set as *const libc::sigset_t as *const u64) }
}

/// A sigset_t holding the kernel word `w`.
pub(crate) fn sigset(w: u64) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is the empty set.
    let mut s: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as in word().
    unsafe { core::ptr::write_unaligned(&mut s as *mut libc::sigset_t as *mut u64, w) };
    s
}

/// Attributes the child gets: the caller's, or fresh ones, with the plan applied.
pub(crate) fn attr_with(base: *const posix_spawnattr_t, mask: Option<u64>, default: u64) -> posix_spawnattr_t {
    // SAFETY: glibc's posix_spawnattr_t is plain data (flags, pgroup, two sigsets,
    // sched params); a copy is a valid attribute object, and init() only fills it.
    let mut a: posix_spawnattr_t = unsafe { core::mem::zeroed() };
    unsafe {
        if base.is_null() {
            crate::real::posix_spawnattr_init(&mut a);
        } else {
            a = core::ptr::read(base);
        }
        let mut flags: libc::c_short = 0;
        crate::real::posix_spawnattr_getflags(&a, &mut flags);
        if let Some(m) = mask {
            flags |= libc::POSIX_SPAWN_SETSIGMASK as libc::c_short;
            crate::real::posix_spawnattr_setsigmask(&mut a, &sigset(m));
        }
        if default != 0 {
            let mut d = sigset(0);
            if flags & libc::POSIX_SPAWN_SETSIGDEF as libc::c_short != 0 {
                crate::real::posix_spawnattr_getsigdefault(&a, &mut d);
            }
            flags |= libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
            crate::real::posix_spawnattr_setsigdefault(&mut a, &sigset(word(&d) | default));
        }
        crate::real::posix_spawnattr_setflags(&mut a, flags);
    }
    a
}

/// What the child of a spawn with `attr` starts with: (mask, ignored signals).
fn child_state(attr: *const posix_spawnattr_t) -> (u64, u64) {
    let mut mask = sys::sigmask(libc::SIG_BLOCK, None).unwrap_or(0);
    let mut ign = super::sigdisp::ignored(31);
    if !attr.is_null() {
        let mut flags: libc::c_short = 0;
        // SAFETY: attr is the caller's initialised attribute object.
        unsafe {
            crate::real::posix_spawnattr_getflags(attr, &mut flags);
            if flags & libc::POSIX_SPAWN_SETSIGMASK as libc::c_short != 0 {
                let mut m = sigset(0);
                crate::real::posix_spawnattr_getsigmask(attr, &mut m);
                mask = word(&m);
            }
            if flags & libc::POSIX_SPAWN_SETSIGDEF as libc::c_short != 0 {
                let mut d = sigset(0);
                crate::real::posix_spawnattr_getsigdefault(attr, &mut d);
                ign &= !word(&d);
            }
        }
    }
    (mask, ign)
}

/// Which libc function a spawn hook stands for. `pidfd_spawn` and `pidfd_spawnp`
/// (glibc ≥ 2.39) take the same arguments as `posix_spawn` and `posix_spawnp`, and
/// write a pidfd for the child where those write its pid: the same spawn to audit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Spawn,
    SpawnP,
    Pidfd,
    PidfdP,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Spawn => "posix_spawn",
            Via::SpawnP => "posix_spawnp",
            Via::Pidfd => "pidfd_spawn",
            Via::PidfdP => "pidfd_spawnp",
        }
    }

    /// `file` is searched for in PATH.
    fn search(self) -> bool {
        matches!(self, Via::SpawnP | Via::PidfdP)
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn spawn(
    via: Via,
    pid: *mut pid_t,
    file: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let search = via.search();
    // SAFETY (both closures): forwarding the caller's arguments (`pid` is the
    // caller's int for the pid or, for the pidfd functions, the pidfd).
    let call_with = |fa: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, env: Argv| unsafe {
        match via {
            Via::Spawn => real::posix_spawn(pid, file, fa, attr, argv, env),
            Via::SpawnP => real::posix_spawnp(pid, file, fa, attr, argv, env),
            Via::Pidfd => real::pidfd_spawn(pid, file, fa, attr, argv, env),
            Via::PidfdP => real::pidfd_spawnp(pid, file, fa, attr, argv, env),
        }
    };
    let call = |attr: *const posix_spawnattr_t, env: Argv| call_with(fa, attr, env);
    if config::mode() == Mode::Off {
        return call(attr, envp);
    }
    let mut target = Buf::<1024>::new();
    // SAFETY: the caller's file is a C string.
    let name = unsafe { cstr(file, 4096) };
    if search {
        resolve_path(name, &mut target);
    } else {
        target.raw(name);
    }
    // A spawn that will fail (ENOENT, EACCES) hands nothing over: the audit asks
    // (audit::parent's `check_target`) once it has something to report or fix.
    let Some(inside) = tls::enter() else { return call(attr, envp) };
    let saved = sys::errno();
    let (mask, ign) = child_state(attr);
    let mut spill = Spill::uninit();
    let mut undo = Undo::with_spill(&mut spill);
    // Without the caller's file actions, fix mode closes leaked fds in the child
    // (close actions of our own): the parent's fds are not touched at all, so no
    // other thread sees them CLOEXEC for the duration, and nothing is put back.
    // glibc allocates the actions: not in a fork or vfork child that has not exec'd
    // (between fork and exec nothing may allocate), which marks the fds as before.
    let own_actions = fa.is_null() && config::mode() == Mode::Fix && crate::postfork::repeat::started_here(sys::getpid());
    if own_actions {
        undo.defer_fds();
    }
    // The caller's file actions, as the shim followed them (None: not known, and
    // each fd is judged as the caller holds it).
    let actions = if fa.is_null() { None } else { super::spawn_actions::of(fa) };
    let sp = Spawn { via: via.name(), target: target.as_bytes(), target_c: core::ptr::null(), argv, envp, exec_fd: -1, parent_side: true, actions: actions.as_ref() };
    // posix_spawn has no use for the listener count (system_blocking is system's
    // and popen's): no fstat per fd that does not leak.
    // The caller's file actions change the child's fds after this audit (an
    // `addopen` the audit cannot see): then the child lists its own.
    let mut held = crate::policy::Held::new();
    if !fa.is_null() {
        held.spoil();
    }
    let plan = audit::parent(&sp, (mask, ign), &mut undo, (false, true), &mut held);
    // SAFETY: all-zero is a valid value to hand to posix_spawn_file_actions_init.
    let mut actions: posix_spawn_file_actions_t = unsafe { core::mem::zeroed() };
    let actions_made = own_actions && plan.fds_fixed && close_actions(&mut actions, &undo);
    if own_actions && plan.fds_fixed && !actions_made {
        undo.apply_now();
    }
    let fixed_attr;
    let use_attr = if plan.child_mask.is_some() || plan.child_default != 0 {
        fixed_attr = attr_with(attr, plan.child_mask, plan.child_default);
        &fixed_attr as *const posix_spawnattr_t
    } else {
        attr
    };
    drop(inside);
    sys::set_errno(saved);
    let mark = if plan.found { Mark::ParentPid(plan.sigs) } else { Mark::No };
    let use_fa = if actions_made { &actions as *const posix_spawn_file_actions_t } else { fa };
    let r = envp::with_env(envp, mark, (Some(&held), None), |env| call_with(use_fa, use_attr, env));
    if actions_made {
        // SAFETY: initialised by close_actions.
        unsafe { real::posix_spawn_file_actions_destroy(&mut actions) };
    }
    undo.revert();
    sys::set_errno(saved);
    r
}

/// Close actions for the fds the audit recorded, when they are cheaper than marking
/// them CLOEXEC in the parent and back: one close-from (glibc ≥ 2.34: one
/// close_range in the child) from the lowest leaked fd above every fd the child is
/// meant to get (CLOEXEC ones above it close at exec anyway), and at most a few
/// single closes below it. False (nothing left initialised) otherwise: the caller
/// then marks them in the parent. A close action per fd costs the child a close(2)
/// each (more than the flag, measured), and glibc a reallocation each.
pub(crate) fn close_actions(fa: &mut posix_spawn_file_actions_t, undo: &Undo) -> bool {
    let Some(plan) = ClosePlan::of(undo) else { return false };
    // SAFETY (all calls): fa is ours; init fills it, and only an initialised one is
    // added to or destroyed.
    if unsafe { real::posix_spawn_file_actions_init(fa) } != 0 {
        return false;
    }
    let ok = plan.add_to(fa);
    if !ok {
        unsafe { real::posix_spawn_file_actions_destroy(fa) };
    }
    ok
}

/// The close actions for the fds `undo` recorded: one close-from and a few single
/// closes below it (see `close_actions`).
pub(crate) struct ClosePlan {
    from: i32,
    singles: [i32; ClosePlan::SINGLES_MAX],
    n: usize,
}

impl ClosePlan {
    const SINGLES_MAX: usize = 8;

    /// None when the recorded fds do not fit the shape (then they are marked in the
    /// parent instead).
    pub(crate) fn of(undo: &Undo) -> Option<ClosePlan> {
        let (runs, spilled) = undo.recorded();
        let floor = undo.top_kept;
        let from = runs.iter().find(|&&(_, hi)| hi > floor).map(|&(lo, _)| lo.max(floor + 1))?;
        let below = runs.iter().flat_map(|&(lo, hi)| lo..=hi).chain(spilled).filter(|&fd| fd < from);
        let mut plan = ClosePlan { from, singles: [0; Self::SINGLES_MAX], n: 0 };
        for fd in below {
            *plan.singles.get_mut(plan.n)? = fd;
            plan.n += 1;
        }
        Some(plan)
    }

    /// Append the actions to an initialised `fa` (after whatever it holds: a dup2
    /// onto 0 or 1 comes first). False when glibc refused one.
    pub(crate) fn add_to(&self, fa: &mut posix_spawn_file_actions_t) -> bool {
        // SAFETY: fa is initialised (the caller's contract); the calls only append.
        let mut ok = unsafe { real::posix_spawn_file_actions_addclosefrom_np(fa, self.from) } == 0;
        for &fd in self.singles.iter().take(self.n) {
            // SAFETY: as above.
            ok = ok && unsafe { real::posix_spawn_file_actions_addclose(fa, fd) } == 0;
        }
        ok
    }
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { spawn(Via::Spawn, pid, path, fa, attr, argv, envp) }
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { spawn(Via::SpawnP, pid, file, fa, attr, argv, envp) }
}

/// glibc ≥ 2.39's `pidfd_spawn` and `pidfd_spawnp`, each exported only as
/// `NAME@GLIBC_2.39`, a non-default version (see `pidfd_entry`): it takes the place
/// of libc's for every program linked against it, and is invisible to
/// `dlsym(RTLD_DEFAULT, …)` and to a reference without that version — on a libc
/// without the functions a program that probes for them still finds none (log mode
/// stays invisible), and where libc has them the probe finds libc's.
#[cfg(execguard_pidfd_hooks)]
unsafe fn pidfd_hook(
    via: Via,
    pidfd: *mut c_int,
    file: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // Reached through dlvsym on a libc without them: their absence's answer.
    if !real::has_pidfd_spawn(via.search()) {
        return libc::ENOSYS;
    }
    // SAFETY: forwarded.
    unsafe { spawn(via, pidfd, file, fa, attr, argv, envp) }
}

#[cfg(execguard_pidfd_hooks)]
unsafe extern "C" fn pidfd_spawn_hook(pidfd: *mut c_int, path: *const c_char, fa: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: forwarded.
    unsafe { pidfd_hook(Via::Pidfd, pidfd, path, fa, attr, argv, envp) }
}

#[cfg(execguard_pidfd_hooks)]
unsafe extern "C" fn pidfd_spawnp_hook(pidfd: *mut c_int, file: *const c_char, fa: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: forwarded.
    unsafe { pidfd_hook(Via::PidfdP, pidfd, file, fa, attr, argv, envp) }
}

// The two names with the version glibc gave them, non-default (one `@`): the loader
// binds a reference to `pidfd_spawn@GLIBC_2.39` to the first object in the search
// order that defines that name and version, which is the preloaded shim; a lookup
// without a version skips a non-default one (glibc's dl-lookup.c, `check_match`;
// musl's loader skips it too). build.rs defines the version node.
macro_rules! pidfd_entry {
    ($hook:ident, $name:literal) => {
        core::arch::global_asm!(
            ".globl {f}",
            concat!(".symver {f}, ", $name, "@GLIBC_2.39"),
            f = sym $hook,
        );
    };
}
#[cfg(execguard_pidfd_hooks)]
pidfd_entry!(pidfd_spawn_hook, "pidfd_spawn");
#[cfg(execguard_pidfd_hooks)]
pidfd_entry!(pidfd_spawnp_hook, "pidfd_spawnp");
