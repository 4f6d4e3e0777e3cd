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
//! For tools, not learners: with `SOCKET_LESSONS_TRACE_FILE=PATH` in the environment, every
//! read and write through a [`Traced`] socket is also appended to PATH as one JSON line, with
//! or without `--trace` (see [`TraceRecord`]). `examples/wire_picture.rs` draws the lessons'
//! wire pictures from those files.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

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

/// The environment variable that names the machine-readable trace file.
pub const TRACE_FILE_ENV: &str = "SOCKET_LESSONS_TRACE_FILE";

/// One line of the machine-readable trace (`SOCKET_LESSONS_TRACE_FILE`), as JSON.
///
/// `seq` counts this process's events from 1 and `micros` is a monotonic clock since its first
/// event; neither can be compared between two processes. To put a client's and a server's
/// events in one order, use byte offsets instead (`src/picture.rs` does): in each direction the
/// bytes are read in the order they were written, so a read can be placed after the write that
/// holds its last byte. That is always correct; clocks of two processes are not.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TraceRecord {
    /// The process that made the call: two processes may share one file.
    pub pid: u32,
    pub seq: u64,
    pub micros: u64,
    /// The `[label]` of the trace line (a server's peer address), empty for a client.
    pub label: String,
    /// `read` or `write`.
    pub op: String,
    /// Bytes moved (0 with `end` or `error`).
    pub n: usize,
    /// All the bytes moved, in hex.
    pub hex: String,
    /// A read that returned 0: end of stream.
    #[serde(default)]
    pub end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The trace file, opened on first use; `None` when the variable is not set or cannot be opened.
fn trace_file() -> Option<&'static Mutex<File>> {
    static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os(TRACE_FILE_ENV)?;
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!(
                    "cannot open {TRACE_FILE_ENV}={}: {e}",
                    path.to_string_lossy()
                );
                None
            }
        }
    })
    .as_ref()
}

/// Appends one [`TraceRecord`] to the trace file, if there is one.
fn record(label: &str, op: &str, result: &io::Result<usize>, buf: &[u8]) {
    let Some(file) = trace_file() else { return };
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static START: OnceLock<Instant> = OnceLock::new();
    let micros = START.get_or_init(Instant::now).elapsed().as_micros() as u64;
    let (n, end, error) = match result {
        Ok(n) => (*n, *n == 0 && op == "read" && !buf.is_empty(), None),
        Err(e) => (0, false, Some(e.to_string())),
    };
    let rec = TraceRecord {
        pid: std::process::id(),
        seq: SEQ.fetch_add(1, Ordering::Relaxed) + 1,
        micros,
        label: label
            .trim_start_matches('[')
            .trim_end_matches("] ")
            .to_string(),
        op: op.to_string(),
        n,
        hex: hex(&buf[..n], usize::MAX).replace(' ', ""),
        end,
        error,
    };
    // Serialising a struct of strings and numbers cannot fail.
    let mut line = serde_json::to_string(&rec).unwrap_or_default();
    line.push('\n');
    // The lock keeps lines of two connections' threads whole; a tool's file, so errors are ignored.
    if let Ok(mut f) = file.lock() {
        let _ = f.write_all(line.as_bytes());
    }
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
pub fn short_binary(bytes: &[u8]) -> bool {
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

    /// Prints (and records) the line for one `read` or `write` call: `what` is `"read"` or
    /// `"write"`, `result` what the call returned, `buf` the buffer it was given (a read that
    /// returns 0 from a non-empty buffer is the end of the stream). [`Read`] and [`Write`] call
    /// it; a wrapper of a socket that is not `Read + Write` (lesson 12's async one) calls it
    /// after each call that completes, so its lines are these.
    pub fn show(&self, what: &str, result: &io::Result<usize>, buf: &[u8]) {
        record(&self.label, what, result, buf);
        if !self.enabled {
            return;
        }
        let with_hex = HEX.load(Ordering::Relaxed);
        let line = match result {
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
        // Not `eprintln!`, which panics when stderr is closed (`2>&-`): a trace line that
        // cannot be shown is dropped, the socket call it describes has already happened.
        let _ = writeln!(io::stderr(), "{line}");
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

/// [`preview`] cut after `max` characters (the wire pictures use shorter ones).
pub fn preview_chars(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max {
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
