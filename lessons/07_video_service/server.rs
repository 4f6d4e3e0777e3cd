//! Lesson 07, server: the notes' section 4 (优酷项目中 视频的上传与下载), the video service.
//!
//! The notes' server receives one upload (a dict header, then `size` bytes) and stops there
//! ("细节之处后续继续优化"). This one finishes the job: upload, download and list, many clients at
//! once, and every one of the notes' section 4 bugs fixed at the line that would have it
//! (bug 11 in the top-level README):
//!
//! - `open(file_name, 'ab')`: the client's name used as a path (`../`, `/etc/…`), and a second
//!   upload of a name glued onto the first. Here: a bare-name check, a temporary file, and an
//!   atomic rename once every byte arrived.
//! - `while recv_size < data_length: data = sock.recv(1024)`: when the client leaves mid-file,
//!   `recv` returns `b''` forever and the loop never ends. Here: `Ok(0)` ends that upload, and
//!   the partial file is deleted.
//! - `struct.unpack('i', sock.recv(4))` after the client left: the server crashes. Here: a clean
//!   end of stream between requests ends that connection only; a bad length is refused before
//!   anything is allocated (lesson 04's framing, reused below).
//! - one client at a time: here a thread per connection, at most `--max-clients`, and an idle
//!   timeout, so a silent client never blocks the others.
//!
//! And what a server on a network must also survive (step 5 of the lesson README): a client
//! too slow on purpose (`--header-timeout`, `--min-rate` over `--rate-window`), a FIFO or a
//! symlink in `--dir` (only regular files are served), running out of file descriptors (the
//! accept loop backs off), a log nobody reads (lines are dropped, never waited for), and names
//! that show as something else (invisible and bidi characters, NFC twins: refused).
//!
//! ```text
//! cargo run --bin lesson07-server -- --dir videos                 # terminal 1
//! cargo run --bin lesson07-client -- upload '01 后期课程安排.mp4'   # terminal 2
//! cargo run --bin lesson07-client -- list
//! cargo run --bin lesson07-client -- download '01 后期课程安排.mp4' --out downloads
//! cargo run --bin lesson07-client -- --dir some/folder            # the notes' numbered menu
//! ```
//!
//! Watch for: one log line per request (peer, command, name, bytes, result); kill a client in
//! the middle of an upload and look in `--dir`: neither the file nor a temporary file is there.
//! The notes' own upload client (address and `DATA_PATH` changed) works against this server.

#[path = "../04_header/protocol.rs"]
mod framing;
#[allow(dead_code)] // Shared with the client; each side uses part of it.
mod protocol;

use std::fs::{self, File, Metadata};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use socket_lessons::console::one_line;
use socket_lessons::{announce, cli, is_timeout, wire::Traced};
use xxhash_rust::xxh3::Xxh3;

use protocol::{check_name, get_size, get_str, hex, Object, Pace, TempFile, CHUNK};

/// `log!("{peer} connected")`: one line of the server's log (stdout). Never `println!`, which
/// panics when stdout's reader has gone and blocks when nobody reads it; see [`log_line`].
macro_rules! log {
    ($($arg:tt)*) => { log_line(format!($($arg)*)) };
}

/// Lesson 07 server: store uploaded videos in a directory, serve downloads and a listing.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Directory the files are stored in (created if missing); nothing is written outside it
    #[arg(long, default_value = "videos")]
    dir: PathBuf,

    /// Connections served at once; one more gets a "server busy" reply and is closed
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: u32,

    /// Seconds a client may stay silent (or not take our bytes) before it is disconnected
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,

    /// Seconds a request header may take, from its first byte to its last
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,

    /// Slowest body accepted, in bytes per second over each --rate-window (0: no floor)
    #[arg(long, value_name = "BYTES_PER_SEC", default_value_t = 4096)]
    min_rate: u64,

    /// Seconds over which --min-rate is measured
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    rate_window: u64,

    /// Largest upload accepted, in bytes (default 64 GiB)
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 30)]
    max_size: u64,
}

/// What every connection thread needs to know; shared read-only.
struct Config {
    dir: PathBuf,
    idle: Duration,
    header_timeout: Duration,
    min_rate: u64,
    rate_window: Duration,
    max_size: u64,
    trace: bool,
}

