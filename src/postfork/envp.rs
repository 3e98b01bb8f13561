//! The environment handed to an exec: read for the keep rules of the new program
//! (LISTEN_FDS, MAKEFLAGS, NGINX, GUNICORN_FD), and rebuilt on the stack when the shim must follow
//! the child (its environment dropped LD_PRELOAD or EXECGUARD_*) or mark the exec as
//! audited. Small room: pointer arrays and strings on the stack, nothing allocated.

use super::audit::Sigs;
use super::line::{cstr, Buf};
use super::sys;
use crate::config;
use crate::policy::{self, FdRanges, Held};
use libc::{c_char, c_int};

pub type Argv = *const *const c_char;

/// Environments larger than this are passed through untouched (less context).
const MAX_ENV: usize = 1024;
const ENTRY_MAX: usize = 1 << 20;

/// Async-signal-safe: iterate `NAME=value` entries of an envp array.
#[derive(Clone)]
pub struct EnvIter<'f> {
    p: Argv,
    left: usize,
    /// When not empty, only entries starting with one of these bytes (the others
    /// are skipped without measuring them: PATH, LS_COLORS… can be long).
    firsts: &'f [u8],
}

impl Iterator for EnvIter<'_> {
    type Item = &'static [u8];
    fn next(&mut self) -> Option<&'static [u8]> {
        loop {
            if self.p.is_null() || self.left == 0 {
                return None;
            }
            // SAFETY: envp is a NULL-terminated array of C strings (exec's contract).
            let e = unsafe { *self.p };
            if e.is_null() {
                return None;
            }
            // SAFETY: as above; advancing within the array.
            self.p = unsafe { self.p.add(1) };
            self.left -= 1;
            // SAFETY: e is a NUL-terminated string, so its first byte is readable.
            if !self.firsts.is_empty() && !self.firsts.contains(&unsafe { *e.cast::<u8>() }) {
                continue;
            }
            // SAFETY: e is a NUL-terminated string.
            return Some(unsafe { cstr(e, ENTRY_MAX) });
        }
    }
}

pub fn iter(envp: Argv) -> EnvIter<'static> {
    EnvIter { p: envp, left: 1 << 16, firsts: &[] }
}

/// Async-signal-safe: the entries whose name starts with one of `firsts`.
pub fn iter_first(envp: Argv, firsts: &[u8]) -> EnvIter<'_> {
    EnvIter { p: envp, left: 1 << 16, firsts }
}

/// Async-signal-safe: the value of `name` in envp.
#[link_section = ".text.hot.execguard"]
/// Each entry is compared with `name=` byte by byte, up to the first difference: a
/// long entry (PATH, LS_COLORS) is not measured unless it is the one asked for.
pub fn get(envp: Argv, name: &[u8]) -> Option<&'static [u8]> {
    if name.is_empty() || super::line::has_byte(name, 0) || name.len() >= ENTRY_MAX {
        return None;
    }
    let mut p = envp;
    let mut left = 1usize << 16;
    while !p.is_null() && left > 0 {
        // SAFETY: envp is a NULL-terminated array of C strings (exec's contract).
        let e = unsafe { *p };
        if e.is_null() {
            return None;
        }
        // SAFETY: advancing within the array.
        p = unsafe { p.add(1) };
        left -= 1;
        let e = e.cast::<u8>();
        let mut i = 0;
        // SAFETY: every byte read is at or before the entry's NUL: the loop stops at
        // the first byte unlike `name`'s, and `name` holds no NUL.
        while i < name.len() && unsafe { *e.add(i) } == name.get(i).copied().unwrap_or(0) {
            i += 1;
        }
        // SAFETY: byte i exists: bytes 0..i matched non-NUL bytes of `name`.
        if i == name.len() && unsafe { *e.add(i) } == b'=' {
            // SAFETY: the value is the NUL-terminated rest of the entry.
            return Some(unsafe { cstr(e.add(i + 1) as *const c_char, ENTRY_MAX - i - 1) });
        }
    }
    None
}

