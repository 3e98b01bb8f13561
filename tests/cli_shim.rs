//! The CLI with the real libexecguard.so (common::shim(), or $EXECGUARD_LIB): a run that
//! leaks, composition with another preload, eight processes logging at once, the demo.

mod common;

use common::cc;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_execguard"));
    c.env_remove("LD_PRELOAD").env("EXECGUARD_LIB", common::shim()).env("NO_COLOR", "1").stdin(Stdio::null());
    c
}

fn out(c: &mut Command) -> Output {
    c.output().expect("run execguard")
}


/// Opens a file without O_CLOEXEC, then execs /bin/true: one exec_fd_leak.
fn leaker(dir: &Path) -> PathBuf {
    let src = r#"#include <fcntl.h>
#include <unistd.h>
int main(void) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) return 2;
    char *argv[] = {"true", 0};
    execv("/bin/true", argv);
    return 3;
}
"#;
    cc(dir, "leaker", src, &["-O1"])
}

#[test]
fn a_leak_is_summarised_and_gates_ci() {
    let d = common::tmpdir("shim-run");
    let prog = leaker(&d);
    let log = d.join("run.jsonl");
    let o = out(bin().args(["run", "--fail-on", "warn", "--log"]).arg(&log).arg("--").arg(&prog));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(66), "{e}");
    assert!(e.contains("execguard: SUMMARY: ") && e.contains("exec_fd_leak"), "{e}");
    assert!(e.contains(&format!("full log: {}", log.display())), "{e}");
    let evs = common::events(&log);
    let leak = common::named(&evs, "exec_fd_leak");
    assert!(!leak.is_empty(), "{evs:?}");
    assert_eq!(leak[0]["mode"], "log");
    // Fix mode: the same run, each warning marked fixed.
    let log2 = d.join("fix.jsonl");
    let o = out(bin().args(["run", "--mode", "fix", "--log"]).arg(&log2).arg("--").arg(&prog));
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fixed"));
    let evs = common::events(&log2);
    assert!(common::named(&evs, "exec_fd_leak").iter().all(|e| e["action"] == "fixed"), "{evs:?}");
}

#[test]
fn the_shim_composes_with_another_preload() {
    let d = common::tmpdir("shim-compose");
    let prog = leaker(&d);
    let marker = cc(
        &d,
        "libmarker.so",
        "#include <unistd.h>\n__attribute__((constructor)) static void m(void) { write(2, \"MARKER\\n\", 7); }\n",
        &["-shared", "-fPIC"],
    );
    let log = d.join("c.jsonl");
    let o = out(bin().env("LD_PRELOAD", &marker).args(["run", "--log"]).arg(&log).arg("--").arg(&prog));
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("MARKER"));
    assert!(!common::named(&common::events(&log), "exec_fd_leak").is_empty());
}

#[test]
fn eight_processes_log_at_once_and_report_reads_them_all() {
    let d = common::tmpdir("shim-eight");
    let prog = leaker(&d);
    let log = d.join("eight.jsonl");
    let script = format!("for i in 1 2 3 4 5 6 7 8; do '{}' & done; wait", prog.display());
    let o = out(bin().args(["run", "--log"]).arg(&log).args(["--", "sh", "-c", &script]));
    assert_eq!(o.status.code(), Some(0));
    let o = out(bin().args(["report", "--json"]).arg(&log));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["skipped"]["total"], 0, "{v}");
    let leaks = v["by_event"]["exec_fd_leak"].as_u64().unwrap_or(0);
    assert!(leaks >= 8, "{v}");
    let o = out(bin().arg("report").arg(&log));
    assert!(String::from_utf8_lossy(&o.stdout).contains("exec_fd_leak file"));
}

#[test]
fn demo_fix_column_repairs_every_incident() {
    let d = common::tmpdir("shim-demo");
    let o = out(bin().args(["demo", "--dir"]).arg(&d));
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    let rows = ["1 listening socket", "2 1030-socket UDP pool", "3 thread blocks all signals", "4 SIGPIPE ignored"];
    let lines: Vec<&str> = t.lines().collect();
    for row in rows {
        let i = lines.iter().position(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no row {row}:\n{t}"));
        assert!(lines[i].trim_end().ends_with('✓') || lines[i].contains("skipped"), "fix column of {row}:\n{t}");
        assert!(lines[i + 1].contains("! ") && lines[i + 1].contains("fixed: "), "events of {row}:\n{t}");
    }
}

/// Under a seccomp filter that refuses the newer system calls (c-tests/seccomp_deny.c)
/// the run still does its job, and its summary names each degraded path once, with
/// the errno; without the filter it names none.
#[test]
fn run_summary_names_degraded_paths() {
    let spawn_paths = common::c_prog("spawn_paths");
    let sp = spawn_paths.to_str().unwrap();
    let harness = common::c_prog_static("seccomp_deny");
    let exe = env!("CARGO_BIN_EXE_execguard");
    for flavour in [None, Some(("eperm", "EPERM")), Some(("enosys", "ENOSYS"))] {
        let mut c = match flavour {
            None => bin(),
            Some((f, _)) => {
                let mut c = Command::new(&harness);
                c.args([f, exe]).env_remove("LD_PRELOAD").env("EXECGUARD_LIB", common::shim()).env("NO_COLOR", "1");
                c.stdin(Stdio::null());
                c
            }
        };
        let o = out(c.args(["run", "--mode", "fix", "--", sp, "system_blocking", sp]));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("system_blocking"), "{e}");
        let degraded: Vec<&str> = e.lines().filter(|l| l.starts_with("execguard: degraded: ")).collect();
        match flavour {
            None => assert!(degraded.is_empty(), "{e}"),
            Some((_, errno)) => {
                let want = format!("execguard: degraded: pidfd_open refused ({errno}) in 1 process: ");
                assert_eq!(degraded.iter().filter(|l| l.starts_with(&want)).count(), 1, "{e}");
            }
        }
    }
}

