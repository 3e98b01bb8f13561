//! The exec family. glibc's execv*/execl* reach the kernel through internal calls,
//! never through the exported `execve`, so each entry point is hooked. Every hook
//! body is in the small room: it may run in a fork or vfork child.

use crate::config::{self, Mode};
use crate::postfork::audit::{self, Spawn, Spill, Undo};
use crate::postfork::envp::{self, Argv, Mark};
use crate::postfork::line::{cstr, Buf};
use crate::postfork::{classify, sys, tls};
use crate::real;
use libc::{c_char, c_int};

/// What an exec hook asks the kernel to run once the environment is chosen. A value,
/// not a closure: a closure's body is a generic instance the compiler places with
/// the rest of the text, outside the block every start maps (one more 64 KiB window
/// at every exec, 5–10 µs).
#[derive(Clone, Copy)]
pub(crate) enum ExecCall {
    Execve(*const c_char, Argv),
    Execvpe(*const c_char, Argv),
    Fexecve(c_int, Argv),
    Execveat(c_int, *const c_char, Argv, c_int),
}

impl ExecCall {
    /// Async-signal-safe: the real call, with `env` for the environment.
    #[link_section = ".text.startup.execguard"]
    fn run(self, env: Argv) -> c_int {
        // SAFETY: the hook's caller's own arguments, forwarded with our environment
        // array (execvpe keeps execvp's search and ENOEXEC fallback).
        unsafe {
            match self {
                ExecCall::Execve(path, argv) => real::execve(path, argv, env),
                ExecCall::Execvpe(file, argv) => real::execvpe(file, argv, env),
                ExecCall::Fexecve(fd, argv) => real::fexecve(fd, argv, env),
                ExecCall::Execveat(dirfd, path, argv, flags) => real::execveat(dirfd, path, argv, env, flags),
            }
        }
    }
}

/// Async-signal-safe: audit, repair (fix mode), then make the exec `call` with the
/// environment to pass; on failure undo the repairs and return the real result and
/// errno.
///
/// Small, and shared by every exec hook: the work is in functions of their own,
/// whose frames exist only when they run. (Stack probes touch every page of a frame
/// on entry, and in a fork child each touched page is a copy-on-write fault: an exec
/// hook with one 20 KiB frame cost five of them, even in off mode.)
#[inline(never)]
#[link_section = ".text.startup.execguard"]
pub(crate) fn guarded(sp: &Spawn, call: ExecCall) -> c_int {
    if config::mode() == Mode::Off {
        return call.run(sp.envp);
    }
    // Fix mode records its repairs for undo in 128 runs of fds; more runs than
    // that (fds leaked one apart) need the 8 KiB bitmap, two stack pages. Most
    // leaks are a few runs, so the audit first goes without it, and starts again
    // with it only when it ran out of room, before it changed or wrote anything.
    // One copy of the audit's path for every exec entry point (it was generic over
    // the exec: six copies, 14 KiB of the text every start maps).
    match guarded_with(sp, Undo::new(), call) {
        Some(r) => r,
        None => guarded_fix(sp, call),
    }
}

/// Async-signal-safe: fix mode, with room to undo any number of repairs.
#[inline(never)]
#[cold]
fn guarded_fix(sp: &Spawn, call: ExecCall) -> c_int {
    let mut spill = Spill::uninit();
    match guarded_with(sp, Undo::with_spill(&mut spill), call) {
        Some(r) => r,
        // With the bitmap the record never runs out of room (fds past 65 535 are
        // fixed without undo): not reached.
        None => call.run(sp.envp),
    }
}

/// Async-signal-safe. `None` when the undo record ran out of room: nothing was
/// changed, written or counted, the exec not called, and the caller audits again
/// with more room.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
fn guarded_with(sp: &Spawn, mut undo: Undo<'_>, call: ExecCall) -> Option<c_int> {
    let Some(inside) = tls::enter() else { return Some(call.run(sp.envp)) };
    // The audit keeps errno as it was (see audit::exec).
    let mut held = crate::policy::Held::new();
    let out = audit::exec(sp, &mut undo, &mut held);
    if undo.wants_room() {
        drop(inside);
        return None;
    }
    // The process loses its findings' table at exec: what is pending is written now
    // if it is this process's to write (repeat::flush_at_end).
    crate::postfork::repeat::flush_at_exec(out.ids.map(|i| i.pid));
    // Cleared before the real exec: a vfork child shares this thread's TLS.
    drop(inside);
    let mark = match (out.found, out.reload) {
        (false, _) => Mark::No,
        (true, false) => Mark::SelfPid(out.sigs),
        (true, true) => Mark::Reload(out.sigs),
    };
    let r = envp::with_env(sp.envp, mark, (Some(&held), out.ids), |env| call.run(env));
    // Reached only when the exec failed: revert keeps the exec's errno.
    undo.revert();
    Some(r)
}

pub(crate) fn environ() -> Argv {
    // SAFETY: reading the libc global pointer; exec uses it the same way.
    unsafe { libc_environ() }
}

