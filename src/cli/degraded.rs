//! The run summary's account of degraded paths: which newer system calls the kernel
//! refused to the shim (old kernel, seccomp profile) and what it did instead, from
//! the `degraded` events (src/postfork/degraded.rs). One line per path.

use super::events::{Log, DEGRADED};
use std::collections::{BTreeMap, BTreeSet};

/// What the shim does instead, per refused path (docs/design.md has the table).
fn fallback(path: &str) -> &'static str {
    match path {
        "pidfd_open" => "system()/pclose() poll their child to repeat system_blocking",
        "process_vm_readv" => "select_fd_overflow reads the fd_sets through a pipe",
        "close_range" => "fds are closed or marked CLOEXEC one call each",
        "madv_wipeonfork" => "fork_threads' count lives in a static: a fork child continues its parent's count",
        _ => "a slower fallback",
    }
}

/// `pidfd_open refused (EPERM) in 2 processes: …`, sorted by path.
pub fn lines(l: &Log) -> Vec<String> {
    let mut by: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    for e in l.events.iter().filter(|e| e.event == DEGRADED) {
        let Some(path) = &e.path else { continue };
        let errno = e.errno.clone().unwrap_or_else(|| "?".into());
        by.entry((path.clone(), errno)).or_default().insert(e.pid);
    }
    by.into_iter()
        .map(|((path, errno), pids)| {
            let n = pids.len();
            format!("{path} refused ({errno}) in {n} process{}: {}", if n == 1 { "" } else { "es" }, fallback(&path))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_path_and_errno_counting_processes() {
        let text = concat!(
            r#"{"event":"degraded","severity":"info","pid":7,"path":"pidfd_open","errno":"EPERM"}"#,
            "\n",
            r#"{"event":"degraded","severity":"info","pid":8,"path":"pidfd_open","errno":"EPERM"}"#,
            "\n",
            r#"{"event":"degraded","severity":"info","pid":8,"path":"close_range","errno":"ENOSYS"}"#,
            "\n",
            r#"{"event":"exec_fd_leak","pid":8}"#,
            "\n"
        );
        let mut l = Log::default();
        l.read_from(text.as_bytes()).unwrap();
        assert_eq!(
            lines(&l),
            [
                "close_range refused (ENOSYS) in 1 process: fds are closed or marked CLOEXEC one call each",
                "pidfd_open refused (EPERM) in 2 processes: system()/pclose() poll their child to repeat system_blocking",
            ]
        );
    }
}
