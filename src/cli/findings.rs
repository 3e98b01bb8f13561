//! Findings across the lines of a log: the shim writes a repeating finding once in
//! full and then `repeats` counts on later lines of the same `finding`; this module
//! adds them back up (occurrences = Σ(1 + repeats) over a finding's lines).

use super::events::Event;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct Finding {
    pub id: String,
    pub event: String,
    pub exe: String,
    pub target: Option<String>,
    pub lines: u64,
    pub occurrences: u64,
    pub first_ts: f64,
    pub last_ts: f64,
}

/// Every finding of `events` (lines without `finding`, from older shims, each count
/// as their own), most occurrences first.
pub fn findings(events: &[Event]) -> Vec<Finding> {
    let mut map: BTreeMap<String, Finding> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let id = e.finding.clone().unwrap_or_else(|| format!("line-{i}"));
        let f = map.entry(id.clone()).or_insert_with(|| Finding {
            id,
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
    let mut v: Vec<Finding> = map.into_values().collect();
    v.sort_by(|a, b| b.occurrences.cmp(&a.occurrences).then(a.event.cmp(&b.event)).then(a.id.cmp(&b.id)));
    v
}

pub fn to_json(events: &[Event]) -> Value {
    let v: Vec<Value> = findings(events)
        .iter()
        .map(|f| {
            json!({
                "finding": f.id, "event": f.event, "exe": f.exe, "target": f.target,
                "lines": f.lines, "occurrences": f.occurrences, "first_ts": f.first_ts, "last_ts": f.last_ts,
            })
        })
        .collect();
    Value::Array(v)
}

/// The text report's section: findings that were folded (more occurrences than lines).
pub fn text(events: &[Event], max: usize) -> String {
    use std::fmt::Write as _;
    let rep: Vec<Finding> = findings(events).into_iter().filter(|f| f.occurrences > f.lines).collect();
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
mod tests {
    use super::*;
    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn occurrences_add_up_over_the_lines_of_a_finding() {
        let log = r#"{"v":1,"ts":1.0,"event":"exec_fd_leak","pid":5,"exe":"/a","target":"/bin/true","finding":"ab"}
{"v":1,"ts":2.0,"event":"exec_fd_leak","pid":6,"exe":"/a","target":"/bin/true","finding":"ab","repeats":500}
{"v":1,"ts":3.0,"event":"exec_fd_leak","pid":5,"exe":"/a","target":"/bin/true","finding":"ab","repeats":497}
{"v":1,"ts":3.5,"event":"exec_fd_leak","pid":5,"exe":"/a","target":"/bin/sh","finding":"cd"}
{"v":1,"ts":4.0,"event":"exec_sigmask","pid":5,"exe":"/a"}
{"v":1,"ts":5.0,"event":"exec_sigmask","pid":5,"exe":"/a"}"#;
        let f = findings(&evs(log));
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!((f[0].id.as_str(), f[0].lines, f[0].occurrences), ("ab", 3, 1000));
        assert_eq!((f[0].first_ts, f[0].last_ts), (1.0, 3.0));
        assert!(f[1..].iter().all(|x| x.lines == 1 && x.occurrences == 1), "{f:?}");
        let t = text(&evs(log), 10);
        assert!(t.contains("1000× exec_fd_leak in /a → /bin/true (3 lines, finding ab)"), "{t}");
        assert_eq!(t.lines().count(), 1, "{t}");
    }
}
