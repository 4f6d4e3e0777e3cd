//! Lesson 10: a pool of threads (线程池). A fixed number of workers serve the clients; a pool
//! bounds the threads but not the waiting (four clients that stay hold four workers, a fifth
//! waits until one leaves); a full queue refuses with one line; Ctrl-C closes each client after
//! its next answer and exits 0, even out of file descriptors. And the 抢票 demo beside it:
//! without a lock ten buyers get the one ticket, with a `Mutex` one does.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use common::{connect, echo, read_to_end, run, Server};

/// `tickets.rs` is a program of its own (`lesson10-tickets`); its buyers are tested here as
/// functions, so that a test can choose when each buyer's wait ends.
#[allow(dead_code)]
#[path = "../lessons/10_pool/tickets.rs"]
mod tickets;

const SERVER: &str = env!("CARGO_BIN_EXE_lesson10-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_lesson09-client");

/// Where `needle` first appears in the server's log; panics if it does not.
fn position(log: &str, needle: &str) -> usize {
    log.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the log:\n{log}"))
}

/// A client that is answered once and stays: it holds a worker. Its address is the log's.
fn holding(server: &Server, i: usize) -> (TcpStream, SocketAddr) {
    let mut sock = connect(server.addr);
    assert_eq!(
        echo(&mut sock, format!("hold {i}")),
        format!("hold {i}123").as_bytes()
    );
    let me = sock.local_addr().unwrap();
    (sock, me)
}

/// The line a refused client reads, then the end of the stream.
fn refusal(reason: &str) -> String {
    format!("refused: {reason}; closing the connection\n")
}

const FULL: &str = "every worker is busy and the queue is full";
#[cfg(unix)]
const STOPPING: &str = "the server is stopping";

#[test]
fn the_server_says_how_many_workers_and_how_much_queue() {
    let server = Server::start(SERVER, &["--workers", "3", "--queue", "7"]);
    server.wait_for_log("3 worker threads started, and a queue with room for 7 clients\n");
    let server = Server::start(SERVER, &["--workers", "1", "--queue", "1"]);
    server.wait_for_log("1 worker thread started, and a queue with room for 1 client\n");
}

/// The issue of the whole ladder, shown on purpose: four clients that stay hold the four
/// workers, and a fifth, which asks for one echo, waits in the queue until one of them
/// leaves. Its 200 ms wait only asserts that nothing arrives; the order of events is asserted
/// on the log.
#[test]
fn four_clients_that_stay_hold_four_workers_and_a_fifth_waits_until_one_leaves() {
    let server = Server::start(SERVER, &["--workers", "4"]);
    let mut holders: Vec<(TcpStream, SocketAddr)> = (1..=4).map(|i| holding(&server, i)).collect();
    let mut fifth = connect(server.addr);
    let me = fifth.local_addr().unwrap();
    fifth.write_all(b"fifth").unwrap();
    server.wait_for_log(&format!("{me} connected\n"));
    fifth
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let err = fifth.read(&mut [0u8; 16]).unwrap_err();
    assert!(socket_lessons::is_timeout(&err), "{err}");
    assert!(!server.stdout().contains(&format!("{me} served by")));

    let (second, second_addr) = holders.remove(1);
    drop(second);
    fifth.set_read_timeout(Some(common::SAFETY)).unwrap();
    let mut reply = [0u8; 8];
    fifth.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"fifth123");
    // The fifth was taken from the queue after the second had gone, by the worker it left.
    // (The log is read by a thread of the test: wait for the line, not only for the echo.)
    server.wait_for_log(&format!("{me} served by worker "));
    let log = server.stdout();
    let freed = &log[position(&log, &format!("{second_addr} served by worker "))..];
    let worker = freed.lines().next().unwrap().rsplit(' ').next().unwrap();
    assert!(
        position(&log, &format!("{second_addr} closed the connection"))
            < position(&log, &format!("{me} served by worker {worker}\n")),
        "{log}"
    );
    // The other three were answered all along.
    for (i, (sock, _)) in holders.iter_mut().enumerate() {
        assert_eq!(
            echo(sock, format!("still {i}")),
            format!("still {i}123").as_bytes()
        );
    }
}

