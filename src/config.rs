//! The configuration, parsed once in the constructor from the environment into a
//! fixed struct (nginx rewrites and strips its environment later, so nothing keeps
//! a pointer into `environ`). Read-only after that; hooks read it freely.

use crate::policy::{self, FdRanges};
use crate::postfork::line::Buf;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Mode {
    Off = 0,
    Log = 1,
    Fix = 2,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Log => "log",
            Mode::Fix => "fix",
        }
    }
}

/// One knob: name, default, help. The table is the reference for docs and `--help`.
pub struct Knob {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

pub const KNOBS: &[Knob] = &[
    Knob { name: "EXECGUARD_MODE", default: "log", help: "log: report only; fix: repair what is reported; off: pass through" },
    Knob { name: "EXECGUARD_LOG", default: "(stderr)", help: "path: append JSON Lines there; unset: human lines on stderr" },
    Knob { name: "EXECGUARD_KEEP_FDS", default: "", help: "comma list of fds or ranges (3,7,10-20) never touched in fix mode" },
    Knob { name: "EXECGUARD_FOLLOW", default: "0", help: "1: re-inject the shim into children whose environment drops it" },
    Knob { name: "EXECGUARD_BLOCK_INTERVAL", default: "2", help: "seconds between system_blocking events while system()/pclose() waits" },
    Knob { name: "EXECGUARD_POOL_MIN", default: "64", help: "inherited sockets of one kind that count as a pool (start side, fix mode)" },
    Knob { name: "EXECGUARD_STARTUP", default: "auto", help: "always: start-side audit reports even what the parent's shim already reported" },
    Knob { name: "EXECGUARD_SHELLS", default: "", help: "colon list of extra program names treated as shells" },
    Knob { name: "EXECGUARD_ORIGINS", default: "0", help: "1: record where each non-CLOEXEC fd and each mask was made (module+offset)" },
    Knob { name: "EXECGUARD_KEEP_IGNORED", default: "SIGHUP", help: "comma list of signals left ignored in fix mode (SIGHUP for nohup; add SIGPIPE,SIGXFSZ for subprocess restore_signals=False)" },
    Knob { name: "EXECGUARD_STORM", default: "50/1", help: "N/S: connect_storm after N fruitless connections to one peer within S seconds" },
    Knob { name: "EXECGUARD_INFO", default: "0", help: "1: also print info events (sigmask_block, fork_threads) on stderr; the JSON log always has them" },
    Knob { name: "EXECGUARD_SYSLOG_FACILITY", default: "user", help: "facility of EXECGUARD_LOG=syslog: user, daemon, local0..local7, ..." },
    Knob { name: "EXECGUARD_TEST_ENV", default: "", help: "colon list of variables naming the running test, besides PYTEST_CURRENT_TEST (events carry it as `test`)" },
    Knob { name: "EXECGUARD_REPEAT_INTERVAL", default: "60", help: "seconds between lines of a finding that keeps repeating (its `repeats` count); 0: every occurrence in full" },
];

/// Where events go: `Lines` is the JSON Lines file of `log_path`, or human lines on
/// stderr when it is empty; the others are the fixed system sockets (sink.rs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Sink {
    Lines = 0,
    Journal = 1,
    Syslog = 2,
}

/// Field order is layout: `repr(C)` keeps what every process start writes (the
/// scalars, the fd lists, the log path) at the front, inside the first page of the
/// library's data, which the loader has already touched; the big buffers that only
/// some configurations fill come last (see docs/performance.md, "page faults").
#[repr(C)]
pub struct Config {
    pub mode: Mode,
    pub secure: bool,
    pub follow: bool,
    pub startup_always: bool,
    pub origins: bool,
    /// Print info events in the human (stderr) form.
    pub info: bool,
    /// `EXECGUARD_AUDITED` named this pid: the exec that started us was audited.
    pub audited: bool,
    /// This process started with `EXECGUARD_HELD` in its environment (read by the
    /// start side from the environment itself, when `audited`).
    pub held_env: bool,
    /// ... and handed us these (ignored, blocked) signal sets (policy::parse_audited).
    pub audited_sigs: (u64, u64),
    /// ... and the exec was this program's reload of itself: the fds it started with
    /// are its own, but those from outside, and so are its signals, but those
    /// `audited_sigs` names (policy::Audited::own).
    pub own_start: bool,
    pub is_shell: bool,
    /// This process started with a starter's variable naming fds
    /// (policy::starter_fds): the programs it runs are told they are not theirs
    /// (policy::STARTER_TAKEN).
    pub starter: bool,
    /// ... and was told they were not its own (`EXECGUARD_TAKEN`): it says so to
    /// every program it runs, in place too.
    pub starter_taken: bool,
    /// `EXECGUARD_SHELLS` was given (its names are in `Cold`).
    pub shells_extra: bool,
    /// `EXECGUARD_TEST_ENV` was given (its names are in `Cold`): without it, a line
    /// reads no page of `Cold` (in a fork child whose parent never touched it, a
    /// page fault per first report).
    pub test_env: bool,
    /// `EXECGUARD_LOG=journal|syslog`; `log_path` is then empty.
    pub sink: Sink,
    /// syslog facility code (already shifted: LOG_USER = 8).
    pub syslog_facility: u8,
    pub pool_min: u32,
    pub block_interval_ms: i64,
    /// Ignored signals that stay ignored in fix mode (kernel sigset word).
    pub keep_ignored: u64,
    /// connect_storm: this many fruitless connections to one peer within `storm_ms`.
    pub storm_n: u32,
    pub storm_ms: i64,
    /// EXECGUARD_REPEAT_INTERVAL: the longest a repeating finding goes unwritten.
    pub repeat_interval_ms: i64,
    pub keep: FdRanges,
    /// fds this process itself was handed on purpose (LISTEN_FDS for us, NGINX,
    /// GUNICORN_FD, jobserver).
    pub inherited_keep: FdRanges,
    /// Of those, the ones handed to this program for its own use (LISTEN_FDS for
    /// this pid, NGINX, GUNICORN_FD): passing them on is this program's act, not a
    /// pass-through.
    pub handed: FdRanges,
    /// `EXECGUARD_OUTSIDE`: fds that entered the audited tree higher up (already
    /// reported there, or the caller's of `execguard run`).
    pub outside: FdRanges,
    /// NUL-terminated log path; empty = stderr.
    pub log_path: Buf<512>,
}

