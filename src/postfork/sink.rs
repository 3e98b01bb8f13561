//! The fleet sinks: one event as one journal entry (journald's native protocol on
//! /run/systemd/journal/socket) or one syslog message (glibc's syslog(3) format on
//! /dev/log). Small room: stack buffers, raw system calls, one send per event on a
//! fresh socket closed right after; a full, missing or dead socket drops the event
//! and counts the drop (pid-tagged), it never waits.

use super::line::Buf;
use super::sys::{self, syscall};
use core::sync::atomic::{AtomicU64, Ordering};

/// Fixed system paths: nothing here is ever taken from the environment, so both
/// sinks stay usable under AT_SECURE.
const JOURNAL_SOCKET: &[u8] = b"/run/systemd/journal/socket";
const DEV_LOG: &[u8] = b"/dev/log";

/// Events this process could not deliver and has not yet reported: pid in the high
/// half, count in the low (a vfork child's drops carry its own pid, so the parent
/// never counts them as its own; they may reset the parent's pending count).
#[link_section = ".data.execguard_hot"]
static DROPS: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: drops not yet reported by this process.
pub fn pending_drops() -> u32 {
    let v = DROPS.load(Ordering::Relaxed);
    if (v >> 32) as i32 == sys::getpid() {
        v as u32
    } else {
        0
    }
}

/// Async-signal-safe: one more event lost (Ok(false)), or `reported` drops delivered
/// in an event that got through (Ok(true)).
fn settle(delivered: bool, reported: u32) {
    let pid = sys::getpid() as u32 as u64;
    let _ = DROPS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        let mine = v >> 32 == pid;
        let n = if mine { v as u32 } else { 0 };
        let n = if delivered { n.saturating_sub(reported) } else { n.saturating_add(1) };
        Some(pid << 32 | n as u64)
    });
}

/// Syslog facility code (shifted, as in `<PRI>`) from its name; `kern` is refused
/// (glibc's syslog(3) takes facility 0 to mean "the default"). Placed with the
/// constructor, its one caller (`EXECGUARD_SYSLOG_FACILITY`).
#[link_section = ".text.startup.execguard"]
pub fn facility(name: &[u8]) -> Option<u8> {
    let code = match name {
        b"user" => 1,
        b"mail" => 2,
        b"daemon" => 3,
        b"auth" => 4,
        b"syslog" => 5,
        b"lpr" => 6,
        b"news" => 7,
        b"uucp" => 8,
        b"cron" => 9,
        b"authpriv" => 10,
        b"ftp" => 11,
        _ => match name.strip_prefix(b"local") {
            Some(&[d]) if (b'0'..=b'7').contains(&d) => 16 + (d - b'0'),
            _ => return None,
        },
    };
    Some(code << 3)
}

/// One rendered event, as the sinks need it.
pub struct Entry<'a> {
    pub warn: bool,
    /// The JSON object, without a trailing newline.
    pub json: &'a [u8],
    /// The human form (journal only), without `execguard[pid]: ` and the newline.
    pub human: &'a [u8],
    /// The human form was cut to fit its buffer.
    pub human_cut: bool,
    /// Drops reported in `json` (its `dropped` field).
    pub dropped: u32,
}

/// Top-level JSON fields that become journal match fields (`EXECGUARD_<NAME>`).
const MATCH_FIELDS: [(&str, &str); 11] = [
    ("event", "EXECGUARD_EVENT="),
    ("severity", "EXECGUARD_SEVERITY="),
    ("action", "EXECGUARD_ACTION="),
    ("mode", "EXECGUARD_MODE="),
    ("exe", "EXECGUARD_EXE="),
    ("target", "EXECGUARD_TARGET="),
    ("via", "EXECGUARD_VIA="),
    ("finding", "EXECGUARD_FINDING="),
    ("test", "EXECGUARD_TEST="),
    ("repeats", "EXECGUARD_REPEATS="),
    ("dropped", "EXECGUARD_DROPPED="),
];

