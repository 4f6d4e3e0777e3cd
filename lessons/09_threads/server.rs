//! Lesson 09, server: many clients at once (并发), a thread (线程) for each.
//!
//! Lesson 02's server serves one client at a time: while it talks to one, the others wait in
//! the 半连接池 (the notes' 2.2 says so). The course's next installment answers with
//! `socketserver.ThreadingTCPServer`: every accepted connection is handed to a thread of its
//! own, which runs the handler's `handle()` (the communication loop), while the main thread
//! goes straight back to `accept()`. This file is lesson 02's server with that change at its
//! heart: the communication loop moved into [`handle`], the connection loop starting a thread
//! for each client (and in the options, `--processes` is new, lesson 02's `--no-accept` gone).
//! The rest is lesson 02's: an empty read or an error ends that client, as does `--idle-timeout`.
//!
//! `--processes` (Unix) is `ForkingTCPServer` instead: each client is served by a child
//! process that has the connection as its standard input and output (the inetd way; a
//! threaded program does not `fork`), so the child's code is the notes' 通信循环 on stdin and
//! stdout. A child that crashes ends only its own client. At most `--max-children` (40) run
//! at once, as in Python.
//!
//! ```text
//! cargo run --bin lesson09-server                              # terminal 1
//! cargo run --bin lesson09-client -- --clients 100 --rounds 10  # terminal 2
//! cargo run --bin lesson02-client                              # or type lines, as in lesson 02
//! ```
//!
//! Watch for: the `connected` lines of many clients before any of them has closed. Clients
//! that stay show the difference: `lesson09-client -- --clients 5 --rounds 1 --hold 1` takes
//! about 1 s against this server and 5 s against lesson02-server, where each waits for the
//! one before it to leave. Nothing here bounds the number of threads: every connection costs
//! one until it leaves or `--idle-timeout` drops it (lesson 10's pool bounds them).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{announce, cli, is_timeout, log};

// `--processes`: a child process per client instead of a thread (Unix), in processes.rs.
mod processes;

/// Lesson 09 server: echo every message with "123" appended, each client in its own thread.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// The listen() backlog, the notes' `server.listen(5)` (半连接池)
    #[arg(long, default_value_t = 5)]
    backlog: i32,

    /// Seconds a client may stay silent (or leave our replies unread) before it is dropped
    // 300 s, as in lesson 02: a learner at the `>>>:` prompt must not be dropped for thinking.
    // Here nobody waits behind a silent client; the bound is for the thread it holds.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,

    /// Serve each client in a child process instead of a thread, like Python's ForkingTCPServer (Unix only)
    #[arg(long)]
    processes: bool,

    /// With --processes: the most children at once; at the limit no client is accepted until one ends
    // 40: Python's `ForkingMixIn.max_children`. At most 1000: each child is a whole process.
    #[arg(long, value_name = "N", default_value_t = 40, requires = "processes",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_children: u32,

    /// Run as the child process of --processes for this client: its connection is stdin/stdout
    #[arg(long, value_name = "CLIENT", hide = true)]
    child: Option<SocketAddr>,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    if let Some(address) = args.child {
        return processes::serve_stdio(address, args.common.trace);
    }
    if args.processes && !processes::SUPPORTED {
        eprintln!(
            "lesson09-server: --processes needs Unix (like Python's ForkingTCPServer); \
             on Windows each client gets a thread (leave the option out)"
        );
        std::process::exit(2);
    }
    let listener = listen(args.common.addr, args.backlog)?;
    announce(listener.local_addr()?)?;

    // Step 5 (服务端链接循环): the connection loop. Unlike lesson 02, it does not wait for a
    // client to leave: it hands the client to a thread and accepts the next one at once.
    loop {
        // accept() blocks until a client completed the handshake. It can fail for reasons that
        // belong to that one connection (it was reset while queued), or because we are out of
        // file descriptors (EMFILE): then it fails at once, again and again, so pause before
        // trying again, or this loop spins at full CPU. (Lesson 07 backs off and counts.)
        let (sock, address) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                log!("accept failed: {e}; trying again in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        log!("{address} connected");
        // Not in the notes: a client that sends nothing, or never reads our replies, would
        // hold its thread (and its memory and file descriptor) forever. A read that waits
        // longer than --idle-timeout fails instead, and so does a write that waits that long.
        if let Err(e) = sock
            .set_read_timeout(Some(args.idle_timeout))
            .and_then(|()| sock.set_write_timeout(Some(args.idle_timeout)))
        {
            log!("{address} dropped: {e}");
            continue;
        }

        // `--processes`: a child process instead, at most --max-children at once (processes.rs).
        if args.processes {
            processes::start(sock, address, args.common.trace, args.max_children as usize);
            continue;
        }

        // `ThreadingTCPServer.process_request`: `threading.Thread(target=...).start()`. The
        // closure takes the socket with it (`move`); this thread keeps nothing and goes back
        // to accept(). `thread::spawn` would panic, killing the server and every client, when
        // the system refuses a new thread (too many threads, no memory for a stack);
        // `Builder::spawn` returns the error instead. The closure, and the socket in it, is
        // then dropped: that client's connection is closed, the others go on.
        let trace = args.common.trace;
        let spawned = thread::Builder::new().spawn(move || handle(sock, address, trace));
        if let Err(e) = spawned {
            log!("{address} dropped: cannot start a thread: {e}");
        }
    }
}

/// `BaseRequestHandler.handle()`: one client's communication loop (通信循环), lesson 02's as
/// it was, run by a thread of its own. When it returns, the thread ends and `sock` is dropped:
/// the connection is closed.
fn handle(sock: TcpStream, address: SocketAddr, trace: bool) {
    let mut sock = Traced::labelled(sock, trace, address);

    // The communication loop (通信循环, the section's title): keep talking to this client.
    let mut buf = [0u8; 1024];
    loop {
        // `data = sock.recv(1024)`: up to 1024 bytes of whatever the client has sent.
        let n = match sock.read(&mut buf) {
            // Step 2 (服务端添加兼容性代码), fixed. `Ok(0)` is end of stream: the client
            // closed its side and no byte will ever come again. The notes'
            // `if len(data) == 0: continue` reads again, gets 0 again at once, forever:
            // here a thread spinning at 100% CPU until the server stops. The right reaction
            // is to leave the communication loop.
            Ok(0) => {
                log!("{address} closed the connection");
                break;
            }
            Ok(n) => n,
            // A signal interrupted the call before any byte arrived: just ask again.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // The read timeout set in main ran out: the client sent nothing for that long.
            Err(e) if is_timeout(&e) => {
                log!("{address} dropped: silent for longer than --idle-timeout");
                break;
            }
            // Step 4 (异常捕获), widened. The notes catch only ConnectionResetError (the
            // client closed with our reply unread, or its machine reset the connection).
            // Any error here belongs to this one client: log it, drop the connection;
            // the other threads go on.
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
