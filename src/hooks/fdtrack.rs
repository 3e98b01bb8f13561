//! fds a process sets up for its child on purpose: targets of dup2/dup3, fds whose
//! CLOEXEC it cleared (fcntl, fcntl64, ioctl FIONCLEX — CPython's pass_fds and
//! os.set_inheritable use the ioctl) and F_DUPFD results. A CLOEXEC clear also goes
//! into the process-wide record (postfork/deliberate.rs) that children trust. Recorded in the thread's pid-tagged record (see
//! postfork/tls.rs); the hot path is one or two comparisons. Small room.

use crate::config::{self, Mode};
use crate::postfork::{fdgen, startfds, sys, tls};
use crate::real;
use libc::{c_int, c_ulong};

#[inline]
#[link_section = ".text.warm.execguard"]
fn note(fd: c_int) {
    if fd >= 3 && config::mode() != Mode::Off {
        let _e = sys::ErrnoGuard::new();
        tls::note_setup(fd);
    }
}

/// Async-signal-safe: `fd`'s flag or file is about to change. Its recorded flag is
/// voided before the real call, so that a fork by another thread between the call
/// and the record (fdgen::made, after it) asks the kernel instead of trusting the
/// old record.
#[inline]
#[link_section = ".text.warm.execguard"]
fn before_change(fd: c_int) {
    fdgen::bump(fd);
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        before_change(new);
    }
    // SAFETY: forwarded.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 && old != new {
        fdgen::made(new, false);
        // Tells the start record too, when `new` was inherited (F_START).
        crate::postfork::storm::forget(new);
        note(new);
    }
    r
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    before_change(new);
    // SAFETY: forwarded.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 {
        fdgen::made(new, flags & libc::O_CLOEXEC != 0);
        crate::postfork::storm::forget(new);
        if flags & libc::O_CLOEXEC == 0 {
            note(new);
        }
    }
    r
}

/// CLOEXEC cleared on purpose: set-up work in a child, and a standing "children
/// get this" in any process.
#[inline]
#[link_section = ".text.warm.execguard"]
fn cleared(fd: c_int) {
    note(fd);
    if fd >= 3 && config::mode() != Mode::Off {
        let _e = sys::ErrnoGuard::new();
        crate::postfork::deliberate::mark(fd);
    }
}

/// One copy, out of line: fcntl and fcntl64 share it (the start blocks' room).
#[inline(never)]
#[link_section = ".text.warm.execguard"]
fn after_fcntl(fd: c_int, cmd: c_int, arg: c_ulong, r: c_int) {
    if r < 0 {
        return;
    }
    match cmd {
        libc::F_SETFD => {
            fdgen::made(fd, arg & libc::FD_CLOEXEC as c_ulong != 0);
            start_flag_changed(fd);
            if arg & libc::FD_CLOEXEC as c_ulong == 0 {
                cleared(fd)
            }
        }
        libc::F_DUPFD => {
            fdgen::made(r, false);
            crate::postfork::storm::forget(r);
            note(r)
        }
        libc::F_DUPFD_CLOEXEC => {
            fdgen::made(r, true);
            crate::postfork::storm::forget(r)
        }
        _ => {}
    }
}

/// Async-signal-safe. Variadic in C; see real.rs for why a fixed third argument is right.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if cmd == libc::F_SETFD {
        before_change(fd);
    }
    // SAFETY: forwarded.
    let r = unsafe { real::fcntl(fd, cmd, arg) };
    after_fcntl(fd, cmd, arg, r);
    r
}

/// Async-signal-safe. glibc ≥ 2.28 sends 64-bit-offset builds' fcntl here.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if cmd == libc::F_SETFD {
        before_change(fd);
    }
    // SAFETY: forwarded.
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    after_fcntl(fd, cmd, arg, r);
    r
}

