//! Lesson 02, server: the notes' section 2.2 (通信循环及代码优化 服务端).
//!
//! An echo server that adds `123` to every message (the notes' behaviour), talks to one client
//! for as long as it stays (通信循环, communication loop), then takes the next (链接循环,
//! connection loop), forever. Under the section's heading the notes list six improvements, from
//! 1 客户端校验消息不能为空 (the client's, see client.rs) to 6 半连接池; each is marked below as
//! "Step N" with the notes' number. Two of the notes' lines are wrong and are fixed here, with
//! the reason at the line:
//!
//! - `if len(data) == 0: continue`: an empty read means the client has gone. `continue` asks
//!   again, gets 0 again at once, and spins at 100% CPU without ever serving the next client.
//! - `except ConnectionResetError`: only one kind of error was caught; any other (or a message
//!   that is not UTF-8) killed the whole server. Here any error ends that one client only.
//!
//! Not in the notes: a client that stays silent, or never reads our replies, would hold the
//! server from everyone else forever; it is dropped after `--idle-timeout` (300 s).
//!
//! ```text
//! cargo run --bin lesson02-server                 # terminal 1
//! cargo run --bin lesson02-client                 # terminal 2: type lines, Ctrl-D to leave
//! ```
//!
//! Watch for: each line comes back with `123`; leave with Ctrl-D (or close the window) and
//! start the client again: the same server serves it. `--backlog 2 --no-accept` is the
//! 半连接池 demo (see the lesson README): listen, never accept, and count how many connects
//! complete.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{announce, cli, is_timeout, log};

/// Lesson 02 server: echo every message with "123" appended, one client after another.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// The listen() backlog, the notes' `server.listen(5)` (半连接池)
    #[arg(long, default_value_t = 5)]
    backlog: i32,

    /// Listen but never accept: the 半连接池 demo (connections queue up, then stall)
    #[arg(long)]
    no_accept: bool,

    /// Seconds a client may stay silent (or leave our replies unread) before it is dropped
    // 300 s: a learner at the `>>>:` prompt reads the last reply and types the next line, and
    // must not be dropped for thinking; the clients waiting behind them wait that long.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let listener = listen(args.common.addr, args.backlog)?;
    announce(listener.local_addr()?)?;

    if args.no_accept {
        // The 半连接池 demo. The kernel completes handshakes on its own and parks the new
        // connections in the accept queue until we accept() them, which we never do. On Linux
        // the queue holds backlog + 1 connections; once it is full, further SYNs are dropped,
        // so the next client's connect() neither succeeds nor is refused: it stalls.
        // `log!`: `println!` that a closed stdout cannot turn into a panic (see lesson 01).
        log!(
            "not accepting: connections wait in the queue (backlog {})",
            args.backlog
        );
        loop {
            std::thread::park();
        }
    }

    // Step 5 (服务端链接循环): the connection loop: when one client leaves, serve the next.
    loop {
        // accept() blocks until a client completed the handshake. It fails when we are out of
        // file descriptors (EMFILE), at once, again and again: pause, or this loop spins at full
        // CPU (lesson 07 backs off and counts). A client that left while queued: Linux returns
        // it (its first read fails), macOS and Windows fail accept; a pause then costs a second.
        let (sock, address) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                log!("accept failed: {e}; trying again in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        log!("{address} connected");
        // Not in the notes: one client at a time, so a client that sends nothing would keep
        // everyone else waiting in accept()'s queue, forever. A read that waits longer than
        // --idle-timeout fails instead, and so does a write that waits that long for a client
        // that never reads our replies (once they fill its buffers, write blocks).
        if let Err(e) = sock
            .set_read_timeout(Some(args.idle_timeout))
            .and_then(|()| sock.set_write_timeout(Some(args.idle_timeout)))
        {
            log!("{address} dropped: {e}");
            continue;
        }
        let mut sock = Traced::labelled(sock, args.common.trace, address);

        // The communication loop (通信循环, the section's title): keep talking to this client.
        let mut buf = [0u8; 1024];
        loop {
            // `data = sock.recv(1024)`: up to 1024 bytes of whatever the client has sent.
            let n = match sock.read(&mut buf) {
                // Step 2 (服务端添加兼容性代码), fixed. `Ok(0)` is end of stream: the client
                // closed its side and no byte will ever come again. The notes'
                // `if len(data) == 0: continue` reads again, gets 0 again at once, forever:
                // 100% CPU, and the next client waits for good. The right reaction is to leave
                // the communication loop.
                Ok(0) => {
                    log!("{address} closed the connection");
                    break;
                }
                Ok(n) => n,
                // A signal interrupted the call before any byte arrived: just ask again.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // The read timeout set above ran out: the client sent nothing for that long.
                Err(e) if is_timeout(&e) => {
                    log!("{address} dropped: silent for longer than --idle-timeout");
                    break;
                }
                // Step 4 (异常捕获), widened. The notes catch only ConnectionResetError (the
                // client closed with our reply unread, or its machine reset the connection).
                // Any error here belongs to this one client: log it, drop the connection,
                // serve the next one.
                Err(e) => {
                    log!("{address} dropped: {e}");
                    break;
                }
            };

            // `print(data.decode('utf8'))`, with two fixes. In the notes a message that is not
            // valid UTF-8 raises UnicodeDecodeError, which nothing catches: the server dies.
            // And whatever the client sent goes to the terminal raw: a newline in it forges a
            // log line of its own, `\x1b[2J` clears the screen. `preview` shows it quoted and
            // escaped as Python shows bytes (`\n`, `\x1b`, `\xff` for a byte that is not
            // UTF-8), on one line, cut after 40 characters with `…`.
            log!("{address} says: {}", preview(&buf[..n]));

            // `sock.send(data + b'123')`. write_all, not write: a write may accept only part
            // of the buffer, and the rest would be silently lost.
            let mut reply = buf[..n].to_vec();
            reply.extend_from_slice(b"123");
            if let Err(e) = sock.write_all(&reply) {
                match is_timeout(&e) {
                    // The write timeout ran out: the client left our replies unread until they
                    // filled its buffers and ours, then for --idle-timeout more.
                    true => log!(
                        "{address} dropped: the client did not read for longer than --idle-timeout"
                    ),
                    false => log!("{address} dropped: {e}"),
                }
                break;
            }
        }
        // `sock` is dropped here: the connection is closed, and we go back to accept().
    }
}

