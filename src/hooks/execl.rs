//! The exported `execl`, `execlp`, `execle`: a jump to the C bodies in src/c/execl.c.
//! A jump leaves every argument register (and x86_64's %al vector count) as the
//! caller set it, which is all a variadic callee needs; exporting them from Rust also
//! keeps them in the library's dynamic symbol table. They, the C bodies and the Rust
//! side are in the block every start maps: a fork child that calls execl would
//! otherwise fault in more windows of text before it execs.

extern "C" {
    fn execguard_c_execl();
    fn execguard_c_execlp();
    fn execguard_c_execle();
}

macro_rules! jump {
    ($name:ident, $target:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.startup.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!("jmp {t}", t = sym $target)
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.startup.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!("b {t}", t = sym $target)
        }
    };
}

jump!(execl, execguard_c_execl);
jump!(execlp, execguard_c_execlp);
jump!(execle, execguard_c_execle);
