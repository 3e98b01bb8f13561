//! What the CI formats (sarif.rs, junit.rs, github.rs) share: where a finding was made
//! in the source (module+offset resolved through debug info, made relative to the
//! source root), its one-line text, and `--report FORMAT[=FILE]` for `execguard run`.
//! CLI only.

use super::events::{Event, Log};
use super::findings::Finding;
use super::symbolize::Symbolizer;
use super::{rules, tree};
use std::path::{Path, PathBuf};

/// How the reports are drawn.
pub struct Opts {
    /// Paths under it become relative URIs (SARIF `%SRCROOT%`, GitHub `file=`).
    pub source_root: PathBuf,
    /// Resolve module+offset with debug info.
    pub symbols: bool,
}

impl Opts {
    /// `root`, else the top of the git checkout around the current directory (what
    /// GitHub and GitLab match paths against), else the current directory.
    pub fn new(root: Option<&Path>, symbols: bool) -> Opts {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let root = match root {
            Some(r) if r.is_absolute() => r.to_path_buf(),
            Some(r) => cwd.join(r),
            None => checkout_top(&cwd).unwrap_or(cwd),
        };
        Opts { source_root: root.canonicalize().unwrap_or(root), symbols }
    }
}

/// The nearest directory at or above `dir` holding `.git` (a directory, or a file in
/// a worktree or submodule).
fn checkout_top(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

/// Where in the code a finding's state was made: a source line when debug info
/// resolves it, else the raw module+offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `module+0xoffset` as the shim wrote it.
    pub spec: String,
    /// "created" (an fd) or "blocked" (a mask).
    pub what: &'static str,
    pub function: Option<String>,
    /// The source file: relative to the source root when under it, else absolute.
    pub file: Option<String>,
    pub relative: bool,
    pub line: Option<u32>,
}

/// The origins an event names: each leaked fd's creation, the call that blocked
/// the mask, the caller of a storm.
pub fn specs(e: &Event) -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> = Vec::new();
    let fd_origins = e.fds.iter().chain(&e.listeners).filter_map(|f| f.origin.clone());
    let others = e.blocked_by.iter().map(|b| (b.clone(), "blocked")).chain(e.caller.iter().map(|c| (c.clone(), "called")));
    for (spec, what) in fd_origins.map(|o| (o, "created")).chain(others) {
        if !v.iter().any(|(s, _)| *s == spec) {
            v.push((spec, what));
        }
    }
    v
}

pub fn sites(f: &Finding, sym: &mut Symbolizer, o: &Opts) -> Vec<Site> {
    specs(f.first())
        .into_iter()
        .map(|(spec, what)| {
            let place = if o.symbols { sym.locate(&spec) } else { None }.unwrap_or_default();
            let (file, relative) = match place.file.as_deref() {
                Some(p) => match relative_to(Path::new(p), &o.source_root) {
                    Some(r) => (Some(r), true),
                    None => (Some(p.to_string()), false),
                },
                None => (None, false),
            };
            Site { spec, what, function: place.function, file, relative, line: place.line }
        })
        .collect()
}

