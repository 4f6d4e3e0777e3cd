//! Lesson 12 (the course's 协程, gevent's `spawn(talk, conn)`): every client a tokio task, all
//! on one thread by default. `--block` shows a blocking call in a task stalling every client;
//! tokio's sleep (the default) and `--spawn-blocking` show the fixes. Ctrl-C finishes the
//! echoes in progress, and drops a client that leaves its answer unread.
//!
//! Lesson 12 is a package of its own (see the root Cargo.toml), so its tests are in its own
//! `tests/` folder; the helpers are the root's `tests/common/mod.rs`, shared by path.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{echo, read_to_end, run, run_client, Server, SAFETY};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson12-server");

/// Whether an answer has arrived on `sock`, without waiting for one.
fn answered(sock: &TcpStream) -> bool {
    sock.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let got = match sock.peek(&mut byte) {
        Ok(n) => n > 0,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("peek: {e}"),
    };
    sock.set_nonblocking(false).unwrap();
    got
}

/// The notes' client is answered while another client holds its connection open (lesson 02
/// would make it wait until that one left). Its input ends after `你好`, and `input()` ends
/// the notes' client with EOFError, as it does against every lesson.
#[test]
fn the_notes_python_client_is_answered_while_another_client_is_connected() {
    if !common::python3_runs() {
        eprintln!("skipped: no python3 here to run the notes' client");
        return;
    }
    let server = Server::start(SERVER, &[]);
    let mut other = server.connect();
    assert_eq!(echo(&mut other, b"first"), b"first123");
    let code = common::NOTES_ECHO_CLIENT.replace("PORT", &server.addr.port().to_string());
    // -X utf8: the prompt and 你好 in UTF-8 whatever the locale.
    let out = run_client(
        "python3",
        &["-X", "utf8", "-c", &code],
        "hello\n\n你好\n".as_bytes(),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "输入想说的话>>>:hello123\n输入想说的话>>>:输入想说的话>>>:你好123\n输入想说的话>>>:"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("EOFError"));
    server.wait_for_log("says: \"你好\"\n");
    assert_eq!(echo(&mut other, b"still here"), b"still here123");
}

/// The ladder's client (lesson 09's), 500 clients at once, 20 rounds each: every client is
/// served and every echo is right (the client checks each one and exits 0 only then).
#[test]
fn lesson09_client_500_clients_20_rounds_all_served() {
    assert_lesson09_client_all_served(&[]);
}

/// The same on the multi-threaded runtime.
#[test]
fn lesson09_client_500_clients_20_rounds_all_served_with_threads_2() {
    assert_lesson09_client_all_served(&["--threads", "2"]);
}

fn assert_lesson09_client_all_served(server_args: &[&str]) {
    // Another package's binary: built up to date first (see `workspace_binaries`).
    let client = common::workspace_binaries(&["lesson09-client"]).remove(0);
    #[cfg(not(windows))]
    let clients = 500;
    #[cfg(windows)]
    let clients = if common::skip_under_wine(
        "500 clients of lesson09-client: Wine runs its thread per client and their blocking \
         socket calls through its one wineserver, about four times slower than Linux (11 s for \
         one run, past the test's 20 s with the others beside it); 50 clients instead",
    ) {
        50
    } else {
        500
    };
    let server = Server::start(SERVER, server_args);
    let addr = server.addr.to_string();
    let n = clients.to_string();
    let args = ["--addr", &addr, "--clients", &n, "--rounds", "20"];
    let out = run(&client.to_string_lossy(), &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with(&format!("served {n}/{n} clients\n")),
        "{out:?}"
    );
}

/// 200 clients connect, all stay connected, and each is answered: the runtime switches between
/// their tasks on its one thread (on Linux, `/proc` counts the server's threads: 1).
#[test]
fn two_hundred_clients_connected_at_once_are_answered_by_one_thread() {
    let server = Server::start(SERVER, &[]);
    let mut clients: Vec<TcpStream> = (0..200).map(|_| server.connect()).collect();
    for round in 0..2 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("client {i} round {round}").as_bytes())
                .unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let want = format!("client {i} round {round}123");
            let mut got = vec![0u8; want.len()];
            c.read_exact(&mut got).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
    }
    #[cfg(target_os = "linux")]
    assert_eq!(common::proc_status(server.pid(), "Threads"), 1);
}

