//! The real functions, found the way `dlsym(RTLD_NEXT)` finds them — the first
//! definition in the objects loaded after this library — by reading their GNU hash
//! tables directly, and only when a hook is first called.
//!
//! The constructor records the objects after this library once (`snapshot`: one
//! `dl_iterate_phdr`, about 1 µs). A lookup (`find`) then reads nothing but the
//! loader's tables of those objects, which never change or go away (objects loaded
//! at start are never unloaded): no lock, no allocation, no `dlsym`, so it is safe in
//! the small room too. Resolving all 36 entries at every start cost 7–10 µs, half the
//! start-up budget, in processes that mostly never call a hooked function.
//!
//! What the snapshot cannot serve (more than SCOPE_MAX objects after ours, an object
//! without a GNU hash table) makes it unusable; src/real.rs then resolves every entry
//! with `dlsym` in the constructor, as it always did.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_int, dl_phdr_info, size_t};

/// Objects after this library that a lookup searches (programs with many libraries
/// load a few dozen; libc comes within the first ten in the ones we run).
const SCOPE_MAX: usize = 32;
const DT_NULL: i64 = 0;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const DT_VERSYM: i64 = 0x6fff_fff0;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const VERSYM_HIDDEN: u16 = 0x8000;

#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

#[repr(C)]
struct Sym {
    name: u32,
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

/// An object's tables, as offsets from its base (0: absent): 24 bytes where four
/// pointers took 40, so that the snapshot leaves room in the page every start
/// writes (config::FOLLOW_HOT).
#[derive(Clone, Copy)]
struct Obj {
    base: usize,
    hash: u32,
    symtab: u32,
    strtab: u32,
    versym: u32,
}

const NO_OBJ: Obj = Obj { base: 0, hash: 0, symtab: 0, strtab: 0, versym: 0 };

impl Obj {
    /// Async-signal-safe: the table at `off`, or null.
    fn at<T>(&self, off: u32) -> *const T {
        if off == 0 {
            core::ptr::null()
        } else {
            self.base.wrapping_add(off as usize) as *const T
        }
    }
}

/// `state`: 0 before the snapshot, n + 1 once `objs[..n]` are published, UNUSABLE
/// when lookups must go through dlsym.
struct Scope {
    objs: UnsafeCell<[Obj; SCOPE_MAX]>,
    state: AtomicUsize,
}

// SAFETY: `objs` is written once, by whoever moves `state` from 0 to TAKING, before
// the Release store that publishes it; readers load `state` with Acquire first.
unsafe impl Sync for Scope {}

const TAKING: usize = usize::MAX - 1;
const UNUSABLE: usize = usize::MAX;

/// Beside the function table: the page the loader writes anyway.
#[link_section = ".data.execguard_hot"]
static SCOPE: Scope = Scope { objs: UnsafeCell::new([NO_OBJ; SCOPE_MAX]), state: AtomicUsize::new(0) };

/// What a lookup found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Found {
    Addr(usize),
    /// No object after ours defines it (dlsym would not find it either).
    Missing,
    /// The snapshot cannot answer: ask dlsym (only in the loader's own context).
    Unserved,
}

/// Load time (the constructor, or a hook that runs before it): record the objects
/// after this library, straight into the published list. False when lookups cannot
/// be served from it.
#[link_section = ".text.startup.execguard"]
pub fn snapshot() -> bool {
    snapshot_named(&mut core::ptr::null())
}

/// `snapshot`, which also sets `name` to this library's file name as the loader has
/// it (the `LD_PRELOAD` entry that loaded it) when this call took the snapshot:
/// following children needs that name, and `dladdr` would search for it again.
#[link_section = ".text.startup.execguard"]
pub fn snapshot_named(name: &mut *const libc::c_char) -> bool {
    match SCOPE.state.compare_exchange(0, TAKING, Ordering::Acquire, Ordering::Acquire) {
        Ok(_) => {}
        Err(UNUSABLE) => return false,
        // Published, or being published by another thread (then `find` collects a
        // private list until it is).
        Err(_) => return true,
    }
    // SAFETY: `state` is TAKING and we moved it there: nobody else reads or writes
    // `objs` until the Release store below.
    let objs = unsafe { &mut *SCOPE.objs.get() };
    let mut c = Collect::new(objs);
    walk(&mut c);
    *name = c.name;
    let state = if c.usable() { c.n + 1 } else { UNUSABLE };
    SCOPE.state.store(state, Ordering::Release);
    state != UNUSABLE
}