impl Config {
    /// The pace a body must keep: no silence longer than the idle timeout, and at least
    /// `--min-rate` bytes per second over each `--rate-window`.
    fn body_pace(&self) -> Pace {
        Pace::new(self.idle, self.min_rate, self.rate_window)
    }
}

/// After a refusal, how long we keep reading (and discarding) what the client still sends
/// before closing; see [`refuse`].
const LINGER: Duration = Duration::from_secs(2);

fn main() -> Result<()> {
    let args: Args = cli::parse();
    fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create directory {}", args.dir.display()))?;

    // The notes' socket() / setsockopt(SO_REUSEADDR) / bind() / listen(5) are lesson 02's
    // subject; here std's bind does all of them (SO_REUSEADDR on Unix, backlog 128).
    let listener = TcpListener::bind(args.common.addr)
        .with_context(|| format!("cannot listen on {}", args.common.addr))?;
    announce(listener.local_addr()?)?;
    start_logging().context("cannot start the log thread")?;
    log!("storing files in {}", args.dir.display());
    remove_stale_temp_files(&args.dir);

    let config = Arc::new(Config {
        dir: args.dir,
        idle: Duration::from_secs(args.idle_timeout),
        header_timeout: Duration::from_secs(args.header_timeout),
        min_rate: args.min_rate,
        rate_window: Duration::from_secs(args.rate_window),
        max_size: args.max_size,
        trace: args.common.trace,
    });
    // How many connection threads are running. Only this (accept) thread increments it, so
    // "check, then add" below cannot race; each thread decrements it when it ends (`Slot`).
    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff = AcceptBackoff::default();

    // The connection loop (链接循环): accept, hand the client to its own thread, accept again.
    loop {
        let (sock, peer) = match listener.accept() {
            Ok(pair) => {
                backoff.succeeded();
                pair
            }
            // A failure here belongs to one connection (a client that left while queued, on
            // macOS and Windows; Linux returns it and its first read fails) or to a moment (out
            // of file descriptors): log it, pause, and keep accepting. See AcceptBackoff.
            Err(e) => {
                backoff.failed(&e);
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= args.max_clients as usize {
            log!("{peer} refused: server busy ({} clients)", args.max_clients);
            busy(sock, args.max_clients);
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(&active));
        let config = Arc::clone(&config);
        let spawned = thread::Builder::new()
            .name(format!("client {peer}"))
            .spawn(move || {
                let _slot = slot; // freed when this thread ends, however it ends
                log!("{peer} connected");
                // `serve` owns the socket and closes it when it returns: the line saying why
                // the connection ended is logged after the close, never before.
                let why = serve(sock, peer, &config);
                log!("{peer} {why}");
            });
        // Out of threads: the closure (and with it the socket and the slot) was dropped.
        if let Err(e) = spawned {
            log!("{peer} refused: cannot start a thread: {e}");
        }
    }
}

/// The communication loop (通信循环) for one client: requests one after another on the same
/// connection, until it closes, misbehaves, stays idle too long or is too slow. Returns why
/// the connection ended, for the log.
fn serve(sock: TcpStream, peer: SocketAddr, config: &Config) -> String {
    // Small replies must not sit in Nagle's buffer waiting for an acknowledgement. The write
    // timeout: a reply the client does not take within the idle timeout ends the connection.
    let setup = sock
        .set_write_timeout(Some(config.idle))
        .and_then(|()| sock.set_nodelay(true));
    if let Err(e) = setup {
        return format!("dropped: cannot set socket options: {e}");
    }
    let mut sock = Traced::labelled(sock, config.trace, peer);
    // One body buffer per connection, reused by every upload and download on it.
    let mut buf = vec![0u8; CHUNK];

    loop {
        // Steps 1-4 of the notes' server (`recv(4)`, `struct.unpack`, `recv(n)`, `json.loads`)
        // in one call: lesson 04's read_frame loops over short reads and checks the length's
        // sign and the 64 KiB cap before allocating; then the bytes must be a JSON object.
        // recv_request adds the two clocks: the idle timeout before the header, and the
        // header timeout from its first byte to its last.
        let request = match recv_request(&mut sock, config) {
            Ok(Some(request)) => request,
            // The client closed between two requests: the normal end. The notes' server called
            // struct.unpack on the empty `recv(4)` here and crashed.
            Ok(None) => return "closed the connection".into(),
            // Silent too long, or a header that trickles in (slowloris).
            Err(e) if is_timeout(&e) => return format!("{e}, disconnected"),
            // A negative or huge length, bad JSON: the client can still be told.
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                refuse(&mut sock, &e.to_string());
                return format!("bad request: {e}");
            }
            // Reset, or the stream ended inside a frame.
            Err(e) => return format!("dropped: {e}"),
        };

        let what = describe(&request);
        let result = match request.get("cmd") {
            // No `cmd`: the notes' upload, `{"file_name", "size", "desc", "info"}`. It gets no
            // reply, neither on success nor on failure, exactly as in the notes: their client
            // never reads, and a socket closed with received data still unread makes its kernel
            // send RST (not FIN) and throw away whatever it had not sent yet, which would cut
            // off the tail of the client's next upload. A failure is logged, and the
            // connection closed.
            None => {
                match upload(&request, &mut sock, config, &mut buf) {
                    Ok(stored) => log!("{peer} {what}: {stored} (no reply: notes' protocol)"),
                    Err(Failure::Refuse(msg) | Failure::Broken(msg)) => {
                        return format!("{what}: failed: {msg} (no reply: notes' protocol)");
                    }
                }
                continue;
            }
            Some(Value::String(cmd)) => match cmd.as_str() {
                "upload" => upload(&request, &mut sock, config, &mut buf).and_then(|stored| {
                    reply(&mut sock, &stored.to_json())?;
                    Ok(stored.to_string())
                }),
                "download" => download(&request, &mut sock, config, &mut buf),
                "list" => list(&mut sock, config),
                other => Err(Failure::Refuse(format!("unknown cmd {other:?}"))),
            },
            Some(other) => Err(Failure::Refuse(format!(
                "\"cmd\" must be a string, got {}",
                one_line(&other.to_string())
            ))),
        };

        // The log line of this request: peer, command, name, bytes, result.
        match result {
            Ok(done) => log!("{peer} {what}: {done}"),
            Err(Failure::Refuse(msg)) => {
                refuse(&mut sock, &msg);
                return format!("{what}: refused: {msg}");
            }
            Err(Failure::Broken(msg)) => return format!("{what}: failed: {msg}"),
        }
    }
}

/// Receives an upload's body into `--dir`: the notes' steps 5 and after, fixed.
fn upload(
    request: &Object,
    sock: &mut Traced<TcpStream>,
    config: &Config,
    buf: &mut [u8],
) -> Result<Stored, Failure> {
    // 5. `real_dict.get('size')`, `real_dict.get('file_name')`: the notes take both as they
    // come. Here a missing or mistyped key is refused, the name must be bare (no `../`, no
    // absolute path, see protocol::check_name) and the size within `--max-size`.
    let name = get_str(request, "file_name").map_err(Failure::Refuse)?;
    let size = get_size(request, "size").map_err(Failure::Refuse)?;
    check_name(name).map_err(Failure::Refuse)?;
    if size > config.max_size {
        return Err(Failure::Refuse(format!(
            "size {size} is over the limit of {} bytes",
            config.max_size
        )));
    }

    // `open(file_name, 'ab')`, fixed: the bytes go to a new temporary file in --dir, and only
    // a complete file is renamed to `name`. If anything below fails, `temp` is dropped on the
    // way out and deletes itself: no partial file, no leftover temporary file.
    let mut temp = TempFile::create(&config.dir, "upload")
        .map_err(|e| Failure::Refuse(format!("cannot create a temporary file: {e}")))?;
    let mut hasher = Xxh3::new();
    let mut received: u64 = 0;
    let mut pace = config.body_pace();

    // `while recv_size < data_length:`
    while received < size {
        // Ask for at most what is left of this file: bytes past `size` are the next request's
        // header (the client may send it right behind the body: 黏包) and must stay in the
        // socket for the next recv_json.
        let want = buf.len().min((size - received) as usize);
        // `data = sock.recv(1024)`, with a buffer 1024 times larger: fewer system calls. The
        // read is held to the body's pace: too slow or silent too long ends the upload.
        let n = match protocol::read_paced(sock, &mut buf[..want], &mut pace) {
            // End of stream in the middle of the file: the client left (or crashed). The
            // notes' loop adds 0 to recv_size and asks again, forever. Here the upload ends.
            Ok(0) => {
                return Err(Failure::Broken(format!(
                    "client left after {received} of {size} bytes; partial file deleted"
                )))
            }
            Ok(n) => n,
            Err(e) => {
                return Err(Failure::Broken(format!(
                    "{e} after {received} of {size} bytes; partial file deleted"
                )))
            }
        };
        hasher.update(&buf[..n]);
        // `f.write(data)`; TempFile::write_all, because a write may take only part of the
        // buffer. A full disk fails here: the client is told, and the temporary file goes.
        temp.write_all(&buf[..n])
            .map_err(|e| Failure::Refuse(format!("cannot store {name}: {e}")))?;
        received += n as u64;
    }
    pace.done(sock)
        .map_err(|e| Failure::Broken(format!("cannot reset the socket's timeouts: {e}")))?;

    // Every byte arrived and is written: now, and only now, the file takes its name. A
    // previous file of that name is replaced in one step; readers see the old or the new file.
    temp.persist(&config.dir.join(name))
        .map_err(|e| Failure::Refuse(format!("cannot store {name}: {e}")))?;
    Ok(Stored {
        name: name.to_string(),
        size,
        digest: hasher.digest128(),
    })
}

/// Sends a stored file: header `{"ok":true,"file_name","size"}`, exactly `size` bytes, then the
/// trailer `{"xxh3"}` with the digest of the bytes actually sent.
fn download(
    request: &Object,
    sock: &mut Traced<TcpStream>,
    config: &Config,
    buf: &mut [u8],
) -> Result<String, Failure> {
    let name = get_str(request, "file_name").map_err(Failure::Refuse)?;
    check_name(name).map_err(Failure::Refuse)?;
    let mut file = open_regular_file(&config.dir, name)?;
    // The size comes from the open file (fstat), not the name: if the file is replaced by an
    // upload meanwhile, we still send the one we opened, whole.
    let size = match file.metadata() {
        Ok(meta) => meta.len(),
        Err(e) => return Err(Failure::Refuse(format!("cannot read {name}: {e}"))),
    };
    reply(
        sock,
        &json!({ "ok": true, "file_name": name, "size": size }),
    )?;

    // From here the client expects exactly `size` bytes; nothing else can be said on this
    // connection until they are sent, so every failure below just closes it (the client
    // sees a short body and deletes its temporary file).
    let mut hasher = Xxh3::new();
    let mut sent: u64 = 0;
    let mut pace = config.body_pace();
    while sent < size {
        let want = buf.len().min((size - sent) as usize);
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Failure::Broken(format!(
                    "{name} shrank while being sent ({sent} of {size} bytes); connection closed"
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Broken(format!("cannot read {name}: {e}"))),
        };
        hasher.update(&buf[..n]);
        // write_all loops until the socket took every byte (the notes' `send` may not); the
        // paced one also gives up on a client that takes them too slowly.
        if let Err(e) = protocol::write_all_paced(sock, &buf[..n], &mut pace) {
            return Err(Failure::Broken(format!("{e} after {sent} of {size} bytes")));
        }
        sent += n as u64;
    }
    pace.done(sock)
        .map_err(|e| Failure::Broken(format!("cannot reset the socket's timeouts: {e}")))?;
    let digest = hex(hasher.digest128());
    reply(sock, &json!({ "xxh3": digest }))?;
    Ok(format!("sent {size} bytes, xxh3 {digest}"))
}

/// `{"ok":true,"files":[{"file_name","size"},…]}`, sorted by name: the regular files of `--dir`
/// whose names a client could download. Temporary files (`.upload-…`) start with a dot and are
/// skipped, as are other hidden files, subdirectories, symlinks and names that are not UTF-8.
fn list(sock: &mut Traced<TcpStream>, config: &Config) -> Result<String, Failure> {
    let entries = fs::read_dir(&config.dir)
        .map_err(|e| Failure::Refuse(format!("cannot read the directory: {e}")))?;
    let mut files: Vec<(String, u64)> = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // The entry's own type, not its target's: a symlink is not a file here.
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || check_name(&name).is_err() {
            continue;
        }
        // The file may vanish between read_dir and metadata (a concurrent rename): skip it.
        if let Ok(meta) = entry.metadata() {
            files.push((name, meta.len()));
        }
    }
    files.sort();

    // The reply is one frame, at most 64 KiB: a name takes at most 255 bytes, so a couple of
    // hundred entries always fit. Past that, the list is cut and says so.
    let mut listed: Vec<Value> = Vec::new();
    let mut bytes = 64; // `{"ok":true,"files":[],"truncated":true}` and some slack
    for (name, size) in &files {
        let entry = json!({ "file_name": name, "size": size });
        bytes += entry.to_string().len() + 1;
        if bytes > framing::MAX_HEADER_LEN {
            break;
        }
        listed.push(entry);
    }
    let shown = listed.len();
    let mut answer = json!({ "ok": true, "files": listed });
    if shown < files.len() {
        answer["truncated"] = json!(true);
    }
    reply(sock, &answer)?;
    Ok(format!("{shown} of {} files", files.len()))
}

