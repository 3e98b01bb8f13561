//! Issue 7: the shim never hurts its host — privileged processes, log file safety,
//! hostile input, scale, degraded environments, concurrent logs, its own fds and
//! memory. The hosts are c-tests/rel_driver.c and c-tests/rel_select.c; figures are
//! in docs/reliability.md. Root-only parts (setuid, mounts, namespaces) skip with a
//! printed reason when not root. Long variants are `#[ignore]`d (see the docs).

mod common;

use common::{c_prog, named, run_mode, shim, Mode, Run};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn driver() -> PathBuf {
    c_prog("rel_driver")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (setuid files, mounts, namespaces)");
            return;
        }
    };
}

/// The warning lines the shim wrote to stderr about an unusable log, by pid.
fn log_warnings(stderr: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in stderr.lines().filter(|l| l.contains("the log") && l.contains("events of this process are lost")) {
        let pid = l.split(['[', ']']).nth(1).unwrap_or("?").to_string();
        *m.entry(pid).or_insert(0) += 1;
    }
    m
}

/// The output of a command run outside `common::run_mode` (setpriv, unshare, umask).
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run `cmd` in its own process group with fds >= 3 of the harness closed at exec,
/// output through files, killed after `timeout`.
fn bounded(mut cmd: Command, timeout: Duration, umask: Option<u32>) -> Out {
    let dir = common::tmpdir("bounded");
    let (so, se) = (dir.join("stdout"), dir.join("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap())
        .process_group(0);
    common::isolate(&mut cmd);
    if let Some(m) = umask {
        // SAFETY: umask(2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(m as libc::mode_t);
                Ok(())
            })
        };
    }
    let mut child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the group this test created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{cmd:?} hung; killed after {timeout:?}\n{}", common::read_lossy(&se));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = Out { status, stdout: common::read_lossy(&so), stderr: common::read_lossy(&se) };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// The driver's environment for a run outside run_mode.
fn shim_env(cmd: &mut Command, mode: &str, log: Option<&Path>) {
    for v in ["LD_PRELOAD", "EXECGUARD_MODE", "EXECGUARD_LOG", "EXECGUARD_KEEP_FDS", "EXECGUARD_FOLLOW"] {
        cmd.env_remove(v);
    }
    cmd.env("LD_PRELOAD", shim()).env("EXECGUARD_MODE", mode);
    // Every user of this is a test of the log writer (appends, full disks, many
    // writers): each occurrence must be a line of its own, not a `repeats` count.
    cmd.env("EXECGUARD_REPEAT_INTERVAL", "0");
    if let Some(l) = log {
        cmd.env("EXECGUARD_LOG", l);
    }
}

fn all_lines_json(log: &Path) -> Vec<Value> {
    let raw = std::fs::read(log).unwrap_or_default();
    if !raw.is_empty() {
        assert!(raw.ends_with(b"\n"), "log does not end with a whole line");
    }
    for l in common::log_lines(log) {
        assert!(l.len() < 4096, "line of {} bytes", l.len());
    }
    common::events(log)
}

