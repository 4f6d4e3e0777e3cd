//! Lesson 10, server: many clients at once (并发) with a pool of threads (线程池).
//!
//! Lesson 09 starts a thread for every client: a thousand clients, a thousand threads. The
//! course's next answer is the pool, `ThreadPoolExecutor(max_workers)`: a fixed number of
//! threads (workers) started once, a queue of work, and `pool.submit(handle, conn)` putting
//! work in it; each worker takes the next piece of work from the queue, runs it, and comes
//! back for more. This file is lesson 09's server with that change: the connection loop puts
//! each accepted client in a bounded queue, and `--workers N` threads (default: one per core)
//! take clients from it and run lesson 09's `handle`, the communication loop, unchanged. The
//! pool is the Rust Book's `ThreadPool`: an `mpsc` channel whose receiving end the workers
//! share behind a `Mutex` (互斥锁), taken for as long as it takes to receive and not a moment
//! longer (see [`Pool`]).
//!
//! Shown on purpose: a pool bounds the threads, not the waiting. A worker serves one client
//! from its first message to its last; with every worker held by a client that stays (a
//! learner at the prompt, a browser's idle connection), the next client waits in the queue,
//! however little it asks, until one leaves. That is why the course moves on to IO
//! multiplexing (lesson 11): one thread that waits for all the connections at once.
//!
//! Not in Python's pool: the queue is bounded (`--queue`); a client that finds it full is
//! refused with one line instead of the queue growing without bound. And Ctrl-C stops the
//! server gracefully: no new clients, the ones in the queue are told so, each worker finishes
//! the client it serves (bounded by `--idle-timeout`), the workers are joined, exit status 0.
//!
//! ```text
//! cargo run --bin lesson10-server -- --workers 4                     # terminal 1
//! cargo run --bin lesson09-client -- --clients 4 --hold 30           # terminal 2
//! cargo run --bin lesson09-client -- --clients 1                     # terminal 3: it waits
//! ```
//!
//! Watch for: the fifth client's `connected` line, and its `served by worker` line only after
//! one of the four has left; its summary shows the wait. `tickets.rs`, beside this file, is
//! the course's other lesson on threads: 互斥锁 and the 抢票 demo.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{announce, cli, is_timeout, log};

/// Lesson 10 server: echo every message with "123" appended; a pool of threads serves the clients.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// How many worker threads serve clients, each one client at a time [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    workers: Option<u16>,

    /// How many accepted clients may wait for a worker; one more is refused with a line
    // 16: room for a burst while every worker is busy (lesson09-client keeps at most 5 of its
    // clients waiting at once). A longer queue only makes clients wait longer for a worker
    // before they learn that none is coming.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    queue: u16,

    /// The listen() backlog, the notes' `server.listen(5)` (半连接池)
    #[arg(long, default_value_t = 5)]
    backlog: i32,

    /// Seconds a client may stay silent (or leave our replies unread) before it is dropped
    // 300 s, as in lessons 02 and 09: a learner at the `>>>:` prompt must not be dropped for
    // thinking. Here it also bounds how long a silent client holds a worker, and how long
    // Ctrl-C waits for it.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let listener = listen(args.common.addr, args.backlog)?;
    announce(listener.local_addr()?)?;
    let stop = stop_on_ctrl_c(listener.local_addr()?)?;

    // `pool = ThreadPoolExecutor(max_workers=N)`: N threads started now, all waiting for work.
    // Python's default is min(32, cores + 4) (since 3.8); ours is the number of cores.
    let workers = match args.workers {
        Some(n) => n.into(),
        None => thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    let queue = args.queue.into();
    let trace = args.common.trace;
    let pool = Pool::new(workers, queue, trace)?;
    let s = |n: usize| if n == 1 { "" } else { "s" };
    log!(
        "{workers} worker thread{} started, and a queue with room for {queue} client{}",
        s(workers),
        s(queue)
    );

    // Step 5 (服务端链接循环): the connection loop. As in lesson 09 it does not serve anyone
    // itself: it hands each client to the pool and accepts the next one at once.
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
        // Ctrl-C wakes this accept() with a connection of its own (see `stop_on_ctrl_c`).
        // Whatever was accepted, the server is stopping: close it and leave the loop.
        if stop.load(Ordering::SeqCst) {
            break;
        }
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

        // `pool.submit(handle, conn)`, where lesson 09 started a thread. The client waits in
        // the queue until a worker is free; if the queue is full, it is told so and closed.
        if let Err((sock, address)) = pool.submit(sock, address) {
            refuse(
                sock,
                address,
                &format!("every worker is busy and the queue is full ({queue} waiting)"),
            );
        }
    }

    // Graceful shutdown. The listener is closed first: from now on a connect is refused.
    drop(listener);
    log!(
        "stopping (Ctrl-C): no new clients; each worker finishes the client it serves \
         (Ctrl-C again: stop at once)"
    );
    pool.shutdown();
    log!("stopped: every client served to the end, every worker joined");
    Ok(())
}

