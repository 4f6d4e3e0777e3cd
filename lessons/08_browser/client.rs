//! Lesson 08, client: what a browser does to fetch a page, small enough to read (a `curl` of
//! a hundred lines).
//!
//! It writes a GET request, reads the response head up to its empty line, then exactly the
//! `Content-Length` bytes of body: lesson 04's client, with the header (报头) in text. It
//! prints the status line, the header lines and the body, as `curl -i` does.
//!
//! ```text
//! cargo run --bin lesson08-server                               # terminal 1
//! cargo run --bin lesson08-client                               # terminal 2: GET /
//! cargo run --bin lesson08-client -- /favicon.ico               # a 404
//! cargo run --bin lesson08-client -- --keep-alive               # paths typed at a prompt
//! python3 -m http.server 8000                                   # any web server will do:
//! cargo run --bin lesson08-client -- --addr 127.0.0.1:8000 /
//! ```
//!
//! Watch for: with `--trace`, one write (the whole request) and the reads of the answer; the
//! head and the start of the body often arrive in one read, and the body is read exactly to
//! `Content-Length`. The head's numbers come from the server, so they are checked before
//! anything is allocated: a head over 8 KiB, a `Content-Length` that is negative, not a number
//! or over `--max-size` ends the client with the reason (lesson 04's bug 6, in HTTP), and the
//! body grows as its bytes arrive, never to a length only announced. Without a
//! `Content-Length`, the body ends where the server closes the connection, and the client says
//! so. What the server sent is escaped before it reaches the terminal; `--output FILE` keeps the
//! body's exact bytes. Every wait has a bound, `--timeout` (30 s): the connect, then the whole
//! head, then the whole body, each a deadline however slowly the bytes trickle in.
//!
//! `--keep-alive` does what a browser tab does: one connection, kept open between requests,
//! each path typed at the prompt sent on it. While it sits at its prompt, lesson 08's server
//! (one client at a time) serves nobody else, until `--idle-timeout` drops it.

#[path = "protocol.rs"]
mod http;

use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use socket_lessons::console::terminal_safe;
use socket_lessons::{cli, input::Input, is_timeout, wire::Traced};

use http::{Head, Until};

/// Lesson 08 client: GET a path over HTTP/1.1 and print the response, head and body.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// The path to ask for, from the server's root
    #[arg(default_value = "/", value_parser = parse_path)]
    path: String,

    /// Keep the connection open, as a browser does, and send each path typed (stdin) on it
    #[arg(long, conflicts_with_all = ["path", "output"])]
    keep_alive: bool,

    /// The largest body accepted, in bytes; a longer one ends the client
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    max_size: u64,

    /// Write the body's bytes to FILE, exactly, instead of showing it as text
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// The longest wait to connect, then for a response's whole head, then for its whole body
    // 30 s: an answer on loopback or a LAN takes milliseconds; a server silent for that long
    // is not coming, and the learner is told so instead of looking at a hung client.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = cli::parse_seconds)]
    timeout: Duration,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;

    // `client = socket.socket()` + `client.connect((ip, 8080))`, as in every lesson, within
    // --timeout (Python: `client.settimeout(30)` before `connect`). A server whose accept queue
    // is full, or an address where nothing answers at all, drops our SYNs, and a plain connect
    // waits for the system's own limit: about two minutes on Linux.
    let secs = args.timeout.as_secs_f64();
    let sock = match TcpStream::connect_timeout(&addr, args.timeout) {
        Ok(sock) => sock,
        Err(e) if is_timeout(&e) => bail!("cannot connect to {addr} within --timeout ({secs} s)"),
        Err(e) => return Err(e).with_context(|| format!("cannot connect to {addr}")),
    };
    // A server that never reads our request: a write gives up after --timeout too.
    sock.set_write_timeout(Some(args.timeout))?;
    let mut sock = Traced::new(sock, args.common.trace);
    // Bytes read past the end of a response: with a well-behaved server, none.
    let mut buf = Vec::new();

    if !args.keep_alive {
        let body = fetch(&mut sock, &mut buf, &args.path, true, &args)?;
        return match &args.output {
            Some(path) => {
                std::fs::write(path, &body.bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!(
                    "({} bytes of body written to {})",
                    body.bytes.len(),
                    path.display()
                );
                Ok(())
            }
            None => show(&body.bytes),
        };
    }

    // A browser tab: one connection, many requests, and in between it just stays open.
    let mut input = Input::new();
    while let Some(path) = input.line("输入路径>>>:")? {
        if path.is_empty() {
            continue;
        }
        if let Err(why) = parse_path(&path) {
            eprintln!("{why}");
            continue;
        }
        let body = fetch(&mut sock, &mut buf, &path, false, &args)?;
        show(&body.bytes)?;
        if !body.keep_alive {
            println!("(the server closes this connection after that answer)");
            break;
        }
    }
    Ok(())
}