/// `file` below `root`, '/'-separated; None when it is elsewhere. A relative DWARF
/// path (built with relative sources) is taken as relative to the root already.
pub fn relative_to(file: &Path, root: &Path) -> Option<String> {
    if file.is_relative() {
        let s = file.to_string_lossy();
        return (!s.starts_with("..")).then(|| s.trim_start_matches("./").to_string());
    }
    let canon = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let rel = canon.strip_prefix(root).ok()?;
    Some(rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
}

/// The first site with a file and a line: where the annotation goes.
pub fn primary(sites: &[Site]) -> Option<&Site> {
    sites.iter().find(|s| s.file.is_some() && s.line.is_some())
}

/// One line: what happened, where, and in which test.
pub fn message(f: &Finding, sym: &mut Symbolizer, o: &Opts) -> String {
    let e = f.first();
    let mut m = format!("{}: {}", e.event, tree::describe(e, sym, o.symbols));
    if e.event.starts_with("exec_") || e.event == "system_blocking" {
        m = format!("{m} (in {})", e.exe);
    }
    if !f.tests.is_empty() {
        let tests: Vec<&str> = f.tests.iter().map(String::as_str).collect();
        m.push_str(&format!("; test: {}", tests.join(", ")));
    }
    if f.occurrences > 1 {
        m.push_str(&format!("; {} times", f.occurrences));
    }
    if f.is_from_outside() {
        m.push_str("; inherited from outside the run");
    }
    m
}

/// A site as text: `function (file:line)` or the module+offset.
pub fn site_text(s: &Site) -> String {
    match (&s.function, &s.file, s.line) {
        (Some(func), Some(file), Some(line)) => format!("{func} ({file}:{line})"),
        (None, Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(func), _, _) => format!("{func} [{}]", s.spec),
        _ => s.spec.clone(),
    }
}

/// Several lines for a failure's body: the message, where, the process chain, the fix.
pub fn details(f: &Finding, sym: &mut Symbolizer, o: &Opts, t: &tree::Tree) -> String {
    let e = f.first();
    let mut d = message(f, sym, o);
    d.push('\n');
    for s in sites(f, sym, o) {
        d.push_str(&format!("{} at {}\n", s.what, site_text(&s)));
    }
    let chain = t.chain(e.pid);
    if !chain.is_empty() {
        d.push_str("process chain:\n");
        for (i, p) in chain.iter().enumerate() {
            d.push_str(&format!("{}{p}\n", "  ".repeat(i + 1)));
        }
    }
    // pids repeat across hosts.
    let pids: std::collections::BTreeSet<(&str, i64)> = f.events.iter().map(|e| (e.host.as_str(), e.pid)).collect();
    if pids.len() > 1 {
        d.push_str(&format!("seen in {} processes\n", pids.len()));
    }
    d.push_str(&format!("fix: {}\n", rules::rule(&e.event).help));
    d
}

/// A stable short hash of a finding's key (SARIF partialFingerprints, JUnit names).
pub fn fingerprint(key: &str) -> String {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The formats `--report` writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CiFormat {
    Sarif,
    Junit,
    Github,
}

/// `FORMAT[=FILE]`; no FILE or `-` is standard output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSpec {
    pub format: CiFormat,
    pub file: Option<PathBuf>,
}

pub fn parse_spec(s: &str) -> Result<ReportSpec, String> {
    let (fmt, file) = match s.split_once('=') {
        Some((f, p)) => (f, Some(p)),
        None => (s, None),
    };
    let format = match fmt {
        "sarif" => CiFormat::Sarif,
        "junit" => CiFormat::Junit,
        "github" => CiFormat::Github,
        other => return Err(format!("unknown report format `{other}`: use sarif, junit or github (FORMAT[=FILE])")),
    };
    let file = match file {
        None | Some("-") => None,
        Some("") => return Err(format!("`{s}`: empty FILE (use {fmt}=- for standard output)")),
        Some(p) => Some(PathBuf::from(p)),
    };
    Ok(ReportSpec { format, file })
}

pub fn render(format: CiFormat, log: &Log, sym: &mut Symbolizer, o: &Opts) -> String {
    match format {
        CiFormat::Sarif => super::sarif::render(&log.events, sym, o),
        CiFormat::Junit => super::junit::render(&log.events, sym, o),
        CiFormat::Github => super::github::render(&log.events, sym, o),
    }
}

/// Write each report (files created or truncated); the first error is returned.
pub fn write_all(specs: &[ReportSpec], log: &Log, o: &Opts) -> Result<(), String> {
    let mut sym = Symbolizer::default();
    let mut first_err = None;
    for spec in specs {
        let text = render(spec.format, log, &mut sym, o);
        let r = match &spec.file {
            None => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| format!("cannot write a report to standard output: {}", super::outcomes::io_error(&e)))
            }
            Some(p) => std::fs::write(p, text).map_err(|e| format!("cannot write the report {}: {}", p.display(), super::outcomes::io_error(&e))),
        };
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// `execguard run --report …`: the reports of this run's part of the log (from byte
/// `start`: the file may hold earlier runs).
/// The reports at the end of `execguard run`. The command's start-side events about
/// signals the run itself was started with are its caller's, as the summary says
/// (src/cli/caller_sigs.rs): they are reported as from outside the run, like the
/// caller's fds (a note, a skipped case), never as the suite's failures.
pub fn write_run_reports(
    specs: &[ReportSpec],
    log: &Path,
    start: u64,
    root: Option<&Path>,
    caller_sigs: &super::caller_sigs::CallerSigs,
) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    if specs.is_empty() {
        return Ok(());
    }
    let mut l = Log::default();
    let read = std::fs::File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(start))?;
        l.read_from(f)
    });
    read.map_err(|e| format!("cannot read the log {} for the reports: {}", log.display(), super::outcomes::io_error(&e)))?;
    l.events.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let me = std::process::id();
    for e in l.events.iter_mut().filter(|e| super::caller_sigs::is_callers(e, caller_sigs, me)) {
        e.from = Some(super::events::FROM_OUTSIDE.to_string());
    }
    write_all(specs, &l, &Opts::new(root, true))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn report_specs() {
        assert_eq!(parse_spec("sarif=out/x.sarif").unwrap(), ReportSpec { format: CiFormat::Sarif, file: Some("out/x.sarif".into()) });
        assert_eq!(parse_spec("github").unwrap().file, None);
        assert_eq!(parse_spec("junit=-").unwrap(), ReportSpec { format: CiFormat::Junit, file: None });
        assert!(parse_spec("xml=a").is_err());
        assert!(parse_spec("junit=").is_err());
    }

    #[test]
    fn paths_relative_to_the_root() {
        assert_eq!(relative_to(Path::new("/nonexistent/r/src/a.c"), Path::new("/nonexistent/r")).as_deref(), Some("src/a.c"));
        assert_eq!(relative_to(Path::new("/elsewhere/a.c"), Path::new("/nonexistent/r")), None);
        assert_eq!(relative_to(Path::new("./src/a.c"), Path::new("/r")).as_deref(), Some("src/a.c"));
        assert_eq!(fingerprint("a"), fingerprint("a"));
        let top = checkout_top(&std::env::current_dir().unwrap().join("src/cli")).unwrap();
        assert!(top.join("Cargo.toml").is_file(), "{}", top.display());
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
