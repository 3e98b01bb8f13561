//! The small room: everything callable between fork and exec, or in a vfork child.
//!
//! Rules for every function in here (each says "Async-signal-safe" where it is meant
//! to be called from a hook):
//! - no allocation, no `std::env`, no `println!`/`log`, no locks, no lazy init,
//!   no `dlsym`, no `std::io::stderr()`;
//! - raw syscalls or async-signal-safe libc only; fixed stack buffers with marked
//!   truncation; one `write(2)` per line, under 4096 bytes; retry on EINTR;
//! - no writes to statics except pid-tagged or monotonic counters (a vfork child
//!   shares the parent's memory); per-thread state lives in `tls`, pid-tagged;
//! - no `unwrap`, `expect`, slice indexing or `panic!`.
//!
//! After vfork, additionally: the "in hook" flag is cleared before the real exec, and
//! nothing here may leave state the parent would trust when it resumes.

pub mod arena;
pub mod audit;
pub mod classify;
pub mod degraded;
pub mod deliberate;
pub mod emit;
pub mod envp;
pub mod fdgen;
pub mod fds;
pub mod line;
pub mod maps;
pub mod names;
pub mod repeat;
pub mod startfds;
pub mod sink;
pub mod storm;
pub mod sys;
pub mod testname;
pub mod tls;
