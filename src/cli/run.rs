//! `execguard run`: preload the shim into CMD, pass the terminal's signals through,
//! exit as a shell would report CMD, and print a sanitizer-style summary of the log.

use super::events::Log;
use super::{caller_fds, caller_sigs, inherited, style, FailOn, RunArgs};
use super::{EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_TOOL_ERROR, EXIT_WARNINGS};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

pub const LIB_NAME: &str = "libexecguard.so";

/// Where the Debian package installs the shim (the multiarch library directory;
/// the triplet is the architecture's name on x86_64 and aarch64).
pub fn installed_lib() -> PathBuf {
    PathBuf::from(format!("/usr/lib/{}-linux-gnu/{LIB_NAME}", std::env::consts::ARCH))
}

/// Where the shim is: `$EXECGUARD_LIB` when set (an explicit choice wins), else next
/// to this executable — where `cargo build --release` puts both.
pub fn find_lib() -> Result<PathBuf, String> {
    find_lib_or(None)
}

/// `--lib` first, then `$EXECGUARD_LIB`, next to this executable (a build tree), in
/// `../lib/<triplet>/` beside its bin directory (a package under any prefix), and
/// the package's own path.
pub fn find_lib_or(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let chosen = match explicit {
        Some(p) => Some((p.to_path_buf(), "--lib ", "")),
        None => std::env::var_os("EXECGUARD_LIB")
            .filter(|p| !p.is_empty())
            .map(|p| (PathBuf::from(p), "EXECGUARD_LIB=", " or unset it")),
    };
    if let Some((p, what, hint)) = chosen {
        return match p.canonicalize() {
            Ok(abs) if abs.is_file() => Ok(abs),
            _ => Err(format!("{what}{} does not name a file; point it at libexecguard.so{hint}", p.display())),
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {}", super::outcomes::io_error(&e)))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let triplet_dir = format!("lib/{}-linux-gnu", std::env::consts::ARCH);
    let candidates = [
        dir.join(LIB_NAME),
        dir.join("..").join(&triplet_dir).join(LIB_NAME),
        installed_lib(),
    ];
    for lib in &candidates {
        if lib.is_file() {
            return Ok(lib.canonicalize().unwrap_or_else(|_| lib.clone()));
        }
    }
    Err(format!(
        "{LIB_NAME} not found next to {} nor as {} (and neither --lib nor EXECGUARD_LIB given); \
         build it with: cargo build --release",
        exe.display(),
        installed_lib().display()
    ))
}

/// `lib` first, then every other entry of an existing `LD_PRELOAD` in order (the loader
/// splits on spaces and colons; `lib` itself is not repeated).
pub fn compose_preload(existing: Option<&OsStr>, lib: &Path) -> OsString {
    let mine = lib.as_os_str().as_bytes();
    let mut out = mine.to_vec();
    if let Some(old) = existing {
        for item in old.as_bytes().split(|&b| b == b' ' || b == b':' || b == b'\t' || b == b'\n') {
            if item.is_empty() || item == mine {
                continue;
            }
            out.push(b':');
            out.extend_from_slice(item);
        }
    }
    OsString::from_vec(out)
}

static CHILD: AtomicI32 = AtomicI32::new(0);
const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

// SIGINT/SIGQUIT from the terminal (si_code SI_KERNEL) already reached CMD, which is
// in the same process group: forwarding them would deliver each twice. Sent to us
// alone with kill(2) they are passed on, as SIGTERM and SIGHUP always are.
extern "C" fn forward(sig: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let child = CHILD.load(Ordering::Relaxed);
    if child <= 0 {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_tty = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    if from_tty && (sig == libc::SIGINT || sig == libc::SIGQUIT) {
        return;
    }
    // SAFETY: kill is async-signal-safe; the pid is our own child.
    unsafe { libc::kill(child, sig) };
}

/// Installs the forwarding handler for each of FORWARDED that was not ignored at
/// start (`nohup`, a background job's SIGINT: those stay ignored for CMD too).
fn install_forwarding() {
    for sig in FORWARDED {
        if inherited::was_ignored(sig) {
            continue;
        }
        // SAFETY: a zeroed sigaction plus handler and flags is a valid argument.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn block_forwarded(how: i32) {
    // SAFETY: stack sigset, plain sigprocmask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

struct LogFile {
    path: PathBuf,
    start: u64,
    ours: bool,
}

fn open_log(arg: Option<&Path>) -> Result<LogFile, String> {
    if let Some(p) = arg {
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| format!("cannot resolve --log {}: {}", p.display(), super::outcomes::io_error(&e)))?.join(p)
        };
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| format!("cannot write log {}: {}; choose another --log", path.display(), super::outcomes::io_error(&e)))?;
        let start = f.metadata().map(|m| m.len()).unwrap_or(0);
        return Ok(LogFile { path, start, ours: false });
    }
    let dir = std::env::temp_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let pid = std::process::id();
    for n in 0..100 {
        let name = if n == 0 { format!("execguard-{pid}.jsonl") } else { format!("execguard-{pid}-{n}.jsonl") };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Ok(LogFile { path, start: 0, ours: true }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!("cannot create a log in {}: {}; set TMPDIR or pass --log FILE", dir.display(), super::outcomes::io_error(&e)))
            }
        }
    }
    Err(format!("cannot create a log in {}; pass --log FILE", dir.display()))
}