/// A caller holding a pool of listeners (more than a startup_fds line lists): fix
/// mode closes them in the command's first process and says so, but they are the
/// caller's, so `--fail-on warn` does not fail a command that did nothing wrong.
#[test]
fn a_callers_pool_never_fails_the_run() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let d = common::tmpdir("shim-caller-pool");
    let log = d.join("log.jsonl");
    let pool: Vec<std::net::TcpListener> = (0..100).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let fds: Vec<i32> = pool.iter().map(|l| l.as_raw_fd()).collect();
    let mut c = bin();
    c.args(["run", "--mode", "fix", "--fail-on", "warn", "--log"]).arg(&log).args(["--", "sh", "-c", "exec true"]);
    // SAFETY: fcntl on fds this process owns, in the child only (its own fd table).
    unsafe {
        c.pre_exec(move || {
            for &fd in &fds {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
    let o = out(&mut c);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let evs = common::events(&log);
    let fixed: Vec<_> = common::named(&evs, "startup_fds").into_iter().filter(|e| e["from"] == "outside").collect();
    assert_eq!(fixed.len(), 1, "fix mode repaired the caller's listeners, once: {evs:?}");
    assert_eq!(fixed[0]["fds_total"].as_u64(), Some(pool.len() as u64), "{}", fixed[0]);
    assert!(fixed[0]["fds"].as_array().unwrap().len() < pool.len(), "the list is cut: {}", fixed[0]);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SUMMARY: no warnings"), "{stderr}");
    assert!(stderr.contains("from its caller: not this command's"), "{stderr}");
    drop(pool);
    let _ = std::fs::remove_dir_all(&d);
}

/// A caller that ignores SIGINT and SIGQUIT (what a shell without job control does
/// to a background job, `cmd &` in a CI script) and blocks SIGUSR2: the command's
/// first process reports it at its start, once, and the run names it as the
/// caller's; `--fail-on warn` does not fail a command that did nothing wrong, in log
/// and in fix mode. What the command ignores itself is still its own warning.
#[test]
fn a_callers_ignored_and_blocked_signals_never_fail_the_run() {
    use std::os::unix::process::CommandExt;
    let d = common::tmpdir("shim-caller-sigs");
    let run = |mode: &str, log: &Path, cmd: &[&str]| {
        let mut c = bin();
        let junit = log.with_extension("xml");
        c.args(["run", "--mode", mode, "--fail-on", "warn", "--log"]).arg(log);
        c.arg("--report").arg(format!("junit={}", junit.display())).arg("--").args(cmd);
        // SAFETY: async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGQUIT, libc::SIG_IGN);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let o = out(&mut c);
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    for mode in ["log", "fix"] {
        let log = d.join(format!("{mode}.jsonl"));
        let (code, stderr) = run(mode, &log, &["sh", "-c", "sh -c true; ls / >/dev/null"]);
        assert_eq!(code, Some(0), "{mode}: {stderr}");
        assert!(stderr.contains("SUMMARY: no warnings"), "{mode}: {stderr}");
        assert!(
            stderr.contains("started with SIGINT, SIGQUIT ignored and SIGUSR2 blocked from its caller: not this command's"),
            "{mode}: {stderr}"
        );
        let evs = common::events(&log);
        assert_eq!(common::named(&evs, "startup_sigign").len(), 1, "{mode}: reported once, at the top: {evs:?}");
        assert_eq!(common::named(&evs, "startup_sigmask").len(), 1, "{mode}: {evs:?}");
        assert!(common::named(&evs, "exec_sigign").is_empty(), "{mode}: passed on, not the command's: {evs:?}");
        // The run's reports say the same: from outside the run, not the suite's failures.
        let xml = std::fs::read_to_string(log.with_extension("xml")).unwrap();
        assert!(xml.contains(r#"failures="0""#) && xml.contains(r#"skipped="2""#), "{mode}: {xml}");
        assert!(xml.contains("inherited from outside the run"), "{mode}: {xml}");
    }
    // The command's own SIG_IGN, passed to a program it execs, is its warning.
    let log = d.join("own.jsonl");
    let own = "import signal, os; signal.signal(signal.SIGTERM, signal.SIG_IGN); os.execvp('true', ['true'])";
    let (code, stderr) = run("log", &log, &["python3", "-c", own]);
    assert_eq!(code, Some(66), "{stderr}");
    let evs = common::events(&log);
    let ign = common::named(&evs, "exec_sigign");
    assert_eq!(ign.len(), 1, "{evs:?}");
    let sigs: Vec<&str> = ign[0]["signals"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(sigs.contains(&"SIGTERM") && !sigs.contains(&"SIGINT") && !sigs.contains(&"SIGQUIT"), "{sigs:?}");
    let xml = std::fs::read_to_string(log.with_extension("xml")).unwrap();
    assert!(xml.contains(r#"failures="1""#), "the command's own is a failing case: {xml}");
    assert!(stderr.contains("SIGINT, SIGQUIT ignored and SIGUSR2 blocked from its caller"), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}
