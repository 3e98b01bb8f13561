//! The signal state `execguard run` itself was started with (src/cli/inherited.rs),
//! which it hands on to the command unchanged: signals its caller ignored or blocked
//! (a background job of a shell without job control starts with SIGINT and SIGQUIT
//! ignored; some supervisors block signals for their children). The command's first
//! process reports them at its start (`startup_sigign`, `startup_sigmask`), as it
//! must; the run names them once in the summary as the caller's, and they are not
//! the command's warnings.

use super::events::Event;
use super::inherited;

pub const STARTUP_SIGIGN: &str = "startup_sigign";
pub const STARTUP_SIGMASK: &str = "startup_sigmask";

/// What the run was started with: bit `n-1` for signal `n`.
#[derive(Clone, Copy, Default)]
pub struct CallerSigs {
    pub ignored: u64,
    pub blocked: u64,
}

impl CallerSigs {
    /// As captured before Rust's runtime changed anything (`inherited`).
    pub fn at_start() -> Self {
        CallerSigs { ignored: inherited::ignored(), blocked: inherited::blocked() }
    }
}

/// A start-side event of the command's first process (a child of this run) about
/// signals that were all ignored, or all blocked, when the run itself started.
pub fn is_callers(e: &Event, c: &CallerSigs, run_pid: u32) -> bool {
    if e.ppid != i64::from(run_pid) || e.signals.is_empty() {
        return false;
    }
    let set = match e.event.as_str() {
        STARTUP_SIGIGN => c.ignored,
        STARTUP_SIGMASK => c.blocked,
        _ => return false,
    };
    let names = inherited::names(set);
    e.signals.iter().all(|s| names.iter().any(|n| n == s))
}

/// `started with SIGINT, SIGQUIT ignored from its caller: not this command's`, from
/// the events `is_callers` set aside (their signals, each named once).
pub fn summary_line(set_aside: &[Event]) -> Option<String> {
    let mut ignored: Vec<&str> = Vec::new();
    let mut blocked: Vec<&str> = Vec::new();
    for e in set_aside {
        let into = if e.event == STARTUP_SIGIGN { &mut ignored } else { &mut blocked };
        for s in &e.signals {
            if !into.contains(&s.as_str()) {
                into.push(s);
            }
        }
    }
    let mut parts = Vec::new();
    if !ignored.is_empty() {
        parts.push(format!("{} ignored", ignored.join(", ")));
    }
    if !blocked.is_empty() {
        parts.push(format!("{} blocked", blocked.join(", ")));
    }
    (!parts.is_empty()).then(|| format!("started with {} from its caller: not this command's", parts.join(" and ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn bit(sig: i32) -> u64 {
        1 << (sig - 1)
    }

    #[test]
    fn only_the_first_process_and_only_the_callers_signals() {
        let c = CallerSigs { ignored: bit(libc::SIGINT) | bit(libc::SIGQUIT), blocked: bit(libc::SIGUSR2) };
        let run = 1000u32;
        let line = |event: &str, ppid: u32, sigs: &str| {
            format!(r#"{{"event":"{event}","severity":"warn","action":"logged","pid":5,"ppid":{ppid},"signals":[{sigs}]}}"#)
        };
        let text = [
            line(STARTUP_SIGIGN, run, r#""SIGINT","SIGQUIT""#),
            line(STARTUP_SIGIGN, run, r#""SIGINT","SIGPIPE""#),
            line(STARTUP_SIGIGN, run + 1, r#""SIGINT""#),
            line(STARTUP_SIGMASK, run, r#""SIGUSR2""#),
            line(STARTUP_SIGMASK, run, r#""SIGINT""#),
            line("exec_sigign", run, r#""SIGINT""#),
            line(STARTUP_SIGIGN, run, ""),
        ]
        .join("\n");
        let evs = super::super::events::parse_for_tests(&text);
        let callers: Vec<bool> = evs.iter().map(|e| is_callers(e, &c, run)).collect();
        assert_eq!(callers, [true, false, false, true, false, false, false]);
        let aside: Vec<Event> = evs.into_iter().zip(callers).filter(|(_, c)| *c).map(|(e, _)| e).collect();
        assert_eq!(
            summary_line(&aside).unwrap(),
            "started with SIGINT, SIGQUIT ignored and SIGUSR2 blocked from its caller: not this command's"
        );
        assert!(summary_line(&[]).is_none());
    }
}
