//! The text a start maps (docs/design.md, "the three text blocks"): everyday programs
//! run, from the shim's text, only code that lies in the block the constructor's own
//! page fault maps. Each further 64 KiB fault-around window of the shim's text that a
//! start runs code in is one more page fault and 5–10 µs of every process start
//! (docs/performance.md), and nothing else shows it: a hook body or a helper that
//! drifts out of `.text.startup`/`.text.hot`/`.text.warm` still works.
//!
//! The measure is the resident size of the shim's text mapping in the process, read
//! from `/proc/PID/smaps` at the end of its start: the pages its faults mapped. The
//! library (about 300 KiB) lands wherever the kernel puts it, on any page: a
//! fault-around window is the 64 KiB-aligned stretch of addresses around the fault,
//! cut at the mapping's start. The constructor's own fault, at the start of the
//! text, maps the 64 KiB from there; a fork child's first fault (on the fork hook's
//! return) maps the aligned window around it. Code that all lies in the first 64
//! KiB of the text therefore maps nothing past the aligned window that holds the
//! block's end (`block_bound_kb`); code further on maps its own window past it.
//! Each case is also held against a reference program run the same way (the
//! constructor alone, a fork child that calls nothing), without address
//! randomisation, so that a case and a reference of the same program see the same
//! placement: a loaded machine drops pages of the library from the page cache, and
//! the page cache may hold the file in large folios, which a fault maps whole —
//! both show in the reference as in the case (a CI run mapped 128 to 184 kB where
//! the windows alone hold 64 to 80).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints the resident kB of the shim's text mapping in this process, reading its
/// own smaps with raw system calls (no hooked call before the read).
const SELF_RSS: &str = r#"
#define _GNU_SOURCE
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
static char buf[1 << 20];
int main(void) {
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 2;
    size_t n = 0;
    for (;;) {
        long r = syscall(SYS_read, fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    syscall(SYS_write, 1, buf, n);
    return 0;
}
"#;

/// kB resident in the r-xp mapping of `lib` in an smaps text, with the mapping's
/// start and end addresses.
fn text_rss_kb(smaps: &str, lib: &str) -> Option<(u64, u64, u64, u64)> {
    let mut lines = smaps.lines();
    while let Some(l) = lines.next() {
        if l.contains(" r-xp ") && l.ends_with(lib) {
            let mut fields = l.split_whitespace();
            let (lo, hi) = fields.next()?.split_once('-')?;
            let (lo, hi) = (u64::from_str_radix(lo, 16).ok()?, u64::from_str_radix(hi, 16).ok()?);
            let offset = u64::from_str_radix(fields.nth(1)?, 16).ok()?;
            for l in lines.by_ref() {
                if let Some(v) = l.strip_prefix("Rss:") {
                    return Some((v.trim().trim_end_matches("kB").trim().parse().ok()?, lo, hi, offset));
                }
            }
        }
    }
    None
}

/// The most a process whose shim code all lies in the start blocks (the first 64 KiB
/// of the text) can have resident of the text mapping `lo..hi` (file offset
/// `offset`): the pages from its start to the end of the 64 KiB-aligned window that
/// holds the blocks' end, or of the 128 KiB folio of the file that holds it (a page
/// the kernel dropped and reads again may come back in a large folio, which a fault
/// maps whole: folios are aligned in the file, windows in memory).
fn block_bound_kb(lo: u64, hi: u64, offset: u64) -> u64 {
    const WINDOW: u64 = 64 << 10;
    const FOLIO: u64 = 128 << 10;
    let window_end = (lo + WINDOW).next_multiple_of(WINDOW);
    let folio_end = lo + ((offset + WINDOW).next_multiple_of(FOLIO) - offset);
    (window_end.max(folio_end).min(hi) - lo) >> 10
}

/// Runs `case` until it maps no more than the start blocks' windows allow or than
/// its reference maps (run again each time, the largest kept): at most three more
/// times, and the run that mapped least is the answer. On a loaded machine a page
/// of the library dropped from the page cache between two faults maps a window of
/// its own when faulted again.
fn settle(mut case: impl FnMut() -> (u64, u64, String), mut reference: impl FnMut() -> u64, base: &mut u64) -> (u64, u64, String) {
    let mut best = case();
    for _ in 0..3 {
        if best.0 <= best.1.max(*base) {
            break;
        }
        *base = (*base).max(reference());
        let again = case();
        if again.0 < best.0 || again.0 <= again.1.max(*base) {
            best = again;
        }
    }
    best
}

#[test]
fn the_bound_holds_the_window_and_the_folio_where_the_blocks_end() {
    // The text at file offset 0x9000: its blocks end at 0x19000, in the folio that
    // ends at 0x20000 (92 KiB from the text's start).
    assert_eq!(block_bound_kb(0x7f00_0001_0000, 0x7f00_0004_0000, 0x9000), 92);
    assert_eq!(block_bound_kb(0x7f00_0000_9000, 0x7f00_0004_0000, 0x9000), 92);
    assert_eq!(block_bound_kb(0x7f00_0000_2000, 0x7f00_0004_0000, 0x9000), 120);
    assert_eq!(block_bound_kb(0x7f00_0000_9000, 0x7f00_0001_0000, 0x9000), 28);
    // A text that starts a folio: the blocks end in its second half.
    assert_eq!(block_bound_kb(0x7f00_0001_0000, 0x7f00_0008_0000, 0x20000), 128);
    // A text at offset 0x10000: the window past the blocks reaches further.
    assert_eq!(block_bound_kb(0x7f00_0000_1000, 0x7f00_0008_0000, 0x10000), 124);
}

/// A shell (bash: dash takes one-digit fds only) under the shim that opens fds 10 and 251 itself and execs the program in
/// its place: the program starts as every one below a terminal's or CI runner's
/// strays does, marked by an audited parent, holding fds it did not make.
const STRAYS: &str = "exec 10</dev/null 251</dev/null; exec \"$0\" \"$@\"";

/// Runs `argv` under the shim (from a clean parent, or below a shell that hands it
/// strays); its output is an smaps text. The shim's text resident in it, in kB, and
/// the most the start blocks' windows hold at its placement (`block_bound_kb`).
fn rss_of(argv: &[&str], env: &[(&str, &str)], log: &Path, strays: bool) -> (u64, u64, String) {
    let lib = small_folio_copy();
    let argv: Vec<&str> = if strays { ["/bin/bash", "-c", STRAYS].iter().chain(argv).copied().collect() } else { argv.to_vec() };
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).env_clear().env("PATH", "/usr/bin:/bin").env("LD_PRELOAD", &lib).env("EXECGUARD_LOG", log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::isolate(&mut cmd);
    // The same placement in every run of one program (no address randomisation; it
    // survives the exec of the strays' shell): a case and its reference, the same
    // program, then map the library at the same address and from the same page
    // cache, and differ only by the code they run.
    use std::os::unix::process::CommandExt;
    // SAFETY: one system call, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
            Ok(())
        })
    };
    let out = cmd.output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    let lib = lib.to_str().unwrap();
    let (kb, lo, hi, offset) = text_rss_kb(&text, lib).unwrap_or_else(|| panic!("{argv:?}: no r-xp mapping of {lib} in:\n{text}"));
    (kb, block_bound_kb(lo, hi, offset), text)
}