/// Async-signal-safe: the keep-rule facts of an exec (see `policy::exec_keep`).
#[link_section = ".text.hot.execguard"]
pub fn keep_facts<'k>(envp: Argv, keep: &'k FdRanges, new_pid: Option<i32>, exec_fd: i32) -> policy::ExecKeepFacts<'k> {
    let mut f = policy::ExecKeepFacts { keep, makeflags: &[], reload_fds: &[], listen_fds: &[], listen_pid: &[], new_pid, exec_fd, keep_all: false, starter_named: false };
    for e in iter_first(envp, b"MNLGSE") {
        if let Some(v) = e.strip_prefix(b"MAKEFLAGS=") {
            f.makeflags = v;
        } else if let Some(v) = e.strip_prefix(b"NGINX=").or_else(|| e.strip_prefix(b"GUNICORN_FD=")) {
            f.reload_fds = v;
        } else if let Some(v) = e.strip_prefix(b"LISTEN_FDS=") {
            f.listen_fds = v;
        } else if let Some(v) = e.strip_prefix(b"LISTEN_PID=") {
            f.listen_pid = v;
        } else if policy::may_name_starter_fds(e) {
            f.starter_named = true;
        }
    }
    f
}

/// Async-signal-safe: the fds the starters' variables in `envp` name
/// (policy::starter_fds), into `out`. Out of the hot block: asked only by a leak
/// audit, when an fd would be reported, of an exec whose new environment has such a
/// variable (`keep_facts`: `starter_named`) and a process that did not start with one
/// (policy::starter_fds_kept).
#[cold]
#[inline(never)]
pub fn starter_fds(envp: Argv, out: &mut FdRanges) {
    for e in iter_first(envp, b"SE").filter(|e| policy::may_name_starter_fds(e)) {
        let name = name_of(e);
        policy::starter_fds(name, e.get(name.len() + 1..).unwrap_or(&[]), out);
    }
}

/// Async-signal-safe: the environment preloads the shim: by its name, or by `lib`,
/// this library's own path when known (a renamed copy; empty: unknown).
#[link_section = ".text.hot.execguard"]
pub(crate) fn has_shim(envp: Argv, lib: &[u8]) -> bool {
    get(envp, b"LD_PRELOAD").is_some_and(|v| names_shim(v, lib))
}

/// Does an `LD_PRELOAD` value name the shim: an entry with "execguard" in it, or
/// `lib` itself (entries are separated by `:` or spaces, as ld.so reads them)?
#[link_section = ".text.hot.execguard"]
fn names_shim(v: &[u8], lib: &[u8]) -> bool {
    contains(v, b"execguard") || (!lib.is_empty() && v.split(|&b| b == b':' || b == b' ').any(|e| e == lib))
}

/// Async-signal-safe: may the new program load the shim? Any preload may be this
/// library under another name (a copy renamed by a package or a user): the mark
/// that keeps its start side quiet must reach it then too. A program that loads no
/// shim ignores the mark, and so do its children (it names another pid).
#[link_section = ".text.hot.execguard"]
pub(crate) fn may_load_shim(envp: Argv) -> bool {
    get(envp, b"LD_PRELOAD").is_some_and(|v| v.iter().any(|&b| b != b' ' && b != b':'))
}

