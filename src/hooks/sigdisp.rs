//! Which signals are ignored, without asking the kernel 19 times at every exec.
//!
//! An exec hands ignored signals to the new program, so every exec audit needs the
//! ignored set, and `rt_sigaction` answers for one signal at a time: 19 calls per
//! audit (2 × 19 per spawn with the new program's start audit, 4 × 19 per
//! `system()`). The start audit reads them anyway (a marked start takes them from
//! its mark: startup.rs); after it, a disposition changes only through the calls
//! hooked here. Each marks its signal "touched" before it
//! calls libc, and an exec audit asks the kernel only for the touched ones: the
//! rest are as the start audit read them (`ignored`).
//!
//! Where it cannot tell: a disposition set by a raw `rt_sigaction` system call (not
//! libc's functions). The exec's audit misses that signal; the new program's start
//! audit reports it (`startup_sigign`) when the exec was not marked, and not when it
//! was marked for another finding (docs/policy.md, "Signals"). Inside libc,
//! `system()` ignores SIGINT and SIGQUIT in the caller while it waits: its hook marks
//! both touched first.
//!
//! Small room: three atomics in the hot data, monotonic marks (a vfork child that
//! marks a signal only makes its parent ask the kernel about it).

use crate::policy;
use crate::postfork::audit::read_ignored;
use crate::real;
use core::sync::atomic::{AtomicU64, Ordering};
use libc::{c_int, sighandler_t};

/// Signals whose disposition may differ from `START`: all of them until the start
/// audit has read them.
#[link_section = ".data.execguard_hot"]
static TOUCHED: AtomicU64 = AtomicU64::new(u64::MAX);
/// Ignored signals as the start audit read them (signals 1–31 it audits).
#[link_section = ".data.execguard_hot"]
static START: AtomicU64 = AtomicU64::new(0);
/// Marks made so far: a mark made while the start audit was reading keeps
/// everything touched.
#[link_section = ".data.execguard_hot"]
static MARKS: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: a value of `MARKS` to hand to `started` (taken before the
/// start audit reads the dispositions).
pub fn marks() -> u64 {
    MARKS.load(Ordering::SeqCst)
}

/// Async-signal-safe: the start audit read `ign` (`read_ignored(31)`) after
/// `marks()` said `before`. Unless a hook marked a signal meanwhile, later audits
/// trust it for every signal not touched since.
pub fn started(ign: u64, before: u64) {
    START.store(ign, Ordering::SeqCst);
    if MARKS.load(Ordering::SeqCst) == before
        && TOUCHED.compare_exchange(u64::MAX, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        && MARKS.load(Ordering::SeqCst) != before
    {
        // A mark came between the check and the clear: it may be lost, so trust
        // nothing (another thread changes dispositions while the constructor runs).
        TOUCHED.store(u64::MAX, Ordering::SeqCst);
    }
}

/// Async-signal-safe: `sig`'s disposition may change now (called before the change).
#[inline]
pub fn touch(sig: c_int) {
    let b = if (1..=64).contains(&sig) { policy::bit(sig) } else { u64::MAX };
    MARKS.fetch_add(1, Ordering::SeqCst);
    TOUCHED.fetch_or(b, Ordering::SeqCst);
}

/// Async-signal-safe: the ignored signals among 1..=`upto` (at most 31) that an
/// exec audit considers, asking the kernel only about those touched since the
/// start audit.
pub fn ignored(upto: i32) -> u64 {
    let touched = TOUCHED.load(Ordering::SeqCst);
    let range = if upto >= 64 { u64::MAX } else { (1u64 << upto.max(0)) - 1 };
    let asked = read_ignored(upto, touched);
    (START.load(Ordering::SeqCst) & !touched & range & !policy::NOT_AUDITED_IGNORED) | asked
}

/// `sigaction(2)`. Async-signal-safe, like libc's.
#[no_mangle]
#[link_section = ".text.hot.execguard"]
pub unsafe extern "C" fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    if !act.is_null() {
        touch(sig);
    }
    // SAFETY: forwarded.
    unsafe { real::sigaction(sig, act, old) }
}

/// glibc's other name for `sigaction`.
#[no_mangle]
#[link_section = ".text.hot.execguard"]
pub unsafe extern "C" fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    if !act.is_null() {
        touch(sig);
    }
    // SAFETY: forwarded.
    unsafe { real::__sigaction(sig, act, old) }
}

macro_rules! handler_setters {
    ($($name:ident),*) => {$(
        /// Sets a disposition inside libc (not through `sigaction`): marked here.
        #[no_mangle]
        #[link_section = ".text.hot.execguard"]
        pub unsafe extern "C" fn $name(sig: c_int, handler: sighandler_t) -> sighandler_t {
            touch(sig);
            // SAFETY: forwarded.
            unsafe { real::$name(sig, handler) }
        }
    )*};
}

handler_setters!(signal, bsd_signal, sysv_signal, __sysv_signal, ssignal, sigset);

/// `sigignore(3)`: SIG_IGN inside libc.
#[no_mangle]
pub unsafe extern "C" fn sigignore(sig: c_int) -> c_int {
    touch(sig);
    // SAFETY: forwarded.
    unsafe { real::sigignore(sig) }
}
