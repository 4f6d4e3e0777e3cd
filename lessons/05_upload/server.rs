//! Lesson 05, server: the notes' section 4 (优酷项目中 视频的上传与下载), the upload server, fixed.
//!
//! The notes' server, line for line: accept one client, read uploads from it one after another
//! (a dict header on lesson 04's 4-byte frame, then `size` bytes of file), store each in
//! `--dir`. One client at a time and no reply, as in the notes. Bug 11 of the top-level README
//! is fixed at each line that has it (`BUG 11 fixed`): the client's name used as a path, `'ab'`
//! gluing a second upload onto the first, the endless loop when the client leaves mid-file,
//! and the crash in `struct.unpack` when it leaves between uploads.
//!
//! ```text
//! cargo run --bin lesson05-server -- --dir videos                  # terminal 1
//! cargo run --bin lesson05-client -- --dir some/folder             # terminal 2: pick a number
//! ```
//!
//! Watch for: `stored "name": N bytes` once a whole file is in `--dir`. Stop a client in the
//! middle of a big file (Ctrl-C) and look in `--dir`: nothing of it is there. The notes' own
//! Python client (address and `DATA_PATH` changed) uploads into this server unchanged.

#[path = "../04_header/protocol.rs"]
mod framing;

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Deserialize;
use socket_lessons::{announce, cli, is_timeout, wire::Traced};

/// Lesson 05 server: store the files a client uploads, one client at a time.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Directory the uploads are stored in (created if missing); nothing is written outside it
    #[arg(long, default_value = "videos")]
    dir: PathBuf,

    /// Largest upload accepted, in bytes (default 16 GiB): a peer's `size` must not fill the disk
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 30)]
    max_size: u64,

    /// Seconds a client may stay silent before it is disconnected (the others wait meanwhile)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
}

/// The two keys of the notes' dict header we use; `desc` and `info` are accepted and ignored.
#[derive(Deserialize)]
struct Header {
    file_name: String,
    size: u64,
}

