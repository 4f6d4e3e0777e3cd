//! Lesson 06, client (beyond the notes): UDP, the 数据报协议 (datagram protocol).
//!
//! Lesson 02's client over UDP: each input line is sent as one datagram and the reply (the line
//! plus `123`) is printed. There is no connection, so nothing can tell the client that the
//! server is gone: it waits at most `--timeout` seconds (default 2) for each reply and, if none
//! comes, says so ("UDP promises nothing") and goes on with the next line. Any unanswered line
//! makes the exit status 1 at the end; end of input with every line answered is status 0.
//!
//! ```text
//! cargo run --bin lesson06-server                 # terminal 1
//! cargo run --bin lesson06-client                 # terminal 2
//! printf 'hello\n你好\n' | cargo run --bin lesson06-client   # scripted: no prompt
//! cargo run --bin lesson06-client -- --demo three-sends     # boundaries are kept
//! cargo run --bin lesson06-client -- --demo oversize        # a cut datagram loses its rest
//! cargo run --bin lesson06-client -- --addr 127.0.0.1:18069  # nobody there: send_to succeeds
//! cargo run --bin lesson06-client -- --addr 127.0.0.1:18069 --connect   # ... and now?
//! ```
//!
//! Watch for: with no server running, the client starts and sends without complaint (lesson
//! 02's client fails at once with "connection refused": TCP's connect is a handshake, UDP has
//! none), then reports the silence. With `--connect` on Linux it learns at once that nobody is
//! listening: see the README for why.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use socket_lessons::wire::{preview, trace_preview};
use socket_lessons::{cli, input::Input, is_timeout};

/// Lesson 06 client: send each input line as one datagram, print the reply.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Seconds to wait for each reply before giving up on it (fractions allowed: 0.5)
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = cli::parse_seconds)]
    timeout: Duration,

    /// connect() the socket to the server: only its datagrams get in, and the system's
    /// "port unreachable" reports reach us (on Linux and macOS only connected sockets get them)
    #[arg(long)]
    connect: bool,

    /// Run a demo instead of reading lines from stdin
    #[arg(long, value_enum)]
    demo: Option<Demo>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Demo {
    /// Send "123", "456", "789" as three datagrams, then read the three replies
    ThreeSends,
    /// Send one 2000-byte datagram (more than the server's 1024-byte buffer), then "next"
    Oversize,
}

/// The size of the oversize demo's datagram: more than the server's default `--buf 1024`.
const OVERSIZE: usize = 2000;

