//! Issue 3, the parts between hooks: the posix_spawn fix racing a fork+exec in
//! another thread, following children whose environment drops the shim, and the
//! start side staying quiet about what the parent's shim already reported.

#[macro_use]
mod common;

use common::{named, run_mode, run_mode_with, Mode};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn posix_spawn_fix_does_not_steal_fds_other_threads_keep_on_purpose() {
    let prog = common::c_prog("spawn_race");
    for mode in [Mode::Log, Mode::Fix] {
        let run = run_mode(mode, &prog, &["300"], &[], T);
        assert!(run.status.success(), "{}", run.context());
        assert_eq!(run.stdout.trim(), "spawned=300 kept=300 lost=0 flag_after=0", "{}", run.context());
        let evs = run.events();
        let leaks: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["via"] == "posix_spawn").collect();
        // The fd leaks into every /bin/true; the children that keep it on purpose are
        // not findings. One finding: written once, the other 299 counted.
        assert_eq!(common::occurrences(leaks.iter().copied()), 300, "{}", run.context());
        assert!(leaks.len() <= 3, "one finding, one line (+ interval/exit lines)\n{}", run.context());
        // A child that cleared fd 3's CLOEXEC keeps it on purpose: nothing to report.
        // A child that dup2'd it onto 50 keeps 50 on purpose, but fd 3 still leaks.
        let tests: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["target"] == "/usr/bin/test").collect();
        let fds_of = |e: &serde_json::Value| -> Vec<u64> { e["fds"].as_array().unwrap().iter().map(|f| f["fd"].as_u64().unwrap()).collect() };
        assert!(tests.iter().all(|e| e["argv"][2] == "/proc/self/fd/50"), "fcntl-kept fd reported\n{}", run.context());
        if mode == Mode::Log {
            assert_eq!(common::occurrences(tests.iter().copied()), 150, "{}", run.context());
        } else {
            // The race, visible: a fork that lands inside another thread's
            // posix_spawn window already sees fd 3 close-on-exec, so that exec has
            // nothing to report — and fix mode would have closed fd 3 there anyway.
            let n = common::occurrences(tests.iter().copied());
            assert!(n <= 150, "{}", run.context());
            eprintln!("fix mode: {n} of 150 dup2 children saw fd 3 still inheritable");
        }
        assert!(tests.iter().all(|e| fds_of(e) == [3]), "dup2 target reported\n{}", run.context());
    }
}

fn python_env_dropping_child(follow: bool) -> (String, Vec<serde_json::Value>) {
    let dir = common::tmpdir("follow");
    let log = dir.join("log.jsonl");
    let script = "import subprocess,sys\n\
        out = subprocess.run(['/bin/sh','-c','grep -c execguard /proc/$$/maps; echo mode=$EXECGUARD_MODE'],\n\
        env={'PATH':'/usr/bin:/bin'}, capture_output=True, text=True).stdout\n\
        sys.stdout.write(out)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .env("LD_PRELOAD", common::shim())
        .env("EXECGUARD_MODE", "fix")
        .env("EXECGUARD_LOG", &log)
        .env("EXECGUARD_FOLLOW", if follow { "1" } else { "0" })
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), common::events(&log))
}

#[test]
fn follow_reinjects_the_shim_into_an_env_dropping_child() {
    let (without, _) = python_env_dropping_child(false);
    assert_eq!(without.lines().collect::<Vec<_>>(), ["0", "mode="], "{without}");
    let (with, _) = python_env_dropping_child(true);
    let lines: Vec<_> = with.lines().collect();
    assert!(lines[0].parse::<u32>().unwrap() > 0, "the shell maps the shim: {with}");
    assert_eq!(lines[1], "mode=fix", "{with}");
}

