//! Provenance: `module+0xoffset` (as the shim writes `origin`, `caller`, `blocked_by`)
//! to `function (file:line)` with the module's own debug info, via addr2line/object.
//!
//! The offset is a file offset, as `/proc/PID/maps` gives it (address minus mapping
//! start plus mapping offset): it is turned into the module's virtual address through
//! the PT_LOAD segment holding it. The addresses are return addresses, so the line
//! looked up is the one of the byte before (the call instruction).

use std::collections::HashMap;
use std::path::Path;

struct Module {
    loader: addr2line::Loader,
    /// (file offset, file size, virtual address) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

#[derive(Default)]
pub struct Symbolizer {
    modules: HashMap<String, Option<Module>>,
    memo: HashMap<String, Option<Place>>,
}

/// What debug info says about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub function: Option<String>,
    /// The source file as the compiler recorded it (usually absolute).
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// `("/usr/lib/x.so", 0x1234)` from `/usr/lib/x.so+0x1234`.
pub fn split(spec: &str) -> Option<(&str, u64)> {
    let (module, hex) = spec.rsplit_once("+0x")?;
    let off = u64::from_str_radix(hex.trim(), 16).ok()?;
    (!module.is_empty()).then_some((module, off))
}

fn load(path: &str) -> Option<Module> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: read-only private map; a file changed under us gives wrong names, not UB
    // in our code (object bounds-checks every read).
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let (segments, debug) = {
        use object::{Object, ObjectSegment};
        let obj = object::File::parse(&*map).ok()?;
        let segs = obj.segments().map(|s| (s.file_range().0, s.file_range().1, s.address())).collect();
        (segs, debug_file(Path::new(path), &obj))
    };
    // A separate debug file has the same addresses and the DWARF the module lacks.
    let loader = debug
        .and_then(|d| addr2line::Loader::new(d).ok())
        .or_else(|| addr2line::Loader::new(Path::new(path)).ok())?;
    Some(Module { loader, segments })
}

/// Where distributions put a module's DWARF (Debian's `-dbg`/`-dbgsym` packages): by
/// build-id, then by `.gnu_debuglink` next to it, in `.debug/`, or under /usr/lib/debug.
fn debug_file(module: &Path, obj: &object::File) -> Option<std::path::PathBuf> {
    use object::Object;
    use std::path::PathBuf;
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(Some(id)) = obj.build_id() {
        if id.len() > 1 {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            candidates.push(PathBuf::from(format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..])));
        }
    }
    if let Ok(Some((name, _crc))) = obj.gnu_debuglink() {
        let name = String::from_utf8_lossy(name).into_owned();
        let dir = module.parent().unwrap_or(Path::new("/"));
        candidates.push(dir.join(&name));
        candidates.push(dir.join(".debug").join(&name));
        candidates.push(Path::new("/usr/lib/debug").join(dir.strip_prefix("/").unwrap_or(dir)).join(&name));
    }
    candidates.into_iter().find(|c| c.is_file() && c != module)
}

fn vaddr(segments: &[(u64, u64, u64)], off: u64) -> u64 {
    segments
        .iter()
        .find(|(o, size, _)| off >= *o && off < o + size)
        .map(|(o, _, va)| off - o + va)
        .unwrap_or(off)
}

impl Symbolizer {
    /// `function (file:line)`, `function`, or None when nothing is known (no such
    /// file, no symbols): the caller then shows the raw `module+0xoffset`.
    pub fn resolve(&mut self, spec: &str) -> Option<String> {
        let p = self.locate(spec)?;
        let place = p.file.as_ref().zip(p.line).map(|(f, n)| format!("{f}:{n}"));
        match (p.function, place) {
            (Some(f), Some(p)) => Some(format!("{f} ({p})")),
            (Some(f), None) => Some(f),
            (None, Some(p)) => Some(p),
            (None, None) => None,
        }
    }

    /// Function, file and line of `module+0xoffset`, each when known.
    pub fn locate(&mut self, spec: &str) -> Option<Place> {
        if let Some(hit) = self.memo.get(spec) {
            return hit.clone();
        }
        let out = self.lookup(spec);
        self.memo.insert(spec.to_string(), out.clone());
        out
    }

    fn lookup(&mut self, spec: &str) -> Option<Place> {
        let (path, off) = split(spec)?;
        let m = self.modules.entry(path.to_string()).or_insert_with(|| load(path)).as_ref()?;
        let probe = vaddr(&m.segments, off).saturating_sub(1);
        let mut func = None;
        let mut place = None;
        if let Ok(mut frames) = m.loader.find_frames(probe) {
            // The innermost frame: where the call really is, inlined or not.
            if let Ok(Some(f)) = frames.next() {
                func = f.function.as_ref().and_then(|n| n.demangle().ok().map(|s| s.into_owned()));
                place = f.location.as_ref().and_then(|l| Some((l.file?.to_string(), l.line?)));
            }
        }
        if place.is_none() {
            if let Ok(Some(l)) = m.loader.find_location(probe) {
                place = l.file.zip(l.line).map(|(f, n)| (f.to_string(), n));
            }
        }
        let func = func.or_else(|| {
            m.loader.find_symbol(probe).map(|s| addr2line::demangle_auto(s.into(), None).into_owned())
        });
        if func.is_none() && place.is_none() {
            return None;
        }
        let (file, line) = place.unzip();
        Some(Place { function: func, file, line })
    }

    /// `spec` followed by what it resolves to, for the text report.
    pub fn describe(&mut self, spec: &str, enabled: bool) -> String {
        match enabled.then(|| self.resolve(spec)).flatten() {
            Some(r) => format!("{r} [{}]", short_module(spec)),
            None => spec.to_string(),
        }
    }
}

/// `libfoo.so+0x1234` from `/usr/lib/libfoo.so+0x1234`.
pub fn short_module(spec: &str) -> String {
    match split(spec) {
        Some((m, off)) => format!("{}+{off:#x}", Path::new(m).file_name().map(|f| f.to_string_lossy()).unwrap_or_default()),
        None => spec.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn splits_module_and_offset() {
        assert_eq!(split("/usr/lib/a+b.so+0x1f"), Some(("/usr/lib/a+b.so", 0x1f)));
        assert_eq!(split("nonsense"), None);
        assert_eq!(short_module("/usr/lib/libx.so+0x10"), "libx.so+0x10");
    }

    #[test]
    fn file_offset_to_vaddr() {
        let segs = [(0, 0x1000, 0), (0x1000, 0x500, 0x1000), (0x2000, 0x100, 0x3000)];
        assert_eq!(vaddr(&segs, 0x1010), 0x1010);
        assert_eq!(vaddr(&segs, 0x2010), 0x3010);
        assert_eq!(vaddr(&segs, 0x9999), 0x9999);
    }

    #[test]
    fn missing_module_is_none() {
        assert_eq!(Symbolizer::default().resolve("/nonexistent/x.so+0x10"), None);
    }
}
