//! Lesson 09, client: many clients at once (并发), to see how a server serves them.
//!
//! `--clients N` clients connect at once, each on its own connection and its own thread (at
//! most `--pending` 5 of them connecting or waiting for their first answer at a time). Each
//! sends `--rounds R` messages of lesson 02's protocol (`client 7 round 3`), waits for each
//! echo before sending the next, and checks that it is exactly the message plus `123`. With
//! `--hold SECONDS` each then keeps its connection open, silent, for that long (what a
//! browser's idle connection does to a server). At the end one summary:
//!
//! ```text
//! served 100/100 clients
//! slowest connect: 53.6 ms (client 92)
//! slowest wait for a first answer: 54.4 ms (client 96)
//! round trips: 1000 in 0.06 s (17700 per second), p50 0.24 ms, p99 5.24 ms
//! elapsed: 0.06 s
//! ```
//!
//! Exit status 0 when every client was served with every echo right; 1 otherwise, with one
//! line on stderr counting what went wrong. Every wait is bounded by `--timeout`: a connect,
//! and each echo as a whole (from sending the message to the echo's last byte, however slowly
//! it trickles in); a client that waits longer is counted as not served. So a client, once it
//! starts to connect, takes at most (rounds + 1) × `--timeout`, plus `--hold`. A server that
//! turns a client away with a line of its own instead of an echo (`refused: …`, lesson 10's
//! pool when its queue is full) has it counted as refused, with the server's reason.
//!
//! ```text
//! cargo run --bin lesson02-server                               # terminal 1: one at a time
//! cargo run --bin lesson09-server                               # ... or a thread each
//! cargo run --bin lesson09-client -- --clients 100 --rounds 10   # terminal 2
//! ```
//!
//! Watch for: with `--hold 1`, against lesson 02 the last client waits a second for each one
//! before it; against lesson 09 every client is answered at once. With `--pending 0` (every
//! client connecting at the same instant) connects past the backlog (lesson 02's `listen(5)`)
//! stall for seconds: see the lesson README.
//!
//! # Where one thread per connection stops
//!
//! This client is written the way lesson 09's server is, one thread per connection, and it
//! meets the same limits. Memory is not the first: a thread's stack is reserved (2 MiB, or
//! `RUST_MIN_STACK`) but only the pages it touches are resident. Measured with 10,000 held
//! connections (`bench/threads.sh`): 136.8 MiB resident for 10,001 threads, about 14 KiB each,
//! plus the kernel's 16 KiB stack per thread outside the process. The limits are counts, all
//! per machine or per user, checked on Linux:
//!
//! - file descriptors: one per connection, and `ulimit -n` is often 1024 by default: raise it
//!   (`ulimit -n 20000`) before 10,000 clients, here and in the server's shell;
//! - threads: on Linux every thread takes a process id, so `kernel.pid_max` (often 32768) is
//!   shared by this client's threads, the server's and everything else running; `ulimit -u`
//!   counts a user's threads too; and `vm.max_map_count` (65530) stops one process at about
//!   16,000 threads (each takes four memory mappings: its stack, the stack's guard page, and
//!   the signal stack Rust sets up to report a stack overflow, with its own guard page);
//! - ports: every connection from this machine to one server address needs its own local
//!   port, from the ephemeral range (Linux: 32768-60999, 28,232 ports; Windows: 49152-65535).
//!
//! A thread that cannot be started, a connect that fails, each is counted in the summary,
//! never a crash. Past a few thousand connections, most of them idle, a server would rather
//! wait for all of them with one thread: that is IO multiplexing (lesson 11).

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use socket_lessons::console::one_line;
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{cli, is_timeout};

/// The most clients one run starts: every connection from one machine to one server address
/// needs a local port of its own, and there are 65,535 of them (fewer in the ephemeral range).
const MAX_CLIENTS: u32 = 65_535;

/// How a server that will not serve a client says so, instead of an echo: one line that starts
/// with this (lesson 10's pool: `refused: every worker is busy and the queue is full (16
/// waiting); closing the connection`). No echo starts with it: every message starts `client`.
const REFUSED: &[u8] = b"refused:";

/// The most of a refusal line kept as its reason (lesson 10's are under 100 bytes): a server
/// that sends a longer one, or no line end, is not waited for past this.
const MAX_REFUSAL: usize = 200;