// ---- The machinery: slots, refusals, clocks, the accept backoff, the log ----

/// One place in `--max-clients`, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tells a client over the `--max-clients` cap why it is turned away, instead of letting it
/// wait in silence, and closes. A fresh socket's send buffer takes a small frame at once; the
/// write timeout is a safety net so the accept loop can never hang here.
fn busy(sock: TcpStream, max: u32) {
    let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
    let msg = if max == 1 {
        "server busy: 1 client connected, try again later".to_string()
    } else {
        format!("server busy: {max} clients connected, try again later")
    };
    let _ = protocol::send_json(&mut &sock, &protocol::error_reply(&msg));
    let _ = sock.shutdown(Shutdown::Write);
}

/// Why a request did not succeed.
enum Failure {
    /// Refused or failed, and the connection still works: the client gets an error reply.
    Refuse(String),
    /// The connection itself is gone (the client left, reset, timed out or was too slow):
    /// nothing can be sent any more.
    Broken(String),
}

/// Waits for the next request and reads it, on two clocks.
///
/// Between requests a client may think for up to the idle timeout: we wait for the first byte
/// of a header without reading it (`peek`). From that byte on, the whole header must arrive
/// within `--header-timeout`, however it trickles in: a timeout per `read` alone lets a client
/// send one byte every few seconds and keep its slot for ever (slowloris). Apache's
/// `mod_reqtimeout` (`header=20-40`) and nginx's `client_header_timeout` do the same.
fn recv_request(sock: &mut Traced<TcpStream>, config: &Config) -> io::Result<Option<Object>> {
    let raw = sock.get_ref();
    raw.set_read_timeout(Some(config.idle))?;
    match raw.peek(&mut [0u8; 1]) {
        Ok(0) => return Ok(None), // closed between requests
        Ok(_) => {}
        Err(e) if is_timeout(&e) => {
            let idle = config.idle.as_secs();
            return Err(io::Error::new(e.kind(), format!("idle for {idle} s")));
        }
        Err(e) => return Err(e),
    }
    let mut header = HeaderClock {
        sock,
        deadline: Instant::now() + config.header_timeout,
        header_timeout: config.header_timeout,
        idle: config.idle,
    };
    protocol::recv_json(&mut header)
}

