//! Every exec entry point through c-tests/exec_family.c: the event names the entry
//! point; a failing exec returns the same errno (and leaves fds, mask and
//! dispositions as they were) with the shim as without; and the fds a child is meant
//! to inherit are still there in fix mode.

#[macro_use]
mod common;

use common::{check_common, named, run_mode, Mode, Run};
use serde_json::{json, Value};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const ENTRY_POINTS: [&str; 9] =
    ["execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve", "execveat"];

/// The entry points this libc has: musl has no `execveat` function (a musl program
/// makes the system call itself, which only the start side can see). qemu-user
/// (7.2, `on_aarch64`) has no execveat system call, which glibc's `fexecve` uses too.
fn entry_points() -> impl Iterator<Item = &'static str> {
    ENTRY_POINTS.into_iter().filter(|&w| {
        !(w == "execveat" && common::is_musl()) && !(common::is_aarch64() && (w == "execveat" || w == "fexecve"))
    })
}

/// `posix_spawn` and `posix_spawnp`, where a failed exec reaches the caller: not
/// under qemu-user (`on_aarch64`), which runs glibc's CLONE_VFORK child as a fork,
/// so the child's errno never reaches the parent (it sees success, shim or not).
fn spawn_entry_points() -> impl Iterator<Item = &'static str> {
    ["posix_spawn", "posix_spawnp"].into_iter().filter(|_| !common::is_aarch64())
}

fn driver() -> PathBuf {
    common::c_prog("exec_family")
}

fn probe() -> String {
    common::c_prog("probe").to_str().unwrap().to_string()
}

/// A file to leak, in a directory of its own.
fn leakfile(tag: &str) -> String {
    let d = common::tmpdir(tag);
    let f = d.join("leak.txt");
    std::fs::write(&f, "leak\n").unwrap();
    f.to_str().unwrap().to_string()
}

/// The probe's line in a driver run, parsed.
fn probe_out(run: &Run) -> Value {
    let line =
        run.stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no probe line\n{}", run.context()));
    serde_json::from_str(line).unwrap()
}

fn probe_fds(run: &Run) -> Vec<u64> {
    probe_out(run)["fds"].as_array().unwrap().iter().map(|f| f["fd"].as_u64().unwrap()).collect()
}

/// The exec_fd_leak events logged by the driver's fork child.
fn child_leaks(run: &Run) -> Vec<Value> {
    let child: u64 = run.field("child_pid").parse().unwrap();
    named(&run.events(), "exec_fd_leak").into_iter().filter(|e| e["pid"] == child).cloned().collect()
}

/// Collects failures so one run shows every broken entry point, not just the first.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }
    fn assert(self) {
        assert!(self.0.is_empty(), "{} failure(s):\n{}", self.0.len(), self.0.join("\n\n"));
    }
}

fn via(mode: Mode, which: &str, leak: &str) -> Run {
    run_mode(mode, &driver(), &["via", which, &probe(), leak], &[], T)
}

#[test]
fn every_entry_point_noshim_leaks() {
    let leak = leakfile("via-noshim");
    let mut f = Failures::default();
    for which in entry_points() {
        let run = via(Mode::NoShim, which, &leak);
        f.check(run.field("child") == "exit:0", || format!("{which}: {}", run.context()));
        let want = json!([{"fd": 3, "kind": "file", "detail": leak}]);
        f.check(probe_out(&run)["fds"] == want, || format!("{which}: probe sees the leak\n{}", run.context()));
    }
    f.assert();
}

fn check_via_event(f: &mut Failures, run: &Run, which: &str, leak: &str, mode: Mode) {
    let probe = probe();
    let evs = child_leaks(run);
    if evs.len() != 1 {
        f.0.push(format!("{which}: expected one exec_fd_leak from the child, got {}\n{}", evs.len(), run.context()));
        return;
    }
    let ev = &evs[0];
    let r = std::panic::catch_unwind(|| check_common(ev, mode, "warn", mode.action()));
    f.check(r.is_ok(), || format!("{which}: common fields: {ev}"));
    f.check(ev["via"] == which, || format!("{which}: via: {ev}"));
    // "program path as resolved": the p-variants found it through PATH; fexecve and
    // execveat name it by fd, so only its last component is certain.
    let target = ev["target"].as_str().unwrap_or_default();
    let target_ok = match which {
        "fexecve" | "execveat" => target.ends_with("/probe"),
        _ => target == probe,
    };
    f.check(target_ok, || format!("{which}: target should be {probe}: {ev}"));
    f.check(ev["argv"] == json!([probe]), || format!("{which}: argv: {ev}"));
    f.check(ev["fds"] == json!([{"fd": 3, "kind": "file", "detail": leak}]), || format!("{which}: fds: {ev}"));
    f.check(ev["fds_total"] == 1 && ev["kinds"] == json!({"file": 1}), || format!("{which}: counts: {ev}"));
    f.check(ev["ppid"].as_u64() == Some(run.pid as u64), || format!("{which}: ppid: {ev}"));
    f.check(ev["exe"] == common::canon(&driver()), || format!("{which}: exe: {ev}"));
}

