//! Building one event into a stack line (JSON or the human form) and writing it with
//! one write(2). Small room: no allocation, no lock; the log file is opened, written
//! and closed per event, so the shim never holds an fd in its host. The journal sink
//! needs both forms: the human one then goes into a second, smaller buffer (sink.rs).

use super::classify::{FdInfo, Kind, KINDS};
use super::line::{Buf, Line, LINE_MAX};
use super::repeat::{self, Verdict};
use super::{names, sink, sys};
use crate::config::{self, Sink};
use core::sync::atomic::{AtomicI32, Ordering};

/// Room kept free at the end of a line for closing a list and the tail fields.
const RESERVE: usize = 600;

/// What `emit` may still append after a kept body (`test` included): `finding` (30),
/// `repeats` (31), `dropped` (21), `}` and the newline — or the human " (repeated
/// N×)", " [fixed]" and newline (43) — plus a replay's header, whose pid, ppid and
/// tid may have more digits than the first line's. A field added after the body
/// without this room lets the line overflow: the event, and its replays, are lost.
pub const TAIL_ROOM: usize = 128;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warn,
    Info,
}

/// The human copy for the journal's MESSAGE: cut (marked) rather than dropped when
/// long; the whole event is in EXECGUARD_JSON.
const HUMAN_MAX: usize = 1024;

/// Which renderings the next writes go to (see `each!`).
const MAIN: u8 = 1;
const HUMAN: u8 = 2;

/// Runs `$body` with `$l` bound to each rendering that is on: the main line (JSON or
/// human, as `$json` says) and, for the journal, the human copy. The copy stops
/// before its first write that does not fit, so it is always a clean prefix.
macro_rules! each {
    ($ev:expr, |$l:ident, $json:ident| $body:block) => {{
        if $ev.on & MAIN != 0 {
            let $json = $ev.json;
            let $l = &mut $ev.line;
            $body
        }
        if $ev.on & HUMAN != 0 && !$ev.human.overflowed() {
            let $json = false;
            let mark = $ev.human.len();
            {
                let $l = &mut $ev.human;
                $body
            }
            if $ev.human.overflowed() {
                // Whole writes only: smaller pieces after the one that did not fit
                // would still land.
                $ev.human.truncate(mark);
            }
        }
    }};
}

