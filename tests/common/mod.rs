//! Shared by the integration tests: where the shim is, and how to compile a C program.
//! `cargo test` does not build a cdylib-only library, so the first caller builds it
//! (same profile, its own target dir, so the outer cargo's lock is never waited on).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of `libexecguard.so`: `$EXECGUARD_LIB` if set, else built on first use.
/// Inside `on_aarch64`, a path with ld.so's `$PLATFORM` in it, which each process
/// expands to its own architecture's copy (`shim_for_any_arch`).
pub fn shim() -> PathBuf {
    if AARCH64.with(|a| a.get()) {
        return shim_for_any_arch();
    }
    shim_native()
}

fn shim_native() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Some(p) = std::env::var_os("EXECGUARD_LIB") {
            return PathBuf::from(p);
        }
        let target = root().join("target").join("shim-for-tests");
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root()).args(["build", "--lib", "--quiet"]).env("CARGO_TARGET_DIR", &target);
        if release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build --lib");
        assert!(st.success(), "building libexecguard.so failed");
        target.join(if release { "release" } else { "debug" }).join("libexecguard.so")
    })
    .clone()
}

/// Compile `c-tests/<name>.c` once per test run into `target/c-tests/<name>` — or,
/// inside `on_musl`, with musl-gcc into `target/c-tests/musl/<name>`; inside
/// `on_aarch64`, for arm64 into `target/c-tests/aarch64/<name>`; inside
/// `on_glibc_new`/`on_glibc_old`, against that glibc into `target/c-tests/glibc-*`.
pub fn c_prog(name: &str) -> PathBuf {
    if MUSL.with(|m| m.get()) {
        return c_prog_musl(name);
    }
    if AARCH64.with(|a| a.get()) {
        return c_prog_with(name, AARCH64_CC, &[], "aarch64", &[], &[]);
    }
    if let Some(which) = other_glibc() {
        return c_prog_glibc(name, which);
    }
    c_prog_with(name, &cc_name(), &[], "", &[], &[])
}

fn cc_name() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Another Debian release's glibc than the machine's (2.36), unpacked under target/
/// by scripts/debian-glibc, for the C test programs of `on_glibc_new` and
/// `on_glibc_old`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OtherGlibc {
    /// Debian 13's 2.41: pidfd_spawn, today's posix_spawn, system and popen.
    New,
    /// Debian 11's 2.31: dlsym in libdl, libpthread apart, no
    /// `__libc_single_threaded`, no close_range/closefrom wrappers or close-from
    /// file action (Ubuntu 20.04 and RHEL 8-era images are of this age).
    Old,
}

impl OtherGlibc {
    fn suite(self) -> &'static str {
        match self {
            OtherGlibc::New => "trixie",
            OtherGlibc::Old => "bullseye",
        }
    }

    /// The packages unpacked: the runtime, and for the old one the headers and
    /// start files its programs are built with (--sysroot).
    fn packages(self) -> &'static [&'static str] {
        match self {
            OtherGlibc::New => &["libc6"],
            OtherGlibc::Old => &["libc6", "libc6-dev", "linux-libc-dev"],
        }
    }

    fn sub(self) -> &'static str {
        match self {
            OtherGlibc::New => "glibc-new",
            OtherGlibc::Old => "glibc-old",
        }
    }

    /// Is 2.`minor` what this environment is about?
    fn fits(self, minor: u32) -> bool {
        match self {
            OtherGlibc::New => minor >= 39,
            OtherGlibc::Old => minor < 34,
        }
    }
}

const GLIBC_LOADER: &str = "ld-linux-x86-64.so.2";

