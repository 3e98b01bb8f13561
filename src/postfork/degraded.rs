//! Degraded paths: a newer system call the kernel refused (ENOSYS before it existed,
//! EPERM or ENOSYS under a container's seccomp profile) and the fallback taken
//! instead. Each is recorded once per process as an info event `degraded` — in the
//! JSON log only, never on stderr (the host's stderr is not ours to fill) — so that
//! `execguard run`'s summary can name them. Small room.

use super::emit::{Event, Severity};
use super::line::Buf;
use super::{names, sys};
use core::sync::atomic::{AtomicU64, Ordering};

/// What was refused; the name is the event's `path`.
#[derive(Clone, Copy)]
pub enum Path {
    PidfdOpen,
    ProcessVmReadv,
    CloseRange,
    /// `madvise(MADV_WIPEONFORK)`, 4.14: the fork hook's page of its own counts.
    MadvWipeonfork,
}

impl Path {
    fn name(self) -> &'static [u8] {
        match self {
            Path::PidfdOpen => b"pidfd_open",
            Path::ProcessVmReadv => b"process_vm_readv",
            Path::CloseRange => b"close_range",
            Path::MadvWipeonfork => b"madv_wipeonfork",
        }
    }
}

/// The pid in the high half, the paths it noted in the low: a fork or vfork child
/// sees another pid and starts afresh (at worst the parent notes a path twice).
#[link_section = ".data.execguard_hot"]
static NOTED: AtomicU64 = AtomicU64::new(0);

/// Async-signal-safe: the error means the call is unavailable here (not a failure
/// of this particular use of it), so a fallback must do the job.
pub fn refused(err: i32) -> bool {
    err == libc::ENOSYS || err == libc::EPERM
}

/// Async-signal-safe: did this process already see `path` refused? (Lets a caller
/// skip straight to its fallback instead of asking the kernel again.)
pub fn known(path: Path) -> bool {
    let v = NOTED.load(Ordering::Relaxed);
    (v >> 32) as i32 == sys::getpid() && v & (1 << path as u32) != 0
}

/// Async-signal-safe: `path` was refused with `err` and its fallback taken: write
/// the event, the first time in this process.
pub fn note(path: Path, err: i32) {
    let pid = sys::getpid();
    let bit = 1u64 << path as u32;
    let mut v = NOTED.load(Ordering::Relaxed);
    loop {
        let mine = if (v >> 32) as i32 == pid { v & 0xffff_ffff } else { 0 };
        if mine & bit != 0 {
            return;
        }
        let new = ((pid as u32 as u64) << 32) | mine | bit;
        match NOTED.compare_exchange_weak(v, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => v = now,
        }
    }
    let _e = sys::ErrnoGuard::new();
    // The human form (stderr) costs no system call to build, and is never written.
    let mut ev = Event::start("degraded", Severity::Info, false);
    if !ev.is_json() {
        return;
    }
    ev.str("path", path.name());
    ev.ident(path.name());
    let mut name = Buf::<32>::new();
    names::errno(err, &mut name);
    ev.str("errno", name.as_bytes());
    ev.emit();
}
