//! Lesson 07, client: the notes' section 4 upload client (优酷 视频上传), plus download and list.
//!
//! The notes' client lists a directory with numbers, reads a number, and sends a dict header
//! and the file. Two of its lines are bugs (bug 10 in the top-level README), fixed here at the
//! line: `for line in f: client.send(line)` cuts a binary file at every newline byte and
//! `send` may take only part of a chunk (here: large chunks, `write_all`); and the header's
//! `file_name` is hard-coded (here: the file's real name). This client also reads the
//! server's reply and checks the XXH3-128 digest of what arrived against its own.
//!
//! Download is what the notes announce and do not write. It is careful the way scp had to
//! learn to be (CVE-2019-6111): it writes only `--out DIR/NAME` for the NAME it asked for,
//! never a name the server sends, and only after the size and the digest checked out. And it
//! trusts the server no further (CVE-2019-6109): every string a server sends is escaped before
//! it is printed, and a server that trickles a body slower than `--min-rate` is given up on.
//!
//! ```text
//! cargo run --bin lesson07-server -- --dir videos                           # terminal 1
//! cargo run --bin lesson07-client -- upload 'a.mp4' 'b.mp4'                  # terminal 2
//! cargo run --bin lesson07-client -- list
//! cargo run --bin lesson07-client -- download 'a.mp4' --out downloads [--force]
//! cargo run --bin lesson07-client -- --dir some/folder                      # numbered menu
//! ```
//!
//! Output: one summary line per transfer on stdout (`uploaded "a.mp4": 3000000 bytes in
//! 0.01 s (286.1 MiB/s), xxh3 … verified`); errors on stderr; a progress bar on stderr only
//! when stderr is a terminal. Exit status 0 only if every transfer asked for was verified.
//! `--addr` and `--trace` go before or after the subcommand: `lesson07-client list --addr 127.0.0.1:18050`.

#[path = "../04_header/protocol.rs"]
mod framing;
#[allow(dead_code)] // Shared with the server; each side uses part of it.
mod protocol;

use std::fs::{self, File};
use std::io::{self, ErrorKind, IsTerminal, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use socket_lessons::console::one_line;
use socket_lessons::{cli, input::Input, is_timeout, wire::Traced};
use xxhash_rust::xxh3::Xxh3;

use protocol::{check_name, get_size, get_str, hex, Object, Pace, TempFile, CHUNK};
use unicode_normalization::UnicodeNormalization;

/// Lesson 07 client: upload videos, download them, list them.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Without a subcommand: the directory whose files the numbered menu offers
    #[arg(long, default_value = ".")]
    dir: PathBuf,

    /// Slowest transfer accepted, in bytes per second over each --rate-window (0: no floor)
    #[arg(
        long,
        global = true,
        value_name = "BYTES_PER_SEC",
        default_value_t = 4096
    )]
    min_rate: u64,

    /// Seconds over which --min-rate is measured
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    rate_window: u64,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Upload files under their own names
    Upload {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Download NAME into --out DIR
    Download {
        name: String,
        /// Directory to write NAME into (created if missing)
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Replace DIR/NAME if it exists
        #[arg(long)]
        force: bool,
    },
    /// List the files on the server
    List,
}