/// Removes a path (file or tree) on drop, also when the test panics.
struct Cleanup(Vec<PathBuf>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

/// Unmounts on drop, also when the test panics.
struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// ---------------------------------------------------------------------------
// 1. Privileged processes

const TEST_USER: &str = "egrel-test";

/// An unprivileged user for the duration of a test; deleted again if we made it.
struct TestUser {
    uid: u32,
    created: bool,
}

impl TestUser {
    fn get() -> TestUser {
        let id = || Command::new("id").args(["-u", TEST_USER]).output().ok().filter(|o| o.status.success());
        let mut created = false;
        if id().is_none() {
            let st = Command::new("useradd").args(["-M", "-s", "/usr/sbin/nologin", TEST_USER]).status().unwrap();
            assert!(st.success() || id().is_some(), "useradd failed");
            created = true;
        }
        let uid = String::from_utf8_lossy(&id().expect("id").stdout).trim().parse().unwrap();
        TestUser { uid, created }
    }

    fn run(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", TEST_USER, "--regid", TEST_USER, "--clear-groups", "--"]);
        for a in args {
            c.arg(a);
        }
        c
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if self.created {
            let _ = Command::new("userdel").arg(TEST_USER).status();
        }
    }
}

/// A world-readable scratch directory outside /work (the test user must reach it).
fn public_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("execguard-rel-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// glibc loads an LD_PRELOAD entry into a setuid program only by a bare name found
/// in a trusted system directory, and only if that file is itself setuid.
fn trusted_libdir() -> Option<PathBuf> {
    ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("libc.so.6").exists())
}

#[test]
fn privileged_setuid_process_opens_no_path_from_env() {
    need_root!();
    let Some(libdir) = trusted_libdir() else {
        eprintln!("skipped: no trusted library directory with libc.so.6");
        return;
    };
    let user = TestUser::get();
    let dir = public_dir("suid");
    let libname = format!("libexecguard-reltest-{}.so", std::process::id());
    let lib = libdir.join(&libname);
    let _cleanup = Cleanup(vec![dir.clone(), lib.clone()]);
    std::fs::copy(shim(), &lib).unwrap();
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let suid = dir.join("rel_driver_suid");
    let plain = dir.join("rel_driver_plain");
    for p in [&suid, &plain] {
        std::fs::copy(driver(), p).unwrap();
    }
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = logs.join("log.jsonl");
    let existing = logs.join("existing.jsonl");
    std::fs::write(&existing, "keep me\n").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o666)).unwrap();

    let go = |prog: &Path, log: &Path| {
        let mut c = user.run(&[&"env", &format!("LD_PRELOAD={libname}"), &format!("EXECGUARD_LOG={}", log.display()), &prog, &"secure"]);
        c.env_remove("LD_PRELOAD").env_remove("EXECGUARD_LOG").env_remove("EXECGUARD_MODE");
        bounded(c, T, None)
    };

    // The setuid run: AT_SECURE, shim loaded (its event is on stderr), no log file.
    let out = go(&suid, &log);
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(&format!("at_secure=1 ruid={} euid=0", user.uid)), "{}", out.stdout);
    assert!(out.stdout.contains("child=0"), "{}", out.stdout);
    assert!(
        out.stderr.lines().any(|l| l.starts_with("execguard[") && l.contains("exec_fd_leak") && l.contains("/bin/true")),
        "the shim was not loaded into the setuid program, or did not report to stderr:\n{}",
        out.stderr
    );
    assert!(!log.exists(), "a setuid process created EXECGUARD_LOG");
    assert!(!out.stderr.contains("cannot open the log"), "it even tried to open it: {}", out.stderr);
    // setgid and file capabilities make AT_SECURE too: same rule.
    let sgid = dir.join("rel_driver_sgid");
    std::fs::copy(driver(), &sgid).unwrap();
    std::fs::set_permissions(&sgid, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let mut variants = vec![("setgid", sgid)];
    let fcap = dir.join("rel_driver_fcap");
    std::fs::copy(driver(), &fcap).unwrap();
    std::fs::set_permissions(&fcap, std::fs::Permissions::from_mode(0o755)).unwrap();
    match Command::new("setcap").arg("cap_net_bind_service+ep").arg(&fcap).status() {
        Ok(st) if st.success() => variants.push(("file capability", fcap)),
        _ => eprintln!("file-capability variant skipped: setcap unavailable or refused"),
    }
    for (what, prog) in &variants {
        let out = go(prog, &log);
        assert!(out.status.success(), "{what}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("at_secure=1") && out.stdout.contains("child=0"), "{what}: {}", out.stdout);
        assert!(out.stderr.contains("exec_fd_leak"), "{what}: shim not loaded or silent: {}", out.stderr);
        assert!(!log.exists(), "{what}: EXECGUARD_LOG was created");
    }
    // A log path that exists is not written either.
    let out = go(&suid, &existing);
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me\n");

    // Control: the same program without the setuid bit does write the log (so the
    // absence above is AT_SECURE's doing), created 0600 and owned by the user.
    let out = go(&plain, &log);
    assert!(out.status.success());
    assert!(out.stdout.contains("at_secure=0"), "{}", out.stdout);
    let evs = all_lines_json(&log);
    assert_eq!(named(&evs, "exec_fd_leak").len(), 1, "{evs:?}");
    let md = std::fs::metadata(&log).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!(md.uid(), user.uid);

    // Setuid with stderr closed: events go nowhere, the host is unaffected.
    let mut c = user.run(&[&"env", &format!("LD_PRELOAD={libname}"), &format!("EXECGUARD_LOG={}", log.display()), &suid, &"secure"]);
    c.env_remove("LD_PRELOAD");
    // SAFETY: close(2) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::close(2);
            Ok(())
        })
    };
    let out = bounded(c, T, None);
    assert!(out.status.success());
    assert!(out.stdout.contains("at_secure=1") && out.stdout.contains("child=0"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------
// 2. Log file safety

/// The host's view without the shim: what every degraded run must reproduce.
fn baseline(args: &[&str]) -> Run {
    let r = run_mode(Mode::NoShim, &driver(), args, &[], T);
    assert_eq!(r.status.code(), Some(7), "{}", r.context());
    r
}

#[test]
fn log_appends_never_truncates_and_creates_0600() {
    let dir = common::tmpdir("append");
    let _c = Cleanup(vec![dir.clone()]);
    let log = dir.join("log.jsonl");
    let pre = "{\"pre\":\"existing line, not ours\"}\n";
    std::fs::write(&log, pre).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let base = baseline(&["events", "3", "fork"]);
    for round in 1..=2 {
        let mut c = Command::new(driver());
        c.args(["events", "3", "fork"]);
        shim_env(&mut c, "log", Some(&log));
        let out = bounded(c, T, Some(0));
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(out.stdout, base.stdout);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with(pre), "the pre-existing content is gone");
        let evs = all_lines_json(&log);
        assert_eq!(named(&evs, "select_fd_overflow").len(), 3 * round);
        assert_eq!(named(&evs, "exec_fd_leak").len(), round);
        // An existing file keeps its mode (no chmod).
        assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o7777, 0o644);
    }
    // A new log under umask 000 is still 0600.
    let fresh = dir.join("fresh.jsonl");
    let mut c = Command::new(driver());
    c.args(["events", "1"]);
    shim_env(&mut c, "log", Some(&fresh));
    let out = bounded(c, T, Some(0));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(all_lines_json(&fresh).len(), 1);
}

