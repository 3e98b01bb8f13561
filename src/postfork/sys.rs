//! Raw system calls for the small room. Nothing here allocates, locks or calls a libc
//! function that the shim itself exports (a call to `fcntl` from inside the library
//! would land in our own hook). System calls are made directly (`syscall!`): no
//! libc function, so no libc text page to fault in a fork child, and the host's
//! errno untouched; a failure comes back as `-errno`.

use libc::{c_int, c_long, c_void};

pub type R<T> = Result<T, i32>;

/// Async-signal-safe: reads the calling thread's errno.
#[inline]
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Async-signal-safe: writes the calling thread's errno.
#[inline]
pub fn set_errno(e: i32) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = e }
}

/// Async-signal-safe: a system call straight to the kernel; returns its result,
/// `-errno` on failure (errno itself is not written).
///
/// # Safety
/// As for the system call `n` with these arguments.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn raw6(n: c_long, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> c_long {
    #[cfg(target_arch = "x86_64")]
    {
        let r: c_long;
        // SAFETY: the Linux x86_64 system call convention; rcx and r11 are clobbered.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d,
                in("r8") e, in("r9") f, lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        r
    }
    #[cfg(target_arch = "aarch64")]
    {
        let r: c_long;
        // SAFETY: the Linux aarch64 system call convention.
        unsafe {
            core::arch::asm!("svc 0", in("x8") n, inlateout("x0") a as c_long => r, in("x1") b, in("x2") c, in("x3") d,
                in("x4") e, in("x5") f, options(nostack));
        }
        r
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let saved = errno();
        // SAFETY: forwarded.
        let r = unsafe { syscall!(n, a, b, c, d, e, f) };
        let r = if r < 0 { -(errno() as c_long) } else { r };
        set_errno(saved);
        r
    }
}

/// `syscall!(SYS_x, args…)`: `raw6` with each argument (integer or pointer) cast to a
/// register-sized word, the missing ones zero.
macro_rules! syscall {
    ($n:expr $(, $a:expr)* $(,)?) => {{
        let args: &[usize] = &[$(($a) as usize),*];
        let arg = |i: usize| args.get(i).copied().unwrap_or(0);
        $crate::postfork::sys::raw6($n as libc::c_long, arg(0), arg(1), arg(2), arg(3), arg(4), arg(5))
    }};
}
pub(crate) use syscall;

#[inline]
fn cvt(r: c_long) -> R<c_long> {
    if r < 0 {
        Err(-r as i32)
    } else {
        Ok(r)
    }
}

/// Async-signal-safe: getpid(2) straight from the kernel (valid in a vfork child too).
#[inline]
pub fn getpid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { syscall!(libc::SYS_getpid) as i32 }
}

/// Async-signal-safe: a fresh zero-filled anonymous mapping of `bytes`, readable and
/// writable, shared with fork children (`shared`) or private; None where the kernel
/// refuses it. Raw system call: errno is untouched.
#[inline]
pub fn map_zeroed(bytes: usize, shared: bool) -> Option<*mut u8> {
    let kind = if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
    // SAFETY: a new mapping at an address the kernel picks; nothing of ours is replaced.
    let p = unsafe { syscall!(libc::SYS_mmap, 0, bytes, libc::PROT_READ | libc::PROT_WRITE, kind | libc::MAP_ANONYMOUS, -1i32, 0) };
    (p >= 0).then_some(p as *mut u8)
}

/// Async-signal-safe: unmap what `map_zeroed` made and nobody was handed.
#[inline]
pub fn unmap(p: *mut u8, bytes: usize) {
    // SAFETY: the caller's own mapping of `bytes`, never published.
    unsafe { syscall!(libc::SYS_munmap, p, bytes) };
}

/// This process's pid and its parent's, asked once for a whole exec audit and
/// handed to everything after it that needs them (the keep rules, the start record,
/// the marker, the findings' owner) rather than asked again by each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ids {
    pub pid: i32,
    pub ppid: i32,
}

impl Ids {
    /// Async-signal-safe: two system calls.
    #[inline]
    pub fn ask() -> Ids {
        Ids { pid: getpid(), ppid: getppid() }
    }
}

/// Async-signal-safe: do processes `a` and `b` share one address space (a vfork
/// child and its parent)? `kcmp(KCMP_VM)`: Some(answer), or None where the kernel
/// or a seccomp filter refuses it (Docker's default profile does, without
/// CAP_SYS_PTRACE).
pub fn same_memory(a: i32, b: i32) -> Option<bool> {
    const KCMP_VM: c_long = 1;
    // SAFETY: no pointers.
    let r = unsafe { syscall!(libc::SYS_kcmp, a as c_long, b as c_long, KCMP_VM, 0 as c_long, 0 as c_long) };
    if r < 0 {
        None
    } else {
        Some(r == 0)
    }
}

/// Async-signal-safe.
#[inline]
pub fn getppid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { syscall!(libc::SYS_getppid) as i32 }
}

/// Async-signal-safe.
#[inline]
pub fn gettid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { syscall!(libc::SYS_gettid) as i32 }
}