pub fn run(a: RunArgs) -> i32 {
    // First, before the run opens anything of its own.
    let caller = caller_fds::list();
    let lib = match find_lib_or(a.lib.as_deref()) {
        Ok(l) => l,
        Err(e) => return super::fail(e),
    };
    if lib.as_os_str().as_bytes().iter().any(|&b| b == b':' || b == b' ') {
        return super::fail(format!(
            "{} contains ':' or ' ', which LD_PRELOAD cannot hold; move the library or set EXECGUARD_LIB",
            lib.display()
        ));
    }
    let log = match open_log(a.log.as_deref()) {
        Ok(l) => l,
        Err(e) => return super::fail(e),
    };

    let mut cmd = Command::new(&a.cmd[0]);
    cmd.args(&a.cmd[1..])
        .env("LD_PRELOAD", compose_preload(std::env::var_os("LD_PRELOAD").as_deref(), &lib))
        .env("EXECGUARD_MODE", a.mode.as_str())
        .env("EXECGUARD_LOG", &log.path)
        .env("EXECGUARD_FOLLOW", "1");
    if let Some(k) = &a.keep_fds {
        cmd.env("EXECGUARD_KEEP_FDS", k);
    }
    if a.origins {
        cmd.env("EXECGUARD_ORIGINS", "1");
    }
    if !caller.is_empty() {
        cmd.env("EXECGUARD_OUTSIDE", caller_fds::env_value(&caller));
    }
    // SAFETY: the closure only calls async-signal-safe functions on stack data.
    unsafe {
        cmd.pre_exec(|| {
            for sig in FORWARDED {
                let d = if inherited::was_ignored(sig) { libc::SIG_IGN } else { libc::SIG_DFL };
                libc::signal(sig, d);
            }
            // std empties the mask and resets SIGPIPE for every child; CMD must see
            // what execguard itself was given, or the shim would audit our choices.
            inherited::restore_in_child();
            Ok(())
        });
    }

    // Blocked across the spawn so that a Ctrl-C in that window is neither lost nor
    // kills us before CHILD is known; the pending signal runs the handler at unblock.
    block_forwarded(libc::SIG_BLOCK);
    install_forwarding();
    let spawned = cmd.spawn();
    if let Ok(c) = &spawned {
        CHILD.store(c.id() as i32, Ordering::Relaxed);
    }
    block_forwarded(libc::SIG_UNBLOCK);

    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            cleanup_log(&log, 0);
            let name = Path::new(&a.cmd[0]).display().to_string();
            return match e.kind() {
                std::io::ErrorKind::NotFound => {
                    style::error_line(&format!("{name}: command not found"));
                    EXIT_NOT_FOUND
                }
                _ => {
                    style::error_line(&format!("{name}: cannot run: {}", super::outcomes::io_error(&e)));
                    EXIT_CANNOT_EXEC
                }
            };
        }
    };
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => return super::fail(format!("waiting for the command failed: {}", super::outcomes::io_error(&e))),
    };
    CHILD.store(0, Ordering::Relaxed);
    let cmd_status = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => EXIT_TOOL_ERROR,
    };

    let caller_sigs = caller_sigs::CallerSigs::at_start();
    let summary = match summarize(&log, &caller, &caller_sigs) {
        Ok(s) => s,
        Err(e) => {
            style::error_line(&format!("cannot read the log {}: {}", log.path.display(), super::outcomes::io_error(&e)));
            return if cmd_status == 0 { EXIT_TOOL_ERROR } else { cmd_status };
        }
    };
    if !a.quiet {
        print_summary(&summary, &log, status.signal());
        if let Some(line) = caller_fds::summary_line(&caller) {
            let _ = writeln!(anstream::stderr(), "execguard: {line}");
        }
        if let Some(line) = caller_sigs::summary_line(&summary.callers_signals) {
            let _ = writeln!(anstream::stderr(), "execguard: {line}");
        }
    }
    let reports = super::ci::write_run_reports(&a.report, &log.path, log.start, a.source_root.as_deref(), &caller_sigs);
    if let Err(e) = &reports {
        style::error_line(e);
    }
    cleanup_log(&log, summary.lines);
    if reports.is_err() && cmd_status == 0 {
        return EXIT_TOOL_ERROR;
    }
    if a.fail_on == FailOn::Warn && summary.warnings > 0 && cmd_status == 0 {
        return EXIT_WARNINGS;
    }
    cmd_status
}