#[test]
fn log_symlink_is_not_followed() {
    let dir = common::tmpdir("symlink");
    let _c = Cleanup(vec![dir.clone()]);
    // A world-writable sticky directory, as /tmp, where someone planted links.
    let pub_dir = dir.join("pub");
    std::fs::create_dir(&pub_dir).unwrap();
    std::fs::set_permissions(&pub_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let before = std::fs::metadata(&victim).unwrap();
    let to_victim = pub_dir.join("log.jsonl");
    std::os::unix::fs::symlink(&victim, &to_victim).unwrap();
    let dangling = pub_dir.join("dangling.jsonl");
    let would_create = dir.join("created-through-link");
    std::os::unix::fs::symlink(&would_create, &dangling).unwrap();
    let base = baseline(&["events", "5"]);
    for link in [&to_victim, &dangling] {
        let r = run_mode(Mode::Log, &driver(), &["events", "5"], &[("EXECGUARD_LOG", link.to_str().unwrap())], T);
        assert_eq!(r.status.code(), Some(7), "{}", r.context());
        assert_eq!(r.stdout, base.stdout);
        let w = log_warnings(&r.stderr);
        assert_eq!(w.len(), 1, "one process, one warning: {}", r.stderr);
        assert!(w.values().all(|&n| n == 1), "{}", r.stderr);
        assert!(r.stderr.contains("ELOOP"), "{}", r.stderr);
        assert!(std::fs::symlink_metadata(link).unwrap().file_type().is_symlink());
    }
    let after = std::fs::metadata(&victim).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!((after.mtime(), after.mtime_nsec(), after.mode()), (before.mtime(), before.mtime_nsec(), before.mode()));
    assert!(!would_create.exists(), "a dangling link was followed and its target created");
}

/// `path` cannot be a log: the host's output and status are the baseline's, each
/// process that tried warns exactly once, naming `errno`.
fn check_unusable(path: &str, errnos: &[&str]) {
    let base = baseline(&["events", "5", "fork"]);
    let r = run_mode(Mode::Log, &driver(), &["events", "5", "fork"], &[("EXECGUARD_LOG", path)], T);
    assert_eq!(r.status.code(), Some(7), "{}", r.context());
    assert_eq!(r.stdout, base.stdout, "{path}");
    let w = log_warnings(&r.stderr);
    assert!(!w.is_empty() && w.values().all(|&n| n == 1), "{path}: {}", r.stderr);
    assert!(w.contains_key(&r.pid.to_string()), "{}", r.stderr);
    assert!(errnos.iter().any(|e| r.stderr.contains(e)), "{path}: want one of {errnos:?}: {}", r.stderr);
    // Nothing but the warnings reaches stderr: no JSON, no human event line.
    for l in r.stderr.lines() {
        assert!(l.contains("events of this process are lost"), "unexpected stderr line {l:?}");
    }
}

#[test]
fn log_unwritable_paths_lose_events_not_work() {
    let dir = common::tmpdir("unwritable");
    let _c = Cleanup(vec![dir.clone()]);
    // root may open it for writing; the write then fails (EIO): lost all the same.
    check_unusable("/proc/version", &["EACCES", "EIO"]);
    check_unusable(dir.to_str().unwrap(), &["EISDIR"]);
    check_unusable(dir.join("no/such/dir/log").to_str().unwrap(), &["ENOENT"]);
    // A socket is not a log file either (only regular, FIFO and char devices are).
    let sock = dir.join("sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    check_unusable(sock.to_str().unwrap(), &["ENXIO"]);
}

#[test]
fn log_in_a_directory_the_user_cannot_write() {
    need_root!();
    let user = TestUser::get();
    let dir = public_dir("noperm");
    let _c = Cleanup(vec![dir.clone()]);
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = dir.join("rel_driver");
    std::fs::copy(driver(), &prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lib = dir.join("libexecguard.so");
    std::fs::copy(shim(), &lib).unwrap();
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = locked.join("log.jsonl");
    let mut c = user.run(&[&"env", &format!("LD_PRELOAD={}", lib.display()), &format!("EXECGUARD_LOG={}", log.display()), &prog, &"events", &"4", &"fork"]);
    c.env_remove("LD_PRELOAD").env_remove("EXECGUARD_LOG").env_remove("EXECGUARD_MODE");
    let out = bounded(c, T, None);
    let base = baseline(&["events", "4", "fork"]);
    assert_eq!(out.status.code(), Some(7), "{}", out.stderr);
    assert_eq!(out.stdout, base.stdout);
    let w = log_warnings(&out.stderr);
    assert!(!w.is_empty() && w.values().all(|&n| n == 1), "{}", out.stderr);
    assert!(out.stderr.contains("EACCES"), "{}", out.stderr);
    assert!(!log.exists());
}

/// A 16 KiB tmpfs for the test's log, unmounted (lazily) even if the test panics.
fn tiny_disk(tag: &str) -> Option<(PathBuf, Unmount, Cleanup)> {
    let dir = common::tmpdir(tag);
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs"]).arg(&mnt).status().unwrap();
    if !st.success() {
        eprintln!("skipped: cannot mount a tmpfs here");
        return None;
    }
    Some((mnt.clone(), Unmount(mnt), Cleanup(vec![dir])))
}

/// 60 fork+execs, 20 leaked fds each (about 1 KiB per line), into a 16 KiB disk.
fn fill_up(log: &Path) -> Run {
    // Each occurrence its own line: the point is to fill the disk.
    let env = [("EXECGUARD_LOG", log.to_str().unwrap()), ("EXECGUARD_REPEAT_INTERVAL", "0")];
    let r = run_mode(Mode::Log, &driver(), &["forkloop", "60", "20"], &env, T);
    assert!(r.status.success(), "{}", r.context_short());
    assert_eq!(r.stdout, "done=60 failed=0\n");
    let written = std::fs::metadata(log).unwrap().len();
    assert!(written > 8 * 1024, "the disk did not fill up ({written} bytes)");
    let w = log_warnings(&r.stderr);
    assert!(!w.is_empty(), "no warning about the full disk: {}", r.stderr);
    assert!(w.values().all(|&n| n == 1) && r.stderr.contains("ENOSPC"), "{}", r.stderr);
    r
}

#[test]
fn log_on_a_full_disk_loses_events_not_work() {
    need_root!();
    let Some((mnt, _u, _c)) = tiny_disk("fulldisk") else { return };
    let log = mnt.join("log.jsonl");
    // Filling up while events arrive: the host does all its work.
    fill_up(&log);
    let written = std::fs::metadata(&log).unwrap().len();
    // Completely full: the host still does all its work, the log takes no byte.
    let filler = mnt.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    use std::io::Write;
    while f.write_all(&[0u8; 512]).is_ok() {}
    drop(f);
    let base = baseline(&["events", "5", "fork"]);
    let r = run_mode(Mode::Log, &driver(), &["events", "5", "fork"], &[("EXECGUARD_LOG", log.to_str().unwrap())], T);
    assert_eq!(r.status.code(), Some(7), "{}", r.context_short());
    assert_eq!(r.stdout, base.stdout);
    let w = log_warnings(&r.stderr);
    assert!(!w.is_empty() && w.values().all(|&n| n == 1), "{}", r.stderr);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), written, "a full disk still took bytes");
}

/// Every line of a log is a whole JSON object and the file ends with a newline.
fn no_torn_line(log: &Path) {
    let raw = std::fs::read(log).unwrap();
    let torn: Vec<_> = raw.split(|&b| b == b'\n').filter(|l| !l.is_empty() && serde_json::from_slice::<Value>(l).is_err()).collect();
    assert!(torn.is_empty(), "{} torn line(s), e.g. one ending {:?}", torn.len(), torn.first().map(|l| String::from_utf8_lossy(&l[l.len().saturating_sub(80)..]).into_owned()));
    assert!(raw.is_empty() || raw.ends_with(b"\n"), "the log ends in the middle of a line");
}

#[test]
fn log_on_a_filling_disk_has_no_torn_line() {
    need_root!();
    let Some((mnt, _u, _c)) = tiny_disk("torn") else { return };
    let log = mnt.join("log.jsonl");
    fill_up(&log);
    no_torn_line(&log);
}

#[test]
#[ignore = "race probe (slow): emit.rs room_for() checks free space, then writes; two writers can both see room. Not observed: 10 rounds passed at 2338d2d"]
fn log_on_a_disk_filled_by_4_writers_has_no_torn_line() {
    need_root!();
    for round in 0..10 {
        let Some((mnt, _u, _c)) = tiny_disk("torn4") else { return };
        let log = mnt.join("log.jsonl");
        let kids: Vec<_> = (0..4)
            .map(|_| {
                let mut c = Command::new(driver());
                c.args(["forkloop", "40", "20"]).stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null());
                shim_env(&mut c, "log", Some(&log));
                c.spawn().unwrap()
            })
            .collect();
        for mut k in kids {
            assert!(k.wait().unwrap().success());
        }
        eprintln!("round {round}: {} bytes", std::fs::metadata(&log).unwrap().len());
        no_torn_line(&log);
    }
}

