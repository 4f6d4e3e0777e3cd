//! Lesson 07's wire protocol, shared by `server.rs` and `client.rs`: the JSON requests and
//! replies that ride on lesson 04's frames, the bare-name rule, and the temporary-file guard.
//!
//! Every frame is lesson 04's: a 4-byte little-endian `i32` length `n` (`struct.pack('i', n)`),
//! then `n` bytes of a UTF-8 JSON object, the notes' 字典报头 (dict header). A file's bytes
//! follow their header raw, unframed: the header's `size` says how many.
//!
//! ```text
//!  request                                       reply
//!  {"cmd":"upload","file_name":N,"size":S} + S   {"ok":true,"file_name":N,"size":S,"xxh3":H}
//!  {"cmd":"download","file_name":N}              {"ok":true,"file_name":N,"size":S} + S + {"xxh3":H}
//!  {"cmd":"list"}                                {"ok":true,"files":[{"file_name":N,"size":S},…]}
//!  {"file_name":N,"size":S,…} + S  (the notes)   none
//!  anything refused                              {"ok":false,"error":MESSAGE}
//! ```
//!
//! `H` is the XXH3-128 digest of the file's bytes as 32 lowercase hex digits (the text of
//! `xxhsum -H2` and Python's `xxhash.xxh3_128_hexdigest`). It detects accidents (a truncated
//! or mangled transfer, a bug), not attackers: anyone who can change the bytes can change the
//! digest too. Why not SHA-256: computed on both ends it halves a loopback transfer; XXH3
//! costs about a tenth (see the lesson README).

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use socket_lessons::console::{is_format_or_separator, one_line};
use socket_lessons::{is_timeout, wire::Traced};

use crate::framing;

/// A JSON object, as requests and replies are.
pub type Object = Map<String, Value>;

/// How many bytes one `read`/`write` of a file body moves. The notes' `recv(1024)` makes a
/// system call (and, in Python, an object) per KiB; std's `io::copy` uses 8 KiB. Measured over
/// loopback with a 512 MiB file (2 busy cores): 1 MiB moved 0.89-0.96x
/// as fast as a plain 1 MiB copy without framing or digest, 256 KiB 0.86-0.98x, 128 KiB
/// 0.80-0.88x, at about 4 MiB peak resident memory for client and server alike; 8 KiB
/// 0.52-0.72x, 4 MiB no faster (a sweep of buffer sizes with the benchmark in bench/). The buffer
/// is allocated once per connection; pages a connection never fills are never touched.
pub const CHUNK: usize = 1024 * 1024;

/// The longest file name we accept, in bytes: the limit of most file systems (ext4, NTFS in
/// UTF-16 units, APFS).
pub const MAX_NAME_BYTES: usize = 255;

/// Sends one JSON object as one frame. A reply we build ourselves is always far below the
/// 64 KiB frame cap; if one were not, this is an error rather than a frame the peer refuses.
pub fn send_json(w: &mut impl Write, value: &Value) -> io::Result<()> {
    // Serializing a `Value` cannot fail (all its keys are strings).
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    if bytes.len() > framing::MAX_HEADER_LEN {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("JSON of {} bytes is over the frame limit", bytes.len()),
        ));
    }
    // Length and JSON in one buffer, one write_all: two small writes in a row can wait for
    // each other (Nagle's algorithm holds the second until the first is acknowledged).
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&framing::encode_len(bytes.len())?);
    frame.extend_from_slice(&bytes);
    w.write_all(&frame)
}

/// Receives one frame and parses it as a JSON object.
///
/// `Ok(None)`: the peer closed cleanly between frames. A negative or oversized length, a frame
/// that is not JSON, or JSON that is not an object is `InvalidData`; the frame's length was
/// checked by lesson 04's `read_frame` before anything was allocated (bug 6).
pub fn recv_json(r: &mut impl Read) -> io::Result<Option<Object>> {
    let Some(bytes) = framing::read_frame(r, framing::MAX_HEADER_LEN)? else {
        return Ok(None);
    };
    if bytes.is_empty() {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "empty frame (length 0)",
        ));
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(obj)) => Ok(Some(obj)),
        Ok(_) => Err(io::Error::new(
            ErrorKind::InvalidData,
            "the frame is JSON but not an object",
        )),
        Err(e) => Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("the frame is not JSON: {e}"),
        )),
    }
}