/// The directory holding `which`'s libc.so.6 and loader, fetched on first use
/// (scripts/test fetches both first); the test fails with the reason when it cannot
/// be had or is not of the age the environment is about.
pub fn other_glibc_dir(which: OtherGlibc) -> PathBuf {
    static DIRS: [OnceLock<Result<PathBuf, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let r = DIRS[which as usize].get_or_init(|| {
        let out = Command::new(root().join("scripts").join("debian-glibc"))
            .arg(which.suite())
            .args(which.packages())
            .output()
            .map_err(|e| format!("run scripts/debian-glibc: {e}"))?;
        if !out.status.success() {
            return Err(format!("scripts/debian-glibc {} failed: {}", which.suite(), String::from_utf8_lossy(&out.stderr)));
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // Its version, from its own libc (run as a program, glibc prints it first).
        let v = Command::new(dir.join(GLIBC_LOADER))
            .arg(dir.join("libc.so.6"))
            .output()
            .map_err(|e| format!("run {}'s glibc: {e}", which.suite()))?;
        let text = String::from_utf8_lossy(&v.stdout);
        let minor = text
            .split("version 2.")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u32>().ok());
        match minor {
            Some(m) if which.fits(m) => Ok(dir),
            _ => Err(format!("the glibc in {} is not what {which:?} is about: {}", dir.display(), text.lines().next().unwrap_or(""))),
        }
    });
    match r {
        Ok(d) => d.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// The compiler arguments that build a program for `which`: (before the source,
/// after it). Its loader is the interpreter and its directory the run path, so the
/// program runs on that glibc whatever the machine's. The new one: the machine's
/// headers, its `libc.so.6` named after the source so that symbols bind with its
/// versions (`pidfd_spawn@GLIBC_2.39`), and `-DHAVE_PIDFD_SPAWN` (the C declares
/// what the headers lack). The old one: its own headers and start files
/// (`--sysroot`; the machine's would ask for GLIBC_2.34 symbols), and
/// c-tests/old_glibc_compat.h for the GNU extensions it lacks.
fn other_glibc_args(which: OtherGlibc) -> (Vec<String>, Vec<String>) {
    let lib = other_glibc_dir(which);
    let loader = lib.join(GLIBC_LOADER);
    let mut pre = vec![format!("-Wl,--dynamic-linker={}", loader.display()), format!("-Wl,-rpath={}", lib.display())];
    match which {
        OtherGlibc::New => {
            pre.push("-DHAVE_PIDFD_SPAWN".into());
            (pre, vec![lib.join("libc.so.6").display().to_string(), loader.display().to_string()])
        }
        OtherGlibc::Old => {
            let sysroot = root().join("target").join(format!("glibc-{}", which.suite())).join("root");
            let dev = sysroot.join("usr").join("lib").join("x86_64-linux-gnu");
            let compat = root().join("c-tests").join("old_glibc_compat.h");
            pre.extend([
                format!("--sysroot={}", sysroot.display()),
                format!("-B{}/", dev.display()),
                format!("-L{}", dev.display()),
                format!("-L{}", lib.display()),
                "-include".into(),
                compat.display().to_string(),
            ]);
            (pre, vec![])
        }
    }
}

/// `c-tests/<name>.c` built for `which` (see `other_glibc_args`).
pub fn c_prog_glibc(name: &str, which: OtherGlibc) -> PathBuf {
    let (pre, post) = other_glibc_args(which);
    let pre: Vec<&str> = pre.iter().map(String::as_str).collect();
    let post: Vec<&str> = post.iter().map(String::as_str).collect();
    let c = root().join("c-tests");
    let headers = [c.join("old_glibc_compat.h"), c.join("gnu_ext_compat.h")];
    let headers: Vec<&Path> = if which == OtherGlibc::Old { headers.iter().map(PathBuf::as_path).collect() } else { vec![] };
    c_prog_with(name, &cc_name(), &pre, which.sub(), &headers, &post)
}

/// `c-tests/<name>.c` linked against musl (Debian's musl-gcc: dynamic, interpreter
/// /lib/ld-musl-x86_64.so.1, as in Alpine images), with c-tests/musl_compat.h for
/// the few GNU extensions the tests print with.
pub fn c_prog_musl(name: &str) -> PathBuf {
    let c = root().join("c-tests");
    let (compat, shared) = (c.join("musl_compat.h"), c.join("gnu_ext_compat.h"));
    c_prog_with(name, "musl-gcc", &["-include", compat.to_str().unwrap()], "musl", &[&compat, &shared], &[])
}

/// Build `c-tests/<name>.c` with `cc` into `target/c-tests/<sub>/<name>`, again
/// whenever the source or one of `headers` (force-included files) is newer than the
/// program. `libs` follow the source on the command line.
fn c_prog_with(name: &str, cc: &str, extra: &[&str], sub: &str, headers: &[&Path], libs: &[&str]) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = root().join("c-tests").join(format!("{name}.c"));
    let outdir = root().join("target").join("c-tests").join(sub);
    std::fs::create_dir_all(&outdir).unwrap();
    let out = outdir.join(name);
    if !fresh(&out, &src) || headers.iter().any(|h| !fresh(&out, h)) {
        let st = Command::new(cc)
            .args(["-O1", "-g", "-Wall", "-pthread"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .args(libs)
            .status()
            .unwrap_or_else(|e| panic!("run {cc}: {e}"));
        assert!(st.success(), "compiling {} with {cc} failed", src.display());
    }
    out
}

thread_local! {
    static MUSL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static AARCH64: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static OTHER_GLIBC: std::cell::Cell<Option<OtherGlibc>> = const { std::cell::Cell::new(None) };
    static SECCOMP: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Run a test body with every program this thread starts through `command`
/// (`run_mode` included) under c-tests/seccomp_deny.c's filter in `flavour`: the
/// newer system calls refused, for the program and every child it starts.
pub fn under_seccomp(flavour: &'static str, test: impl FnOnce()) {
    SECCOMP.with(|s| s.set(Some(flavour)));
    test();
    SECCOMP.with(|s| s.set(None));
}

/// Run a test body with every `c_prog` of this thread (each test has its own)
/// built against musl: the same scenario, the other libc.
pub fn on_musl(test: impl FnOnce()) {
    MUSL.with(|m| m.set(true));
    test();
    MUSL.with(|m| m.set(false));
}

/// Run a test body with every `c_prog` of this thread linked against and run on a
/// newer glibc than the machine's (`OtherGlibc::New`): Debian 13's 2.41 where the
/// machine has Debian 12's 2.36. The programs these start (`/bin/sh`, the probe's
/// `/bin/true`) keep the machine's: a tree with two glibcs in it, as a container
/// image on an older host, or a program shipped with its own runtime.
pub fn on_glibc_new(test: impl FnOnce()) {
    on_other_glibc(OtherGlibc::New, test);
}

/// The same on an older glibc (`OtherGlibc::Old`): Debian 11's 2.31.
pub fn on_glibc_old(test: impl FnOnce()) {
    on_other_glibc(OtherGlibc::Old, test);
}

fn on_other_glibc(which: OtherGlibc, test: impl FnOnce()) {
    other_glibc_dir(which);
    OTHER_GLIBC.with(|g| g.set(Some(which)));
    test();
    OTHER_GLIBC.with(|g| g.set(None));
}

/// The other glibc this thread's test runs its C programs on, if any.
pub fn other_glibc() -> Option<OtherGlibc> {
    OTHER_GLIBC.with(|g| g.get())
}

/// Whether this thread's C programs run on a libc that tells the shim cheaply that
/// a process has one thread (glibc ≥ 2.32's `__libc_single_threaded`, or its count
/// of threads, exported from 2.34): not musl, not the old glibc. Without it an exec
/// cannot vouch for the fds it hands over (`EXECGUARD_HELD`), and the new program
/// lists its own.
pub fn counts_threads_cheaply() -> bool {
    !is_musl() && !is_glibc_old()
}

/// This thread's test runs its C programs on the older glibc (`on_glibc_old`).
pub fn is_glibc_old() -> bool {
    other_glibc() == Some(OtherGlibc::Old)
}

/// The cross compiler of `on_aarch64` (Debian's gcc-aarch64-linux-gnu).
const AARCH64_CC: &str = "aarch64-linux-gnu-gcc";

/// Run a test body with every `c_prog` of this thread built for arm64 and run by
/// the kernel through qemu-user (binfmt_misc; the test command registers it), and
/// `shim()` naming both builds of the library: each process, arm64 or x86-64
/// (`/bin/sh`, `/bin/true`), loads its own architecture's copy. What differs on
/// aarch64 is the shim's own: its system call numbers (no `open`, `poll`, `dup2`,
/// `fork` there), the hooks written in assembly, the kernel structures it reads.
/// qemu-user runs a vfork as a fork, so no vfork child shares its parent's memory.
pub fn on_aarch64(test: impl FnOnce()) {
    aarch64_ready();
    AARCH64.with(|a| a.set(true));
    test();
    AARCH64.with(|a| a.set(false));
}

/// This thread's test runs its C programs built for arm64 (`on_aarch64`).
pub fn is_aarch64() -> bool {
    AARCH64.with(|a| a.get())
}

/// The machine runs arm64 programs, or the test says what is missing: the test
/// command installs qemu-user-static, registers it with binfmt_misc, and installs
/// the cross compiler and arm64's libc (Debian multiarch).
fn aarch64_ready() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let dir = root().join("target").join("c-tests").join("aarch64");
        std::fs::create_dir_all(&dir).unwrap();
        let src = "int main(void) { return 42; }\n";
        let prog = {
            let c = dir.join("ready.c");
            std::fs::write(&c, src).unwrap();
            let o = dir.join("ready");
            match Command::new(AARCH64_CC).arg("-o").arg(&o).arg(&c).status() {
                Ok(st) if st.success() => o,
                r => return Err(format!("{AARCH64_CC} cannot build an arm64 program ({r:?})")),
            }
        };
        match Command::new(&prog).status() {
            Ok(st) if st.code() == Some(42) => Ok(()),
            r => Err(format!(
                "this machine does not run arm64 programs ({r:?}): qemu-user-static registered with \
                 binfmt_misc and libc6:arm64 are installed by scripts/test"
            )),
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// A directory with `x86_64/libexecguard.so` (the native build) and
/// `aarch64/libexecguard.so` (cross-built once per run into target/shim-aarch64),
/// named through `$PLATFORM`, which ld.so expands per process.
fn shim_for_any_arch() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let native = shim_native();
        let target = root().join("target").join("shim-aarch64");
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root())
            .args(["build", "--lib", "--quiet", "--target", "aarch64-unknown-linux-gnu"])
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", AARCH64_CC)
            .env("CC_aarch64_unknown_linux_gnu", AARCH64_CC);
        if release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build --lib --target aarch64-unknown-linux-gnu");
        assert!(st.success(), "building the arm64 libexecguard.so failed (rustup target add aarch64-unknown-linux-gnu)");
        let built = target
            .join("aarch64-unknown-linux-gnu")
            .join(if release { "release" } else { "debug" })
            .join("libexecguard.so");
        let platforms = target.join("platforms");
        // glibc's ld.so names an x86-64 process's platform after the CPU: `haswell`
        // on an Intel CPU with AVX2 (and AVX-512F), `xeon_phi` with AVX-512ER,
        // `x86_64` on AMD and older Intel CPUs (sysdeps/x86/cpu-features.c).
        for (arch, lib) in [("x86_64", &native), ("haswell", &native), ("xeon_phi", &native), ("aarch64", &built)] {
            let d = platforms.join(arch);
            std::fs::create_dir_all(&d).unwrap();
            let link = d.join("libexecguard.so");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(lib, &link).unwrap();
        }
        let lib = platforms.join("$PLATFORM").join("libexecguard.so");
        // A platform name not linked above would leave every native program of these
        // tests without the shim (ld.so only warns): say so here.
        let out = Command::new("/bin/true").env("LD_PRELOAD", &lib).output().expect("run /bin/true");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("cannot be preloaded"), "ld.so expands $PLATFORM to a name not linked in {}: {err}", platforms.display());
        lib
    })
    .clone()
}

/// This thread's test runs its C programs built against musl (`on_musl`).
pub fn is_musl() -> bool {
    MUSL.with(|m| m.get())
}

/// Every scenario named, again in the other environments of issue 12: programs
/// linked against musl (`musl::NAME`), against a newer and an older glibc than the
/// machine's (`glibc_new::NAME`, `glibc_old::NAME`, see `on_glibc_new`), and under c-tests/seccomp_deny.c in both
/// flavours (`seccomp_enosys::NAME`, `seccomp_eperm::NAME`). The scenarios are the
/// calling file's own test functions, run unchanged. The sectioned form also runs
/// them on arm64 (`aarch64::NAME`, see `on_aarch64_too`): `everywhere` in all four,
/// `not_on_aarch64` in the first three (the invocation says why), `only_on_aarch64`
/// in the last.
#[allow(unused_macros)]
macro_rules! in_other_environments {
    (
        everywhere: [$($e:ident),* $(,)?],
        not_on_aarch64: [$($n:ident),* $(,)?],
        only_on_aarch64: [$($o:ident),* $(,)?] $(,)?
    ) => {
        mod musl {
            $( #[test] fn $e() { crate::common::on_musl(super::$e) } )*
            $( #[test] fn $n() { crate::common::on_musl(super::$n) } )*
        }
        mod glibc_new {
            $( #[test] fn $e() { crate::common::on_glibc_new(super::$e) } )*
            $( #[test] fn $n() { crate::common::on_glibc_new(super::$n) } )*
        }
        mod glibc_old {
            $( #[test] fn $e() { crate::common::on_glibc_old(super::$e) } )*
            $( #[test] fn $n() { crate::common::on_glibc_old(super::$n) } )*
        }
        mod seccomp_enosys {
            $( #[test] fn $e() { crate::common::under_seccomp("enosys", super::$e) } )*
            $( #[test] fn $n() { crate::common::under_seccomp("enosys", super::$n) } )*
        }
        mod seccomp_eperm {
            $( #[test] fn $e() { crate::common::under_seccomp("eperm", super::$e) } )*
            $( #[test] fn $n() { crate::common::under_seccomp("eperm", super::$n) } )*
        }
        on_aarch64_too!($($e,)* $($o,)*);
    };
    ($($t:ident),* $(,)?) => {
        in_other_environments!(everywhere: [], not_on_aarch64: [$($t),*], only_on_aarch64: []);
    };
}

/// Every scenario named, again built for arm64 with the arm64 shim, under qemu-user
/// (`aarch64::NAME`; see `on_aarch64`). A scenario that qemu-user itself fails
/// without the shim, or whose check reads what qemu changes (a probe's
/// /proc/self/status shows qemu's own signal handlers; /proc/PID/exe of an emulated
/// parent is qemu), is left out where it is listed, with the reason.
#[allow(unused_macros)]
macro_rules! on_aarch64_too {
    ($($t:ident),* $(,)?) => {
        mod aarch64 {
            $( #[test] fn $t() { crate::common::on_aarch64(super::$t) } )*
        }
    };
}

/// The seccomp flavour this thread's test runs under, if any.
pub fn seccomp_flavour() -> Option<&'static str> {
    SECCOMP.with(|s| s.get())
}

/// A command for `prog`: itself, or inside `under_seccomp` the filter harness in
/// front of it (built static, so that no preload enters the harness itself; it
/// execs `prog` in place, so the pid a test sees is the program's).
pub fn command(prog: &Path) -> Command {
    match seccomp_flavour() {
        None => Command::new(prog),
        Some(flavour) => {
            let mut c = Command::new(c_prog_static("seccomp_deny"));
            c.arg(flavour).arg(prog);
            c
        }
    }
}

fn fresh(out: &Path, src: &Path) -> bool {
    match (out.metadata().and_then(|m| m.modified()), src.metadata().and_then(|m| m.modified())) {
        (Ok(o), Ok(s)) => o >= s,
        _ => false,
    }
}

/// A fresh temporary directory under target/ (removed by the caller if it cares).
pub fn tmpdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = root().join("target").join("test-tmp").join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Read a JSON Lines log; every line must parse.
pub fn events(log: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
        .collect()
}

/// How many times the findings of these lines happened: Σ(1 + repeats) (an
/// identical finding is written once, then counted: DESIGN.md, "One finding, one line").
pub fn occurrences<'a>(lines: impl IntoIterator<Item = &'a serde_json::Value>) -> u64 {
    lines.into_iter().map(|e| 1 + e["repeats"].as_u64().unwrap_or(0)).sum()
}

/// The events named `name`.
pub fn named<'a>(evs: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    evs.iter().filter(|e| e["event"] == name).collect()
}

// ---------------------------------------------------------------------------
// Running a C program three ways (no shim / log / fix), bounded in time.

/// How a program is run: without the shim, or preloaded in one of its modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    NoShim,
    Log,
    Fix,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::NoShim, Mode::Log, Mode::Fix];

    pub fn name(self) -> &'static str {
        match self {
            Mode::NoShim => "noshim",
            Mode::Log => "log",
            Mode::Fix => "fix",
        }
    }

    /// The `action` an event carries in this mode.
    pub fn action(self) -> &'static str {
        if self == Mode::Fix {
            "fixed"
        } else {
            "logged"
        }
    }
}

/// One finished run: its output, its pid, and where its log is.
pub struct Run {
    pub mode: Mode,
    pub pid: u32,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub log: PathBuf,
    pub dir: PathBuf,
}

impl Run {
    /// Every event of the run's log (empty without the shim).
    pub fn events(&self) -> Vec<serde_json::Value> {
        events(&self.log)
    }

    /// The value of `key=` on the first stdout line that starts with it.
    pub fn field(&self, key: &str) -> String {
        let pre = format!("{key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(pre.as_str()))
            .unwrap_or_else(|| panic!("[{}] no `{key}=` line in stdout:\n{}", self.mode.name(), self.stdout))
            .to_string()
    }

    /// The first stdout line that is a JSON object (the probe's), from its `{`.
    pub fn field_line_json(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.find('{').map(|i| l[i..].to_string()))
            .unwrap_or_else(|| panic!("[{}] no JSON line in stdout:\n{}", self.mode.name(), self.stdout))
    }

    /// `context()` with long outputs cut (a probe line can list 19 000 fds).
    pub fn context_short(&self) -> String {
        let c = self.context();
        if c.len() <= 6000 {
            return c;
        }
        let head: String = c.chars().take(3000).collect();
        let tail: String = c.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{head}\n[... {} bytes cut ...]\n{tail}", c.len() - 5000)
    }

    pub fn context(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "mode {} pid {} status {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- log\n{}",
            self.mode.name(),
            self.pid,
            self.status,
            self.stdout,
            self.stderr,
            log
        )
    }
}

/// Run `prog args` in `mode`, with `env` added (an empty value unsets), its own process group, stdout and
/// stderr captured through files; killed (with its whole group) after `timeout`.
pub fn run_mode(mode: Mode, prog: &Path, args: &[&str], env: &[(&str, &str)], timeout: std::time::Duration) -> Run {
    run_mode_with(mode, prog, args, env, timeout, false)
}

/// As `run_mode`; with `quiet_stderr` the program's stderr goes to /dev/null (for
/// programs that chatter by design).
pub fn run_mode_with(
    mode: Mode,
    prog: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: std::time::Duration,
    quiet_stderr: bool,
) -> Run {
    use std::os::unix::process::CommandExt;
    let tag = format!("{}-{}", prog.file_name().unwrap().to_string_lossy(), mode.name());
    let dir = tmpdir(&tag);
    let log = dir.join("log.jsonl");
    let out = std::fs::File::create(dir.join("stdout")).unwrap();
    let err = if quiet_stderr {
        std::fs::File::create("/dev/null").unwrap()
    } else {
        std::fs::File::create(dir.join("stderr")).unwrap()
    };
    let mut cmd = command(prog);
    cmd.args(args).stdin(std::process::Stdio::null()).stdout(out).stderr(err).process_group(0);
    for v in ["LD_PRELOAD", "EXECGUARD_MODE", "EXECGUARD_LOG", "EXECGUARD_KEEP_FDS", "EXECGUARD_FOLLOW"] {
        cmd.env_remove(v);
    }
    if mode != Mode::NoShim {
        cmd.env("LD_PRELOAD", shim()).env("EXECGUARD_MODE", mode.name()).env("EXECGUARD_LOG", &log);
    }
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k); // an empty value means "unset", e.g. EXECGUARD_LOG
        } else {
            cmd.env(k, v);
        }
    }
    isolate(&mut cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", prog.display()));
    let pid = child.id();
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this test created (pgid == pid).
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            let _ = child.wait();
            let so = read_lossy(&dir.join("stdout"));
            let se = read_lossy(&dir.join("stderr"));
            panic!(
                "[{}] {} {args:?} did not finish within {timeout:?} (hang/deadlock); killed.\n--- stdout\n{so}\n--- stderr (tail)\n{}",
                mode.name(),
                prog.display(),
                se.get(se.len().saturating_sub(2000)..).unwrap_or(&se)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Whatever the group left behind (a hung grandchild) goes too.
    // SAFETY: as above; ESRCH when the group is already empty.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    Run {
        mode,
        pid,
        status,
        stdout: read_lossy(&dir.join("stdout")),
        stderr: read_lossy(&dir.join("stderr")),
        log,
        dir,
    }
}

/// The child starts as from a clean terminal: whatever the harness itself inherited
/// (cargo's, the CI runner's fds) goes at exec, ignored signals are reset and the
/// mask is emptied (a CI step run as a background job of a shell without job control
/// starts with SIGINT and SIGQUIT ignored: the tests' programs would each report it).
pub fn isolate(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: one raw syscall, async-signal-safe. Whatever the harness itself
    // inherited (cargo's, the CI runner's fds) is not part of any test: it goes at exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32 /* CLOSE_RANGE_CLOEXEC */);
            // Same for ignored signals: a test binary started by posix_spawn (cargo
            // does) has glibc's internal 32 and 33 at SIG_IGN, which survive exec.
            // glibc's sigaction refuses those numbers, so the kernel call is raw.
            let dfl = [0usize; 4]; // struct kernel_sigaction { SIG_DFL, flags 0, .. }
            for sig in 1..=64usize {
                let mut old = [0usize; 4];
                libc::syscall(libc::SYS_rt_sigaction, sig, std::ptr::null::<usize>(), old.as_mut_ptr(), 8usize);
                if old[0] == 1 {
                    // SIG_IGN
                    libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null_mut::<usize>(), 8usize);
                }
            }
            let empty = 0u64;
            libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &empty as *const u64, std::ptr::null_mut::<u64>(), 8usize);
            Ok(())
        })
    };
}

