//! `execguard demo`: each incident of DESIGN.md in miniature (demo_child.rs), run
//! without the shim, in log mode and in fix mode, as one table. Every cell is what the
//! child observed about itself plus the events its log holds — nothing is assumed.

use super::demo_child::INCIDENTS;
use super::events::Log;
use super::run::{compose_preload, find_lib};
use super::{style, DemoArgs};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A whole cell (parent and children) is killed, by process group, after this.
const CELL_LIMIT: Duration = Duration::from_secs(6);

#[derive(Clone, Copy, PartialEq)]
enum Column {
    Without,
    Log,
    Fix,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Without => "without",
            Column::Log => "log",
            Column::Fix => "fix",
        }
    }
}

struct Cell {
    outcome: String,
    good: bool,
    events: String,
}

fn title(incident: &str) -> (&'static str, &'static str) {
    match incident {
        "listen" => ("1 listening socket → child", "nginx system(\"curl …\")"),
        "pool" => ("2 1030-socket UDP pool → child", "child's select() overflows"),
        "mask" => ("3 thread blocks all signals", "child's alarm() never fires"),
        "sigpipe" => ("4 SIGPIPE ignored → exec", "child can't die of SIGPIPE"),
        _ => ("?", ""),
    }
}

pub fn demo(a: DemoArgs) -> i32 {
    let lib = find_lib();
    let dir = a.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("execguard-demo-{}", std::process::id())));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return super::fail(format!("cannot create {}: {}; pass --dir DIR", dir.display(), super::outcomes::io_error(&e)));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return super::fail(format!("cannot find my own executable: {}", super::outcomes::io_error(&e))),
    };
    let progress = style::Progress::new();
    let mut rows = Vec::new();
    for inc in INCIDENTS {
        let mut cells = Vec::new();
        for col in [Column::Without, Column::Log, Column::Fix] {
            progress.note(&format!("demo: incident {} ({}) {}…", title(inc).0, inc, col.name()));
            let cell = match (&lib, col) {
                (Err(_), Column::Log | Column::Fix) => {
                    Cell { outcome: "shim not built".into(), good: false, events: "cargo build --release".into() }
                }
                (lib, col) => run_cell(&exe, lib.as_ref().ok().map(PathBuf::as_path), &dir, inc, col),
            };
            cells.push(cell);
        }
        rows.push((inc, cells));
    }
    progress.clear();
    print_table(&rows, &dir, lib.as_ref().err());
    0
}

fn run_cell(exe: &Path, lib: Option<&Path>, dir: &Path, inc: &str, col: Column) -> Cell {
    let log = dir.join(format!("{inc}-{}.jsonl", col.name()));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new(exe);
    cmd.args(["__demo", "parent", inc])
        .env_remove("LD_PRELOAD")
        .env_remove("EXECGUARD_LOG")
        .env_remove("EXECGUARD_MODE")
        .env_remove("EXECGUARD_KEEP_FDS")
        .env_remove("EXECGUARD_ORIGINS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: raw syscalls only, between fork and exec. The fds this process inherited
    // from its own environment would show up in every cell; CLOEXEC (not close) keeps
    // std's exec-error pipe working. Kernels without close_range just show them.
    // Likewise ignored signals (a process started by posix_spawn, as cargo does, has
    // glibc's internal 32 and 33 ignored): default them with the raw call, which,
    // unlike glibc's sigaction, accepts those numbers.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32 /* CLOSE_RANGE_CLOEXEC */);
            // struct kernel_sigaction: handler, flags, restorer, mask (8 bytes).
            let dfl = [0usize; 4];
            for sig in 1..=64usize {
                let mut old = [0usize; 4];
                let r = libc::syscall(libc::SYS_rt_sigaction, sig, std::ptr::null::<usize>(), old.as_mut_ptr(), 8usize);
                if r == 0 && old[0] == libc::SIG_IGN {
                    libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null_mut::<usize>(), 8usize);
                }
            }
            Ok(())
        });
    }
    if let (Some(lib), Column::Log | Column::Fix) = (lib, col) {
        cmd.env("LD_PRELOAD", compose_preload(None, lib))
            .env("EXECGUARD_MODE", col.name())
            .env("EXECGUARD_LOG", &log)
            .env("EXECGUARD_FOLLOW", "1");
    }
    let (out, killed) = match run_bounded(cmd) {
        Ok(x) => x,
        Err(e) => return Cell { outcome: format!("could not start: {}", super::outcomes::io_error(&e)), good: false, events: String::new() },
    };
    let lines: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let probe = lines.iter().find(|v| v.get("probe").is_some());
    let parent = lines.iter().find(|v| v.get("parent").is_some());
    let hung = killed || parent.and_then(|p| p["hang"].as_bool()).unwrap_or(false);
    let (outcome, good) = match (lines.iter().find_map(|v| v["skip"].as_str()), probe) {
        (Some(why), _) => (format!("skipped: {why}"), false),
        (None, _) if hung && probe.is_none() => ("hang (killed after 2 s)".into(), false),
        (None, None) => ("child reported nothing".into(), false),
        (None, Some(p)) => outcome(inc, p, &lines),
    };
    let events = if col == Column::Without { String::new() } else { events_of(&log, inc) };
    Cell { outcome, good, events }
}

/// Runs the cell's process group to completion or kills it after CELL_LIMIT.
fn run_bounded(mut cmd: Command) -> std::io::Result<(String, bool)> {
    let mut child = cmd.spawn()?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    // Drained so that a chatty shim (human lines) never blocks the cell on a full pipe.
    let drain = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
    });
    let start = Instant::now();
    let mut killed = false;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > CELL_LIMIT {
            // SAFETY: the group was created for this cell (process_group(0)), its id is
            // the pid of our unreaped child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Stragglers of the group (a shell's child) still hold the pipe: end them too.
    // SAFETY: as above; ESRCH when the group is already gone.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let out = reader.join().unwrap_or_default();
    let _ = drain.join();
    Ok((out, killed))
}

