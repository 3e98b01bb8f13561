//! `connect`, `close`, `shutdown` and the read family, for `connect_storm`
//! (src/postfork/storm.rs keeps the state). When the fd is not a connection still
//! waiting for its first byte, each exported symbol is an assembly trampoline on
//! x86_64 that looks at the fd's word and jumps straight to libc: no Rust frame, no
//! second look after the call. `connect` tracks the stream sockets that `socket()`
//! made. Small room.

use crate::config::{self, Mode};
use crate::postfork::storm::{self, F_TRACKED};
use crate::postfork::sys;
use crate::real;
use libc::{c_int, c_void, iovec, msghdr, sockaddr, socklen_t};

/// `$name`: when `FDS[fd] & $mask` is 0 (or fd is outside the table), libc's
/// function at once; otherwise `$imp`, with the return address in `$x86reg` /
/// `$armreg` (the argument after the function's own). The `@with` form runs the
/// instructions `$pre` (operands `$op`) first, for an fd inside the table.
macro_rules! gate {
    ($name:ident, $imp:ident, $mask:expr, $x86reg:literal, $armreg:literal, ($($a:ident: $t:ty),*) -> $ret:ty) => {
        gate!(@with [] [] $name, $imp, $mask, $x86reg, $armreg, ($($a: $t),*) -> $ret);
    };
    (@with [$($pre:literal),*] [$($op:ident = $opv:path),*] $name:ident, $imp:ident, $mask:expr, $x86reg:literal, $armreg:literal, ($($a:ident: $t:ty),*) -> $ret:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.warm.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name($($a: $t),*) -> $ret {
            core::arch::naked_asm!(
                // The fd is an int: zero-extend it (the upper half of rdi is not ours),
                // and a negative one compares above the table's size.
                "mov r11d, edi",
                "cmp r11, {max}",
                "jae 2f",
                $($pre,)*
                // No stream socket made and no fd inherited at start marked: every
                // word is 0, and the table's page is not even read (a zero-page
                // fault in every process that closes or reads anything).
                "lea rax, [rip + {used}]",
                "cmp byte ptr [rax], 0",
                "je 2f",
                // Set only once the tables are made (postfork/storm.rs); their
                // address is tested all the same.
                "mov rax, qword ptr [rip + {arena}]",
                "test rax, rax",
                "jz 2f",
                "mov rax, qword ptr [rax + r11*8 + {words}]",
                "test rax, {mask}",
                "jnz 3f",
                "2:",
                // Straight to libc, if resolved.
                real::jump_to_libc!(),
                "3:",
                concat!("mov ", $x86reg, ", qword ptr [rsp]"),
                "jmp {imp}",
                max = const storm::MAX_FD,
                arena = sym crate::postfork::arena::ARENA,
                words = const core::mem::offset_of!(crate::postfork::arena::Arena, storm),
                used = sym storm::USED,
                mask = const $mask,
                table = sym real::TABLE,
                missing = const real::MISSING,
                off = const core::mem::offset_of!(real::Table, $name),
                imp = sym $imp,
                $($op = sym $opv,)*
            )
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[no_mangle]
        #[link_section = ".text.warm.execguard"]
        /// Async-signal-safe.
        pub unsafe extern "C" fn $name($($a: $t),*) -> $ret {
            core::arch::naked_asm!(concat!("mov ", $armreg, ", x30"), "b {imp}", imp = sym $imp)
        }
    };
}

gate!(connect, connect_impl, u64::MAX, "rcx", "x3", (fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int);

#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn connect_impl(fd: c_int, a: *const sockaddr, l: socklen_t, caller: usize) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::connect(fd, a, l) };
    if config::mode() != Mode::Off && storm::word(fd) != 0 && !a.is_null() {
        let err = if r == 0 { 0 } else { sys::errno() };
        // EFAULT, EINVAL (a length over 128), EBADF…: the kernel may not have read the
        // address, and it may point at nothing; reading it would fault the host.
        if r != 0 && !storm::address_taken(err) {
            sys::set_errno(err);
            return r;
        }
        // SAFETY: the kernel read these l (<= 128) bytes of address in this call.
        let sa = unsafe { core::slice::from_raw_parts(a as *const u8, (l as usize).min(128)) };
        storm::connected(fd, sa, r, err, caller);
        if r != 0 {
            sys::set_errno(err);
        }
    }
    r
}

// `close`: first the fd's generation moves on (postfork/fdgen.rs): one add to
// memory, no Rust frame (on aarch64, close_impl does it). The generation is at
// `16 * fd + 8` in the tables' mapping (checked in fdgen at compile time); r10 is
// scratch. Before the tables are made, `tables_for_close` makes them (or, where
// the kernel refuses, the add is skipped: every generation is then unknown).
// The stack is 16-byte aligned for the call after the push; r11 is reloaded after it.
gate!(@with ["mov rax, qword ptr [rip + {arena}]", "test rax, rax", "jnz 5f",
             "push rdi", "call {first}", "pop rdi", "mov r11d, edi", "test rax, rax", "jz 6f", "5:",
             "mov r10, r11", "shl r10, 4", "add dword ptr [rax + r10 + 8], 1", "6:"] [first = tables_for_close]
    close, close_impl, u64::MAX, "rsi", "x1", (fd: c_int) -> c_int);

/// x86_64, async-signal-safe: the close trampoline's call while the tables are not
/// made (once per process that closes an fd in the table's range through the hook):
/// make them, and give their address (0: refused). Raw system calls only: errno is
/// untouched.
#[cfg(target_arch = "x86_64")]
#[link_section = ".text.warm.execguard"]
extern "C" fn tables_for_close() -> usize {
    crate::postfork::arena::make().map_or(0, |a| a as *const _ as usize)
}

#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn close_impl(fd: c_int, _caller: usize) -> c_int {
    #[cfg(not(target_arch = "x86_64"))]
    crate::postfork::fdgen::bump(fd);
    let w = storm::word(fd);
    if w != 0 {
        // Before the real close: the socket's state is gone after it, and the number
        // may be reused by another thread at once.
        storm::forget(fd);
        if w & F_TRACKED != 0 {
            storm::closing(fd, w);
        }
    }
    // SAFETY: forwarded.
    unsafe { real::close(fd) }
}

