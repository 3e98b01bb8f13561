//! Issue 15, CI reports end to end: a pytest suite (tests/data/ci/test_suite.py) runs
//! under `execguard run --origins --report sarif=… --report junit=…`. Two of its tests
//! start C helpers built here with `-g` (a listener leaked into a child, SIGALRM
//! blocked in the thread that starts a child); the findings must name those two
//! tests and no other, and the SARIF locations must be the helpers' source lines.
//! The SARIF is checked against the official SARIF 2.1.0 JSON schema (from the npm
//! package @microsoft/jest-sarif) with Python's `jsonschema`; the JUnit XML is read
//! by `junitparser` (PyPI). scripts/test installs all three, and pytest.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const LEAK_TEST: &str = "test_suite.py::test_listener_leak";
const MASK_TEST: &str = "test_suite.py::test_blocked_alarm";
const PORT: &str = "25011";

fn data() -> PathBuf {
    common::root().join("tests").join("data").join("ci")
}

/// The 1-based line of `mark` in a helper's source.
fn line_of(file: &str, mark: &str) -> u64 {
    let src = std::fs::read_to_string(data().join(file)).unwrap();
    src.lines().position(|l| l.contains(mark)).unwrap_or_else(|| panic!("{mark} not in {file}")) as u64 + 1
}

/// The official schema, where scripts/test installs it (or $EXECGUARD_SARIF_SCHEMA).
fn sarif_schema() -> PathBuf {
    let p = std::env::var_os("EXECGUARD_SARIF_SCHEMA").map(PathBuf::from).unwrap_or_else(|| {
        common::root().join("target/npm-tools/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json")
    });
    assert!(
        p.is_file(),
        "{} missing: run scripts/test, or `npm install --prefix target/npm-tools @microsoft/jest-sarif`",
        p.display()
    );
    p
}

fn python(args: &[&Path]) -> std::process::Output {
    Command::new("python3").args(args).output().expect("run python3")
}

struct Suite {
    log: PathBuf,
    sarif: PathBuf,
    junit: PathBuf,
    run: std::process::Output,
}

/// Builds the helpers and runs the pytest suite under the shim, once.
fn run_suite() -> &'static Suite {
    static S: std::sync::OnceLock<Suite> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let d = common::tmpdir("ci-reports");
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["listener_child", "alarm_thread"] {
            // From the absolute source path: the DWARF names the file under the repository.
            let st = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
                .args(["-g", "-O0", "-pthread", "-o"])
                .arg(bin.join(name))
                .arg(data().join(format!("{name}.c")))
                .status()
                .unwrap();
            assert!(st.success(), "cc {name}");
        }
        let (log, sarif, junit) = (d.join("log.jsonl"), d.join("out.sarif"), d.join("out.xml"));
        // Bounded: a hung suite fails the test instead of stalling the whole run.
        let run = Command::new("timeout")
            .args(["300", env!("CARGO_BIN_EXE_execguard"), "run", "--origins", "--log"])
            .arg(&log)
            .arg(format!("--report=sarif={}", sarif.display()))
            .arg(format!("--report=junit={}", junit.display()))
            .arg("--source-root")
            .arg(common::root())
            .args(["--", "python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suite.py"])
            .current_dir(data())
            .env("EXECGUARD_LIB", common::shim())
            .env("EG_CI_BIN", &bin)
            .env("EG_CI_PORT", PORT)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTEST_CURRENT_TEST")
            .env_remove("PYTEST_ADDOPTS")
            .output()
            .unwrap();
        Suite { log, sarif, junit, run }
    })
}

fn ctx(s: &Suite) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}\nlog:\n{}",
        String::from_utf8_lossy(&s.run.stdout),
        String::from_utf8_lossy(&s.run.stderr),
        common::read_lossy(&s.log)
    )
}

