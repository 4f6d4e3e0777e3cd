//! The ladder's load driver: many connections to one server of lesson 02's echo, all held open
//! together, then round trips on every one of them, each echo checked byte for byte. A tool for
//! `bench/ladder.sh`, not a lesson (the learner's many-clients client is `lesson09-client`).
//!
//! ```text
//! ladder-driver --addr 127.0.0.1:PORT --clients 10000 --rounds 20 --server-pid PID
//! ```
//!
//! 1. Connect: `--clients` connections, at most `--pending` of them waiting for their first
//!    answer at a time. Each sends one message first (`client 7 hello`), not measured: a
//!    connect completes in the server's kernel before the server accepts it, and only an
//!    answer proves the server took it. Keeping the unanswered ones to 5 keeps the server's
//!    accept queue within the course's `listen(5)`, so no connect stalls on a full queue
//!    (lesson 09's README shows what that does). Connecting stops early when no connection has
//!    been answered for `--stall` seconds: a server that serves no more (lesson 10's pool).
//! 2. Round trips: with every answered connection still open, each sends `--rounds` messages
//!    (`client 7 round 3`), one at a time, the next once the echo of the last is complete
//!    and right (the message and `123`, nothing more). All connections do this at once. The
//!    server's CPU time is read from `/proc` before and after this phase, its threads and
//!    resident memory at its end, while every connection is still open.
//! 3. The connections are closed; one summary is printed, and with `--json FILE` appended to
//!    FILE as one line.
//!
//! One thread, one epoll loop (the `polling` crate, as lesson 11), non-blocking sockets: the
//! driver costs about what the cheapest server costs per round trip, and its own CPU time and
//! memory are printed beside the server's, so a reader can tell when it was the bottleneck.
//! A thread per connection (`lesson09-client`) costs more: at 10,000 connections about 1.6 times
//! the CPU per round trip and 13 times the memory (bench/README.md has the figures). Linux only
//! for the `/proc` figures; the round trips work anywhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use polling::{Event, PollMode, Poller};
use socket_lessons::cli;
use socket_lessons::wire::preview;

/// Load driver for bench/ladder.sh: N connections held open, then R checked round trips on each.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// How many connections, all held open together
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    clients: u32,

    /// Round trips on each connection, once all are connected
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rounds: u32,

    /// How many connections may wait for their first answer at once
    // 5: the course's listen(5); see the file's header.
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pending: u32,

    /// The longest wait for a connect or an echo; a connection that waits longer is not served
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = cli::parse_seconds)]
    timeout: Duration,

    /// Stop connecting when no connection has been answered for this long
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = cli::parse_seconds)]
    stall: Duration,

    /// The server's process id: its threads, memory and CPU time are read from /proc (Linux)
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,

    /// Append the figures to FILE as one line of JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// A name for this run, written into the JSON
    #[arg(long, default_value = "")]
    label: String,
}

/// Longest message: `client 60000 round 1000000`; its echo has `123` more.
const MESSAGE_MAX: usize = 32;

/// Room for the echo and more: bytes past the expected echo are seen, and are an error.
const ECHO_ROOM: usize = 64;

/// How often the round-trip phase looks for connections waiting longer than `--timeout`.
const SCAN_EVERY: Duration = Duration::from_secs(1);

/// One connection.
struct Conn {
    sock: TcpStream,
    id: u32,
    /// 0: the unmeasured first message; then 1..=rounds.
    round: u32,
    /// The echo expected: the message sent, then `123`.
    expected: [u8; MESSAGE_MAX + 3],
    expected_len: usize,
    /// What has come back so far.
    echo: [u8; ECHO_ROOM],
    got: usize,
    sent: Instant,
}

