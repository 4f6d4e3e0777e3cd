//! The floor of the lesson 07 transfer benchmark: a plain TCP copy of a file.
//!
//! No framing, no header, no digest: the receiver accepts one connection, writes everything it
//! reads into `--out` until the sender closes, and closes too. Whatever lesson 07 adds on top
//! (报头, digest, temporary file and rename) is measured against this.
//!
//! ```text
//! cargo build --release --example tcp_copy
//! target/release/examples/tcp_copy recv --addr 127.0.0.1:0 --out /dev/shm/copy.bin   # prints the port
//! target/release/examples/tcp_copy send --addr 127.0.0.1:PORT /dev/shm/video.bin
//! ```
//!
//! The options are the knobs the benchmark's sweep turns (see `bench/README.md`), each one a
//! way a real program might move the bytes:
//!
//! - `--buf SIZE` (default 1 MiB): the size of the one buffer each end reads into and writes
//!   from. The notes' server uses `recv(1024)`; every `read`/`write` is a system call, so the
//!   buffer size decides how many calls a gigabyte costs.
//! - `--io-copy`: `std::io::copy` on both ends instead of our loop. Between a `File` and a
//!   `TcpStream` it loops `read`/`write` with an 8 KiB buffer: std stopped using `sendfile` for
//!   sockets in Rust 1.70.
//! - `--digest`: XXH3-128 of the bytes on both ends, as lesson 07 does; both print it.
//! - `--lines` (sender): the notes' `for line in f: client.send(line)`, one write per line
//!   (a binary file split at its newline bytes).
//! - `--bufwriter`: a `BufWriter` (8 KiB) around the socket (sender) or the file (receiver).
//!   It merges small writes such as `--lines` into fewer system calls; a write larger than its
//!   buffer goes straight through, so with big buffers it changes nothing.
//!
//! `tcp_copy hash PATH` reads a file and digests it, without a socket: what XXH3 costs alone.
//!
//! The sender half-closes after the last byte and waits for the receiver's close, so its exit
//! means "every byte is in the receiver's file", like a lesson 07 client that waits for its reply.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use socket_lessons::cli::parse_addr;
use xxhash_rust::xxh3::Xxh3;

#[derive(Parser)]
#[command(about = "Plain TCP copy of a file (the transfer benchmark's floor)")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Knobs {
    /// Buffer size for every read and write: bytes, or with K/M suffix (1024-based)
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    buf: usize,
    /// Use std::io::copy (8 KiB loop) instead of our own buffer loop
    #[arg(long, conflicts_with_all = ["digest", "bufwriter"])]
    io_copy: bool,
    /// Compute the XXH3-128 digest of the bytes and print it
    #[arg(long)]
    digest: bool,
    /// Wrap the socket (send) or the file (recv) in a BufWriter with its default 8 KiB buffer
    #[arg(long)]
    bufwriter: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Accept one connection and write what it sends into --out
    Recv {
        /// Address to listen on; port 0 picks a free port (printed on the first line)
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
        addr: SocketAddr,
        /// File to write (created or truncated)
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Connect and send a file
    Send {
        /// Address of the receiver
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
        addr: SocketAddr,
        /// File to send
        path: PathBuf,
        /// One write per line of the file, as the notes' `for line in f: client.send(line)`
        #[arg(long)]
        lines: bool,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// No network: read a file and compute its XXH3-128 digest, to show what the digest costs
    Hash {
        /// File to read
        path: PathBuf,
        /// Buffer size for every read
        #[arg(long, default_value = "1M", value_parser = parse_size)]
        buf: usize,
    },
}

/// `8K`, `64k`, `1M`, `1048576`.
fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: usize = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    let mult = match unit {
        "" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        _ => return Err(format!("bad size unit in {text:?} (use K or M)")),
    };
    match n.checked_mul(mult) {
        Some(size) if size > 0 => Ok(size),
        _ => Err(format!("size {text:?} out of range")),
    }
}

fn main() {
    let args: Args = socket_lessons::cli::parse();
    let result = match args.cmd {
        Cmd::Recv { addr, out, knobs } => recv(addr, &out, &knobs),
        Cmd::Send {
            addr,
            path,
            lines,
            knobs,
        } => send(addr, &path, lines, &knobs),
        Cmd::Hash { path, buf } => hash(&path, buf),
    };
    if let Err(err) = result {
        eprintln!("tcp_copy: {err:#}");
        std::process::exit(1);
    }
}