/// A reader that fails with `TimedOut` once `deadline` has passed, whatever each read does.
struct HeaderClock<'a> {
    sock: &'a mut Traced<TcpStream>,
    deadline: Instant,
    header_timeout: Duration,
    idle: Duration,
}

impl Read for HeaderClock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let late = || {
            let secs = self.header_timeout.as_secs();
            io::Error::new(
                ErrorKind::TimedOut,
                format!("header not complete within {secs} s (--header-timeout)"),
            )
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        // This read may wait until the deadline, or the idle timeout if that comes first.
        let header_bound = left <= self.idle;
        self.sock
            .get_ref()
            .set_read_timeout(Some(left.min(self.idle)))?;
        match self.sock.read(buf) {
            Err(e) if is_timeout(&e) && header_bound => Err(late()),
            Err(e) if is_timeout(&e) => Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("idle for {} s inside a header", self.idle.as_secs()),
            )),
            other => other,
        }
    }
}

/// Opens `name` in `dir` for a download only if it is what `list` shows: a regular file, found
/// without following a symlink.
///
/// Why: a symlink in `--dir` may point anywhere (`secret -> /home/me/.ssh/id_ed25519`), and a
/// download through it sends a file from outside `--dir` (nginx's `disable_symlinks`, Apache
/// without `FollowSymLinks`). A FIFO (named pipe) is worse: `open()` on it blocks until some
/// writer appears, where no socket timeout applies, and the thread and its slot never come back.
///
/// How: `symlink_metadata` (lstat) looks at the entry itself without opening it, which never
/// blocks; only a regular file goes on to `open`. Then the opened file's own metadata must be
/// the one we looked at (same device and inode on Unix): if the entry was swapped for a
/// symlink in between, we notice and refuse. What remains: someone who can write to `--dir`
/// could swap in a FIFO in the instant between the look and the open, and that open would
/// block. Closing that gap needs `open(O_NONBLOCK | O_NOFOLLOW)`, flags std does not name; a
/// client cannot make that swap (uploads only ever rename our own temporary files in).
fn open_regular_file(dir: &Path, name: &str) -> Result<File, Failure> {
    let path = dir.join(name);
    let looked = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Failure::Refuse(format!("no such file: {name}")))
        }
        Err(e) => return Err(Failure::Refuse(format!("cannot read {name}: {e}"))),
    };
    if looked.file_type().is_symlink() {
        return Err(Failure::Refuse(format!(
            "{name} is a symbolic link: only regular files in the directory are served"
        )));
    }
    if !looked.is_file() {
        return Err(Failure::Refuse(format!(
            "not a regular file: {name} (a directory, pipe or device is never opened)"
        )));
    }
    let file =
        File::open(&path).map_err(|e| Failure::Refuse(format!("cannot open {name}: {e}")))?;
    match file.metadata() {
        Ok(opened) if opened.is_file() && same_file(&looked, &opened) => Ok(file),
        Ok(_) => Err(Failure::Refuse(format!(
            "{name} changed while it was being opened: refused"
        ))),
        Err(e) => Err(Failure::Refuse(format!("cannot read {name}: {e}"))),
    }
}

