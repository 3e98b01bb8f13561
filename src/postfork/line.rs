//! A fixed stack buffer that one event is formatted into. Small room: no allocation,
//! writes past the end are dropped and remembered (`overflowed`), never a panic.

pub const LINE_MAX: usize = 4096;

/// Only the first `len` bytes are ever initialised or read: a 4 KiB line costs no
/// memset (in a fork child, each stack page written is a copy-on-write fault).
pub struct Buf<const N: usize> {
    buf: [core::mem::MaybeUninit<u8>; N],
    len: usize,
    overflowed: bool,
}

pub type Line = Buf<LINE_MAX>;

impl<const N: usize> Buf<N> {
    /// Async-signal-safe.
    #[inline]
    pub const fn new() -> Self {
        Buf { buf: [core::mem::MaybeUninit::uninit(); N], len: 0, overflowed: false }
    }

    /// Async-signal-safe: make the buffer at `p` empty without writing its bytes
    /// (see `Event::begin_in`).
    ///
    /// # Safety
    /// `p` points to writable memory for a `Buf<N>`.
    #[inline]
    pub unsafe fn init_at(p: *mut Self) {
        // SAFETY: the caller's pointer; the bytes are MaybeUninit and need nothing.
        unsafe {
            core::ptr::addr_of_mut!((*p).len).write(0);
            core::ptr::addr_of_mut!((*p).overflowed).write(false);
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn room(&self) -> usize {
        N - self.len
    }

    #[inline]
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let init = self.buf.get(..self.len).unwrap_or(&[]);
        // SAFETY: bytes below `len` were all written by byte()/raw().
        unsafe { core::slice::from_raw_parts(init.as_ptr() as *const u8, init.len()) }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    /// Cut back to an earlier length (used to drop a list item that did not fit).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = core::mem::MaybeUninit::new(b);
                self.len += 1;
            }
            None => self.overflowed = true,
        }
    }

    pub fn raw(&mut self, s: &[u8]) {
        self.put(s)
    }

    /// `raw`, out of line and placed with the constructor: the copies a start makes
    /// (the log path, the follow entries), an execvp's path search
    /// (`exec::resolve_path`) and a marked exec's environment (`envp::rebuilt`)
    /// touch no text page beyond the start blocks, and share one copy of the code
    /// for every size of buffer (`put_into`; inlined, the copy was 160 bytes at each
    /// call, and one per size was five).
    #[inline(always)]
    pub fn raw_at_start(&mut self, s: &[u8]) {
        put_into(&mut self.buf, &mut self.len, &mut self.overflowed, s)
    }

    /// The copy inlined whole, so that it lands in whichever section its caller is.
    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        let end = self.len + s.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                // SAFETY: dst is exactly s.len() bytes, exclusively borrowed.
                unsafe { copy_ptr_inline(dst.as_mut_ptr().cast::<u8>(), s.as_ptr(), s.len()) };
                self.len = end;
            }
            None => self.overflowed = true,
        }
    }

    pub fn s(&mut self, s: &str) {
        self.raw(s.as_bytes())
    }

    #[inline]
    pub fn uint(&mut self, v: u64) {
        let mut tmp = [0u8; 20];
        let i = digits(v, &mut tmp);
        self.raw(tmp.get(i..).unwrap_or(&[]))
    }

    #[inline]
    pub fn int(&mut self, v: i64) {
        let mut tmp = [0u8; 21];
        let i = signed_digits(v, &mut tmp);
        self.raw(tmp.get(i..).unwrap_or(&[]))
    }

    pub fn hex(&mut self, v: u64) {
        self.s("0x");
        let mut started = false;
        for shift in (0..16).rev() {
            let d = ((v >> (shift * 4)) & 0xf) as u8;
            if d != 0 || started || shift == 0 {
                started = true;
                self.byte(if d < 10 { b'0' + d } else { b'a' + d - 10 });
            }
        }
    }

    /// Zero-padded to `width` digits.
    #[link_section = ".text.report.execguard"]
    pub fn uint_pad(&mut self, v: u64, width: usize) {
        let mut digits = 1;
        let mut t = v / 10;
        while t > 0 {
            digits += 1;
            t /= 10;
        }
        for _ in digits..width {
            self.byte(b'0');
        }
        self.uint(v)
    }

    /// A JSON string literal: quotes, escapes, and invalid UTF-8 replaced by U+FFFD.
    /// Async-signal-safe: an fd item's opening, `{"fd":N` + `between` + `"detail"`,
    /// in one bounds check, when the detail needs no escape (printable ASCII, no
    /// quote or backslash: kinds, addresses, most paths) and the buffer has room.
    /// Otherwise writes nothing and says so: the caller writes it piece by piece.
    pub fn fd_json_plain(&mut self, fd: u32, between: &str, detail: &[u8]) -> bool {
        if !plain(detail) {
            return false;
        }
        let mut tmp = [0u8; 20];
        // Most fds have one to three digits: written here, without digits()'s loop.
        let (d0, d1, d2) = (b'0' + (fd % 10) as u8, b'0' + (fd / 10 % 10) as u8, b'0' + (fd / 100 % 10) as u8);
        let i = match fd {
            0..=9 => {
                tmp[19] = d0;
                19
            }
            10..=99 => {
                (tmp[18], tmp[19]) = (d1, d0);
                18
            }
            100..=999 => {
                (tmp[17], tmp[18], tmp[19]) = (d2, d1, d0);
                17
            }
            _ => digits(fd as u64, &mut tmp),
        };
        let num = tmp.get(i..).unwrap_or(&[]);
        const OPEN: &[u8; 6] = b"{\"fd\":";
        let total = OPEN.len() + num.len() + between.len() + 1 + detail.len() + 1;
        let Some(dst) = self.buf.get_mut(self.len..self.len + total) else { return false };
        let d = dst.as_mut_ptr().cast::<u8>();
        // SAFETY: the six pieces below are `total` bytes in all, the length of dst,
        // which is exclusively borrowed; none of the sources overlaps it.
        unsafe {
            copy_ptr_inline(d, OPEN.as_ptr(), OPEN.len());
            let mut at = OPEN.len();
            copy_ptr_inline(d.add(at), num.as_ptr(), num.len());
            at += num.len();
            copy_mid(d.add(at), between.as_ptr(), between.len());
            at += between.len();
            *d.add(at) = b'"';
            at += 1;
            copy_ptr_inline(d.add(at), detail.as_ptr(), detail.len());
            at += detail.len();
            *d.add(at) = b'"';
        }
        self.len += total;
        true
    }

    pub fn json_str(&mut self, s: &[u8]) {
        self.byte(b'"');
        self.json_inner(s);
        self.byte(b'"');
    }

    #[link_section = ".text.report.execguard"]
    pub fn json_inner(&mut self, s: &[u8]) {
        // Most strings (kinds, paths, addresses) are printable ASCII without a quote
        // or a backslash: one copy, no UTF-8 decoding.
        if plain(s) {
            self.raw(s);
            return;
        }
        let mut rest = s;
        while !rest.is_empty() {
            match core::str::from_utf8(rest) {
                Ok(valid) => {
                    self.json_valid(valid);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // SAFETY: from_utf8 said these bytes are valid UTF-8.
                    self.json_valid(unsafe { core::str::from_utf8_unchecked(good) });
                    self.s("\u{fffd}");
                    let skip = e.error_len().unwrap_or(bad.len()).max(1);
                    rest = bad.get(skip..).unwrap_or(&[]);
                }
            }
        }
    }

    #[link_section = ".text.report.execguard"]
    fn json_valid(&mut self, s: &str) {
        for &b in s.as_bytes() {
            match b {
                b'"' => self.s("\\\""),
                b'\\' => self.s("\\\\"),
                b'\n' => self.s("\\n"),
                b'\r' => self.s("\\r"),
                b'\t' => self.s("\\t"),
                0..=0x1f | 0x7f => {
                    self.s("\\u00");
                    let hexd = b"0123456789abcdef";
                    self.byte(hexd.get((b >> 4) as usize).copied().unwrap_or(b'0'));
                    self.byte(hexd.get((b & 0xf) as usize).copied().unwrap_or(b'0'));
                }
                _ => self.byte(b),
            }
        }
    }

    /// Human text: printable bytes as they are, control bytes as '?'.
    pub fn text(&mut self, s: &[u8]) {
        for &b in s {
            self.byte(if b < 0x20 || b == 0x7f { b'?' } else { b });
        }
    }
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.s(s);
        Ok(())
    }
}