/// Async-signal-safe: the raw text of top-level field `key` in our own JSON object
/// (a string's contents still escaped, a number as written). Our writer escapes every
/// quote inside strings, so `,"key":` can only be a key.
pub fn json_field<'a>(json: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let k = key.as_bytes();
    let mut i = 0;
    while let Some(at) = find(json.get(i..)?, b",\"").map(|p| p + i) {
        let after = at + 2;
        let rest = json.get(after..)?;
        if rest.starts_with(k) && rest.get(k.len()..k.len() + 2) == Some(b"\":") {
            let v = rest.get(k.len() + 2..)?;
            return Some(if let Some(s) = v.strip_prefix(b"\"") {
                let mut end = 0;
                let mut esc = false;
                for &b in s {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        break;
                    }
                    end += 1;
                }
                s.get(..end)?
            } else {
                let end = v.iter().position(|&b| matches!(b, b',' | b'}' | b']')).unwrap_or(v.len());
                v.get(..end)?
            });
        }
        i = after;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Async-signal-safe: one journal entry. Field values never hold a newline (the JSON
/// escapes them, the human form turns control bytes into '?'), so the simple
/// `KEY=value\n` form serves every field.
pub fn journal(e: &Entry) {
    let mut head = Buf::<1600>::new();
    head.s(if e.warn { "PRIORITY=4\n" } else { "PRIORITY=6\n" });
    head.s("SYSLOG_IDENTIFIER=execguard\nSYSLOG_PID=");
    head.int(sys::getpid() as i64);
    head.byte(b'\n');
    const MESSAGE: &str = "MESSAGE=";
    for (key, field) in MATCH_FIELDS {
        if let Some(v) = json_field(e.json, key) {
            let v = v.get(..512).unwrap_or(v);
            // A field that does not fit is left out whole; MESSAGE= always fits.
            if head.room() >= field.len() + v.len() + 1 + MESSAGE.len() {
                head.s(field);
                head.raw(v);
                head.byte(b'\n');
            }
        }
    }
    head.s(MESSAGE);
    let parts: [&[u8]; 5] = [
        head.as_bytes(),
        e.human,
        if e.human_cut { " \u{2026}".as_bytes() } else { b"" },
        b"\nEXECGUARD_JSON=",
        e.json,
    ];
    let tail: [&[u8]; 1] = [b"\n"];
    settle(send(JOURNAL_SOCKET, &parts, &tail, false).is_ok(), e.dropped);
}

/// Async-signal-safe: one syslog message as glibc's syslog(3) sends it to /dev/log:
/// `<PRI>Mmm dd hh:mm:ss execguard[pid]: MSG`. The time is UTC (the time zone is not
/// readable without allocation and locks); journald and rsyslog's imuxsock stamp
/// local messages with their own time of receipt anyway.
pub fn syslog(e: &Entry, facility: u8) {
    let mut head = Buf::<96>::new();
    head.byte(b'<');
    head.uint((facility as u64) | if e.warn { 4 } else { 6 });
    head.byte(b'>');
    stamp(sys::now().0, &mut head);
    head.s(" execguard[");
    head.int(sys::getpid() as i64);
    head.s("]: ");
    let parts: [&[u8]; 2] = [head.as_bytes(), e.json];
    settle(send(DEV_LOG, &parts, &[], true).is_ok(), e.dropped);
}

/// `Mmm dd hh:mm:ss` (day space-padded, as strftime's `%h %e %T`) in UTC.
fn stamp(unix: i64, out: &mut Buf<96>) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    out.s(MONTHS.get((month - 1) as usize).copied().unwrap_or("Jan"));
    out.byte(b' ');
    if day < 10 {
        out.byte(b' ');
    }
    out.uint(day as u64);
    out.byte(b' ');
    out.uint_pad((secs / 3600) as u64, 2);
    out.byte(b':');
    out.uint_pad((secs / 60 % 60) as u64, 2);
    out.byte(b':');
    out.uint_pad((secs % 60) as u64, 2);
}

const MAX_IOV: usize = 8;

