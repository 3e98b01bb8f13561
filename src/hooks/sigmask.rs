//! `sigprocmask`/`pthread_sigmask`: remember (per thread) where commonly needed
//! signals got blocked, so that an exec from this thread can say who blocked them,
//! and log `sigmask_block` once per calling site. The exported symbols are two-
//! instruction trampolines that pass the caller's return address to the Rust body;
//! the hot path is a test of the new set against a constant and one relaxed load.

use crate::config::{self, Mode};
use crate::policy;
use crate::postfork::emit::{Event, Severity};
use crate::postfork::line::Buf;
use crate::postfork::{maps, sys, tls};
use crate::real;
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_int, sigset_t};

macro_rules! trampoline {
    ($name:ident, $imp:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
            // The return address is at [rsp] on entry: hand it over as a 4th argument.
            core::arch::naked_asm!("mov rcx, [rsp]", "jmp {imp}", imp = sym $imp)
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
            core::arch::naked_asm!("mov x3, x30", "b {imp}", imp = sym $imp)
        }

        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[no_mangle]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
            // SAFETY: forwarded; the caller is unknown on this architecture.
            unsafe { $imp(how, set, old, 0) }
        }
    };
}

trampoline!(pthread_sigmask, pthread_sigmask_impl);
trampoline!(sigprocmask, sigprocmask_impl);

unsafe extern "C" fn pthread_sigmask_impl(how: c_int, set: *const sigset_t, old: *mut sigset_t, caller: usize) -> c_int {
    // SAFETY: set is the caller's (NULL or a valid sigset_t).
    unsafe { check("pthread_sigmask", how, set, caller) };
    // SAFETY: forwarded unchanged.
    unsafe { real::pthread_sigmask(how, set, old) }
}

unsafe extern "C" fn sigprocmask_impl(how: c_int, set: *const sigset_t, old: *mut sigset_t, caller: usize) -> c_int {
    // SAFETY: as above.
    unsafe { check("sigprocmask", how, set, caller) };
    // SAFETY: forwarded unchanged.
    unsafe { real::sigprocmask(how, set, old) }
}

#[inline(always)]
unsafe fn check(func: &str, how: c_int, set: *const sigset_t, caller: usize) {
    if set.is_null() || how == libc::SIG_UNBLOCK {
        return;
    }
    // SAFETY: a sigset_t is at least 8 bytes; the first word holds signals 1..64.
    let word = unsafe { core::ptr::read_unaligned(set as *const u64) };
    if word & policy::NEEDED == 0 || config::mode() == Mode::Off {
        return;
    }
    // Only signals this call newly blocks: CPython blocks everything around its
    // vfork and restores the mask after, which must not hide who blocked them first.
    let _e = sys::ErrnoGuard::new();
    let current = sys::sigmask(libc::SIG_BLOCK, None).unwrap_or(0);
    let blocked = word & policy::NEEDED & !current;
    if blocked == 0 {
        return;
    }
    tls::set_blocked_by(caller);
    // Blocking SIGCHLD alone around a wait is the system()/waitpid idiom, and shells
    // manage their masks for job control: neither is what this event is for.
    if blocked != policy::bit(libc::SIGCHLD) && !config::get().map(|c| c.is_shell).unwrap_or(true) {
        note(func, how, blocked, caller);
    }
}

/// Calling sites already reported (rate limit: once per site, at most 32 sites).
static SEEN: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// Async-signal-safe.
#[cold]
fn note(func: &str, how: c_int, blocked: u64, caller: usize) {
    let Some(_inside) = tls::enter() else { return };
    let _e = sys::ErrnoGuard::new();
    let key = caller.max(1);
    let mut fresh = false;
    for slot in SEEN.iter() {
        match slot.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                fresh = true;
                break;
            }
            Err(v) if v == key => break,
            Err(_) => {}
        }
    }
    if !fresh {
        return;
    }
    let mut ev = Event::start("sigmask_block", Severity::Info, false);
    ev.str("func", func.as_bytes());
    ev.str("how", if how == libc::SIG_BLOCK { b"SIG_BLOCK" } else { b"SIG_SETMASK" });
    ev.signals("signals", blocked);
    let mut site = Buf::<600>::new();
    if maps::module_offset(caller, &mut site) {
        ev.str("caller", site.as_bytes());
    }
    ev.emit();
}