/// What only some configurations fill (following children, test names, extra shell
/// names), kept apart from `Config` in zero-initialised memory: a process start that
/// does not use them never touches their pages. Same discipline as `Config`: written
/// by the constructor before publication, read-only after.
///
/// `follow` holds the follow copy only when it does not fit the hot page
/// (FOLLOW_HOT: long paths, many settings); the constructor then writes that page
/// before anything reads it: a zero page read first would cost a second fault, the
/// copy-on-write of the write that follows.
#[repr(C, align(4096))]
pub struct Cold {
    pub follow: Buf<FOLLOW_COLD_BYTES>,
    /// `EXECGUARD_TEST_ENV`: colon list of variable names (their values are read per event).
    pub test_env: Buf<256>,
    /// Second page: rarely set.
    pub shells_extra: Buf<256>,
}

/// The follow copy when it does not fit FOLLOW_HOT: this library's path
/// (NUL-terminated, at most LIB_MAX bytes) then the `NAME=value` entries, each with
/// its NUL; an entry that does not fit whole is left out.
pub const FOLLOW_COLD_BYTES: usize = 3712;

/// The longest library path followed, its NUL included.
const LIB_MAX: usize = 512;

const _: () = assert!(core::mem::offset_of!(Cold, shells_extra) <= 4096);

impl Cold {
    pub const fn new() -> Self {
        Cold {
            follow: Buf::new(),
            test_env: Buf::new(),
            shells_extra: Buf::new(),
        }
    }
}

impl Default for Cold {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// Async-signal-safe: `fd` was handed to this program (`handed`), and did not come
    /// from the caller of `execguard run` (`outside`): a variable in the caller's own
    /// environment (`LISTEN_FDS`, a starter's, a reloader's) that names one of the
    /// caller's fds names nothing handed to the command.
    #[inline]
    pub fn handed_here(&self, fd: i32) -> bool {
        self.handed.contains(fd) && !self.outside.contains(fd)
    }

    const fn new() -> Self {
        Config {
            mode: Mode::Off,
            log_path: Buf::new(),
            secure: false,
            keep: FdRanges::new(),
            inherited_keep: FdRanges::new(),
            handed: FdRanges::new(),
            outside: FdRanges::new(),
            follow: false,
            block_interval_ms: 2000,
            repeat_interval_ms: 60_000,
            pool_min: policy::POOL_MIN_DEFAULT,
            startup_always: false,
            origins: false,
            keep_ignored: policy::KEEP_IGNORED,
            storm_n: 50,
            storm_ms: 1000,
            info: false,
            audited: false,
            held_env: false,
            audited_sigs: (0, 0),
            own_start: false,
            is_shell: false,
            starter: false,
            starter_taken: false,
            shells_extra: false,
            test_env: false,
            sink: Sink::Lines,
            syslog_facility: 8,
        }
    }
}

struct Cell(UnsafeCell<Config>);
// SAFETY: written only by the constructor before READY is published (Release);
// every reader checks READY (Acquire) first, or runs in the constructor itself.
unsafe impl Sync for Cell {}

#[link_section = ".data.execguard_hot"]
static CONFIG: Cell = Cell(UnsafeCell::new(Config::new()));

struct ColdCell(UnsafeCell<Cold>);
// SAFETY: as Cell.
unsafe impl Sync for ColdCell {}

static COLD: ColdCell = ColdCell(UnsafeCell::new(Cold::new()));
#[link_section = ".data.execguard_hot"]
static READY: AtomicBool = AtomicBool::new(false);
/// The mode as one relaxed load on hot paths: Off until the constructor finishes.
#[link_section = ".data.execguard_hot"]
static MODE: AtomicU8 = AtomicU8::new(Mode::Off as u8);

/// Async-signal-safe: the active mode (Off before the constructor ran).
#[inline]
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Log,
        2 => Mode::Fix,
        _ => Mode::Off,
    }
}

/// Async-signal-safe: the configuration, once the constructor published it.
#[inline]
pub fn get() -> Option<&'static Config> {
    if READY.load(Ordering::Acquire) {
        // SAFETY: no writer after READY (see Cell).
        Some(unsafe { &*CONFIG.0.get() })
    } else {
        None
    }
}