/// The same with the many-clients client, as the README runs it: four clients that hold,
/// then one more. The four are answered at once; the fifth only when they let go.
#[test]
fn the_many_clients_client_waits_for_a_worker_while_four_hold_them() {
    let server = Server::start(SERVER, &["--workers", "4"]);
    let addr = server.addr.to_string();
    let holders = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let args = [
                "--addr",
                &addr,
                "--clients",
                "4",
                "--rounds",
                "1",
                "--hold",
                "1",
            ];
            run(CLIENT, &args)
        }
    });
    server.wait_for_count(" says: \"client ", 4);
    let fifth = run(
        CLIENT,
        &["--addr", &addr, "--clients", "1", "--rounds", "1"],
    );
    let holders = holders.join().unwrap();
    for out in [&holders, &fifth] {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    assert!(String::from_utf8_lossy(&holders.stdout).starts_with("served 4/4 clients\n"));
    assert!(String::from_utf8_lossy(&fifth.stdout).starts_with("served 1/1 clients\n"));
    // The fifth's first (and only) message was answered after a holder had closed. Its
    // message is client 1's of the holders too: the second of the two lines is the fifth's.
    server.wait_for_count(" says: \"client 1 round 1\"", 2);
    let log = server.stdout();
    let answered = log.rfind(" says: \"client 1 round 1\"").unwrap();
    let first_close = position(&log, " closed the connection");
    assert!(first_close < answered, "{log}");
}

/// A pool bounds the threads: serving many clients, one after another and at once, the
/// server keeps its main thread, its workers and the thread that waits for Ctrl-C. (Lesson 09
/// has a thread per client connected.)
#[cfg(target_os = "linux")]
#[test]
fn the_pool_keeps_the_same_threads_whatever_the_clients() {
    let server = Server::start(SERVER, &["--workers", "3"]);
    let threads = || -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
        line["Threads:".len()..].trim().parse().unwrap()
    };
    // The workers are started before the second line is printed; ctrlc's thread before the
    // first.
    server.wait_for_log(" worker threads started");
    assert_eq!(threads(), 5);
    let held: Vec<_> = (1..=3).map(|i| holding(&server, i)).collect();
    // Ten more, queued behind the three; each leaves at once and is served (its end read)
    // when a worker is free.
    for _ in 0..10 {
        drop(connect(server.addr));
    }
    assert_eq!(threads(), 5);
    drop(held);
    server.wait_for_count(" closed the connection", 13);
    assert_eq!(threads(), 5);
}

/// A full queue refuses the next client with one line, in its log and to the client, instead
/// of growing; the client in the queue is served once the worker is free.
#[test]
fn a_full_queue_refuses_a_client_with_one_line() {
    let server = Server::start(SERVER, &["--workers", "1", "--queue", "1"]);
    let (first, first_addr) = holding(&server, 1);
    let mut queued = connect(server.addr);
    let queued_addr = queued.local_addr().unwrap();
    server.wait_for_log(&format!("{queued_addr} connected\n"));

    let mut refused = connect(server.addr);
    let me = refused.local_addr().unwrap();
    let answer = String::from_utf8(read_to_end(&mut refused)).unwrap();
    let reason = format!("{FULL} (1 waiting)");
    assert_eq!(answer, refusal(&reason));
    server.wait_for_log(&format!("{me} refused: {reason}\n"));

    drop(first);
    server.wait_for_log(&format!("{first_addr} closed the connection\n"));
    assert_eq!(echo(&mut queued, "my turn"), b"my turn123");
    server.wait_for_log(&format!("{queued_addr} served by worker 1\n"));
}

/// Lesson 09's client against a full queue: a client the server turns away reads the server's
/// line instead of an echo, and is counted as refused, with the server's reason, on the one
/// line that counts what went wrong (not as a wrong echo, nor as a close). First clients that
/// send nothing (`--rounds 0 --hold`): the server closes them cleanly after its line. Then,
/// on Linux, clients that send their first message at once: it reaches the server before the
/// refusal, so closing with it unread sends a reset after the line, and the line is still read
/// first (Linux keeps received bytes readable before it reports the reset; other systems may
/// drop them, not checked).
#[test]
fn the_many_clients_client_counts_a_refusal_as_refused() {
    let server = Server::start(SERVER, &["--workers", "1", "--queue", "1"]);
    let (_first, _) = holding(&server, 1);
    let queued = connect(server.addr);
    let queued_addr = queued.local_addr().unwrap();
    server.wait_for_log(&format!("{queued_addr} connected\n"));
    let addr = server.addr.to_string();
    let counted = |n: usize| {
        format!(
            "lesson09-client: {n} of {n} clients not served: {n} refused by the server \
             (first: \"{FULL} (1 waiting); closing the connection\")\n"
        )
    };

    let silent = ["--clients", "2", "--rounds", "0", "--hold", "20"];
    let out = run(CLIENT, &[&["--addr", &addr][..], &silent].concat());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("served 0/2 clients\n"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), counted(2));
    server.wait_for_count(&format!(" refused: {FULL} (1 waiting)\n"), 2);

    #[cfg(target_os = "linux")]
    {
        let talking = ["--clients", "3", "--rounds", "2"];
        let out = run(CLIENT, &[&["--addr", &addr][..], &talking].concat());
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("served 0/3 clients\n"));
        assert_eq!(String::from_utf8_lossy(&out.stderr), counted(3));
        server.wait_for_count(&format!(" refused: {FULL} (1 waiting)\n"), 5);
    }
}