fn main() -> Result<ExitCode> {
    let args: Args = cli::parse();
    let server = args.common.addr;

    // `client = socket.socket(type=socket.SOCK_DGRAM)`. Python's first `sendto` quietly binds
    // the socket to a free local port; std makes us say it: port 0 = "any free port", on the
    // unspecified address of the server's family, so the system picks the right source address.
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).context("cannot create a UDP socket")?;

    // `--connect`. UDP's connect() sends nothing and waits for nobody: there is no handshake.
    // It only records the server's address in our socket, so that send/recv need no address,
    // datagrams from anyone else are dropped, and errors the system learns about that address
    // (an ICMP "port unreachable" when nobody listens there) are reported on our next call.
    if args.connect {
        sock.connect(server)
            .with_context(|| format!("cannot connect to {server}"))?;
    }

    let client = Client {
        sock,
        server,
        connected: args.connect,
        trace: args.common.trace,
        timeout: args.timeout,
    };

    // Each mode returns (datagrams sent, replies that never came).
    let (sent, missing) = match args.demo {
        None => talk(&client)?,
        Some(Demo::ThreeSends) => three_sends(&client)?,
        Some(Demo::Oversize) => oversize(&client)?,
    };
    if missing > 0 {
        eprintln!("{missing} of {sent} datagrams got no reply");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The communication loop (通信循环) of lesson 02: one input line, one datagram, one reply.
fn talk(client: &Client) -> Result<(usize, usize)> {
    let mut input = Input::new();
    let (mut sent, mut missing) = (0, 0);
    // `msg = input('输入想说的话>>>:').strip()`: the prompt on a terminal only; `None` is end
    // of input, the clean way out.
    while let Some(speak) = input.line("输入想说的话>>>:")? {
        // Skipped as in lesson 02 (the notes' step 1), but for another reason: in TCP, sending
        // zero bytes sends nothing; in UDP it sends a real, empty datagram, and the server
        // would answer it with just "123".
        if speak.is_empty() {
            continue;
        }

        sent += 1;
        if !client.send(speak.as_bytes()) {
            missing += 1;
            continue;
        }
        match client.receive()? {
            Some(reply) => println!("{}", String::from_utf8_lossy(&reply)),
            // Lost, or nobody there: go on with the next line. Each datagram is on its own; a
            // lost one says nothing about the next (the server may be back by then).
            None => missing += 1,
        }
    }
    Ok((sent, missing))
}

/// Lesson 03's 123/456/789 demo over UDP: three sends, then three separate replies.
///
/// All three datagrams are sent before the first reply is read, the way lesson 03 reads only
/// after all three writes. Where TCP handed `123456789` to one read, the server's log shows
/// three `recv_from`s of 3 bytes, and three replies come back. That does not depend on timing:
/// the system keeps each datagram as a separate item in the receive queue, however many wait.
fn three_sends(client: &Client) -> Result<(usize, usize)> {
    let messages: [&[u8]; 3] = [b"123", b"456", b"789"];
    let mut missing = 0;
    for msg in messages {
        if !client.send(msg) {
            missing += 1;
        }
    }
    println!("sent \"123\", \"456\", \"789\" as three datagrams before reading any reply");
    for _ in 0..messages.len() - missing {
        match client.receive()? {
            Some(reply) => println!("reply ({} bytes): {}", reply.len(), preview(&reply)),
            None => missing += 1,
        }
    }
    if missing == 0 {
        println!("three datagrams in, three replies out: the boundaries were kept");
    }
    Ok((messages.len(), missing))
}

/// A datagram longer than the server's buffer: the server keeps what fits, the rest is gone.
///
/// In lesson 03 (TCP), the part of a long answer that did not fit in one read arrived in the
/// next read. Here the next datagram is just "next": the cut-off bytes never arrive anywhere.
fn oversize(client: &Client) -> Result<(usize, usize)> {
    // "0123456789" 200 times: where the cut falls is easy to read in the server's log.
    let big: Vec<u8> = b"0123456789"
        .iter()
        .copied()
        .cycle()
        .take(OVERSIZE)
        .collect();
    let mut missing = 0;
    for msg in [&big[..], b"next"] {
        if !client.send(msg) {
            missing += 1;
        }
    }
    println!("sent one {OVERSIZE}-byte datagram, then \"next\"");
    for _ in 0..2 - missing {
        let Some(reply) = client.receive()? else {
            missing += 1;
            continue;
        };
        println!("reply ({} bytes): {}", reply.len(), preview(&reply));
        if reply != b"next123" && reply.ends_with(b"123") {
            // Our big datagram comes back as what the server kept + "123".
            let kept = (reply.len() - 3).min(OVERSIZE);
            println!(
                "the server kept {kept} of {OVERSIZE} bytes; the other {} are gone",
                OVERSIZE - kept
            );
        }
    }
    Ok((2, missing))
}

/// The client's socket and what it needs to send and receive.
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    connected: bool,
    trace: bool,
    timeout: Duration,
}