/// `obj[key]` as a string; a clear message when it is missing or of another type.
pub fn get_str<'a>(obj: &'a Object, key: &str) -> Result<&'a str, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "{key:?} must be a string, got {}",
            one_line(&other.to_string())
        )),
        None => Err(format!("missing key {key:?}")),
    }
}

/// `obj[key]` as a non-negative integer (a byte count); a clear message otherwise.
pub fn get_size(obj: &Object, key: &str) -> Result<u64, String> {
    match obj.get(key) {
        Some(v) => v.as_u64().ok_or_else(|| {
            let v = one_line(&v.to_string()).into_owned();
            format!("{key:?} must be a non-negative integer, got {v}")
        }),
        None => Err(format!("missing key {key:?}")),
    }
}

/// A refusal reply: `{"ok":false,"error":MESSAGE}`.
pub fn error_reply(message: &str) -> Value {
    serde_json::json!({ "ok": false, "error": message })
}

/// Checks that `name` is a bare file name that stays inside the directory it is joined to,
/// and that shows as what it is.
///
/// First lesson 05's bare-name rule, unchanged (the `bare_name` exercise writes it too): the
/// notes' server opens whatever `file_name` says, so `../../.bashrc` or `/etc/passwd` would be
/// written where the client chose (bug 11). A bare name has no separator, so joining it to a
/// directory can only name an entry of that directory. Names starting with `.` are refused too:
/// that covers `.` and `..`, keeps hidden files hidden, and reserves the `.upload-…` and
/// `.download-…` temporary names, so a real name can never collide with one. Then this
/// lesson's two additions: [`look_alike_rules`] and [`windows_rules`].
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "file name of {} bytes is over the limit of {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if name.starts_with('.') {
        return Err(format!(
            "file name {name:?} starts with '.' (., .., hidden and temporary files are refused)"
        ));
    }
    // `/`, `\` and `:` on every platform: `\` is a separator on Windows, `:` names a drive
    // (`C:x`) or a stream (`x:y`) there, and a server on Linux may hand the file to a Windows
    // client later. The same name gets the same answer wherever the server runs.
    if let Some(c) = name.chars().find(|&c| matches!(c, '/' | '\\' | ':')) {
        return Err(format!(
            "file name {name:?} contains {c:?}, which makes it a path on some system"
        ));
    }
    // A NUL cannot be in a path at all (std refuses to open one, with InvalidInput); other
    // control characters (a newline, an escape sequence) make names that mislead in listings
    // and logs, or rewrite the terminal that prints them.
    if name.chars().any(char::is_control) {
        return Err(format!("file name {name:?} contains a control character"));
    }
    look_alike_rules(name)?;
    windows_rules(name)
}

/// Names that look like another name. Two rules:
///
/// - Unicode format and separator characters (general categories Cf, Zl, Zp) are invisible or
///   reorder what is shown: `invoice\u{202e}fdp.exe` shows as `invoiceexe.pdf` (a right-to-left
///   override: the Trojan Source class of attack, CVE-2021-42574); a zero-width space or a BOM
///   makes a second `a.mp4`; U+2028 breaks a line. No real file name needs them: refused.
/// - `café` can be written two ways: `é` as one character (NFC, what keyboards type) or as `e`
///   plus a combining accent (NFD, what macOS's old HFS+ stored). Both show as `café.mp4`, yet
///   they are two different files. We refuse names that are not NFC rather than normalise them
///   silently: the name stored is always byte for byte the name the client sent and will ask
///   for again, and two twins can never both exist. Our client converts a name to NFC before
///   uploading, so a file named on a Mac still goes up.
fn look_alike_rules(name: &str) -> Result<(), String> {
    if let Some(c) = name.chars().find(|&c| is_format_or_separator(c)) {
        return Err(format!(
            "file name {name:?} contains the invisible character U+{:04X} (Unicode format or \
             line/paragraph separator: it would make the name show as something else)",
            c as u32
        ));
    }
    if !unicode_normalization::is_nfc(name) {
        return Err(format!(
            "file name {name:?} is not in Unicode NFC form (an accent written as a separate \
             character): it would show the same as another name"
        ));
    }
    Ok(())
}

