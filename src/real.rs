//! The real libc functions behind every hook, each looked up on its first call
//! through src/resolve.rs (which reads the loader's tables and takes no lock, so a
//! first call may come anywhere, a vfork child included). No `dlsym` runs after the
//! constructor: it is used only at load time, when the lookup cannot be served (see
//! src/resolve.rs), and then for every entry at once.
//!
//! `fcntl` and `ioctl` are variadic in C; they are called here with a fixed third
//! integer argument, which on the 64-bit Linux ABIs (x86_64, aarch64) is passed
//! exactly as the variadic one would be.

use crate::resolve::Found;
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_char, c_int, c_long, c_ulong, c_void, pid_t, sigset_t, timespec, timeval, FILE};

/// In a hook's assembly trampoline (x86_64): jump to libc's function when its table
/// entry is resolved, else go on at label `3:` (the Rust body: an entry not looked
/// up yet is 0, one found missing is MISSING). Needs the operands `table`
/// (`real::TABLE`), `off` (the entry's offset) and `missing` (`real::MISSING`).
#[cfg(target_arch = "x86_64")]
macro_rules! jump_to_libc {
    () => {
        "mov rax, qword ptr [rip + {table} + {off}]\ncmp rax, {missing}\njbe 3f\njmp rax"
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use jump_to_libc;

/// What a hook returns when the real function does not exist in this libc.
pub trait Missing {
    fn missing() -> Self;
}
impl Missing for c_int {
    fn missing() -> Self {
        crate::postfork::sys::set_errno(libc::ENOSYS);
        -1
    }
}
impl Missing for () {
    fn missing() -> Self {}
}
/// A handler (`signal` and the like): SIG_ERR.
impl Missing for usize {
    fn missing() -> Self {
        crate::postfork::sys::set_errno(libc::ENOSYS);
        libc::SIG_ERR
    }
}
impl Missing for isize {
    fn missing() -> Self {
        crate::postfork::sys::set_errno(libc::ENOSYS);
        -1
    }
}
impl<T> Missing for *mut T {
    fn missing() -> Self {
        crate::postfork::sys::set_errno(libc::ENOSYS);
        core::ptr::null_mut()
    }
}

/// A table entry whose lookup found nothing: the hook answers as Missing, and the
/// lookup is not repeated.
pub(crate) const MISSING: usize = 1;

macro_rules! real_table {
    ($( $name:ident : fn($($arg:ident : $ty:ty),*) -> $ret:ty ;)*) => {
        /// `repr(C)`, all fields alike: also viewed as an array (see `entry`).
        #[allow(non_snake_case)]
        #[repr(C)]
        pub struct Table { $( pub $name: AtomicUsize, )* }

        /// 0 until first used, then the address (or MISSING).
        #[link_section = ".data.execguard_hot"]
        pub static TABLE: Table = Table { $( $name: AtomicUsize::new(0), )* };

        #[allow(non_camel_case_types, dead_code)]
        #[derive(Clone, Copy)]
        enum Idx { $( $name, )* }

        const COUNT: usize = [$(stringify!($name)),*].len();

        /// Every C name, NUL-terminated, in table order: one string, so no pointer
        /// table for the loader to relocate.
        const NAMES: &[u8] = concat!($(stringify!($name), "\0"),*).as_bytes();

        /// Where each name starts in NAMES, worked out at compile time: a lookup
        /// finds its name in one load instead of walking the names before it.
        const STARTS: [u16; COUNT + 1] = name_starts::<{ COUNT + 1 }>(NAMES);

        const _: () = assert!(core::mem::size_of::<Table>() == COUNT * core::mem::size_of::<AtomicUsize>());
        $(
            /// Async-signal-safe: an atomic load and a call (the first call looks the
            /// function up, see `fill`).
            #[inline]
            // vfork's entry is only ever jumped to (hooks/fork.rs), never called.
            #[allow(clippy::missing_safety_doc, dead_code)]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                let mut p = TABLE.$name.load(Ordering::Relaxed);
                if p <= MISSING {
                    p = fill(Idx::$name as usize);
                    if p <= MISSING {
                        return <$ret as Missing>::missing();
                    }
                }
                // SAFETY: p is the definition of this exact C symbol after ours
                // (src/resolve.rs, or dlsym(RTLD_NEXT)).
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { core::mem::transmute(p) };
                // SAFETY: forwarding the caller's own arguments.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

/// Async-signal-safe: every slot, in table order.
fn slots() -> &'static [AtomicUsize; COUNT] {
    // SAFETY: Table is repr(C) with COUNT AtomicUsize fields and nothing else
    // (checked at compile time), so it has the layout of [AtomicUsize; COUNT].
    unsafe { &*(&TABLE as *const Table as *const [AtomicUsize; COUNT]) }
}

/// The start of each NUL-terminated name in `names`, and the end of the last one.
/// Evaluated by the compiler only (`STARTS`): an index out of range is a build error.
#[allow(clippy::indexing_slicing)]
const fn name_starts<const N: usize>(names: &[u8]) -> [u16; N] {
    let mut out = [0u16; N];
    let (mut i, mut k) = (0, 1);
    while i < names.len() {
        if names[i] == 0 {
            assert!(k < N, "more names than slots");
            out[k] = (i + 1) as u16;
            k += 1;
        }
        i += 1;
    }
    assert!(k == N, "fewer names than slots");
    out
}

/// Async-signal-safe: entry `i`'s C name (NUL-terminated) and slot.
fn entry(i: usize) -> Option<(&'static [u8], &'static AtomicUsize)> {
    let slot = slots().get(i)?;
    let (start, end) = (*STARTS.get(i)? as usize, *STARTS.get(i + 1)? as usize);
    Some((NAMES.get(start..end)?, slot))
}

/// Every slot has been looked up (set by `fill_all` in the process that filled it).
#[link_section = ".data.execguard_hot"]
static ALL_FILLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Async-signal-safe (see src/resolve.rs): look entry `i` up and record it. The one
/// write is the entry's own word, stored atomically with the value any thread or
/// process computes for it; the fork hook fills every entry in the parent first, so
/// a fork child never gets here. Before the constructor, or where the snapshot cannot
/// serve (then the constructor resolved everything already), dlsym answers.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn fill(i: usize) -> usize {
    let Some((name, slot)) = entry(i) else { return 0 };
    // Found missing before (a function this libc lacks, that the shim itself calls
    // or a program reaches through the hook): not looked up again. The check is
    // here, out of line, rather than in every hook's inline fast path.
    if slot.load(Ordering::Relaxed) == MISSING {
        return MISSING;
    }
    fill_slot(name, slot)
}

/// Async-signal-safe (as `fill`): look `name` up into `slot`.
#[link_section = ".text.hot.execguard"]
fn fill_slot(name: &[u8], slot: &AtomicUsize) -> usize {
    let p = match crate::resolve::find(name) {
        Found::Addr(a) => a,
        Found::Missing => MISSING,
        Found::Unserved => {
            resolve_all_dlsym();
            return slot.load(Ordering::Relaxed);
        }
    };
    slot.store(p, Ordering::Relaxed);
    p
}

/// Async-signal-safe (as `fill`): whether this libc defines `pidfd_spawn` and
/// `pidfd_spawnp` (glibc ≥ 2.39). Asked before their hooks audit anything: where
/// libc has none, a caller reached the shim's by `dlvsym` and gets ENOSYS, as from
/// a libc without them, with nothing reported for a spawn that never happened.
pub fn has_pidfd_spawn(search: bool) -> bool {
    let (slot, i) = if search { (&TABLE.pidfd_spawnp, Idx::pidfd_spawnp) } else { (&TABLE.pidfd_spawn, Idx::pidfd_spawn) };
    let p = slot.load(Ordering::Relaxed);
    (if p == 0 { fill(i as usize) } else { p }) > MISSING
}

/// Async-signal-safe (as `fill`): every entry looked up. The fork hook calls it in
/// the parent, so that fork children find the table complete and never write it.
///
/// After the first complete pass it is one load: it used to name every entry again
/// at every fork (`entry` walks the names), some 77 000 instructions per fork
/// (callgrind), 3 % of a fork+exec.
#[inline]
pub fn fill_all() {
    if ALL_FILLED.load(Ordering::Relaxed) {
        return;
    }
    fill_rest();
}

#[cold]
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn fill_rest() {
    let mut all = true;
    // One walk over the names (`entry(i)` for each i walked them again from the
    // start: quadratic, 12 µs of a shell's first fork by itself).
    for (name, slot) in NAMES.split_inclusive(|&b| b == 0).zip(slots().iter()) {
        if slot.load(Ordering::Relaxed) == 0 {
            fill_slot(name, slot);
        }
        all &= slot.load(Ordering::Relaxed) != 0;
    }
    if all {
        ALL_FILLED.store(true, Ordering::Relaxed);
    }
}

/// Async-signal-safe: what a vfork child may need resolved before it shares the
/// parent's memory. `vfork` itself (the hook jumps through its slot); the rest only
/// where a lookup could need `dlsym` (before the constructor's snapshot, or where
/// the snapshot cannot serve), which a vfork child must not call. Otherwise the
/// child looks up what it calls itself: a lookup reads only the loader's tables, and
/// its one write is an entry's atomic word, with the value the parent would store —
/// shared with the parent, which then finds it filled. (Filling all 50 entries cost
/// every shell that vforks its command, i.e. every `system()`, 5–18 µs.)
// Only the vfork trampolines call it (x86-64 and arm64: build.rs).
#[cfg_attr(not(execguard_vfork_hook), allow(dead_code))]
#[link_section = ".text.hot.execguard"]
pub fn fill_for_vfork() {
    if !crate::resolve::serving() {
        fill_all();
        return;
    }
    if TABLE.vfork.load(Ordering::Relaxed) == 0 {
        fill(Idx::vfork as usize);
    }
}

/// Load time only (the constructor, when src/resolve.rs cannot serve lookups): every
/// entry still empty, by dlsym(RTLD_NEXT). Where this process has no `dlsym` (glibc
/// before 2.34 without libdl loaded), by the shim's own lookup in the objects it
/// can search (resolve::Lenient, one walk): the alternative is no real function at
/// all.
pub fn resolve_all_dlsym() {
    let has_dlsym = dlsym_present();
    let lenient = if has_dlsym { None } else { Some(crate::resolve::Lenient::walk()) };
    for i in 0..COUNT {
        let Some((name, slot)) = entry(i) else { continue };
        if slot.load(Ordering::Relaxed) == 0 {
            let p = match &lenient {
                // RTLD_NEXT finds the definition after ours.
                None => dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char).unwrap_or(0),
                Some(objs) => match objs.find(name) {
                    crate::resolve::Found::Addr(a) => a,
                    _ => 0,
                },
            };
            slot.store(if p == 0 { MISSING } else { p }, Ordering::Relaxed);
        }
    }
}

extern "C" {
    /// src/c/tls.c: libc's (or libdl's) `dlsym`, a weak import: NULL in a process
    /// with none (glibc before 2.34 without libdl loaded).
    static execguard_dlsym_fn: *const libc::c_void;
}

/// Whether this process has a `dlsym` (src/c/tls.c).
pub fn dlsym_present() -> bool {
    // SAFETY: a pointer the loader filled in before any constructor ran.
    !unsafe { execguard_dlsym_fn }.is_null()
}

/// Load time only: `dlsym(handle, name)` when this process has one; None when it has
/// none or the name is not found.
pub fn dlsym(handle: *mut libc::c_void, name: *const c_char) -> Option<usize> {
    // SAFETY: a pointer the loader filled in before any constructor ran.
    let f = unsafe { execguard_dlsym_fn };
    if f.is_null() {
        return None;
    }
    // SAFETY: the loader bound the weak import to a dlsym of this C type.
    let f: unsafe extern "C" fn(*mut libc::c_void, *const c_char) -> *mut libc::c_void = unsafe { core::mem::transmute(f) };
    // SAFETY: name is NUL-terminated (the caller's contract, as for dlsym itself).
    match unsafe { f(handle, name) } as usize {
        0 => None,
        p => Some(p),
    }
}

pub type Argv = *const *const c_char;

real_table! {
    execve: fn(path: *const c_char, argv: Argv, envp: Argv) -> c_int;
    execvpe: fn(file: *const c_char, argv: Argv, envp: Argv) -> c_int;
    fexecve: fn(fd: c_int, argv: Argv, envp: Argv) -> c_int;
    execveat: fn(dirfd: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int;
    fork: fn() -> pid_t;
    // Jumped to by the vfork trampoline (hooks/fork.rs), never called from Rust.
    vfork: fn() -> pid_t;
    select: fn(nfds: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *mut timeval) -> c_int;
    pselect: fn(nfds: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *const timespec, m: *const sigset_t) -> c_int;
    sigprocmask: fn(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int;
    pthread_sigmask: fn(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int;
    dup2: fn(old: c_int, new: c_int) -> c_int;
    dup3: fn(old: c_int, new: c_int, flags: c_int) -> c_int;
    fcntl: fn(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int;
    fcntl64: fn(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int;
    ioctl: fn(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int;
    posix_spawn: fn(pid: *mut pid_t, path: *const c_char, fa: *const libc::posix_spawn_file_actions_t, attr: *const libc::posix_spawnattr_t, argv: Argv, envp: Argv) -> c_int;
    posix_spawnp: fn(pid: *mut pid_t, file: *const c_char, fa: *const libc::posix_spawn_file_actions_t, attr: *const libc::posix_spawnattr_t, argv: Argv, envp: Argv) -> c_int;
    // glibc ≥ 2.39 (hooks/spawn.rs); elsewhere Missing, and the hooks answer ENOSYS.
    pidfd_spawn: fn(pidfd: *mut c_int, path: *const c_char, fa: *const libc::posix_spawn_file_actions_t, attr: *const libc::posix_spawnattr_t, argv: Argv, envp: Argv) -> c_int;
    pidfd_spawnp: fn(pidfd: *mut c_int, file: *const c_char, fa: *const libc::posix_spawn_file_actions_t, attr: *const libc::posix_spawnattr_t, argv: Argv, envp: Argv) -> c_int;
    system: fn(cmd: *const c_char) -> c_int;
    popen: fn(cmd: *const c_char, mode: *const c_char) -> *mut FILE;
    pclose: fn(f: *mut FILE) -> c_int;
    socket: fn(d: c_int, t: c_int, p: c_int) -> c_int;
    socketpair: fn(d: c_int, t: c_int, p: c_int, sv: *mut c_int) -> c_int;
    accept: fn(fd: c_int, a: *mut libc::sockaddr, l: *mut libc::socklen_t) -> c_int;
    accept4: fn(fd: c_int, a: *mut libc::sockaddr, l: *mut libc::socklen_t, f: c_int) -> c_int;
    open: fn(p: *const c_char, f: c_int, m: libc::mode_t) -> c_int;
    open64: fn(p: *const c_char, f: c_int, m: libc::mode_t) -> c_int;
    openat: fn(d: c_int, p: *const c_char, f: c_int, m: libc::mode_t) -> c_int;
    openat64: fn(d: c_int, p: *const c_char, f: c_int, m: libc::mode_t) -> c_int;
    creat: fn(p: *const c_char, m: libc::mode_t) -> c_int;
    // _FORTIFY_SOURCE builds call these for `open` whose flags are not constant.
    __open_2: fn(p: *const c_char, f: c_int) -> c_int;
    __open64_2: fn(p: *const c_char, f: c_int) -> c_int;
    __openat_2: fn(d: c_int, p: *const c_char, f: c_int) -> c_int;
    __openat64_2: fn(d: c_int, p: *const c_char, f: c_int) -> c_int;
    dup: fn(fd: c_int) -> c_int;
    pipe: fn(p: *mut c_int) -> c_int;
    pipe2: fn(p: *mut c_int, f: c_int) -> c_int;
    epoll_create: fn(n: c_int) -> c_int;
    epoll_create1: fn(f: c_int) -> c_int;
    eventfd: fn(v: libc::c_uint, f: c_int) -> c_int;
    close_range: fn(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> c_int;
    closefrom: fn(low: c_int) -> ();
    fclose: fn(f: *mut FILE) -> c_int;
    fileno: fn(f: *mut FILE) -> c_int;
    fopen: fn(path: *const c_char, mode: *const c_char) -> *mut FILE;
    fopen64: fn(path: *const c_char, mode: *const c_char) -> *mut FILE;
    freopen: fn(path: *const c_char, mode: *const c_char, f: *mut FILE) -> *mut FILE;
    freopen64: fn(path: *const c_char, mode: *const c_char, f: *mut FILE) -> *mut FILE;
    closedir: fn(d: *mut libc::DIR) -> c_int;
    dirfd: fn(d: *mut libc::DIR) -> c_int;
    listen: fn(fd: c_int, backlog: c_int) -> c_int;
    connect: fn(fd: c_int, a: *const libc::sockaddr, l: libc::socklen_t) -> c_int;
    close: fn(fd: c_int) -> c_int;
    shutdown: fn(fd: c_int, how: c_int) -> c_int;
    read: fn(fd: c_int, b: *mut c_void, n: usize) -> isize;
    __read_chk: fn(fd: c_int, b: *mut c_void, n: usize, cap: usize) -> isize;
    readv: fn(fd: c_int, v: *const libc::iovec, n: c_int) -> isize;
    recv: fn(fd: c_int, b: *mut c_void, n: usize, f: c_int) -> isize;
    __recv_chk: fn(fd: c_int, b: *mut c_void, n: usize, cap: usize, f: c_int) -> isize;
    recvfrom: fn(fd: c_int, b: *mut c_void, n: usize, f: c_int, a: *mut libc::sockaddr, l: *mut libc::socklen_t) -> isize;
    recvmsg: fn(fd: c_int, m: *mut libc::msghdr, f: c_int) -> isize;
    // Hooked (hooks/spawn_actions.rs), and called by the shim for its own close
    // actions (hooks/spawn.rs).
    posix_spawn_file_actions_init: fn(fa: *mut libc::posix_spawn_file_actions_t) -> c_int;
    posix_spawn_file_actions_destroy: fn(fa: *mut libc::posix_spawn_file_actions_t) -> c_int;
    posix_spawn_file_actions_adddup2: fn(fa: *mut libc::posix_spawn_file_actions_t, fd: c_int, new: c_int) -> c_int;
    posix_spawn_file_actions_addclose: fn(fa: *mut libc::posix_spawn_file_actions_t, fd: c_int) -> c_int;
    posix_spawn_file_actions_addopen: fn(fa: *mut libc::posix_spawn_file_actions_t, fd: c_int, path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int;
    // glibc ≥ 2.34; elsewhere Missing (-1), and the shim's own close actions are
    // not used.
    posix_spawn_file_actions_addclosefrom_np: fn(fa: *mut libc::posix_spawn_file_actions_t, from: c_int) -> c_int;
    // Not hooked: libc functions the shim itself calls, looked up here on first use
    // rather than bound by the loader at every process start (each import is a
    // symbol lookup through every library in the process, in every process).
    posix_spawnattr_init: fn(a: *mut libc::posix_spawnattr_t) -> c_int;
    posix_spawnattr_destroy: fn(a: *mut libc::posix_spawnattr_t) -> c_int;
    posix_spawnattr_getflags: fn(a: *const libc::posix_spawnattr_t, f: *mut libc::c_short) -> c_int;
    posix_spawnattr_setflags: fn(a: *mut libc::posix_spawnattr_t, f: libc::c_short) -> c_int;
    posix_spawnattr_getsigmask: fn(a: *const libc::posix_spawnattr_t, m: *mut sigset_t) -> c_int;
    posix_spawnattr_setsigmask: fn(a: *mut libc::posix_spawnattr_t, m: *const sigset_t) -> c_int;
    posix_spawnattr_getsigdefault: fn(a: *const libc::posix_spawnattr_t, m: *mut sigset_t) -> c_int;
    posix_spawnattr_setsigdefault: fn(a: *mut libc::posix_spawnattr_t, m: *const sigset_t) -> c_int;
    fdopen: fn(fd: c_int, mode: *const c_char) -> *mut FILE;
    waitpid: fn(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t;
    poll: fn(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    sigaction: fn(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
    // The disposition setters (hooks/sigdisp.rs); the ones a libc lacks are Missing.
    __sigaction: fn(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
    signal: fn(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    bsd_signal: fn(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    sysv_signal: fn(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    __sysv_signal: fn(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    ssignal: fn(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    sigset: fn(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    sigignore: fn(sig: c_int) -> c_int;
}

/// `__libc_single_threaded` (glibc ≥ 2.32): 1 while the process never made a thread.
#[link_section = ".data.execguard_hot"]
static SINGLE_THREADED: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    /// src/c/tls.c: the address of glibc's flag, bound by the loader (NULL if absent).
    /// A pointer in relocated data rather than a C function: the C code sits at the
    /// far end of the text, a page no process start needs otherwise.
    static execguard_single_threaded_flag: *const c_char;
}

/// Constructor: find glibc's single-thread flag.
#[link_section = ".text.startup.execguard"]
pub fn resolve_data() {
    // SAFETY: a pointer the loader filled in before any constructor ran.
    let p = unsafe { execguard_single_threaded_flag };
    SINGLE_THREADED.store(p as usize, Ordering::Relaxed);
}

/// Async-signal-safe: Some(true) when glibc says no thread was ever created.
pub fn single_threaded() -> Option<bool> {
    let p = SINGLE_THREADED.load(Ordering::Relaxed) as *const c_char;
    if p.is_null() {
        None
    } else {
        // SAFETY: glibc's exported char, valid for the life of the process.
        Some(unsafe { core::ptr::read_volatile(p) } != 0)
    }
}

#[allow(dead_code)]
type Unused = (c_long, *mut c_void);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// Names and slots line up with the table's fields, and every entry resolves to
    /// the definition dlsym(RTLD_NEXT) gives.
    #[test]
    fn entries_line_up_and_fill() {
        assert_eq!(entry(Idx::execve as usize).map(|e| e.0), Some(&b"execve\0"[..]));
        assert_eq!(entry(Idx::closefrom as usize).map(|e| e.0), Some(&b"closefrom\0"[..]));
        assert!(core::ptr::eq(entry(Idx::fork as usize).map(|e| e.1).unwrap(), &TABLE.fork));
        assert!(entry(COUNT).is_none());
        fill_all();
        for i in 0..COUNT {
            let (name, slot) = entry(i).unwrap();
            // SAFETY: NUL-terminated name.
            let want = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char) } as usize;
            assert_eq!(slot.load(Ordering::Relaxed), if want == 0 { MISSING } else { want }, "{}", String::from_utf8_lossy(name));
        }
        // An entry found missing is not looked up again (`sigignore`, which every
        // libc here has, marked missing for the moment: fill keeps the mark).
        let was = TABLE.sigignore.swap(MISSING, Ordering::Relaxed);
        assert_eq!(fill(Idx::sigignore as usize), MISSING);
        assert_eq!(TABLE.sigignore.swap(was, Ordering::Relaxed), MISSING);
    }
}
