// Builds the only C in the library: the variadic execl* entry points.
fn main() {
    println!("cargo:rerun-if-changed=src/c/execl.c");
    println!("cargo:rerun-if-changed=src/c/tls.c");
    println!("cargo:rerun-if-changed=src/c/mem.c");
    // No C runtime start files: the constructor is an .init_array entry of our own,
    // and crtbegin/crtend would add a destructor that runs at every process exit
    // (through the PLT, on a text page nothing else touches: one more page fault per
    // process), a relocated __dso_handle and four weak imports for the loader to bind.
    println!("cargo:rustc-cdylib-link-arg=-nostartfiles");
    // Code that runs at every process start is marked `.text.startup.*` (see
    // src/init.rs); keeping the prefix gathers it on a few adjacent pages.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,keep-text-section-prefix");
    // ... and first in the text segment, so that it starts a 64 KiB fault-around
    // window instead of straddling two (the linker's default layout otherwise).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let script = out.join("startup-first.ld");
    // Then `.text.hot.*`: what a fork child runs between fork and exec when it has
    // fds to audit (the leak audit, fd listing, repeat table, environment rebuild),
    // and what a shell calls before its first command (the signal hooks, the first
    // lookup of a real function), so that such a child faults in one more window,
    // not three. Then `.text.warm.*`: the fd hooks (open, close, fcntl, fopen, the
    // read family) that most programs call at start, together after it. Last
    // `.text.leak.*`: what only an exec that leaks runs (the leak's identity, the
    // repeat table's claim, fix mode's repairs), out of the window every start maps.
    // Then `.text.report.*`: what writing a line runs (the event, its fd items, the
    // log file): a fork child's first report faults in the window after the leak's,
    // not two windows further on.
    // `.bss` goes into the file, after `.data` (`.data.execguard_bss`, made a data
    // section by one byte of src/postfork/arena.rs, `IN_FILE`): the writable segment
    // then ends where the file does, and the loader maps no anonymous memory for the
    // library, a mapping to make and to tear down in every process that loads it.
    // What is left in `.bss` is small (the start record, storm's peers, the shell's
    // streams, the cold configuration: about 56 KiB, pages read from the file only
    // where touched); the per-fd tables are a mapping made when first written
    // (src/postfork/arena.rs). The image is then about 300 KiB, placed by the kernel
    // on any page, as a small library is (tests/start_pages.rs).
    std::fs::write(
        &script,
        "SECTIONS { .text.startup : { *(.text.startup .text.startup.*) } .text.hot : { *(.text.hot .text.hot.*) } .text.warm : { *(.text.warm .text.warm.*) } .text.leak : { *(.text.leak .text.leak.*) } .text.report : { *(.text.report .text.report.*) } } INSERT BEFORE .text;\n\
         SECTIONS { .data.execguard_bss : { *(.data.execguard_bss) *(.bss .bss.*) *(COMMON) } } INSERT AFTER .data;\n",
    )
        .expect("write linker script");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", script.display());
    // Every segment starts on a page of its own: the hot writable data (about 2 KiB,
    // `.data.execguard_hot`) then opens the data page, the one page of the library
    // that a process which only starts and exits writes, wherever the sizes of the
    // segments before it land.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,separate-loadable-segments");
    // `pidfd_spawn` and `pidfd_spawnp` are exported with glibc's version for them,
    // GLIBC_2.39, as a non-default version (src/hooks/spawn.rs): the node is defined
    // here, beside the list of exported names rustc passes. GNU ld refuses a named
    // version node beside that list (an anonymous one); lld takes both. The library
    // is linked with the toolchain's own lld (rustup ships it with every host
    // toolchain, and rustc uses it by default on x86_64 Linux since 1.90), for every
    // target: the same linker for the arm64 build. Without it the two hooks are left
    // out, and the build says so.
    println!("cargo::rustc-check-cfg=cfg(execguard_pidfd_hooks)");
    match toolchain_lld() {
        Some(gcc_ld) => {
            println!("cargo:rustc-cdylib-link-arg=-B{}", gcc_ld.display());
            println!("cargo:rustc-cdylib-link-arg=-fuse-ld=lld");
            let versions = out.join("versions.map");
            std::fs::write(&versions, "GLIBC_2.39 { };\n").expect("write version script");
            println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", versions.display());
            println!("cargo:rustc-cfg=execguard_pidfd_hooks");
        }
        None => println!(
            "cargo:warning=no rust-lld in this toolchain: pidfd_spawn and pidfd_spawnp are not hooked \
             (their versioned names need lld; see docs/design.md)"
        ),
    }
    // The vfork hook is an assembly trampoline, written for x86-64 and arm64
    // (src/hooks/fork.rs); elsewhere there is none, and a vfork child's hooks cannot
    // be told from its parent's (src/postfork/fdgen.rs, `recording`).
    println!("cargo::rustc-check-cfg=cfg(execguard_vfork_hook)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "x86_64" || arch == "aarch64" {
        println!("cargo:rustc-cfg=execguard_vfork_hook");
    }
    // The library's own memcpy, memmove, memset and bcmp (src/c/mem.c): freestanding,
    // and with no loop-idiom recognition, which could turn their loops back into
    // calls to themselves.
    cc::Build::new()
        .file("src/c/mem.c")
        .flag("-ffreestanding")
        .opt_level_str("s")
        .flag_if_supported("-fno-tree-loop-distribute-patterns")
        .flag_if_supported("-fno-tree-vectorize")
        .compile("execguard_mem");
    cc::Build::new().file("src/c/execl.c").file("src/c/tls.c").flag_if_supported("-fvisibility=default").compile("execguard_execl");
}

/// The toolchain's `gcc-ld` directory (an `ld.lld` that runs its `rust-lld`), for
/// the C compiler driver's `-B`, if this toolchain has one.
fn toolchain_lld() -> Option<std::path::PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let host = std::env::var("HOST").ok()?;
    let dir = std::path::PathBuf::from(sysroot.trim()).join("lib").join("rustlib").join(host).join("bin").join("gcc-ld");
    dir.join("ld.lld").exists().then_some(dir)
}
