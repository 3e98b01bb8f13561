//! What an fd is (kind) and a short human detail (address or path), from syscalls
//! only: fstat, getsockopt, getsockname/getpeername, readlink of /proc/self/fd/N.
//! Small room.

use super::line::Buf;
use super::sys;
use libc::c_int;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    TcpListen,
    Tcp,
    Udp,
    UnixListen,
    Unix,
    Pipe,
    File,
    Epoll,
    Eventfd,
    Timerfd,
    Signalfd,
    Inotify,
    Other,
}

pub const KINDS: [Kind; 13] = [
    Kind::TcpListen,
    Kind::Tcp,
    Kind::Udp,
    Kind::UnixListen,
    Kind::Unix,
    Kind::Pipe,
    Kind::File,
    Kind::Epoll,
    Kind::Eventfd,
    Kind::Timerfd,
    Kind::Signalfd,
    Kind::Inotify,
    Kind::Other,
];

impl Kind {
    /// The schema name (DESIGN.md); timerfd, signalfd and inotify are `other` there,
    /// with the kernel's name in the detail.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TcpListen => "tcp_listen",
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
            Kind::UnixListen => "unix_listen",
            Kind::Unix => "unix",
            Kind::Pipe => "pipe",
            Kind::File => "file",
            Kind::Epoll => "epoll",
            Kind::Eventfd => "eventfd",
            Kind::Timerfd | Kind::Signalfd | Kind::Inotify | Kind::Other => "other",
        }
    }

    /// Async-signal-safe: the JSON between an fd item's number and its detail,
    /// `,"kind":"NAME","detail":` in one piece (one copy per listed fd where there
    /// were three).
    pub fn json_between(self) -> &'static str {
        match self {
            Kind::TcpListen => ",\"kind\":\"tcp_listen\",\"detail\":",
            Kind::Tcp => ",\"kind\":\"tcp\",\"detail\":",
            Kind::Udp => ",\"kind\":\"udp\",\"detail\":",
            Kind::UnixListen => ",\"kind\":\"unix_listen\",\"detail\":",
            Kind::Unix => ",\"kind\":\"unix\",\"detail\":",
            Kind::Pipe => ",\"kind\":\"pipe\",\"detail\":",
            Kind::File => ",\"kind\":\"file\",\"detail\":",
            Kind::Epoll => ",\"kind\":\"epoll\",\"detail\":",
            Kind::Eventfd => ",\"kind\":\"eventfd\",\"detail\":",
            Kind::Timerfd | Kind::Signalfd | Kind::Inotify | Kind::Other => ",\"kind\":\"other\",\"detail\":",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn is_listener(self) -> bool {
        matches!(self, Kind::TcpListen | Kind::UnixListen)
    }

}

pub type Detail = Buf<160>;

/// How much to find out about an fd. A path costs a readlink of /proc/self/fd/N,
/// about 7 µs on these machines — more than everything else per fd together — so
/// events ask for paths only for the first few fds they list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The kind only.
    Kind,
    /// Kind and the details that cost no readlink: socket addresses, `pipe:[inode]`.
    Cheap,
    /// Everything, paths included.
    Full,
}

pub struct FdInfo {
    pub fd: c_int,
    pub kind: Kind,
    pub detail: Detail,
    /// Return address of the call that made it (EXECGUARD_ORIGINS), or 0.
    pub origin: usize,
    /// A readlink was spent on it.
    pub linked: bool,
}

impl FdInfo {
    /// Async-signal-safe: nothing known yet.
    #[inline]
    pub const fn new() -> FdInfo {
        FdInfo { fd: -1, kind: Kind::Other, detail: Detail::new(), origin: 0, linked: false }
    }
}

/// Async-signal-safe: kind only (fewer syscalls), for counting.
pub fn kind(fd: c_int) -> Kind {
    classify_with(fd, Want::Kind).kind
}

/// Async-signal-safe: kind and detail, paths included.
pub fn classify(fd: c_int) -> FdInfo {
    classify_with(fd, Want::Full)
}

/// Async-signal-safe.
pub fn classify_with(fd: c_int, want: Want) -> FdInfo {
    let mut info = FdInfo { fd, kind: Kind::Other, detail: Detail::new(), origin: 0, linked: false };
    info.kind = classify_into(fd, &mut info, want);
    if want != Want::Kind {
        info.origin = crate::hooks::origins::of(fd);
    }
    info
}

const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;

/// Async-signal-safe: an fd on the anonymous-inode file system (eventfd, epoll,
/// timerfd, signalfd, inotify…): one fstatfs, no readlink.
fn on_anon_fs(fd: c_int) -> bool {
    // SAFETY: an all-zero statfs is a valid value; the kernel fills it.
    let mut fs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-pointer.
    let r = unsafe { crate::postfork::sys::syscall!(libc::SYS_fstatfs, fd, &mut fs as *mut libc::statfs) };
    r == 0 && fs.f_type as i64 == ANON_INODE_FS_MAGIC
}

