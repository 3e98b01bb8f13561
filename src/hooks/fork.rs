//! `fork`: an info event when a multi-threaded process forks (only async-signal-safe
//! work is allowed in the child then, and locks held by other threads stay locked).
//! Runs in the parent before the real fork.

use crate::config::{self, Mode};
use crate::postfork::emit::{Event, Severity};
use crate::postfork::repeat::{self, Verdict};
use crate::postfork::{sys, tls};
use crate::real;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use libc::pid_t;

/// Async-signal-safe (fork may be called from a signal handler).
#[no_mangle]
#[link_section = ".text.startup.execguard"]
pub unsafe extern "C" fn fork() -> pid_t {
    if config::mode() != Mode::Off && real::single_threaded() != Some(true) {
        if let Some(_inside) = tls::enter() {
            let _e = sys::ErrnoGuard::new();
            note_threads();
        }
    }
    // The child finds every real function resolved and never writes the table.
    real::fill_all();
    if config::mode() != Mode::Off {
        // Made before the first fork, so that the children count into the parent's
        // findings (one mmap per process; its pages are touched at the first event).
        repeat::prepare();
        repeat::forking();
        crate::postfork::startfds::prefault_for_children();
    }
    // SAFETY: no arguments.
    let pid = unsafe { real::fork() };
    if pid == 0 && config::mode() != Mode::Off {
        // A direct getpid and a thread-local write: errno is not touched.
        let me = sys::getpid();
        tls::forked(me);
        crate::postfork::startfds::forked(me);
    }
    pid
}

/// `vfork`: its children audit their exec in the parent's memory, and must count
/// into one shared table of findings (repeat.rs), or each of them writes in full
/// (CPython's subprocess): the hook marks the thread, and the first child with
/// something to count makes the table for the parent. A naked trampoline: it calls
/// `before_vfork` (an ordinary call that returns), then jumps to libc's vfork with
/// the caller's return address untouched on the stack — a Rust frame around vfork
/// would be clobbered by the child returning through it.
#[cfg(all(execguard_vfork_hook, target_arch = "x86_64"))]
#[unsafe(naked)]
#[no_mangle]
#[link_section = ".text.hot.execguard"]
pub unsafe extern "C" fn vfork() -> pid_t {
    core::arch::naked_asm!(
        "sub rsp, 8",
        "call {before}",
        "add rsp, 8",
        real::jump_to_libc!(),
        "3:",
        "jmp {missing_fn}",
        before = sym before_vfork,
        table = sym real::TABLE,
        off = const core::mem::offset_of!(real::Table, vfork),
        missing = const real::MISSING,
        missing_fn = sym vfork_missing,
    )
}

/// `vfork` on arm64: as on x86-64. The caller's return address is in x30 and its
/// frame pointer in x29; both are kept on the stack across the call to
/// `vfork_target` and popped before the branch to libc's vfork, so the stack is
/// the caller's again when the child starts, and the child returns through nothing
/// of ours. The branch goes through x16, which a BTI landing pad at libc's entry
/// (`bti c`) accepts.
#[cfg(all(execguard_vfork_hook, target_arch = "aarch64"))]
#[unsafe(naked)]
#[no_mangle]
#[link_section = ".text.hot.execguard"]
pub unsafe extern "C" fn vfork() -> pid_t {
    core::arch::naked_asm!(
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "bl {target}",
        "mov x16, x0",
        "ldp x29, x30, [sp], #16",
        "br x16",
        target = sym vfork_target,
    )
}

/// Async-signal-safe: `before_vfork`, then where the arm64 trampoline goes on:
/// libc's vfork, or `vfork_missing`.
#[cfg(all(execguard_vfork_hook, target_arch = "aarch64"))]
#[link_section = ".text.hot.execguard"]
extern "C" fn vfork_target() -> usize {
    before_vfork();
    match real::TABLE.vfork.load(Ordering::Relaxed) {
        p if p > real::MISSING => p,
        _ => vfork_missing as *const () as usize,
    }
}

/// Async-signal-safe (vfork may be called from a signal handler): mark the thread
/// (the child makes the table for us if it has something to count: repeat.rs,
/// `make`), take an orphaned table over, and resolve what the child cannot resolve
/// itself (`real::fill_for_vfork`), vfork's entry included, before the child shares
/// our memory.
#[cfg(execguard_vfork_hook)]
#[link_section = ".text.hot.execguard"]
extern "C" fn before_vfork() {
    let _e = sys::ErrnoGuard::new();
    if config::mode() != Mode::Off {
        repeat::adopt_if_orphaned();
        // The flags of the fds this process inherited, learnt once here, in the
        // parent: the child's exec audit then asks the kernel for none of them
        // (a shell runs each command so).
        crate::postfork::startfds::prefault_for_children();
        // Before the child shares this thread's memory: its hooks must not record
        // its fd flags as ours (fdgen::made).
        tls::vforking(sys::getpid());
    }
    real::fill_for_vfork();
}