/// What Windows adds: `< > " | ? *` it does not allow in a name, `CON` or `nul.txt` is a
/// device, and a trailing dot or space is silently dropped (so `a.` would overwrite `a`).
/// Refused on Windows only: on Linux and macOS these are ordinary names. (`:` is refused
/// everywhere, by the bare-name rule above.)
fn windows_rules(name: &str) -> Result<(), String> {
    if !cfg!(windows) {
        return Ok(());
    }
    if let Some(c) = name.chars().find(|c| "<>\"|?*".contains(*c)) {
        return Err(format!(
            "file name {name:?} contains {c:?}, which Windows does not allow"
        ));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(format!("file name {name:?} ends with a dot or a space"));
    }
    if is_windows_device_name(name) {
        return Err(format!("file name {name:?} is a Windows device name"));
    }
    Ok(())
}

/// `CON`, `nul.txt`, `com1.mp4`, `LPT²`: names Windows opens as a device, whatever follows the
/// first dot. The superscript digits ¹ ² ³ count as digits there too (Microsoft's "Naming
/// Files" page lists `COM¹`, `COM²`, `COM³`, `LPT¹`, `LPT²`, `LPT³`).
pub fn is_windows_device_name(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    if ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"].contains(&stem.as_str()) {
        return true;
    }
    let Some(number) = stem
        .strip_prefix("COM")
        .or_else(|| stem.strip_prefix("LPT"))
    else {
        return false;
    };
    let mut chars = number.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some('0'..='9' | '¹' | '²' | '³'), None)
    )
}

/// A temporary file inside the destination directory, deleted when dropped unless
/// [`TempFile::persist`] renamed it into place.
///
/// Why in the destination directory: a rename is atomic only within one file system, so
/// readers see either the old file or the whole new one, never a half-written one (rsync does
/// the same). Why the guard: every early return, `?` and panic on the way drops it, so no error
/// path can forget to delete a partial file.
pub struct TempFile {
    path: PathBuf,
    /// `Some` from `create` until `persist` or drop, which close it before renaming or
    /// deleting it (simplest on Windows, where an open file is harder to rename or delete).
    file: Option<File>,
}

/// Temporary names are `.{kind}-{pid}-{n}.tmp`: the leading `.` keeps them out of `list` and
/// out of reach of any valid name (see [`check_name`]); pid and counter make them unique
/// among threads and processes sharing the directory.
pub fn is_temp_name(name: &str) -> bool {
    (name.starts_with(".upload-") || name.starts_with(".download-")) && name.ends_with(".tmp")
}

impl TempFile {
    /// Creates a new, empty temporary file in `dir`. `kind` is `upload` or `download`.
    pub fn create(dir: &Path, kind: &str) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{kind}-{}-{n}.tmp", std::process::id()));
        // create_new: fail rather than truncate a file that happens to have this name.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    /// Writes all of `buf` (a write may take only part of it; write_all loops).
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(buf),
            // Cannot happen: `file` is taken only by persist and drop, which consume `self`.
            None => Err(io::Error::other("temporary file already closed")),
        }
    }

    /// Renames the finished file to `target`, replacing a file of that name atomically (on
    /// Windows too: std's rename replaces). The notes open the target with `'ab'`, so uploading
    /// a name twice glued the two files together (bug 11).
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        // Close first. The data is handed to the OS, not forced to disk: a power cut may still
        // lose a file the client was told is stored (`sync_all()` here would prevent that, at
        // a cost in speed; rsync does not sync by default either).
        drop(self.file.take());
        // After a failed rename, Drop still runs and deletes the temporary file. After a
        // successful one, the temporary name is gone and Drop's remove_file finds nothing.
        fs::rename(&self.path, target)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        drop(self.file.take());
        let _ = fs::remove_file(&self.path);
    }
}

