//! The wire as the binaries show it: `--trace` and `--hex` under it, and the wire pictures in
//! the lessons' READMEs, drawn from `--trace`, which must match what a fresh run does.

mod common;
#[cfg(target_os = "linux")]
#[path = "../examples/wire_picture/lanes.rs"]
mod lanes;
#[cfg(target_os = "linux")]
#[path = "../examples/wire_picture/picture.rs"]
mod picture;

use common::{run_client, Server};

const SERVER02: &str = env!("CARGO_BIN_EXE_lesson02-server");
const CLIENT02: &str = env!("CARGO_BIN_EXE_lesson02-client");

/// The client's stderr when it sends `你好` to lesson 02's server with `args`.
fn trace_of_nihao(args: &[&str]) -> String {
    let server = Server::start(SERVER02, &[]);
    let addr = server.addr.to_string();
    let mut all = vec!["--addr", addr.as_str()];
    all.extend_from_slice(args);
    let out = run_client(CLIENT02, &all, "你好\n".as_bytes());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "你好123\n");
    String::from_utf8(out.stderr).unwrap()
}

/// UTF-8 spends three bytes on each of 你 and 好: `--hex` shows them under the text.
#[test]
fn hex_shows_the_utf8_bytes_under_each_read_and_write() {
    assert_eq!(
        trace_of_nihao(&["--trace", "--hex"]),
        "write 6 bytes: \"你好\"\n  hex: e4 bd a0 e5 a5 bd\n\
         read 9 bytes: \"你好123\"\n  hex: e4 bd a0 e5 a5 bd 31 32 33\n"
    );
}

/// Asking for the bytes is asking for the trace: `--hex` alone turns `--trace` on.
#[test]
fn hex_alone_turns_the_trace_on() {
    assert_eq!(
        trace_of_nihao(&["--hex"]),
        trace_of_nihao(&["--trace", "--hex"])
    );
}

/// Without `--hex`, the trace is what the READMEs quote: one line per call.
#[test]
fn trace_without_hex_is_one_line_per_call() {
    assert_eq!(
        trace_of_nihao(&["--trace"]),
        "write 6 bytes: \"你好\"\nread 9 bytes: \"你好123\"\n"
    );
}

/// A length header is four bytes that are not text: `35 0f 00 00` is 3893, little-endian.
/// `--hex` shows the first 32 bytes of a long read and marks the cut with `…`.
#[cfg(unix)]
#[test]
fn hex_shows_a_length_header_and_cuts_long_buffers() {
    let server = Server::start(
        env!("CARGO_BIN_EXE_lesson04-server"),
        &["--header", "fixed"],
    );
    let addr = server.addr.to_string();
    let out = run_client(
        env!("CARGO_BIN_EXE_lesson04-client"),
        &["--addr", &addr, "--header", "fixed", "--hex"],
        b"seq 1 1000\n",
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("read 4 bytes: \"5\\x0f\\x00\\x00\"\n  hex: 35 0f 00 00\n"),
        "{err}"
    );
    // The body's first read: its first 32 bytes, then `…`.
    assert!(
        err.contains(
            "\n  hex: 31 0a 32 0a 33 0a 34 0a 35 0a 36 0a 37 0a 38 0a 39 0a \
             31 30 0a 31 31 0a 31 32 0a 31 33 0a 31 34 …\n"
        ),
        "{err}"
    );
}

/// The pictures in the READMEs: each is drawn again from a fresh run of its lesson and must be
/// the committed file, byte for byte (it holds no port, pid or time). When a lesson changes
/// what it reads or writes, this fails until `cargo run --example wire_picture` draws it anew.
///
/// Drawn and checked on Linux only: the scenarios of 03 and 04 run `seq` through `sh`. The
/// event lists do not depend on timing: each write is one system call, a read waits for bytes
/// that are already on their way in one piece, and the client keeps its end open until the
/// server has answered the last command (see `examples/wire_picture/picture.rs`, the drawing
/// code, included here from beside the example that is its one other user). The ladder's
/// pictures (09-12, `lanes.rs`) take one act of their script at a time and wait for the
/// server's lines about it before the next, so the server writes them in one order.
#[cfg(target_os = "linux")]
mod pictures {
    use std::path::Path;

    use super::lanes::{self, ladder};
    use super::picture::{draw, scenario};

    /// Where cargo put the binaries.
    fn bins() -> &'static Path {
        Path::new(env!("CARGO_BIN_EXE_lesson03-server"))
            .parent()
            .unwrap()
    }

    fn check(lesson: &str) {
        let sc = scenario(lesson).unwrap();
        same_as_committed(sc.svg, &draw(sc, bins()).unwrap(), lesson);
    }

    /// A ladder's picture: `name` as `cargo run --example wire_picture -- NAME` takes it.
    fn check_lanes(name: &str) {
        let l = ladder(name).unwrap();
        // Lesson 12's server is the workspace's other package: built here, up to date.
        super::common::workspace_binaries(&[l.server]);
        same_as_committed(l.svg, &lanes::draw(l, bins()).unwrap(), name);
    }

    fn same_as_committed(svg: &str, fresh: &str, lesson: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(svg);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if fresh != committed {
            let desc = |svg: &str| {
                svg.split_once("<desc>")
                    .and_then(|(_, rest)| rest.split_once("</desc>"))
                    .map(|(d, _)| d.to_string())
                    .unwrap_or_default()
            };
            panic!(
                "{svg} no longer shows what the programs do: run `cargo run --example \
                 wire_picture -- {lesson}` and look at it.\n--- committed events:{}--- a fresh \
                 run:{}",
                desc(&committed),
                desc(fresh)
            );
        }
    }

    /// Lesson 03: the second read returns more of the answer to `seq 1 1000` (the leftover).
    #[test]
    fn lesson03_picture_shows_the_leftover() {
        check("03");
    }

    /// Lesson 04: a header, then exact reads of every answer.
    #[test]
    fn lesson04_picture_shows_headers_and_exact_reads() {
        check("04");
    }

    /// Lesson 06: three datagrams in, three separate datagrams out.
    #[test]
    fn lesson06_picture_shows_three_datagrams_as_three() {
        check("06");
    }

    /// Lesson 09: a thread for each client, each blocked in read() until its own client talks.
    #[test]
    fn lesson09_picture_shows_a_thread_for_each_client() {
        check_lanes("09");
    }

    /// Lesson 09 `--processes`: a child process for each client, its socket as stdin and stdout.
    #[test]
    fn lesson09_processes_picture_shows_a_child_for_each_client() {
        check_lanes("09-processes");
    }

    /// Lesson 10: two workers serve A and B; C waits in the queue until A leaves.
    #[test]
    fn lesson10_picture_shows_the_third_client_waiting_for_a_worker() {
        check_lanes("10");
    }

    /// Lesson 11: one thread; only wait() waits, every read and write after it is ready.
    #[test]
    fn lesson11_picture_shows_one_thread_and_the_one_call_that_waits() {
        check_lanes("11");
    }

    /// Lesson 11 `--busy`: one thread that never waits, every read tried until WouldBlock.
    #[test]
    fn lesson11_busy_picture_shows_the_reads_that_would_block() {
        check_lanes("11-busy");
    }

    /// Lesson 12: one thread, a task per client, each task waiting where its read would block.
    #[test]
    fn lesson12_picture_shows_the_tasks_waiting_on_one_thread() {
        check_lanes("12");
    }
}