/// Lesson 09 client: many clients at once, each sending messages and checking the echoes.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// How many clients connect at once, each on its own connection and thread
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64))]
    clients: u32,

    /// Messages each client sends, waiting for each echo before the next (0: connect only)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    rounds: u32,

    /// After its last echo, each client keeps its connection open this long, silent
    #[arg(long, value_name = "SECONDS", value_parser = cli::parse_seconds)]
    hold: Option<Duration>,

    /// How many clients may be connecting or waiting for their first answer at once (0: no
    /// limit, every client connects at the same instant; with --rounds 0, only connecting)
    // 5: the notes' `listen(5)`, Python socketserver's too. See `Gate` for why.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pending: usize,

    /// The longest wait for a connect, and for each echo (from sending to its last byte); a
    /// client that waits longer is not served. Once connecting, a client takes at most
    /// (rounds + 1) times this, plus --hold
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = cli::parse_seconds)]
    timeout: Duration,
}

/// What one client saw, or why it was not served.
struct Served {
    /// From the start of the run to its connect() returning.
    connected: Duration,
    /// From the start of the run to its first echo (`None` with `--rounds 0`).
    first_answer: Option<Duration>,
    /// From the start of the run to its last echo.
    last_answer: Option<Duration>,
    /// Each round trip: from writing a message to having its whole echo.
    round_trips: Vec<Duration>,
}

fn main() {
    let args: Args = cli::parse();
    let start = Instant::now();
    let gate = Arc::new(Gate::new(args.pending));
    let settings = Arc::new(Settings {
        addr: args.common.addr,
        rounds: args.rounds,
        hold: args.hold,
        timeout: args.timeout,
        trace: args.common.trace,
        start,
    });

    // One thread per client, all started before any has finished: they connect at once.
    let mut clients = Vec::with_capacity(args.clients as usize);
    for id in 1..=args.clients {
        let (settings, gate) = (Arc::clone(&settings), Arc::clone(&gate));
        let spawned = thread::Builder::new().spawn(move || client(id, &settings, &gate));
        clients.push((id, spawned));
    }

    let mut served = Vec::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    // The first of each kind whose details differ from client to client, shown once.
    let (mut wrong_echo, mut refusal) = (None, None);
    for (id, spawned) in clients {
        let outcome = match spawned {
            Err(e) => Err(Failure::Other(format!("cannot start a thread: {e}"))),
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(Failure::Other("its thread panicked".into()))),
        };
        match outcome {
            Ok(s) => served.push((id, s)),
            Err(Failure::WrongEcho(example)) => {
                wrong_echo.get_or_insert(example);
                *failures.entry("wrong echo".into()).or_default() += 1;
            }
            Err(Failure::Refused(reason)) => {
                refusal.get_or_insert(reason);
                *failures.entry("refused by the server".into()).or_default() += 1;
            }
            Err(Failure::Other(reason)) => *failures.entry(reason).or_default() += 1,
        }
    }
    let elapsed = start.elapsed();

    print_summary(&served, args.clients, args.rounds, elapsed);
    if !failures.is_empty() {
        let counted: Vec<String> = failures
            .iter()
            .map(
                |(reason, n)| match (reason.as_str(), &wrong_echo, &refusal) {
                    ("wrong echo", Some(example), _) => {
                        format!("{n} wrong echo (first: {example})")
                    }
                    ("refused by the server", _, Some(line)) => {
                        format!("{n} refused by the server (first: \"{line}\")")
                    }
                    _ => format!("{n} {reason}"),
                },
            )
            .collect();
        let not_served = args.clients as usize - served.len();
        eprintln!(
            "lesson09-client: {not_served} of {} clients not served: {}",
            args.clients,
            counted.join("; ")
        );
        std::process::exit(1);
    }
}

/// What every client thread needs, shared.
struct Settings {
    addr: SocketAddr,
    rounds: u32,
    hold: Option<Duration>,
    timeout: Duration,
    trace: bool,
    start: Instant,
}

/// Why a client was not served. Reasons are counted, so they hold no client's own details;
/// a wrong echo carries one example, and a refusal the server's reason, the first shown once.
enum Failure {
    WrongEcho(String),
    /// The server's line instead of an echo, after `refused:`, escaped.
    Refused(String),
    Other(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Other(e.to_string())
    }
}