/// The library as these tests preload it: a copy written 4 KiB at a time, so that
/// its page cache holds it in 4 KiB folios. A freshly linked library may sit in
/// large folios, which a fault maps whole: a CI run mapped 128 to 184 kB of the
/// text where the fault-around windows alone hold 64 to 80, and what a process maps
/// then says where its folios end, not where its code is.
fn small_folio_copy() -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let bytes = std::fs::read(common::shim()).expect("read the library");
        let path = common::tmpdir("start-pages-lib").join("libexecguard.so");
        let mut f = std::fs::File::create(&path).expect("create the copy");
        for chunk in bytes.chunks(4096) {
            f.write_all(chunk).expect("write the copy");
        }
        f.sync_all().expect("sync the copy");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the copy");
        path
    })
    .clone()
}

/// A log path and the smaps reader, built in a directory of `name`; None (the test
/// is skipped) in a debug build, whose text is not laid out for start-up.
fn log_and_reader(name: &str) -> Option<(PathBuf, PathBuf)> {
    if cfg!(debug_assertions) {
        eprintln!("skipped: a debug build's text is not laid out for start-up");
        return None;
    }
    let dir = common::tmpdir(name);
    let reader = common::cc(&dir, "self_rss", SELF_RSS, &["-O2"]);
    Some((dir.join("log.jsonl"), reader))
}

