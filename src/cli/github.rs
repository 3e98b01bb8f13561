//! `--format github`: GitHub Actions workflow commands, one `::warning` per distinct
//! finding (`::notice` for fds inherited from outside the run), with `file=` and
//! `line=` when debug info places it in the repository, so the runner annotates
//! that line. Escaped per the workflow-command rules. CLI only.

use super::ci::{self, Opts};
use super::events::Event;
use super::findings;
use super::rules;
use super::symbolize::Symbolizer;

pub fn render(events: &[Event], sym: &mut Symbolizer, o: &Opts) -> String {
    let mut out = String::new();
    for f in findings::findings(events) {
        let e = f.first();
        let rule = rules::rule(&e.event);
        let sites = ci::sites(&f, sym, o);
        let mut props = Vec::new();
        // GitHub annotates only files of the repository: an absolute path elsewhere
        // (a system library) goes into the message instead.
        if let Some(s) = ci::primary(&sites).filter(|s| s.relative) {
            props.push(format!("file={}", property(s.file.as_deref().unwrap_or(""))));
            props.push(format!("line={}", s.line.unwrap_or(1)));
        }
        let title = match f.tests.iter().next() {
            Some(t) => format!("execguard {} in {t}", rule.id),
            None => format!("execguard {}", rule.id),
        };
        props.push(format!("title={}", property(&title)));
        let mut msg = ci::message(&f, sym, o);
        for s in &sites {
            msg.push_str(&format!("\n{} at {}", s.what, ci::site_text(s)));
        }
        msg.push_str(&format!("\nfix: {}", rule.help));
        let level = if f.is_from_outside() { "notice" } else { "warning" };
        out.push_str(&format!("::{level} {}::{}\n", props.join(","), data(&msg)));
    }
    out
}

/// A command's message: `%`, CR and LF escaped.
pub fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A command property's value: as `data`, plus `:` and `,`, which end it.
pub fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn escapes() {
        assert_eq!(data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(property("a::b,c%"), "a%3A%3Ab%2Cc%25");
    }

    #[test]
    fn one_warning_per_finding() {
        let e = evs(concat!(
            r#"{"event":"exec_sigign","severity":"warn","pid":2,"exe":"/a","target":"/b","signals":["SIGPIPE"],"test":"t.py::x, y (call)"}"#, "\n",
            r#"{"event":"exec_sigign","severity":"warn","pid":3,"exe":"/a","target":"/b","signals":["SIGPIPE"],"test":"t.py::x, y (call)"}"#, "\n",
        ));
        let o = Opts { source_root: "/".into(), symbols: false };
        let out = render(&e, &mut Symbolizer::default(), &o);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("::warning title=execguard exec_sigign in t.py%3A%3Ax%2C y::exec_sigign: "), "{out}");
        assert!(out.contains("%0Afix: SIG_IGN survives exec"), "{out}");
    }
}
