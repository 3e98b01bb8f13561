//! Issue 5, provenance end to end: with `execguard run --origins` the shim records
//! where each fd was made and where signals were blocked; `execguard report` turns
//! the shim's real `module+0xoffset` into function and line.

mod common;

use std::process::Command;

const SRC: &str = r#"#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
__attribute__((noinline)) int make_listener(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* SOCKET */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    bind(fd, (void *)&a, sizeof a);
    listen(fd, 1);
    return fd;
}
__attribute__((noinline)) void block_alarm(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* BLOCK */
}
int main(void) {
    make_listener();
    block_alarm();
    pid_t p = fork();
    if (p == 0) {
        execl("/bin/true", "true", (char *)0);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    return 0;
}
"#;

/// Build `src` with `cc FLAGS` into a fresh directory and run it once under
/// `execguard run --origins` with `args`: the program and its log.
fn build_and_run(tag: &str, name: &str, src: &str, flags: &[&str], args: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let d = common::tmpdir(tag);
    let c = d.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let prog = d.join(name);
    let st = Command::new("cc").args(flags).arg("-o").arg(&prog).arg(&c).status().unwrap();
    assert!(st.success());
    let log = d.join("log.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_execguard"))
        .args(["run", "--origins", "--log"])
        .arg(&log)
        .arg("--")
        .arg(&prog)
        .args(args)
        .env("EXECGUARD_LIB", common::shim())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    (prog, log)
}

fn line_of(mark: &str) -> usize {
    SRC.lines().position(|l| l.contains(mark)).unwrap() + 1
}

#[test]
fn origins_from_the_shim_resolve_to_function_and_line() {
    let (prog, log) = build_and_run("provenance", "prov", SRC, &["-g", "-O0", "-pthread"], &[]);
    let bin = env!("CARGO_BIN_EXE_execguard");

    // The shim's own fields: module+offset of the calls in prov.
    let evs = common::events(&log);
    let leak = common::named(&evs, "exec_fd_leak");
    assert_eq!(leak.len(), 1, "{evs:?}");
    let fd = &leak[0]["fds"][0];
    assert_eq!(fd["kind"], "tcp_listen", "{fd}");
    let origin = fd["origin"].as_str().unwrap_or_else(|| panic!("no origin: {fd}"));
    assert!(origin.starts_with(&format!("{}+0x", prog.canonicalize().unwrap().display())), "{origin}");
    let mask = common::named(&evs, "exec_sigmask");
    assert_eq!(mask.len(), 1, "{evs:?}");
    assert!(mask[0]["blocked_by"].as_str().unwrap_or("").contains("prov+0x"), "{}", mask[0]);

    // The report resolves both to function and line.
    let rep = Command::new(bin).arg("report").arg(&log).output().unwrap();
    let text = String::from_utf8_lossy(&rep.stdout);
    assert!(text.contains("make_listener ("), "{text}");
    assert!(text.contains(&format!("prov.c:{})", line_of("SOCKET"))), "{text}");
    assert!(text.contains(&format!("prov.c:{})", line_of("BLOCK"))), "{text}");
}

const FORTIFIED: &str = r#"#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    /* Flags known only at run time: a _FORTIFY_SOURCE build calls __open_2. */
    int fd = open("/dev/null", atoi(argc > 1 ? argv[1] : "0")); /* OPEN */
    if (fd < 0)
        return 1;
    for (int i = 0; i < 3; i++) {
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/true", "true", (char *)0);
            _exit(127);
        }
        waitpid(p, 0, 0);
    }
    return 0;
}
"#;

/// Debian builds its packages with `_FORTIFY_SOURCE`: their `open` with flags known
/// only at run time is glibc's `__open_2`. The shim sees that fd made too: its
/// origin is named, and the flag the call gave is recorded (one finding, counted).
#[test]
fn a_fortified_open_is_seen_like_open() {
    let (prog, log) = build_and_run("fortified", "fort", FORTIFIED, &["-g", "-O2", "-D_FORTIFY_SOURCE=2"], &["0"]);
    let nm = Command::new("nm").arg("-D").arg(&prog).output().unwrap();
    assert!(String::from_utf8_lossy(&nm.stdout).contains("__open_2"), "the build must call __open_2");
    let evs = common::events(&log);
    let leak = common::named(&evs, "exec_fd_leak");
    assert!(!leak.is_empty(), "{evs:?}");
    let fd = &leak[0]["fds"][0];
    let origin = fd["origin"].as_str().unwrap_or_else(|| panic!("no origin: {fd}"));
    assert!(origin.starts_with(&format!("{}+0x", prog.canonicalize().unwrap().display())), "{origin}");
    assert_eq!(common::occurrences(leak.iter().copied()), 3, "{evs:?}");
}
