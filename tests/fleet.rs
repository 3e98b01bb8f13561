//! The fleet path with the real components, started here: systemd-journald (read back
//! with journalctl), rsyslogd with a test configuration, promtool, systemd-analyze,
//! dpkg. The journal socket and /dev/log are fixed system paths: the tests that own
//! them take one lock, and put back what they found (a /dev/log moved aside, the
//! directories journald made).

mod common;

use common::{c_prog, canon, run_mode, Mode, Run};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const JOURNAL_DIR: &str = "/run/systemd/journal";
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
const JOURNAL_FILES: &str = "/run/log/journal";
const DEV_LOG: &str = "/dev/log";

static SOCKETS: Mutex<()> = Mutex::new(());

fn own_sockets() -> MutexGuard<'static, ()> {
    SOCKETS.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn answering(path: &str) -> bool {
    UnixDatagram::unbound().and_then(|s| s.connect(path)).is_ok()
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Waits up to 10 s for `ok`.
fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// systemd-journald, without systemd as PID 1: it binds its own sockets.

struct Journald {
    child: Option<Child>,
    made_dir: bool,
    made_files: bool,
    made_run_log: bool,
    dir: PathBuf,
}

impl Journald {
    fn start() -> Journald {
        assert!(!answering(JOURNAL_SOCKET), "a journald already answers on {JOURNAL_SOCKET}: these tests start their own");
        let made_dir = !Path::new(JOURNAL_DIR).exists();
        let made_files = !Path::new(JOURNAL_FILES).exists();
        let made_run_log = !Path::new("/run/log").exists();
        std::fs::create_dir_all(JOURNAL_DIR).unwrap();
        let dir = common::tmpdir("journald");
        let mut j = Journald { child: None, made_dir, made_files, made_run_log, dir };
        j.spawn();
        j
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("journald.out")).unwrap();
        let child = Command::new("/lib/systemd/systemd-journald")
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start /lib/systemd/systemd-journald (package systemd)");
        self.child = Some(child);
        until("journald's socket", || answering(JOURNAL_SOCKET));
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("journald running").id()
    }

    /// SIGKILL: the socket file stays behind, and nobody reads it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(c.id(), libc::SIGKILL);
            let _ = c.wait();
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        self.kill();
        // Put the machine back as found: no socket answers, nothing we made is left.
        for f in ["socket", "stdout", "dev-log", "io.systemd.journal", "kernel-seqnum", "seqnum", "streams", "flushed"] {
            let p = Path::new(JOURNAL_DIR).join(f);
            if self.made_dir {
                let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
            }
        }
        if self.made_dir {
            let _ = std::fs::remove_dir_all(JOURNAL_DIR);
        }
        if self.made_files {
            let _ = std::fs::remove_dir_all(JOURNAL_FILES);
        }
        if self.made_run_log {
            let _ = std::fs::remove_dir("/run/log");
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `journalctl -o json --identifier execguard` entries since `since` whose event
/// comes from one of `pids` (by `_PID`; all when `pids` is empty).
fn journal(since: f64, pids: &[u64]) -> Vec<Value> {
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--identifier", "execguard", "--since"])
        .arg(format!("@{}", since as u64))
        .output()
        .expect("journalctl");
    assert!(out.status.success(), "journalctl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("journalctl line {l}: {e}")))
        .filter(|e| pids.is_empty() || e["_PID"].as_str().and_then(|p| p.parse::<u64>().ok()).is_some_and(|p| pids.contains(&p)))
        .collect()
}

/// Polls until entries from `pids` number at least `n`.
fn journal_wait(since: f64, pids: &[u64], n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    until(&format!("{n} journal entries from {pids:?}"), || {
        got = journal(since, pids);
        got.len() >= n
    });
    got
}

fn s<'a>(e: &'a Value, k: &str) -> &'a str {
    e[k].as_str().unwrap_or_else(|| panic!("{k} not a string in {e}"))
}

fn inner(e: &Value) -> Value {
    serde_json::from_str(s(e, "EXECGUARD_JSON")).unwrap_or_else(|err| panic!("EXECGUARD_JSON: {err}: {e}"))
}

fn nodename() -> String {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out-pointer.
    assert_eq!(unsafe { libc::uname(&mut u) }, 0);
    // SAFETY: the kernel NUL-terminates nodename.
    unsafe { std::ffi::CStr::from_ptr(u.nodename.as_ptr()) }.to_string_lossy().into_owned()
}

struct Listen {
    run: Run,
    server: u64,
    child: u64,
    fd: u64,
    port: String,
}

fn listen_leak(mode: Mode, env: &[(&str, &str)]) -> Listen {
    let probe = c_prog("probe");
    let start = Instant::now();
    let run = run_mode(mode, &c_prog("listen_leak"), &[probe.to_str().unwrap()], env, T);
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}\n{}", start.elapsed(), run.context());
    assert!(run.status.success(), "{}", run.context());
    Listen {
        server: run.field("server_pid").parse().unwrap(),
        child: run.field("child_pid").parse().unwrap(),
        fd: run.field("listen_fd").parse().unwrap(),
        port: run.field("port"),
        run,
    }
}

