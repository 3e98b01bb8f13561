//! Signal and errno numbers to names (Linux, x86_64/aarch64 numbering). Small room.

const SIGNALS: [&str; 32] = [
    "SIG0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
    "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT",
    "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF",
    "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
];

/// Async-signal-safe: writes the name of `sig` (e.g. `SIGALRM`, `SIGRTMIN+3`) into `out`.
pub fn signal<const N: usize>(sig: i32, out: &mut super::line::Buf<N>) {
    if let Some(name) = usize::try_from(sig).ok().and_then(|i| SIGNALS.get(i)) {
        out.s(name);
    } else if (32..34).contains(&sig) {
        // glibc keeps 32 and 33 for itself (thread cancellation, setxid).
        out.s("SIG");
        out.int(sig as i64);
    } else if sig == 34 {
        out.s("SIGRTMIN");
    } else if sig == 64 {
        out.s("SIGRTMAX");
    } else if (35..64).contains(&sig) {
        out.s("SIGRTMIN+");
        out.int((sig - 34) as i64);
    } else {
        out.s("SIG");
        out.int(sig as i64);
    }
}

const ERRNOS: [&str; 134] = [
    "0", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD",
    "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR",
    "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS",
    "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY",
    "ELOOP", "E41", "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST", "ELNRNG", "EUNATCH",
    "ENOCSI", "EL2HLT", "EBADE", "EBADR", "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", "E58", "EBFONT",
    "ENOSTR", "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG", "EREMOTE", "ENOLINK", "EADV", "ESRMNT",
    "ECOMM", "EPROTO", "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD", "EREMCHG",
    "ELIBACC", "ELIBBAD", "ELIBSCN", "ELIBMAX", "ELIBEXEC", "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS",
    "ENOTSOCK", "EDESTADDRREQ", "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT", "EOPNOTSUPP", "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL",
    "ENETDOWN", "ENETUNREACH", "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN",
    "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH",
    "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL", "EISNAM", "EREMOTEIO",
    "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED", "ENOKEY", "EKEYEXPIRED", "EKEYREVOKED",
    "EKEYREJECTED", "EOWNERDEAD", "ENOTRECOVERABLE", "ERFKILL", "EHWPOISON",
];

/// A signal by name (`SIGPIPE`, `PIPE`, `SIGRTMIN+2`) or number; None if unknown.
pub fn parse_signal(s: &[u8]) -> Option<i32> {
    let s = s.strip_prefix(b"SIG").unwrap_or(s);
    if let Some(i) = SIGNALS.iter().position(|n| n.as_bytes().get(3..) == Some(s)) {
        return Some(i as i32).filter(|&i| i > 0);
    }
    let num = |d: &[u8]| -> Option<i32> {
        if d.is_empty() || d.len() > 2 || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0i32, |v, &b| v * 10 + (b - b'0') as i32))
    };
    match s {
        b"RTMIN" => Some(34),
        b"RTMAX" => Some(64),
        _ => match s.strip_prefix(b"RTMIN+") {
            Some(n) => num(n).map(|n| 34 + n).filter(|&v| v <= 64),
            None => num(s).filter(|&v| (1..=64).contains(&v)),
        },
    }
}

/// Async-signal-safe: the symbolic name of an errno value.
pub fn errno<const N: usize>(e: i32, out: &mut super::line::Buf<N>) {
    match usize::try_from(e).ok().and_then(|i| ERRNOS.get(i)) {
        Some(name) if e != 0 => out.s(name),
        _ => {
            out.s("E");
            out.int(e as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfork::line::Buf;

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
            signal(n, &mut b);
            // glibc's SIGRTMIN() is 34 (kernel 32 + its two reserved ones).
            if want.starts_with("SIGRTMIN") {
                assert_eq!(n, 37);
                assert_eq!(b.as_bytes(), b"SIGRTMIN+3");
            } else {
                assert_eq!(b.as_bytes(), want.as_bytes());
            }
        }
        assert_eq!(parse_signal(b"SIGPIPE"), Some(libc::SIGPIPE));
        assert_eq!(parse_signal(b"XFSZ"), Some(libc::SIGXFSZ));
        assert_eq!(parse_signal(b"13"), Some(13));
        assert_eq!(parse_signal(b"SIGRTMIN+2"), Some(36));
        assert_eq!(parse_signal(b"SIGNOPE"), None);
        assert_eq!(parse_signal(b"0"), None);
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
