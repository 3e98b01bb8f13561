//! The signal state this process was started with, captured before Rust's runtime
//! changes it (std ignores SIGPIPE before `main`). `run` hands exactly this state to
//! CMD, and the demo's probe reports it: a wrapper that tidied it up would hide the
//! very inheritance execguard is about.

use std::sync::atomic::{AtomicU64, Ordering};

static BLOCKED: AtomicU64 = AtomicU64::new(0);
static IGNORED: AtomicU64 = AtomicU64::new(0);

// .init_array of the executable runs after the preloaded libraries' constructors
// (so after the shim's start-side fixes) and before std's runtime setup.
#[used]
#[link_section = ".init_array"]
static CAPTURE: extern "C" fn() = capture;

extern "C" fn capture() {
    let mut blocked = 0u64;
    let mut ignored = 0u64;
    // SAFETY: plain queries into stack buffers; nothing else runs this early.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) == 0 {
            for sig in 1..=64 {
                if libc::sigismember(&set, sig) == 1 {
                    blocked |= 1 << (sig - 1);
                }
            }
        }
        for sig in 1..=64 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                ignored |= 1 << (sig - 1);
            }
        }
    }
    BLOCKED.store(blocked, Ordering::Relaxed);
    IGNORED.store(ignored, Ordering::Relaxed);
}

/// Bit `n-1` set: signal `n` was blocked at start.
pub fn blocked() -> u64 {
    BLOCKED.load(Ordering::Relaxed)
}

/// Bit `n-1` set: signal `n` was ignored at start.
pub fn ignored() -> u64 {
    IGNORED.load(Ordering::Relaxed)
}

pub fn was_ignored(sig: i32) -> bool {
    (1..=64).contains(&sig) && ignored() & (1 << (sig - 1)) != 0
}

/// Puts the start-time mask and the start-time SIGPIPE disposition back. For a
/// `pre_exec` closure: async-signal-safe, no allocation.
pub fn restore_in_child() {
    let blocked = blocked();
    // SAFETY: sigemptyset/sigaddset on a stack set, sigprocmask and signal are
    // async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in 1..=64 {
            if blocked & (1 << (sig - 1)) != 0 {
                libc::sigaddset(&mut set, sig);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        let pipe = if was_ignored(libc::SIGPIPE) { libc::SIG_IGN } else { libc::SIG_DFL };
        libc::signal(libc::SIGPIPE, pipe);
    }
}

/// Signal name for the numbers the demo and the tests talk about.
pub fn signal_name(sig: i32) -> String {
    let known = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPWR, "SIGPWR"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    match known.iter().find(|(n, _)| *n == sig) {
        Some((_, name)) => (*name).to_string(),
        None if sig >= libc::SIGRTMIN() && sig <= libc::SIGRTMAX() => format!("SIGRTMIN+{}", sig - libc::SIGRTMIN()),
        None => format!("signal {sig}"),
    }
}

/// Names of the signals whose bits are set in `bits`.
pub fn names(bits: u64) -> Vec<String> {
    (1..=64).filter(|s| bits & (1u64 << (s - 1)) != 0).map(signal_name).collect()
}
