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
//! printed, after numbering the ports (`127.0.0.1:49170` → `127.0.0.1:PORT2`, the second port
//! to appear: the system picks them) and dropping the block's own `cargo run …` lines (a block
//! may show the command above its output). A step waits for an event the program prints (a server's log line, a client's
//! prompt), or holds the server still (SIGSTOP) where timing would decide what a read returns;
//! it never waits for time to pass, so a busy machine makes the test slower, not wrong.
//! A session may work in a folder of its own (the README's `/tmp/l5` becomes a fresh temporary
//! folder, and is written back in the output), with files of known bytes made first, so a
//! digest a README shows is stable; a transfer's time and speed are masked (see [`mask`]).
//! A block of several terminals (`terminal 1`, `terminal 2` …) is compared as the server's
//! output followed by each client's.
//!
//! Why not `trycmd`/`snapbox`: their Markdown format is a console transcript (`$ command` and
//! its output in one block, one program at a time), while these pages show a command in one
//! block, its output in another, two terminals at once and typed input. Used only for its
//! matcher and diff, snapbox replaced 10 of these lines (tried), for two more crates to build.
//! Why not `expectrl` for the terminal: it drives Windows' ConPTY, but under Wine 8.0 (our
//! Windows lane) a child started in its pseudo-console printed to the real console and the
//! session read nothing (tried); it also brings `regex` and `nix`, the largest builds of the
//! test suite. And these blocks are Linux runs (below), so a terminal on Windows would not
//! make them pass there.
//!
//! [`every_output_block_is_checked`] fails on any ```text block that is neither commands only
//! (every line starts with one of [`COMMANDS`]), nor in [`NOT_OUTPUT`], nor checked by a
//! session.
//!
//! Adding a lesson: remove its folder from [`NOT_YET_CHECKED`] if it is there, write one `const`
//! [`Session`] per run its README shows, list them in [`SESSIONS`], and add a `#[test]` that
//! calls `check_page("lessons/NN_name/README.md")`. Nothing else changes.
//!
//! The sessions run on Linux only: they type Unix shell commands (`seq`, `echo`), show Linux's
//! error texts (`os error 111`), and get a terminal from util-linux's `script`. The sessions
//! with the notes' Python client need `python3`; where it is missing they are skipped with a
//! line on stderr saying so. The coverage check runs everywhere.

// Off Linux only the coverage check runs; the replay machinery is compiled but unused there.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::SAFETY;

/// Pages whose output blocks are not checked yet (folder prefixes; none now). Every README.md in
/// the repository (the root, `lessons/*/`, `exercises/**/`) is checked, so a new page cannot be
/// forgotten: adding its sessions means removing it from here.
const NOT_YET_CHECKED: &[&str] = &[];

/// How a line of a commands-only block starts: what a learner types, not what a program prints.
const COMMANDS: &[&str] = &[
    "cargo ",
    "cd ",
    "rustlings",
    "python3 ",
    "python ",
    "ulimit ",
];

/// Blocks that are neither commands nor a program's output: (page, first line).
const NOT_OUTPUT: &[(&str, &str)] = &[
    // The folder layout.
    ("README.md", "lessons/NN_name/"),
    // A drawing of the bytes on the wire, not a program's output.
    ("lessons/04_header/README.md", "3.2 --header fixed:"),
    ("lessons/07_video_service/README.md", "0e 00 00 00  7b 22"),
    // rustc's error for threads sharing a plain counter: the compile_fail doc test of
    // tickets.rs keeps the code refused (E0499); the wording is the compiler's, per version.
    ("lessons/10_pool/README.md", "error[E0499]: cannot borrow"),
    // A summary of the options, written by hand; `--help` says the same at length.
    ("lessons/05_upload/README.md", "lesson05-server [--addr"),
    (
        "lessons/07_video_service/README.md",
        "lesson07-server [--addr",
    ),
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
    /// The folder the README's paths start with (`/tmp/l5`), or "". The run uses a fresh
    /// temporary folder instead: in the options it replaces this prefix, in the output it is
    /// written back as this prefix.
    dir: &'static str,
    /// Files made under `dir` before the run: path, size. Their bytes are 0, 1, … 255, 0, 1, …
    /// (Python's `bytes(range(256)) * n`), so a digest a README shows is the same on every run.
    files: &'static [(&'static str, usize)],
}

/// The fields most sessions leave empty.
const PLAIN: Session = Session {
    page: "",
    server: None,
    client: ("", &[]),
    tty: false,
    steps: &[],
    blocks: &[],
    dir: "",
    files: &[],
};