#[test]
fn every_entry_point_log_names_it_and_changes_nothing() {
    let leak = leakfile("via-log");
    let mut f = Failures::default();
    for which in entry_points() {
        let run = via(Mode::Log, which, &leak);
        f.check(run.field("child") == "exit:0", || format!("{which}: {}", run.context()));
        let want = json!({"fds": [{"fd": 3, "kind": "file", "detail": leak}], "blocked": [], "ignored": []});
        f.check(probe_out(&run) == want, || format!("{which}: log mode changed what the child got\n{}", run.context()));
        f.check(run.stderr.is_empty(), || format!("{which}: stderr not empty\n{}", run.context()));
        check_via_event(&mut f, &run, which, &leak, Mode::Log);
    }
    f.assert();
}

#[test]
fn every_entry_point_fix_closes_the_leak() {
    let leak = leakfile("via-fix");
    let mut f = Failures::default();
    for which in entry_points() {
        let run = via(Mode::Fix, which, &leak);
        f.check(run.field("child") == "exit:0", || format!("{which}: {}", run.context()));
        f.check(probe_fds(&run).is_empty(), || format!("{which}: the child still has fds\n{}", run.context()));
        check_via_event(&mut f, &run, which, &leak, Mode::Fix);
    }
    f.assert();
}

/// A child of the raw fork system call (no fork hook ran, so the real exec function
/// was never looked up in the parent): the child's exec is its first use, and the
/// lookup happens in the small room. Same event and same repair as an ordinary fork.
#[test]
fn every_entry_point_first_used_in_a_raw_fork_child() {
    let leak = leakfile("via-raw");
    let mut f = Failures::default();
    for which in entry_points() {
        for mode in [Mode::Log, Mode::Fix] {
            let run = run_mode(mode, &driver(), &["raw", which, &probe(), &leak], &[], T);
            f.check(run.field("child") == "exit:0", || format!("{which} [{}]: {}", mode.name(), run.context()));
            let want: Vec<u64> = if mode == Mode::Fix { vec![] } else { vec![3] };
            f.check(probe_fds(&run) == want, || format!("{which} [{}]: probe fds\n{}", mode.name(), run.context()));
            check_via_event(&mut f, &run, which, &leak, mode);
        }
    }
    f.assert();
}

// ---------------------------------------------------------------------------
// Failing execs: same errno, and nothing left changed by a fix that did not happen.

#[test]
fn failing_exec_same_errno_in_every_mode() {
    let leak = leakfile("fail");
    let dir = PathBuf::from(&leak).parent().unwrap().to_path_buf();
    let missing = dir.join("no-such-program").to_str().unwrap().to_string();
    let mut f = Failures::default();
    // posix_spawn and posix_spawnp fail the same way (their audit runs in the parent).
    for which in entry_points().chain(spawn_entry_points()) {
        // fexecve never gets a path: open() fails first and it is handed fd -1,
        // which glibc answers with EINVAL and musl with EBADF.
        let enoent = match which {
            "fexecve" if common::is_musl() => "EBADF",
            "fexecve" => "EINVAL",
            _ => "ENOENT",
        };
        for (path, errno) in [(missing.as_str(), enoent), (leak.as_str(), "EACCES")] {
            let want = format!("errno={errno} fd3_cloexec=0 alrm_blocked=1 sigpipe=ign open_fds=4\n");
            for mode in Mode::ALL {
                let run = run_mode(mode, &driver(), &["fail", which, path, &leak], &[], T);
                f.check(run.status.success() && run.stdout == want, || {
                    format!("{which} {path} [{}]: want {want:?}\n{}", mode.name(), run.context())
                });
                // An exec of a path that cannot succeed hands nothing over: no report.
                // (fexecve and execveat run by fd: the shim does not pre-check those.)
                let by_path = !matches!(which, "fexecve" | "execveat");
                let evs = if mode == Mode::NoShim || !by_path { vec![] } else { run.events() };
                let reported: Vec<_> = evs.iter().filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("exec_"))).collect();
                f.check(reported.is_empty(), || format!("{which} {path} [{}]: reported {reported:?}", mode.name()));
            }
        }
    }
    f.assert();
}

