//! Incident 5, the reconnect storm (c-tests/connect_storm.c): the write-up's upstream
//! and a client that retries at once, without the shim, in log and in fix mode; the
//! same over IPv6, a unix socket and refused connects; and the healthy traffic that
//! must never be called a storm. Ports 26000-26099.

mod common;

use common::{check_common, named, run_mode, Mode, Run};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn run(mode: Mode, args: &[&str], env: &[(&str, &str)]) -> Run {
    let r = run_mode(mode, &common::c_prog("connect_storm"), args, env, T);
    assert!(r.status.success(), "{}", r.context());
    r
}

fn storms(r: &Run) -> Vec<Value> {
    named(&r.events(), "connect_storm").into_iter().cloned().collect()
}

/// Counts printed by the program that do not depend on timing.
fn outcome_lines(r: &Run) -> Vec<String> {
    r.stdout
        .lines()
        .filter(|l| !l.starts_with("server_pid=") && !l.starts_with("loop_start=") && !l.starts_with("rate="))
        .map(str::to_string)
        .collect()
}

/// The storm event of the client: right peer, outcomes by name, within a second of
/// the loop's start, never from the upstream.
fn check_storm(r: &Run, mode: Mode, peer: &str, outcome: &str) {
    let evs = storms(r);
    let server: u64 = r.field("server_pid").parse().unwrap_or(0);
    assert!(evs.iter().all(|e| e["pid"] != server), "the upstream's accepted connections are never a storm\n{}", r.context());
    let mine: Vec<_> = evs.iter().filter(|e| e["pid"] == r.pid).collect();
    assert!(!mine.is_empty(), "a connect_storm from the client\n{}", r.context());
    let ev = mine[0];
    check_common(ev, mode, "warn", "logged");
    assert_eq!(ev["peer"], peer, "{ev}");
    let connects = ev["connects"].as_u64().unwrap();
    assert!(connects >= 50, "{ev}");
    let outcomes = ev["outcomes"].as_object().unwrap_or_else(|| panic!("outcomes is an object: {ev}"));
    assert_eq!(outcomes.keys().collect::<Vec<_>>(), [outcome], "{ev}");
    assert_eq!(outcomes[outcome].as_u64(), Some(connects), "{ev}");
    let caller = ev["caller"].as_str().unwrap_or("");
    assert!(caller.starts_with(&common::canon(&common::c_prog("connect_storm"))) && caller.contains("+0x"), "{ev}");
    let start: f64 = r.field("loop_start").parse().unwrap();
    let ts = ev["ts"].as_f64().unwrap();
    assert!(ts >= start && ts - start < 1.0, "named within a second of the loop's start ({start}): {ev}");
}

/// The write-up three ways: the loop is there without the shim (and nothing is
/// logged); log mode names the upstream with EOF outcomes; fix mode changes nothing
/// and logs the same.
#[test]
fn writeup_loop_three_ways() {
    let args = ["writeup", "26001", "400", "5"];
    let plain = run(Mode::NoShim, &args, &[]);
    assert_eq!(plain.field("attempts"), "400", "{}", plain.context());
    assert_eq!(plain.field("answered"), "1", "the first request is answered, no later one\n{}", plain.context());
    assert_eq!(plain.field("eof"), "401", "{}", plain.context());
    assert!(storms(&plain).is_empty());
    for mode in [Mode::Log, Mode::Fix] {
        let r = run(mode, &args, &[]);
        assert_eq!(outcome_lines(&r), outcome_lines(&plain), "same behaviour in {}\n{}", mode.name(), r.context());
        check_storm(&r, mode, "127.0.0.1:26001", "EOF");
    }
}

#[test]
fn ipv6_peer() {
    let r = run(Mode::Log, &["v6", "26002", "300", "5"], &[]);
    check_storm(&r, Mode::Log, "[::1]:26002", "EOF");
}

