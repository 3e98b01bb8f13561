//! One finding, one line (issue 13): the same leak at 1000 spawns on each path is
//! written once in full and then counted (`repeats`), exactly — from one process,
//! from forked workers, when `exit()` ends the loop in the middle, across the repeat
//! interval — and `execguard report` adds the counts back up. Driver:
//! c-tests/repeat_spawns.c (a TCP listener and /dev/null leak into /bin/true).

#[macro_use]
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
fn workers_that_outlive_the_owner_still_write_their_counts() {
    // A wrapper forks helpers and execs (`repeat_spawns reap`): the table's owner is
    // gone before the helpers spawn anything. Each helper takes the table over at
    // its first spawn, so its own exec (one more occurrence) writes what it and the
    // other helpers counted; before, every repeat after the wrapper's exec was lost.
    let prog = common::c_prog("repeat_spawns");
    for how in ["forkexec", "posix_spawn", "system"] {
        let run = run_mode(Mode::Log, &prog, &[how, "400", "-2", "-200"], &[], T);
        assert!(run.status.success(), "{}", run.context_short());
        assert_eq!(run.stdout.matches("spawned=200").count(), 2, "{}", run.context_short());
        let evs = run.events();
        let lines: Vec<&Value> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["target"] == "/bin/true").collect();
        assert!(!lines.is_empty(), "{}", run.context_short());
        check_first_line(lines[0], Mode::Log, how);
        // 2 × 200 spawns, and each helper's own exec of /bin/true.
        assert_eq!(occurrences(lines.iter().copied()), 402, "{}", run.context_short());
        assert!(lines.len() <= 4, "{} lines\n{}", lines.len(), run.context_short());
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
    // vfork + exec (CPython's subprocess): the first child with something to count
    // makes the table in the memory it shares with the parent (the vfork hook
    // marked the thread), so the children's exec audits fold into one finding.
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

/// The same raw-fork children where a table was made before they ran: the strays
/// from the caller (c-tests/stray_launch.c) make the parent log `startup_fds`, and
/// its first event makes the table. Each child counts into it in memory of its own
/// (no hook saw the fork), so only the table can tell the parent, at exit, that
/// there are counts to write: Σ(1 + repeats) is exact. The same holds for a vfork
/// (`vfork`), which qemu-user runs as a fork (`aarch64::`).
#[test]
fn raw_fork_children_count_into_a_table_made_before_them() {
    use std::os::unix::process::CommandExt;
    let prog = common::c_prog("repeat_spawns");
    let launcher = common::c_prog("stray_launch");
    for how in ["rawfork", "vfork"] {
        let dir = common::tmpdir(&format!("repeats-raw-{how}"));
        let log = dir.join("log.jsonl");
        let mut cmd = std::process::Command::new(&launcher);
        cmd.arg(&prog).args([how, "200"]).env_remove("LD_PRELOAD").process_group(0);
        cmd.env("STRAY_PRELOAD", common::shim()).env("EXECGUARD_LOG", &log).env("EXECGUARD_MODE", "log");
        common::isolate(&mut cmd);
        let out = cmd.output().unwrap();
        let evs = common::events(&log);
        let ctx = format!("[{how}] {}\n{}", String::from_utf8_lossy(&out.stderr), evs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
        assert!(out.status.success(), "{ctx}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "spawned=200", "{ctx}");
        assert_eq!(named(&evs, "startup_fds").len(), 1, "the table is made at start: {ctx}");
        let leaks = by_finding(&evs, "exec_fd_leak");
        assert_eq!(leaks.len(), 1, "one finding: {ctx}");
        let lines = leaks.values().next().unwrap();
        assert!(lines.len() <= 3, "{} lines: {ctx}", lines.len());
        assert_eq!(occurrences(lines.iter().copied()), 200, "Σ(1 + repeats): {ctx}");
    }
}

#[test]
fn a_test_name_at_the_edge_of_a_full_line_never_loses_the_finding() {
    // 300 leaked UDP sockets fill the exec_fd_leak line up to its list reserve. A
    // long, escape-heavy test name that fits the body but leaves too little for the
    // tail (`finding`, `repeats`, `}`) used to push the line past 4096 bytes, and
    // the whole event was dropped: the name must be left out instead.
    let prog = common::c_prog("udp_pool");
    let leak_line = |run: &common::Run| -> Option<String> {
        common::log_lines(&run.log).into_iter().find(|l| serde_json::from_str::<Value>(l).unwrap()["event"] == "exec_fd_leak")
    };
    let base = run_mode(Mode::Log, &prog, &["300"], &[], T);
    let line = leak_line(&base).unwrap_or_else(|| panic!("{}", base.context_short()));
    // The body ends where `,"finding":"<16 hex>"}` begins; the buffer holds 4096
    // bytes, newline included.
    assert!(line.ends_with("\"}"), "{line}");
    let room = 4096 - (line.len() - ",\"finding\":\"0123456789abcdef\"}".len());
    assert!((200..1700).contains(&room), "the pool should leave a few hundred bytes: {room}");
    for short in [16, 20, 24, 28] {
        // `,"test":"` + name + `"`, each \x01 escaped to 6 bytes: the field is
        // `room - short` bytes long.
        let field = room - short;
        let ctl = (field - 10) / 6 - 5;
        let name = format!("{}{}", "\u{1}".repeat(ctl), "a".repeat(field - 10 - 6 * ctl));
        assert!(name.len() <= 300, "the name is not cut");
        let run = run_mode(Mode::Log, &prog, &["300"], &[("PYTEST_CURRENT_TEST", &name)], T);
        let l = leak_line(&run).unwrap_or_else(|| panic!("field of {field} bytes, {room} free: the event is lost\n{}", run.context_short()));
        assert!(l.len() < 4096, "{}", l.len());
        let ev: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(ev["fds_total"], 300, "{ev}");
        assert!(ev["finding"].is_string(), "{ev}");
    }
    // A name that fits with its tail is still written.
    let run = run_mode(Mode::Log, &prog, &["300"], &[("PYTEST_CURRENT_TEST", "t.py::edge (call)")], T);
    let ev: Value = serde_json::from_str(&leak_line(&run).unwrap()).unwrap();
    assert_eq!(ev["test"], "t.py::edge (call)", "{ev}");
}

/// From a parent that holds stray fds (a file at 10, a pipe at 251, a socket at 500;
/// c-tests/stray_launch.c), as real users start programs: the strays pass through
/// every spawn, so they are neither in the finding nor in its identity — still one
/// finding, exactly counted, and the strays said once at start.
#[test]
fn strays_from_the_caller_stay_out_of_the_finding() {
    use std::os::unix::process::CommandExt;
    let prog = common::c_prog("repeat_spawns");
    let launcher = common::c_prog("stray_launch");
    for how in PATHS {
        for mode in [Mode::Log, Mode::Fix] {
            let dir = common::tmpdir(&format!("repeats-strays-{how}-{}", mode.name()));
            let log = dir.join("log.jsonl");
            let mut cmd = std::process::Command::new(&launcher);
            cmd.arg(&prog).args([how, "300"]).env_remove("LD_PRELOAD").process_group(0);
            cmd.env("STRAY_PRELOAD", common::shim()).env("EXECGUARD_LOG", &log);
            cmd.env("EXECGUARD_MODE", mode.name());
            common::isolate(&mut cmd);
            let out = cmd.output().unwrap();
            let evs = common::events(&log);
            let ctx = format!("[{how} {}] {}\n{}", mode.name(), String::from_utf8_lossy(&out.stderr), evs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
            assert!(out.status.success(), "{ctx}");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "spawned=300", "{ctx}");
            let leaks = by_finding(&evs, "exec_fd_leak");
            assert_eq!(leaks.len(), 1, "one finding: {ctx}");
            let lines = leaks.values().next().unwrap();
            check_first_line(lines[0], mode, how);
            assert_eq!(occurrences(lines.iter().copied()), 300, "Σ(1 + repeats): {ctx}");
            let starts = named(&evs, "startup_fds");
            assert_eq!(starts.len(), 1, "{ctx}");
            let fds: Vec<u64> = starts[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            assert_eq!((fds, &starts[0]["from"]), (vec![10, 251, 500], &"outside".into()), "{ctx}");
        }
    }
}

/// A repeat takes its identity from the first audit of the same fds (numbers and
/// generations, no fstat): a different file put on the leaked number is another
/// finding, however the number changed hands — close and open, fclose and fopen
/// (both inside libc), dup2 — on a fork child's path and on a parent-side one.
/// Driver: c-tests/layout_change.c (/dev/null, then /etc/hostname, on one number).
#[test]
fn another_file_on_the_leaked_number_is_another_finding() {
    let prog = common::c_prog("layout_change");
    for change in ["none", "close", "fclose", "dup2"] {
        for method in ["forkexec", "posix_spawn"] {
            for mode in [Mode::Log, Mode::Fix] {
                let run = run_mode(mode, &prog, &[change, method, "40"], &[], T);
                let ctx = format!("[{change} {method} {mode:?}]\n{}", run.context_short());
                assert!(run.status.success() && run.stdout.contains("failures=0"), "{ctx}");
                let evs = run.events();
                let leaks = by_finding(&evs, "exec_fd_leak");
                let mut seen: BTreeMap<String, u64> = BTreeMap::new();
                for lines in leaks.values() {
                    let detail = lines[0]["fds"][0]["detail"].as_str().unwrap_or_default().to_string();
                    assert_eq!(lines[0]["fds"].as_array().map(|a| a.len()), Some(1), "{ctx}");
                    assert!(lines.len() <= 3, "{ctx}");
                    assert!(seen.insert(detail, occurrences(lines.iter().copied())).is_none(), "two findings for one file: {ctx}");
                }
                let want: BTreeMap<String, u64> = if change == "none" {
                    [("/dev/null".to_string(), 80)].into()
                } else {
                    [("/dev/null".to_string(), 40), ("/etc/hostname".to_string(), 40)].into()
                };
                assert_eq!(seen, want, "{ctx}");
            }
        }
    }
}

/// The close-on-exec flag a hook saw set stands in for `F_GETFD` at later audits
/// (postfork/fdgen.rs): every change made through libc between two batches of
/// spawns must be seen — set, cleared by a new fd on the number, libc's own closes
/// and opens (fclose/fopen, closedir/opendir), close_range — and a vfork child's
/// changes to its own fd table must not be taken for its parent's. Driver:
/// c-tests/flag_change.c (fd F leaks or not before and after each change).
/// flag_change's cases: (change, F leaks before, F leaks after).
const FLAG_CASES: [(&str, bool, bool); 10] = [
    ("fcntl", true, false),
    ("ioctl", true, false),
    ("reopen_e", true, false),
    ("dup3_e", true, false),
    ("fopen_e", true, false),
    ("closedir", true, false),
    ("range", true, false),
    ("dup2", false, true),
    ("reopen", false, true),
    ("vfork", true, true),
];

/// The exec_fd_leak lines of a flag_change run name F only; their occurrences.
fn flag_leaks(evs: &[Value], fd: u64, ctx: &str) -> u64 {
    let mut total = 0;
    for lines in by_finding(evs, "exec_fd_leak").values() {
        for l in lines {
            let fds: Vec<u64> = l["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            assert_eq!(fds, vec![fd], "only F may leak: {l}\n{ctx}");
        }
        total += occurrences(lines.iter().copied());
    }
    total
}

#[test]
fn the_recorded_flag_follows_every_change_seen() {
    let prog = common::c_prog("flag_change");
    let n = 30u64;
    for (change, before, after) in FLAG_CASES {
        for method in ["forkexec", "posix_spawn"] {
            for mode in [Mode::Log, Mode::Fix] {
                let run = run_mode(mode, &prog, &[change, method, &n.to_string()], &[], T);
                let ctx = format!("[{change} {method} {mode:?}]\n{}", run.context_short());
                assert!(run.status.success(), "{ctx}");
                if run.stdout.trim() == "skip" {
                    let refused = common::is_musl() || common::is_glibc_old() || common::seccomp_flavour().is_some();
                    assert!(refused && change == "range", "only musl, glibc before 2.34 or a filter lacks close_range: {ctx}");
                    continue;
                }
                assert!(run.stdout.contains("failures=0"), "{ctx}");
                let fd: u64 = run.stdout.split("fd=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).expect("fd=");
                assert_eq!(flag_leaks(&run.events(), fd, &ctx), n * (before as u64 + after as u64), "{ctx}");
            }
        }
    }
}

/// The same from a caller that leaves stray fds open (a file at 10, a pipe at 251,
/// a socket at 500: c-tests/stray_launch.c): no hook saw them made, so their flags
/// are asked of the kernel; they pass through every exec unreported, are named
/// once as coming from outside, and F's findings are exactly as above.
#[test]
fn the_recorded_flag_follows_every_change_seen_with_strays_from_the_caller() {
    use std::os::unix::process::CommandExt;
    let prog = common::c_prog("flag_change");
    let launcher = common::c_prog("stray_launch");
    let n = 20u64;
    for (change, before, after) in FLAG_CASES {
        for method in ["forkexec", "posix_spawn"] {
            let dir = common::tmpdir(&format!("flag-strays-{change}-{method}"));
            let log = dir.join("log.jsonl");
            let mut cmd = std::process::Command::new(&launcher);
            cmd.arg(&prog).args([change, method, &n.to_string()]).env_remove("LD_PRELOAD").process_group(0);
            cmd.env("STRAY_PRELOAD", common::shim()).env("EXECGUARD_LOG", &log).env("EXECGUARD_MODE", "log");
            common::isolate(&mut cmd);
            let out = cmd.output().unwrap();
            let evs = common::events(&log);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let ctx = format!("[{change} {method}] {stdout} {}\n{}", String::from_utf8_lossy(&out.stderr), evs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
            assert!(out.status.success() && stdout.contains("failures=0"), "{ctx}");
            let fd: u64 = stdout.split("fd=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).expect("fd=");
            assert_eq!(flag_leaks(&evs, fd, &ctx), n * (before as u64 + after as u64), "{ctx}");
            let starts = named(&evs, "startup_fds");
            assert_eq!(starts.len(), 1, "{ctx}");
            let fds: Vec<u64> = starts[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            assert_eq!((fds, &starts[0]["from"]), (vec![10, 251, 500], &"outside".into()), "{ctx}");
        }
    }
}

// The known-layout cache on musl (its fclose and fopen, its posix_spawn) and under
// seccomp filters that refuse newer system calls.
in_other_environments!(
    everywhere: [
        another_file_on_the_leaked_number_is_another_finding,
        the_recorded_flag_follows_every_change_seen,
    ],
    // On arm64 qemu-user runs a vfork as a fork: the child never shares its
    // parent's memory, where the table is made.
    not_on_aarch64: [
        vfork_children_count_into_the_parents_finding,
    ],
    // Left out on arm64 too: the per-process fork counts (multi_threaded_forks_*:
    // qemu accepts MADV_WIPEONFORK and does not apply it, and its page faults are
    // the emulator's).
    only_on_aarch64: [
        raw_fork_children_count_into_a_table_made_before_them,
        thousand_identical_spawns_one_finding_each_path,
        exit_in_the_middle_of_the_loop_still_writes_the_count,
        an_exec_of_the_counting_process_writes_the_count_first,
        workers_that_outlive_the_owner_still_write_their_counts,
        forked_workers_count_into_the_parents_finding,
        a_raw_fork_child_without_the_table_writes_in_full,
        strays_from_the_caller_stay_out_of_the_finding,
        the_recorded_flag_follows_every_change_seen_with_strays_from_the_caller,
    ],
);

/// A shell that vforks its command (dash, every `system()`) makes no table of
/// findings when the command's exec finds nothing: the mapping, its first page and
/// its unmapping at exit were about 10 µs of every `system()`. With a leak, the
/// vfork child makes it in the shell's memory (the test above counts into it).
#[test]
fn a_shell_whose_command_finds_nothing_makes_no_table() {
    if std::process::Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is installed by the test command");
    }
    let d = common::tmpdir("no-table");
    let trace = d.join("trace");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-e", "trace=mmap", "-o"])
        .arg(&trace)
        .args(["/bin/sh", "-c", "/bin/true; /bin/true"])
        .env("LD_PRELOAD", common::shim())
        .env("EXECGUARD_LOG", d.join("log.jsonl"))
        .env_remove("EXECGUARD_MODE")
        .stdin(std::process::Stdio::null());
    common::isolate(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&trace).unwrap();
    let shared: Vec<&str> = text.lines().filter(|l| l.contains("MAP_SHARED|MAP_ANONYMOUS")).collect();
    assert!(shared.is_empty(), "a table was made:\n{}", shared.join("\n"));
}

/// `fork_threads` (c-tests/fork_count.c: 2 idle threads, forks at four stack
/// depths): every multi-threaded fork is an occurrence of the program's one finding,
/// in at most 3 lines; `count` is the forking process's own (a fork child counts its
/// own forks from 1); and a repeat adds no page fault to the fork — the hook writes
/// no page that the last fork write-protected, and probes no stack page below its
/// caller's (each was a fault, with TLB shootdowns to the threads, at every fork of
/// a busy server).
#[test]
fn multi_threaded_forks_count_per_process_and_add_no_fault() {
    let prog = common::c_prog("fork_count");
    let per_fork = |run: &common::Run| -> f64 {
        assert!(run.status.success(), "{}", run.context_short());
        let v = run.stdout.trim().strip_prefix("faults_per_fork=").unwrap_or_else(|| panic!("{}", run.context_short()));
        v.parse().unwrap()
    };
    let bare = run_mode(Mode::NoShim, &prog, &["100"], &[], T);
    for mode in [Mode::Log, Mode::Fix] {
        let run = run_mode(mode, &prog, &["100"], &[], T);
        let (b, s) = (per_fork(&bare), per_fork(&run));
        assert!(s <= b + 0.5, "page faults per fork: {s} under the shim, {b} without\n{}", run.context_short());
        let evs = run.events();
        let lines = named(&evs, "fork_threads");
        // The parent: 1 + 4 × 100 + the child's fork; the child: 1.
        assert_eq!(occurrences(lines.iter().copied()), 403, "{}", run.context_short());
        assert!(lines.len() <= 3, "{} lines\n{}", lines.len(), run.context_short());
        assert_eq!(by_finding(&evs, "fork_threads").len(), 1, "one finding per program");
    }
    // Every occurrence in full: each process's own count, and its threads — glibc's
    // own count of them, and /proc's link count under musl.
    for prog in [prog, common::c_prog_musl("fork_count")] {
        let run = run_mode(Mode::Log, &prog, &["5"], &[("EXECGUARD_REPEAT_INTERVAL", "0")], T);
        assert!(run.status.success(), "{}", run.context_short());
        let evs = run.events();
        let mut counts: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for e in named(&evs, "fork_threads") {
            counts.entry(e["pid"].as_u64().unwrap()).or_default().push((e["count"].as_u64().unwrap(), e["threads"].as_u64().unwrap()));
        }
        let parent = counts.remove(&(run.pid as u64)).unwrap_or_default();
        assert_eq!(parent, (1..=22).map(|c| (c, 3)).collect::<Vec<_>>(), "the parent's lines\n{}", run.context_short());
        assert_eq!(counts.into_values().collect::<Vec<_>>(), vec![vec![(1, 2)]], "the child's own first\n{}", run.context_short());
    }
}

/// Before 4.14 (c-tests/seccomp_deny.c's `enosys` flavour answers EINVAL to
/// MADV_WIPEONFORK) the fork count stays in a static: a fork child continues its
/// parent's count, and the parent says so once with a `degraded` event. A container
/// profile (`eperm`) lets madvise through: each process counts its own.
#[test]
fn multi_threaded_forks_on_a_kernel_without_wipeonfork() {
    let prog = common::c_prog("fork_count");
    for (flavour, child_count) in [("enosys", 23u64), ("eperm", 1)] {
        common::under_seccomp(flavour, || {
            let run = run_mode(Mode::Log, &prog, &["5"], &[("EXECGUARD_REPEAT_INTERVAL", "0")], T);
            let ctx = format!("[{flavour}]\n{}", run.context_short());
            assert!(run.status.success(), "{ctx}");
            let evs = run.events();
            let (mut parent, mut child) = (vec![], vec![]);
            for e in named(&evs, "fork_threads") {
                let c = e["count"].as_u64().unwrap();
                if e["pid"] == run.pid { parent.push(c) } else { child.push(c) }
            }
            assert_eq!(parent, (1..=22).collect::<Vec<u64>>(), "{ctx}");
            assert_eq!(child, vec![child_count], "{ctx}");
            let deg: Vec<_> = named(&evs, "degraded").into_iter().filter(|e| e["path"] == "madv_wipeonfork").collect();
            if flavour == "enosys" {
                assert_eq!(deg.len(), 1, "once, from the parent\n{ctx}");
                assert_eq!((&deg[0]["pid"], deg[0]["errno"].as_str()), (&serde_json::json!(run.pid), Some("EINVAL")), "{ctx}");
            } else {
                assert!(deg.is_empty(), "{ctx}");
            }
        });
    }
}

/// The same counts from a caller that leaves stray fds open (c-tests/stray_launch.c:
/// a file at 10, a pipe at 251, a socket at 500) — what a terminal or CI runner
/// hands over: each process still counts its own multi-threaded forks, and the
/// strays are named once, as the caller's.
#[test]
fn multi_threaded_forks_count_per_process_with_strays_from_the_caller() {
    use std::os::unix::process::CommandExt;
    let prog = common::c_prog("fork_count");
    let launcher = common::c_prog("stray_launch");
    let dir = common::tmpdir("fork-count-strays");
    let log = dir.join("log.jsonl");
    let mut cmd = std::process::Command::new(&launcher);
    cmd.arg(&prog).arg("5").env_remove("LD_PRELOAD").process_group(0);
    cmd.env("STRAY_PRELOAD", common::shim()).env("EXECGUARD_LOG", &log).env("EXECGUARD_MODE", "log");
    cmd.env("EXECGUARD_REPEAT_INTERVAL", "0");
    common::isolate(&mut cmd);
    let out = cmd.output().unwrap();
    let evs = common::events(&log);
    let ctx = format!("{}{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr), evs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
    assert!(out.status.success(), "{ctx}");
    let mut counts: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for e in named(&evs, "fork_threads") {
        counts.entry(e["pid"].as_u64().unwrap()).or_default().push((e["count"].as_u64().unwrap(), e["threads"].as_u64().unwrap()));
    }
    let mut lines: Vec<Vec<(u64, u64)>> = counts.into_values().collect();
    lines.sort_by_key(|l| std::cmp::Reverse(l.len()));
    assert_eq!(lines, vec![(1..=22).map(|c| (c, 3)).collect::<Vec<_>>(), vec![(1, 2)]], "{ctx}");
    let starts = named(&evs, "startup_fds");
    assert_eq!(starts.len(), 1, "{ctx}");
    let fds: Vec<u64> = starts[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
    assert_eq!((fds, &starts[0]["from"]), (vec![10, 251, 500], &"outside".into()), "{ctx}");
}
