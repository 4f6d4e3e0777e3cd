//! Every block in a README that shows what a program prints is produced here by the real
//! binaries and compared line by line, so a README cannot drift from the programs.
//!
//! Only the English pages are read: `tests/docs.rs` holds each `README.zh-CN.md` to the same
//! code blocks, so one check covers both languages.
//!
//! How it works. A [`Session`] replays what a README tells the learner to do: start a server
//! (on port 0), start a client, type lines into it one at a time (on a pseudo-terminal when the
//! block shows prompts, through a pipe otherwise), end its input. Then each block the session
//! names (by the start of a line only that block has) is compared with what the program
//! printed, after masking the ports (`127.0.0.1:49170` → `127.0.0.1:PORT`: the system picks
//! them) and dropping the block's own `cargo run …` lines (a block may show the command above
//! its output). A step waits for an event the program prints (a server's log line, a client's
//! prompt), or holds the server still (SIGSTOP) where timing would decide what a read returns;
//! it never waits for time to pass, so a busy machine makes the test slower, not wrong.
//!
//! Why not `trycmd`/`snapbox`: their Markdown format is a console transcript (`$ command` and
//! its output in one block, one program at a time), while these pages show a command in one
//! block, its output in another, two terminals at once and typed input. Masking ports is the
//! only redaction needed; a page of code here keeps the build free of another dependency.
//!
//! [`every_output_block_is_checked`] fails on any ```text block that is neither commands only
//! (every line starts with one of [`COMMANDS`]), nor in [`NOT_OUTPUT`], nor checked by a
//! session.
//!
//! Adding a lesson (05, 07, …): remove its folder from [`NOT_YET_CHECKED`], write one `const`
//! [`Session`] per run its README shows, list them in [`SESSIONS`], and add a `#[test]` that
//! calls `check_page("lessons/NN_name/README.md")`. Nothing else changes.
//!
//! The sessions run on Linux only: they type Unix shell commands (`seq`, `echo`), show Linux's
//! error texts (`os error 111`), and get a terminal from util-linux's `script`. The coverage
//! check runs everywhere.

// Off Linux only the coverage check runs; the replay machinery is compiled but unused there.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::SAFETY;

/// Pages whose output blocks are not checked yet (folder prefixes). Every other README.md in
/// the repository (the root, `lessons/*/`, `exercises/**/`) is checked, so a new page cannot be
/// forgotten: adding its sessions means removing it from here.
const NOT_YET_CHECKED: &[&str] = &["lessons/05_", "lessons/07_"];

/// How a line of a commands-only block starts: what a learner types, not what a program prints.
const COMMANDS: &[&str] = &["cargo ", "cd ", "rustlings", "python3 ", "python "];

/// Blocks that are neither commands nor a program's output: (page, first line).
const NOT_OUTPUT: &[(&str, &str)] = &[
    // The folder layout.
    ("README.md", "lessons/NN_name/"),
    // A drawing of the bytes on the wire, not a program's output.
    ("lessons/04_header/README.md", "3.2 --header fixed:"),
];