/// One client: connect, `rounds` messages each checked against its echo, hold, close.
fn client(id: u32, settings: &Settings, gate: &Gate) -> Result<Served, Failure> {
    let timeout = settings.timeout;
    // Held until the first answer (or the end of this function): see `Gate`.
    let mut pending = gate.enter();
    let sock =
        TcpStream::connect_timeout(&settings.addr, timeout).map_err(|e| match is_timeout(&e) {
            true => Failure::Other(format!(
                "connect took longer than --timeout ({} s)",
                timeout.as_secs_f64()
            )),
            false => Failure::Other(format!("connect: {e}")),
        })?;
    let connected = settings.start.elapsed();
    if settings.rounds == 0 {
        // No answer will tell us the server took the connection: connected is all we know.
        pending.take();
    }
    // A write of a few bytes does not wait unless the server stops reading; reads get what is
    // left of each echo's deadline (`read_echo`).
    sock.set_write_timeout(Some(timeout))?;
    let mut sock = Traced::labelled(sock, settings.trace, format!("client {id}"));

    let mut served = Served {
        connected,
        first_answer: None,
        last_answer: None,
        round_trips: Vec::with_capacity(settings.rounds as usize),
    };
    for round in 1..=settings.rounds {
        // Distinct for every client and round, so an echo sent to the wrong client, or the
        // previous round's echo again, does not pass for the right one.
        let message = format!("client {id} round {round}");
        let sent = Instant::now();
        // One write of a few bytes: lesson 02's server reads up to 1024 bytes and echoes what
        // one read returned, so each message must arrive whole. We wait for its echo before
        // the next, or two messages could be read as one (黏包, lesson 03).
        sock.write_all(message.as_bytes())
            .map_err(|e| waiting("sending", &e, timeout))?;
        let mut echo = vec![0u8; message.len() + 3];
        let (got, read) = read_echo(&mut sock, &mut echo, sent + timeout);
        // The server turned us away with a line of its own (lesson 10, a full queue): whatever
        // the read ended with (the line is longer than an echo, and the server closes after
        // it), that is a refusal, not a wrong echo.
        if echo[..got].starts_with(REFUSED) {
            return Err(refused(&mut sock, &echo[..got]));
        }
        read.map_err(|e| waiting("waiting for the echo", &e, timeout))?;
        served.round_trips.push(sent.elapsed());
        if echo[..message.len()] != *message.as_bytes() || &echo[message.len()..] != b"123" {
            return Err(Failure::WrongEcho(format!(
                "sent {}, got {}",
                preview(message.as_bytes()),
                preview(&echo)
            )));
        }
        let now = settings.start.elapsed();
        served.first_answer.get_or_insert(now);
        served.last_answer = Some(now);
        // Answered: the server has accepted us, our place in its queue is free again.
        pending.take();
    }

    if let Some(hold) = settings.hold {
        // Silent, but not blind: a read that waits `hold` notices a server that closes us
        // meanwhile (its idle timeout) or sends something nobody asked for.
        sock.get_ref().set_read_timeout(Some(hold))?;
        let mut bytes = [0u8; 64];
        match sock.read(&mut bytes) {
            Err(e) if is_timeout(&e) => {}
            Ok(0) => return Err(Failure::Other("closed by the server while held".into())),
            // With --rounds 0 this is the first read: a refusal comes here.
            Ok(n) if bytes[..n].starts_with(REFUSED) => {
                sock.get_ref().set_read_timeout(Some(timeout))?;
                return Err(refused(&mut sock, &bytes[..n]));
            }
            Ok(_) => return Err(Failure::Other("unexpected bytes while held".into())),
            Err(e) => return Err(Failure::Other(format!("while held: {e}"))),
        }
    }
    Ok(served)
}

