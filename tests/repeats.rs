//! One finding, one line (issue 13): the same leak at 1000 spawns on each path is
//! written once in full and then counted (`repeats`), exactly — from one process,
//! from forked workers, when `exit()` ends the loop in the middle, across the repeat
//! interval — and `execguard report` adds the counts back up. Driver:
//! c-tests/repeat_spawns.c (a TCP listener and /dev/null leak into /bin/true).

mod common;

use common::{named, occurrences, run_mode, run_mode_with, Mode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const PATHS: [&str; 4] = ["forkexec", "posix_spawn", "system", "popen"];

/// Lines of each finding of `event`, by `finding`.
fn by_finding<'a>(evs: &'a [Value], event: &str) -> BTreeMap<String, Vec<&'a Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in named(evs, event) {
        let id = e["finding"].as_str().unwrap_or_else(|| panic!("no finding field: {e}")).to_string();
        m.entry(id).or_default().push(e);
    }
    m
}

/// The leak of this driver, as its first line must name it in full.
fn check_first_line(first: &Value, mode: Mode, how: &str) {
    common::check_common(first, mode, "warn", mode.action());
    assert!(first.get("repeats").is_none(), "the first line is the finding itself: {first}");
    assert_eq!(first["target"], "/bin/true", "{first}");
    let fds = first["fds"].as_array().unwrap();
    assert_eq!(fds.len(), 2, "{first}");
    assert_eq!((fds[0]["fd"].as_u64(), fds[0]["kind"].as_str()), (Some(3), Some("tcp_listen")), "{first}");
    assert!(fds[0]["detail"].as_str().unwrap().starts_with("127.0.0.1:"), "{first}");
    assert_eq!((fds[1]["fd"].as_u64(), fds[1]["detail"].as_str()), (Some(4), Some("/dev/null")), "{first}");
    if how == "system" || how == "popen" {
        assert_eq!(first["via"], how, "{first}");
    }
}

/// `n` identical leaky spawns: each finding in at most 3 lines, Σ(1 + repeats) = n.
fn exact(run: &common::Run, how: &str, n: u64) {
    assert!(run.status.success(), "{}", run.context_short());
    let evs = run.events();
    let leaks = by_finding(&evs, "exec_fd_leak");
    assert_eq!(leaks.len(), 1, "one finding\n{}", run.context_short());
    let lines = leaks.values().next().unwrap();
    assert!(lines.len() <= 3, "{} lines for one finding\n{}", lines.len(), run.context_short());
    check_first_line(lines[0], run.mode, how);
    assert_eq!(occurrences(lines.iter().copied()), n, "Σ(1 + repeats)\n{}", run.context_short());
    // Every line of the finding is the whole finding again (kept body), with its count.
    for l in &lines[1..] {
        assert!(l["repeats"].is_u64(), "{l}");
        assert_eq!(l["fds"], lines[0]["fds"], "{l}");
    }
    if how == "system" || how == "popen" {
        // The caller holds a listener: each call blocks a server, the same finding.
        let blocking = by_finding(&evs, "system_blocking");
        assert_eq!(blocking.len(), 1, "{}", run.context_short());
        let b = blocking.values().next().unwrap();
        assert!(b.len() <= 3, "{}", run.context_short());
        assert_eq!(occurrences(b.iter().copied()), n, "{}", run.context_short());
    } else {
        assert!(named(&evs, "system_blocking").is_empty(), "{}", run.context_short());
    }
}

fn report_json(log: &std::path::Path) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_execguard")).arg("report").arg("--json").arg(log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn thousand_identical_spawns_one_finding_each_path() {
    let prog = common::c_prog("repeat_spawns");
    for how in PATHS {
        let base = run_mode(Mode::NoShim, &prog, &[how, "1000"], &[], T);
        assert_eq!(base.stdout.trim(), "spawned=1000", "{}", base.context_short());
        for mode in [Mode::Log, Mode::Fix] {
            let run = run_mode(mode, &prog, &[how, "1000"], &[], T);
            assert_eq!(run.stdout, base.stdout, "{}", run.context_short());
            exact(&run, how, 1000);
            // execguard report adds the counts back up.
            let r = report_json(&run.log);
            assert_eq!(r["by_event"]["exec_fd_leak"], 1000, "{r}");
            let f: Vec<&Value> = r["findings"].as_array().unwrap().iter().filter(|f| f["event"] == "exec_fd_leak").collect();
            assert_eq!(f.len(), 1, "{r}");
            assert_eq!(f[0]["occurrences"], 1000, "{r}");
            assert!(f[0]["lines"].as_u64().unwrap() <= 3, "{r}");
            let text = std::process::Command::new(env!("CARGO_BIN_EXE_execguard")).arg("report").arg(&run.log).output().unwrap();
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(text.contains("1000× exec_fd_leak"), "{text}");
        }
    }
}

