//! Lesson 07: the video service (优酷). The real binaries on port 0; raw sockets where a test
//! plays a misbehaving client; a fake server written here where it plays a malicious server.
//!
//! Every test works in its own scratch directory under `target/tmp`, with the server's
//! `--dir` (or the client's `--out`) one level down, so "nothing written outside" can be
//! checked by listing the parent.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_bytes_eq, entries, random_bytes, read_to_end, run, run_client, Scratch, Server, SAFETY,
};
use serde_json::{json, Value};

#[path = "common/bare_names.rs"]
mod bare_names;
use bare_names::{bare_name_cases, Refused};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson07-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_lesson07-client");

fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// A frame as the notes build it: `struct.pack('i', len(j)) + j`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn send_json(sock: &mut TcpStream, value: &Value) {
    sock.write_all(&frame(value.to_string().as_bytes()))
        .unwrap();
}

/// Reads one reply frame and parses it.
fn recv_json(sock: &mut TcpStream) -> Value {
    try_recv_json(sock).unwrap()
}

/// Reads one reply frame and parses it, or says why there was none.
fn try_recv_json(sock: &mut TcpStream) -> std::io::Result<Value> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len)?;
    let len = i32::from_le_bytes(len);
    assert!((1..=65536).contains(&len), "reply length {len}");
    let mut body = vec![0u8; len as usize];
    sock.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Asserts `{"ok":false,"error":…}` and returns the message.
fn expect_refusal(sock: &mut TcpStream) -> String {
    let reply = recv_json(sock);
    assert_eq!(reply["ok"], json!(false), "{reply}");
    reply["error"].as_str().unwrap().to_string()
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(SERVER, &args)
}