/// The helpers' own findings (robust to what a test harness leaks into every run:
/// its fds come in from outside and are not these).
fn is_listener_leak(e: &Value) -> bool {
    e["event"] == "exec_fd_leak"
        && e["fds"].as_array().into_iter().flatten().any(|f| f["kind"] == "tcp_listen" && f["detail"] == format!("127.0.0.1:{PORT}"))
}

fn is_alarm_mask(e: &Value) -> bool {
    (e["event"] == "exec_sigmask" || e["event"] == "startup_sigmask")
        && e["signals"].as_array().into_iter().flatten().any(|s| s == "SIGALRM")
}

#[test]
fn events_name_the_test_that_caused_them() {
    let s = run_suite();
    assert!(s.run.status.success(), "the suite passes and --fail-on is never: {}", ctx(s));
    let evs = common::events(&s.log);
    let leaks: Vec<&Value> = evs.iter().filter(|e| is_listener_leak(e)).collect();
    let masks: Vec<&Value> = evs.iter().filter(|e| is_alarm_mask(e)).collect();
    assert_eq!(leaks.len(), 1, "{}", ctx(s));
    assert!(!masks.is_empty(), "{}", ctx(s));
    assert_eq!(leaks[0]["test"], format!("{LEAK_TEST} (call)"), "{}", leaks[0]);
    for m in &masks {
        assert_eq!(m["test"], format!("{MASK_TEST} (call)"), "{m}");
    }
    // No warning names any other test: the clean tests made no findings. (Info
    // events name them too: CPython's subprocess blocks signals around its fork.)
    for e in evs.iter().filter(|e| e["severity"] == "warn") {
        if let Some(t) = e["test"].as_str() {
            assert!(t.starts_with(LEAK_TEST) || t.starts_with(MASK_TEST), "{e}");
        }
    }
}

