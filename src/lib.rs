//! execguard: an `LD_PRELOAD` shim that watches what a process hands to the programs
//! it starts — non-CLOEXEC fds (listening sockets, socket pools), blocked signal
//! masks, ignored signals — and `select()` past `FD_SETSIZE`; it logs each pattern
//! (`EXECGUARD_MODE=log`) or repairs it on the spot (`fix`).
//!
//! Rules that every hook keeps (see DESIGN.md and `postfork`):
//! - between fork and exec, and in vfork children, only async-signal-safe work;
//! - the host always gets the real function's result and errno;
//! - log mode changes nothing; fix mode changes only what it logs as fixed;
//! - the shim holds no fd between events.
//!
//! The library is `no_std` (std only in unit tests): std's runtime would bring
//! libgcc_s.so into every process that loads the shim, which alone costs more than
//! the whole start-up budget.
#![cfg_attr(not(test), no_std)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::missing_safety_doc)]

/// The last line of defence only: nothing in the library is meant to panic.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    crate::postfork::sys::abort()
}

/// The precompiled `core` names an unwinding personality even with panic = "abort"
/// (release builds drop the reference through LTO, debug builds do not). Nothing
/// ever unwinds through this library, so it is never called.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}

mod config;
mod hooks;
mod init;
mod libc_kind;
mod lock;
#[cfg(test)]
mod mem_tests;
mod policy;
mod postfork;
#[cfg(test)]
mod proptests;
mod real;
mod resolve;
mod startup;
