//! 2000 fork+exec of /bin/true from a process whose four other threads allocate and
//! print all the time (c-tests/stress_fork.c), under the shim in log and fix mode:
//! it must finish (a watchdog kills it after a generous bound) and every exec must
//! be counted exactly once, on whole lines: the same leak at every exec is one
//! finding, written by the first child and then counted by all of them in the
//! table they share with the parent, which writes the count when it exits.

mod common;

use common::{check_common, named, run_mode_with, Mode};
use std::collections::HashSet;
use std::time::Duration;

const N: usize = 2000;
const BOUND: Duration = Duration::from_secs(120);

struct RemoveOnSuccess(std::path::PathBuf);

impl Drop for RemoveOnSuccess {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn stress(mode: Mode) {
    let prog = common::c_prog("stress_fork");
    let dir = common::tmpdir("stress-leak");
    let leak = dir.join("leak.txt");
    std::fs::write(&leak, "x").unwrap();
    let _cleanup = RemoveOnSuccess(dir.clone());
    let leak = leak.to_str().unwrap();
    let run = run_mode_with(mode, &prog, &[&N.to_string(), leak], &[], BOUND, true);
    assert!(run.status.success(), "{}", &run.stdout);
    assert_eq!(run.stdout, format!("done={N} failed=0\n"));
    if mode == Mode::NoShim {
        return;
    }

    let lines = common::log_lines(&run.log);
    for l in &lines {
        assert!(l.len() < 4096 && l.starts_with('{') && l.ends_with('}'), "torn or long line: {l:.300}");
    }
    let evs = run.events();
    let leaks: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["ppid"] == run.pid || e["pid"] == run.pid).collect();
    assert_eq!(common::occurrences(leaks.iter().copied()), N as u64, "every exec counted exactly once");
    assert!(leaks.len() <= 3, "one finding, one line (+ interval and exit lines): {}", leaks.len());
    // pids may repeat (pid_max is 32768 and the machine is shared), whole events not.
    let ids: HashSet<(u64, String)> = leaks.iter().map(|e| (e["pid"].as_u64().unwrap(), e["ts"].to_string())).collect();
    assert_eq!(ids.len(), leaks.len(), "no line written twice");
    let findings: HashSet<&str> = leaks.iter().map(|e| e["finding"].as_str().unwrap()).collect();
    assert_eq!(findings.len(), 1, "one finding");
    let exe = common::canon(&prog);
    for ev in &leaks {
        check_common(ev, mode, "warn", mode.action());
        assert_eq!(ev["via"], "execv", "{ev}");
        assert_eq!(ev["target"], "/bin/true", "{ev}");
        assert_eq!(ev["exe"], exe.as_str(), "{ev}");
        assert_eq!(ev["fds"], serde_json::json!([{"fd": 3, "kind": "file", "detail": leak}]), "{ev}");
    }
}

#[test]
fn stress_fork_exec_with_busy_threads_log() {
    stress(Mode::Log);
}

#[test]
fn stress_fork_exec_with_busy_threads_fix() {
    stress(Mode::Fix);
}