#[test]
fn exit_in_the_middle_of_the_loop_still_writes_the_count() {
    let prog = common::c_prog("repeat_spawns");
    for how in PATHS {
        let run = run_mode(Mode::Log, &prog, &[how, "1000", "0", "637"], &[], T);
        assert_eq!(run.stdout.trim(), "spawned=637", "{}", run.context_short());
        exact(&run, how, 637);
        assert!(named(&run.events(), "exec_fd_leak").len() >= 2, "the exit flush wrote a line\n{}", run.context_short());
    }
}

#[test]
fn an_exec_of_the_counting_process_writes_the_count_first() {
    // The process that holds the table execs (a wrapper that ends with `exec`): its
    // exec hook writes what is pending; its own exec is one more occurrence.
    let prog = common::c_prog("repeat_spawns");
    for how in ["forkexec", "system"] {
        let run = run_mode(Mode::Log, &prog, &[how, "1000", "0", "-400"], &[], T);
        assert_eq!(run.stdout.trim(), "spawned=400", "{}", run.context_short());
        assert!(run.status.success(), "{}", run.context_short());
        let evs = run.events();
        let leaks = by_finding(&evs, "exec_fd_leak");
        assert_eq!(leaks.len(), 1, "{}", run.context_short());
        let lines = leaks.values().next().unwrap();
        assert_eq!(lines.len(), 2, "the first line, and the count written at the exec\n{}", run.context_short());
        check_first_line(lines[0], Mode::Log, how);
        assert_eq!(lines[1]["pid"], run.pid, "written by the process that execs: {}", lines[1]);
        assert_eq!(occurrences(lines.iter().copied()), 401, "{}", run.context_short());
        // 400 system() calls blocked a server; the exec itself blocks nothing.
        let blocking: u64 = occurrences(named(&evs, "system_blocking"));
        assert_eq!(blocking, if how == "system" { 400 } else { 0 }, "{}", run.context_short());
    }
}

#[test]
fn forked_workers_count_into_the_parents_finding() {
    let prog = common::c_prog("repeat_spawns");
    for how in PATHS {
        for mode in [Mode::Log, Mode::Fix] {
            let run = run_mode(mode, &prog, &[how, "1000", "4"], &[], T);
            assert_eq!(run.stdout.matches("spawned=250").count(), 4, "{}", run.context_short());
            exact(&run, how, 1000);
            let pids: std::collections::BTreeSet<u64> =
                named(&run.events(), "exec_fd_leak").iter().map(|e| e["pid"].as_u64().unwrap()).collect();
            // The workers exit() while the parent lives: only the parent (the table's
            // owner) writes what they counted.
            assert!(pids.len() <= 2, "{}", run.context_short());
        }
    }
    // A worker that exit()s in the middle: the others and the parent still add up.
    let run = run_mode(Mode::Log, &prog, &["forkexec", "1000", "4", "100"], &[], T);
    assert_eq!(run.stdout.matches("spawned=100").count(), 4, "{}", run.context_short());
    exact(&run, "forkexec", 400);
}