#[link_section = ".text.hot.execguard"]
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The marks one hop writes for the next (the audited pid and its signals, the fds
/// from outside, the fds vouched for): rewritten at every marked exec, dropped at an
/// unmarked one, and never copied for re-injection (config::remember_follow_env).
/// Each is `EXECGUARD_` and one of `HOP_MARK_TAILS`.
pub(crate) const HOP_MARK_TAILS: [&[u8]; 4] = [b"AUDITED=", b"OUTSIDE=", b"HELD=", b"TAKEN="];

/// Is `e` one of the marks (`EXECGUARD_` and a `HOP_MARK_TAILS`)?
#[inline]
pub(crate) fn is_hop_mark(e: &[u8]) -> bool {
    e.strip_prefix(b"EXECGUARD_").is_some_and(|t| HOP_MARK_TAILS.iter().any(|m| t.starts_with(m)))
}

fn name_of(entry: &[u8]) -> &[u8] {
    let eq = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
    entry.get(..eq).unwrap_or(entry)
}

/// How the new program learns that its exec was audited already, and which
/// ignored and blocked signals it was handed (audit::Sigs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    No,
    /// The exec happens in this process: the new program has our pid.
    SelfPid(Sigs),
    /// The exec happens in a child we spawn (posix_spawn): the new program's parent is us.
    ParentPid(Sigs),
    /// A server's reload of itself in this process (policy::Role::Reload): `Sigs`
    /// names only the signals this process passed through, and the marker's `+`
    /// says that the rest of what the new image holds is its own.
    Reload(Sigs),
}

/// Async-signal-safe: in follow mode, `envp` has dropped the shim or one of its
/// settings, so that an exec with it must rebuild it (`with_env` decides the same).
/// For `system` and `popen`, whose libc execs the shell internally with `environ`:
/// the shim then runs the command itself. The answer without follow mode inline, in
/// the hook: no other page of text for it.
#[inline]
pub fn follow_needed(envp: Argv) -> bool {
    config::get().is_some_and(|c| c.follow) && dropped(envp)
}

/// Async-signal-safe: `follow_needed`'s look at `envp`. Out of the start blocks:
/// `with_env` makes the same two checks in its own text (a follow-mode exec in a
/// fork child would otherwise run this page too).
#[inline(never)]
fn dropped(envp: Argv) -> bool {
    let Some(copy) = config::follow() else { return false };
    let lib = copy.lib.strip_suffix(&[0]).unwrap_or(copy.lib);
    copy.lib.len() > 1 && (!has_shim(envp, lib) || copy.entries().any(|e| get(envp, name_of(e)).is_none()))
}