#[test]
fn unix_socket_peer() {
    let dir = common::tmpdir("storm-unix");
    let path = dir.join("upstream.sock");
    let p = path.to_str().unwrap();
    let r = run(Mode::Log, &["unix", p, "300", "5"], &[]);
    check_storm(&r, Mode::Log, p, "EOF");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nothing listens: blocking connects fail at once; non-blocking ones fail later,
/// and the program takes the error with getsockopt before closing.
#[test]
fn refused_connects() {
    for (mode, port) in [("refused", "26003"), ("refused_nb", "26004")] {
        let r = run(Mode::Log, &[mode, port, "200"], &[]);
        assert_eq!(r.field("refused"), "200", "{}", r.context());
        let evs = storms(&r);
        assert_eq!(evs.len(), 1, "{}", r.context());
        let ev = &evs[0];
        assert_eq!(ev["peer"], format!("127.0.0.1:{port}"), "{ev}");
        assert!(ev["outcomes"]["ECONNREFUSED"].as_u64().unwrap() >= 50, "{ev}");
        let start: f64 = r.field("loop_start").parse().unwrap();
        assert!(ev["ts"].as_f64().unwrap() - start < 1.0, "{ev}");
    }
}

/// A non-blocking connect whose failure the program takes by calling connect again
/// counts once (it counted again at close): 15 refusals are under a 20/5 threshold,
/// 20 reach it with exactly 20 connects.
#[test]
fn refusal_taken_by_second_connect_counts_once() {
    let env = [("EXECGUARD_STORM", "20/5")];
    let r = run(Mode::Log, &["refused_nb_again", "26096", "15"], &env);
    assert_eq!(r.field("refused"), "15", "{}", r.context());
    assert!(storms(&r).is_empty(), "15 refusals are not 20\n{}", r.context());
    let r = run(Mode::Log, &["refused_nb_again", "26096", "20"], &env);
    assert_eq!(r.field("refused"), "20", "{}", r.context());
    let evs = storms(&r);
    assert_eq!(evs.len(), 1, "{}", r.context());
    assert_eq!(evs[0]["connects"], 20, "{}", evs[0]);
    assert_eq!(evs[0]["outcomes"]["ECONNREFUSED"], 20, "{}", evs[0]);
}

/// While a storm goes on, each window is one more occurrence of the same finding:
/// written in full the first time, then counted into `repeats` on a line at least
/// every EXECGUARD_REPEAT_INTERVAL (one finding, one line); a storm that ended is
/// not reported while quiet, and when it starts again a line says so at once (the
/// interval has passed), carrying the windows counted since.
#[test]
fn storm_repeats_ends_and_restarts() {
    let r = run(Mode::Log, &["bursts", "26005"], &[("EXECGUARD_STORM", "20/0.5"), ("EXECGUARD_REPEAT_INTERVAL", "1")]);
    let f = |k: &str| -> f64 { r.field(k).parse().unwrap() };
    let (a, quiet, b, end) = (f("phase_a"), f("quiet_start"), f("phase_b"), f("phase_b_end"));
    let evs = storms(&r);
    let ts: Vec<f64> = evs.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
    let in_a = ts.iter().filter(|&&t| t >= a && t <= quiet + 0.05).count();
    let in_quiet = ts.iter().filter(|&&t| t > quiet + 0.05 && t < b).count();
    let in_b: Vec<&Value> = evs.iter().filter(|e| e["ts"].as_f64().unwrap() >= b && e["ts"].as_f64().unwrap() <= end + 0.05).collect();
    // 1.6 s of storm at 200/s with 0.5 s windows and a 1 s repeat interval: the
    // start in full, then at most two lines of counted windows.
    assert!((1..=3).contains(&in_a), "{in_a} lines in phase A\n{}", r.context());
    assert_eq!(in_quiet, 0, "nothing while quiet\n{}", r.context());
    assert!(!in_b.is_empty(), "the storm that starts again is reported again\n{}", r.context());
    let first_b = in_b[0];
    assert!(first_b["ts"].as_f64().unwrap() - b < 0.5, "at once: {first_b}");
    assert!(first_b.get("repeats").is_some(), "the same finding again, with its count: {first_b}");
    let id = &evs[0]["finding"];
    let mut windows = 0;
    for e in &evs {
        assert_eq!(&e["finding"], id, "one finding: {e}");
        assert!(e["connects"].as_u64().unwrap() >= 20, "each line carries its window's count: {e}");
        windows += 1 + e.get("repeats").and_then(Value::as_u64).unwrap_or(0);
    }
    assert!(windows >= 4, "at least three windows in A and one in B, all counted: {windows}\n{}", r.context());
}

/// Healthy and borderline traffic, each well over 50 connections a second to one
/// peer (or fruitless but slower than the threshold): never a storm, from the
/// client or from the accepting upstream (also under the shim).
#[test]
fn healthy_traffic_is_never_a_storm() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["healthy", "26010", "3000"], "answered", "3000"),
        (&["pool", "26011", "2000"], "answered", "2000"),
        (&["nonblock", "26012", "2000"], "answered", "2000"),
        (&["udp", "26013", "300"], "udp_refused", "300"),
        (&["oneway", "26014", "2000"], "sent", "2000"),
        (&["stale", "26015", "500"], "stale", "500"),
        (&["slow", "26016"], "attempts", ""),
    ];
    for (args, key, want) in cases {
        for mode in [Mode::Log, Mode::Fix] {
            let r = run(mode, args, &[]);
            if !want.is_empty() {
                assert_eq!(r.field(key), *want, "{}", r.context());
            }
            assert!(storms(&r).is_empty(), "{args:?} is not a storm\n{}", r.context());
        }
    }
}

/// The pace of the healthy case, so that "thousands per second" is checked rather
/// than assumed.
#[test]
fn healthy_case_is_fast() {
    let r = run(Mode::Log, &["healthy", "26017", "3000"], &[]);
    let rate: f64 = r.field("rate").parse().unwrap();
    assert!(rate > 500.0, "{rate} connections/s\n{}", r.context());
    assert!(storms(&r).is_empty(), "{}", r.context());
}