impl Conn {
    /// Sends the message of `round`, one write of a few bytes into an empty send buffer.
    fn send(&mut self, round: u32) -> Result<(), String> {
        let mut text = String::with_capacity(MESSAGE_MAX);
        match round {
            0 => write!(text, "client {} hello", self.id),
            r => write!(text, "client {} round {r}", self.id),
        }
        .map_err(|e| e.to_string())?;
        let n = text.len();
        self.expected[..n].copy_from_slice(text.as_bytes());
        self.expected[n..n + 3].copy_from_slice(b"123");
        self.expected_len = n + 3;
        self.round = round;
        self.got = 0;
        self.sent = Instant::now();
        // A non-blocking write takes what fits; with nothing else in flight on this
        // connection, a few bytes always fit, so anything less is an error, not a wait.
        match self.sock.write(&self.expected[..n]) {
            Ok(written) if written == n => Ok(()),
            Ok(_) => Err("a send took only part of a message".into()),
            Err(e) => Err(format!("send: {e}")),
        }
    }

    /// Reads what has arrived. `Ok(true)`: the echo is complete and right.
    fn receive(&mut self) -> Result<bool, Failure> {
        match self.sock.read(&mut self.echo[self.got..]) {
            Ok(0) => return Err(Failure::Other("closed by the server".into())),
            Ok(n) => self.got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return Ok(false)
            }
            Err(e) => return Err(Failure::Other(format!("receive: {e}"))),
        }
        // Every byte checked as it comes: a wrong one, or one too many, is a wrong answer.
        let (got, want) = (&self.echo[..self.got], &self.expected[..self.expected_len]);
        if got.len() > want.len() || want[..got.len()] != *got {
            return Err(Failure::Wrong(format!(
                "sent {}, got {}",
                preview(&want[..want.len() - 3]),
                preview(got)
            )));
        }
        Ok(got.len() == want.len())
    }
}

/// Why a connection was not served. Reasons are counted; a wrong answer keeps one example.
enum Failure {
    Wrong(String),
    Other(String),
}

#[derive(Default)]
struct Failures {
    counts: BTreeMap<String, u32>,
    wrong_example: Option<String>,
}

impl Failures {
    fn add(&mut self, f: Failure, n: u32) {
        let reason = match f {
            Failure::Wrong(example) => {
                self.wrong_example.get_or_insert(example);
                "answered something else".to_string()
            }
            Failure::Other(reason) => reason,
        };
        *self.counts.entry(reason).or_default() += n;
    }
}

/// Slots indexed by the poller's key; a failed connection's slot is emptied (its socket
/// closed), an answered one stays until the end.
struct Conns {
    poller: Poller,
    slots: Vec<Option<Conn>>,
    failures: Failures,
}

impl Conns {
    fn fail(&mut self, key: usize, f: Failure) {
        if let Some(conn) = self.slots[key].take() {
            let _ = self.poller.delete(&conn.sock);
        }
        self.failures.add(f, 1);
    }
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let server = args.server_pid.map(|pid| pid.to_string());
    let load_before = load();
    let idle = server.as_deref().map(Snapshot::take);
    let started = Instant::now();
    let mut conns = Conns {
        poller: Poller::new().context("cannot create the poller")?,
        slots: Vec::with_capacity(args.clients as usize),
        failures: Failures::default(),
    };
    let mut events: Vec<Event> = Vec::new();