/// The same from a caller that left fds 10, 251 and 500 open (c-tests/stray_launch.c):
/// the fds pass through, and only the signals would be reported. The audit asks
/// whether the exec can run only when it has something to report (an exec that
/// merely passes on what it was handed does not ask), so here the question comes
/// from the signals: a failing exec must still report nothing and fix nothing.
#[test]
fn failing_exec_that_passes_strays_on_reports_and_fixes_nothing() {
    let leak = leakfile("fail-passing");
    let dir = PathBuf::from(&leak).parent().unwrap().to_path_buf();
    let missing = dir.join("no-such-program").to_str().unwrap().to_string();
    let launcher = common::c_prog("stray_launch");
    let prog = driver();
    let shim = common::shim();
    let mut f = Failures::default();
    for which in entry_points().filter(|w| !matches!(*w, "fexecve" | "execveat")).chain(spawn_entry_points()) {
        for (path, errno) in [(missing.as_str(), "ENOENT"), (leak.as_str(), "EACCES")] {
            let want = format!("errno={errno} alrm_blocked=1 sigpipe=ign open_fds=6\n");
            for mode in Mode::ALL {
                let preload = if mode == Mode::NoShim { "" } else { shim.to_str().unwrap() };
                let env = [("LD_PRELOAD", ""), ("STRAY_PRELOAD", preload)];
                let run = run_mode(mode, &launcher, &[prog.to_str().unwrap(), "fail_passing", which, path], &env, T);
                f.check(run.status.success() && run.stdout == want, || {
                    format!("{which} {path} [{}]: want {want:?}\n{}", mode.name(), run.context())
                });
                let evs = if mode == Mode::NoShim { vec![] } else { run.events() };
                let reported: Vec<_> = evs.iter().filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("exec_"))).collect();
                f.check(reported.is_empty(), || format!("{which} {path} [{}]: reported {reported:?}", mode.name()));
                // The driver itself did start with the strays: said once, as outside.
                let starts = named(&evs, "startup_fds");
                f.check(mode == Mode::NoShim || starts.len() == 1, || format!("{which} {path} [{}]: startup_fds {starts:?}", mode.name()));
            }
        }
    }
    f.assert();
}

// ---------------------------------------------------------------------------
// Fds the child is meant to inherit: kept in fix mode, and never reported.

/// (case, extra environment, fds the probe must hold, fds that are the leak)
type KeepCase = (&'static str, &'static [(&'static str, &'static str)], &'static [u64], &'static [u64]);

const KEEP_CASES: &[KeepCase] = &[
    ("keep_env", &[("EXECGUARD_KEEP_FDS", "3")], &[3], &[4]),
    ("listen_fds", &[], &[3, 4], &[5]),
    ("listen_fds_other_pid", &[], &[], &[3, 4, 5]),
    ("nginx", &[], &[3, 4], &[5]),
    ("jobserver_auth", &[], &[3, 4], &[5]),
    ("jobserver_fds", &[], &[3, 4], &[5]),
    ("dup2", &[], &[7], &[3]),
    ("dup3", &[], &[8], &[4]),
    ("fcntl_clear", &[], &[3], &[4]),
    ("fcntl64_clear", &[], &[3], &[4]),
    ("fionclex", &[], &[3], &[4]),
    ("created_after_fork", &[], &[4], &[3]),
    ("f_dupfd", &[], &[10], &[3]),
    ("dup2_in_parent", &[], &[], &[19999]),
];