/// Async-signal-safe: the rarely used part, once the constructor published it.
#[inline]
pub fn cold() -> Option<&'static Cold> {
    // SAFETY: published together with CONFIG (see `get`); no writer after READY.
    get().map(|_| unsafe { &*COLD.0.get() })
}

/// Constructor only: mutable access before publication.
///
/// # Safety
/// Only the library constructor may call this, once, before `publish`.
pub unsafe fn init_mut() -> (&'static mut Config, &'static mut Cold) {
    // SAFETY: single caller before any reader (see Cell).
    unsafe { (&mut *CONFIG.0.get(), &mut *COLD.0.get()) }
}

/// Constructor only: make the configuration visible to hooks. The mode first: a
/// reader that finds the configuration published (`get`, an Acquire load) then
/// reads the mode it was published with, never the Off it held before (arena.rs
/// leaves the per-fd tables unmade only in a process published as `off`). A reader
/// that sees the mode first and no configuration yet passes through, as before the
/// constructor.
pub fn publish(mode: Mode) {
    MODE.store(mode as u8, Ordering::Relaxed);
    READY.store(true, Ordering::Release);
}

/// Problems found while parsing, reported once by the constructor.
#[derive(Default)]
pub struct Warnings {
    /// Room for every knob that can warn (a full array drops the rest silently).
    pub bad: [Option<&'static str>; 16],
    pub n: usize,
}

impl Warnings {
    fn push(&mut self, name: &'static str) {
        if let Some(slot) = self.bad.get_mut(self.n) {
            *slot = Some(name);
            self.n += 1;
        }
    }
}

/// First bytes of every name `parse_env` reads.
pub const ENV_FIRSTS: &[u8] = b"EGLMNPSU";

/// Fill `cfg` from `NAME=value` environment entries. Pure over its inputs, so the
/// fuzz/property tests can feed it any bytes.
#[link_section = ".text.startup.execguard"]
pub fn parse_env<'a>(entries: impl Iterator<Item = &'a [u8]>, my_pid: i32, secure: bool, cfg: &mut Config, cold: &mut Cold) -> Warnings {
    let mut w = Warnings::default();
    cfg.mode = Mode::Log;
    cfg.secure = secure;
    let (mut listen_fds, mut listen_pid): (&[u8], &[u8]) = (&[], &[]);
    for e in entries {
        // Read again, out of the start blocks, by `handovers` (it settles `starter`);
        // its first eight bytes are the name's. Only those names start with `P`, `S`
        // or `U`: other such entries (`PATH`, `PWD`, `SHELL`, `USER`) go no further.
        if policy::may_name_handover(e) {
            cfg.starter = true;
            continue;
        }
        if matches!(e.first(), Some(b'P' | b'S' | b'U')) {
            continue;
        }
        let Some(eq) = e.iter().position(|&b| b == b'=') else { continue };
        let (name, value) = (e.get(..eq).unwrap_or(&[]), e.get(eq + 1..).unwrap_or(&[]));
        // One arm per variable: a parse with its warning is not a pattern's test.
        #[allow(clippy::collapsible_match)]
        match name {
            b"EXECGUARD_MODE" => {
                cfg.mode = match value {
                    b"log" | b"" => Mode::Log,
                    b"fix" => Mode::Fix,
                    b"off" => Mode::Off,
                    _ => {
                        w.push("EXECGUARD_MODE");
                        Mode::Log
                    }
                }
            }
            b"EXECGUARD_LOG" => {
                cfg.log_path.clear();
                cfg.sink = match value {
                    b"journal" => Sink::Journal,
                    b"syslog" => Sink::Syslog,
                    _ => Sink::Lines,
                };
                if cfg.sink != Sink::Lines {
                    // a fixed system socket, not a path: kept under AT_SECURE too
                } else if !value.is_empty() && value.len() < 511 && !crate::postfork::line::has_byte(value, 0) {
                    cfg.log_path.raw_at_start(value);
                    cfg.log_path.byte(0);
                } else if !value.is_empty() {
                    w.push("EXECGUARD_LOG");
                }
            }
            b"EXECGUARD_KEEP_FDS" => {
                if !policy::parse_fd_list(value, &mut cfg.keep) {
                    w.push("EXECGUARD_KEEP_FDS");
                }
            }
            b"EXECGUARD_FOLLOW" => cfg.follow = matches!(value, b"1" | b"yes" | b"true" | b"on"),
            b"EXECGUARD_ORIGINS" => cfg.origins = matches!(value, b"1" | b"yes" | b"true" | b"on"),
            b"EXECGUARD_STARTUP" => cfg.startup_always = value == b"always",
            b"EXECGUARD_INFO" => cfg.info = matches!(value, b"1" | b"yes" | b"true" | b"on"),
            b"EXECGUARD_KEEP_IGNORED" => {
                let mut set = 0u64;
                let mut ok = true;
                for item in value.split(|&b| b == b',').filter(|i| !i.is_empty()) {
                    match crate::postfork::names::parse_signal(item, crate::libc_kind::rtmin()) {
                        Some(sig) => set |= policy::bit(sig),
                        None => ok = false,
                    }
                }
                if ok {
                    cfg.keep_ignored = set;
                } else {
                    w.push("EXECGUARD_KEEP_IGNORED");
                }
            }
            b"EXECGUARD_BLOCK_INTERVAL" => match policy::parse_pid(value) {
                Some(s) if (1..=3600).contains(&s) => cfg.block_interval_ms = s as i64 * 1000,
                _ => w.push("EXECGUARD_BLOCK_INTERVAL"),
            },
            b"EXECGUARD_STORM" => match parse_storm(value) {
                Some((n, ms)) => (cfg.storm_n, cfg.storm_ms) = (n, ms),
                None => w.push("EXECGUARD_STORM"),
            },
            b"EXECGUARD_REPEAT_INTERVAL" => match policy::parse_pid(value) {
                Some(s) if (0..=86_400).contains(&s) => cfg.repeat_interval_ms = s as i64 * 1000,
                _ => w.push("EXECGUARD_REPEAT_INTERVAL"),
            },
            b"EXECGUARD_POOL_MIN" => match policy::parse_pid(value) {
                Some(n) if n >= 2 => cfg.pool_min = n as u32,
                _ => w.push("EXECGUARD_POOL_MIN"),
            },
            b"EXECGUARD_SHELLS" => {
                cold.shells_extra.clear();
                cold.shells_extra.raw_at_start(value);
                cfg.shells_extra = true;
            }
            b"EXECGUARD_TEST_ENV" => {
                // The names are copied now (nginx rewrites its environment later);
                // the values are read only when an event is written.
                cold.test_env.clear();
                cold.test_env.raw_at_start(value);
                if cold.test_env.overflowed() || crate::postfork::line::has_byte(value, b'=') {
                    cold.test_env.clear();
                    w.push("EXECGUARD_TEST_ENV");
                }
                cfg.test_env = cold.test_env.len() > 0;
            }
            b"EXECGUARD_AUDITED" => {
                if let Some(a) = policy::parse_audited(value) {
                    cfg.audited = a.pid == if a.parent { crate::postfork::sys::getppid() } else { my_pid };
                    if cfg.audited {
                        cfg.audited_sigs = (a.ign, a.blocked);
                        cfg.own_start = a.own;
                    }
                }
            }
            b"EXECGUARD_OUTSIDE" => {
                policy::parse_fd_list(value, &mut cfg.outside);
            }
            b"EXECGUARD_HELD" => cfg.held_env = true,
            b"EXECGUARD_SYSLOG_FACILITY" => match crate::postfork::sink::facility(value) {
                Some(f) => cfg.syslog_facility = f,
                None => w.push("EXECGUARD_SYSLOG_FACILITY"),
            },
            b"LISTEN_FDS" => listen_fds = value,
            b"LISTEN_PID" => listen_pid = value,
            b"MAKEFLAGS" => {
                policy::parse_makeflags(value, &mut cfg.inherited_keep);
            }
            b"NGINX" | b"GUNICORN_FD" => {
                policy::parse_nginx(value, &mut cfg.handed);
            }
            _ => {}
        }
    }
    policy::parse_listen(listen_fds, listen_pid, my_pid, &mut cfg.handed);
    // What was handed to this program is kept at its start too.
    cfg.inherited_keep.extend(&cfg.handed);
    if secure {
        // A privileged process never opens a path taken from the environment.
        cfg.log_path.clear();
    }
    w
}