    // ---- 1. Connect, at most --pending unanswered at a time --------------------------------
    let mut next_id = 1;
    let mut waiting: Vec<usize> = Vec::new();
    let mut last_answer = Instant::now();
    while next_id <= args.clients || !waiting.is_empty() {
        while waiting.len() < args.pending as usize && next_id <= args.clients {
            match open(next_id, args.common.addr, args.timeout) {
                Ok(conn) => {
                    let key = conns.slots.len();
                    watch(&conns.poller, &conn.sock, key)?;
                    conns.slots.push(Some(conn));
                    waiting.push(key);
                }
                Err(reason) => conns.failures.add(Failure::Other(reason), 1),
            }
            next_id += 1;
        }
        events.clear();
        wait(&conns.poller, &mut events, Duration::from_millis(50))?;
        let now = Instant::now();
        for ev in events.iter() {
            let Some(conn) = conns.slots[ev.key].as_mut() else {
                continue;
            };
            match conn.receive() {
                Ok(false) => continue,
                Ok(true) => last_answer = now,
                Err(f) => conns.fail(ev.key, f),
            }
            waiting.retain(|&k| k != ev.key);
        }
        // Waited too long: for this connection alone (--timeout), or for any answer (--stall).
        let stalled = now.duration_since(last_answer) > args.stall;
        for key in std::mem::take(&mut waiting) {
            let Some(sent) = conns.slots[key].as_ref().map(|c| c.sent) else {
                continue;
            };
            let reason = match stalled {
                true => format!(
                    "no first answer: none came for {} s",
                    args.stall.as_secs_f64()
                ),
                false if now.duration_since(sent) > args.timeout => format!(
                    "waiting for a first answer took longer than --timeout ({} s)",
                    args.timeout.as_secs_f64()
                ),
                false => {
                    waiting.push(key);
                    continue;
                }
            };
            conns.fail(key, Failure::Other(reason));
        }
        if stalled {
            let untried = args.clients + 1 - next_id;
            if untried > 0 {
                let reason = format!(
                    "not tried: no connection answered for {} s",
                    args.stall.as_secs_f64()
                );
                conns.failures.add(Failure::Other(reason), untried);
            }
            break;
        }
    }
    let connected_in = started.elapsed();

    // ---- 2. Round trips on every answered connection, all at once --------------------------
    let held: Vec<usize> = (0..conns.slots.len())
        .filter(|&k| conns.slots[k].is_some())
        .collect();
    // Every answered connection open, none talking yet.
    let connected = server.as_deref().map(Snapshot::take);
    let before = (server.as_deref().map(cpu_seconds), cpu_seconds("self"));
    let busy_before = machine_busy();
    let phase = Instant::now();
    let mut active = 0usize;
    for &key in &held {
        let sent = conns.slots[key].as_mut().map(|c| c.send(1));
        match sent {
            Some(Ok(())) => active += 1,
            Some(Err(reason)) => conns.fail(key, Failure::Other(reason)),
            None => {}
        }
    }
    let mut trips: Vec<Duration> =
        Vec::with_capacity(held.len().saturating_mul(args.rounds as usize));
    let mut last_scan = phase;
    while active > 0 {
        events.clear();
        wait(&conns.poller, &mut events, Duration::from_millis(100))?;
        for ev in events.iter() {
            let Some(conn) = conns.slots[ev.key].as_mut() else {
                continue;
            };
            // Served already: nothing more may come (a byte, or the server closing it).
            let finished = conn.round > args.rounds;
            let outcome = match conn.receive() {
                Ok(false) => Ok(()),
                Ok(true) if finished => Ok(()),
                Ok(true) => {
                    trips.push(conn.sent.elapsed());
                    match conn.round < args.rounds {
                        true => conn.send(conn.round + 1).map_err(Failure::Other),
                        // Served: held open, silent, until the end.
                        false => {
                            conn.round += 1;
                            active -= 1;
                            Ok(())
                        }
                    }
                }
                Err(f) => Err(f),
            };
            if let Err(f) = outcome {
                conns.fail(ev.key, f);
                if !finished {
                    active -= 1;
                }
            }
        }
        let now = Instant::now();
        if now.duration_since(last_scan) >= SCAN_EVERY {
            last_scan = now;
            for key in 0..conns.slots.len() {
                let late = conns.slots[key].as_ref().is_some_and(|c| {
                    c.round <= args.rounds && now.duration_since(c.sent) > args.timeout
                });
                if late {
                    let reason = format!(
                        "waiting for an echo took longer than --timeout ({} s)",
                        args.timeout.as_secs_f64()
                    );
                    conns.fail(key, Failure::Other(reason));
                    active -= 1;
                }
            }
        }
    }
    let elapsed = phase.elapsed();
    let busy_after = machine_busy();
    let after = (server.as_deref().map(cpu_seconds), cpu_seconds("self"));
    // While every served connection is still open.
    let loaded = server.as_deref().map(Snapshot::take);
    let own_rss = status_field("self", "VmRSS");
    let served = conns.slots.iter().flatten().count();
    let load_after = load();

