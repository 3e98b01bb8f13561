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

#[link_section = ".text.report.execguard"]
fn lookup(env: Argv) -> Option<&'static [u8]> {
    if env.is_null() {
        return None;
    }
    let names = match config::get() {
        Some(c) if c.test_env => config::cold().map(|c| c.test_env.as_bytes()).unwrap_or(&[]),
        _ => &[],
    };
    core::iter::once(PYTEST)
        .chain(names.split(|&b| b == b':').filter(|n| !n.is_empty()))
        .find_map(|name| envp::get(env, name).filter(|v| !v.is_empty()))
}

/// Async-signal-safe: append the `test` field to a finished event line (JSON when
/// `json`, else ` test=…`), unless it would not fit: a line that overflows is never
/// written, and the finding matters more than its test's name. Out of line: its
/// buffer stays out of the frames of the hooks that call `emit`.
#[inline(never)]
#[link_section = ".text.report.execguard"]
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
    // Room for what emit writes after the body, and for a replay's longer header.
    if !field.overflowed() && field.len() + super::emit::TAIL_ROOM <= line.room() {
        line.raw(field.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn envp(entries: &[&str]) -> (Vec<std::ffi::CString>, Vec<*const libc::c_char>) {
        let owned: Vec<std::ffi::CString> = entries.iter().map(|e| std::ffi::CString::new(*e).unwrap()).collect();
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        (owned, ptrs)
    }

    #[test]
    fn pytest_marker_in_the_given_environment() {
        let (_o, p) = envp(&["PATH=/bin", "PYTEST_CURRENT_TEST=", "X=1"]);
        assert_eq!(lookup(p.as_ptr()), None, "an empty value names no test");
        let (_o, p) = envp(&["PATH=/bin", "PYTEST_CURRENT_TESTX=no", "PYTEST_CURRENT_TEST=t.py::a (call)"]);
        assert_eq!(lookup(p.as_ptr()), Some(&b"t.py::a (call)"[..]));
        assert_eq!(lookup(core::ptr::null()), None);
    }

    #[test]
    fn the_field_is_escaped_cut_and_never_overflows_the_line() {
        let (_o, p) = envp(&["PYTEST_CURRENT_TEST=a\"b"]);
        let mut l = Line::new();
        add(&mut l, true, p.as_ptr());
        assert_eq!(l.as_bytes(), b",\"test\":\"a\\\"b\"");
        let long = format!("PYTEST_CURRENT_TEST={}", "\u{1}".repeat(400));
        let (_o, p) = envp(&[&long]);
        let mut l = Line::new();
        add(&mut l, true, p.as_ptr());
        assert_eq!(l.len(), ",\"test\":\"\"".len() + 300 * 6);
        let mut full = Line::new();
        full.raw(&[b'x'; 4000]);
        add(&mut full, true, p.as_ptr());
        assert_eq!((full.len(), full.overflowed()), (4000, false));
    }

    /// cargo test --release --lib testname::tests::cost -- --ignored --nocapture
    #[test]
    #[ignore]
    fn cost() {
        let mut entries: Vec<String> = (0..60).map(|i| format!("PAD_{i}=value_{i}")).collect();
        entries.push("PYTEST_CURRENT_TEST=tests/test_x.py::test_y (call)".into());
        let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
        let (_o, p) = envp(&refs);
        let n = 200_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let mut l = Line::new();
            add(&mut l, true, core::hint::black_box(p.as_ptr()));
            core::hint::black_box(l.len());
        }
        println!("{:.0} ns per event (61-entry environment, marker last)", t.elapsed().as_nanos() as f64 / n as f64);
    }
}