/// Async-signal-safe.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    if req == libc::FIONCLEX as c_ulong || req == libc::FIOCLEX as c_ulong {
        before_change(fd);
    }
    // SAFETY: forwarded.
    let r = unsafe { real::ioctl(fd, req, arg) };
    if r == 0 && (req == libc::FIONCLEX as c_ulong || req == libc::FIOCLEX as c_ulong) {
        fdgen::made(fd, req == libc::FIOCLEX as c_ulong);
        start_flag_changed(fd);
        if req == libc::FIONCLEX as c_ulong {
            cleared(fd);
        }
    }
    r
}

/// Async-signal-safe: a sweep to the top of the fd space means the survivors are
/// chosen (a child keeping pass_fds closes the gaps around them this way).
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn close_range(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::close_range(first, last, flags) };
    if r == 0 && config::mode() != Mode::Off {
        let _e = sys::ErrnoGuard::new();
        fdgen::bump_all();
        if flags & sys::CLOSE_RANGE_CLOEXEC as c_int == 0 {
            startfds::closed_range(first, last);
        }
        if last >= i32::MAX as libc::c_uint {
            tls::note_sweep();
        }
    }
    r
}

/// Async-signal-safe: closes every fd from `low` up.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn closefrom(low: c_int) {
    // SAFETY: forwarded.
    unsafe { real::closefrom(low) };
    if config::mode() != Mode::Off {
        let _e = sys::ErrnoGuard::new();
        fdgen::bump_all();
        startfds::closed_range(low.max(0) as u32, u32::MAX);
        tls::note_sweep();
    }
}

/// Async-signal-safe as far as fclose itself is. fclose closes its fd inside libc,
/// where the close hook never sees it: the fd's generation must still move on (a
/// repeat's known layout, fdgen.rs), and a stream over an inherited fd (`fdopen(10)`)
/// must tell the start record that the number is no longer the inherited file. One
/// `fileno` per call, and the start record only for a marked fd.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn fclose(f: *mut libc::FILE) -> c_int {
    // SAFETY: forwarded.
    unsafe { closing(f) }
}

/// Async-signal-safe as far as fclose itself is: the hook's body, for the library's
/// own streams too (popen's). Not exported: a call from inside the library to the
/// exported `fclose` goes through a symbol the loader binds at every start.
#[link_section = ".text.warm.execguard"]
pub(crate) unsafe fn closing(f: *mut libc::FILE) -> c_int {
    let fd = stream_fd(f);
    // SAFETY: forwarded.
    let r = unsafe { real::fclose(f) };
    closed_inside_libc(fd);
    r
}

/// Async-signal-safe: `fd`'s close-on-exec flag was set or cleared; the start record
/// learns it when the number is one this process was handed (only for a marked fd).
#[link_section = ".text.warm.execguard"]
fn start_flag_changed(fd: c_int) {
    if crate::postfork::startfds::marked(fd) {
        crate::postfork::startfds::flag_changed(fd);
    }
}

/// Async-signal-safe: libc closed `fd` (or -1) where the close hook does not see it.
/// Its generation moves on, and the start record learns that an inherited number is
/// gone (only for a marked fd).
#[link_section = ".text.warm.execguard"]
pub(crate) fn closed_inside_libc(fd: c_int) {
    if fd < 0 {
        return;
    }
    fdgen::bump(fd);
    if crate::postfork::startfds::marked(fd) {
        crate::postfork::storm::forget(fd);
    }
}

/// Async-signal-safe. A socket that starts to listen keeps its number, inode and
/// flags: its generation moves on (a recorded flag with it), so that a repeated leak
/// counts its listeners again.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::listen(fd, backlog) };
    if r == 0 {
        fdgen::renew(fd);
    }
    r
}

/// Does an `fopen` mode ask for close-on-exec? glibc reads the mode's letters up to
/// a `,` (`"r,ccs=euc-jp"` is not "e"); musl reads them all and has no `,ccs=`.
/// At most 32 bytes.
#[link_section = ".text.warm.execguard"]
fn mode_cloexec(mode: *const libc::c_char) -> bool {
    if mode.is_null() {
        return false;
    }
    for i in 0..32 {
        // SAFETY: NUL-terminated (fopen's contract); read byte by byte up to the NUL.
        match unsafe { *mode.cast::<u8>().add(i) } {
            0 | b',' => return false,
            b'e' => return true,
            _ => {}
        }
    }
    false
}

