//! Pictures of the ladder (lessons 09 to 12): three clients talking to one server, drawn from a
//! real run with `--trace`, with a lane for each thread of the server (a thread per client, a
//! pool's workers, or the one thread of lessons 11 and 12) so a learner sees who served whom,
//! and who waited.
//!
//! Every picture runs the same script with three `lesson02-client`s, A, B and C: each connects,
//! then each says one line, then each leaves, one act at a time. After each act the run waits
//! until the server has logged what that act makes it do (`… connected`, `… served by worker
//! N`, its `write` of the answer, …), so the server's lines come in the same order on every run
//! and the picture is the same byte for byte (no port, pid or time is drawn). The lines are
//! not guessed: the server's stdout (its log) and stderr (its trace) go to one file, in the
//! order they were written, and each client's trace to its own; the picture puts each act's
//! lines in its own rows.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{anyhow, ensure, Context, Result};

use crate::picture::{svg_start, text, trace_call, wait_until, Call, BOLD, RED};

/// How a lesson's server serves its clients, which decides its lanes and what the picture marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Lesson 09: the main thread accepts and starts a thread for each client.
    ThreadEach,
    /// Lesson 09 `--processes`: a child process for each client instead.
    ProcessEach,
    /// Lesson 10: the connection loop queues each client, a pool of workers serves them.
    Pool,
    /// Lesson 11: one thread, a readiness loop (`--trace-waits` shows each `wait`).
    Readiness,
    /// Lesson 11 `--busy`: one thread trying every socket in turn.
    Busy,
    /// Lesson 12: one thread, a task per client.
    Tasks,
}

/// One lesson's picture.
#[derive(Debug)]
pub struct Ladder {
    /// The picture's name for `cargo run --example wire_picture -- NAME`.
    pub name: &'static str,
    pub server: &'static str,
    /// The server's options (besides `--addr`); the trace's among them.
    pub args: &'static [&'static str],
    pub kind: Kind,
    /// The picture's path from the repository root.
    pub svg: &'static str,
}

/// The ladder's pictures in the lessons' READMEs.
pub const LADDER: [Ladder; 6] = [
    Ladder {
        name: "09",
        server: "lesson09-server",
        args: &["--trace"],
        kind: Kind::ThreadEach,
        svg: "lessons/09_threads/wire.svg",
    },
    Ladder {
        name: "09-processes",
        server: "lesson09-server",
        args: &["--processes", "--trace"],
        kind: Kind::ProcessEach,
        svg: "lessons/09_threads/wire-processes.svg",
    },
    Ladder {
        name: "10",
        server: "lesson10-server",
        args: &["--workers", "2", "--trace"],
        kind: Kind::Pool,
        svg: "lessons/10_pool/wire.svg",
    },
    Ladder {
        name: "11",
        server: "lesson11-server",
        args: &["--trace-waits"],
        kind: Kind::Readiness,
        svg: "lessons/11_select/wire.svg",
    },
    Ladder {
        name: "11-busy",
        server: "lesson11-server",
        args: &["--busy", "--trace-waits"],
        kind: Kind::Busy,
        svg: "lessons/11_select/wire-busy.svg",
    },
    Ladder {
        name: "12",
        server: "lesson12-server",
        args: &["--trace-waits"],
        kind: Kind::Tasks,
        svg: "lessons/12_async/wire.svg",
    },
];

/// The picture called `name` (`09`, `09-processes`, `10`, `11`, `11-busy`, `12`).
pub fn ladder(name: &str) -> Option<&'static Ladder> {
    LADDER.iter().find(|l| l.name == name)
}

/// The clients, as the pictures name them.
const NAMES: [&str; 3] = ["A", "B", "C"];

/// What the script makes a client do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Start it: `lesson02-client` connects at once.
    Connect(usize),
    /// Give it one line to send (`A: hi`); it waits for the answer.
    Say(usize),
    /// Close its stdin: it ends, and its connection with it.
    Leave(usize),
}

/// Every picture's script: all three connect, all three talk, all three leave.
const SCRIPT: [Act; 9] = [
    Act::Connect(0),
    Act::Connect(1),
    Act::Connect(2),
    Act::Say(0),
    Act::Say(1),
    Act::Say(2),
    Act::Leave(0),
    Act::Leave(1),
    Act::Leave(2),
];

/// The line client `c` says.
fn line_of(c: usize) -> String {
    format!("{}: hi", NAMES[c])
}

impl Ladder {
    /// The workers of a pool (`--workers N`), else 0.
    fn workers(&self) -> usize {
        let at = self.args.iter().position(|a| *a == "--workers");
        at.and_then(|i| self.args.get(i + 1)?.parse().ok())
            .unwrap_or(0)
    }

    /// The server's options as a learner would type them, without the trace's.
    fn title(&self) -> String {
        let mut title = self.server.to_string();
        for arg in self.args.iter().filter(|a| !a.starts_with("--trace")) {
            title = format!("{title} {arg}");
        }
        format!("{title}, and three clients (lesson02-client A, B, C)")
    }
}

// ---- The run ---------------------------------------------------------------------------------

/// A line the server writes because of an act: `{addr} WHAT` in its log, or `[{addr}] WHAT` in
/// its trace, for client `usize`.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Log(usize, &'static str),
    Trace(usize, &'static str),
}

impl Expect {
    fn prefix(self, addrs: &[Option<String>; 3]) -> Option<String> {
        match self {
            Expect::Log(c, what) => Some(format!("{} {what}", addrs[c].as_ref()?)),
            Expect::Trace(c, what) => Some(format!("[{}] {what}", addrs[c].as_ref()?)),
        }
    }
}