/// What a listen_leak run printed, without what differs between runs.
fn behaviour(l: &Listen) -> String {
    l.run
        .stdout
        .lines()
        .filter(|x| !x.starts_with("server_pid=") && !x.starts_with("child_pid=") && !x.starts_with("probe="))
        .map(|x| x.replace(&l.port, "PORT"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn journal_sink_entries_carry_the_fields() {
    let _g = own_sockets();
    let j = Journald::start();
    let host = nodename();
    let since = now() - 2.0;
    let base = listen_leak(Mode::NoShim, &[]);
    for mode in [Mode::Log, Mode::Fix] {
        let l = listen_leak(mode, &[("EXECGUARD_LOG", "journal")]);
        if mode == Mode::Log {
            assert_eq!(behaviour(&l), behaviour(&base), "log mode changed behaviour\n{}", l.run.context());
        }
        assert_eq!(l.run.stderr, "", "the journal sink writes nothing on stderr");
        let entries = journal_wait(since, &[l.child], 1);
        let leaks: Vec<&Value> = entries.iter().filter(|e| e["EXECGUARD_EVENT"] == "exec_fd_leak").collect();
        assert_eq!(leaks.len(), 1, "{entries:#?}");
        let e = leaks[0];
        let probe = c_prog("probe");
        assert_eq!(s(e, "PRIORITY"), "4", "{e}");
        assert_eq!(s(e, "SYSLOG_IDENTIFIER"), "execguard");
        assert_eq!(s(e, "SYSLOG_PID"), l.child.to_string());
        assert_eq!(s(e, "EXECGUARD_SEVERITY"), "warn");
        assert_eq!(s(e, "EXECGUARD_ACTION"), mode.action());
        assert_eq!(s(e, "EXECGUARD_MODE"), mode.name());
        assert_eq!(s(e, "EXECGUARD_TARGET"), probe.to_str().unwrap());
        assert_eq!(s(e, "EXECGUARD_VIA"), "execv");
        assert_eq!(s(e, "EXECGUARD_EXE"), canon(&c_prog("listen_leak")));
        let detail = format!("127.0.0.1:{}", l.port);
        let msg = s(e, "MESSAGE");
        assert!(msg.starts_with(&format!("warning: exec_fd_leak: {} inherits", probe.display())), "{msg}");
        assert!(msg.contains(&format!("fd {} (tcp_listen {detail})", l.fd)), "{msg}");
        assert!(msg.contains("via=execv"), "the human form, as on stderr: {msg}");
        assert_eq!(msg.ends_with(" [fixed]"), mode == Mode::Fix, "{msg}");
        let ev = inner(e);
        common::check_common(&ev, mode, "warn", mode.action());
        assert_eq!(ev["host"], host.as_str(), "{ev}");
        assert_eq!(ev["pid"], l.child, "{ev}");
        assert_eq!(ev["ppid"], l.server, "{ev}");
        assert_eq!(ev["fds"], serde_json::json!([{"fd": l.fd, "kind": "tcp_listen", "detail": detail}]), "{ev}");
        assert_eq!(ev["target"], probe.to_str().unwrap());
    }
    // Info events at priority 6; the exec_sigmask of incident 3 at 4.
    let run = run_mode(Mode::Log, &c_prog("thread_mask"), &[], &[("EXECGUARD_LOG", "journal")], T);
    assert!(run.status.success(), "{}", run.context());
    let child: u64 = run.field("child_pid").parse().unwrap();
    let entries = journal_wait(since, &[run.pid as u64, child], 2);
    let info: Vec<&Value> = entries.iter().filter(|e| e["EXECGUARD_SEVERITY"] == "info").collect();
    assert!(!info.is_empty() && info.iter().all(|e| e["PRIORITY"] == "6"), "{entries:#?}");
    assert!(info.iter().all(|e| s(e, "MESSAGE").starts_with("info: ")), "{info:#?}");
    let masks: Vec<&Value> = entries.iter().filter(|e| e["EXECGUARD_EVENT"] == "exec_sigmask").collect();
    assert_eq!(masks.len(), 1, "{entries:#?}");
    assert_eq!(masks[0]["PRIORITY"], "4");
    assert!(inner(masks[0])["signals"].as_array().unwrap().iter().any(|x| x == "SIGALRM"), "{}", masks[0]);

    // A long human line is cut in MESSAGE (marked), never in EXECGUARD_JSON.
    let run = run_mode(Mode::Log, &c_prog("udp_pool"), &[], &[("EXECGUARD_LOG", "journal")], T);
    assert!(run.status.success(), "{}", run.context());
    let mut pool = Vec::new();
    until("the pool's exec_fd_leak", || {
        pool = journal(since, &[])
            .into_iter()
            .filter(|e| e["EXECGUARD_EVENT"] == "exec_fd_leak" && inner(e)["ppid"] == run.pid as u64)
            .collect();
        !pool.is_empty()
    });
    let msg = s(&pool[0], "MESSAGE");
    assert!(msg.ends_with(" \u{2026}") && msg.len() <= 1024 + 4, "{} bytes: {msg}", msg.len());
    assert!(msg.starts_with("warning: exec_fd_leak: ") && msg.contains("fds=[fd 3 (udp 0.0.0.0:0), fd 4 (udp"), "{msg}");
    assert_eq!(inner(&pool[0])["fds_total"], 1030);

    // What the fleet collected, read back: an export file, and the journal itself.
    let d = common::tmpdir("fleet-export");
    let export = d.join("export.json");
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--since"])
        .arg(format!("@{}", since as u64))
        .output()
        .unwrap();
    std::fs::write(&export, &out.stdout).unwrap();
    let from_file = report_json(&[export.as_os_str()]);
    let all_ours = journal_all(since);
    assert!(all_ours >= 4, "entries: {all_ours}");
    assert_eq!(from_file["events"], all_ours as u64, "every entry of ours read from the export: {from_file:#}");
    assert_eq!(from_file["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(from_file["hosts"][0]["host"], host.as_str());
    let since_arg = format!("--since=@{}", since as u64);
    let live = report_json(&["--journal".as_ref(), "--".as_ref(), since_arg.as_ref()]);
    assert_eq!(live["events"], from_file["events"], "{live:#}");
    assert_eq!(live["warnings"], from_file["warnings"]);
    drop(j);
    assert!(!answering(JOURNAL_SOCKET));
}

/// Entries with our identifier since `since`, any pid.
fn journal_all(since: f64) -> usize {
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--identifier", "execguard", "--since"])
        .arg(format!("@{}", since as u64))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("EXECGUARD_JSON")).count()
}

fn execguard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_execguard"));
    c.env("NO_COLOR", "1");
    c
}

fn ok(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    o
}

fn report_json(args: &[&std::ffi::OsStr]) -> Value {
    let o = ok(execguard().arg("report").arg("--json").args(args));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The machine's /dev/log (a running syslog daemon's, or systemd's link to journald)
/// moved aside while a test puts its own there; put back when dropped.
struct DevLogAside(Option<PathBuf>);

impl DevLogAside {
    fn take() -> DevLogAside {
        if std::fs::symlink_metadata(DEV_LOG).is_err() {
            return DevLogAside(None);
        }
        let to = PathBuf::from(format!("{DEV_LOG}.execguard-test-{}", std::process::id()));
        std::fs::rename(DEV_LOG, &to).unwrap();
        DevLogAside(Some(to))
    }
}

impl Drop for DevLogAside {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(DEV_LOG);
        if let Some(s) = &self.0 {
            let _ = std::fs::rename(s, DEV_LOG);
        }
    }
}

// ---------------------------------------------------------------------------
// rsyslogd on /dev/log

struct Rsyslog {
    child: Child,
    _dev_log: DevLogAside,
    dir: PathBuf,
}

impl Rsyslog {
    /// rsyslogd listening on /dev/log, writing `facility severity TAG MSG` to `fields.log`
    /// and its default file format to `messages.log`.
    fn start() -> Rsyslog {
        let dir = common::tmpdir("rsyslog");
        let dev_log = DevLogAside::take();
        let conf = format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{DEV_LOG}\")\n\
             template(name=\"fields\" type=\"string\" string=\"%syslogfacility-text% %syslogseverity-text% %syslogtag%%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{d}/fields.log\" template=\"fields\")\n\
             *.* action(type=\"omfile\" file=\"{d}/messages.log\")\n",
            d = dir.display()
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslog.err")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start rsyslogd (package rsyslog)");
        let r = Rsyslog { child, _dev_log: dev_log, dir };
        until("rsyslogd on /dev/log", || answering(DEV_LOG));
        r
    }

    fn lines(&self, file: &str) -> Vec<String> {
        common::read_lossy(&self.dir.join(file)).lines().map(str::to_string).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        kill(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn syslog_sink_speaks_glibc_format_to_rsyslog() {
    let _g = own_sockets();
    let r = Rsyslog::start();
    let base = listen_leak(Mode::NoShim, &[]);
    let l = listen_leak(Mode::Log, &[("EXECGUARD_LOG", "syslog"), ("EXECGUARD_SYSLOG_FACILITY", "local3")]);
    assert_eq!(behaviour(&l), behaviour(&base), "{}", l.run.context());
    assert_eq!(l.run.stderr, "");
    let tag = format!("execguard[{}]:", l.child);
    let mut lines = Vec::new();
    until("rsyslog's file", || {
        lines = r.lines("fields.log").into_iter().filter(|x| x.contains(&tag)).collect();
        lines.iter().any(|x| x.contains("exec_fd_leak"))
    });
    let line = lines.iter().find(|x| x.contains("exec_fd_leak")).unwrap();
    let want = format!("local3 warning {tag} {{");
    assert!(line.starts_with(&want), "facility, severity, tag with pid, the JSON as message: {line}");
    let ev: Value = serde_json::from_str(&line[want.len() - 1..]).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(ev["event"], "exec_fd_leak");
    assert_eq!(ev["host"], nodename().as_str());
    assert_eq!(ev["fds"][0]["detail"], format!("127.0.0.1:{}", l.port));

    // The daemon's own file format is a report input.
    let d = common::tmpdir("fleet-syslog");
    let messages = d.join("messages");
    until("rsyslog's messages file", || r.lines("messages.log").iter().any(|x| x.contains(&tag)));
    std::fs::copy(r.dir.join("messages.log"), &messages).unwrap();
    let rep = report_json(&[messages.as_os_str()]);
    let ours = r.lines("messages.log").iter().filter(|x| x.contains("execguard[")).count() as u64;
    assert_eq!(rep["events"], ours, "{rep:#}");
    assert!(rep["groups"].as_array().unwrap().iter().any(|g| g["what"] == "tcp_listen"), "{rep:#}");
}

// ---------------------------------------------------------------------------
// A missing, dead or stopped daemon costs the host nothing.

#[test]
fn absent_dead_or_stopped_daemon_costs_the_host_nothing() {
    let _g = own_sockets();
    let _aside = DevLogAside::take();
    assert!(!answering(JOURNAL_SOCKET), "no journald expected here: these tests start their own");
    let base = listen_leak(Mode::NoShim, &[]);
    // Absent: no socket at all.
    for sink in ["journal", "syslog"] {
        for mode in [Mode::Log, Mode::Fix] {
            let l = listen_leak(mode, &[("EXECGUARD_LOG", sink)]);
            if mode == Mode::Log {
                assert_eq!(behaviour(&l), behaviour(&base), "{sink}\n{}", l.run.context());
            }
            assert_eq!(l.run.stderr, "", "{sink}: a lost event is not the host's problem");
        }
    }
    // Dead: the socket file is there, nobody reads it (ECONNREFUSED).
    let mut j = Journald::start();
    j.kill();
    assert!(Path::new(JOURNAL_SOCKET).exists());
    let l = listen_leak(Mode::Log, &[("EXECGUARD_LOG", "journal")]);
    assert_eq!(behaviour(&l), behaviour(&base), "{}", l.run.context());
    // Stopped: the socket's queue fills (net.unix.max_dgram_qlen) and sends would
    // block; each distinct finding from 200 children must still cost no wait.
    j.spawn();
    let burst = c_prog_inline("burst", BURST);
    kill(j.pid(), libc::SIGSTOP);
    let since = now() - 1.0;
    let start = Instant::now();
    let run = run_mode(Mode::Log, &burst, &["200"], &[("EXECGUARD_LOG", "journal")], T);
    let took = start.elapsed();
    kill(j.pid(), libc::SIGCONT);
    assert!(run.status.success(), "{}", run.context());
    assert_eq!(run.field("children"), "200 failed=0", "{}", run.context());
    assert!(took < Duration::from_secs(15), "200 spawns took {took:?} against a stopped journald");
    let qlen: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen").unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let got = journal_all(since);
    if qlen < 150 {
        assert!(got < 200, "a stopped journald's queue holds {qlen}; {got} entries arrived: nothing was dropped?");
    }
}

/// One process, two select() overflows: the first while no journald listens (dropped
/// and counted), the second after one started; stdin says when.
const TWO_SELECTS: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <fcntl.h>
#include <unistd.h>
static void over(int fd) {
    unsigned long *set = calloc(64, sizeof(unsigned long));
    struct timeval tv = {0, 0};
    set[fd / 64] |= 1UL << (fd % 64);
    select(fd + 1, (fd_set *)set, NULL, NULL, &tv);
    free(set);
}
int main(void) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (dup2(fd, 1100) < 0 || dup2(fd, 1101) < 0) return 99;
    over(1100);
    printf("first\n");
    fflush(stdout);
    char c;
    if (read(0, &c, 1) != 1) return 98;
    over(1101);
    printf("second\n");
    return 0;
}
"#;

/// `burst N`: N children, each handed a distinct non-CLOEXEC pipe fd (a distinct
/// finding), each exec'ing /bin/true.
const BURST: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]), failed = 0, p[2];
    if (pipe(p)) return 99;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(p[0], 100 + i);
            execl("/bin/true", "true", (char *)0);
            _exit(127);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
    }
    printf("children=%d failed=%d\n", n, failed);
    return 0;
}
"#;