/// Why there is no answer when the server has closed the connection.
const CLOSED: &str = "the server closed the connection without an answer";

/// The most interim (1xx) responses read before the real one. A server sends one or two
/// (`100 Continue`, `103 Early Hints`); the bound keeps a server from making us read and
/// print heads for as long as --timeout lasts.
const MAX_INTERIM: usize = 10;

/// A response's body, and whether the server keeps the connection open after it.
struct Body {
    bytes: Vec<u8>,
    keep_alive: bool,
}

/// Sends one GET for `path` and reads its response; prints the status line and the head.
/// `close`: ask the server to close the connection after it (`Connection: close`).
fn fetch(
    sock: &mut Traced<TcpStream>,
    buf: &mut Vec<u8>,
    path: &str,
    close: bool,
    args: &Args,
) -> Result<Body> {
    // The request: a request line, a head, an empty line. `Host` is required in HTTP/1.1 (one
    // address may serve many sites). One write_all: the whole request, or an error.
    let addr: SocketAddr = args.common.addr;
    let connection = if close { "Connection: close\r\n" } else { "" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lesson08-client\r\nAccept: */*\r\n\
         {connection}\r\n"
    );
    sock.write_all(request.as_bytes())
        .context("the server went away (sending)")?;

    // The response head: read until the empty line, at most 8 KiB, all of it within --timeout:
    // one deadline for the whole head, not a timeout per read, or a server that sends a byte
    // a second would keep us for ever. Bytes read after the head are the start of the body,
    // left in `buf` (the 黏包 leftover, which we keep and use).
    let secs = args.timeout.as_secs_f64();
    let deadline = Instant::now() + args.timeout;
    let mut interim = 0;
    let (code, head) = loop {
        let raw = match http::read_head(&mut Until(sock, deadline), buf) {
            Ok(Some(raw)) => raw,
            // A server may close a kept connection while we were not using it; our request
            // then meets a closed socket, and the answer is an end of stream or a reset (RST).
            Ok(None) => bail!(CLOSED),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => bail!(CLOSED),
            Err(e) if is_timeout(&e) => bail!("no whole response head within --timeout ({secs} s)"),
            Err(e) => return Err(e).context("reading the response head"),
        };
        let head = Head::parse(&raw).map_err(|why| anyhow::anyhow!("bad response head: {why}"))?;
        let (code, _) = http::parse_status_line(&head.first_line).map_err(anyhow::Error::msg)?;

        // `print(head)`: what a server sends is escaped before it reaches the terminal.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", terminal_safe(&head.first_line))?;
        for (name, value) in &head.fields {
            writeln!(out, "{}", terminal_safe(&format!("{name}: {value}")))?;
        }
        writeln!(out)?;
        drop(out);

        // 1xx: an interim response, a note before the real one (RFC 9110: `100 Continue`,
        // `103 Early Hints`); shown, as `curl -i` does, and the real one is read next, within
        // the same deadline. `101 Switching Protocols` would end HTTP on this connection: only
        // a client that asked for it (`Upgrade:`) may get it, and we never ask.
        match code {
            101 => bail!("101 Switching Protocols, which this client did not ask for"),
            100..=199 if interim == MAX_INTERIM => {
                bail!("more than {MAX_INTERIM} interim (1xx) responses")
            }
            100..=199 => interim += 1,
            _ => break (code, head),
        }
    };
    let keep_alive = !head.connection_has("close");

    // 204 and 304 responses have no body, whatever their head says (RFC 9112).
    if code == 204 || code == 304 {
        return Ok(Body {
            bytes: Vec::new(),
            keep_alive,
        });
    }
    // The body's own deadline, starting now: all of it within --timeout.
    let mut body_reader = Until(sock, Instant::now() + args.timeout);
    // Two ways to say where the body ends, which may disagree: which one would the server
    // mean, and which one would a proxy on the way believe? RFC 9112 asks a client to treat
    // the pair as an error (it is how requests are smuggled past a proxy).
    let chunked = head.field("Transfer-Encoding").is_some();
    if chunked && head.field("Content-Length").is_some() {
        bail!(
            "bad response head: both Transfer-Encoding and Content-Length (RFC 9112 asks to \
             treat that as an error)"
        );
    }
    let len = match head.content_length() {
        Err(why) => bail!("bad response head: {why}"),
        Ok(Some(len)) => len,
        Ok(None) if chunked => {
            bail!("the body comes in chunks (Transfer-Encoding), which this small client does not read")
        }
        // No length: the body is everything until the server closes the connection (the
        // fourth way to end a message), but never more than --max-size.
        Ok(None) => {
            let mut body = std::mem::take(buf);
            let limit = args
                .max_size
                .saturating_add(1)
                .saturating_sub(body.len() as u64);
            match (&mut body_reader).take(limit).read_to_end(&mut body) {
                Err(e) if is_timeout(&e) => bail!(
                    "the body did not end within --timeout ({secs} s): {} bytes so far",
                    body.len()
                ),
                result => result.context("reading the body")?,
            };
            if body.len() as u64 > args.max_size {
                bail!("the body is longer than --max-size {}", args.max_size);
            }
            eprintln!(
                "(no Content-Length: the body is what came until the server closed the \
                 connection, {} bytes)",
                body.len()
            );
            return Ok(Body {
                bytes: body,
                keep_alive: false,
            });
        }
    };
    // Checked before anything is allocated, as lesson 04 checks its header's size (bug 6).
    if len > args.max_size {
        bail!(
            "bad response head: Content-Length {len} is over --max-size {}",
            args.max_size
        );
    }
    // The body starts with what was read after the head; what is past the body stays in
    // `buf` (a server that sent more than it announced: the next read of a head shows it).
    let have = len.min(buf.len() as u64);
    let mut body: Vec<u8> = buf.drain(..have as usize).collect();
    // Lesson 04's `read_exact`, for the rest: exactly `len` bytes, however the network cuts
    // them up. Not `vec![0; len]` and `read_exact`: the length is only the server's word, and
    // a head that announces 64 MiB and sends 3 bytes would cost 64 MiB. `take(n)` stops after
    // n bytes, and `read_to_end` grows the buffer as bytes arrive, to what really came.
    let rest = len - have;
    match (&mut body_reader).take(rest).read_to_end(&mut body) {
        Err(e) if is_timeout(&e) => bail!(
            "the body did not come within --timeout ({secs} s): {} of {len} bytes",
            body.len()
        ),
        result => result.context("reading the body")?,
    };
    // `read_to_end` also ends at the end of the stream: fewer bytes than announced.
    if (body.len() as u64) < len {
        bail!("the server closed the connection in the middle of {len} bytes of body");
    }
    Ok(Body {
        bytes: body,
        keep_alive,
    })
}

/// `print(data.decode('utf8'))`, with what a terminal would obey escaped. A body that does not
/// end its last line gets a line break on a terminal, so the next prompt starts on its own.
fn show(body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    let mut out = std::io::stdout().lock();
    write!(out, "{}", terminal_safe(&text))?;
    if !text.is_empty() && !text.ends_with('\n') && out.is_terminal() {
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// A path to ask for: starts with `/`, no spaces or control characters (they would break the
/// request line; a browser writes them as `%20` and such).
fn parse_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') || text.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{text:?}: a path starts with / and has no spaces or control characters, like /favicon.ico"
        ));
    }
    Ok(text.to_string())
}