// ---- The machinery: the digest's text, timeouts, the body's pace ----

/// An XXH3-128 digest as 32 lowercase hex digits, as `xxhsum -H2` prints it.
pub fn hex(digest: u128) -> String {
    format!("{digest:032x}")
}

/// A floor under a body's transfer rate, checked window by window, plus the idle timeout.
///
/// A timeout per `read` or `write` (the idle timeout) stops a silent peer, not a slow one: a
/// peer that moves one byte every few seconds never lets a single call wait that long, and
/// holds a thread and a `--max-clients` slot for as long as it likes (slowloris). So every
/// `window` we count the bytes moved: under `min_rate × window`, the transfer is given up.
/// Apache's `mod_reqtimeout` does the same with `MinRate`. `min_rate` 0 turns the floor off.
///
/// What it costs per chunk: a clock read and an addition (`Instant::now` makes no system call
/// on Linux), and the socket's timeout is set once per body, not per call. Measured with a
/// 512 MiB body: no trace of it in a profile (bench/README.md, "Where the time goes").
///
/// A single call waits at most one window (or the idle timeout, if shorter): a call that waited
/// that long moved nothing in a whole window, which is under any floor. A timed-out call is
/// never retried: on Windows a socket whose send timed out is in an undefined state.
pub struct Pace {
    idle: Duration,
    min_rate: u64,
    window: Duration,
    window_start: Instant,
    bytes_in_window: u64,
    /// Whether the socket's timeout is already set to `wait_limit()`.
    armed: bool,
}

impl Pace {
    /// A new pace whose first window starts now: make it right before the body.
    pub fn new(idle: Duration, min_rate: u64, window: Duration) -> Pace {
        Pace {
            idle,
            min_rate,
            window,
            window_start: Instant::now(),
            bytes_in_window: 0,
            armed: false,
        }
    }

    /// How long one `read` or `write` of the body may wait.
    fn wait_limit(&self) -> Duration {
        if self.window_bounds_wait() {
            self.window
        } else {
            self.idle
        }
    }

    /// Whether one wait ends at a window rather than at the idle timeout (the floor itself is
    /// checked at every window's end either way, unless it is off).
    fn window_bounds_wait(&self) -> bool {
        self.min_rate > 0 && self.window < self.idle
    }

    fn too_slow(&self, bytes: u64, secs: u64) -> io::Error {
        io::Error::new(
            ErrorKind::TimedOut,
            format!(
                "too slow: {bytes} bytes in {secs} s, under the floor of {} bytes/s",
                self.min_rate
            ),
        )
    }

    /// Counts `n` bytes just moved. At the end of a window, checks the floor.
    fn progress(&mut self, n: u64) -> io::Result<()> {
        self.bytes_in_window += n;
        let elapsed = self.window_start.elapsed();
        if self.min_rate > 0 && elapsed >= self.window {
            let floor = self.min_rate.saturating_mul(self.window.as_secs().max(1));
            if self.bytes_in_window < floor {
                return Err(self.too_slow(self.bytes_in_window, elapsed.as_secs()));
            }
            self.window_start = Instant::now();
            self.bytes_in_window = 0;
        }
        Ok(())
    }

    /// The error for a call that waited [`Pace::wait_limit`] and moved nothing.
    fn stalled(&self) -> io::Error {
        if self.window_bounds_wait() {
            self.too_slow(0, self.window.as_secs())
        } else {
            let secs = self.idle.as_secs();
            io::Error::new(ErrorKind::TimedOut, format!("idle for {secs} s"))
        }
    }

    /// After the body: reads and writes wait the plain idle timeout again.
    pub fn done(self, sock: &Traced<TcpStream>) -> io::Result<()> {
        sock.get_ref().set_read_timeout(Some(self.idle))?;
        sock.get_ref().set_write_timeout(Some(self.idle))
    }
}

