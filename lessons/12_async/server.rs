//! Lesson 12, server: async/await, Rust's 协程 (coroutines), on the tokio runtime.
//!
//! Lesson 09 gives each client a thread, lesson 10 a thread from a pool. The course's 网络并发
//! ends with 协程: one thread serves every client, switching to another whenever one would
//! wait for the network. Its example is gevent: `monkey.patch_all()`, then `spawn(talk, conn)`
//! for each accepted connection. This server is that example with lesson 02's echo (every
//! message comes back with `123` appended), in tokio's words:
//!
//! - gevent's hub, the loop that runs the greenlets, is tokio's *runtime*. The default here is
//!   the single-threaded one (`current_thread`), like gevent: one thread, each client a *task*
//!   on it. `--threads N` runs the same tasks on N threads (the multi-threaded runtime).
//! - `spawn(talk, conn)` is `tokio::spawn(talk(conn, …))`. Calling an `async fn` runs none of
//!   it; it makes a task-to-be, and `spawn` hands that to the runtime.
//! - `monkey.patch_all()` swaps Python's blocking socket and `time.sleep` for gevent's. Rust has
//!   nothing to patch: the code uses tokio's own types (`tokio::net::TcpStream`,
//!   `tokio::time::sleep`) and writes `.await` at every place where it may wait. A call that
//!   blocks the thread instead (std's `thread::sleep`, `std::fs`, std's sockets) stops every
//!   task on it, as an unpatched `time.sleep` stops every greenlet.
//!
//! `--delay SECONDS` gives each answer a slow job first, done with tokio's sleep: the other
//! clients are served meanwhile. `--block` does the same wait with std's blocking sleep, a bug
//! on purpose: every client stalls behind the one being worked on. `--spawn-blocking` runs the
//! blocking sleep on tokio's threads made for blocking work: the fix when a blocking call
//! cannot be avoided.
//!
//! Not in gevent's example: a client that stays silent, or leaves our replies unread, is
//! dropped after `--idle-timeout` (300 s); a failing `accept` (out of file descriptors) pauses
//! instead of spinning; Ctrl-C stops accepting, lets every client's echo in progress finish
//! (one whose client has not read it 5 s after Ctrl-C is dropped), and exits 0 (a second
//! Ctrl-C stops at once).
//!
//! ```text
//! cargo run --bin lesson12-server                                 # terminal 1
//! cargo run --bin lesson09-client -- --clients 100 --rounds 10    # terminal 2
//! cargo run --bin lesson02-client                                 # or type lines, as in lesson 02
//! ```
//!
//! Watch for: one thread serving every client (`ps -o nlwp` on Linux, Task Manager's Threads
//! column on Windows); with `--delay 1 --block`, ten clients each waiting for the one before;
//! `--trace-waits`, each read that would block: where its task gives the thread back.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{announce, cli, log};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

/// Lesson 12 server: echo every message with "123" appended, every client a task (协程).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Run the tasks on N threads (tokio's multi-threaded runtime) instead of one
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,

    /// The listen() backlog (gevent's example has `server.listen(5)`)
    // 1024, tokio's own choice for TcpListener::bind: ten thousand clients connecting at once
    // overflow a queue of 5, and the connects beyond it stall (lesson 02's 半连接池).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65535))]
    backlog: u32,

    /// Seconds a client may stay silent (or leave our replies unread) before it is dropped
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,

    /// Before each answer, wait SECONDS (a slow job), with tokio's sleep: others are served meanwhile
    #[arg(long, value_name = "SECONDS", value_parser = cli::parse_seconds)]
    delay: Option<Duration>,

    /// Do --delay's wait with std's blocking sleep: every client stalls (a bug, on purpose)
    #[arg(long, requires = "delay", conflicts_with = "spawn_blocking")]
    block: bool,

    /// Do --delay's blocking sleep on tokio's threads for blocking work (spawn_blocking)
    #[arg(long, requires = "delay")]
    spawn_blocking: bool,

    /// Like --trace, and show each read or write that would block, where its task starts to wait
    #[arg(long)]
    trace_waits: bool,
}