/// What the server does for each act, as far as the run must wait for it: a model of the
/// lesson, kept small (who has a worker, who waits in the queue, who has an unanswered line).
struct Model {
    kind: Kind,
    workers: usize,
    serving: Vec<usize>,
    queue: VecDeque<usize>,
    unanswered: [bool; 3],
}

impl Model {
    /// The server lines `act` causes, and the clients that get an answer.
    fn expect(&mut self, act: Act) -> (Vec<Expect>, Vec<usize>) {
        let (mut lines, mut answered) = (Vec::new(), Vec::new());
        let waits_again = matches!(self.kind, Kind::Busy | Kind::Tasks);
        match act {
            Act::Connect(c) => {
                lines.push(Expect::Log(c, "connected"));
                if self.kind == Kind::ProcessEach {
                    lines.push(Expect::Log(c, "served by child process"));
                }
                if self.kind == Kind::Pool {
                    match self.serving.len() < self.workers {
                        true => {
                            self.serving.push(c);
                            lines.push(Expect::Log(c, "served by worker"));
                        }
                        false => self.queue.push_back(c),
                    }
                }
                if waits_again {
                    lines.push(Expect::Trace(c, "read would block"));
                }
            }
            Act::Say(c) => match self.queue.contains(&c) {
                true => self.unanswered[c] = true,
                false => {
                    lines.push(Expect::Trace(c, "write"));
                    answered.push(c);
                    if waits_again {
                        lines.push(Expect::Trace(c, "read would block"));
                    }
                }
            },
            Act::Leave(c) => {
                lines.push(Expect::Log(c, "closed the connection"));
                if self.kind == Kind::ProcessEach {
                    // `A child process 4242 ended: exit status: 0`, from the server.
                    lines.push(Expect::Log(c, "child process"));
                }
                self.serving.retain(|&s| s != c);
                if self.kind == Kind::Pool {
                    if let Some(next) = self.queue.pop_front() {
                        self.serving.push(next);
                        lines.push(Expect::Log(next, "served by worker"));
                        if std::mem::take(&mut self.unanswered[next]) {
                            lines.push(Expect::Trace(next, "write"));
                            answered.push(next);
                        }
                    }
                }
            }
        }
        (lines, answered)
    }
}

/// The complete lines of a file written by a running program (the last may be unfinished).
fn lines_of(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let complete = text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'));
    complete.map(str::to_string).collect()
}

/// The processes of a run and the folder of their output; all killed and removed when dropped.
struct Run {
    dir: PathBuf,
    server: Option<Child>,
    clients: [Option<Child>; 3],
    stdins: [Option<ChildStdin>; 3],
}