/// libc has no vfork (never on Linux libcs): fail as a missing function does.
#[cfg(execguard_vfork_hook)]
extern "C" fn vfork_missing() -> pid_t {
    sys::set_errno(libc::ENOSYS);
    -1
}

/// Async-signal-safe. Out of line, and small: a hook's frame below its caller's
/// deepest stack page is written on every call, and after each fork that page is
/// write-protected (a copy-on-write fault, with TLB shootdowns to the other
/// threads' CPUs, at every fork of a busy parent). The line's 5 KiB event is in
/// `write_line`, reached only when a line is written.
#[inline(never)]
fn note_threads() {
    if crate::postfork::emit::info_nowhere() {
        return;
    }
    let threads = thread_count();
    if threads <= 1 {
        return;
    }
    let n = forks_seen().fetch_add(1, Ordering::Relaxed) + 1;
    // One finding per program (the thread count is not part of it): a repeat is
    // counted before any line is built.
    let id = repeat::finish(repeat::seed(NAME, Severity::Info, false), 0);
    let verdict = repeat::occur_here(id, NAME, Severity::Info, false);
    if verdict == Verdict::Repeat {
        return;
    }
    write_line(threads, n, id, verdict);
}

/// Async-signal-safe: the line of a multi-threaded fork (the first, or one after the
/// repeat interval).
#[cold]
#[inline(never)]
fn write_line(threads: i64, n: u32, id: u64, verdict: Verdict) {
    let mut ev = Event::start(NAME, Severity::Info, false);
    ev.int("threads", threads);
    ev.int("count", n as i64);
    ev.preset(id, verdict);
    ev.emit();
}

/// Async-signal-safe: this process's count of multi-threaded forks (the event's
/// `count`), on a page of its own that fork children do not inherit
/// (MADV_WIPEONFORK: a child finds it zeroed, and counts its own forks from 0) and
/// that fork therefore leaves writable in the parent. In a static, the count's page
/// was write-protected by each fork and faulted again at the next one: 1 of the 2
/// faults the hook added to every fork of a busy parent. Kernels before 4.14 refuse
/// the advice: the static then, as before (a fork child continues its parent's
/// count), and a `degraded` event once. An mmap that fails takes the static too,
/// and is not tried again at every fork.
fn forks_seen() -> &'static AtomicU32 {
    let p = FORKS_PAGE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a page of ours, never unmapped once published; zeroed is valid.
        return unsafe { &*p };
    }
    make_forks_page()
}

static FORKS_PAGE: AtomicPtr<AtomicU32> = AtomicPtr::new(core::ptr::null_mut());
static FORKS_SEEN: AtomicU32 = AtomicU32::new(0);
static NO_PAGE: AtomicBool = AtomicBool::new(false);

/// Async-signal-safe: one anonymous private page, advised MADV_WIPEONFORK.
#[cold]
#[inline(never)]
fn make_forks_page() -> &'static AtomicU32 {
    if NO_PAGE.load(Ordering::Relaxed) {
        return &FORKS_SEEN;
    }
    const PAGE: usize = 4096;
    const MADV_WIPEONFORK: i32 = 18;
    // SAFETY: a fresh anonymous mapping; no pointers of ours are passed.
    let p = unsafe {
        sys::syscall!(libc::SYS_mmap, 0, PAGE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1i32, 0)
    };
    if p < 0 {
        NO_PAGE.store(true, Ordering::Relaxed);
        return &FORKS_SEEN;
    }
    // SAFETY: our own mapping.
    let r = unsafe { sys::syscall!(libc::SYS_madvise, p, PAGE, MADV_WIPEONFORK) };
    let advised = r == 0;
    if !advised {
        // EINVAL before 4.14 (an advice it does not know); a filter's errno else.
        crate::postfork::degraded::note(crate::postfork::degraded::Path::MadvWipeonfork, -r as i32);
    }
    let page = p as *mut AtomicU32;
    if advised {
        // The forks counted before the page (none, or a failed race) go along.
        // SAFETY: zero-filled and aligned: a valid AtomicU32.
        unsafe { (*page).store(FORKS_SEEN.load(Ordering::Relaxed), Ordering::Relaxed) };
        if FORKS_PAGE.compare_exchange(core::ptr::null_mut(), page, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // SAFETY: just published; never unmapped.
            return unsafe { &*page };
        }
    } else {
        NO_PAGE.store(true, Ordering::Relaxed);
    }
    // SAFETY: our own mapping, never published.
    unsafe { sys::syscall!(libc::SYS_munmap, p, PAGE) };
    forks_seen_after_race()
}