/// One run of the programs, as a README tells the learner to do it.
struct Session {
    page: &'static str,
    /// Server binary and its options (`--addr 127.0.0.1:0` is added); `None`: no server.
    server: Option<(&'static str, &'static [&'static str])>,
    /// Client binary and its options; `--addr` of the server is added unless given.
    /// `FREE_UDP_PORT` in an option becomes a UDP port where nobody listens.
    client: (&'static str, &'static [&'static str]),
    /// Run the client on a pseudo-terminal (it shows its `>>>:` prompt and the typed text).
    tty: bool,
    steps: &'static [Step],
    /// The blocks this run shows: which output, and the start of a line only that block has.
    blocks: &'static [(Shown, &'static str)],
}

enum Step {
    /// Type a line (on a terminal: after the client's next `>>>:` prompt has appeared).
    Type(&'static str),
    /// Wait until the text has appeared this many times in that side's stdout and stderr.
    Await(Side, &'static str, usize),
    /// Stop the server (SIGSTOP), so that it cannot answer until [`Step::Continue`].
    Stop,
    Continue,
}

#[derive(Clone, Copy)]
enum Side {
    Server,
    Client,
}

#[derive(Clone, Copy, Debug)]
enum Shown {
    /// The server's stdout, `listening on` line included.
    ServerStdout,
    ClientStdout,
    ClientStderr,
    /// The client's terminal: prompts, typed lines, stdout and stderr as they interleave.
    ClientTerminal,
}

use Shown::*;
use Side::*;
use Step::*;

const SESSIONS: &[&Session] = &[
    &LESSON01,
    &LESSON02,
    &LESSON03_LEFTOVER,
    &LESSON03_THREE_WRITES,
    &LESSON04_JSON,
    &LESSON06_THREE_SENDS,
    &LESSON06_OVERSIZE,
    &LESSON06_NOBODY,
    &LESSON06_NOBODY_CONNECTED,
];

const LESSON01: Session = Session {
    page: "lessons/01_basic/README.md",
    server: Some(("lesson01-server", &[])),
    client: ("lesson01-client", &[]),
    tty: false,
    steps: &[],
    blocks: &[(ServerStdout, "I am from client!")],
};

const LESSON02: Session = Session {
    page: "lessons/02_loop/README.md",
    server: Some(("lesson02-server", &[])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[Type("hello"), Type(""), Type("你好")],
    blocks: &[
        (ClientTerminal, "hello123"),
        (ServerStdout, "127.0.0.1:49082 connected"),
    ],
};

/// The learner types each command after reading the answer to the one before. From the second
/// command on, the answer comes from the leftover already in the client's receive buffer, and
/// the server must not add its own answer to that buffer before the client has read: the
/// server is stopped (SIGSTOP) while the client reads, and afterwards the test waits for the
/// server's traced `write` (printed after the write returns), so each read sees exactly the
/// bytes the README shows, however busy the machine.
const LESSON03_LEFTOVER: Session = Session {
    page: "lessons/03_sticky/README.md",
    server: Some(("lesson03-server", &["--trace"])),
    client: ("lesson03-client", &["--trace"]),
    tty: false,
    steps: &[
        Type("seq -s ' ' 1000"),
        Await(Client, "read ", 1),
        Await(Server, "write ", 1),
        Stop,
        Type("echo hi"),
        Await(Client, "read ", 2),
        Continue,
        Await(Server, "write ", 2),
        Stop,
        Type("echo a"),
        Await(Client, "read ", 3),
        Continue,
        Await(Server, "write ", 3),
        Stop,
        Type("echo b"),
        Await(Client, "read ", 4),
        Continue,
        Await(Server, "write ", 4),
        Stop,
        Type("echo c"),
        Await(Client, "read ", 5),
        Continue,
        Await(Server, "write ", 5),
    ],
    blocks: &[(ClientStderr, "write 15 bytes: \"seq -s ' ' 1000\"")],
};

const LESSON03_THREE_WRITES: Session = Session {
    page: "lessons/03_sticky/README.md",
    server: Some(("lesson03-server", &["--demo", "three-writes"])),
    client: ("lesson03-client", &["--demo", "three-writes"]),
    tty: false,
    steps: &[],
    blocks: &[(ClientStdout, "wrote 3 bytes: 123")],
};

const LESSON04_JSON: Session = Session {
    page: "lessons/04_header/README.md",
    server: Some(("lesson04-server", &[])),
    client: ("lesson04-client", &["--trace"]),
    tty: false,
    steps: &[Type("seq -s ' ' 1000"), Type("echo hi")],
    blocks: &[(ClientStderr, "write 15 bytes: \"seq -s ' ' 1000\"")],
};

const LESSON06_THREE_SENDS: Session = Session {
    page: "lessons/06_udp/README.md",
    server: Some(("lesson06-server", &[])),
    client: ("lesson06-client", &["--demo", "three-sends"]),
    tty: false,
    steps: &[],
    blocks: &[(
        ClientStdout,
        "sent \"123\", \"456\", \"789\" as three datagrams",
    )],
};

const LESSON06_OVERSIZE: Session = Session {
    page: "lessons/06_udp/README.md",
    server: Some(("lesson06-server", &[])),
    client: ("lesson06-client", &["--demo", "oversize"]),
    tty: false,
    steps: &[],
    blocks: &[(ClientStdout, "sent one 2000-byte datagram, then \"next\"")],
};

const LESSON06_NOBODY: Session = Session {
    page: "lessons/06_udp/README.md",
    server: None,
    client: ("lesson06-client", &["--addr", "FREE_UDP_PORT", "--trace"]),
    tty: true,
    steps: &[Type("hi")],
    blocks: &[(ClientTerminal, "send_to 2 bytes to 127.0.0.1:18069: \"hi\"")],
};

const LESSON06_NOBODY_CONNECTED: Session = Session {
    page: "lessons/06_udp/README.md",
    server: None,
    client: (
        "lesson06-client",
        &["--addr", "FREE_UDP_PORT", "--connect", "--trace"],
    ),
    tty: true,
    steps: &[Type("hi")],
    blocks: &[(ClientTerminal, "send 2 bytes to 127.0.0.1:18069: \"hi\"")],
};

#[test]
#[cfg(target_os = "linux")]
fn lesson01_readme_transcripts() {
    check_page("lessons/01_basic/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson02_readme_transcripts() {
    check_page("lessons/02_loop/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson03_readme_transcripts() {
    check_page("lessons/03_sticky/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson04_readme_transcripts() {
    check_page("lessons/04_header/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson06_readme_transcripts() {
    check_page("lessons/06_udp/README.md");
}

#[test]
fn every_output_block_is_checked() {
    let mut unchecked = Vec::new();
    for page in &pages() {
        let page = page.as_str();
        for block in text_blocks(page) {
            let first = block.lines.first().map(String::as_str).unwrap_or("");
            let commands = block
                .lines
                .iter()
                .all(|l| COMMANDS.iter().any(|c| l.starts_with(c)));
            let exempt = NOT_OUTPUT
                .iter()
                .any(|(p, f)| *p == page && first.starts_with(f));
            let checked = SESSIONS
                .iter()
                .any(|s| s.page == page && s.blocks.iter().any(|(_, key)| block.has(key)));
            if !(commands || exempt || checked) {
                unchecked.push(format!("{page}:{}: {first}", block.line));
            }
        }
    }
    assert!(
        unchecked.is_empty(),
        "these README blocks show output that no session in tests/transcripts.rs checks \
         (add a Session, or list a block that is not output in NOT_OUTPUT):\n{}",
        unchecked.join("\n")
    );
}

#[test]
fn every_session_finds_its_block() {
    for session in SESSIONS {
        for (_, key) in session.blocks {
            find_block(session.page, key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Machinery: reading the pages, running a session, comparing.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every English README.md to check: the root's, each `lessons/*/`'s and any under
/// `exercises/`, except [`NOT_YET_CHECKED`]; paths relative to the root, `/`-separated.
fn pages() -> Vec<String> {
    fn walk(dir: &Path, rel: &str, deep: bool, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
            if path.join("README.md").is_file() {
                out.push(format!("{child}/README.md"));
            }
            if deep {
                walk(&path, &child, true, out);
            }
        }
    }
    let mut out = vec!["README.md".to_string()];
    walk(&root().join("lessons"), "lessons", false, &mut out);
    walk(&root().join("exercises"), "exercises", true, &mut out);
    if root().join("exercises/README.md").is_file() {
        out.push("exercises/README.md".to_string());
    }
    out.retain(|p| !NOT_YET_CHECKED.iter().any(|skip| p.starts_with(skip)));
    out.sort();
    out
}

struct TextBlock {
    /// Line number of the opening fence.
    line: usize,
    lines: Vec<String>,
}

impl TextBlock {
    fn has(&self, key: &str) -> bool {
        self.lines.iter().any(|l| l.starts_with(key))
    }
}

/// The page's ```text blocks (```python and others are code, not output).
fn text_blocks(page: &str) -> Vec<TextBlock> {
    let text = std::fs::read_to_string(root().join(page))
        .unwrap_or_else(|e| panic!("cannot read {page}: {e}"))
        .replace("\r\n", "\n");
    let mut blocks = Vec::new();
    let mut open: Option<(bool, TextBlock)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match open.take() {
            None if fence => {
                let is_text = line.trim_start() == "```text";
                let block = TextBlock {
                    line: i + 1,
                    lines: Vec::new(),
                };
                open = Some((is_text, block));
            }
            None => {}
            // A closing fence: keep the block if it was ```text.
            Some((true, block)) if fence => blocks.push(block),
            Some((false, _)) if fence => {}
            Some((is_text, mut block)) => {
                block.lines.push(line.to_string());
                open = Some((is_text, block));
            }
        }
    }
    blocks
}

fn find_block(page: &str, key: &str) -> TextBlock {
    let mut found: Vec<TextBlock> = text_blocks(page)
        .into_iter()
        .filter(|b| b.has(key))
        .collect();
    assert!(
        found.len() == 1,
        "{page}: {} ```text blocks have a line starting with {key:?}, expected exactly one",
        found.len()
    );
    found.remove(0)
}

/// `127.0.0.1:49170` → `127.0.0.1:PORT`: the system picks ports.
fn mask_ports(text: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(HOST) {
        out.push_str(&rest[..at + HOST.len()]);
        rest = &rest[at + HOST.len()..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str("PORT");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// A program's output as the lines a README shows: terminal line ends made plain, ports masked.
fn shown_lines(raw: &str) -> Vec<String> {
    mask_ports(&raw.replace("\r\n", "\n"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn binary(name: &str) -> PathBuf {
    // Integration tests live in target/<profile>/deps/; cargo puts the binaries one level up
    // and builds all of them before running any integration test.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Everything a reader produces, collected by a background thread.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let theirs = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            theirs.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Client {
    fn start(bin: &Path, args: &[String], tty: bool) -> Client {
        let mut cmd = if tty {
            // util-linux `script` gives the client a pseudo-terminal: it prompts, the terminal
            // echoes what is typed, and stdout and stderr arrive interleaved as on a screen.
            let mut line = quote(&bin.to_string_lossy());
            for arg in args {
                line.push(' ');
                line.push_str(&quote(arg));
            }
            let mut cmd = Command::new("script");
            cmd.args(["-q", "-e", "-c", &line, "/dev/null"]);
            cmd
        } else {
            let mut cmd = Command::new(bin);
            cmd.args(args);
            cmd
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Client {
            stdin: child.stdin.take(),
            stdout: collect(child.stdout.take().unwrap()),
            stderr: collect(child.stderr.take().unwrap()),
            child,
        }
    }

    fn output(&self) -> String {
        text(&self.stdout) + &text(&self.stderr)
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Ends the input and waits for the client to exit and its output to be complete.
    fn finish(&mut self, tty: bool) {
        if tty {
            // Ctrl-D at the start of a line: end of input on a terminal.
            self.send(b"\x04");
        } else {
            self.stdin = None;
        }
        let deadline = Instant::now() + SAFETY;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("client did not exit; it printed {:?}", tail(&self.output()));
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.stdin = None;
        // The collecting threads end at EOF, just after the exit.
        while Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1 {
            assert!(Instant::now() < deadline, "client output never closed");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The end of a long output, for a failure message.
fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(2000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// A UDP port on loopback where nobody listens: bound for a moment by us, then released.
fn free_udp_port() -> String {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.local_addr().unwrap().to_string()
}

fn wait_until(what: &str, mut seen: impl FnMut() -> bool, show: impl Fn() -> String) {
    let deadline = Instant::now() + SAFETY;
    while !seen() {
        assert!(
            Instant::now() < deadline,
            "{what} never happened; output {:?}",
            tail(&show())
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn check_page(page: &str) {
    let sessions: Vec<&&Session> = SESSIONS.iter().filter(|s| s.page == page).collect();
    assert!(!sessions.is_empty(), "no session for {page}");
    for session in sessions {
        run(session);
    }
}

fn run(session: &Session) {
    let server = session
        .server
        .map(|(bin, args)| common::Server::start(&binary(bin).to_string_lossy(), args));

    let (bin, options) = session.client;
    let mut args: Vec<String> = Vec::new();
    if let Some(server) = &server {
        if !options.contains(&"--addr") {
            args.extend(["--addr".to_string(), server.addr.to_string()]);
        }
    }
    args.extend(
        options
            .iter()
            .map(|o| o.replace("FREE_UDP_PORT", &free_udp_port())),
    );
    let mut client = Client::start(&binary(bin), &args, session.tty);

    let mut typed = 0;
    let prompt = |client: &Client, n: usize| {
        wait_until(
            &format!("prompt number {n}"),
            || client.output().matches(">>>:").count() >= n,
            || client.output(),
        )
    };
    for step in session.steps {
        match *step {
            Type(line) => {
                if session.tty {
                    prompt(&client, typed + 1);
                }
                client.send(format!("{line}\n").as_bytes());
                typed += 1;
            }
            Await(Client, needle, count) => wait_until(
                &format!("client printing {needle:?} {count} times"),
                || client.output().matches(needle).count() >= count,
                || client.output(),
            ),
            Await(Server, needle, count) => server
                .as_ref()
                .expect("no server")
                .wait_for_count(needle, count),
            Stop | Continue => {
                let pid = server.as_ref().expect("no server").pid().to_string();
                let signal = if matches!(step, Stop) {
                    "-STOP"
                } else {
                    "-CONT"
                };
                let status = Command::new("kill").args([signal, &pid]).status().unwrap();
                assert!(status.success(), "kill {signal} {pid}");
            }
        }
    }
    if session.tty {
        prompt(&client, typed + 1);
    }
    client.finish(session.tty);

    for &(shown, key) in session.blocks {
        let block = find_block(session.page, key);
        let expected: Vec<String> = block
            .lines
            .iter()
            .filter(|l| !l.starts_with("cargo "))
            .map(|l| mask_ports(l))
            .collect();
        let actual = || -> Vec<String> {
            match shown {
                ServerStdout => {
                    let server = server.as_ref().expect("no server");
                    let all = format!("listening on {}\n{}", server.addr, server.stdout());
                    shown_lines(&all)
                }
                ClientStdout | ClientTerminal => shown_lines(&text(&client.stdout)),
                ClientStderr => shown_lines(&text(&client.stderr)),
            }
        };
        // A server logs on its own time: wait until it has printed as many lines as the block.
        let deadline = Instant::now() + SAFETY;
        while actual().len() < expected.len() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let actual = actual();
        if actual != expected {
            let differ = (0..).find(|&i| expected.get(i) != actual.get(i)).unwrap();
            panic!(
                "{}:{}: the block ({shown:?}, ports masked) is not what the programs print; \
                 first difference in its output line {}.\n\
                 --- README\n{}\n--- programs\n{}\n",
                session.page,
                block.line,
                differ + 1,
                expected.join("\n"),
                actual.join("\n")
            );
        }
    }
}