#[test]
fn everyday_starts_map_only_the_first_block_of_the_shim_text() {
    let Some((log, reader)) = log_and_reader("start-pages") else { return };
    let reader = reader.to_str().unwrap();
    // Twice each, the first run only to bring the library's pages into the page
    // cache (fault-around maps only pages that are there).
    let py = "import sys; sys.stdout.write(open('/proc/self/smaps').read())";
    let cases: [(&str, Vec<&str>); 6] = [
        ("a program that calls no hooked function", vec![reader]),
        // dash: sigaction, sigprocmask, vfork, and execve in the vfork child, whose
        // pages count in the shell's own mapping (a vfork child shares it)
        ("sh running a command", vec!["/bin/sh", "-c", "cat /proc/$$/smaps"]),
        ("bash running two commands", vec!["/bin/bash", "-c", "cat /proc/$$/smaps; :"]),
        ("python3 opening a file", vec!["python3", "-c", py]),
        ("perl opening a file", vec!["perl", "-e", "open F, '/proc/self/smaps' or die; print <F>"]),
        ("cat with fopen-free reads", vec!["cat", "/proc/self/smaps"]),
    ];
    for (env, strays) in [
        (vec![], false),
        (vec![("EXECGUARD_FOLLOW", "1"), ("EXECGUARD_MODE", "fix")], false),
        (vec![], true),
        (vec![("EXECGUARD_FOLLOW", "1")], true),
    ] {
        let baseline = &cases[0].1;
        rss_of(baseline, &env, &log, strays);
        let mut base = rss_of(baseline, &env, &log, strays).0;
        for (what, argv) in &cases[1..] {
            rss_of(argv, &env, &log, strays);
            let (kb, bound, text) = settle(|| rss_of(argv, &env, &log, strays), || rss_of(baseline, &env, &log, strays).0, &mut base);
            assert!(
                kb <= bound.max(base),
                "{what} ({argv:?}, env {env:?}, strays from its parent: {strays}): {kb} kB of the shim's text mapped, where the start blocks' windows hold {bound} kB at this placement and the constructor alone mapped {base} kB: \
                 code it runs lies outside the start blocks (to see which: perf record -e page-faults -d, docs/performance.md)\n{text}"
            );
        }
    }
}

