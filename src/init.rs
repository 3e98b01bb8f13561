//! Load time only: the library constructor. Records where the real functions are
//! to be found, copies the configuration out of the environment, finds our own path
//! (for following children), then runs the start-side audit of what this process
//! inherited. Not in the small room (it runs in a freshly exec'd process), but it
//! allocates nothing anyway.

use crate::config::{self, Mode};
use crate::postfork::envp;
use crate::postfork::line::{cstr, Buf, Line};
use crate::postfork::sys;
use crate::{policy, real, startup};
use libc::{c_char, c_int};

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = constructor;

#[link_section = ".text.startup.execguard"]
extern "C" fn constructor(_argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
    let _e = sys::ErrnoGuard::new();
    // musl calls this with no arguments: argv and envp are garbage there.
    let crate::libc_kind::StartArgs { arg0, envp } = crate::libc_kind::start_args(argv, envp);
    // The objects after ours, for the hooks' lookups on first use: one walk here,
    // instead of 36 symbol lookups at every start (most programs call few hooks).
    let mut my_name = core::ptr::null();
    if !crate::resolve::snapshot_named(&mut my_name) {
        real::resolve_all_dlsym();
    }
    real::resolve_data();
    if !crate::postfork::tls::layout_ok() {
        // Cannot happen with the C and Rust halves built together; stay out of the way.
        config::publish(Mode::Off);
        return;
    }
    // SAFETY: getauxval is always safe to call.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    let pid = sys::getpid();
    crate::postfork::repeat::note_pid(pid);
    // SAFETY: the constructor is the only writer, before publish().
    let (cfg, cold) = unsafe { config::init_mut() };
    // Only EXECGUARD_*, LISTEN_*, MAKEFLAGS, the reloaders' and the starters'
    // variables matter here.
    let warnings = config::parse_env(envp::iter_first(envp, config::ENV_FIRSTS), pid, secure, cfg, cold);
    if cfg.starter {
        config::handovers(envp::iter(envp), cfg);
    }
    if cfg.mode == Mode::Off {
        config::publish(Mode::Off);
        return;
    }
    // Cold memory is read only when the knob was set: its page is not touched otherwise.
    cfg.is_shell = is_shell(arg0, if cfg.shells_extra { shells_extra(cold) } else { &[] });
    if cfg.follow {
        let mut lib = Buf::<512>::new();
        lib_path(&mut lib, my_name);
        config::remember_follow(lib.as_bytes(), envp::iter_first(envp, b"E"), cold);
    }
    for name in warnings.bad.iter().take(warnings.n).flatten() {
        warn_bad(pid, name, envp::get(envp, name.as_bytes()).unwrap_or(&[]));
    }
    if cfg.origins {
        crate::hooks::origins::enable();
    }
    let mode = cfg.mode;
    config::publish(mode);
    if let Some(cfg) = config::get() {
        startup::audit(cfg, mode == Mode::Fix);
    }
}

/// Out of line, so that the compiler cannot load it ahead of the test; placed with
/// the constructor.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
fn shells_extra(cold: &config::Cold) -> &[u8] {
    cold.shells_extra.as_bytes()
}

/// A shell (or exec wrapper) by the name it was run as: argv[0] (a login shell's
/// "-bash" included) or the path the kernel executed (AT_EXECFN). No readlink of
/// /proc/self/exe at load: it costs more than everything else the constructor does.
/// A script run through `#!/bin/sh` has the interpreter as argv[0].
#[link_section = ".text.startup.execguard"]
fn is_shell(arg0: *const c_char, extra: &[u8]) -> bool {
    let arg0 = if arg0.is_null() {
        &[][..]
    } else {
        // SAFETY: argv[0] is a C string (kernel-provided).
        unsafe { cstr(arg0, 500) }
    };
    let arg0 = arg0.strip_prefix(b"-").unwrap_or(arg0);
    // SAFETY: getauxval is always safe; AT_EXECFN is a C string in the auxv area.
    let execfn = unsafe { cstr(libc::getauxval(libc::AT_EXECFN) as *const c_char, 500) };
    policy::is_shell(arg0, extra) || policy::is_shell(execfn, extra)
}

/// This library's path, NUL-terminated, into `path` (left empty when unknown).
/// `known`: its name from the snapshot's walk, or null (then `dladdr`).
#[link_section = ".text.startup.execguard"]
fn lib_path(path: &mut Buf<512>, known: *const c_char) {
    path.clear();
    let name = if known.is_null() { dladdr_name() } else { known };
    if !name.is_null() {
        // SAFETY: a C string owned by the loader (l_name).
        let name = unsafe { cstr(name, 500) };
        if name.first() == Some(&b'/') {
            path.raw_at_start(name);
        } else {
            relative(path, name);
        }
        path.byte(0);
        if path.overflowed() {
            path.clear();
        }
    }
}

/// A relative LD_PRELOAD path would not survive a chdir: made absolute. Rare, and
/// out of line, but in the constructor's block all the same.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
fn relative(path: &mut Buf<512>, name: &[u8]) {
    let mut cwd = [0u8; 500];
    if let Ok(n) = sys::readlink(b"/proc/self/cwd\0", &mut cwd) {
        path.raw_at_start(cwd.get(..n).unwrap_or(&[]));
        path.byte(b'/');
    }
    path.raw_at_start(name.strip_prefix(b"./").unwrap_or(name));
}

/// Only where the snapshot could not name us. `dladdr` by `dlsym`, here: an import
/// would be one more symbol for the loader to bind at every start.
#[cold]
fn dladdr_name() -> *const c_char {
    type Dladdr = unsafe extern "C" fn(*const libc::c_void, *mut libc::Dl_info) -> c_int;
    // Load time, where dlsym may run (where the process has one).
    let Some(f) = real::dlsym(libc::RTLD_DEFAULT, c"dladdr".as_ptr()) else { return core::ptr::null() };
    // SAFETY: dlsym found libc's dladdr, of this type.
    let dladdr: Dladdr = unsafe { core::mem::transmute(f) };
    // SAFETY: an all-zero Dl_info is valid; dladdr fills it for an address of ours.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: any address inside this library works.
    let ok = unsafe { dladdr(constructor as *const libc::c_void, &mut info) } != 0;
    if ok {
        info.dli_fname
    } else {
        core::ptr::null()
    }
}

/// A bad setting: rare, and out of the constructor's block (kept out of line, or
/// the inliner may pull its line-building into the first text window).
#[cold]
#[inline(never)]
fn warn_bad(pid: i32, name: &str, value: &[u8]) {
    let mut l = Line::new();
    l.s("execguard[");
    l.int(pid as i64);
    l.s("]: warning: ignoring ");
    l.s(name);
    l.s("=");
    l.text(value.get(..200).unwrap_or(value));
    if let Some(k) = config::KNOBS.iter().find(|k| k.name == name) {
        l.s(" (");
        l.s(k.help);
        l.s("); using the default: ");
        l.s(k.default);
        l.byte(b'\n');
    } else {
        l.s("; using the default\n");
    }
    let _ = sys::write(2, l.as_bytes());
}
