//! The process tree of a log, from each event's pid/ppid: which image each pid ran
//! (an exec keeps the pid and names its target), and what it handed on or inherited.
//! Drawn as text, Graphviz dot, or JSON.

use super::events::Event;
use super::report::fd_text;
use super::symbolize::Symbolizer;
use super::style;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const EXEC_VIAS: [&str; 9] = ["execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve", "execveat"];

pub struct Node {
    pub pid: i64,
    pub ppid: i64,
    /// Programs this pid ran, in order.
    pub images: Vec<String>,
    /// Indexes of this pid's events.
    pub events: Vec<usize>,
    /// Logged nothing itself: the common parent of logged processes.
    pub placeholder: bool,
    pub children: Vec<i64>,
    /// It or a descendant has a warning.
    pub warns: bool,
}

pub struct Tree {
    pub nodes: BTreeMap<i64, Node>,
    pub roots: Vec<i64>,
}

fn push_image(images: &mut Vec<String>, img: &str) {
    if images.last().map(String::as_str) != Some(img) {
        images.push(img.to_string());
    }
}

pub fn is_exec_via(e: &Event) -> bool {
    e.via.as_deref().map(|v| EXEC_VIAS.contains(&v)).unwrap_or(false)
}

impl Tree {
    /// `events` sorted by time.
    pub fn build(events: &[Event]) -> Tree {
        let mut nodes: BTreeMap<i64, Node> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let n = nodes.entry(e.pid).or_insert_with(|| Node {
                pid: e.pid,
                ppid: e.ppid,
                images: Vec::new(),
                events: Vec::new(),
                placeholder: false,
                children: Vec::new(),
                warns: false,
            });
            push_image(&mut n.images, &e.exe);
            if e.event.starts_with("exec_") && is_exec_via(e) {
                if let Some(t) = &e.target {
                    push_image(&mut n.images, t);
                }
            }
            n.events.push(i);
            n.warns |= e.is_warn();
        }
        // Parents that logged nothing still group their children.
        let missing: BTreeSet<i64> =
            nodes.values().map(|n| n.ppid).filter(|p| *p > 0 && !nodes.contains_key(p)).collect();
        for p in missing {
            let parent_exe = events.iter().find(|e| e.ppid == p && e.parent_exe.is_some()).and_then(|e| e.parent_exe.clone());
            nodes.insert(
                p,
                Node {
                    pid: p,
                    ppid: 0,
                    images: parent_exe.into_iter().collect(),
                    events: Vec::new(),
                    placeholder: true,
                    children: Vec::new(),
                    warns: false,
                },
            );
        }
        let links: Vec<(i64, i64)> = nodes.values().map(|n| (n.ppid, n.pid)).collect();
        let mut roots = Vec::new();
        for (ppid, pid) in links {
            if ppid != pid && nodes.contains_key(&ppid) {
                if let Some(p) = nodes.get_mut(&ppid) {
                    p.children.push(pid);
                }
            } else {
                roots.push(pid);
            }
        }
        let mut t = Tree { nodes, roots };
        // pid reuse can make a cycle: anything not reached from a root becomes one.
        let mut seen = BTreeSet::new();
        for r in t.roots.clone() {
            t.mark(r, &mut seen);
        }
        let unreached: Vec<i64> = t.nodes.keys().filter(|p| !seen.contains(*p)).copied().collect();
        for p in unreached {
            if !seen.contains(&p) {
                t.roots.push(p);
                t.mark(p, &mut seen);
            }
        }
        t
    }

    /// Sets `warns` bottom-up; `seen` stops cycles.
    fn mark(&mut self, pid: i64, seen: &mut BTreeSet<i64>) -> bool {
        if !seen.insert(pid) {
            return false;
        }
        let kids = self.nodes.get(&pid).map(|n| n.children.clone()).unwrap_or_default();
        let mut any = false;
        for k in kids {
            any |= self.mark(k, seen);
        }
        match self.nodes.get_mut(&pid) {
            Some(n) => {
                n.warns |= any;
                n.warns
            }
            None => any,
        }
    }

    /// The processes from the outermost known ancestor down to `pid`, one label each
    /// (for a CI report's failure text: who started whom).
    pub fn chain(&self, pid: i64) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut at = Some(pid);
        while let Some(n) = at.and_then(|p| self.nodes.get(&p)) {
            if !seen.insert(n.pid) {
                break;
            }
            out.push(Self::label(n));
            at = (n.ppid != n.pid).then_some(n.ppid);
        }
        out.reverse();
        out
    }

    fn label(n: &Node) -> String {
        let imgs = if n.images.is_empty() { "?".to_string() } else { n.images.join(" → ") };
        if n.placeholder {
            format!("{} {imgs} (logged nothing)", n.pid)
        } else {
            format!("{} {imgs}", n.pid)
        }
    }

    pub fn text(&self, events: &[Event], sym: &mut Symbolizer, symbols: bool, max: usize) -> String {
        let mut out = String::new();
        let mut drawn = 0usize;
        let mut hidden = 0usize;
        let mut seen = BTreeSet::new();
        for r in &self.roots {
            self.text_node(*r, "", "", events, sym, symbols, max, &mut out, &mut drawn, &mut hidden, &mut seen);
        }
        let quiet = self.nodes.values().filter(|n| !n.warns).count();
        if quiet > 0 {
            out.push_str(&format!("({quiet} processes with nothing to report not drawn)\n"));
        }
        if hidden > 0 {
            out.push_str(&format!("({hidden} more processes not drawn; raise --max-tree)\n"));
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn text_node(
        &self,
        pid: i64,
        lead: &str,
        rest: &str,
        events: &[Event],
        sym: &mut Symbolizer,
        symbols: bool,
        max: usize,
        out: &mut String,
        drawn: &mut usize,
        hidden: &mut usize,
        seen: &mut BTreeSet<i64>,
    ) {
        let Some(n) = self.nodes.get(&pid) else { return };
        if !n.warns || !seen.insert(pid) {
            return;
        }
        if max > 0 && *drawn >= max {
            *hidden += 1;
            return;
        }
        *drawn += 1;
        out.push_str(&format!("{lead}{}\n", style::paint(style::BOLD, &Self::label(n))));
        let kids: Vec<i64> = n.children.iter().copied().filter(|k| self.nodes.get(k).map(|c| c.warns).unwrap_or(false)).collect();
        let mut lines: Vec<(String, u64)> = Vec::new();
        for &i in &n.events {
            let e = &events[i];
            if !e.is_warn() {
                continue;
            }
            let l = describe(e, sym, symbols);
            match lines.iter_mut().find(|(t, _)| *t == l) {
                Some((_, c)) => *c += 1,
                None => lines.push((l, 1)),
            }
        }
        let bar = if kids.is_empty() { "   " } else { "│  " };
        for (l, c) in lines {
            let times = if c > 1 { format!(" (×{c})") } else { String::new() };
            out.push_str(&format!("{rest}{bar}{}{times}\n", style::paint(style::WARN, &format!("! {l}"))));
        }
        for (k, kid) in kids.iter().enumerate() {
            let last = k + 1 == kids.len();
            let (l, r) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            self.text_node(*kid, &format!("{rest}{l}"), &format!("{rest}{r}"), events, sym, symbols, max, out, drawn, hidden, seen);
        }
    }

    pub fn dot(&self, events: &[Event], sym: &mut Symbolizer, symbols: bool) -> String {
        let mut o = String::from(
            "digraph execguard {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n  edge [fontname=\"monospace\", fontsize=9];\n",
        );
        for n in self.nodes.values() {
            let color = if n.warns { "black" } else { "gray" };
            let style = if n.placeholder { ", style=dashed" } else { "" };
            o.push_str(&format!("  \"p{}\" [label=\"{}\", color={color}{style}];\n", n.pid, esc(&Self::label(n))));
        }
        let mut targets = 0usize;
        for n in self.nodes.values() {
            for c in &n.children {
                let Some(child) = self.nodes.get(c) else { continue };
                let inherited: Vec<String> = child
                    .events
                    .iter()
                    .map(|&i| &events[i])
                    .filter(|e| e.is_warn() && e.event.starts_with("startup_"))
                    .map(short)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let attrs = if inherited.is_empty() {
                    String::new()
                } else {
                    format!(" [label=\"{}\", color=red, fontcolor=red]", esc(&inherited.join("\n")))
                };
                o.push_str(&format!("  \"p{}\" -> \"p{}\"{attrs};\n", n.pid, c));
            }
            // Handed on at an exec (same pid, new image) or to a spawned child.
            let mut done = BTreeSet::new();
            for &i in &n.events {
                let e = &events[i];
                if !e.is_warn() || !e.event.starts_with("exec_") {
                    continue;
                }
                let what = e.target_or_command().unwrap_or("?").to_string();
                let key = (what.clone(), e.event.clone());
                if !done.insert(key) {
                    continue;
                }
                targets += 1;
                let id = format!("t{}_{targets}", n.pid);
                let style = if is_exec_via(e) { "solid" } else { "dashed" };
                o.push_str(&format!("  \"{id}\" [label=\"{}\", shape=ellipse];\n", esc(&what)));
                let mut label = short(e);
                if let Some(b) = &e.blocked_by {
                    label.push_str(&format!("\nblocked at {}", sym.describe(b, symbols)));
                }
                o.push_str(&format!(
                    "  \"p{}\" -> \"{id}\" [label=\"{}\", color=red, fontcolor=red, style={style}];\n",
                    n.pid,
                    esc(&format!("{} {label}", e.via.as_deref().unwrap_or("exec")))
                ));
            }
        }
        o.push_str("}\n");
        o
    }

    pub fn json(&self, events: &[Event]) -> Vec<Value> {
        self.nodes
            .values()
            .map(|n| {
                let warnings: Vec<Value> = n
                    .events
                    .iter()
                    .map(|&i| &events[i])
                    .filter(|e| e.is_warn())
                    .map(|e| json!({"event": e.event, "fixed": e.is_fixed(), "what": short(e), "to": e.target_or_command()}))
                    .collect();
                json!({
                    "pid": n.pid,
                    "ppid": if n.placeholder { Value::Null } else { json!(n.ppid) },
                    "images": n.images,
                    "logged": !n.placeholder,
                    "children": n.children,
                    "warnings": warnings,
                })
            })
            .collect()
    }
}

/// What an event is about, in a few words: `tcp_listen×2, pipe` or `SIGALRM SIGCHLD`.
pub fn short(e: &Event) -> String {
    let fixed = if e.is_fixed() { " [fixed]" } else { "" };
    let what = match e.event.as_str() {
        "exec_fd_leak" | "startup_fds" => e
            .kind_counts()
            .iter()
            .map(|(k, n)| if *n > 1 { format!("{k}×{n}") } else { k.clone() })
            .collect::<Vec<_>>()
            .join(", "),
        "select_fd_overflow" => format!("select nfds={}", e.nfds.unwrap_or(0)),
        "system_blocking" => "blocks while serving".into(),
        "connect_storm" => format!("to {}", e.peer.as_deref().unwrap_or("?")),
        _ => sig_list(&e.signals),
    };
    format!("{what}{fixed}")
}

/// One line for the text tree.
pub fn describe(e: &Event, sym: &mut Symbolizer, symbols: bool) -> String {
    let fixed = if e.is_fixed() { " [fixed]" } else { "" };
    let via = e.via.as_deref().unwrap_or("exec");
    let to = e.target_or_command().unwrap_or("?");
    let fds = |e: &Event, sym: &mut Symbolizer| -> String {
        let mut parts: Vec<String> = e
            .fds
            .iter()
            .take(4)
            .map(|f| match &f.origin {
                Some(o) => format!("{} (created at {})", fd_text(f), sym.describe(o, symbols)),
                None => fd_text(f),
            })
            .collect();
        let more = e.fds_total.saturating_sub(parts.len() as u64);
        if more > 0 {
            let kinds: Vec<String> = e.kind_counts().iter().map(|(k, n)| format!("{k}×{n}")).collect();
            parts.push(format!("+{more} more ({})", kinds.join(", ")));
        }
        parts.join(", ")
    };
    let blocked = |e: &Event, sym: &mut Symbolizer| match &e.blocked_by {
        Some(b) => format!(" (blocked at {})", sym.describe(b, symbols)),
        None => String::new(),
    };
    let parent = e.parent_exe.as_deref().unwrap_or("its parent");
    let reload = "across its own reload (the image before ran without the shim)";
    match e.event.as_str() {
        "startup_fds" if e.held_across_reload() => format!("held {reload}: {}{fixed}", fds(e, sym)),
        "startup_sigmask" if e.held_across_reload() => format!("kept {} blocked {reload}{fixed}", sig_list(&e.signals)),
        "startup_sigign" if e.held_across_reload() => format!("kept {} ignored {reload}{}{fixed}", sig_list(&e.signals), kept(e)),
        "exec_fd_leak" => format!("{via} → {to} leaks {}{fixed}", fds(e, sym)),
        "startup_fds" => format!("inherited from {parent}: {}{fixed}", fds(e, sym)),
        "exec_sigmask" => format!("{via} → {to} with {} blocked{}{fixed}", sig_list(&e.signals), blocked(e, sym)),
        "startup_sigmask" => format!("started by {parent} with {} blocked{fixed}", sig_list(&e.signals)),
        "exec_sigign" => format!("{via} → {to} with {} ignored{}{fixed}", sig_list(&e.signals), kept(e)),
        "startup_sigign" => format!("started by {parent} with {} ignored{}{fixed}", sig_list(&e.signals), kept(e)),
        "select_fd_overflow" => format!(
            "{via} with nfds={} > FD_SETSIZE (fds {}){fixed}",
            e.nfds.unwrap_or(0),
            e.overflow_fds.iter().take(4).map(|f| f.to_string()).collect::<Vec<_>>().join(",")
        ),
        "system_blocking" => format!(
            "{via}({to}){} blocks a process serving {} (waited {:.1} s)",
            e.child_pid.map(|p| format!(" [child {p}]")).unwrap_or_default(),
            e.listeners.iter().take(2).map(fd_text).collect::<Vec<_>>().join(", "),
            e.waited_s.unwrap_or(0.0)
        ),
        "connect_storm" => format!(
            "connect storm to {}: {} fruitless connections ({}){}",
            e.peer.as_deref().unwrap_or("?"),
            e.connects.unwrap_or(0),
            super::outcomes::summary(&e.outcomes),
            e.caller.as_deref().map(|c| format!(" at {}", sym.describe(c, symbols))).unwrap_or_default()
        ),
        other => format!("{other}: {}", short(e)),
    }
}

fn kept(e: &Event) -> String {
    if e.kept.is_empty() {
        String::new()
    } else {
        format!(" (kept on purpose: {})", e.kept.join(" "))
    }
}

/// At most six signal names, then how many more: a full mask is 60 names.
pub fn sig_list(sigs: &[String]) -> String {
    let mut s = sigs.iter().take(6).cloned().collect::<Vec<_>>().join(" ");
    if sigs.len() > 6 {
        s.push_str(&format!(" +{} more", sigs.len() - 6));
    }
    s
}

/// A dot double-quoted string body.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn exec_keeps_the_pid_and_names_the_image() {
        let e = evs(concat!(
            r#"{"event":"exec_fd_leak","severity":"warn","pid":5,"ppid":4,"exe":"/a","via":"execve","target":"/b","ts":1}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","pid":5,"ppid":4,"exe":"/b","parent_exe":"/p","ts":2}"#, "\n",
        ));
        let t = Tree::build(&e);
        assert_eq!(t.nodes[&5].images, ["/a", "/b"]);
        assert!(t.nodes[&4].placeholder);
        assert_eq!(t.nodes[&4].images, ["/p"]);
        assert_eq!(t.roots, [4]);
    }

    #[test]
    fn pid_reuse_cycles_do_not_loop() {
        let e = evs(concat!(
            r#"{"event":"startup_fds","severity":"warn","pid":1,"ppid":2,"exe":"/a"}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","pid":2,"ppid":1,"exe":"/b"}"#, "\n",
        ));
        let t = Tree::build(&e);
        assert_eq!(t.roots.len(), 1);
        let text = t.text(&e, &mut Symbolizer::default(), false, 0);
        assert!(text.contains("1 /a") && text.contains("2 /b"), "{text}");
    }

    #[test]
    fn dot_strings_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