/// Every setting a user or a deployment may put in the environment is parsed by code
/// in the constructor's block. A parser elsewhere in the text (a number's, a signal
/// list's, a facility's) cost every process that had the setting one more fault-around
/// window: measured, 4 µs of each start with `EXECGUARD_REPEAT_INTERVAL` set, and 8 µs
/// on each `sh -c` child (the shell and its command) — the first-report benchmark's
/// children paid it.
#[test]
fn settings_in_the_environment_parse_within_the_first_block() {
    let Some((log, reader)) = log_and_reader("start-pages-settings") else { return };
    let reader = [reader.to_str().unwrap()];
    let not_us = "1"; // init's pid: LISTEN_FDS and EXECGUARD_AUDITED name another process
    let every: Vec<(&str, &str)> = vec![
        ("EXECGUARD_MODE", "fix"),
        ("EXECGUARD_KEEP_FDS", "7,9"),
        ("EXECGUARD_FOLLOW", "1"),
        ("EXECGUARD_ORIGINS", "1"),
        ("EXECGUARD_INFO", "1"),
        ("EXECGUARD_KEEP_IGNORED", "SIGHUP,SIGPIPE,SIGXFSZ,SIGRTMIN+1"),
        ("EXECGUARD_BLOCK_INTERVAL", "5"),
        ("EXECGUARD_STORM", "20/0.5"),
        ("EXECGUARD_REPEAT_INTERVAL", "30"),
        ("EXECGUARD_POOL_MIN", "8"),
        ("EXECGUARD_SHELLS", "zsh:fish"),
        ("EXECGUARD_TEST_ENV", "PYTEST_CURRENT_TEST"),
        ("EXECGUARD_SYSLOG_FACILITY", "local3"),
        ("EXECGUARD_AUDITED", not_us),
        ("EXECGUARD_AUDITED", "+1:1000:0"),
        ("EXECGUARD_OUTSIDE", "10,251"),
        ("MAKEFLAGS", " -j4 --jobserver-auth=3,4"),
        ("NGINX", "7;8;"),
        ("GUNICORN_FD", "5,6"),
        ("LISTEN_FDS", "2"),
        ("LISTEN_PID", not_us),
    ];
    let journal: Vec<(&str, &str)> = vec![("EXECGUARD_LOG", "journal"), ("EXECGUARD_SYSLOG_FACILITY", "daemon")];
    let syslog: Vec<(&str, &str)> = vec![("EXECGUARD_LOG", "syslog"), ("EXECGUARD_REPEAT_INTERVAL", "0")];
    let singles: Vec<Vec<(&str, &str)>> = every.iter().map(|&kv| vec![kv]).collect();
    // From a clean parent, then below a shell that hands it strays (a marked start).
    for strays in [false, true] {
        rss_of(&reader, &[], &log, strays);
        let mut base = rss_of(&reader, &[], &log, strays).0;
        for env in [&every, &journal, &syslog].into_iter().chain(singles.iter()) {
            rss_of(&reader, env, &log, strays);
            let (kb, bound, text) = settle(|| rss_of(&reader, env, &log, strays), || rss_of(&reader, &[], &log, strays).0, &mut base);
            assert!(
                kb <= bound.max(base),
                "a start with {env:?} (strays from its parent: {strays}) maps {kb} kB of the shim's text, where the \
                 constructor's block's windows hold {bound} kB at this placement and a start without it mapped {base} kB: \
                 a setting's parser lies outside the constructor's block (#[link_section = \".text.startup.execguard\"])\n{text}"
            );
        }
        if !strays {
            let lines = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(lines.is_empty(), "these starts should report nothing:\n{lines}");
        }
    }
}

/// A fork child that calls an exec function, which fails (a target that is not
/// there: the shim's audit has run, the kernel refused), then prints its own smaps
/// with raw system calls. `none`: the child calls nothing after fork.
const FORK_EXEC_RSS: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static char buf[1 << 20];
int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "none";
    const char *missing = "/nonexistent/execguard-start-pages";
    const char *name = "execguard-start-pages-not-on-path";
    char *args[] = {(char *)name, 0};
    pid_t p = fork();
    if (p < 0) return 3;
    if (p == 0) {
        if (!strcmp(how, "execve")) execve(missing, args, environ);
        else if (!strcmp(how, "execv")) execv(missing, args);
        else if (!strcmp(how, "execvp")) execvp(name, args);
        else if (!strcmp(how, "execvpe")) execvpe(name, args, environ);
        else if (!strcmp(how, "execl")) execl(missing, name, (char *)0);
        else if (!strcmp(how, "execlp")) execlp(name, name, (char *)0);
        else if (!strcmp(how, "execle")) execle(missing, name, (char *)0, environ);
        long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC);
        if (fd < 0) syscall(SYS_exit_group, 2);
        size_t n = 0;
        for (;;) {
            long r = syscall(SYS_read, fd, buf + n, sizeof buf - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
        }
        syscall(SYS_write, 1, buf, n);
        syscall(SYS_exit_group, 0);
    }
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st)) return 4;
    return WEXITSTATUS(st);
}
"#;

