//! Property tests of the pure parsers and the line writer (issue 7, hostile input):
//! any bytes in the environment, in `MAKEFLAGS`/`LISTEN_FDS`/`NGINX`, in fd names and
//! in strings written as JSON. None may panic; well-formed input must mean what the
//! docs say; every JSON string the writer makes must parse back to the input, read
//! as lossy UTF-8. Test-only; 10 000 cases per property (`PROPTEST_CASES` overrides).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::config::{self, Config, Mode};
use crate::policy::{self, FdRanges};
use crate::postfork::fds::parse_fd;
use crate::postfork::line::Buf;
use crate::postfork::names;
use proptest::collection::vec;
use proptest::prelude::*;

const CASES: u32 = 10_000;

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(CASES);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// A configuration in its pre-constructor state. `Config::new` is private to
/// `config`, and a struct literal here would break whenever a field is added.
fn blank() -> Box<Config> {
    // SAFETY: Config is plain data — integers, bools, fixed byte buffers, fd range
    // tables and `Mode`, whose discriminant 0 is `Off` — so all-zero bytes are a
    // valid value of every field.
    let mut c: Box<Config> = unsafe { Box::new_zeroed().assume_init() };
    c.block_interval_ms = 2000;
    c.pool_min = policy::POOL_MIN_DEFAULT;
    c
}

const NAMES: [&str; 16] = [
    "EXECGUARD_MODE",
    "EXECGUARD_LOG",
    "EXECGUARD_KEEP_FDS",
    "EXECGUARD_FOLLOW",
    "EXECGUARD_ORIGINS",
    "EXECGUARD_STARTUP",
    "EXECGUARD_BLOCK_INTERVAL",
    "EXECGUARD_POOL_MIN",
    "EXECGUARD_SHELLS",
    "EXECGUARD_AUDITED",
    "LISTEN_FDS",
    "LISTEN_PID",
    "MAKEFLAGS",
    "NGINX",
    "PATH",
    "EXECGUARD_",
];

/// Bytes biased towards what the parsers look at: digits, separators, dashes, '='.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"0123456789".to_vec()),
        2 => prop::sample::select(b",;:- =\t^".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        3 => vec(byte, 0..40),
        1 => vec(any::<u8>(), 0..700),
        1 => prop::sample::select(vec![
            b"log".to_vec(), b"fix".to_vec(), b"off".to_vec(), b"".to_vec(),
            b"--jobserver-auth=3,4".to_vec(), b"--jobserver-fds=2147483647,0".to_vec(),
            b"99999999999".to_vec(), b"-1".to_vec(), b"0-2147483647".to_vec(),
        ]),
    ]
}

/// One environment entry: a known name (or a near miss) `=` hostile value, or raw bytes.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::sample::select(NAMES.to_vec()), value()).prop_map(|(n, v)| {
            let mut e = n.as_bytes().to_vec();
            e.push(b'=');
            e.extend(v);
            e
        }),
        1 => vec(any::<u8>(), 0..80),
    ]
}