/// `BaseRequestHandler.handle()`: one client's communication loop (通信循环), lesson 09's as
/// it was, run by a worker of the pool. When it returns, `sock` is dropped (the connection is
/// closed) and the worker goes back to the queue for the next client.
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

/// An accepted client: its connection and its address, what `pool.submit` queues.
type Client = (TcpStream, SocketAddr);

/// `ThreadPoolExecutor(max_workers)`, the Rust Book's `ThreadPool`: `workers` threads that
/// take clients from one bounded queue and serve each with [`handle`].
///
/// The queue is an `mpsc::sync_channel`: one sending end (the connection loop), one receiving
/// end. A `Receiver` cannot be shared by several threads as it is, so the workers share it
/// behind a `Mutex` (互斥锁), in an `Arc` (a pointer every worker owns a copy of). A worker
/// takes the lock only to receive the next client, and serves that client after the lock is
/// released: see [`work`].
struct Pool {
    /// The sending end; `None` once the pool is shutting down. Dropping it is how the workers
    /// learn that no client will ever come again.
    sender: Option<SyncSender<Client>>,
    receiver: Arc<Mutex<Receiver<Client>>>,
    /// Set by [`Pool::shutdown`]: a client taken from the queue from then on is refused.
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `workers` threads around a queue with room for `queue` clients.
    fn new(workers: usize, queue: usize, trace: bool) -> Result<Pool> {
        let (sender, receiver) = mpsc::sync_channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(workers);
        for id in 1..=workers {
            let (receiver, stopping) = (Arc::clone(&receiver), Arc::clone(&stopping));
            // Builder::spawn returns the error where thread::spawn would panic.
            let thread = thread::Builder::new()
                .name(format!("worker {id}"))
                .spawn(move || work(id, &receiver, &stopping, trace))
                .with_context(|| format!("cannot start worker {id}"))?;
            threads.push(thread);
        }
        Ok(Pool {
            sender: Some(sender),
            receiver,
            stopping,
            workers: threads,
        })
    }

    /// `pool.submit(handle, conn)`: puts the client in the queue, where the next free worker
    /// takes it. Never waits: a full queue gives the client back (`Err`), to be refused.
    fn submit(&self, sock: TcpStream, address: SocketAddr) -> Result<(), Client> {
        let Some(sender) = &self.sender else {
            return Err((sock, address));
        };
        match sender.try_send((sock, address)) {
            Ok(()) => Ok(()),
            // Full: every worker busy and `queue` clients waiting. Disconnected: every worker
            // has ended, which only a panic in one of them could cause; refused alike.
            Err(TrySendError::Full(client) | TrySendError::Disconnected(client)) => Err(client),
        }
    }

