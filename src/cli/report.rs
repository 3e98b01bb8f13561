//! `execguard report`: the warnings of one or many logs grouped by event, program and
//! fd kind, most urgent first, then the process tree (tree.rs). Text for people,
//! `--json` for machines, `--format dot` for Graphviz.

use super::events::{Event, Fd, Log};
use super::{inputs, prometheus};
use super::outcomes;
use super::symbolize::Symbolizer;
use super::tree::Tree;
use super::{since, style, Format, ReportArgs};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

pub fn report(a: ReportArgs) -> i32 {
    let since = match a.since.as_deref().map(|s| since::parse(s, since::now())) {
        Some(Err(e)) => return super::fail(e),
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let mut log = Log::default();
    let progress = style::Progress::new();
    for f in &a.files {
        progress.note(&format!("reading {}", f.display()));
        if let Err(e) = log.read_path(f) {
            progress.clear();
            return super::fail(format!("cannot read {}: {}", f.display(), outcomes::io_error(&e)));
        }
    }
    if a.journal {
        progress.note("reading the journal");
        let read = inputs::read_journal(&a.journal_args).and_then(|out| log.read_from(&out[..]));
        if let Err(e) = read {
            progress.clear();
            return super::fail(outcomes::io_error(&e));
        }
    }
    progress.clear();
    let total_events = log.events.len();
    if let Some(t) = since {
        log.events.retain(|e| e.ts >= t);
    }
    log.events.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut sym = Symbolizer::default();
    let ctx = Ctx { log: &log, files: &a.files, journal: a.journal, since, dropped_by_since: total_events - log.events.len(), symbols: !a.no_symbols };
    let out = if a.format == Format::Prometheus {
        prometheus::encode(&log.events)
    } else if a.json {
        let v = to_json(&ctx, &mut sym);
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    } else if a.format == Format::Dot {
        by_host(&log.events).iter().map(|(_, evs)| Tree::build(evs).dot(evs, &mut sym, ctx.symbols)).collect()
    } else if let Some(ci) = ci_format(a.format) {
        super::ci::render(ci, &log, &mut sym, &super::ci::Opts::new(a.source_root.as_deref(), ctx.symbols))
    } else {
        text(&ctx, &mut sym, a.max_tree)
    };
    let mut stdout = anstream::stdout();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    0
}

fn ci_format(f: Format) -> Option<super::ci::CiFormat> {
    use super::ci::CiFormat;
    match f {
        Format::Sarif => Some(CiFormat::Sarif),
        Format::Junit => Some(CiFormat::Junit),
        Format::Github => Some(CiFormat::Github),
        Format::Text | Format::Dot | Format::Prometheus => None,
    }
}

struct Ctx<'a> {
    log: &'a Log,
    files: &'a [std::path::PathBuf],
    journal: bool,
    since: Option<f64>,
    dropped_by_since: usize,
    symbols: bool,
}

/// One line of "fix first": the same finding between the same two programs.
#[derive(Default, Debug)]
pub struct Group {
    pub rank: u8,
    pub event: String,
    /// The program that handed the state over (what to fix).
    pub from: String,
    /// The program that received it, when known.
    pub to: Option<String>,
    /// The fd kind, or the signals, or what overflowed.
    pub what: String,
    pub events: u64,
    pub fds: u64,
    pub fixed: u64,
    /// (host, pid): pids repeat across hosts.
    pub pids: BTreeSet<(String, i64)>,
    pub hosts: BTreeSet<String>,
    pub example: Option<String>,
    /// module+offset of where the fds were created or the signals blocked.
    pub origins: BTreeSet<String>,
    /// connect_storm: how the fruitless connections ended, summed.
    pub outcomes: BTreeMap<String, u64>,
}

const URGENT_SIGNALS: [&str; 2] = ["SIGALRM", "SIGCHLD"];
/// So many fds handed over at once is a pool: the select() overflow of incident 2.
const POOL: u64 = 64;