/// Sends SIGINT, as Ctrl-C in the server's terminal does on Unix. On Windows Ctrl-C is a
/// console control event, and sending one to another program takes GenerateConsoleCtrlEvent,
/// an `unsafe` call into the system that this project does not make: the Ctrl-C tests run on
/// Unix only. (The Windows build, run by Wine in a terminal, stops the same way on Ctrl-C.)
#[cfg(unix)]
fn ctrl_c(server: &Server) {
    common::kill("-INT", server.pid());
}

/// The next thing `sock` reads is the end of the stream: the server has closed the connection.
#[cfg(unix)]
fn assert_closed_by_the_server(sock: &mut TcpStream) {
    match sock.read(&mut [0u8; 64]) {
        Ok(0) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
}

/// Ctrl-C with clients connected: no new connection is accepted, the client in the queue is
/// told the server is stopping, and each client being served has its next message answered,
/// then reads the end of the stream: the worker closes it between two messages, so a client
/// that keeps talking cannot hold the stop (it is never silent for --idle-timeout). Then the
/// workers are joined and the server exits with status 0, saying so.
#[cfg(unix)]
#[test]
fn ctrl_c_answers_each_client_once_more_then_closes_it_and_exits_0() {
    let mut server = Server::start(SERVER, &["--workers", "2", "--queue", "2"]);
    let (mut a, a_addr) = holding(&server, 1);
    let (mut b, b_addr) = holding(&server, 2);
    let mut queued = connect(server.addr);
    let queued_addr = queued.local_addr().unwrap();
    server.wait_for_log(&format!("{queued_addr} connected\n"));

    ctrl_c(&server);
    server.wait_for_log("stopping (Ctrl-C): no new clients; ");
    // The listener is closed before that line: a connect is refused by the system.
    let err = TcpStream::connect(server.addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    let answer = String::from_utf8(read_to_end(&mut queued)).unwrap();
    assert_eq!(answer, refusal(STOPPING));
    server.wait_for_log(&format!("{queued_addr} refused: {STOPPING}\n"));

    assert_eq!(echo(&mut a, "last a"), b"last a123");
    assert_closed_by_the_server(&mut a);
    assert_eq!(echo(&mut b, "last b"), b"last b123");
    assert_closed_by_the_server(&mut b);
    assert_eq!(server.wait_exit().code(), Some(0));
    server.wait_for_log("stopped: ");
    let log = server.stdout();
    for (me, said) in [(a_addr, "last a"), (b_addr, "last b")] {
        let closed = format!("{me} says: \"{said}\"\n{me} closed by the server: shutting down\n");
        assert!(log.contains(&closed), "{log}");
    }
    assert!(
        log.ends_with("stopped: every client closed, every worker joined\n"),
        "{log}"
    );
}

/// Out of file descriptors, accept() fails again and again, and Ctrl-C cannot wake the
/// connection loop with a connection (accept() would fail for it too): the loop's pause after
/// each failure ends at Ctrl-C instead. From then on the workers take no client from the
/// queue: every queued client is told the server is stopping, the two clients being served
/// are answered once more and closed, and the server exits 0.
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_stops_the_server_while_accept_fails_for_want_of_descriptors() {
    let failed = "accept failed: Too many open files (os error 24); trying again in 1 s\n";
    assert_ctrl_c_stops_with_the_descriptors_taken(|server| server.stdout().contains(failed));
}

/// The moment before: every descriptor taken but one, and the connection loop waits in
/// accept(), which on Linux has already taken that one for the connection it will return. A
/// socket made at Ctrl-C to wake it would fail (EMFILE); the handler's socket, made in
/// advance, connects, and the loop stops as usual.
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_stops_the_server_while_accept_waits_with_the_last_descriptor() {
    // The limit bounds the numbers of new descriptors; a process may also hold some it
    // inherited, numbered above it. Counted: the numbers below the limit in use.
    let in_use = |server: &Server| {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid())).unwrap();
        let numbers = fds.map(|fd| fd.unwrap().file_name().to_string_lossy().parse::<usize>());
        numbers
            .filter(|n| *n.as_ref().unwrap() < DESCRIPTORS)
            .count()
    };
    assert_ctrl_c_stops_with_the_descriptors_taken(|server| in_use(server) == DESCRIPTORS - 1);
}