    // ---- 3. Close, report ------------------------------------------------------------------
    drop(conns.slots);
    trips.sort();
    let report = Report {
        args: &args,
        served,
        held: held.len(),
        connected_in,
        elapsed,
        trips: &trips,
        server_cpu: after
            .0
            .flatten()
            .zip(before.0.flatten())
            .map(|(a, b)| a - b),
        own_cpu: after.1.zip(before.1).map(|(a, b)| a - b),
        machine_busy: busy_after.zip(busy_before).map(|(a, b)| a - b),
        own_rss,
        idle,
        connected,
        loaded,
        load: (load_before, load_after),
    };
    print!("{}", report.text());
    if let Some(path) = &args.json {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(file, "{}", report.json(&conns.failures))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !conns.failures.counts.is_empty() {
        let counted: Vec<String> = conns
            .failures
            .counts
            .iter()
            .map(
                |(reason, n)| match (reason.as_str(), &conns.failures.wrong_example) {
                    ("answered something else", Some(e)) => format!("{n} {reason} (first: {e})"),
                    _ => format!("{n} {reason}"),
                },
            )
            .collect();
        eprintln!(
            "ladder-driver: {} of {} not served: {}",
            args.clients as usize - served,
            args.clients,
            counted.join("; ")
        );
        std::process::exit(1);
    }
    Ok(())
}

/// Connects (blocking, bounded by `timeout`: with at most --pending unanswered, the server's
/// accept queue has room, and a connect on loopback takes microseconds), then sends the first
/// message.
fn open(id: u32, addr: SocketAddr, timeout: Duration) -> Result<Conn, String> {
    let sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = Conn {
        sock,
        id,
        round: 0,
        expected: [0; MESSAGE_MAX + 3],
        expected_len: 0,
        echo: [0; ECHO_ROOM],
        got: 0,
        sent: Instant::now(),
    };
    conn.send(0)?;
    Ok(conn)
}

/// Waits at most `timeout` for sockets to be ready. (A signal that ends the wait early, a
/// Ctrl-Z and `fg` of the driver, is a wait with nothing ready.)
fn wait(poller: &Poller, events: &mut Vec<Event>, timeout: Duration) -> Result<()> {
    match poller.wait(events, Some(timeout)) {
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
        waited => waited.map(|_| ()).context("waiting for events"),
    }
}

/// Adds a socket to the poller, level-triggered (reported for as long as it has bytes). A
/// connection leaves the poller before it is closed (`Conns::fail`), or all of them together
/// after the last wait.
fn watch(poller: &Poller, sock: &TcpStream, key: usize) -> Result<()> {
    poller
        .add_with_mode(sock, Event::readable(key), PollMode::Level)
        .context("cannot add a connection to the poller")
}

// ---- /proc: CPU time, threads, memory -----------------------------------------------------

/// CPU time used so far by every thread of a process (`"self"` for this one), in seconds:
/// the sum of `se.sum_exec_runtime` (nanosecond precision) over `/proc/PID/task/*/sched`, or
/// where the kernel has no such files, `utime + stime` of `/proc/PID/stat` (10 ms ticks).
/// The threads of the sum are those alive when it is read: the phase it measures creates
/// and ends none (the connections stay open).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let from_sched = || -> Option<f64> {
        let mut total_ms = 0.0;
        for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            // A thread that ended meanwhile has no file any more: it is skipped.
            let Ok(text) = fs::read_to_string(task.path().join("sched")) else {
                continue;
            };
            let line = text
                .lines()
                .find(|l| l.starts_with("se.sum_exec_runtime"))?;
            total_ms += line.rsplit(':').next()?.trim().parse::<f64>().ok()?;
        }
        Some(total_ms / 1000.0)
    };
    from_sched().or_else(|| {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ, the unit of /proc's times, is 100 on every Linux.
        Some(ticks / 100.0)
    })
}