impl Drop for Run {
    fn drop(&mut self) {
        let all = self.clients.iter_mut().chain([&mut self.server]);
        for child in all.flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Run {
    fn server_log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn client_trace(&self, c: usize) -> PathBuf {
        self.dir.join(format!("{}.err", NAMES[c]))
    }
}

/// One act and the lines written because of it: the server's (log and trace, in their order)
/// and each client's trace. Addresses are replaced by the clients' names.
#[derive(Debug)]
struct Lines {
    act: Act,
    server: Vec<String>,
    clients: [Vec<String>; 3],
}

/// Runs the script against the lesson's server, one act at a time; returns each act's lines.
fn run(ladder: &Ladder, bin_dir: &Path) -> Result<Vec<Lines>> {
    let dir =
        std::env::temp_dir().join(format!("wire-lanes-{}-{}", std::process::id(), ladder.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut run = Run {
        dir,
        server: None,
        clients: Default::default(),
        stdins: Default::default(),
    };
    let bin = |name: &str| bin_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));

    // Log and trace into one file: one open file for both, so each line lands where it was
    // written, in the order of the server's own calls.
    let log = File::create(run.server_log())?;
    let server = Command::new(bin(ladder.server))
        .args(["--addr", "127.0.0.1:0"])
        .args(ladder.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {} (built?)", ladder.server))?;
    run.server = Some(server);
    let mut first = String::new();
    wait_until("the server's first line", || {
        first = lines_of(&run.server_log())
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(!first.is_empty())
    })?;
    let listening = first
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow!("{}: first line {first:?}", ladder.server))?
        .to_string();

    let mut model = Model {
        kind: ladder.kind,
        workers: ladder.workers(),
        serving: Vec::new(),
        queue: VecDeque::new(),
        unanswered: [false; 3],
    };
    let mut addrs: [Option<String>; 3] = Default::default();
    let mut seen = (0, [0; 3]); // lines of the server and of each client taken so far
    let mut acts = Vec::new();
    let count =
        |lines: &[String], prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    for act in SCRIPT {
        let (expected, answered) = model.expect(act);
        // How many of each expected line there are before the act (none for a new client).
        let server_now = lines_of(&run.server_log());
        let before: Vec<usize> = expected
            .iter()
            .map(|e| e.prefix(&addrs).map_or(0, |p| count(&server_now, &p)))
            .collect();
        let reads_before: Vec<usize> = answered
            .iter()
            .map(|&c| count(&lines_of(&run.client_trace(c)), "read "))
            .collect();

        match act {
            Act::Connect(c) => {
                let client = Command::new(bin("lesson02-client"))
                    .args(["--addr", &listening, "--trace"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(File::create(run.client_trace(c))?)
                    .spawn()
                    .context("cannot start lesson02-client (built?)")?;
                run.clients[c] = Some(client);
                run.stdins[c] = run.clients[c].as_mut().and_then(|ch| ch.stdin.take());
                // The server logs `ADDR connected` for each client in turn: this is the next.
                let connects = addrs.iter().flatten().count() + 1;
                wait_until("the server's `connected` line", || {
                    let lines = lines_of(&run.server_log());
                    let mut connected = lines.iter().filter_map(|l| l.strip_suffix(" connected"));
                    addrs[c] = connected.nth(connects - 1).map(str::to_string);
                    Ok(addrs[c].is_some())
                })?;
            }
            Act::Say(c) => {
                let writes = count(&lines_of(&run.client_trace(c)), "write ");
                let stdin = run.stdins[c].as_mut().context("client not started")?;
                writeln!(stdin, "{}", line_of(c))?;
                stdin.flush()?;
                wait_until("the client's write", || {
                    Ok(count(&lines_of(&run.client_trace(c)), "write ") > writes)
                })?;
            }
            Act::Leave(c) => {
                drop(run.stdins[c].take());
                let child = run.clients[c].as_mut().context("client not started")?;
                wait_until("the client to end", || Ok(child.try_wait()?.is_some()))?;
            }
        }

        // The server's lines for this act, each one more than before (in whatever order the
        // act makes them), and the clients' answers.
        for (e, n) in expected.iter().zip(before) {
            let prefix = e
                .prefix(&addrs)
                .context("an expected line of a client not connected")?;
            wait_until(&format!("a line {prefix:?}"), || {
                Ok(count(&lines_of(&run.server_log()), &prefix) > n)
            })?;
        }
        for (&c, n) in answered.iter().zip(reads_before) {
            wait_until("the client's answer", || {
                Ok(count(&lines_of(&run.client_trace(c)), "read ") > n)
            })?;
        }

        // This act's lines: everything written since the last act's.
        let server = lines_of(&run.server_log());
        let clients = [0, 1, 2].map(|c| lines_of(&run.client_trace(c)));
        let named = |line: &String| name_addresses(line, &addrs);
        acts.push(Lines {
            act,
            server: server[seen.0..].iter().map(named).collect(),
            clients: [0, 1, 2].map(|c| clients[c][seen.1[c]..].iter().map(named).collect()),
        });
        seen = (server.len(), clients.map(|l| l.len()));
    }
    Ok(acts)
}

/// `line` with each client's address replaced by its name (`127.0.0.1:50312` → `A`).
fn name_addresses(line: &str, addrs: &[Option<String>; 3]) -> String {
    let mut out = line.to_string();
    for (c, addr) in addrs.iter().enumerate() {
        let Some(addr) = addr else { continue };
        let mut named = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(addr.as_str()) {
            let after = &rest[at + addr.len()..];
            // Not a longer port that starts with the same digits.
            let whole = !after.starts_with(|ch: char| ch.is_ascii_digit());
            named.push_str(&rest[..at]);
            named.push_str(if whole { NAMES[c] } else { addr });
            rest = after;
        }
        named.push_str(rest);
        out = named;
    }
    out
}

// ---- From lines to rows ------------------------------------------------------------------------

/// A server line, read back (addresses already replaced by names).
#[derive(Debug)]
enum Event {
    /// `A connected`: accepted.
    Connected(usize),
    /// `A served by worker 2`: a worker took the client from the queue.
    Taken(usize, usize),
    /// `A served by child process 4242`: the child's first line.
    Child(usize),
    Read(usize, Call),
    /// `read 0 bytes (end of stream)`.
    End(usize),
    Write(usize, Call),
    /// `read would block (WouldBlock)`.
    WouldBlock(usize, String),
    /// `wait returned: A readable`: what the readiness loop's wait returned.
    Wait(String),
}

/// The client called `name`.
fn client(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

/// A server line as an event; `None` for the lines a picture does not draw (the log's
/// `says: …`, which repeats the read, and the lines before the first client).
fn event(line: &str) -> Result<Option<Event>> {
    let unknown = || anyhow!("a server line the picture does not know: {line:?}");
    if let Some(ready) = line.strip_prefix("wait returned: ") {
        return Ok(Some(Event::Wait(ready.to_string())));
    }
    if let Some(labelled) = line.strip_prefix('[') {
        let (name, call) = labelled.split_once("] ").ok_or_else(unknown)?;
        let c = client(name).ok_or_else(unknown)?;
        if call == "read 0 bytes (end of stream)" {
            return Ok(Some(Event::End(c)));
        }
        if let Some(op) = call.strip_suffix(" would block (WouldBlock)") {
            return Ok(Some(Event::WouldBlock(c, op.to_string())));
        }
        let call = trace_call(call).ok_or_else(unknown)?;
        return Ok(Some(match call.write {
            true => Event::Write(c, call),
            false => Event::Read(c, call),
        }));
    }
    if line.starts_with("listening on ") || line.contains(" worker thread") {
        return Ok(None);
    }
    let (name, what) = line.split_once(' ').ok_or_else(unknown)?;
    let c = client(name).ok_or_else(unknown)?;
    if what == "connected" {
        return Ok(Some(Event::Connected(c)));
    }
    if let Some(worker) = what.strip_prefix("served by worker ") {
        return Ok(Some(Event::Taken(c, worker.parse()?)));
    }
    if what.starts_with("served by child process ") {
        return Ok(Some(Event::Child(c)));
    }
    // The child's end, which its lane shows: `child process 4242 ended: exit status: 0`.
    let ended = what.starts_with("child process ") && what.ends_with(": exit status: 0");
    if what.starts_with("says: ") || what == "closed the connection" || ended {
        return Ok(None);
    }
    Err(unknown())
}

/// One row of a picture: a box on a lane, or an arrow from one lane's box to another's.
#[derive(Debug)]
struct Row {
    /// The caller's box, then the one at the arrow's end.
    boxes: Vec<CallBox>,
    arrow: Option<Arrow>,
    /// Whose row it is (its colour); `None` for the server's own (grey).
    client: Option<usize>,
}

/// A call on a lane, as two lines of text.
#[derive(Debug)]
struct CallBox {
    lane: usize,
    text: [String; 2],
    /// The call waited (blocked) before it returned: drawn dashed.
    waited: bool,
}

#[derive(Debug)]
struct Arrow {
    from: usize,
    to: usize,
    label: String,
    /// The end of a connection: a FIN, not bytes.
    dashed: bool,
}

/// A stretch of a lane where something waits, from one row to another.
#[derive(Debug)]
struct Span {
    lane: usize,
    from: usize,
    to: usize,
    client: Option<usize>,
    what: SpanKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanKind {
    /// A thread waits in a blocking `read()`.
    Blocked,
    /// A client waits for its answer.
    Answer,
    /// An accepted client waits in the pool's queue.
    Queue,
    /// A task waits (its read would block); its thread runs the others.
    Task,
    /// A socket is tried again and again (`--busy`), its read failing with `WouldBlock`.
    Spin,
}

/// A picture's content: its lanes (the three clients first), rows and waits.
#[derive(Debug)]
struct Picture {
    lanes: Vec<String>,
    rows: Vec<Row>,
    spans: Vec<Span>,
    /// Per lane, the rows its lifeline runs from and to (a thread per client lives only while
    /// its client is connected).
    life: Vec<(usize, usize)>,
}

/// The lane of each client's side: 0, 1, 2. The server's lanes follow.
const SERVER: usize = 3;

/// Turns the acts' lines into rows.
fn rows(ladder: &Ladder, acts: &[Lines]) -> Result<Picture> {
    let mut b = Builder::new(ladder);
    for lines in acts {
        b.act(lines)?;
    }
    // The lanes that live all along (all the server's but lesson 09's threads and processes),
    // from the first row to the last.
    let end = b.rows.len().saturating_sub(1);
    for span in &mut b.life {
        if span.0 == usize::MAX {
            *span = (0, end);
        }
    }
    Ok(Picture {
        lanes: b.lanes,
        rows: b.rows,
        spans: b.spans,
        life: b.life,
    })
}

/// The rows so far, and what the next ones need to know: who serves whom, who waits since when.
struct Builder {
    kind: Kind,
    lanes: Vec<String>,
    rows: Vec<Row>,
    spans: Vec<Span>,
    life: Vec<(usize, usize)>,
    /// Per lane, its last row with a box.
    last: Vec<Option<usize>>,
    /// The lane that serves each client now (where its bytes go).
    owner: [usize; 3],
    /// Each worker number's lane, in the order the workers first took a client: which idle
    /// worker takes the first client is up to the scheduler, so the log's numbers could
    /// differ from run to run, and the picture must not.
    worker_lane: HashMap<usize, usize>,
    /// Per client, the row since which it waits: in the pool's queue; for its answer; as a
    /// task whose read would block (or, `--busy`, a socket tried again and again).
    queued: [Option<usize>; 3],
    asked: [Option<usize>; 3],
    would_block: [Option<usize>; 3],
}

impl Builder {
    fn new(ladder: &Ladder) -> Builder {
        let mut lanes: Vec<String> = NAMES.iter().map(|n| format!("client {n}")).collect();
        match ladder.kind {
            Kind::ThreadEach => {
                lanes.push("main thread".into());
                lanes.extend(NAMES.iter().map(|n| format!("{n}'s thread")));
            }
            Kind::ProcessEach => {
                lanes.push("main thread".into());
                lanes.extend(NAMES.iter().map(|n| format!("{n}'s process")));
            }
            Kind::Pool => {
                lanes.push("connection loop".into());
                lanes.extend((1..=ladder.workers()).map(|w| format!("worker {w}")));
            }
            Kind::Readiness | Kind::Busy => lanes.push("the one thread (loop)".into()),
            Kind::Tasks => lanes.push("the one thread (tasks)".into()),
        }
        let n = lanes.len();
        Builder {
            kind: ladder.kind,
            lanes,
            rows: Vec::new(),
            spans: Vec::new(),
            life: vec![(usize::MAX, 0); n],
            last: vec![None; n],
            owner: [SERVER; 3],
            worker_lane: HashMap::new(),
            queued: [None; 3],
            asked: [None; 3],
            would_block: [None; 3],
        }
    }

    /// Threads that block in `read()` (lessons 09 and 10), not one thread for all.
    fn blocking(&self) -> bool {
        matches!(self.kind, Kind::ThreadEach | Kind::ProcessEach | Kind::Pool)
    }

    /// Lesson 09: a thread (or a child process) per client, its lane living as long as it.
    fn each(&self) -> bool {
        matches!(self.kind, Kind::ThreadEach | Kind::ProcessEach)
    }

    fn push(&mut self, row: Row) {
        for b in &row.boxes {
            self.last[b.lane] = Some(self.rows.len());
        }
        self.rows.push(row);
    }

    fn span(&mut self, lane: usize, from: usize, client: usize, what: SpanKind) {
        let to = self.rows.len();
        let client = Some(client);
        self.spans.push(Span {
            lane,
            from,
            to,
            client,
            what,
        });
    }

    /// One act's rows: the client's call, with an arrow to the lane that serves it, then the
    /// server's calls in the order it made them; an answer's arrow ends at the client's read.
    fn act(&mut self, lines: &Lines) -> Result<()> {
        let mut client_calls: [VecDeque<Call>; 3] = Default::default();
        for (c, calls) in client_calls.iter_mut().enumerate() {
            for line in &lines.clients[c] {
                let call = trace_call(line).ok_or_else(|| {
                    anyhow!(
                        "client {}: a line the picture does not know: {line:?}",
                        NAMES[c]
                    )
                })?;
                calls.push_back(call);
            }
        }
        let mut events = Vec::new();
        for line in &lines.server {
            events.extend(event(line)?);
        }

        let (c, text, label, dashed) = match lines.act {
            Act::Connect(c) => {
                self.life[c].0 = self.rows.len();
                let text = ["connect()", "三次握手"].map(String::from);
                (c, text, String::new(), false)
            }
            Act::Say(c) => {
                self.asked[c] = Some(self.rows.len());
                let call = client_calls[c].pop_front().filter(|call| call.write);
                let call = call.ok_or_else(|| anyhow!("client {} did not write", NAMES[c]))?;
                let text = [format!("write {} bytes", call.n), String::new()];
                (c, text, call.preview, false)
            }
            Act::Leave(c) => {
                self.life[c].1 = self.rows.len();
                (
                    c,
                    ["close()", "FIN: 四次挥手"].map(String::from),
                    String::new(),
                    true,
                )
            }
        };
        let mut act = Some(Row {
            boxes: vec![CallBox {
                lane: c,
                text,
                waited: false,
            }],
            arrow: Some(Arrow {
                from: c,
                to: self.owner[c],
                label,
                dashed,
            }),
            client: Some(c),
        });

        // The pool's clients that a worker takes in this act (the others wait in the queue).
        let taken: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Event::Taken(c, _) => Some(*c),
                _ => None,
            })
            .collect();
        for ev in events {
            let (call, who) = self.call_box(&ev, lines.act, &taken)?;
            // The act's arrow ends at the first box it causes, on the lane it points to.
            let mut row = match act.take() {
                Some(mut act)
                    if !matches!(ev, Event::Write(..))
                        && act.arrow.as_ref().is_some_and(|a| a.to == call.lane) =>
                {
                    act.boxes.push(call);
                    act
                }
                other => {
                    if let Some(act) = other {
                        self.push(act);
                    }
                    Row {
                        boxes: vec![call],
                        arrow: None,
                        client: who,
                    }
                }
            };
            let waited = row.boxes.last().is_some_and(|b| b.waited);
            self.follow(&ev, &taken, waited);
            if let Event::Write(c, call) = &ev {
                // The answer's arrow, ending at the client's read if it read in this act.
                row.arrow = Some(Arrow {
                    from: self.owner[*c],
                    to: *c,
                    label: call.preview.clone(),
                    dashed: false,
                });
                if let Some(read) = client_calls[*c].pop_front() {
                    ensure!(
                        !read.write,
                        "client {}: a write where its answer was",
                        NAMES[*c]
                    );
                    row.boxes.push(CallBox {
                        lane: *c,
                        text: [format!("read {} bytes", read.n), read.short],
                        // A blocking read, right after the client's write.
                        waited: true,
                    });
                    if let Some(from) = self.asked[*c].take() {
                        self.span(*c, from, *c, SpanKind::Answer);
                    }
                }
            }
            self.push(row);
        }
        // An act that made the server do nothing yet (a line from a client in the queue).
        if let Some(act) = act {
            self.push(act);
        }
        for (c, calls) in client_calls.iter().enumerate() {
            ensure!(
                calls.is_empty(),
                "client {}: calls the picture did not place: {calls:?}",
                NAMES[c]
            );
        }
        Ok(())
    }

    /// The box a server event draws, and whose it is (its colour).
    fn call_box(
        &mut self,
        ev: &Event,
        act: Act,
        taken: &[usize],
    ) -> Result<(CallBox, Option<usize>)> {
        let kind = self.kind;
        // Which calls waited before they returned: a blocking read that its client's act
        // ended (09, 10), and the readiness loop's wait.
        let waited = match ev {
            Event::Read(c, _) | Event::End(c) => {
                self.blocking() && matches!(act, Act::Say(a) | Act::Leave(a) if a == *c)
            }
            Event::Wait(_) => true,
            _ => false,
        };
        let (lane, text, who) = match ev {
            Event::Connected(c) => {
                let then = match kind {
                    Kind::ThreadEach => format!("spawns {}'s thread", NAMES[*c]),
                    Kind::ProcessEach => "starts a child".into(),
                    Kind::Pool if taken.contains(c) => "submit: into the queue".into(),
                    Kind::Pool => "queued: no worker free".into(),
                    Kind::Tasks => format!("spawns task {}", NAMES[*c]),
                    Kind::Readiness | Kind::Busy => "accept(): ready".into(),
                };
                (SERVER, [format!("{} connected", NAMES[*c]), then], Some(*c))
            }
            Event::Child(c) => {
                let text = [
                    "child starts".into(),
                    format!("fd 0, 1: {}'s socket", NAMES[*c]),
                ];
                (SERVER + 1 + c, text, Some(*c))
            }
            Event::Taken(c, w) => {
                let next = SERVER + 1 + self.worker_lane.len();
                let lane = *self.worker_lane.entry(*w).or_insert(next);
                ensure!(lane < self.lanes.len(), "more workers than --workers");
                (
                    lane,
                    [format!("takes {}", NAMES[*c]), "from the queue".into()],
                    Some(*c),
                )
            }
            Event::Read(c, call) => {
                let mark = match () {
                    _ if !self.blocking() => "ready",
                    _ if waited => "waited in read()",
                    _ => "there already: no wait",
                };
                let what = who_did(kind, *c, &format!("read {} bytes", call.n));
                (self.owner[*c], [what, mark.into()], Some(*c))
            }
            Event::End(c) => {
                let mark = if waited {
                    "waited in read()"
                } else {
                    "ready: end of stream"
                };
                let what = who_did(kind, *c, "read 0 bytes (end)");
                (self.owner[*c], [what, mark.into()], Some(*c))
            }
            Event::Write(c, call) => {
                let mark = if self.blocking() { "" } else { "ready" };
                let what = who_did(kind, *c, &format!("write {} bytes", call.n));
                (self.owner[*c], [what, mark.into()], Some(*c))
            }
            Event::WouldBlock(c, op) => {
                let mark = match kind {
                    Kind::Tasks => format!("task {} waits", NAMES[*c]),
                    _ => "nothing yet: tries the next".into(),
                };
                let what = who_did(kind, *c, &format!("{op}: WouldBlock"));
                (self.owner[*c], [what, mark], Some(*c))
            }
            Event::Wait(ready) => {
                let text = [
                    "wait() returned:".into(),
                    ready.replace("the listener", "listener"),
                ];
                (SERVER, text, None)
            }
        };
        Ok((CallBox { lane, text, waited }, who))
    }

    /// After a server event at the next row: who serves whom from now on, and what waited
    /// until it.
    fn follow(&mut self, ev: &Event, taken: &[usize], waited: bool) {
        let at = self.rows.len();
        match ev {
            Event::Connected(c) if self.each() => {
                self.owner[*c] = SERVER + 1 + c;
                self.life[SERVER + 1 + c].0 = at;
            }
            Event::Connected(c) if self.kind == Kind::Pool && !taken.contains(c) => {
                self.queued[*c] = Some(at);
            }
            Event::Taken(c, w) => {
                self.owner[*c] = self.worker_lane[w];
                if let Some(from) = self.queued[*c].take() {
                    self.span(SERVER, from, *c, SpanKind::Queue);
                }
            }
            Event::Read(c, _) | Event::End(c) => {
                let lane = self.owner[*c];
                if waited {
                    // Blocked in read() since the thread's last call (or its start).
                    let from = self.last[lane].unwrap_or(self.life[lane].0.min(at));
                    self.span(lane, from, *c, SpanKind::Blocked);
                }
                if let Some(from) = self.would_block[*c].take() {
                    let what = match self.kind {
                        Kind::Busy => SpanKind::Spin,
                        _ => SpanKind::Task,
                    };
                    self.span(SERVER, from, *c, what);
                }
                if matches!(ev, Event::End(_)) && self.each() {
                    self.life[lane].1 = at;
                }
            }
            Event::WouldBlock(c, _) => self.would_block[*c] = Some(at),
            _ => {}
        }
    }
}

/// A call's text in its box: on a lane that serves several clients, whose it was.
fn who_did(kind: Kind, c: usize, what: &str) -> String {
    match kind {
        Kind::Tasks => format!("task {}: {what}", NAMES[c]),
        Kind::Readiness | Kind::Busy => format!("{}: {what}", NAMES[c]),
        Kind::ThreadEach | Kind::ProcessEach | Kind::Pool => what.to_string(),
    }
}

/// Runs the picture's script with the binaries in `bin_dir` and draws it.
pub fn draw(ladder: &Ladder, bin_dir: &Path) -> Result<String> {
    let acts = run(ladder, bin_dir)?;
    let picture = rows(ladder, &acts)?;
    Ok(svg(ladder, &picture))
}

// ---- Drawing -----------------------------------------------------------------------------------

/// The clients' colours (the server's own rows are grey).
const CLIENT_COLOURS: [&str; 3] = ["#1f77b4", "#2ca02c", "#9467bd"];
const GREY: &str = "#777";

fn colour(client: Option<usize>) -> &'static str {
    client.map_or(GREY, |c| CLIENT_COLOURS[c])
}

/// What the dashes mean, under the picture.
fn legend(kind: Kind) -> [&'static str; 2] {
    match kind {
        Kind::ThreadEach => [
            "dashed on a client: it waits for its answer; a dashed box: a call that waited (blocked) before it returned",
            "dashed on a thread: blocked in read(), waiting for its own client; the thread ends when its client leaves",
        ],
        Kind::ProcessEach => [
            "dashed on a client: it waits for its answer; a dashed box: a call that waited (blocked) before it returned",
            "dashed on a process: blocked in read() on its stdin, the socket; the process ends when its client leaves",
        ],
        Kind::Pool => [
            "dashed on a client: it waits for its answer; a dashed box: a call that waited (blocked) before it returned",
            "dashed on a worker: blocked in read(); beside the connection loop: a client in the queue, waiting for a worker",
        ],
        Kind::Readiness => [
            "dashed on a client: it waits for its answer; a dashed box: a call that waited (blocked) before it returned",
            "only wait() (select) waits; every accept, read and write after it is ready, and returns at once",
        ],
        Kind::Busy => [
            "dashed on a client: it waits for its answer; no call of the server ever waits",
            "zigzag: a socket tried again and again, every pass (WouldBlock, shown once): the loop never sleeps",
        ],
        Kind::Tasks => [
            "dashed on a client: it waits for its answer",
            "dashed beside the thread: a task waiting (its read would block); the thread runs the other tasks meanwhile",
        ],
    }
}

fn svg(ladder: &Ladder, p: &Picture) -> String {
    const W: usize = 1000;
    const CLIENT_X: [usize; 3] = [58, 164, 270];
    const CLIENT_BOX: usize = 100;
    const SERVER_FROM: usize = 346;
    const TOP: usize = 84;
    const ROW: usize = 44;
    const BOX_H: usize = 38;
    let servers = p.lanes.len() - SERVER;
    let spacing = (W - 10 - SERVER_FROM) / servers;
    let server_box = (spacing - 12).min(300);
    let x = |lane: usize| match lane {
        l if l < SERVER => CLIENT_X[l],
        l => SERVER_FROM + spacing * (l - SERVER) + spacing / 2,
    };
    let box_w = |lane: usize| {
        if lane < SERVER {
            CLIENT_BOX
        } else {
            server_box
        }
    };
    let row_y = |r: usize| TOP + r * ROW;
    let mid = |r: usize| row_y(r) + 2 + BOX_H / 2;
    // A task's (or a tried socket's) column beside the one thread.
    let beside = |c: usize| x(SERVER) + server_box / 2 + 18 + 14 * c;
    let legend = legend(ladder.kind);
    let bottom = row_y(p.rows.len()) + 6;
    let h = bottom + 14 + legend.len() * 20;
    let title = ladder.title();

    let mut desc = format!("{title}\n");
    for row in &p.rows {
        let boxes: Vec<String> = row
            .boxes
            .iter()
            .map(|b| {
                let [one, two] = &b.text;
                let t = if two.is_empty() {
                    one.clone()
                } else {
                    format!("{one} / {two}")
                };
                let waited = if b.waited { " (waited)" } else { "" };
                format!("{}: {t}{waited}", p.lanes[b.lane])
            })
            .collect();
        let arrow = row.arrow.as_ref().map(|a| {
            let label = if a.label.is_empty() {
                String::new()
            } else {
                format!(" {}", a.label)
            };
            format!(" --{label}--> {}", p.lanes[a.to])
        });
        let _ = writeln!(desc, "{}{}", boxes.join(" | "), arrow.unwrap_or_default());
    }
    for line in legend {
        let _ = writeln!(desc, "{line}");
    }

    let mut s = svg_start((W, h), 12, &title, &desc);
    // The server's side, behind its lanes.
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="36" width="{}" height="{}" rx="6" fill="#f4f4f4"/>"##,
        SERVER_FROM - 4,
        W - SERVER_FROM - 2,
        bottom - 36
    );
    text(
        &mut s,
        ((SERVER_FROM + W) / 2, 50),
        "middle",
        "",
        ladder.server,
    );
    for (lane, name) in p.lanes.iter().enumerate() {
        let style = match lane < SERVER {
            true => format!(r#" fill="{}"{BOLD}"#, CLIENT_COLOURS[lane]),
            false => BOLD.to_string(),
        };
        text(&mut s, (x(lane), 70), "middle", &style, name);
        let (from, to) = p.life[lane];
        let stroke = if ladder.kind == Kind::Busy && lane == SERVER {
            RED
        } else {
            "#999"
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{stroke}" stroke-width="2"/>"#,
            if from == 0 { TOP - 6 } else { mid(from) },
            if to + 1 >= p.rows.len() {
                bottom
            } else {
                mid(to)
            },
            x = x(lane),
        );
    }
    // The columns beside the one thread, named after their clients.
    if matches!(ladder.kind, Kind::Tasks | Kind::Busy) {
        let what = if ladder.kind == Kind::Tasks {
            "waits"
        } else {
            "tried"
        };
        text(&mut s, (beside(1), 56), "middle", "", what);
        for c in 0..3 {
            let style = format!(r#" fill="{}"{BOLD}"#, CLIENT_COLOURS[c]);
            text(&mut s, (beside(c), 70), "middle", &style, NAMES[c]);
        }
    }

    // Waiting: dashes over a lifeline, or in a column beside the one thread.
    for span in &p.spans {
        let col = colour(span.client);
        let (y1, y2) = (mid(span.from), mid(span.to));
        let column = beside(span.client.unwrap_or(0));
        match span.what {
            SpanKind::Spin => {
                // A zigzag: tried, WouldBlock, tried again, …
                let mut points = String::new();
                for (i, y) in (y1..=y2).step_by(6).enumerate() {
                    let xz = if i % 2 == 0 { column - 4 } else { column + 4 };
                    let _ = write!(points, "{xz},{y} ");
                }
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="2"/>"#,
                    points.trim_end()
                );
            }
            what => {
                let x1 = match what {
                    SpanKind::Task => column,
                    SpanKind::Queue => x(span.lane) + 8,
                    _ => x(span.lane),
                };
                let _ = writeln!(
                    s,
                    r#"<line x1="{x1}" y1="{y1}" x2="{x1}" y2="{y2}" stroke="{col}" stroke-width="4" stroke-dasharray="6 4"/>"#
                );
            }
        }
    }

    for (r, row) in p.rows.iter().enumerate() {
        let y = row_y(r);
        let col = colour(row.client);
        if let Some(a) = &row.arrow {
            let has_box = |lane| row.boxes.iter().any(|b| b.lane == lane);
            let edge = |lane: usize, toward: usize| {
                let half = if has_box(lane) { box_w(lane) / 2 } else { 0 };
                if toward > x(lane) {
                    x(lane) + half
                } else {
                    x(lane) - half
                }
            };
            let (x1, x2) = (edge(a.from, x(a.to)), edge(a.to, x(a.from)));
            let ya = mid(r) + 2;
            let (tip, back) = if x2 > x1 {
                (x2 - 1, x2 - 12)
            } else {
                (x2 + 1, x2 + 12)
            };
            let dash = if a.dashed {
                r#" stroke-dasharray="8 5""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<line x1="{x1}" y1="{ya}" x2="{back}" y2="{ya}" stroke="{col}" stroke-width="2.5"{dash}/>"#
            );
            let _ = writeln!(
                s,
                r#"<polygon points="{tip},{ya} {back},{} {back},{}" fill="{col}"/>"#,
                ya - 5,
                ya + 5
            );
            // The bytes over the arrow's middle, with a white halo over the lifelines it crosses.
            let style =
                format!(r#" fill="{col}" stroke="white" stroke-width="4" paint-order="stroke""#);
            text(&mut s, ((x1 + x2) / 2, ya - 6), "middle", &style, &a.label);
        }
        for b in &row.boxes {
            let (w, cx) = (box_w(b.lane), x(b.lane));
            let border = match b.waited {
                true => r#" stroke-width="2" stroke-dasharray="5 3""#,
                false => r#" stroke-width="1""#,
            };
            for (fill, opacity) in [("white", 1.0), (col, 0.15)] {
                let _ = writeln!(
                    s,
                    r#"<rect x="{}" y="{}" width="{w}" height="{BOX_H}" rx="4" fill="{fill}" fill-opacity="{opacity}" stroke="{col}"{border}/>"#,
                    cx - w / 2,
                    y + 2
                );
            }
            let [one, two] = &b.text;
            text(
                &mut s,
                (cx, y + if two.is_empty() { 25 } else { 17 }),
                "middle",
                "",
                one,
            );
            if !two.is_empty() {
                let style = format!(r#" fill="{col}"{BOLD}"#);
                text(&mut s, (cx, y + 33), "middle", &style, two);
            }
        }
    }
    for (i, line) in legend.iter().enumerate() {
        text(&mut s, (16, bottom + 24 + i * 20), "start", "", line);
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port that starts with another client's port is not taken for it.
    #[test]
    fn addresses_become_names_whole_ports_only() {
        let addrs = [
            Some("127.0.0.1:4000".to_string()),
            Some("127.0.0.1:40001".to_string()),
            None,
        ];
        assert_eq!(
            name_addresses("[127.0.0.1:40001] read 5 bytes: \"B: hi\"", &addrs),
            "[B] read 5 bytes: \"B: hi\""
        );
        assert_eq!(
            name_addresses(
                "wait returned: 127.0.0.1:4000 readable, 127.0.0.1:40001 readable",
                &addrs
            ),
            "wait returned: A readable, B readable"
        );
    }

    /// Two workers, three clients: C waits in the queue, its line unanswered, until A leaves;
    /// then a worker takes C and answers the line it sent while it waited.
    #[test]
    fn the_pool_model_expects_c_served_when_a_leaves() {
        let mut model = Model {
            kind: Kind::Pool,
            workers: 2,
            serving: Vec::new(),
            queue: VecDeque::new(),
            unanswered: [false; 3],
        };
        let shown = |(lines, answered): (Vec<Expect>, Vec<usize>)| {
            let lines: Vec<String> = lines.iter().map(|e| format!("{e:?}")).collect();
            (lines.join(", "), answered)
        };
        for act in &SCRIPT[..2] {
            model.expect(*act);
        }
        assert_eq!(
            shown(model.expect(Act::Connect(2))),
            ("Log(2, \"connected\")".into(), vec![])
        );
        model.expect(Act::Say(0));
        model.expect(Act::Say(1));
        assert_eq!(shown(model.expect(Act::Say(2))), (String::new(), vec![]));
        assert_eq!(
            shown(model.expect(Act::Leave(0))),
            (
                "Log(0, \"closed the connection\"), Log(2, \"served by worker\"), Trace(2, \"write\")"
                    .into(),
                vec![2]
            )
        );
    }

    /// The server's lines the pictures read, and one they do not know (an error, so that a
    /// change in a lesson's log shows up here rather than as a wrong picture).
    #[test]
    fn server_lines_are_read_back_into_events() {
        let kinds: Vec<String> = [
            "listening on 127.0.0.1:8080",
            "2 worker threads started, and a queue with room for 16 clients",
            "A connected",
            "A served by worker 2",
            "wait returned: the listener readable",
            "[A] read 5 bytes: \"A: hi\"",
            "A says: \"A: hi\"",
            "[A] write 8 bytes: \"A: hi123\"",
            "[A] read would block (WouldBlock)",
            "[A] read 0 bytes (end of stream)",
            "A closed the connection",
        ]
        .iter()
        .map(|line| match event(line).unwrap() {
            None => "-".to_string(),
            Some(ev) => format!("{ev:?}").split('(').next().unwrap().to_string(),
        })
        .collect();
        assert_eq!(
            kinds,
            [
                "-",
                "-",
                "Connected",
                "Taken",
                "Wait",
                "Read",
                "-",
                "Write",
                "WouldBlock",
                "End",
                "-"
            ]
        );
        assert!(event("A dropped: Connection reset by peer (os error 104)").is_err());
    }
}