/// Between fork and exec a child runs the shim's exec hook on text pages its
/// parent's page tables did not hand it (a fork copies no page table entries of a
/// file mapping): each 64 KiB window of the shim's text it runs code in is one page
/// fault in every such child. Through every exec entry point, the hook, the path
/// search of the `p` variants and the variadic `l` ones run in the block the fork
/// hook's own fault maps. (`execvp` and `execl*` ran in two more windows: 6–9 µs of
/// each fork+execvp, measured at ×1.063 → ×1.050 of the empty preload.) From a
/// parent with strays the fd audit runs too, and the scan that finds them all
/// passed through is in the block as well (`audit::scan`; the leak audit it once
/// always ran lay one window further).
#[test]
fn a_fork_childs_exec_runs_in_the_first_block_by_every_entry_point() {
    let Some((log, _)) = log_and_reader("start-pages-fork-exec") else { return };
    let dir = common::tmpdir("start-pages-fork-exec-prog");
    let prog = common::cc(&dir, "fork_exec_rss", FORK_EXEC_RSS, &["-O2"]);
    let prog = prog.to_str().unwrap();
    for strays in [false, true] {
        let reference = "none";
        rss_of(&[prog, reference], &[], &log, strays);
        let mut base = rss_of(&[prog, reference], &[], &log, strays).0;
        for how in ["execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle"] {
            rss_of(&[prog, how], &[], &log, strays);
            let (kb, bound, text) = settle(|| rss_of(&[prog, how], &[], &log, strays), || rss_of(&[prog, reference], &[], &log, strays).0, &mut base);
            assert!(
                kb <= bound.max(base),
                "a fork child's {how} (strays from its parent: {strays}) maps {kb} kB of the shim's text, where the start \
                 blocks' windows hold {bound} kB at this placement and one that calls {reference} mapped {base} kB: code an \
                 exec hook runs lies outside the start blocks\n{text}"
            );
        }
    }
}

/// `(name, address, size)` of every section of an ELF64 little-endian file.
fn sections(elf: &[u8]) -> Vec<(String, u64, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not an ELF64 file");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28) as usize, u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18) as usize;
    (0..shnum)
        .map(|i| {
            let h = header(i);
            let at = names + u32_at(h);
            let end = at + elf[at..].iter().position(|&b| b == 0).unwrap();
            (String::from_utf8_lossy(&elf[at..end]).into_owned(), u64_at(h + 0x10), u64_at(h + 0x20))
        })
        .collect()
}

/// The address and size of the section `name`.
fn section(secs: &[(String, u64, u64)], name: &str) -> (u64, u64) {
    secs.iter().find(|(n, _, _)| n == name).map(|&(_, a, s)| (a, s)).unwrap_or_else(|| panic!("no section {name}: {secs:?}"))
}