/// Async-signal-safe: `parts` then `tail` as one datagram to the socket at `path`.
/// `stream_ok`: a SOCK_STREAM socket there (some syslog daemons) gets the message on
/// a fresh non-blocking connection, NUL-terminated as glibc sends it.
fn send(path: &[u8], parts: &[&[u8]], tail: &[&[u8]], stream_ok: bool) -> sys::R<()> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= addr.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for (d, &s) in addr.sun_path.iter_mut().zip(path) {
        *d = s as libc::c_char;
    }
    let alen = core::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    let empty: libc::iovec = libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 0 };
    let mut iov = [empty; MAX_IOV];
    let mut n = 0;
    for p in parts.iter().chain(tail).filter(|p| !p.is_empty()) {
        if let Some(slot) = iov.get_mut(n) {
            *slot = libc::iovec { iov_base: p.as_ptr() as *mut libc::c_void, iov_len: p.len() };
            n += 1;
        }
    }
    match send_on(libc::SOCK_DGRAM, &addr, alen, &mut iov, n) {
        Err(libc::EPROTOTYPE) if stream_ok => {
            if let Some(slot) = iov.get_mut(n) {
                // glibc ends a stream message with its NUL: the daemon's record separator.
                static NUL: [u8; 1] = [0];
                *slot = libc::iovec { iov_base: NUL.as_ptr() as *mut libc::c_void, iov_len: 1 };
                n += 1;
            }
            send_on(libc::SOCK_STREAM, &addr, alen, &mut iov, n)
        }
        r => r,
    }
}

fn send_on(ty: i32, addr: &libc::sockaddr_un, alen: usize, iov: &mut [libc::iovec; MAX_IOV], n: usize) -> sys::R<()> {
    // SAFETY: plain integers; the fd is ours and closed below on every path.
    let fd = unsafe { syscall!(libc::SYS_socket, libc::AF_UNIX, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(-fd as i32);
    }
    let fd = fd as i32;
    let r = (|| {
        let mut msg: libc::msghdr = unsafe_zeroed_msghdr();
        if ty == libc::SOCK_STREAM {
            // Non-blocking: a listener with a full backlog answers EAGAIN, never a wait.
            // SAFETY: addr is a valid sockaddr_un of alen bytes.
            let c = unsafe { syscall!(libc::SYS_connect, fd, addr as *const libc::sockaddr_un, alen) };
            if c < 0 {
                return Err(-c as i32);
            }
        } else {
            msg.msg_name = addr as *const libc::sockaddr_un as *mut libc::c_void;
            msg.msg_namelen = alen as libc::socklen_t;
        }
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = n as _;
        let total: usize = iov.iter().take(n).map(|v| v.iov_len).sum();
        for _ in 0..3 {
            // SAFETY: msg points at live iovecs and the address above.
            let r = unsafe {
                syscall!(libc::SYS_sendmsg, fd, &msg as *const libc::msghdr, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            match r {
                r if r as usize == total => return Ok(()),
                r if r >= 0 => return Err(libc::EMSGSIZE),
                r if -r as i32 == libc::EINTR => continue,
                r => return Err(-r as i32),
            }
        }
        Err(libc::EINTR)
    })();
    sys::close(fd);
    r
}

fn unsafe_zeroed_msghdr() -> libc::msghdr {
    // SAFETY: an all-zero msghdr (null pointers, zero lengths) is valid.
    unsafe { core::mem::zeroed() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn fields_from_our_json() {
        let j = br#"{"v":1,"event":"exec_fd_leak","exe":"/a \"b\"","target":"/usr/bin/curl","repeats":4,"fds":[{"fd":3,"detail":"x,\"target\":\"no\""}]}"#;
        assert_eq!(json_field(j, "event"), Some(&b"exec_fd_leak"[..]));
        assert_eq!(json_field(j, "exe"), Some(&br#"/a \"b\""#[..]));
        assert_eq!(json_field(j, "target"), Some(&b"/usr/bin/curl"[..]));
        assert_eq!(json_field(j, "repeats"), Some(&b"4"[..]));
        assert_eq!(json_field(j, "test"), None);
        assert_eq!(json_field(j, "v"), None, "the first key has no comma before it");
    }

    #[test]
    fn glibc_syslog_stamp() {
        let mut b = Buf::<96>::new();
        stamp(1_796_403_794, &mut b); // 2026-12-04 17:03:14 UTC
        assert_eq!(b.as_bytes(), b"Dec  4 17:03:14");
        b.clear();
        stamp(951_782_400 + 86_399, &mut b); // 2000-02-29 23:59:59 UTC
        assert_eq!(b.as_bytes(), b"Feb 29 23:59:59");
    }

    #[test]
    fn facilities() {
        assert_eq!(facility(b"user"), Some(8));
        assert_eq!(facility(b"local7"), Some(23 << 3));
        assert_eq!(facility(b"local8"), None);
        assert_eq!(facility(b"kern"), None);
    }
}