/// How many file descriptors the Ctrl-C tests' server may have (`ulimit -n`).
#[cfg(target_os = "linux")]
const DESCRIPTORS: usize = 16;

/// Starts the server with [`DESCRIPTORS`] descriptors and two workers, each held by a client,
/// then queues clients one at a time, each accepted before the next, until `enough`; then
/// Ctrl-C. The queued clients are refused (`the server is stopping`), none is served; the two
/// served clients are answered once more, then closed; the server exits 0.
///
/// `enough` may become true while the last client is between connect and its `connected`
/// line, or before it is accepted at all (the accept() after the last descriptor was taken
/// fails at once, and so does every later one). So each client waits for its `connected`
/// line or for `enough`, and the log, once the server has exited, says which were accepted.
#[cfg(target_os = "linux")]
fn assert_ctrl_c_stops_with_the_descriptors_taken(enough: impl Fn(&Server) -> bool) {
    let script = format!(r#"ulimit -n {DESCRIPTORS} && exec "$0" "$@""#);
    let args = ["--addr", "127.0.0.1:0", "--workers", "2", "--queue", "30"];
    let mut server = Server::start(
        "sh",
        &[&["-c", script.as_str(), SERVER][..], &args].concat(),
    );
    let (mut a, _) = holding(&server, 1);
    let (mut b, _) = holding(&server, 2);
    let mut queued = Vec::new();
    while !enough(&server) {
        assert!(queued.len() < DESCRIPTORS, "{}", server.stdout());
        let sock = connect(server.addr);
        let connected = format!("{} connected\n", sock.local_addr().unwrap());
        let deadline = std::time::Instant::now() + common::SAFETY;
        while !server.stdout().contains(&connected) && !enough(&server) {
            assert!(std::time::Instant::now() < deadline, "{}", server.stdout());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        queued.push(sock);
    }

    ctrl_c(&server);
    server.wait_for_log("stopping (Ctrl-C): no new clients; ");
    assert_eq!(echo(&mut a, "last a"), b"last a123");
    assert_closed_by_the_server(&mut a);
    assert_eq!(echo(&mut b, "last b"), b"last b123");
    assert_closed_by_the_server(&mut b);
    assert_eq!(server.wait_exit().code(), Some(0));
    server.wait_for_log("stopped: ");
    let log = server.stdout();
    assert_eq!(log.matches(" served by worker ").count(), 2, "{log}");
    let mut accepted = 0;
    for sock in &mut queued {
        // One never accepted was reset when the listening socket closed: nothing to read.
        if !log.contains(&format!("{} connected\n", sock.local_addr().unwrap())) {
            continue;
        }
        accepted += 1;
        let answer = String::from_utf8(read_to_end(sock)).unwrap();
        assert_eq!(answer, refusal(STOPPING));
    }
    assert!(accepted + 1 >= queued.len(), "{log}");
    let refused = format!(" refused: {STOPPING}\n");
    assert_eq!(log.matches(&refused).count(), accepted, "{log}");
}

/// A client that stays silent after Ctrl-C holds the shutdown for --idle-timeout, no longer.
#[cfg(unix)]
#[test]
fn ctrl_c_waits_for_a_silent_client_no_longer_than_the_idle_timeout() {
    let mut server = Server::start(SERVER, &["--workers", "1", "--idle-timeout", "0.5"]);
    let (silent, me) = holding(&server, 1);
    ctrl_c(&server);
    assert_eq!(server.wait_exit().code(), Some(0));
    server.wait_for_log("stopped: ");
    let log = server.stdout();
    assert!(
        log.ends_with(&format!(
            "{me} dropped: silent for longer than --idle-timeout\nstopped: every client \
             closed, every worker joined\n"
        )),
        "{log}"
    );
    drop(silent);
}

/// A second Ctrl-C does not wait: the server exits at once with status 130, saying so.
#[cfg(unix)]
#[test]
fn a_second_ctrl_c_stops_at_once_with_status_130() {
    let mut server = Server::start(SERVER, &["--workers", "1"]);
    let (_client, _) = holding(&server, 1);
    ctrl_c(&server);
    server.wait_for_log("stopping (Ctrl-C)");
    ctrl_c(&server);
    assert_eq!(server.wait_exit().code(), Some(130));
    server.wait_for_log("stopped at once (Ctrl-C again): clients still served were cut off\n");
}

/// The notes' 2.1 client, unchanged but for the address, reads its lines from a pipe: each is
/// answered, then its `input()` dies of EOFError, as the notes' code does. Two of them at once
/// with two workers. (Unix: the test runs `python3`.)
#[cfg(unix)]
#[test]
fn the_notes_python_client_works() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no python3 here");
        return;
    }
    let server = Server::start(SERVER, &["--workers", "2"]);
    let code = common::NOTES_ECHO_CLIENT.replace("PORT", &server.addr.port().to_string());
    let (_held, _) = holding(&server, 1);
    let out = common::run_client("python3", &["-u", "-c", &code], "hello\n你好\n".as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "输入想说的话>>>:hello123\n输入想说的话>>>:你好123\n输入想说的话>>>:"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("EOFError"));
    server.wait_for_log(" says: \"你好\"\n");
}