/// Async-signal-safe: call `f` with the environment the new program should get.
/// `mark` asks for `EXECGUARD_AUDITED=<pid>` (or `^<parent pid>`) when the new
/// program runs the shim; with it goes `EXECGUARD_HELD`, the fds ≥ 3 the new
/// program starts with, when `held` is vouched for (policy::Held). `ids`: this
/// process's pid and parent's, if the audit has them already.
#[link_section = ".text.startup.execguard"]
pub fn with_env(envp: Argv, mark: Mark, (held, ids): (Option<&Held>, Option<sys::Ids>), f: impl FnOnce(Argv) -> c_int) -> c_int {
    // The marker's pid prefix (policy::parse_audited): `^` names the new program's
    // parent, `+` a reload (what the new image holds is its own but the signals named).
    let (mark, prefix, sigs) = match mark {
        Mark::No => (false, 0, Sigs::default()),
        Mark::SelfPid(s) => (true, 0, s),
        Mark::ParentPid(s) => (true, b'^', s),
        Mark::Reload(s) => (true, b'+', s),
    };
    let Some(cfg) = config::get() else { return f(envp) };
    // An unmarked exec hands over no fd ≥ 3 at all: an EXECGUARD_OUTSIDE this process
    // inherited names nothing the child holds, and below a parent the shim is not in
    // it would hide what that parent opens at those numbers. One branch unless this
    // process started with the variable.
    // So does an inherited EXECGUARD_HELD: it describes this process's start, not
    // what the new program will hold.
    let stale = !mark
        && ((!cfg.outside.is_empty() && get(envp, b"EXECGUARD_OUTSIDE").is_some())
            || (cfg.held_env && get(envp, b"EXECGUARD_HELD").is_some()));
    // The common exec (no mark, no follow mode) reads neither the environment nor
    // the cold configuration: in a fork child its page is one its parent may never
    // have touched (a fault), and the scan for LD_PRELOAD costs a pass over every
    // variable.
    if !mark && !cfg.follow && !stale {
        return f(envp);
    }
    // The follow copy only in follow mode: it is made only then (and where it did
    // not fit the hot page, a marked exec's fork or vfork child would fault the cold
    // one in to read an empty one).
    let copy = if cfg.follow { config::follow() } else { None };
    let lib = copy.map_or(&[][..], |c| c.lib);
    let loads = has_shim(envp, lib.strip_suffix(&[0]).unwrap_or(lib));
    let follow = copy.filter(|c| c.lib.len() > 1);
    let need_follow = follow.is_some_and(|copy| !loads || copy.entries().any(|e| get(envp, name_of(e)).is_none()));
    let need_mark = mark && (loads || follow.is_some() || may_load_shim(envp));
    if !need_follow && !need_mark && !stale {
        return f(envp);
    }
    // Most environments are small: their copy takes a 2 KiB frame, where the full
    // one (8 KiB of pointers) would make a fork child fault in two more stack pages
    // (stack probes touch every page of a frame on entry).
    // The exec itself is passed as a `dyn` call: one copy of `rebuilt` per size,
    // not one per exec hook (twelve copies made up most of the hot text, and a fork
    // child faults in each 64 KiB window of text it runs).
    let mut call = Once(Some(f));
    let small = count(envp, SMALL_ENV) < SMALL_ENV;
    // Whether the new program is told a starter's fds are not its own: `Some(true)`
    // always, `Some(false)` only in another process (see `rebuilt`).
    let starter = cfg.starter.then_some(cfg.starter_taken);
    let how = (need_mark, prefix, sigs, held, ids, starter);
    match (small, follow.filter(|_| need_follow)) {
        (true, None) => sized::<{ SMALL_ENV + 10 }>(envp, None, how, &mut call),
        (false, None) => sized::<{ MAX_ENV + 10 }>(envp, None, how, &mut call),
        (true, Some(copy)) => following::<{ SMALL_ENV + 10 }>(envp, how, copy, &mut call),
        (false, Some(copy)) => following::<{ MAX_ENV + 10 }>(envp, how, copy, &mut call),
    }
}

/// What the marker says: (write it, the pid's prefix or 0, the signals, the fds),
/// and this process's ids if known.
/// Last, whether this process started with a starter's variable, and was told it
/// was taken (config::Config::starter, starter_taken).
type How<'h> = (bool, u8, Sigs, Option<&'h Held>, Option<sys::Ids>, Option<bool>);

/// Async-signal-safe: `rebuilt` with room for a new `LD_PRELOAD` (follow mode), in
/// a frame of its own: the 2 KiB are not in the frame of every marked exec, where
/// they took it past a page (stack probes then write a second page, a fault in
/// every fork child that passes a caller's fds on).
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn following<const N: usize>(envp: Argv, how: How, copy: config::FollowRef<'_>, f: &mut dyn ExecWith) -> c_int {
    let mut preload = Buf::<2048>::new();
    sized::<N>(envp, Some((&mut preload, copy)), how, f)
}

