//! `sigprocmask`/`pthread_sigmask`: remember (per thread) where commonly needed
//! signals got blocked, so that an exec from this thread can say who blocked them,
//! and log `sigmask_block` once per calling site.
//!
//! The exported symbols are assembly trampolines. On x86_64 the common case — no
//! set, SIG_UNBLOCK, a set without any of the signals that matter, or a call from
//! the thread's last blocker whose site was reported already — tests the set (and
//! then that thread-local and the reported sites) and tail-jumps straight to libc's
//! function: no Rust frame at all. Otherwise
//! it passes the caller's return address as a fourth argument to the Rust body,
//! which calls the real function first and judges by the old mask the call returns
//! (no extra syscall). Small room: may run between fork and exec.

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
        #[link_section = ".text.hot.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
            core::arch::naked_asm!(
                "test rsi, rsi",
                "jz 2f",
                "cmp edi, {unblock}",
                "je 2f",
                "mov rax, qword ptr [rsi]",
                "movabs r10, {needed}",
                "test rax, r10",
                "jz 2f",
                // A notable set. From a site that is this thread's last blocker and
                // was reported already, judging it would change nothing (see
                // `around`, which asks the same): straight to libc. The thread's
                // `blocked_by` first (one %fs-relative load), then the sites seen.
                "mov rcx, qword ptr [rsp]",
                "mov rax, qword ptr [rip + {tls}@GOTTPOFF]",
                "cmp rcx, qword ptr fs:[rax + {blocked_by}]",
                "jne 4f",
                "lea rax, [rip + {seen}]",
                "lea r10, [rax + {seen_bytes}]",
                "5:",
                "mov r11, qword ptr [rax]",
                "cmp r11, rcx",
                "je 2f",
                "test r11, r11",
                "jz 4f",
                "add rax, 8",
                "cmp rax, r10",
                "jb 5b",
                // Every slot holds another site: `seen` says true (never reported).
                "jmp 2f",
                "4:",
                // The Rust body, with the return address as 4th argument.
                "jmp {imp}",
                "2:",
                // Nothing to look at: straight to libc, if resolved.
                real::jump_to_libc!(),
                "3:",
                "xor ecx, ecx",
                "jmp {imp}",
                unblock = const libc::SIG_UNBLOCK,
                needed = const policy::NEEDED,
                tls = sym tls::execguard_tls_block,
                blocked_by = const tls::BLOCKED_BY_AT,
                seen = sym SEEN,
                seen_bytes = const core::mem::size_of::<[AtomicUsize; SEEN_SLOTS]>(),
                table = sym real::TABLE,
                missing = const real::MISSING,
                off = const core::mem::offset_of!(real::Table, $name),
                imp = sym $imp,
            )
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.hot.execguard"]
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

#[link_section = ".text.hot.execguard"]
unsafe extern "C" fn pthread_sigmask_impl(how: c_int, set: *const sigset_t, old: *mut sigset_t, caller: usize) -> c_int {
    // SAFETY: forwarded; the caller's set and old follow libc's contract.
    unsafe { around("pthread_sigmask", how, set, old, caller, |h, s, o| real::pthread_sigmask(h, s, o), 0) }
}

#[link_section = ".text.hot.execguard"]
unsafe extern "C" fn sigprocmask_impl(how: c_int, set: *const sigset_t, old: *mut sigset_t, caller: usize) -> c_int {
    // SAFETY: as above (sigprocmask returns -1 and sets errno on failure).
    unsafe { around("sigprocmask", how, set, old, caller, |h, s, o| real::sigprocmask(h, s, o), 0) }
}

