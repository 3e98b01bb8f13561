//! The exported hooks, one file per family. Each hook is short: mode check, ask the
//! audit/policy, emit, call the real function; the real result and errno go back
//! to the caller untouched.

pub mod conn;
pub mod exec;
pub mod execl;
pub mod fdtrack;
pub mod fork;
pub mod origins;
pub mod select;
pub mod shell;
pub mod sigdisp;
pub mod sigmask;
pub mod spawn;
pub mod spawn_actions;