/// The same for `system()` and `popen()` (c-tests/env_dropping_shell.c: nginx's
/// workers run `os.execute` and `io.popen` commands so, with the environment nginx
/// built for them): glibc execs the shell internally with `environ`, so in follow
/// mode the shim runs such a command itself, with the shim put back (before: the
/// shell ran without it). From a caller with strays, log and fix mode.
#[test]
fn follow_reinjects_the_shim_into_system_and_popen() {
    for (follow, mode) in [("0", "log"), ("1", "log"), ("1", "fix")] {
        let dir = common::tmpdir("follow-shell");
        let mut cmd = common::command(&common::c_prog("stray_launch"));
        cmd.arg(common::c_prog("env_dropping_shell"))
            .env_remove("LD_PRELOAD")
            .env("STRAY_PRELOAD", common::shim())
            .env("EXECGUARD_MODE", mode)
            .env("EXECGUARD_LOG", dir.join("log.jsonl"))
            .env("EXECGUARD_FOLLOW", follow);
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let ctx = format!("[follow={follow} {mode}]\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{ctx}");
        for via in ["system", "popen"] {
            let line = text.lines().find_map(|l| l.strip_prefix(&format!("{via}: "))).unwrap_or_else(|| panic!("{ctx}"));
            let (maps, seen) = line.split_once(' ').unwrap_or_else(|| panic!("{ctx}"));
            let maps: u32 = maps.parse().unwrap_or_else(|_| panic!("{ctx}"));
            if follow == "1" {
                assert!(maps > 0 && seen == format!("mode={mode}"), "{via}: the shell maps the shim\n{ctx}");
            } else {
                assert!(maps == 0 && seen == "mode=", "{via}\n{ctx}");
            }
        }
        // The caller's strays are named once, by the program; the followed shells,
        // marked by the shim's own spawn, do not name them again.
        let evs = common::events(&dir.join("log.jsonl"));
        let starts: Vec<Vec<u64>> = evs.iter().filter(|e| e["event"] == "startup_fds").map(|e| e["fds"].as_array().unwrap().iter().filter_map(|f| f["fd"].as_u64()).collect()).collect();
        assert_eq!(starts, [vec![10, 251, 500]], "{ctx}\n{evs:?}");
    }
}

/// An environment dropped below a hop that vouched for an fd (`EXECGUARD_HELD`): the
/// settings are put back once each, and the marks are the new hop's own, not a copy
/// of the ones the dropping program started with (getenv finds the first).
#[test]
fn follow_puts_each_variable_back_once() {
    let dir = common::tmpdir("follow-once");
    let log = dir.join("log.jsonl");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exec 9</dev/null; sh -c 'env -i /usr/bin/env'"])
        .env("LD_PRELOAD", common::shim())
        .env("EXECGUARD_LOG", &log)
        .env("EXECGUARD_FOLLOW", "1");
    common::isolate(&mut cmd);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_once('=')).map(|(n, _)| n).collect();
    for name in ["LD_PRELOAD", "EXECGUARD_LOG", "EXECGUARD_FOLLOW", "EXECGUARD_AUDITED", "EXECGUARD_HELD"] {
        assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{name} once in the re-injected environment:\n{text}");
    }
    assert!(text.lines().any(|l| l == "EXECGUARD_HELD=9"), "{text}");
}

#[test]
fn start_side_stays_quiet_about_what_the_exec_reported() {
    // listen_leak forks and execs the probe with a leaked listener (see incidents.rs).
    let prog = common::c_prog("spawn_paths");
    let probe = common::c_prog("probe");
    let probe = probe.to_str().unwrap();
    for (always, want_startup) in [(false, 0usize), (true, 1usize)] {
        let env: Vec<(&str, &str)> = if always { vec![("EXECGUARD_STARTUP", "always")] } else { vec![] };
        let run = run_mode_with(Mode::Log, &prog, &["fork", probe], &env, T, true);
        assert!(run.status.success(), "{}", run.context());
        let evs = run.events();
        let leak: Vec<_> = named(&evs, "exec_fd_leak").into_iter().filter(|e| e["ppid"] == run.pid).collect();
        assert_eq!(leak.len(), 1, "{}", run.context());
        let child = leak[0]["pid"].clone();
        let startup = named(&evs, "startup_fds").into_iter().filter(|e| e["pid"] == child).count();
        assert_eq!(startup, want_startup, "EXECGUARD_STARTUP={always}\n{}", run.context());
    }
}

