//! Lesson 03 (notes 3, 黏包): the remote-command server answers with bare bytes, and the naive
//! client's single `read(1024)` per command gets the leftover of a long answer as the answer to
//! the next one. These tests prove the bug, with exact bytes and nothing left to timing; the
//! same commands come out right in `tests/lesson04.rs`. They also check what lesson 03 fixes
//! on the server: bounded commands, no pipe deadlock, loopback only, one client's error never
//! ends the server.
//!
//! Tests that run shell commands are `#[cfg(unix)]` (they rely on `sh`, `seq`, `printf`); their
//! cmd.exe versions are in the Windows section at the end of this file.

mod common;

use std::io::Read;
use std::io::Write;
use std::net::{TcpListener, TcpStream};

use common::{assert_bytes_eq, run, run_client, Server};
#[cfg(unix)]
use common::{shell_output, STICKY_SEQUENCE};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson03-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_lesson03-client");

/// The byte counts of the client's reads, from its `--trace` lines (`read 1024 bytes: …`).
fn traced_reads(stderr: &[u8]) -> Vec<usize> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("read "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// Sends one command on a raw socket and reads until the reply ends with `suffix`.
/// Lesson 03 has no framing, so the test must know what the end of the answer looks like.
fn ask_until(sock: &mut TcpStream, command: &str, suffix: &[u8]) -> Vec<u8> {
    sock.write_all(command.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 65536];
    while !reply.ends_with(suffix) {
        let n = match sock.read(&mut buf) {
            // A socket with a timeout (the safety net) returns EINTR when this process is
            // stopped and continued, even with no signal handler (Linux, signal(7)): retry.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            result => result.unwrap(),
        };
        assert!(
            n > 0,
            "server closed; got {:?}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
    reply
}

/// The heart of the lesson. `seq -s ' ' 1000` prints 3893 bytes; the client reads at most 1024 of
/// them, then sends `echo hi` and prints what its next read returns: not `hi`, but the bytes
/// of `seq` that come right after the first read. How many bytes each read got depends on
/// timing, so the test learns it from `--trace` and asserts only what TCP guarantees: the
/// bytes arrive in order, and the second answer starts where the first one stopped.
#[cfg(unix)]
#[test]
fn naive_client_reads_leftover_as_the_next_answer() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run_client(
        CLIENT,
        &["--addr", &addr, "--trace"],
        STICKY_SEQUENCE.as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");

    let seq = shell_output(STICKY_SEQUENCE.lines().next().unwrap());
    assert_eq!(seq.len(), 3893);
    let reads = traced_reads(&out.stderr);
    assert_eq!(reads.len(), 2, "one read per command: {reads:?}");
    let (n1, n2) = (reads[0], reads[1]);
    assert!((1..=1024).contains(&n1) && (1..=1024).contains(&n2));

    // The client prints each answer followed by a newline.
    let mut expected = seq[..n1].to_vec();
    expected.push(b'\n');
    expected.extend_from_slice(&seq[n1..n1 + n2]);
    expected.push(b'\n');
    assert_bytes_eq(&out.stdout, &expected, "the client's output");
    // So the answer printed for `echo hi` is the continuation of `seq`'s output, while `hi` was
    // sent all right: it waits in the socket behind the rest of `seq`.
    server.wait_for_log("ran \"echo hi\": 3 bytes\n");
}

/// The notes' 123/456/789 demo, as the two binaries run it (the README's transcript).
#[test]
fn the_demo_pair_prints_the_notes_result() {
    let server = Server::start(SERVER, &["--demo", "three-writes"]);
    let addr = server.addr.to_string();
    let out = run_client(CLIENT, &["--addr", &addr, "--demo", "three-writes"], b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "wrote 3 bytes: 123\n\
         wrote 3 bytes: 456\n\
         wrote 3 bytes: 789\n\
         server says:\n\
         read 1: 9 bytes: \"123456789\"\n\
         read 2: 0 bytes (end of stream: the client has finished sending)\n"
    );
    server.wait_for_log("read 1: 9 bytes: \"123456789\"");
}

/// Three writes, each its own TCP segment (no Nagle), read as one: the server reads only once
/// all nine bytes are in its receive buffer (it peeks). The test gives it every chance to read
/// them apart: the server is already waiting (its `connected` line comes just before) when
/// `123` arrives, and `456` and `789` follow 100 ms apart. A server that read at once would
/// get `123` alone; whatever the pauses (under the server's 2 s patience), ours gets nine.
#[test]
fn three_writes_are_read_as_one() {
    let server = Server::start(SERVER, &["--demo", "three-writes"]);
    let mut sock = server.connect();
    let me = sock.local_addr().unwrap();
    sock.set_nodelay(true).unwrap();
    server.wait_for_log(&format!("{me} connected\n"));
    for part in [b"123", b"456", b"789"] {
        sock.write_all(part).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let report = String::from_utf8(common::read_to_end(&mut sock)).unwrap();
    assert_eq!(
        report,
        "read 1: 9 bytes: \"123456789\"\n\
         read 2: 0 bytes (end of stream: the client has finished sending)\n"
    );
}

/// A Chinese Windows server sends GBK. "你好" in GBK is C4 E3 BA C3, not valid UTF-8: the
/// client falls back to GBK; `--encoding utf-8` forces UTF-8 and shows U+FFFD instead.
#[cfg(unix)]
#[test]
fn non_utf8_output_is_decoded_as_gbk() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let command = b"printf '\\304\\343\\272\\303'\n";
    let out = run_client(CLIENT, &["--addr", &addr], command);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "你好\n");

    let out = run_client(CLIENT, &["--addr", &addr, "--encoding", "utf-8"], command);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with('\u{FFFD}'));
    let out = run_client(CLIENT, &["--addr", &addr, "--encoding", "gbk"], command);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "你好\n");
}