/// The default log is ours to remove when the run wrote nothing to it.
fn cleanup_log(log: &LogFile, lines: u64) {
    if log.ours && lines == 0 && std::fs::metadata(&log.path).map(|m| m.len() == 0).unwrap_or(false) {
        let _ = std::fs::remove_file(&log.path);
    }
}

#[derive(Default)]
pub struct Summary {
    pub warnings: u64,
    pub fixed: u64,
    pub infos: u64,
    pub by_event: BTreeMap<String, u64>,
    pub processes: usize,
    pub lines: u64,
    pub skipped: super::events::Skipped,
    /// One line per degraded path the shim took (src/cli/degraded.rs).
    pub degraded: Vec<String>,
    /// The command's start-side events about the signal state the run itself was
    /// started with (src/cli/caller_sigs.rs): the caller's, not warnings.
    pub callers_signals: Vec<super::events::Event>,
}

fn summarize(log: &LogFile, caller: &[caller_fds::CallerFd], sigs: &caller_sigs::CallerSigs) -> std::io::Result<Summary> {
    let mut f = File::open(&log.path)?;
    f.seek(SeekFrom::Start(log.start))?;
    let mut l = Log::default();
    l.read_from(f)?;
    // The caller's fds and signals are named in lines of their own, never as the
    // command's warnings.
    l.events.retain(|e| !caller_fds::is_callers(e, caller));
    let me = std::process::id();
    let (callers_signals, events) = std::mem::take(&mut l.events).into_iter().partition(|e| caller_sigs::is_callers(e, sigs, me));
    l.events = events;
    Ok(Summary { callers_signals, ..summary_of(&l) })
}