/// How long the client waits for a silent server before giving up.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Args = cli::parse();
    let mut conn = Conn {
        addr: args.common.addr,
        trace: args.common.trace,
        min_rate: args.min_rate,
        rate_window: Duration::from_secs(args.rate_window),
        sock: None,
    };
    let ok = match args.command {
        Some(Command::Upload { paths }) => {
            // Every file is tried; the exit status says whether all of them made it.
            let mut all_ok = true;
            for path in &paths {
                all_ok &= report(upload(&mut conn, path));
            }
            all_ok
        }
        Some(Command::Download { name, out, force }) => {
            report(download(&mut conn, &name, &out, force))
        }
        Some(Command::List) => report(list(&mut conn)),
        None => report(menu(&mut conn, &args.dir)),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The notes' interactive loop: list the files of `dir` with numbers (`enumerate(…, 1)`), read
/// a number, upload that file; again, until end of input. Uploads share one connection, as
/// in the notes. Fails if any upload failed.
fn menu(conn: &mut Conn, dir: &Path) -> Result<String> {
    let mut input = Input::new();
    let mut failed = 0;
    loop {
        // `os.listdir(DATA_PATH)`, every round, as the notes do: new files show up. Only
        // regular files, sorted (listdir's order is arbitrary).
        let mut names: Vec<String> = fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for (i, name) in names.iter().enumerate() {
            println!("{} {}", i + 1, name);
        }
        if names.is_empty() {
            println!("(no files in {})", dir.display());
        }
        // `input('选择想要上传的电影编号>>>:').strip()`: "choose the number of the film to upload".
        let Some(choice) = input.line("选择想要上传的电影编号>>>:")? else {
            break;
        };
        if choice.is_empty() {
            continue;
        }
        // `if choice.isdigit()` and `if choice in range(1, len + 1)`.
        match choice.parse::<usize>() {
            Ok(n) if (1..=names.len()).contains(&n) => {
                if !report(upload(conn, &dir.join(&names[n - 1]))) {
                    failed += 1;
                }
            }
            _ => println!("enter a number from 1 to {}", names.len()),
        }
    }
    if failed > 0 {
        bail!("{failed} upload(s) failed");
    }
    Ok(String::new())
}

/// Uploads one file under its own name and checks the server's digest against ours.
fn upload(conn: &mut Conn, path: &Path) -> Result<String> {
    // The notes hard-code `'file_name': '波多野老师合集.mp4'` whatever file was chosen (bug 10);
    // we send the file's real name, checked by the same rule the server applies. In NFC form:
    // the server refuses other forms (see check_name), and a file named on a Mac may have its
    // accents stored as separate characters (NFD); it shows the same either way.
    let name: String = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{}: no usable file name (not UTF-8?)", path.display()))?
        .nfc()
        .collect();
    let name = name.as_str();
    check_name(name).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // `os.path.getsize(movie_path)`, from the open file so the size is that of what we read.
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let size = meta.len();

    let (min_rate, rate_window) = (conn.min_rate, conn.rate_window);
    conn.with(|sock| {
        let start = Instant::now();
        // From the first byte: this runs a second time after a reconnect.
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Steps 1-5 of the notes: dict, json.dumps, struct.pack('i', len), send both.
        protocol::send_json(
            sock,
            &json!({ "cmd": "upload", "file_name": name, "size": size }),
        )
        .context("cannot send the header")?;

        // Step 6, `for line in f: client.send(line)`, fixed: a video has newline bytes at
        // random places, so "lines" are chunks of any size, one send each, and `send` may
        // take only part of its argument. Here: 1 MiB chunks and write_all, which loops
        // until the socket took every byte. The digest is computed on the way.
        let bar = progress(size);
        let mut buf = vec![0u8; CHUNK];
        let mut hasher = Xxh3::new();
        let mut sent: u64 = 0;
        let mut pace = Conn::pace(min_rate, rate_window);
        while sent < size {
            let want = buf.len().min((size - sent) as usize);
            let n = match file.read(&mut buf[..want]) {
                // The file got shorter since we took its size: the server is waiting for bytes
                // we do not have. Dropping the connection makes it delete the partial file.
                Ok(0) => bail!(
                    "{} shrank while being sent ({sent} of {size} bytes)",
                    path.display()
                ),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
            };
            hasher.update(&buf[..n]);
            if let Err(e) = protocol::write_all_paced(sock, &buf[..n], &mut pace) {
                // The server may have refused the upload (too large, disk full) and closed:
                // its reply, if any, is waiting in our receive buffer and says why.
                let _ = sock
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_secs(2)));
                return match recv_reply(sock, "reply") {
                    Err(refused) => Err(refused),
                    Ok(_) => {
                        Err(anyhow!(e).context(format!("sending {name} failed after {sent} bytes")))
                    }
                };
            }
            sent += n as u64;
            if let Some(bar) = &bar {
                bar.inc(n as u64);
            }
        }
        pace.done(sock)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let digest = hex(hasher.digest128());

        // The notes' client never reads. Ours waits for the server to say the file is stored,
        // then compares: same name, same size, same digest, or it is not a success.
        let reply = recv_reply(sock, "reply")?;
        let their_size = get_size(&reply, "size").map_err(|e| anyhow!("bad reply: {e}"))?;
        let their_digest = get_str(&reply, "xxh3").map_err(|e| anyhow!("bad reply: {e}"))?;
        if get_str(&reply, "file_name") != Ok(name) || their_size != size {
            bail!(
                "the server stored something else: {}",
                one_line(&Value::Object(reply.clone()).to_string())
            );
        }
        if their_digest != digest {
            bail!(
                "digest mismatch for {name}: we sent xxh3 {digest}, the server got {}",
                one_line(their_digest)
            );
        }
        Ok(format!(
            "uploaded {name:?}: {}, xxh3 {digest} verified",
            rate(size, start)
        ))
    })
}