/// Whether two metadata describe the same file: same device and inode.
#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// On Windows std offers no stable file identity (`file_index` is unstable); the type check
/// above is all we have, and Windows has no FIFOs in a directory.
#[cfg(not(unix))]
fn same_file(_: &Metadata, _: &Metadata) -> bool {
    true
}

/// The request as a log would show it: `upload "a.mp4" 1048576 bytes`. Strings are quoted and
/// escaped (`{:?}`): a client's name never reaches the log raw.
fn describe(request: &Object) -> String {
    let show = |value: &Value| match value {
        Value::String(s) => format!("{s:?}"),
        other => one_line(&other.to_string()).into_owned(),
    };
    let mut text = match request.get("cmd") {
        Some(Value::String(cmd)) => one_line(cmd).into_owned(),
        Some(other) => format!("cmd {}", show(other)),
        None => "upload (notes, no cmd)".into(),
    };
    if let Some(name) = request.get("file_name") {
        text.push_str(&format!(" {}", show(name)));
    }
    if let Some(size) = request.get("size") {
        text.push_str(&format!(" {} bytes", show(size)));
    }
    text
}

/// Sends a reply frame; failing to send means the connection is gone.
fn reply(sock: &mut Traced<TcpStream>, value: &Value) -> Result<(), Failure> {
    protocol::send_json(sock, value).map_err(|e| Failure::Broken(format!("cannot send reply: {e}")))
}