#[test]
fn bad_arguments_exit_2_on_one_line() {
    for args in [
        &["--workers", "0"][..],
        &["--workers", "1001"],
        &["--queue", "0"],
        &["--queue", "many"],
        &["--idle-timeout", "0"],
    ] {
        let out = run(SERVER, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

/// Out of file descriptors, the accept loop pauses instead of spinning (as lesson 02's). The
/// server holds one descriptor more than lesson 02's while it waits: the socket its Ctrl-C
/// handler connects with, made in advance (ctrlc itself waits on a semaphore, no descriptor).
#[cfg(target_os = "linux")]
#[test]
fn accept_errors_pause() {
    common::assert_accept_errors_pause_with_fds(SERVER, &["--workers", "1"], 5);
}

/// The README's diff from lesson 09's server is the code's: each removed line is a line of
/// lesson 09's server.rs, each added line one of lesson 10's, each unchanged line one of both.
#[test]
fn the_readme_diff_from_lesson09_is_the_code() {
    let read = |path: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(path).unwrap().replace("\r\n", "\n")
    };
    let readme = read("lessons/10_pool/README.md");
    let lesson09 = read("lessons/09_threads/server.rs");
    let lesson10 = read("lessons/10_pool/server.rs");
    let has = |file: &str, line: &str| file.lines().any(|l| l == line);
    let diff = readme.split("```diff\n").nth(1).unwrap();
    let diff = &diff[..diff.find("```").unwrap()];
    for line in diff.lines() {
        let (mark, code) = line.split_at(1);
        match mark {
            "-" => assert!(has(&lesson09, code), "not in lesson 09: {line:?}"),
            "+" => assert!(has(&lesson10, code), "not in lesson 10: {line:?}"),
            " " => assert!(
                has(&lesson09, code) && has(&lesson10, code),
                "not in both: {line:?}"
            ),
            _ => assert!(line.starts_with("@@"), "{line:?}"),
        }
    }
}

// ---- 抢票: the course's ticket-grabbing demo, beside the pool ----------------------------

/// Without a lock, ten buyers each read the one ticket's count before any of them writes it
/// back: all ten get it. Made certain, not likely: the buyers' wait between the read and the
/// write is a barrier that opens only when all ten have read.
#[test]
fn tickets_without_a_lock_ten_buyers_get_the_one_ticket() {
    let tickets = AtomicU32::new(1);
    let all_have_read = Barrier::new(tickets::BUYERS);
    let network = || {
        all_have_read.wait();
    };
    let sold = tickets::sell(|| tickets::buy_unlocked(&tickets, &network));
    assert_eq!(sold, 10);
    assert_eq!(tickets.load(Ordering::SeqCst), 0);
}

/// With the `Mutex`, however the ten threads run, one buyer at a time is between its read
/// and its write (counted inside the wait), and one ticket is sold.
#[test]
fn tickets_with_a_mutex_one_buyer_gets_the_one_ticket() {
    let tickets = Mutex::new(1);
    let inside = AtomicUsize::new(0);
    let most_inside = AtomicUsize::new(0);
    let network = || {
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        most_inside.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(1));
        inside.fetch_sub(1, Ordering::SeqCst);
    };
    let sold = tickets::sell(|| tickets::buy_locked(&tickets, &network));
    assert_eq!(sold, 1);
    assert_eq!(*tickets.lock().unwrap(), 0);
    assert_eq!(most_inside.load(Ordering::SeqCst), 1);
}
