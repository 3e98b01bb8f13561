//! The demo's incident programs (`execguard __demo parent|probe INCIDENT`), in Rust so
//! that the demo needs no C compiler. std marks every fd CLOEXEC and resets signals
//! for its children, so the parents use libc directly — socket, fork, execv, system —
//! to make the same mistakes the real servers made. Every wait is bounded.
//!
//! The probe (the child) prints one JSON line of what it observed about itself.

use super::inherited;
use serde_json::json;
use std::ffi::CString;
use std::time::{Duration, Instant};

pub const INCIDENTS: [&str; 4] = ["listen", "pool", "mask", "sigpipe"];
/// Sockets in the UDP pool: enough to push the child's next fd past FD_SETSIZE.
pub const POOL: usize = 1030;
const CHILD_LIMIT: Duration = Duration::from_secs(2);

pub fn main(role: &str, args: &[String]) -> i32 {
    let incident = args.first().map(String::as_str).unwrap_or("");
    match role {
        "parent" => parent(incident),
        "probe" => probe(incident),
        _ => super::fail(format!("unknown demo role {role:?}")),
    }
}

fn say(v: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn self_exe() -> CString {
    let p = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    CString::new(p.into_os_string().into_encoded_bytes()).unwrap_or_default()
}

/// fork + execv of `execguard __demo probe INCIDENT`, then a bounded wait. Argument
/// strings are built before the fork: the child only calls execv and _exit.
fn spawn_probe(incident: &str) -> (i32, bool) {
    let exe = self_exe();
    let args: Vec<CString> = ["execguard", "__demo", "probe", incident]
        .iter()
        .map(|s| CString::new(*s).unwrap_or_default())
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: between fork and exec the child calls only execv and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: pointers into CStrings kept alive by the parent's copy of memory.
        unsafe {
            libc::execv(exe.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        return (-1, false);
    }
    wait_bounded(pid)
}

/// (wait status, hung): a child still running after CHILD_LIMIT is killed by pid.
fn wait_bounded(pid: i32) -> (i32, bool) {
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid || r < 0 {
            return (status, false);
        }
        if start.elapsed() > CHILD_LIMIT {
            // SAFETY: the pid is our own unreaped child, so it cannot have been reused.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return (status, true);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn report_parent(status: i32, hung: bool) -> i32 {
    say(json!({"parent": true, "status": status, "hang": hung}));
    0
}

fn parent(incident: &str) -> i32 {
    if incident != "sigpipe" {
        // std ignored SIGPIPE before main; only incident 4 is about that.
        // SAFETY: plain disposition change before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match incident {
        "listen" => parent_listen(),
        "pool" => parent_pool(),
        "mask" => parent_mask(),
        "sigpipe" => {
            // Python and Rust runtimes ignore SIGPIPE for themselves; it survives exec.
            // SAFETY: plain disposition change in a single-threaded program.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            let (st, hung) = spawn_probe("sigpipe");
            report_parent(st, hung)
        }
        _ => super::fail(format!("unknown incident {incident:?}")),
    }
}

/// nginx's worker: a listening socket without CLOEXEC, then `system()` of a command.
fn parent_listen() -> i32 {
    // SAFETY: socket/bind/listen on stack structs; the fd is ours.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return super::fail("socket() failed");
        }
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        a.sin_port = 0;
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &a as *const _ as *const libc::sockaddr, len) != 0 || libc::listen(fd, 16) != 0 {
            return super::fail("bind/listen on 127.0.0.1 failed");
        }
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        libc::getsockname(fd, &mut got as *mut _ as *mut libc::sockaddr, &mut glen);
        (fd, u16::from_be(got.sin_port))
    };
    say(json!({"listening": port}));
    let cmd = format!("exec '{}' __demo probe listen", self_exe().to_string_lossy());
    let c = CString::new(cmd).unwrap_or_default();
    // SAFETY: system() with a NUL-terminated command; the probe is bounded by itself.
    let st = unsafe { libc::system(c.as_ptr()) };
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    report_parent(st, false)
}