/// Async-signal-safe: the published page, or the static.
fn forks_seen_after_race() -> &'static AtomicU32 {
    let p = FORKS_PAGE.load(Ordering::Acquire);
    // SAFETY: as in forks_seen.
    if p.is_null() { &FORKS_SEEN } else { unsafe { &*p } }
}

const NAME: &str = "fork_threads";

/// Async-signal-safe: the number of threads. glibc keeps its own count of live
/// threads for libthread_db (`__nptl_nthreads`, GLIBC_PRIVATE; in libc.so from 2.34,
/// in libpthread before): one load. Elsewhere procfs counts them into the link count
/// of /proc/self/task (2 + threads): one stat, 1.4 µs warm and 3.5 µs in a fork loop
/// here, where reading /proc/self/stat (open, read, close, and the kernel formatting
/// 52 fields) costs 12 µs — at every fork of a multi-threaded process. Field 20 of
/// /proc/self/stat when the link count says nothing.
pub fn thread_count() -> i64 {
    if let Some(n) = glibc_threads() {
        return n;
    }
    // SAFETY: an all-zero stat is valid; the path is NUL-terminated.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    let r = unsafe {
        crate::postfork::sys::syscall!(libc::SYS_newfstatat, libc::AT_FDCWD, c"/proc/self/task".as_ptr(), &mut st as *mut libc::stat, 0)
    };
    if r == 0 && st.st_nlink >= 3 {
        return st.st_nlink as i64 - 2;
    }
    stat_field_threads()
}

/// Async-signal-safe: this process has one thread now, when that is cheap to know:
/// glibc says no thread was ever made, or its count (once looked up by a fork of a
/// multi-threaded parent) says one. False when unknown (musl; a count never looked
/// up). Only loads.
pub fn known_single_threaded() -> bool {
    if real::single_threaded() == Some(true) {
        return true;
    }
    let p = NPTL_THREADS.load(Ordering::Relaxed);
    if p <= 1 {
        return false;
    }
    // SAFETY: as in glibc_threads.
    unsafe { (*(p as *const AtomicU32)).load(Ordering::Relaxed) == 1 }
}

/// Where glibc's count is: 0 not looked up yet, 1 none (another libc, or the
/// loader's tables cannot be read without dlsym), else its address.
static NPTL_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Async-signal-safe: glibc's count of its live threads (those pthread_create made,
/// and the main thread), looked up once from the loader's tables (resolve.rs: no
/// dlsym). A thread made by a raw `clone` is not in it — nor does it clear
/// `__libc_single_threaded`, so the hook never counts for such a process anyway.
fn glibc_threads() -> Option<i64> {
    let mut p = NPTL_THREADS.load(Ordering::Relaxed);
    if p == 0 {
        match crate::resolve::find_object(b"__nptl_nthreads", 4) {
            Some(addr) => p = addr,
            // Not yet answerable (before the constructor): ask again next time.
            None if !crate::resolve::serving() => return None,
            None => p = 1,
        }
        NPTL_THREADS.store(p, Ordering::Relaxed);
    }
    if p == 1 {
        return None;
    }
    // SAFETY: glibc's `unsigned int`, 4 bytes and aligned, for the life of the
    // process; it changes it with atomic operations.
    let n = unsafe { (*(p as *const AtomicU32)).load(Ordering::Relaxed) };
    (n > 0).then_some(n as i64)
}

/// Async-signal-safe: field 20 of /proc/self/stat. Cold and out of line: its 1 KiB
/// buffer stays out of the frame of every fork.
#[cold]
#[inline(never)]
fn stat_field_threads() -> i64 {
    let Ok(fd) = sys::open(b"/proc/self/stat\0", libc::O_RDONLY | libc::O_CLOEXEC, 0) else { return 0 };
    let mut buf = [0u8; 1024];
    let n = sys::read(fd, &mut buf).unwrap_or(0);
    sys::close(fd);
    let text = buf.get(..n).unwrap_or(&[]);
    // The command name may contain spaces and ')': fields restart after the last ')'.
    let Some(close) = text.iter().rposition(|&b| b == b')') else { return 0 };
    let rest = text.get(close + 2..).unwrap_or(&[]);
    // After ')' come fields 3.. ; num_threads is field 20, i.e. the 18th here.
    let field = rest.split(|&b| b == b' ').nth(17).unwrap_or(&[]);
    let mut v = 0i64;
    for &b in field {
        if !b.is_ascii_digit() {
            return 0;
        }
        v = v * 10 + (b - b'0') as i64;
    }
    v
}