/// Call the real function, then judge what it newly blocked. `ok` is its success value.
#[inline(always)]
unsafe fn around(
    func: &str,
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
    caller: usize,
    real_fn: impl FnOnce(c_int, *const sigset_t, *mut sigset_t) -> c_int,
    ok: c_int,
) -> c_int {
    if set.is_null() || how == libc::SIG_UNBLOCK {
        return real_fn(how, set, old);
    }
    // Read before the call: `set` may be the same object as `old`.
    // SAFETY: a sigset_t is at least 8 bytes; the first word holds signals 1..64.
    let word = unsafe { core::ptr::read_unaligned(set as *const u64) };
    if word & policy::NEEDED == 0 {
        return real_fn(how, set, old);
    }
    if caller != 0 && tls::blocked_by() == caller && seen(caller) {
        // This site is the thread's last blocker and was reported already: whatever
        // the old mask was, judging it would change nothing (blocked_by stays this
        // site, the event is not repeated). So straight to libc: no copy-out of the
        // old mask when the caller did not ask for it (it costs the kernel more than
        // the rest of the hook: the set-all / set-empty pattern, every other call),
        // and no judging when it did (block-all-save-old / restore-old).
        return real_fn(how, set, old);
    }
    // The old mask comes back from the call itself; the caller may not want it.
    let mut mine = core::mem::MaybeUninit::<sigset_t>::uninit();
    let oldp = if old.is_null() { mine.as_mut_ptr() } else { old };
    let r = real_fn(how, set, oldp);
    if r == ok && config::mode() != Mode::Off {
        // SAFETY: the successful call filled *oldp.
        let before = unsafe { core::ptr::read_unaligned(oldp as *const u64) };
        newly_blocked(func, how, word & policy::NEEDED & !before, caller);
    }
    r
}

/// Async-signal-safe: signals this call newly blocked. CPython blocks everything
/// around its vfork and restores the mask after; only what was not blocked before
/// counts, so that the site that really blocked SIGALRM is the one remembered.
#[inline]
fn newly_blocked(func: &str, how: c_int, blocked: u64, caller: usize) {
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
#[link_section = ".data.execguard_hot"]
static SEEN: [AtomicUsize; SEEN_SLOTS] = [const { AtomicUsize::new(0) }; SEEN_SLOTS];
const SEEN_SLOTS: usize = 32;

/// Async-signal-safe: `caller`'s site was reported already (or the table is full,
/// so it never will be).
#[inline]
#[link_section = ".text.hot.execguard"]
fn seen(caller: usize) -> bool {
    let key = caller.max(1);
    for slot in SEEN.iter() {
        match slot.load(Ordering::Relaxed) {
            v if v == key => return true,
            0 => return false,
            _ => {}
        }
    }
    true
}

/// Async-signal-safe. The per-site check comes first and costs no syscall.
#[cold]
fn note(func: &str, how: c_int, blocked: u64, caller: usize) {
    let key = caller.max(1);
    let mut fresh = false;
    for slot in SEEN.iter() {
        // A plain load first: the common case is a site seen before, and a locked
        // compare-exchange would cost more than the whole rest of the hook.
        match slot.load(Ordering::Relaxed) {
            v if v == key => break,
            0 => match slot.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    fresh = true;
                    break;
                }
                Err(v) if v == key => break,
                Err(_) => {}
            },
            _ => {}
        }
    }
    if !fresh {
        return;
    }
    let Some(_inside) = tls::enter() else { return };
    let _e = sys::ErrnoGuard::new();
    let mut ev = Event::start("sigmask_block", Severity::Info, false);
    ev.str("func", func.as_bytes());
    ev.str("how", if how == libc::SIG_BLOCK { b"SIG_BLOCK" } else { b"SIG_SETMASK" });
    ev.signals("signals", blocked);
    ev.ident(func.as_bytes());
    ev.ident(&[(how == libc::SIG_BLOCK) as u8]);
    ev.ident(&blocked.to_le_bytes());
    let mut site = Buf::<600>::new();
    if maps::module_offset(caller, &mut site) {
        ev.str("caller", site.as_bytes());
        ev.ident(site.as_bytes());
    }
    ev.emit();
}