fn main() -> Result<()> {
    let mut args: Args = cli::parse();
    args.common.trace |= args.trace_waits;

    // gevent's hub is tokio's runtime: it runs the tasks, and when every task waits, it asks
    // the system which sockets are ready (epoll on Linux, kqueue on macOS, IOCP on Windows)
    // and which timers are due, and runs the tasks that can go on. `current_thread`: all of it
    // on this one thread, as gevent does. `enable_all`: the sockets' driver and the timers.
    let mut builder = match args.threads {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(_) => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(n) = args.threads {
        builder.worker_threads(n.into());
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    // gevent: `g1 = spawn(server, '127.0.0.1', 8080); g1.join()`. block_on runs `server`
    // (and every task it spawns) until `server` returns.
    runtime.block_on(server(args))
}

/// gevent's `def server(ip, port):`: listen, then accept clients, each handed to a task.
async fn server(args: Args) -> Result<()> {
    // Ctrl-C is listened for before anything else (see `CtrlC`).
    let mut ctrl_c = CtrlC::listen().context("cannot listen for Ctrl-C")?;

    // gevent: `server = socket.socket()`, `server.bind((ip, port))`, `server.listen(5)`.
    let listener = listen(args.common.addr, args.backlog)?;
    announce(listener.local_addr()?)?;

    let how = Talk {
        idle_timeout: args.idle_timeout,
        delay: args.delay,
        wait: match (args.block, args.spawn_blocking) {
            (true, _) => Wait::Block,
            (_, true) => Wait::SpawnBlocking,
            _ => Wait::Await,
        },
        trace: args.common.trace,
        trace_waits: args.trace_waits,
    };
    // Every task gets a copy of `stopping`; Ctrl-C flips it for all of them (see `shut_down`).
    let (stop, stopping) = watch::channel(false);
    let mut pause = FIRST_PAUSE;

    // The connection loop (链接循环), as in lesson 02, except that it never waits for a
    // client to leave: it hands the client to a task and accepts the next one at once.
    loop {
        // gevent: `conn, addr = server.accept()`. `.await` is where this task waits for a
        // client, and where the runtime runs the other tasks meanwhile. `select!` waits for
        // whichever comes first: a client, or Ctrl-C.
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ctrl_c.recv() => break,
        };
        let (conn, address) = match accepted {
            Ok(pair) => pair,
            // A failure belongs to one connection (reset while queued) or to a moment: out of
            // file descriptors (EMFILE), `accept` fails at once, again and again, while the
            // connection stays queued. Pause, or this loop spins at full CPU; 5 ms, doubling up
            // to 1 s, as Go's net/http does. tokio's sleep, not std's: the connected clients
            // are served during the pause (and one that leaves gives a descriptor back).
            Err(e) => {
                log!(
                    "accept failed: {e}; trying again in {} ms",
                    pause.as_millis()
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
        };
        pause = FIRST_PAUSE;
        log!("{address} connected");

        // gevent: `spawn(talk, conn)`. The task owns the socket; this loop goes back to
        // accept() at once. Nothing waits for the task: it ends when its client leaves.
        tokio::spawn(talk(conn, address, how, stopping.clone()));
    }

    shut_down(listener, stop, stopping, ctrl_c).await
}

/// What every `talk` task is told (a few words, copied into each task).
#[derive(Clone, Copy)]
struct Talk {
    idle_timeout: Duration,
    delay: Option<Duration>,
    wait: Wait,
    trace: bool,
    trace_waits: bool,
}

/// How `--delay` waits: the right way, the bug, the other fix.
#[derive(Clone, Copy)]
enum Wait {
    Await,
    Block,
    SpawnBlocking,
}

/// gevent's `def talk(conn):`, one client's communication loop (通信循环), lesson 02's, run
/// as a task. When it returns, `conn` is dropped: gevent's `conn.close()`.
async fn talk(
    conn: TcpStream,
    address: SocketAddr,
    how: Talk,
    mut stopping: watch::Receiver<bool>,
) {
    let traced = Traced::labelled(conn, how.trace, address).nonblocking(how.trace_waits);
    let mut conn = Wire(traced);
    // `recv(1024)`, and room behind it for the `123`: the reply is one write, with no
    // allocation per message. This array is most of what a task costs (see the README).
    let mut buf = [0u8; 1024 + 3];
    loop {
        // gevent: `data = conn.recv(1024)`, waiting for the client's next message, or for
        // Ctrl-C. `biased`: a task told to stop reads nothing more. Its last echo is done:
        // a task closes its client here, between two messages (or drops it below, when the
        // client leaves that echo unread).
        let read = tokio::select! {
            biased;
            () = ctrl_c_pressed(&mut stopping) => {
                log!("{address} closed by the server: shutting down");
                conn.linger(&mut buf).await;
                return;
            }
            read = timeout(how.idle_timeout, conn.read(&mut buf[..1024])) => read,
        };
        let n = match read {
            // gevent: `if len(data) == 0: break`. End of stream: the client closed its side.
            Ok(Ok(0)) => {
                log!("{address} closed the connection");
                return;
            }
            Ok(Ok(n)) => n,
            // gevent: `except ConnectionResetError as e: print(e); break`, widened as in
            // lesson 02: any error ends this client, and only this one. (No `Interrupted`
            // case: tokio's sockets never block in the system, so no signal interrupts them.)
            Ok(Err(e)) => {
                log!("{address} dropped: {e}");
                return;
            }
            // `timeout` ran out first: nothing came for --idle-timeout.
            Err(_) => {
                log!("{address} dropped: silent for longer than --idle-timeout");
                return;
            }
        };
        // gevent: `print(data.decode('utf-8'))`, escaped as in lesson 02: a client cannot
        // forge a log line or send escape codes to the terminal.
        log!("{address} says: {}", preview(&buf[..n]));

        if let Some(delay) = how.delay {
            slow_job(delay, how.wait).await;
        }

        // gevent: `conn.send(data.upper())`, lesson 02's `data + b'123'` here. write_all: a
        // write may take only part of the bytes; write_all writes again until all are sent,
        // waiting (`.await`, other tasks run) while the client's buffers are full.
        buf[n..n + 3].copy_from_slice(b"123");
        let write = timeout(how.idle_timeout, conn.write_all(&buf[..n + 3]));
        // Not in gevent's example: a client that never reads keeps this write waiting until
        // --idle-timeout, and Ctrl-C would wait as long for it. After Ctrl-C it has
        // SHUTDOWN_GRACE to take its answer, no more (counted from Ctrl-C, or from a write
        // that starts later, after --delay).
        let grace = async {
            ctrl_c_pressed(&mut stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let written = tokio::select! {
            written = write => written,
            () = grace => {
                log!(
                    "{address} dropped: its answer still unread {} s after Ctrl-C",
                    SHUTDOWN_GRACE.as_secs()
                );
                return;
            }
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                log!("{address} dropped: {e}");
                return;
            }
            // The client left our replies unread until its buffers and ours were full, then
            // for --idle-timeout more. Meanwhile this task read nothing from it: a client that
            // sends without reading makes the server wait, never buffer without bound.
            Err(_) => {
                log!("{address} dropped: the client did not read for longer than --idle-timeout");
                return;
            }
        }
    }
}

/// `--delay`'s slow job, done one of three ways.
async fn slow_job(delay: Duration, wait: Wait) {
    match wait {
        // tokio's sleep: the task hands the thread back to the runtime, which serves the other
        // clients until the timer wakes this task. gevent: `time.sleep` once patched.
        Wait::Await => tokio::time::sleep(delay).await,
        // BUG (on purpose): `--block`. std's sleep blocks the thread, and every task on it
        // with it: on the single-threaded runtime no client is read, accepted or answered
        // until it returns, as an unpatched `time.sleep` stops all of gevent's greenlets.
        // Blocking file I/O (`std::fs`) or a long computation in a task does the same. The
        // fix is the line above, or, for blocking work that has no async version, the one
        // below.
        Wait::Block => std::thread::sleep(delay),
        // spawn_blocking runs the blocking call on one of tokio's threads kept for blocking
        // work (apart from the runtime's), and this task awaits its end; the others go on.
        // The closure cannot fail; the JoinError it could return would only say it panicked.
        Wait::SpawnBlocking => {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
        }
    }
}

// ---- The machinery: the listening socket, shutdown, Ctrl-C, --trace ----

/// After a failed accept: 5 ms first, doubling up to 1 s.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// How long a client closed at shutdown may go on sending before we close anyway (see
/// `Wire::linger`). Apache's lingering close waits up to 2 s per read; 1 s keeps Ctrl-C quick.
const LINGER: Duration = Duration::from_secs(1);

/// How long, after Ctrl-C, an answer may wait for its client to read (see `talk`). A write
/// waits only while the client's receive buffer and our send buffer are both full (a few
/// megabytes at most); a client that reads empties them as fast as its network carries them,
/// on loopback or a LAN in well under a second. 5 s is ample for a client that is slow or busy
/// on such a network, and short for the person who pressed Ctrl-C. The price: on a slow link,
/// a client still reading a big backlog of answers is cut off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// gevent's `server = socket.socket()`, `server.bind((ip, port))`, `server.listen(5)`, each
/// as its own call, with tokio's socket type (what `monkey.patch_all()` does for `socket`).
fn listen(addr: SocketAddr, backlog: u32) -> Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .context("cannot create a socket")?;
    // SO_REUSEADDR, on Unix only, for lesson 02's reasons: a restarted server binds while old
    // connections sit in TIME_WAIT. (On Windows the option would let another program take
    // over the port.)
    #[cfg(unix)]
    socket
        .set_reuseaddr(true)
        .context("cannot set SO_REUSEADDR")?;
    socket
        .bind(addr)
        .with_context(|| format!("cannot bind {addr}"))?;
    socket
        .listen(backlog)
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Ctrl-C: no new clients; each task closes its client once its echo in progress is sent
/// (see `talk`; a client that leaves it unread for [`SHUTDOWN_GRACE`] is dropped), and the
/// server exits 0 when the last task has returned. A second Ctrl-C stops at once.
///
/// `stop` and its receivers (`stopping`, one per task) do both jobs: `send_replace(true)`
/// wakes every task waiting in [`ctrl_c_pressed`], and `closed()` completes when the last
/// receiver is gone, that is when the last task has returned.
async fn shut_down(
    listener: TcpListener,
    stop: watch::Sender<bool>,
    stopping: watch::Receiver<bool>,
    mut ctrl_c: CtrlC,
) -> Result<()> {
    // The listening socket closed: from now on a new connect is refused.
    drop(listener);
    // Only the tasks' receivers are left.
    drop(stopping);
    log!(
        "Ctrl-C: accepting no more clients; {} connected, each closed once its answer in \
         progress is sent (Ctrl-C again stops at once)",
        stop.receiver_count()
    );
    stop.send_replace(true);
    tokio::select! {
        () = stop.closed() => {
            log!("all clients closed; stopped");
            Ok(())
        }
        () = ctrl_c.recv() => {
            log!("Ctrl-C again: stopped at once, {} still connected", stop.receiver_count());
            // 130 (128 + SIGINT), as a shell reports a program stopped by Ctrl-C: not a clean end.
            std::process::exit(130)
        }
    }
}

/// Waits until Ctrl-C has set `stopping` (`shut_down` sets it): at once if it is set already.
async fn ctrl_c_pressed(stopping: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which happens only as the process ends.
    let _ = stopping.wait_for(|&stop| stop).await;
}

/// Ctrl-C, listened for from the moment this is made. (tokio's portable
/// `tokio::signal::ctrl_c()` starts listening only when first awaited: a Ctrl-C arriving just
/// after `listening on` is printed would still end the process at once, with no shutdown.)
#[cfg(unix)]
struct CtrlC(tokio::signal::unix::Signal);

#[cfg(unix)]
impl CtrlC {
    fn listen() -> io::Result<CtrlC> {
        use tokio::signal::unix::{signal, SignalKind};
        // From here on SIGINT no longer ends the process; tokio turns it into an event.
        Ok(CtrlC(signal(SignalKind::interrupt())?))
    }

    /// The next Ctrl-C. (`None`, no more events, happens only when the runtime is going away.)
    async fn recv(&mut self) {
        if self.0.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(windows)]
struct CtrlC(tokio::signal::windows::CtrlC);

#[cfg(windows)]
impl CtrlC {
    fn listen() -> io::Result<CtrlC> {
        // Windows tells a console program about Ctrl-C with a console control event.
        Ok(CtrlC(tokio::signal::windows::ctrl_c()?))
    }

    async fn recv(&mut self) {
        if self.0.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// A client's socket, with `--trace`: lesson 02's lines (`[127.0.0.1:50312] read 5 bytes:
/// "hello"`). `Traced` wraps the blocking `Read + Write` of std; this wraps tokio's
/// `AsyncRead + AsyncWrite` the same way. Each `poll_read`/`poll_write` that is ready is one
/// system call that moved bytes (or failed): it gets one line. One that is pending (the call
/// would have blocked, so the task waits for the runtime to wake it) moved nothing: it gets a
/// line only with `--trace-waits`, `read would block (WouldBlock)`, once per wait.
struct Wire(Traced<TcpStream>);

impl Wire {
    /// The end of a client closed at shutdown. First `shutdown(Write)`: a FIN after the last
    /// echo, so the client reads all of them and then the end of the stream. Then read and drop
    /// whatever it still sends, until it closes too or for at most [`LINGER`]: closing a socket
    /// that holds unread bytes resets the connection (RST) instead, and the system throws away
    /// the echoes it has not sent yet (a client slow to read loses its last answers).
    async fn linger(&mut self, buf: &mut [u8]) {
        let _ = self.shutdown().await;
        let drain = async { while matches!(self.read(buf).await, Ok(n) if n > 0) {} };
        let _ = timeout(LINGER, drain).await;
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let Poll::Ready(result) = Pin::new(self.0.get_mut()).poll_read(cx, buf) else {
            self.0
                .show("read", &Err(io::ErrorKind::WouldBlock.into()), &[]);
            return Poll::Pending;
        };
        let result = result.map(|()| buf.filled().len() - before);
        // The buffer the read was given, from where it started filling: a read of 0 bytes
        // into a buffer with room is the end of the stream.
        self.0.show("read", &result, &buf.initialized()[before..]);
        Poll::Ready(result.map(|_| ()))
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(self.0.get_mut()).poll_write(cx, buf);
        match &polled {
            Poll::Ready(result) => self.0.show("write", result, buf),
            Poll::Pending => self
                .0
                .show("write", &Err(io::ErrorKind::WouldBlock.into()), &[]),
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.0.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.0.get_mut()).poll_shutdown(cx)
    }
}
