//! The real libc functions behind every hook, resolved with `dlsym(RTLD_NEXT)` by the
//! constructor. A hook that runs before the constructor (another library's
//! constructor calling fork, say) resolves the whole table then, in the parent,
//! single-threaded loader context; after the constructor nothing is ever resolved,
//! so no `dlsym` can run between fork and exec.
//!
//! `fcntl` and `ioctl` are variadic in C; they are called here with a fixed third
//! integer argument, which on the 64-bit Linux ABIs (x86_64, aarch64) is passed
//! exactly as the variadic one would be.

use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_char, c_int, c_long, c_ulong, c_void, pid_t, sigset_t, timespec, timeval, FILE};

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
impl<T> Missing for *mut T {
    fn missing() -> Self {
        crate::postfork::sys::set_errno(libc::ENOSYS);
        core::ptr::null_mut()
    }
}

macro_rules! real_table {
    ($( $name:ident : fn($($arg:ident : $ty:ty),*) -> $ret:ty ;)*) => {
        #[allow(non_snake_case)]
        pub struct Table { $( pub $name: AtomicUsize, )* }

        #[link_section = ".data.execguard_hot"]
        pub static TABLE: Table = Table { $( $name: AtomicUsize::new(0), )* };

        const COUNT: usize = [$(stringify!($name)),*].len();

        /// Constructor: resolve every entry (src/resolve.rs first, dlsym for what it
        /// leaves). Returns how many are missing.
#[link_section = ".text.startup.execguard"]
        pub fn resolve_all() -> usize {
            let names: [&[u8]; COUNT] = [$(concat!(stringify!($name), "\0").as_bytes()),*];
            let slots: [&AtomicUsize; COUNT] = [$(&TABLE.$name),*];
            let mut found = [0usize; COUNT];
            crate::resolve::next_definitions(&names, &mut found);
            let mut missing = 0;
            for ((name, addr), slot) in names.iter().zip(found).zip(slots) {
                if addr != 0 {
                    slot.store(addr, Ordering::Relaxed);
                } else if !resolve(slot, name) {
                    missing += 1;
                }
            }
            missing
        }

        $(
            /// Async-signal-safe once the constructor ran: an atomic load and a call.
            #[inline]
            #[allow(clippy::missing_safety_doc)]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                let mut p = TABLE.$name.load(Ordering::Relaxed);
                if p == 0 {
                    resolve_all();
                    p = TABLE.$name.load(Ordering::Relaxed);
                    if p == 0 {
                        return <$ret as Missing>::missing();
                    }
                }
                // SAFETY: p was returned by dlsym for this exact C symbol.
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { core::mem::transmute(p) };
                // SAFETY: forwarding the caller's own arguments.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

fn resolve(slot: &AtomicUsize, name: &[u8]) -> bool {
    // SAFETY: name is NUL-terminated; RTLD_NEXT finds the definition after ours.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char) } as usize;
    slot.store(p, Ordering::Relaxed);
    p != 0
}

pub type Argv = *const *const c_char;

real_table! {
    execve: fn(path: *const c_char, argv: Argv, envp: Argv) -> c_int;
    execvpe: fn(file: *const c_char, argv: Argv, envp: Argv) -> c_int;
    fexecve: fn(fd: c_int, argv: Argv, envp: Argv) -> c_int;
    execveat: fn(dirfd: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int;
    fork: fn() -> pid_t;
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
    dup: fn(fd: c_int) -> c_int;
    pipe: fn(p: *mut c_int) -> c_int;
    pipe2: fn(p: *mut c_int, f: c_int) -> c_int;
    epoll_create: fn(n: c_int) -> c_int;
    epoll_create1: fn(f: c_int) -> c_int;
    eventfd: fn(v: libc::c_uint, f: c_int) -> c_int;
    close_range: fn(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> c_int;
    closefrom: fn(low: c_int) -> ();
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
