//! Signal and errno numbers to names (Linux, x86_64/aarch64 numbering). Small room.

/// A name in a fixed-width array: tables of these hold no pointers, so the loader
/// has nothing to relocate (a `&str` table costs a relocation, and a written page,
/// per entry in every process that loads the shim).
// Evaluated at compile time only (the tables are consts); the loop condition bounds
// both indexes, and `get` is not usable in a const fn here.
#[allow(clippy::indexing_slicing)]
pub(crate) const fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() && i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The bytes of a fixed-width name, without the padding.
pub(crate) fn unfixed(n: &[u8]) -> &[u8] {
    let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
    n.get(..end).unwrap_or(n)
}

const SIGNALS: [[u8; 10]; 32] = [
    fixed("SIG0"), fixed("SIGHUP"), fixed("SIGINT"), fixed("SIGQUIT"), fixed("SIGILL"), fixed("SIGTRAP"), fixed("SIGABRT"), fixed("SIGBUS"), fixed("SIGFPE"), fixed("SIGKILL"),
    fixed("SIGUSR1"), fixed("SIGSEGV"), fixed("SIGUSR2"), fixed("SIGPIPE"), fixed("SIGALRM"), fixed("SIGTERM"), fixed("SIGSTKFLT"), fixed("SIGCHLD"), fixed("SIGCONT"),
    fixed("SIGSTOP"), fixed("SIGTSTP"), fixed("SIGTTIN"), fixed("SIGTTOU"), fixed("SIGURG"), fixed("SIGXCPU"), fixed("SIGXFSZ"), fixed("SIGVTALRM"), fixed("SIGPROF"),
    fixed("SIGWINCH"), fixed("SIGIO"), fixed("SIGPWR"), fixed("SIGSYS"),
];

/// Async-signal-safe: writes the name of `sig` (e.g. `SIGALRM`, `SIGRTMIN+3`) into
/// `out`, counting real-time signals from `rtmin` (the library passes its libc's,
/// `libc_kind::rtmin`; this file is compiled into the CLI too, which has no libc_kind).
pub fn signal<const N: usize>(sig: i32, rtmin: i32, out: &mut super::line::Buf<N>) {
    if let Some(name) = usize::try_from(sig).ok().and_then(|i| SIGNALS.get(i)) {
        out.raw(unfixed(name));
    } else if (32..rtmin).contains(&sig) {
        // Reserved by the libc: no name of its own.
        out.s("SIG");
        out.int(sig as i64);
    } else if sig == rtmin {
        out.s("SIGRTMIN");
    } else if sig == 64 {
        out.s("SIGRTMAX");
    } else if (rtmin + 1..64).contains(&sig) {
        out.s("SIGRTMIN+");
        out.int((sig - rtmin) as i64);
    } else {
        out.s("SIG");
        out.int(sig as i64);
    }
}

const ERRNOS: [[u8; 16]; 134] = [
    fixed("0"), fixed("EPERM"), fixed("ENOENT"), fixed("ESRCH"), fixed("EINTR"), fixed("EIO"), fixed("ENXIO"), fixed("E2BIG"), fixed("ENOEXEC"), fixed("EBADF"), fixed("ECHILD"),
    fixed("EAGAIN"), fixed("ENOMEM"), fixed("EACCES"), fixed("EFAULT"), fixed("ENOTBLK"), fixed("EBUSY"), fixed("EEXIST"), fixed("EXDEV"), fixed("ENODEV"), fixed("ENOTDIR"),
    fixed("EISDIR"), fixed("EINVAL"), fixed("ENFILE"), fixed("EMFILE"), fixed("ENOTTY"), fixed("ETXTBSY"), fixed("EFBIG"), fixed("ENOSPC"), fixed("ESPIPE"), fixed("EROFS"),
    fixed("EMLINK"), fixed("EPIPE"), fixed("EDOM"), fixed("ERANGE"), fixed("EDEADLK"), fixed("ENAMETOOLONG"), fixed("ENOLCK"), fixed("ENOSYS"), fixed("ENOTEMPTY"),
    fixed("ELOOP"), fixed("E41"), fixed("ENOMSG"), fixed("EIDRM"), fixed("ECHRNG"), fixed("EL2NSYNC"), fixed("EL3HLT"), fixed("EL3RST"), fixed("ELNRNG"), fixed("EUNATCH"),
    fixed("ENOCSI"), fixed("EL2HLT"), fixed("EBADE"), fixed("EBADR"), fixed("EXFULL"), fixed("ENOANO"), fixed("EBADRQC"), fixed("EBADSLT"), fixed("E58"), fixed("EBFONT"),
    fixed("ENOSTR"), fixed("ENODATA"), fixed("ETIME"), fixed("ENOSR"), fixed("ENONET"), fixed("ENOPKG"), fixed("EREMOTE"), fixed("ENOLINK"), fixed("EADV"), fixed("ESRMNT"),
    fixed("ECOMM"), fixed("EPROTO"), fixed("EMULTIHOP"), fixed("EDOTDOT"), fixed("EBADMSG"), fixed("EOVERFLOW"), fixed("ENOTUNIQ"), fixed("EBADFD"), fixed("EREMCHG"),
    fixed("ELIBACC"), fixed("ELIBBAD"), fixed("ELIBSCN"), fixed("ELIBMAX"), fixed("ELIBEXEC"), fixed("EILSEQ"), fixed("ERESTART"), fixed("ESTRPIPE"), fixed("EUSERS"),
    fixed("ENOTSOCK"), fixed("EDESTADDRREQ"), fixed("EMSGSIZE"), fixed("EPROTOTYPE"), fixed("ENOPROTOOPT"), fixed("EPROTONOSUPPORT"),
    fixed("ESOCKTNOSUPPORT"), fixed("EOPNOTSUPP"), fixed("EPFNOSUPPORT"), fixed("EAFNOSUPPORT"), fixed("EADDRINUSE"), fixed("EADDRNOTAVAIL"),
    fixed("ENETDOWN"), fixed("ENETUNREACH"), fixed("ENETRESET"), fixed("ECONNABORTED"), fixed("ECONNRESET"), fixed("ENOBUFS"), fixed("EISCONN"),
    fixed("ENOTCONN"), fixed("ESHUTDOWN"), fixed("ETOOMANYREFS"), fixed("ETIMEDOUT"), fixed("ECONNREFUSED"), fixed("EHOSTDOWN"), fixed("EHOSTUNREACH"),
    fixed("EALREADY"), fixed("EINPROGRESS"), fixed("ESTALE"), fixed("EUCLEAN"), fixed("ENOTNAM"), fixed("ENAVAIL"), fixed("EISNAM"), fixed("EREMOTEIO"),
    fixed("EDQUOT"), fixed("ENOMEDIUM"), fixed("EMEDIUMTYPE"), fixed("ECANCELED"), fixed("ENOKEY"), fixed("EKEYEXPIRED"), fixed("EKEYREVOKED"),
    fixed("EKEYREJECTED"), fixed("EOWNERDEAD"), fixed("ENOTRECOVERABLE"), fixed("ERFKILL"), fixed("EHWPOISON"),
];