fn keep_cases(mode: Mode) {
    let leak = leakfile(&format!("keep-{}", mode.name()));
    let mut f = Failures::default();
    for &(case, env, kept, leaked) in KEEP_CASES {
        let run = run_mode(mode, &driver(), &["keep", case, &probe(), &leak], env, T);
        f.check(run.field("child") == "exit:0", || format!("{case}: {}", run.context()));
        let mut want: Vec<u64> = kept.to_vec();
        if mode != Mode::Fix {
            want.extend_from_slice(leaked);
            want.sort();
        }
        let got = probe_fds(&run);
        f.check(got == want, || {
            format!("{case} [{}]: child holds {got:?}, want {want:?}\n{}", mode.name(), run.context())
        });
        if mode == Mode::NoShim {
            continue;
        }
        let evs = child_leaks(&run);
        let listed: Vec<u64> = evs
            .iter()
            .flat_map(|e| e["fds"].as_array().cloned().unwrap_or_default())
            .map(|x| x["fd"].as_u64().unwrap_or(u64::MAX))
            .collect();
        f.check(evs.len() == 1 && listed == leaked, || {
            format!(
                "{case} [{}]: exec_fd_leak should list exactly {leaked:?}, lists {listed:?}\n{}",
                mode.name(),
                run.context()
            )
        });
        f.check(evs.iter().all(|e| e["action"] == mode.action()), || format!("{case}: action\n{}", run.context()));
    }
    f.assert();
}

#[test]
fn intentional_fds_noshim_baseline() {
    keep_cases(Mode::NoShim);
}

#[test]
fn intentional_fds_log_not_reported() {
    keep_cases(Mode::Log);
}

#[test]
fn intentional_fds_fix_kept() {
    keep_cases(Mode::Fix);
}

// ---------------------------------------------------------------------------
// Scale: 19 000 leaked fds (the hard RLIMIT_NOFILE here is 20 000).

#[test]
fn nineteen_thousand_fds_cut_and_fixed() {
    let leak = leakfile("many");
    for mode in [Mode::Log, Mode::Fix] {
        let t0 = std::time::Instant::now();
        let run = run_mode(mode, &driver(), &["keep", "many", &probe(), &leak], &[], T);
        let took = t0.elapsed();
        assert_eq!(run.field("child"), "exit:0", "{}", run.context_short());
        let n = probe_fds(&run).len();
        assert_eq!(n, if mode == Mode::Fix { 0 } else { 19000 }, "child holds {n} fds");
        for l in common::log_lines(&run.log) {
            assert!(l.len() < 4096, "line of {} bytes", l.len());
        }
        let evs = child_leaks(&run);
        assert_eq!(evs.len(), 1, "{}", run.context_short());
        let ev = &evs[0];
        check_common(ev, mode, "warn", mode.action());
        assert_eq!(ev["fds_total"], 19000, "{ev}");
        assert_eq!(ev["kinds"], json!({"file": 19000}), "{ev}");
        let listed = ev["fds"].as_array().unwrap().len() as u64;
        assert_eq!(listed + ev["fds_omitted"].as_u64().unwrap(), 19000, "{ev}");
        assert!(took < Duration::from_secs(10), "19 000 fds took {took:?}");
    }
}

// ---------------------------------------------------------------------------
// vfork: the child's notes live in shared memory; the parent must not trust them.