/// Async-signal-safe: JSON needs no escape in `s` (printable ASCII without a quote
/// or a backslash).
#[inline]
fn plain(s: &[u8]) -> bool {
    s.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Length of a NUL-terminated C string, capped at `max`.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
pub unsafe fn cstr<'a>(p: *const libc::c_char, max: usize) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    let mut n = 0;
    // SAFETY: caller promises a NUL-terminated string; we stop at NUL or max.
    while n < max && unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the n bytes before the NUL (or max) are readable.
    unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) }
}


/// Async-signal-safe: does `s` hold the byte `b`? A loop in the caller's own code:
/// `contains` calls core's memchr for 16 bytes or more, on a text page that no other
/// start or exec code is on (each such page is a fault-around window, 5–10 µs).
#[inline(always)]
#[allow(clippy::manual_contains)]
pub fn has_byte(s: &[u8], b: u8) -> bool {
    s.iter().any(|&c| c == b)
}

/// Async-signal-safe: `v` in decimal at the end of `tmp`; returns where it starts.
/// One copy for every size of line (as a method of `Buf<N>` it was one per size,
/// 4 KiB of the text every start maps).
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn digits(mut v: u64, tmp: &mut [u8; 20]) -> usize {
    let mut i = tmp.len();
    loop {
        i -= 1;
        if let Some(d) = tmp.get_mut(i) {
            *d = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    i
}

/// Async-signal-safe: `digits` with a sign.
#[inline(never)]
#[link_section = ".text.hot.execguard"]
fn signed_digits(v: i64, tmp: &mut [u8; 21]) -> usize {
    let (_, tail) = tmp.split_at_mut(1);
    let Ok(tail) = <&mut [u8; 20]>::try_from(tail) else { return tmp.len() };
    let i = digits(v.unsigned_abs(), tail) + 1;
    if v >= 0 {
        return i;
    }
    if let Some(d) = tmp.get_mut(i - 1) {
        *d = b'-';
    }
    i - 1
}

/// Async-signal-safe: `src` into `dst` (the shorter of the two), inline rather than
/// a call to `memcpy`, which a plain copy loop becomes. Written when that call went to
/// libc (in a fork child each page of libc's text it called into was a page fault:
/// file mappings' page tables are not copied at fork); the call now goes to the
/// library's own (src/c/mem.c, in the startup block), and what this still saves is
/// the call on the line writer's many short copies. Short copies are a pair of
/// overlapping loads and stores, longer ones `rep movsb`.
#[inline]
pub fn copy_bytes(dst: &mut [core::mem::MaybeUninit<u8>], src: &[u8]) {
    let n = dst.len().min(src.len());
    // SAFETY: both ranges are valid for n bytes and do not overlap (dst is
    // exclusively borrowed).
    unsafe { copy_ptr(dst.as_mut_ptr().cast::<u8>(), src.as_ptr(), n) }
}

/// Async-signal-safe: `copy_bytes` between raw pointers (a shared mapping's bytes).
///
/// # Safety
/// `d` and `s` valid for `n` bytes, not overlapping.
#[inline]
pub unsafe fn copy_ptr(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { copy_ptr_inline(d, s, n) }
}

/// `copy_ptr`, always inlined: for code placed with the constructor.
///
/// Async-signal-safe: `Buf::raw_at_start`'s copy of `s` into `buf` after its `len`
/// bytes, or `overflowed`.
#[inline(never)]
#[link_section = ".text.startup.execguard"]
fn put_into(buf: &mut [core::mem::MaybeUninit<u8>], len: &mut usize, overflowed: &mut bool, s: &[u8]) {
    let end = *len + s.len();
    match buf.get_mut(*len..end) {
        Some(dst) => {
            // SAFETY: dst is exactly s.len() bytes, exclusively borrowed.
            unsafe { copy_ptr_inline(dst.as_mut_ptr().cast::<u8>(), s.as_ptr(), s.len()) };
            *len = end;
        }
        None => *overflowed = true,
    }
}

/// # Safety
/// As `copy_ptr`.
#[inline(always)]
unsafe fn copy_ptr_inline(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY (every arm): the caller's ranges; each access lies within [0, n).
    unsafe {
        match n {
            0 => {}
            // Short strings (keys, kinds, numbers: most of a line) in two overlapping
            // loads and stores each: `rep movsb` starts slowly (some 30 cycles on AMD
            // parts), six times per listed fd.
            1..=3 => {
                *d = *s;
                *d.add(n / 2) = *s.add(n / 2);
                *d.add(n - 1) = *s.add(n - 1);
            }
            4..=7 => {
                d.cast::<u32>().write_unaligned(s.cast::<u32>().read_unaligned());
                d.add(n - 4).cast::<u32>().write_unaligned(s.add(n - 4).cast::<u32>().read_unaligned());
            }
            8..=16 => {
                d.cast::<u64>().write_unaligned(s.cast::<u64>().read_unaligned());
                d.add(n - 8).cast::<u64>().write_unaligned(s.add(n - 8).cast::<u64>().read_unaligned());
            }
            _ => copy_long(d, s, n),
        }
    }
}

/// Async-signal-safe: `copy_ptr_inline`, with two 16-byte loads and stores for 17
/// to 32 bytes (an fd item's `,"kind":"file","detail":`), where `rep movsb` starts
/// slowly. Apart from `copy_ptr_inline`: its every copy site (most in the start and
/// fork-child code) would grow by the arm.
///
/// # Safety
/// As `copy_ptr`.
#[inline(always)]
unsafe fn copy_mid(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY (both arms): the caller's ranges; each access lies within [0, n).
    unsafe {
        if (17..=32).contains(&n) {
            d.cast::<u128>().write_unaligned(s.cast::<u128>().read_unaligned());
            d.add(n - 16).cast::<u128>().write_unaligned(s.add(n - 16).cast::<u128>().read_unaligned());
        } else {
            copy_ptr_inline(d, s, n);
        }
    }
}

/// `n` > 16 bytes: `rep movsb` (see `copy_bytes`).
///
/// # Safety
/// `d` and `s` valid for `n` bytes, not overlapping.
#[inline(always)]
unsafe fn copy_long(d: *mut u8, s: *const u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's ranges; rep movsb copies forwards with the direction flag
    // clear, as the ABI guarantees at a call boundary.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") d => _,
            inout("rsi") s => _,
            options(nostack, preserves_flags)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    for i in 0..n {
        // SAFETY: i < n.
        unsafe { *d.add(i) = *s.add(i) };
    }
}

/// Async-signal-safe: zeros into `dst`, inline rather than a call to `memset` (see
/// `copy_bytes`).
#[inline]
pub fn zero_words(dst: &mut [core::mem::MaybeUninit<u64>]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: dst is valid for dst.len() words; rep stosq stores forwards (the
    // direction flag is clear at a call boundary).
    unsafe {
        core::arch::asm!(
            "rep stosq",
            inout("rcx") dst.len() => _,
            inout("rdi") dst.as_mut_ptr() => _,
            in("rax") 0u64,
            options(nostack, preserves_flags)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    for w in dst.iter_mut() {
        w.write(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_escapes() {
        let mut b = Buf::<64>::new();
        b.int(-42);
        b.byte(b' ');
        b.uint_pad(7, 6);
        b.byte(b' ');
        b.hex(0x1a2b);
        b.byte(b' ');
        b.json_str(b"a\"b\n\xff");
        assert_eq!(b.as_bytes(), "-42 000007 0x1a2b \"a\\\"b\\n\u{fffd}\"".as_bytes());
    }

    #[test]
    fn numbers_in_decimal_at_every_width() {
        let mut vals: Vec<u64> = (0..=1000).collect();
        let mut p = 1u64;
        for _ in 0..19 {
            p *= 10;
            vals.extend([p - 1, p, p + 1, p * 3 + 7]);
        }
        vals.extend([u64::MAX, u64::MAX - 1]);
        for v in vals {
            let mut b = Buf::<32>::new();
            b.uint(v);
            assert_eq!(b.as_bytes(), v.to_string().as_bytes());
            let s = v as i64;
            let mut b = Buf::<32>::new();
            b.int(s);
            assert_eq!(b.as_bytes(), s.to_string().as_bytes());
        }
        let mut b = Buf::<32>::new();
        b.int(i64::MIN);
        assert_eq!(b.as_bytes(), i64::MIN.to_string().as_bytes());
    }

    #[test]
    fn every_copy_length_copies_exactly_its_bytes() {
        let src: [u8; 48] = core::array::from_fn(|i| i as u8 + 1);
        for n in 0..=40 {
            for off in 0..3 {
                let mut dst = [core::mem::MaybeUninit::new(0xeeu8); 48];
                copy_bytes(&mut dst[off..off + n], &src[off..]);
                let mut mid = [core::mem::MaybeUninit::new(0xeeu8); 48];
                unsafe { copy_mid(mid[off..].as_mut_ptr().cast::<u8>(), src[off..].as_ptr(), n) };
                for got in [dst, mid] {
                    let got: Vec<u8> = got.iter().map(|b| unsafe { b.assume_init() }).collect();
                    for (i, &b) in got.iter().enumerate() {
                        let want = if (off..off + n).contains(&i) { src[i] } else { 0xee };
                        assert_eq!(b, want, "n={n} off={off} byte {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn overflow_is_remembered_not_panicked() {
        let mut b = Buf::<4>::new();
        b.s("abcdef");
        assert!(b.overflowed());
        assert_eq!(b.len(), 0);
        b.s("ab");
        assert_eq!(b.as_bytes(), b"ab");
    }
}