fn classify_into(fd: c_int, info: &mut FdInfo, want: Want) -> Kind {
    match sys::fstat(fd) {
        Ok(st) => classify_known(fd, st.st_mode, st.st_ino, info, want),
        Err(_) => Kind::Other,
    }
}

/// Async-signal-safe: the kind of an fd whose fstat the caller already made (the
/// exec audit's identity pass). The types that need no further call are answered
/// here, inline: a first report counts the kinds of every leaked fd it does not list.
#[inline]
pub fn kind_of_stat(fd: c_int, mode: u32, ino: u64) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFDIR | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFLNK => Kind::File,
        _ => {
            let mut info = FdInfo::new();
            classify_known(fd, mode, ino, &mut info, Want::Kind)
        }
    }
}

/// Async-signal-safe: `classify_stat` into the caller's `info` (whatever it held
/// before). A line's listed fds reuse one: an FdInfo returned by value is a call
/// to libc's memcpy per fd, and in a fork child a page of libc's text.
#[inline]
pub fn classify_stat_into(info: &mut FdInfo, fd: c_int, mode: u32, ino: u64, want: Want) {
    info.fd = fd;
    info.detail.clear();
    info.origin = 0;
    info.linked = false;
    // Devices, directories and links without a path wanted: a file, no call.
    info.kind = match mode & libc::S_IFMT {
        libc::S_IFDIR | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFLNK if want != Want::Full => Kind::File,
        _ => classify_known(fd, mode, ino, info, want),
    };
    if want != Want::Kind {
        info.origin = crate::hooks::origins::of(fd);
    }
}

#[link_section = ".text.report.execguard"]
fn classify_known(fd: c_int, mode: u32, ino: u64, info: &mut FdInfo, want: Want) -> Kind {
    let ty = mode & libc::S_IFMT;
    match ty {
        libc::S_IFSOCK => socket(fd, &mut info.detail, want != Want::Kind, ino),
        libc::S_IFIFO => {
            match want {
                Want::Kind => {}
                // Exactly what readlink says for a pipe, without its cost (a /proc
                // entry built for the fd, some 7 µs).
                Want::Cheap | Want::Full => {
                    info.detail.s("pipe:[");
                    info.detail.uint(ino);
                    info.detail.byte(b']');
                }
            }
            Kind::Pipe
        }
        // eventfd/epoll/timerfd/signalfd/inotify live on the anonymous inode, which
        // reports no file type on most kernels and a regular one on some; which of
        // them it is, only the link text says.
        libc::S_IFREG | 0 if ty == 0 || on_anon_fs(fd) => {
            link(fd, &mut info.detail);
            info.linked = true;
            let k = anon_kind(info.detail.as_bytes());
            if want == Want::Kind {
                info.detail.clear();
            }
            k
        }
        _ => {
            if want == Want::Full {
                link(fd, &mut info.detail);
                info.linked = true;
            }
            if matches!(ty, libc::S_IFREG | libc::S_IFDIR | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFLNK) {
                Kind::File
            } else {
                Kind::Other
            }
        }
    }
}

/// Which anon-inode fd a link text names.
fn anon_kind(text: &[u8]) -> Kind {
    if !text.starts_with(b"anon_inode:") {
        Kind::Other
    } else if text.ends_with(b"[eventpoll]") {
        Kind::Epoll
    } else if text.ends_with(b"[eventfd]") {
        Kind::Eventfd
    } else if text.ends_with(b"[timerfd]") {
        Kind::Timerfd
    } else if text.ends_with(b"[signalfd]") {
        Kind::Signalfd
    } else if text.ends_with(b"inotify") {
        Kind::Inotify
    } else {
        Kind::Other
    }
}

/// Async-signal-safe: readlink("/proc/self/fd/N") into `out`. Out of line: its
/// buffers are not in the frame of every fd a report classifies.
#[inline(never)]
#[link_section = ".text.report.execguard"]
pub fn link<const N: usize>(fd: c_int, out: &mut Buf<N>) {
    let mut path = Buf::<40>::new();
    path.s("/proc/self/fd/");
    path.int(fd as i64);
    path.byte(0);
    let mut tmp = [0u8; 160];
    if let Ok(n) = sys::readlink(path.as_bytes(), &mut tmp) {
        out.text(tmp.get(..n).unwrap_or(&[]));
    }
}

