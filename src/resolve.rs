//! Load time only: the real functions, found the way `dlsym(RTLD_NEXT)` finds them —
//! the first definition in the objects loaded after this library — by reading their
//! GNU hash tables directly. Some 40 `dlsym` calls cost about 13 µs per process start
//! on these machines, two thirds of the start-up budget; this costs a few. Whatever
//! it cannot settle (no GNU hash table, an IFUNC, a name it does not find) is left
//! for `dlsym`, name by name, so the result is never worse than `dlsym`'s.

use core::ffi::c_void;
use libc::{c_int, dl_phdr_info, size_t};

const MAX_OBJS: usize = 64;
const DT_NULL: i64 = 0;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const DT_VERSYM: i64 = 0x6fff_fff0;
const STT_FUNC: u8 = 2;
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

#[derive(Clone, Copy)]
struct Obj {
    base: usize,
    hash: *const u32,
    symtab: *const Sym,
    strtab: *const u8,
    versym: *const u16,
    mine: bool,
}

struct Objs {
    list: [Option<Obj>; MAX_OBJS],
    n: usize,
    me: usize,
}

/// Fill `out[i]` for each `names[i]` it can settle (NUL-terminated names); leaves
/// the others 0.
#[link_section = ".text.startup.execguard"]
pub fn next_definitions(names: &[&[u8]], out: &mut [usize]) {
    let mut objs = Objs { list: [None; MAX_OBJS], n: 0, me: next_definitions as *const () as usize };
    // SAFETY: the callback only reads the loader's data for the duration of the call.
    unsafe { libc::dl_iterate_phdr(Some(collect), &mut objs as *mut Objs as *mut c_void) };
    let Some(mine) = objs.list.iter().take(objs.n).position(|o| o.is_some_and(|o| o.mine)) else { return };
    for (name, slot) in names.iter().zip(out.iter_mut()) {
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        for obj in objs.list.iter().take(objs.n).skip(mine + 1).flatten() {
            // SAFETY: the tables belong to a loaded object (checked in collect).
            if let Some(addr) = unsafe { lookup(obj, name) } {
                *slot = addr;
                break;
            }
        }
    }
}

#[link_section = ".text.startup.execguard"]
unsafe extern "C" fn collect(info: *mut dl_phdr_info, _size: size_t, data: *mut c_void) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our Objs.
    let (info, objs) = unsafe { (&*info, &mut *(data as *mut Objs)) };
    let base = info.dlpi_addr as usize;
    let (mut dynamic, mut mine) = (0usize, false);
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let start = base.wrapping_add(ph.p_vaddr as usize);
        match ph.p_type {
            libc::PT_DYNAMIC => dynamic = start,
            libc::PT_LOAD if start <= objs.me && objs.me < start.wrapping_add(ph.p_memsz as usize) => mine = true,
            _ => {}
        }
    }
    let mut obj = Obj {
        base,
        hash: core::ptr::null(),
        symtab: core::ptr::null(),
        strtab: core::ptr::null(),
        versym: core::ptr::null(),
        mine,
    };
    if dynamic != 0 {
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
            match tag {
                DT_GNU_HASH => obj.hash = addr as *const u32,
                DT_SYMTAB => obj.symtab = addr as *const Sym,
                DT_STRTAB => obj.strtab = addr as *const u8,
                DT_VERSYM => obj.versym = addr as *const u16,
                _ => {}
            }
            // SAFETY: still inside the dynamic array (DT_NULL not reached).
            d = unsafe { d.add(1) };
        }
    }
    if let Some(slot) = objs.list.get_mut(objs.n) {
        *slot = Some(obj);
        objs.n += 1;
        0
    } else {
        1
    }
}

#[link_section = ".text.startup.execguard"]
fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// The default-version, defined, global or weak FUNC `name` in `obj`, if any.
///
/// # Safety
/// `obj`'s tables must be those of a loaded object.
#[link_section = ".text.startup.execguard"]
unsafe fn lookup(obj: &Obj, name: &[u8]) -> Option<usize> {
    if obj.hash.is_null() || obj.symtab.is_null() || obj.strtab.is_null() {
        return None;
    }
    // SAFETY (whole body): reading the object's GNU hash table, laid out as
    // [nbuckets, symoffset, bloom_size, bloom_shift, bloom[bloom_size] (u64),
    //  buckets[nbuckets], chain[]].
    unsafe {
        let gh = obj.hash;
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
                let sym = &*obj.symtab.add(i as usize);
                let ty = sym.info & 0xf;
                let bind = sym.info >> 4;
                let hidden = !obj.versym.is_null() && *obj.versym.add(i as usize) & VERSYM_HIDDEN != 0;
                if sym.shndx != 0 && !hidden && ty == STT_FUNC && (bind == STB_GLOBAL || bind == STB_WEAK) && named(obj.strtab.add(sym.name as usize), name) {
                    return Some(obj.base.wrapping_add(sym.value as usize));
                }
            }
            if h2 & 1 != 0 {
                return None;
            }
            i += 1;
        }
    }
}

/// # Safety
/// `p` points to a NUL-terminated string.
#[link_section = ".text.startup.execguard"]
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
mod tests {
    use super::*;

    /// From the test binary (the main program), "after me" is every library: the
    /// result must be exactly what dlsym(RTLD_NEXT) says, for every real function.
    #[test]
    fn agrees_with_dlsym() {
        let names: [&[u8]; 12] = [
            b"execve\0", b"execvpe\0", b"fork\0", b"select\0", b"pthread_sigmask\0", b"fcntl\0", b"fcntl64\0",
            b"posix_spawn\0", b"system\0", b"popen\0", b"close_range\0", b"no_such_function_here\0",
        ];
        let mut out = [0usize; 12];
        next_definitions(&names, &mut out);
        let mut settled = 0;
        for (name, got) in names.iter().zip(out) {
            // SAFETY: NUL-terminated name.
            let want = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const libc::c_char) } as usize;
            if got != 0 {
                settled += 1;
                assert_eq!(got, want, "{}", String::from_utf8_lossy(name));
            }
        }
        assert!(settled >= 10, "settled only {settled}");
    }
}