/// After `parse_env` when it saw a name a starter's variable, Unicorn's `UNICORN_FD`,
/// Puma's `PUMA_INHERIT_n` or Mojolicious's `MOJO_REUSE` may have
/// (`policy::may_name_handover`; `Config::starter`, settled here): the fds those
/// reloaders' name (policy::reload_fds) are this program's own at a start no audited
/// parent marked, and so are those a starter's
/// variables name (policy::starter_fds), unless a program above it that had them
/// passed them on (`EXECGUARD_TAKEN`, policy::STARTER_TAKEN). Out of the start
/// blocks: the environment is read again only when such a variable is in it.
#[cold]
#[inline(never)]
pub fn handovers<'a>(entries: impl Iterator<Item = &'a [u8]>, cfg: &mut Config) {
    let (mut fds, mut taken) = (FdRanges::new(), false);
    for e in entries {
        let Some(eq) = e.iter().position(|&b| b == b'=') else { continue };
        let (name, value) = (e.get(..eq).unwrap_or(&[]), e.get(eq + 1..).unwrap_or(&[]));
        if name == b"EXECGUARD_TAKEN" {
            taken = true;
        } else if name == b"UNICORN_FD" || name == b"MOJO_REUSE" || policy::may_be_puma_inherit(name) {
            // A reload that an audited parent marked is its own already (`+`), and
            // Unicorn and Hypnotoad leave their variables to their workers and all
            // they run: only a start no audited parent marked takes them.
            if !cfg.audited {
                policy::reload_fds(name, value, &mut cfg.inherited_keep);
                policy::reload_fds(name, value, &mut cfg.handed);
            }
        } else {
            policy::starter_fds(name, value, &mut fds);
        }
    }
    cfg.starter = !fds.is_empty();
    cfg.starter_taken = cfg.starter && taken;
    if cfg.starter && !taken {
        cfg.inherited_keep.extend(&fds);
        cfg.handed.extend(&fds);
    }
}

