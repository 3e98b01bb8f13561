//! Distinct findings: the warnings of a log folded into one entry per problem, however
//! often it happened. The identity is the shim's `finding` field when the line has
//! one, else a key derived here (event, program, target, fds or signals), so that
//! every report that counts "findings" counts the same ones. CLI only.

use super::events::{Event, FROM_OUTSIDE};
use std::collections::{BTreeMap, BTreeSet};

/// One problem and every event that reported it.
pub struct Finding<'a> {
    pub key: String,
    /// The events of this finding, in log order (the first is shown).
    pub events: Vec<&'a Event>,
    /// Σ (1 + repeats): how often it happened.
    pub occurrences: u64,
    /// Tests that were running when it happened (ids without pytest's phase).
    pub tests: BTreeSet<String>,
}

impl<'a> Finding<'a> {
    pub fn first(&self) -> &'a Event {
        self.events[0]
    }

    /// Inherited from outside the audited tree (a CI runner's stray fds): shown, but
    /// not the suite's fault and not failing it.
    pub fn is_from_outside(&self) -> bool {
        self.events.iter().all(|e| e.from.as_deref() == Some(FROM_OUTSIDE))
    }

    pub fn fixed(&self) -> bool {
        self.events.iter().all(|e| e.is_fixed())
    }
}

/// What makes two events the same problem, for lines without a `finding` field.
pub fn derived_key(e: &Event) -> String {
    let mut k = format!("{}\u{1f}{}\u{1f}{}", e.event, e.exe, e.target_or_command().unwrap_or(""));
    if e.event.starts_with("startup_") {
        k.push('\u{1f}');
        k.push_str(e.parent_exe.as_deref().unwrap_or(""));
    }
    // connect_storm names no target: the peer is what tells two storms apart.
    if let Some(peer) = &e.peer {
        k.push('\u{1f}');
        k.push_str(peer);
    }
    let mut fds: Vec<String> = e.fds.iter().map(|f| format!("{}:{}:{}", f.fd, f.kind, f.detail)).collect();
    fds.extend(e.listeners.iter().map(|f| format!("L{}:{}:{}", f.fd, f.kind, f.detail)));
    fds.extend(e.overflow_fds.iter().map(|f| format!("S{f}")));
    fds.sort();
    let mut sigs = e.signals.clone();
    sigs.sort();
    k.push('\u{1f}');
    k.push_str(&fds.join(","));
    k.push('\u{1f}');
    k.push_str(&sigs.join(","));
    k
}

pub fn key(e: &Event) -> String {
    match &e.finding {
        Some(f) => format!("finding:{f}"),
        None => derived_key(e),
    }
}

/// pytest's `path::name (call)` without the phase: the test's node id.
pub fn test_id(raw: &str) -> &str {
    for phase in [" (setup)", " (call)", " (teardown)"] {
        if let Some(id) = raw.strip_suffix(phase) {
            return id;
        }
    }
    raw
}

/// The warnings of `events` as distinct findings, in order of first appearance.
pub fn findings(events: &[Event]) -> Vec<Finding<'_>> {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Finding> = Vec::new();
    for e in events.iter().filter(|e| e.is_warn()) {
        let k = key(e);
        let i = *index.entry(k.clone()).or_insert_with(|| {
            out.push(Finding { key: k, events: Vec::new(), occurrences: 0, tests: BTreeSet::new() });
            out.len() - 1
        });
        let f = &mut out[i];
        f.events.push(e);
        f.occurrences += e.occurrences();
        if let Some(t) = &e.test {
            f.tests.insert(test_id(t).to_string());
        }
    }
    out
}

/// Findings by the test that caused them (None: outside any test). A finding seen
/// under two tests is listed under both.
pub fn by_test<'f, 'a>(fs: &'f [Finding<'a>]) -> BTreeMap<Option<String>, Vec<&'f Finding<'a>>> {
    let mut m: BTreeMap<Option<String>, Vec<&Finding>> = BTreeMap::new();
    for f in fs {
        if f.tests.is_empty() {
            m.entry(None).or_default().push(f);
        }
        for t in &f.tests {
            m.entry(Some(t.clone())).or_default().push(f);
        }
    }
    m
}

