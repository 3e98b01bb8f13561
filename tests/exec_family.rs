//! Every exec entry point through c-tests/exec_family.c: the event names the entry
//! point; a failing exec returns the same errno (and leaves fds, mask and
//! dispositions as they were) with the shim as without; and the fds a child is meant
//! to inherit are still there in fix mode.

mod common;

use common::{check_common, named, run_mode, Mode, Run};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const ENTRY_POINTS: [&str; 9] =
    ["execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve", "execveat"];

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
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no probe line\n{}", run.context()));
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
    for which in ENTRY_POINTS {
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
    for which in ENTRY_POINTS {
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
    for which in ENTRY_POINTS {
        let run = via(Mode::Fix, which, &leak);
        f.check(run.field("child") == "exit:0", || format!("{which}: {}", run.context()));
        f.check(probe_fds(&run).is_empty(), || format!("{which}: the child still has fds\n{}", run.context()));
        check_via_event(&mut f, &run, which, &leak, Mode::Fix);
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
    for which in ENTRY_POINTS {
        // fexecve never gets a path: open() fails first and it is handed fd -1.
        let enoent = if which == "fexecve" { "EINVAL" } else { "ENOENT" };
        for (path, errno) in [(missing.as_str(), enoent), (leak.as_str(), "EACCES")] {
            let want = format!("errno={errno} fd3_cloexec=0 alrm_blocked=1 sigpipe=ign\n");
            for mode in Mode::ALL {
                let run = run_mode(mode, &driver(), &["fail", which, path, &leak], &[], T);
                f.check(run.status.success() && run.stdout == want, || {
                    format!("{which} {path} [{}]: want {want:?}\n{}", mode.name(), run.context())
                });
            }
        }
    }
    f.assert();
}

// ---------------------------------------------------------------------------
// Fds the child is meant to inherit: kept in fix mode, and never reported.

/// (case, extra environment, fds the probe must hold, fds that are the leak)
const KEEP_CASES: &[(&str, &[(&str, &str)], &[u64], &[u64])] = &[
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
            format!("{case} [{}]: exec_fd_leak should list exactly {leaked:?}, lists {listed:?}\n{}", mode.name(), run.context())
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