/// A read of 1024 bytes cuts a 3-byte character in two; the chunk is still UTF-8, not GBK:
/// every 中 but the cut one prints as 中, never as GBK mojibake (涓), and the cut one as U+FFFD.
#[cfg(unix)]
#[test]
fn utf8_cut_by_a_read_is_not_taken_for_gbk() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    // 1992 bytes of "N中\n": byte 1024 is the last byte of a 中, so a read of 1024 bytes ends
    // inside it. The server sends them with one write, which arrives as one segment, so the
    // client's one read gets the first 1024; the trace says how many it got, to be sure.
    let command = "seq 1 300 | sed 's/$/中/'";
    let output = shell_output(command);
    assert_eq!(output.len(), 1992);
    let out = run_client(
        CLIENT,
        &["--addr", &addr, "--trace"],
        format!("{command}\n").as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    let reads = traced_reads(&out.stderr);
    assert_eq!(reads.len(), 1, "one read per command: {reads:?}");
    let n = reads[0];
    assert!(
        std::str::from_utf8(&output[..n]).is_err(),
        "the read of {n} bytes cut no character: this test shows nothing"
    );
    // What the client promises: UTF-8, with U+FFFD for the cut character's first two bytes.
    let expected = format!("{}\n", String::from_utf8_lossy(&output[..n]));
    assert!(expected.ends_with("162\u{FFFD}\n"), "{expected}");
    assert_bytes_eq(&out.stdout, &expected, "the client's output");
}

