//! Code address to `module+0xoffset` via /proc/self/maps, read in stack-sized chunks.
//! Small room (used only when an event is written, never on a hot path).

use super::line::Buf;
use super::sys;

/// Async-signal-safe: append `module+0xoffset` (file offset) for `addr`; false if unknown.
pub fn module_offset<const N: usize>(addr: usize, out: &mut Buf<N>) -> bool {
    if addr == 0 {
        return false;
    }
    let Ok(fd) = sys::open(b"/proc/self/maps\0", libc::O_RDONLY | libc::O_CLOEXEC, 0) else { return false };
    let mut buf = [0u8; 4096];
    let mut have = 0usize;
    let mut found = false;
    'read: loop {
        let n = match sys::read(fd, buf.get_mut(have..).unwrap_or(&mut [])) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        have += n;
        let mut start = 0;
        while let Some(nl) = buf.get(start..have).and_then(|s| s.iter().position(|&b| b == b'\n')) {
            let line = buf.get(start..start + nl).unwrap_or(&[]);
            if let Some((lo, hi, off, path)) = parse_line(line) {
                if lo <= addr && addr < hi {
                    out.text(if path.is_empty() { b"?" } else { path });
                    out.byte(b'+');
                    out.hex((addr - lo + off) as u64);
                    found = true;
                    break 'read;
                }
            }
            start += nl + 1;
        }
        if start == 0 && have == buf.len() {
            // A line longer than the buffer: drop it.
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
    }
    sys::close(fd);
    found
}

fn hex(s: &[u8]) -> Option<usize> {
    let mut v: usize = 0;
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as usize;
    }
    Some(v)
}

/// `lo-hi perms off dev inode   path`
fn parse_line(line: &[u8]) -> Option<(usize, usize, usize, &[u8])> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let _perms = fields.next()?;
    let off = hex(fields.next()?)?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or(&[]);
    let path = match path.iter().position(|&b| b != b' ') {
        Some(i) => path.get(i..).unwrap_or(&[]),
        None => &[],
    };
    let dash = range.iter().position(|&b| b == b'-')?;
    Some((hex(range.get(..dash)?)?, hex(range.get(dash + 1..)?)?, off, path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_code() {
        let mut b = Buf::<512>::new();
        assert!(module_offset(finds_own_code as *const () as usize, &mut b));
        let s = core::str::from_utf8(b.as_bytes()).unwrap();
        assert!(s.contains("+0x"), "{s}");
    }

    #[test]
    fn parses() {
        let (lo, hi, off, p) = parse_line(b"7f00-7f10 r-xp 00001000 08:01 123   /usr/lib/x.so").unwrap();
        assert_eq!((lo, hi, off, p), (0x7f00, 0x7f10, 0x1000, &b"/usr/lib/x.so"[..]));
    }
}