/// Reads exactly `buf.len()` bytes by `deadline`: an echo may arrive in more than one piece.
/// Unlike `read_exact`, it says "closed" for an end of stream, and how many bytes it had read
/// (`buf[..got]`) whatever the outcome, so that a refusal is recognised even when the server
/// closed the connection before a whole echo's worth came. One deadline for the whole echo,
/// not a timeout per read: a server that sends a byte a second would pass a timeout of two
/// seconds per read for as long as it likes.
fn read_echo(
    sock: &mut Traced<TcpStream>,
    buf: &mut [u8],
    deadline: Instant,
) -> (usize, io::Result<()>) {
    let mut got = 0;
    while got < buf.len() {
        // What is left of the wait. set_read_timeout refuses zero: the time is up.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, Err(ErrorKind::TimedOut.into()));
        }
        if let Err(e) = sock.get_ref().set_read_timeout(Some(left)) {
            return (got, Err(e));
        }
        match sock.read(&mut buf[got..]) {
            Ok(0) => return (got, Err(io::Error::new(ErrorKind::UnexpectedEof, "closed"))),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
    (got, Ok(()))
}

/// A server's refusal, `start` being its first bytes (they begin with [`REFUSED`]): the rest
/// of its line is read, up to the line's end, the end of the stream, an error or
/// [`MAX_REFUSAL`] bytes (each read bounded by the socket's timeout, `--timeout`), and what
/// follows `refused:` becomes the reason, escaped: it is the server's text.
fn refused(sock: &mut impl Read, start: &[u8]) -> Failure {
    let mut line = start.to_vec();
    let mut buf = [0u8; 64];
    while !line.contains(&b'\n') && line.len() < MAX_REFUSAL {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Reset after the line, or no more of it in time: what came is the reason.
            Err(_) => break,
        }
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let reason = String::from_utf8_lossy(&line[REFUSED.len()..end.min(MAX_REFUSAL)]);
    Failure::Refused(one_line(reason.trim()).into_owned())
}

/// A failed send or wait for an echo, as a reason that can be counted.
fn waiting(what: &str, e: &io::Error, timeout: Duration) -> Failure {
    Failure::Other(match e.kind() {
        ErrorKind::UnexpectedEof => "the server closed the connection".into(),
        _ if is_timeout(e) => format!(
            "{what} took longer than --timeout ({} s)",
            timeout.as_secs_f64()
        ),
        _ => format!("{what}: {e}"),
    })
}

/// The summary: its first line is `served S/N clients`, whatever happened.
fn print_summary(served: &[(u32, Served)], clients: u32, rounds: u32, elapsed: Duration) {
    println!("served {}/{clients} clients", served.len());
    if let Some((id, s)) = served.iter().max_by_key(|(_, s)| s.connected) {
        println!("slowest connect: {} (client {id})", show(s.connected));
    }
    let first = served
        .iter()
        .filter_map(|(id, s)| Some((id, s.first_answer?)))
        .max_by_key(|(_, t)| *t);
    if let Some((id, t)) = first {
        println!("slowest wait for a first answer: {} (client {id})", show(t));
    }
    let mut trips: Vec<Duration> = served
        .iter()
        .flat_map(|(_, s)| s.round_trips.iter().copied())
        .collect();
    trips.sort();
    let talking = served.iter().filter_map(|(_, s)| s.last_answer).max();
    match (trips.is_empty(), talking) {
        (false, Some(talking)) => println!(
            "round trips: {} in {:.2} s ({:.0} per second), p50 {}, p99 {}",
            trips.len(),
            talking.as_secs_f64(),
            trips.len() as f64 / talking.as_secs_f64(),
            show(percentile(&trips, 50)),
            show(percentile(&trips, 99)),
        ),
        _ if rounds == 0 => println!("round trips: none (--rounds 0)"),
        _ => println!("round trips: none"),
    }
    println!("elapsed: {:.2} s", elapsed.as_secs_f64());
}

/// The `p`th percentile of sorted, non-empty `values` (nearest rank).
fn percentile(values: &[Duration], p: usize) -> Duration {
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank - 1]
}

/// A duration as a person reads it: `0.04 ms`, `3.4 ms`, `1.02 s`.
fn show(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    match ms {
        ms if ms < 10.0 => format!("{ms:.2} ms"),
        ms if ms < 1000.0 => format!("{ms:.1} ms"),
        _ => format!("{:.2} s", d.as_secs_f64()),
    }
}

/// At most `n` clients connecting or waiting for their first answer at once (a counting
/// semaphore: `Mutex` + `Condvar`); `n` = 0: no limit.
///
/// Why a bound, and why on this. A connect completes in the kernel, before the server calls
/// accept(): the connection then waits in the server's accept queue, which `listen(5)` keeps
/// to 6 on Linux. A connect that finds the queue full is not refused: its SYN is dropped, and
/// the client sends it again only after 1 s, then 3 s, 7 s … (and a connect whose last ACK is
/// dropped looks connected, but its first message waits for the server's own retries). A
/// thread-per-client server accepts fast, yet a connect is faster still, so clients that all
/// connect at the same instant overflow the queue even when the server keeps up (measured, see
/// the README). Bounding connects in flight does not help, as they complete before the server
/// accepts; what the client can bound is how many of its connections may be waiting in that
/// queue: those not yet answered. With `--pending 5` no more than 5 ever are. (With
/// `--rounds 0` no answer comes to say so, and only connecting clients are counted.)
struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
    unlimited: bool,
}

/// A place in the [`Gate`], given back when dropped.
struct Pass<'a>(&'a Gate);

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            free: Mutex::new(n),
            freed: Condvar::new(),
            unlimited: n == 0,
        }
    }

    /// Waits for a free place (`None`: no limit). A poisoned lock (a thread panicked holding
    /// it, which the few lines here cannot do) is taken over as is: the count is still right.
    fn enter(&self) -> Option<Pass<'_>> {
        if self.unlimited {
            return None;
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Some(Pass(self))
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}