/// Bug 8: a remote shell on a LAN address. Refused, exit 2, one line that says how to insist.
#[test]
fn non_loopback_bind_is_refused() {
    let out = run(SERVER, &["--addr", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("0.0.0.0:0") && err.contains("--allow-remote"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no `listening on` line: nothing was bound"
    );
}

/// `sleep 60` is killed after `--timeout`; the reply says so; the next command is answered.
#[cfg(unix)]
#[test]
fn runaway_command_is_killed_and_the_server_answers_the_next() {
    let server = Server::start(SERVER, &["--timeout", "0.5"]);
    let mut sock = server.connect();
    let reply = ask_until(&mut sock, "sleep 60", b"]\n");
    assert_eq!(reply, b"[killed after 0.5 s]\n");
    assert_eq!(ask_until(&mut sock, "echo next", b"\n"), b"next\n");
    server.wait_for_log("ran \"sleep 60\": 21 bytes (killed after 0.5 s)");
}

/// `yes` never stops printing: its output is cut at `--max-output`, the command is killed at
/// once (not at the timeout), and the next command is answered.
#[cfg(unix)]
#[test]
fn endless_output_is_cut_at_max_output() {
    let server = Server::start(SERVER, &["--max-output", "100000", "--timeout", "60"]);
    let mut sock = server.connect();
    let reply = ask_until(&mut sock, "yes", b"bytes]\n");
    let mut expected = b"y\n".repeat(50_000);
    expected.extend_from_slice(b"[output cut at 100000 bytes]\n");
    assert_bytes_eq(&reply, &expected, "the reply to `yes`");
    assert_eq!(ask_until(&mut sock, "echo next", b"\n"), b"next\n");
}

/// A cut in the middle of a line still puts the note on a line of its own.
#[cfg(unix)]
#[test]
fn cut_note_starts_on_its_own_line() {
    let server = Server::start(SERVER, &["--max-output", "5"]);
    let mut sock = server.connect();
    let reply = ask_until(&mut sock, "echo hello world", b"bytes]\n");
    assert_eq!(reply, b"hello\n[output cut at 5 bytes]\n");
}

/// The reply is stdout, then stderr, as the notes' `stdout.read() + stderr.read()`.
#[cfg(unix)]
#[test]
fn reply_is_stdout_then_stderr() {
    let server = Server::start(SERVER, &[]);
    let mut sock = server.connect();
    let reply = ask_until(&mut sock, "echo err >&2; echo out", b"err\n");
    assert_eq!(reply, b"out\nerr\n");
}

/// Bug 7: a command that fills the stderr pipe (64 KiB) before it writes stdout. Reading
/// stdout to the end first, as the notes do, waits forever; both pipes are read at once here.
#[cfg(unix)]
#[test]
fn command_filling_stderr_first_does_not_deadlock() {
    let server = Server::start(SERVER, &[]);
    let mut sock = server.connect();
    let command = "head -c 200000 /dev/zero | tr '\\0' e >&2; echo out";
    sock.write_all(command.as_bytes()).unwrap();
    let mut reply = vec![0u8; 4 + 200_000];
    sock.read_exact(&mut reply).unwrap();
    let mut expected = b"out\n".to_vec();
    expected.extend_from_slice(&b"e".repeat(200_000));
    assert_bytes_eq(&reply, &expected, "the reply");
}

/// A timeout kills everything the command started, not only the shell: both sleeps (one in
/// the background, one in a subshell) are gone. The `; :` keeps sh from exec'ing the sleeps.
/// The sleeps are named for this test process (`sleep 61.PID`): sleeps left by another run
/// (one still going beside this one, or one stopped with Ctrl-C before its server's timeout
/// killed them; those end within a minute) are not this test's business.
#[cfg(target_os = "linux")]
#[test]
fn timeout_kills_the_whole_process_group() {
    let server = Server::start(SERVER, &["--timeout", "0.5"]);
    let mut sock = server.connect();
    let pid = std::process::id();
    let (first, second) = (format!("sleep 61.{pid}"), format!("sleep 67.{pid}"));
    let command = format!("{first} & ({second}; :); :");
    let reply = ask_until(&mut sock, &command, b"]\n");
    assert_eq!(reply, b"[killed after 0.5 s]\n");
    // The kill is sent before the reply; give the kernel a moment to finish the processes.
    let deadline = std::time::Instant::now() + common::SAFETY;
    loop {
        let alive = sleeps_running(&[&first, &second]);
        if alive.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {alive:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Which of `names` some live process has as its command line (zombies have none).
#[cfg(target_os = "linux")]
fn sleeps_running(names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        for name in names {
            if cmdline.trim_end() == *name {
                found.push(cmdline.clone());
            }
        }
    }
    found
}

/// Bug 2: the notes' server dies when a client quits with output unread. Here the client
/// leaves with most of 588895 bytes unread (its socket is reset); the server logs it and the
/// next client is answered.
#[cfg(unix)]
#[test]
fn client_that_leaves_with_unread_output_does_not_stop_the_server() {
    let mut server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run_client(CLIENT, &["--addr", &addr], b"seq 1 100000\n");
    assert!(out.status.success(), "{out:?}");
    // The first client is finished with (closed or dropped) before the next is accepted.
    let mut sock = server.connect();
    assert_eq!(ask_until(&mut sock, "echo hi", b"\n"), b"hi\n");
    // The reset reached the server in the middle of its write, or in its next read.
    server.wait_for_log(" dropped: ");
    assert!(server.is_running());
}

/// Bug 1: an empty read means the client has gone; the server goes back to accept() (the
/// notes' `continue` spins instead and never serves the next client).
#[cfg(unix)]
#[test]
fn server_serves_one_client_after_another() {
    let server = Server::start(SERVER, &[]);
    for i in 0..3 {
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, &format!("echo {i}"), b"\n");
        assert_eq!(reply, format!("{i}\n").as_bytes());
    }
    server.wait_for_count("closed the connection", 3);
}

/// A web page in the learner's browser can reach this loopback server (an `<img>` pointing
/// at it, a `fetch()` with a text/plain body), and the shell would run each line of the HTTP
/// request. Lessons 03 and 04 share the check and are held to the same probes.
#[test]
fn web_requests_never_run_and_the_next_client_is_served() {
    common::assert_web_requests_never_run("lesson03", SERVER, CLIENT);
}

/// An accepted `--timeout` always works: at most one day (`1e19` was accepted, then overflowed
/// the deadline and panicked); more exits 2 with one line. Lesson 04 shares the parser.
#[test]
fn timeout_is_at_most_a_day_and_a_day_works() {
    let out = run(SERVER, &["--timeout", "1e19"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson03-server: invalid value '1e19' for '--timeout <SECONDS>': expected seconds \
         from 0.001 to 86400 (one day), like 2 or 0.5 (try --help)\n"
    );
    #[cfg(unix)]
    {
        let server = Server::start(SERVER, &["--timeout", "86400"]);
        let mut sock = server.connect();
        assert_eq!(ask_until(&mut sock, "echo hi", b"\n"), b"hi\n");
    }
}

#[test]
fn client_exits_0_at_end_of_input() {
    let server = Server::start(SERVER, &[]);
    let out = run_client(CLIENT, &["--addr", &server.addr.to_string()], b"\n\n");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn help_works_and_bad_arguments_exit_2() {
    for bin in [SERVER, CLIENT] {
        let out = run(bin, &["--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("--demo"));
    }
    for args in [
        &["--timeout", "0"][..],
        &["--timeout", "soon"],
        &["--timeout", "86401"],
        &["--max-output", "-1"],
        &["--demo", "four-writes"],
        &["--idle-timeout", "0"],
    ] {
        let out = run(SERVER, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

/// One client at a time: a client that connects and says nothing would hold the server from
/// everyone else. After --idle-timeout it is dropped with a line that says so, and the client
/// queued behind it is served. Lessons 03 and 04 share the code and this test.
#[test]
fn a_silent_client_is_dropped_after_the_idle_timeout_and_the_next_is_served() {
    common::assert_silent_client_dropped(SERVER, CLIENT);
}

/// A client that sends a command with a big answer and never reads it fills the socket's
/// buffers; the server's write then waits. After --idle-timeout without room it is dropped,
/// and the next client is served. Lessons 03 and 04 share the code and this test.
#[cfg(unix)]
#[test]
fn a_client_that_never_reads_is_dropped_after_the_idle_timeout() {
    common::assert_deaf_client_dropped(SERVER, CLIENT);
}

/// Out of file descriptors, `accept` fails at once, again and again. The server logs it and
/// pauses a second between tries instead of spinning.
#[cfg(target_os = "linux")]
#[test]
fn accept_out_of_file_descriptors_logs_and_pauses_instead_of_spinning() {
    common::assert_accept_errors_pause(SERVER, &[]);
}

/// A hostile server can send terminal commands as "output": `\x1b]0;…\x07` retitles the
/// learner's window, `\x1b[2J` clears it (OpenSSH's scp printed such bytes raw:
/// CVE-2019-6109); a right-to-left override (U+202E) makes `invoice\u202efdp.exe` show as
/// `invoiceexe.pdf` (Trojan Source) and a zero-width space (U+200B) hides in a word. The client
/// shows them escaped, as Python's `repr()` writes them; Chinese, tabs and line breaks print as
/// sent.
#[test]
fn a_servers_terminal_commands_are_printed_escaped() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fake = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut command = [0u8; 1024];
        let _ = sock.read(&mut command).unwrap();
        let reply =
            "\x1b]0;PWNED\x07\x1b[2J你好\tok\r\n\u{9b}31m\x7f invoice\u{202e}fdp.exe a\u{200b}b";
        sock.write_all(reply.as_bytes()).unwrap();
    });
    let out = run_client(CLIENT, &["--addr", &addr], b"ls\n");
    fake.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\\x1b]0;PWNED\\x07\\x1b[2J你好\tok\r\n\\x9b31m\\x7f invoice\\u202efdp.exe a\\u200bb\n"
    );
}

/// The same characters in a command: its output reaches the client escaped, and the server's
/// log line escapes them in the command (Rust's `{:?}`, which escapes every character the
/// lessons' rule does: `\u{202e}`).
#[cfg(unix)]
#[test]
fn trojan_source_in_a_command_is_escaped_in_the_output_and_the_log() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let command = "echo invoice\u{202e}fdp.exe a\u{200b}b";
    let out = run_client(
        CLIENT,
        &["--addr", &addr],
        format!("{command}\n").as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "invoice\\u202efdp.exe a\\u200bb\n\n"
    );
    server.wait_for_log("ran \"echo invoice\\u{202e}fdp.exe a\\u{200b}b\": 24 bytes\n");
    assert!(!server.stdout().contains(['\u{202e}', '\u{200b}']));
}

// =============================================================================================
// Windows: the tests above that need `sh`, through `cmd.exe /c "COMMAND"` instead. cmd ends
// lines with \r\n; `for /L %i in (1,1,1000) do @echo %i` stands in for `seq 1 1000`.
// CI runs these under Wine (.ci/run); a check where Wine differs from Windows is skipped
// under Wine only, and says why.
// =============================================================================================
#[cfg(windows)]
mod windows {
    use super::*;
    use std::path::PathBuf;

    /// `seq 1 N` for cmd.exe, and the bytes it prints: "1\r\n2\r\n…".
    fn count_to(n: u32) -> (String, Vec<u8>) {
        let command = format!("for /L %i in (1,1,{n}) do @echo %i");
        let output = (1..=n).map(|i| format!("{i}\r\n")).collect::<String>();
        (command, output.into_bytes())
    }

    /// A fresh folder whose name has a space in it, as `C:\Program Files` has.
    fn folder_with_a_space(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("socket lessons {} {name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Lesson 03's leftover, through cmd.exe: 4893 bytes of output (1000 lines of \r\n), the
    /// first read takes at most 1024, and the answer printed for `echo hi` is what follows.
    #[test]
    fn naive_client_reads_leftover_as_the_next_answer_in_cmd() {
        let server = Server::start(SERVER, &[]);
        let addr = server.addr.to_string();
        let (count, seq) = count_to(1000);
        assert_eq!(seq.len(), 4893);
        let stdin = format!("{count}\necho hi\n");
        let out = run_client(CLIENT, &["--addr", &addr, "--trace"], stdin.as_bytes());
        assert!(out.status.success(), "{out:?}");
        let reads = traced_reads(&out.stderr);
        assert_eq!(reads.len(), 2, "one read per command: {reads:?}");
        let (n1, n2) = (reads[0], reads[1]);
        assert!((1..=1024).contains(&n1) && (1..=1024).contains(&n2));
        // Each read is printed as it came, and a read that stops between the `\r` and the `\n`
        // of a line end shows that `\r` written out: alone, it would move the cursor.
        let shown = |read: &[u8]| match read.strip_suffix(b"\r") {
            Some(rest) => [rest, &b"\\r\n"[..]].concat(),
            None => [read, &b"\n"[..]].concat(),
        };
        let first = shown(&seq[..n1]);
        let expected = [&first[..], &shown(&seq[n1..n1 + n2])].concat();
        assert_bytes_eq(&out.stdout, &expected, "the client's output");
        assert!(!out.stdout[first.len()..].starts_with(b"hi\r\n"));
        server.wait_for_log("ran \"echo hi\"");
    }

    /// `echo`, then a long output (128894 bytes) read whole by a reader that knows its end,
    /// and one client after another.
    #[test]
    fn echo_and_long_output_and_one_client_after_another_in_cmd() {
        let server = Server::start(SERVER, &[]);
        for i in 0..3 {
            let mut sock = server.connect();
            let reply = ask_until(&mut sock, &format!("echo {i}"), b"\n");
            assert_eq!(reply, format!("{i}\r\n").as_bytes());
        }
        let (count, seq) = count_to(20000);
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, &count, b"\n20000\r\n");
        assert_bytes_eq(&reply, &seq, "the reply");
        server.wait_for_count("closed the connection", 3);
    }

    /// A Chinese Windows console prints GBK: `type` sends a GBK file's bytes as they are, and
    /// the client decodes them as GBK; UTF-8 cut by `read(1024)` stays UTF-8.
    #[test]
    fn gbk_output_is_decoded_and_cut_utf8_stays_utf8_in_cmd() {
        let dir = folder_with_a_space("encodings");
        let gbk = dir.join("gbk.txt");
        std::fs::write(&gbk, b"\xc4\xe3\xba\xc3").unwrap();
        let utf8 = dir.join("utf8.txt");
        let lines: String = (1..=300).map(|i| format!("{i}中\n")).collect();
        std::fs::write(&utf8, lines).unwrap();

        let server = Server::start(SERVER, &[]);
        let addr = server.addr.to_string();
        let command = format!("type \"{}\"\n", gbk.display());
        let out = run_client(CLIENT, &["--addr", &addr], command.as_bytes());
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "你好\n");

        let command = format!("type \"{}\"\n", utf8.display());
        let out = run_client(CLIENT, &["--addr", &addr], command.as_bytes());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("1中\n2中\n"), "{text}");
        assert!(!text.contains('涓'), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Python's `shell=True` runs `cmd.exe /c "COMMAND"`, so a command that starts with a
    /// quoted path and has more quotes after it keeps all of them. With `cmd /C COMMAND`, cmd
    /// strips the first and the last quote and looks for `C:\…\socket` instead.
    #[test]
    fn quoted_path_with_quoted_arguments_runs_in_cmd() {
        let dir = folder_with_a_space("quoted");
        let exe = dir.join("my client.exe");
        std::fs::copy(CLIENT, &exe).unwrap();
        // The help names the program as it was started: `Usage: my client.exe [OPTIONS]`.
        let help = String::from_utf8(run(CLIENT, &["--help"]).stdout).unwrap();
        assert!(help.contains("Usage: lesson03-client.exe"), "{help}");
        let help = help
            .replace("lesson03-client.exe", "my client.exe")
            .into_bytes();

        let server = Server::start(SERVER, &[]);
        let mut sock = server.connect();
        for command in [
            format!("\"{}\" \"--help\"", exe.display()),
            format!("\"{}\" --help", exe.display()),
        ] {
            let reply = ask_until(&mut sock, &command, b"\n");
            let reply = ask_more_until(&mut sock, reply, &help);
            assert_bytes_eq(&reply, &help, &command);
        }
        drop(sock);
        drop(server);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Keeps reading until `reply` is as long as `expected` (or the server closes).
    fn ask_more_until(sock: &mut TcpStream, mut reply: Vec<u8>, expected: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 65536];
        while reply.len() < expected.len() {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    }

    /// A loop that never ends is killed after `--timeout`; the next command is answered.
    #[test]
    fn runaway_command_is_killed_and_the_server_answers_the_next_in_cmd() {
        let server = Server::start(SERVER, &["--timeout", "0.5"]);
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, "for /L %i in (1,0,2) do @rem", b"]\n");
        assert_eq!(reply, b"[killed after 0.5 s]\n");
        assert_eq!(ask_until(&mut sock, "echo next", b"\n"), b"next\r\n");
    }

    /// Endless output (cmd's `yes`) is cut at `--max-output` and the command killed at once;
    /// a cut inside a line puts the note on a line of its own.
    #[test]
    fn endless_output_is_cut_at_max_output_in_cmd() {
        let server = Server::start(SERVER, &["--max-output", "99999", "--timeout", "60"]);
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, "for /L %i in (1,0,2) do @echo y", b"bytes]\n");
        let mut expected = b"y\r\n".repeat(33333);
        expected.extend_from_slice(b"[output cut at 99999 bytes]\n");
        assert_bytes_eq(&reply, &expected, "the reply");
        assert_eq!(ask_until(&mut sock, "echo next", b"\n"), b"next\r\n");

        let server = Server::start(SERVER, &["--max-output", "5"]);
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, "echo hello world", b"bytes]\n");
        assert_eq!(reply, b"hello\n[output cut at 5 bytes]\n");
    }

    /// Stdout, then stderr; and a command that fills the stderr pipe before it writes stdout
    /// (160000 bytes, `type` of a file sent to stderr) does not deadlock.
    #[test]
    fn reply_is_stdout_then_stderr_without_deadlock_in_cmd() {
        let server = Server::start(SERVER, &[]);
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, ">&2 echo err& echo out", b"err\r\n");
        assert_eq!(reply, b"out\r\nerr\r\n");

        let dir = folder_with_a_space("stderr");
        let file = dir.join("e.txt");
        std::fs::write(&file, b"e".repeat(160_000)).unwrap();
        let command = format!(">&2 type \"{}\"& echo out", file.display());
        sock.write_all(command.as_bytes()).unwrap();
        let mut reply = vec![0u8; 5 + 160_000];
        sock.read_exact(&mut reply).unwrap();
        let mut expected = b"out\r\n".to_vec();
        expected.extend_from_slice(&b"e".repeat(160_000));
        assert_bytes_eq(&reply, &expected, "the reply");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A client that leaves with most of a long answer unread ends its connection only.
    #[test]
    fn client_that_leaves_with_unread_output_does_not_stop_the_server_in_cmd() {
        let mut server = Server::start(SERVER, &[]);
        let addr = server.addr.to_string();
        let (count, _) = count_to(20000);
        let out = run_client(CLIENT, &["--addr", &addr], format!("{count}\n").as_bytes());
        assert!(out.status.success(), "{out:?}");
        let mut sock = server.connect();
        assert_eq!(ask_until(&mut sock, "echo hi", b"\n"), b"hi\r\n");
        assert!(server.is_running());
        server.wait_for_count(" connected", 2);
    }
}

// The Windows version of `timeout_kills_the_whole_process_group`, outside the module above so
// that its helpers stay next to it.
#[cfg(windows)]
mod windows_process_tree {
    use super::*;

    /// Whether a process with this image name is running (`tasklist` lists image names).
    fn running(image: &str) -> bool {
        let out = std::process::Command::new("tasklist")
            .args(["/FI", &format!("IMAGENAME eq {image}"), "/NH"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(image)
    }

    /// A timeout kills what the command started too (`taskkill /T`): one program started in
    /// the background with `start /b`, one in the foreground. Two copies of the lesson 01
    /// server stand in for them (each waits for a client forever), under names of their own.
    #[test]
    fn timeout_kills_the_whole_process_tree() {
        let dir = std::env::temp_dir().join(format!("socket-lessons-tree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid = std::process::id();
        let images = [format!("tree-a-{pid}.exe"), format!("tree-b-{pid}.exe")];
        for image in &images {
            std::fs::copy(env!("CARGO_BIN_EXE_lesson01-server"), dir.join(image)).unwrap();
        }
        let (a, b) = (dir.join(&images[0]), dir.join(&images[1]));
        let command = format!(
            "start \"\" /b \"{}\" --addr 127.0.0.1:0 & \"{}\" --addr 127.0.0.1:0",
            a.display(),
            b.display()
        );

        let server = Server::start(SERVER, &["--timeout", "1"]);
        let mut sock = server.connect();
        let reply = ask_until(&mut sock, &command, b"]\n");
        assert!(reply.ends_with(b"[killed after 1 s]\n"), "{reply:?}");
        let skip = common::skip_under_wine(
            "Wine's taskkill has no /T, so the program started with `start /b` survives there",
        );
        if !skip {
            let deadline = std::time::Instant::now() + common::SAFETY;
            while images.iter().any(|image| running(image)) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "still running: {images:?}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        // Under Wine, or if the test failed above: leave nothing behind.
        for image in &images {
            let _ = std::process::Command::new("taskkill")
                .args(["/F", "/IM", image])
                .output();
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
