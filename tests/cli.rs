//! The CLI through its real binary, without needing the shim: `run` is driven with
//! small preload libraries compiled here (a marker, and a stand-in that writes one
//! warning to EXECGUARD_LOG), `report` with logs written here. tests/cli_shim.rs does
//! the same against the real libexecguard.so.

mod common;

use common::cc;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_execguard"));
    c.env_remove("LD_PRELOAD").env_remove("EXECGUARD_LIB").env("NO_COLOR", "1");
    c
}

fn out(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().expect("run execguard")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}


/// A preload library whose constructor prints `marker` on stderr.
fn marker_lib(dir: &Path, marker: &str) -> PathBuf {
    let src = format!(
        "#include <unistd.h>\n#include <string.h>\n__attribute__((constructor)) static void m(void) {{ const char *s = \"{marker}\\n\"; write(2, s, strlen(s)); }}\n"
    );
    cc(dir, &format!("lib{marker}.so"), &src, &["-shared", "-fPIC"])
}

/// Stands in for the shim: with FAKE_WARN set, each process that loads it appends one
/// exec_fd_leak warning to $EXECGUARD_LOG, in the documented format.
fn fake_shim(dir: &Path) -> PathBuf {
    let src = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void fake(void) {
    const char *log = getenv("EXECGUARD_LOG");
    if (!log || !getenv("FAKE_WARN")) return;
    char line[512];
    int n = snprintf(line, sizeof line,
        "{\"v\":1,\"ts\":1.5,\"event\":\"exec_fd_leak\",\"severity\":\"warn\",\"action\":\"logged\","
        "\"pid\":%d,\"ppid\":%d,\"tid\":%d,\"exe\":\"/fake\",\"mode\":\"%s\",\"via\":\"execve\","
        "\"target\":\"/bin/x\",\"fds\":[{\"fd\":7,\"kind\":\"tcp_listen\",\"detail\":\"127.0.0.1:1\"}],"
        "\"fds_total\":1,\"kinds\":{\"tcp_listen\":1}}\n",
        getpid(), getppid(), getpid(), getenv("EXECGUARD_MODE") ? getenv("EXECGUARD_MODE") : "?");
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) { write(fd, line, n); close(fd); }
}
"#;
    cc(dir, "libfake.so", src, &["-shared", "-fPIC"])
}

fn fake_env(dir: &Path) -> Command {
    let mut c = bin();
    c.env("EXECGUARD_LIB", fake_shim(dir));
    c
}

