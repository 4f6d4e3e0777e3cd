//! Lesson 05, server: the notes' section 4 (优酷项目中 视频的上传与下载), the upload server, fixed.
//!
//! The notes' server, line for line: accept one client, read its uploads one after another (a
//! dict header on lesson 04's 4-byte frame, then `size` bytes), store each in `--dir`, send no
//! reply. Bug 11 of the top-level README is fixed at each line that has it (`BUG 11 fixed`).
//!
//! ```text
//! cargo run --bin lesson05-server -- --dir videos                  # terminal 1
//! cargo run --bin lesson05-client -- --dir some/folder             # terminal 2: pick a number
//! ```
//!
//! Watch for: `stored "name": N bytes` once a whole file is in `--dir`; stop a client mid-file
//! (Ctrl-C): nothing of it is there. The notes' Python client (its address and `DATA_PATH`
//! changed) uploads here unchanged.

#[path = "../04_header/protocol.rs"]
mod framing;

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde::Deserialize;
use socket_lessons::{announce, cli, is_timeout, log, wire::Traced};

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
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,
}

/// The two keys of the notes' dict header we use; `desc` and `info` are accepted and ignored.
#[derive(Deserialize)]
struct Header {
    file_name: String,
    size: u64,
}

/// Bytes per `read`: the notes' `recv(1024)` costs a system call per KiB (lesson 07 measures).
const CHUNK: usize = 64 * 1024;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create directory {}", args.dir.display()))?;
    // server = socket.socket(); setsockopt(SO_REUSEADDR); bind(('192.168.11.70', 8080)); listen(5)
    // std's bind sets SO_REUSEADDR (on Unix) and listens with a backlog of 128 (lesson 02).
    let listener = TcpListener::bind(args.common.addr)
        .with_context(|| format!("cannot listen on {}", args.common.addr))?;
    announce(listener.local_addr()?)?;

    loop {
        // sock, address = server.accept()
        let (sock, peer) = match listener.accept() {
            Ok(pair) => pair,
            // A client that left while queued: accept fails with ECONNABORTED on macOS and the
            // BSDs (Linux returns it, its first read fails; Windows: WSAECONNRESET, below).
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
            // Anything else: out of descriptors (EMFILE) fails again at once, so pause or spin.
            Err(e) => {
                log!("accept failed: {e}; trying again in 1 s");
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        // print(address)
        log!("{peer} connected");
        match serve(sock, peer, &args) {
            Ok(()) => log!("{peer} closed the connection"),
            Err(e) => log!("{peer} dropped: {e:#}"),
        }
    }
}

/// The notes' inner `while True`: uploads one after another on one connection.
fn serve(sock: TcpStream, peer: SocketAddr, args: &Args) -> Result<()> {
    // A silent client would hold all others forever: a read waiting past --idle-timeout ends
    // it. A slow one (a byte every 59 s) still holds them; lesson 07 also bounds the rate.
    sock.set_read_timeout(Some(args.idle_timeout))?;
    let mut sock = Traced::labelled(sock, args.common.trace, peer);
    let mut buf = vec![0u8; CHUNK];
    loop {
        // recv_first = sock.recv(4); dict_length = struct.unpack('i', recv_first)[0]
        // real_data = sock.recv(dict_length); real_dict = json.loads(real_data)
        // read_json_header loops over short reads and refuses a length under 0 or over 64 KiB
        // before allocating (bugs 5, 6): a web page's `POST` or `GET ` is 500 MB or more.
        let Some(header) = framing::read_json_header::<Header>(&mut sock).map_err(silent)? else {
            // BUG 11 fixed: a close between uploads is the normal end (the notes crash here).
            return Ok(());
        };
        // file_name = real_dict.get('file_name'); data_length = real_dict.get('size')
        let Header { file_name, size } = header;
        // with open(file_name, 'ab') as f:
        // BUG 11 fixed: the name is the peer's text, not a path we trust: a bare name only.
        check_name(&file_name)?;
        let max = args.max_size;
        ensure!(size <= max, "{size} bytes is over --max-size {max}");
        // print(real_dict), once checked; {:?} escapes control characters in the peer's name.
        log!("{peer} sends {file_name:?}: {size} bytes");

        // BUG 11 fixed: 'ab' glued a second upload onto the first, and a half upload stayed.
        // A hidden temporary name no upload may use, renamed in one step once complete.
        let temp = args.dir.join(".upload.part");
        let stored = receive(&mut sock, &temp, size, &mut buf)
            .and_then(|()| Ok(fs::rename(&temp, args.dir.join(&file_name))?));
        if let Err(e) = stored {
            let _ = fs::remove_file(&temp);
            return Err(e.context(format!("{file_name:?} not stored, partial file deleted")));
        }
        log!("{peer} stored {file_name:?}: {size} bytes");
    }
}

/// The notes' body loop: `size` bytes from `sock` into a new file at `path`.
fn receive(sock: &mut impl Read, path: &Path, size: u64, buf: &mut [u8]) -> Result<()> {
    let mut f = File::create(path).context("creating the temporary file")?;
    // recv_size = 0; while recv_size < data_length:
    let mut recv_size: u64 = 0;
    while recv_size < size {
        // data = sock.recv(1024), but no more than this file has left (not the next header).
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

/// A read timeout, said as one (std: "Resource temporarily unavailable" on Unix).
fn silent(e: io::Error) -> io::Error {
    match is_timeout(&e) {
        true => io::Error::new(e.kind(), "silent for longer than --idle-timeout"),
        false => e,
    }
}

/// The bare-name rule (裸文件名): joined to `--dir`, the name can only name an entry of `--dir`,
/// whatever system the server runs on. The `bare_name` exercise
/// writes this rule; lesson 07 applies it too, then refuses more (names that show as another
/// name, names Windows keeps for itself): its README says which and why, under "File names".
fn check_name(name: &str) -> Result<()> {
    // At most 255 bytes, the longest name most file systems take; a longer one is not logged.
    let len = name.len();
    ensure!(len <= 255, "a {len}-byte name is over 255; nothing written");
    // No leading `.` (`.`, `..`, hidden files, our temporary name). No `/` or `\` (`../x`,
    // `/etc/x`, `a\b`: a separator on one system or another). No `:` (on Windows `C:x` is on
    // drive C:, `x:y` a stream of file x), on every system, as `\`: one upload, one answer.
    // No control character: a newline or an escape sequence in a name makes a listing lie.
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', ':'])
        || name.contains(char::is_control);
    ensure!(!bad, "{name:?} is not a bare file name; nothing written");
    Ok(())
}