fn walk(c: &mut Collect<'_>) {
    // SAFETY: the callback only reads the loader's data for the duration of the call.
    unsafe { libc::dl_iterate_phdr(Some(collect), c as *mut Collect as *mut c_void) };
}

/// Async-signal-safe: lookups are served from the snapshot (taken, and usable), so
/// `find` will not need the loader's locks or `dlsym`.
pub fn serving() -> bool {
    !matches!(SCOPE.state.load(Ordering::Acquire), 0 | TAKING | UNUSABLE)
}

/// Async-signal-safe once the constructor has taken the snapshot (it reads the
/// loader's tables only): the first default-version definition of `name`
/// (NUL-terminated or not) in the objects after this library. Before that, in the
/// loader's own context, it takes the snapshot itself.
#[link_section = ".text.hot.execguard"]
pub fn find(name: &[u8]) -> Found {
    let name = name.strip_suffix(&[0]).unwrap_or(name);
    let mut state = SCOPE.state.load(Ordering::Acquire);
    if state == 0 {
        // Before the constructor: take the snapshot now (loader context).
        snapshot();
        state = SCOPE.state.load(Ordering::Acquire);
    }
    match state {
        UNUSABLE => Found::Unserved,
        0 | TAKING => {
            // Another thread is taking it: a private list for this one lookup.
            let mut list = [NO_OBJ; SCOPE_MAX];
            let mut c = Collect::new(&mut list);
            walk(&mut c);
            if !c.usable() {
                return Found::Unserved;
            }
            let n = c.n;
            search(list.get(..n).unwrap_or(&[]), name)
        }
        _ => {
            // SAFETY: published with Release before `state` became n + 1; never
            // written again.
            let objs = unsafe { &*SCOPE.objs.get() };
            search(objs.get(..state - 1).unwrap_or(&[]), name)
        }
    }
}

/// Async-signal-safe.
fn search(objs: &[Obj], name: &[u8]) -> Found {
    for obj in objs {
        // SAFETY: the tables belong to an object loaded at start (checked in collect).
        match unsafe { lookup(obj, name, Want::Func) } {
            Some(Def::Func(addr)) => return Found::Addr(addr),
            Some(Def::Ifunc(resolver)) => return ifunc(resolver),
            None => {}
        }
    }
    Found::Missing
}