pub fn summary_of(l: &Log) -> Summary {
    let mut s = Summary { lines: l.lines, skipped: l.skipped, ..Default::default() };
    let mut pids = BTreeSet::new();
    for e in &l.events {
        // A line stands for its finding's folded repeats too.
        let n = e.occurrences();
        if !e.is_warn() {
            s.infos += n;
            continue;
        }
        s.warnings += n;
        if e.is_fixed() {
            s.fixed += n;
        }
        *s.by_event.entry(e.event.clone()).or_insert(0) += n;
        pids.insert(e.pid);
    }
    s.processes = pids.len();
    s.degraded = super::degraded::lines(l);
    s
}

/// `execguard: SUMMARY: 3 warnings (2 exec_fd_leak, 1 exec_sigmask) in 2 processes; full log: F`
pub fn summary_line(s: &Summary, log: &Path) -> String {
    let mut line = if s.warnings == 0 {
        "no warnings".to_string()
    } else {
        let mut by: Vec<_> = s.by_event.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = by.iter().map(|(e, n)| format!("{n} {e}")).collect();
        format!(
            "{} warning{} ({}) in {} process{}",
            s.warnings,
            plural(s.warnings),
            list.join(", "),
            s.processes,
            if s.processes == 1 { "" } else { "es" }
        )
    };
    if s.fixed > 0 {
        line.push_str(&format!(", {} fixed", s.fixed));
    }
    if s.skipped.total() > 0 {
        line.push_str(&format!("; {}", s.skipped.describe()));
    }
    if s.lines > 0 {
        line.push_str(&format!("; full log: {}", log.display()));
    }
    line
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn print_summary(s: &Summary, log: &LogFile, died_by: Option<i32>) {
    let mut e = anstream::stderr();
    let head = if s.warnings > 0 { style::paint(style::WARN, "SUMMARY:") } else { style::paint(style::GOOD, "SUMMARY:") };
    let _ = writeln!(e, "execguard: {head} {}", summary_line(s, &log.path));
    if s.warnings > 0 {
        let _ = writeln!(e, "execguard: details: execguard report {}", log.path.display());
    }
    for line in &s.degraded {
        let _ = writeln!(e, "execguard: degraded: {line}");
    }
    if let Some(sig) = died_by {
        let _ = writeln!(e, "execguard: the command was killed by {}", inherited::signal_name(sig));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn preload_keeps_others_in_order() {
        let lib = Path::new("/x/libexecguard.so");
        assert_eq!(compose_preload(None, lib), "/x/libexecguard.so");
        assert_eq!(compose_preload(Some(OsStr::new("/a.so /b.so")), lib), "/x/libexecguard.so:/a.so:/b.so");
        assert_eq!(compose_preload(Some(OsStr::new(":/a.so::/x/libexecguard.so")), lib), "/x/libexecguard.so:/a.so");
    }

    #[test]
    fn summary_wording() {
        let mut l = Log::default();
        l.read_from(
            &br#"{"event":"exec_fd_leak","severity":"warn","pid":1}
{"event":"exec_fd_leak","severity":"warn","pid":2}
{"event":"exec_sigmask","severity":"warn","pid":2}
{"event":"fork_threads","severity":"info","pid":2}
"#[..],
        )
        .unwrap();
        let s = summary_of(&l);
        assert_eq!(
            summary_line(&s, Path::new("/t/l.jsonl")),
            "3 warnings (2 exec_fd_leak, 1 exec_sigmask) in 2 processes; full log: /t/l.jsonl"
        );
        assert_eq!(summary_line(&Summary::default(), Path::new("/t")), "no warnings");
    }

    #[test]
    fn summary_counts_folded_repeats() {
        let mut l = Log::default();
        l.read_from(
            &br#"{"event":"exec_fd_leak","severity":"warn","action":"fixed","pid":1,"finding":"a"}
{"event":"exec_fd_leak","severity":"warn","action":"fixed","pid":1,"finding":"a","repeats":998}
"#[..],
        )
        .unwrap();
        let s = summary_of(&l);
        assert_eq!((s.warnings, s.fixed, s.by_event.get("exec_fd_leak").copied()), (1000, 1000, Some(1000)));
    }
}