/// Downloads NAME into `out/NAME`, through a temporary file that becomes `out/NAME` only once
/// the size and the digest are right.
fn download(conn: &mut Conn, name: &str, out: &Path, force: bool) -> Result<String> {
    // The name we write is the name we asked for, checked here: the server's reply cannot
    // steer where we write (scp CVE-2019-6111).
    check_name(name).map_err(|e| anyhow!("cannot download: {e}"))?;
    let target = out.join(name);
    if target.exists() && !force {
        bail!("{} exists; add --force to replace it", target.display());
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let (min_rate, rate_window) = (conn.min_rate, conn.rate_window);
    conn.with(|sock| {
        let start = Instant::now();
        protocol::send_json(sock, &json!({ "cmd": "download", "file_name": name }))
            .context("cannot send the request")?;
        let header = recv_reply(sock, "header")?;
        let size = get_size(&header, "size").map_err(|e| anyhow!("bad header: {e}"))?;
        // A server that answers with another name is broken or hostile; we would not use its
        // name anyway, but a mismatch means this is not the file we asked for.
        match get_str(&header, "file_name") {
            Ok(theirs) if theirs == name => {}
            Ok(theirs) => bail!("asked for {name:?}, the server sent {theirs:?}: refused"),
            Err(e) => bail!("bad header: {e}"),
        }

        // Until the rename below, the bytes live in a temporary file; every `?` and `bail!`
        // drops `temp`, which deletes it. `size` is only a count to read, never an allocation.
        let mut temp = TempFile::create(out, "download")
            .with_context(|| format!("cannot create a temporary file in {}", out.display()))?;
        let bar = progress(size);
        let mut buf = vec![0u8; CHUNK];
        let mut hasher = Xxh3::new();
        let mut received: u64 = 0;
        let mut pace = Conn::pace(min_rate, rate_window);
        while received < size {
            // At most what is left of the body: the trailer frame follows right behind it.
            let want = buf.len().min((size - received) as usize);
            // Held to the pace: a server that trickles (one byte every few seconds keeps every
            // single read short) is given up on at the end of a window under --min-rate.
            let n = match protocol::read_paced(sock, &mut buf[..want], &mut pace) {
                // End of stream before `size` bytes: a short body, never a finished file.
                Ok(0) => bail!("the server closed the connection after {received} of {size} bytes"),
                Ok(n) => n,
                Err(e) if is_timeout(&e) => {
                    bail!("the server is {e} ({received} of {size} bytes); download abandoned")
                }
                Err(e) => {
                    return Err(anyhow!(e).context(format!("after {received} of {size} bytes")))
                }
            };
            hasher.update(&buf[..n]);
            temp.write_all(&buf[..n])
                .with_context(|| format!("cannot write into {}", out.display()))?;
            received += n as u64;
            if let Some(bar) = &bar {
                bar.inc(n as u64);
            }
        }
        pace.done(sock)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }

        // The trailer: the digest of what the server sent. Missing, or different from ours:
        // the file is not trusted and the temporary file goes.
        let trailer = match protocol::recv_json(sock) {
            Ok(Some(trailer)) => trailer,
            Ok(None) => bail!("the server closed the connection before the digest trailer"),
            Err(e) => return Err(anyhow!(e).context("bad digest trailer")),
        };
        let theirs = get_str(&trailer, "xxh3").map_err(|e| anyhow!("bad digest trailer: {e}"))?;
        let digest = hex(hasher.digest128());
        if theirs != digest {
            let theirs = one_line(theirs);
            bail!("digest mismatch for {name}: the server sent xxh3 {theirs}, we got {digest}");
        }

        // Checked again: the file may have appeared while we were downloading.
        if target.exists() && !force {
            bail!(
                "{} appeared meanwhile; add --force to replace it",
                target.display()
            );
        }
        temp.persist(&target)
            .with_context(|| format!("cannot rename into {}", target.display()))?;
        Ok(format!(
            "downloaded {name:?}: {}, xxh3 {digest} verified",
            rate(size, start)
        ))
    })
}