    /// `pool.shutdown(wait=True, cancel_futures=True)`: the clients still in the queue are
    /// refused, each worker finishes the client it serves, and every worker is joined.
    fn shutdown(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // The queue's sending end is dropped: once it is empty, a worker's `recv()` returns
        // an error instead of waiting, and the worker ends (the Rust Book's shutdown).
        drop(self.sender.take());
        // Empty it now rather than when a worker is free. With the sender gone, `recv()`
        // returns what is left, then an error: it never waits here.
        loop {
            let next = self
                .receiver
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv();
            let Ok((sock, address)) = next else { break };
            refuse(sock, address, "the server is stopping");
        }
        for worker in self.workers {
            // A worker that panicked has ended too; there is nothing left to do for it.
            let _ = worker.join();
        }
    }
}

/// One worker's life: take the next client from the queue, serve it, come back; end when the
/// queue's sending end is gone.
fn work(id: usize, receiver: &Mutex<Receiver<Client>>, stopping: &AtomicBool, trace: bool) {
    loop {
        // The lock is held for this one statement: `lock()` returns a guard, `recv()` waits
        // for a client with it, and the guard is dropped at the `;`. The client is served
        // below with the lock free, so the other workers can take the next clients meanwhile.
        // (`while let Ok(client) = receiver.lock().unwrap().recv() { … }` would keep the
        // guard for the whole body: one client served at a time, however many workers. The
        // exercise `pool_lock` shows it.) An idle worker keeps the lock while it waits in
        // `recv()`; the other idle workers wait for the lock. Either way they wait for work.
        // A poisoned lock (a panic while it was held) still guards a good receiver: take it.
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok((sock, address)) = next else { break };
        // Taken after Ctrl-C, in the moment before shutdown emptied the queue: refused too.
        if stopping.load(Ordering::SeqCst) {
            refuse(sock, address, "the server is stopping");
            continue;
        }
        log!("{address} served by worker {id}");
        handle(sock, address, trace);
    }
}

/// Tells a client, in one line, why it will not be served, and closes the connection.
///
/// The connection loop calls this, so it must never wait for a client: the socket is made
/// non-blocking, and a line that does not fit at once (it always fits a new connection's
/// empty buffer) is not sent. A client that has already sent something may see a reset
/// instead of the line (on Linux, closing a socket with unread bytes sends RST).
fn refuse(sock: TcpStream, address: SocketAddr, reason: &str) {
    log!("{address} refused: {reason}");
    let line = format!("refused: {reason}; closing the connection\n");
    let _ = sock
        .set_nonblocking(true)
        .and_then(|()| (&sock).write_all(line.as_bytes()));
}

/// Ctrl-C: the first asks for a graceful stop, a second one stops at once.
///
/// std cannot catch Ctrl-C: on Unix that takes a signal handler for SIGINT, on Windows a
/// console control handler (SetConsoleCtrlHandler), both `unsafe` calls into the system. The
/// `ctrlc` crate makes them and runs our closure on a thread of its own, where any code may
/// run. The closure sets the returned flag. The connection loop waits in accept(), which
/// returns for a connection and nothing else, so the closure connects to our own address to
/// wake it (once woken, the loop sees the flag and stops).
fn stop_on_ctrl_c(addr: SocketAddr) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // A server listening on every address (0.0.0.0) is reached on loopback.
    let wake = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // 130: what a shell reports for a program that Ctrl-C ended (128 + SIGINT).
            log!("stopped at once (Ctrl-C again): clients still served were cut off");
            std::process::exit(130);
        }
        if let Err(e) = TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            log!("Ctrl-C: cannot wake the connection loop ({e}); it stops at the next client");
        }
    })
    .context("cannot catch Ctrl-C")?;
    Ok(stop)
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

    // Step 6 (半连接池): `server.listen(5)`. What it bounds on Linux is the queue of
    // connections that finished the handshake but were not yet accept()ed; values above
    // /proc/sys/net/core/somaxconn are silently lowered (lesson 02's README). Our own queue,
    // the pool's, comes after it: accept() empties this one as fast as clients arrive.
    socket
        .listen(backlog)
        .with_context(|| format!("cannot listen on {addr}"))?;

    Ok(socket.into())
}