#[inline(never)]
fn socket(fd: c_int, detail: &mut Detail, want_detail: bool, ino: u64) -> Kind {
    let domain = sys::sockopt_int(fd, libc::SO_DOMAIN).unwrap_or(-1);
    let ty = sys::sockopt_int(fd, libc::SO_TYPE).unwrap_or(-1);
    let listening = || sys::sockopt_int(fd, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let kind = match (domain, ty) {
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => {
            if listening() {
                Kind::TcpListen
            } else {
                Kind::Tcp
            }
        }
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => Kind::Udp,
        (libc::AF_UNIX, _) => {
            if ty != libc::SOCK_DGRAM && listening() {
                Kind::UnixListen
            } else {
                Kind::Unix
            }
        }
        _ => Kind::Other,
    };
    if !want_detail {
        return kind;
    }
    match kind {
        Kind::Other => {
            detail.s("socket:");
            detail.s(match domain {
                libc::AF_NETLINK => "AF_NETLINK",
                libc::AF_PACKET => "AF_PACKET",
                libc::AF_INET | libc::AF_INET6 => "AF_INET",
                _ => "AF_?",
            });
        }
        _ => {
            let local = sys::sockaddr(fd, false);
            if let Ok((ss, len)) = local {
                addr(&ss, len, detail);
            }
            if matches!(kind, Kind::Tcp | Kind::Unix) {
                if let Ok((ss, len)) = sys::sockaddr(fd, true) {
                    detail.s("->");
                    addr(&ss, len, detail);
                }
            }
            if detail.len() == 0 {
                // Unnamed (socketpair, unbound): the kernel's name, without a readlink.
                detail.s("socket:[");
                detail.uint(ino);
                detail.byte(b']');
            }
        }
    }
    kind
}

/// Async-signal-safe: `1.2.3.4:80`, `[::1]:80`, a unix path, `@abstract`.
pub fn addr<const N: usize>(ss: &libc::sockaddr_storage, len: usize, out: &mut Buf<N>) {
    match ss.ss_family as c_int {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in, which fits in the storage.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = sin.sin_addr.s_addr.to_ne_bytes();
            for (i, b) in ip.iter().enumerate() {
                if i > 0 {
                    out.byte(b'.');
                }
                out.uint(*b as u64);
            }
            out.byte(b':');
            out.uint(u16::from_be(sin.sin_port) as u64);
        }
        libc::AF_INET6 => {
            // SAFETY: as above, sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            let ip = core::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            out.byte(b'[');
            // core::fmt into a stack buffer: no allocation, no lock.
            let _ = core::fmt::write(out, format_args!("{ip}"));
            out.s("]:");
            out.uint(u16::from_be(sin6.sin6_port) as u64);
        }
        libc::AF_UNIX => {
            // SAFETY: as above, sockaddr_un.
            let sun = unsafe { &*(ss as *const _ as *const libc::sockaddr_un) };
            let off = core::mem::size_of::<libc::sa_family_t>();
            let plen = len.saturating_sub(off).min(sun.sun_path.len());
            // SAFETY: sun_path is plen bytes of c_char, reinterpret as u8.
            let path = unsafe { core::slice::from_raw_parts(sun.sun_path.as_ptr().cast::<u8>(), plen) };
            match path.first() {
                None => {}
                Some(0) => {
                    out.byte(b'@');
                    out.text(path.get(1..).unwrap_or(&[]));
                }
                Some(_) => {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    out.text(path.get(..end).unwrap_or(&[]));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn json_between_names_the_kind() {
        for k in KINDS {
            assert_eq!(k.json_between(), format!(",\"kind\":\"{}\",\"detail\":", k.name()));
        }
    }

    fn sock(domain: c_int, ty: c_int) -> c_int {
        // SAFETY: plain socket(2).
        unsafe { libc::socket(domain, ty, 0) }
    }

    #[test]
    fn kinds_and_details() {
        let l = sock(libc::AF_INET, libc::SOCK_STREAM);
        let mut sin: libc::sockaddr_in = unsafe { core::mem::zeroed() };
        sin.sin_family = libc::AF_INET as _;
        sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        unsafe {
            assert_eq!(libc::bind(l, &sin as *const _ as *const libc::sockaddr, core::mem::size_of_val(&sin) as _), 0);
            assert_eq!(libc::listen(l, 1), 0);
        }
        let i = classify(l);
        assert_eq!(i.kind, Kind::TcpListen);
        let d = core::str::from_utf8(i.detail.as_bytes()).unwrap();
        assert!(d.starts_with("127.0.0.1:") && d.len() > 10, "{d}");

        let u = sock(libc::AF_INET6, libc::SOCK_DGRAM);
        assert_eq!(classify(u).kind, Kind::Udp);
        assert_eq!(kind(u), Kind::Udp);

        let mut p = [0; 2];
        unsafe { libc::pipe(p.as_mut_ptr()) };
        let pi = classify(p[0]);
        assert_eq!(pi.kind, Kind::Pipe);
        assert!(pi.detail.as_bytes().starts_with(b"pipe:["));

        let e = unsafe { libc::epoll_create1(0) };
        assert_eq!(classify(e).kind, Kind::Epoll);
        let ev = unsafe { libc::eventfd(0, 0) };
        assert_eq!(classify(ev).kind, Kind::Eventfd);
        let f = sys::open(b"/etc/hostname\0", libc::O_RDONLY, 0).or_else(|_| sys::open(b"/etc/passwd\0", libc::O_RDONLY, 0)).unwrap();
        let fi = classify(f);
        assert_eq!(fi.kind, Kind::File);
        assert!(fi.detail.as_bytes().starts_with(b"/etc/"));
        for fd in [l, u, p[0], p[1], e, ev, f] {
            sys::close(fd);
        }
    }
}
