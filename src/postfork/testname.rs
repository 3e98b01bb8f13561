//! Which test made a finding: the value of `PYTEST_CURRENT_TEST` or of a variable
//! named in `EXECGUARD_TEST_ENV`, added to an event as `test` when it is written.
//! Small room: the environment is read in place (the exec's envp, else `environ`)
//! only once something is reported, so a clean spawn never pays for it.

use super::envp::{self, Argv};
use super::line::{Buf, Line};
use crate::config;

/// pytest sets it for the running test (`path::name (phase)`); children inherit it.
pub const PYTEST: &[u8] = b"PYTEST_CURRENT_TEST";
/// Longer names are cut: the fds and signals matter more than a parametrised id.
const VALUE_MAX: usize = 300;

/// Async-signal-safe: the running test's name, from `exec_env` (the environment an
/// exec hands over, NULL when the event is not an exec's) and then from this
/// process's own environment.
pub fn find(exec_env: Argv) -> Option<&'static [u8]> {
    lookup(exec_env).or_else(|| lookup(crate::hooks::exec::environ()))
}

fn lookup(env: Argv) -> Option<&'static [u8]> {
    if env.is_null() {
        return None;
    }
    let names = config::cold().map(|c| c.test_env.as_bytes()).unwrap_or(&[]);
    core::iter::once(PYTEST)
        .chain(names.split(|&b| b == b':').filter(|n| !n.is_empty()))
        .find_map(|name| envp::get(env, name).filter(|v| !v.is_empty()))
}

/// Async-signal-safe: append the `test` field to a finished event line (JSON when
/// `json`, else ` test=…`), unless it would not fit: a line that overflows is never
/// written, and the finding matters more than its test's name. Out of line: its
/// buffer stays out of the frames of the hooks that call `emit`.
#[inline(never)]
pub fn add(line: &mut Line, json: bool, exec_env: Argv) {
    let Some(name) = find(exec_env) else { return };
    let name = name.get(..VALUE_MAX).unwrap_or(name);
    // Escaping can grow a name sixfold (control bytes): format apart, then copy.
    let mut field = Buf::<{ VALUE_MAX * 6 + 16 }>::new();
    if json {
        field.s(",\"test\":");
        field.json_str(name);
    } else {
        field.s(" test=");
        field.text(name);
    }
    // Room for the line's end ("}\n", " [fixed]\n").
    if !field.overflowed() && field.len() + 16 <= line.room() {
        line.raw(field.as_bytes());
    }
}
