//! `--format junit`: JUnit XML (quick-junit) for CI dashboards. A test suite per test
//! that caused findings (and one for findings outside any test), a failing test case
//! per distinct finding, with the finding, where it was made, the process chain and
//! the fix in the failure text. A run with no warnings is one passing case. CLI only.

use super::ci::{self, Opts};
use super::events::Event;
use super::findings;
use super::rules;
use super::symbolize::Symbolizer;
use super::tree::{self, Tree};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeSet;

/// The suite of findings made outside any test (set-up, the runner itself).
pub const NO_TEST: &str = "execguard (outside any test)";

pub fn render(events: &[Event], sym: &mut Symbolizer, o: &Opts) -> String {
    let fs = findings::findings(events);
    let t = Tree::build(events);
    let mut report = Report::new("execguard");
    if fs.is_empty() {
        let mut suite = TestSuite::new("execguard");
        let mut case = TestCase::new("no warnings", TestCaseStatus::success());
        case.set_classname("execguard");
        suite.add_test_case(case);
        report.add_test_suite(suite);
    }
    for (test, list) in findings::by_test(&fs) {
        let name = test.as_deref().unwrap_or(NO_TEST);
        let mut suite = TestSuite::new(name);
        let mut names = BTreeSet::new();
        for f in list {
            let e = f.first();
            let rule = rules::rule(&e.event);
            let mut status = if f.is_from_outside() {
                let mut s = TestCaseStatus::skipped();
                s.set_message("inherited from outside the run: not this suite's doing");
                s
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(ci::message(f, sym, o)).set_type(rule.id);
                s
            };
            status.set_description(ci::details(f, sym, o, &t));
            // Names are unique within a suite: two findings alike but for their fds
            // are told apart by their identity.
            let mut case_name = format!("{}: {} {}", e.event, subject(e), tree::short(e));
            if !names.insert(case_name.clone()) {
                case_name = format!("{case_name} [{}]", &ci::fingerprint(&f.key)[..8]);
                names.insert(case_name.clone());
            }
            let mut case = TestCase::new(case_name, status);
            case.set_classname(test.as_deref().unwrap_or("execguard"));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}

/// The program a finding is about: the one started (exec), or the one that started.
fn subject(e: &Event) -> String {
    match e.target_or_command() {
        Some(t) => format!("{} → {t}", e.exe),
        None => e.exe.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn a_failing_case_per_finding_under_its_test() {
        let e = evs(concat!(
            r#"{"event":"exec_sigmask","severity":"warn","pid":2,"ppid":1,"exe":"/a","target":"/b","signals":["SIGALRM"],"test":"t.py::x (call)"}"#, "\n",
            r#"{"event":"startup_fds","severity":"warn","pid":1,"exe":"/a","fds":[{"fd":9,"kind":"file","detail":"/x"}],"from":"outside"}"#, "\n",
        ));
        let o = Opts { source_root: "/".into(), symbols: false };
        let xml = render(&e, &mut Symbolizer::default(), &o);
        let r = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(r.test_suites.len(), 2);
        let x = r.test_suites.iter().find(|s| s.name.as_str() == "t.py::x").unwrap();
        assert_eq!((x.tests, x.failures), (1, 1));
        let other = r.test_suites.iter().find(|s| s.name.as_str() == NO_TEST).unwrap();
        assert_eq!((other.tests, other.failures, other.skipped), (1, 0, 1));
        assert!(xml.contains("process chain:"), "{xml}");
    }
}
