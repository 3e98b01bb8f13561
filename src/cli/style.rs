//! Colour and progress only where a person is watching: anstream strips the styles
//! when the stream is not a terminal (or NO_COLOR is set), so output to files and
//! pipes stays plain and stable.

use anstyle::{AnsiColor, Style};
use std::io::{IsTerminal, Write};

pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const BAD: Style = AnsiColor::Red.on_default().bold();
pub const GOOD: Style = AnsiColor::Green.on_default();
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();

/// `text` wrapped in `style`; the escapes are removed again by anstream off a terminal.
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

pub fn error_line(msg: &str) {
    let mut e = anstream::stderr();
    let _ = writeln!(e, "{}: {msg}", paint(BAD, "execguard"));
}

pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// A one-line progress note that overwrites itself; nothing at all off a terminal.
pub struct Progress {
    on: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress { on: stderr_is_tty() }
    }
    pub fn note(&self, msg: &str) {
        if self.on {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K{}", paint(DIM, msg));
            let _ = e.flush();
        }
    }
    pub fn clear(&self) {
        if self.on {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