impl Drop for Run {
    /// A passing test leaves nothing behind; a failing one keeps its files to look at.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A file's text, with invalid UTF-8 (a hostile file name) replaced.
pub fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

/// The raw lines of a log (for the 4096-byte line limit).
pub fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

/// The fields every event has (docs/events.md), checked against what the test knows.
pub fn check_common(ev: &serde_json::Value, mode: Mode, severity: &str, action: &str) {
    let ctx = || format!("event {ev}");
    assert_eq!(ev["v"], 1, "{}", ctx());
    let ts = ev["ts"].as_f64().unwrap_or_else(|| panic!("ts not a number: {}", ctx()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(ts > now - 600.0 && ts <= now + 1.0, "ts {ts} not near now {now}: {}", ctx());
    assert_eq!(ev["severity"], severity, "{}", ctx());
    assert_eq!(ev["action"], action, "{}", ctx());
    assert_eq!(ev["mode"], mode.name(), "{}", ctx());
    for k in ["pid", "ppid", "tid"] {
        assert!(ev[k].as_u64().is_some_and(|v| v > 0), "{k} missing: {}", ctx());
    }
    assert!(ev["exe"].as_str().is_some_and(|s| s.starts_with('/')), "exe missing: {}", ctx());
}

/// A signal name as events.md wants it: `SIGALRM`, `SIGRTMIN+3`, never a number.
pub fn is_signal_name(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("SIG") else { return false };
    let (base, off) = rest.split_once('+').unwrap_or((rest, "0"));
    base.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && base.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !off.is_empty()
        && off.bytes().all(|b| b.is_ascii_digit())
}

/// The strings of a JSON array field.
pub fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or_else(|| panic!("not a string: {x}")).to_string())
        .collect()
}

/// The canonical path of a file (what `/proc/self/exe` shows).
pub fn canon(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().to_string_lossy().into_owned()
}

/// Compile `c-tests/<name>.c` with `-static` into `target/c-tests/<name>-static`: a
/// parent that no `LD_PRELOAD` can enter.
pub fn c_prog_static(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = root().join("c-tests").join(format!("{name}.c"));
    let (sub, cc) = if is_aarch64() { ("aarch64", AARCH64_CC.into()) } else { ("", std::env::var("CC").unwrap_or_else(|_| "cc".into())) };
    let outdir = root().join("target").join("c-tests").join(sub);
    std::fs::create_dir_all(&outdir).unwrap();
    let out = outdir.join(format!("{name}-static"));
    if !fresh(&out, &src) {
        let st = Command::new(cc)
            .args(["-static", "-O1", "-g", "-w", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run cc");
        assert!(st.success(), "compiling {} with -static failed", src.display());
    }
    out
}

/// Compiles C source `src` with `args` into `dir/name`, for the thread's environment
/// (`on_musl`, `on_aarch64`) as `c_prog` does.
pub fn cc(dir: &Path, name: &str, src: &str, args: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let o = dir.join(name);
    // As c_prog: built for the thread's environment (musl, arm64, another glibc), or
    // natively.
    let compiler = if is_musl() {
        "musl-gcc".to_string()
    } else if is_aarch64() {
        AARCH64_CC.to_string()
    } else {
        cc_name()
    };
    let mut cmd = Command::new(compiler);
    let (pre, post) = other_glibc().map(other_glibc_args).unwrap_or_default();
    cmd.args(pre).args(args).arg("-o").arg(&o).arg(&c).args(post);
    let st = cmd.status().expect("run cc");
    assert!(st.success(), "cc {name} failed");
    o
}
