//! The four incidents of DESIGN.md in miniature (c-tests/), each run three ways:
//! without the shim the incident shows; in log mode the exact event appears and the
//! program's behaviour is byte-for-byte the same; in fix mode the incident is gone.

#[macro_use]
mod common;

use common::{check_common, named, run_mode, strs, Mode, Run};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn probe_json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("probe line {line:?}: {e}"))
}

/// Events named `name` logged by process `pid`.
fn by_pid<'a>(evs: &'a [Value], name: &str, pid: u64) -> Vec<&'a Value> {
    named(evs, name).into_iter().filter(|e| e["pid"] == pid).collect()
}

// ---------------------------------------------------------------------------
// (a) listening socket leaked into an exec'd helper

struct Listen {
    run: Run,
    server_pid: u64,
    child_pid: u64,
    listen_fd: u64,
    port: String,
}

fn listen_leak(mode: Mode) -> Listen {
    listen_leak_env(mode, &[])
}

/// stdout with what differs from run to run (pids, the port) replaced.
fn listen_normalised(l: &Listen) -> String {
    l.run
        .stdout
        .lines()
        .filter(|x| !x.starts_with("server_pid=") && !x.starts_with("child_pid="))
        .map(|x| x.replace(&format!(":{}", l.port), ":PORT").replace(&format!("port={}", l.port), "port=PORT"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn listen_event(l: &Listen, mode: Mode) {
    let evs = l.run.events();
    let leaks = by_pid(&evs, "exec_fd_leak", l.child_pid);
    assert_eq!(leaks.len(), 1, "one exec_fd_leak from the child\n{}", l.run.context());
    let ev = leaks[0];
    check_common(ev, mode, "warn", mode.action());
    let probe = common::c_prog("probe");
    let probe = probe.to_str().unwrap();
    assert_eq!(ev["ppid"], l.server_pid, "{ev}");
    assert_eq!(ev["exe"], common::canon(&common::c_prog("listen_leak")), "exe is the server, before the exec: {ev}");
    assert_eq!(ev["via"], "execv", "{ev}");
    assert_eq!(ev["target"], probe, "{ev}");
    assert_eq!(ev["argv"], json!([probe, "--wait-stdin"]), "{ev}");
    assert_eq!(ev["argv_omitted"], 0, "{ev}");
    let detail = format!("127.0.0.1:{}", l.port);
    assert_eq!(ev["fds"], json!([{"fd": l.listen_fd, "kind": "tcp_listen", "detail": detail}]), "{ev}");
    assert_eq!(ev["fds_total"], 1, "{ev}");
    assert_eq!(ev["fds_omitted"], 0, "{ev}");
    assert_eq!(ev["kinds"], json!({"tcp_listen": 1}), "{ev}");
    // The probe's own start side stays quiet about what the exec already reported.
    assert!(named(&evs, "startup_fds").is_empty(), "reported twice\n{}", l.run.context());
}

#[test]
fn listen_leak_noshim_child_holds_listener() {
    let l = listen_leak(Mode::NoShim);
    let p = probe_json(&l.run.field("probe"));
    let want = json!({"fd": l.listen_fd, "kind": "tcp_listen", "detail": format!("127.0.0.1:{}", l.port)});
    assert_eq!(p["fds"], json!([want]), "{}", l.run.context());
    // The server closed its socket, yet the port still accepts: the child's backlog.
    assert_eq!(l.run.field("connect_after_close"), "accepted", "{}", l.run.context());
    assert_eq!(l.run.field("child"), "exit:0");
}

#[test]
fn listen_leak_log_names_listener_and_changes_nothing() {
    let base = listen_leak(Mode::NoShim);
    let l = listen_leak(Mode::Log);
    assert_eq!(listen_normalised(&l), listen_normalised(&base), "log mode changed behaviour\n{}", l.run.context());
    assert_eq!(l.run.stderr, base.run.stderr, "log mode wrote to stderr although EXECGUARD_LOG is set");
    listen_event(&l, Mode::Log);
}

#[test]
fn listen_leak_fix_child_gets_no_listener() {
    let l = listen_leak(Mode::Fix);
    let p = probe_json(&l.run.field("probe"));
    assert_eq!(p["fds"], json!([]), "{}", l.run.context());
    assert_eq!(l.run.field("connect_after_close"), "ECONNREFUSED", "{}", l.run.context());
    assert_eq!(l.run.field("child"), "exit:0");
    listen_event(&l, Mode::Fix);
}

// ---------------------------------------------------------------------------
// (b) a pool of 1030 UDP sockets pushes the child's socket past FD_SETSIZE

const POOL: u64 = 1030;

fn udp_pool(mode: Mode) -> Run {
    let prog = common::c_prog("udp_pool");
    let run = run_mode(mode, &prog, &[], &[], T);
    assert!(run.status.success(), "{}", run.context());
    assert_eq!(run.field("pool"), "1030 first_fd=3 last_fd=1032", "{}", run.context());
    run
}

fn udp_leak_event(run: &Run, mode: Mode) {
    let prog = common::c_prog("udp_pool");
    let prog = prog.to_str().unwrap();
    for line in common::log_lines(&run.log) {
        assert!(line.len() < 4096, "log line of {} bytes: {}...", line.len(), &line[..200]);
    }
    let evs = run.events();
    let leaks: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["ppid"] == run.pid).collect();
    assert_eq!(leaks.len(), 1, "one exec_fd_leak from the fork child\n{}", run.context());
    let ev = leaks[0];
    check_common(ev, mode, "warn", mode.action());
    assert_eq!(ev["via"], "execv", "{ev}");
    assert_eq!(ev["target"], prog, "{ev}");
    assert_eq!(ev["argv"], json!([prog, "--child"]), "{ev}");
    assert_eq!(ev["kinds"], json!({"udp": POOL}), "{ev}");
    assert_eq!(ev["fds_total"], POOL, "{ev}");
    let omitted = ev["fds_omitted"].as_u64().expect("fds_omitted");
    let fds = ev["fds"].as_array().expect("fds");
    assert!(omitted > 0, "1030 fds cannot fit in a 4096-byte line: {ev}");
    assert_eq!(fds.len() as u64 + omitted, POOL, "listed + omitted = total: {ev}");
    for f in fds {
        let fd = f["fd"].as_u64().expect("fd");
        assert!((3..3 + POOL).contains(&fd), "{f}");
        assert_eq!(f["kind"], "udp", "{f}");
        assert_eq!(f["detail"], "0.0.0.0:0", "an unbound UDP socket: {f}");
    }
    assert!(named(&evs, "startup_fds").is_empty(), "reported twice\n{}", run.context());
}

fn child_fd(run: &Run) -> u64 {
    let s = run.field("child_fd");
    s.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn udp_pool_noshim_child_socket_past_fd_setsize() {
    let run = udp_pool(Mode::NoShim);
    assert_eq!(run.field("child_fd"), "1033 over_setsize=yes select=1 isset=yes pselect=1", "{}", run.context());
    assert_eq!(run.field("child"), "exit:0");
}

#[test]
fn udp_pool_log_warns_at_exec_and_at_select() {
    let base = udp_pool(Mode::NoShim);
    let run = udp_pool(Mode::Log);
    assert_eq!(run.stdout, base.stdout, "log mode changed behaviour\n{}", run.context());
    udp_leak_event(&run, Mode::Log);
    let fd = child_fd(&run);
    let evs = run.events();
    let sel = named(&evs, "select_fd_overflow");
    assert_eq!(sel.len(), 2, "select then pselect, from the child\n{}", run.context());
    for (i, (ev, func)) in sel.iter().zip(["select", "pselect"]).enumerate() {
        check_common(ev, Mode::Log, "warn", "logged");
        assert_ne!(ev["pid"], run.pid, "logged by the child: {ev}");
        assert_eq!(ev["exe"], common::canon(&common::c_prog("udp_pool")), "{ev}");
        assert_eq!(ev["func"], func, "{ev}");
        assert_eq!(ev["nfds"], fd + 1, "{ev}");
        assert_eq!(ev["fds"], json!([fd]), "{ev}");
        assert_eq!(ev["fds_omitted"], 0, "{ev}");
        assert_eq!(ev["count"], i as u64 + 1, "overflowing calls so far: {ev}");
    }
}

#[test]
fn udp_pool_fix_child_fds_stay_low() {
    let run = udp_pool(Mode::Fix);
    assert_eq!(run.field("child_fd"), "3 over_setsize=no select=1 isset=yes pselect=1", "{}", run.context());
    assert_eq!(run.field("child"), "exit:0");
    udp_leak_event(&run, Mode::Fix);
    let evs = run.events();
    assert!(named(&evs, "select_fd_overflow").is_empty(), "{}", run.context());
}

// ---------------------------------------------------------------------------
// (c) a thread blocks every signal, its exec'd child never gets SIGALRM

fn thread_mask(mode: Mode) -> (Run, u64) {
    let prog = common::c_prog("thread_mask");
    let run = run_mode(mode, &prog, &[], &[], T);
    assert!(run.status.success(), "{}", run.context());
    let child: u64 = run.field("child_pid").parse().unwrap();
    (run, child)
}

fn mask_event(run: &Run, child: u64, mode: Mode) {
    let prog = common::c_prog("thread_mask");
    let prog_s = prog.to_str().unwrap();
    let evs = run.events();
    let ms = by_pid(&evs, "exec_sigmask", child);
    assert_eq!(ms.len(), 1, "one exec_sigmask from the child\n{}", run.context());
    let ev = ms[0];
    check_common(ev, mode, "warn", mode.action());
    assert_eq!(ev["ppid"], run.pid, "{ev}");
    assert_eq!(ev["via"], "execv", "{ev}");
    assert_eq!(ev["target"], prog_s, "{ev}");
    let sigs = strs(&ev["signals"]);
    for s in &sigs {
        assert!(common::is_signal_name(s), "signal {s:?} is not a name: {ev}");
    }
    for s in ["SIGALRM", "SIGTERM", "SIGCHLD", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGRTMIN+1"] {
        assert!(sigs.iter().any(|x| x == s), "{s} missing from {sigs:?}");
    }
    for s in ["SIGKILL", "SIGSTOP"] {
        assert!(!sigs.iter().any(|x| x == s), "{s} cannot be blocked: {sigs:?}");
    }
    assert!(named(&evs, "startup_sigmask").is_empty(), "reported twice\n{}", run.context());
    if let Some(b) = ev.get("blocked_by") {
        let b = b.as_str().unwrap_or_else(|| panic!("blocked_by not a string: {ev}"));
        assert!(module_offset(b, "thread_mask"), "blocked_by names the module that blocked: {ev}");
    }
}

/// `s` is `MODULE+0xHEX` with MODULE the program `name` (bare or as a path).
fn module_offset(s: &str, name: &str) -> bool {
    let Some((module, off)) = s.rsplit_once("+0x") else { return false };
    (module == name || module.ends_with(&format!("/{name}")))
        && !off.is_empty()
        && off.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn thread_mask_noshim_alarm_never_arrives() {
    let (run, _) = thread_mask(Mode::NoShim);
    assert_eq!(run.field("child"), "exit:42", "{}", run.context());
}

#[test]
fn thread_mask_log_names_blocked_signals_and_who() {
    let (run, child) = thread_mask(Mode::Log);
    assert_eq!(run.field("child"), "exit:42", "log mode changed behaviour\n{}", run.context());
    assert_eq!(run.stderr, "", "{}", run.context());
    mask_event(&run, child, Mode::Log);

    let evs = run.events();
    let parent = run.pid as u64;
    let blk = by_pid(&evs, "sigmask_block", parent);
    assert!(!blk.is_empty(), "sigmask_block from the thread\n{}", run.context());
    let ev = blk[0];
    check_common(ev, Mode::Log, "info", "logged");
    assert_eq!(ev["func"], "pthread_sigmask", "{ev}");
    assert_eq!(ev["how"], "SIG_BLOCK", "{ev}");
    assert_ne!(ev["tid"], parent, "logged by the worker thread, not main: {ev}");
    let sigs = strs(&ev["signals"]);
    for s in ["SIGALRM", "SIGCHLD", "SIGTERM"] {
        assert!(sigs.iter().any(|x| x == s), "{s} missing: {ev}");
    }
    let caller = ev["caller"].as_str().unwrap_or_default();
    assert!(module_offset(caller, "thread_mask"), "caller as thread_mask+0xOFFSET: {ev}");

    let ft = by_pid(&evs, "fork_threads", parent);
    assert_eq!(ft.len(), 1, "fork_threads from the 2-thread parent\n{}", run.context());
    check_common(ft[0], Mode::Log, "info", "logged");
    assert_eq!(ft[0]["threads"], 2, "{}", ft[0]);
}

#[test]
fn sigmask_block_is_rate_limited() {
    let prog = common::c_prog("thread_mask");
    let run = run_mode(Mode::Log, &prog, &["--loop", "10000"], &[], T);
    assert_eq!(run.stdout, "loops=10000\n", "{}", run.context());
    let evs = run.events();
    let blk = named(&evs, "sigmask_block");
    assert!(!blk.is_empty() && blk.len() <= 5, "10 000 calls from one site: {} events", blk.len());
    check_common(blk[0], Mode::Log, "info", "logged");
    assert_eq!(common::strs(&blk[0]["signals"]), ["SIGALRM"], "{}", blk[0]);
}

/// A site whose first block was SIGCHLD alone (the waitpid idiom, never reported)
/// is the thread's last blocker without having been reported: when it later blocks
/// SIGALRM, that is judged and reported once, through both functions (the x86-64
/// trampolines send a call from the last blocker straight to libc only once its
/// site was reported).
#[test]
fn a_last_blocker_not_yet_reported_is_still_judged() {
    let prog = common::c_prog("thread_mask");
    for (arg, func) in [("pthread", "pthread_sigmask"), ("proc", "sigprocmask")] {
        let run = run_mode(Mode::Log, &prog, &["--chld-first", arg], &[], T);
        assert_eq!(run.stdout, "done\n", "{}", run.context());
        let evs = run.events();
        let blk = named(&evs, "sigmask_block");
        assert_eq!(blk.len(), 1, "{func}: one event for the site\n{}", run.context());
        assert_eq!(blk[0]["func"], func, "{}", blk[0]);
        assert_eq!(common::strs(&blk[0]["signals"]), ["SIGALRM"], "{}", blk[0]);
        let caller = blk[0]["caller"].as_str().unwrap_or_default();
        assert!(module_offset(caller, "thread_mask"), "caller as thread_mask+0xOFFSET: {}", blk[0]);
    }
}

/// `blocked_by` at the exec names the last site that blocked something new: site A
/// blocks SIGALRM, unblocks it, site B blocks SIGTERM, and (in the A run) A blocks
/// SIGALRM again. A's repeat call comes from a site already reported, but it is not
/// the thread's last blocker, so the shim must still judge it (and not skip the
/// old-mask read it uses to spare repeat calls from the last blocker).
#[test]
fn blocked_by_names_the_last_site_that_blocked() {
    let prog = common::c_prog("thread_mask");
    let mut seen = Vec::new();
    for which in ["A", "B"] {
        let run = run_mode(Mode::Log, &prog, &["--last-blocker", which], &[], T);
        assert_eq!(run.field("child"), "exit:0", "{}", run.context());
        let child: u64 = run.field("child_pid").parse().unwrap();
        let evs = run.events();
        let ms = by_pid(&evs, "exec_sigmask", child);
        assert_eq!(ms.len(), 1, "{}", run.context());
        let blocked_by = ms[0]["blocked_by"].as_str().unwrap_or_else(|| panic!("no blocked_by: {}", ms[0])).to_string();
        let site = |sig: &str| {
            named(&evs, "sigmask_block")
                .into_iter()
                .find(|e| strs(&e["signals"]) == [sig])
                .and_then(|e| e["caller"].as_str().map(str::to_string))
                .unwrap_or_else(|| panic!("no sigmask_block for {sig}\n{}", run.context()))
        };
        let want = if which == "A" { site("SIGALRM") } else { site("SIGTERM") };
        assert_eq!(blocked_by, want, "[{which}] blocked_by\n{}", run.context());
        seen.push(blocked_by);
    }
    assert_ne!(seen[0], seen[1], "the two runs name different sites");
}

#[test]
fn thread_mask_fix_child_gets_alarm() {
    let (run, child) = thread_mask(Mode::Fix);
    assert_eq!(run.field("child"), "exit:0", "{}", run.context());
    mask_event(&run, child, Mode::Fix);
}

// ---------------------------------------------------------------------------
// (d) SIGPIPE ignored by the parent, inherited through exec

fn sigpipe(mode: Mode) -> Run {
    let prog = common::c_prog("sigpipe_ign");
    let run = run_mode(mode, &prog, &[], &[], T);
    assert!(run.status.success(), "{}", run.context());
    run
}

fn sigign_events(run: &Run, mode: Mode) {
    let prog = common::c_prog("sigpipe_ign");
    let prog_s = prog.to_str().unwrap();
    let evs = run.events();
    let ours: Vec<_> = named(&evs, "exec_sigign").into_iter().filter(|e| e["ppid"] == run.pid).collect();
    for (via, target) in [("execv", prog_s), ("execl", "/bin/sh")] {
        let ev = ours
            .iter()
            .find(|e| e["via"] == via)
            .unwrap_or_else(|| panic!("exec_sigign via {via} from a child of {}\n{}", run.pid, run.context()));
        check_common(ev, mode, "warn", mode.action());
        assert_eq!(ev["target"], target, "{ev}");
        let sigs = strs(&ev["signals"]);
        let kept = strs(&ev["kept"]);
        assert!(sigs.contains(&"SIGPIPE".to_string()), "{ev}");
        assert!(!sigs.contains(&"SIGHUP".to_string()), "SIGHUP is kept (nohup), not reported: {ev}");
        assert_eq!(kept, ["SIGHUP"], "{ev}");
    }
}

const SIGPIPE_BROKEN: &str = "writer=sighup:ign,sigpipe:ign,write:EPIPE\n\
child=exit:3\n\
shell=yes: standard output: Broken pipe|yes_status=1|\n\
shell_child=exit:0\n";

#[test]
fn sigpipe_noshim_writer_sees_epipe() {
    let run = sigpipe(Mode::NoShim);
    assert_eq!(run.stdout, SIGPIPE_BROKEN, "{}", run.context());
}

#[test]
fn sigpipe_log_reports_sigpipe_keeps_sighup() {
    let run = sigpipe(Mode::Log);
    assert_eq!(run.stdout, SIGPIPE_BROKEN, "log mode changed behaviour\n{}", run.context());
    sigign_events(&run, Mode::Log);
}

#[test]
fn sigpipe_fix_writer_dies_by_sigpipe_sighup_stays_ignored() {
    let run = sigpipe(Mode::Fix);
    let want = "writer=sighup:ign,sigpipe:dfl\n\
child=signal:PIPE\n\
shell=yes_status=141|\n\
shell_child=exit:0\n";
    assert_eq!(run.stdout, want, "{}", run.context());
    sigign_events(&run, Mode::Fix);
}

// ---------------------------------------------------------------------------
// The same incident through the other configurations: human lines on stderr,
// EXECGUARD_MODE=off, and a bad EXECGUARD_MODE value.

fn listen_leak_env(mode: Mode, env: &[(&str, &str)]) -> Listen {
    let prog = common::c_prog("listen_leak");
    let probe = common::c_prog("probe");
    let run = run_mode(mode, &prog, &[probe.to_str().unwrap()], env, T);
    assert!(run.status.success(), "{}", run.context());
    Listen {
        server_pid: run.field("server_pid").parse().unwrap(),
        child_pid: run.field("child_pid").parse().unwrap(),
        listen_fd: run.field("listen_fd").parse().unwrap(),
        port: run.field("port"),
        run,
    }
}

#[test]
fn listen_leak_human_line_on_stderr_without_log_path() {
    let probe = common::c_prog("probe");
    for mode in [Mode::Log, Mode::Fix] {
        let l = listen_leak_env(mode, &[("EXECGUARD_LOG", "")]);
        assert!(!l.run.log.exists(), "no JSON file without EXECGUARD_LOG");
        let prefix = format!("execguard[{}]: warning: exec_fd_leak: ", l.child_pid);
        let lines: Vec<&str> = l.run.stderr.lines().filter(|x| x.starts_with(&prefix)).collect();
        assert_eq!(lines.len(), 1, "one human line for the exec\n{}", l.run.context());
        let line = lines[0];
        assert!(line.contains(probe.to_str().unwrap()), "names the program: {line}");
        let fd = format!("fd {} (tcp_listen 127.0.0.1:{})", l.listen_fd, l.port);
        assert!(line.contains(&fd), "names the fd as `{fd}`: {line}");
        assert!(line.contains("execv"), "names the entry point: {line}");
        assert_eq!(line.ends_with(" [fixed]"), mode == Mode::Fix, "{line}");
    }
}

#[test]
fn listen_leak_mode_off_changes_and_logs_nothing() {
    let base = listen_leak(Mode::NoShim);
    let l = listen_leak_env(Mode::Log, &[("EXECGUARD_MODE", "off")]);
    assert_eq!(listen_normalised(&l), listen_normalised(&base), "{}", l.run.context());
    assert!(l.run.events().is_empty(), "off logs nothing\n{}", l.run.context());
    assert_eq!(l.run.stderr, "", "{}", l.run.context());
}

#[test]
fn listen_leak_bad_mode_warns_once_and_logs() {
    let base = listen_leak(Mode::NoShim);
    let l = listen_leak_env(Mode::Log, &[("EXECGUARD_MODE", "fxi")]);
    assert_eq!(listen_normalised(&l), listen_normalised(&base), "the default is log\n{}", l.run.context());
    // One clear warning per process that loads the shim (server, probe), naming
    // the variable, and nothing else on stderr.
    let warn: Vec<&str> = l.run.stderr.lines().collect();
    assert!(!warn.is_empty() && warn.len() <= 2, "{}", l.run.context());
    assert!(warn.iter().all(|w| w.starts_with("execguard[") && w.contains("EXECGUARD_MODE")), "{}", l.run.context());
    listen_event(&l, Mode::Log);
}

// ---------------------------------------------------------------------------
// select() with nfds far past the caller's fd_set (the getdtablesize() idiom):
// the kernel clamps nfds to the fd table; the shim must not read past the set.

#[test]
fn select_nfds_beyond_the_set_same_result_no_crash() {
    let prog = common::c_prog("select_edge");
    let want = "select=1 errno=0 isset=yes\npselect=1 errno=0 isset=yes\n";
    for mode in Mode::ALL {
        let run = run_mode(mode, &prog, &[], &[], T);
        assert!(run.status.success(), "the host must survive its own select()\n{}", run.context());
        assert_eq!(run.stdout, want, "{}", run.context());
    }
}

#[test]
fn select_and_sigmask_errors_unchanged() {
    let cases = [
        ("select_edge", "errors", "errors=-1:EBADF,-1:EINVAL,-1:EINVAL,-1:EBADF\n"),
        ("thread_mask", "--errors", "errors=EINVAL,-1:EINVAL,-1:EFAULT alrm_blocked=1\n"),
    ];
    for (prog, arg, want) in cases {
        for mode in Mode::ALL {
            let run = run_mode(mode, &common::c_prog(prog), &[arg], &[], T);
            assert!(run.status.success(), "{}", run.context());
            assert_eq!(run.stdout, want, "{prog} {arg}\n{}", run.context());
        }
    }
}

// ---------------------------------------------------------------------------
// nginx rewrites its environment in place and clears it: the configuration read at
// load time still holds (log path, mode).

#[test]
fn environment_scribbled_over_config_still_holds() {
    let prog = common::c_prog("env_rewrite");
    let probe = common::c_prog("probe");
    for mode in Mode::ALL {
        let run = run_mode(mode, &prog, &[probe.to_str().unwrap()], &[], T);
        assert_eq!(run.field("child"), "exit:0", "{}", run.context());
        let l = json!({"fd": 3, "kind": "tcp_listen", "detail": format!("127.0.0.1:{}", run.field("port"))});
        let fds = probe_json(&run.field_line_json())["fds"].clone();
        assert_eq!(fds, if mode == Mode::Fix { json!([]) } else { json!([l]) }, "{}", run.context());
        if mode == Mode::NoShim {
            continue;
        }
        let evs = run.events();
        let leaks = named(&evs, "exec_fd_leak");
        assert_eq!(leaks.len(), 1, "logged to the path read at load time\n{}", run.context());
        check_common(leaks[0], mode, "warn", mode.action());
        assert_eq!(leaks[0]["fds"], json!([l]), "{}", leaks[0]);
        assert_eq!(leaks[0]["via"], "execve", "{}", leaks[0]);
    }
}

/// Realtime signals by the names the blocking program's libc gives them: glibc's
/// SIGRTMIN is 34, musl's 35 (both libcs keep the numbers below for themselves).
#[test]
fn realtime_signals_named_as_the_libc_names_them() {
    let probe = common::c_prog("probe");
    let run = run_mode(Mode::Log, &common::c_prog("rt_block"), &[probe.to_str().unwrap()], &[], T);
    let rtmin = if common::is_musl() { "35" } else { "34" };
    assert_eq!(run.field("rtmin"), rtmin, "{}", run.context());
    let evs = run.events();
    let ms = named(&evs, "exec_sigmask");
    assert_eq!(ms.len(), 1, "{}", run.context());
    assert_eq!(strs(&ms[0]["signals"]), ["SIGRTMIN", "SIGRTMIN+2"], "{}", ms[0]);
}

/// A shell is recognised by the name it runs as (argv[0]; `-sh` for a login shell):
/// it hands its fds to its commands on purpose, so its exec is not reported. On musl
/// the constructor gets no argv: the name comes from program_invocation_name.
#[test]
fn a_program_run_as_sh_is_treated_as_a_shell() {
    use std::os::unix::process::CommandExt;
    let (prog, probe) = (common::c_prog("listen_leak"), common::c_prog("probe"));
    for (name, leaks) in [("listen_leak", 1), ("sh", 0), ("-sh", 0)] {
        let log = common::tmpdir("arg0").join("log.jsonl");
        let out = std::process::Command::new(&prog)
            .arg0(name)
            .arg(&probe)
            .env("LD_PRELOAD", common::shim())
            .env("EXECGUARD_LOG", &log)
            .env_remove("EXECGUARD_MODE")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let evs = common::events(&log);
        assert_eq!(named(&evs, "exec_fd_leak").len(), leaks, "run as {name}: {evs:?}");
    }
}

#[test]
fn musl_a_program_run_as_sh_is_treated_as_a_shell() {
    common::on_musl(a_program_run_as_sh_is_treated_as_a_shell)
}

// ---------------------------------------------------------------------------
// Every scenario above again, in two other environments: programs linked against
// musl (Alpine's libc) with the same glibc-built shim preloaded, and programs under
// c-tests/seccomp_deny.c, which refuses the newer system calls with ENOSYS (an old
// kernel) or EPERM (a strict container profile).

in_other_environments!(
    everywhere: [
        listen_leak_noshim_child_holds_listener,
        listen_leak_log_names_listener_and_changes_nothing,
        listen_leak_fix_child_gets_no_listener,
        thread_mask_noshim_alarm_never_arrives,
        thread_mask_log_names_blocked_signals_and_who,
        sigmask_block_is_rate_limited,
        blocked_by_names_the_last_site_that_blocked,
        a_last_blocker_not_yet_reported_is_still_judged,
        thread_mask_fix_child_gets_alarm,
        sigpipe_noshim_writer_sees_epipe,
        sigpipe_log_reports_sigpipe_keeps_sighup,
        sigpipe_fix_writer_dies_by_sigpipe_sighup_stays_ignored,
        listen_leak_human_line_on_stderr_without_log_path,
        listen_leak_mode_off_changes_and_logs_nothing,
        listen_leak_bad_mode_warns_once_and_logs,
        select_and_sigmask_errors_unchanged,
        environment_scribbled_over_config_still_holds,
        realtime_signals_named_as_the_libc_names_them,
    ],
    // On arm64 qemu-user fails these without the shim: udp_pool_* (1 030 sockets:
    // qemu's own fd_set aborts past 1 024) and select_nfds_* (qemu answers EFAULT
    // where the kernel reads only the set's bytes).
    not_on_aarch64: [
        udp_pool_noshim_child_socket_past_fd_setsize,
        udp_pool_log_warns_at_exec_and_at_select,
        udp_pool_fix_child_fds_stay_low,
        select_nfds_beyond_the_set_same_result_no_crash,
    ],
    only_on_aarch64: [],
);

/// The harness really refuses: pidfd_open and close_range fail with the flavour's
/// errno inside it (and work outside it, so the check can fail).
#[test]
fn seccomp_harness_refuses_with_the_chosen_errno() {
    let script = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, a, b in (('pidfd_open', 434, os.getpid(), 0), ('close_range', 436, 100000, 100001)):
    r = libc.syscall(nr, a, b, 0)
    print(name, 'ok' if r >= 0 else errno.errorcode[ctypes.get_errno()])
"#;
    let py = std::path::Path::new("/usr/bin/python3");
    let outside = run_mode(Mode::NoShim, py, &["-c", script], &[], T);
    assert_eq!(outside.stdout, "pidfd_open ok\nclose_range ok\n", "{}", outside.context());
    for (flavour, errno) in [("enosys", "ENOSYS"), ("eperm", "EPERM")] {
        let mut cmd = std::process::Command::new(common::c_prog_static("seccomp_deny"));
        let out = cmd.args([flavour, "/usr/bin/python3", "-c", script]).output().unwrap();
        let want = format!("pidfd_open {errno}\nclose_range {errno}\n");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{flavour}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Under the filter the fallbacks are taken silently (nothing on stderr) and named
/// once each in the JSON log as `degraded` events: process_vm_readv, refused while
/// select_fd_overflow still names the fd (the scenario above checks that), and
/// close_range in fix mode (the fix itself is checked above too).
#[test]
fn seccomp_degraded_paths_are_logged_once_not_printed() {
    for (flavour, errno) in [("enosys", "ENOSYS"), ("eperm", "EPERM")] {
        common::under_seccomp(flavour, || {
            let run = udp_pool(Mode::Log);
            let evs = run.events();
            let child = named(&evs, "select_fd_overflow")[0]["pid"].clone();
            let deg: Vec<_> = named(&evs, "degraded").into_iter().filter(|e| e["pid"] == child).collect();
            assert_eq!(deg.len(), 1, "one degraded event from the select caller\n{}", run.context());
            check_common(deg[0], Mode::Log, "info", "logged");
            assert_eq!(deg[0]["path"], "process_vm_readv", "{}", deg[0]);
            assert_eq!(deg[0]["errno"], errno, "{}", deg[0]);
            assert_eq!(run.stderr, "", "{}", run.context());
            // Fix mode marks the pool CLOEXEC one fd at a time where close_range is
            // refused, and says so once (from the fork child that execs).
            let run = udp_pool(Mode::Fix);
            let evs = run.events();
            let deg = named(&evs, "degraded");
            assert_eq!(deg.len(), 1, "{}", run.context());
            assert_eq!((deg[0]["path"].as_str(), deg[0]["errno"].as_str()), (Some("close_range"), Some(errno)), "{}", deg[0]);
            assert_eq!(deg[0]["ppid"], run.pid, "{}", deg[0]);
            // Without a JSON log the fallbacks (here close_range, process_vm_readv)
            // still leave the host's stderr alone: only the findings' own lines.
            for mode in [Mode::Log, Mode::Fix] {
                let run = run_mode(mode, &common::c_prog("udp_pool"), &[], &[("EXECGUARD_LOG", "")], T);
                assert!(run.status.success(), "{}", run.context());
                assert!(!run.stderr.is_empty() && !run.stderr.contains("degraded"), "{}", run.context_short());
                assert!(run.stderr.lines().all(|l| l.starts_with("execguard[")), "{}", run.context_short());
            }
        });
    }
}