// ---------------------------------------------------------------------------
// 3. Hostile input

fn select_run(mode: Mode, seed: u64, iters: u32) -> Run {
    let r = run_mode(mode, &c_prog("rel_select"), &[&seed.to_string(), &iters.to_string()], &[], T);
    assert!(r.status.success(), "select fuzz crashed (seed {seed}):\n{}", r.context_short());
    r
}

#[test]
fn select_with_any_nfds_and_garbage_sets_reads_only_nfds() {
    let iters = 20_000;
    for seed in [1u64, 0x9e37_79b9, 424_242] {
        let base = select_run(Mode::NoShim, seed, iters);
        for mode in [Mode::Log, Mode::Fix] {
            let r = select_run(mode, seed, iters);
            assert_eq!(r.stdout, base.stdout, "results, errnos or returned sets differ under the shim (seed {seed})");
            let evs = all_lines_json(&r.log);
            let over = named(&evs, "select_fd_overflow");
            let calls: u64 = r.stdout.split("overflow_calls=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            // Rate limit: the first 8, then powers of two; of those, identical ones
            // (same func and fds) are one finding, written once and then counted.
            let want = (1..=calls).filter(|c| *c <= 8 || c.is_power_of_two()).count();
            assert_eq!(common::occurrences(over.iter().copied()), want as u64, "seed {seed}");
            for ev in over {
                let nfds = ev["nfds"].as_i64().unwrap();
                assert!(nfds > 1024 && nfds <= 100_000, "{ev}");
                for fd in ev["fds"].as_array().unwrap() {
                    let fd = fd.as_i64().unwrap();
                    assert!((1024..nfds).contains(&fd), "fd {fd} outside [1024, {nfds}): {ev}");
                }
            }
        }
    }
}

/// `select(nfds)` on plain 1024-bit sets (128 bytes, then a guard page) with only
/// fd 1 set: the kernel caps nfds at its fd table, so without the shim this works
/// whatever nfds says. Under the shim: same result, no crash, and it finishes.
fn select_cap(nfds: &str, bound: Duration) -> (Run, Run) {
    let base = run_mode(Mode::NoShim, &c_prog("rel_select"), &["cap", nfds], &[], T);
    assert!(base.status.success(), "{}", base.context_short());
    let t0 = Instant::now();
    let r = run_mode(Mode::Log, &c_prog("rel_select"), &["cap", nfds], &[], bound);
    assert!(r.status.success(), "select({nfds}) on 1024-bit sets crashed under the shim:\n{}", r.context_short());
    assert_eq!(r.stdout, base.stdout);
    eprintln!("select({nfds}) on 1024-bit sets under the shim: {:?}", t0.elapsed());
    (base, r)
}

#[test]
fn select_past_the_callers_sets_does_not_crash() {
    for nfds in ["1025", "1100", "20000", "1048576"] {
        select_cap(nfds, T);
    }
}

#[test]
fn select_int_max_stays_cheap_and_reports_only_what_the_kernel_reads() {
    for nfds in ["1048576", "2147483647"] {
        let (_, r) = select_cap(nfds, Duration::from_secs(10));
        let evs = all_lines_json(&r.log);
        for ev in named(&evs, "select_fd_overflow") {
            let fds = ev["fds"].as_array().unwrap();
            assert!(fds.is_empty(), "only fd 1 is set and the kernel reads no further than its fd table, yet {} fds (+{} omitted) are reported, e.g. {:?}", fds.len(), ev["fds_omitted"], &fds[..fds.len().min(5)]);
        }
    }
}

/// xorshift, for the report fuzz (reproducible from the printed seed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn valid_event(rng: &mut Rng) -> String {
    let pid = 100 + rng.below(50);
    let ev = match rng.below(4) {
        0 => serde_json::json!({"v":1,"ts":1.5,"event":"exec_fd_leak","severity":"warn","action":"logged","pid":pid,"ppid":1,"tid":pid,"exe":"/usr/sbin/nginx","mode":"log","via":"system","target":"/bin/sh","fds":[{"fd":7,"kind":"tcp_listen","detail":"0.0.0.0:80"}],"fds_total":1,"fds_omitted":0,"kinds":{"tcp_listen":1}}),
        1 => serde_json::json!({"v":1,"ts":2.5,"event":"startup_sigmask","severity":"warn","action":"fixed","pid":pid,"ppid":1,"tid":pid,"exe":"/usr/bin/hping3","mode":"fix","signals":["SIGALRM"],"parent_exe":"/usr/bin/uwsgi"}),
        2 => serde_json::json!({"v":1,"ts":3.0,"event":"select_fd_overflow","severity":"warn","action":"logged","pid":pid,"ppid":1,"tid":pid,"exe":"/x\u{fffd}\n\"y","mode":"log","func":"select","nfds":2000,"fds":[1500],"fds_omitted":0,"count":1}),
        _ => serde_json::json!({"event":"fork_threads","pid":pid}),
    };
    ev.to_string()
}