/// The human form on stderr, and `execguard report` on the JSON log: the peer, the
/// outcome explained in one line, the connect call resolved to the C source line.
#[test]
fn human_line_and_report() {
    let r = run(Mode::Log, &["writeup", "26020", "200", "5"], &[("EXECGUARD_LOG", "")]);
    assert!(
        r.stderr.lines().any(|l| l.contains("warning: connect_storm: peer=127.0.0.1:26020 connects=50") && l.contains("outcomes=EOF:50")),
        "{}",
        r.context()
    );
    let r = run(Mode::Log, &["refused", "26021", "100"], &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_execguard")).arg("report").arg(&r.log).env("NO_COLOR", "1").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connect_storm to 127.0.0.1:26021"), "{text}");
    assert!(text.contains("ECONNREFUSED: nothing accepts at that address"), "{text}");
    assert!(text.contains("connecting at refused_loop (") && text.contains("connect_storm.c:"), "{text}");
}

/// Like a real server: four threads storm the same upstream at once from fds above
/// 1500, with a stray socket and 1500 files open, while a fifth thread reads: one
/// storm, named once, counts from every thread; behaviour unchanged.
#[test]
fn busy_threads_high_fds() {
    let args = ["busy", "26030", "150"];
    let plain = run(Mode::NoShim, &args, &[]);
    assert_eq!(plain.field("eof"), "600", "{}", plain.context());
    let r = run(Mode::Log, &args, &[]);
    assert_eq!(outcome_lines(&r), outcome_lines(&plain), "{}", r.context());
    let evs: Vec<Value> = storms(&r).into_iter().filter(|e| e["pid"] == r.pid).collect();
    assert!(!evs.is_empty(), "{}", r.context_short());
    let first = &evs[0];
    assert_eq!(first["peer"], "127.0.0.1:26030", "{first}");
    assert!(first["connects"].as_u64().unwrap() >= 50, "{first}");
    let ts: Vec<f64> = evs.iter().map(|e| e["ts"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[1] - w[0] > 0.5), "at most one event per window, whatever the threads: {ts:?}");
    let start: f64 = r.field("loop_start").parse().unwrap();
    assert!(first["ts"].as_f64().unwrap() - start < 1.0, "{first}");
}

/// A fork child (a server's worker) takes the tables over from its parent: both
/// storms are reported, each by the process that made it.
#[test]
fn fork_child_reports_its_own_storm() {
    let r = run(Mode::Log, &["forked", "26040", "120"], &[]);
    let child: u64 = r.field("child_pid").parse().unwrap();
    let evs = storms(&r);
    let by = |pid: u64, peer: &str| evs.iter().filter(|e| e["pid"] == pid && e["peer"] == peer).count();
    assert_eq!(by(r.pid as u64, "127.0.0.1:26040"), 1, "{}", r.context());
    assert_eq!(by(child, "127.0.0.1:26041"), 1, "{}", r.context());
    assert_eq!(evs.len(), 2, "{}", r.context());
}

/// A vfork child that closes its copy of a connection (a helper started the classic
/// way, the socket not CLOEXEC) shares the parent's memory but not its fds: the
/// parent's connection is still open and still followed, and its fruitless closes
/// make the storm as they do without the child.
#[test]
fn vfork_child_close_leaves_parent_tracking() {
    let args = ["vforked", "26097", "300", "5"];
    let plain = run(Mode::NoShim, &args, &[]);
    assert_eq!(plain.field("eof"), plain.field("attempts"), "{}", plain.context());
    assert_eq!(plain.field("children"), plain.field("attempts"), "{}", plain.context());
    let r = run(Mode::Log, &args, &[]);
    assert_eq!(r.field("children"), r.field("attempts"), "{}", r.context());
    assert_eq!(r.field("eof"), r.field("attempts"), "{}", r.context());
    check_storm(&r, Mode::Log, "127.0.0.1:26097", "EOF");
}

/// A connect whose address the kernel never read (an unmapped pointer, a length
/// over 128 at the end of a page) fails as it does without the shim: the shim does
/// not read the address either (it faulted the host before).
#[test]
fn unreadable_address_fails_as_without_shim() {
    let plain = run(Mode::NoShim, &["badaddr", "26098"], &[]);
    assert!(plain.stdout.contains("efault=-1 Bad address"), "{}", plain.context());
    assert!(plain.stdout.contains("long=-1 Invalid argument"), "{}", plain.context());
    assert!(plain.stdout.contains("real=-1 Connection refused"), "{}", plain.context());
    for mode in [Mode::Log, Mode::Fix] {
        let r = run(mode, &["badaddr", "26098"], &[]);
        assert_eq!(r.stdout, plain.stdout, "{}", r.context());
    }
}