/// Well-formed fd numbers, some huge.
fn fd() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0..70_000i32, 1 => Just(i32::MAX), 1 => 0..i32::MAX]
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn parse_env_never_panics_and_keeps_its_promises(env in vec(entry(), 0..24), pid in any::<i32>(), secure in any::<bool>()) {
        let mut cfg = blank();
        let w = config::parse_env(env.iter().map(|e| e.as_slice()), pid, secure, &mut cfg, &mut config::Cold::new());
        prop_assert!(w.n <= w.bad.len());
        // The last EXECGUARD_MODE wins; unknown values fall back to log.
        let last = |name: &[u8]| env.iter().rev().find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix(b"=")));
        let want = match last(b"EXECGUARD_MODE") {
            Some(b"fix") => Mode::Fix,
            Some(b"off") => Mode::Off,
            _ => Mode::Log,
        };
        prop_assert_eq!(cfg.mode, want);
        // The log path: never under AT_SECURE; else the last value, NUL-terminated,
        // when it fits and has no NUL; never a torn or unterminated path.
        let path = cfg.log_path.as_bytes();
        if secure {
            prop_assert!(path.is_empty());
        } else {
            match last(b"EXECGUARD_LOG") {
                Some(v) if !v.is_empty() && v.len() < 511 && !v.contains(&0) => {
                    prop_assert_eq!(path.strip_suffix(b"\0"), Some(v));
                }
                _ => prop_assert!(path.is_empty()),
            }
        }
        prop_assert!((1000..=3_600_000).contains(&cfg.block_interval_ms));
        prop_assert!(cfg.pool_min >= 2);
        // fds 0-2 are never made "kept" by a parser that was not asked for them, and
        // a range never wraps: a keep-list holds only non-negative fds.
        prop_assert!(!cfg.keep.contains(-1) || cfg.keep.contains(i32::MAX));
        prop_assert!(!cfg.inherited_keep.contains(-1) || cfg.inherited_keep.contains(i32::MAX));
    }

    #[test]
    fn keep_list_round_trips(items in vec((fd(), 0..5i32), 0..32), spaces in any::<bool>()) {
        let mut text = Vec::new();
        for (i, (lo, span)) in items.iter().enumerate() {
            if i > 0 {
                text.extend_from_slice(if spaces { b" , " } else { b"," });
            }
            if *span == 0 {
                text.extend(lo.to_string().bytes());
            } else {
                let hi = lo.saturating_add(*span);
                text.extend(format!("{lo}-{hi}").bytes());
            }
        }
        let mut r = FdRanges::new();
        prop_assert!(policy::parse_fd_list(&text, &mut r), "{}", String::from_utf8_lossy(&text));
        for (lo, span) in &items {
            prop_assert!(r.contains(*lo));
            prop_assert!(r.contains(lo.saturating_add(*span)));
        }
        // Nothing else: an fd outside every range is not kept.
        let outside = (0..100_000).find(|fd| !items.iter().any(|(lo, s)| *lo <= *fd && *fd <= lo.saturating_add(*s)));
        if let Some(fd) = outside {
            prop_assert!(!r.contains(fd));
        }
    }

    #[test]
    fn keep_list_any_bytes(s in vec(any::<u8>(), 0..300), digits in vec(value(), 0..8)) {
        let mut r = FdRanges::new();
        let _ = policy::parse_fd_list(&s, &mut r);
        let joined = digits.join(&b","[..]);
        let _ = policy::parse_fd_list(&joined, &mut r);
        // Saturation (more than 32 ranges) only ever keeps more.
        prop_assert!(!r.contains(-5) || r.contains(i32::MAX));
    }

    #[test]
    fn makeflags(pre in vec(value(), 0..4), post in vec(value(), 0..4), r in fd(), w in fd(), old in any::<bool>()) {
        let mut s = pre.join(&b" "[..]);
        let flag = if old { "--jobserver-fds" } else { "--jobserver-auth" };
        s.extend(format!(" {flag}={r},{w} ").bytes());
        s.extend(post.join(&b" "[..]));
        let mut k = FdRanges::new();
        prop_assert!(policy::parse_makeflags(&s, &mut k) >= 2);
        prop_assert!(k.contains(r) && k.contains(w));
        let mut k = FdRanges::new();
        let _ = policy::parse_makeflags(&post.concat(), &mut k);
    }

    #[test]
    fn nginx(fds in vec(fd(), 0..20), seps in vec(prop::sample::select(vec![b';', b':', b',']), 20), noise in value()) {
        let mut s = Vec::new();
        for (fd, sep) in fds.iter().zip(seps.iter()) {
            s.extend(fd.to_string().bytes());
            s.push(*sep);
        }
        let mut k = FdRanges::new();
        prop_assert_eq!(policy::parse_nginx(&s, &mut k), fds.len());
        for fd in &fds {
            prop_assert!(k.contains(*fd));
        }
        let _ = policy::parse_nginx(&noise, &mut FdRanges::new());
    }

    #[test]
    fn listen_fds(n in 0..100_000i32, pid in 1..4_194_304i32, other in 1..4_194_304i32, a in value(), b in value()) {
        let mut k = FdRanges::new();
        let ok = policy::parse_listen(n.to_string().as_bytes(), pid.to_string().as_bytes(), pid, &mut k);
        prop_assert_eq!(ok, n > 0);
        if n > 0 {
            prop_assert!(k.contains(3) && k.contains(3 + n - 1) && !k.contains(3 + n) && !k.contains(2));
        }
        if other != pid {
            let mut k = FdRanges::new();
            prop_assert!(!policy::parse_listen(n.to_string().as_bytes(), other.to_string().as_bytes(), pid, &mut k));
            prop_assert!(k.is_empty());
        }
        let mut k = FdRanges::new();
        let _ = policy::parse_listen(&a, &b, pid, &mut k);
        // LISTEN_FDS=2147483647 must not wrap 3+n-1 into a negative fd.
        let mut k = FdRanges::new();
        prop_assert!(policy::parse_listen(b"2147483647", pid.to_string().as_bytes(), pid, &mut k));
        prop_assert!(k.contains(i32::MAX) && !k.contains(-1));
    }

    #[test]
    fn json_strings_parse_back(s in prop_oneof![vec(any::<u8>(), 0..1000), ".{0,200}".prop_map(String::into_bytes)]) {
        let mut b = Buf::<8192>::new();
        b.json_str(&s);
        prop_assert!(!b.overflowed());
        let text = std::str::from_utf8(b.as_bytes());
        prop_assert!(text.is_ok(), "not UTF-8");
        let back: String = serde_json::from_slice(b.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", text)))?;
        prop_assert_eq!(back, String::from_utf8_lossy(&s).into_owned());
        // No raw control byte can reach a JSON line (a newline would tear it).
        prop_assert!(b.as_bytes().iter().all(|&c| c >= 0x20 && c != 0x7f));
    }

    #[test]
    fn small_buffers_never_panic_or_tear(parts in vec(vec(any::<u8>(), 0..40), 0..12)) {
        let mut b = Buf::<64>::new();
        for p in &parts {
            let before = b.len();
            let was = b.overflowed();
            b.json_str(p);
            b.text(p);
            b.int(before as i64 - 1000);
            b.hex(p.len() as u64);
            prop_assert!(b.len() <= 64);
            prop_assert!(!was || b.overflowed(), "overflow is sticky until clear");
        }
        // Human text never carries a control byte either.
        let mut h = Buf::<4096>::new();
        for p in &parts {
            h.text(p);
        }
        prop_assert!(h.as_bytes().iter().all(|&c| c >= 0x20 && c != 0x7f));
    }

    #[test]
    fn names_of_any_number(n in any::<i32>()) {
        let mut b = Buf::<64>::new();
        names::signal(n, 34, &mut b);
        let s = std::str::from_utf8(b.as_bytes()).unwrap_or("");
        prop_assert!(s.starts_with("SIG") && s.len() > 3, "{s}");
        if (1..=64).contains(&n) {
            prop_assert!(!s[3..].starts_with('-'));
        }
        let mut b = Buf::<64>::new();
        names::errno(n, &mut b);
        let s = std::str::from_utf8(b.as_bytes()).unwrap_or("");
        prop_assert!(s.starts_with('E') && s.len() > 1, "{s}");
        if (1..=133).contains(&n) {
            prop_assert!(s[1..].bytes().next().is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        }
    }

    #[test]
    fn fd_names_and_shells(name in vec(any::<u8>(), 0..32), fdn in any::<u32>(), exe in vec(any::<u8>(), 0..64), extra in vec(any::<u8>(), 0..64)) {
        let _ = parse_fd(&name);
        let mut dirent = fdn.to_string().into_bytes();
        dirent.push(0);
        prop_assert_eq!(parse_fd(&dirent), i32::try_from(fdn).ok());
        let _ = policy::is_shell(&exe, &extra);
        let mut bash = exe.clone();
        bash.extend_from_slice(b"/bash");
        prop_assert!(policy::is_shell(&bash, &extra));
    }
}