fn recv(addr: SocketAddr, out: &PathBuf, knobs: &Knobs) -> Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
    socket_lessons::announce(listener.local_addr()?)?;
    let (mut sock, peer) = listener.accept().context("accept")?;
    let start = Instant::now();
    let file = File::create(out).with_context(|| format!("create {}", out.display()))?;
    let mut digest = knobs.digest.then(Xxh3::new);
    let total = if knobs.io_copy {
        let mut file = file;
        io::copy(&mut sock, &mut file).context("io::copy socket -> file")?
    } else {
        let mut sink: Box<dyn Write> = if knobs.bufwriter {
            Box::new(BufWriter::new(file))
        } else {
            Box::new(file)
        };
        // Ok(0) from the socket is the sender's close: every byte it sent has been read.
        let total = pump(&mut sock, &mut sink, knobs.buf, &mut digest).context("socket -> file")?;
        sink.flush().context("flush file")?;
        total
    };
    report("received", total, start, digest, Some(peer));
    // Dropping `sock` closes it: the sender, waiting for our close, now knows we are done.
    Ok(())
}

fn send(addr: SocketAddr, path: &PathBuf, lines: bool, knobs: &Knobs) -> Result<()> {
    if lines && knobs.io_copy {
        bail!("--lines and --io-copy exclude each other");
    }
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let start = Instant::now();
    let sock = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    let mut digest = knobs.digest.then(Xxh3::new);
    let mut raw = sock.try_clone().context("clone socket")?;
    let total = if knobs.io_copy {
        io::copy(&mut file, &mut raw).context("io::copy file -> socket")?
    } else {
        let mut out: Box<dyn Write> = if knobs.bufwriter {
            Box::new(BufWriter::new(sock.try_clone().context("clone socket")?))
        } else {
            Box::new(sock.try_clone().context("clone socket")?)
        };
        let mut total = 0u64;
        if lines {
            // The notes' client: one send per "line" of a binary file, split at b'\n'.
            let mut reader = BufReader::with_capacity(knobs.buf, file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).context("read file")?;
                if n == 0 {
                    break;
                }
                if let Some(d) = digest.as_mut() {
                    d.update(&line);
                }
                out.write_all(&line).context("write socket")?;
                total += n as u64;
            }
        } else {
            total = pump(&mut file, &mut out, knobs.buf, &mut digest).context("file -> socket")?;
        }
        out.flush().context("flush socket")?;
        total
    };
    // Half-close: the receiver's read returns Ok(0). Then wait for its close, which it does only
    // after the last byte is in its file.
    sock.shutdown(Shutdown::Write).context("shutdown")?;
    let mut rest = [0u8; 1];
    if raw
        .read(&mut rest)
        .context("wait for the receiver's close")?
        != 0
    {
        bail!("the receiver sent bytes; it should only close");
    }
    report("sent", total, start, digest, None);
    Ok(())
}

/// Copies `src` to `dst` through one buffer of `buf` bytes until `src` ends, hashing what
/// passes when a digest is asked for; the number of bytes copied. Both directions use it.
fn pump(
    src: &mut impl Read,
    dst: &mut impl Write,
    buf: usize,
    digest: &mut Option<Xxh3>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; buf];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(d) = digest.as_mut() {
            d.update(&buf[..n]);
        }
        // write_all, not write: one write may take only part of a buffer.
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn hash(path: &PathBuf, buf: usize) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut buf = vec![0u8; buf];
    let start = Instant::now();
    let mut digest = Xxh3::new();
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("read file"),
        };
        digest.update(&buf[..n]);
        total += n as u64;
    }
    report("hashed", total, start, Some(digest), None);
    Ok(())
}

fn report(verb: &str, total: u64, start: Instant, digest: Option<Xxh3>, peer: Option<SocketAddr>) {
    let secs = start.elapsed().as_secs_f64();
    let mib = total as f64 / (1024.0 * 1024.0);
    let mut line = format!(
        "{verb} {total} bytes in {secs:.3} s ({:.0} MiB/s)",
        mib / secs.max(1e-9)
    );
    if let Some(peer) = peer {
        line += &format!(" from {peer}");
    }
    if let Some(d) = digest {
        line += &format!(" xxh3 {:032x}", d.digest128());
    }
    println!("{line}");
}
