//! Pictures of the wire, drawn from real runs: a lesson's server and client run with
//! `--trace`, the two traces (the lines a learner sees on stderr) are put in one order, and the
//! result is drawn as SVG (client and server as two columns, a write as an arrow, a read as a
//! box naming the bytes it returned). `main.rs` writes `lessons/NN_name/wire.svg`;
//! `tests/wire.rs` includes this file, draws each picture again from a fresh run and fails if
//! the committed file differs, so a picture cannot go on showing what a lesson no longer does.
//!
//! The event list is also written into the SVG's `<desc>` as text, one line per read or write.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};

/// One lesson's scenario: what runs, what the client is given, where the picture goes.
#[derive(Debug)]
pub struct Scenario {
    /// The lesson number (`03`): the binaries are `lesson03-server` and `lesson03-client`.
    pub lesson: &'static str,
    pub client_args: &'static [&'static str],
    /// Lines written to the client's stdin.
    pub input: &'static [&'static str],
    /// UDP: the lesson prints its own `send_to`/`recv_from` trace lines (it has no `Traced`
    /// stream); they are read from stderr, and each receive returns one whole datagram.
    pub datagrams: bool,
    /// The picture's path from the repository root.
    pub svg: &'static str,
}

/// A long answer (3,893 bytes, more than one 1,024-byte read), then a short one.
const SEQ_THEN_ECHO: &[&str] = &["seq -s ' ' 1000", "echo hi"];

/// The pictures in the lessons' READMEs.
pub const SCENARIOS: [Scenario; 3] = [
    Scenario {
        lesson: "03",
        client_args: &[],
        input: SEQ_THEN_ECHO,
        datagrams: false,
        svg: "lessons/03_sticky/wire.svg",
    },
    Scenario {
        lesson: "04",
        client_args: &[],
        input: SEQ_THEN_ECHO,
        datagrams: false,
        svg: "lessons/04_header/wire.svg",
    },
    Scenario {
        lesson: "06",
        client_args: &["--demo", "three-sends"],
        input: &[],
        datagrams: true,
        svg: "lessons/06_udp/wire.svg",
    },
];

impl Scenario {
    /// The picture's title: the client's command line and input, as a learner would type them.
    fn title(&self) -> String {
        let mut title = format!("lesson{}-client", self.lesson);
        for arg in self.client_args {
            title = format!("{title} {arg}");
        }
        if !self.input.is_empty() {
            title = format!("{title}: {}", self.input.join(", then "));
        }
        title
    }
}

/// The scenario of lesson `lesson` (`03`, `04`, `06`).
pub fn scenario(lesson: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.lesson == lesson)
}

/// Runs the scenario with the binaries in `bin_dir` and draws its picture.
pub fn draw(sc: &Scenario, bin_dir: &Path) -> Result<String> {
    let [client, server] = run(sc, bin_dir)?;
    let (rows, unread) = merge(&client, &server, sc.datagrams)?;
    Ok(svg(sc, &rows, &unread))
}

/// The longest a run may take before it fails instead of hanging (a safety net, not a wait).
pub(crate) const SAFETY: Duration = Duration::from_secs(20);

/// How many columns a write's preview takes on its arrow, and a read's in its box.
const WRITE_COLUMNS: usize = 40;
const READ_COLUMNS: usize = 24;

/// One read or write (or send/receive) of one side, from its trace.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The name the trace uses: `read`, `write`, `send_to`, `recv_from`, …
    pub(crate) op: String,
    pub(crate) write: bool,
    pub(crate) n: usize,
    /// A short quoted preview of the bytes, for a write's arrow.
    pub(crate) preview: String,
    /// A shorter one, for a read's box.
    pub(crate) short: String,
}

/// A lesson binary, its stdout and stderr (where `--trace` writes) going to `ROLE.out` and
/// `ROLE.err` in one directory, where they are read while it runs. Killed when dropped.
struct Proc {
    child: Child,
    files: PathBuf,
}