/// `--threads 2`: the same tasks on tokio's multi-threaded runtime. Linux counts 3 threads:
/// the two workers, and the main thread, which waits in `block_on` until the server returns.
#[test]
fn with_threads_2_the_same_tasks_run_on_two_worker_threads() {
    let server = Server::start(SERVER, &["--threads", "2"]);
    let mut clients: Vec<TcpStream> = (0..50).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("client {i}");
        assert_eq!(echo(c, msg.as_bytes()), format!("{msg}123").as_bytes());
    }
    #[cfg(target_os = "linux")]
    assert_eq!(common::proc_status(server.pid(), "Threads"), 3);
}

/// Lesson 02's echo, kept: each read's bytes come back followed by `123`. A message written
/// one byte at a time comes back whole and in order, however the server's reads cut it: take
/// the `123`s out and it is the message, each piece between them at least one byte.
#[test]
fn a_message_written_one_byte_at_a_time_comes_back_intact() {
    let server = Server::start(SERVER, &[]);
    let mut sock = server.connect();
    sock.set_nodelay(true).unwrap();
    let msg = "hello, 你好 world".as_bytes();
    for byte in msg {
        sock.write_all(&[*byte]).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < msg.len() || !got.ends_with(b"123") || strip_123(&got).len() < msg.len() {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(strip_123(&got), msg);
    let pieces: Vec<&[u8]> = split_123(&got);
    assert!(pieces.iter().all(|p| !p.is_empty()), "{got:?}");
}

/// The pieces of an echo stream: what the server read each time, without the `123` after it.
fn split_123(stream: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = stream;
    while let Some(at) = rest.windows(3).position(|w| w == b"123") {
        pieces.push(&rest[..at]);
        rest = &rest[at + 3..];
    }
    assert!(rest.is_empty(), "bytes after the last 123: {rest:?}");
    pieces
}

fn strip_123(stream: &[u8]) -> Vec<u8> {
    let mut rest = stream;
    let mut out = Vec::new();
    while let Some(at) = rest.windows(3).position(|w| w == b"123") {
        out.extend_from_slice(&rest[..at]);
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    out
}

/// TCP is a byte stream: three messages waiting together are read by one `read`, and come back
/// as one answer with one `123` (黏包, lesson 03). The server is held still (SIGSTOP, and
/// `/proc` says it has stopped) while they arrive, so its read surely finds all three.
#[cfg(target_os = "linux")]
#[test]
fn three_messages_waiting_together_are_read_as_one() {
    let server = Server::start(SERVER, &[]);
    let mut sock = server.connect();
    let me = sock.local_addr().unwrap();
    server.wait_for_log(&format!("{me} connected\n"));
    common::kill("-STOP", server.pid());
    common::wait_until_stopped(server.pid());
    for msg in [&b"abc"[..], b"def", b"ghi"] {
        sock.write_all(msg).unwrap();
    }
    common::kill("-CONT", server.pid());
    let mut reply = [0u8; 12];
    sock.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"abcdefghi123");
    server.wait_for_log(&format!("{me} says: \"abcdefghi\"\n"));
}

/// A client that sends 10 MB and never reads. The server answers until the client's buffers
/// and its own are full; then its write waits, and it reads nothing more from that client, so
/// its memory does not grow with what the client sends. The other clients are answered all
/// along, and after --idle-timeout the deaf one is dropped.
#[test]
fn a_client_sending_10_mb_without_reading_grows_nothing_and_blocks_no_one() {
    let server = Server::start(SERVER, &["--idle-timeout", "1"]);
    let mut other = server.connect();
    assert_eq!(echo(&mut other, b"before"), b"before123");
    #[cfg(target_os = "linux")]
    let rss_before = common::proc_status(server.pid(), "VmRSS");

    let mut deaf = server.connect();
    let me = deaf.local_addr().unwrap();
    let writer = thread::spawn(move || {
        let chunk = [b'x'; 64 * 1024];
        let mut sent = 0;
        // Until 10 MB are out, or the server drops us (or the safety-net timeout ends it).
        while sent < 10_000_000 {
            match deaf.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let dropped = format!("{me} dropped: the client did not read for longer than --idle-timeout\n");
    let start = Instant::now();
    #[cfg(target_os = "linux")]
    let mut rss_max = 0;
    let mut rounds = 0;
    while !server.stdout().contains(&dropped) {
        assert!(start.elapsed() < SAFETY, "{dropped:?} never came");
        assert_eq!(echo(&mut other, b"still served?"), b"still served?123");
        rounds += 1;
        #[cfg(target_os = "linux")]
        {
            rss_max = rss_max.max(common::proc_status(server.pid(), "VmRSS"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    let sent = writer.join().unwrap();
    assert!(rounds > 0);
    assert!(sent > 1_000_000, "only {sent} bytes went out");
    // The server keeps 1 KiB per client; what the deaf client sent sits in the kernel's
    // socket buffers, which are not the server's memory. 2 MiB leaves room for the log's
    // and the allocator's own growth.
    #[cfg(target_os = "linux")]
    assert!(
        rss_max < rss_before + 2048,
        "resident memory grew from {rss_before} KiB to {rss_max} KiB"
    );
    assert_eq!(echo(&mut other, b"after"), b"after123");
}

/// A client that floods the server without reading, then resets the connection (SO_LINGER 0)
/// while the server is writing it answers: that client is dropped with the error, the other
/// clients do not notice.
#[test]
fn a_client_reset_while_the_server_writes_to_it_ends_that_client_only() {
    let server = Server::start(SERVER, &[]);
    let mut other = server.connect();
    assert_eq!(echo(&mut other, b"before"), b"before123");
    let mut flood = server.connect();
    let me = flood.local_addr().unwrap();
    // Write until our writes would block: by then the server's answers have filled our
    // receive buffer, its write waits, and it has stopped reading from us. A server that read
    // on, keeping what it could not send, would never make us wait (64 MB is far beyond any
    // socket buffers).
    flood.set_nonblocking(true).unwrap();
    let chunk = [b'y'; 64 * 1024];
    let mut sent = 0;
    loop {
        match flood.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("writing: {e}"),
        }
        assert!(
            sent < 64_000_000,
            "the server never stopped reading from us"
        );
    }
    socket2::SockRef::from(&flood)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(flood);
    server.wait_for_log(&format!("{me} dropped: "));
    assert_eq!(echo(&mut other, b"after"), b"after123");
}

/// A client that connects and says nothing is dropped after --idle-timeout, with a line that
/// says so; the clients that came after it are answered meanwhile (lesson 02 would keep them
/// waiting behind it).
#[test]
fn a_silent_client_is_dropped_after_the_idle_timeout_and_others_are_served_meanwhile() {
    let server = Server::start(SERVER, &["--idle-timeout", "0.5"]);
    let mut silent = server.connect();
    let me = silent.local_addr().unwrap();
    server.wait_for_log(&format!("{me} connected\n"));
    let mut next = server.connect();
    assert_eq!(echo(&mut next, b"anyone?"), b"anyone?123");
    server.wait_for_log(&format!(
        "{me} dropped: silent for longer than --idle-timeout\n"
    ));
    assert!(read_to_end(&mut silent).is_empty());
}

/// BUG (on purpose): `--block`. While one client's task sleeps with std's blocking sleep, the
/// runtime's one thread serves nobody: a second client's message, sent during that sleep, is
/// read only after the first client's answer has been written.
#[test]
fn block_stalls_every_client_behind_the_one_being_worked_on() {
    assert!(!second_read_before_first_answered(&["--block"]));
}

/// The fix: tokio's sleep (the default). While the first client's answer waits, its task has
/// given the thread back, and the second client's message is read at once. (The same check
/// fails with `--block`, above.)
#[test]
fn while_one_client_waits_on_tokio_sleep_the_others_are_served() {
    assert!(second_read_before_first_answered(&[]));
}

/// The other fix, for blocking work that has no async version: `spawn_blocking` runs the
/// blocking sleep on a thread of tokio's blocking pool, and the runtime's thread goes on.
#[test]
fn spawn_blocking_keeps_the_blocking_sleep_off_the_runtime_thread() {
    assert!(second_read_before_first_answered(&["--spawn-blocking"]));
}

/// Two clients. The first sends `a`; once the server has read it (its answer now waits
/// --delay), the second sends `b`. Whether the server read `b` before it wrote `a`'s answer,
/// from the server's `--trace`: its stderr, written by one thread in the order things happened.
///
/// `b` must reach the server while `a`'s answer still waits; the test checks that it did (no
/// answer for `a` yet once `b` is sent). On a machine too busy for that, the run is repeated
/// with a doubled delay: never judged on luck.
fn second_read_before_first_answered(extra: &[&str]) -> bool {
    for delay in ["1", "2", "4", "8"] {
        let mut args = vec!["--trace", "--delay", delay];
        args.extend_from_slice(extra);
        let server = Server::start(SERVER, &args);
        let mut first = server.connect();
        let mut second = server.connect();
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        server.wait_for_log(&format!("{b} connected\n"));
        first.write_all(b"a").unwrap();
        server.wait_for_log(&format!("{a} says: \"a\"\n"));
        second.write_all(b"b").unwrap();
        if answered(&first) {
            continue; // the delay ended before `b` was sent: try a longer one
        }
        let mut reply = [0u8; 4];
        first.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"a123");
        second.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"b123");
        let first_written = format!("[{a}] write 4 bytes");
        let second_read = format!("[{b}] read 1 bytes");
        // Wait for both lines compared. Both answers wait --delay from nearly the same
        // moment, so which of them is written first is up to the scheduler: `b`'s answer
        // being traced says nothing about `a`'s.
        server.wait_for_log(&first_written);
        server.wait_for_log(&second_read);
        let trace = server.stderr();
        let (Some(w), Some(r)) = (trace.find(&first_written), trace.find(&second_read)) else {
            panic!("no {first_written:?} or {second_read:?} in the trace:\n{trace}");
        };
        return r < w;
    }
    panic!("`b` never reached the server while `a`'s answer waited, even for 8 s");
}

/// Ctrl-C (SIGINT on Unix): the server accepts no one new; a client whose echo is in progress
/// (its message read, the answer waiting for --delay) gets its answer and then the end of the
/// stream; an idle client gets the end of the stream; the server exits 0.
///
/// The Ctrl-C must come while the echo is in progress; the test checks that it did (no answer
/// yet once the server has said `Ctrl-C`), and on a machine too busy for that, repeats the run
/// with a longer delay.
#[cfg(unix)]
#[test]
fn ctrl_c_finishes_the_echoes_in_progress_then_exits_0() {
    for delay in ["0.5", "1", "2", "4", "8"] {
        let mut server = Server::start(SERVER, &["--delay", delay]);
        let mut idle = server.connect();
        let mut busy = server.connect();
        let me = busy.local_addr().unwrap();
        busy.write_all(b"last").unwrap();
        server.wait_for_log(&format!("{me} says: \"last\"\n"));
        common::kill("-INT", server.pid());
        server.wait_for_log("Ctrl-C: ");
        if answered(&busy) {
            continue; // the echo was done before the Ctrl-C: try a longer delay
        }
        let refused = TcpStream::connect(server.addr).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
        assert_eq!(read_to_end(&mut busy), b"last123");
        assert!(read_to_end(&mut idle).is_empty());
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "{}", server.stdout());
        let log = server.stdout();
        assert!(
            log.contains(
                "Ctrl-C: accepting no more clients; 2 connected, each closed once its \
                 answer in progress is sent (Ctrl-C again stops at once)\n"
            ),
            "{log}"
        );
        assert!(
            log.contains(&format!("{me} closed by the server: shutting down\n")),
            "{log}"
        );
        assert!(log.ends_with("all clients closed; stopped\n"), "{log}");
        return;
    }
    panic!("the Ctrl-C never came during the echo, even with a delay of 8 s");
}

/// After Ctrl-C, an answer waits for its client to read for `SHUTDOWN_GRACE` (5 s) at most,
/// not --idle-timeout. A client sends without reading until the server's answers fill its
/// receive window and the server's send buffer, so that its task waits in write
/// (`--trace-waits` says so); then Ctrl-C. That client is dropped, saying why, 5 s later; the other
/// client got every answer and the end of the stream; the server exits 0 well before the
/// idle timeout (60 s here) could have dropped anyone.
#[cfg(unix)]
#[test]
fn ctrl_c_drops_a_client_that_never_reads_after_a_grace_and_exits_0() {
    const GRACE: Duration = Duration::from_secs(5);
    let idle = Duration::from_secs(60);
    let mut server = Server::start(SERVER, &["--idle-timeout", "60", "--trace-waits"]);
    let mut good = server.connect();
    assert_eq!(echo(&mut good, b"before"), b"before123");

    let deaf = server.connect();
    let me = deaf.local_addr().unwrap();
    let mut writer = deaf.try_clone().unwrap();
    let flood = thread::spawn(move || {
        // Until the server drops us (the write fails) or stops reading (it blocks until then).
        let chunk = [b'x'; 64 * 1024];
        while writer.write_all(&chunk).is_ok() {}
    });
    server.wait_for_log(&format!("[{me}] write would block (WouldBlock)\n"));
    // The deaf client blocks no one.
    assert_eq!(echo(&mut good, b"during"), b"during123");

    // Before the signal: the server cannot see Ctrl-C before this instant.
    let pressed = Instant::now();
    common::kill("-INT", server.pid());
    server.wait_for_log("Ctrl-C: accepting no more clients; 2 connected");
    assert!(read_to_end(&mut good).is_empty());
    let status = server.wait_exit();
    let took = pressed.elapsed();
    assert_eq!(status.code(), Some(0), "{}", server.stdout());
    assert!(took >= GRACE && took < idle, "stopped after {took:?}");
    flood.join().unwrap();
    let log = server.stdout();
    let dropped = format!("{me} dropped: its answer still unread 5 s after Ctrl-C\n");
    assert!(log.contains(&dropped), "{log}");
    assert!(log.ends_with("all clients closed; stopped\n"), "{log}");
    drop(deaf);
}

/// A second Ctrl-C does not wait: the server stops at once, with status 130 (128 + SIGINT,
/// what a shell reports for a program stopped by Ctrl-C), and the answer in progress is lost.
#[cfg(unix)]
#[test]
fn a_second_ctrl_c_stops_at_once_with_status_130() {
    let mut server = Server::start(SERVER, &["--delay", "60"]);
    let mut busy = server.connect();
    let me = busy.local_addr().unwrap();
    busy.write_all(b"lost").unwrap();
    server.wait_for_log(&format!("{me} says: \"lost\"\n"));
    common::kill("-INT", server.pid());
    server.wait_for_log("Ctrl-C: ");
    common::kill("-INT", server.pid());
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(130));
    server.wait_for_log("Ctrl-C again: stopped at once, 1 still connected\n");
    assert!(read_to_end(&mut busy).is_empty());
}

/// Out of file descriptors (`ulimit -n 32`), `accept` fails at once, again and again. The
/// server logs it and pauses, 5 ms doubling up to 1 s, with tokio's sleep: the clients already
/// connected are answered during the pauses, and once they leave, the queued ones are
/// accepted and answered.
#[cfg(target_os = "linux")]
#[test]
fn out_of_file_descriptors_accept_pauses_and_the_connected_are_still_answered() {
    let script = r#"ulimit -n 32 && exec "$0" "$@""#;
    let server = Server::start("sh", &["-c", script, SERVER, "--addr", "127.0.0.1:0"]);
    let mut clients: Vec<TcpStream> = (0..40).map(|_| server.connect()).collect();
    server.wait_for_log("accept failed: Too many open files (os error 24); trying again in 5 ms\n");
    // Every accept that worked was logged before the first failure.
    let accepted = server.stdout().matches(" connected\n").count();
    assert!(accepted > 0 && accepted < 40, "{accepted} accepted");
    assert_eq!(echo(&mut clients[0], b"still here?"), b"still here?123");

    server.wait_for_log("; trying again in 1000 ms\n");
    let before = common::cpu_ticks(server.pid());
    server.wait_for_count("; trying again in 1000 ms\n", 2);
    // A second passed between those two lines; a spinning loop would have used all of it.
    let ticks = common::cpu_ticks(server.pid()) - before;
    assert!(ticks < 50, "{ticks} ticks of CPU during a 1 s pause");

    // The accepted clients leave, giving their descriptors back; each queued one is then
    // accepted and answered (and leaves in turn).
    clients.drain(..accepted);
    for (i, mut sock) in clients.into_iter().enumerate() {
        let msg = format!("queued {i}");
        assert_eq!(
            echo(&mut sock, msg.as_bytes()),
            format!("{msg}123").as_bytes()
        );
    }
}

#[test]
fn trace_shows_each_read_and_write_of_the_tasks() {
    let server = Server::start(SERVER, &["--trace"]);
    let mut sock = server.connect();
    let me = sock.local_addr().unwrap();
    assert_eq!(echo(&mut sock, b"hello"), b"hello123");
    drop(sock);
    server.wait_for_log(&format!("[{me}] read 0 bytes (end of stream)\n"));
    let trace = server.stderr();
    assert!(
        trace.contains(&format!(
            "[{me}] read 5 bytes: \"hello\"\n[{me}] write 8 bytes: \"hello123\"\n"
        )),
        "{trace}"
    );
}

/// `--trace-waits` adds the reads that would block: the moment a task starts to wait for its
/// client, once per wait (a task polled again before its bytes came is not shown again).
#[test]
fn trace_waits_shows_where_each_task_waits() {
    let server = Server::start(SERVER, &["--trace-waits"]);
    let mut sock = server.connect();
    let me = sock.local_addr().unwrap();
    let would_block = format!("[{me}] read would block (WouldBlock)\n");
    server.wait_for_log(&would_block);
    assert_eq!(echo(&mut sock, b"hello"), b"hello123");
    server.wait_for_count(&would_block, 2);
    drop(sock);
    server.wait_for_log(&format!("[{me}] read 0 bytes (end of stream)\n"));
    assert_eq!(
        server.stderr(),
        format!(
            "{would_block}\
             [{me}] read 5 bytes: \"hello\"\n\
             [{me}] write 8 bytes: \"hello123\"\n\
             {would_block}\
             [{me}] read 0 bytes (end of stream)\n"
        )
    );
}

/// The server's log is the learner's terminal: what a client sent is shown quoted and escaped,
/// on one line, as in lesson 02.
#[test]
fn client_text_is_escaped_in_the_log() {
    let server = Server::start(SERVER, &[]);
    let mut sock = server.connect();
    let me = sock.local_addr().unwrap();
    assert_eq!(echo(&mut sock, b"\x1b[2J"), b"\x1b[2J123");
    assert_eq!(echo(&mut sock, b"\nfake log line"), b"\nfake log line123");
    server.wait_for_log(&format!("{me} says: \"\\nfake log line\"\n"));
    let log = server.stdout();
    assert!(
        log.contains(&format!("{me} says: \"\\x1b[2J\"\n")),
        "{log:?}"
    );
    assert!(!log.contains('\x1b'), "{log:?}");
    assert!(!log.lines().any(|l| l.starts_with("fake")), "{log:?}");
}

/// Bad values exit 2 with one line; `--block` and `--spawn-blocking` need `--delay`.
#[test]
fn bad_arguments_exit_2_on_one_line() {
    for args in [
        &["--threads", "0"][..],
        &["--idle-timeout", "0"],
        &["--block"],
        &["--spawn-blocking"],
        &["--delay", "1", "--block", "--spawn-blocking"],
    ] {
        let out = run(SERVER, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
