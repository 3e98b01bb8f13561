//! Building one event into a stack line (JSON or the human form) and writing it with
//! one write(2). Small room: no allocation, no lock; the log file is opened, written
//! and closed per event, so the shim never holds an fd in its host.

use super::classify::{FdInfo, Kind, KINDS};
use super::line::{Line, LINE_MAX};
use super::repeat::{self, Verdict};
use super::{names, sys};
use crate::config;
use core::sync::atomic::{AtomicI32, Ordering};

/// Room kept free at the end of a line for closing a list and the tail fields.
const RESERVE: usize = 600;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warn,
    Info,
}

pub struct Event {
    /// An info event in the human form without EXECGUARD_INFO: built, not written.
    muted: bool,
    line: Line,
    json: bool,
    fixed: bool,
    list_first: bool,
    /// List items stop once the line is this long (leaves room for later lists).
    soft_limit: usize,
    /// The finding's identity so far (see `ident`), and the program's part of it.
    id: u64,
    exe: u64,
    /// Where the event's own fields begin (after the header).
    body_at: usize,
    /// Decided before the event was built (the audit's cheap repeat check).
    preset: Option<(u64, Verdict)>,
    /// `ident` was called: with a preset verdict, the marked words name the finding
    /// in the log (stable across runs), while the preset key folds its repeats.
    marked: bool,
    name: &'static str,
    sev: Severity,
}

impl Event {
    /// Async-signal-safe: header of event `name`.
    pub fn start(name: &'static str, sev: Severity, fixed: bool) -> Event {
        let mut ev = Event::begin(name, sev, fixed);
        ev.name = name;
        ev
    }

    /// Async-signal-safe: header of an event whose name is not static (a replayed
    /// finding, which comes with its verdict preset).
    pub fn begin(name: &str, sev: Severity, fixed: bool) -> Event {
        let cfg = config::get();
        let json = cfg.map(|c| c.log_path.len() > 0).unwrap_or(false);
        let muted = !json && sev == Severity::Info && !cfg.map(|c| c.info).unwrap_or(false);
        let id = repeat::seed(name, sev, fixed);
        let mut ev = Event {
            muted,
            line: Line::new(),
            json,
            fixed,
            list_first: true,
            soft_limit: LINE_MAX,
            id,
            exe: 0,
            body_at: 0,
            preset: None,
            marked: false,
            name: "",
            sev,
        };
        let l = &mut ev.line;
        let pid = sys::getpid();
        if json {
            let (s, us) = sys::now();
            l.s("{\"v\":1,\"ts\":");
            l.int(s);
            l.byte(b'.');
            l.uint_pad(us as u64, 6);
            l.s(",\"event\":\"");
            l.s(name);
            l.s("\",\"severity\":\"");
            l.s(if sev == Severity::Warn { "warn" } else { "info" });
            l.s("\",\"action\":\"");
            l.s(if fixed { "fixed" } else { "logged" });
            l.s("\",\"pid\":");
            l.int(pid as i64);
            l.s(",\"ppid\":");
            l.int(sys::getppid() as i64);
            l.s(",\"tid\":");
            l.int(sys::gettid() as i64);
            l.s(",\"exe\":");
            // Read per event, not at load: most processes never log anything.
            let mut exe = [0u8; 512];
            let n = sys::readlink(b"/proc/self/exe\0", &mut exe).unwrap_or(0);
            l.json_str(exe.get(..n).unwrap_or(&[]));
            ev.exe = repeat::hash_exe(exe.get(..n).unwrap_or(&[]));
            l.s(",\"mode\":\"");
            l.s(config::mode().name());
            l.byte(b'"');
        } else {
            l.s("execguard[");
            l.int(pid as i64);
            l.s("]: ");
            l.s(if sev == Severity::Warn { "warning: " } else { "info: " });
            l.s(name);
            l.s(":");
        }
        ev.body_at = ev.line.len();
        ev
    }