/// Async-signal-safe (a resolver reads the CPU features the loader recorded).
/// An IFUNC's address is what its resolver returns. On x86_64 glibc calls resolvers
/// with no arguments (they read the CPU features the loader recorded), and so does
/// this; elsewhere the arguments differ, so dlsym answers. No syscall wrapper the
/// shim hooks is an IFUNC in glibc; this is for a libc that makes one so.
#[cfg(target_arch = "x86_64")]
fn ifunc(resolver: usize) -> Found {
    // SAFETY: an STT_GNU_IFUNC symbol's value is its resolver, a function of no
    // arguments on x86_64 returning the implementation's address.
    let r: unsafe extern "C" fn() -> usize = unsafe { core::mem::transmute(resolver) };
    // SAFETY: as above.
    match unsafe { r() } {
        0 => Found::Missing,
        a => Found::Addr(a),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn ifunc(_resolver: usize) -> Found {
    Found::Unserved
}

struct Collect<'a> {
    list: &'a mut [Obj; SCOPE_MAX],
    n: usize,
    me: usize,
    seen_me: bool,
    ok: bool,
    name: *const libc::c_char,
    /// The vDSO's ELF header (0: none): the vDSO is in the loader's list but not in
    /// any scope `dlsym` searches, and it defines `clock_gettime`, `gettimeofday`,
    /// `time` and `getcpu` too. Listed after us (as in a program that is itself the
    /// caller, the unit tests' binary), its definitions would win over libc's.
    vdso: usize,
    /// Leave out what cannot be searched (no GNU hash table, tables out of reach,
    /// objects past SCOPE_MAX) instead of giving up: `Lenient`.
    lenient: bool,
}

impl<'a> Collect<'a> {
    fn new(list: &'a mut [Obj; SCOPE_MAX]) -> Self {
        // SAFETY: getauxval is always safe to call.
        let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
        Collect { list, n: 0, me: snapshot as *const () as usize, seen_me: false, ok: true, name: core::ptr::null(), vdso, lenient: false }
    }

    fn usable(&self) -> bool {
        (self.ok || self.lenient) && self.seen_me
    }

    /// An object this walk cannot search: the walk fails, or (lenient) goes on
    /// without it. The callback's answer to dl_iterate_phdr.
    fn cannot_search(&mut self) -> c_int {
        self.ok = false;
        if self.lenient {
            0
        } else {
            1
        }
    }
}

/// Load time only, where no `dlsym` exists to fall back on (glibc before 2.34
/// without libdl loaded) and the snapshot could not serve: the objects after this
/// library that can be searched, leaving out those that cannot (found by neither
/// way otherwise), walked once for every lookup `find` asks of it.
pub struct Lenient {
    list: [Obj; SCOPE_MAX],
    n: usize,
}

impl Lenient {
    pub fn walk() -> Lenient {
        let mut list = [NO_OBJ; SCOPE_MAX];
        let mut c = Collect::new(&mut list);
        c.lenient = true;
        walk(&mut c);
        let n = if c.usable() { c.n } else { 0 };
        Lenient { list, n }
    }

    /// `name`'s first definition in those objects.
    pub fn find(&self, name: &[u8]) -> Found {
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        search(self.list.get(..self.n).unwrap_or(&[]), name)
    }
}

#[link_section = ".text.startup.execguard"]
unsafe extern "C" fn collect(info: *mut dl_phdr_info, _size: size_t, data: *mut c_void) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our Collect.
    let (info, c) = unsafe { (&*info, &mut *(data as *mut Collect<'_>)) };
    let base = info.dlpi_addr as usize;
    let (mut dynamic, mut mine) = (0usize, false);
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let start = base.wrapping_add(ph.p_vaddr as usize);
        match ph.p_type {
            libc::PT_DYNAMIC => dynamic = start,
            libc::PT_LOAD if start <= c.me && c.me < start.wrapping_add(ph.p_memsz as usize) => mine = true,
            _ => {}
        }
    }
    if mine {
        c.seen_me = true;
        c.name = info.dlpi_name;
        return 0;
    }
    // The vDSO is linked at address 0: its base is its ELF header's address. (With
    // no vDSO that is 0, the base of a non-PIE main program only: never after us.)
    if !c.seen_me || dynamic == 0 || base == c.vdso {
        // Before us in the search order, nothing to search (no dynamic section), or
        // the vDSO (no scope holds it).
        return 0;
    }
    let mut obj = Obj { base, ..NO_OBJ };
    let mut d = dynamic as *const Dyn;
    // SAFETY: the dynamic section ends with DT_NULL; bounded as well.
    for _ in 0..512 {
        let (tag, val) = unsafe { ((*d).tag, (*d).val as usize) };
        if tag == DT_NULL {
            break;
        }
        // glibc relocates these in place on most targets, not for the vDSO or
        // read-only dynamic sections: an address below the base is still relative.
        let addr = if val < base { val.wrapping_add(base) } else { val };
        // As an offset from the base: one that does not fit (never seen) leaves the
        // lookups to dlsym.
        let off = || match u32::try_from(addr.wrapping_sub(base)) {
            Ok(o) if o != 0 => Some(o),
            _ => None,
        };
        let slot = match tag {
            DT_GNU_HASH => Some(&mut obj.hash),
            DT_SYMTAB => Some(&mut obj.symtab),
            DT_STRTAB => Some(&mut obj.strtab),
            DT_VERSYM => Some(&mut obj.versym),
            _ => None,
        };
        if let Some(slot) = slot {
            match off() {
                Some(o) => *slot = o,
                None => return c.cannot_search(),
            }
        }
        // SAFETY: still inside the dynamic array (DT_NULL not reached).
        d = unsafe { d.add(1) };
    }
    if obj.symtab == 0 || obj.strtab == 0 {
        // No symbols at all: nothing to find there.
        return 0;
    }
    match c.list.get_mut(c.n) {
        // Without a GNU hash table only dlsym can search it.
        Some(slot) if obj.hash != 0 => {
            *slot = obj;
            c.n += 1;
            0
        }
        _ => c.cannot_search(),
    }
}

/// Async-signal-safe.
fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// A definition: a function's (or data object's) address, or an IFUNC's resolver.
enum Def {
    Func(usize),
    Ifunc(usize),
}

/// What kind of symbol a lookup takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Func,
    /// A data object of exactly this many bytes.
    Object(u64),
}

const STT_OBJECT: u8 = 1;

/// Async-signal-safe once the snapshot is published (never takes it, never asks
/// dlsym): the address of the first default-version data object `name` of `size`
/// bytes in the objects after this library. None when there is none, or when the
/// snapshot cannot answer.
pub fn find_object(name: &[u8], size: u64) -> Option<usize> {
    let name = name.strip_suffix(&[0]).unwrap_or(name);
    let state = SCOPE.state.load(Ordering::Acquire);
    if matches!(state, 0 | TAKING | UNUSABLE) {
        return None;
    }
    // SAFETY: published with Release before `state` became n + 1; never written again.
    let objs = unsafe { &*SCOPE.objs.get() };
    objs.get(..state - 1).unwrap_or(&[]).iter().find_map(|obj| {
        // SAFETY: the tables belong to an object loaded at start (checked in collect).
        match unsafe { lookup(obj, name, Want::Object(size)) } {
            Some(Def::Func(addr)) => Some(addr),
            _ => None,
        }
    })
}

/// Async-signal-safe: the default-version, defined, global or weak function (or data
/// object, as `want` says) `name` in `obj`, if any.
///
/// # Safety
/// `obj`'s tables must be those of a loaded object.
#[link_section = ".text.hot.execguard"]
unsafe fn lookup(obj: &Obj, name: &[u8], want: Want) -> Option<Def> {
    let (gh, symtab, strtab, versym) = (obj.at::<u32>(obj.hash), obj.at::<Sym>(obj.symtab), obj.at::<u8>(obj.strtab), obj.at::<u16>(obj.versym));
    if gh.is_null() || symtab.is_null() || strtab.is_null() {
        return None;
    }
    // SAFETY (whole body): reading the object's GNU hash table, laid out as
    // [nbuckets, symoffset, bloom_size, bloom_shift, bloom[bloom_size] (u64),
    //  buckets[nbuckets], chain[]].
    unsafe {
        let (nbuckets, symoffset, bloom_size, bloom_shift) = (*gh, *gh.add(1), *gh.add(2), *gh.add(3));
        if nbuckets == 0 || bloom_size == 0 {
            return None;
        }
        let bloom = gh.add(4) as *const u64;
        let buckets = gh.add(4 + 2 * bloom_size as usize);
        let chain = buckets.add(nbuckets as usize);
        let h = gnu_hash(name);
        let word = *bloom.add(((h / 64) % bloom_size) as usize);
        let mask = (1u64 << (h % 64)) | (1u64 << ((h >> bloom_shift) % 64));
        if word & mask != mask {
            return None;
        }
        let mut i = *buckets.add((h % nbuckets) as usize);
        if i < symoffset {
            return None;
        }
        loop {
            let h2 = *chain.add((i - symoffset) as usize);
            if h | 1 == h2 | 1 {
                let sym = &*symtab.add(i as usize);
                let ty = sym.info & 0xf;
                let bind = sym.info >> 4;
                let hidden = !versym.is_null() && *versym.add(i as usize) & VERSYM_HIDDEN != 0;
                let kind_ok = match want {
                    Want::Func => ty == STT_FUNC || ty == STT_GNU_IFUNC,
                    Want::Object(size) => ty == STT_OBJECT && sym.size == size,
                };
                if sym.shndx != 0 && !hidden && kind_ok && (bind == STB_GLOBAL || bind == STB_WEAK) && named(strtab.add(sym.name as usize), name) {
                    let addr = obj.base.wrapping_add(sym.value as usize);
                    return Some(if ty == STT_GNU_IFUNC { Def::Ifunc(addr) } else { Def::Func(addr) });
                }
            }
            if h2 & 1 != 0 {
                return None;
            }
            i += 1;
        }
    }
}

/// Async-signal-safe.
///
/// # Safety
/// `p` points to a NUL-terminated string.
unsafe fn named(p: *const u8, name: &[u8]) -> bool {
    for (i, &c) in name.iter().enumerate() {
        // SAFETY: stops at the first difference, and the string is NUL-terminated.
        if unsafe { *p.add(i) } != c {
            return false;
        }
    }
    // SAFETY: all name.len() bytes matched, so p[len] is within the string.
    unsafe { *p.add(name.len()) == 0 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// From the test binary (the main program), "after me" is every library: the
    /// result must be exactly what dlsym(RTLD_NEXT) says, for every real function.
    #[test]
    fn agrees_with_dlsym() {
        assert!(snapshot(), "a glibc system: every object has a GNU hash table");
        let names: [&[u8]; 12] = [
            b"execve\0", b"execvpe\0", b"fork\0", b"select\0", b"pthread_sigmask\0", b"fcntl\0", b"fcntl64\0",
            b"posix_spawn\0", b"system\0", b"popen\0", b"close_range\0", b"no_such_function_here\0",
        ];
        for name in names {
            // SAFETY: NUL-terminated name.
            let want = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const libc::c_char) } as usize;
            let got = match find(name) {
                Found::Addr(a) => a,
                Found::Missing => 0,
                Found::Unserved => panic!("unserved: {}", String::from_utf8_lossy(name)),
            };
            assert_eq!(got, want, "{}", String::from_utf8_lossy(name));
        }
        // The x86-64 vDSO defines these too, and in this binary it comes after the
        // caller: dlsym's answer is libc's, never the vDSO's. (glibc makes some of
        // them IFUNCs; elsewhere than on x86-64 only dlsym resolves those, see
        // `ifunc`.)
        for name in [b"clock_gettime\0".as_slice(), b"gettimeofday\0", b"time\0", b"getcpu\0"] {
            // SAFETY: NUL-terminated name.
            let want = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const libc::c_char) } as usize;
            match find(name) {
                Found::Addr(a) => assert_eq!(a, want, "{}", String::from_utf8_lossy(name)),
                Found::Missing => assert_eq!(want, 0, "{}", String::from_utf8_lossy(name)),
                // Only x86-64 resolves IFUNCs itself.
                Found::Unserved if cfg!(not(target_arch = "x86_64")) => {}
                Found::Unserved => panic!("unserved: {}", String::from_utf8_lossy(name)),
            }
        }
    }

    /// A data object: glibc's own count of live threads (GLIBC_PRIVATE, for
    /// libthread_db), at the address dlsym gives, only at its exact size; a function
    /// is not a data object, nor the reverse.
    #[test]
    fn data_objects_like_dlsym() {
        assert!(snapshot());
        let name = b"__nptl_nthreads\0";
        // SAFETY: NUL-terminated name.
        let want = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const libc::c_char) } as usize;
        assert_ne!(want, 0, "glibc >= 2.34 exports __nptl_nthreads");
        assert_eq!(find_object(name, 4), Some(want));
        assert_eq!(find_object(name, 8), None, "another size is another object");
        assert_eq!(find_object(b"fork", 4), None, "a function is no data object");
        assert_eq!(find(name), Found::Missing, "a data object is no function");
        // A thread more while it runs. Other tests' threads come and go meanwhile (the
        // harness runs tests in parallel): a few tries, one must see exactly one more.
        let one_more = (0..50).any(|_| {
            // SAFETY: glibc's unsigned int, live for the process.
            let n = unsafe { core::ptr::read_volatile(want as *const u32) };
            // SAFETY: as above.
            let t = std::thread::spawn(move || unsafe { core::ptr::read_volatile(want as *const u32) });
            t.join().unwrap() == n + 1
        });
        assert!(one_more, "__nptl_nthreads did not count a new thread");
    }

    /// An IFUNC (memcpy is one in glibc on x86_64) resolves to what dlsym returns.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn ifunc_like_dlsym() {
        let name = b"memcpy\0";
        // SAFETY: NUL-terminated name.
        let want = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const libc::c_char) } as usize;
        assert_eq!(find(name), Found::Addr(want));
    }
}