#[test]
fn vfork_child_dup2_does_not_leak_into_later_fork() {
    let leak = leakfile("vfork-stale");
    for mode in Mode::ALL {
        let run = run_mode(mode, &driver(), &["vfork_stale", &probe(), &leak], &[], T);
        let probes: Vec<Value> =
            run.stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(probes.len(), 2, "{}", run.context());
        let fds = |p: &Value| -> Vec<u64> {
            p["fds"].as_array().unwrap().iter().map(|f| f["fd"].as_u64().unwrap()).collect()
        };
        let (first, second) = (fds(&probes[0]), fds(&probes[1]));
        if mode == Mode::Fix {
            assert_eq!(first, [8], "the vfork child's dup2 target is kept\n{}", run.context());
            assert_eq!(second, Vec::<u64>::new(), "the parent's later leak on 8 is not\n{}", run.context());
        } else {
            assert_eq!(first, [3, 8], "{}", run.context());
            assert_eq!(second, [3, 8], "{}", run.context());
        }
        if mode == Mode::NoShim {
            continue;
        }
        let evs = run.events();
        let listed = |pid: &str| -> Vec<u64> {
            let pid: u64 = run.field(pid).parse().unwrap();
            named(&evs, "exec_fd_leak")
                .into_iter()
                .filter(|e| e["pid"] == pid)
                .flat_map(|e| e["fds"].as_array().cloned().unwrap_or_default())
                .map(|f| f["fd"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(listed("vfork_child_pid"), [3], "{}", run.context());
        assert_eq!(listed("child_pid"), [3, 8], "{}", run.context());
    }
}

// ---------------------------------------------------------------------------
// Long command lines and hostile names: still one valid JSON line under 4096 bytes.

#[test]
fn long_argv_is_cut_with_count() {
    let leak = leakfile("args");
    for (n, size) in [(3usize, 10_000usize), (2000, 8)] {
        let (ns, ss) = (n.to_string(), size.to_string());
        let run = run_mode(Mode::Log, &driver(), &["args", &ns, &ss, &probe(), &leak], &[], T);
        assert_eq!(run.field("child"), "exit:0", "{}", run.context_short());
        for l in common::log_lines(&run.log) {
            assert!(l.len() < 4096, "{n}x{size}: line of {} bytes", l.len());
        }
        let evs = child_leaks(&run);
        assert_eq!(evs.len(), 1, "{n}x{size}: {}", run.context_short());
        let ev = &evs[0];
        assert_eq!(
            ev["fds"],
            json!([{"fd": 3, "kind": "file", "detail": leak}]),
            "{n}x{size}: the fds survive the cut: fds {} fds_omitted {} argv_omitted {}",
            ev["fds"],
            ev["fds_omitted"],
            ev["argv_omitted"]
        );
        let argv = common::strs(&ev["argv"]);
        assert_eq!(argv.first().map(String::as_str), Some(probe().as_str()), "{ev}");
        let omitted = ev["argv_omitted"].as_u64().expect("argv_omitted");
        // 2000 arguments cannot all be listed; three long ones may be, each cut short.
        assert!(n < 100 || omitted > 0, "{n}x{size}: {ev}");
        assert_eq!(argv.len() as u64 + omitted, n as u64 + 1, "listed + omitted = all: {ev}");
    }
}

#[test]
fn hostile_file_name_gives_valid_json() {
    let dir = common::tmpdir("hostile");
    // A quote, a backslash, a newline, a tab, a control byte and invalid UTF-8.
    let name = std::ffi::OsStr::from_bytes(b"we\"ird\\na\nme\t\x01\xff.txt");
    std::fs::write(dir.join(name), "x").unwrap();
    // The driver opens it through a plain symlink; /proc/self/fd shows the real name.
    let link = dir.join("leak-link");
    std::os::unix::fs::symlink(name, &link).unwrap();
    let run = run_mode(Mode::Log, &driver(), &["via", "execv", &probe(), link.to_str().unwrap()], &[], T);
    assert_eq!(run.field("child"), "exit:0", "{}", run.context());
    // common::events() panics on any line that is not valid JSON.
    let evs = child_leaks(&run);
    assert_eq!(evs.len(), 1, "{}", run.context());
    let detail = evs[0]["fds"][0]["detail"].as_str().unwrap_or_default().to_string();
    // Quote and backslash must come back exactly; control bytes and invalid UTF-8 may
    // be replaced, as long as the line stays one valid JSON object.
    let want = format!("{}/we\"ird\\na", dir.display());
    assert!(detail.starts_with(&want), "the name, escaped and read back: {detail:?}");
    assert!(!detail.contains('\n'), "one line per event: {detail:?}");
}

// ---------------------------------------------------------------------------
// No /proc (a private mount namespace hides it): less context, never a crash or a
// hang, and fix mode still closes the leak.

#[test]
fn without_proc_still_guards() {
    let unshare_ok = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(unshare_ok, "unshare -m must work here (root in its own sandbox)");
    let leak = leakfile("noproc");
    let script = format!("mount -t tmpfs none /proc && exec {} via execv {} {}", driver().display(), probe(), leak);
    for mode in Mode::ALL {
        let run = run_mode(
            mode,
            std::path::Path::new("/usr/bin/unshare"),
            &["-m", "--propagation", "private", "/bin/sh", "-c", &script],
            &[],
            T,
        );
        assert_eq!(run.field("child"), "exit:0", "{}", run.context());
        let fds = probe_fds(&run);
        assert_eq!(fds, if mode == Mode::Fix { vec![] } else { vec![3] }, "{}", run.context());
        if mode == Mode::NoShim {
            continue;
        }
        let evs = child_leaks(&run);
        assert_eq!(evs.len(), 1, "{}", run.context());
        assert_eq!(evs[0]["via"], "execv", "{}", evs[0]);
        assert_eq!(evs[0]["action"], mode.action(), "{}", evs[0]);
        assert_eq!(evs[0]["fds"][0]["fd"], 3, "{}", evs[0]);
    }
}

// ---------------------------------------------------------------------------
// EMFILE: the child execs with its fd table full (RLIMIT_NOFILE 32). The shim has
// no fd for /proc or its log: less context, never a crash or a hang, and log mode
// leaves the exec exactly as it was (the new program's loader fails with EMFILE too).

#[test]
fn exec_at_emfile_degrades() {
    let leak = leakfile("emfile");
    for mode in Mode::ALL {
        let run = run_mode(mode, &driver(), &["keep", "emfile", &probe(), &leak], &[], T);
        assert!(run.status.success(), "{}", run.context());
        let child = run.field("child");
        match mode {
            Mode::NoShim | Mode::Log => assert_eq!(child, "exit:127", "{}", run.context()),
            // Fix mode may repair without being able to log it, or leave it alone.
            Mode::Fix => {
                assert!((child == "exit:0" && probe_fds(&run).is_empty()) || child == "exit:127", "{}", run.context())
            }
        }
    }
}

#[test]
fn failing_exec_in_vfork_child_then_guarded_fork() {
    let leak = leakfile("vfork-fail");
    let missing = format!("{}/no-such-program", PathBuf::from(&leak).parent().unwrap().display());
    for mode in Mode::ALL {
        let run = run_mode(mode, &driver(), &["vfork_fail", &missing, &probe(), &leak], &[], T);
        assert!(
            run.stdout.starts_with("errno=ENOENT fd3_cloexec=0 alrm_blocked=1 sigpipe=ign\n"),
            "the vfork child's failed exec changed the parent\n{}",
            run.context()
        );
        assert_eq!(run.field("child"), "exit:0", "{}", run.context());
        let p = probe_out(&run);
        let want = if mode == Mode::Fix {
            json!({"fds": [], "blocked": [], "ignored": []})
        } else {
            json!({"fds": [{"fd": 3, "kind": "file", "detail": leak}], "blocked": ["SIGALRM"], "ignored": ["SIGPIPE"]})
        };
        assert_eq!(p, want, "{}", run.context());
        if mode != Mode::NoShim {
            let evs = child_leaks(&run);
            assert_eq!(evs.len(), 1, "{}", run.context());
            assert_eq!(evs[0]["action"], mode.action(), "{}", evs[0]);
        }
    }
}

// ---------------------------------------------------------------------------
// "target" is the program as resolved: the p-variants skip a non-executable file of
// the same name earlier in PATH, and so must the event.

#[test]
fn path_search_target_is_the_program_that_runs() {
    let leak = leakfile("pathsearch");
    let root = PathBuf::from(&leak).parent().unwrap().to_path_buf();
    let (a, b) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("probe"), "not a program\n").unwrap(); // mode 0644: EACCES
    std::fs::copy(probe(), b.join("probe")).unwrap();
    let path = format!("{}:{}", a.display(), b.display());
    let real = b.join("probe").to_str().unwrap().to_string();
    for which in ["execvp", "execvpe", "execlp"] {
        for mode in [Mode::Log, Mode::Fix] {
            let env = [("EXEC_FAMILY_PATH", path.as_str())];
            let run = run_mode(mode, &driver(), &["via", which, &real, &leak], &env, T);
            assert_eq!(run.field("child"), "exit:0", "{which}\n{}", run.context());
            let evs = child_leaks(&run);
            assert_eq!(evs.len(), 1, "{which}\n{}", run.context());
            assert_eq!(evs[0]["target"], real.as_str(), "{which}: {}", evs[0]);
            assert_eq!(evs[0]["action"], mode.action(), "{which}: {}", evs[0]);
        }
    }
}

/// The start side's quick "nothing above 2" answer (one ppoll over fds 0–64, and a
/// select that proves the fd table has no slot above 63) at its edges: the fds just
/// inside and just outside the polled range, a grown table, and a grown table with
/// everything closed again (the /proc answer). The launcher is not preloaded; it
/// forks so that its child's table is sized by the fds really open, then the child
/// execs a trivial program with the shim, both built for the test's environment
/// (musl, arm64: until 2026-12-06 the launcher was built natively and exec'd
/// /bin/true in every environment, so the musl and arm64 runs checked the glibc
/// x86-64 start again).
#[test]
fn startup_fd_check_at_the_edges_of_the_small_table() {
    let dir = common::tmpdir("fd-edges");
    let launcher = common::cc(
        &dir,
        "fd_edges",
        r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
/* fd_edges SPEC PRELOAD LOG PROGRAM: SPEC is none, open:N (fd N open) or grow:N
 * (fd N opened, then closed: the table stays large) */
int main(int argc, char **argv) {
    if (argc != 5) return 2;
    int fd = -1, keep = 0;
    if (strncmp(argv[1], "open:", 5) == 0) { fd = atoi(argv[1] + 5); keep = 1; }
    if (strncmp(argv[1], "grow:", 5) == 0) fd = atoi(argv[1] + 5);
    if (fd >= 0 && dup2(2, fd) != fd) return 3;
    for (int i = 3; i < 1024; i++)
        if (!(keep && i == fd)) close(i);
    if (fd >= 0 && !keep) close(fd);
    char pre[4200], log[4200];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", argv[2]);
    snprintf(log, sizeof log, "EXECGUARD_LOG=%s", argv[3]);
    char *env[] = {pre, log, "EXECGUARD_MODE=log", NULL};
    char *args[] = {argv[4], NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execve(argv[4], args, env);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 4;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}
"#,
        &["-O1", "-Wall"],
    );
    let program = common::cc(&dir, "trivial", "int main(void) { return 0; }\n", &["-O1"]);
    let cases: [(&str, Option<i64>); 7] = [
        ("none", None),
        ("open:3", Some(3)),
        ("open:63", Some(63)),
        ("open:64", Some(64)),
        ("open:65", Some(65)),
        ("open:900", Some(900)),
        ("grow:900", None),
    ];
    for (spec, want) in cases {
        let log = dir.join(format!("{}.jsonl", spec.replace(':', "-")));
        let out = std::process::Command::new(&launcher)
            .arg(spec)
            .arg(common::shim())
            .arg(&log)
            .arg(&program)
            .env_remove("LD_PRELOAD")
            .output()
            .unwrap();
        assert!(out.status.success(), "{spec}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        let evs = common::events(&log);
        let start = named(&evs, "startup_fds");
        match want {
            None => assert!(start.is_empty(), "{spec}: {start:?}"),
            Some(fd) => {
                assert_eq!(start.len(), 1, "{spec}: {evs:?}");
                let fds: Vec<i64> = start[0]["fds"].as_array().unwrap().iter().map(|f| f["fd"].as_i64().unwrap()).collect();
                assert_eq!(fds, [fd], "{spec}: {}", start[0]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The same in a driver and probe linked against musl, whose execvp/execl*/fexecve
// reach its execve through internal calls no preload sees (the shim hooks each
// public entry point). Not exec_at_emfile_degrades: a musl program starts at EMFILE
// (its loader is the libc the kernel maps; nothing to open), so there is no failure
// to reproduce.

mod musl {
    macro_rules! on_musl {
        ($($t:ident),* $(,)?) => { $( #[test] fn $t() { crate::common::on_musl(super::$t) } )* };
    }
    on_musl!(
        every_entry_point_noshim_leaks,
        every_entry_point_log_names_it_and_changes_nothing,
        every_entry_point_fix_closes_the_leak,
        every_entry_point_first_used_in_a_raw_fork_child,
        failing_exec_same_errno_in_every_mode,
        intentional_fds_noshim_baseline,
        intentional_fds_log_not_reported,
        intentional_fds_fix_kept,
        vfork_child_dup2_does_not_leak_into_later_fork,
        long_argv_is_cut_with_count,
        hostile_file_name_gives_valid_json,
        failing_exec_in_vfork_child_then_guarded_fork,
        path_search_target_is_the_program_that_runs,
        startup_fd_check_at_the_edges_of_the_small_table,
    );
}

/// A musl program that defines gnu_get_libc_version (gcompat does, for glibc
/// programs on Alpine) still gets no constructor arguments from musl's loader: the
/// shim must not take the garbage registers for argv (it segfaulted at load), and
/// works from musl's globals: the leaked fd is named at the exec.
#[test]
fn musl_program_defining_glibc_marker() {
    let src = common::root().join("c-tests").join("gnu_marker.c");
    let outdir = common::root().join("target").join("c-tests").join("musl");
    std::fs::create_dir_all(&outdir).unwrap();
    let prog = outdir.join("gnu_marker");
    let st = std::process::Command::new("musl-gcc").args(["-O1", "-rdynamic", "-o"]).arg(&prog).arg(&src).status().unwrap();
    assert!(st.success(), "musl-gcc gnu_marker.c");
    let plain = run_mode(Mode::NoShim, &prog, &["/bin/true"], &[], T);
    assert!(plain.status.success(), "{}", plain.context());
    for mode in [Mode::Log, Mode::Fix] {
        let r = run_mode(mode, &prog, &["/bin/true"], &[], T);
        assert!(r.status.success(), "{}", r.context());
        assert_eq!(r.stdout, plain.stdout, "{}", r.context());
        let fd: i64 = r.field("fd").parse().unwrap();
        let evs = r.events();
        let leaks = named(&evs, "exec_fd_leak");
        assert_eq!(leaks.len(), 1, "{}", r.context());
        assert_eq!(leaks[0]["via"], "execv", "{}", leaks[0]);
        assert!(leaks[0]["fds"].as_array().unwrap().iter().any(|f| f["fd"] == fd), "{}", leaks[0]);
    }
}

// Every exec entry point on arm64 (execl's variadic forms are C of their own there).
// Left out, for what qemu-user does: an fd table past 1 024 slots
// (intentional_fds_*, nineteen_thousand_fds_*: qemu ends the process at the shim's
// table-size probe, see docs/design.md, "arm64"), an exec at EMFILE (qemu needs an fd
// to load the program: it fails without the shim), a vfork child's failed exec
// (failing_exec_in_vfork_child_*: qemu's vfork is a fork, its errno stays there).
on_aarch64_too!(
    every_entry_point_noshim_leaks,
    every_entry_point_log_names_it_and_changes_nothing,
    every_entry_point_fix_closes_the_leak,
    every_entry_point_first_used_in_a_raw_fork_child,
    failing_exec_same_errno_in_every_mode,
    failing_exec_that_passes_strays_on_reports_and_fixes_nothing,
    intentional_fds_noshim_baseline,
    vfork_child_dup2_does_not_leak_into_later_fork,
    long_argv_is_cut_with_count,
    hostile_file_name_gives_valid_json,
    without_proc_still_guards,
    path_search_target_is_the_program_that_runs,
    startup_fd_check_at_the_edges_of_the_small_table,
);

// ---------------------------------------------------------------------------
// The kinds of a large mixed leak: a line lists 64 fds; every other one is counted
// by kind, most by its file type alone (pipes, devices, directories), the rest
// (regular files, sockets) asked further.

#[test]
fn kinds_of_a_mixed_leak_are_counted_past_the_listed_fds() {
    let dir = common::tmpdir("mixed-kinds");
    let prog = common::cc(
        &dir,
        "mixed_leak",
        r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
/* mixed_leak fork|spawn FILE DIR: 40 times a pipe (2 fds), /dev/null, FILE, DIR and
 * a UDP socket, none close-on-exec; then /bin/true started one way or the other */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    for (int i = 0; i < 40; i++) {
        int p[2];
        if (pipe(p) || open("/dev/null", O_RDONLY) < 0 || open(argv[2], O_RDONLY) < 0
            || open(argv[3], O_RDONLY | O_DIRECTORY) < 0 || socket(AF_INET, SOCK_DGRAM, 0) < 0)
            return 3;
    }
    char *args[] = {"true", NULL};
    pid_t pid;
    if (strcmp(argv[1], "spawn") == 0) {
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ)) return 4;
    } else if ((pid = fork()) == 0) {
        execve("/bin/true", args, environ);
        _exit(127);
    }
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}
"#,
        &["-O1", "-Wall"],
    );
    let file = dir.join("plain");
    std::fs::write(&file, "x").unwrap();
    for how in ["fork", "spawn"] {
        let run = run_mode(Mode::Log, &prog, &[how, file.to_str().unwrap(), dir.to_str().unwrap()], &[], T);
        assert!(run.status.success(), "{}", run.context());
        let evs: Vec<Value> = named(&run.events(), "exec_fd_leak").into_iter().cloned().collect();
        assert_eq!(evs.len(), 1, "{how}: {}", run.context());
        let ev = &evs[0];
        assert_eq!(ev["fds_total"], 240, "{how}: {ev}");
        assert_eq!(ev["kinds"], json!({"pipe": 80, "file": 120, "udp": 40}), "{how}: {ev}");
        let listed = ev["fds"].as_array().unwrap();
        assert_eq!(listed.len() as u64 + ev["fds_omitted"].as_u64().unwrap(), 240, "{how}: {ev}");
        assert!(listed.len() >= 32, "{how}: {ev}");
    }
}
