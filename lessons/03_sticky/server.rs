//! Lesson 03, server: the notes' section 3 (黏包问题), the remote-command server.
//!
//! Each message from the client is a shell command; the server runs it and sends back what it
//! printed (stdout, then stderr), as raw bytes with nothing around them. Nothing tells the
//! client where one answer ends, so a client that reads "one answer" with one `read(1024)` gets
//! the rest of a long answer when it asks its next question: that is 黏包 (sticky packets),
//! shown on purpose here and fixed in lesson 04 with a header (报头).
//!
//! ```text
//! cargo run --bin lesson03-server                          # terminal 1
//! cargo run --bin lesson03-client -- --trace               # terminal 2: seq 1 1000, then echo hi
//!
//! cargo run --bin lesson03-server -- --demo three-writes   # the notes' 123/456/789 demo
//! cargo run --bin lesson03-client -- --demo three-writes
//! ```
//!
//! Watch for: `--trace` on the client shows `read 1024 bytes` for `seq 1 1000` (3893 bytes of
//! output), and the answer printed for `echo hi` is `284` to `539`: the leftover. The server is
//! not wrong; its bytes all arrive, in order, just not where the client expects them.
//!
//! Fixed here, with the reason at the line (bug numbers: "The notes' bugs" in the top-level
//! README): an empty read ends the client instead of spinning (bug 1); any client error ends
//! that client only (bug 2);
//! both output pipes are read at once and commands are bounded in time and size (bug 7, in
//! `command.rs`); a non-loopback address needs `--allow-remote` (bug 8). Not in the notes: a web
//! page can reach a loopback server too, so a message no client of ours sends (a line break,
//! an HTTP request line or header) is refused before anything runs (`command.rs`); and a client
//! that stays silent, or never reads its answer, is dropped after `--idle-timeout`.

mod command;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use socket_lessons::{announce, cli, is_timeout, log, wire::Traced};

/// Lesson 03 server: run each message as a shell command, send back its output, unframed.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    #[command(flatten)]
    limits: command::Limits,

    /// Instead of running commands, show one of the notes' demos (see the README)
    #[arg(long, value_enum)]
    demo: Option<Demo>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Demo {
    /// The client writes 123, 456, 789; we read them with one read
    ThreeWrites,
}

