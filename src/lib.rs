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
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::missing_safety_doc)]

mod config;
mod hooks;
mod init;
mod policy;
mod postfork;
#[cfg(test)]
mod proptests;
mod real;
mod startup;