/// 0 = fix first. Listening sockets (the port stays taken, clients hang) and masks
/// that stop timers and child reaping come first; then pools and overflows; then
/// other fds and masks; ignored signals last.
fn rank(e: &Event, what: &str) -> u8 {
    // A server's own listeners and signals, held across its reload into the shim:
    // named, never repaired, nothing to fix.
    if e.held_across_reload() {
        return 3;
    }
    match e.event.as_str() {
        "exec_fd_leak" | "startup_fds" if what == "tcp_listen" || what == "unix_listen" => 0,
        "system_blocking" => 0,
        "exec_sigmask" | "startup_sigmask" if e.signals.iter().any(|s| URGENT_SIGNALS.contains(&s.as_str())) => 0,
        "select_fd_overflow" | "connect_storm" => 1,
        "exec_fd_leak" | "startup_fds" if e.fds_total >= POOL => 1,
        "exec_sigmask" | "startup_sigmask" => 2,
        "exec_fd_leak" | "startup_fds" => 2,
        "exec_sigign" | "startup_sigign" => 3,
        _ => 2,
    }
}

/// Who handed over, and to whom.
pub fn from_to(e: &Event) -> (String, Option<String>) {
    if e.held_across_reload() {
        (format!("{} (its image before a reload)", e.exe), Some(e.exe.clone()))
    } else if e.event.starts_with("startup_") {
        (e.parent_exe.clone().unwrap_or_else(|| format!("parent pid {}", e.ppid)), Some(e.exe.clone()))
    } else {
        (e.exe.clone(), e.target_or_command().map(str::to_owned))
    }
}

pub fn fd_text(f: &Fd) -> String {
    if f.detail.is_empty() {
        format!("fd {} {}", f.fd, f.kind)
    } else {
        format!("fd {} {} {}", f.fd, f.kind, f.detail)
    }
}

pub fn groups(events: &[Event]) -> Vec<Group> {
    let mut map: BTreeMap<(String, String, Option<String>, String), Group> = BTreeMap::new();
    for e in events.iter().filter(|e| e.is_warn()) {
        let (from, to) = from_to(e);
        // (what, fd count, example, origins) for each row this event contributes to.
        let mut rows: Vec<(String, u64, Option<String>, Vec<String>)> = Vec::new();
        match e.event.as_str() {
            "exec_fd_leak" | "startup_fds" => {
                for (kind, n) in e.kind_counts() {
                    let of_kind: Vec<&Fd> = e.fds.iter().filter(|f| f.kind == kind).collect();
                    let example = of_kind.first().map(|f| fd_text(f));
                    let origins = of_kind.iter().filter_map(|f| f.origin.clone()).collect();
                    rows.push((kind, n, example, origins));
                }
            }
            "select_fd_overflow" => {
                let ex = e.overflow_fds.first().map(|fd| format!("fd {fd} set in a 1024-bit fd_set"));
                rows.push((format!("nfds > FD_SETSIZE ({})", e.via.as_deref().unwrap_or("select")), 0, ex, vec![]));
            }
            "connect_storm" => {
                let peer = e.peer.as_deref().unwrap_or("?");
                let ex = e.connects.map(|n| format!("{n} fruitless connections in a window: {}", outcomes::summary(&e.outcomes)));
                rows.push((format!("to {peer}"), 0, ex, e.caller.iter().cloned().collect()));
            }
            "system_blocking" => {
                let ex = e.listeners.first().map(fd_text);
                rows.push(("blocks a server".into(), e.listeners.len() as u64, ex, vec![]));
            }
            _ => {
                let what = if e.signals.is_empty() { "-".to_string() } else { super::tree::sig_list(&e.signals) };
                let origins = e.blocked_by.iter().chain(e.caller.iter()).cloned().collect();
                rows.push((what, 0, None, origins));
            }
        }
        for (what, n, example, origins) in rows {
            let g = map.entry((e.event.clone(), from.clone(), to.clone(), what.clone())).or_insert_with(|| Group {
                rank: rank(e, &what),
                event: e.event.clone(),
                from: from.clone(),
                to: to.clone(),
                what: what.clone(),
                ..Default::default()
            });
            g.rank = g.rank.min(rank(e, &what));
            g.events += e.occurrences();
            g.fds += n * e.occurrences();
            g.fixed += e.is_fixed() as u64 * e.occurrences();
            g.pids.insert((e.host.clone(), e.pid));
            g.hosts.insert(e.host.clone());
            if g.example.is_none() {
                g.example = example;
            }
            g.origins.extend(origins);
            for (k, n) in &e.outcomes {
                *g.outcomes.entry(k.clone()).or_insert(0) += n;
            }
        }
    }
    let mut v: Vec<Group> = map.into_values().collect();
    v.sort_by(|a, b| {
        a.rank.cmp(&b.rank).then(b.events.cmp(&a.events)).then(b.fds.cmp(&a.fds)).then(a.event.cmp(&b.event))
    });
    v
}

