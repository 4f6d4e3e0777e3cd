//! Lesson 11, server: one thread serves every client. The course's IO模型 chapter, after
//! 网络并发: 非阻塞IO (non-blocking sockets) and IO多路复用 (`select`, `poll`, `epoll`,
//! `selectors`).
//!
//! Lesson 02's echo (each read comes back with `123` appended), served to any number of clients
//! at once by one thread, in two steps:
//!
//! - Step 1 (`--busy`, broken on purpose): the course's 非阻塞IO loop. Every socket is
//!   non-blocking (`setblocking(False)`), and one loop tries each in turn: accept, then a read
//!   on every client. `WouldBlock` (Python's `BlockingIOError`) means "nothing yet, try the
//!   next". It serves everyone, and it burns a whole core while nobody says anything.
//! - Step 2 (the default): the course's `select.select(r_list, w_list, [])` example, on the
//!   `polling` crate (epoll on Linux, kqueue on macOS, IOCP on Windows). The loop sleeps until
//!   the kernel says which sockets are ready, and touches only those.
//!
//! What both steps need and the notes' blocking code did not: a read returns whatever has
//! arrived, and a non-blocking write may take only part of a reply, so each client keeps its
//! replies not yet sent (the select example's `w_data`) and the loop waits for room to send
//! them; a client that never reads is held to `--max-unsent` bytes of them. Not in the
//! notes, as in lesson 02: a client silent for `--idle-timeout` is dropped, here from a sorted
//! list of deadlines, not by a timer or a thread per client.
//!
//! ```text
//! cargo run --bin lesson11-server                 # terminal 1 (step 2; add -- --busy for step 1)
//! cargo run --bin lesson02-client                 # terminals 2, 3, …: all served at once
//! ```
//!
//! Watch for: every client is answered at once, by one thread (`top -H`, Task Manager's
//! Threads column); `--busy` takes a whole core (`top`) while all clients sit at their
//! prompts, the default takes none; `--trace` shows a client's reads and writes interleaved
//! with the others'; `--trace-waits` adds what each `wait` returned and each call that found
//! nothing to do (`WouldBlock`).

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use polling::{Event, PollMode, Poller, Source};
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{announce, cli};

/// Lesson 11 server: echo every message with "123" appended, to every client at once, from one thread.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Step 1, broken on purpose: try every socket in turn, never wait (burns a core)
    #[arg(long)]
    busy: bool,

    /// Seconds a client may stay silent (or leave our replies unread) before it is dropped
    // 300 s, as in lesson 02: a learner at the `>>>:` prompt must not be dropped for thinking.
    // Here nobody waits behind a silent client; the timeout frees its socket and memory.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,

    /// Replies a client may leave unsent (bytes) before we stop reading from it
    // 64 KiB: the kernel already holds megabytes for a client that does not read (our send
    // buffer and its receive buffer) before a write takes less than everything; this is the
    // server's own share on top, bounded. 1 KiB would do for an echo; more than this only
    // costs memory when many clients stop reading.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_unsent: u32,

    /// Like --trace, and show what each wait returned and each read or write that would block (once)
    #[arg(long)]
    trace_waits: bool,
}

/// The poller's key for the listening socket; clients get 1, 2, 3 … (never reused).
const LISTENER: usize = 0;

/// How long accepting pauses after `accept` failed, as in lessons 02-05.
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// `log!(log, "…")`: one line of the server's log (stdout). See [`Log`].
macro_rules! log {
    ($log:expr, $($arg:tt)*) => {{
        let _ = writeln!($log, $($arg)*);
    }};
}