pub struct Event {
    /// An info event in the human form without EXECGUARD_INFO: built, not written.
    muted: bool,
    line: Line,
    json: bool,
    sink: Sink,
    warn: bool,
    /// MAIN, and HUMAN when `human` is kept too (the journal).
    on: u8,
    human: Buf<HUMAN_MAX>,
    fixed: bool,
    list_first: bool,
    /// List items stop once the line is this long (leaves room for later lists).
    soft_limit: usize,
    /// The environment an exec hands over (NULL: not an exec), for `test`.
    exec_env: super::envp::Argv,
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
    /// The body came from `raw_body` (a replayed finding): it has its `test` already.
    replayed: bool,
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
        let mut slot = core::mem::MaybeUninit::<Event>::uninit();
        Event::begin_in(&mut slot, name, sev, fixed);
        // SAFETY: begin_in initialised every field.
        unsafe { slot.assume_init() }
    }

    /// Async-signal-safe: `start`, built in the caller's `slot`: an event is 5 KiB,
    /// and returning one is a call to libc's memcpy (in a fork child, a page of
    /// libc's text) and a second 5 KiB of stack. A first report's line uses it.
    #[link_section = ".text.report.execguard"]
    pub fn start_in<'e>(slot: &'e mut core::mem::MaybeUninit<Event>, name: &'static str, sev: Severity, fixed: bool) -> &'e mut Event {
        let ev = Event::begin_in(slot, name, sev, fixed);
        ev.name = name;
        ev
    }

    /// Names every field of `Event`, without `..`: a field added to the struct
    /// stops the build here until `begin_in` writes it too (an unwritten field would
    /// be read uninitialised).
    #[allow(dead_code)]
    fn every_field_is_written_by_begin_in(ev: Event) {
        let Event {
            muted: _,
            line: _,
            json: _,
            sink: _,
            warn: _,
            on: _,
            human: _,
            fixed: _,
            list_first: _,
            soft_limit: _,
            exec_env: _,
            id: _,
            exe: _,
            body_at: _,
            preset: _,
            marked: _,
            name: _,
            sev: _,
            replayed: _,
        } = ev;
    }

    /// Async-signal-safe: `begin` in place (see `start_in`).
    #[link_section = ".text.report.execguard"]
    pub fn begin_in<'e>(slot: &'e mut core::mem::MaybeUninit<Event>, name: &str, sev: Severity, fixed: bool) -> &'e mut Event {
        let cfg = config::get();
        let sink = cfg.map(|c| c.sink).unwrap_or(Sink::Lines);
        let json = is_json(cfg);
        let muted = !json && sev == Severity::Info && !cfg.map(|c| c.info).unwrap_or(false);
        let on = if sink == Sink::Journal { MAIN | HUMAN } else { MAIN };
        let id = repeat::seed(name, sev, fixed);
        let p = slot.as_mut_ptr();
        // SAFETY: every field is written once through raw pointers into the slot;
        // the two buffers' bytes stay uninitialised (`Buf::init_at`: only bytes below
        // their lengths are ever read).
        let ev = unsafe {
            core::ptr::addr_of_mut!((*p).muted).write(muted);
            Buf::init_at(core::ptr::addr_of_mut!((*p).line));
            core::ptr::addr_of_mut!((*p).json).write(json);
            core::ptr::addr_of_mut!((*p).sink).write(sink);
            core::ptr::addr_of_mut!((*p).warn).write(sev == Severity::Warn);
            core::ptr::addr_of_mut!((*p).on).write(on);
            Buf::init_at(core::ptr::addr_of_mut!((*p).human));
            core::ptr::addr_of_mut!((*p).fixed).write(fixed);
            core::ptr::addr_of_mut!((*p).list_first).write(true);
            core::ptr::addr_of_mut!((*p).soft_limit).write(LINE_MAX);
            core::ptr::addr_of_mut!((*p).exec_env).write(core::ptr::null());
            core::ptr::addr_of_mut!((*p).id).write(id);
            core::ptr::addr_of_mut!((*p).exe).write(0);
            core::ptr::addr_of_mut!((*p).body_at).write(0);
            core::ptr::addr_of_mut!((*p).preset).write(None);
            core::ptr::addr_of_mut!((*p).marked).write(false);
            core::ptr::addr_of_mut!((*p).name).write("");
            core::ptr::addr_of_mut!((*p).sev).write(sev);
            core::ptr::addr_of_mut!((*p).replayed).write(false);
            slot.assume_init_mut()
        };
        if on & HUMAN != 0 {
            // journald shows the identifier and pid itself: no `execguard[pid]: `.
            human_head(&mut ev.human, name, sev);
        }
        let l = &mut ev.line;
        let pid = sys::getpid();
        if json {
            let (s, us) = sys::now();
            l.s("{\"v\":1,\"host\":");
            host(l);
            l.s(",\"ts\":");
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
            let mut exe = [core::mem::MaybeUninit::<u8>::uninit(); super::tls::EXE_MAX];
            let n = super::tls::exe(&mut exe);
            // SAFETY: the first n bytes were written; MaybeUninit<u8> has u8's layout.
            let path = unsafe { core::slice::from_raw_parts(exe.as_ptr().cast::<u8>(), n) };
            l.json_str(path);
            ev.exe = repeat::hash_exe(path);
            l.s(",\"mode\":\"");
            l.s(config::mode().name());
            l.byte(b'"');
        } else {
            l.s("execguard[");
            l.int(pid as i64);
            l.s("]: ");
            human_head(l, name, sev);
        }
        ev.body_at = ev.line.len();
        ev
    }

    /// The environment this exec hands to the new program: its test marker names
    /// the test (see testname).
    #[link_section = ".text.report.execguard"]
    pub fn exec_env(&mut self, envp: super::envp::Argv) {
        self.exec_env = envp;
    }

    /// Async-signal-safe: mix `part` into this finding's identity. The event name and
    /// the program are always part of it; mark what makes two occurrences the same
    /// finding (target, fds, signals, …), never times, pids, argv or counts.
    #[link_section = ".text.report.execguard"]
    pub fn ident(&mut self, part: &[u8]) {
        self.marked = true;
        self.id = repeat::mix(self.id, part);
    }

    /// Async-signal-safe: an fd item's identity: number, kind and detail.
    #[link_section = ".text.report.execguard"]
    pub fn ident_fd(&mut self, info: &FdInfo) {
        self.marked = true;
        // As `ident` of the number's 8 bytes (little-endian): their length, one word.
        let h = repeat::mix_int(repeat::mix_int(self.id, 8), info.fd as i64 as u64);
        self.id = repeat::mix(repeat::mix(h, info.kind.name().as_bytes()), info.detail.as_bytes());
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
        self.replayed = true;
        self.line.raw(bytes);
    }

    #[allow(dead_code)] // callers that branch on the form (json_only/human_only cover the journal)
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Fields that only the JSON form carries (the human line says them in words).
    pub fn json_only(&mut self, f: impl FnOnce(&mut Event)) {
        if self.json {
            let on = self.on;
            self.on = MAIN;
            f(self);
            self.on = on;
        }
    }

    /// Fields that only the human forms carry (the stderr line, the journal's MESSAGE).
    pub fn human_only(&mut self, f: impl FnOnce(&mut Event)) {
        let on = self.on;
        self.on = if self.json { on & HUMAN } else { MAIN };
        f(self);
        self.on = on;
    }

    /// Human form only: free text at this point of the sentence.
    #[link_section = ".text.report.execguard"]
    pub fn say(&mut self, text: &[u8]) {
        each!(self, |l, json| {
            if !json {
                l.text(text);
            }
        });
    }

    #[link_section = ".text.report.execguard"]
    pub fn str(&mut self, key: &str, v: &[u8]) {
        each!(self, |l, json| {
            put_key(l, json, key);
            if json {
                l.json_str(v);
            } else {
                l.text(v);
            }
        });
    }

    #[link_section = ".text.report.execguard"]
    pub fn int(&mut self, key: &str, v: i64) {
        each!(self, |l, json| {
            put_key(l, json, key);
            l.int(v);
        });
    }

    /// Milliseconds shown as seconds with three decimals.
    pub fn secs(&mut self, key: &str, ms: i64) {
        each!(self, |l, json| {
            put_key(l, json, key);
            l.int(ms / 1000);
            l.byte(b'.');
            l.uint_pad((ms % 1000).unsigned_abs(), 3);
        });
    }

    /// Open a list field.
    #[link_section = ".text.report.execguard"]
    pub fn list(&mut self, key: &str) {
        self.list_first = true;
        each!(self, |l, json| {
            put_key(l, json, key);
            l.byte(b'[');
        });
    }

    /// Close a list field; `omitted` items did not fit.
    #[link_section = ".text.report.execguard"]
    pub fn end_list(&mut self, omitted: Option<(&str, u64)>) {
        each!(self, |l, json| {
            l.byte(b']');
            match omitted {
                Some((key, n)) if json => {
                    put_key(l, json, key);
                    l.uint(n);
                }
                Some((_, n)) if n > 0 => {
                    l.s(" (+");
                    l.uint(n);
                    l.s(" more)");
                }
                _ => {}
            }
        });
    }

    /// Cap the line length that list items may reach (None: the whole line).
    pub fn soft_limit(&mut self, len: Option<usize>) {
        self.soft_limit = len.unwrap_or(LINE_MAX);
    }

    /// One list item into each rendering; the main line decides whether it fits
    /// (false, and nothing written, when it does not).
    #[link_section = ".text.report.execguard"]
    fn item(&mut self, it: Item) -> bool {
        if self.on & MAIN != 0 && (self.line.room() < RESERVE || self.line.len() >= self.soft_limit) {
            return false;
        }
        let (mark, hmark) = (self.line.len(), self.human.len());
        let first = self.list_first;
        each!(self, |l, json| {
            if !first {
                l.s(if json { "," } else { ", " });
            }
            render(l, json, &it);
        });
        self.list_first = false;
        if self.on & MAIN != 0
            && (self.line.room() < RESERVE || self.line.overflowed() || self.line.len() > self.soft_limit)
        {
            self.line.truncate(mark);
            self.human.truncate(hmark);
            self.list_first = first;
            return false;
        }
        true
    }

    /// Async-signal-safe: one fd as a list item; false when it did not fit (the
    /// line is as it was).
    #[link_section = ".text.report.execguard"]
    pub fn fd_item(&mut self, info: &FdInfo) -> bool {
        // The common case of a first report's many items in one go: the JSON line
        // only (no journal copy), no origin, a detail that needs no escape. The same
        // checks as `item`, before and after.
        if self.on == MAIN && self.json && info.origin == 0 && info.fd >= 0 {
            if self.line.room() < RESERVE || self.line.len() >= self.soft_limit {
                return false;
            }
            let mark = self.line.len();
            if !self.list_first {
                self.line.byte(b',');
            }
            if self.line.fd_json_plain(info.fd as u32, info.kind.json_between(), info.detail.as_bytes()) {
                self.line.byte(b'}');
                if self.line.room() < RESERVE || self.line.overflowed() || self.line.len() > self.soft_limit {
                    self.line.truncate(mark);
                    return false;
                }
                self.list_first = false;
                return true;
            }
            self.line.truncate(mark);
        }
        self.item(Item::Fd(info))
    }

    pub fn str_item(&mut self, s: &[u8]) -> bool {
        self.item(Item::Str(s))
    }

    pub fn int_item(&mut self, v: i64) -> bool {
        self.item(Item::Int(v))
    }

    /// A list of signal names from a kernel sigset word.
    pub fn signals(&mut self, key: &str, set: u64) {
        self.list(key);
        for sig in 1..=64 {
            if set & crate::policy::bit(sig) != 0 {
                self.item(Item::Signal(sig));
            }
        }
        self.end_list(None);
    }

    /// An object of counts keyed by errno name (`{"ECONNRESET":3,"EOF":50}`); errno 0
    /// is named `EOF`. Zero counts are left out.
    pub fn errno_counts(&mut self, key: &str, counts: &[(i32, u64)]) {
        each!(self, |l, json| {
            put_key(l, json, key);
            if json {
                l.byte(b'{');
            }
            let mut first = true;
            for &(e, n) in counts.iter().filter(|c| c.1 > 0) {
                if !first {
                    l.byte(b',');
                }
                first = false;
                if json {
                    l.byte(b'"');
                }
                if e == 0 {
                    l.s("EOF");
                } else {
                    names::errno(e, l);
                }
                l.s(if json { "\":" } else { ":" });
                l.uint(n);
            }
            if json {
                l.byte(b'}');
            }
        });
    }

    /// `kinds`: count of fds per schema kind name.
    #[link_section = ".text.report.execguard"]
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
        each!(self, |l, json| {
            put_key(l, json, "kinds");
            if json {
                l.byte(b'{');
            }
            let mut first = true;
            for (k, n) in KINDS.iter().zip(merged.iter()) {
                if *n == 0 {
                    continue;
                }
                if !first {
                    l.byte(b',');
                }
                first = false;
                if json {
                    l.byte(b'"');
                    l.s(k.name());
                    l.s("\":");
                } else {
                    l.s(k.name());
                    l.byte(b'=');
                }
                l.uint(*n as u64);
            }
            if json {
                l.byte(b'}');
            }
        });
    }

    /// Async-signal-safe: close the line and write it (or send it to the sink) —
    /// unless it repeats a finding already written (repeat.rs: counted, and written
    /// later as `repeats`).
    #[link_section = ".text.report.execguard"]
    pub fn emit(&mut self) {
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
        if !self.replayed {
            // Part of the kept body: a finding's later lines name the test of its first.
            super::testname::add(&mut self.line, self.json, self.exec_env);
        }
        let body_end = self.line.len();
        let repeats = match verdict {
            Verdict::Line(n) => Some(n),
            _ => None,
        };
        let dropped = if self.sink == Sink::Lines { 0 } else { sink::pending_drops() };
        if self.json {
            self.line.s(",\"finding\":\"");
            for shift in (0..16).rev() {
                let d = ((id >> (shift * 4)) & 0xf) as u8;
                self.line.byte(if d < 10 { b'0' + d } else { b'a' + d - 10 });
            }
            self.line.byte(b'"');
            if let Some(n) = repeats {
                self.json_only(|ev| ev.int("repeats", n as i64));
            }
            if dropped > 0 {
                self.json_only(|ev| ev.int("dropped", dropped as i64));
            }
        }
        if self.replayed && self.on & HUMAN != 0 {
            human_target(self);
        }
        if let Some(n) = repeats.filter(|&n| n > 0) {
            let mut words = super::line::Buf::<40>::new();
            words.s(" (repeated ");
            words.uint(n);
            words.s("\u{d7})");
            self.human_only(|ev| ev.say(words.as_bytes()));
        }
        let fixed = self.fixed;
        each!(self, |l, json| {
            if json {
                l.byte(b'}');
            } else if fixed {
                l.s(" [fixed]");
            }
        });
        if self.sink == Sink::Lines {
            self.line.byte(b'\n');
        }
        if self.line.overflowed() {
            return;
        }
        let entry = sink::Entry {
            warn: self.warn,
            json: self.line.as_bytes(),
            human: self.human.as_bytes(),
            human_cut: self.human.overflowed(),
            dropped,
        };
        match self.sink {
            Sink::Lines => write_line(entry.json),
            Sink::Journal => sink::journal(&entry),
            Sink::Syslog => sink::syslog(&entry, config::get().map(|c| c.syslog_facility).unwrap_or(8)),
        }
        if let Verdict::First(slot) = verdict {
            repeat::keep_body(slot, self.line.as_bytes().get(self.body_at..body_end).unwrap_or(&[]), id);
        }
    }
}