/// Sends `{"ok":false,"error":…}` and ends the connection without losing that reply.
///
/// The client may still be sending (the body of a refused upload). Closing a socket with
/// received bytes unread sends RST instead of FIN: Linux then drops whatever of our reply is
/// still in our send buffer, and a Windows client that receives RST discards even the bytes it
/// had already received. So: send the reply, `shutdown(Write)` (a FIN after it:
/// "nothing more from us"), then read and discard what still arrives, for at most [`LINGER`],
/// before closing. The discarding reads are not traced (there could be thousands).
fn refuse(sock: &mut Traced<TcpStream>, msg: &str) {
    if protocol::send_json(sock, &protocol::error_reply(msg)).is_err() {
        return;
    }
    let sock = sock.get_mut();
    let _ = sock.shutdown(Shutdown::Write);
    let _ = sock.set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 64 * 1024];
    while Instant::now() < deadline {
        match sock.read(&mut scratch) {
            Ok(0) | Err(_) => break, // the client closed too, or the linger time is up
            Ok(_) => {}
        }
    }
}

/// A stored upload, for the reply and the log.
struct Stored {
    name: String,
    size: u64,
    digest: u128,
}

impl Stored {
    fn to_json(&self) -> Value {
        json!({ "ok": true, "file_name": self.name, "size": self.size, "xxh3": hex(self.digest) })
    }
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stored {} bytes, xxh3 {}", self.size, hex(self.digest))
    }
}