#[test]
fn run_reports_the_command_status_like_a_shell() {
    let d = common::tmpdir("cli-status");
    let o = out(fake_env(&d).args(["run", "--", "sh", "-c", "exit 3"]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("execguard: SUMMARY: no warnings"), "{}", stderr(&o));
    let o = out(fake_env(&d).args(["run", "--", "true"]));
    assert_eq!(o.status.code(), Some(0));
    // Death by a signal: 128 + N, as `$?` in a shell.
    let o = out(fake_env(&d).args(["run", "--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert!(stderr(&o).contains("killed by SIGTERM"));
    let o = out(fake_env(&d).args(["run", "--", "sh", "-c", "kill -KILL $$"]));
    assert_eq!(o.status.code(), Some(137));
    // CMD missing / not executable: 127 / 126.
    let o = out(fake_env(&d).args(["run", "--", "/nonexistent/cmd"]));
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("command not found"));
    let o = out(fake_env(&d).args(["run", "--"]).arg(&d));
    assert_eq!(o.status.code(), Some(126));
}

#[test]
fn fail_on_warn_gates_a_successful_run() {
    let d = common::tmpdir("cli-failon");
    let log = d.join("w.jsonl");
    let o = out(fake_env(&d).env("FAKE_WARN", "1").args(["run", "--fail-on", "warn", "--log"]).arg(&log).args(["--", "true"]));
    assert_eq!(o.status.code(), Some(66), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("execguard: SUMMARY: 1 warning (1 exec_fd_leak) in 1 process; full log: {}", log.display())),
        "{e}"
    );
    // CMD's own failure is never masked by 66.
    let o = out(fake_env(&d).env("FAKE_WARN", "1").args(["run", "--fail-on", "warn", "--", "sh", "-c", "exit 3"]));
    assert_eq!(o.status.code(), Some(3));
    // Default is never: warnings alone do not change the status.
    let o = out(fake_env(&d).env("FAKE_WARN", "1").args(["run", "--", "true"]));
    assert_eq!(o.status.code(), Some(0));
    // No warnings: CMD's status.
    let o = out(fake_env(&d).args(["run", "--fail-on", "warn", "--", "true"]));
    assert_eq!(o.status.code(), Some(0));
    // The summary counts only this run's lines of a reused --log.
    let o = out(fake_env(&d).env("FAKE_WARN", "1").args(["run", "--log"]).arg(&log).args(["--", "true"]));
    assert!(stderr(&o).contains("SUMMARY: 1 warning (1 exec_fd_leak)"), "{}", stderr(&o));
    assert_eq!(common::events(&log).len(), 2);
    // Two processes under one run: sh and the sh it starts.
    let o = out(fake_env(&d).env("FAKE_WARN", "1").args(["run", "--", "sh", "-c", "sh -c true; true"]));
    assert!(stderr(&o).contains("2 warnings (2 exec_fd_leak) in 2 processes"), "{}", stderr(&o));
}

#[test]
fn run_sets_the_environment_and_keeps_other_preloads() {
    let d = common::tmpdir("cli-preload");
    let a = marker_lib(&d, "MARKA");
    let b = marker_lib(&d, "MARKB");
    let o = out(bin()
        .env("EXECGUARD_LIB", &a)
        .env("LD_PRELOAD", format!(" {} ", b.display()))
        .args(["run", "--mode", "fix", "--", "sh", "-c", "echo \"$LD_PRELOAD|$EXECGUARD_MODE|$EXECGUARD_FOLLOW|$EXECGUARD_LOG\""]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    // Both constructors ran (their order is the loader's business: later preloads are
    // initialised first); ours comes first in LD_PRELOAD, so its symbols win.
    assert!(e.contains("MARKA") && e.contains("MARKB"), "{e}");
    let line = stdout(&o);
    let f: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(f[0], format!("{}:{}", a.canonicalize().unwrap().display(), b.display()));
    assert_eq!(f[1], "fix");
    assert_eq!(f[2], "1");
    assert!(f[3].ends_with(".jsonl") && Path::new(f[3]).is_absolute(), "{line}");
}

/// The library copied under another name (`EXECGUARD_LIB=/opt/x/libeg.so`): each
/// exec below the run still finds it in `LD_PRELOAD` by its path, and neither adds
/// it again (the list grew by one entry per exec level) nor loses the other preloads.
#[test]
fn a_renamed_library_is_preloaded_once_at_every_depth() {
    let d = common::tmpdir("cli-renamed");
    let renamed = d.join("libeg-copy.so");
    std::fs::copy(common::shim(), &renamed).unwrap();
    let b = marker_lib(&d, "MARKB");
    let o = out(bin()
        .env("EXECGUARD_LIB", &renamed)
        .env("LD_PRELOAD", b.display().to_string())
        .args(["run", "--", "sh", "-c", "sh -c 'sh -c \"echo \\$LD_PRELOAD\"'"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("{}:{}", renamed.canonicalize().unwrap().display(), b.display()));
}

#[test]
fn missing_library_is_one_line_with_the_fix() {
    let o = out(bin().env("EXECGUARD_LIB", "/nonexistent/libexecguard.so").args(["run", "--", "true"]));
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("EXECGUARD_LIB=/nonexistent/libexecguard.so"), "{}", stderr(&o));
    // A binary with no library beside it.
    let d = common::tmpdir("cli-nolib");
    let copy = d.join("execguard");
    std::fs::copy(env!("CARGO_BIN_EXE_execguard"), &copy).unwrap();
    let o = out(Command::new(&copy).env_remove("EXECGUARD_LIB").args(["run", "--", "true"]));
    assert_eq!(o.status.code(), Some(125));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("libexecguard.so not found next to") && e.contains("cargo build --release"), "{e}");
}

#[test]
fn signals_are_forwarded_and_the_inherited_state_kept() {
    let d = common::tmpdir("cli-signals");
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130), (libc::SIGHUP, 129)] {
        let mut c = fake_env(&d);
        c.args(["run", "--", "sleep", "5"]).stderr(Stdio::null());
        // The signal at its default and unblocked, whatever this test was started
        // with: a background job of a shell without job control (a CI step's `&`)
        // starts with SIGINT ignored, and `execguard run` rightly hands that on.
        // SAFETY: async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::signal(sig, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let start = Instant::now();
        let st = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(4) {
                let _ = child.kill();
                panic!("signal {sig} was not forwarded");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(st.code(), Some(code), "signal {sig}");
    }
    // CMD gets the mask and the ignored SIGPIPE execguard was given, not std's defaults.
    let mut c = fake_env(&d);
    c.args(["run", "--", "cat", "/proc/self/status"]);
    // SAFETY: async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = out(&mut c);
    let s = stdout(&o);
    let field = |name: &str| -> u64 {
        let l = s.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_ne!(field("SigBlk:") & (1 << (libc::SIGUSR2 - 1)), 0, "{s}");
    assert_ne!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{s}");
}

fn event_line(pid: i64, ppid: i64, ts: f64, extra: &str) -> String {
    format!(
        "{{\"v\":1,\"ts\":{ts},\"event\":\"exec_fd_leak\",\"severity\":\"warn\",\"action\":\"logged\",\"pid\":{pid},\"ppid\":{ppid},\"tid\":{pid},\"exe\":\"/usr/sbin/nginx\",\"mode\":\"log\",\"via\":\"system\",\"target\":\"curl http://127.0.0.1:1985/\",\"argv\":[\"sh\",\"-c\",\"curl\"],\"argv_omitted\":0,\"fds\":[{{\"fd\":7,\"kind\":\"tcp_listen\",\"detail\":\"0.0.0.0:1985\"}},{{\"fd\":9,\"kind\":\"pipe\",\"detail\":\"pipe:[77]\"}}],\"fds_total\":2,\"fds_omitted\":0,\"kinds\":{{\"tcp_listen\":1,\"pipe\":1}}{extra}}}\n"
    )
}

fn report_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let o = out(bin().arg("report").arg("--json").args(args));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("report --json is one JSON object")
}

#[test]
fn report_reads_a_log_appended_by_eight_writers() {
    let d = common::tmpdir("cli-concurrent");
    let log = d.join("c.jsonl");
    let per = 250;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&log).unwrap();
                    // One write(2) per line, as the shim does.
                    f.write_all(event_line(1000 + t, 999, 1.7e9 + i as f64, "").as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = report_json(&[log.as_os_str()]);
    assert_eq!(v["events"], 8 * per);
    assert_eq!(v["skipped"]["total"], 0);
    assert_eq!(v["processes"], 8);
    assert_eq!(v["warnings"], 8 * per);
    let g = &v["groups"][0];
    assert_eq!(g["what"], "tcp_listen", "listeners first: {g}");
    assert_eq!(g["events"], 8 * per);
    assert_eq!(g["processes"], 8);
    // The tree: eight children under their common (silent) parent.
    let tree = v["tree"].as_array().unwrap();
    let parent = tree.iter().find(|n| n["pid"] == 999).unwrap();
    assert_eq!(parent["logged"], false);
    assert_eq!(parent["children"].as_array().unwrap().len(), 8);
    let o = out(bin().arg("report").arg(&log));
    let t = stdout(&o);
    assert!(t.contains("Fix first:") && t.contains("exec_fd_leak tcp_listen"), "{t}");
    assert!(t.contains("/usr/sbin/nginx → curl http://127.0.0.1:1985/"), "{t}");
    assert!(t.contains("999 ? (logged nothing)"), "{t}");
}

#[test]
fn report_counts_cut_foreign_and_huge_lines() {
    let d = common::tmpdir("cli-trunc");
    let log = d.join("t.jsonl");
    let mut text = String::new();
    for i in 0..5 {
        text.push_str(&event_line(10 + i, 1, 1.7e9, ""));
    }
    text.push_str("some other program's output\n");
    text.push_str(&"x".repeat(3 << 20));
    text.push('\n');
    let cut = event_line(99, 1, 1.7e9, "");
    text.push_str(&cut[..cut.len() / 2]);
    std::fs::write(&log, text).unwrap();
    let v = report_json(&[log.as_os_str()]);
    assert_eq!(v["events"], 5);
    assert_eq!(v["skipped"]["truncated"], 1);
    assert_eq!(v["skipped"]["foreign"], 1);
    assert_eq!(v["skipped"]["oversized"], 1);
    let o = out(bin().arg("report").arg(&log));
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("skipped 3 lines (1 truncated, 1 foreign, 1 oversized)"), "{}", stdout(&o));
    // Several files, and `--since`.
    let newer = d.join("n.jsonl");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    std::fs::write(&newer, event_line(500, 1, now - 5.0, "")).unwrap();
    let v = report_json(&[log.as_os_str(), newer.as_os_str(), "--since".as_ref(), "10m".as_ref()]);
    assert_eq!(v["events"], 1);
    assert_eq!(v["left_out_by_since"], 5);
    let o = out(bin().args(["report", "--since", "yesterday"]).arg(&log));
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("10m"));
    let o = out(bin().args(["report", "/nonexistent.jsonl"]));
    assert_eq!(o.status.code(), Some(125));
}

/// nginx (100) system()s a shell (101) that execs curl; uwsgi (200) starts hping3 (201)
/// with SIGALRM blocked.
fn tree_log(d: &Path) -> PathBuf {
    let log = d.join("tree.jsonl");
    let lines = [
        r#"{"v":1,"ts":1.0,"event":"system_blocking","severity":"warn","action":"logged","pid":100,"ppid":1,"tid":100,"exe":"/usr/sbin/nginx","mode":"log","via":"system","command":"curl \"http://x\"","child_pid":101,"listeners":[{"fd":7,"kind":"tcp_listen","detail":"0.0.0.0:1985"}],"waited_s":0}"#,
        r#"{"v":1,"ts":1.1,"event":"exec_fd_leak","severity":"warn","action":"fixed","pid":101,"ppid":100,"tid":101,"exe":"/usr/sbin/nginx","mode":"fix","via":"execve","target":"/bin/sh","fds":[{"fd":7,"kind":"tcp_listen","detail":"0.0.0.0:1985"}],"fds_total":1,"kinds":{"tcp_listen":1}}"#,
        r#"{"v":1,"ts":1.2,"event":"startup_fds","severity":"warn","action":"logged","pid":101,"ppid":100,"tid":101,"exe":"/usr/bin/curl","mode":"fix","parent_exe":"/usr/sbin/nginx","fds":[{"fd":9,"kind":"pipe","detail":"pipe:[5]"}],"fds_total":1,"kinds":{"pipe":1}}"#,
        r#"{"v":1,"ts":1.3,"event":"sigmask_block","severity":"info","action":"logged","pid":200,"ppid":1,"tid":202,"exe":"/usr/bin/uwsgi","mode":"log","func":"pthread_sigmask","how":"SIG_BLOCK","signals":["SIGALRM"],"caller":"/usr/bin/uwsgi+0x1234"}"#,
        r#"{"v":1,"ts":1.4,"event":"exec_sigmask","severity":"warn","action":"logged","pid":201,"ppid":200,"tid":201,"exe":"/usr/bin/uwsgi","mode":"log","via":"execve","target":"/usr/sbin/hping3","signals":["SIGALRM","SIGCHLD"],"blocked_by":"/usr/bin/uwsgi+0x1234"}"#,
        r#"{"v":1,"ts":1.5,"event":"startup_sigign","severity":"warn","action":"logged","pid":201,"ppid":200,"tid":201,"exe":"/usr/sbin/hping3","mode":"log","signals":["SIGPIPE"],"kept":["SIGHUP"],"parent_exe":"/usr/bin/uwsgi"}"#,
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    log
}

#[test]
fn report_text_groups_and_draws_the_tree() {
    let d = common::tmpdir("cli-tree");
    let log = tree_log(&d);
    let o = out(bin().arg("report").arg(&log));
    let t = stdout(&o);
    assert_eq!(o.status.code(), Some(0));
    let first = t.find("1. exec_fd_leak tcp_listen").or(t.find("1. system_blocking")).expect("urgent first");
    let sigign = t.find("startup_sigign SIGPIPE").expect("sigign listed");
    assert!(first < sigign, "{t}");
    assert!(t.contains("exec_sigmask SIGALRM SIGCHLD"), "{t}");
    assert!(t.contains("info: 1 sigmask_block"), "{t}");
    assert!(t.contains("101 /usr/sbin/nginx → /bin/sh → /usr/bin/curl"), "{t}");
    assert!(t.contains("execve → /bin/sh leaks fd 7 tcp_listen 0.0.0.0:1985 [fixed]"), "{t}");
    assert!(t.contains("with SIGPIPE ignored (kept on purpose: SIGHUP)"), "{t}");
    // Plain output off a terminal: no escape sequences.
    assert!(!t.contains('\x1b'));
}

#[test]
fn dot_output_is_valid_graphviz() {
    let d = common::tmpdir("cli-dot");
    let log = tree_log(&d);
    let o = out(bin().args(["report", "--format", "dot"]).arg(&log));
    assert_eq!(o.status.code(), Some(0));
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph execguard {") && dot.trim_end().ends_with('}'), "{dot}");
    // Braces balance outside quoted strings; every edge's ends are declared nodes.
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for c in dot.chars() {
        match (in_str, esc, c) {
            (true, true, _) => esc = false,
            (true, false, '\\') => esc = true,
            (_, false, '"') => in_str = !in_str,
            (false, _, '{') => depth += 1,
            (false, _, '}') => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0);
    }
    assert_eq!(depth, 0);
    assert!(!in_str);
    let mut declared = std::collections::BTreeSet::new();
    let mut edges = Vec::new();
    for l in dot.lines().map(str::trim) {
        let ids: Vec<&str> = l.split('"').collect();
        if l.contains(" -> ") && ids.len() >= 4 {
            edges.push((ids[1].to_string(), ids[3].to_string()));
        } else if l.starts_with('"') && l.contains("[label=") {
            declared.insert(ids[1].to_string());
        }
    }
    assert!(edges.len() >= 4, "{dot}");
    for (a, b) in &edges {
        assert!(declared.contains(a) && declared.contains(b), "edge {a} -> {b} to an undeclared node\n{dot}");
    }
    if Command::new("dot").arg("-V").stderr(Stdio::null()).status().is_ok() {
        let mut p = Command::new("dot").arg("-Tsvg").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        p.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
        let r = p.wait_with_output().unwrap();
        assert!(r.status.success(), "dot rejected:\n{dot}");
        assert!(String::from_utf8_lossy(&r.stdout).contains("<svg"));
    }
}

#[test]
fn report_resolves_origins_to_function_and_line() {
    let d = common::tmpdir("cli-origin");
    // Prints its own `module+0xoffset` (file offset, as the shim writes it) of a call
    // inside make_listener: the return address of the call to here().
    let src = r#"#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
__attribute__((noinline)) static uintptr_t here(void) { return (uintptr_t)__builtin_return_address(0); }
__attribute__((noinline)) uintptr_t make_listener(void) {
    uintptr_t r = here(); /* MARK */
    __asm__ volatile("" ::: "memory");
    return r;
}
int main(void) {
    uintptr_t a = make_listener();
    FILE *m = fopen("/proc/self/maps", "r");
    char line[4096];
    while (fgets(line, sizeof line, m)) {
        unsigned long lo, hi, off; char perm[8]; char path[3000] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %2999s", &lo, &hi, perm, &off, path) >= 4 && a >= lo && a < hi) {
            printf("%s+0x%lx\n", path, a - lo + off);
            return 0;
        }
    }
    return 1;
}
"#;
    let prog = cc(&d, "origin", src, &["-g", "-O0"]);
    let o = Command::new(&prog).output().unwrap();
    let spec = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(spec.contains("+0x"), "{spec}");
    let mark_line = src.lines().position(|l| l.contains("MARK")).unwrap() + 1;
    let log = d.join("o.jsonl");
    let origin = format!(",\"blocked_by\":\"{spec}\"");
    let mut line = event_line(1, 0, 1.0, &origin);
    line = line.replace("\"detail\":\"0.0.0.0:1985\"", &format!("\"detail\":\"0.0.0.0:1985\",\"origin\":\"{spec}\""));
    std::fs::write(&log, line).unwrap();
    let o = out(bin().arg("report").arg(&log));
    let t = stdout(&o);
    assert!(t.contains("created at make_listener ("), "{t}");
    assert!(t.contains(&format!("origin.c:{mark_line})")), "line {mark_line}: {t}");
    let v = report_json(&[log.as_os_str()]);
    let r = v["groups"][0]["origins"][0]["resolved"].as_str().unwrap_or_default().to_string();
    assert!(r.starts_with("make_listener (") && r.ends_with(&format!("origin.c:{mark_line})")), "{r}");
    // DWARF moved to a separate file, found through .gnu_debuglink.
    let sh = |c: &str| Command::new("sh").arg("-c").arg(c).current_dir(&d).status().map(|s| s.success()).unwrap_or(false);
    if sh("objcopy --only-keep-debug origin origin.debug && strip --strip-debug origin && objcopy --add-gnu-debuglink=origin.debug origin") {
        let o = out(bin().arg("report").arg(&log));
        assert!(stdout(&o).contains(&format!("origin.c:{mark_line})")), "via debuglink: {}", stdout(&o));
    }
    // --no-symbols keeps the raw form.
    let o = out(bin().args(["report", "--no-symbols"]).arg(&log));
    assert!(stdout(&o).contains(&format!("created at {spec}")));
}

#[test]
fn demo_shows_every_incident_without_the_shim() {
    let d = common::tmpdir("cli-demo");
    let start = Instant::now();
    let o = out(bin().env("EXECGUARD_LIB", d.join("missing.so")).args(["demo", "--dir"]).arg(&d));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stdout(&o);
    for row in ["1 listening socket", "2 1030-socket UDP pool", "3 thread blocks all signals", "4 SIGPIPE ignored"] {
        let l = t.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no row {row}:\n{t}"));
        assert!(l.contains("shim not built"), "{l}");
    }
    // The without column is observed: the listener, the high fd, the hang, SIGPIPE.
    assert!(t.contains("child holds :"), "{t}");
    assert!(t.contains("select ✗") || t.contains("skipped: RLIMIT"), "{t}");
    assert!(t.contains("alarm never fires"), "{t}");
    assert!(t.contains("child ignores SIGPIPE"), "{t}");
    assert!(start.elapsed() < Duration::from_secs(20));
}