fn c_prog_inline(name: &str, src: &str) -> PathBuf {
    let d = common::root().join("target").join("c-tests");
    std::fs::create_dir_all(&d).unwrap();
    common::cc(&d, &format!("fleet-{name}"), src, &["-O1", "-w"])
}

#[test]
fn drops_show_up_on_the_next_event_that_gets_through() {
    let _g = own_sockets();
    assert!(!answering(JOURNAL_SOCKET));
    let prog = c_prog_inline("two-selects", TWO_SELECTS);
    let since = now() - 2.0;
    let mut cmd = Command::new(&prog);
    cmd.env("LD_PRELOAD", common::shim())
        .env("EXECGUARD_LOG", "journal")
        .env("EXECGUARD_MODE", "log")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // The harness's fds would be a startup_fds event: a second drop.
    common::isolate(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as u64;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    let j = Journald::start();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let st = wait_bounded(&mut child, T).expect("bounded");
    assert!(st.success());
    let entries = journal_wait(since, &[pid], 1);
    assert_eq!(entries.len(), 1, "the first event was lost: {entries:#?}");
    let e = &entries[0];
    assert_eq!(s(e, "EXECGUARD_EVENT"), "select_fd_overflow");
    assert_eq!(s(e, "EXECGUARD_DROPPED"), "1", "{e}");
    let ev = inner(e);
    assert_eq!(ev["dropped"], 1, "{ev}");
    assert_eq!(ev["nfds"], 1102, "the second select: {ev}");
    drop(j);
}

// ---------------------------------------------------------------------------
// Reports from many hosts; Prometheus.

/// listen_leak on host `name` (its own UTS namespace), logging to `log`.
fn on_host(name: &str, log: &Path) {
    let probe = c_prog("probe");
    let mut cmd = Command::new("unshare");
    // Only the server is preloaded (unshare, sh and hostname run on the old name).
    cmd.args(["--uts", "sh", "-c", "hostname \"$0\" && exec env LD_PRELOAD=\"$EG_SHIM\" \"$@\" > /dev/null", name])
        .arg(c_prog("listen_leak"))
        .arg(&probe)
        .env("EG_SHIM", common::shim())
        .env("EXECGUARD_LOG", log)
        .env("EXECGUARD_MODE", "log")
        .env_remove("LD_PRELOAD")
        .env_remove("EXECGUARD_FOLLOW");
    common::isolate(&mut cmd);
    let st = cmd.status().expect("unshare (util-linux)");
    assert!(st.success(), "listen_leak on {name}");
}

#[test]
fn report_groups_three_hosts_and_counts_for_prometheus() {
    let d = common::tmpdir("fleet-hosts");
    let hosts = ["web1", "web2", "db1"];
    let mut logs = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let log = d.join(format!("{h}.jsonl"));
        for _ in 0..=i {
            on_host(h, &log);
        }
        logs.push(log);
    }
    for (h, log) in hosts.iter().zip(&logs) {
        for ev in common::events(log) {
            assert_eq!(ev["host"], *h, "host is the node name where the event happened: {ev}");
        }
    }
    let args: Vec<&std::ffi::OsStr> = logs.iter().map(|p| p.as_os_str()).collect();
    let v = report_json(&args);
    let per: Vec<(String, u64)> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap().to_string(), h["events"].as_u64().unwrap()))
        .collect();
    let count = |h: &str| common::events(&d.join(format!("{h}.jsonl"))).len() as u64;
    assert_eq!(per, vec![("db1".into(), count("db1")), ("web1".into(), count("web1")), ("web2".into(), count("web2"))]);
    assert!(v["tree"].is_null(), "no mixed tree: pids repeat across hosts");
    for h in v["hosts"].as_array().unwrap() {
        let evs = common::events(&d.join(format!("{}.jsonl", h["host"].as_str().unwrap())));
        let pids: std::collections::BTreeSet<u64> = evs.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
        let ppids: std::collections::BTreeSet<u64> = evs.iter().map(|e| e["ppid"].as_u64().unwrap()).collect();
        let nodes = h["tree"].as_array().unwrap();
        let logged: std::collections::BTreeSet<u64> =
            nodes.iter().filter(|n| n["logged"] == true).map(|n| n["pid"].as_u64().unwrap()).collect();
        assert_eq!(logged, pids, "the tree of {} is its own processes: {h:#}", h["host"]);
        assert!(nodes.iter().all(|n| pids.contains(&n["pid"].as_u64().unwrap()) || ppids.contains(&n["pid"].as_u64().unwrap())));
    }
    let listen = v["groups"].as_array().unwrap().iter().find(|g| g["what"] == "tcp_listen").expect("tcp_listen group");
    assert_eq!(listen["hosts"], serde_json::json!(["db1", "web1", "web2"]), "{listen:#}");
    assert_eq!(listen["events"], 6);
    let text = String::from_utf8(ok(execguard().arg("report").args(&args)).stdout).unwrap();
    assert!(text.contains("from 3 hosts"), "{text}");
    assert!(text.contains("on 3 hosts: db1, web1, web2"), "{text}");
    for h in hosts {
        assert!(text.contains(&format!("Process tree on {h} ")), "{text}");
    }

    // Prometheus: promtool accepts it, and the counts are the events (1 + repeats).
    let mut folded = std::fs::read_to_string(&logs[0]).unwrap();
    let first = folded.lines().next().unwrap().to_string();
    let repeated = first.replacen("{", "{\"repeats\":41,", 1);
    folded.push_str(&repeated);
    folded.push('\n');
    std::fs::write(&logs[0], folded).unwrap();
    let o = ok(execguard().args(["report", "--format", "prometheus"]).args(&args));
    let prom = String::from_utf8(o.stdout).unwrap();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (package prometheus)");
    check.stdin.take().unwrap().write_all(prom.as_bytes()).unwrap();
    let res = check.wait_with_output().unwrap();
    assert!(
        res.status.success(),
        "promtool: {}{}\n{prom}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let sample = |event: &str, host: &str| -> u64 {
        prom.lines()
            .filter(|l| l.starts_with("execguard_events_total{") && l.contains(&format!("event=\"{event}\"")) && l.contains(&format!("host=\"{host}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let leaks = |h: &str| common::named(&common::events(&d.join(format!("{h}.jsonl"))), "exec_fd_leak").len() as u64;
    assert_eq!(sample("exec_fd_leak", "web1"), leaks("web1") + 41, "{prom}");
    assert_eq!(sample("exec_fd_leak", "web2"), leaks("web2"), "{prom}");
    assert_eq!(sample("exec_fd_leak", "db1"), 3, "{prom}");
    let exe = canon(&c_prog("listen_leak"));
    assert!(prom.contains(&format!("program=\"{exe}\"")), "{prom}");
}

// ---------------------------------------------------------------------------
// The systemd drop-in and the Debian package.

#[test]
fn systemd_analyze_verify_accepts_the_drop_in() {
    let d = common::tmpdir("fleet-units");
    std::fs::write(d.join("egtest.service"), "[Unit]\nDescription=execguard drop-in test\n[Service]\nExecStart=/bin/true\n")
        .unwrap();
    let o = ok(execguard().args(["systemd", "egtest", "--mode", "fix", "--install", "--dir"]).arg(&d));
    let conf = d.join("egtest.service.d").join("execguard.conf");
    let text = std::fs::read_to_string(&conf).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(text.contains(&format!("Environment=LD_PRELOAD={}\n", common::shim().canonicalize().unwrap().display())), "{text}");
    assert!(text.contains("Environment=EXECGUARD_LOG=journal\n") && text.contains("Environment=EXECGUARD_MODE=fix\n"), "{text}");
    assert!(text.contains("Environment=EXECGUARD_FOLLOW=1\n"), "{text}");
    let printed = ok(execguard().args(["systemd", "egtest", "--mode", "fix"]));
    assert_eq!(String::from_utf8_lossy(&printed.stdout), text, "printed = installed");
    let verify = |d: &Path| {
        Command::new("systemd-analyze")
            .args(["verify", "egtest.service"])
            .env("SYSTEMD_UNIT_PATH", format!("{}:", d.display()))
            .env("SYSTEMD_LOG_LEVEL", "info")
            .output()
            .unwrap()
    };
    let v = verify(&d);
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(v.status.success() && !err.contains("execguard.conf"), "systemd-analyze verify: {err}");
    // The check can fail: a broken drop-in in the same place is refused.
    std::fs::write(&conf, format!("{text}ExecStart=/bin/false\n")).unwrap();
    let v = verify(&d);
    assert!(!v.status.success(), "verify did not read the drop-in: {}", String::from_utf8_lossy(&v.stderr));
}

/// Removes the package on the way out, whatever happened.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-r", "execguard"]).stdout(Stdio::null()).status();
    }
}

#[test]
fn deb_installs_runs_from_usr_bin_and_removes() {
    let installed_before = Command::new("dpkg-query").args(["-W", "-f=${Status}", "execguard"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&installed_before.stdout).contains("install ok installed"),
        "the execguard package is installed on this machine: this test installs and removes its own"
    );
    let o = ok(Command::new(common::root().join("scripts/package")).current_dir(common::root()));
    let deb = common::root().join(String::from_utf8_lossy(&o.stdout).trim().lines().last().unwrap());
    let contents = String::from_utf8(ok(Command::new("dpkg-deb").arg("-c").arg(&deb)).stdout).unwrap();
    let multiarch = format!("./usr/lib/{}-linux-gnu/libexecguard.so", std::env::consts::ARCH);
    for f in ["./usr/bin/execguard", multiarch.as_str(), "./usr/share/doc/execguard/README.md", "./usr/share/doc/execguard/deploy.md"] {
        assert!(contents.lines().any(|l| l.ends_with(f)), "{f} not in the package:\n{contents}");
    }
    let _guard = Installed;
    ok(Command::new("dpkg").arg("-i").arg(&deb).stdout(Stdio::null()));
    // Far from the build tree, nothing pointing into it.
    let away = std::env::temp_dir().join(format!("execguard-deb-{}", std::process::id()));
    std::fs::create_dir_all(&away).unwrap();
    let from_usr = |args: &[&str]| {
        let mut c = Command::new("/usr/bin/execguard");
        c.args(args).current_dir(&away).env_remove("EXECGUARD_LIB").env_remove("LD_PRELOAD").env("NO_COLOR", "1");
        common::isolate(&mut c);
        c.output().unwrap()
    };
    let demo = from_usr(&["demo"]);
    assert!(demo.status.success(), "demo from /usr/bin: {}\n{}", String::from_utf8_lossy(&demo.stdout), String::from_utf8_lossy(&demo.stderr));
    let leak = c_prog("listen_leak");
    let probe = c_prog("probe");
    let log = away.join("run.jsonl");
    let run = from_usr(&["run", "--log", log.to_str().unwrap(), "--", leak.to_str().unwrap(), probe.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "run from /usr/bin: {err}");
    assert!(err.contains("SUMMARY: 1 warning (1 exec_fd_leak)"), "{err}");
    let unit = from_usr(&["systemd", "nginx"]);
    assert!(String::from_utf8_lossy(&unit.stdout).contains(&format!("Environment=LD_PRELOAD=/usr/lib/{}-linux-gnu/libexecguard.so\n", std::env::consts::ARCH)));
    let _ = std::fs::remove_dir_all(&away);
    ok(Command::new("dpkg").args(["-r", "execguard"]).stdout(Stdio::null()));
    assert!(!Path::new("/usr/bin/execguard").exists() && !Path::new(&multiarch[1..]).exists(), "dpkg -r left files");
}

/// Some syslog daemons (syslog-ng's `unix-stream`) listen on a stream socket: glibc
/// then sends each message over a connection, NUL-terminated; so does the shim.
#[test]
fn syslog_sink_falls_back_to_a_stream_dev_log() {
    use std::io::Read;
    let _g = own_sockets();
    let _aside = DevLogAside::take();
    let listener = std::os::unix::net::UnixListener::bind(DEV_LOG).unwrap();
    let l = listen_leak(Mode::Log, &[("EXECGUARD_LOG", "syslog"), ("EXECGUARD_SYSLOG_FACILITY", "daemon")]);
    listener.set_nonblocking(true).unwrap();
    let mut all = Vec::new();
    while let Ok((mut conn, _)) = listener.accept() {
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut msg = Vec::new();
        conn.read_to_end(&mut msg).unwrap();
        all.push(msg);
    }
    let want = format!("execguard[{}]: {{", l.child);
    let msg = all
        .iter()
        .find(|m| String::from_utf8_lossy(m).contains(&want))
        .unwrap_or_else(|| panic!("no message from the exec: {:?}", all.iter().map(|m| String::from_utf8_lossy(m)).collect::<Vec<_>>()));
    assert_eq!(msg.last(), Some(&0), "NUL-terminated");
    let text = String::from_utf8_lossy(&msg[..msg.len() - 1]).into_owned();
    assert!(text.starts_with("<28>"), "daemon.warning is <28>: {text}"); // 3 * 8 + 4
    let ev: Value = serde_json::from_str(&text[text.find(&want).unwrap() + want.len() - 1..]).unwrap();
    assert_eq!(ev["event"], "exec_fd_leak");
}

/// On a systemd machine /dev/log is journald's: the syslog sink's lines must parse
/// there too (identifier, pid, facility, priority), and `report --journal` reads the
/// event back out of MESSAGE.
#[test]
fn syslog_sink_through_journald_dev_log() {
    let _g = own_sockets();
    let j = Journald::start();
    let _aside = DevLogAside::take();
    std::os::unix::fs::symlink("/run/systemd/journal/dev-log", DEV_LOG).unwrap();
    let since = now() - 2.0;
    let l = listen_leak(Mode::Log, &[("EXECGUARD_LOG", "syslog"), ("EXECGUARD_SYSLOG_FACILITY", "local3")]);
    let entries = journal_wait(since, &[l.child], 1);
    let e = entries.iter().find(|e| s(e, "MESSAGE").contains("exec_fd_leak")).unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(s(e, "_TRANSPORT"), "syslog");
    assert_eq!(s(e, "SYSLOG_IDENTIFIER"), "execguard");
    assert_eq!(s(e, "SYSLOG_PID"), l.child.to_string());
    assert_eq!(s(e, "SYSLOG_FACILITY"), "19", "local3");
    assert_eq!(s(e, "PRIORITY"), "4");
    let ev: Value = serde_json::from_str(s(e, "MESSAGE")).unwrap();
    assert_eq!(ev["fds"][0]["detail"], format!("127.0.0.1:{}", l.port));
    let since_arg = format!("--since=@{}", since as u64);
    let rep = report_json(&["--journal".as_ref(), "--".as_ref(), since_arg.as_ref()]);
    let leaks = rep["by_event"]["exec_fd_leak"].as_u64().unwrap_or(0);
    assert!(leaks >= 1, "report --journal reads MESSAGE of syslog entries: {rep:#}");
    drop(j);
}

/// A privileged process (AT_SECURE: here a set-user-ID program run by `nobody`) never
/// opens a path from its environment, but the fixed system sockets stay usable. The
/// loader preloads into such a process only set-user-ID libraries from the standard
/// directories: a copy of the shim is put there for the test, and removed.
#[test]
fn at_secure_uses_the_journal_but_no_path_from_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    let _g = own_sockets();
    let _j = Journald::start();
    let libdir = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    let name = format!("libexecguard-fleet-test-{}.so", std::process::id());
    let lib = PathBuf::from(&libdir).join(&name);
    struct Remove(Vec<PathBuf>);
    impl Drop for Remove {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("execguard-fleet-secure-{}", std::process::id()));
    let _remove = Remove(vec![lib.clone(), dir.clone()]);
    std::fs::copy(common::shim(), &lib).unwrap();
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = dir.join("listen_leak");
    let probe = dir.join("probe");
    std::fs::copy(c_prog("listen_leak"), &server).unwrap();
    std::fs::copy(c_prog("probe"), &probe).unwrap();
    std::fs::set_permissions(&server, std::fs::Permissions::from_mode(0o4755)).unwrap(); // root-owned: set-user-ID root
    let run = |log: &str| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "env"])
            .arg(format!("LD_PRELOAD={name}"))
            .arg(format!("EXECGUARD_LOG={log}"))
            .arg("EXECGUARD_MODE=log")
            .arg(&server)
            .arg(&probe)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null());
        common::isolate(&mut c);
        let o = c.output().expect("setpriv (util-linux)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    // A path: not opened (not even created); the event goes to stderr instead.
    let path = dir.join("events.jsonl");
    let o = run(path.to_str().unwrap());
    assert!(!path.exists(), "a privileged process opened a path from its environment");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning: exec_fd_leak: ") && err.contains("tcp_listen 127.0.0.1:"), "{err}");
    // The journal: a fixed socket, so the event is there.
    let since = now() - 2.0;
    let o = run("journal");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "to the journal, not stderr");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let child: u64 = out.lines().find_map(|l| l.strip_prefix("child_pid=")).expect("child_pid").parse().unwrap();
    let entries = journal_wait(since, &[child], 1);
    let e = entries.iter().find(|e| e["EXECGUARD_EVENT"] == "exec_fd_leak").unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(s(e, "_UID"), "65534", "the unprivileged caller of a set-user-ID program: {e}");
    assert_eq!(inner(e)["target"], probe.to_str().unwrap());
}