impl Client {
    /// `client.sendto(msg, server_addr)`: one call, one datagram. `true` when the system took
    /// it, which says nothing about whether it will arrive; `false` when this datagram could
    /// not be sent (said on stderr), and the caller goes on with the next one.
    fn send(&self, msg: &[u8]) -> bool {
        // A connected socket has its address already: send() instead of send_to().
        let (call, result) = if self.connected {
            ("send", self.sock.send(msg))
        } else {
            ("send_to", self.sock.send_to(msg, self.server))
        };
        match result {
            // The whole datagram or nothing: no write_all for UDP.
            Ok(n) => {
                if self.trace {
                    eprintln!(
                        "{call} {n} bytes to {}: {}",
                        self.server,
                        trace_preview(msg)
                    );
                }
                true
            }
            // A connected socket may hold a "port unreachable" left over from an earlier
            // datagram; Linux reports it on whichever call comes next, even a send.
            Err(e) if nobody_listening(&e) => {
                self.report_unreachable(call, &e);
                false
            }
            // E.g. a line longer than the largest datagram (65507 bytes over IPv4).
            Err(e) => {
                eprintln!("cannot send this datagram ({} bytes): {e}", msg.len());
                false
            }
        }
    }

    /// `data, addr = client.recvfrom(1024)`, waiting at most `--timeout` in all. `Some(reply)`,
    /// or `None` when no reply came (said on stderr).
    fn receive(&self) -> Result<Option<Vec<u8>>> {
        let call = if self.connected { "recv" } else { "recv_from" };
        // As big as any datagram can be, so the client never cuts a reply (the server's echo
        // of a full 1024-byte buffer is 1027 bytes: `recvfrom(1024)` would cut it).
        let mut buf = vec![0u8; 65536];
        // The wait for a reply. Without a timeout, recv_from would wait forever for a reply
        // that was lost (or never sent): UDP tells nobody when a datagram disappears. It is a
        // deadline for the reply, not a timeout per call: a socket that sends us something
        // else every second (ignored below) must not make us wait for ever.
        let deadline = Instant::now() + self.timeout;
        loop {
            // What is left of the wait. set_read_timeout refuses zero: the time is up.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(self.no_reply(call));
            }
            self.sock
                .set_read_timeout(Some(left))
                .context("cannot set the receive timeout")?;
            let result = if self.connected {
                self.sock.recv(&mut buf).map(|n| (n, self.server))
            } else {
                self.sock.recv_from(&mut buf)
            };
            match result {
                // An unconnected socket takes datagrams from anyone who knows its port; only
                // the server's count as the reply, and the wait goes on for what is left of it.
                // (A connected one drops the others itself.)
                Ok((n, from)) if from != self.server => {
                    eprintln!("ignored {n} bytes from {from}: not the server");
                }
                Ok((n, from)) => {
                    if self.trace {
                        eprintln!("{call} {n} bytes from {from}: {}", trace_preview(&buf[..n]));
                    }
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Ok(self.no_reply(call)),
                Err(e) if nobody_listening(&e) => {
                    self.report_unreachable(call, &e);
                    return Ok(None);
                }
                Err(e) => return Err(e).with_context(|| format!("{call} failed")),
            }
        }
    }

    /// The deadline passed without a reply. Lost on the way, never sent, or nobody there: UDP
    /// does not say which.
    fn no_reply(&self, call: &str) -> Option<Vec<u8>> {
        let secs = self.timeout.as_secs_f64();
        if self.trace {
            eprintln!("{call}: nothing within {secs} s");
        }
        eprintln!("no reply within {secs} s: UDP promises nothing");
        None
    }

    fn report_unreachable(&self, call: &str, e: &io::Error) {
        if self.trace {
            eprintln!("{call} failed: {e}");
        }
        eprintln!(
            "nobody is listening at {}: the system got \"port unreachable\" back ({e})",
            self.server
        );
    }
}

/// The system's report that a datagram reached a port where nobody listens (ICMP "port
/// unreachable"). Linux and macOS deliver it to connected sockets only, as ECONNREFUSED;
/// Windows delivers it to unconnected ones too, as WSAECONNRESET.
fn nobody_listening(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
    )
}