impl Proc {
    fn start(files: PathBuf, bin: &Path, args: &[&str], stdin: Stdio) -> Result<Proc> {
        let file = |ext| std::fs::File::create(files.with_extension(ext));
        let child = Command::new(bin)
            .args(args)
            .stdin(stdin)
            .stdout(file("out")?)
            .stderr(file("err")?)
            .spawn()
            .with_context(|| format!("cannot start {} (built?)", bin.display()))?;
        Ok(Proc { child, files })
    }

    /// What the process has written to `ROLE.ext` so far (nothing if the file is not there yet).
    fn read(&self, ext: &str) -> String {
        let bytes = std::fs::read(self.files.with_extension(ext)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every few milliseconds until it holds; fails after [`SAFETY`] with `what`.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while !done()? {
        ensure!(start.elapsed() < SAFETY, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Runs server and client with their traces on; returns `[client calls, server calls]`.
fn run(sc: &Scenario, bin_dir: &Path) -> Result<[Vec<Call>; 2]> {
    let dir =
        std::env::temp_dir().join(format!("wire-picture-{}-{}", std::process::id(), sc.lesson));
    let _ = std::fs::remove_dir_all(&dir); // the binaries append to their trace files
    std::fs::create_dir_all(&dir)?;
    let start = |role: &str, args: &[&str], stdin| {
        let bin = format!("lesson{}-{role}{}", sc.lesson, std::env::consts::EXE_SUFFIX);
        let mut all = vec!["--trace"];
        all.extend_from_slice(args);
        Proc::start(dir.join(role), &bin_dir.join(bin), &all, stdin)
    };

    let server = start("server", &["--addr", "127.0.0.1:0"], Stdio::null())?;
    let mut out = String::new();
    wait_until("the server's first line", || {
        out = server.read("out");
        Ok(out.contains('\n'))
    })?;
    let first = out.lines().next().unwrap_or_default();
    let addr = first
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow!("lesson{}-server: first line {first:?}", sc.lesson))?;

    let mut args = vec!["--addr", addr];
    args.extend_from_slice(sc.client_args);
    let mut client = start("client", &args, Stdio::piped())?;
    let mut stdin = client.child.stdin.take().expect("piped");
    for line in sc.input {
        writeln!(stdin, "{line}")?;
    }

    if !sc.datagrams {
        // Before the client ends, let the server finish answering the last command: a client
        // that leaves with unread bytes resets the connection, and a write after that fails,
        // depending on timing. The server logs `ran "CMD": N bytes` and then writes them, so
        // wait for a write of N bytes after its last read.
        let last = sc.input.last().copied().unwrap_or_default();
        wait_until("the server's last answer", || {
            let log = server.read("out");
            let Some(n) = log.lines().find_map(|l| answer_size(l, last)) else {
                return Ok(false);
            };
            let calls = trace_calls(&server.read("err"));
            let after_last_read = calls.iter().rev().take_while(|c| c.write);
            Ok(after_last_read.into_iter().any(|c| c.n == n))
        })?;
    }
    drop(stdin);
    wait_until("the client to finish", || {
        Ok(client.child.try_wait()?.is_some())
    })?;

    let client_calls = trace_calls(&client.read("err"));
    let sent = client_calls.iter().filter(|c| c.write).count();
    let mut server_calls = Vec::new();
    if sc.datagrams {
        // The server's lines for the last datagram may not be written yet.
        wait_until("the server's trace", || {
            server_calls = trace_calls(&server.read("err"));
            Ok(server_calls.iter().filter(|c| c.write).count() >= sent)
        })?;
    } else {
        server_calls = trace_calls(&server.read("err"));
    }
    let calls = [client_calls, server_calls];
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(calls)
}

/// N from a server's log line `… ran "CMD": N bytes …` about command `cmd`.
fn answer_size(line: &str, cmd: &str) -> Option<usize> {
    // Loosely: however the log quotes the command, N is the number before " bytes" after it.
    let rest = &line[line.find(" ran ")?..];
    let rest = &rest[rest.find(cmd)? + cmd.len()..];
    let (n, _) = rest.split_once(" bytes")?;
    n.rsplit(' ').next()?.parse().ok()
}

/// The reads and writes that moved bytes, from a program's stderr under `--trace`. Streams
/// (`Traced`, a server's lines after its `[peer] ` label):
///
/// ```text
/// write 15 bytes: "seq -s ' ' 1000"
/// [127.0.0.1:50312] read 4 bytes: "5\x0f\x00\x00" = hex 35 0f 00 00
/// ```
///
/// and lesson 06's own lines for datagrams: `send_to 3 bytes to 127.0.0.1:8080: "123"`,
/// `recv_from 6 bytes from 127.0.0.1:8080: "123123"` (`send`/`recv` when connected). End of
/// stream (`read 0 bytes`), failed calls and other lines (lesson 04's `header: …`) are left
/// out: how a connection ends is not what these show.
fn trace_calls(stderr: &str) -> Vec<Call> {
    // Complete lines only: the last one may still be being written.
    let lines = stderr
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'));
    lines.filter_map(trace_call).collect()
}

pub(crate) fn trace_call(line: &str) -> Option<Call> {
    let line = match line.strip_prefix('[') {
        Some(labelled) => labelled.split_once("] ")?.1,
        None => line,
    };
    let (op, rest) = line.split_once(' ')?;
    let (write, datagram) = match op {
        "write" => (true, false),
        "read" => (false, false),
        "send_to" | "send" => (true, true),
        "recv_from" | "recv" => (false, true),
        _ => return None,
    };
    let (n, rest) = rest.split_once(" bytes")?;
    let n: usize = n.parse().ok()?;
    // The preview starts at the first `: "`: an address (`127.0.0.1:8080: `) has no quote.
    let (_, shown) = rest.split_once(": \"")?;
    let preview = Preview::parse(shown)?;
    let (preview, short) = match (datagram, &preview.hex) {
        // A datagram's preview as the lesson printed it, on its arrow and in its box.
        (true, _) => (preview.fit(usize::MAX), preview.fit(usize::MAX)),
        // A length header is clearer in hex, as the trace shows it: `35 0f 00 00`.
        (false, Some(hex)) => (
            format!("{} = {hex}", preview.fit(WRITE_COLUMNS)),
            hex.clone(),
        ),
        (false, None) => (preview.fit(WRITE_COLUMNS), preview.fit(READ_COLUMNS)),
    };
    (n > 0).then(|| Call {
        op: op.to_string(),
        write,
        n,
        preview,
        short,
    })
}

/// A trace line's preview, taken apart: the escaped characters inside the quotes, one string
/// each (`a`, `\n`, `\x0f`, `你`), whether the trace cut it (`"…"…`), and its `hex …` if any.
struct Preview {
    units: Vec<String>,
    cut: bool,
    hex: Option<String>,
}

impl Preview {
    /// From the text after the opening quote: `5\x0f\x00\x00" = hex 35 0f 00 00`.
    fn parse(text: &str) -> Option<Preview> {
        let mut units = Vec::new();
        let mut chars = text.chars();
        loop {
            let c = chars.next()?;
            let unit = match c {
                '"' => break,
                '\\' => {
                    // `\n`, `\"`, `\\`; `\xNN`, `\uNNNN`, `\UNNNNNNNN`: console's escapes.
                    let kind = chars.next()?;
                    let digits = match kind {
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        _ => 0,
                    };
                    let mut unit = format!("\\{kind}");
                    for _ in 0..digits {
                        unit.push(chars.next()?);
                    }
                    unit
                }
                c => c.to_string(),
            };
            units.push(unit);
        }
        let rest = chars.as_str();
        Some(Preview {
            units,
            cut: rest.starts_with('…'),
            hex: rest.strip_prefix(" = ").map(str::to_string),
        })
    }

    /// The preview again, with as many characters as fit in `width` columns (quotes and `…`
    /// included), as the trace would have shown a shorter one.
    fn fit(&self, width: usize) -> String {
        let len = |k: usize| {
            let more = k < self.units.len() || self.cut;
            2 + self.units[..k]
                .iter()
                .map(|u| u.chars().count())
                .sum::<usize>()
                + usize::from(more)
        };
        let k = (0..=self.units.len())
            .rev()
            .find(|&k| len(k) <= width)
            .unwrap_or(0);
        let more = k < self.units.len() || self.cut;
        format!(
            "\"{}\"{}",
            self.units[..k].concat(),
            if more { "…" } else { "" }
        )
    }
}

/// The two columns: index 0 is the client, 1 the server.
const SIDES: [&str; 2] = ["client", "server"];

/// One row of the picture: one call, with what it means.
#[derive(Debug)]
struct Row {
    /// 0 client, 1 server.
    side: usize,
    call: Call,
    /// A write's name: `C1`, `C2`, … for the client's writes, `S1`, … for the server's.
    tag: String,
    /// A read's bytes: which writes they came from, as `S1[0..1024]` (`S1` for a datagram).
    from: Vec<String>,
    /// A read that returns more of a write it had already started reading, after its own side
    /// wrote something new (the next command): the name of the write that write answered.
    leftover: Option<String>,
}

/// Per side, what it wrote that the other side never read, as `S1[2048..3893]` (`S1`).
type Unread = [Vec<String>; 2];

/// Puts the client's and the server's calls in one order that could have happened.
///
/// Correctness comes from byte offsets, never from clocks (two processes' clocks cannot be
/// compared): in each direction TCP delivers bytes in the order they were written, so a read
/// that returned the bytes up to offset `e` happened after the write that holds byte `e - 1`.
/// A datagram's receive happened after its send (the k-th receive is the k-th send: loopback
/// neither loses nor reorders). Each side's own calls keep their order. Among the orders these
/// rules allow, this draws the one that switches columns least often (starting with the client),
/// so the picture is the same on every run whatever the timing.
fn merge(client: &[Call], server: &[Call], datagrams: bool) -> Result<(Vec<Row>, Unread)> {
    // A position in a stream counts bytes; on a datagram socket it counts whole datagrams.
    let size = |c: &Call| if datagrams { 1 } else { c.n };
    let sides = [client, server];
    let mut next = [0usize; 2];
    // Per writer side: its writes as (tag, start position, size, index of the row).
    let mut writes: [Vec<(String, usize, usize, usize)>; 2] = Default::default();
    let mut written = [0usize; 2]; // the position each side has written up to
    let mut read = [0usize; 2]; // the position in the OTHER side's writes each side has read up to
    let mut rows: Vec<Row> = Vec::new();
    let mut side = 0;
    while next[0] < client.len() || next[1] < server.len() {
        let ready = |s: usize| {
            let call = sides[s].get(next[s]);
            call.is_some_and(|c| c.write || written[1 - s] >= read[s] + size(c))
        };
        if !ready(side) {
            side = 1 - side;
            ensure!(
                ready(side),
                "no order of the two traces fits: the client's call {} and the server's call {} \
                 both read bytes nobody wrote yet",
                next[0] + 1,
                next[1] + 1
            );
        }
        let call = sides[side][next[side]].clone();
        next[side] += 1;
        let n = size(&call);
        let mut row = Row {
            side,
            call,
            tag: String::new(),
            from: Vec::new(),
            leftover: None,
        };
        if row.call.write {
            row.tag = format!("{}{}", ['C', 'S'][side], writes[side].len() + 1);
            writes[side].push((row.tag.clone(), written[side], n, rows.len()));
            written[side] += n;
            rows.push(row);
            continue;
        }
        let (a, b) = (read[side], read[side] + n);
        for (tag, start, len, at) in &writes[1 - side] {
            let (lo, hi) = (a.max(*start), b.min(start + len));
            if lo >= hi {
                continue;
            }
            let sent = rows[*at].call.n;
            row.from.push(match datagrams {
                true if row.call.n == sent => tag.clone(),
                // A receive shorter than the datagram sent: its buffer was too small.
                true => format!("{tag}[0..{}]", row.call.n),
                false => format!("{tag}[{}..{}]", lo - start, hi - start),
            });
            // Leftover: this side already read part of that write, then wrote again.
            let reads_it = |r: &&Row| r.from.iter().any(|f| f.starts_with(&format!("{tag}[")));
            let mine = rows[*at..].iter().filter(|r| r.side == side);
            let wrote_since = mine.skip_while(|r| !reads_it(r)).any(|r| r.call.write);
            if lo > *start && wrote_since && row.leftover.is_none() {
                // The command it answered: this side's last write before it.
                row.leftover = rows[..*at]
                    .iter()
                    .rev()
                    .find(|r| r.side == side && r.call.write)
                    .map(|r| format!("{} {}", r.tag, r.call.preview))
                    .or(Some(String::from("?")));
            }
        }
        read[side] = b;
        rows.push(row);
    }

    let unread = [0, 1].map(|s| {
        let unread = writes[s]
            .iter()
            .filter(|(_, start, len, _)| start + len > read[1 - s]);
        let name = |(tag, start, len, _): &(String, usize, usize, usize)| match datagrams {
            true => tag.clone(),
            false => format!("{tag}[{}..{len}]", read[1 - s].max(*start) - start),
        };
        unread.map(name).collect()
    });
    Ok((rows, unread))
}

/// A row's label, as trace lines read: `C1 write 10 bytes: "seq 1 1000"` for a write,
/// `read 1024 bytes: "1\n2\n…"` and `= S1[0..1024]` for a read.
fn label(row: &Row) -> [String; 2] {
    let c = &row.call;
    if c.write {
        [
            format!("{} {} {} bytes: {}", row.tag, c.op, c.n, c.preview),
            String::new(),
        ]
    } else {
        [
            format!("{} {} bytes: {}", c.op, c.n, c.short),
            format!("= {}", row.from.join(" ")),
        ]
    }
}

/// A leftover read's note, followed by the earlier command its bytes answer.
const LEFTOVER: &str = "leftover (黏包): the answer to";

/// A row as one line of text, for the picture's `<desc>`.
fn describe(row: &Row) -> String {
    let [a, b] = label(row);
    let mut line = if b.is_empty() { a } else { format!("{a} {b}") };
    if let Some(answer) = &row.leftover {
        let _ = write!(line, "  {LEFTOVER} {answer}");
    }
    line
}

/// `text` escaped for an element's content (no text goes into an attribute, so `"` stays).
pub(crate) fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The writes' colours, one per write in turn (red is kept for the leftover).
pub(crate) const COLOURS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
];
pub(crate) const RED: &str = "#d62728";
pub(crate) const BOLD: &str = r#" font-weight="bold""#;
pub(crate) const BOLD_TITLE: &str = r#" font-size="15" font-weight="bold""#;
/// Monospace first, then fonts with Chinese characters (黏包, 未读) for each system.
pub(crate) const FONTS: &str = "DejaVu Sans Mono, Menlo, Consolas, Noto Sans CJK SC, Microsoft YaHei, PingFang SC, WenQuanYi Micro Hei, monospace";

/// The opening of a picture `w` by `h`: the fonts, its `<title>` and `<desc>` (the picture in
/// words, what a screen reader reads), a white background, and the title drawn at the top.
pub(crate) fn svg_start((w, h): (usize, usize), font_size: u32, title: &str, desc: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONTS}" font-size="{font_size}">"#
    );
    let _ = writeln!(s, "<title>{}</title>", xml(title));
    let _ = writeln!(s, "<desc>\n{}</desc>", xml(desc));
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    text(&mut s, (w / 2, 24), "middle", BOLD_TITLE, title);
    s
}

/// Appends one `<text>` element anchored at `anchor`; `style` is more attributes, each with a
/// leading space.
pub(crate) fn text(
    s: &mut String,
    (x, y): (usize, usize),
    anchor: &str,
    style: &str,
    content: &str,
) {
    let content = xml(content);
    let _ = writeln!(
        s,
        r#"<text x="{x}" y="{y}" text-anchor="{anchor}"{style}>{content}</text>"#
    );
}

/// Draws the rows: the client's column on the left, the server's on the right, time downwards.
fn svg(sc: &Scenario, rows: &[Row], unread: &Unread) -> String {
    const W: usize = 980;
    const X: [usize; 2] = [180, 800]; // the two lifelines
    const BOX: usize = 340; // a read's box, centred on its lifeline
    const TOP: usize = 86;
    const ROW: usize = 46;
    let unread_lines: Vec<String> = (0..2)
        .filter(|&s| !unread[s].is_empty())
        .map(|s| {
            format!(
                "never read by the {} (未读): {}",
                SIDES[1 - s],
                unread[s].join(" ")
            )
        })
        .collect();
    let bottom = TOP + rows.len() * ROW; // below the last row: the unread lines
    let h = bottom + 20 + unread_lines.len() * 22;

    let title = sc.title();
    let mut desc = format!("{title}\n");
    for row in rows {
        let _ = writeln!(desc, "{}: {}", SIDES[row.side], describe(row));
    }
    for line in &unread_lines {
        let _ = writeln!(desc, "{line}");
    }

    let mut s = svg_start((W, h), 13, &title, &desc);
    for (x, side) in X.into_iter().zip(SIDES) {
        let name = format!("lesson{}-{side}", sc.lesson);
        text(&mut s, (x, 56), "middle", BOLD, &name);
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="64" x2="{x}" y2="{}" stroke="#999" stroke-width="2"/>"##,
            bottom + 8
        );
    }