#[test]
fn a_finding_that_keeps_happening_is_written_every_interval() {
    let prog = common::c_prog("repeat_spawns");
    let run = run_mode(Mode::Log, &prog, &["forkexec", "120", "0", "0", "2.6"], &[("EXECGUARD_REPEAT_INTERVAL", "1")], T);
    assert!(run.status.success(), "{}", run.context_short());
    let evs = run.events();
    let lines = named(&evs, "exec_fd_leak");
    assert_eq!(occurrences(lines.iter().copied()), 120, "{}", run.context_short());
    // first, at least one middle line (after ≥ 1 s), the exit line; no more than one a
    // second, however long a loaded machine makes the 2.6 s loop.
    assert!(lines.len() >= 3, "{} lines\n{}", lines.len(), run.context_short());
    let ts: Vec<f64> = lines.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
    let middle = &ts[..ts.len() - 1];
    assert!(middle.windows(2).all(|w| w[1] - w[0] >= 0.99), "each middle line waited for the interval: {ts:?}");
    assert!(lines[1]["repeats"].as_u64().unwrap() > 0, "{}", lines[1]);
    // 0: every occurrence in full.
    let run = run_mode(Mode::Log, &prog, &["forkexec", "30"], &[("EXECGUARD_REPEAT_INTERVAL", "0")], T);
    let evs = run.events();
    let lines = named(&evs, "exec_fd_leak");
    assert_eq!(lines.len(), 30, "{}", run.context_short());
    assert!(lines.iter().skip(1).all(|e| e["repeats"] == 0), "{}", run.context_short());
    assert_eq!(by_finding(&evs, "exec_fd_leak").len(), 1);
}

#[test]
fn vfork_children_count_into_the_parents_finding() {
    // vfork + exec (CPython's subprocess): the vfork hook makes the table in the
    // parent, so the children's exec audits fold into one finding.
    let prog = common::c_prog("repeat_spawns");
    for mode in [Mode::Log, Mode::Fix] {
        let run = run_mode(mode, &prog, &["vfork", "1000"], &[], T);
        assert_eq!(run.stdout.trim(), "spawned=1000", "{}", run.context_short());
        exact(&run, "vfork", 1000);
    }
    // The same from Python: subprocess.run 300 times, with a listener created in C
    // without CLOEXEC (ctypes: Python's own sockets are CLOEXEC).
    let script = r#"
import ctypes, subprocess
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)
sa = (ctypes.c_char * 16)(2, 0, 0, 0, 127, 0, 0, 1)
assert fd >= 0 and libc.bind(fd, sa, 16) == 0 and libc.listen(fd, 4) == 0
for _ in range(300):
    subprocess.run(["/bin/true"], close_fds=False, check=True)
print("spawned=300")
"#;
    let py = std::path::PathBuf::from("/usr/bin/python3");
    let run = run_mode(Mode::Log, &py, &["-c", script], &[], T);
    assert_eq!(run.stdout.trim(), "spawned=300", "{}", run.context_short());
    let evs = run.events();
    let leaks = by_finding(&evs, "exec_fd_leak");
    assert_eq!(leaks.len(), 1, "{}", run.context_short());
    let lines = leaks.values().next().unwrap();
    assert!(lines.len() <= 3, "{}", run.context_short());
    assert_eq!(occurrences(lines.iter().copied()), 300, "{}", run.context_short());
    assert_eq!(lines[0]["fds"][0]["kind"], "tcp_listen", "{}", lines[0]);
}

#[test]
fn human_form_says_how_often_it_repeated() {
    let prog = common::c_prog("repeat_spawns");
    let run = run_mode(Mode::Log, &prog, &["posix_spawn", "50"], &[("EXECGUARD_LOG", "")], T);
    assert!(run.status.success(), "{}", run.context_short());
    let leaks: Vec<&str> = run.stderr.lines().filter(|l| l.contains("exec_fd_leak")).collect();
    assert_eq!(leaks.len(), 2, "{}", run.stderr);
    assert!(!leaks[0].contains("repeated"), "{}", leaks[0]);
    assert!(leaks[1].contains("fd 3 (tcp_listen 127.0.0.1:") && leaks[1].ends_with("(repeated 48\u{d7})"), "{}", leaks[1]);
}

#[test]
fn a_raw_fork_child_without_the_table_writes_in_full() {
    // syscall(SYS_fork): the fork hook never runs, and no event made a table in the
    // parent before; each child's exec audit has nowhere to count, so nothing is
    // folded and nothing is lost.
    let prog = common::c_prog("repeat_spawns");
    let run = run_mode_with(Mode::Log, &prog, &["rawfork", "20"], &[], T, false);
    assert_eq!(run.stdout.trim(), "spawned=20", "{}", run.context_short());
    let evs = run.events();
    let lines = named(&evs, "exec_fd_leak");
    assert_eq!(lines.len(), 20, "{}", run.context_short());
    assert!(lines.iter().all(|e| e.get("repeats").is_none()), "{}", run.context_short());
    assert_eq!(by_finding(&evs, "exec_fd_leak").len(), 1, "the same finding each time");
}
