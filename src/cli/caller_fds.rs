//! The fds `execguard run` itself inherited from its caller (a terminal, a CI runner,
//! a supervisor): read before the run opens anything, handed to the shim as
//! `EXECGUARD_OUTSIDE` so that no process of the command reports them, and named
//! once in the summary as the caller's.

use super::events::{Event, FROM_OUTSIDE, STARTUP_FDS};
use std::os::unix::ffi::OsStrExt;

pub struct CallerFd {
    pub fd: i32,
    /// `/dev/null`, `pipe`, `socket`, … (what readlink says, without the inode).
    pub what: String,
}

/// Open fds ≥ 3 without CLOEXEC, i.e. the ones the command would inherit. Anything
/// the run opens itself is CLOEXEC (std opens every fd that way), including the
/// directory handle this listing uses.
pub fn list() -> Vec<CallerFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut out: Vec<CallerFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| fd >= 3 && inherits(fd))
        .map(|fd| CallerFd { fd, what: describe(fd) })
        .collect();
    out.sort_by_key(|c| c.fd);
    out
}

fn inherits(fd: i32) -> bool {
    // SAFETY: F_GETFD on any number is harmless; a closed fd gives -1.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC == 0
}

fn describe(fd: i32) -> String {
    let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else { return "?".into() };
    let t = target.as_os_str().as_bytes();
    // "pipe:[123]", "socket:[456]", "anon_inode:[eventfd]": the kind is enough.
    match t.iter().position(|&b| b == b':') {
        Some(colon) if !t.starts_with(b"/") => {
            let head = String::from_utf8_lossy(t.get(..colon).unwrap_or(t)).into_owned();
            match head.as_str() {
                "anon_inode" => String::from_utf8_lossy(t.get(colon + 1..).unwrap_or(&[])).trim_matches(['[', ']']).to_string(),
                _ => head,
            }
        }
        _ => target.display().to_string(),
    }
}

/// A start-side event about the caller's fds only: fix mode closed a listener (or a
/// pool) of the caller's in the command's first process. Not the command's doing, so
/// not one of its warnings.
pub fn is_callers(e: &Event, caller: &[CallerFd]) -> bool {
    let listed_are_callers = e.event == STARTUP_FDS
        && e.from.as_deref() == Some(FROM_OUTSIDE)
        && !e.fds.is_empty()
        && e.fds.iter().all(|f| caller.iter().any(|c| i64::from(c.fd) == f.fd));
    // A caller's pool is listed cut (fds_total > fds): the unlisted ones are the
    // caller's too when this is the command's first process, which holds nothing at
    // start but what we were given (the run opens everything close-on-exec).
    let complete = e.fds.len() as u64 == e.fds_total
        || (e.ppid == i64::from(std::process::id()) && e.fds_total <= caller.len() as u64);
    listed_are_callers && complete
}

/// `10,251-253,500` for `EXECGUARD_OUTSIDE` (runs folded: a caller holding a pool of
/// 19 000 fds must not make the variable longer than one exec argument may be).
pub fn env_value(fds: &[CallerFd]) -> String {
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for c in fds {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == c.fd => *hi = c.fd,
            _ => runs.push((c.fd, c.fd)),
        }
    }
    let item = |&(lo, hi): &(i32, i32)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
    runs.iter().map(item).collect::<Vec<_>>().join(",")
}

/// `started with fd 10 /dev/null, fd 251 pipe from its caller: not this command's`
pub fn summary_line(fds: &[CallerFd]) -> Option<String> {
    if fds.is_empty() {
        return None;
    }
    const SHOWN: usize = 8;
    let mut items: Vec<String> = fds.iter().take(SHOWN).map(|c| format!("fd {} {}", c.fd, c.what)).collect();
    if fds.len() > SHOWN {
        items.push(format!("{} more", fds.len() - SHOWN));
    }
    Some(format!("started with {} from its caller: not this command's", items.join(", ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        let fds = vec![CallerFd { fd: 10, what: "/dev/null".into() }, CallerFd { fd: 251, what: "pipe".into() }];
        assert_eq!(env_value(&fds), "10,251");
        let run: Vec<CallerFd> = [3, 4, 5, 9].iter().map(|&fd| CallerFd { fd, what: String::new() }).collect();
        assert_eq!(env_value(&run), "3-5,9");
        assert_eq!(
            summary_line(&fds).unwrap(),
            "started with fd 10 /dev/null, fd 251 pipe from its caller: not this command's"
        );
        assert!(summary_line(&[]).is_none());
    }

    #[test]
    fn a_fix_of_the_callers_fds_is_not_the_commands_warning() {
        let caller = vec![CallerFd { fd: 10, what: "/dev/null".into() }, CallerFd { fd: 500, what: "socket".into() }];
        let evs = super::super::events::parse_for_tests(concat!(
            r#"{"event":"startup_fds","severity":"warn","action":"fixed","pid":5,"from":"outside","fds":[{"fd":500,"kind":"tcp_listen"}],"fds_total":1}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","action":"fixed","pid":5,"from":"outside","fds":[{"fd":7,"kind":"tcp_listen"}],"fds_total":1}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","action":"fixed","pid":5,"fds":[{"fd":500,"kind":"tcp_listen"}],"fds_total":1}"#, "\n",
            r#"{"event":"exec_fd_leak","severity":"warn","pid":5,"from":"outside","fds":[{"fd":500,"kind":"tcp_listen"}],"fds_total":1}"#, "\n",
        ));
        let callers: Vec<bool> = evs.iter().map(|e| is_callers(e, &caller)).collect();
        assert_eq!(callers, [true, false, false, false]);
    }

    #[test]
    fn a_callers_pool_listed_cut_is_still_the_callers() {
        let caller: Vec<CallerFd> = (3..103).map(|fd| CallerFd { fd, what: "socket".into() }).collect();
        let me = std::process::id();
        let line = |ppid: u32, total: u32| {
            format!(r#"{{"event":"startup_fds","severity":"warn","action":"fixed","pid":5,"ppid":{ppid},"from":"outside","fds":[{{"fd":3,"kind":"tcp_listen"}},{{"fd":4,"kind":"tcp_listen"}}],"fds_total":{total}}}"#)
        };
        let text = [line(me, 100), line(me + 1, 100), line(me, 101)].join("\n");
        let evs = super::super::events::parse_for_tests(&text);
        let callers: Vec<bool> = evs.iter().map(|e| is_callers(e, &caller)).collect();
        assert_eq!(callers, [true, false, false], "only the first process's, and no more fds than the caller had");
    }

    #[test]
    fn sees_an_inherited_fd_and_not_a_cloexec_one() {
        let keep = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        let cloexec = keep.as_raw_fd();
        // SAFETY: dup onto a fresh high number, without CLOEXEC.
        let plain = unsafe { libc::fcntl(cloexec, libc::F_DUPFD, 700) };
        assert!(plain >= 700);
        let fds = list();
        assert!(fds.iter().any(|c| c.fd == plain && c.what == "/dev/null"));
        assert!(!fds.iter().any(|c| c.fd == cloexec));
        // SAFETY: our own fd.
        unsafe { libc::close(plain) };
    }
}