/// The exec audit asks the kernel only about signals whose disposition a hook saw
/// change since the start audit (hooks/sigdisp.rs): every libc way of ignoring a
/// signal is seen, from another thread too, and so is a change back to SIG_DFL. A
/// raw `rt_sigaction` system call is not (docs/policy.md): that signal is missing
/// from the exec's event, and the probe still gets it ignored. Driver:
/// c-tests/sig_setters.c, which ignores SIGUSR1 one way and SIGUSR2 with signal()
/// from a second thread, then fork+execs the probe.
#[test]
fn every_way_of_ignoring_a_signal_is_seen_at_the_exec() {
    let probe = common::c_prog("probe");
    let probe = probe.to_str().unwrap();
    let prog = common::c_prog("sig_setters");
    let ways = ["signal", "sigaction", "__sigaction", "bsd_signal", "sysv_signal", "ssignal", "sigset", "sigignore", "raw", "none"];
    for mode in [Mode::Log, Mode::Fix] {
        for way in ways {
            for back in [false, true] {
                let mut args = vec![way, probe];
                if back {
                    args.push("then-default");
                }
                let run = run_mode(mode, &prog, &args, &[], T);
                let ctx = format!("{way} back={back} {mode:?}\n{}", run.context());
                assert!(run.stdout.contains("status=exit:0"), "{ctx}");
                let line = run.stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no probe line\n{ctx}"));
                let got: serde_json::Value = serde_json::from_str(line).unwrap();
                let ignored: Vec<&str> = got["ignored"].as_array().unwrap().iter().filter_map(|s| s.as_str()).filter(|s| s.starts_with("SIGUSR")).collect();
                let usr1_ignored = way != "none" && !back;
                let seen = usr1_ignored && way != "raw";
                let mut want_reported = vec![];
                if seen {
                    want_reported.push("SIGUSR1");
                }
                want_reported.push("SIGUSR2");
                let evs = run.events();
                let sigign = named(&evs, "exec_sigign");
                assert_eq!(sigign.len(), 1, "{ctx}");
                let reported: Vec<&str> = sigign[0]["signals"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
                assert_eq!(reported, want_reported, "{ctx}");
                // What the probe got: fix mode resets what it reported.
                let mut want_held = vec![];
                if usr1_ignored && (mode == Mode::Log || !seen) {
                    want_held.push("SIGUSR1");
                }
                if mode == Mode::Log {
                    want_held.push("SIGUSR2");
                }
                assert_eq!(ignored, want_held, "{ctx}");
            }
        }
    }
}

/// The fds a new program holds travel with the marker (`EXECGUARD_HELD`), so that it
/// records them without listing its fd table, and only where the audit can vouch
/// for them: on every path from a caller with stray fds (10, 251, 500) the list is
/// exactly what the probe holds; a posix_spawn whose file actions open fd 20 in the
/// child carries none (the child lists, and passes fd 20 on as its inheritance, not
/// its leak); a grandchild gets the list again from the child's own exec. Under
/// seccomp filters that refuse newer calls as well. On musl and on glibc before 2.32
/// (no cheap thread count: `counts_threads_cheaply`) the program's own execs carry
/// none: its children list their fds, and the findings are the same.
#[test]
fn the_held_list_is_exact_or_absent() {
    let vouched = common::counts_threads_cheaply();
    for mode in [Mode::Log, Mode::Fix] {
        let d = common::tmpdir(&format!("held-list-{}-{}-{}", mode.name(), common::is_musl(), common::seccomp_flavour().unwrap_or("none")));
        let log = d.join("log.jsonl");
        let out = d.join("probes.jsonl");
        let res = common::command(&common::c_prog("stray_launch"))
            .arg(common::c_prog("held_check"))
            .arg(&out)
            .current_dir(&d)
            .env_remove("LD_PRELOAD")
            .env("STRAY_PRELOAD", common::shim())
            .env("EXECGUARD_LOG", &log)
            .env("EXECGUARD_MODE", mode.name())
            .output()
            .unwrap();
        let probes: Vec<serde_json::Value> =
            std::fs::read_to_string(&out).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let ctx = format!(
            "[{}] {}\n{}\nprobes:\n{}\nlog:\n{}",
            mode.name(),
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr),
            std::fs::read_to_string(&out).unwrap_or_default(),
            common::read_lossy(&log)
        );
        assert!(res.status.success(), "{ctx}");
        let fds_of = |p: &serde_json::Value| -> Vec<u64> { p["fds"].as_array().unwrap().iter().filter_map(|f| f.as_u64()).collect() };
        let held_of = |p: &serde_json::Value| -> Option<Vec<u64>> {
            let h = p["held"].as_str()?;
            let mut v = Vec::new();
            for item in h.split(',').filter(|s| !s.is_empty()) {
                let (lo, hi) = item.split_once('-').map_or((item, item), |(a, b)| (a, b));
                v.extend(lo.parse::<u64>().unwrap()..=hi.parse::<u64>().unwrap());
            }
            Some(v)
        };
        let case = |name: &str| probes.iter().find(|p| p["case"] == name).unwrap_or_else(|| panic!("no probe {name}\n{ctx}"));
        for name in ["forkexec", "posix_spawn", "system", "popen"] {
            let p = case(name);
            assert_eq!(fds_of(p), [10, 251, 500], "{name}\n{ctx}");
            match held_of(p) {
                Some(h) => assert_eq!(h, fds_of(p), "{name}: the list is what the probe holds\n{ctx}"),
                None => assert!(!vouched, "{name}: no list\n{ctx}"),
            }
        }
        // The file action's fd: no list for the child, which then holds 20 as well,
        // and hands it on with the rest; its own exec vouches for all four.
        let a = case("actions");
        assert_eq!(held_of(a), None, "{ctx}");
        assert_eq!(fds_of(a), [10, 20, 251, 500], "{ctx}");
        let g = case("actions/grandchild");
        assert_eq!(fds_of(g), [10, 20, 251, 500], "{ctx}");
        if vouched || !g["held"].is_null() {
            assert_eq!(g["held"], "10,20,251,500", "{ctx}");
        }
        // A parent with a second thread: a list only if it is exact.
        let t = case("threaded");
        if let Some(h) = held_of(t) {
            assert_eq!(h, fds_of(t), "{ctx}");
        }
        // Everything was passed through: no leak anywhere, fd 20 included.
        let evs = common::events(&log);
        assert!(named(&evs, "exec_fd_leak").is_empty(), "{ctx}");
        assert_eq!(named(&evs, "startup_fds").len(), 1, "the strays are named once, where they came in\n{ctx}");
    }
}