/// A signal by name (`SIGPIPE`, `PIPE`, `SIGRTMIN+2`, real-time ones counted from
/// `rtmin`) or number; None if unknown. Placed with the constructor, its one caller
/// (`EXECGUARD_KEEP_IGNORED`).
#[link_section = ".text.startup.execguard"]
pub fn parse_signal(s: &[u8], rtmin: i32) -> Option<i32> {
    let s = s.strip_prefix(b"SIG").unwrap_or(s);
    if let Some(i) = SIGNALS.iter().position(|n| unfixed(n).get(3..) == Some(s)) {
        return Some(i as i32).filter(|&i| i > 0);
    }
    let num = |d: &[u8]| -> Option<i32> {
        if d.is_empty() || d.len() > 2 || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0i32, |v, &b| v * 10 + (b - b'0') as i32))
    };
    match s {
        b"RTMIN" => Some(rtmin),
        b"RTMAX" => Some(64),
        _ => match s.strip_prefix(b"RTMIN+") {
            Some(n) => num(n).map(|n| rtmin + n).filter(|&v| v <= 64),
            None => num(s).filter(|&v| (1..=64).contains(&v)),
        },
    }
}

/// Async-signal-safe: the symbolic name of an errno value.
pub fn errno<const N: usize>(e: i32, out: &mut super::line::Buf<N>) {
    match usize::try_from(e).ok().and_then(|i| ERRNOS.get(i)) {
        Some(name) if e != 0 => out.raw(unfixed(name)),
        _ => {
            out.s("E");
            out.int(e as i64)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::super::line::Buf;
    use super::*;

    #[test]
    fn names_match_libc_numbers() {
        let cases = [
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGSYS, "SIGSYS"),
            (libc::SIGRTMIN() + 3, "SIGRTMIN+1"),
        ];
        for (n, want) in cases {
            let mut b = Buf::<32>::new();
            signal(n, 34, &mut b);
            // glibc's SIGRTMIN() is 34 (kernel 32 + its two reserved ones).
            if want.starts_with("SIGRTMIN") {
                assert_eq!(n, 37);
                assert_eq!(b.as_bytes(), b"SIGRTMIN+3");
            } else {
                assert_eq!(b.as_bytes(), want.as_bytes());
            }
        }
        assert_eq!(parse_signal(b"SIGPIPE", 34), Some(libc::SIGPIPE));
        assert_eq!(parse_signal(b"XFSZ", 34), Some(libc::SIGXFSZ));
        assert_eq!(parse_signal(b"13", 34), Some(13));
        assert_eq!(parse_signal(b"SIGRTMIN+2", 34), Some(36));
        assert_eq!(parse_signal(b"SIGNOPE", 34), None);
        assert_eq!(parse_signal(b"0", 34), None);
        // musl's SIGRTMIN is 35: the same signal numbers carry musl's names there.
        for (n, want) in [(34, "SIG34"), (35, "SIGRTMIN"), (37, "SIGRTMIN+2"), (64, "SIGRTMAX")] {
            let mut b = Buf::<32>::new();
            signal(n, 35, &mut b);
            assert_eq!(b.as_bytes(), want.as_bytes());
        }
        let mut b = Buf::<32>::new();
        errno(libc::EALREADY, &mut b);
        assert_eq!(b.as_bytes(), b"EALREADY");
        let mut b = Buf::<32>::new();
        errno(libc::ENOTCONN, &mut b);
        assert_eq!(b.as_bytes(), b"ENOTCONN");
        let mut b = Buf::<32>::new();
        errno(libc::EHWPOISON, &mut b);
        assert_eq!(b.as_bytes(), b"EHWPOISON");
    }
}