/// "By test": each test's distinct findings, for the text report; empty when no
/// event names a test.
pub fn by_test_text(events: &[Event]) -> String {
    use std::fmt::Write as _;
    let fs = findings(events);
    if fs.iter().all(|f| f.tests.is_empty()) {
        return String::new();
    }
    let mut o = format!("\n{}\n", super::style::paint(super::style::BOLD, "By test (distinct findings):"));
    for (test, list) in by_test(&fs) {
        let _ = writeln!(o, "  {}", test.as_deref().unwrap_or("(outside any test)"));
        for f in list {
            let e = f.first();
            let (from, to) = super::report::from_to(e);
            let to = to.map(|t| format!(" → {t}")).unwrap_or_default();
            let times = if f.occurrences > 1 { format!(" (×{})", f.occurrences) } else { String::new() };
            let outside = if f.is_from_outside() { " [from outside the run]" } else { "" };
            let _ = writeln!(o, "     {} {}{to}: {}{times}{outside}", e.event, from, super::tree::short(e));
        }
    }
    o
}

/// The same as JSON: test id (null outside any test) → its findings.
pub fn by_test_json(events: &[Event]) -> serde_json::Value {
    let fs = findings(events);
    let v: Vec<serde_json::Value> = by_test(&fs)
        .into_iter()
        .map(|(test, list)| {
            let items: Vec<serde_json::Value> = list
                .iter()
                .map(|f| {
                    let e = f.first();
                    let (from, to) = super::report::from_to(e);
                    serde_json::json!({"event": e.event, "from": from, "to": to, "what": super::tree::short(e), "occurrences": f.occurrences})
                })
                .collect();
            serde_json::json!({"test": test, "findings": items})
        })
        .collect();
    serde_json::Value::Array(v)
}

/// A finding's lines and occurrences, info events included: what the shim folded.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// The shim's `finding` (empty for lines of an older shim).
    pub id: String,
    pub event: String,
    pub exe: String,
    pub target: Option<String>,
    pub lines: u64,
    pub occurrences: u64,
    pub first_ts: f64,
    pub last_ts: f64,
}

/// Every finding of `events` (by `key`), most occurrences first.
pub fn totals(events: &[Event]) -> Vec<Totals> {
    let mut map: BTreeMap<String, Totals> = BTreeMap::new();
    for e in events {
        let f = map.entry(key(e)).or_insert_with(|| Totals {
            id: e.finding.clone().unwrap_or_default(),
            event: e.event.clone(),
            exe: e.exe.clone(),
            target: e.target_or_command().map(str::to_owned),
            first_ts: e.ts,
            last_ts: e.ts,
            ..Default::default()
        });
        f.lines += 1;
        f.occurrences += e.occurrences();
        f.first_ts = f.first_ts.min(e.ts);
        f.last_ts = f.last_ts.max(e.ts);
    }
    let mut v: Vec<Totals> = map.into_values().collect();
    v.sort_by(|a, b| b.occurrences.cmp(&a.occurrences).then(a.event.cmp(&b.event)).then(a.id.cmp(&b.id)));
    v
}

/// `findings` in `execguard report --json`: every finding with its totals.
pub fn totals_json(events: &[Event]) -> serde_json::Value {
    let v: Vec<serde_json::Value> = totals(events)
        .iter()
        .map(|f| {
            serde_json::json!({
                "finding": f.id, "event": f.event, "exe": f.exe, "target": f.target,
                "lines": f.lines, "occurrences": f.occurrences, "first_ts": f.first_ts, "last_ts": f.last_ts,
            })
        })
        .collect();
    serde_json::Value::Array(v)
}

