//! Issue 4: the incidents with the real programs (nginx + Lua, uWSGI --threads, a
//! socket-pool monitor with a Python probe, CPython's test_subprocess).
//!
//! Each test runs `scripts/real/run.py SCENARIO` (without the shim, in log mode, in fix
//! mode, asserting each) against the shim from `common::shim()`.  Missing packages are
//! installed with `scripts/real/install-deps.sh`; if that fails, the tests fail loudly.
//! The scenarios run one at a time (they time hangs; the machines have 2 cores).
//!
//! The slow one (test_subprocess three times, 2-3.5 min) is ignored by default:
//!     cargo test --test real_programs -- --include-ignored

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn scripts() -> PathBuf {
    common::root().join("scripts").join("real")
}

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Install the packages once per test binary; panic with apt's output if that fails.
fn deps() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let out = Command::new("sh")
            .arg(scripts().join("install-deps.sh"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run install-deps.sh: {e}"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("{}", text.trim_end());
        if out.status.success() {
            Ok(())
        } else {
            Err(text)
        }
    });
    if let Err(e) = r {
        panic!("required packages are missing and could not be installed (scripts/real/install-deps.sh):\n{e}");
    }
}

/// Run one scenario of scripts/real/run.py, bounded by `limit`; panic with its output on failure.
fn scenario(name: &str, limit: Duration) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    deps();
    let lib = common::shim();
    assert!(lib.exists(), "shim not built at {}", lib.display());
    let tmp = common::tmpdir(&format!("real-{name}"));
    let t0 = Instant::now();
    let mut child = common::command(std::path::Path::new(python()))
        .arg(scripts().join("run.py"))
        .arg("--lib")
        .arg(&lib)
        .arg(name)
        .env("EXECGUARD_REAL_TMP", &tmp)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run scripts/real/run.py");
    // Drain both pipes in threads so a chatty run cannot block on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ho = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let he = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let pgid = child.id();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for run.py") {
            break st;
        }
        if t0.elapsed() > limit {
            timed_out = true;
            // run.py turns SIGTERM into an orderly stop of its servers; then force.
            let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pgid}")]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
            break child.wait().expect("wait for run.py");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = ho.join().unwrap_or_default();
    let err = he.join().unwrap_or_default();
    println!("{out}");
    eprintln!("{err}");
    println!("scenario {name}: {:.1}s (work dir {})", t0.elapsed().as_secs_f64(), tmp.display());
    assert!(!timed_out, "scenario {name} exceeded {limit:?}:\n{out}\n{err}");
    assert!(status.success(), "scenario {name} failed ({status}):\n{}\n{err}", failures(&out));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The FAIL lines and the final summary, for the panic message.
fn failures(out: &str) -> String {
    out.lines()
        .filter(|l| l.contains("FAIL") || l.starts_with("==") || l.starts_with("   - "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nginx_lua_os_execute_curl() {
    scenario("nginx", Duration::from_secs(120));
}

#[test]
fn uwsgi_threads_subprocess_sigalrm() {
    scenario("uwsgi", Duration::from_secs(120));
}

#[test]
fn socket_pool_python_select_probe() {
    scenario("pool", Duration::from_secs(60));
}

#[test]
#[ignore = "slow (2-3.5 min, CPython's test_subprocess three times): cargo test --test real_programs -- --include-ignored"]
fn cpython_test_subprocess() {
    scenario("pysubprocess", Duration::from_secs(900));
}

// ---------------------------------------------------------------------------
// nginx, uWSGI and the socket-pool monitor again under c-tests/seccomp_deny.c (the newer system calls
// refused with ENOSYS as on an old kernel, with EPERM as in a strict container):
// every check of the scenario must hold there too.

mod seccomp {
    macro_rules! under {
        ($flavour:literal: $($name:ident = $t:ident),* $(,)?) => {
            $( #[test] fn $name() { crate::common::under_seccomp($flavour, super::$t) } )*
        };
    }
    under!("enosys": nginx_enosys = nginx_lua_os_execute_curl, uwsgi_enosys = uwsgi_threads_subprocess_sigalrm,
        pool_enosys = socket_pool_python_select_probe);
    under!("eperm": nginx_eperm = nginx_lua_os_execute_curl, uwsgi_eperm = uwsgi_threads_subprocess_sigalrm,
        pool_eperm = socket_pool_python_select_probe);
}