#[test]
fn journal_sink_replays_a_repeated_finding_whole() {
    // The exit flush's line of a repeated finding: EXECGUARD_JSON is the first line's
    // body with the count, and MESSAGE still names the target (its body is kept in
    // the JSON form only).
    let _g = own_sockets();
    let j = Journald::start();
    let since = now() - 2.0;
    let run = run_mode(Mode::Log, &c_prog("repeat_spawns"), &["forkexec", "20"], &[("EXECGUARD_LOG", "journal")], T);
    assert!(run.status.success(), "{}", run.context());
    let mut leaks = Vec::new();
    until("the first line and the exit line", || {
        leaks = journal(since, &[])
            .into_iter()
            .filter(|e| e["EXECGUARD_EVENT"] == "exec_fd_leak" && inner(e)["exe"] == canon(&c_prog("repeat_spawns")).as_str())
            .collect();
        leaks.len() >= 2
    });
    assert_eq!(leaks.len(), 2, "{leaks:#?}");
    let (first, last) = (inner(&leaks[0]), inner(&leaks[1]));
    assert_eq!(last["repeats"], 18, "{last}");
    assert_eq!(s(&leaks[1], "EXECGUARD_REPEATS"), "18");
    assert_eq!(last["fds"], first["fds"], "{last}");
    assert_eq!(last["finding"], first["finding"], "{last}");
    assert_eq!(last["pid"], run.pid, "the owner's exit flush: {last}");
    let msg = s(&leaks[1], "MESSAGE");
    assert_eq!(msg, "warning: exec_fd_leak: /bin/true (repeated 18\u{d7})", "{msg}");
    drop(j);
}
