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
    // In `.bss`, first the per-fd tables and records that most programs touch
    // (`.bss.execguard_low`: fdgen's records, storm's words and peers, the start
    // record), then the rest. The library is over 2 MiB long, so the kernel (6.x)
    // maps it on a 2 MiB boundary, and every 2 MiB of it that a process touches is a page
    // table of its own to allocate, to copy at each fork and to free: what most
    // programs touch now lies in the first 2 MiB, with the library's text and data.
    std::fs::write(
        &script,
        "SECTIONS { .text.startup : { *(.text.startup .text.startup.*) } .text.hot : { *(.text.hot .text.hot.*) } .text.warm : { *(.text.warm .text.warm.*) } .text.leak : { *(.text.leak .text.leak.*) } .text.report : { *(.text.report .text.report.*) } } INSERT BEFORE .text;\n\
         SECTIONS { .bss.execguard_low : { *(.bss.execguard_low) } } INSERT BEFORE .bss;\n",
    )
        .expect("write linker script");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", script.display());
    // Every segment starts on a page of its own: the hot writable data (about 2 KiB,
    // `.data.execguard_hot`) then shares one page with the start of .bss, which the
    // loader writes anyway, wherever the sizes of the segments before it land.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,separate-loadable-segments");
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