#[test]
fn report_reader_survives_any_bytes() {
    let dir = common::tmpdir("reportfuzz");
    let _c = Cleanup(vec![dir.clone()]);
    let seed = 0x5eed_0007u64;
    let mut rng = Rng(seed);
    let (files, mut lines_total, mut bytes_total) = (150, 0u64, 0u64);
    for i in 0..files {
        let mut data: Vec<u8> = Vec::new();
        let (mut want_events, mut want_skipped) = (0u64, 0u64);
        let n = rng.below(120);
        for _ in 0..n {
            // (bytes, is one of our events)
            let (line, event): (Vec<u8>, bool) = match rng.below(10) {
                0..=2 => (valid_event(&mut rng).into_bytes(), true),
                3 => {
                    // Truncated: a crash or `head -c` cut an event.
                    let e = valid_event(&mut rng);
                    let cut = 1 + rng.below(e.len() as u64 - 1) as usize;
                    (e.as_bytes()[..cut].to_vec(), false)
                }
                4 => ((0..rng.below(300)).map(|_| rng.next() as u8).filter(|&b| b != b'\n').collect(), false),
                5 => ((0..rng.below(300)).map(|_| b"{}[]\":,0123 \\e\x00\xff\xc3\r"[rng.below(18) as usize]).collect(), false),
                6 => {
                    let foreign: [&[u8]; 6] = [b"{\"foo\":1}", b"[1,2,3]", b"\"event\"", b"{\"event\":\"x\",\"pid\":\"1\"}", b"{\"event\":7,\"pid\":1}", b"null"];
                    (foreign[rng.below(6) as usize].to_vec(), false)
                }
                7 if rng.below(8) == 0 => {
                    // Huge: past the reader's 1 MiB cap (oversized), or just long.
                    let len = if rng.below(2) == 0 { (1 << 20) + 1 + rng.below(1 << 20) } else { 5000 + rng.below(60_000) };
                    let mut v = vec![b'{'; 1];
                    v.extend((0..len).map(|_| b'a' + (rng.next() % 26) as u8));
                    (v, false)
                }
                _ => (Vec::new(), false),
            };
            let blank = String::from_utf8_lossy(&line).trim().is_empty();
            if event {
                want_events += 1;
            } else if !blank {
                want_skipped += 1;
            }
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        if rng.below(3) == 0 && !data.is_empty() {
            data.pop(); // no newline at the end
        }
        lines_total += n;
        bytes_total += data.len() as u64;
        let f = dir.join(format!("f{i}.jsonl"));
        std::fs::write(&f, &data).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_execguard"))
            .arg("report")
            .arg(&f)
            .arg("--json")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "report failed on {} (seed {seed}): {}", f.display(), String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report --json output is not JSON ({e}) for {}", f.display()));
        assert_eq!(v["events"].as_u64(), Some(want_events), "events in {} (seed {seed})", f.display());
        assert_eq!(v["skipped"]["total"].as_u64(), Some(want_skipped), "skipped in {} (seed {seed}): {}", f.display(), v["skipped"]);
        // The human form too.
        let out = Command::new(env!("CARGO_BIN_EXE_execguard")).arg("report").arg(&f).env("NO_COLOR", "1").stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        if want_skipped > 0 {
            assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("skipped {want_skipped} line")), "{}", String::from_utf8_lossy(&out.stdout));
        }
    }
    eprintln!("report fuzz: {files} files, {lines_total} lines, {bytes_total} bytes, seed {seed:#x}");
}

// ---------------------------------------------------------------------------
// 4. Scale

fn us_per_exec(r: &Run) -> f64 {
    r.field("fds").split("us_per_exec=").nth(1).unwrap().trim().parse().unwrap()
}

fn check_scale_events(r: &Run, event: &str, n_fds: u64, execs: usize, action: &str) {
    let evs = all_lines_json(&r.log);
    let evs = named(&evs, event);
    // The same fds at each exec: one finding, its repeats counted (every line of it
    // carries the whole finding).
    assert_eq!(common::occurrences(evs.iter().copied()), execs as u64, "{event}");
    for ev in evs {
        assert_eq!(ev["action"], action);
        assert_eq!(ev["fds_total"].as_u64(), Some(n_fds), "{ev:.300}");
        let listed = ev["fds"].as_array().unwrap().len() as u64;
        assert!(listed > 10, "{ev:.300}");
        assert_eq!(ev["fds_omitted"].as_u64(), Some(n_fds - listed));
        assert_eq!(ev["kinds"]["file"].as_u64(), Some(n_fds));
    }
}