/// The text report's section: findings that were folded (more occurrences than lines).
pub fn repeated_text(events: &[Event], max: usize) -> String {
    use std::fmt::Write as _;
    let rep: Vec<Totals> = totals(events).into_iter().filter(|f| f.occurrences > f.lines).collect();
    let mut o = String::new();
    for f in rep.iter().take(max) {
        let to = f.target.as_deref().map(|t| format!(" → {t}")).unwrap_or_default();
        let _ = writeln!(o, "  {}× {} in {}{} ({} lines, finding {})", f.occurrences, f.event, f.exe, to, f.lines, f.id);
    }
    if rep.len() > max {
        let _ = writeln!(o, "  … {} more", rep.len() - max);
    }
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn same_problem_folds_and_counts_repeats() {
        let e = evs(concat!(
            r#"{"event":"exec_fd_leak","severity":"warn","pid":1,"exe":"/a","target":"/b","fds":[{"fd":3,"kind":"tcp_listen","detail":"0.0.0.0:1"}],"test":"t.py::a (call)"}"#, "\n",
            r#"{"event":"exec_fd_leak","severity":"warn","pid":2,"exe":"/a","target":"/b","fds":[{"fd":3,"kind":"tcp_listen","detail":"0.0.0.0:1"}],"repeats":4,"test":"t.py::b (setup)"}"#, "\n",
            r#"{"event":"exec_fd_leak","severity":"warn","pid":3,"exe":"/a","target":"/b","fds":[{"fd":4,"kind":"tcp_listen","detail":"0.0.0.0:1"}]}"#, "\n",
            r#"{"event":"fork_threads","severity":"info","pid":3,"exe":"/a"}"#, "\n",
        ));
        let fs = findings(&e);
        assert_eq!(fs.len(), 2);
        assert_eq!(fs[0].occurrences, 6);
        assert_eq!(fs[0].tests.iter().collect::<Vec<_>>(), ["t.py::a", "t.py::b"]);
        let by = by_test(&fs);
        assert_eq!(by.len(), 3);
        assert_eq!(by[&None].len(), 1);
    }

    #[test]
    fn the_shims_identity_wins() {
        let e = evs(concat!(
            r#"{"event":"exec_sigmask","severity":"warn","pid":1,"exe":"/a","target":"/b","signals":["SIGALRM"],"finding":"ab12"}"#, "\n",
            r#"{"event":"exec_sigmask","severity":"warn","pid":2,"exe":"/a","target":"/b","signals":["SIGALRM"],"finding":"cd34"}"#, "\n",
        ));
        assert_eq!(findings(&e).len(), 2);
        assert_eq!(test_id("a.py::t[x (y)] (teardown)"), "a.py::t[x (y)]");
    }

    #[test]
    fn storms_to_two_peers_are_two_findings() {
        let e = evs(concat!(
            r#"{"event":"connect_storm","severity":"warn","pid":1,"exe":"/n","peer":"127.0.0.1:1","connects":60}"#, "\n",
            r#"{"event":"connect_storm","severity":"warn","pid":1,"exe":"/n","peer":"127.0.0.1:2","connects":60}"#, "\n",
            r#"{"event":"connect_storm","severity":"warn","pid":1,"exe":"/n","peer":"127.0.0.1:2","connects":70,"repeats":2}"#, "\n",
        ));
        let fs = findings(&e);
        assert_eq!(fs.iter().map(|f| f.occurrences).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(totals(&e).len(), 2);
    }

    #[test]
    fn occurrences_add_up_over_the_lines_of_a_finding() {
        let log = r#"{"v":1,"ts":1.0,"event":"exec_fd_leak","pid":5,"exe":"/a","target":"/bin/true","finding":"ab"}
{"v":1,"ts":2.0,"event":"exec_fd_leak","pid":6,"exe":"/a","target":"/bin/true","finding":"ab","repeats":500}
{"v":1,"ts":3.0,"event":"exec_fd_leak","pid":5,"exe":"/a","target":"/bin/true","finding":"ab","repeats":497}
{"v":1,"ts":3.5,"event":"exec_fd_leak","pid":5,"exe":"/a","target":"/bin/sh","finding":"cd"}
{"v":1,"ts":4.0,"event":"exec_sigmask","pid":5,"exe":"/a","signals":["SIGALRM"]}
{"v":1,"ts":5.0,"event":"exec_sigmask","pid":5,"exe":"/a","signals":["SIGTERM"]}"#;
        let f = totals(&evs(log));
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!((f[0].id.as_str(), f[0].lines, f[0].occurrences), ("ab", 3, 1000));
        assert_eq!((f[0].first_ts, f[0].last_ts), (1.0, 3.0));
        assert!(f[1..].iter().all(|x| x.lines == 1 && x.occurrences == 1), "{f:?}");
        let t = repeated_text(&evs(log), 10);
        assert!(t.contains("1000× exec_fd_leak in /a → /bin/true (3 lines, finding ab)"), "{t}");
        assert_eq!(t.lines().count(), 1, "{t}");
    }
}