    let colour = |tag: &str| {
        let writes = rows.iter().filter(|r| r.call.write);
        COLOURS[writes.take_while(|r| r.tag != tag).count() % COLOURS.len()]
    };
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + i * ROW;
        let [line1, line2] = label(row);
        if row.call.write {
            // An arrow from the writer's column to the other, its label above it.
            let col = colour(&row.tag);
            let (x1, x2) = (X[row.side], X[1 - row.side]);
            let (tip, back) = match row.side {
                0 => (x2 - 2, x2 - 14),
                _ => (x2 + 2, x2 + 14),
            };
            let ya = y + 30;
            let _ = writeln!(
                s,
                r#"<line x1="{x1}" y1="{ya}" x2="{back}" y2="{ya}" stroke="{col}" stroke-width="3"/>"#
            );
            let _ = writeln!(
                s,
                r#"<polygon points="{tip},{ya} {back},{} {back},{}" fill="{col}"/>"#,
                ya - 6,
                ya + 6
            );
            let style = format!(r#" fill="{col}""#);
            text(&mut s, ((x1 + x2) / 2, y + 22), "middle", &style, &line1);
            continue;
        }
        // A box on the reader's column, in the colour of the write its bytes came from.
        let first = row.from.first().map(|f| f.split('[').next().unwrap_or(f));
        let col = colour(first.unwrap_or(""));
        let (stroke, width) = match row.leftover {
            Some(_) => (RED, 3),
            None => (col, 1),
        };
        let (cx, x) = (X[row.side], X[row.side] - BOX / 2);
        // White first: the box hides the lifeline behind its text.
        for (fill, opacity, line) in [("white", 1.0, "none"), (col, 0.15, stroke)] {
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{}" width="{BOX}" height="{}" rx="4" fill="{fill}" fill-opacity="{opacity}" stroke="{line}" stroke-width="{width}"/>"#,
                y + 4,
                ROW - 6
            );
        }
        text(&mut s, (cx, y + 21), "middle", "", &line1);
        let style = format!(r#" fill="{col}"{BOLD}"#);
        text(&mut s, (cx, y + 37), "middle", &style, &line2);
        if let Some(answer) = &row.leftover {
            // Beside the box, in the space between the columns.
            let (nx, anchor) = match row.side {
                0 => (x + BOX + 10, "start"),
                _ => (x - 10, "end"),
            };
            let style = format!(r#" fill="{RED}"{BOLD}"#);
            for (k, note) in [LEFTOVER, answer].iter().enumerate() {
                text(&mut s, (nx, y + 21 + k * 16), anchor, &style, note);
            }
        }
    }
    let style = format!(r#" fill="{RED}""#);
    for (i, line) in unread_lines.iter().enumerate() {
        let y = bottom + 16 + i * 22;
        text(&mut s, (W / 2, y), "middle", &style, line);
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(write: bool, n: usize, text: &str) -> Call {
        let op = if write { "write" } else { "read" }.into();
        let (preview, short) = (format!("{text:?}"), format!("{text:?}"));
        Call {
            op,
            write,
            n,
            preview,
            short,
        }
    }

    /// Lesson 03's run, whatever order the traces were recorded in: the offsets place each
    /// read, and the second read of S1 after C2 is the leftover.
    #[test]
    fn offsets_order_the_calls_and_find_the_leftover() {
        let client = [
            call(true, 10, "seq"),
            call(false, 1024, "1"),
            call(true, 7, "echo hi"),
            call(false, 1024, "284"),
        ];
        let server = [
            call(false, 10, "seq"),
            call(true, 3893, "1"),
            call(false, 7, "echo hi"),
            call(true, 3, "hi"),
        ];
        let (rows, unread) = merge(&client, &server, false).unwrap();
        let text: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}", SIDES[r.side], describe(r)))
            .collect();
        assert_eq!(text[3], "client read 1024 bytes: \"1\" = S1[0..1024]");
        assert_eq!(
            text[5],
            "client read 1024 bytes: \"284\" = S1[1024..2048]  leftover (黏包): the answer to C1 \"seq\""
        );
        assert_eq!(unread[1], ["S1[2048..3893]", "S2[0..3]"]);
        assert!(rows.iter().filter(|r| r.leftover.is_some()).count() == 1);
    }

    #[test]
    fn a_read_of_bytes_nobody_wrote_is_an_error() {
        assert!(merge(&[call(false, 1, "x")], &[call(false, 1, "y")], false).is_err());
    }

    /// The trace lines a learner sees, read back: a server's label, a header's hex, a preview
    /// cut by the trace and cut again to fit 40 columns on an arrow and 24 in a box, a
    /// datagram's address; other lines and an unfinished last line left out.
    #[test]
    fn trace_lines_are_read_back_into_calls() {
        let stderr = "[127.0.0.1:5000] read 4 bytes: \"5\\x0f\\x00\\x00\" = hex 35 0f 00 00\n\
                      write 3893 bytes: \"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 1\"…\n\
                      header: size 3, desc \"x\", info \"y\"\n\
                      read 0 bytes (end of stream)\n\
                      send_to 3 bytes to 127.0.0.1:8080: \"123\"\n\
                      read 2 bytes: \"hi";
        let calls = trace_calls(stderr);
        let shown: Vec<(&str, bool, usize, &str, &str)> = calls
            .iter()
            .map(|c| {
                (
                    c.op.as_str(),
                    c.write,
                    c.n,
                    c.preview.as_str(),
                    c.short.as_str(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "read",
                    false,
                    4,
                    "\"5\\x0f\\x00\\x00\" = hex 35 0f 00 00",
                    "hex 35 0f 00 00"
                ),
                (
                    "write",
                    true,
                    3893,
                    "\"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 1\"…",
                    "\"1 2 3 4 5 6 7 8 9 10 \"…"
                ),
                ("send_to", true, 3, "\"123\"", "\"123\""),
            ]
        );
    }

    #[test]
    fn answer_size_reads_the_servers_log_line() {
        let line = "127.0.0.1:5000 ran \"echo hi\": 3 bytes";
        assert_eq!(answer_size(line, "echo hi"), Some(3));
        assert_eq!(answer_size(line, "seq 1 1000"), None);
    }
}