extern "C" {
    #[link_name = "environ"]
    static ENVIRON: *const *const c_char;
}

/// Async-signal-safe.
unsafe fn libc_environ() -> Argv {
    // SAFETY: environ is a valid (possibly NULL) pointer for the life of the process.
    unsafe { core::ptr::read_volatile(&raw const ENVIRON) }
}

/// Async-signal-safe: where execvp would find `file` (for the report only; the real
/// execvp still does its own search). Falls back to `file` itself. In the start
/// block with the exec hooks: a fork child that runs `execvp` (perl, xargs, env,
/// nohup, most C daemons) would otherwise fault in two more 64 KiB windows of text.
#[link_section = ".text.startup.execguard"]
pub(crate) fn resolve_path(file: &[u8], out: &mut Buf<1024>) {
    if file.is_empty() || file.contains(&b'/') {
        out.raw_at_start(file);
        return;
    }
    let path = envp::get(environ(), b"PATH").unwrap_or(b"/bin:/usr/bin");
    for dir in path.split(|&b| b == b':') {
        out.clear();
        out.raw_at_start(if dir.is_empty() { b"." } else { dir });
        out.byte(b'/');
        out.raw_at_start(file);
        out.byte(0);
        if out.overflowed() {
            continue;
        }
        // SAFETY: NUL-terminated path.
        let r = unsafe { crate::postfork::sys::syscall!(libc::SYS_faccessat, libc::AT_FDCWD, out.as_bytes().as_ptr(), libc::X_OK, 0) };
        if r == 0 {
            let n = out.len() - 1;
            out.truncate(n);
            return;
        }
    }
    out.clear();
    out.raw_at_start(file);
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: forwarded.
    unsafe { execve_via("execve", path, argv, envp) }
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    // SAFETY: forwarded; execv is execve with environ.
    unsafe { execve_via("execv", path, argv, environ()) }
}

/// Async-signal-safe: the body of every exec by path (execve, execv, execl, execle):
/// one copy of the audit's way in, in the block every start maps.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
unsafe fn execve_via(via: &'static str, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: the caller's path is a C string.
    let sp = Spawn { via, target: unsafe { audit::target(path) }, target_c: path, argv, envp, exec_fd: -1, parent_side: false, actions: None };
    guarded(&sp, ExecCall::Execve(path, argv))
}

/// Async-signal-safe.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
unsafe fn execvp_via(via: &'static str, file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let mut resolved = Buf::<1024>::new();
    // SAFETY: the caller's file is a C string.
    resolve_path(unsafe { cstr(file, 4096) }, &mut resolved);
    let sp = Spawn { via, target: resolved.as_bytes(), target_c: core::ptr::null(), argv, envp, exec_fd: -1, parent_side: false, actions: None };
    // execvpe keeps execvp's search and ENOEXEC fallback.
    guarded(&sp, ExecCall::Execvpe(file, argv))
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    // SAFETY: forwarded.
    unsafe { execvp_via("execvp", file, argv, environ()) }
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: forwarded.
    unsafe { execvp_via("execvpe", file, argv, envp) }
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    let mut t = Buf::<1024>::new();
    classify::link(fd, &mut t);
    // The program's own fd is kept: a script run by fexecve needs it open.
    let sp = Spawn { via: "fexecve", target: t.as_bytes(), target_c: core::ptr::null(), argv, envp, exec_fd: fd, parent_side: false, actions: None };
    guarded(&sp, ExecCall::Fexecve(fd, argv))
}

/// Async-signal-safe.
#[no_mangle]
pub unsafe extern "C" fn execveat(dirfd: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int {
    // SAFETY: the caller's path is a C string.
    let p = unsafe { cstr(path, 4096) };
    let mut t = Buf::<1024>::new();
    if p.first() == Some(&b'/') {
        t.raw(p);
    } else {
        if dirfd == libc::AT_FDCWD {
            let mut cwd = [0u8; 512];
            match sys::readlink(b"/proc/self/cwd\0", &mut cwd) {
                Ok(n) => t.raw(cwd.get(..n).unwrap_or(b".")),
                Err(_) => t.raw(b"."),
            }
        } else {
            classify::link(dirfd, &mut t);
        }
        if !p.is_empty() {
            t.byte(b'/');
            t.raw(p);
        }
    }
    let sp = Spawn { via: "execveat", target: t.as_bytes(), target_c: core::ptr::null(), argv, envp, exec_fd: dirfd, parent_side: false, actions: None };
    guarded(&sp, ExecCall::Execveat(dirfd, path, argv, flags))
}

/// Called by the variadic C entry points (src/c/execl.c) with a stack argv.
/// `which`: 0 = execl (path, environ), 1 = execlp (PATH search), 2 = execle (envp).
/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn execguard_execl_impl(which: c_int, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: forwarded.
    unsafe {
        match which {
            1 => execvp_via("execlp", path, argv, environ()),
            2 => execve_via("execle", path, argv, envp),
            _ => execve_via("execl", path, argv, environ()),
        }
    }
}