enum Step {
    /// Type a line (on a terminal: after the client's next `>>>:` prompt has appeared).
    Type(&'static str),
    /// Wait until the text has appeared this many times in that side's stdout and stderr.
    Await(Side, &'static str, usize),
    /// Stop the server (SIGSTOP), so that it cannot answer until [`Step::Continue`].
    Stop,
    Continue,
    /// Ctrl-C in the server's terminal (SIGINT).
    Interrupt,
    /// Connect to the server and stay connected, silent, until the session ends: a client
    /// that waits (in a queue) or holds a server thread, with nothing to show of its own.
    Hold,
    /// Run the client binary once more with these options (`--addr` added as for the first),
    /// this text as its whole stdin, and wait until it exits; its stdout, then its stderr,
    /// follow the first client's output in [`Shown::Terminals`].
    Run(&'static [&'static str], &'static str),
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
    /// A block of several terminals (`terminal 1`, `$ cargo run …`, output, a blank line,
    /// `terminal 2` …): the server's stdout, then the client's (its terminal, or its stdout
    /// then its stderr), then each [`Step::Run`]'s. Blank lines, `terminal …` lines and the
    /// `$ …` command lines are left out of the comparison.
    Terminals,
    /// [`Shown::Terminals`] without the server's: the client's, then each [`Step::Run`]'s.
    ClientTerminals,
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
    &LESSON05_MENU,
    &LESSON05_NOTES,
    &LESSON07_SESSION,
    &LESSON07_NO_REPLY,
    &LESSON07_ONE_AT_A_TIME,
    &LESSON07_MANY_AT_ONCE,
    &LESSON07_NOTES,
    &LESSON08_ONE_REQUEST,
    &LESSON08_ONE_AT_A_TIME,
    &LESSON09_TWO_AT_ONCE,
    &LESSON09_MANY_09,
    &LESSON09_MANY_02,
    &LESSON09_HOLD_02,
    &LESSON09_HOLD_09,
    &LESSON09_PROCESSES,
    &LESSON10_MANY,
    &LESSON10_FIFTH_WAITS,
    &LESSON10_QUEUE_FULL,
    &LESSON10_CTRL_C,
    &LESSON10_TICKETS,
    &LESSON11_TWO_CLIENTS,
    &LESSON12,
    &LESSON12_CTRL_C,
];

const LESSON01: Session = Session {
    page: "lessons/01_basic/README.md",
    server: Some(("lesson01-server", &[])),
    client: ("lesson01-client", &[]),
    tty: false,
    steps: &[],
    blocks: &[(ServerStdout, "I am from client!")],
    ..PLAIN
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
    ..PLAIN
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
    ..PLAIN
};

const LESSON03_THREE_WRITES: Session = Session {
    page: "lessons/03_sticky/README.md",
    server: Some(("lesson03-server", &["--demo", "three-writes"])),
    client: ("lesson03-client", &["--demo", "three-writes"]),
    tty: false,
    steps: &[],
    blocks: &[(ClientStdout, "wrote 3 bytes: 123")],
    ..PLAIN
};

const LESSON04_JSON: Session = Session {
    page: "lessons/04_header/README.md",
    server: Some(("lesson04-server", &[])),
    client: ("lesson04-client", &["--trace"]),
    tty: false,
    steps: &[Type("seq -s ' ' 1000"), Type("echo hi")],
    blocks: &[(ClientStderr, "write 15 bytes: \"seq -s ' ' 1000\"")],
    ..PLAIN
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
    ..PLAIN
};

const LESSON06_OVERSIZE: Session = Session {
    page: "lessons/06_udp/README.md",
    server: Some(("lesson06-server", &[])),
    client: ("lesson06-client", &["--demo", "oversize"]),
    tty: false,
    steps: &[],
    blocks: &[(ClientStdout, "sent one 2000-byte datagram, then \"next\"")],
    ..PLAIN
};

const LESSON06_NOBODY: Session = Session {
    page: "lessons/06_udp/README.md",
    server: None,
    client: ("lesson06-client", &["--addr", "FREE_UDP_PORT", "--trace"]),
    tty: true,
    steps: &[Type("hi")],
    blocks: &[(ClientTerminal, "send_to 2 bytes to 127.0.0.1:18069: \"hi\"")],
    ..PLAIN
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
    ..PLAIN
};

const LESSON05_MENU: Session = Session {
    page: "lessons/05_upload/README.md",
    server: Some(("lesson05-server", &["--dir", "/tmp/l5/videos"])),
    client: ("lesson05-client", &["--dir", "/tmp/l5/src"]),
    tty: true,
    steps: &[Type("2"), Type("1"), Type("x")],
    blocks: &[(Terminals, "\"x\" is not a number from 1 to 2")],
    dir: "/tmp/l5",
    files: L5_FILES,
};

const L5_FILES: &[(&str, usize)] = &[
    ("src/01 后期课程安排.mp4", 3_000_000),
    ("src/02 面向对象复习扩展.mp4", 1_000_000),
];

/// The notes' client itself ([`NOTES_CLIENT`]), run by python3 on a terminal, ended by Ctrl-C.
const LESSON05_NOTES: Session = Session {
    page: "lessons/05_upload/README.md",
    server: Some(("lesson05-server", &["--dir", "/tmp/l5/videos"])),
    client: ("python3", &[]),
    tty: true,
    steps: &[Type("2"), Type("1")],
    blocks: &[(Terminals, "$ python3 notes_client.py")],
    dir: "/tmp/l5",
    files: L5_FILES,
};

/// The file's bytes are known (see [`Session::files`]), so its digest is the README's.
const LESSON07_SESSION: Session = Session {
    page: "lessons/07_video_service/README.md",
    server: Some(("lesson07-server", &["--dir", "/tmp/l7/videos"])),
    client: (
        "lesson07-client",
        &["upload", "/tmp/l7/mine/03 今日内容概要.mp4"],
    ),
    tty: false,
    steps: &[
        Await(Client, "verified", 1),
        Await(Server, "closed the connection", 1),
        Run(&["list"], ""),
        Await(Server, "closed the connection", 2),
        Run(
            &[
                "download",
                "03 今日内容概要.mp4",
                "--out",
                "/tmp/l7/downloads",
            ],
            "",
        ),
    ],
    blocks: &[(Terminals, "$ cargo run -q --bin lesson07-client -- list")],
    dir: "/tmp/l7",
    files: &[("mine/03 今日内容概要.mp4", 5_120_000)],
};

/// 20 MB is more than the socket buffers hold, so the client is still writing when the server
/// drops it, on every run; see [`mask`] for the two ways that write fails.
const LESSON07_NO_REPLY: Session = Session {
    page: "lessons/07_video_service/README.md",
    server: Some((
        "lesson05-server",
        &["--dir", "/tmp/l5/videos", "--max-size", "50000"],
    )),
    client: ("lesson05-client", &["--dir", "/tmp/l5/one"]),
    tty: false,
    steps: &[Type("1")],
    blocks: &[(Terminals, "Error: cannot send the file")],
    dir: "/tmp/l5",
    files: &[("one/a.mp4", 20_000_000)],
};

/// Client A sits at its menu; client B uploads, prints `sent` and exits while the server still
/// serves A; then A ends (Ctrl-D) and only then does the server take B's upload. B's 1 MB fits
/// in the sockets' buffers before anyone reads it (Linux lets a send buffer grow to 4 MiB by
/// default, `net.ipv4.tcp_wmem`); a file larger than that would keep B waiting for A.
const LESSON07_ONE_AT_A_TIME: Session = Session {
    page: "lessons/07_video_service/README.md",
    server: Some(("lesson05-server", &["--dir", "/tmp/l5/videos"])),
    client: ("lesson05-client", &["--dir", "/tmp/l5/src"]),
    tty: true,
    steps: &[
        Await(Server, "connected", 1),
        Run(&["--dir", "/tmp/l5/src"], "2\n"),
    ],
    blocks: &[(
        Terminals,
        "$ printf '2\\n' | cargo run -q --bin lesson05-client",
    )],
    dir: "/tmp/l5",
    files: L5_FILES,
};

/// The same two clients against lesson 07: A's menu connects at its first upload and keeps the
/// connection; B is served while A sits at the menu, and A's connection closes last. Each wait
/// is for the server's log line that comes before the next step, so the log's order is the
/// README's on every run. A's progress bar is drawn and cleared on its terminal (see
/// [`shown_lines`]).
const LESSON07_MANY_AT_ONCE: Session = Session {
    page: "lessons/07_video_service/README.md",
    server: Some(("lesson07-server", &["--dir", "/tmp/l7/videos"])),
    client: ("lesson07-client", &["--dir", "/tmp/l7/src"]),
    tty: true,
    steps: &[
        Type("1"),
        Await(Client, "verified", 1),
        Await(Server, "stored 3000000 bytes", 1),
        Run(&["upload", "/tmp/l7/src/02 面向对象复习扩展.mp4"], ""),
        Await(Server, "closed the connection", 1),
    ],
    blocks: &[(
        Terminals,
        "$ cargo run -q --bin lesson07-client -- upload '/tmp/l7/src/02",
    )],
    dir: "/tmp/l7",
    files: L5_FILES,
};

const LESSON07_NOTES: Session = Session {
    page: "lessons/07_video_service/README.md",
    server: Some(("lesson07-server", &["--dir", "/tmp/l7/videos"])),
    client: ("python3", &[]),
    tty: true,
    steps: &[Type("2"), Type("1")],
    blocks: &[(ServerStdout, "127.0.0.1:39242 upload (notes, no cmd)")],
    dir: "/tmp/l7",
    files: &[
        ("src/01 后期课程安排.mp4", 3_000_000),
        ("src/02 面向对象复习扩展.mp4", 1_000_000),
    ],
};

const LESSON08_ONE_REQUEST: Session = Session {
    page: "lessons/08_browser/README.md",
    server: Some(("lesson08-server", &[])),
    client: ("lesson08-client", &["/favicon.ico"]),
    tty: false,
    steps: &[],
    blocks: &[(Terminals, "terminal 2, one request")],
    ..PLAIN
};

/// Client A keeps its connection open at its prompt, as a browser tab does; client B, started
/// once the server has logged A's request, waits in the accept queue until the server drops A
/// (`--idle-timeout` 1 s here: the block shows no number), then is served.
const LESSON08_ONE_AT_A_TIME: Session = Session {
    page: "lessons/08_browser/README.md",
    server: Some(("lesson08-server", &["--idle-timeout", "1"])),
    client: ("lesson08-client", &["--keep-alive"]),
    tty: true,
    steps: &[
        Type("/favicon.ico"),
        Await(Server, "keep-alive", 1),
        Run(&["/favicon.ico"], ""),
    ],
    blocks: &[(Terminals, "terminal 3 (B)")],
    ..PLAIN
};

/// Client A (terminal 2) is answered and stays; B (terminal 3) is answered and leaves, and
/// only then does A leave (the server's line about B is awaited first, so the two `closed`
/// lines come in the README's order).
const LESSON09_TWO_AT_ONCE: Session = Session {
    page: "lessons/09_threads/README.md",
    server: Some(("lesson09-server", &[])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[
        Type("hello"),
        Await(Server, "says", 1),
        Run(&[], "你好\n"),
        Await(Server, "closed the connection", 1),
    ],
    blocks: &[(Terminals, "terminal 3, while terminal 2 stays")],
    ..PLAIN
};

/// The many-clients summaries: their figures are masked (see [`mask`]), their form is not.
const LESSON09_MANY_09: Session = Session {
    page: "lessons/09_threads/README.md",
    server: Some(("lesson09-server", &[])),
    client: ("lesson09-client", &["--clients", "100", "--rounds", "10"]),
    blocks: &[(
        ClientStdout,
        "$ cargo run -q --bin lesson09-client -- --clients 100 --rounds 10   # lesson09-server",
    )],
    ..PLAIN
};

const LESSON09_MANY_02: Session = Session {
    page: "lessons/09_threads/README.md",
    server: Some(("lesson02-server", &[])),
    client: ("lesson09-client", &["--clients", "100", "--rounds", "10"]),
    blocks: &[(
        ClientStdout,
        "$ cargo run -q --bin lesson09-client -- --clients 100 --rounds 10   # lesson02-server",
    )],
    ..PLAIN
};

const LESSON09_HOLD_02: Session = Session {
    page: "lessons/09_threads/README.md",
    server: Some(("lesson02-server", &[])),
    client: (
        "lesson09-client",
        &["--clients", "5", "--rounds", "1", "--hold", "1"],
    ),
    blocks: &[(
        ClientStdout,
        "$ cargo run -q --bin lesson09-client -- --clients 5 --rounds 1 --hold 1   # lesson02-server",
    )],
    ..PLAIN
};

const LESSON09_HOLD_09: Session = Session {
    page: "lessons/09_threads/README.md",
    server: Some(("lesson09-server", &[])),
    client: (
        "lesson09-client",
        &["--clients", "5", "--rounds", "1", "--hold", "1"],
    ),
    blocks: &[(
        ClientStdout,
        "$ cargo run -q --bin lesson09-client -- --clients 5 --rounds 1 --hold 1   # lesson09-server",
    )],
    ..PLAIN
};

/// The child's lines are in the server's log (its stderr is the server's stdout); the child
/// logs `served by child process` itself, before it reads, so the order is fixed.
const LESSON09_PROCESSES: Session = Session {
    page: "lessons/09_threads/README.md",
    server: Some(("lesson09-server", &["--processes"])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[Type("hello")],
    blocks: &[(
        ServerStdout,
        "$ cargo run -q --bin lesson09-server -- --processes",
    )],
    ..PLAIN
};

/// Client A stays connected at its prompt while client B, piped, is answered and leaves; then A
/// talks again. Each step waits for the answer or the server's line before the next, so the
/// server's log comes in the README's order.
const LESSON11_TWO_CLIENTS: Session = Session {
    page: "lessons/11_select/README.md",
    server: Some(("lesson11-server", &[])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[
        Type("hello"),
        Await(Client, "hello123", 1),
        Run(&[], "你好\n"),
        Await(Server, "closed the connection", 1),
        Type("still here"),
    ],
    blocks: &[(Terminals, "terminal 2 (A)")],
    ..PLAIN
};

const LESSON10_MANY: Session = Session {
    page: "lessons/10_pool/README.md",
    server: Some(("lesson10-server", &[])),
    client: ("lesson09-client", &["--clients", "100", "--rounds", "10"]),
    blocks: &[(ClientStdout, "served 100/100 clients")],
    ..PLAIN
};

/// The README's clients hold for 30 s, time to start the fifth by hand; here 2 s are enough
/// (the fifth starts once the four are served), and the summaries' times are masked anyway.
const LESSON10_FIFTH_WAITS: Session = Session {
    page: "lessons/10_pool/README.md",
    server: Some(("lesson10-server", &["--workers", "4"])),
    client: ("lesson09-client", &["--clients", "4", "--hold", "2"]),
    steps: &[
        Await(Server, "served by worker", 4),
        Run(&["--clients", "1"], ""),
    ],
    blocks: &[(ClientTerminals, "served 1/1 clients")],
    ..PLAIN
};

/// A is served, B (held) waits in the queue of one, C is refused; when A leaves, B is served.
const LESSON10_QUEUE_FULL: Session = Session {
    page: "lessons/10_pool/README.md",
    server: Some(("lesson10-server", &["--workers", "1", "--queue", "1"])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[
        Type("hello"),
        Await(Server, "says", 1),
        Hold,
        Await(Server, "connected", 2),
        Run(&[], "hi\n"),
        Await(Server, "refused", 1),
    ],
    blocks: &[(
        ServerStdout,
        "1 worker thread started, and a queue with room for 1 client",
    )],
    ..PLAIN
};

const LESSON10_CTRL_C: Session = Session {
    page: "lessons/10_pool/README.md",
    server: Some(("lesson10-server", &["--workers", "2"])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[
        Type("hello"),
        Await(Server, "says", 1),
        Interrupt,
        Await(Server, "stopping", 1),
        Type("still there?"),
        Await(Server, "stopped: ", 1),
    ],
    blocks: &[(Terminals, "stopping (Ctrl-C): no new clients")],
    ..PLAIN
};

const LESSON10_TICKETS: Session = Session {
    page: "lessons/10_pool/README.md",
    client: ("lesson10-tickets", &[]),
    blocks: &[(ClientStdout, "1 ticket, 10 buyers at once")],
    ..PLAIN
};

const LESSON12: Session = Session {
    page: "lessons/12_async/README.md",
    server: Some(("lesson12-server", &[])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[Type("hello"), Type("你好")],
    blocks: &[
        (ClientTerminal, "hello123"),
        (ServerStdout, "127.0.0.1:51470 connected"),
    ],
    ..PLAIN
};

/// Ctrl-C while a client sits at its prompt: the server closes it and stops.
const LESSON12_CTRL_C: Session = Session {
    page: "lessons/12_async/README.md",
    server: Some(("lesson12-server", &[])),
    client: ("lesson02-client", &[]),
    tty: true,
    steps: &[
        Type("hello"),
        Await(Server, "says: \"hello\"", 1),
        Interrupt,
        Await(Server, "all clients closed; stopped", 1),
    ],
    blocks: &[(ServerStdout, "Ctrl-C: accepting no more clients")],
    ..PLAIN
};

/// The notes' section 4 client, as the READMEs tell the learner to save it: only the address
/// and `DATA_PATH` changed (`PORT` and `DATA` are filled in by the test). The first two lines
/// are the test's, not the notes'. `os.listdir` returns names in the file system's order, which
/// the README says may differ from run to run, so the test lists them sorted. And a program
/// started with SIGINT ignored (a job started with `&` by a script, as CI may run the tests)
/// passes that on, and Python then leaves Ctrl-C ignored: the test puts Python's handler back.
const NOTES_CLIENT: &str = r#"import os; _listdir = os.listdir; os.listdir = lambda p: sorted(_listdir(p))
import signal; signal.signal(signal.SIGINT, signal.default_int_handler)
import json
import socket
import struct
import os


# 先要有通讯工具 也就是定义传输协议
client = socket.socket()
# 同样绑定IP 端口
client.connect(('127.0.0.1', PORT))

while True:
    DATA_PATH = r'DATA'
    movie_name_list = os.listdir(DATA_PATH)
    for i, j in enumerate(movie_name_list, 1):
        print(i, j)
    choice = input('选择想要上传的电影编号>>>:').strip()
    if choice.isdigit():
        choice = int(choice)
        if choice in range(1, len(movie_name_list)+1):  # range顾头不顾尾
            # 获取文件名称
            movie_name = movie_name_list[choice-1]
            print(movie_name)
            # 拼接文件绝对路径 以找到文件
            movie_path = os.path.join(DATA_PATH, movie_name)
            # 1.预防数据过大 定义字典传输
            data_dict = {
                'file_name': '波多野老师合集.mp4',
                'desc': '这是非常重要的数据',
                'size': os.path.getsize(movie_path),
                'info': '视频很提神醒脑!'
            }
            # 2.将字典做成报头 但是字典不能直接打包成报头 所以先json序列化
            data_json = json.dumps(data_dict)
            # 3.制作字典报头
            data_first = struct.pack('i', len(data_json))
            # 4.发送字典报头
            client.send(data_first)
            # 5.发送字典
            client.send(data_json.encode('utf8'))
            # 6.发送真实数据
            with open(movie_path, 'rb') as f:
                for line in f:
                    client.send(line)
"#;

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
fn lesson05_readme_transcripts() {
    check_page("lessons/05_upload/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson06_readme_transcripts() {
    check_page("lessons/06_udp/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson07_readme_transcripts() {
    check_page("lessons/07_video_service/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson08_readme_transcripts() {
    check_page("lessons/08_browser/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson09_readme_transcripts() {
    check_page("lessons/09_threads/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson11_readme_transcripts() {
    check_page("lessons/11_select/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson10_readme_transcripts() {
    check_page("lessons/10_pool/README.md");
}

#[test]
#[cfg(target_os = "linux")]
fn lesson12_readme_transcripts() {
    check_page("lessons/12_async/README.md");
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

/// The system picks ports, so they are compared by the order they first appear in, not by
/// number: `127.0.0.1:8080`, then `127.0.0.1:49170`, `127.0.0.1:8080` become `127.0.0.1:PORT1`,
/// `127.0.0.1:PORT2`, `127.0.0.1:PORT1`, in the README's lines and in the programs' alike. Two
/// connections that a README shows with two ports must be two in the programs' output too.
fn mask_ports(lines: &[String]) -> Vec<String> {
    const HOST: &str = "127.0.0.1:";
    let mut seen: Vec<String> = Vec::new();
    let mut mask = |line: &str| {
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find(HOST) {
            out.push_str(&rest[..at + HOST.len()]);
            rest = &rest[at + HOST.len()..];
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 {
                let port = &rest[..digits];
                let n = match seen.iter().position(|p| p == port) {
                    Some(i) => i + 1,
                    None => {
                        seen.push(port.to_string());
                        seen.len()
                    }
                };
                out.push_str(&format!("PORT{n}"));
                rest = &rest[digits..];
            }
        }
        out + rest
    };
    lines.iter().map(|l| mask(l)).collect()
}

/// A program's output as the lines a README shows: terminal line ends made plain, and a line
/// drawn again and again on a terminal (a progress bar: each drawing starts with `\r` and
/// ESC `[2K`, "to the start, clear the line") shown as its last drawing, as the screen shows it.
fn shown_lines(raw: &str) -> Vec<String> {
    const REDRAW: &str = "\r\x1b[2K";
    raw.replace("\r\n", "\n")
        .lines()
        .map(|line| line.rsplit(REDRAW).next().unwrap_or(line).to_string())
        .collect()
}

/// The path of a binary a session runs. Every session's binary is built up to date first:
/// cargo builds this package's binaries before its tests, but lesson 12's server belongs to
/// the workspace's other package.
fn binary(name: &str) -> PathBuf {
    let mut names: Vec<&str> = SESSIONS
        .iter()
        .flat_map(|s| s.server.map(|(bin, _)| bin).into_iter().chain([s.client.0]))
        .filter(|bin| *bin != "python3")
        .collect();
    names.sort_unstable();
    names.dedup();
    common::workspace_binaries(&names);
    common::binary(name)
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
    /// On a terminal, `end` is what the learner types last (Ctrl-D at the start of a line: end
    /// of input; Ctrl-C: interrupt).
    fn finish(&mut self, tty: bool, end: &[u8]) {
        if tty {
            self.send(end);
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

/// Waits until the program that `script` (process `root`) runs is asleep in the system,
/// reading its terminal. Python checks for Ctrl-C only when a system call is interrupted: a
/// SIGINT that comes after the `>>>:` is printed but before the read starts is noted and then
/// left unchecked while the read waits for a line that never comes (a learner would press
/// Ctrl-C a second time). Python 3.11, sent Ctrl-C as soon as `>>>:` appeared on its
/// terminal, kept waiting in 40 of 200 tries; a person is never that quick.
fn waiting_in_a_read(root: u32) {
    // The process under `script`'s: the one with no child (script → sh → python3).
    let leaf = || {
        let mut pid = root;
        'down: loop {
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                // `PID (COMM) STATE PPID …`; COMM may hold spaces, the last `)` ends it. (A
                // process that has just ended has no stat any more: skipped.)
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                let Some((_, rest)) = stat.rsplit_once(')') else {
                    continue;
                };
                if rest.split_whitespace().nth(1) == Some(pid.to_string().as_str()) {
                    pid = entry.file_name().to_str()?.parse().ok()?;
                    continue 'down;
                }
            }
            return Some(pid);
        }
    };
    let reading = || {
        let Some(pid) = leaf().filter(|&pid| pid != root) else {
            return false;
        };
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        ["wait_woken", "n_tty_read", "select", "poll"]
            .iter()
            .any(|w| wchan.contains(w))
    };
    wait_until("the notes' client waiting in a read", reading, String::new);
}

fn check_page(page: &str) {
    let sessions: Vec<&&Session> = SESSIONS.iter().filter(|s| s.page == page).collect();
    assert!(!sessions.is_empty(), "no session for {page}");
    for session in sessions {
        run(session);
    }
}

fn run(session: &Session) {
    if session.client.0 == "python3" && !common::python3_runs() {
        eprintln!(
            "{}: skipped the session with the notes' Python client: no python3 here",
            session.page
        );
        return;
    }
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let tmp = common::Scratch::new(&format!(
        "transcript-{}",
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp_text = tmp.path().to_string_lossy().into_owned();
    // The README's folder in an option becomes the temporary one.
    let subst = |arg: &str| -> String {
        match arg.strip_prefix(session.dir) {
            Some(rest) if !session.dir.is_empty() => format!("{tmp_text}{rest}"),
            _ => arg.to_string(),
        }
    };
    for (path, size) in session.files {
        let path = tmp.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*size).map(|i| i as u8).collect();
        std::fs::write(&path, bytes).unwrap();
    }

    let server = session.server.map(|(bin, args)| {
        let args: Vec<String> = args.iter().map(|a| subst(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::Server::start(&binary(bin).to_string_lossy(), &args)
    });

    let (bin, options) = session.client;
    let python = bin == "python3";
    let client_args = |options: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        if let Some(server) = &server {
            if !options.contains(&"--addr") {
                args.extend(["--addr".to_string(), server.addr.to_string()]);
            }
        }
        args.extend(
            options
                .iter()
                .map(|o| subst(&o.replace("FREE_UDP_PORT", &free_udp_port()))),
        );
        args
    };
    let (program, args) = if python {
        let port = server.as_ref().expect("no server").addr.port();
        let code = NOTES_CLIENT
            .replace("('127.0.0.1', PORT)", &format!("('127.0.0.1', {port})"))
            .replace("r'DATA'", &format!("r'{tmp_text}/src'"));
        (PathBuf::from("python3"), vec!["-c".to_string(), code])
    } else {
        (binary(bin), client_args(options))
    };
    let mut client = Client::start(&program, &args, session.tty);
    // The output of each Step::Run, stdout then stderr.
    let mut runs: Vec<String> = Vec::new();
    // The connections of Step::Hold, closed when the session ends.
    let mut held = Vec::new();

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
            Stop | Continue | Interrupt => {
                let signal = match step {
                    Stop => "-STOP",
                    Continue => "-CONT",
                    _ => "-INT",
                };
                common::kill(signal, server.as_ref().expect("no server").pid());
            }
            Hold => held.push(common::connect(server.as_ref().expect("no server").addr)),
            Run(options, input) => {
                let mut other = Client::start(&binary(bin), &client_args(options), false);
                other.send(input.as_bytes());
                other.finish(false, b"");
                runs.push(text(&other.stdout) + &text(&other.stderr));
            }
        }
    }
    if session.tty {
        prompt(&client, typed + 1);
    }
    // The notes' client has no way out but Ctrl-C.
    if python && session.tty {
        waiting_in_a_read(client.child.id());
    }
    client.finish(session.tty, if python { b"\x03" } else { b"\x04" });

    // What a README shows of a program's output: ports masked, the temporary folder written as
    // the README's, and the rest of `mask`.
    let shown = |raw: &str| -> Vec<String> {
        shown_lines(raw)
            .into_iter()
            .map(|l| {
                let l = if session.dir.is_empty() {
                    l
                } else {
                    l.replace(&tmp_text, session.dir)
                };
                mask(&l)
            })
            .collect()
    };
    for &(shown_as, key) in session.blocks {
        let block = find_block(session.page, key);
        let expected: Vec<String> = block
            .lines
            .iter()
            .filter(|l| !l.starts_with("cargo ") && !l.starts_with("$ "))
            .filter(|l| {
                !matches!(shown_as, Terminals | ClientTerminals)
                    || !(l.is_empty() || l.starts_with("terminal "))
            })
            .map(|l| mask(l))
            .collect();
        let expected = mask_ports(&expected);
        let actual = || -> Vec<String> {
            let server_lines = || {
                let server = server.as_ref().expect("no server");
                shown(&format!(
                    "listening on {}\n{}",
                    server.addr,
                    server.stdout()
                ))
            };
            let client_lines = || {
                if session.tty {
                    shown(&text(&client.stdout))
                } else {
                    shown(&(text(&client.stdout) + &text(&client.stderr)))
                }
            };
            match shown_as {
                ServerStdout => server_lines(),
                ClientStdout | ClientTerminal => shown(&text(&client.stdout)),
                ClientStderr => shown(&text(&client.stderr)),
                Terminals | ClientTerminals => {
                    let mut all = match shown_as {
                        Terminals => server_lines(),
                        _ => Vec::new(),
                    };
                    all.extend(client_lines());
                    for run in &runs {
                        all.extend(shown(run));
                    }
                    all.retain(|l| !l.is_empty());
                    all
                }
            }
        };
        // A server logs on its own time: wait until it has printed what the block shows.
        let actual = || mask_ports(&actual());
        let deadline = Instant::now() + SAFETY;
        while !same(&expected, &actual()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let actual = actual();
        if !same(&expected, &actual) {
            let differ = (0..).find(|&i| expected.get(i) != actual.get(i)).unwrap();
            panic!(
                "{}:{}: the block ({shown_as:?}, ports numbered) is not what the programs print; \
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
    // The server goes first, then the scratch folder it was writing into.
    drop(held);
    drop(server);
    drop(tmp);
}

/// Whether the README's lines match the program's; a README line `…` stands for any number of
/// lines (a Python traceback, say).
fn same(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "…" => {
            (0..=actual.len()).any(|i| same(rest, &actual[i..]))
        }
        Some((first, rest)) => actual.first() == Some(first) && same(rest, &actual[1..]),
    }
}

/// What differs from run to run besides ports. A transfer's time and speed
/// (`in 0.47 s (1491.4 MiB/s)`) become `in T s (R MiB/s)`. And a client whose write fails
/// because the server dropped it gets `Broken pipe` if the server's RST arrived before that
/// write, `Connection reset by peer` if during it (the README says both happen): the second is
/// written as the first.
fn mask(line: &str) -> String {
    let mut line = line.replace(
        "Connection reset by peer (os error 104)",
        "Broken pipe (os error 32)",
    );
    if let Some(end) = line.find(" MiB/s)") {
        if let Some(start) = line[..end].rfind(" in ") {
            line.replace_range(start..end + " MiB/s)".len(), " in T s (R MiB/s)");
        }
    }
    // Lesson 09: a child's process id, and the times of lesson09-client's summary (every
    // number after a space or a parenthesis: `slowest connect: N ms (client N)`).
    if let Some(at) = line.find("child process ") {
        let start = at + "child process ".len();
        let digits = line[start..].len()
            - line[start..]
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        line.replace_range(start..start + digits, "PID");
    }
    if ["slowest ", "round trips: ", "elapsed: "]
        .iter()
        .any(|p| line.starts_with(p))
    {
        let mut masked = String::new();
        let mut after_gap = true;
        let mut in_number = false;
        for c in line.chars() {
            if (c.is_ascii_digit() || (in_number && c == '.')) && (after_gap || in_number) {
                if !in_number {
                    masked.push('N');
                }
                in_number = true;
            } else {
                in_number = false;
                masked.push(c);
            }
            after_gap = c == ' ' || c == '(';
        }
        // A time shows in ms below one second, in s above: a wait that is seconds in the
        // README may be milliseconds in a replay on a slow machine.
        line = masked.replace("N ms", "N s");
    }
    // Lesson 10: which worker of a pool takes a client is up to the threads.
    if let Some(at) = line.find(" served by worker ") {
        line.truncate(at + " served by worker ".len());
        line.push('N');
    }
    line
}