/// Bytes per `read`: the notes' `recv(1024)` costs a system call per KiB; 64 KiB costs one per
/// 64 KiB. (Lesson 07 measures buffer sizes.)
const CHUNK: usize = 64 * 1024;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create directory {}", args.dir.display()))?;
    // server = socket.socket(); server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    // server.bind(('192.168.11.70', 8080)); server.listen(5)
    // std's bind sets SO_REUSEADDR (on Unix) and listens with a backlog of 128 itself (lesson 02).
    let listener = TcpListener::bind(args.common.addr)
        .with_context(|| format!("cannot listen on {}", args.common.addr))?;
    announce(listener.local_addr()?)?;

    loop {
        // sock, address = server.accept()
        let (sock, peer) = match listener.accept() {
            Ok(pair) => pair,
            // Reset while it waited in the queue: take the next one.
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
            // Out of file descriptors (EMFILE), accept fails at once, again and again: pause,
            // or this loop spins at full CPU. (Lesson 07 backs off and counts.)
            Err(e) => {
                println!("accept failed: {e}; trying again in 1 s");
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        // print(address)
        println!("{peer} connected");
        match serve(sock, peer, &args) {
            Ok(()) => println!("{peer} closed the connection"),
            Err(e) => println!("{peer} dropped: {e:#}"),
        }
    }
}

/// The notes' inner `while True`: uploads one after another on one connection.
fn serve(sock: TcpStream, peer: SocketAddr, args: &Args) -> Result<()> {
    // One client at a time, as in the notes: a silent client would hold all others forever, so
    // a read that waits longer than --idle-timeout ends it. A slow one (a byte every 59 s) still
    // holds them: lesson 07 gives a header a deadline, a body a minimum rate, and serves many.
    sock.set_read_timeout(Some(Duration::from_secs(args.idle_timeout)))?;
    let mut sock = Traced::labelled(sock, args.common.trace, peer);
    let mut buf = vec![0u8; CHUNK];
    loop {
        // recv_first = sock.recv(4); dict_length = struct.unpack('i', recv_first)[0]
        // real_data = sock.recv(dict_length); real_dict = json.loads(real_data)
        // read_json_header loops over short reads and refuses a negative length or one over
        // 64 KiB before allocating (bugs 5 and 6), then parses the JSON.
        // A web page's HTTP request lands here too: `POST` or `GET ` is a length of 500 MB or more.
        let Some(header) = framing::read_json_header::<Header>(&mut sock).map_err(silent)? else {
            // BUG 11 fixed: the client closed between two uploads, the normal end; the notes
            // call struct.unpack on the empty recv(4) here and crash.
            return Ok(());
        };
        // file_name = real_dict.get('file_name'); data_length = real_dict.get('size')
        let Header { file_name, size } = header;
        // with open(file_name, 'ab') as f:
        // BUG 11 fixed: the name is the peer's text, not a path we trust: a bare name only.
        check_name(&file_name)?;
        if size > args.max_size {
            bail!("{size} bytes is over --max-size {}", args.max_size);
        }
        // print(real_dict), once checked: a refused name is logged once, in the refusal.
        // {:?} escapes control characters, so a peer's name cannot paint the log.
        println!("{peer} sends {file_name:?}: {size} bytes");

        // BUG 11 fixed: 'ab' glued a second upload onto the first, and a half upload stayed.
        // Write a temporary file (a hidden name no upload may use), rename it when complete.
        let temp = args.dir.join(".upload.part");
        // Rename replaces an existing file of that name in one step: a reader sees the old
        // file or the new one, never half of one.
        let stored = receive(&mut sock, &temp, size, &mut buf)
            .and_then(|()| Ok(fs::rename(&temp, args.dir.join(&file_name))?));
        if let Err(e) = stored {
            let _ = fs::remove_file(&temp);
            return Err(e.context(format!("{file_name:?} not stored, partial file deleted")));
        }
        // No reply, as in the notes: the client does not read one (lesson 07 adds replies).
        println!("{peer} stored {file_name:?}: {size} bytes");
    }
}

/// The notes' body loop: `size` bytes from `sock` into a new file at `path`.
fn receive(sock: &mut impl Read, path: &Path, size: u64, buf: &mut [u8]) -> Result<()> {
    let mut f = File::create(path).context("creating the temporary file")?;
    // recv_size = 0; while recv_size < data_length:
    let mut recv_size: u64 = 0;
    while recv_size < size {
        // data = sock.recv(1024)
        // At most what is left of this file: the notes' recv(1024) may also take the first
        // bytes of the next upload's header, which then goes into this file.
        let want = (size - recv_size).min(buf.len() as u64) as usize;
        let n = match sock.read(&mut buf[..want]) {
            // BUG 11 fixed: b'' means the client left mid-file; the notes loop forever here.
            Ok(0) => bail!("the client left after {recv_size} of {size} bytes"),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(silent(e)).context(format!("after {recv_size} of {size} bytes")),
        };
        // f.write(data); recv_size += len(data)
        f.write_all(&buf[..n]).context("writing the file")?;
        recv_size += n as u64;
    }
    Ok(())
}

/// A read timeout, said as one: std calls it "Resource temporarily unavailable" (Unix) or "A
/// connection attempt failed" (Windows).
fn silent(e: io::Error) -> io::Error {
    match is_timeout(&e) {
        true => io::Error::new(e.kind(), "silent for longer than --idle-timeout"),
        false => e,
    }
}

/// A bare file name: joined to `--dir` it can only name an entry of `--dir`.
fn check_name(name: &str) -> Result<()> {
    // At most 255 bytes, the longest name most file systems take; a longer one is not logged.
    if name.len() > 255 {
        bail!("a {}-byte name is over 255; nothing written", name.len());
    }
    // No separator: `../x`, `/etc/x` and `a/b` have one. `\` is one on Windows.
    // No leading `.`: that refuses `.` and `..`, and keeps the temporary name ours.
    // No `:`: on Windows `C:x` is a path on drive C: and `x:y` a hidden stream of file x.
    // No control character: a newline or an escape in a name misleads every listing.
    // No invisible or reordering character (zero-width, bidi marks, overrides, isolates, BOM):
    // `invoice\u{202e}fdp.exe` shows as `invoiceexe.pdf` (Trojan Source), `a\u{200b}.mp4` as a
    // second `a.mp4`. The usual ones; lesson 07 refuses the Unicode classes they belong to.
    let invisible = |c| {
        matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || c == '\u{feff}'
    };
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', ':'])
        || name.chars().any(|c| c.is_control() || invisible(c));
    if bad {
        bail!("{name:?} is not a bare file name; nothing written");
    }
    Ok(())
}
