//! `--trace`: the wire as it happens.
//!
//! [`Traced`] wraps a socket (anything `Read + Write`) and, when enabled, prints one line on
//! stderr for every `read` and `write` call that reaches the socket:
//!
//! ```text
//! [127.0.0.1:50312] read 10 bytes: "seq 1 1000"
//! [127.0.0.1:50312] write 4 bytes: "5\x0f\x00\x00" = hex 35 0f 00 00
//! [127.0.0.1:50312] write 3893 bytes: "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n1"…
//! [127.0.0.1:50312] read 0 bytes (end of stream)
//! ```
//!
//! One line per system call, not per message: that is how a learner sees 黏包 (lesson 03),
//! where one `read` returns the tail of the previous answer, or a short read (lesson 04).
//! Disabled, it costs one branch per call.

use std::fmt::Write as _;
use std::io::{self, Read, Write};

/// How many characters of a buffer the trace line shows.
const PREVIEW_CHARS: usize = 40;

/// Buffers up to this size that hold binary bytes also get a hex dump (a 4-byte header fits).
const HEX_UP_TO: usize = 8;

/// A byte that is not text: an ASCII control other than newline, return and tab.
fn is_binary(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t')) || b == 0x7f
}

/// A socket whose reads and writes are shown on stderr when `enabled`.
#[derive(Debug)]
pub struct Traced<S> {
    inner: S,
    enabled: bool,
    label: String,
}

impl<S> Traced<S> {
    /// Wraps `inner`; traces only if `enabled` (the binary's `--trace`).
    pub fn new(inner: S, enabled: bool) -> Self {
        Traced {
            inner,
            enabled,
            label: String::new(),
        }
    }

    /// Like [`Traced::new`], each line prefixed with `[label]` (servers use the peer address).
    pub fn labelled(inner: S, enabled: bool, label: impl std::fmt::Display) -> Self {
        Traced {
            inner,
            enabled,
            label: format!("[{label}] "),
        }
    }

    /// The wrapped socket, for calls that are not reads or writes (`peer_addr`, `shutdown`, …).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped socket, mutably. Reads and writes made through it are not traced.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the socket.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Whether lines are printed.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn show(&self, what: &str, result: &io::Result<usize>, buf: &[u8]) {
        if !self.enabled {
            return;
        }
        let line = match result {
            Ok(0) if what == "read" && !buf.is_empty() => {
                format!("{}read 0 bytes (end of stream)", self.label)
            }
            Ok(n) => {
                let bytes = &buf[..*n];
                let mut line = format!("{}{what} {n} bytes: {}", self.label, preview(bytes));
                // A short binary read or write is usually a length header (报头): show its
                // bytes in hex too, the way the lessons' READMEs draw them (`35 0f 00 00`).
                if bytes.len() <= HEX_UP_TO && bytes.iter().any(|&b| is_binary(b)) {
                    line.push_str(" = hex");
                    for b in bytes {
                        let _ = write!(line, " {b:02x}");
                    }
                }
                line
            }
            Err(e) => format!("{}{what} failed: {e}", self.label),
        };
        eprintln!("{line}");
    }
}

impl<S: Read> Read for Traced<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        // Interrupted calls are retried by read_exact and friends; not worth a line.
        if !matches!(&result, Err(e) if e.kind() == io::ErrorKind::Interrupted) {
            self.show("read", &result, buf);
        }
        result
    }
}

impl<S: Write> Write for Traced<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        if !matches!(&result, Err(e) if e.kind() == io::ErrorKind::Interrupted) {
            self.show("write", &result, buf);
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A short, escaped, quoted preview of `bytes`: UTF-8 text shown as text (Chinese included),
/// control characters escaped (`\n`), bytes that are not UTF-8 as `\xNN`, cut after
/// [`PREVIEW_CHARS`] characters with `…`.
pub fn preview(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == PREVIEW_CHARS {
                out.push_str("\"…");
                return out;
            }
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' | '\r' | '\t' => out.extend(c.escape_default()),
                // Other ASCII control bytes (a length header's zeros) as Python shows them:
                // struct.pack('i', 14) is b'\x0e\x00\x00\x00'.
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => out.extend(c.escape_default()),
                c => out.push(c),
            }
            shown += 1;
        }
        for b in chunk.invalid() {
            if shown == PREVIEW_CHARS {
                out.push_str("\"…");
                return out;
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
            shown += 1;
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_escapes_and_cuts() {
        assert_eq!(preview(b"hi\n"), r#""hi\n""#);
        assert_eq!(preview("你好".as_bytes()), "\"你好\"");
        assert_eq!(preview(&[0xC4, 0xE3, b'a']), r#""\xc4\xe3a""#);
        assert_eq!(preview(&[14, 0, 0, 0, b'{']), r#""\x0e\x00\x00\x00{""#);
        let long = "x".repeat(100);
        assert_eq!(preview(long.as_bytes()), format!("\"{}\"…", "x".repeat(40)));
    }

    #[test]
    fn traced_passes_bytes_through() {
        let mut t = Traced::new(io::Cursor::new(b"abc".to_vec()), false);
        let mut buf = [0u8; 8];
        assert_eq!(t.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(t.read(&mut buf).unwrap(), 0);
    }
}