fn client(server: &Server, args: &[&str]) -> std::process::Output {
    let addr = server.addr.to_string();
    let mut all = vec!["--addr", addr.as_str()];
    all.extend_from_slice(args);
    run_client(CLIENT, &all, b"")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn upload_list_download_keep_every_byte_of_a_chinese_name_with_a_space() {
    let tmp = Scratch::new("lesson07-roundtrip");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    let name = "01 后期课程安排.mp4";
    let data = random_bytes(5, 3_000_000);
    fs::create_dir(tmp.join("src")).unwrap();
    let src = tmp.join("src").join(name);
    fs::write(&src, &data).unwrap();

    let up = client(&server, &["upload", src.to_str().unwrap()]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let digest = xxh3_hex(&data);
    let summary = text(&up.stdout);
    assert!(summary.contains(name) && summary.contains(&digest) && summary.contains("verified"));
    assert_bytes_eq(
        fs::read(videos.join(name)).unwrap(),
        &data,
        "the stored file",
    );

    let list = client(&server, &["list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert_eq!(text(&list.stdout).trim(), format!("3000000  {name}"));

    let out = tmp.join("out");
    let down = client(&server, &["download", name, "--out", out.to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(text(&down.stdout).contains(&digest));
    assert_bytes_eq(
        fs::read(out.join(name)).unwrap(),
        &data,
        "the downloaded file",
    );
    assert_eq!(entries(&out), [name]);
    server.wait_for_log(&format!("sent 3000000 bytes, xxh3 {digest}"));
}

#[test]
fn downloading_a_missing_name_fails_with_a_clear_message() {
    let tmp = Scratch::new("lesson07-missing");
    let server = start(&tmp.join("videos"), &[]);
    let out = tmp.join("out");
    let down = client(
        &server,
        &["download", "nope.mp4", "--out", out.to_str().unwrap()],
    );
    assert!(!down.status.success());
    assert!(
        text(&down.stderr).contains("no such file: nope.mp4"),
        "{}",
        text(&down.stderr)
    );
    assert!(!out.exists() || entries(&out).is_empty());
}

/// The notes' client: header without `cmd`, extra keys, body, again on the same connection,
/// never reading. The server answers nothing and stores both.
#[test]
fn notes_style_uploads_without_cmd_get_no_reply() {
    let tmp = Scratch::new("lesson07-notes");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    let first = random_bytes(1, 100_000);
    let second = random_bytes(2, 70_000);

    let mut sock = server.connect();
    for (name, data) in [("01 a.mp4", &first), ("02 视频.mp4", &second)] {
        // json.dumps escapes non-ASCII, as the notes' Python does.
        let header = format!(
            r#"{{"file_name": "{}", "desc": "\u8fd9\u662f", "size": {}, "info": "x"}}"#,
            name.replace("视频", "\\u89c6\\u9891"),
            data.len()
        );
        sock.write_all(&frame(header.as_bytes())).unwrap();
        sock.write_all(data).unwrap();
    }
    // Done sending; the server sends nothing back, then closes when it sees our FIN.
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut sock), b"");

    assert_bytes_eq(
        fs::read(videos.join("01 a.mp4")).unwrap(),
        &first,
        "01 a.mp4",
    );
    assert_bytes_eq(
        fs::read(videos.join("02 视频.mp4")).unwrap(),
        &second,
        "02 视频.mp4",
    );
    assert_eq!(entries(&videos).len(), 2);
}

/// The notes open the target with 'ab': a second upload of a name was glued onto the first.
#[test]
fn reupload_replaces_the_file_instead_of_appending() {
    let tmp = Scratch::new("lesson07-replace");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    let src = tmp.join("same.mp4");
    for seed in [1, 2] {
        let data = random_bytes(seed, 50_000 + seed as usize);
        fs::write(&src, &data).unwrap();
        let up = client(&server, &["upload", src.to_str().unwrap()]);
        assert!(up.status.success(), "{}", text(&up.stderr));
        assert_bytes_eq(
            fs::read(videos.join("same.mp4")).unwrap(),
            &data,
            "same.mp4",
        );
    }
    assert_eq!(entries(&videos), ["same.mp4"]);
}

const BAD_NAMES: &[&str] = &[
    "",
    ".",
    "..",
    "../escape.mp4",
    "../../escape.mp4",
    "/tmp/escape.mp4",
    "a/b.mp4",
    "a\\b.mp4",
    "..\\escape.mp4",
    "nul\0byte.mp4",
    "line\nbreak.mp4",
    ".hidden.mp4",
    ".upload-1-0.tmp",
];

#[test]
fn bad_names_are_refused_and_nothing_is_written_outside_dir() {
    let tmp = Scratch::new("lesson07-badnames");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    let long = "n".repeat(256);
    let names: Vec<&str> = BAD_NAMES.iter().copied().chain([long.as_str()]).collect();

    for name in &names {
        // Upload with `cmd`: refused before any body byte is read.
        let mut sock = server.connect();
        send_json(
            &mut sock,
            &json!({ "cmd": "upload", "file_name": name, "size": 3 }),
        );
        let msg = expect_refusal(&mut sock);
        assert!(msg.contains("file name"), "{name:?}: {msg}");
        assert_eq!(read_to_end(&mut sock), b"", "the connection ends");

        // Download: refused the same way.
        let mut sock = server.connect();
        send_json(&mut sock, &json!({ "cmd": "download", "file_name": name }));
        expect_refusal(&mut sock);

        // The notes' style (no `cmd`): no reply, the connection is closed, nothing stored.
        let mut sock = server.connect();
        send_json(&mut sock, &json!({ "file_name": name, "size": 3 }));
        assert_eq!(read_to_end(&mut sock), b"");

        // The client refuses them locally, before connecting (a NUL cannot be an argument).
        if name.contains('\0') {
            continue;
        }
        let out = tmp.join("out");
        let down = client(&server, &["download", name, "--out", out.to_str().unwrap()]);
        assert!(!down.status.success(), "{name:?}");
    }
    assert_eq!(entries(&videos), Vec::<String>::new());
    assert_eq!(entries(tmp.path()), ["videos"]);
    // A good name still works afterwards.
    let mut sock = server.connect();
    send_json(
        &mut sock,
        &json!({ "cmd": "upload", "file_name": "ok.mp4", "size": 3 }),
    );
    sock.write_all(b"abc").unwrap();
    assert_eq!(recv_json(&mut sock)["ok"], json!(true));
}

/// The names lessons 05 and 07 and the `bare_name` exercise are all tested with
/// (tests/common/bare_names.rs) and an absolute path, each uploaded on a connection of its own.
/// Lesson 07 refuses what lesson 05's bare-name rule refuses, and more: look-alike names
/// everywhere, and on Windows the names Windows keeps for itself. The rest is stored.
#[test]
fn names_refused_are_lesson05s_plus_look_alikes_and_windows_own() {
    let tmp = Scratch::new("lesson07-names");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    let mut cases = bare_name_cases();
    let absolute = tmp.join("abs.mp4").to_str().unwrap().to_string();
    cases.push((absolute, Refused::ByTheBareNameRule));
    let mut stored = Vec::new();
    for (name, refused) in cases {
        let mut sock = server.connect();
        send_json(
            &mut sock,
            &json!({ "cmd": "upload", "file_name": name, "size": 3 }),
        );
        let refuses = match refused {
            Refused::ByTheBareNameRule | Refused::AsALookAlike => true,
            Refused::OnWindows => cfg!(windows),
            Refused::No => false,
        };
        if !refuses {
            sock.write_all(b"abc").unwrap();
        }
        // A name accepted where it should be refused: the server waits for the body, and the
        // read below ends at the socket's safety-net timeout.
        let reply = try_recv_json(&mut sock)
            .unwrap_or_else(|e| panic!("{name:?}: no reply ({e}); expected refused: {refuses}"));
        if refuses {
            assert_eq!(
                reply["ok"],
                json!(false),
                "{name:?} must be refused: {reply}"
            );
            let msg = reply["error"].as_str().unwrap();
            assert!(msg.contains("file name"), "{name:?}: {msg}");
        } else {
            assert_eq!(reply["ok"], json!(true), "{name:?} must be stored: {reply}");
            assert_eq!(fs::read(videos.join(&name)).unwrap(), b"abc", "{name:?}");
            stored.push(name);
        }
    }
    stored.sort();
    assert_eq!(entries(&videos), stored);
    assert_eq!(entries(tmp.path()), ["videos"]);
}

#[test]
fn bad_frames_get_an_error_reply_and_the_server_keeps_serving() {
    let tmp = Scratch::new("lesson07-badframes");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative length", (-1i32).to_le_bytes().to_vec()),
        ("huge length", i32::MAX.to_le_bytes().to_vec()),
        ("zero length", 0i32.to_le_bytes().to_vec()),
        ("bad JSON", frame(b"{\"cmd\": upload")),
        ("not an object", frame(b"[1, 2]")),
        (
            "missing size",
            frame(br#"{"cmd":"upload","file_name":"a.mp4"}"#),
        ),
        (
            "mistyped size",
            frame(br#"{"cmd":"upload","file_name":"a.mp4","size":"3"}"#),
        ),
        (
            "negative size",
            frame(br#"{"cmd":"upload","file_name":"a.mp4","size":-3}"#),
        ),
        (
            "mistyped name",
            frame(br#"{"cmd":"download","file_name":7}"#),
        ),
        (
            "unknown cmd",
            frame(br#"{"cmd":"delete","file_name":"a.mp4"}"#),
        ),
        ("cmd not a string", frame(br#"{"cmd":1}"#)),
    ];
    for (what, bytes) in &cases {
        let mut sock = server.connect();
        sock.write_all(bytes).unwrap();
        let msg = expect_refusal(&mut sock);
        assert!(!msg.is_empty(), "{what}");
        assert_eq!(read_to_end(&mut sock), b"", "{what}: the connection ends");
    }
    assert_eq!(entries(&videos), Vec::<String>::new());

    // The server still serves, and lost nothing.
    let src = tmp.join("after.mp4");
    fs::write(&src, b"still here").unwrap();
    let up = client(&server, &["upload", src.to_str().unwrap()]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert_eq!(entries(&videos), ["after.mp4"]);
}

/// A client that leaves in the middle of a file: the notes' server spun forever on `b''`.
#[test]
fn truncated_body_leaves_no_partial_or_temporary_file() {
    let tmp = Scratch::new("lesson07-truncated");
    let videos = tmp.join("videos");
    let server = start(&videos, &["--max-size", "1000000"]);

    for header in [
        json!({ "cmd": "upload", "file_name": "cut.mp4", "size": 100_000 }),
        json!({ "file_name": "cut-notes.mp4", "size": 100_000 }),
    ] {
        let mut sock = server.connect();
        send_json(&mut sock, &header);
        sock.write_all(&random_bytes(3, 40_000)).unwrap();
        drop(sock);
    }
    server.wait_for_log("\"cut.mp4\" 100000 bytes: failed: client left after 40000 of 100000");
    server.wait_for_log("\"cut-notes.mp4\" 100000 bytes: failed: client left after 40000");

    // Over --max-size: refused before a byte of body is stored.
    let mut sock = server.connect();
    send_json(
        &mut sock,
        &json!({ "cmd": "upload", "file_name": "big.mp4", "size": 1_000_001 }),
    );
    assert!(expect_refusal(&mut sock).contains("over the limit"));
    assert_eq!(entries(&videos), Vec::<String>::new());
}

/// One silent client holds a thread and a slot, nothing else: 16 uploads run next to it.
#[test]
fn an_idle_connection_does_not_block_16_parallel_uploads() {
    let tmp = Scratch::new("lesson07-parallel");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    // Silent, and one that stops in the middle of its header.
    let _idle = server.connect();
    let mut half = server.connect();
    half.write_all(&[0x20, 0x00]).unwrap();

    let srcdir = tmp.join("src");
    fs::create_dir(&srcdir).unwrap();
    let addr = server.addr.to_string();
    let workers: Vec<_> = (0..16)
        .map(|i| {
            let path = srcdir.join(format!("part {i:02}.mp4"));
            fs::write(&path, random_bytes(100 + i, 200_000 + i as usize)).unwrap();
            let addr = addr.clone();
            thread::spawn(move || {
                let args = ["--addr", &addr, "upload", path.to_str().unwrap()];
                run_client(CLIENT, &args, b"")
            })
        })
        .collect();
    for worker in workers {
        let out = worker.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert_eq!(entries(&videos).len(), 16);
    for i in 0..16u64 {
        let name = format!("part {i:02}.mp4");
        let stored = fs::read(videos.join(&name)).unwrap();
        assert_bytes_eq(stored, random_bytes(100 + i, 200_000 + i as usize), &name);
    }
}

#[test]
fn idle_timeout_disconnects_a_silent_client() {
    let tmp = Scratch::new("lesson07-idle");
    let server = start(&tmp.join("videos"), &["--idle-timeout", "1"]);
    let mut sock = server.connect();
    // The server closes us (after 1 s of silence); SAFETY is the test's own safety net.
    assert_eq!(read_to_end(&mut sock), b"");
    server.wait_for_log("idle for 1 s, disconnected");
}

#[test]
fn a_client_over_max_clients_gets_a_busy_reply() {
    let tmp = Scratch::new("lesson07-busy");
    let server = start(&tmp.join("videos"), &["--max-clients", "1"]);
    let mut first = server.connect();
    send_json(&mut first, &json!({ "cmd": "list" }));
    assert_eq!(recv_json(&mut first)["ok"], json!(true)); // now it surely holds the slot

    let mut second = server.connect();
    assert!(expect_refusal(&mut second).contains("server busy"));
    assert_eq!(read_to_end(&mut second), b"");

    // The slot is given back when the first client leaves.
    drop(first);
    server.wait_for_log("closed the connection");
    let deadline = Instant::now() + SAFETY;
    loop {
        let mut third = server.connect();
        send_json(&mut third, &json!({ "cmd": "list" }));
        if recv_json(&mut third)["ok"] == json!(true) {
            break;
        }
        // The first thread logs "closed" just before it frees its slot: try again.
        assert!(Instant::now() < deadline, "slot never freed");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn list_hides_hidden_and_temporary_files_and_startup_removes_stale_ones() {
    let tmp = Scratch::new("lesson07-list");
    let videos = tmp.join("videos");
    fs::create_dir(&videos).unwrap();
    fs::write(videos.join(".upload-999-0.tmp"), b"left by a killed server").unwrap();
    let server = start(&videos, &[]);
    server.wait_for_log("removed stale temporary file .upload-999-0.tmp");

    fs::write(videos.join(".hidden"), b"x").unwrap();
    fs::create_dir(videos.join("sub")).unwrap();
    fs::write(videos.join("b.mp4"), b"bb").unwrap();
    fs::write(videos.join("a.mp4"), b"a").unwrap();
    let mut sock = server.connect();
    send_json(&mut sock, &json!({ "cmd": "list" }));
    let reply = recv_json(&mut sock);
    assert_eq!(
        reply,
        json!({ "ok": true, "files": [
            { "file_name": "a.mp4", "size": 1 },
            { "file_name": "b.mp4", "size": 2 },
        ]})
    );
}

#[test]
fn an_existing_file_is_kept_without_force() {
    let tmp = Scratch::new("lesson07-force");
    let videos = tmp.join("videos");
    fs::create_dir(&videos).unwrap();
    fs::write(videos.join("v.mp4"), b"new bytes").unwrap();
    let server = start(&videos, &[]);
    let out = tmp.join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("v.mp4"), b"old").unwrap();

    let down = client(
        &server,
        &["download", "v.mp4", "--out", out.to_str().unwrap()],
    );
    assert!(!down.status.success());
    assert!(
        text(&down.stderr).contains("--force"),
        "{}",
        text(&down.stderr)
    );
    assert_eq!(fs::read(out.join("v.mp4")).unwrap(), b"old");

    let down = client(
        &server,
        &[
            "download",
            "v.mp4",
            "--out",
            out.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(fs::read(out.join("v.mp4")).unwrap(), b"new bytes");
    assert_eq!(entries(&out), ["v.mp4"]);
}

#[test]
fn menu_without_subcommand_uploads_the_chosen_number() {
    let tmp = Scratch::new("lesson07-menu");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    let mine = tmp.join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("01 a.mp4"), b"first").unwrap();
    fs::write(mine.join("02 b.mp4"), b"second").unwrap();

    let addr = server.addr.to_string();
    let args = ["--addr", &addr, "--dir", mine.to_str().unwrap()];
    let out = run_client(CLIENT, &args, b"2\nx\n9\n\n1\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("1 01 a.mp4\n2 02 b.mp4\n"), "{stdout}");
    assert!(stdout.contains("uploaded \"02 b.mp4\""), "{stdout}");
    assert!(stdout.contains("enter a number from 1 to 2"), "{stdout}");
    assert_eq!(fs::read(videos.join("02 b.mp4")).unwrap(), b"second");
    assert_eq!(fs::read(videos.join("01 a.mp4")).unwrap(), b"first");
}

#[test]
fn help_works_and_bad_arguments_exit_2() {
    assert!(run(SERVER, &["--help"]).status.success());
    assert!(run(CLIENT, &["--help"]).status.success());
    for (bin, args) in [
        (SERVER, &["--max-clients", "0"][..]),
        (SERVER, &["--max-size", "-1"]),
        (CLIENT, &["download"]),
        (CLIENT, &["upload"]),
        (CLIENT, &["frobnicate"]),
    ] {
        let out = run(bin, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr).trim().lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }
}

// ---- A malicious server, written here ----

/// A fake server on port 0: accepts one connection, reads the client's request frame (and,
/// for an upload, the `size` body bytes), writes `answer`, and closes.
fn fake_server(answer: Vec<u8>) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(SAFETY)).unwrap();
        let request = recv_json(&mut sock);
        if let Some(size) = request["size"].as_u64() {
            let mut body = vec![0u8; size as usize];
            sock.read_exact(&mut body).unwrap();
        }
        // The client may already have hung up on a bad answer.
        let _ = sock.write_all(&answer);
        let _ = sock.shutdown(std::net::Shutdown::Write);
        // Read until the client closes, so our close sends FIN, never RST.
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest);
    });
    (addr, handle)
}

fn json_frame(value: Value) -> Vec<u8> {
    frame(value.to_string().as_bytes())
}

/// A download answer: header with `name` and `size`, `body`, then `trailer` if any.
fn answer(name: &str, size: u64, body: &[u8], trailer: Option<&str>) -> Vec<u8> {
    let mut out = json_frame(json!({ "ok": true, "file_name": name, "size": size }));
    out.extend_from_slice(body);
    if let Some(digest) = trailer {
        out.extend_from_slice(&json_frame(json!({ "xxh3": digest })));
    }
    out
}

#[test]
fn a_malicious_server_cannot_make_the_download_write_outside_out_leave_a_part_or_exit_0() {
    let body = b"hello";
    let good = xxh3_hex(body);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "../ name",
            answer("../evil.txt", 5, body, Some(&good)),
            "the server sent \"../evil.txt\"",
        ),
        (
            "other name",
            answer("other.txt", 5, body, Some(&good)),
            "the server sent \"other.txt\"",
        ),
        (
            "short body",
            answer("good.txt", 1000, body, None),
            "after 5 of 1000 bytes",
        ),
        (
            "missing trailer",
            answer("good.txt", 5, body, None),
            "before the digest trailer",
        ),
        (
            "wrong digest",
            answer("good.txt", 5, body, Some(&"0".repeat(32))),
            "digest mismatch",
        ),
        (
            "huge size",
            answer("good.txt", 1 << 62, body, None),
            "after 5 of",
        ),
        (
            "huge length",
            i32::MAX.to_le_bytes().to_vec(),
            "over the limit",
        ),
        (
            "negative length",
            (-5i32).to_le_bytes().to_vec(),
            "negative length",
        ),
        ("bad JSON", frame(b"{\"ok\": tru"), "not JSON"),
        (
            "no ok",
            json_frame(json!({ "file_name": "good.txt", "size": 5 })),
            "no \"ok\"",
        ),
        (
            "refusal",
            json_frame(json!({ "ok": false, "error": "go away" })),
            "go away",
        ),
    ];
    for (what, bytes, expected) in cases {
        let tmp = Scratch::new("lesson07-evil");
        let out = tmp.join("out");
        let (addr, handle) = fake_server(bytes);
        let addr = addr.to_string();
        let args = [
            "--addr",
            &addr,
            "download",
            "good.txt",
            "--out",
            out.to_str().unwrap(),
        ];
        let result = run_client(CLIENT, &args, b"");
        handle.join().unwrap();
        let stderr = text(&result.stderr);
        assert!(!result.status.success(), "{what}: exit 0");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert_eq!(entries(tmp.path()), ["out"], "{what}: wrote outside --out");
        assert_eq!(entries(&out), Vec::<String>::new(), "{what}: left a file");
    }
}

#[test]
fn an_upload_fails_when_the_server_reports_another_digest_or_size() {
    let tmp = Scratch::new("lesson07-evil-up");
    let src = tmp.join("v.mp4");
    fs::write(&src, b"hello").unwrap();
    let good = xxh3_hex(b"hello");
    for (reply, expected) in [
        (
            json!({ "ok": true, "file_name": "v.mp4", "size": 5, "xxh3": "0".repeat(32) }),
            "digest mismatch",
        ),
        (
            json!({ "ok": true, "file_name": "v.mp4", "size": 4, "xxh3": good }),
            "stored something else",
        ),
        (
            json!({ "ok": true, "file_name": "v.mp4", "size": 5 }),
            "missing key \"xxh3\"",
        ),
    ] {
        let (addr, handle) = fake_server(json_frame(reply));
        let addr = addr.to_string();
        let result = run_client(
            CLIENT,
            &["--addr", &addr, "upload", src.to_str().unwrap()],
            b"",
        );
        handle.join().unwrap();
        assert!(!result.status.success());
        assert!(
            text(&result.stderr).contains(expected),
            "{}",
            text(&result.stderr)
        );
    }
}

/// The server refuses a too-large upload before its body; the client still sends, then reads
/// the refusal (the server drains for a while instead of resetting the connection).
#[test]
fn an_upload_over_max_size_fails_with_the_servers_reason() {
    let tmp = Scratch::new("lesson07-maxsize");
    let videos = tmp.join("videos");
    let server = start(&videos, &["--max-size", "1000"]);
    let src = tmp.join("big.mp4");
    fs::write(&src, random_bytes(9, 3_000_000)).unwrap();
    let up = client(&server, &["upload", src.to_str().unwrap()]);
    assert!(!up.status.success());
    let stderr = text(&up.stderr);
    assert!(
        stderr.contains("size 3000000 is over the limit of 1000 bytes"),
        "{stderr}"
    );
    assert_eq!(entries(&videos), Vec::<String>::new());
}

/// The server drops a connection idle for --idle-timeout; a learner at the menu may take longer
/// than that to choose. The next upload goes over a new connection instead of failing, and the
/// client says so. The server logs the end of a connection after closing its socket, so once
/// the log line is there, the connection the client holds is closed: the event we assert on.
#[test]
fn menu_reconnects_after_the_server_dropped_its_idle_connection() {
    let tmp = Scratch::new("lesson07-menu-idle");
    let videos = tmp.join("videos");
    let server = start(&videos, &["--idle-timeout", "1"]);
    let mine = tmp.join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("a.mp4"), b"aaa").unwrap();

    let mut child = std::process::Command::new(CLIENT)
        .args([
            "--addr",
            &server.addr.to_string(),
            "--dir",
            mine.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\n").unwrap();
    server.wait_for_log("\"a.mp4\" 3 bytes: stored");
    server.wait_for_log("idle for 1 s, disconnected");
    // A new version of the file, so the second upload shows in what is stored.
    fs::write(mine.join("a.mp4"), b"bbbb").unwrap();
    stdin.write_all(b"1\n").unwrap();
    drop(stdin); // EOF: the menu ends after this upload
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "lesson07-client: the server closed our idle connection (--idle-timeout); reconnecting"
    );
    // The server renames the file into place before it replies, and the client exits only
    // after the reply: the new version is there now (the server's log line may still lag).
    assert_eq!(fs::read(videos.join("a.mp4")).unwrap(), b"bbbb");
}

// ---- Slow, strange and hostile peers ----

/// Sends `{"cmd":"list"}` until the server serves it, and returns the reply: a slot freed by
/// a connection that just ended is given back a moment after its last log line.
fn list_until_served(server: &Server) -> Value {
    let start = Instant::now();
    loop {
        let mut sock = server.connect();
        send_json(&mut sock, &json!({ "cmd": "list" }));
        let reply = recv_json(&mut sock);
        if reply["ok"] == json!(true) {
            return reply;
        }
        assert!(start.elapsed() < SAFETY, "never served");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Slowloris: four clients send their header one byte at a time, each byte well within the
/// idle timeout, and hold every slot. The header deadline cuts them; the next client is served.
#[test]
fn headers_that_trickle_in_are_cut_at_the_header_timeout_and_free_their_slots() {
    let tmp = Scratch::new("lesson07-slow-header");
    let server = start(
        &tmp.join("videos"),
        &[
            "--max-clients",
            "4",
            "--idle-timeout",
            "30",
            "--header-timeout",
            "1",
        ],
    );
    let mut slow: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    server.wait_for_count("connected", 4);
    let mut legit = server.connect();
    assert!(expect_refusal(&mut legit).contains("server busy"));

    let cut = "header not complete within 1 s (--header-timeout), disconnected";
    for byte in frame(br#"{"cmd":"list"}"#) {
        for sock in &mut slow {
            let _ = sock.write_all(&[byte]); // fails once the server has cut us
        }
        if server.stdout().matches(cut).count() == 4 {
            break;
        }
        thread::sleep(Duration::from_millis(300));
    }
    server.wait_for_count(cut, 4);
    list_until_served(&server);
}

/// A body that trickles (10 bytes/s against a floor of 1000) is cut at the end of a window,
/// and the partial upload's temporary file goes.
#[test]
fn an_upload_under_min_rate_is_cut_and_its_temporary_file_deleted() {
    let tmp = Scratch::new("lesson07-slow-upload");
    let videos = tmp.join("videos");
    let server = start(&videos, &["--min-rate", "1000", "--rate-window", "1"]);
    let mut sock = server.connect();
    send_json(
        &mut sock,
        &json!({ "cmd": "upload", "file_name": "slow.mp4", "size": 100_000 }),
    );
    let failed = "upload \"slow.mp4\" 100000 bytes: failed: too slow: ";
    let deadline = Instant::now() + SAFETY;
    while !server.stdout().contains(failed) {
        let _ = sock.write_all(b"x");
        assert!(Instant::now() < deadline, "{}", server.stdout());
        thread::sleep(Duration::from_millis(100));
    }
    server.wait_for_log("under the floor of 1000 bytes/s after ");
    server.wait_for_log("partial file deleted");
    assert_eq!(entries(&videos), Vec::<String>::new());
}

/// A client that takes a download slowly (about 10 KB/s against a floor of 100 KB/s) is cut
/// once the socket buffers are full and a window goes by under the floor.
#[test]
fn a_client_reading_a_download_under_min_rate_is_cut() {
    let tmp = Scratch::new("lesson07-slow-download");
    let videos = tmp.join("videos");
    fs::create_dir(&videos).unwrap();
    // Larger than what loopback's socket buffers hold between the two ends.
    fs::write(videos.join("big.mp4"), vec![7u8; 32 << 20]).unwrap();
    let server = start(&videos, &["--min-rate", "100000", "--rate-window", "1"]);
    let mut sock = server.connect();
    send_json(
        &mut sock,
        &json!({ "cmd": "download", "file_name": "big.mp4" }),
    );
    assert_eq!(recv_json(&mut sock)["size"], json!(32 << 20));
    let failed = "download \"big.mp4\": failed: too slow: ";
    let deadline = Instant::now() + SAFETY;
    let mut chunk = [0u8; 1024];
    while !server.stdout().contains(failed) {
        if sock.read(&mut chunk).unwrap_or(0) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", server.stdout());
        thread::sleep(Duration::from_millis(100));
    }
    server.wait_for_log(failed);
}

/// `open()` of a named pipe waits for a writer, where no socket timeout applies: the notes-era
/// server lost the thread and its slot for good. Only regular files are opened.
#[cfg(target_os = "linux")]
#[test]
fn a_fifo_in_dir_is_refused_without_opening_it_and_pins_no_slot() {
    let tmp = Scratch::new("lesson07-fifo");
    let videos = tmp.join("videos");
    fs::create_dir(&videos).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(videos.join("pipe.mp4"))
        .status()
        .unwrap();
    assert!(made.success());
    let server = start(&videos, &["--max-clients", "1"]);

    let mut sock = server.connect();
    send_json(
        &mut sock,
        &json!({ "cmd": "download", "file_name": "pipe.mp4" }),
    );
    let msg = expect_refusal(&mut sock);
    assert!(msg.contains("not a regular file: pipe.mp4"), "{msg}");
    drop(sock);
    // The one slot comes back, and the list does not offer the pipe.
    assert_eq!(list_until_served(&server)["files"], json!([]));
}

/// A symlink in `--dir` may point anywhere; a download never follows one, even to a file
/// inside `--dir`: it serves only what `list` shows.
#[cfg(unix)]
#[test]
fn a_download_never_follows_a_symlink() {
    let tmp = Scratch::new("lesson07-symlink");
    let videos = tmp.join("videos");
    fs::create_dir(&videos).unwrap();
    fs::write(tmp.join("secret.txt"), b"not yours").unwrap();
    fs::write(videos.join("a.mp4"), b"aaa").unwrap();
    std::os::unix::fs::symlink(tmp.join("secret.txt"), videos.join("secret-link")).unwrap();
    std::os::unix::fs::symlink("a.mp4", videos.join("inner-link.mp4")).unwrap();
    let server = start(&videos, &[]);

    for name in ["secret-link", "inner-link.mp4"] {
        let out = tmp.join("out");
        let down = client(&server, &["download", name, "--out", out.to_str().unwrap()]);
        assert!(!down.status.success(), "{name}");
        assert!(
            text(&down.stderr).contains(&format!("{name} is a symbolic link")),
            "{}",
            text(&down.stderr)
        );
        assert!(!out.exists() || entries(&out).is_empty(), "{name}");
    }
    let list = client(&server, &["list"]);
    assert_eq!(text(&list.stdout).trim(), "3  a.mp4");
}

/// Out of file descriptors, `accept` fails at once, again and again: on Linux it takes a
/// descriptor for the new connection before it looks at the queue, so with none free it fails
/// whether or not a client waits. The server pauses (5 ms doubling to 1 s), logs the failure
/// once and then a count, and serves again when descriptors come back.
#[cfg(target_os = "linux")]
#[test]
fn accept_out_of_file_descriptors_backs_off_and_logs_once() {
    let tmp = Scratch::new("lesson07-emfile");
    let dir = tmp.join("videos");
    let script = r#"ulimit -n 16 && exec "$0" "$@""#;
    let args = [
        "-c",
        script,
        SERVER,
        "--addr",
        "127.0.0.1:0",
        "--dir",
        dir.to_str().unwrap(),
    ];
    let server = Server::start("sh", &args);
    // How many descriptors are free, from 0 to 15, once one client is in: counted, since the
    // test's own parent may have left some open (one numbered 16 or more takes no place below
    // the limit). Counted after that client's thread logged `connected`: the server has
    // started up and the thread has started, so none is held for a moment only (while a
    // thread starts, glibc may read /sys/devices/system/cpu/online; an accept can fail once
    // then, and its line is honest).
    let mut held = vec![server.connect()];
    server.wait_for_log(" connected");
    let taken = fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .map(|fd| {
            fd.unwrap()
                .file_name()
                .to_string_lossy()
                .parse::<u32>()
                .unwrap()
        })
        .filter(|&fd| fd < 16)
        .count();
    // All but one free descriptor taken by clients. Once their threads have all logged
    // `connected`, so has the accept thread whatever it had to say about accepting them, and
    // it waits in `accept` for the next client, holding the last descriptor.
    let clients = 16 - taken;
    held.extend((1..clients).map(|_| server.connect()));
    server.wait_for_count(" connected", clients);
    let failed = "accept failed: Too many open files";
    let earlier = server.stdout().matches(failed).count();
    // The event: one more client takes the last descriptor; the next `accept` fails, and from
    // now on every one does. One line says so.
    held.push(server.connect());
    server.wait_for_count(failed, earlier + 1);
    let ticks_before = common::cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(2));
    // Spinning, the old loop used two full seconds of CPU here (200 ticks; still 30 to 50 with
    // the machine's two cores shared by a load of 19) and logged millions of lines; with the
    // pause it sleeps (0 or 1 tick), and the log does not grow at all.
    let ticks = common::cpu_ticks(server.pid()) - ticks_before;
    assert!(ticks < 10, "{ticks} ticks of CPU in 2 s");
    let lines = server.stdout().matches("accept failed").count();
    assert_eq!(lines, earlier + 1, "the log grew while nothing changed");
    assert!(lines <= 3, "{lines} accept-failed lines: one per retry?");

    // Descriptors come back; the next client is served, and the count of the failures not
    // logged one by one comes with it.
    drop(held);
    list_until_served(&server);
    server.wait_for_log("more times: Too many open files");
}

/// Starts the server with its stdout as a pipe the test controls; killed when dropped.
struct PipedServer {
    child: std::process::Child,
    addr: SocketAddr,
}

impl PipedServer {
    /// Starts the server and reads its `listening on` line; returns the pipe, still open.
    fn start(dir: &Path) -> (PipedServer, std::io::BufReader<std::process::ChildStdout>) {
        use std::io::BufRead;
        let mut child = std::process::Command::new(SERVER)
            .args(["--addr", "127.0.0.1:0", "--dir", dir.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .parse()
            .unwrap();
        (PipedServer { child, addr }, out)
    }

    /// A request that logs a long line (a 200-byte name, twice), answered with a refusal.
    fn missing_download(&self) {
        let mut sock = common::connect(self.addr);
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let name = format!("{}.mp4", "n".repeat(200));
        send_json(&mut sock, &json!({ "cmd": "download", "file_name": name }));
        assert!(expect_refusal(&mut sock).contains("no such file"));
    }
}

impl Drop for PipedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lesson07-server | head -1`: stdout closed after the first line. `println!` panicked at
/// the next line (exit 101); the log now loses its lines, and the service goes on.
#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    let tmp = Scratch::new("lesson07-closed-stdout");
    let (mut server, stdout) = PipedServer::start(&tmp.join("videos"));
    drop(stdout);
    for _ in 0..20 {
        server.missing_download();
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
}

/// A stdout pipe nobody reads fills up (64 KiB on Linux); a server that waits on its log would
/// stop every connection at its next line. Lines are dropped instead, and counted: once the
/// pipe is read again, the log says how many went missing.
#[test]
fn a_stdout_nobody_reads_does_not_block_the_server() {
    let tmp = Scratch::new("lesson07-full-stdout");
    let (server, unread) = PipedServer::start(&tmp.join("videos"));
    // About 500 bytes of log each: far more than the pipe and the log's queue hold together.
    for _ in 0..700 {
        server.missing_download();
    }
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let log = Arc::clone(&log);
        thread::spawn(move || {
            use std::io::BufRead;
            for line in unread.lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push_str(&line);
            }
        })
    };
    // The next line written after the gap reports it.
    let deadline = Instant::now() + SAFETY;
    while !log
        .lock()
        .unwrap()
        .contains(" log lines dropped: stdout did not keep up)")
    {
        assert!(Instant::now() < deadline, "no report of dropped lines");
        server.missing_download();
        thread::sleep(Duration::from_millis(50));
    }
    drop(server); // ends the pipe, and with it the reader
    reader.join().unwrap();
}

/// Names that show as another name: bidi overrides (Trojan Source), invisible characters,
/// line separators, and an NFD twin of an NFC name. Refused; the NFC name itself is fine, and
/// the client sends a Mac's NFD name in NFC.
#[test]
fn look_alike_names_are_refused_and_the_client_uploads_nfc() {
    let tmp = Scratch::new("lesson07-lookalike");
    let videos = tmp.join("videos");
    let server = start(&videos, &[]);
    for name in [
        "invoice\u{202e}fdp.exe",
        "a\u{200b}.mp4",
        "\u{feff}a.mp4",
        "a\u{2028}b.mp4",
        "cafe\u{301}.mp4",
    ] {
        let mut sock = server.connect();
        send_json(
            &mut sock,
            &json!({ "cmd": "upload", "file_name": name, "size": 3 }),
        );
        let msg = expect_refusal(&mut sock);
        assert!(msg.contains("file name"), "{name:?}: {msg}");
        assert!(!msg.contains(name), "{name:?} echoed raw: {msg}");
    }
    // The server's log shows them escaped too.
    assert!(!server.stdout().contains('\u{202e}'));
    assert_eq!(entries(&videos), Vec::<String>::new());

    let src = tmp.join("cafe\u{301}.mp4");
    fs::write(&src, b"cafe").unwrap();
    let up = client(&server, &["upload", src.to_str().unwrap()]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert_eq!(entries(&videos), ["caf\u{e9}.mp4"]);
}

/// A hostile server puts terminal escape codes in the strings the client prints (scp,
/// CVE-2019-6109): the error message, the digest. The client prints them escaped.
#[test]
fn a_hostile_servers_strings_are_printed_escaped() {
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}2J";
    let body = b"hello";
    let tmp = Scratch::new("lesson07-escape");
    let src = tmp.join("v.mp4");
    fs::write(&src, body).unwrap();
    let out = tmp.join("out");
    let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
        (
            json_frame(json!({ "ok": false, "error": evil })),
            vec!["download", "good.txt", "--out", out.to_str().unwrap()],
        ),
        (
            answer("good.txt", 5, body, Some(evil)),
            vec!["download", "good.txt", "--out", out.to_str().unwrap()],
        ),
        (
            json_frame(json!({ "ok": true, "file_name": "v.mp4", "size": 5, "xxh3": evil })),
            vec!["upload", src.to_str().unwrap()],
        ),
        (
            json_frame(json!({ "ok": "yes", "error": evil })),
            vec!["list"],
        ),
    ];
    for (answer, args) in cases {
        let (addr, handle) = fake_server(answer);
        let addr = addr.to_string();
        let mut all = vec!["--addr", addr.as_str()];
        all.extend_from_slice(&args);
        let result = run_client(CLIENT, &all, b"");
        handle.join().unwrap();
        let stderr = text(&result.stderr);
        assert!(!result.status.success(), "{args:?}");
        // Escaped by the rule of every lesson (`\x1b`), or by JSON where the client shows a
        // whole reply (`\u001b`, and the C1 character, which JSON leaves as it is, as `\x9b`).
        assert!(
            stderr.contains(r"\x1b]0;pwned\x07\x1b[2J\x9b2J")
                || stderr.contains(r"\u001b]0;pwned\u0007\u001b[2J\x9b2J"),
            "{args:?}: {stderr:?}"
        );
        assert!(
            !stderr.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "{args:?}: raw control bytes in {stderr:?}"
        );
    }
}

/// A server that sends its body one byte every 200 ms keeps every read short: no read waits
/// long enough to time out. Under `--min-rate` for a window, the client gives up, and its
/// temporary file goes.
#[test]
fn a_download_from_a_trickling_server_fails_under_min_rate() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trickler = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(SAFETY)).unwrap();
        recv_json(&mut sock);
        let header = json_frame(json!({ "ok": true, "file_name": "good.txt", "size": 1000 }));
        sock.write_all(&header).unwrap();
        let deadline = Instant::now() + SAFETY;
        // Until the client hangs up (a write fails) or the safety net.
        while Instant::now() < deadline && sock.write_all(b"x").is_ok() {
            thread::sleep(Duration::from_millis(200));
        }
    });
    let tmp = Scratch::new("lesson07-trickle");
    let out = tmp.join("out");
    let addr = addr.to_string();
    let args = [
        "--addr",
        &addr,
        "download",
        "good.txt",
        "--out",
        out.to_str().unwrap(),
        "--min-rate",
        "100",
        "--rate-window",
        "1",
    ];
    let result = run_client(CLIENT, &args, b"");
    let stderr = text(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("the server is too slow: ")
            && stderr.contains("under the floor of 100 bytes/s"),
        "{stderr}"
    );
    assert!(stderr.contains("download abandoned"), "{stderr}");
    assert_eq!(entries(&out), Vec::<String>::new());
    drop(result);
    trickler.join().unwrap();
}