/// Seconds of CPU time the whole machine has been busy (`/proc/stat`, all processes, 10 ms
/// ticks): user, nice, system, irq and softirq time, summed over the cores.
fn machine_busy() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let t: Vec<f64> = cpu
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    Some((t.first()? + t.get(1)? + t.get(2)? + t.get(5)? + t.get(6)?) / 100.0)
}

/// The machine's load average over the last minute (`/proc/loadavg`).
fn load() -> Option<f64> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A number from `/proc/PID/status` (`Threads`, or a memory line in KiB).
fn status_field(pid: &str, name: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server's threads and memory at one moment.
struct Snapshot {
    threads: Option<u64>,
    rss_kib: Option<u64>,
    peak_kib: Option<u64>,
}

impl Snapshot {
    fn take(pid: &str) -> Snapshot {
        Snapshot {
            threads: status_field(pid, "Threads"),
            rss_kib: status_field(pid, "VmRSS"),
            peak_kib: status_field(pid, "VmHWM"),
        }
    }
}

// ---- The summary ---------------------------------------------------------------------------

struct Report<'a> {
    args: &'a Args,
    /// Connections answered while connecting (held open for the round trips), and served: every
    /// round trip done and right.
    held: usize,
    served: usize,
    connected_in: Duration,
    elapsed: Duration,
    trips: &'a [Duration],
    server_cpu: Option<f64>,
    own_cpu: Option<f64>,
    /// CPU time the whole machine was busy during the round trips (all processes).
    machine_busy: Option<f64>,
    own_rss: Option<u64>,
    /// The server before the first connection, with every answered connection open, and after
    /// the round trips with every served one open.
    idle: Option<Snapshot>,
    connected: Option<Snapshot>,
    loaded: Option<Snapshot>,
    /// The machine's load average (1 minute) at the start and at the end.
    load: (Option<f64>, Option<f64>),
}