#[test]
fn scale_19000_fds_and_fd_19999() {
    let (n, k) = (19_000u64, 6usize);
    let args = ["scale", "19000", "6"];
    let base = run_mode(Mode::NoShim, &driver(), &args, &[], T);
    assert!(base.status.success(), "{}", base.context_short());
    if base.stdout.contains("dup") || !base.stdout.contains("failed=0") {
        eprintln!("skipped: cannot hold 19 001 fds here: {}", base.stdout);
        return;
    }
    let mut figures = vec![("none", us_per_exec(&base))];
    for mode in [Mode::Log, Mode::Fix] {
        let r = run_mode(mode, &driver(), &args, &[], T);
        assert!(r.status.success() && r.stdout.contains("failed=0"), "{}", r.context_short());
        check_scale_events(&r, "exec_fd_leak", n + 1, k, mode.action());
        figures.push((mode.name(), us_per_exec(&r)));
    }
    // Start side: a parent not under the shim, children preloaded.
    let lib = shim();
    let r = run_mode(Mode::Log, &driver(), &["scale", "19000", "6", lib.to_str().unwrap()], &[("LD_PRELOAD", "")], T);
    assert!(r.status.success() && r.stdout.contains("failed=0"), "{}", r.context_short());
    check_scale_events(&r, "startup_fds", n + 1, k, "logged");
    figures.push(("startup-audit", us_per_exec(&r)));
    eprintln!("scale, µs per fork+exec with 19 001 leaked fds: {figures:?}");
    // Linear in the open fds, far from O(rlimit): well under a second per exec even
    // in a debug build (the release figures are in docs/reliability.md).
    for (what, us) in &figures {
        assert!(*us < 1_500_000.0, "{what}: {us} µs per exec");
    }
}

// ---------------------------------------------------------------------------
// 5. Degraded environments

/// The `open=` list of threxec's exec'd program: fd 3 (the leak) unless fix mode
/// repaired it. Fds 60-63 are the busy threads' dup2 targets, CLOEXEC a moment
/// later: one caught in that window is the host's own race, in every mode.
fn check_open(open: &str, want_leak: bool) {
    let fds: Vec<i32> = open.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    assert_eq!(fds.contains(&3), want_leak, "open={open}");
    assert!(fds.iter().all(|&fd| fd == 3 || (60..64).contains(&fd)), "open={open}");
}