/// Async-signal-safe: a replayed line's journal MESSAGE names its target (the kept
/// body is the JSON form; without this the message said only "(repeated N×)").
/// Out of line: its buffer stays out of `emit`'s frame.
#[inline(never)]
fn human_target(ev: &mut Event) {
    let body = ev.line.as_bytes().get(ev.body_at..).unwrap_or(&[]);
    let Some(target) = sink::json_field(body, "target") else { return };
    let mut t = Buf::<1100>::new();
    t.raw(target);
    ev.human_only(|ev| {
        ev.say(b" ");
        ev.say(t.as_bytes());
    });
}

/// The list items an event holds.
enum Item<'a> {
    Fd(&'a FdInfo),
    Str(&'a [u8]),
    Int(i64),
    Signal(i32),
}

/// Async-signal-safe: events are written as JSON (a log file, the journal, syslog).
fn is_json(cfg: Option<&config::Config>) -> bool {
    cfg.map(|c| c.sink != Sink::Lines || c.log_path.len() > 0).unwrap_or(false)
}

/// Async-signal-safe: an info event would be written nowhere (the human form
/// without EXECGUARD_INFO; the JSON log, the journal and syslog take every one), so
/// a caller may skip the work of making it.
pub fn info_nowhere() -> bool {
    let cfg = config::get();
    !is_json(cfg) && !cfg.map(|c| c.info).unwrap_or(false)
}

/// Async-signal-safe: one item in one rendering.
#[link_section = ".text.report.execguard"]
fn render<const N: usize>(l: &mut Buf<N>, json: bool, it: &Item) {
    match *it {
        Item::Fd(info) if json => {
            l.s("{\"fd\":");
            l.int(info.fd as i64);
            l.s(info.kind.json_between());
            l.json_str(info.detail.as_bytes());
            if info.origin != 0 {
                let mark = l.len();
                l.s(",\"origin\":\"");
                let mut site = Buf::<400>::new();
                if super::maps::module_offset(info.origin, &mut site) {
                    l.json_inner(site.as_bytes());
                    l.byte(b'"');
                } else {
                    l.truncate(mark);
                }
            }
            l.byte(b'}');
        }
        Item::Fd(info) => {
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
        Item::Str(s) if json => l.json_str(s),
        Item::Str(s) => l.text(s),
        Item::Int(v) => l.int(v),
        Item::Signal(sig) => {
            if json {
                l.byte(b'"');
            }
            names::signal(sig, crate::libc_kind::rtmin(), l);
            if json {
                l.byte(b'"');
            }
        }
    }
}

/// `,"key":` in JSON, ` key=` in the human form.
#[link_section = ".text.report.execguard"]
fn put_key<const N: usize>(l: &mut Buf<N>, json: bool, key: &str) {
    if json {
        l.s(",\"");
        l.s(key);
        l.s("\":");
    } else {
        l.byte(b' ');
        l.s(key);
        l.byte(b'=');
    }
}

/// `warning: NAME:` / `info: NAME:`, the start of the human form after its prefix.
fn human_head<const N: usize>(l: &mut Buf<N>, name: &str, sev: Severity) {
    l.s(if sev == Severity::Warn { "warning: " } else { "info: " });
    l.s(name);
    l.s(":");
}

/// Async-signal-safe: the node name as a JSON string (uname(2) per event: events are
/// rare, and a cached name would go stale after a rename or in a new UTS namespace).
#[link_section = ".text.report.execguard"]
fn host<const N: usize>(l: &mut Buf<N>) {
    // Not zeroed (390 bytes: a call to libc's memset, in a fork child a page of
    // libc's text): read only after the kernel filled it.
    let mut u = core::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: u is a valid out-pointer.
    let ok = unsafe { sys::syscall!(libc::SYS_uname, u.as_mut_ptr()) } == 0;
    let name = if ok {
        // SAFETY: the kernel filled it on success.
        let u = unsafe { u.assume_init_ref() };
        // SAFETY: the kernel NUL-terminates nodename within its array.
        unsafe { super::line::cstr(u.nodename.as_ptr(), u.nodename.len()) }
    } else {
        &[]
    };
    l.json_str(name);
}

/// The pid that already warned about an unusable log (pid-tagged, so a vfork child's
/// write is never mistaken by the parent for its own).
#[link_section = ".data.execguard_hot"]
static WARNED: AtomicI32 = AtomicI32::new(0);

/// Async-signal-safe: append one line to the log (or stderr). Raw system calls only,
/// which leave errno alone: no `ErrnoGuard` here (its `__errno_location` was one more
/// page of libc's text to fault in, in every first report's fork child).
#[link_section = ".text.report.execguard"]
pub fn write_line(bytes: &[u8]) {
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
#[link_section = ".text.report.execguard"]
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn json_event() -> Event {
        let mut ev = Event::start("exec_fd_leak", Severity::Warn, false);
        ev.json = true;
        ev.line.clear();
        ev
    }

    fn info(fd: i32, kind: Kind, detail: &[u8]) -> FdInfo {
        let mut i = FdInfo::new();
        i.fd = fd;
        i.kind = kind;
        i.detail.raw(detail);
        i
    }

    /// `fd_item`'s one-piece path writes what `item` writes, and leaves to it the
    /// details that need escapes.
    #[test]
    fn fd_items_in_one_piece_match_the_general_path() {
        let items = [
            info(3, Kind::File, b"/dev/null"),
            info(12, Kind::File, b""),
            info(251, Kind::Pipe, b"pipe:[87772548]"),
            info(1023, Kind::TcpListen, b"127.0.0.1:8080"),
            info(7, Kind::File, b"/tmp/a \"quoted\" \\ name\n"),
            info(65535, Kind::Inotify, b"anon_inode:inotify"),
        ];
        // Each width of the one-piece path's numbers, at its edges.
        let edges = [0, 9, 10, 99, 100, 999, 1000];
        let items: Vec<FdInfo> = items.into_iter().chain(edges.iter().map(|&n| info(n, Kind::File, b""))).collect();
        let (mut fast, mut slow) = (json_event(), json_event());
        fast.list("fds");
        slow.list("fds");
        for i in &items {
            assert!(fast.fd_item(i));
            assert!(slow.item(Item::Fd(i)));
        }
        fast.end_list(None);
        slow.end_list(None);
        let f = core::str::from_utf8(fast.line.as_bytes()).unwrap().to_string();
        assert_eq!(f, core::str::from_utf8(slow.line.as_bytes()).unwrap());
        assert!(f.starts_with(",\"fds\":[{\"fd\":3,\"kind\":\"file\",\"detail\":\"/dev/null\"},{\"fd\":12,"), "{f}");
        assert!(f.contains("{\"fd\":7,\"kind\":\"file\",\"detail\":\"/tmp/a \\\"quoted\\\" \\\\ name\\n\"}"), "{f}");
        assert!(f.contains("{\"fd\":65535,\"kind\":\"other\",\"detail\":\"anon_inode:inotify\"}"), "{f}");
        for n in edges {
            assert!(f.contains(&format!("{{\"fd\":{n},\"kind\":\"file\",\"detail\":\"\"}}")), "{n}: {f}");
        }
    }

    /// Past the soft limit, both paths refuse the item and leave the line as it was.
    #[test]
    fn fd_items_stop_at_the_soft_limit_on_both_paths() {
        let (mut fast, mut slow) = (json_event(), json_event());
        for ev in [&mut fast, &mut slow] {
            ev.list("fds");
            ev.soft_limit(Some(100));
        }
        let (mut nf, mut ns) = (0, 0);
        for fd in 3..40 {
            let i = info(fd, Kind::File, b"/dev/null");
            nf += fast.fd_item(&i) as u32;
            ns += slow.item(Item::Fd(&i)) as u32;
        }
        assert_eq!(nf, ns);
        assert!(nf > 0 && nf < 37);
        assert_eq!(fast.line.as_bytes(), slow.line.as_bytes());
        assert!(!fast.line.overflowed());
    }
}
