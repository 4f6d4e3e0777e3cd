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
//! Disabled, it costs a couple of branches per call.
//!
//! `--hex` (which turns `--trace` on) adds a line under each one with its first bytes in hex,
//! so UTF-8's three bytes per Chinese character, a header's `35 0f 00 00` and a character cut
//! in two by a read are visible:
//!
//! ```text
//! write 6 bytes: "你好"
//!   hex: e4 bd a0 e5 a5 bd
//! ```
//!
//! The wire pictures in the lessons' READMEs are drawn from these lines (see
//! `examples/wire_picture`), so the pictures show what a learner sees here.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::console::{self, Breaks};

/// How many characters of a buffer the trace line shows.
const PREVIEW_CHARS: usize = 40;

/// Buffers up to this size that hold binary bytes also get a hex dump (a 4-byte header fits).
const HEX_UP_TO: usize = 8;

/// How many bytes the `--hex` line shows: enough for a header and the text around a cut.
const HEX_BYTES: usize = 32;

/// `--hex`: set once while the options are parsed (see `cli::Common`), read by every trace line.
static HEX: AtomicBool = AtomicBool::new(false);

/// Turns the `--hex` line on or off for every [`Traced`] socket of this process.
pub fn set_hex(on: bool) {
    HEX.store(on, Ordering::Relaxed);
}

