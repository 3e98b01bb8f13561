//! Tests of the library's own memcpy, memmove, memset and bcmp (src/c/mem.c). The
//! test binary links the same archive ahead of libc, so these calls — and every copy
//! the standard library and the rest of this suite make — go to them; the first test
//! checks that. Every length up to 80 at every alignment, overlaps in both directions,
//! then random buffers up to 5 KiB (a line is at most 4 KiB).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
// The references are byte loops on purpose: a slice copy would call the function under test.
#![allow(clippy::manual_memcpy)]

use core::ffi::c_void;
use proptest::collection::vec;
use proptest::prelude::*;

extern "C" {
    fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    fn memset(d: *mut c_void, c: i32, n: usize) -> *mut c_void;
    fn bcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
}

const GUARD: u8 = 0xa5;

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn the_tests_call_the_librarys_own_functions() {
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    for (name, f) in [
        ("memcpy", memcpy as *const c_void),
        ("memmove", memmove as *const c_void),
        ("memset", memset as *const c_void),
        ("bcmp", bcmp as *const c_void),
    ] {
        // SAFETY: an all-zero Dl_info is valid; dladdr fills it.
        let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
        // SAFETY: any address.
        assert_ne!(unsafe { libc::dladdr(f, &mut info) }, 0, "{name}");
        // SAFETY: dladdr's file name is a C string.
        let file = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
        assert_eq!(std::fs::canonicalize(&file).unwrap(), exe, "{name} comes from {file}");
    }
}

#[test]
fn memcpy_every_length_and_alignment() {
    for n in 0..=80 {
        for so in 0..8 {
            for d_off in 0..8 {
                let src = pattern(n + 8, n as u8);
                let mut dst = vec![GUARD; n + 24];
                // SAFETY: both ranges lie inside their buffers.
                let r = unsafe { memcpy(dst.as_mut_ptr().add(8 + d_off).cast(), src.as_ptr().add(so).cast(), n) };
                assert_eq!(r, dst.as_mut_ptr().wrapping_add(8 + d_off).cast());
                assert_eq!(&dst[8 + d_off..8 + d_off + n], &src[so..so + n], "n {n} so {so} do {d_off}");
                assert!(dst[..8 + d_off].iter().chain(&dst[8 + d_off + n..]).all(|&b| b == GUARD), "n {n}: wrote outside");
            }
        }
    }
}

#[test]
fn memmove_every_overlap_both_ways() {
    for n in 0..=80usize {
        for shift in -24i64..=24 {
            let base = 32usize;
            let mut buf = pattern(n + 2 * base + 8, 7);
            let mut want = buf.clone();
            let from = base;
            let to = (base as i64 + shift) as usize;
            want.copy_within(from..from + n, to);
            // Reference by hand, in case copy_within itself went through memmove.
            let orig = buf.clone();
            let mut by_hand = orig.clone();
            for i in 0..n {
                by_hand[to + i] = orig[from + i];
            }
            assert_eq!(want, by_hand);
            // SAFETY: both ranges lie inside buf.
            let r = unsafe { memmove(buf.as_mut_ptr().add(to).cast(), buf.as_ptr().add(from).cast(), n) };
            assert_eq!(r, buf.as_mut_ptr().wrapping_add(to).cast());
            assert_eq!(buf, by_hand, "n {n} shift {shift}");
        }
    }
}

#[test]
fn memset_every_length_alignment_and_value() {
    for n in 0..=80 {
        for off in 0..8 {
            for c in [0i32, 1, 0x7f, 0x80, 0xff, 0x1234] {
                let mut dst = vec![GUARD; n + 24];
                // SAFETY: the range lies inside dst.
                let r = unsafe { memset(dst.as_mut_ptr().add(8 + off).cast(), c, n) };
                assert_eq!(r, dst.as_mut_ptr().wrapping_add(8 + off).cast());
                assert!(dst[8 + off..8 + off + n].iter().all(|&b| b == c as u8), "n {n} c {c}");
                assert!(dst[..8 + off].iter().chain(&dst[8 + off + n..]).all(|&b| b == GUARD), "n {n}: wrote outside");
            }
        }
    }
}

#[test]
fn bcmp_finds_every_differing_byte() {
    for n in 0..=80 {
        for off in 0..8 {
            let a = pattern(n + 8, 3);
            let mut b = vec![0u8; n + 8];
            b[off..off + n].copy_from_slice(&a[..n]);
            // SAFETY: both ranges lie inside their buffers.
            assert_eq!(unsafe { bcmp(a.as_ptr().cast(), b.as_ptr().add(off).cast(), n) }, 0, "n {n}");
            for i in 0..n {
                b[off + i] ^= 0x40;
                // SAFETY: as above.
                assert_ne!(unsafe { bcmp(a.as_ptr().cast(), b.as_ptr().add(off).cast(), n) }, 0, "n {n} at {i}");
                b[off + i] ^= 0x40;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn large_buffers(data in vec(any::<u8>(), 0..5000), from in 0usize..64, to in 0usize..64, c in any::<u8>(), flip in any::<prop::sample::Index>()) {
        let n = data.len();
        // memcpy between separate buffers.
        let mut dst = vec![GUARD; n + 64];
        // SAFETY: both ranges lie inside their buffers.
        unsafe { memcpy(dst.as_mut_ptr().add(to).cast(), data.as_ptr().cast(), n) };
        prop_assert_eq!(&dst[to..to + n], &data[..]);
        // memmove within one buffer, either direction.
        let mut buf = vec![0u8; n + 128];
        buf[64..64 + n].copy_from_slice(&data);
        let mut want = buf.clone();
        let dest = 64 + to - from.min(64 + to);
        for i in 0..n {
            want[dest + i] = buf[64 + i];
        }
        // SAFETY: both ranges lie inside buf.
        unsafe { memmove(buf.as_mut_ptr().add(dest).cast(), buf.as_ptr().add(64).cast(), n) };
        prop_assert_eq!(&buf, &want);
        // memset.
        // SAFETY: the range lies inside dst.
        unsafe { memset(dst.as_mut_ptr().add(to).cast(), c as i32, n) };
        prop_assert!(dst[to..to + n].iter().all(|&b| b == c));
        // bcmp: equal, then one byte changed.
        let mut other = data.clone();
        // SAFETY: both buffers hold n bytes.
        prop_assert_eq!(unsafe { bcmp(data.as_ptr().cast(), other.as_ptr().cast(), n) }, 0);
        if n > 0 {
            let i = flip.index(n);
            other[i] = other[i].wrapping_add(1);
            // SAFETY: as above.
            prop_assert_ne!(unsafe { bcmp(data.as_ptr().cast(), other.as_ptr().cast(), n) }, 0);
        }
    }
}
