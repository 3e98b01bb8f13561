//! `posix_spawn`/`posix_spawnp`: audited from the parent (glibc's child calls its
//! internal execve, which no hook sees). Fix mode works through the spawn itself:
//! the caller's attributes are copied and given an empty mask / SIG_DFL for ignored
//! signals; leaked fds get FD_CLOEXEC for the duration of the call only.
//!
//! The race: while the spawn runs, those fds are CLOEXEC in the whole process, so a
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
    let mut ign = audit::ignored_set(31);
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

#[allow(clippy::too_many_arguments)]
unsafe fn spawn(
    via: &'static str,
    pid: *mut pid_t,
    file: *const c_char,
    fa: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
    search: bool,
) -> c_int {
    // SAFETY (both closures): forwarding the caller's arguments.
    let call = |attr: *const posix_spawnattr_t, env: Argv| unsafe {
        if search {
            real::posix_spawnp(pid, file, fa, attr, argv, env)
        } else {
            real::posix_spawn(pid, file, fa, attr, argv, env)
        }
    };
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
    if !audit::executable(target.as_bytes()) {
        // The spawn will fail (ENOENT, EACCES): nothing will be inherited.
        return call(attr, envp);
    }
    let Some(inside) = tls::enter() else { return call(attr, envp) };
    let saved = sys::errno();
    let (mask, ign) = child_state(attr);
    let mut spill = Spill::uninit();
    let mut undo = Undo::with_spill(&mut spill);
    let sp = Spawn { via, target: target.as_bytes(), target_c: core::ptr::null(), argv, envp, exec_fd: -1, parent_side: true };
    let plan = audit::parent(&sp, mask, ign, &mut undo);
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
    let r = envp::with_env(envp, mark, |env| call(use_attr, env));
    undo.revert();
    sys::set_errno(saved);
    r
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
    unsafe { spawn("posix_spawn", pid, path, fa, attr, argv, envp, false) }
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
    unsafe { spawn("posix_spawnp", pid, file, fa, attr, argv, envp, true) }
}