/// Async-signal-safe as far as `fileno` is: a stream opened inside libc made an fd
/// this way (the open hooks do not see libc's own open).
#[link_section = ".text.warm.execguard"]
fn stream_made(f: *mut libc::FILE, mode: *const libc::c_char) {
    if f.is_null() || config::mode() == Mode::Off {
        return;
    }
    let _e = sys::ErrnoGuard::new();
    // SAFETY: the stream just opened.
    let fd = unsafe { real::fileno(f) };
    crate::hooks::origins::made_inside_libc(fd, mode_cloexec(mode));
}

/// fopen opens its file inside libc: the fd's generation moves on and its flag
/// (mode "e") is recorded, as the open hooks do for `open`.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn fopen(path: *const libc::c_char, mode: *const libc::c_char) -> *mut libc::FILE {
    // SAFETY: forwarded.
    let f = unsafe { real::fopen(path, mode) };
    stream_made(f, mode);
    f
}

/// As fopen.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn fopen64(path: *const libc::c_char, mode: *const libc::c_char) -> *mut libc::FILE {
    // SAFETY: forwarded.
    let f = unsafe { real::fopen64(path, mode) };
    stream_made(f, mode);
    f
}

/// The stream's fd before a call that closes it inside libc, or -1.
pub(crate) fn stream_fd(f: *mut libc::FILE) -> c_int {
    if f.is_null() || config::mode() == Mode::Off {
        return -1;
    }
    let _e = sys::ErrnoGuard::new();
    // SAFETY: the caller's stream, still open.
    unsafe { real::fileno(f) }
}

/// freopen closes the stream's fd and opens another inside libc (usually on the
/// same number): both seen, as fclose and fopen.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn freopen(path: *const libc::c_char, mode: *const libc::c_char, f: *mut libc::FILE) -> *mut libc::FILE {
    let old = stream_fd(f);
    // SAFETY: forwarded.
    let r = unsafe { real::freopen(path, mode, f) };
    reopened(old, r, mode);
    r
}

/// As freopen.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn freopen64(path: *const libc::c_char, mode: *const libc::c_char, f: *mut libc::FILE) -> *mut libc::FILE {
    let old = stream_fd(f);
    // SAFETY: forwarded.
    let r = unsafe { real::freopen64(path, mode, f) };
    reopened(old, r, mode);
    r
}

#[link_section = ".text.warm.execguard"]
fn reopened(old: c_int, r: *mut libc::FILE, mode: *const libc::c_char) {
    closed_inside_libc(old);
    stream_made(r, mode);
}

/// closedir closes its fd inside libc (`fdopendir(10)` then `closedir` gives the
/// number up): as fclose.
#[no_mangle]
#[link_section = ".text.warm.execguard"]
pub unsafe extern "C" fn closedir(d: *mut libc::DIR) -> c_int {
    let fd = if !d.is_null() && config::mode() != Mode::Off {
        let _e = sys::ErrnoGuard::new();
        // SAFETY: the caller's directory stream, still open.
        unsafe { real::dirfd(d) }
    } else {
        -1
    };
    // SAFETY: forwarded.
    let r = unsafe { real::closedir(d) };
    closed_inside_libc(fd);
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::mode_cloexec;

    #[test]
        fn fopen_modes() {
        for (m, want) in [(&b"re\0"[..], true), (b"r\0", false), (b"w+e\0", true), (b"r,ccs=euc-jp\0", false), (b"\0", false)] {
            assert_eq!(mode_cloexec(m.as_ptr() as *const libc::c_char), want, "{m:?}");
        }
        assert!(!mode_cloexec(core::ptr::null()));
    }
}
