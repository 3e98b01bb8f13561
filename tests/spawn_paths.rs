//! Issue 3: every other way a program starts a child, each leaking a listening
//! socket into the probe, in log and fix mode; the start side catching what a
//! static parent leaks; system_blocking while the caller waits; and intentional
//! inheritance (pass_fds, bash `3>file`, nohup, `trap '' PIPE`, make's jobserver)
//! surviving fix mode.

#[macro_use]
mod common;

use common::{check_common, named, run_mode, Mode, Run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn probe() -> String {
    common::c_prog("probe").to_str().unwrap().to_string()
}

fn probe_out(run: &Run) -> Value {
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.find('{').map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no probe line\n{}", run.context()));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("probe line {line}: {e}"))
}

fn listener_obj(run: &Run) -> Value {
    let fd: u64 = run.stdout.lines().find_map(|l| l.strip_prefix("fd=")).map_or(3, |s| s.parse().unwrap());
    json!({"fd": fd, "kind": "tcp_listen", "detail": format!("127.0.0.1:{}", run.field("port"))})
}

/// exec_fd_leak events that name this run's listener.
fn leaks_of_listener(run: &Run) -> Vec<Value> {
    let l = listener_obj(run);
    named(&run.events(), "exec_fd_leak")
        .into_iter()
        .filter(|e| e["fds"].as_array().is_some_and(|a| a.contains(&l)))
        .cloned()
        .collect()
}

/// What a path must show in each mode: the probe holds the listener unless fixed,
/// and exactly one exec_fd_leak through `via` names it.
fn check_leak_path(mode: Mode, run: &Run, vias: &[&str], target: Option<&str>) {
    assert!(run.status.success(), "{}", run.context());
    assert!(run.stdout.contains("status=0") || run.stdout.contains("status=exit:0"), "{}", run.context());
    let fds = probe_out(run)["fds"].clone();
    let l = listener_obj(run);
    if mode == Mode::Fix {
        assert_eq!(fds, json!([]), "fix: the child holds nothing\n{}", run.context());
    } else {
        assert_eq!(fds, json!([l]), "the child holds the listener\n{}", run.context());
    }
    if mode == Mode::NoShim {
        return;
    }
    let evs = leaks_of_listener(run);
    let ours: Vec<_> = evs.iter().filter(|e| vias.iter().any(|v| e["via"] == *v)).collect();
    assert_eq!(ours.len(), 1, "one exec_fd_leak via {vias:?} naming {l}\n{}", run.context());
    let ev = ours[0];
    check_common(ev, mode, "warn", mode.action());
    if let Some(t) = target {
        assert_eq!(ev["target"], t, "{ev}");
    }
    assert_eq!(ev["kinds"]["tcp_listen"], 1, "{ev}");
}

// ---------------------------------------------------------------------------
// C: system, popen, posix_spawn, posix_spawnp, vfork+execve

fn c_path(mode: Mode, how: &str) -> Run {
    run_mode(mode, &common::c_prog("spawn_paths"), &[how, &probe()], &[], T)
}

fn c_case(how: &str, via: &str) {
    for mode in Mode::ALL {
        let run = c_path(mode, how);
        check_leak_path(mode, &run, &[via], Some(&probe()));
    }
}

#[test]
fn c_system() {
    c_case("system", "system");
}

#[test]
fn c_popen() {
    c_case("popen", "popen");
}

#[test]
fn c_posix_spawn() {
    c_case("posix_spawn", "posix_spawn");
}

#[test]
fn c_posix_spawnp() {
    c_case("posix_spawnp", "posix_spawnp");
}

#[test]
fn c_vfork_execve() {
    c_case("vfork", "execve");
}

/// glibc ≥ 2.39's pidfd_spawn and pidfd_spawnp (the programs linked against and run
/// on the newer glibc of `on_glibc_new`): the same audit as posix_spawn's, the
/// listener named with `via` `pidfd_spawn`/`pidfd_spawnp` and closed in the child in
/// fix mode, and the caller's pidfd works (the child is waited for through it) and
/// stays close-on-exec.
#[test]
fn c_pidfd_spawn() {
    pidfd_spawn_case();
}

/// The same under the seccomp filter of an old container profile (clone3 refused
/// with ENOSYS, the pidfd calls with ENOSYS or EPERM): glibc's pidfd_spawn then
/// makes its pidfd with clone's CLONE_PIDFD, and the hook changes nothing of that.
#[test]
fn c_pidfd_spawn_under_seccomp() {
    common::under_seccomp("enosys", pidfd_spawn_case);
    common::under_seccomp("eperm", pidfd_spawn_case);
}

fn pidfd_spawn_case() {
    common::on_glibc_new(|| {
        for (how, via) in [("pidfd_spawn", "pidfd_spawn"), ("pidfd_spawnp", "pidfd_spawnp")] {
            for mode in Mode::ALL {
                let run = c_path(mode, how);
                assert!(run.stdout.contains("pidfd_cloexec=1"), "{}", run.context());
                check_leak_path(mode, &run, &[via], Some(&probe()));
            }
        }
    });
}

/// pidfd_spawn with the caller's file actions (a dup2 onto fd 1) and attributes (a
/// blocked SIGALRM): honoured, and fix mode clears the mask, as for posix_spawn.
#[test]
fn c_pidfd_spawn_file_actions_and_mask_honoured() {
    common::on_glibc_new(|| file_actions_and_mask_case("pidfd_spawn_actions", "pidfd_spawn"));
}

/// The pidfd hooks are exported only with glibc's version for them: a program that
/// probes for the functions by name (dlsym) finds none on the machine's glibc (2.36
/// here, without them) whether the shim is loaded or not — log mode invisible — and
/// libc's own on the newer glibc; asked for the version (dlvsym), the shim's. On the
/// machine's glibc the shim's then answers ENOSYS, as a libc without it would
/// (src/hooks/spawn.rs).
#[test]
fn pidfd_hooks_are_invisible_to_a_probe_by_name() {
    let probe_of = |new: bool, mode: Mode| {
        let prog = if new { common::c_prog_glibc("dlsym_pidfd", common::OtherGlibc::New) } else { common::c_prog("dlsym_pidfd") };
        let run = run_mode(mode, &prog, &[], &[], T);
        assert!(run.status.success(), "{}", run.context());
        run.stdout.clone()
    };
    let machine_has_it = probe_of(false, Mode::NoShim).contains("dlsym=libc.so.6");
    for mode in Mode::ALL {
        let old = probe_of(false, mode);
        let new = probe_of(true, mode);
        for name in ["pidfd_spawn", "pidfd_spawnp"] {
            let line = |out: &str| out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("").to_string();
            let want_dlsym = if machine_has_it { "dlsym=libc.so.6" } else { "dlsym=none" };
            assert!(line(&old).contains(want_dlsym), "{mode:?} on the machine's glibc: {}", line(&old));
            assert!(line(&new).contains("dlsym=libc.so.6"), "{mode:?} on the newer glibc: {}", line(&new));
            let want_dlvsym = match (mode, machine_has_it) {
                (Mode::NoShim, false) => "dlvsym=none",
                (Mode::NoShim, true) => "dlvsym=libc.so.6",
                _ => "dlvsym=libexecguard.so",
            };
            assert!(line(&old).contains(want_dlvsym), "{mode:?}: {}", line(&old));
            let want_new = if mode == Mode::NoShim { "dlvsym=libc.so.6" } else { "dlvsym=libexecguard.so" };
            assert!(line(&new).contains(want_new), "{mode:?}: {}", line(&new));
            // Called: the spawn happens wherever libc has the function.
            assert!(line(&new).ends_with("call=0"), "{mode:?}: {}", line(&new));
            let want_call = match (mode, machine_has_it) {
                (_, true) => "call=0",
                (Mode::NoShim, false) => "call=-",
                (_, false) => "call=ENOSYS",
            };
            assert!(line(&old).ends_with(want_call), "{mode:?}: {}", line(&old));
        }
    }
}

/// A library with only a SysV hash table (old toolchains, `--hash-style=sysv`)
/// loaded after the shim: its own reading of the loader's tables cannot search it,
/// so the real functions are looked up another way at load — with dlsym where the
/// process has one (glibc ≥ 2.34, or libdl loaded), and, on glibc 2.31 without
/// libdl, by the shim's own lookup in the objects it can search
/// (resolve::Lenient). Before, a glibc 2.31 process without libdl did not start
/// at all under the shim (dlsym was a strong import: "undefined symbol: dlsym").
/// The program leaks a listener into `system("true")`: it runs, in every mode, and
/// the leak is reported and fixed.
#[test]
fn a_library_without_a_gnu_hash_table_before_and_after_dlsym_moved_into_libc() {
    for env in ["machine", "glibc 2.31"] {
        let body = || {
            let d = common::tmpdir("sysv-hash");
            let lib = common::cc(&d, "libsysvonly.so", "int sysv_only(void) { return 7; }\n", &["-shared", "-fPIC", "-Wl,--hash-style=sysv"]);
            let src = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int sysv_only(void);
int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1)) return 90;
    int st = system("test ! -e /proc/self/fd/3");
    printf("lib=%d status=%d\n", sysv_only(), st);
    return 0;
}
"#;
            let rpath = format!("-Wl,-rpath={}", d.display());
            let prog = common::cc(&d, "uses_sysv", src, &["-Wl,--no-as-needed", lib.to_str().unwrap(), &rpath]);
            for mode in Mode::ALL {
                let run = run_mode(mode, &prog, &[], &[], T);
                let ctx = format!("[{env} {mode:?}]\n{}", run.context());
                assert!(run.status.success(), "{ctx}");
                // The shell's test: fd 3 (the listener) absent only where fix closed it.
                let want = if mode == Mode::Fix { "lib=7 status=0" } else { "lib=7 status=256" };
                assert!(run.stdout.contains(want), "{ctx}");
                if mode != Mode::NoShim {
                    let leaks = named(&run.events(), "exec_fd_leak").into_iter().filter(|e| e["via"] == "system").count();
                    assert_eq!(leaks, 1, "{ctx}");
                }
            }
        };
        if env == "machine" {
            body();
        } else {
            common::on_glibc_old(body);
        }
    }
}

