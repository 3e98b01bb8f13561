//! Reading the shim's JSON Lines logs (format: docs/events.md). Many processes append
//! to one file, a crash can cut the last line, and people point the tool at the wrong
//! file: every line that is not one of our events is skipped and counted, never fatal.

use super::inputs::Decoded;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Lines are < 4096 bytes by contract; anything far past that is not ours, and is
/// skipped without ever being held in memory whole.
const MAX_LINE: usize = 1 << 20;

pub const STARTUP_FDS: &str = "startup_fds";
/// `from` of a `startup_fds` whose fds entered the audited tree there.
pub const FROM_OUTSIDE: &str = "outside";
/// `via` of a start event in a server that reloaded itself into the shim.
pub const VIA_RELOAD: &str = "reload";
/// Every event kind the shim writes with severity `warn` (docs/events.md).
pub const WARNING_KINDS: &[&str] = &[
    "exec_fd_leak",
    "startup_fds",
    "exec_sigmask",
    "startup_sigmask",
    "exec_sigign",
    "startup_sigign",
    "select_fd_overflow",
    "system_blocking",
    "connect_storm",
];

#[derive(Debug, Clone, Default)]
pub struct Fd {
    pub fd: i64,
    pub kind: String,
    pub detail: String,
    /// `module+0xoffset` of the call that created it, when the shim recorded it.
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Event {
    pub ts: f64,
    pub event: String,
    pub severity: String,
    pub action: String,
    pub pid: i64,
    pub ppid: i64,
    pub exe: String,
    #[allow(dead_code)] // kept for completeness of the model; not shown yet
    pub mode: String,
    pub via: Option<String>,
    pub target: Option<String>,
    pub command: Option<String>,
    pub child_pid: Option<i64>,
    pub fds: Vec<Fd>,
    pub fds_total: u64,
    pub kinds: BTreeMap<String, u64>,
    pub listeners: Vec<Fd>,
    pub signals: Vec<String>,
    pub kept: Vec<String>,
    pub parent_exe: Option<String>,
    /// `outside` on a `startup_fds` whose fds entered the audited tree there.
    pub from: Option<String>,
    pub blocked_by: Option<String>,
    pub caller: Option<String>,
    pub nfds: Option<i64>,
    pub overflow_fds: Vec<i64>,
    pub waited_s: Option<f64>,
    /// `degraded`: the refused call (or libc feature) and its errno name.
    pub path: Option<String>,
    pub errno: Option<String>,
    /// Node name; older shims wrote none (the journal's `_HOSTNAME` or the syslog
    /// line's host fills it then), else empty.
    pub host: String,
    /// Identical occurrences folded into this line.
    pub repeats: u64,
    /// Events of this process that a fleet sink could not deliver before this one.
    pub dropped: u64,
    /// The running test (`PYTEST_CURRENT_TEST` or an `EXECGUARD_TEST_ENV` variable).
    pub test: Option<String>,
    /// The finding's identity, when the shim wrote one (see findings.rs).
    pub finding: Option<String>,
    /// connect_storm: the peer, fruitless connections in the window, their outcomes.
    pub peer: Option<String>,
    pub connects: Option<u64>,
    pub outcomes: BTreeMap<String, u64>,
}

/// The info event a process writes once per fallback it took (src/postfork/degraded.rs).
pub const DEGRADED: &str = "degraded";

impl Event {
    pub fn is_warn(&self) -> bool {
        self.severity == "warn"
    }
    pub fn is_fixed(&self) -> bool {
        self.action == "fixed"
    }
    /// How many times this line's finding happened: itself and its folded repeats.
    pub fn occurrences(&self) -> u64 {
        1 + self.repeats
    }
    /// A start event of a server that exec'd itself from an image the shim was not
    /// in (`"via":"reload"`: the shim was rolled out under it): what it lists was
    /// held across its own reload, not handed over by its parent.
    pub fn held_across_reload(&self) -> bool {
        self.event.starts_with("startup_") && self.via.as_deref() == Some(VIA_RELOAD)
    }
    /// The program this event is about when it names one: the exec target, the
    /// command of a `system`/`popen`.
    pub fn target_or_command(&self) -> Option<&str> {
        self.target.as_deref().or(self.command.as_deref())
    }
    /// fd kind → count, from `kinds` when present (it covers the fds cut from the
    /// list), else from the listed fds.
    pub fn kind_counts(&self) -> BTreeMap<String, u64> {
        if !self.kinds.is_empty() {
            return self.kinds.clone();
        }
        let mut m = BTreeMap::new();
        for f in &self.fds {
            *m.entry(f.kind.clone()).or_insert(0) += 1;
        }
        m
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Skipped {
    /// Cut JSON (a crash, a full disk, `head -c`).
    pub truncated: u64,
    /// Not one of our events (another program's output, another schema).
    pub foreign: u64,
    /// Longer than MAX_LINE.
    pub oversized: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.truncated + self.foreign + self.oversized
    }
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [(self.truncated, "truncated"), (self.foreign, "foreign"), (self.oversized, "oversized")] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let t = self.total();
        format!("skipped {t} line{} ({})", if t == 1 { "" } else { "s" }, parts.join(", "))
    }
}

#[derive(Debug, Default)]
pub struct Log {
    pub events: Vec<Event>,
    /// Non-empty lines seen.
    pub lines: u64,
    pub skipped: Skipped,
}

impl Log {
    pub fn read_path(&mut self, path: &Path) -> io::Result<()> {
        if path.as_os_str() == "-" {
            return self.read_from(io::stdin().lock());
        }
        self.read_from(std::fs::File::open(path)?)
    }