/// Deletes temporary files a previous run left behind (a server killed mid-upload cannot run
/// its cleanup). Only names of our own pattern, which no upload can create (see check_name).
/// Two servers sharing one `--dir` would delete each other's uploads in progress: don't.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if protocol::is_temp_name(name) && fs::remove_file(entry.path()).is_ok() {
            log!("removed stale temporary file {name}");
        }
    }
}

/// Pauses after a failed `accept`, and logs a repeated failure once.
///
/// When the process is out of file descriptors (EMFILE), `accept` fails at once, and so does
/// every next one until a descriptor is free: on Linux `accept` takes a descriptor for the new
/// connection before it looks at the queue, so it fails whether or not a client waits (one that
/// does stays queued). A loop that just logs and retries burns a core and writes millions of
/// identical lines. Go's `net/http`
/// sleeps 5 ms after such a failure, doubling up to 1 s; so do we. Meanwhile connections that
/// end give descriptors back, and the queue is served again.
#[derive(Default)]
struct AcceptBackoff {
    pause: Option<Duration>,
    last_error: Option<String>,
    repeats: u64,
}

impl AcceptBackoff {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const MAX_PAUSE: Duration = Duration::from_secs(1);

    fn failed(&mut self, e: &io::Error) {
        let msg = e.to_string();
        if self.last_error.as_deref() == Some(msg.as_str()) {
            self.repeats += 1;
        } else {
            self.report_repeats();
            log!("accept failed: {msg} (pausing 5 ms, doubling up to 1 s, until it works)");
            self.last_error = Some(msg);
        }
        let pause = self
            .pause
            .map_or(Self::FIRST_PAUSE, |p| (p * 2).min(Self::MAX_PAUSE));
        self.pause = Some(pause);
        thread::sleep(pause);
    }

    fn succeeded(&mut self) {
        self.report_repeats();
        self.pause = None;
    }

    /// The one line for a run of identical failures: how many more there were.
    fn report_repeats(&mut self) {
        if let Some(msg) = self.last_error.take() {
            if self.repeats > 0 {
                log!("accept failed {} more times: {msg}", self.repeats);
            }
        }
        self.repeats = 0;
    }
}

/// The log's queue: lines waiting for the log thread. When it is full, lines are dropped.
static LOG: OnceLock<SyncSender<String>> = OnceLock::new();
/// Lines dropped since the last one written; the log thread reports the count.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// How many lines may wait; a few hundred connections' worth.
const LOG_QUEUE: usize = 1024;

/// Starts the thread that writes the log to stdout.
///
/// Why a thread: `println!` panics when stdout is a pipe whose reader has gone
/// (`lesson07-server | head -1` kills the server at its second line, exit 101), and blocks when stdout is a pipe nobody reads
/// (every connection thread would stop at its next log line). Here connection threads only
/// put a line in a bounded queue without waiting ([`log_line`]); this one thread writes, and
/// ignores write errors. If stdout blocks, only this thread waits, the queue fills, and
/// further lines are dropped and counted: the service goes on, its log has a gap that says so.
fn start_logging() -> io::Result<()> {
    let (queue, lines) = sync_channel::<String>(LOG_QUEUE);
    thread::Builder::new().name("log".into()).spawn(move || {
        for line in lines {
            let mut out = io::stdout().lock();
            let dropped = DROPPED.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let _ = writeln!(out, "({dropped} log lines dropped: stdout did not keep up)");
            }
            // stdout is line-buffered: each line goes out whole, now. An error (stdout
            // closed) is ignored: the log is lost, the service is not.
            let _ = writeln!(out, "{line}");
        }
    })?;
    let _ = LOG.set(queue);
    Ok(())
}

/// Queues one log line without ever waiting: a full queue drops the line (and counts it).
fn log_line(line: String) {
    let queued = LOG.get().is_some_and(|queue| queue.try_send(line).is_ok());
    if !queued {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}