/// The notes' `socket()`, Step 3's `setsockopt(SO_REUSEADDR)`, `bind()` and Step 6's
/// `listen(5)`, each as its own call. std's `TcpListener::bind` does all four at once with
/// choices of its own (SO_REUSEADDR on Unix, backlog 128), so we use socket2, which exposes
/// each system call as the notes write it.
fn listen(addr: SocketAddr, backlog: i32) -> Result<TcpListener> {
    // `server = socket.socket()`: an IPv4 or IPv6 TCP socket, matching the address.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .context("cannot create a socket")?;

    // Step 3 (端口占用): `server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)`, before bind.
    // After a server stops, its old connections linger in TIME_WAIT for up to a minute or two;
    // without this option, bind() fails with "address already in use" until they are gone.
    // It does not let two running servers share a port on Linux or macOS. On Windows the same
    // option means something else (it lets another program take over a port we are using), and
    // Windows does not block the restart case anyway, so we set it on Unix only, as std does.
    #[cfg(unix)]
    socket
        .set_reuse_address(true)
        .context("cannot set SO_REUSEADDR")?;

    // `server.bind((ip, 8080))`: give the phone its number.
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind {addr}"))?;

    // Step 6 (半连接池): `server.listen(5)`, the 半连接池. The notes say "five clients can wait". What it
    // really bounds on Linux is the queue of connections that finished the handshake but were
    // not yet accept()ed; values above /proc/sys/net/core/somaxconn are silently lowered. See
    // the lesson README for what we measured.
    socket
        .listen(backlog)
        .with_context(|| format!("cannot listen on {addr}"))?;

    Ok(socket.into())
}