impl Report<'_> {
    fn per_second(&self) -> f64 {
        self.trips.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU per round trip, in µs.
    fn per_trip(&self, cpu: Option<f64>) -> Option<f64> {
        let n = self.trips.len();
        cpu.filter(|_| n > 0).map(|s| s * 1e6 / n as f64)
    }

    /// Resident memory the server gained per open connection, in KiB: the larger of the two
    /// moments (every connection open and answered once; then after the round trips). Only
    /// when every connection was answered: a few connections' share of a process says nothing.
    fn kib_per_conn(&self) -> Option<f64> {
        let idle = self.idle.as_ref()?.rss_kib? as f64;
        if self.held < self.args.clients as usize {
            return None;
        }
        let per = |s: &Option<Snapshot>, n: usize| {
            let rss = s.as_ref()?.rss_kib? as f64;
            (n > 0).then(|| (rss - idle) / n as f64)
        };
        let after = (self.served == self.held)
            .then(|| per(&self.loaded, self.served))
            .flatten();
        match (per(&self.connected, self.held), after) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The server's threads with every connection open: the more of the two moments.
    fn threads(&self) -> Option<u64> {
        let at = |s: &Option<Snapshot>| s.as_ref().and_then(|s| s.threads);
        at(&self.connected).max(at(&self.loaded))
    }

    /// The CPU other processes used during the round trips, in cores (machine busy time less
    /// the server's and the driver's, over the elapsed time).
    fn others_cores(&self) -> Option<f64> {
        let ours = self.server_cpu.unwrap_or(0.0) + self.own_cpu?;
        Some(((self.machine_busy? - ours) / self.elapsed.as_secs_f64().max(1e-9)).max(0.0))
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let args = self.args;
        let _ = writeln!(
            out,
            "served {}/{} ({} answered while connecting, in {:.2} s; then {} rounds each)",
            self.served,
            args.clients,
            self.held,
            self.connected_in.as_secs_f64(),
            args.rounds
        );
        let _ = writeln!(
            out,
            "round trips: {} in {:.2} s ({:.0} per second), p50 {}, p99 {}",
            self.trips.len(),
            self.elapsed.as_secs_f64(),
            self.per_second(),
            show(percentile(self.trips, 50)),
            show(percentile(self.trips, 99)),
        );
        if let (Some(pid), Some(idle)) = (args.server_pid, self.idle.as_ref()) {
            let _ = writeln!(
                out,
                "server {pid}: {} threads; resident {} idle, {} with {} open ({} KiB each); CPU {} s ({} µs per round trip)",
                opt(self.threads().map(|t| t as f64), 0),
                mib(idle.rss_kib),
                mib(self.connected.as_ref().and_then(|c| c.rss_kib)),
                self.held,
                opt(self.kib_per_conn(), 2),
                opt(self.server_cpu, 2),
                opt(self.per_trip(self.server_cpu), 2),
            );
        }
        let _ = writeln!(
            out,
            "driver: CPU {} s ({} µs per round trip), resident {}; other processes: {} cores",
            opt(self.own_cpu, 2),
            opt(self.per_trip(self.own_cpu), 2),
            mib(self.own_rss),
            opt(self.others_cores(), 2),
        );
        out
    }

    fn json(&self, failures: &Failures) -> String {
        let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.4}"));
        let int = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        let ms = |d: Option<Duration>| num(d.map(|d| d.as_secs_f64() * 1000.0));
        let snap = |s: &Option<Snapshot>| match s {
            Some(s) => format!(
                r#"{{"threads": {}, "rss_kib": {}, "peak_kib": {}}}"#,
                int(s.threads),
                int(s.rss_kib),
                int(s.peak_kib)
            ),
            None => "null".to_string(),
        };
        let reasons: Vec<String> = failures
            .counts
            .iter()
            .map(|(reason, n)| format!("{}: {n}", quote(reason)))
            .collect();
        format!(
            concat!(
                r#"{{"label": {}, "clients": {}, "rounds": {}, "timeout_s": {}, "held": {}, "served": {}, "connect_s": {}, "#,
                r#""round_trips": {}, "elapsed_s": {}, "per_second": {}, "p50_ms": {}, "p99_ms": {}, "#,
                r#""server": {{"pid": {}, "threads": {}, "idle": {}, "connected": {}, "loaded": {}, "cpu_s": {}, "cpu_us_per_trip": {}, "kib_per_conn": {}}}, "#,
                r#""driver": {{"cpu_s": {}, "cpu_us_per_trip": {}, "rss_kib": {}}}, "others_cores": {}, "#,
                r#""load": [{}, {}], "failures": {{{}}}, "wrong_example": {}}}"#
            ),
            quote(&self.args.label),
            self.args.clients,
            self.args.rounds,
            num(Some(self.args.timeout.as_secs_f64())),
            self.held,
            self.served,
            num(Some(self.connected_in.as_secs_f64())),
            self.trips.len(),
            num(Some(self.elapsed.as_secs_f64())),
            num(Some(self.per_second())),
            ms(percentile(self.trips, 50)),
            ms(percentile(self.trips, 99)),
            int(self.args.server_pid.map(u64::from)),
            int(self.threads()),
            snap(&self.idle),
            snap(&self.connected),
            snap(&self.loaded),
            num(self.server_cpu),
            num(self.per_trip(self.server_cpu)),
            num(self.kib_per_conn()),
            num(self.own_cpu),
            num(self.per_trip(self.own_cpu)),
            int(self.own_rss),
            num(self.others_cores()),
            num(self.load.0),
            num(self.load.1),
            reasons.join(", "),
            failures
                .wrong_example
                .as_deref()
                .map_or("null".into(), quote),
        )
    }
}

/// A JSON string.
fn quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `p`th percentile of sorted `values` (nearest rank), if any.
fn percentile(values: &[Duration], p: usize) -> Option<Duration> {
    let rank = (values.len() * p).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

fn show(d: Option<Duration>) -> String {
    match d.map(|d| d.as_secs_f64() * 1000.0) {
        None => "-".into(),
        Some(ms) if ms < 10.0 => format!("{ms:.2} ms"),
        Some(ms) if ms < 1000.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}