/// Prints the server's files, one per line: size, two spaces, name.
fn list(conn: &mut Conn) -> Result<String> {
    conn.with(|sock| {
        protocol::send_json(sock, &json!({ "cmd": "list" })).context("cannot send the request")?;
        let reply = recv_reply(sock, "list")?;
        let Some(Value::Array(files)) = reply.get("files") else {
            bail!("bad list from the server: no \"files\" array");
        };
        let mut text = String::new();
        for file in files {
            let Value::Object(file) = file else {
                let file = one_line(&file.to_string()).into_owned();
                bail!("bad list from the server: {file} is not an object");
            };
            let name = get_str(file, "file_name").map_err(|e| anyhow!("bad list: {e}"))?;
            let size = get_size(file, "size").map_err(|e| anyhow!("bad list: {e}"))?;
            // Quoted and escaped unless it is a name we would accept: a hostile name cannot
            // send escape codes to the terminal, nor pass for another name.
            let shown = if check_name(name).is_ok() {
                name.to_string()
            } else {
                format!("{name:?}")
            };
            text.push_str(&format!("{size:>14}  {shown}\n"));
        }
        if files.is_empty() {
            text.push_str("(no files)\n");
        }
        if reply.get("truncated") == Some(&Value::Bool(true)) {
            text.push_str("(list cut to fit one 64 KiB frame)\n");
        }
        Ok(text.trim_end().to_string())
    })
}

// ---- The machinery: the connection, replies, progress ----

/// Prints a transfer's summary line (stdout) or its error (stderr); true on success.
fn report(result: Result<String>) -> bool {
    match result {
        Ok(summary) => {
            if !summary.is_empty() {
                println!("{summary}");
            }
            true
        }
        Err(e) => {
            eprintln!("lesson07-client: {e:#}");
            false
        }
    }
}

/// The connection to the server, made when first needed and dropped after a failure (the
/// server ends a connection after any error), so the next request starts on a fresh one.
struct Conn {
    addr: SocketAddr,
    trace: bool,
    min_rate: u64,
    rate_window: Duration,
    sock: Option<Traced<TcpStream>>,
}

/// Said on stderr when a kept connection turns out to be closed by the server.
const RECONNECTING: &str =
    "lesson07-client: the server closed our idle connection (--idle-timeout); reconnecting";

impl Conn {
    /// The connection, and whether it is one kept from an earlier request (`true`) rather
    /// than a new one.
    fn get(&mut self) -> Result<(&mut Traced<TcpStream>, bool)> {
        // The server ends a connection that stays idle for --idle-timeout (60 s by default),
        // and a learner may sit at the menu longer than that: check before reusing it.
        if let Some(sock) = &self.sock {
            if !still_open(sock.get_ref()) {
                eprintln!("{RECONNECTING}");
                self.sock = None;
            }
        }
        let kept = self.sock.is_some();
        if self.sock.is_none() {
            // The notes' `client.connect((ip, 8080))`.
            let sock = TcpStream::connect(self.addr)
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            // A server that stops talking must not hang us forever.
            sock.set_read_timeout(Some(SERVER_TIMEOUT))?;
            sock.set_write_timeout(Some(SERVER_TIMEOUT))?;
            // Our headers are small writes; send them at once instead of waiting on Nagle.
            sock.set_nodelay(true)?;
            self.sock = Some(Traced::new(sock, self.trace));
        }
        // Set just above.
        Ok((self.sock.as_mut().expect("connected"), kept))
    }