fn main() -> Result<()> {
    let mut args: Args = cli::parse();
    args.common.trace |= args.trace_waits;
    // `server.bind(('127.0.0.1', 8080))` and `server.listen(5)`: lesson 02 showed each call;
    // std does them in one, with SO_REUSEADDR on Unix and a backlog of 128.
    let addr = args.common.addr;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    announce(listener.local_addr()?)?;

    // `server.setblocking(False)`: from now on `accept` never waits. With nobody in the queue it
    // fails at once with `WouldBlock` (Python: BlockingIOError) instead.
    listener
        .set_nonblocking(true)
        .context("cannot make the listening socket non-blocking")?;

    // With --trace, no buffer: each log line goes out at once, in order with the trace lines
    // (on stderr, unbuffered) of the reads and writes it is about.
    let buffer = if args.common.trace { 0 } else { 64 * 1024 };
    let mut log = Log::with_capacity(buffer, io::stdout());
    match args.busy {
        true => busy_loop(&listener, &args, &mut log),
        false => readiness_loop(&listener, &args, &mut log),
    }
}

// ---- Step 1 (--busy): 非阻塞IO, every socket tried in turn (broken on purpose) ----------------

/// The course's 非阻塞IO server: `while True:` try `accept`, then try a read (and a write of
/// what is still unsent) on every client, whether it said anything or not.
fn busy_loop(listener: &TcpListener, args: &Args, log: &mut Log) -> Result<()> {
    // `r_list = []`: every client, asked in turn.
    let mut clients: Vec<Client> = Vec::new();
    let mut buf = [0u8; 1024];
    let mut accept_paused_until: Option<Instant> = None;
    // BUG (on purpose): this loop never waits. When nobody talks, every call below fails at
    // once with WouldBlock and the loop goes round again, millions of times a second: one core
    // at 100% to serve nobody. Step 2 (`readiness_loop`) fixes it: the kernel says which
    // sockets are ready, and the loop sleeps until one is.
    loop {
        let now = Instant::now();
        if accept_paused_until.map_or(true, |until| now >= until) {
            accept_paused_until = None;
            // `conn, addr = server.accept()` …
            match listener.accept() {
                Ok((sock, address)) => match Client::new(sock, address, args, now) {
                    Ok(client) => {
                        log!(log, "{address} connected");
                        clients.push(client);
                    }
                    Err(e) => log!(log, "{address} dropped: {e}"),
                },
                // … `except BlockingIOError: pass`: nobody is waiting to be accepted.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Out of file descriptors (EMFILE), say: the connection stays queued and every
                // try fails again at once. Skip accepting for a while; the clients are served.
                Err(e) => {
                    log!(log, "accept failed: {e}; trying again in 1 s");
                    accept_paused_until = Some(now + ACCEPT_PAUSE);
                }
            }
        }
        // `for conn in r_list: data = conn.recv(1024)` …, `except BlockingIOError: continue`.
        // Each client also gets its unsent replies written, and its idle time checked: this
        // loop looks at every client on every pass anyway.
        clients.retain_mut(|client| {
            let result = match client.idle_for_too_long(now, args.idle_timeout) {
                Some(why) => Err(why),
                None => client.serve(true, true, &mut buf, args, now, log),
            };
            match result {
                Ok(()) => true,
                // `conn.close(); del_list.append(conn)`, then `r_list.remove(conn)`.
                Err(end) => {
                    log!(log, "{} {end}", client.address);
                    false
                }
            }
        });
        let _ = log.flush();
    }
}

// ---- Step 2 (the default): IO多路复用, a readiness loop -----------------------------------------