/// The three blocks a start or a fork child runs in (`.text.startup`, `.text.hot`,
/// `.text.warm`) lie within the 64 KiB that the constructor's page fault maps: the
/// startup block opens the text segment (its page is the mapping's first, so the
/// kernel's fault-around maps the 16 pages from there), and the warm block ends
/// inside them. A build that grows past it still works, and every program that
/// calls a hook at the end of the warm block pays one more fault at each start; the
/// test above sees that only for the hooks its programs happen to call.
#[test]
fn the_start_blocks_fit_the_constructors_fault_around_window() {
    if cfg!(debug_assertions) {
        eprintln!("skipped: a debug build's text is not laid out for start-up");
        return;
    }
    let lib = common::shim();
    let elf = std::fs::read(&lib).unwrap();
    let secs = sections(&elf);
    let find = |name: &str| secs.iter().find(|(n, _, _)| n == name).cloned().unwrap_or_else(|| panic!("no {name}: {secs:?}"));
    let (startup, hot, warm) = (find(".text.startup"), find(".text.hot"), find(".text.warm"));
    assert_eq!(startup.1 % 4096, 0, ".text.startup does not start a page: {secs:?}");
    assert!(startup.1 < hot.1 && hot.1 < warm.1, "the blocks are out of order: {secs:?}");
    let end = warm.1 + warm.2;
    assert!(
        end <= startup.1 + 64 * 1024,
        "the startup, hot and warm blocks end {} bytes past the 64 KiB from the start of the text \
         (startup {} B, hot {} B, warm {} B): move what a start does not run out of them (docs/design.md)",
        end - startup.1 - 64 * 1024,
        startup.2,
        hot.2,
        warm.2
    );
}

/// The library's initialised writable data (`.data`: the configuration, the lookup
/// snapshot, the function table, the hot statics) is one page, which every start
/// writes and which also holds the start of `.bss`. A byte more and the loader
/// zeroes the rest of a second page: one more page fault in every process, that no
/// other test shows (an 8-byte field added to the configuration did it once).
#[test]
fn the_writable_data_of_a_start_is_one_page() {
    let elf = std::fs::read(common::shim()).unwrap();
    let secs = sections(&elf);
    let (addr, size) = section(&secs, ".data");
    assert_eq!(addr % 4096, 0, ".data does not start a page: {secs:?}");
    assert!(size <= 4096, ".data is {size} bytes: past one page (see docs/design.md, the hot data page)");
}

/// The loader maps the library from its file alone: no anonymous mapping for a
/// `.bss` (each is a mapping to make and to tear down in every process, 4–5 µs of
/// each start, docs/performance.md), and no image of more than 2 MiB, which the
/// kernel would place on a 2 MiB boundary of its own page table. The per-fd tables
/// (megabytes of zeros) are a mapping made when first written (src/postfork/arena.rs),
/// not statics: no writable symbol in the image is as large as one of them.
#[test]
fn the_loader_maps_the_library_from_its_file_alone() {
    use object::{Object, ObjectSegment, ObjectSymbol};
    let elf = std::fs::read(common::shim()).unwrap();
    let file = object::File::parse(&*elf).unwrap();
    let mut span = 0;
    for seg in file.segments() {
        let (_, filesz) = seg.file_range();
        let memsz = seg.size();
        span = span.max(seg.address() + memsz);
        assert!(
            memsz <= filesz.next_multiple_of(4096),
            "a loadable segment at {:#x} is {memsz:#x} bytes in memory and {filesz:#x} in the file: the loader maps \
             anonymous memory for the rest (a .bss past the file: build.rs keeps it in the data section)",
            seg.address()
        );
    }
    assert!(span < 1 << 20, "the library's image is {span:#x} bytes: over 1 MiB");
    let secs = sections(&elf);
    assert!(!secs.iter().any(|(n, _, size)| n == ".bss" && *size > 0), "a .bss section: {secs:?}");
    let (data, _) = section(&secs, ".data");
    for sym in file.symbols() {
        assert!(
            sym.address() < data || sym.size() < 64 << 10,
            "{} is a writable static of {} bytes: a per-fd table belongs in src/postfork/arena.rs",
            sym.name().unwrap_or("?"),
            sym.size()
        );
    }
}