    /// Reads from the current position to the end (`run` seeks past what an earlier
    /// run appended to the same file).
    pub fn read_from(&mut self, r: impl Read) -> io::Result<()> {
        let mut r = BufReader::with_capacity(64 * 1024, r);
        let mut line = Vec::with_capacity(4096);
        loop {
            match read_line_capped(&mut r, &mut line)? {
                LineRead::Eof => return Ok(()),
                LineRead::TooLong => {
                    self.lines += 1;
                    self.skipped.oversized += 1;
                }
                LineRead::Line => self.take_line(&line),
            }
        }
    }

    fn take_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.lines += 1;
        // journalctl -o json entries and syslog lines carry our object inside.
        match super::inputs::decode(text) {
            Decoded::Object(v) => match parse_event(&v) {
                Some(e) => self.events.push(e),
                None => self.skipped.foreign += 1,
            },
            Decoded::Cut => self.skipped.truncated += 1,
            Decoded::Foreign => self.skipped.foreign += 1,
        }
    }
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// One line into `buf` (without the newline). A line over MAX_LINE is consumed and
/// dropped chunk by chunk.
fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let (part, used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if !too_long {
            if buf.len() + part.len() > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        r.consume(used);
        if done {
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn i(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    match v.get(k) {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn fds(v: &Value, k: &str) -> Vec<Fd> {
    let Some(Value::Array(a)) = v.get(k) else { return Vec::new() };
    a.iter()
        .filter_map(|f| {
            Some(Fd {
                fd: f.get("fd")?.as_i64()?,
                kind: s(f, "kind").unwrap_or_else(|| "other".into()),
                detail: s(f, "detail").unwrap_or_default(),
                origin: s(f, "origin"),
            })
        })
        .collect()
}

/// An object of name → count (`kinds`, `outcomes`).
fn counts(v: &Value, k: &str) -> BTreeMap<String, u64> {
    match v.get(k) {
        Some(Value::Object(m)) => m.iter().filter_map(|(k, n)| Some((k.clone(), n.as_u64()?))).collect(),
        _ => BTreeMap::new(),
    }
}

/// An event is an object with a string `event`, and `pid` as an integer; other
/// fields are optional so that older and newer shims are still readable.
pub fn parse_event(v: &Value) -> Option<Event> {
    let event = s(v, "event")?;
    let pid = i(v, "pid")?;
    let fd_list = fds(v, "fds");
    let kinds = counts(v, "kinds");
    let overflow_fds = match (event.as_str(), v.get("fds")) {
        ("select_fd_overflow", Some(Value::Array(a))) => a.iter().filter_map(Value::as_i64).collect(),
        _ => Vec::new(),
    };
    let fds_total = v
        .get("fds_total")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| fd_list.len() as u64 + v.get("fds_omitted").and_then(Value::as_u64).unwrap_or(0));
    Some(Event {
        ts: v.get("ts").and_then(Value::as_f64).unwrap_or(0.0),
        severity: s(v, "severity").unwrap_or_else(|| "warn".into()),
        action: s(v, "action").unwrap_or_else(|| "logged".into()),
        pid,
        ppid: i(v, "ppid").unwrap_or(0),
        exe: s(v, "exe").unwrap_or_else(|| "?".into()),
        mode: s(v, "mode").unwrap_or_default(),
        via: s(v, "via").or_else(|| s(v, "func")),
        target: s(v, "target"),
        command: s(v, "command"),
        child_pid: i(v, "child_pid"),
        fds: fd_list,
        fds_total,
        kinds,
        listeners: fds(v, "listeners"),
        signals: strings(v, "signals"),
        kept: strings(v, "kept"),
        parent_exe: s(v, "parent_exe"),
        from: s(v, "from"),
        blocked_by: s(v, "blocked_by"),
        caller: s(v, "caller"),
        nfds: i(v, "nfds"),
        overflow_fds,
        waited_s: v.get("waited_s").and_then(Value::as_f64),
        path: s(v, "path"),
        errno: s(v, "errno"),
        host: s(v, "host").unwrap_or_default(),
        repeats: v.get("repeats").and_then(Value::as_u64).unwrap_or(0),
        dropped: v.get("dropped").and_then(Value::as_u64).unwrap_or(0),
        test: s(v, "test"),
        finding: s(v, "finding").or_else(|| i(v, "finding").map(|n| n.to_string())),
        peer: s(v, "peer"),
        connects: v.get("connects").and_then(Value::as_u64),
        outcomes: counts(v, "outcomes"),
        event,
    })
}

/// Unit tests of the CLI: the events of a JSON Lines text.
#[cfg(test)]
pub fn parse_for_tests(text: &str) -> Vec<Event> {
    let mut l = Log::default();
    l.read_from(text.as_bytes()).unwrap();
    l.events
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Log {
        let mut l = Log::default();
        l.read_from(text).unwrap();
        l
    }

    #[test]
    fn counts_cut_and_foreign_lines() {
        let l = read(b"{\"v\":1,\"event\":\"exec_fd_leak\",\"pid\":3}\nhello\n\n{\"v\":1,\"ev");
        assert_eq!(l.events.len(), 1);
        assert_eq!(l.lines, 3);
        assert_eq!(l.skipped.foreign, 1);
        assert_eq!(l.skipped.truncated, 1);
    }

    #[test]
    fn huge_line_is_skipped_not_held() {
        let mut t = vec![b'x'; MAX_LINE + 10];
        t.extend_from_slice(b"\n{\"event\":\"fork_threads\",\"pid\":1}\n");
        let l = read(&t);
        assert_eq!(l.skipped.oversized, 1);
        assert_eq!(l.events.len(), 1);
    }

    #[test]
    fn kinds_cover_cut_fd_lists() {
        let v: Value = serde_json::from_str(
            r#"{"event":"exec_fd_leak","pid":1,"fds":[{"fd":3,"kind":"udp","detail":"x"}],"fds_total":1030,"kinds":{"udp":1030}}"#,
        )
        .unwrap();
        let e = parse_event(&v).unwrap();
        assert_eq!(e.kind_counts()["udp"], 1030);
        assert_eq!(e.fds_total, 1030);
    }
}