fn outcome(inc: &str, p: &Value, lines: &[Value]) -> (String, bool) {
    match inc {
        "listen" => {
            let port = lines.iter().find_map(|v| v["listening"].as_u64());
            let held: Vec<u64> = p["listeners"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
            match held.first() {
                Some(h) if Some(*h) == port => (format!("child holds :{h}"), false),
                Some(h) => (format!("child holds :{h}"), false),
                None => ("child clean ✓".into(), true),
            }
        }
        "pool" => {
            let fd = p["new_fd"].as_i64().unwrap_or(-1);
            let n = p["inherited_fds"].as_u64().unwrap_or(0);
            if fd >= 1024 {
                (format!("{n} fds in; new fd {fd}: select ✗"), false)
            } else {
                (format!("{n} fds in; new fd {fd} ✓"), true)
            }
        }
        "mask" => {
            if p["alarm_fired"].as_bool().unwrap_or(false) {
                ("alarm() fires ✓".into(), true)
            } else {
                let n = p["blocked"].as_array().map(|a| a.len()).unwrap_or(0);
                (format!("{n} signals blocked: alarm never fires"), false)
            }
        }
        "sigpipe" => {
            if p["sigpipe_ignored"].as_bool().unwrap_or(false) {
                ("child ignores SIGPIPE".into(), false)
            } else {
                ("SIGPIPE default ✓".into(), true)
            }
        }
        _ => ("?".into(), false),
    }
}

/// The events that tell each incident's story, in the order worth reading.
fn relevance(inc: &str) -> &'static [&'static str] {
    match inc {
        "listen" => &["exec_fd_leak", "system_blocking", "startup_fds"],
        "pool" => &["select_fd_overflow", "exec_fd_leak", "startup_fds"],
        "mask" => &["exec_sigmask", "startup_sigmask"],
        "sigpipe" => &["exec_sigign", "startup_sigign"],
        _ => &[],
    }
}

/// `! exec_fd_leak, startup_fds` or `fixed: exec_fd_leak`, from the cell's log.
fn events_of(log: &Path, inc: &str) -> String {
    let mut l = Log::default();
    if std::fs::File::open(log).map(|f| l.read_from(f)).is_err() {
        return "no events".into();
    }
    let mut names: Vec<(String, bool)> = Vec::new();
    for e in l.events.iter().filter(|e| e.is_warn()) {
        match names.iter_mut().find(|(n, _)| *n == e.event) {
            Some((_, fixed)) => *fixed |= e.is_fixed(),
            None => names.push((e.event.clone(), e.is_fixed())),
        }
    }
    if names.is_empty() {
        return "no events".into();
    }
    let order = relevance(inc);
    names.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(order.len()));
    let fixed: Vec<&str> = names.iter().take(2).filter(|n| n.1).map(|n| n.0.as_str()).collect();
    let shown: Vec<&str> = names.iter().take(2).map(|n| n.0.as_str()).collect();
    let more = names.len().saturating_sub(2);
    let list = if more > 0 { format!("{} +{more}", shown.join(", ")) } else { shown.join(", ") };
    if fixed.is_empty() {
        format!("! {list}")
    } else {
        format!("fixed: {list}")
    }
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

fn print_table(rows: &[(&str, Vec<Cell>)], dir: &Path, missing: Option<&String>) {
    let mut o = anstream::stdout();
    let w0 = 32;
    let w = rows.iter().flat_map(|(_, c)| c.iter()).map(|c| c.outcome.chars().count().max(c.events.chars().count())).max().unwrap_or(20).max(20)
        + 2;
    let _ = writeln!(o, "{}", style::paint(style::BOLD, "execguard demo: four real incidents in miniature, each run three ways"));
    let _ = writeln!(o);
    let head = format!("{}{}{}{}", pad("incident", w0), pad("without execguard", w), pad("log mode", w), "fix mode");
    let _ = writeln!(o, "{}", style::paint(style::BOLD, &head));
    let _ = writeln!(o, "{}", "─".repeat(w0 + 3 * w - 2));
    for (inc, cells) in rows {
        let (t1, t2) = title(inc);
        let mut l1 = pad(t1, w0);
        let mut l2 = pad(&format!("  {t2}"), w0);
        for (i, c) in cells.iter().enumerate() {
            let colour = if c.good { style::GOOD } else { style::BAD };
            // The last column is not padded: no trailing blanks in plain output.
            let cw = if i + 1 == cells.len() { 0 } else { w };
            l1.push_str(&style::paint(colour, &pad(&c.outcome, cw)));
            l2.push_str(&style::paint(style::DIM, &pad(&c.events, cw)));
        }
        let _ = writeln!(o, "{}", l1.trim_end());
        let _ = writeln!(o, "{}", l2.trim_end());
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "without = the program as it is; log = EXECGUARD_MODE=log (reports, changes nothing);");
    let _ = writeln!(o, "fix = EXECGUARD_MODE=fix (repairs at exec and at child start). Second line: events logged.");
    match missing {
        Some(e) => {
            let _ = writeln!(o, "{}", style::paint(style::WARN, &format!("log and fix columns need the shim: {e}")));
        }
        None => {
            let _ = writeln!(o, "logs: {}  (details: execguard report {}/*.jsonl)", dir.display(), dir.display());
        }
    }
}
