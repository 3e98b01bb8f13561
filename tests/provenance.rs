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

fn line_of(mark: &str) -> usize {
    SRC.lines().position(|l| l.contains(mark)).unwrap() + 1
}

#[test]
fn origins_from_the_shim_resolve_to_function_and_line() {
    let d = common::tmpdir("provenance");
    let src = d.join("prov.c");
    std::fs::write(&src, SRC).unwrap();
    let prog = d.join("prov");
    let st = Command::new("cc").args(["-g", "-O0", "-pthread", "-o"]).arg(&prog).arg(&src).status().unwrap();
    assert!(st.success());
    let log = d.join("log.jsonl");
    let bin = env!("CARGO_BIN_EXE_execguard");
    let run = Command::new(bin)
        .args(["run", "--origins", "--log"])
        .arg(&log)
        .arg("--")
        .arg(&prog)
        .env("EXECGUARD_LIB", common::shim())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

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
    assert!(text.contains(&format!("make_listener (")), "{text}");
    assert!(text.contains(&format!("prov.c:{})", line_of("SOCKET"))), "{text}");
    assert!(text.contains(&format!("prov.c:{})", line_of("BLOCK"))), "{text}");
}
