//! `execguard report --format prometheus`: counters for node_exporter's textfile
//! collector, written with `prometheus-client`'s text encoder. Each line counts as
//! 1 + its `repeats`, so the totals are exact however the shim folded repeats.

use super::events::Event;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    event: String,
    severity: String,
    action: String,
    /// The program that did it (the `exe` of the event).
    program: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    program: String,
    host: String,
}

pub fn encode(events: &[Event]) -> String {
    let mut reg = Registry::with_prefix("execguard");
    let found = Family::<Labels, Counter>::default();
    let dropped = Family::<DropLabels, Counter>::default();
    reg.register("events", "Events the shim logged (repeats folded into a line counted)", found.clone());
    reg.register("dropped_events", "Events a journal or syslog sink could not deliver", dropped.clone());
    for e in events {
        let host = if e.host.is_empty() { "unknown".to_string() } else { e.host.clone() };
        found
            .get_or_create(&Labels {
                event: e.event.clone(),
                severity: e.severity.clone(),
                action: e.action.clone(),
                program: e.exe.clone(),
                host: host.clone(),
            })
            .inc_by(e.occurrences());
        if e.dropped > 0 {
            dropped.get_or_create(&DropLabels { program: e.exe.clone(), host }).inc_by(e.dropped);
        }
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &reg).is_err() {
        return String::new();
    }
    textfile(&out)
}

/// The encoder writes OpenMetrics: `# TYPE x counter` above samples named `x_total`,
/// and a final `# EOF`. node_exporter's textfile collector and `promtool check
/// metrics` read the Prometheus text format, where HELP and TYPE must name the
/// samples themselves: rename them, drop the marker.
fn textfile(open_metrics: &str) -> String {
    let mut counters = Vec::new();
    for line in open_metrics.lines() {
        if let Some(name) = line.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter")) {
            counters.push(name.to_string());
        }
    }
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let mut l = line.to_string();
        for c in &counters {
            for head in ["# TYPE ", "# HELP "] {
                if let Some(rest) = line.strip_prefix(&format!("{head}{c} ")) {
                    l = format!("{head}{c}_total {rest}");
                }
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn repeats_and_hosts_are_counted() {
        let e = evs(concat!(
            r#"{"event":"exec_sigmask","severity":"warn","action":"logged","pid":1,"exe":"/usr/bin/uwsgi","host":"a","repeats":4}"#, "\n",
            r#"{"event":"exec_sigmask","severity":"warn","action":"logged","pid":2,"exe":"/usr/bin/uwsgi","host":"a"}"#, "\n",
            r#"{"event":"exec_sigmask","severity":"warn","action":"logged","pid":2,"exe":"/usr/bin/uwsgi","host":"b","dropped":3}"#, "\n",
        ));
        let t = encode(&e);
        assert!(t.contains("# TYPE execguard_events_total counter\n"), "{t}");
        assert!(t.contains(r#"execguard_events_total{event="exec_sigmask",severity="warn",action="logged",program="/usr/bin/uwsgi",host="a"} 6"#), "{t}");
        assert!(t.contains(r#"host="b"} 1"#), "{t}");
        assert!(t.contains(r#"execguard_dropped_events_total{program="/usr/bin/uwsgi",host="b"} 3"#), "{t}");
        assert!(!t.contains("# EOF"));
    }
}
