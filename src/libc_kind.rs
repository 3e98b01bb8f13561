//! Which C library the host runs on, decided once at load, and what differs at
//! load time: glibc hands the constructor (argc, argv, envp), musl hands it nothing.
//! Not in the small room, but its one reader (`is_glibc`) is async-signal-safe.

use core::sync::atomic::{AtomicBool, Ordering};
use libc::c_char;

extern "C" {
    /// src/c/tls.c: the address of glibc's gnu_get_libc_version, NULL elsewhere.
    static execguard_glibc_marker: *const libc::c_void;
    /// src/c/tls.c: &program_invocation_name, NULL where the libc lacks it.
    static execguard_progname: *const *const c_char;
}

#[link_section = ".data.execguard_hot"]
static NOT_GLIBC: AtomicBool = AtomicBool::new(false);

/// What the constructor works from: argv[0] (or NULL) and the environment.
pub struct StartArgs {
    pub arg0: *const c_char,
    pub envp: *const *const c_char,
}

/// Load time: the arguments the constructor may trust. On glibc, its own; elsewhere
/// (musl) the registers are garbage, and libc's globals are already set.
#[link_section = ".text.startup.execguard"]
pub fn start_args(argv: *const *const c_char, envp: *const *const c_char) -> StartArgs {
    // SAFETY: pointers the loader filled in before any constructor ran.
    let glibc = unsafe { !execguard_glibc_marker.is_null() };
    NOT_GLIBC.store(!glibc, Ordering::Relaxed);
    // The marker alone is not proof that the loader passed arguments: gcompat (glibc
    // programs on Alpine) and any program may define gnu_get_libc_version over musl,
    // whose loader passes none. glibc's envp is its environ; musl's register is not.
    if glibc && envp == crate::hooks::exec::environ() {
        // SAFETY: glibc passes the kernel's argv (argv[0] may be NULL when argc is 0).
        let arg0 = if argv.is_null() { core::ptr::null() } else { unsafe { *argv } };
        return StartArgs { arg0, envp };
    }
    // SAFETY: a weak import: NULL, or the libc's own program_invocation_name.
    let arg0 = unsafe { execguard_progname.as_ref().map_or(core::ptr::null(), |p| *p) };
    StartArgs { arg0, envp: crate::hooks::exec::environ() }
}

/// Async-signal-safe: the host's libc is glibc (assumed until the constructor ran).
pub fn is_glibc() -> bool {
    !NOT_GLIBC.load(Ordering::Relaxed)
}

/// Async-signal-safe: SIGRTMIN of this process's libc. glibc keeps 32 and 33 for
/// itself (thread cancellation, setxid), so its SIGRTMIN is 34; musl keeps 34 too
/// (its synchronous-call signal), so there it is 35.
pub fn rtmin() -> i32 {
    if is_glibc() {
        34
    } else {
        35
    }
}