/// `N/S`: N ≥ 2 connections within S seconds (S may have a fraction: `20/0.5`).
#[link_section = ".text.startup.execguard"]
fn parse_storm(v: &[u8]) -> Option<(u32, i64)> {
    let slash = v.iter().position(|&b| b == b'/')?;
    let n = policy::parse_pid(v.get(..slash)?)?;
    let s = v.get(slash + 1..)?;
    let (whole, frac) = match s.iter().position(|&b| b == b'.') {
        Some(d) => (s.get(..d)?, s.get(d + 1..)?),
        None => (s, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = if whole.is_empty() { 0 } else { policy::parse_pid(whole)? as i64 };
    let mut ms = frac.iter().fold(0i64, |v, &b| v * 10 + (b - b'0') as i64);
    for _ in frac.len()..3 {
        ms *= 10;
    }
    let ms = secs.checked_mul(1000)? + ms;
    (n >= 2 && (1..=3_600_000).contains(&ms)).then_some((n as u32, ms))
}

/// An entry the follow copy keeps: the `EXECGUARD_*` settings, not the per-hop marks
/// (envp::is_hop_mark: rewritten at every exec by envp::rebuilt, a copy put back would
/// stand before the new one, and getenv finds the first).
#[link_section = ".text.startup.execguard"]
fn followed(e: &[u8]) -> bool {
    e.starts_with(b"EXECGUARD_") && !crate::postfork::envp::is_hop_mark(e)
}

/// Room for the follow copy in the page every start writes anyway: the library's
/// path and the remembered entries, each NUL-terminated, one after the other. Under
/// `execguard run` they come to a few hundred bytes (the path, `EXECGUARD_LOG`,
/// `EXECGUARD_FOLLOW`, the mode); in `Cold` they cost every such start a page
/// fault (4 µs, docs/performance.md). A copy that does not fit goes to `Cold`.
const FOLLOW_HOT_BYTES: usize = 400;

struct FollowCell(UnsafeCell<Buf<FOLLOW_HOT_BYTES>>);
// SAFETY: as Cell.
unsafe impl Sync for FollowCell {}

#[link_section = ".data.execguard_hot"]
static FOLLOW_HOT: FollowCell = FollowCell(UnsafeCell::new(Buf::new()));

/// Where the follow copy is: 0 nowhere (not following), 1 FOLLOW_HOT, 2 `Cold`.
#[link_section = ".data.execguard_hot"]
static FOLLOW_AT: AtomicU8 = AtomicU8::new(0);

/// The follow copy: this library's path (NUL-terminated; a lone NUL when unknown)
/// and the `NAME=value` entries to put back into an environment that lost them.
#[derive(Clone, Copy)]
pub struct FollowRef<'a> {
    pub lib: &'a [u8],
    env: &'a [u8],
}

impl<'a> FollowRef<'a> {
    /// Async-signal-safe: the remembered entries, each a C string (NUL included).
    pub fn entries(&self) -> impl Iterator<Item = &'a [u8]> {
        self.env.split_inclusive(|&b| b == 0)
    }
}

/// Async-signal-safe: the follow copy, once the constructor published it in follow
/// mode; the `Cold` page is read only when the copy is there. Out of line: every
/// exec path asks.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
pub fn follow() -> Option<FollowRef<'static>> {
    get()?;
    // SAFETY: written by the constructor before READY; never again.
    let hot = unsafe { &*FOLLOW_HOT.0.get() };
    view(FOLLOW_AT.load(Ordering::Relaxed), hot, cold)
}

/// Async-signal-safe: the copy where `at` says it is; `cold` is asked only then.
#[inline]
fn view<'a>(at: u8, hot: &'a Buf<FOLLOW_HOT_BYTES>, cold: impl FnOnce() -> Option<&'a Cold>) -> Option<FollowRef<'a>> {
    let all = match at {
        1 => hot.as_bytes(),
        2 => cold()?.follow.as_bytes(),
        _ => return None,
    };
    let lib_end = all.iter().position(|&b| b == 0).map_or(0, |i| i + 1);
    Some(FollowRef { lib: all.get(..lib_end).unwrap_or(&[]), env: all.get(lib_end..).unwrap_or(&[]) })
}

/// Constructor only (before `publish`): remember `lib` (this library's path,
/// NUL-terminated, or empty) and the followed entries of `entries` for
/// re-injection, in FOLLOW_HOT when all of it fits, else in `cold`. Both copies
/// are made by the same code in the constructor's block: a start with many or long
/// settings maps no other text (tests/start_pages.rs).
#[link_section = ".text.startup.execguard"]
pub fn remember_follow<'a, I: Iterator<Item = &'a [u8]> + Clone>(lib: &[u8], entries: I, cold: &mut Cold) {
    // SAFETY: the constructor is the only writer, before publish().
    let hot = unsafe { &mut *FOLLOW_HOT.0.get() };
    if pack(hot, lib, entries.clone()) {
        FOLLOW_AT.store(1, Ordering::Relaxed);
        return;
    }
    hot.clear();
    pack(&mut cold.follow, lib, entries);
    FOLLOW_AT.store(2, Ordering::Relaxed);
}