/// Prints how much the process's private data grew (kB of `VmData`) over a `close`
/// through the hook, read with raw system calls on both sides of it.
const CLOSE_DATA: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static long vm_data_kb(void) {
    static char buf[8192];
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
    long n = fd < 0 ? -1 : syscall(SYS_read, fd, buf, sizeof buf - 1);
    if (fd >= 0) syscall(SYS_close, fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strstr(buf, "VmData:");
    return p ? strtol(p + 7, NULL, 10) : -1;
}
int main(void) {
    long before = vm_data_kb();
    int fd = (int)syscall(SYS_dup, 1);
    if (close(fd) != 0) return 2;
    long after = vm_data_kb();
    if (before < 0 || after < 0) return 3;
    printf("%ld\n", after - before);
    return 0;
}
"#;

/// `off` passes everything through: a `close` through the hook there makes no per-fd
/// tables (3.75 MiB of address space, src/postfork/arena.rs), where in log mode it
/// makes them (which shows that the measure sees them).
#[test]
fn off_mode_makes_no_per_fd_tables() {
    let dir = common::tmpdir("off-tables");
    let prog = common::cc(&dir, "close_data", CLOSE_DATA, &["-O2"]);
    let grown = |mode: &str| -> i64 {
        let mut cmd = Command::new(&prog);
        cmd.env("LD_PRELOAD", common::shim()).env("EXECGUARD_MODE", mode).env("EXECGUARD_LOG", dir.join("log.jsonl"));
        common::isolate(&mut cmd);
        let out = cmd.output().expect("run close_data");
        assert!(out.status.success(), "{mode}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number of kB")
    };
    let log = grown("log");
    assert!(log >= 3840, "log mode: the close grew the private data by {log} kB, not by the tables' 3840");
    assert_eq!(grown("off"), 0, "off mode: the close made a mapping");
}

/// What the loader binds in the library at every process start, before any of its
/// code runs: each import is a symbol lookup through the objects of the process
/// (about 0.3 µs here, with an IFUNC's resolver on top for the string functions),
/// and so is each relocation that names one of the library's own exported symbols.
/// Eight imports, four of them weak, and nothing of its own: a new libc call belongs in the real-function
/// table (src/real.rs, looked up on first use), a system call, or src/c/mem.c
/// (docs/design.md, "Every Linux userland").
#[test]
fn the_loader_binds_only_eight_imports() {
    use object::{Object, ObjectSymbol, ObjectSymbolTable, RelocationTarget};
    let lib = common::shim();
    let data = std::fs::read(&lib).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let mut imports: Vec<String> =
        file.dynamic_symbols().filter(|s| s.is_undefined() && !s.name().unwrap_or("").is_empty()).map(|s| s.name().unwrap().to_owned()).collect();
    imports.sort();
    let want = [
        "__errno_location",
        "__libc_single_threaded",
        "dl_iterate_phdr",
        "dlsym",
        "environ",
        "getauxval",
        "gnu_get_libc_version",
        "program_invocation_name",
    ];
    assert_eq!(imports, want, "the library's imports changed: each is bound at every process start");
    // Strong only what every libc's libc.so defines (glibc since long before 2.17,
    // musl): a strong import another libc lacks stops every process there from
    // starting. `dlsym` was one: libdl's before glibc 2.34 (glibc_old:: tests).
    let mut strong: Vec<String> = file
        .dynamic_symbols()
        .filter(|s| s.is_undefined() && !s.name().unwrap_or("").is_empty() && !s.is_weak())
        .map(|s| s.name().unwrap().to_owned())
        .collect();
    strong.sort();
    assert_eq!(strong, ["__errno_location", "dl_iterate_phdr", "environ", "getauxval"], "only these may be strong imports");
    let dynsym = file.dynamic_symbol_table().expect("a dynamic symbol table");
    let mut own = Vec::new();
    for (at, rel) in file.dynamic_relocations().expect("dynamic relocations") {
        if let RelocationTarget::Symbol(i) = rel.target() {
            let sym = dynsym.symbol_by_index(i).unwrap();
            let name = sym.name().unwrap_or("").to_owned();
            if !sym.is_undefined() && !name.is_empty() {
                own.push(format!("{name} at {at:#x}"));
            }
        }
    }
    assert!(
        own.is_empty(),
        "relocations bind the library's own exported symbols at every start (call the Rust body, not the exported name): {own:?}"
    );
}
