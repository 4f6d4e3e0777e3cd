//! The wire as the binaries show it: `--hex` under `--trace`, the machine-readable trace file,
//! and the wire pictures in the lessons' READMEs, which must match what a fresh run does.

mod common;

use common::{run_client, Server};

const SERVER02: &str = env!("CARGO_BIN_EXE_lesson02-server");
const CLIENT02: &str = env!("CARGO_BIN_EXE_lesson02-client");

/// The client's stderr when it sends `你好` to lesson 02's server with `args`.
fn trace_of_nihao(args: &[&str], env: Option<(&str, &std::path::Path)>) -> String {
    let server = Server::start(SERVER02, &[]);
    let addr = server.addr.to_string();
    let mut all = vec!["--addr", addr.as_str()];
    all.extend_from_slice(args);
    let out = match env {
        None => run_client(CLIENT02, &all, "你好\n".as_bytes()),
        Some((key, value)) => {
            // run_client has no environment parameter; the variable reaches only this child.
            let mut child = std::process::Command::new(CLIENT02)
                .args(&all)
                .env(key, value)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all("你好\n".as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        }
    };
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "你好123\n");
    String::from_utf8(out.stderr).unwrap()
}

/// UTF-8 spends three bytes on each of 你 and 好: `--hex` shows them under the text.
#[test]
fn hex_shows_the_utf8_bytes_under_each_read_and_write() {
    assert_eq!(
        trace_of_nihao(&["--trace", "--hex"], None),
        "write 6 bytes: \"你好\"\n  hex: e4 bd a0 e5 a5 bd\n\
         read 9 bytes: \"你好123\"\n  hex: e4 bd a0 e5 a5 bd 31 32 33\n"
    );
}

/// Asking for the bytes is asking for the trace: `--hex` alone turns `--trace` on.
#[test]
fn hex_alone_turns_the_trace_on() {
    assert_eq!(
        trace_of_nihao(&["--hex"], None),
        trace_of_nihao(&["--trace", "--hex"], None)
    );
}

/// Without `--hex`, the trace is what the READMEs quote: one line per call.
#[test]
fn trace_without_hex_is_one_line_per_call() {
    assert_eq!(
        trace_of_nihao(&["--trace"], None),
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

/// `SOCKET_LESSONS_TRACE_FILE`: one JSON line per call, all the bytes in hex, even without
/// `--trace` (and then nothing on stderr).
#[test]
fn trace_file_has_one_json_line_per_call() {
    let dir = std::env::temp_dir().join(format!("wire-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.jsonl");
    let _ = std::fs::remove_file(&file);
    let stderr = trace_of_nihao(&[], Some(("SOCKET_LESSONS_TRACE_FILE", &file)));
    assert_eq!(stderr, "");
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let fields = |v: &serde_json::Value| {
        (
            v["seq"].as_u64().unwrap(),
            v["label"].as_str().unwrap().to_string(),
            v["op"].as_str().unwrap().to_string(),
            v["n"].as_u64().unwrap(),
            v["hex"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        fields(&lines[0]),
        (1, String::new(), "write".into(), 6, "e4bda0e5a5bd".into())
    );
    assert_eq!(
        fields(&lines[1]),
        (
            2,
            String::new(),
            "read".into(),
            9,
            "e4bda0e5a5bd313233".into()
        )
    );
    assert!(lines[0]["micros"].as_u64().unwrap() <= lines[1]["micros"].as_u64().unwrap());
}

/// The pictures in the READMEs: each is drawn again from a fresh run of its lesson and must be
/// the committed file, byte for byte (it holds no port, pid or time). When a lesson changes
/// what it reads or writes, this fails until `cargo run --example wire_picture` draws it anew.
///
/// Drawn and checked on Linux only: the scenarios of 03 and 04 run `seq` through `sh`. The
/// event lists do not depend on timing: each write is one system call, a read waits for bytes
/// that are already on their way in one piece, and the client keeps its end open until the
/// server has answered the last command (see `src/picture.rs`).
#[cfg(target_os = "linux")]
mod pictures {
    use std::path::Path;

    use socket_lessons::picture::{draw, scenario};

    fn check(lesson: &str) {
        let sc = scenario(lesson).unwrap();
        let bins = Path::new(env!("CARGO_BIN_EXE_lesson03-server"))
            .parent()
            .unwrap();
        let fresh = draw(sc, bins).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(sc.svg);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if fresh != committed {
            let desc = |svg: &str| {
                svg.split_once("<desc>")
                    .and_then(|(_, rest)| rest.split_once("</desc>"))
                    .map(|(d, _)| d.to_string())
                    .unwrap_or_default()
            };
            panic!(
                "{} no longer shows what the programs do: run `cargo run --example wire_picture \
                 -- {lesson}` and look at it.\n--- committed events:{}--- a fresh run:{}",
                sc.svg,
                desc(&committed),
                desc(&fresh)
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
}