/// Constructor only: `lib` (a lone NUL when empty or longer than LIB_MAX), then
/// each followed entry of `entries` that fits whole with its NUL, into `out`.
/// False when something was left out.
#[link_section = ".text.startup.execguard"]
fn pack<'a, const N: usize>(out: &mut Buf<N>, lib: &[u8], entries: impl Iterator<Item = &'a [u8]>) -> bool {
    out.clear();
    let mut whole = lib.len() <= LIB_MAX && lib.len() < out.room();
    if whole && !lib.is_empty() {
        out.raw_at_start(lib);
    } else {
        out.byte(0);
    }
    for e in entries.filter(|e| followed(e)) {
        if e.len() < out.room() {
            out.raw_at_start(e);
            out.byte(0);
        } else {
            whole = false;
        }
    }
    whole && !out.overflowed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn parse(env: &[&[u8]], pid: i32) -> (Box<Config>, Warnings) {
        let mut cfg = Box::new(Config::new());
        let w = parse_env(env.iter().copied(), pid, false, &mut cfg, &mut Cold::new());
        if cfg.starter {
            handovers(env.iter().copied(), &mut cfg);
        }
        (cfg, w)
    }

    #[test]
    fn defaults_and_values() {
        let (c, w) = parse(&[], 1);
        assert_eq!(c.mode, Mode::Log);
        assert_eq!(w.n, 0);
        let (c, w) = parse(&[b"EXECGUARD_MODE=fix", b"EXECGUARD_KEEP_FDS=5,9-10", b"EXECGUARD_LOG=/tmp/x"], 1);
        assert_eq!(c.mode, Mode::Fix);
        assert!(c.keep.contains(10));
        assert_eq!(c.log_path.as_bytes(), b"/tmp/x\0");
        assert_eq!(w.n, 0);
    }

    #[test]
    fn bad_values_warn_and_default() {
        let (c, w) = parse(&[b"EXECGUARD_MODE=loud", b"EXECGUARD_BLOCK_INTERVAL=0", b"EXECGUARD_KEEP_FDS=a"], 1);
        assert_eq!(c.mode, Mode::Log);
        assert_eq!(c.block_interval_ms, 2000);
        assert_eq!(w.n, 3);
    }

    /// Every knob that can be wrong is named, all at once.
    #[test]
    fn every_bad_knob_warns() {
        let long_log = [b"EXECGUARD_LOG=/".as_slice(), &[b'x'; 600]].concat();
        let env: [&[u8]; 10] = [
            b"EXECGUARD_MODE=x",
            &long_log,
            b"EXECGUARD_KEEP_FDS=x",
            b"EXECGUARD_KEEP_IGNORED=x",
            b"EXECGUARD_BLOCK_INTERVAL=x",
            b"EXECGUARD_STORM=x",
            b"EXECGUARD_REPEAT_INTERVAL=x",
            b"EXECGUARD_POOL_MIN=x",
            b"EXECGUARD_TEST_ENV=A=B",
            b"EXECGUARD_SYSLOG_FACILITY=x",
        ];
        let (_, w) = parse(&env, 1);
        let named: Vec<&str> = w.bad.iter().take(w.n).flatten().copied().collect();
        assert_eq!(named.len(), env.len(), "{named:?}");
        assert!(named.contains(&"EXECGUARD_SYSLOG_FACILITY") && named.contains(&"EXECGUARD_TEST_ENV"), "{named:?}");
    }

    #[test]
    fn keep_ignored_and_info() {
        let (c, w) = parse(&[b"EXECGUARD_KEEP_IGNORED=SIGHUP,PIPE,25", b"EXECGUARD_INFO=1"], 1);
        assert_eq!(w.n, 0);
        assert_eq!(c.keep_ignored, policy::bit(1) | policy::bit(13) | policy::bit(25));
        assert!(c.info);
        let (c, w) = parse(&[b"EXECGUARD_REPEAT_INTERVAL=0"], 1);
        assert_eq!((w.n, c.repeat_interval_ms), (0, 0));
        let (c, w) = parse(&[b"EXECGUARD_REPEAT_INTERVAL=soon"], 1);
        assert_eq!((w.n, c.repeat_interval_ms), (1, 60_000));
        let (c, w) = parse(&[b"EXECGUARD_KEEP_IGNORED=SIGNOPE"], 1);
        assert_eq!((w.n, c.keep_ignored), (1, policy::KEEP_IGNORED));
    }

    /// What `follow()` would answer after `remember_follow` (the statics are the
    /// constructor's; this is the only test that writes them).
    fn followed_copy(cold: &Cold) -> (u8, Vec<u8>, Vec<Vec<u8>>) {
        let at = FOLLOW_AT.load(Ordering::Relaxed);
        // SAFETY: no other test touches FOLLOW_HOT.
        let hot = unsafe { &*FOLLOW_HOT.0.get() };
        let v = view(at, hot, || Some(cold)).unwrap();
        (at, v.lib.to_vec(), v.entries().map(|e| e.to_vec()).collect())
    }

    #[test]
    fn follow_copy_in_the_hot_page_or_whole_settings_in_cold() {
        let mut cold = Box::new(Cold::new());
        let lib = b"/usr/lib/libexecguard.so\0";
        // The usual copy (under `execguard run`) fits the hot page: no Cold write.
        let env: [&[u8]; 6] = [
            b"PATH=/bin",
            b"EXECGUARD_MODE=fix",
            b"EXECGUARD_AUDITED=^12",
            b"EXECGUARD_HELD=10,251",
            b"EXECGUARD_LOG=/tmp/events.jsonl",
            b"EXECGUARD_FOLLOW=1",
        ];
        remember_follow(lib, env.iter().copied(), &mut cold);
        let (at, got_lib, got) = followed_copy(&cold);
        assert_eq!((at, got_lib.as_slice()), (1, &lib[..]));
        assert_eq!(got, [&b"EXECGUARD_MODE=fix\0"[..], b"EXECGUARD_LOG=/tmp/events.jsonl\0", b"EXECGUARD_FOLLOW=1\0"]);
        assert!(cold.follow.as_bytes().is_empty(), "the cold copy was written");
        // An unknown path: a lone NUL, which follows nobody.
        remember_follow(b"", [b"EXECGUARD_MODE=log".as_slice()].into_iter(), &mut cold);
        let (at, got_lib, got) = followed_copy(&cold);
        assert_eq!((at, got_lib.as_slice(), got.len()), (1, &b"\0"[..], 1));
        // Too much for the hot page: all of it in Cold, where a setting that does not
        // fit whole is left out.
        let long = [b"EXECGUARD_X=".as_slice(), &[b'a'; FOLLOW_COLD_BYTES - 100]].concat();
        let env: [&[u8]; 8] = [
            b"PATH=/bin",
            b"EXECGUARD_MODE=fix",
            b"EXECGUARD_AUDITED=^12",
            b"EXECGUARD_HELD=10,251",
            b"EXECGUARD_OUTSIDE=10",
            &long,
            b"EXECGUARD_LOG=/tmp/a-path-that-no-longer-fits.jsonl",
            b"EXECGUARD_FOLLOW=1",
        ];
        remember_follow(lib, env.iter().copied(), &mut cold);
        let (at, got_lib, got) = followed_copy(&cold);
        assert_eq!((at, got_lib.as_slice()), (2, &lib[..]));
        assert_eq!(got, [&b"EXECGUARD_MODE=fix\0"[..], &[long.as_slice(), b"\0"].concat()[..], b"EXECGUARD_FOLLOW=1\0"]);
        // A second start's walk replaces the first's, back in the hot page.
        remember_follow(lib, [b"EXECGUARD_LOG=/x".as_slice()].into_iter(), &mut cold);
        let (at, _, got) = followed_copy(&cold);
        assert_eq!((at, got), (1, vec![b"EXECGUARD_LOG=/x\0".to_vec()]));
        // A path too long for the hot page goes to Cold with the settings; one longer
        // than LIB_MAX is not followed (a lone NUL), the settings still copied.
        for (len, at_want, followed_lib) in [(FOLLOW_HOT_BYTES + 20, 2, true), (LIB_MAX + 1, 2, false)] {
            let path = [b"/".as_slice(), &vec![b'l'; len - 2], b"\0"].concat();
            remember_follow(&path, [b"EXECGUARD_MODE=fix".as_slice()].into_iter(), &mut cold);
            let (at, got_lib, got) = followed_copy(&cold);
            let want_lib = if followed_lib { path.clone() } else { b"\0".to_vec() };
            assert_eq!((at, got_lib, got), (at_want, want_lib, vec![b"EXECGUARD_MODE=fix\0".to_vec()]), "path of {len} bytes");
        }
    }

    #[test]
    fn cold_follow_shares_one_page() {
        assert_eq!(core::mem::align_of::<Cold>(), 4096);
        assert!(core::mem::offset_of!(Cold, test_env) + core::mem::size_of::<Buf<256>>() <= 4096);
    }

    #[test]
    fn test_env_names_are_copied() {
        let mut cold = Cold::new();
        let mut cfg = Box::new(Config::new());
        let w = parse_env([b"EXECGUARD_TEST_ENV=CI_JOB:MY_TEST".as_slice()].into_iter(), 1, false, &mut cfg, &mut cold);
        assert_eq!((w.n, cold.test_env.as_bytes()), (0, b"CI_JOB:MY_TEST".as_slice()));
        assert!(cfg.test_env);
        let long = [b"EXECGUARD_TEST_ENV=".as_slice(), &[b'A'; 300]].concat();
        let w = parse_env([long.as_slice()].into_iter(), 1, false, &mut cfg, &mut cold);
        assert_eq!((w.n, cold.test_env.len()), (1, 0));
        assert!(!cfg.test_env);
    }

    #[test]
    fn storm_knob() {
        let (c, w) = parse(&[], 1);
        assert_eq!((c.storm_n, c.storm_ms, w.n), (50, 1000, 0));
        let (c, w) = parse(&[b"EXECGUARD_STORM=20/0.5"], 1);
        assert_eq!((c.storm_n, c.storm_ms, w.n), (20, 500, 0));
        let (c, _) = parse(&[b"EXECGUARD_STORM=100/10"], 1);
        assert_eq!((c.storm_n, c.storm_ms), (100, 10_000));
        for bad in [&b"EXECGUARD_STORM=50"[..], b"EXECGUARD_STORM=1/1", b"EXECGUARD_STORM=5/0", b"EXECGUARD_STORM=5/x", b"EXECGUARD_STORM=5/0.0001"] {
            let (c, w) = parse(&[bad], 1);
            assert_eq!((c.storm_n, c.storm_ms, w.n), (50, 1000, 1), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn secure_drops_log_path() {
        let mut cfg = Box::new(Config::new());
        parse_env([b"EXECGUARD_LOG=/tmp/x".as_slice()].into_iter(), 1, true, &mut cfg, &mut Cold::new());
        assert_eq!(cfg.log_path.len(), 0);
    }

    /// parse_env sees only the entries starting with ENV_FIRSTS.
    #[test]
    fn every_name_read_starts_with_env_firsts() {
        let names = KNOBS.iter().map(|k| k.name).chain(["EXECGUARD_AUDITED", "EXECGUARD_OUTSIDE", "LISTEN_FDS", "LISTEN_PID", "MAKEFLAGS", "NGINX", "GUNICORN_FD", "UNICORN_FD", "PUMA_INHERIT_0", "SERVER_STARTER_PORT", "EINHORN_FD_0", "EINHORN_FDS", "EXECGUARD_TAKEN"]);
        for n in names {
            assert!(ENV_FIRSTS.contains(&n.as_bytes()[0]), "{n}");
        }
    }

    #[test]
    fn fleet_sinks_survive_at_secure() {
        let mut cfg = Box::new(Config::new());
        let env: [&[u8]; 2] = [b"EXECGUARD_LOG=journal", b"EXECGUARD_SYSLOG_FACILITY=local3"];
        let w = parse_env(env.into_iter(), 1, true, &mut cfg, &mut Cold::new());
        assert_eq!((w.n, cfg.sink, cfg.syslog_facility, cfg.log_path.len()), (0, Sink::Journal, 19 << 3, 0));
        let (c, w) = parse(&[b"EXECGUARD_LOG=syslog", b"EXECGUARD_SYSLOG_FACILITY=kern"], 1);
        assert_eq!((w.n, c.sink, c.syslog_facility), (1, Sink::Syslog, 8));
        let (c, _) = parse(&[b"EXECGUARD_LOG=./journal"], 1);
        assert_eq!((c.sink, c.log_path.as_bytes()), (Sink::Lines, &b"./journal\0"[..]));
    }

    #[test]
    fn inherited_keep() {
        let (c, _) = parse(&[b"LISTEN_FDS=2", b"LISTEN_PID=77", b"NGINX=9;", b"MAKEFLAGS=--jobserver-auth=11,12"], 77);
        for fd in [3, 4, 9, 11, 12] {
            assert!(c.inherited_keep.contains(fd), "{fd}");
        }
        assert!(!c.inherited_keep.contains(5));
        // The jobserver is for the whole tree; the others are this program's own.
        assert!(c.handed.contains(3) && c.handed.contains(9) && !c.handed.contains(11));
        // Gunicorn's re-exec names its listeners the same way.
        let (c, _) = parse(&[b"GUNICORN_FD=5,6"], 77);
        assert!(c.handed.contains(5) && c.handed.contains(6) && c.inherited_keep.contains(6) && !c.handed.contains(7));
    }

    /// A starter's variables hand their fds to the first program that gets them from
    /// the starter; below it (`EXECGUARD_TAKEN`) they are passed through.
    #[test]
    fn a_starters_fds_are_the_workers_own_and_not_its_childrens() {
        let (c, _) = parse(&[b"SERVER_STARTER_PORT=127.0.0.1:80=4;/tmp/s.sock=5", b"EINHORN_FD_COUNT=1"], 77);
        assert!(c.starter);
        for fd in [4, 5] {
            assert!(c.handed.contains(fd) && c.inherited_keep.contains(fd), "{fd}");
        }
        assert!(!c.handed.contains(1) && !c.handed.contains(80));
        let (c, _) = parse(&[b"EXECGUARD_TAKEN=1", b"EINHORN_FD_0=6"], 77);
        assert!(c.starter && !c.handed.contains(6) && !c.inherited_keep.contains(6));
        let (c, _) = parse(&[b"EINHORN_FD_0=6", b"EXECGUARD_TAKEN=1"], 77);
        assert!(c.starter && !c.handed.contains(6), "the mark counts wherever it stands");
        // Unicorn's and Puma's reloads: the new image's own, whatever is above it.
        let (c, _) = parse(&[b"EXECGUARD_TAKEN=1", b"UNICORN_FD=8,9", b"PUMA_INHERIT_0=5:tcp://127.0.0.1:9292"], 77);
        assert!(!c.starter, "no starter's variable");
        for fd in [5, 8, 9] {
            assert!(c.handed.contains(fd) && c.inherited_keep.contains(fd), "{fd}");
        }
        assert!(!c.handed.contains(9292));
        // A name that only starts as one, or a value that names no fd: no starter.
        for env in [&[&b"SERVER_STARTED=1"[..]][..], &[b"EINHORN_FD_COUNT=1"], &[b"EINHORN_FD_X=3"], &[b"SERVER_STARTER_PORT=80"]] {
            let (c, _) = parse(env, 77);
            assert!(!c.starter && c.handed.is_empty(), "{:?}", String::from_utf8_lossy(env[0]));
        }
    }

    #[test]
    fn outside_list() {
        let (c, w) = parse(&[b"EXECGUARD_OUTSIDE=10,251-252"], 1);
        assert_eq!(w.n, 0);
        assert!(c.outside.contains(10) && c.outside.contains(252) && !c.outside.contains(11));
    }
}