/// A monitor's pool of UDP sockets, then a probe started with fork+exec.
fn parent_pool() -> i32 {
    let need = (POOL + 64) as libc::rlim_t;
    // SAFETY: get/setrlimit on a stack struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        if rl.rlim_cur < need {
            if rl.rlim_max < need {
                say(json!({"skip": format!("RLIMIT_NOFILE hard limit {} < {need}", rl.rlim_max)}));
                return 0;
            }
            rl.rlim_cur = need.max(2048).min(rl.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
    let mut pool = Vec::with_capacity(POOL);
    for _ in 0..POOL {
        // SAFETY: plain socket(); the fds are closed below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
        if fd < 0 {
            break;
        }
        pool.push(fd);
    }
    let (st, hung) = spawn_probe("pool");
    for fd in pool {
        // SAFETY: our own fds.
        unsafe { libc::close(fd) };
    }
    report_parent(st, hung)
}

/// uWSGI with threads: a worker thread blocks every signal, then starts a program.
fn parent_mask() -> i32 {
    let t = std::thread::spawn(|| {
        // SAFETY: full set on the stack, applied to this thread only.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        }
        spawn_probe("mask")
    });
    let (st, hung) = t.join().unwrap_or((-1, false));
    report_parent(st, hung)
}

static ALARM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_alarm(_: i32) {
    ALARM.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn probe(incident: &str) -> i32 {
    let fds = held_fds();
    let listeners: Vec<u16> = fds.iter().filter_map(|f| f.1).collect();
    let mut obs = json!({
        "probe": incident,
        "inherited_fds": fds.len(),
        "listeners": listeners,
        "blocked": inherited::names(inherited::blocked()),
        "ignored": inherited::names(inherited::ignored()),
    });
    match incident {
        "pool" => {
            // The probe's own first socket, and select() on it as an old program would.
            // SAFETY: socket(), then select() over a buffer big enough for any fd we
            // could get (the overflow hits our buffer, not the stack).
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            obs["new_fd"] = json!(fd);
            if fd >= 0 {
                let mut bits = vec![0u64; (fd as usize / 64) + 1];
                bits[fd as usize / 64] |= 1 << (fd as usize % 64);
                let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
                // SAFETY: the set covers nfds bits.
                let r = unsafe {
                    libc::select(fd + 1, bits.as_mut_ptr() as *mut libc::fd_set, std::ptr::null_mut(), std::ptr::null_mut(), &mut tv)
                };
                obs["select"] = json!(r);
            }
        }
        "mask" => {
            // hping3's timer: SIGALRM after 200 ms, waited for at most 1 s.
            // SAFETY: handler only stores an atomic; setitimer on a stack struct.
            unsafe {
                libc::signal(libc::SIGALRM, on_alarm as *const () as libc::sighandler_t);
                let it = libc::itimerval {
                    it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
                    it_value: libc::timeval { tv_sec: 0, tv_usec: 200_000 },
                };
                libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut());
            }
            let start = Instant::now();
            while !ALARM.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(10));
            }
            obs["alarm_fired"] = json!(ALARM.load(std::sync::atomic::Ordering::Relaxed));
        }
        "sigpipe" => obs["sigpipe_ignored"] = json!(inherited::was_ignored(libc::SIGPIPE)),
        _ => {}
    }
    say(obs);
    0
}

/// fds ≥ 3 this process holds, each with its port when it is a listening socket.
fn held_fds() -> Vec<(i32, Option<u16>)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut v: Vec<(i32, Option<u16>)> = dir
        .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| *fd >= 3)
        .filter(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).map(|l| !l.ends_with("fd")).unwrap_or(false))
        .map(|fd| (fd, listening_port(fd)))
        .collect();
    v.sort();
    v
}

fn listening_port(fd: i32) -> Option<u16> {
    // SAFETY: getsockopt/getsockname into stack buffers; fails harmlessly on non-sockets.
    unsafe {
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN, &mut on as *mut _ as *mut libc::c_void, &mut len) != 0
            || on == 0
        {
            return None;
        }
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        let mut alen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::getsockname(fd, &mut a as *mut _ as *mut libc::sockaddr, &mut alen) != 0 {
            return Some(0);
        }
        Some(u16::from_be(a.sin_port))
    }
}