/// Runs `held_check MODE OUT` under stray_launch (fds 10, 251 and 500 from the
/// caller) and checks each step's fork+exec and vfork+exec probe, `PREFIX-WAY-N`:
/// it holds exactly `steps[N-1]`'s fds and, where the exec could vouch
/// (`counts_threads_cheaply`, or a list came anyway), is told exactly that list. No `exec_fd_leak` anywhere.
/// Returns the log's events and the probes' lines.
fn flag_steps(mode: &str, prefix: &str, steps: &[&[u64]]) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let vouched = common::counts_threads_cheaply();
    let d = common::tmpdir(&format!("held-{mode}-{}-{}", common::is_musl(), common::seccomp_flavour().unwrap_or("none")));
    let log = d.join("log.jsonl");
    let out = d.join("probes.jsonl");
    let res = common::command(&common::c_prog("stray_launch"))
        .arg(common::c_prog("held_check"))
        .arg(mode)
        .arg(&out)
        .current_dir(&d)
        .env_remove("LD_PRELOAD")
        .env("STRAY_PRELOAD", common::shim())
        .env("EXECGUARD_LOG", &log)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let ctx = format!("{}\n{}\nprobes:\n{text}\nlog:\n{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr), common::read_lossy(&log));
    assert!(res.status.success(), "{ctx}");
    let probes: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for way in ["fork", "vfork"] {
        for (step, &fds) in steps.iter().enumerate() {
            let name = format!("{prefix}-{way}-{}", step + 1);
            let p = probes.iter().find(|p| p["case"] == name.as_str()).unwrap_or_else(|| panic!("no probe {name}\n{ctx}"));
            let got: Vec<u64> = p["fds"].as_array().unwrap().iter().filter_map(|f| f.as_u64()).collect();
            assert_eq!(got, fds, "{name}\n{ctx}");
            let list = fds.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(",");
            if vouched || !p["held"].is_null() {
                assert_eq!(p["held"], list.as_str(), "{name}\n{ctx}");
            }
        }
    }
    let events = common::events(&log);
    assert!(named(&events, "exec_fd_leak").is_empty(), "{ctx}");
    (events, probes)
}