fn threxec(mode: Mode, extra: &[(&str, &str)]) -> Run {
    let dir = common::tmpdir("badexe");
    let bad = dir.join("bad.exe");
    std::fs::write(&bad, b"\x01\x02garbage, not an executable format\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_mode(mode, &driver(), &["threxec", bad.to_str().unwrap()], extra, T);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[test]
fn thread_execs_while_others_run_real_results_every_time() {
    for mode in Mode::ALL {
        let r = threxec(mode, &[]);
        assert!(r.status.success(), "{}", r.context_short());
        assert!(r.stdout.starts_with("tries=300 wrong=0 thread_wrong=0\n"), "{}", r.context_short());
        check_open(&r.field("open"), mode != Mode::Fix);
        if mode != Mode::NoShim {
            all_lines_json(&r.log);
        }
    }
}

#[test]
fn no_proc_fix_mode_still_fixes_via_poll() {
    need_root!();
    let dir = common::tmpdir("noproc");
    let _c = Cleanup(vec![dir.clone()]);
    let bad = dir.join("bad.exe");
    std::fs::write(&bad, b"\x01\x02not a program\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    for mode in ["log", "fix"] {
        let log = dir.join(format!("{mode}.jsonl"));
        let script = format!(
            "mount -t tmpfs none /proc || exit 99; test -e /proc/self && exit 98; exec env LD_PRELOAD='{}' EXECGUARD_MODE={mode} EXECGUARD_LOG='{}' '{}' threxec '{}'",
            shim().display(),
            log.display(),
            driver().display(),
            bad.display()
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", &script]);
        let out = bounded(c, T, None);
        if out.status.code() == Some(99) {
            eprintln!("skipped: cannot mount over /proc in a new mount namespace: {}", out.stderr);
            return;
        }
        assert!(out.status.success(), "{mode}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.starts_with("tries=300 wrong=0 thread_wrong=0\nopen="), "{mode}: {}{}", out.stdout, out.stderr);
        check_open(out.stdout.trim_end().rsplit("open=").next().unwrap(), mode == "log");
        let evs = all_lines_json(&log);
        let leaks = named(&evs, "exec_fd_leak");
        // The final exec is reported with fd 3, fixed in fix mode, found without /proc.
        let last = leaks.iter().rev().find(|e| e["target"].as_str().is_some_and(|t| t.ends_with("rel_driver"))).expect("final exec reported");
        assert!(last["fds"].as_array().unwrap().iter().any(|f| f["fd"] == 3), "{last}");
        assert_eq!(last["action"], if mode == "fix" { "fixed" } else { "logged" });
    }
    assert!(Path::new("/proc/self/fd").exists(), "the host's /proc was touched");
}

#[test]
fn emfile_host_gets_real_results() {
    let dir = common::tmpdir("emfile");
    let _c = Cleanup(vec![dir.clone()]);
    let bad = dir.join("bad.exe");
    std::fs::write(&bad, b"\x01\x02not a program\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let go = |mode| {
        let r = run_mode(mode, &driver(), &["emfile", bad.to_str().unwrap()], &[], T);
        assert!(r.status.success(), "{}", r.context_short());
        r
    };
    let base = go(Mode::NoShim);
    assert!(base.stdout.contains("open_errno=EMFILE\nenoent_r=-1 errno=ENOENT\nenoexec_r=-1 errno=ENOEXEC\nfd3_flags=0\neacces_r=-1 errno=EACCES\n"), "{}", base.stdout);
    // With every fd taken the child cannot even load libc: 127, with or without shim.
    assert!(base.stdout.ends_with("child=127\n"), "{}", base.stdout);
    let log = go(Mode::Log);
    assert_eq!(log.stdout, base.stdout, "log mode changed what the host saw");
    let w = log_warnings(&log.stderr);
    assert!(w.values().all(|&n| n == 1), "{}", log.stderr);
    // Fix mode: identical results for the failing execs (the undo restored fd 3's
    // flags).
    let fix = go(Mode::Fix);
    let head = |s: &str| s.lines().take(5).collect::<Vec<_>>().join("\n");
    assert_eq!(head(&fix.stdout), head(&base.stdout));
}

/// Fix mode under EMFILE (soft RLIMIT_NOFILE 64, every fd used, optionally one fd at
/// `high` above that limit): the fds are found by the ppoll fallback and closed at
/// exec, so the child starts and inherits nothing.
fn emfile_fix(high: Option<&str>) {
    let dir = common::tmpdir("emfile-fix");
    let _c = Cleanup(vec![dir.clone()]);
    let bad = dir.join("bad.exe");
    std::fs::write(&bad, b"\x01\x02").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut args = vec!["emfile", bad.to_str().unwrap()];
    args.extend(high);
    let r = run_mode(Mode::Fix, &driver(), &args, &[], T);
    assert!(r.status.success(), "{}", r.context_short());
    assert!(r.stdout.ends_with("open=\nchild=0\n"), "the exec'd child inherited fds (child=127: it could not even load libc):\n{}", r.stdout);
}

#[test]
fn emfile_fix_mode_repairs_via_the_poll_fallback() {
    emfile_fix(None);
}

#[test]
fn emfile_fix_mode_sees_fds_above_a_lowered_soft_limit() {
    emfile_fix(Some("1000"));
}

#[test]
fn signal_handler_forks_and_execs_inside_hooked_calls() {
    for mode in Mode::ALL {
        let r = run_mode(mode, &driver(), &["sigexec", "1.5"], &[], T);
        assert!(r.status.success(), "{}", r.context_short());
        let runs: u64 = r.field("calls").split("handler_runs=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(r.stdout.contains(" wrong=0 ") && r.stdout.contains("handler_bad=0"), "{}", r.context_short());
        assert!(runs >= 30, "only {runs} handler runs: {}", r.stdout);
        if mode != Mode::NoShim {
            let evs = all_lines_json(&r.log);
            // Every exec from the handler is reported (the handler's fork child is
            // outside any hook when it execs).
            let leaks = common::occurrences(named(&evs, "exec_fd_leak"));
            assert!(leaks >= runs / 2, "{leaks} leaks for {runs} runs");
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Concurrency of logs

fn concurrent(per_process: usize) {
    let dir = common::tmpdir("concurrent");
    let _c = Cleanup(vec![dir.clone()]);
    let log = dir.join("log.jsonl");
    // Six with one leaked fd (short lines), two with 120 (lines cut near 4096 bytes).
    let t0 = Instant::now();
    let kids: Vec<_> = (0..8)
        .map(|i| {
            let fds = if i < 6 { "1" } else { "120" };
            let mut c = Command::new(driver());
            c.args(["forkloop", &per_process.to_string(), fds]).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
            shim_env(&mut c, "log", Some(&log));
            common::isolate(&mut c);
            c.spawn().unwrap()
        })
        .collect();
    let pids: Vec<u64> = kids.iter().map(|k| k.id() as u64).collect();
    for k in kids {
        let out = k.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("done={per_process} failed=0\n"));
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let secs = t0.elapsed().as_secs_f64();
    let raw = std::fs::read(&log).unwrap();
    let mut per_parent: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut lines, mut longest) = (0usize, 0usize);
    let mut seen_child = HashSet::new();
    for l in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        lines += 1;
        longest = longest.max(l.len());
        assert!(l.len() < 4096, "line of {} bytes", l.len());
        let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| panic!("torn or interleaved line ({e}): {:?}", String::from_utf8_lossy(l)));
        if v["event"] == "exec_fd_leak" {
            let ppid = v["ppid"].as_u64().unwrap();
            // pids wrap (pid_max 32768) over 20 000 forks: a child is (pid, ts).
            let key = (v["pid"].as_u64().unwrap(), v["ts"].to_string());
            assert!(seen_child.insert(key), "two events from one child: {v:.200}");
            *per_parent.entry(ppid).or_default() += 1;
        }
    }
    assert!(raw.ends_with(b"\n"));
    for p in &pids {
        assert_eq!(per_parent.get(p).copied(), Some(per_process), "events of process {p}: {per_parent:?}");
    }
    eprintln!("concurrency: 8 x {per_process} events, {lines} lines, longest {longest} bytes, {secs:.1} s");
}

#[test]
fn concurrent_logs_8_processes_no_torn_line() {
    concurrent(1_500);
}

#[test]
#[ignore = "long: 8 x 10 000 events (about 2-4 minutes on 2 cores)"]
fn concurrent_logs_8_processes_10000_each() {
    concurrent(10_000);
}

// ---------------------------------------------------------------------------
// 7. The shim's own fds and memory

/// fd numbers (and kinds) the probe reported, per spawn path.
fn probe_fds(stdout: &str) -> Vec<(String, Vec<(i64, String)>)> {
    let mut out = Vec::new();
    let mut way = String::new();
    for l in stdout.lines() {
        if let Some(w) = l.strip_prefix("way=") {
            way = w.to_string();
        } else if l.starts_with('{') {
            let v: Value = serde_json::from_str(l).unwrap();
            let fds = v["fds"].as_array().unwrap().iter().map(|f| (f["fd"].as_i64().unwrap(), f["kind"].as_str().unwrap().to_string())).collect();
            out.push((way.clone(), fds));
        }
    }
    out
}

#[test]
fn no_fd_of_the_shim_survives_into_a_child() {
    let probe = c_prog("probe");
    let go = |mode| {
        let r = run_mode(mode, &driver(), &["fdspawn", probe.to_str().unwrap()], &[], T);
        assert!(r.status.success(), "{}", r.context_short());
        r
    };
    let base = go(Mode::NoShim);
    let log = go(Mode::Log);
    let (b, l) = (probe_fds(&base.stdout), probe_fds(&log.stdout));
    assert_eq!(b.len(), 4, "{}", base.stdout);
    assert_eq!(l, b, "children see other fds under the shim (log mode)");
    for r in [&base, &log] {
        assert_eq!(r.field("self_before"), r.field("self_after"), "the host's own fds changed");
        assert_eq!(r.field("self_before"), base.field("self_before"));
    }
    let evs = all_lines_json(&log.log);
    assert!(common::occurrences(named(&evs, "exec_fd_leak")) >= 4, "{evs:?}");
}

#[test]
fn no_memory_growth_over_a_million_hooked_calls() {
    let mut figures = Vec::new();
    for mode in Mode::ALL {
        let r = run_mode(mode, &driver(), &["mem", "1000000"], &[], T);
        assert!(r.status.success(), "{}", r.context_short());
        let kv: BTreeMap<String, i64> = r.stdout.split_whitespace().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.parse().unwrap())).collect();
        assert_eq!(kv["calls"], 1_000_000);
        assert_eq!(kv["wrong"], 0);
        assert_eq!(kv["fds_before"], kv["fds_after"], "{mode:?}: fds changed");
        let growth = kv["rss_after_kb"] - kv["rss_before_kb"];
        figures.push((mode.name(), kv["rss_before_kb"], kv["rss_after_kb"]));
        // 900 000 calls after the first reading: even 1 byte per call would be 880 kB.
        assert!(growth <= 256, "{mode:?}: RSS grew {growth} kB over 900 000 hooked calls");
        if mode != Mode::NoShim {
            let evs = all_lines_json(&r.log);
            assert!(!named(&evs, "select_fd_overflow").is_empty());
        }
    }
    eprintln!("memory (mode, VmRSS kB after 100 000 calls, after 1 000 000): {figures:?}");
}

/// Fix mode marks leaked fds CLOEXEC before an exec; when the exec fails, every one
/// must be put back (DESIGN: the host gets the real result, fix mode changes only
/// what it reports). `n` leaked fds in `n` separate ranges.
fn undo_after_failed_exec(n: usize) {
    let dir = common::tmpdir("undo");
    let _c = Cleanup(vec![dir.clone()]);
    let bad = dir.join("bad.exe");
    std::fs::write(&bad, b"\x01\x02").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_mode(Mode::Fix, &driver(), &["undo", &n.to_string(), bad.to_str().unwrap()], &[], T);
    assert!(r.status.success(), "{}", r.context_short());
    assert_eq!(r.stdout, format!("leaked={n} exec_r=-1 errno=ENOEXEC cloexec_after=0\n"));
}

#[test]
fn failed_exec_in_fix_mode_restores_fd_flags() {
    undo_after_failed_exec(100);
}

#[test]
fn failed_exec_in_fix_mode_restores_fd_flags_past_128_ranges() {
    undo_after_failed_exec(300);
}

/// Past the undo record's 128 ranges the exec audit starts again with its 8 KiB
/// bitmap (the common case goes without it: two stack pages fewer in a fork child).
/// Whether the exec is in the process or in a fork child, the new program gets none
/// of the leaked fds in fix mode, all of them in log mode, and the restart writes
/// one line, not two.
#[test]
fn exec_past_128_ranges_fixes_all_and_says_so_once() {
    let probe = c_prog("probe");
    for n in [100usize, 300] {
        for (mode, fork) in [(Mode::Log, false), (Mode::Fix, false), (Mode::Log, true), (Mode::Fix, true)] {
            let mut args = vec!["spill".to_string(), n.to_string(), probe.to_str().unwrap().to_string()];
            if fork {
                args.push("fork".into());
            }
            let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
            let r = run_mode(mode, &driver(), &args, &[], T);
            let ctx = format!("n={n} {mode:?} fork={fork}\n{}", r.context_short());
            assert!(r.status.success(), "{ctx}");
            if fork {
                assert!(r.stdout.contains("child_status=0"), "{ctx}");
            }
            let fds = probe_fds(&format!("way=spill\n{}", r.stdout));
            assert_eq!(fds.len(), 1, "{ctx}");
            let got = fds[0].1.len();
            assert_eq!(got, if mode == Mode::Fix { 0 } else { n }, "fds the program got\n{ctx}");
            let evs = all_lines_json(&r.log);
            let leaks = named(&evs, "exec_fd_leak");
            assert_eq!(leaks.len(), 1, "{ctx}\n{evs:?}");
            assert_eq!(leaks[0]["fds_total"].as_u64(), Some(n as u64), "{ctx}");
            assert_eq!(leaks[0]["action"].as_str(), Some(if mode == Mode::Fix { "fixed" } else { "logged" }), "{ctx}");
        }
    }
}

// ---------------------------------------------------------------------------
// The select fuzz and caps again where process_vm_readv is refused (ENOSYS, EPERM:
// c-tests/seccomp_deny.c): the pipe fallback reads no byte past nfds either, and a
// set that ends at a guard page costs the host nothing.

mod seccomp {
    macro_rules! under {
        ($($name:ident = $flavour:literal $t:ident),* $(,)?) => {
            $( #[test] fn $name() { crate::common::under_seccomp($flavour, super::$t) } )*
        };
    }
    under!(
        select_fuzz_enosys = "enosys" select_with_any_nfds_and_garbage_sets_reads_only_nfds,
        select_fuzz_eperm = "eperm" select_with_any_nfds_and_garbage_sets_reads_only_nfds,
        select_cap_enosys = "enosys" select_past_the_callers_sets_does_not_crash,
        select_cap_eperm = "eperm" select_past_the_callers_sets_does_not_crash,
    );
}