/// The course's `select` server, line by line (the README has the Python beside it):
///
/// ```text
/// r_list = [server]; w_list = []; w_data = {}
/// while True:
///     rl, wl, _ = select.select(r_list, w_list, [])
///     for sock in rl: accept a client (r_list.append) or recv and keep the reply (w_data)
///     for sock in wl: send its w_data
/// ```
///
/// `select` is level-triggered: it reports a socket for as long as it is ready (unread bytes,
/// room to write), every time it is asked. `PollMode::Level` asks `polling` for the same;
/// its default, oneshot, reports a socket once and needs it re-armed after every event (one
/// more system call per message).
fn readiness_loop(listener: &TcpListener, args: &Args, log: &mut Log) -> Result<()> {
    // Declared before the poller, so dropped after it: no socket closes while the poller has it.
    let mut clients: HashMap<usize, Client> = HashMap::new();
    // `selectors.DefaultSelector()`: epoll, kqueue or IOCP, whichever this system has.
    let poller = Poller::new().context("cannot create the poller")?;
    // `r_list = [server]`: the listening socket is "ready to read" when a client is waiting to
    // be accepted.
    watch(&poller, listener, Event::readable(LISTENER)).context("cannot watch the listener")?;
    let mut events = Vec::new();
    // One read buffer for every client, in turn: lesson 02's echo answers each read as it
    // comes. A framed protocol (lesson 04's header) would need one per client, to keep a
    // message's first bytes until the rest arrives.
    let mut buf = [0u8; 1024];
    let mut next_key = LISTENER + 1;
    let mut idle = Deadlines::new(args.idle_timeout);
    let mut accept_paused_until: Option<Instant> = None;

    loop {
        // The log goes out before the loop sleeps, so it never lags behind the clients.
        let _ = log.flush();
        // Sleep until a socket is ready, or until the next idle deadline or the end of an
        // accept pause, whichever comes first.
        let wake = match (idle.next(), accept_paused_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        events.clear();
        // `rl, wl, _ = select.select(r_list, w_list, [])`: the only place this thread waits.
        let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
        match poller.wait(&mut events, timeout) {
            // A server stopped and continued (Ctrl-Z, then `fg`) ends its wait early: wait again.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            waited => waited.context("waiting for events")?,
        };
        let now = Instant::now();
        if args.trace_waits {
            trace_wait(&events, &clients);
        }

        for ev in events.iter() {
            // `if sock is server:` clients are waiting to be accepted. Accept all of them:
            // the queue is bounded by the listen backlog, so this inner loop is too.
            if ev.key == LISTENER {
                loop {
                    // `conn, addr = server.accept()`
                    let (sock, address) = match listener.accept() {
                        Ok(pair) => pair,
                        // Nobody more is waiting.
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        // Out of file descriptors (EMFILE), say: the connection stays queued,
                        // so the listener stays ready and every accept fails again at once.
                        // Stop watching it for a while, instead of spinning; clients are
                        // still served meanwhile.
                        Err(e) => {
                            log!(log, "accept failed: {e}; trying again in 1 s");
                            poller
                                .modify_with_mode(listener, Event::none(LISTENER), PollMode::Level)
                                .context("cannot stop watching the listener")?;
                            accept_paused_until = Some(now + ACCEPT_PAUSE);
                            break;
                        }
                    };
                    let key = next_key;
                    next_key += 1;
                    // `conn.setblocking(False)` (in Client::new), then `r_list.append(conn)`:
                    // interest in reading; in writing only once there is something to write.
                    let added = Client::new(sock, address, args, now).and_then(|client| {
                        watch(&poller, client.sock.get_ref(), Event::readable(key))?;
                        Ok(client)
                    });
                    match added {
                        Ok(client) => {
                            log!(log, "{address} connected");
                            clients.insert(key, client);
                            idle.add(key, now);
                        }
                        // The socket is closed here; it never made it into the poller.
                        Err(e) => log!(log, "{address} dropped: {e}"),
                    }
                }
                continue;
            }
            // A client closed earlier in this same batch of events: nothing to do.
            let Some(client) = clients.get_mut(&ev.key) else {
                continue;
            };
            // `data = sock.recv(1024)` for a readable socket, `sock.send(w_data[sock])` for a
            // writable one: `serve` does what the event says the socket is ready for.
            let result = client
                .serve(ev.readable, ev.writable, &mut buf, args, now, log)
                .and_then(|()| client.update_interest(&poller, ev.key));
            if let Err(end) = result {
                close(&poller, &mut clients, ev.key, &end, log);
            }
        }

        // --idle-timeout: the clients whose deadline has passed, from the sorted list.
        for key in idle.expired(now, |key| clients.get(&key).map(|c| c.last_active)) {
            let why = match clients.get(&key).map(|c| c.unsent.is_empty()) {
                Some(true) => "dropped: silent for longer than --idle-timeout",
                _ => "dropped: the client did not read for longer than --idle-timeout",
            };
            close(&poller, &mut clients, key, why, log);
        }

        // The accept pause is over: `r_list` gets the listener back.
        if accept_paused_until.is_some_and(|until| now >= until) {
            accept_paused_until = None;
            poller
                .modify_with_mode(listener, Event::readable(LISTENER), PollMode::Level)
                .context("cannot watch the listener again")?;
        }
    }
}

/// `r_list.remove(sock); sock.close()` (and `w_list`, `w_data` with it): the socket leaves
/// the poller, then the client is dropped, which closes the socket.
fn close(
    poller: &Poller,
    clients: &mut HashMap<usize, Client>,
    key: usize,
    why: &str,
    log: &mut Log,
) {
    if let Some(client) = clients.remove(&key) {
        // Out of the poller first, then closed (the drop below): the rule polling 3 makes its
        // `add` `unsafe` for. Closed first, the socket's number could go to the next client
        // while the poller still holds it (on Windows, polling keeps sockets by that number).
        let _ = poller.delete(client.sock.get_ref());
        log!(log, "{} {why}", client.address);
    }
}

// ---- One client: its socket, and its replies not yet sent (the select example's w_data) ----

/// One connected client.
struct Client {
    sock: Traced<TcpStream>,
    address: SocketAddr,
    /// Replies not yet written, oldest first: the select example's `w_data[sock]`. Empty for a
    /// client that reads its replies; only a full send buffer makes it grow.
    unsent: Vec<u8>,
    /// The client closed its side (a read returned 0); ours closes once `unsent` is out.
    finished: bool,
    /// Not reading from it: its unsent replies reached `--max-unsent`. Cleared once they are out.
    paused: bool,
    /// When a byte last moved either way: what `--idle-timeout` counts from.
    last_active: Instant,
    /// The interest the poller has for this socket now: (read, write).
    interest: (bool, bool),
}

impl Client {
    fn new(sock: TcpStream, address: SocketAddr, args: &Args, now: Instant) -> io::Result<Client> {
        // `conn.setblocking(False)`: a client's reads and writes never wait either. (On Linux
        // an accepted socket does not inherit the listener's non-blocking mode.)
        sock.set_nonblocking(true)?;
        Ok(Client {
            sock: Traced::labelled(sock, args.common.trace, address).nonblocking(args.trace_waits),
            address,
            unsent: Vec::new(),
            finished: false,
            paused: false,
            last_active: now,
            interest: (true, false),
        })
    }

    /// Whether we read from this client: not after its end of stream, not while paused.
    fn reading(&self) -> bool {
        !self.finished && !self.paused
    }

    /// Does what the socket is ready for: writes the unsent replies if `writable`, reads one
    /// message and answers it if `readable`. `Err` ends the client, with the rest of its log
    /// line (`closed the connection`, `dropped: …`).
    fn serve(
        &mut self,
        readable: bool,
        writable: bool,
        buf: &mut [u8; 1024],
        args: &Args,
        now: Instant,
        log: &mut Log,
    ) -> Result<(), String> {
        // `for sock in wl: sock.send(w_data[sock])`.
        if writable && !self.unsent.is_empty() {
            self.write_unsent(now)?;
        }
        if readable && self.reading() {
            self.read_and_answer(buf, now, log)?;
        }
        // Its end of stream came earlier, and now every reply is out: close.
        if self.finished && self.unsent.is_empty() {
            return Err("closed the connection".into());
        }
        // A client that sends and never reads: our replies pile up in `unsent`. Past
        // --max-unsent we stop reading from it; what it sends then waits in the kernel's
        // buffers, which fill, and then its own writes wait. Nothing here grows any more.
        let unsent = self.unsent.len();
        if !self.paused && unsent >= args.max_unsent as usize {
            self.paused = true;
            log!(
                log,
                "{} is not reading its replies: {unsent} bytes unsent (--max-unsent {}); not reading from it until they are sent",
                self.address,
                args.max_unsent
            );
        } else if self.paused && unsent == 0 {
            self.paused = false;
            log!(
                log,
                "{} read its replies; reading from it again",
                self.address
            );
        }
        Ok(())
    }

    /// One `read` of at most 1024 bytes, answered with those bytes and `123`: lesson 02's
    /// echo, one reply per read, whatever the read returned (a part of a message, or several).
    fn read_and_answer(
        &mut self,
        buf: &mut [u8; 1024],
        now: Instant,
        log: &mut Log,
    ) -> Result<(), String> {
        let n = match self.sock.read(buf) {
            // End of stream: the client closed its side, no byte will ever come again (the
            // notes' `if len(data) == 0` fixed, as in lesson 02). Close once the replies are out.
            Ok(0) => {
                self.finished = true;
                return Ok(());
            }
            Ok(n) => n,
            // Nothing has arrived after all (step 1 asks every socket; a readiness report can
            // also be stale): not an error, ask again next time.
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            // Any other error (a reset) belongs to this client alone: it ends this client.
            Err(e) => return Err(format!("dropped: {e}")),
        };
        self.last_active = now;
        // Escaped and quoted, as in lesson 02: a client cannot write raw bytes to our terminal.
        log!(log, "{} says: {}", self.address, preview(&buf[..n]));

        // `w_data[sock] = data + b'123'`: the reply, built on the stack.
        let mut reply = [0u8; 1024 + 3];
        reply[..n].copy_from_slice(&buf[..n]);
        reply[n..n + 3].copy_from_slice(b"123");
        let reply = &reply[..n + 3];
        // Older replies still wait: this one goes behind them, or the order would change.
        if !self.unsent.is_empty() {
            self.unsent.extend_from_slice(reply);
            return Ok(());
        }
        // The select example waits for `select` to say "writable" before every `send`. A
        // socket's send buffer almost always has room, so we write at once and wait for
        // writable only when the kernel took less than everything.
        let written = match self.sock.write(reply) {
            Ok(written) => written,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => 0,
            Err(e) => return Err(format!("dropped: {e}")),
        };
        // `write`, not `write_all`: a non-blocking write takes what fits and returns. The rest
        // is kept, never dropped (the select example's `send` drops it).
        self.unsent.extend_from_slice(&reply[written..]);
        Ok(())
    }

    /// `sock.send(w_data[sock])`, until everything is out or the kernel has no more room.
    fn write_unsent(&mut self, now: Instant) -> Result<(), String> {
        while !self.unsent.is_empty() {
            match self.sock.write(&self.unsent) {
                Ok(0) => return Err("dropped: the socket took no bytes".into()),
                // Written bytes leave the front; the rest waits for the next writable event.
                Ok(written) => {
                    self.unsent.drain(..written);
                    self.last_active = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("dropped: {e}")),
            }
        }
        // All out: give the memory back, so a client that caught up costs nothing here.
        self.unsent = Vec::new();
        Ok(())
    }

    /// `w_list.append(sock)` / `w_list.remove(sock)` (and the same for `r_list`): tells the
    /// poller what we now wait for on this socket, when that changed. Writable only while
    /// replies are unsent: an empty send buffer is always writable, and asking for it would
    /// wake the loop for nothing, again and again.
    fn update_interest(&mut self, poller: &Poller, key: usize) -> Result<(), String> {
        let want = (self.reading(), !self.unsent.is_empty());
        if want != self.interest {
            let event = Event {
                key,
                readable: want.0,
                writable: want.1,
            };
            poller
                .modify_with_mode(self.sock.get_ref(), event, PollMode::Level)
                .map_err(|e| format!("dropped: {e}"))?;
            self.interest = want;
        }
        Ok(())
    }

    /// Step 1's idle check: the reason to drop this client, once it has been idle too long.
    fn idle_for_too_long(&self, now: Instant, timeout: Duration) -> Option<String> {
        if now.duration_since(self.last_active) < timeout {
            return None;
        }
        Some(match self.unsent.is_empty() {
            true => "dropped: silent for longer than --idle-timeout".into(),
            false => "dropped: the client did not read for longer than --idle-timeout".into(),
        })
    }
}

// ---- The machinery: the idle deadlines, the log, the poller's `add` -------------------------

/// `--idle-timeout` for every client from one sorted list of (deadline, key), instead of a
/// timer or a thread per client. The loop sleeps until the first deadline at the latest.
///
/// A message touches nothing here: it only sets the client's `last_active`. When an entry's
/// deadline comes, the client either was idle all along (it is dropped), or it was active
/// since, and gets a new entry at `last_active + timeout`. So each client costs one entry and
/// at most one re-insertion per timeout, however much it talks. An entry of a client that has
/// gone is thrown away when its deadline comes (keys are never reused).
struct Deadlines {
    timeout: Duration,
    due: BTreeSet<(Instant, usize)>,
}

impl Deadlines {
    fn new(timeout: Duration) -> Deadlines {
        Deadlines {
            timeout,
            due: BTreeSet::new(),
        }
    }

    fn add(&mut self, key: usize, now: Instant) {
        self.due.insert((now + self.timeout, key));
    }

    /// The earliest deadline, if any client is being watched.
    fn next(&self) -> Option<Instant> {
        self.due.first().map(|&(at, _)| at)
    }

    /// The keys of clients idle for `timeout` by `now`. `last_active` says when a client was
    /// last active (`None`: it has gone).
    fn expired(
        &mut self,
        now: Instant,
        last_active: impl Fn(usize) -> Option<Instant>,
    ) -> Vec<usize> {
        let mut idle = Vec::new();
        while let Some(&(at, key)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            let Some(active) = last_active(key) else {
                continue;
            };
            let deadline = active + self.timeout;
            match deadline <= now {
                true => idle.push(key),
                false => {
                    self.due.insert((deadline, key));
                }
            }
        }
        idle
    }
}

/// The server's log, on stdout. Lines wait in this buffer and go out together just before the
/// loop sleeps (and once per pass of step 1): one system call per turn of the loop, not one per
/// line, which would cost as much as the echo itself with thousands of clients. A write error
/// (stdout closed) loses the log, never the server. While stdout cannot take more (a terminal
/// paused with Ctrl-S), the loop waits for it, and every client with it.
type Log = BufWriter<io::Stdout>;

/// `--trace-waits`: what `poller.wait` returned (the select example's `rl, wl`), one line on
/// stderr among the trace lines, before the loop acts on it:
/// `wait returned: 127.0.0.1:50312 readable, the listener readable`.
fn trace_wait(events: &[Event], clients: &HashMap<usize, Client>) {
    let ready: Vec<String> = events
        .iter()
        .map(|ev| {
            let who = match clients.get(&ev.key) {
                _ if ev.key == LISTENER => "the listener".to_string(),
                Some(client) => client.address.to_string(),
                None => format!("client {}", ev.key),
            };
            let what = match (ev.readable, ev.writable) {
                (true, true) => "readable and writable",
                (true, false) => "readable",
                (false, true) => "writable",
                (false, false) => "nothing",
            };
            format!("{who} {what}")
        })
        .collect();
    let line = match ready.is_empty() {
        true => "wait returned: no socket ready (a deadline came)\n".to_string(),
        false => format!("wait returned: {}\n", ready.join(", ")),
    };
    let _ = io::stderr().write_all(line.as_bytes());
}

/// `poller.add` in level-triggered mode: `select`'s rule, a socket is reported for as long as
/// it is ready. Every socket added here leaves the poller before it is closed: clients through
/// `close`; the listener outlives the poller (it belongs to `main`).
fn watch(poller: &Poller, source: impl Source, interest: Event) -> io::Result<()> {
    poller.add_with_mode(source, interest, PollMode::Level)
}