    /// Async-signal-safe: mix `part` into this finding's identity. The event name and
    /// the program are always part of it; mark what makes two occurrences the same
    /// finding (target, fds, signals, …), never times, pids, argv or counts.
    pub fn ident(&mut self, part: &[u8]) {
        self.marked = true;
        self.id = repeat::mix(self.id, part);
    }

    /// Async-signal-safe: an fd item's identity: number, kind and detail.
    pub fn ident_fd(&mut self, info: &FdInfo) {
        self.ident(&(info.fd as i64).to_le_bytes());
        self.ident(info.kind.name().as_bytes());
        self.ident(info.detail.as_bytes());
    }

    /// Async-signal-safe: the identity (from `repeat::finish`) and verdict were
    /// decided before the event was built; `emit` only writes. The line's `finding`
    /// is `id`, or, when the event marked its words with `ident`, the hash of those
    /// (an exec_fd_leak's key has inodes in it, which change from run to run; its
    /// words — fd numbers, kinds, addresses, paths — mostly do not).
    pub fn preset(&mut self, id: u64, verdict: Verdict) {
        self.preset = Some((id, verdict));
    }

    /// Async-signal-safe: a kept body (repeat::replay), appended as it was written.
    pub fn raw_body(&mut self, bytes: &[u8]) {
        self.line.raw(bytes);
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Human form only: free text at this point of the sentence.
    pub fn say(&mut self, text: &[u8]) {
        if !self.json {
            self.line.text(text);
        }
    }

    pub fn str(&mut self, key: &str, v: &[u8]) {
        self.key(key);
        if self.json {
            self.line.json_str(v);
        } else {
            self.line.text(v);
        }
    }

    pub fn int(&mut self, key: &str, v: i64) {
        self.key(key);
        self.line.int(v);
    }

    /// Milliseconds shown as seconds with three decimals.
    pub fn secs(&mut self, key: &str, ms: i64) {
        self.key(key);
        self.line.int(ms / 1000);
        self.line.byte(b'.');
        self.line.uint_pad((ms % 1000).unsigned_abs(), 3);
    }

    /// `,"key":` in JSON, ` key=` in the human form.
    fn key(&mut self, key: &str) {
        if self.json {
            self.line.s(",\"");
            self.line.s(key);
            self.line.s("\":");
        } else {
            self.line.byte(b' ');
            self.line.s(key);
            self.line.byte(b'=');
        }
    }

    /// Open a list field.
    pub fn list(&mut self, key: &str) {
        self.list_first = true;
        self.key(key);
        self.line.byte(b'[');
    }

    /// Close a list field; `omitted` items did not fit.
    pub fn end_list(&mut self, omitted: Option<(&str, u64)>) {
        self.line.byte(b']');
        if let Some((key, n)) = omitted {
            if self.json {
                self.int(key, n as i64);
            } else if n > 0 {
                self.line.s(" (+");
                self.line.uint(n);
                self.line.s(" more)");
            }
        }
    }

    fn sep(&mut self) {
        if !self.list_first {
            self.line.s(if self.json { "," } else { ", " });
        }
        self.list_first = false;
    }

    /// Try to add one list item; false (and nothing written) when the line is full.
    /// Cap the line length that list items may reach (None: the whole line).
    pub fn soft_limit(&mut self, len: Option<usize>) {
        self.soft_limit = len.unwrap_or(LINE_MAX);
    }

    fn item(&mut self, f: impl FnOnce(&mut Line, bool)) -> bool {
        if self.line.room() < RESERVE || self.line.len() >= self.soft_limit {
            return false;
        }
        let mark = self.line.len();
        let first = self.list_first;
        self.sep();
        f(&mut self.line, self.json);
        if self.line.room() < RESERVE || self.line.overflowed() || self.line.len() > self.soft_limit {
            self.line.truncate(mark);
            self.list_first = first;
            return false;
        }
        true
    }

    pub fn fd_item(&mut self, info: &FdInfo) -> bool {
        self.item(|l, json| {
            if json {
                l.s("{\"fd\":");
                l.int(info.fd as i64);
                l.s(",\"kind\":\"");
                l.s(info.kind.name());
                l.s("\",\"detail\":");
                l.json_str(info.detail.as_bytes());
                if info.origin != 0 {
                    let mark = l.len();
                    l.s(",\"origin\":\"");
                    let mut site = super::line::Buf::<400>::new();
                    if super::maps::module_offset(info.origin, &mut site) {
                        l.json_inner(site.as_bytes());
                        l.byte(b'"');
                    } else {
                        l.truncate(mark);
                    }
                }
                l.byte(b'}');
            } else {
                l.s("fd ");
                l.int(info.fd as i64);
                l.s(" (");
                l.s(info.kind.name());
                if info.detail.len() > 0 {
                    l.byte(b' ');
                    l.text(info.detail.as_bytes());
                }
                l.byte(b')');
            }
        })
    }

    pub fn str_item(&mut self, s: &[u8]) -> bool {
        self.item(|l, json| if json { l.json_str(s) } else { l.text(s) })
    }

    pub fn int_item(&mut self, v: i64) -> bool {
        self.item(|l, _| l.int(v))
    }

    /// A list of signal names from a kernel sigset word.
    pub fn signals(&mut self, key: &str, set: u64) {
        self.list(key);
        for sig in 1..=64 {
            if set & crate::policy::bit(sig) != 0 {
                self.item(|l, json| {
                    if json {
                        l.byte(b'"');
                    }
                    names::signal(sig, l);
                    if json {
                        l.byte(b'"');
                    }
                });
            }
        }
        self.end_list(None);
    }

    /// `kinds`: count of fds per schema kind name.
    pub fn kinds(&mut self, counts: &[u32; KINDS.len()]) {
        let mut merged = [0u32; KINDS.len()];
        for (k, n) in KINDS.iter().zip(counts.iter()) {
            let into = match k.name() {
                "other" => Kind::Other.index(),
                _ => k.index(),
            };
            if let Some(m) = merged.get_mut(into) {
                *m += n;
            }
        }
        self.key("kinds");
        if self.json {
            self.line.byte(b'{');
        }
        let mut first = true;
        for (k, n) in KINDS.iter().zip(merged.iter()) {
            if *n == 0 {
                continue;
            }
            if !first {
                self.line.byte(b',');
            }
            first = false;
            if self.json {
                self.line.byte(b'"');
                self.line.s(k.name());
                self.line.s("\":");
            } else {
                self.line.s(k.name());
                self.line.byte(b'=');
            }
            self.line.uint(*n as u64);
        }
        if self.json {
            self.line.byte(b'}');
        }
    }

    /// Async-signal-safe: close the line and write it — unless it repeats a finding
    /// already written (repeat.rs: counted, and written later as `repeats`).
    pub fn emit(mut self) {
        if self.muted || self.line.overflowed() {
            // Never write a torn line.
            return;
        }
        let (id, verdict) = match self.preset {
            Some(p) => p,
            None => {
                let id = repeat::finish(self.id, self.exe);
                (id, repeat::occur(id, self.name, self.sev, self.fixed))
            }
        };
        if self.exe != 0 {
            repeat::learn_exe(self.exe);
        }
        let id = if self.preset.is_some() && self.marked { repeat::finish(self.id, self.exe) } else { id };
        if verdict == Verdict::Repeat {
            return;
        }
        let body_end = self.line.len();
        let repeats = match verdict {
            Verdict::Line(n) => Some(n),
            _ => None,
        };
        if self.json {
            self.line.s(",\"finding\":\"");
            for shift in (0..16).rev() {
                let d = ((id >> (shift * 4)) & 0xf) as u8;
                self.line.byte(if d < 10 { b'0' + d } else { b'a' + d - 10 });
            }
            self.line.byte(b'"');
            if let Some(n) = repeats {
                self.int("repeats", n as i64);
            }
            self.line.s("}\n");
        } else {
            if let Some(n) = repeats.filter(|&n| n > 0) {
                self.line.s(" (repeated ");
                self.line.uint(n);
                self.line.s("\u{d7})");
            }
            if self.fixed {
                self.line.s(" [fixed]");
            }
            self.line.byte(b'\n');
        }
        if self.line.overflowed() {
            return;
        }
        write_line(self.line.as_bytes());
        if let Verdict::First(slot) = verdict {
            repeat::keep_body(slot, self.line.as_bytes().get(self.body_at..body_end).unwrap_or(&[]), id);
        }
    }
}

/// The pid that already warned about an unusable log (pid-tagged, so a vfork child's
/// write is never mistaken by the parent for its own).
#[link_section = ".data.execguard_hot"]
static WARNED: AtomicI32 = AtomicI32::new(0);

/// Async-signal-safe: append one line to the log (or stderr).
pub fn write_line(bytes: &[u8]) {
    let _e = sys::ErrnoGuard::new();
    let Some(cfg) = config::get() else { return };
    if bytes.len() > LINE_MAX {
        return;
    }
    if cfg.log_path.len() == 0 {
        let _ = sys::write(2, bytes);
        return;
    }
    match open_log(cfg.log_path.as_bytes()) {
        Ok(fd) => {
            let r = if room_for(fd, bytes.len()) { sys::write(fd, bytes) } else { Err(libc::ENOSPC) };
            sys::close(fd);
            match r {
                Ok(n) if n == bytes.len() => {}
                Ok(_) => warn_once(b"short write to the log", libc::ENOSPC),
                Err(e) => warn_once(b"cannot write the log", e),
            }
        }
        Err(e) => warn_once(b"cannot open the log", e),
    }
}

/// Async-signal-safe: a line is written only if the file system has room for all of
/// it (a short write on a full disk would leave a torn line for the next writer).
fn room_for(fd: i32, len: usize) -> bool {
    // SAFETY: an all-zero statfs is valid; the kernel fills it.
    let mut fs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: fs is a valid out-pointer.
    if unsafe { crate::postfork::sys::syscall!(libc::SYS_fstatfs, fd, &mut fs as *mut libc::statfs) } != 0 {
        return true;
    }
    if fs.f_blocks == 0 {
        // pipes, /dev/null, pseudo file systems: no notion of free space.
        return true;
    }
    // One spare block: the line may straddle a block boundary.
    (fs.f_bavail as u64).saturating_mul(fs.f_bsize as u64) >= len as u64 + fs.f_bsize as u64
}

/// The log is appended to, never truncated; created 0600; a symlink as its last
/// component is refused (O_NOFOLLOW), and so is anything but a regular file, a FIFO
/// or a character device (/dev/null, /dev/stderr's target).
fn open_log(path: &[u8]) -> sys::R<i32> {
    let fd = sys::open(
        path,
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK,
        0o600,
    )?;
    match sys::fstat(fd) {
        Ok(st) if matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFIFO | libc::S_IFCHR) => Ok(fd),
        Ok(_) => {
            sys::close(fd);
            Err(libc::EINVAL)
        }
        Err(e) => {
            sys::close(fd);
            Err(e)
        }
    }
}

fn warn_once(what: &[u8], err: i32) {
    let pid = sys::getpid();
    if WARNED.swap(pid, Ordering::Relaxed) == pid {
        return;
    }
    let mut l = Line::new();
    l.s("execguard[");
    l.int(pid as i64);
    l.s("]: warning: ");
    l.raw(what);
    if let Some(cfg) = config::get() {
        l.byte(b' ');
        let p = cfg.log_path.as_bytes();
        l.text(p.strip_suffix(&[0]).unwrap_or(p));
    }
    l.s(" (");
    names::errno(err, &mut l);
    l.s("); events of this process are lost\n");
    let _ = sys::write(2, l.as_bytes());
}