#[test]
fn sarif_is_valid_and_points_at_the_source_lines() {
    let s = run_suite();
    assert!(s.run.status.success(), "{}", ctx(s));
    let check = python(&[&data().join("sarif_validate.py"), &sarif_schema(), &s.sarif]);
    assert!(
        check.status.success(),
        "SARIF 2.1.0 schema errors:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&s.sarif).unwrap()).unwrap();
    let run = &v["runs"][0];
    let root = format!("file://{}/", common::root().canonicalize().unwrap().display());
    assert_eq!(run["originalUriBaseIds"]["SRCROOT"]["uri"], root);
    let results = run["results"].as_array().unwrap();
    let named = |t: &str| -> Vec<&Value> {
        results.iter().filter(|r| r["properties"]["tests"].as_array().unwrap().iter().any(|x| x == t)).collect()
    };
    for r in results {
        for t in r["properties"]["tests"].as_array().unwrap() {
            assert!(t == LEAK_TEST || t == MASK_TEST, "a clean test is named: {r}");
        }
        // GitHub code scanning rejects a result without a physical location.
        assert!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string(), "{r}");
        let rule = &run["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
        assert!(!rule["help"]["text"].as_str().unwrap().is_empty());
    }
    let at = |r: &Value| -> (String, String, u64) {
        let p = &r["locations"][0]["physicalLocation"];
        (
            p["artifactLocation"]["uri"].as_str().unwrap_or("").to_string(),
            p["artifactLocation"]["uriBaseId"].as_str().unwrap_or("").to_string(),
            p["region"]["startLine"].as_u64().unwrap_or(0),
        )
    };
    let leak: Vec<&Value> = named(LEAK_TEST).into_iter().filter(|r| r["ruleId"] == "exec_fd_leak").collect();
    assert_eq!(leak.len(), 1, "{results:#?}");
    assert_eq!(
        at(leak[0]),
        ("tests/data/ci/listener_child.c".into(), "SRCROOT".into(), line_of("listener_child.c", "EG-SOCKET")),
        "{}",
        leak[0]
    );
    let mask: Vec<&Value> = named(MASK_TEST).into_iter().filter(|r| r["ruleId"] == "exec_sigmask").collect();
    assert_eq!(mask.len(), 1, "{results:#?}");
    assert_eq!(
        at(mask[0]),
        ("tests/data/ci/alarm_thread.c".into(), "SRCROOT".into(), line_of("alarm_thread.c", "EG-BLOCK")),
        "{}",
        mask[0]
    );
    assert!(rule_help(run, "exec_fd_leak").contains("CLOEXEC"));
    assert!(rule_help(run, "exec_sigmask").contains("pthread_sigmask"));
}

fn rule_help(run: &Value, id: &str) -> String {
    run["tool"]["driver"]["rules"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["help"]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn junit_has_a_failing_case_per_finding_under_its_test() {
    let s = run_suite();
    assert!(s.run.status.success(), "{}", ctx(s));
    let out = python(&[&data().join("junit_summary.py"), &s.junit]);
    assert!(out.status.success(), "junitparser: {}", String::from_utf8_lossy(&out.stderr));
    let suites: Value = serde_json::from_slice(&out.stdout).unwrap();
    let suites = suites.as_array().unwrap();
    let suite = |name: &str| suites.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no suite {name}: {suites:#?}"));
    for s in suites {
        let n = s["name"].as_str().unwrap();
        assert!(n == LEAK_TEST || n == MASK_TEST || !n.starts_with("test_suite.py"), "a clean test is named: {s}");
    }
    let leak = suite(LEAK_TEST);
    let case = leak["cases"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().starts_with("exec_fd_leak")).unwrap();
    assert_eq!(case["classname"], LEAK_TEST);
    assert_eq!(case["results"], serde_json::json!(["Failure"]), "{case}");
    let text = case["text"].as_str().unwrap();
    assert!(text.contains(&format!("tests/data/ci/listener_child.c:{}", line_of("listener_child.c", "EG-SOCKET"))), "{text}");
    assert!(text.contains("process chain:") && text.contains("listener_child"), "{text}");
    assert!(text.contains("127.0.0.1:25011") && text.contains("SOCK_CLOEXEC"), "{text}");
    let mask = suite(MASK_TEST);
    assert!(mask["failures"].as_u64().unwrap() >= 1, "{mask}");
    let case = mask["cases"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().starts_with("exec_sigmask")).unwrap();
    assert!(case["message"].as_str().unwrap().contains("SIGALRM"), "{case}");
    assert!(case["text"].as_str().unwrap().contains(&format!("alarm_thread.c:{}", line_of("alarm_thread.c", "EG-BLOCK"))), "{case}");
}

#[test]
fn github_annotations_and_the_by_test_report() {
    let s = run_suite();
    assert!(s.run.status.success(), "{}", ctx(s));
    let bin = env!("CARGO_BIN_EXE_execguard");
    // From a directory inside the checkout: paths are relative to its top by default.
    let gh = Command::new(bin).args(["report", "--format", "github"]).arg(&s.log).current_dir(data()).output().unwrap();
    assert!(gh.status.success());
    let text = String::from_utf8_lossy(&gh.stdout);
    let want = format!(
        "::warning file=tests/data/ci/listener_child.c,line={},title=execguard exec_fd_leak in test_suite.py%3A%3Atest_listener_leak::exec_fd_leak: ",
        line_of("listener_child.c", "EG-SOCKET")
    );
    assert_eq!(text.lines().filter(|l| l.starts_with(&want)).count(), 1, "{text}");
    assert!(text.lines().all(|l| l.starts_with("::warning ") || l.starts_with("::notice ")), "{text}");
    let rep = Command::new(bin).args(["report", "--no-symbols"]).arg(&s.log).env("NO_COLOR", "1").output().unwrap();
    let text = String::from_utf8_lossy(&rep.stdout);
    let by = text.split("By test (distinct findings):").nth(1).unwrap_or_else(|| panic!("{text}"));
    assert!(by.contains(&format!("  {LEAK_TEST}\n     exec_fd_leak ")), "{text}");
    assert!(by.contains(&format!("  {MASK_TEST}\n")), "{text}");
}

const MARKED: &str = r#"#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
/* Leaks a pipe into /bin/true, whose environment is CI_MARK=from-envp ("envp") or
   only PATH (anything else). */
int main(int argc, char **argv) {
    int p[2];
    if (pipe(p) != 0)
        return 2;
    char *args[] = {"true", 0};
    char *with[] = {"CI_MARK=from-envp", 0};
    char *none[] = {"PATH=/bin:/usr/bin", 0};
    pid_t c = fork();
    if (c == 0) {
        execve("/bin/true", args, argc > 1 && strcmp(argv[1], "envp") == 0 ? with : none);
        _exit(127);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return 0;
}
"#;

/// The `test` of the exec_fd_leak that `marked ARG` writes under `env`, and its
/// stderr (human form when `json` is false).
fn marked_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| common::cc(&common::tmpdir("ci-marked"), "marked", MARKED, &["-O1"]))
}

fn marked(arg: &str, env: &[(&str, &str)], json: bool) -> (Option<String>, String) {
    let bin = marked_bin();
    let dir = common::tmpdir("ci-marked-log");
    let log = dir.join("log.jsonl");
    let mut cmd = Command::new(bin);
    cmd.arg(arg).env_clear().env("LD_PRELOAD", common::shim()).envs(env.iter().copied());
    if json {
        cmd.env("EXECGUARD_LOG", &log);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let evs = common::events(&log);
    let leak = common::named(&evs, "exec_fd_leak");
    if json {
        assert_eq!(leak.len(), 1, "{evs:?} {stderr}");
    }
    let test = leak.first().and_then(|e| e["test"].as_str().map(str::to_owned));
    let _ = std::fs::remove_dir_all(&dir);
    (test, stderr)
}

#[test]
fn the_test_comes_from_the_execs_environment_then_the_process() {
    let own = ("PYTEST_CURRENT_TEST", "t.py::own (call)");
    let knob = ("EXECGUARD_TEST_ENV", "OTHER:CI_MARK");
    // The environment handed to the new program names the test first…
    assert_eq!(marked("envp", &[own, knob], true).0.as_deref(), Some("from-envp"));
    // …else the process's own; a variable named in EXECGUARD_TEST_ENV counts too.
    assert_eq!(marked("none", &[own, knob], true).0.as_deref(), Some("t.py::own (call)"));
    assert_eq!(marked("none", &[("OTHER", "job 7"), knob], true).0.as_deref(), Some("job 7"));
    // Without the knob, CI_MARK is nobody's marker; without any marker, no field.
    assert_eq!(marked("envp", &[], true).0, None);
    assert_eq!(marked("none", &[("CI_MARK", "x")], true).0, None);
    // A huge name is cut, and the line stays whole.
    let long = "y".repeat(5000);
    assert_eq!(marked("none", &[("PYTEST_CURRENT_TEST", &long)], true).0.map(|t| t.len()), Some(300));
    // The human form says it too.
    let (_, stderr) = marked("none", &[own], false);
    let line = stderr.lines().find(|l| l.contains("exec_fd_leak")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.ends_with(" test=t.py::own (call)"), "{line}");
}

#[test]
fn run_report_without_file_goes_to_stdout_and_bad_specs_are_refused() {
    let prog = marked_bin();
    let dir = common::tmpdir("ci-run-stdout-log");
    let log = dir.join("log.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_execguard"))
        .args(["run", "-q", "--report", "github", "--log"])
        .arg(&log)
        .arg("--")
        .arg(prog)
        .arg("none")
        .env("EXECGUARD_LIB", common::shim())
        .env("PYTEST_CURRENT_TEST", "t.py::stdout (call)")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let leaks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::warning title=execguard exec_fd_leak in t.py%3A%3Astdout::")).collect();
    assert_eq!(leaks.len(), 1, "{stdout}");
    assert!(leaks[0].contains("pipe"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
    let bad = Command::new(env!("CARGO_BIN_EXE_execguard")).args(["run", "--report", "xml=a.xml", "--", "true"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use sarif, junit or github"));
}