fn counts(events: &[Event]) -> (u64, u64, u64, BTreeMap<String, u64>, usize) {
    let (mut warn, mut fixed, mut info) = (0, 0, 0);
    let mut by = BTreeMap::new();
    let mut pids = BTreeSet::new();
    for e in events {
        pids.insert((&e.host, e.pid));
        let n = e.occurrences();
        if e.is_warn() {
            warn += n;
            fixed += e.is_fixed() as u64 * n;
        } else {
            info += n;
        }
        *by.entry(e.event.clone()).or_insert(0) += n;
    }
    (warn, fixed, info, by, pids.len())
}

/// Σ (1 + repeats): what every count of events shown to a user counts.
fn occurrences(events: &[Event]) -> u64 {
    events.iter().map(Event::occurrences).sum()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn text(c: &Ctx, sym: &mut Symbolizer, max_tree: usize) -> String {
    use std::fmt::Write as _;
    let ev = &c.log.events;
    let (warn, fixed, info, by, procs) = counts(ev);
    let mut o = String::new();
    let hosts = by_host(ev);
    let sources = match (c.files.len() as u64, c.journal) {
        (0, true) => "the journal".to_string(),
        (n, true) => plural(n, "file", "files") + " and the journal",
        (n, false) => plural(n, "file", "files"),
    };
    let _ = write!(
        o,
        "{} {} in {}{}: {}, {}",
        style::paint(style::BOLD, "execguard report:"),
        plural(occurrences(ev), "event", "events"),
        sources,
        if hosts.len() > 1 { format!(" from {} hosts", hosts.len()) } else { String::new() },
        plural(procs as u64, "process", "processes"),
        plural(warn, "warning", "warnings"),
    );
    if fixed > 0 {
        let _ = write!(o, " ({fixed} fixed)");
    }
    let _ = writeln!(o);
    if c.log.skipped.total() > 0 {
        let _ = writeln!(o, "{}", style::paint(style::WARN, &c.log.skipped.describe()));
    }
    if let Some(t) = c.since {
        let _ = writeln!(o, "since {t:.0} (unix seconds): {} older events left out", c.dropped_by_since);
    }
    let gs = groups(ev);
    if gs.is_empty() {
        let _ = writeln!(o, "\n{}", style::paint(style::GOOD, "no warnings"));
    } else {
        let _ = writeln!(o, "\n{}", style::paint(style::BOLD, "Fix first:"));
        for (i, g) in gs.iter().enumerate() {
            let fixed = if g.fixed == g.events {
                style::paint(style::GOOD, "all fixed")
            } else if g.fixed > 0 {
                format!("{} fixed", g.fixed)
            } else {
                "not fixed".into()
            };
            let mut counts = plural(g.events, "event", "events");
            if g.fds > 0 {
                let _ = write!(counts, ", {}", plural(g.fds, "fd", "fds"));
            }
            let _ = writeln!(
                o,
                "{:>3}. {} {} — {}, {}, {}",
                i + 1,
                style::paint(if g.rank == 0 { style::BAD } else { style::WARN }, &g.event),
                g.what,
                counts,
                plural(g.pids.len() as u64, "process", "processes"),
                fixed
            );
            match &g.to {
                Some(to) => {
                    let _ = writeln!(o, "     {} → {}", g.from, to);
                }
                None => {
                    let _ = writeln!(o, "     in {}", g.from);
                }
            }
            if hosts.len() > 1 {
                let _ = writeln!(o, "     on {}", host_list(&g.hosts));
            }
            if let Some(ex) = &g.example {
                let _ = writeln!(o, "     e.g. {ex}");
            }
            for name in g.outcomes.keys() {
                if let Some(why) = outcomes::explain(name) {
                    let _ = writeln!(o, "     {name}: {why}");
                }
            }
            let label = match g.event.as_str() {
                e if e.contains("sigmask") => "blocked at",
                "connect_storm" => "connecting at",
                _ => "created at",
            };
            for (n, spec) in g.origins.iter().enumerate() {
                if n == 3 {
                    let _ = writeln!(o, "     … {} more places", g.origins.len() - 3);
                    break;
                }
                let _ = writeln!(o, "     {label} {}", sym.describe(spec, c.symbols));
            }
        }
    }
    o.push_str(&super::findings::by_test_text(ev));
    if info > 0 {
        let list: Vec<String> = by
            .iter()
            .filter(|(name, _)| ev.iter().any(|e| &e.event == *name && !e.is_warn()))
            .map(|(n, k)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(o, "\ninfo: {}", list.join(", "));
    }
    let repeated = super::findings::repeated_text(ev, 10);
    if !repeated.is_empty() {
        let _ = writeln!(o, "\n{}", style::paint(style::BOLD, "Repeated findings (written once, then counted):"));
        o.push_str(&repeated);
    }
    if hosts.len() > 1 {
        let _ = writeln!(o, "\n{}", style::paint(style::BOLD, "Hosts:"));
        for (host, evs) in &hosts {
            let (warn, fixed, _, _, procs) = counts(evs);
            let _ = writeln!(
                o,
                "  {}: {}, {}, {}",
                host_name(host),
                plural(occurrences(evs), "event", "events"),
                plural(procs as u64, "process", "processes"),
                plural(warn, "warning", "warnings") + &if fixed > 0 { format!(" ({fixed} fixed)") } else { String::new() },
            );
        }
    }
    for (host, evs) in &hosts {
        let title = if hosts.len() > 1 {
            format!("Process tree on {} (who handed what to whom):", host_name(host))
        } else {
            "Process tree (who handed what to whom):".to_string()
        };
        let _ = writeln!(o, "\n{}", style::paint(style::BOLD, &title));
        o.push_str(&Tree::build(evs).text(evs, sym, c.symbols, max_tree));
    }
    o
}

/// The events of each host (empty name: events that did not say), in time order;
/// nothing when there are no events. Pids, and so process trees, are per host.
pub fn by_host(events: &[Event]) -> Vec<(String, Vec<Event>)> {
    let mut m: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for e in events {
        m.entry(e.host.as_str()).or_default().push(e.clone());
    }
    m.into_iter().map(|(h, v)| (h.to_string(), v)).collect()
}

fn host_name(h: &str) -> &str {
    if h.is_empty() {
        "(host not recorded)"
    } else {
        h
    }
}

fn host_list(hosts: &BTreeSet<String>) -> String {
    let names: Vec<&str> = hosts.iter().map(|h| host_name(h)).take(5).collect();
    let more = hosts.len().saturating_sub(5);
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!("{}: {}{tail}", plural(hosts.len() as u64, "host", "hosts"), names.join(", "))
}

fn to_json(c: &Ctx, sym: &mut Symbolizer) -> Value {
    let ev = &c.log.events;
    let (warn, fixed, info, by, procs) = counts(ev);
    let mut resolve = |spec: &String| -> Value {
        let r = if c.symbols { sym.resolve(spec) } else { None };
        json!({"at": spec, "resolved": r})
    };
    let groups: Vec<Value> = groups(ev)
        .iter()
        .enumerate()
        .map(|(i, g)| {
            json!({
                "rank": i + 1,
                "urgency": g.rank,
                "event": g.event,
                "from": g.from,
                "to": g.to,
                "what": g.what,
                "events": g.events,
                "fds": g.fds,
                "processes": g.pids.len(),
                "hosts": g.hosts,
                "fixed": g.fixed,
                "example": g.example,
                "origins": g.origins.iter().map(&mut resolve).collect::<Vec<_>>(),
                "outcomes": g.outcomes.iter().map(|(k, n)| (k.clone(), json!({"count": n, "means": outcomes::explain(k)}))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    // pids repeat across hosts: with many, the trees are under "hosts".
    let tree = if by_host(ev).len() > 1 { Value::Null } else { Value::from(Tree::build(ev).json(ev)) };
    let hosts: Vec<Value> = by_host(ev)
        .iter()
        .map(|(h, evs)| {
            let (warn, fixed, info, _, procs) = counts(evs);
            json!({"host": h, "events": occurrences(evs), "warnings": warn, "fixed": fixed, "infos": info,
                   "processes": procs, "tree": Tree::build(evs).json(evs)})
        })
        .collect();
    json!({
        "files": c.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "lines": c.log.lines,
        "events": occurrences(ev),
        "warnings": warn,
        "fixed": fixed,
        "infos": info,
        "processes": procs,
        "since": c.since,
        "left_out_by_since": c.dropped_by_since,
        "skipped": {
            "total": c.log.skipped.total(),
            "truncated": c.log.skipped.truncated,
            "foreign": c.log.skipped.foreign,
            "oversized": c.log.skipped.oversized,
        },
        "by_event": by,
        "groups": groups,
        "by_test": super::findings::by_test_json(ev),
        "findings": super::findings::totals_json(ev),
        "tree": tree,
        "hosts": hosts,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn listeners_and_alarm_masks_come_first() {
        let e = evs(concat!(
            r#"{"event":"exec_fd_leak","severity":"warn","pid":1,"exe":"/a","target":"/b","fds":[{"fd":3,"kind":"pipe","detail":"pipe:[1]"}]}"#, "\n",
            r#"{"event":"exec_fd_leak","severity":"warn","pid":1,"exe":"/a","target":"/b","fds":[{"fd":3,"kind":"pipe","detail":"pipe:[1]"}]}"#, "\n",
            r#"{"event":"exec_sigign","severity":"warn","pid":1,"exe":"/a","target":"/b","signals":["SIGPIPE"]}"#, "\n",
            r#"{"event":"exec_sigmask","severity":"warn","pid":2,"exe":"/u","target":"/h","signals":["SIGALRM"]}"#, "\n",
            r#"{"event":"exec_fd_leak","severity":"warn","pid":3,"exe":"/n","target":"/c","fds":[{"fd":7,"kind":"tcp_listen","detail":"0.0.0.0:1985"},{"fd":8,"kind":"pipe","detail":"p"}]}"#, "\n",
        ));
        let g = groups(&e);
        let order: Vec<(&str, &str)> = g.iter().map(|g| (g.event.as_str(), g.what.as_str())).collect();
        assert_eq!(order[0], ("exec_fd_leak", "tcp_listen"));
        assert_eq!(order[1], ("exec_sigmask", "SIGALRM"));
        assert_eq!(order[2], ("exec_fd_leak", "pipe"));
        assert_eq!(g[2].events, 2);
        assert_eq!(order.last().unwrap().0, "exec_sigign");
    }

    /// A server's reload into a newly installed shim (`"via":"reload"`): its own
    /// listener and signals, held across the reload, come last and are shown as
    /// held there, not as its parent's hand-over.
    #[test]
    fn what_a_server_held_across_its_reload_is_not_to_fix_first() {
        let e = evs(concat!(
            r#"{"event":"exec_sigign","severity":"warn","pid":1,"exe":"/a","target":"/b","signals":["SIGPIPE"]}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","pid":7,"ppid":1,"exe":"/usr/bin/uwsgi","parent_exe":"/usr/bin/bash","via":"reload","from":"outside","fds":[{"fd":3,"kind":"tcp_listen","detail":"127.0.0.1:80"}]}"#, "\n",
            r#"{"event":"startup_sigign","severity":"warn","pid":7,"ppid":1,"exe":"/usr/bin/uwsgi","parent_exe":"/usr/bin/bash","via":"reload","signals":["SIGPIPE"]}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","pid":8,"ppid":1,"exe":"/usr/bin/curl","parent_exe":"/usr/bin/bash","fds":[{"fd":3,"kind":"tcp_listen","detail":"127.0.0.1:80"}]}"#, "\n",
        ));
        let g = groups(&e);
        let order: Vec<(&str, &str, &str)> = g.iter().map(|g| (g.event.as_str(), g.what.as_str(), g.from.as_str())).collect();
        let held = "/usr/bin/uwsgi (its image before a reload)";
        assert_eq!(order[0], ("startup_fds", "tcp_listen", "/usr/bin/bash"), "{order:?}");
        assert_eq!(order.len(), 4, "{order:?}");
        // Last, with the ignored signals.
        assert!(g.iter().filter(|g| g.from == held).all(|g| g.rank == 3), "{order:?}");
        assert_eq!(g.iter().find(|g| g.from == held && g.event == "startup_fds").and_then(|g| g.to.as_deref()), Some("/usr/bin/uwsgi"));
        let t = crate::cli::tree::Tree::build(&e).text(&e, &mut Symbolizer::default(), false, 10);
        assert!(t.contains("held across its own reload (the image before ran without the shim): fd 3 tcp_listen 127.0.0.1:80"), "{t}");
        assert!(t.contains("kept SIGPIPE ignored across its own reload"), "{t}");
        assert!(t.contains("inherited from /usr/bin/bash: fd 3 tcp_listen 127.0.0.1:80"), "{t}");
    }

    #[test]
    fn storm_group_names_peer_and_outcomes() {
        let e = evs(concat!(
            r#"{"event":"connect_storm","severity":"warn","pid":5,"exe":"/usr/sbin/nginx","peer":"127.0.0.1:8080","connects":50,"outcomes":{"EOF":50},"caller":"/usr/sbin/nginx+0x1234"}"#, "\n",
            r#"{"event":"connect_storm","severity":"warn","pid":5,"exe":"/usr/sbin/nginx","peer":"127.0.0.1:8080","connects":300,"outcomes":{"EOF":290,"ECONNRESET":10},"caller":"/usr/sbin/nginx+0x1234"}"#, "\n",
        ));
        let g = groups(&e);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].what.as_str(), g[0].events), ("to 127.0.0.1:8080", 2));
        assert_eq!(g[0].outcomes["EOF"], 340);
        assert_eq!(g[0].outcomes["ECONNRESET"], 10);
        assert!(g[0].origins.contains("/usr/sbin/nginx+0x1234"));
        let log = Log { events: e, ..Default::default() };
        let ctx = Ctx { log: &log, files: &[], journal: false, since: None, dropped_by_since: 0, symbols: false };
        let t = text(&ctx, &mut Symbolizer::default(), 10);
        assert!(t.contains("ECONNRESET: the peer reset the connection"), "{t}");
        assert!(t.contains("EOF: the peer closed the connection before sending a single byte"), "{t}");
        assert!(t.contains("connecting at /usr/sbin/nginx+0x1234"), "{t}");
    }

    #[test]
    fn json_counts_occurrences_like_the_text() {
        let e = evs(concat!(
            r#"{"event":"exec_fd_leak","severity":"warn","pid":1,"exe":"/a","target":"/b","host":"h1","finding":"f","repeats":9}"#, "\n",
            r#"{"event":"fork_threads","severity":"info","pid":1,"exe":"/a","host":"h2"}"#, "\n",
        ));
        let log = Log { events: e, lines: 2, ..Default::default() };
        let ctx = Ctx { log: &log, files: &[], journal: false, since: None, dropped_by_since: 0, symbols: false };
        let v = to_json(&ctx, &mut Symbolizer::default());
        assert_eq!((v["events"].as_u64(), v["warnings"].as_u64(), v["lines"].as_u64()), (Some(11), Some(10), Some(2)), "{v:#}");
        assert_eq!(v["hosts"][0]["events"], 10, "{v:#}");
        assert!(text(&ctx, &mut Symbolizer::default(), 10).contains("11 events"));
    }
}
