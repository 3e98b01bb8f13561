//! Errno values by name in everything the CLI prints (incident 6: errno 57 on macOS
//! is 107 on Linux, and a bare number sends people to the wrong table), and what the
//! common connection outcomes of `connect_storm` mean, one line each. The names
//! come from the shim's own table (src/postfork/names.rs), compiled in here too.

#[allow(dead_code)]
#[path = "../postfork/line.rs"]
mod line;
#[allow(dead_code)]
#[path = "../postfork/names.rs"]
mod names;

use std::collections::BTreeMap;
use std::io;

/// `ECONNRESET` for 104: the Linux name of an errno value.
pub fn errno_name(e: i32) -> String {
    let mut b = line::Buf::<32>::new();
    names::errno(e, &mut b);
    String::from_utf8_lossy(b.as_bytes()).into_owned()
}

/// An I/O error as people should read it: `Permission denied (EACCES)`, not
/// `Permission denied (os error 13)`.
pub fn io_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let text = text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text).to_string();
            format!("{text} ({})", errno_name(code))
        }
        None => e.to_string(),
    }
}

/// One line on what a connection outcome means, for the names `connect_storm` uses.
pub fn explain(name: &str) -> Option<&'static str> {
    Some(match name {
        "EOF" => "the peer closed the connection before sending a single byte (it read the request and hung up, or was at its connection limit)",
        "ECONNRESET" => "the peer reset the connection, often a close with unread data, a crashed server, or a proxy or firewall cutting it",
        "ECONNREFUSED" => "nothing accepts at that address (no listener on the port, or the listen backlog refused it)",
        "ETIMEDOUT" => "no answer in time: the host is down or a firewall drops the packets silently",
        "EHOSTUNREACH" => "no route to the host (an ICMP host-unreachable, or a local firewall reject)",
        "ENETUNREACH" => "no route to that network from this host",
        "ECONNABORTED" => "the connection was aborted on this side before it was established",
        "ENOENT" => "the unix socket path does not exist: the server is not running or the path is wrong",
        "EAGAIN" => "the unix socket's accept queue is full (or, for TCP, no local port was free)",
        "EPIPE" => "a write to a connection the peer had already closed",
        "ENOTCONN" => "the socket is not connected (errno 107 on Linux, 57 on macOS)",
        _ => return None,
    })
}

/// `EOF 50, ECONNRESET 2`, most frequent first.
pub fn summary(outcomes: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = outcomes.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_and_io_errors() {
        assert_eq!(errno_name(libc::ECONNRESET), "ECONNRESET");
        assert_eq!(errno_name(libc::ENOTCONN), "ENOTCONN");
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_error(&e), "Permission denied (EACCES)");
        let e = io::Error::other("plain");
        assert_eq!(io_error(&e), "plain");
    }

    #[test]
    fn every_storm_outcome_is_explained() {
        for n in ["EOF", "ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED", "ENOENT", "EAGAIN"] {
            assert!(explain(n).is_some(), "{n}");
        }
        let m: BTreeMap<String, u64> = [("EOF".into(), 50), ("ECONNRESET".into(), 2)].into();
        assert_eq!(summary(&m), "EOF 50, ECONNRESET 2");
    }
}