/// posix_spawn without file actions, fix mode: the leaked fds (3-7 and 21-25) are
/// closed in the child by the shim's own close actions, the kept one (20, named in
/// EXECGUARD_KEEP_FDS) between them survives, and the parent's flags are as before
/// the call (driver: c-tests/spawn_keep.c).
/// Also from a forked worker that has not exec'd (the shim may not allocate there:
/// it marks the fds in that worker and puts them back).
#[test]
fn c_posix_spawn_fix_closes_in_the_child_and_leaves_the_parent_alone() {
    spawn_keep_case(None);
}

/// The same through system() and popen(): in fix mode the shim spawns the shell
/// itself, with close actions of its own (after popen's dup2 onto the shell's
/// stdout), and the shell hands what it got (fd 20) on to the probe.
#[test]
fn c_system_fix_closes_in_the_shell_and_leaves_the_parent_alone() {
    spawn_keep_case(Some("system"));
}

#[test]
fn c_popen_fix_closes_in_the_shell_and_leaves_the_parent_alone() {
    spawn_keep_case(Some("popen"));
}

fn spawn_keep_case(via: Option<&str>) {
    for (mode, worker) in Mode::ALL.into_iter().flat_map(|m| [(m, false), (m, true)]) {
        let mut args = vec![probe()];
        match (worker, via) {
            (true, Some(v)) => args.push(format!("fork+{v}")),
            (true, None) => args.push("fork".into()),
            (false, Some(v)) => args.push(v.into()),
            (false, None) => {}
        }
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let run = run_mode(mode, &common::c_prog("spawn_keep"), &args, &[("EXECGUARD_KEEP_FDS", "20")], T);
        assert!(run.stdout.contains("status=exit:0"), "{}", run.context());
        let held: Vec<u64> = probe_out(&run)["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
        let want: Vec<u64> = if mode == Mode::Fix { vec![20] } else { [3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25].to_vec() };
        assert_eq!(held, want, "{}", run.context());
        assert!(
            run.stdout.contains("parent=3:0,4:0,5:0,6:0,7:0,20:0,21:0,22:0,23:0,24:0,25:0"),
            "the parent's fds keep their flags\n{}",
            run.context()
        );
        if mode != Mode::NoShim {
            let evs = run.events();
            let leaks = named(&evs, "exec_fd_leak");
            assert_eq!(leaks.len(), 1, "{}", run.context());
            check_common(leaks[0], mode, "warn", mode.action());
            let fds: Vec<u64> = leaks[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            assert_eq!(fds, [3, 4, 5, 6, 7, 21, 22, 23, 24, 25], "{}", run.context());
        }
    }
}

/// The same from a caller that left stray fds open (10, 251, 500: stray_launch): they
/// pass through to the child, untouched, and the leaked ones are still closed there;
/// also through system() and popen(), where the shell hands them on.
#[test]
fn c_posix_spawn_fix_with_strays_from_the_caller() {
    spawn_keep_strays_case(&[None, Some("system"), Some("popen")]);
}

/// pidfd_spawn (on the newer glibc) as posix_spawn above: the shim's own close
/// actions in the child, in a forked worker that has not exec'd (the fds marked
/// there instead), and from a caller with stray fds, which pass through.
#[test]
fn c_pidfd_spawn_fix_closes_in_the_child_with_strays_and_in_a_worker() {
    common::on_glibc_new(|| {
        spawn_keep_case(Some("pidfd_spawn"));
        spawn_keep_strays_case(&[Some("pidfd_spawn")]);
    });
}

/// spawn_keep under stray_launch, in log and fix mode, through each of `vias`
/// (None: posix_spawn).
fn spawn_keep_strays_case(vias: &[Option<&str>]) {
    for (mode, via) in ["log", "fix"].into_iter().flat_map(|m| vias.iter().map(move |&v| (m, v))) {
        let d = common::tmpdir(&format!("spawn-keep-strays-{mode}-{}", via.unwrap_or("posix_spawn")));
        let log = d.join("log.jsonl");
        let mut cmd = common::command(&common::c_prog("stray_launch"));
        cmd.arg(common::c_prog("spawn_keep")).arg(probe()).current_dir(&d);
        if let Some(v) = via {
            // The same through the shell (spawn_keep's system and popen cases).
            cmd.arg(v);
        }
        cmd.env_remove("LD_PRELOAD")
            .env("STRAY_PRELOAD", common::shim())
            .env("EXECGUARD_LOG", &log)
            .env("EXECGUARD_MODE", mode)
            .env("EXECGUARD_KEEP_FDS", "20");
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let ctx = format!("[{mode} {via:?}]\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("status=exit:0"), "{ctx}");
        let line = stdout.lines().find_map(|l| l.find('{').map(|i| &l[i..])).unwrap_or_else(|| panic!("{ctx}"));
        let p: Value = serde_json::from_str(line).unwrap();
        let held: Vec<u64> = p["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
        let want: Vec<u64> = if mode == "fix" { vec![20, 251, 500] } else { [3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 251, 500].to_vec() };
        assert_eq!(held, want, "{ctx}");
        assert!(stdout.contains("parent=3:0,4:0,5:0,6:0,7:0,20:0,21:0,22:0,23:0,24:0,25:0"), "{ctx}");
        let evs = common::events(&log);
        let leaks = named(&evs, "exec_fd_leak");
        assert_eq!(leaks.len(), 1, "{ctx}");
        let fds: Vec<u64> = leaks[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
        assert_eq!(fds, [3, 4, 5, 6, 7, 21, 22, 23, 24, 25], "{ctx}");
    }
}

#[test]
fn c_posix_spawn_file_actions_and_mask_honoured() {
    file_actions_and_mask_case("posix_spawn_actions", "posix_spawn");
}

/// The caller's file actions (its stdout onto a pipe) and attributes (SIGALRM
/// blocked) reach the probe; fix mode clears the mask and closes the listener; log
/// and fix name the mask and the listener once each, `via` the spawn function.
fn file_actions_and_mask_case(how: &str, via: &str) {
    for mode in Mode::ALL {
        let run = c_path(mode, how);
        assert!(run.stdout.contains("via_pipe={"), "the dup2 action onto fd 1 works\n{}", run.context());
        let p = probe_out(&run);
        let blocked: Vec<String> = common::strs(&p["blocked"]);
        if mode == Mode::Fix {
            assert!(blocked.is_empty(), "fix clears the caller-set mask\n{}", run.context());
            assert_eq!(p["fds"], json!([]), "{}", run.context());
        } else {
            assert_eq!(blocked, ["SIGALRM"], "{}", run.context());
            assert_eq!(p["fds"], json!([listener_obj(&run)]), "{}", run.context());
        }
        if mode == Mode::NoShim {
            continue;
        }
        let evs = run.events();
        let m: Vec<_> = named(&evs, "exec_sigmask").into_iter().filter(|e| e["via"] == via).collect();
        assert_eq!(m.len(), 1, "the caller-set mask is reported\n{}", run.context());
        check_common(m[0], mode, "warn", mode.action());
        assert_eq!(common::strs(&m[0]["signals"]), ["SIGALRM"], "{}", m[0]);
        let leaks: Vec<_> = leaks_of_listener(&run).into_iter().filter(|e| e["via"] == via).collect();
        assert_eq!(leaks.len(), 1, "{}", run.context());
    }
}

/// Run `prog args` in `dir` from a caller with stray fds (10, 251, 500:
/// stray_launch), with the shim preloaded in `mode` (logging to `log`) unless
/// `Mode::NoShim`; none of the caller's own settings (or `UWSGI_RELOADS`) reach it.
fn under_strays(mode: Mode, dir: &Path, log: &Path, prog: &Path, args: &[&str]) -> std::process::Output {
    strays_command(mode, dir, log, prog, args).output().unwrap()
}

fn strays_command(mode: Mode, dir: &Path, log: &Path, prog: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = common::command(&common::c_prog("stray_launch"));
    cmd.arg(prog).args(args).current_dir(dir);
    for v in ["LD_PRELOAD", "STRAY_PRELOAD", "SELF_RELOAD_PRELOAD", "EXECGUARD_MODE", "EXECGUARD_LOG", "EXECGUARD_KEEP_FDS", "EXECGUARD_FOLLOW", "UWSGI_RELOADS"] {
        cmd.env_remove(v);
    }
    if mode != Mode::NoShim {
        cmd.env("STRAY_PRELOAD", common::shim()).env("EXECGUARD_LOG", log).env("EXECGUARD_MODE", mode.name());
    }
    cmd
}

/// posix_spawn with the caller's own file actions (hooks/spawn_actions.rs), from a
/// caller that left stray fds open (10, 251, 500: stray_launch). fd 3 (a listener)
/// and fd 4 (/dev/null) are the program's, inheritable; fd 5 a close-on-exec pipe.
/// Each case: what the child holds without the shim, and which fds the shim reports
/// (and in fix mode closes) — only those the actions leave the child as the caller
/// holds them. An fd the actions close is not reported; one they put at a number on
/// purpose (dup2, open) is reported neither by the caller nor by the child's start.
/// More actions than the shim follows, or actions destroyed before the spawn: each
/// fd is judged as the caller holds it, as before.
#[test]
fn c_posix_spawn_file_actions_decide_what_the_child_holds() {
    const STRAYS: [u64; 3] = [10, 251, 500];
    let cases: [(&str, &[u64], &[u64]); 10] = [
        ("none", &[3, 4], &[3, 4]),
        ("empty", &[3, 4], &[3, 4]),
        ("close", &[4], &[4]),
        ("closefrom", &[], &[]),
        ("dup2_away", &[4, 9], &[4]),
        ("dup2_self", &[3, 4, 5], &[3, 4]),
        ("open", &[12], &[]),
        ("full", &[4], &[3, 4]),
        ("reinit", &[3, 4], &[3, 4]),
        ("fork", &[4], &[4]),
    ];
    for (case, holds, leaks) in cases {
        if case == "closefrom" && (common::is_musl() || common::is_glibc_old()) {
            continue; // no posix_spawn_file_actions_addclosefrom_np (musl, glibc < 2.34)
        }
        for mode in Mode::ALL {
            let d = common::tmpdir(&format!("spawn-actions-{case}-{}", mode.name()));
            let log = d.join("log.jsonl");
            let prog = common::c_prog("spawn_actions");
            let out = under_strays(mode, &d, &log, &prog, &[case, &probe()]);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let ctx = format!("[{case} {}]\n{stdout}\n{}\n{}", mode.name(), String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default());
            assert!(stdout.contains("status=exit:0"), "{ctx}");
            assert!(stdout.contains("parent=3:0,4:0"), "the caller's flags are as they were\n{ctx}");
            let line = stdout.lines().find_map(|l| l.find('{').map(|i| &l[i..])).unwrap_or_else(|| panic!("{ctx}"));
            let p: Value = serde_json::from_str(line).unwrap();
            let got: Vec<u64> = p["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            let strays: Vec<u64> = got.iter().copied().filter(|fd| STRAYS.contains(fd)).collect();
            let own: Vec<u64> = got.iter().copied().filter(|fd| !STRAYS.contains(fd)).collect();
            let want: Vec<u64> = holds.iter().copied().filter(|fd| mode != Mode::Fix || !leaks.contains(fd)).collect();
            assert_eq!(own, want, "what the child holds\n{ctx}");
            // The caller's strays pass through (a close-from takes them too).
            assert_eq!(strays, if case == "closefrom" { vec![] } else { STRAYS.to_vec() }, "{ctx}");
            if mode == Mode::NoShim {
                continue;
            }
            let evs = common::events(&log);
            let spawned: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["via"] == "posix_spawn").collect();
            if leaks.is_empty() {
                assert!(spawned.is_empty(), "nothing the child gets is the caller's leak\n{ctx}");
            } else {
                assert_eq!(spawned.len(), 1, "{ctx}");
                check_common(spawned[0], mode, "warn", mode.action());
                let fds: Vec<u64> = spawned[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
                assert_eq!(fds, leaks, "{ctx}");
            }
            // The strays are named once, where they came in (the program); the probe
            // reports nothing of what it was handed, on purpose or not.
            let starts = named(&evs, "startup_fds");
            assert_eq!(starts.len(), 1, "{ctx}");
            let s: Vec<u64> = starts[0]["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect();
            assert_eq!(s, STRAYS, "{ctx}");
            assert_eq!(starts[0]["from"], "outside", "{ctx}");
            assert_eq!(evs.iter().filter(|e| e["event"] == "exec_fd_leak").count(), spawned.len(), "{ctx}");
        }
    }
}

/// A server's reload of itself (uWSGI's master on SIGHUP): a program named `uwsgi`,
/// holding a listener and an ignored SIGPIPE, with `UWSGI_RELOADS` in its
/// environment, execs its own binary in place. That hands nothing to anyone: no
/// report, and fix mode leaves the listener to the new image. After it the
/// listener and the ignore are the new image's own: its `system()` passes them on,
/// and that is reported (and fixed) as before the reload. Without the variable, under
/// another name (`uwsgitop`), or spawned as a child, the same exec is an ordinary
/// leak. From a caller with strays (they pass through everywhere).
#[test]
fn c_a_servers_reload_of_itself_is_not_its_leak() {
    const STRAYS: [u64; 3] = [10, 251, 500];
    let d = common::tmpdir("self-reload");
    let prog = common::c_prog("self_reload");
    // Links, not copies: a copy written here and exec'd at once can fail with
    // ETXTBSY while another test thread's fork child still holds it open for writing.
    for name in ["uwsgi", "uwsgitop"] {
        std::os::unix::fs::symlink(&prog, d.join(name)).unwrap();
    }
    // (name, how, UWSGI_RELOADS set, is a reload)
    let cases = [("uwsgi", "exec", "1", true), ("uwsgi", "exec", "0", false), ("uwsgitop", "exec", "1", false), ("uwsgi", "spawn", "1", false)];
    for (name, how, set, reload) in cases {
        for mode in Mode::ALL {
            let log = d.join(format!("{name}-{how}-{set}-{}.jsonl", mode.name()));
            let out = under_strays(mode, &d, &log, &d.join(name), &[how, set]);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let ctx = format!("[{name} {how} {set} {}]\n{stdout}\n{}\n{}", mode.name(), String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default());
            assert!(out.status.success() && stdout.contains("status=exit:0"), "{ctx}");
            let closed = mode == Mode::Fix && !reload;
            assert!(stdout.contains(if closed { "held=0" } else { "held=1" }), "the new image's listener\n{ctx}");
            if mode == Mode::NoShim {
                continue;
            }
            let evs = common::events(&log);
            let fds = |e: &Value| -> Vec<u64> { e["fds"].as_array().map(|a| a.iter().filter_map(|f| f["fd"].as_u64()).collect()).unwrap_or_default() };
            // Where the listener and SIGPIPE are reported: the reloaded image's system(),
            // or else the exec or spawn of the new image.
            let via = if reload { "system" } else if how == "spawn" { "posix_spawn" } else { "execv" };
            let leaks = named(&evs, "exec_fd_leak");
            assert_eq!(leaks.len(), 1, "{ctx}");
            check_common(leaks[0], mode, "warn", mode.action());
            assert_eq!((leaks[0]["via"].as_str(), fds(leaks[0])), (Some(via), vec![3]), "{ctx}");
            let ign = named(&evs, "exec_sigign");
            assert_eq!(ign.len(), 1, "{ctx}");
            assert_eq!((ign[0]["via"].as_str(), &ign[0]["signals"]), (Some(via), &json!(["SIGPIPE"])), "{ctx}");
            if !reload {
                assert!(leaks[0]["target"].as_str().unwrap().ends_with(&format!("/{name}")), "{ctx}");
            }
            // The strays are named once, where they came in.
            let starts = named(&evs, "startup_fds");
            assert_eq!(starts.len(), 1, "{ctx}");
            assert_eq!((fds(starts[0]), starts[0]["from"].as_str()), (STRAYS.to_vec(), Some("outside")), "{ctx}");
        }
    }
}

/// The shim rolled out under a running server (put in /etc/ld.so.preload, or
/// installed at a path its `LD_PRELOAD` already named): the server's next reload is
/// the first image under the shim, and no audited parent marked its start. A program
/// named `uwsgi` with `UWSGI_RELOADS`, started without the shim, puts the shim in its
/// environment and execs itself as in the test above. What it kept across its own
/// exec is reported once, as come from outside (the start cannot tell its listener
/// from the strays its first start got), and fix mode closes nothing: the listener
/// is still there for the new image (before: closed, as an inherited listener is at
/// an ordinary start). So is its ignored SIGPIPE: reported once there, not reset
/// (before: reset). The same program under another name is an ordinary start: its
/// listener is closed and SIGPIPE reset in fix mode.
#[test]
fn c_a_server_reloading_into_a_newly_installed_shim_keeps_what_it_holds() {
    const HELD: [u64; 4] = [3, 10, 251, 500];
    let d = common::tmpdir("reload-rollout");
    let prog = common::c_prog("self_reload");
    for name in ["uwsgi", "uwsgitop"] {
        std::os::unix::fs::symlink(&prog, d.join(name)).unwrap();
    }
    for (name, reload) in [("uwsgi", true), ("uwsgitop", false)] {
        for mode in [Mode::Log, Mode::Fix] {
            let log = d.join(format!("{name}-{}.jsonl", mode.name()));
            let mut cmd = strays_command(mode, &d, &log, &d.join(name), &["exec", "1"]);
            let out = cmd.env_remove("STRAY_PRELOAD").env("SELF_RELOAD_PRELOAD", common::shim()).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let ctx = format!("[{name} {}]\n{stdout}\n{}\n{}", mode.name(), String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default());
            assert!(out.status.success() && stdout.contains("status=exit:0"), "{ctx}");
            let closed = mode == Mode::Fix && !reload;
            assert!(stdout.contains(if closed { "held=0" } else { "held=1" }), "the new image's listener\n{ctx}");
            let evs = common::events(&log);
            let fds = |e: &Value| -> Vec<u64> { e["fds"].as_array().map(|a| a.iter().filter_map(|f| f["fd"].as_u64()).collect()).unwrap_or_default() };
            let starts = named(&evs, "startup_fds");
            let listed: Vec<(Vec<u64>, &str)> = starts.iter().map(|e| (fds(e), e["action"].as_str().unwrap_or(""))).collect();
            let want: Vec<(Vec<u64>, &str)> = if closed { vec![(vec![3], "fixed"), (HELD[1..].to_vec(), "logged")] } else { vec![(HELD.to_vec(), "logged")] };
            assert_eq!(listed, want, "{ctx}");
            for e in &starts {
                assert_eq!((e["from"].as_str(), e["via"].as_str()), (Some("outside"), reload.then_some("reload")), "{ctx}");
            }
            // Reported once: nothing of it again where system() passes it on.
            assert!(named(&evs, "exec_fd_leak").is_empty(), "{ctx}");
            // SIGPIPE (with whatever the test's own caller ignores): reported at the
            // start, where it came in, and passed through from there; reset in fix
            // mode only at an ordinary start.
            assert!(named(&evs, "exec_sigign").is_empty(), "{ctx}");
            let came = named(&evs, "startup_sigign");
            let pipe: Vec<&&Value> = came.iter().filter(|e| e["signals"].as_array().unwrap().contains(&json!("SIGPIPE"))).collect();
            assert_eq!(pipe.len(), 1, "{ctx}");
            check_common(pipe[0], mode, "warn", if reload { "logged" } else { mode.action() });
            for e in &came {
                assert_eq!(e["via"].as_str(), reload.then_some("reload"), "{ctx}");
            }
        }
    }
    // A reload the old image's shim marked, listed at its start all the same
    // (EXECGUARD_STARTUP=always): not repaired either (before: fix mode closed the
    // listener there).
    let log = d.join("always.jsonl");
    let out = strays_command(Mode::Fix, &d, &log, &d.join("uwsgi"), &["exec", "1"]).env("EXECGUARD_STARTUP", "always").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let ctx = format!("[always]\n{stdout}\n{}\n{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default());
    assert!(out.status.success() && stdout.contains("status=exit:0") && stdout.contains("held=1"), "{ctx}");
    let evs = common::events(&log);
    let listed = named(&evs, "startup_fds").into_iter().filter(|e| e["exe"].as_str().is_some_and(|x| x.ends_with("/self_reload")));
    assert!(listed.clone().any(|e| e["fds"][0]["fd"] == 3 && e["via"] == "reload" && e["action"] == "logged"), "{ctx}");
    assert!(listed.clone().all(|e| e["action"] == "logged"), "{ctx}");
}

#[test]
fn c_static_parent_caught_by_start_side() {
    let prog = common::c_prog_static("spawn_paths");
    for mode in Mode::ALL {
        let run = run_mode(mode, &prog, &["fork", &probe()], &[], T);
        assert!(run.stdout.contains("status=exit:0"), "{}", run.context());
        let p = probe_out(&run);
        let l = listener_obj(&run);
        let want = if mode == Mode::Fix { json!([]) } else { json!([l]) };
        assert_eq!(p["fds"], want, "{}", run.context());
        if mode == Mode::NoShim {
            continue;
        }
        let evs = run.events();
        let s: Vec<_> = named(&evs, "startup_fds").into_iter().filter(|e| e["ppid"] == run.pid).collect();
        assert_eq!(s.len(), 1, "startup_fds from the probe\n{}", run.context());
        let ev = s[0];
        check_common(ev, mode, "warn", mode.action());
        assert_eq!(ev["fds"], json!([l]), "{ev}");
        assert_eq!(ev["exe"], common::canon(Path::new(&probe())), "{ev}");
        assert_eq!(ev["parent_exe"], common::canon(&prog), "{ev}");
    }
}

/// A leaked file and no listener, so nothing else calls for the shim's own spawn:
/// the shell that system()/popen() start must still learn that the exec was
/// audited, and neither it nor the probe reports the fd a second time.
#[test]
fn c_system_popen_file_leak_reported_once() {
    let prog = common::c_prog("spawn_paths");
    for how in ["system_file", "popen_file"] {
        let via = how.trim_end_matches("_file");
        for mode in [Mode::Log, Mode::Fix] {
            let run = run_mode(mode, &prog, &[how, &probe()], &[], T);
            assert!(run.stdout.contains("status=exit:0"), "{}", run.context());
            let want = if mode == Mode::Fix { json!([]) } else { json!([{"fd": 3, "kind": "file", "detail": "/dev/null"}]) };
            assert_eq!(probe_out(&run)["fds"], want, "{how} [{}]\n{}", mode.name(), run.context());
            let evs = run.events();
            let leaks: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["via"] == via).collect();
            assert_eq!(leaks.len(), 1, "{how} [{}]\n{}", mode.name(), run.context());
            check_common(leaks[0], mode, "warn", mode.action());
            assert!(named(&evs, "startup_fds").is_empty(), "{how} [{}]: reported twice\n{}", mode.name(), run.context());
        }
    }
}

/// The library under another file name (a package or a user may rename it): the
/// mark that the exec was audited must still reach the new program, on every path,
/// or each program below reports the same fds again at its start.
#[test]
fn a_renamed_library_still_tells_the_child_its_exec_was_audited() {
    let prog = common::c_prog("spawn_paths");
    let dir = common::tmpdir("renamed-shim");
    let renamed = dir.join("libeg-copy.so");
    std::fs::copy(common::shim(), &renamed).unwrap();
    let renamed = renamed.to_str().unwrap().to_string();
    for how in ["fork_file", "vfork_file", "posix_spawn_file", "system_file", "popen_file"] {
        for mode in [Mode::Log, Mode::Fix] {
            let run = run_mode(mode, &prog, &[how, &probe()], &[("LD_PRELOAD", &renamed)], T);
            assert!(run.stdout.contains("status=exit:0"), "{how}\n{}", run.context());
            let evs = run.events();
            assert_eq!(named(&evs, "exec_fd_leak").len(), 1, "{how} [{}]\n{}", mode.name(), run.context());
            assert!(named(&evs, "startup_fds").is_empty(), "{how} [{}]: reported again below\n{}", mode.name(), run.context());
        }
    }
}

#[test]
fn c_system_blocking_while_child_connects_back() {
    let prog = common::c_prog("spawn_paths");
    let self_ = prog.to_str().unwrap();
    for mode in [Mode::Log, Mode::Fix] {
        let run = run_mode(mode, &prog, &["system_blocking", self_], &[], T);
        // The child's connect lands in the blocked caller's backlog: no reply.
        assert!(run.stdout.contains("reply=timeout"), "{}", run.context());
        let port = run.field("port");
        let evs = run.events();
        let b: Vec<_> = named(&evs, "system_blocking").into_iter().filter(|e| e["pid"] == run.pid).collect();
        assert!(b.len() >= 2, "at the start and again after the interval\n{}", run.context());
        for ev in &b {
            check_common(ev, mode, "warn", "logged");
            assert_eq!(ev["via"], "system", "{ev}");
            assert_eq!(ev["command"], format!("{self_} connect_back {port}"), "{ev}");
            assert!(ev["child_pid"].as_u64().is_some_and(|p| p > 0), "{ev}");
            assert_eq!(
                ev["listeners"],
                json!([{"fd": 3, "kind": "tcp_listen", "detail": format!("127.0.0.1:{port}")}]),
                "{ev}"
            );
        }
        let waited: Vec<f64> = b.iter().map(|e| e["waited_s"].as_f64().unwrap()).collect();
        assert_eq!(waited[0], 0.0, "{waited:?}");
        assert!(waited[1] >= 1.5 && waited[1] < 3.0, "again after ~2 s: {waited:?}");
    }
}

// ---------------------------------------------------------------------------
// Python

fn python() -> &'static PathBuf {
    // The real interpreter, not a pyenv shim script (which would be a shell first).
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

const PY: &str = r#"
import os, socket, subprocess, sys
case, probe = sys.argv[1], sys.argv[2]
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
fd = l.fileno()
if case != "pass_fds":
    # The accidental leak: a C library's dup(), which never copies CLOEXEC (Python's
    # own os.dup and set_inheritable are explicit, and the shim trusts them).
    import ctypes
    fd = ctypes.CDLL(None).dup(l.fileno())
print(f"pid={os.getpid()}\nport={l.getsockname()[1]}\nfd={fd}", flush=True)
if case == "close_fds_false":
    r = subprocess.run([probe], close_fds=False).returncode
elif case == "pass_fds":
    r = subprocess.run([probe], pass_fds=[l.fileno()]).returncode
elif case == "os_system":
    r = os.waitstatus_to_exitcode(os.system(probe))
elif case == "posix_spawn":
    pid = os.posix_spawn(probe, [probe], os.environ)
    r = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
elif case == "posix_spawn_close":
    pid = os.posix_spawn(probe, [probe], os.environ, file_actions=[(os.POSIX_SPAWN_CLOSE, fd)])
    r = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
elif case == "posix_spawn_dup2":
    acts = [(os.POSIX_SPAWN_DUP2, fd, 9), (os.POSIX_SPAWN_CLOSE, fd)]
    pid = os.posix_spawn(probe, [probe], os.environ, file_actions=acts)
    r = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
elif case == "os_popen":
    with os.popen(probe) as f:
        sys.stdout.write(f.read())
    r = 0
print(f"status={r}", flush=True)
"#;

fn py(mode: Mode, case: &str) -> Run {
    run_mode(mode, python(), &["-c", PY, case, &probe()], &[], T)
}

#[test]
fn python_subprocess_close_fds_false() {
    for mode in Mode::ALL {
        // CPython picks posix_spawn or vfork/fork + execve by itself.
        check_leak_path(mode, &py(mode, "close_fds_false"), &["posix_spawn", "execve", "execv"], None);
    }
}

#[test]
fn python_os_system_leaks_fd_and_sigpipe() {
    for mode in Mode::ALL {
        let run = py(mode, "os_system");
        check_leak_path(mode, &run, &["system"], Some(&probe()));
        let ign = common::strs(&probe_out(&run)["ignored"]);
        assert_eq!(ign.contains(&"SIGPIPE".to_string()), mode != Mode::Fix, "{}", run.context());
        if mode != Mode::NoShim {
            let evs = run.events();
            let s: Vec<_> = named(&evs, "exec_sigign").into_iter().filter(|e| e["via"] == "system").collect();
            assert_eq!(s.len(), 1, "{}", run.context());
            check_common(s[0], mode, "warn", mode.action());
            assert!(common::strs(&s[0]["signals"]).contains(&"SIGPIPE".to_string()), "{}", s[0]);
        }
    }
}

#[test]
fn python_os_posix_spawn() {
    for mode in Mode::ALL {
        check_leak_path(mode, &py(mode, "posix_spawn"), &["posix_spawn"], Some(&probe()));
    }
}

/// CPython's `os.posix_spawn` builds its `file_actions` with the public calls the
/// shim follows (hooks/spawn_actions.rs): a close action takes the leaked listener
/// away from the child, so nothing is reported; a dup2 action hands it over at fd 9
/// on purpose, which neither side reports and fix mode leaves in place.
#[test]
fn python_os_posix_spawn_file_actions() {
    for (case, child_fd) in [("posix_spawn_close", None), ("posix_spawn_dup2", Some(9))] {
        for mode in Mode::ALL {
            let run = py(mode, case);
            assert!(run.stdout.contains("status=0"), "{}", run.context());
            let l = listener_obj(&run);
            let want = match child_fd {
                Some(n) => json!([{"fd": n, "kind": "tcp_listen", "detail": l["detail"]}]),
                None => json!([]),
            };
            assert_eq!(probe_out(&run)["fds"], want, "[{case}] what the actions leave the child\n{}", run.context());
            if mode == Mode::NoShim {
                continue;
            }
            let evs = run.events();
            let reported: Vec<_> = evs.iter().filter(|e| e["event"] == "exec_fd_leak" || e["event"] == "startup_fds").collect();
            assert!(reported.is_empty(), "[{case}] nothing the child gets is a leak\n{}", run.context());
        }
    }
}

#[test]
fn python_pass_fds_kept_and_not_reported() {
    for mode in Mode::ALL {
        let run = py(mode, "pass_fds");
        assert!(run.stdout.contains("status=0"), "{}", run.context());
        assert_eq!(probe_out(&run)["fds"], json!([listener_obj(&run)]), "pass_fds survives\n{}", run.context());
        assert!(leaks_of_listener(&run).is_empty(), "pass_fds is not a leak\n{}", run.context());
        let l = listener_obj(&run);
        let evs = run.events();
        let start: Vec<_> = named(&evs, "startup_fds")
            .into_iter()
            .filter(|e| e["fds"].as_array().is_some_and(|a| a.contains(&l)))
            .collect();
        assert!(start.is_empty(), "nor is it one for the child's start side\n{}", run.context());
    }
}

#[test]
fn python_os_popen_nothing_to_report() {
    for mode in Mode::ALL {
        let run = py(mode, "os_popen");
        assert!(run.stdout.contains("status=0"), "{}", run.context());
        let p = probe_out(&run);
        assert_eq!(p["fds"], json!([]), "close_fds=True already closed it\n{}", run.context());
        assert!(!common::strs(&p["ignored"]).contains(&"SIGPIPE".to_string()), "{}", run.context());
        assert!(leaks_of_listener(&run).is_empty(), "{}", run.context());
    }
}

// ---------------------------------------------------------------------------
// Rust std::process::Command

const RUST_SRC: &str = r#"
use std::os::fd::AsRawFd;
extern "C" {
    fn dup(fd: i32) -> i32;
}
fn main() {
    let probe = std::env::args().nth(1).unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: dup(2) of a socket this program owns: the copy has no CLOEXEC, the
    // accidental leak under test (an explicit fcntl(F_SETFD, 0) would be deliberate).
    let fd = unsafe { dup(l.as_raw_fd()) };
    println!("pid={}\nport={}\nfd={}", std::process::id(), l.local_addr().unwrap().port(), fd);
    let st = std::process::Command::new(&probe).status().unwrap();
    println!("status={}", st.code().unwrap_or(-1));
}
"#;

fn rust_prog() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = common::root().join("target").join("c-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("rust_spawn.rs");
        let out = dir.join("rust_spawn");
        std::fs::write(&src, RUST_SRC).unwrap();
        let st = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args(["--edition", "2021", "-C", "opt-level=1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("rustc");
        assert!(st.success());
        out
    })
}

#[test]
fn rust_std_command() {
    for mode in Mode::ALL {
        let run = run_mode(mode, rust_prog(), &[&probe()], &[], T);
        check_leak_path(mode, &run, &["posix_spawn", "posix_spawnp", "execvp", "execve"], None);
    }
}

// ---------------------------------------------------------------------------
// Intentional inheritance in fix mode

#[test]
fn fix_keeps_bash_redirection() {
    let dir = common::tmpdir("bash-redir");
    let f = dir.join("out.txt");
    let script = format!("{} 5>{}", probe(), f.display());
    let run = run_mode(Mode::Fix, Path::new("/bin/bash"), &["-c", &script], &[], T);
    let fds = probe_out(&run)["fds"].clone();
    assert_eq!(fds, json!([{"fd": 5, "kind": "file", "detail": f.to_str().unwrap()}]), "{}", run.context());
}

#[test]
fn fix_keeps_nohup_sighup() {
    let run = run_mode(Mode::Fix, Path::new("/usr/bin/nohup"), &[&probe()], &[], T);
    let ign = common::strs(&probe_out(&run)["ignored"]);
    assert!(ign.contains(&"SIGHUP".to_string()), "{}", run.context());
}

#[test]
fn fix_keeps_shell_trap_ignore() {
    let script = format!("trap '' PIPE; {}; true", probe());
    let run = run_mode(Mode::Fix, Path::new("/bin/sh"), &["-c", &script], &[], T);
    let ign = common::strs(&probe_out(&run)["ignored"]);
    assert!(ign.contains(&"SIGPIPE".to_string()), "trap '' PIPE is meant for the commands too\n{}", run.context());
}

#[test]
fn fix_keeps_make_jobserver() {
    let dir = common::tmpdir("make-js");
    std::fs::write(dir.join("Makefile"), "all:\n\t+$(MAKE) -f sub.mk\n").unwrap();
    std::fs::write(dir.join("sub.mk"), "all: a b c\na b c:\n\t@sleep 0.1; echo $@ > $@.out\n").unwrap();
    for mode in Mode::ALL {
        let run = run_mode(mode, Path::new("/usr/bin/make"), &["-j2", "-C", dir.to_str().unwrap()], &[], T);
        assert!(run.status.success(), "{}", run.context());
        assert!(!run.stderr.contains("jobserver unavailable"), "the sub-make lost the jobserver\n{}", run.context());
        assert!(!run.stderr.contains("execguard"), "{}", run.context());
    }
}

// ---------------------------------------------------------------------------
// system() keeps its POSIX semantics under the shim

#[test]
fn c_system_semantics_unchanged() {
    let want = "null=1\nexit3=1,3\nterm=1,15\nmissing=1,127\n\
during=SigBlk: 0000000000010000,SigIgn: 0000000000000006,\n\
after=SigBlk: 0000000000000000,SigIgn: 0000000000000000,\n\
threads_bad=0\n";
    for mode in Mode::ALL {
        let run = run_mode(mode, &common::c_prog("spawn_paths"), &["system_semantics", "-"], &[], T);
        assert!(run.status.success(), "{}", run.context());
        assert_eq!(run.stdout, want, "{}", run.context());
    }
}

/// With SIGCHLD ignored the kernel reaps the child itself: system() and pclose()
/// return -1 with ECHILD, also when the shim ran the command (a listener is held)
/// — it answered -1 with the caller's old errno.
#[test]
fn c_system_pclose_echild_kept() {
    for mode in Mode::ALL {
        let run = run_mode(mode, &common::c_prog("spawn_paths"), &["sigchld_ign", "-"], &[], T);
        assert!(run.status.success(), "{}", run.context());
        assert_eq!(run.stdout, "system=-1 ECHILD\npclose=-1 ECHILD\n", "{}", run.context());
    }
}

// ---------------------------------------------------------------------------
// The C paths again: in programs linked against musl, whose system() and popen()
// reach the kernel through its own posix_spawn and internal execve, bound inside
// libc where no preload can interpose (the shim hooks the public entry points);
// and under c-tests/seccomp_deny.c (newer system calls refused with ENOSYS or EPERM;
// CPython's close_fds then falls back from close_range to closing one by one).

in_other_environments!(
    everywhere: [
        c_system,
        c_popen,
        c_posix_spawn,
        c_posix_spawnp,
        c_vfork_execve,
        c_posix_spawn_file_actions_and_mask_honoured,
        c_posix_spawn_file_actions_decide_what_the_child_holds,
        c_a_servers_reload_of_itself_is_not_its_leak,
        c_a_server_reloading_into_a_newly_installed_shim_keeps_what_it_holds,
        c_posix_spawn_fix_closes_in_the_child_and_leaves_the_parent_alone,
        c_system_popen_file_leak_reported_once,
        c_system_blocking_while_child_connects_back,
        fix_keeps_bash_redirection,
        c_system_pclose_echild_kept,
    ],
    // On arm64: a static parent's /proc/PID/exe is qemu (c_static_parent_*), the
    // probe's SigIgn in /proc/self/status shows qemu's own handlers
    // (fix_keeps_nohup_sighup, fix_keeps_shell_trap_ignore), and the Python
    // scenarios run the x86-64 interpreter: nothing arm64 in them. qemu-user 7.2
    // deadlocks now and then when two threads of a program fork at once
    // (c_system_semantics_unchanged's two threads running system()): the child
    // stays in qemu's futex waits before its exec and the caller waits for it for
    // ever. Seen without any preload: once in 316 runs of `spawn_paths
    // system_semantics` under load (6 Dec 2026), and once in a full CI run.
    not_on_aarch64: [
        c_system_semantics_unchanged,
        c_static_parent_caught_by_start_side,
        fix_keeps_nohup_sighup,
        fix_keeps_shell_trap_ignore,
        python_subprocess_close_fds_false,
        python_os_system_leaks_fd_and_sigpipe,
        python_os_posix_spawn,
        python_os_posix_spawn_file_actions,
        python_pass_fds_kept_and_not_reported,
        python_os_popen_nothing_to_report,
    ],
    only_on_aarch64: [],
);

/// Without pidfd_open the blocked system() is watched by polling: the scenario
/// above checks the interval; here the fallback is named once, in the log only.
#[test]
fn seccomp_system_blocking_names_its_fallback() {
    let prog = common::c_prog("spawn_paths");
    for (flavour, errno) in [("enosys", "ENOSYS"), ("eperm", "EPERM")] {
        common::under_seccomp(flavour, || {
            let run = run_mode(Mode::Log, &prog, &["system_blocking", prog.to_str().unwrap()], &[], T);
            let evs = run.events();
            let deg: Vec<_> = named(&evs, "degraded").into_iter().filter(|e| e["pid"] == run.pid).collect();
            assert_eq!(deg.len(), 1, "{}", run.context());
            check_common(deg[0], Mode::Log, "info", "logged");
            assert_eq!((deg[0]["path"].as_str(), deg[0]["errno"].as_str()), (Some("pidfd_open"), Some(errno)), "{}", deg[0]);
            assert!(!run.stderr.contains("execguard"), "{}", run.context());
        });
    }
}