const ALL: &[u64] = &[10, 251, 500];
const NO_10: &[u64] = &[251, 500];
const NO_500: &[u64] = &[10, 251];

/// The close-on-exec flags of inherited fds are learnt once, before the first fork
/// or vfork, and taken from there at later execs: a change through `fcntl` after
/// that must reach both the exec (fd 10 closed, then passed again) and the list the
/// new program is given.
#[test]
fn learnt_flags_of_inherited_fds_follow_a_change() {
    let _ = flag_steps("flags", "flags", &[ALL, NO_10, ALL]);
}

/// A program whose parent's audit vouched for the fds it hands over (EXECGUARD_HELD)
/// takes their flags from its start record (startfds::passed_flag), touching none of
/// fdgen's tables, until a hook sees the flag change: fd 10 made close-on-exec and
/// back by ioctl and fcntl, fd 500 by close_range (a change to many numbers) and
/// fcntl, with a fork+exec and a vfork+exec probe after each step. Every probe holds
/// what the kernel left it and is told exactly that. Then a vfork child sets fd 10
/// close-on-exec in its own fd table before its exec: its probe lacks 10, and the
/// parent's next probes (step 8) still get it. Fails if the record's answer
/// outlives a change (checked by making `passed_flag` ignore `flag_by`, and the
/// epoch).
#[test]
fn a_vouched_flag_follows_every_change_a_hook_sees() {
    let (events, probes) = flag_steps("marked", "vouched", &[ALL, NO_10, ALL, NO_10, ALL, NO_500, ALL, ALL]);
    // Said once, at the first program (the one that re-execs itself).
    assert_eq!(named(&events, "startup_fds").len(), 1, "{events:?}");
    let p = probes.iter().find(|p| p["case"] == "vouched-vfork-set").unwrap_or_else(|| panic!("{probes:?}"));
    let got: Vec<u64> = p["fds"].as_array().unwrap().iter().filter_map(|f| f.as_u64()).collect();
    assert_eq!(got, NO_10, "{p}");
    if common::counts_threads_cheaply() || !p["held"].is_null() {
        assert_eq!(p["held"], "251,500", "{p}");
    }
}

// The same on musl and under seccomp filters that refuse newer system calls.
in_other_environments!(
    everywhere: [
        the_held_list_is_exact_or_absent,
        learnt_flags_of_inherited_fds_follow_a_change,
        a_vouched_flag_follows_every_change_a_hook_sees,
    ],
    not_on_aarch64: [
    ],
    // Left out on arm64: every_way_of_ignoring_a_signal_*, whose probe reads SigIgn
    // in /proc/self/status, where qemu-user shows its own handlers.
    only_on_aarch64: [
        posix_spawn_fix_does_not_steal_fds_other_threads_keep_on_purpose,
        start_side_stays_quiet_about_what_the_exec_reported,
    ],
);