/// Async-signal-safe: `rebuilt` into an array of N entries, in a frame of its own.
/// Only the array is per size: one copy of the body (two were 4.6 KiB each of the
/// text every start and fork child runs in, see docs/design.md).
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn sized<const N: usize>(envp: Argv, follow: Option<(&mut Buf<2048>, config::FollowRef<'_>)>, how: How, f: &mut dyn ExecWith) -> c_int {
    // Written below `n` only (zeroing it was a memset of the whole array, up to
    // 8 KiB); the entry after the last is set NULL before use.
    let mut arr: [core::mem::MaybeUninit<*const c_char>; N] = [core::mem::MaybeUninit::uninit(); N];
    rebuilt(&mut arr, envp, follow, how, f)
}

/// Environments up to this many entries are rebuilt in the small frame.
const SMALL_ENV: usize = 200;

/// Async-signal-safe: entries of `envp`, counting up to `max`.
#[link_section = ".text.hot.execguard"]
fn count(envp: Argv, max: usize) -> usize {
    let mut n = 0;
    let mut p = envp;
    while !p.is_null() && n < max {
        // SAFETY: envp is NULL-terminated.
        if unsafe { *p }.is_null() {
            break;
        }
        n += 1;
        // SAFETY: still inside the array.
        p = unsafe { p.add(1) };
    }
    n
}

/// The exec a rebuilt environment is handed to.
trait ExecWith {
    fn exec_with(&mut self, env: Argv) -> c_int;
}

/// An exec hook's call, made at most once.
struct Once<F>(Option<F>);

impl<F: FnOnce(Argv) -> c_int> ExecWith for Once<F> {
    /// Async-signal-safe (the hooks' calls are). With the hot code, unlike a closure.
    #[link_section = ".text.hot.execguard"]
    fn exec_with(&mut self, env: Argv) -> c_int {
        match self.0.take() {
            Some(g) => g(env),
            None => -1,
        }
    }
}

/// Async-signal-safe: the environment rebuilt on the stack in `arr` (room for its
/// length - 10 entries and ours; entered only when something must change).
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn rebuilt(
    arr: &mut [core::mem::MaybeUninit<*const c_char>],
    envp: Argv,
    follow: Option<(&mut Buf<2048>, config::FollowRef<'_>)>,
    (need_mark, prefix, sigs, held, ids, starter): How,
    f: &mut dyn ExecWith,
) -> c_int {
    let need_follow = follow.is_some();
    let mut n = 0usize;
    let mut marker = Buf::<96>::new();
    let mut outside = Buf::<512>::new();
    let mut held_var = Buf::<{ 16 + 24 * crate::policy::HELD_RUNS }>::new();
    let mut push = |arr: &mut [core::mem::MaybeUninit<*const c_char>], p: *const c_char| -> bool {
        let room = arr.len().saturating_sub(1);
        match arr.get_mut(n) {
            Some(slot) if n < room => {
                slot.write(p);
                n += 1;
                true
            }
            _ => false,
        }
    };
    let mut ok = true;
    let mut p = envp;
    while !p.is_null() {
        // SAFETY: envp is NULL-terminated.
        let e = unsafe { *p };
        if e.is_null() {
            break;
        }
        // SAFETY: advancing within the array.
        p = unsafe { p.add(1) };
        // Without a mark the exec passed nothing: an inherited EXECGUARD_OUTSIDE goes too.
        // Compared as prefixes: measuring every entry (PATH, LS_COLORS…) was a pass
        // over the whole environment, about 1 µs of a marked fork+exec. The marks'
        // common prefix first: one compare for most entries.
        // SAFETY: NUL-terminated entry; when its first ten bytes matched, none NUL,
        // it goes on past them.
        let dropped = (unsafe { has_prefix(e, b"EXECGUARD_") } && HOP_MARK_TAILS.iter().any(|m| unsafe { has_prefix(e.add(10), m) }))
            // SAFETY: as above.
            || (need_follow && unsafe { has_prefix(e, b"LD_PRELOAD=") });
        if dropped {
            continue;
        }
        if !push(arr, e) {
            ok = false;
            break;
        }
    }
    if let (true, Some((preload, copy))) = (ok, follow) {
        let lib = copy.lib;
        let lib = lib.strip_suffix(&[0]).unwrap_or(lib);
        preload.raw_at_start(b"LD_PRELOAD=");
        preload.raw_at_start(lib);
        if let Some(old) = get(envp, b"LD_PRELOAD") {
            if !names_shim(old, lib) && !old.is_empty() {
                preload.byte(b':');
                preload.raw_at_start(old);
            } else if names_shim(old, lib) {
                preload.clear();
                preload.raw_at_start(b"LD_PRELOAD=");
                preload.raw_at_start(old);
            }
        }
        preload.byte(0);
        ok = !preload.overflowed() && push(arr, preload.as_bytes().as_ptr() as *const c_char);
        for e in copy.entries() {
            if ok && get(envp, name_of(e)).is_none() {
                ok = push(arr, e.as_ptr() as *const c_char);
            }
        }
    }
    if ok && need_mark {
        marker.raw_at_start(b"EXECGUARD_AUDITED=");
        if prefix != 0 {
            marker.byte(prefix);
        }
        marker.int(ids.map_or_else(sys::getpid, |i| i.pid) as i64);
        if sigs != Sigs::default() {
            for set in [sigs.ign, sigs.blocked] {
                marker.byte(b':');
                hex(&mut marker, set);
            }
        }
        marker.byte(0);
        ok = push(arr, marker.as_bytes().as_ptr() as *const c_char);
        // Outside fds passed on: the names travel with them, so that no process below
        // names them again, even past a parent the shim is not in.
        if ok && super::startfds::any() && super::startfds::outside_env(&mut outside, ids.unwrap_or_else(sys::Ids::ask)) {
            ok = push(arr, outside.as_bytes().as_ptr() as *const c_char);
        }
        // What the new program holds, so that it need not list its fds to know.
        if ok && held.is_some_and(|h| super::startfds::held_env(&mut held_var, h)) {
            ok = push(arr, held_var.as_bytes().as_ptr() as *const c_char);
        }
    }
    // Dropped above with the other marks: said again while the variables go on, to
    // another process (a spawn's child, a fork child). An exec in place (an exec
    // wrapper such as `env` or `nice` between a starter and its worker) leaves the
    // fds with the process they were handed to, unless they were not its own either
    // (a shell below the worker that execs its last command).
    let elsewhere = || prefix == b'^' || !super::repeat::started_here(ids.map_or_else(sys::getpid, |i| i.pid));
    if ok && starter.is_some_and(|taken| taken || elsewhere()) {
        ok = push(arr, crate::policy::STARTER_TAKEN.as_ptr() as *const c_char);
    }
    if !ok {
        return f.exec_with(envp);
    }
    // push() left room for the terminator: n < N.
    let Some(end) = arr.get_mut(n) else { return f.exec_with(envp) };
    end.write(core::ptr::null());
    // MaybeUninit<T> has T's layout; entries 0..=n are written.
    f.exec_with(arr.as_ptr().cast::<*const c_char>())
}

/// Async-signal-safe: the C string `e` starts with `prefix` (which holds no NUL).
/// Reads no byte past the first that differs, so never past `e`'s NUL.
///
/// # Safety
/// `e` is a NUL-terminated string.
#[inline]
unsafe fn has_prefix(e: *const c_char, prefix: &[u8]) -> bool {
    let e = e.cast::<u8>();
    for (i, &b) in prefix.iter().enumerate() {
        // SAFETY: bytes 0..i matched `prefix`, none of them NUL: byte i exists.
        if unsafe { *e.add(i) } != b {
            return false;
        }
    }
    true
}

/// Async-signal-safe: `v` in lower-case hex, no leading zeros.
fn hex<const N: usize>(out: &mut Buf<N>, v: u64) {
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.byte(b"0123456789abcdef".get(((v >> (4 * i)) & 0xf) as usize).copied().unwrap_or(b'0'));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::{get, has_prefix, is_hop_mark, names_shim, starter_fds};
    use crate::policy::FdRanges;

    #[test]
    fn the_marks_and_nothing_else_are_hop_marks() {
        for m in ["EXECGUARD_AUDITED=^12", "EXECGUARD_OUTSIDE=10", "EXECGUARD_HELD=3", "EXECGUARD_TAKEN=1"] {
            assert!(is_hop_mark(m.as_bytes()), "{m}");
        }
        for e in ["EXECGUARD_MODE=fix", "EXECGUARD_TAKE=1", "EXECGUARD_", "EXECGUARD_AUDITED", "XEXECGUARD_HELD=3", "SERVER_STARTER_PORT=80=3"] {
            assert!(!is_hop_mark(e.as_bytes()), "{e}");
        }
    }

    #[test]
    fn a_starters_fds_are_read_from_every_variable_that_names_some() {
        let owned: Vec<std::ffi::CString> = ["SHELL=/bin/sh", "EINHORN_FD_COUNT=2", "EINHORN_FD_0=6", "EINHORN_FD_1=7", "SERVER_STARTER_PORT=80=9;/s.sock=10", "EINHORN_FD_FAMILY_0=AF_INET"]
            .iter()
            .map(|e| std::ffi::CString::new(*e).unwrap())
            .collect();
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        let mut out = FdRanges::new();
        starter_fds(ptrs.as_ptr(), &mut out);
        let named: Vec<i32> = (0..20).filter(|&fd| out.contains(fd)).collect();
        assert_eq!(named, [6, 7, 9, 10]);
    }

    #[test]
    fn an_entry_is_dropped_by_its_prefix_and_read_no_further() {
        let held = std::ffi::CString::new("EXECGUARD_HELD=10,251").unwrap();
        // SAFETY: NUL-terminated strings.
        unsafe {
            assert!(has_prefix(held.as_ptr(), b"EXECGUARD_HELD="));
            assert!(!has_prefix(held.as_ptr(), b"EXECGUARD_OUTSIDE="));
            assert!(has_prefix(held.as_ptr(), b""));
        }
        // Shorter than the prefix: the compare stops at the NUL, inside the entry
        // (a page that ends right after it would fault on a read past it).
        let page = 4096;
        // SAFETY: an anonymous mapping of two pages, the second made inaccessible.
        unsafe {
            let m = libc::mmap(core::ptr::null_mut(), 2 * page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(m, libc::MAP_FAILED);
            assert_eq!(libc::mprotect((m as *mut u8).add(page).cast(), page, libc::PROT_NONE), 0);
            let entry = (m as *mut u8).add(page - 5);
            core::ptr::copy_nonoverlapping(c"EXEC".to_bytes_with_nul().as_ptr(), entry, 5);
            assert!(!has_prefix(entry.cast(), b"EXECGUARD_HELD="));
            core::ptr::copy_nonoverlapping(c"LD_P".to_bytes_with_nul().as_ptr(), entry, 5);
            assert!(!has_prefix(entry.cast(), b"LD_PRELOAD="));
            libc::munmap(m, 2 * page);
        }
    }

    #[test]
    fn a_value_by_its_name_and_no_other() {
        let owned: Vec<std::ffi::CString> =
            ["PATHX=no", "PATH=/bin:/usr/bin", "PA=short", "EMPTY=", "NOEQ"].iter().map(|e| std::ffi::CString::new(*e).unwrap()).collect();
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        let env = ptrs.as_ptr();
        assert_eq!(get(env, b"PATH"), Some(&b"/bin:/usr/bin"[..]));
        assert_eq!(get(env, b"PA"), Some(&b"short"[..]));
        assert_eq!(get(env, b"PATHX"), Some(&b"no"[..]));
        assert_eq!(get(env, b"EMPTY"), Some(&b""[..]));
        assert_eq!(get(env, b"NOEQ"), None);
        assert_eq!(get(env, b"P"), None);
        assert_eq!(get(env, b""), None);
        assert_eq!(get(core::ptr::null(), b"PATH"), None);
    }

    #[test]
    fn a_preload_names_the_shim_by_name_or_by_its_own_path() {
        assert!(names_shim(b"/usr/lib/libexecguard.so", b""));
        assert!(names_shim(b"/opt/a.so:/opt/libeg.so", b"/opt/libeg.so"));
        assert!(names_shim(b"/opt/a.so /opt/libeg.so", b"/opt/libeg.so"));
        assert!(!names_shim(b"/opt/libeg.so.1", b"/opt/libeg.so"));
        assert!(!names_shim(b"/opt/a.so", b""));
        assert!(!names_shim(b"", b""));
    }
}
