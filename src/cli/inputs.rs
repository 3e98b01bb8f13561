//! What the fleet collected, read back: `journalctl -o json` entries (the event in
//! EXECGUARD_JSON, or in MESSAGE when it came through /dev/log), syslog lines whose
//! message is our object, and `--journal`, which runs journalctl itself. Each line is
//! recognised on its own, so one file may mix them with our JSON Lines.

use serde_json::Value;
use std::io;
use std::process::{Command, Stdio};

/// One input line, unwrapped.
pub enum Decoded {
    /// Our event object (with `host` filled from the transport when it had none).
    Object(Value),
    /// It starts like an event but was cut.
    Cut,
    /// Someone else's line or entry.
    Foreign,
}

/// The journal's own fields: an object with one of these is an entry, not an event.
const JOURNAL_MARKS: [&str; 3] = ["__CURSOR", "__REALTIME_TIMESTAMP", "_HOSTNAME"];
const IDENTIFIER: &str = "execguard";

pub fn decode(text: &str) -> Decoded {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if JOURNAL_MARKS.iter().any(|k| v.get(k).is_some()) => from_journal(&v),
        Ok(v) => Decoded::Object(v),
        Err(_) => match from_syslog(text) {
            Some(d) => d,
            None if text.starts_with('{') => Decoded::Cut,
            None => Decoded::Foreign,
        },
    }
}

/// A journal field as text. journalctl renders a value that is not valid UTF-8 (or
/// holds control bytes) as an array of byte values, and a field that occurs more
/// than once as an array of values: the first value is taken.
fn field(entry: &Value, key: &str) -> Option<String> {
    match entry.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items.iter().filter_map(Value::as_u64).map(|b| b as u8).collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => items.first().and_then(|first| match first {
            Value::String(s) => Some(s.clone()),
            Value::Array(_) => field(&serde_json::json!({ "v": first }), "v"),
            _ => None,
        }),
        _ => None,
    }
}

fn from_journal(entry: &Value) -> Decoded {
    let text = match field(entry, "EXECGUARD_JSON") {
        Some(t) => t,
        // Through /dev/log into journald: the message is the object.
        None if field(entry, "SYSLOG_IDENTIFIER").as_deref() == Some(IDENTIFIER) => match field(entry, "MESSAGE") {
            Some(m) if m.trim_start().starts_with('{') => m,
            _ => return Decoded::Foreign,
        },
        None => return Decoded::Foreign,
    };
    with_host(&text, field(entry, "_HOSTNAME"))
}

fn with_host(json: &str, host: Option<String>) -> Decoded {
    match serde_json::from_str::<Value>(json.trim()) {
        Ok(mut v) => {
            if let (Some(obj), Some(h)) = (v.as_object_mut(), host) {
                obj.entry("host").or_insert(Value::String(h));
            }
            Decoded::Object(v)
        }
        Err(_) => Decoded::Cut,
    }
}

/// `… HOST execguard[PID]: {…}`: rsyslog's file formats (traditional or RFC 3339
/// stamps) and what other daemons write; the word before the tag is the host.
fn from_syslog(line: &str) -> Option<Decoded> {
    let tag = format!("{IDENTIFIER}[");
    let at = line.find(&tag)?;
    let rest = &line[at + tag.len()..];
    let close = rest.find("]: ")?;
    if !rest[..close].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let msg = rest[close + 3..].trim();
    if !msg.starts_with('{') {
        return None;
    }
    let host = line[..at].split_whitespace().last().map(str::to_owned);
    Some(with_host(msg, host))
}

/// `journalctl -o json --identifier execguard ARGS…` (the local journal, or what ARGS
/// select: `--directory`, `--since`, `-u nginx.service`, `-m`), its output as text.
pub fn read_journal(args: &[String]) -> io::Result<Vec<u8>> {
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--identifier", IDENTIFIER])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run journalctl: {}", super::outcomes::io_error(&e))))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(io::Error::other(format!("journalctl {} failed ({})", args.join(" "), out.status)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn host_of(d: Decoded) -> String {
        match d {
            Decoded::Object(v) => v["host"].as_str().unwrap_or("").to_string(),
            Decoded::Cut => "<cut>".into(),
            Decoded::Foreign => "<foreign>".into(),
        }
    }

    #[test]
    fn journal_entries() {
        let ev = r#"{"v":1,"event":"exec_sigmask","pid":5}"#;
        let entry = serde_json::json!({"__CURSOR": "c", "_HOSTNAME": "web7", "EXECGUARD_JSON": ev});
        assert_eq!(host_of(decode(&entry.to_string())), "web7");
        let bytes: Vec<u8> = ev.as_bytes().to_vec();
        let entry = serde_json::json!({"__CURSOR": "c", "_HOSTNAME": "web8", "EXECGUARD_JSON": bytes});
        assert_eq!(host_of(decode(&entry.to_string())), "web8");
        let entry = serde_json::json!({"_HOSTNAME": "h", "SYSLOG_IDENTIFIER": "execguard", "MESSAGE": r#"{"host":"own","event":"x","pid":1}"#});
        assert_eq!(host_of(decode(&entry.to_string())), "own", "the event's own host wins");
        let entry = serde_json::json!({"__CURSOR": "c", "MESSAGE": "sshd started"});
        assert_eq!(host_of(decode(&entry.to_string())), "<foreign>");
        let entry = serde_json::json!({"__CURSOR": "c", "EXECGUARD_JSON": "{\"v\":1,\"ev"});
        assert_eq!(host_of(decode(&entry.to_string())), "<cut>");
    }

    #[test]
    fn syslog_lines() {
        let ev = r#"{"v":1,"event":"exec_fd_leak","pid":9}"#;
        assert_eq!(host_of(decode(&format!("Dec  4 16:23:14 db2 execguard[9]: {ev}"))), "db2");
        assert_eq!(host_of(decode(&format!("2026-12-04T16:47:58.574850+00:00 db3 execguard[9]: {ev}"))), "db3");
        assert_eq!(host_of(decode("Dec  4 16:23:14 db2 execguard[9]: {\"v\":1,")), "<cut>");
        assert_eq!(host_of(decode("Dec  4 16:23:14 db2 sshd[9]: hello")), "<foreign>");
        assert_eq!(host_of(decode(ev)), "");
    }
}