    /// Runs `f` on the connection; after an error the connection is dropped.
    ///
    /// If `f` fails because a kept connection was closed under it, `f` runs once more on a new
    /// connection. `still_open` catches most such closes before we send, but the server may
    /// close in the instant after that check; then our first write still succeeds (the kernel
    /// takes it) and the failure shows only as a reset or an early end of stream.
    fn with<T>(&mut self, mut f: impl FnMut(&mut Traced<TcpStream>) -> Result<T>) -> Result<T> {
        let (sock, kept) = self.get()?;
        let mut result = f(sock);
        if kept && result.as_ref().is_err_and(connection_lost) {
            eprintln!("{RECONNECTING}");
            self.sock = None;
            result = f(self.get()?.0);
        }
        if result.is_err() {
            self.sock = None;
        }
        result
    }

    /// The pace a body must keep: the server silent no longer than SERVER_TIMEOUT, and at
    /// least `--min-rate` bytes per second over each `--rate-window`. Its clock starts now:
    /// make one right before the body.
    fn pace(min_rate: u64, rate_window: Duration) -> Pace {
        Pace::new(SERVER_TIMEOUT, min_rate, rate_window)
    }
}

/// Whether an error means the server had closed the connection (reset, broken pipe, end of
/// stream) rather than refused or failed a request.
fn connection_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        })
    })
}

/// Whether the server has not closed `sock`. A peek that does not wait: "would block" means
/// nothing has arrived, so the connection is open and idle. End of stream means the server
/// closed it; any byte at all means something is wrong too, since the server never speaks
/// unasked. Either way the caller starts a new connection.
fn still_open(sock: &TcpStream) -> bool {
    if sock.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let idle = matches!(sock.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    sock.set_nonblocking(false).is_ok() && idle
}

/// Receives a reply frame and checks `"ok": true`; `{"ok":false,"error":…}` becomes an error
/// carrying the server's message. A length that is negative or over 64 KiB, bad JSON, or a
/// closed connection are errors too, caught by lesson 04's framing before any allocation.
fn recv_reply(sock: &mut Traced<TcpStream>, what: &str) -> Result<Object> {
    let reply = match protocol::recv_json(sock) {
        Ok(Some(reply)) => reply,
        Ok(None) => {
            let eof = io::Error::from(ErrorKind::UnexpectedEof);
            return Err(anyhow!(eof).context(format!(
                "the server closed the connection instead of sending {what}"
            )));
        }
        Err(e) if is_timeout(&e) => bail!("the server sent no {what} for {SERVER_TIMEOUT:?}"),
        Err(e) => return Err(anyhow!(e).context(format!("bad {what} from the server"))),
    };
    match reply.get("ok") {
        Some(Value::Bool(true)) => Ok(reply),
        Some(Value::Bool(false)) => {
            // Escaped: the message is the server's text (escape codes would reach our
            // terminal).
            let msg = get_str(&reply, "error").unwrap_or("(no message)");
            bail!("server refused: {}", one_line(msg))
        }
        _ => bail!(
            "bad {what} from the server: no \"ok\": true/false in {}",
            one_line(&Value::Object(reply).to_string())
        ),
    }
}

/// A progress bar on stderr while a transfer runs, only when stderr is a terminal (a pipe or
/// a log file would fill with escape codes).
fn progress(len: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    // No file name in the bar: its width is measured in chars, and a Chinese character takes
    // two columns, so a long name would wrap the line and every redraw would leave a copy.
    // The name is in the summary line that follows.
    let style = ProgressStyle::with_template(
        "[{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(style.progress_chars("=> "));
    Some(bar)
}

/// `3000000 bytes in 0.01 s (286.1 MiB/s)`
fn rate(bytes: u64, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64();
    let mib_s = bytes as f64 / (1024.0 * 1024.0) / secs.max(1e-9);
    format!("{bytes} bytes in {secs:.2} s ({mib_s:.1} MiB/s)")
}