/// The notes' `recv(1024)`: at most this many bytes per read.
const READ_SIZE: usize = 1024;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;
    // Bug 8, fixed: the notes bind their LAN address and run anything they receive with
    // `shell=True`: a shell for everyone on the network. Loopback only, unless asked.
    command::refuse_remote(addr, &args.limits);

    // `socket()`, `setsockopt(SO_REUSEADDR)`, `bind()`, `listen(5)`: lesson 02 shows each
    // call; std's `bind` does all of them (SO_REUSEADDR on Unix, a backlog of 128).
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    announce(listener.local_addr()?)?;

    // The connection loop (链接循环): one client at a time, as in the notes.
    loop {
        let (sock, peer) = match listener.accept() {
            Ok(pair) => pair,
            // Out of file descriptors (EMFILE), accept fails at once, again and again: pause,
            // or this loop spins at full CPU. (Lesson 07 backs off and counts.)
            Err(e) => {
                log!("accept failed: {e}; trying again in 1 s");
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        log!("{peer} connected");
        let result = match args.demo {
            Some(Demo::ThreeWrites) => three_writes(sock, peer, &args),
            None => serve(sock, peer, &args),
        };
        // Bug 2, fixed: whatever went wrong with this client (it reset the connection, quit
        // with our answer unread, …) ends this client only. The next one is served.
        match result {
            Ok(()) => log!("{peer} closed the connection"),
            Err(e) => log!("{peer} dropped: {e:#}"),
        }
    }
}

/// The communication loop (通信循环) with one client: read a command, run it, send the output.
fn serve(sock: TcpStream, peer: SocketAddr, args: &Args) -> Result<()> {
    // No wait without a bound: a client that sends nothing, or never reads our answer, is
    // dropped after --idle-timeout instead of holding the server from everyone else.
    command::set_idle_timeout(&sock, &args.limits)?;
    let mut sock = Traced::labelled(sock, args.common.trace, peer);
    let mut buf = [0u8; READ_SIZE];
    loop {
        // `data = sock.recv(1024)`.
        // NOTES' LIMITATION (kept): one read is taken as one whole command. A command longer
        // than 1024 bytes, or two commands that arrive together, would be cut or glued: the
        // same 黏包, in the other direction. Commands typed by hand are short, and the notes'
        // client waits for an answer before it sends the next, so this holds in practice.
        let n = match sock.read(&mut buf) {
            // Bug 1, fixed: `Ok(0)` is end of stream, the client has gone; the notes'
            // `if len(data) == 0: continue` would spin here forever. Back to accept().
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => bail!(command::SILENT),
            Err(e) => return Err(e).context("receiving a command"),
        };

        // Not in the notes: a web page in the learner's browser can send this server an HTTP
        // request, and the shell would run its lines. Such a message is refused before
        // anything runs, and the connection closed (command.rs says how it is recognised).
        command::refuse_web_request(&mut sock, &buf[..n])?;

        // `subprocess.Popen(cmd, shell=True, stdout=PIPE, stderr=PIPE)` and
        // `res = sub.stdout.read() + sub.stderr.read()`, with bounds: see command.rs.
        let cmd = command::command_text(&buf[..n]);
        let outcome = command::run(&cmd, &args.limits);
        match &outcome.note {
            None => log!("{peer} ran {cmd:?}: {} bytes", outcome.reply.len()),
            Some(note) => log!("{peer} ran {cmd:?}: {} bytes ({note})", outcome.reply.len()),
        }

        // `sock.send(res)`, as write_all: `send`/`write` may take only part of a big buffer.
        // BUG (on purpose): the output goes out as bare bytes. The client cannot tell where
        // this answer ends and the next begins. Lesson 04 sends a 4-byte length first (报头).
        sock.write_all(&outcome.reply)
            .map_err(command::unread)
            .context("sending the output")?;
    }
}

/// The notes' 123/456/789 demo, server side: how many bytes the demo client sends in total
/// (`123`, `456`, `789`, three writes).
const DEMO_BYTES: usize = 9;

/// How long the demo waits for the client's 9 bytes at most, in case a client sends fewer.
/// A safety net only: the demo client's bytes arrive in microseconds on loopback.
const DEMO_PATIENCE: Duration = Duration::from_secs(2);

/// The notes' 123/456/789 demo: three `send`s on the client, one `recv(1024)` here gets them
/// all. Made deterministic: we read only once all 9 bytes are in our receive buffer, which we
/// learn with `peek` (it looks at the buffer without taking anything out of it). Then the
/// reads run as in the notes, and what each got is printed and sent back to the client.
fn three_writes(sock: TcpStream, peer: SocketAddr, args: &Args) -> Result<()> {
    command::set_idle_timeout(&sock, &args.limits)?;
    let started = Instant::now();
    let mut look = [0u8; READ_SIZE];
    loop {
        // peek blocks until at least one byte is there, then says how many are waiting.
        let waiting = match sock.peek(&mut look) {
            Err(e) if is_timeout(&e) => bail!(command::SILENT),
            peeked => peeked.context("peeking")?,
        };
        if waiting >= DEMO_BYTES || waiting == 0 || started.elapsed() > DEMO_PATIENCE {
            break;
        }
        // Some bytes are here, the rest are on their way: look again in a moment.
        thread::sleep(Duration::from_millis(1));
    }

    let mut sock = Traced::labelled(sock, args.common.trace, peer);
    let mut report = String::new();
    let mut buf = [0u8; READ_SIZE];
    // The notes' listing reads three times; its second `sock.recv(1024)` is not assigned to
    // `data`, which is why it prints b'123456789' twice. Each read is printed here.
    for i in 1..=3 {
        let n = sock.read(&mut buf).context("reading")?;
        let line = match n {
            0 => format!("read {i}: 0 bytes (end of stream: the client has finished sending)"),
            n => format!(
                "read {i}: {n} bytes: {}",
                socket_lessons::wire::preview(&buf[..n])
            ),
        };
        log!("{peer} {line}");
        report.push_str(&line);
        report.push('\n');
        if n == 0 {
            break;
        }
    }
    // Tell the client what we saw; it has half-closed its sending side and reads to the end.
    sock.write_all(report.as_bytes())
        .context("sending the report")?;
    Ok(())
}