/// The first `max` bytes of `bytes` as hex pairs (`e4 bd a0`), with `…` when there are more.
pub fn hex(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for b in bytes.iter().take(max) {
        if !out.is_empty() {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    if bytes.len() > max {
        out.push_str(" …");
    }
    out
}

/// A short buffer with bytes that are not text: usually a length header (报头).
fn short_binary(bytes: &[u8]) -> bool {
    bytes.len() <= HEX_UP_TO && bytes.iter().any(|&b| is_binary(b))
}

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
    nonblocking: bool,
    /// `--trace-waits`: a call that would block is shown (once; see [`Traced::nonblocking`]).
    show_would_block: bool,
    /// The call (`read` or `write`) whose `would block` line was the last line shown for this
    /// socket: the same again is not shown.
    would_block_shown: Cell<Option<bool>>,
}

impl<S> Traced<S> {
    /// Wraps `inner`; traces only if `enabled` (the binary's `--trace`).
    pub fn new(inner: S, enabled: bool) -> Self {
        Traced {
            inner,
            enabled,
            label: String::new(),
            nonblocking: false,
            show_would_block: false,
            would_block_shown: Cell::new(None),
        }
    }

    /// Like [`Traced::new`], each line prefixed with `[label]` (servers use the peer address).
    pub fn labelled(inner: S, enabled: bool, label: impl std::fmt::Display) -> Self {
        Traced {
            inner,
            enabled,
            label: format!("[{label}] "),
            nonblocking: false,
            show_would_block: false,
            would_block_shown: Cell::new(None),
        }
    }

    /// For a socket in non-blocking mode (lessons 11 and 12): a call that fails with
    /// `WouldBlock` ("nothing has arrived yet", "no room yet") moved no byte. A loop that tries
    /// every socket in turn makes such calls by the million, so the trace leaves them out and
    /// shows the ones that moved bytes, ended the stream or really failed. With
    /// `show_would_block` (`--trace-waits`) it shows them too, each once:
    /// `[127.0.0.1:50312] read would block (WouldBlock)`, and the same call failing again is not
    /// shown until this socket has another line.
    pub fn nonblocking(mut self, show_would_block: bool) -> Self {
        self.nonblocking = true;
        self.show_would_block = show_would_block;
        self
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

    /// Prints the line for one `read` or `write` call: `what` is `"read"` or
    /// `"write"`, `result` what the call returned, `buf` the buffer it was given (a read that
    /// returns 0 from a non-empty buffer is the end of the stream). [`Read`] and [`Write`] call
    /// it; a wrapper of a socket that is not `Read + Write` (lesson 12's async one) calls it
    /// after each call that completes, and with `WouldBlock` for one that would have blocked,
    /// so its lines are these.
    pub fn show(&self, what: &str, result: &io::Result<usize>, buf: &[u8]) {
        if !self.enabled {
            return;
        }
        let would_block =
            self.nonblocking && matches!(result, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        if would_block {
            let again = self.would_block_shown.get() == Some(what == "write");
            if !self.show_would_block || again {
                return;
            }
        }
        self.would_block_shown
            .set(would_block.then_some(what == "write"));
        let with_hex = HEX.load(Ordering::Relaxed);
        let mut line = match result {
            _ if would_block => format!("{}{what} would block (WouldBlock)", self.label),
            Ok(0) if what == "read" && !buf.is_empty() => {
                format!("{}read 0 bytes (end of stream)", self.label)
            }
            Ok(n) => {
                let bytes = &buf[..*n];
                let mut line = format!("{}{what} {n} bytes: {}", self.label, preview(bytes));
                if with_hex {
                    // `--hex`: the first bytes on a line of their own, under the text.
                    let _ = write!(line, "\n{}  hex: {}", self.label, hex(bytes, HEX_BYTES));
                } else if short_binary(bytes) {
                    // A short binary read or write is usually a length header (报头): show its
                    // bytes in hex too, the way the lessons' READMEs draw them (`35 0f 00 00`).
                    let _ = write!(line, " = hex {}", hex(bytes, HEX_UP_TO));
                }
                line
            }
            Err(e) => format!("{}{what} failed: {e}", self.label),
        };
        // Not `eprintln!`, which panics when stderr cannot be written: a pipe whose reader has
        // gone (`2> >(head -1)`: EPIPE; std ignores only a stderr closed outright, `2>&-`,
        // EBADF). A trace line that cannot be shown is dropped; its socket call has happened.
        // One `write` for the whole line, newline included (`writeln!` makes one per piece):
        // the lines of several threads, or of several processes sharing the log, never mix.
        line.push('\n');
        let _ = io::stderr().write_all(line.as_bytes());
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
/// every character [`console::one_line`] escapes written the same way (`\n`, `\x1b`, `\u202e`),
/// `"` and `\` escaped inside the quotes, bytes that are not UTF-8 as `\xNN`, cut after
/// [`PREVIEW_CHARS`] characters with `…`. Python shows bytes the same way, except that it shows
/// every byte outside ASCII as `\xNN` where we show the text (so a C1 character, U+009B, and a
/// lone byte 0x9b both read `\x9b` here: `--hex` tells them apart).
pub fn preview(bytes: &[u8]) -> String {
    preview_chars(bytes, PREVIEW_CHARS)
}

/// [`preview`] for a trace line a lesson prints itself (lesson 06's `send_to`/`recv_from`,
/// which are not `Read`/`Write` calls): with `--hex`, followed by the hex line, as [`Traced`]
/// prints it.
pub fn trace_preview(bytes: &[u8]) -> String {
    let mut text = preview(bytes);
    if HEX.load(Ordering::Relaxed) {
        let _ = write!(text, "\n  hex: {}", hex(bytes, HEX_BYTES));
    }
    text
}

/// [`preview`] cut after `max` characters.
fn preview_chars(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max {
                out.push_str("\"…");
                return out;
            }
            match c {
                // The quoting: what would end the quotes, or look like an escape, is escaped.
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                // The rule of every lesson, line breaks included (a length header's zeros
                // show as Python shows them: struct.pack('i', 14) is b'\x0e\x00\x00\x00').
                c => console::push_safe(&mut out, c, Breaks::Escape),
            }
            shown += 1;
        }
        for b in chunk.invalid() {
            if shown == max {
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
        assert_eq!(preview(br#"say "hi" \x1b"#), r#""say \"hi\" \\x1b""#);
        // The rule of every lesson: Trojan Source and invisible characters too.
        assert_eq!(
            preview("a\u{202e}b\u{200b}c\u{9b}\x1b".as_bytes()),
            r#""a\u202eb\u200bc\x9b\x1b""#
        );
        let long = "x".repeat(100);
        assert_eq!(preview(long.as_bytes()), format!("\"{}\"…", "x".repeat(40)));
    }

    #[test]
    fn hex_shows_the_first_bytes_and_marks_a_cut() {
        assert_eq!(hex("你好".as_bytes(), 32), "e4 bd a0 e5 a5 bd");
        assert_eq!(hex(&[0x35, 0x0f, 0, 0, 1], 4), "35 0f 00 00 …");
        assert_eq!(hex(b"", 4), "");
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