gate!(shutdown, shutdown_impl, F_TRACKED, "rdx", "x2", (fd: c_int, how: c_int) -> c_int);

#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn shutdown_impl(fd: c_int, how: c_int, _caller: usize) -> c_int {
    if how != libc::SHUT_RD && storm::word(fd) & F_TRACKED != 0 {
        storm::shut(fd);
    }
    // SAFETY: forwarded.
    unsafe { real::shutdown(fd, how) }
}

/// One copy for the seven read-like hooks (the room in the start blocks): they come
/// here only for a tracked connection.
#[inline(never)]
#[link_section = ".text.warm.execguard"]
fn seen(fd: c_int, r: isize) -> isize {
    if storm::word(fd) & F_TRACKED != 0 {
        storm::after_read(fd, r);
    }
    r
}

/// The read family: the Rust body runs only for a tracked fd (or before libc's
/// function is looked up); it records what the read brought.
macro_rules! reader {
    ($name:ident, $imp:ident, $x86reg:literal, $armreg:literal, ($fd:ident: c_int $(, $a:ident: $t:ty)*)) => {
        gate!($name, $imp, F_TRACKED, $x86reg, $armreg, ($fd: c_int $(, $a: $t)*) -> isize);

        #[link_section = ".text.warm.execguard"]
        unsafe extern "C" fn $imp($fd: c_int $(, $a: $t)*, _caller: usize) -> isize {
            // SAFETY: forwarded.
            seen($fd, unsafe { real::$name($fd $(, $a)*) })
        }
    };
}

reader!(read, read_impl, "rcx", "x3", (fd: c_int, b: *mut c_void, n: usize));
// `_FORTIFY_SOURCE` builds (Debian's nginx) call this for read.
reader!(__read_chk, read_chk_impl, "r8", "x4", (fd: c_int, b: *mut c_void, n: usize, cap: usize));
reader!(readv, readv_impl, "rcx", "x3", (fd: c_int, v: *const iovec, n: c_int));
reader!(recv, recv_impl, "r8", "x4", (fd: c_int, b: *mut c_void, n: usize, f: c_int));
reader!(__recv_chk, recv_chk_impl, "r9", "x5", (fd: c_int, b: *mut c_void, n: usize, cap: usize, f: c_int));
reader!(recvmsg, recvmsg_impl, "rcx", "x3", (fd: c_int, m: *mut msghdr, f: c_int));

// recvfrom has six arguments: the return address would be a seventh, on the stack;
// its body does without it.
gate!(recvfrom, recvfrom_impl, F_TRACKED, "r11", "x9", (fd: c_int, b: *mut c_void, n: usize, f: c_int, a: *mut sockaddr, l: *mut socklen_t) -> isize);

#[link_section = ".text.warm.execguard"]
unsafe extern "C" fn recvfrom_impl(fd: c_int, b: *mut c_void, n: usize, f: c_int, a: *mut sockaddr, l: *mut socklen_t) -> isize {
    // SAFETY: forwarded.
    seen(fd, unsafe { real::recvfrom(fd, b, n, f, a, l) })
}