/// Async-signal-safe: fcntl(2) with an integer argument.
pub fn fcntl(fd: c_int, cmd: c_int, arg: c_long) -> R<c_int> {
    // SAFETY: integer-argument commands only; the kernel validates fd.
    cvt(unsafe { syscall!(libc::SYS_fcntl, fd as c_long, cmd as c_long, arg) }).map(|r| r as c_int)
}

/// Async-signal-safe.
pub fn close(fd: c_int) {
    // SAFETY: closing an fd we own; EINTR on close must not be retried on Linux.
    unsafe { syscall!(libc::SYS_close, fd as c_long) };
}

/// Async-signal-safe: `path` must be NUL-terminated.
pub fn open(path: &[u8], flags: c_int, mode: c_int) -> R<c_int> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    loop {
        // SAFETY: path is NUL-terminated (checked above).
        let r = unsafe {
            syscall!(libc::SYS_openat, libc::AT_FDCWD as c_long, path.as_ptr(), flags as c_long, mode as c_long)
        };
        match cvt(r) {
            Err(libc::EINTR) => continue,
            other => return other.map(|fd| fd as c_int),
        }
    }
}

/// Async-signal-safe: one write(2), retried on EINTR; returns bytes written.
pub fn write(fd: c_int, buf: &[u8]) -> R<usize> {
    loop {
        // SAFETY: buf is a valid slice.
        let r = unsafe { syscall!(libc::SYS_write, fd as c_long, buf.as_ptr(), buf.len()) };
        match cvt(r) {
            Err(libc::EINTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// Async-signal-safe.
pub fn read(fd: c_int, buf: &mut [u8]) -> R<usize> {
    loop {
        // SAFETY: buf is a valid mutable slice.
        let r = unsafe { syscall!(libc::SYS_read, fd as c_long, buf.as_mut_ptr(), buf.len()) };
        match cvt(r) {
            Err(libc::EINTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// Async-signal-safe: readlink of a NUL-terminated path into `buf`; returns the length.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> R<usize> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: path NUL-terminated, buf valid.
    let r = unsafe {
        syscall!(libc::SYS_readlinkat, libc::AT_FDCWD as c_long, path.as_ptr(), buf.as_mut_ptr(), buf.len())
    };
    cvt(r).map(|n| n as usize)
}

/// Async-signal-safe.
pub fn fstat(fd: c_int) -> R<libc::stat> {
    let mut st = core::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out-pointer.
    cvt(unsafe { syscall!(libc::SYS_fstat, fd as c_long, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded: the kernel wrote the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// Which open file an fd is: its type bits, device and inode (fstat's), the facts an
/// identity needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileId {
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
}

/// Async-signal-safe: `fstat` reduced to its `FileId`, without moving the whole
/// struct through a `Result` (an exec audit asks this for every leaked fd).
#[inline]
pub fn fstat_id(fd: c_int) -> Option<FileId> {
    let mut st = core::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out-pointer.
    let r = unsafe { syscall!(libc::SYS_fstat, fd as c_long, st.as_mut_ptr()) };
    if r < 0 {
        return None;
    }
    // SAFETY: fstat succeeded: the kernel wrote the whole struct.
    let st = unsafe { st.assume_init_ref() };
    Some(FileId { mode: st.st_mode, dev: st.st_dev, ino: st.st_ino })
}

/// Async-signal-safe: an int-valued SOL_SOCKET option.
pub fn sockopt_int(fd: c_int, opt: c_int) -> R<c_int> {
    let mut v: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid out-pointers of the right size.
    cvt(unsafe {
        syscall!(
            libc::SYS_getsockopt,
            fd as c_long,
            libc::SOL_SOCKET as c_long,
            opt as c_long,
            &mut v as *mut c_int,
            &mut len as *mut libc::socklen_t,
        )
    })?;
    Ok(v)
}

/// Async-signal-safe: getsockname (peer = false) or getpeername (peer = true).
pub fn sockaddr(fd: c_int, peer: bool) -> R<(libc::sockaddr_storage, usize)> {
    // SAFETY: all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    let mut len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let nr = if peer { libc::SYS_getpeername } else { libc::SYS_getsockname };
    // SAFETY: ss/len are valid and sized.
    cvt(unsafe { syscall!(nr, fd as c_long, &mut ss as *mut _ as *mut c_void, &mut len as *mut libc::socklen_t) })?;
    Ok((ss, len as usize))
}

/// Async-signal-safe.
pub fn getdents64(fd: c_int, buf: &mut [core::mem::MaybeUninit<u8>]) -> R<usize> {
    // SAFETY: buf valid for buf.len() bytes; the kernel only writes into it.
    cvt(unsafe { syscall!(libc::SYS_getdents64, fd as c_long, buf.as_mut_ptr(), buf.len()) }).map(|n| n as usize)
}

/// Async-signal-safe: rt_sigprocmask on the kernel's 64-bit signal set (bit n-1 = signal n).
pub fn sigmask(how: c_int, set: Option<u64>) -> R<u64> {
    let mut old: u64 = 0;
    let setp = match set.as_ref() {
        Some(s) => s as *const u64,
        None => core::ptr::null(),
    };
    // SAFETY: pointers valid; sigsetsize 8 is the kernel's on every 64-bit Linux.
    cvt(unsafe { syscall!(libc::SYS_rt_sigprocmask, how as c_long, setp, &mut old as *mut u64, 8 as c_long) })?;
    Ok(old)
}

/// Async-signal-safe: the current handler of `sig` (SIG_DFL = 0, SIG_IGN = 1, else a function).
pub fn sig_handler(sig: c_int) -> R<usize> {
    // The kernel's struct sigaction starts with the handler on every 64-bit Linux; the
    // rest is larger than 3 words on none, so 8 words is always enough room.
    let mut ka = [0usize; 8];
    // SAFETY: a NULL new action only queries; ka has room for the kernel struct.
    cvt(unsafe {
        syscall!(
            libc::SYS_rt_sigaction,
            sig as c_long,
            core::ptr::null::<c_void>(),
            ka.as_mut_ptr(),
            8 as c_long,
        )
    })?;
    Ok(ka[0])
}

/// Async-signal-safe: close_range(2) with flags (CLOSE_RANGE_CLOEXEC = 4). Callers
/// fall back to one call per fd on any error; a refusal (kernel < 5.9, a seccomp
/// profile; or < 5.11 for CLOSE_RANGE_CLOEXEC, which answers EINVAL) is noted as a
/// degraded path, and not asked again in this process.
pub fn close_range(first: u32, last: u32, flags: u32) -> R<()> {
    use super::degraded::{self, Path};
    if degraded::known(Path::CloseRange) {
        return Err(libc::ENOSYS);
    }
    // SAFETY: plain integers.
    let r = cvt(unsafe { syscall!(libc::SYS_close_range, first as c_long, last as c_long, flags as c_long) }).map(|_| ());
    if let Err(e) = r {
        if degraded::refused(e) || (e == libc::EINVAL && flags & CLOSE_RANGE_CLOEXEC != 0 && first <= last) {
            degraded::note(Path::CloseRange, e);
        }
    }
    r
}

pub const CLOSE_RANGE_CLOEXEC: u32 = 4;

/// Async-signal-safe: realtime clock as (seconds, microseconds), a line's `ts`. By
/// the system call, as `mono_ms`: most lines are written in fork children on
/// their way to exec, where libc's `clock_gettime` and the vDSO are pages of their
/// own to fault in (three faults in a first report's child, with errno's); a line
/// anywhere else is rare enough that the call's 0.1 µs does not count.
pub fn now() -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    let _ = unsafe { syscall!(libc::SYS_clock_gettime, libc::CLOCK_REALTIME as libc::c_long, &mut ts as *mut libc::timespec) };
    (ts.tv_sec, ts.tv_nsec / 1000)
}

/// Async-signal-safe: the end of the process, for the panic handler only (nothing in
/// the library is meant to panic). What abort(3) does, by system calls: SIGABRT
/// unblocked and raised, then with its default action, and an exit if it was caught
/// and returned or is ignored at the kernel's level.
#[cfg_attr(test, allow(dead_code))]
pub fn abort() -> ! {
    let abrt = 1u64 << (libc::SIGABRT - 1);
    // The kernel's struct sigaction, all zero: SIG_DFL, no flags, an empty mask (four
    // words on every 64-bit Linux, as in sig_handler).
    let dfl = [0usize; 4];
    // SAFETY: plain system calls on this process and thread.
    unsafe {
        let _ = syscall!(libc::SYS_rt_sigprocmask, libc::SIG_UNBLOCK, &abrt as *const u64, 0, 8);
        let _ = syscall!(libc::SYS_tgkill, getpid(), gettid(), libc::SIGABRT);
        let _ = syscall!(libc::SYS_rt_sigaction, libc::SIGABRT, dfl.as_ptr(), 0, 8);
        let _ = syscall!(libc::SYS_tgkill, getpid(), gettid(), libc::SIGABRT);
        loop {
            let _ = syscall!(libc::SYS_exit_group, 127);
        }
    }
}

/// Async-signal-safe: monotonic milliseconds by the system call itself (0.1 µs).
/// Most callers run in fork children (every repeated finding asks the time), where
/// the vDSO's code and data pages are not in a fresh child's page tables and
/// faulting them in (two faults) costs more than the call; the others (`system`'s
/// wait, a fruitless connect for `connect_storm`) cost far more than it. libc's
/// `clock_gettime` would also be one more import for the loader to bind at every
/// process start.
pub fn mono_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    let _ = unsafe { syscall!(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC as libc::c_long, &mut ts as *mut libc::timespec) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Saves errno on creation and puts it back on drop, so that the host never sees
/// the shim's own failed syscalls.
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    /// Async-signal-safe.
    #[inline]
    pub fn new() -> Self {
        ErrnoGuard(errno())
    }
}

impl Drop for ErrnoGuard {
    #[inline]
    fn drop(&mut self) {
        set_errno(self.0)
    }
}