/// One `read` of a body, held to `pace`. `Ok(0)` is end of stream, as for any read; a peer
/// too slow or silent is a `TimedOut` error whose message says which.
pub fn read_paced(
    sock: &mut Traced<TcpStream>,
    buf: &mut [u8],
    pace: &mut Pace,
) -> io::Result<usize> {
    if !pace.armed {
        sock.get_ref().set_read_timeout(Some(pace.wait_limit()))?;
        pace.armed = true;
    }
    loop {
        match sock.read(buf) {
            Ok(n) => {
                pace.progress(n as u64)?;
                return Ok(n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(pace.stalled()),
            Err(e) => return Err(e),
        }
    }
}

/// `write_all` of a body, held to `pace`: a peer that takes our bytes too slowly, or not at
/// all, is a `TimedOut` error whose message says which.
pub fn write_all_paced(
    sock: &mut Traced<TcpStream>,
    mut buf: &[u8],
    pace: &mut Pace,
) -> io::Result<()> {
    if !pace.armed {
        sock.get_ref().set_write_timeout(Some(pace.wait_limit()))?;
        pace.armed = true;
    }
    while !buf.is_empty() {
        // A write that times out after taking part of `buf` returns that part (Linux, macOS):
        // it is counted, and the floor decides.
        match sock.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                pace.progress(n as u64)?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(pace.stalled()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_pass() {
        for name in [
            "a.mp4",
            "01 后期课程安排.mp4",
            "x",
            "a..b",
            "a b ",
            &"n".repeat(255),
        ] {
            #[cfg(windows)]
            if name.ends_with(' ') {
                continue;
            }
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn names_that_leave_the_directory_or_hide_are_refused() {
        let long = "n".repeat(256);
        for name in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "a\0b",
            "a\nb",
            ".hidden",
            ".upload-1-1.tmp",
            &long,
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn names_that_show_as_another_name_are_refused() {
        for name in [
            "invoice\u{202e}fdp.exe", // right-to-left override: shows as "invoiceexe.pdf"
            "a\u{200b}.mp4",          // zero-width space
            "\u{feff}a.mp4",          // BOM
            "a\u{2028}b.mp4",         // line separator (Zl)
            "a\u{2029}b.mp4",         // paragraph separator (Zp)
            "a\u{2066}b.mp4",         // left-to-right isolate
            "a\u{e0041}.mp4",         // tag character
            "cafe\u{301}.mp4",        // NFD: e + combining acute, the twin of "café.mp4"
            "a\u{9b}2J.mp4",          // C1 control: CSI on some terminals
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert_eq!(check_name("café.mp4"), Ok(())); // NFC
        assert_eq!(check_name("한국어.mp4"), Ok(())); // precomposed Hangul is NFC
    }

    #[test]
    fn windows_device_names_include_superscript_digits() {
        for name in [
            "CON",
            "nul.txt",
            "com1.mp4",
            "LPT9",
            "COM0",
            "COM¹",
            "com².mp4",
            "LPT³",
            "lpt¹.x",
            "AUX .mp4",
        ] {
            assert!(is_windows_device_name(name), "{name:?}");
        }
        for name in ["COM", "COM10", "COM⁴", "LPT¹0", "console.mp4", "a.com1"] {
            assert!(!is_windows_device_name(name), "{name:?}");
        }
    }

    #[test]
    fn temp_names_are_never_valid_names() {
        let dir = std::env::temp_dir();
        let t = TempFile::create(&dir, "upload").unwrap();
        let name = t.path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(is_temp_name(&name), "{name}");
        assert!(check_name(&name).is_err());
        drop(t);
        assert!(!dir.join(&name).exists(), "dropped temp file must be gone");
    }

    #[test]
    fn sizes_must_be_non_negative_integers() {
        let obj: Object = serde_json::from_str(r#"{"a":3,"b":-1,"c":"3","d":1.5}"#).unwrap();
        assert_eq!(get_size(&obj, "a"), Ok(3));
        for key in ["b", "c", "d", "e"] {
            assert!(get_size(&obj, key).is_err(), "{key}");
        }
    }

    #[test]
    fn digest_text_matches_xxhsum() {
        // `printf '' | xxhsum -H2` and xxhash.xxh3_128_hexdigest(b''):
        assert_eq!(
            hex(xxhash_rust::xxh3::xxh3_128(b"")),
            "99aa06d3014798d86001c324468d497f"
        );
    }
}
