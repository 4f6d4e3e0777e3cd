//! Lesson 09: many clients at once (并发), a thread (线程) per client. Lesson 02's server and
//! lesson 09's are held to the same steps: lesson 02 answers a second client only after the
//! first leaves, lesson 09 answers it at once. Then the many-clients client, `--processes`,
//! and the server's defences (a thread or a descriptor that cannot be had).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::{connect, echo, run, Server};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson09-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_lesson09-client");
const LESSON02: &str = env!("CARGO_BIN_EXE_lesson02-server");

/// Where `needle` first appears in the server's log; panics if it does not.
fn position(log: &str, needle: &str) -> usize {
    log.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the log:\n{log}"))
}

/// Client A is answered and stays; client B connects and sends. The same steps for both
/// servers; what differs is when B is answered. Returns A, B and their addresses. B's bounded
/// wait (200 ms) only asserts that nothing arrives; the order of events is asserted on the
/// server's log, which does not depend on timing.
fn second_client_while_the_first_stays(
    server: &Server,
) -> (TcpStream, TcpStream, SocketAddr, SocketAddr) {
    let mut a = connect(server.addr);
    assert_eq!(echo(&mut a, "first"), b"first123");
    let mut b = connect(server.addr);
    b.write_all(b"second").unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    (a, b, a_addr, b_addr)
}

#[test]
fn lesson02_serves_one_client_at_a_time() {
    let server = Server::start(LESSON02, &[]);
    let (a, mut b, a_addr, b_addr) = second_client_while_the_first_stays(&server);
    // B's connect completed (the kernel did the handshake), but nobody reads its message.
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let err = b.read(&mut [0u8; 16]).unwrap_err();
    assert!(socket_lessons::is_timeout(&err), "{err}");

    drop(a);
    b.set_read_timeout(Some(common::SAFETY)).unwrap();
    let mut reply = [0u8; 9];
    b.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"second123");
    // The server took B from the queue only after A had gone. (Its line about B's message
    // was printed before the echo was sent; the test reads the log a moment later: wait.)
    server.wait_for_log(&format!("{b_addr} says: \"second\""));
    let log = server.stdout();
    assert!(
        position(&log, &format!("{a_addr} closed the connection"))
            < position(&log, &format!("{b_addr} connected")),
        "{log}"
    );
}

#[test]
fn lesson09_answers_a_second_client_while_the_first_stays() {
    let server = Server::start(SERVER, &[]);
    let (a, mut b, a_addr, b_addr) = second_client_while_the_first_stays(&server);
    let mut reply = [0u8; 9];
    b.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"second123");

    drop(a);
    server.wait_for_log(&format!("{a_addr} closed the connection"));
    let log = server.stdout();
    assert!(
        position(&log, &format!("{b_addr} says: \"second\""))
            < position(&log, &format!("{a_addr} closed the connection")),
        "{log}"
    );
}

/// Each client is answered once, so it is surely accepted (connecting them all first would
/// overflow `listen(5)`'s queue and wait for the kernel's retries: see the README), and stays
/// connected. Then every one of the 200 is answered again while all 200 are connected: a
/// server that serves one at a time would answer none of the second round but the first's.
#[test]
fn lesson09_answers_200_clients_connected_at_once() {
    let server = Server::start(SERVER, &[]);
    let mut clients: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut sock = connect(server.addr);
            assert_eq!(
                echo(&mut sock, format!("hello {i}")),
                format!("hello {i}123").as_bytes()
            );
            sock
        })
        .collect();
    for (i, sock) in clients.iter_mut().enumerate() {
        assert_eq!(
            echo(sock, format!("again {i}")),
            format!("again {i}123").as_bytes()
        );
    }
    // A thread per client, and the main thread in accept().
    #[cfg(target_os = "linux")]
    assert_eq!(threads(server.pid()), 201);
}

/// The number of threads of a process, from `/proc/PID/status`.
#[cfg(target_os = "linux")]
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

/// When a client leaves, its thread ends: no thread is left behind per client served.
#[cfg(target_os = "linux")]
#[test]
fn a_client_that_leaves_ends_its_thread() {
    let server = Server::start(SERVER, &[]);
    for i in 0..3 {
        let mut sock = connect(server.addr);
        let me = sock.local_addr().unwrap();
        assert_eq!(
            echo(&mut sock, format!("hi {i}")),
            format!("hi {i}123").as_bytes()
        );
        drop(sock);
        server.wait_for_log(&format!("{me} closed the connection"));
    }
    wait_for_threads(server.pid(), 1);
}

/// Waits until the process has `n` threads. A thread prints its last line just before it
/// returns: its end follows, a moment later.
#[cfg(target_os = "linux")]
fn wait_for_threads(pid: u32, n: usize) {
    let deadline = std::time::Instant::now() + common::SAFETY;
    while threads(pid) != n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} threads, not {n}",
            threads(pid)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_many_clients_client_reports_200_of_200_served() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run(
        CLIENT,
        &["--addr", &addr, "--clients", "200", "--rounds", "3"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "served 200/200 clients", "{stdout}");
    for (line, start) in lines[1..].iter().zip([
        "slowest connect: ",
        "slowest wait for a first answer: ",
        "round trips: 600 in ",
        "elapsed: ",
    ]) {
        assert!(line.starts_with(start), "{stdout}");
    }
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(out.stderr.is_empty(), "{out:?}");
    server.wait_for_count(" closed the connection", 200);
    // Every message distinct: client 200's third round reached the server as it was sent.
    server.wait_for_log(" says: \"client 200 round 3\"\n");
}

/// Against lesson 02, one at a time, every client is served too: the queue is a wait, not a
/// failure.
#[test]
fn the_many_clients_client_is_served_by_lesson02_one_after_another() {
    let server = Server::start(LESSON02, &[]);
    let addr = server.addr.to_string();
    let out = run(
        CLIENT,
        &["--addr", &addr, "--clients", "20", "--rounds", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("served 20/20 clients\n"));
}

/// A server that answers every client with client 1's echo: client 1 is served, the others
/// see an echo that is not theirs. Counted on one line, with the first example.
#[test]
fn a_mixed_up_echo_is_caught_and_counted_on_one_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = thread::spawn(move || {
        for sock in listener.incoming().take(3) {
            let mut sock = sock.unwrap();
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).unwrap();
            sock.write_all(b"client 1 round 1123").unwrap();
        }
    });
    let out = run(
        CLIENT,
        &["--addr", &addr, "--clients", "3", "--rounds", "1"],
    );
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("served 1/3 clients\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let example = r#"sent "client 2 round 1", got "client 1 round 1123""#;
    let other = example.replace("client 2", "client 3");
    assert!(
        err == format!(
            "lesson09-client: 2 of 3 clients not served: 2 wrong echo (first: {example})\n"
        ) || err
            == format!(
                "lesson09-client: 2 of 3 clients not served: 2 wrong echo (first: {other})\n"
            ),
        "{err}"
    );
}

#[test]
fn no_server_means_no_client_served_and_status_1() {
    // A port where nobody listens: bound for a moment, then released.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = run(CLIENT, &["--addr", &addr, "--clients", "4"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("served 0/4 clients\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("lesson09-client: 4 of 4 clients not served: 4 connect: "),
        "{err}"
    );
}

/// `--hold` keeps each connection open, silent, and notices a server that closes it meanwhile:
/// here lesson 09's own idle timeout.
#[test]
fn a_held_connection_dropped_by_the_server_is_not_served() {
    let server = Server::start(SERVER, &["--idle-timeout", "0.5"]);
    let addr = server.addr.to_string();
    let args = [
        "--addr",
        &addr,
        "--clients",
        "2",
        "--rounds",
        "1",
        "--hold",
        "15",
    ];
    let out = run(CLIENT, &args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson09-client: 2 of 2 clients not served: 2 closed by the server while held\n"
    );
    server.wait_for_count("dropped: silent for longer than --idle-timeout", 2);
}

#[test]
fn bad_client_arguments_exit_2_on_one_line() {
    for args in [
        &["--clients", "0"][..],
        &["--clients", "65536"],
        &["--rounds", "-1"],
        &["--hold", "0"],
        &["--timeout", "soon"],
    ] {
        let out = run(CLIENT, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

/// The notes' 2.1 client, unchanged but for the address, twice at once: the second is
/// answered while the first is still connected. (Unix: the test runs `python3`; `-u`, so its
/// prints reach the pipe at once.)
#[cfg(unix)]
#[test]
fn the_notes_python_client_works_twice_at_once() {
    use std::process::{Command, Stdio};
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: no python3 here");
        return;
    }
    let server = Server::start(SERVER, &[]);
    let code = common::NOTES_ECHO_CLIENT.replace("PORT", &server.addr.port().to_string());
    let start = |line: &str| {
        let mut child = Command::new("python3")
            .args(["-u", "-c", &code])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        child
    };
    let answer = |child: &mut std::process::Child, expected: &str| {
        let mut got = vec![0u8; expected.len()];
        child.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), expected);
    };
    let mut first = start("hello");
    answer(&mut first, "输入想说的话>>>:hello123\n");
    let mut second = start("你好");
    answer(&mut second, "输入想说的话>>>:你好123\n");
    // The first is still there, and still answered.
    first.stdin.as_mut().unwrap().write_all(b"again\n").unwrap();
    answer(&mut first, "输入想说的话>>>:again123\n");
    for mut child in [first, second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `--processes`: each client has a child process of its own. Killing one child ends that
/// client's connection only: the other client is still answered, and the server accepts more.
#[cfg(unix)]
#[test]
fn processes_a_killed_child_ends_only_its_own_client() {
    let server = Server::start(SERVER, &["--processes"]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(echo(&mut a, "a1"), b"a1123");
    assert_eq!(echo(&mut b, "b1"), b"b1123");
    let child_of = |sock: &TcpStream| -> u32 {
        let me = sock.local_addr().unwrap();
        let needle = format!("{me} served by child process ");
        server.wait_for_log(&needle);
        let log = server.stdout();
        let rest = &log[position(&log, &needle) + needle.len()..];
        rest.lines().next().unwrap().parse().unwrap()
    };
    let (pid_a, pid_b) = (child_of(&a), child_of(&b));
    assert!(pid_a != pid_b && pid_a != server.pid(), "{pid_a} {pid_b}");

    common::kill("-KILL", pid_a);
    let a_addr = a.local_addr().unwrap();
    server.wait_for_log(&format!(
        "{a_addr} child process {pid_a} ended: signal: 9 (SIGKILL)\n"
    ));
    // The kernel closed the dead child's socket: A reads the end of the stream.
    assert!(common::read_to_end(&mut a).is_empty());

    assert_eq!(echo(&mut b, "b2"), b"b2123");
    let mut c = connect(server.addr);
    assert_eq!(echo(&mut c, "c1"), b"c1123");
    drop(b);
    let b_pid = format!("child process {pid_b} ended: exit status: 0\n");
    server.wait_for_log(&b_pid);
}

/// The child's own lines (what the client says, how it left) are lesson 02's, in the server's
/// log (the child's stderr is the server's stdout; its stdout is the client), in order.
#[cfg(unix)]
#[test]
fn processes_a_child_logs_like_a_thread() {
    let server = Server::start(SERVER, &["--processes"]);
    let mut a = connect(server.addr);
    let me = a.local_addr().unwrap();
    assert_eq!(echo(&mut a, "你好"), "你好123".as_bytes());
    a.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(common::read_to_end(&mut a).is_empty());
    server.wait_for_log(" ended: exit status: 0\n");
    let log = server.stdout();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    assert_eq!(lines[0], format!("{me} connected"));
    assert!(lines[1].starts_with(&format!("{me} served by child process ")));
    assert_eq!(lines[2], format!("{me} says: \"你好\""));
    assert_eq!(lines[3], format!("{me} closed the connection"));
    assert!(lines[4].starts_with(&format!("{me} child process ")));
}

/// `--max-children` (Python's `max_children`, 40 by default): at the limit the server stops
/// accepting, as `ForkingTCPServer` does, until a child ends. The third client's connect
/// completes in the kernel (the accept queue), yet nobody reads its message until a child has
/// ended. (The bounded wait, 200 ms, only asserts that nothing arrives; the order is asserted
/// on the log.)
#[cfg(unix)]
#[test]
fn processes_at_max_children_the_next_client_waits_for_a_child_to_end() {
    let server = Server::start(SERVER, &["--processes", "--max-children", "2"]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(echo(&mut a, "a1"), b"a1123");
    assert_eq!(echo(&mut b, "b1"), b"b1123");
    server.wait_for_log(
        "2 child processes (--max-children 2): accepting no more clients until one ends\n",
    );
    let mut c = connect(server.addr);
    c.write_all(b"c1").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let err = c.read(&mut [0u8; 16]).unwrap_err();
    assert!(socket_lessons::is_timeout(&err), "{err}");

    let a_addr = a.local_addr().unwrap();
    drop(a);
    c.set_read_timeout(Some(common::SAFETY)).unwrap();
    let mut reply = [0u8; 5];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"c1123");
    let c_addr = c.local_addr().unwrap();
    server.wait_for_log(&format!("{c_addr} says: \"c1\""));
    let log = server.stdout();
    assert!(
        position(&log, &format!("{a_addr} child process "))
            < position(&log, &format!("{c_addr} connected")),
        "{log}"
    );
}

/// The processes of this server and their states (`Z`: a zombie, ended but not waited for),
/// from `/proc/*/stat`.
#[cfg(target_os = "linux")]
fn children_of(pid: u32) -> Vec<(u32, char)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap() {
        let name = entry.unwrap().file_name();
        let Some(child) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Gone meanwhile: not ours to count.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // After the command name in parentheses: the state, then the parent's pid.
        let mut fields = stat[stat.rfind(')').unwrap() + 2..].split(' ');
        let state = fields.next().unwrap().chars().next().unwrap();
        if fields.next().unwrap().parse::<u32>().unwrap() == pid {
            children.push((child, state));
        }
    }
    children
}

/// `--processes`: each child is waited for by a thread that starts it, so a thread that cannot
/// be started means no child, never a child nobody waits for (a zombie when it ends). Made to
/// happen as for the threads (1 GiB stacks, 1.5 GiB of address space): the second client is
/// dropped with a line, and once the first has left the server has no child at all.
#[cfg(target_os = "linux")]
#[test]
fn processes_a_thread_that_cannot_be_started_leaves_no_child_behind() {
    let script = r#"ulimit -v 1500000 && RUST_MIN_STACK=1073741824 exec "$0" "$@""#;
    let server = Server::start(
        "sh",
        &["-c", script, SERVER, "--addr", "127.0.0.1:0", "--processes"],
    );
    let mut first = connect(server.addr);
    assert_eq!(echo(&mut first, "one"), b"one123");
    let mut second = connect(server.addr);
    let me = second.local_addr().unwrap();
    server.wait_for_log(&format!("{me} dropped: cannot start a thread: "));
    assert!(common::read_to_end(&mut second).is_empty());
    assert_eq!(children_of(server.pid()).len(), 1);

    let first_addr = first.local_addr().unwrap();
    drop(first);
    server.wait_for_log(&format!("{first_addr} child process "));
    let deadline = std::time::Instant::now() + common::SAFETY;
    while !children_of(server.pid()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            children_of(server.pid())
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A rebuild replaces the program's file while the server runs (`cargo build` in another
/// terminal); the children are still started from the program that runs, not from a path
/// that is gone: here the server runs from a hard link that is then deleted.
#[cfg(target_os = "linux")]
#[test]
fn processes_children_start_after_the_program_file_is_replaced() {
    let dir = common::Scratch::new("lesson09-rebuilt");
    let link = dir.join("lesson09-server");
    std::fs::hard_link(SERVER, &link).unwrap();
    let server = Server::start(&link.to_string_lossy(), &["--processes"]);
    std::fs::remove_file(&link).unwrap();
    let mut a = connect(server.addr);
    assert_eq!(echo(&mut a, "after"), b"after123");
    let me = a.local_addr().unwrap();
    server.wait_for_log(&format!("{me} served by child process "));
}

#[test]
fn bad_server_arguments_exit_2_on_one_line() {
    for args in [
        &["--processes", "--max-children", "0"][..],
        &["--processes", "--max-children", "many"],
        &["--max-children", "4"],
    ] {
        let out = run(SERVER, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let out = run(SERVER, &["--max-children", "4"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson09-server: the following required arguments were not provided: --processes \
         (try --help)\n"
    );
}

/// `--timeout` bounds each echo as a whole, from sending a message to its last byte: an echo
/// trickled a byte every 100 ms (each read waits 0.1 s, never 0.5) takes 1.9 s, and the client
/// that waited for it is not served.
#[test]
fn an_echo_trickled_past_timeout_is_not_served() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(common::SAFETY)).unwrap();
        let mut buf = [0u8; 64];
        let n = sock.read(&mut buf).unwrap();
        for &b in buf[..n].iter().chain(b"123") {
            if sock.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let out = run(
        CLIENT,
        &[
            "--addr",
            &addr,
            "--clients",
            "1",
            "--rounds",
            "1",
            "--timeout",
            "0.5",
        ],
    );
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson09-client: 1 of 1 clients not served: \
         1 waiting for the echo took longer than --timeout (0.5 s)\n"
    );
}

#[cfg(windows)]
#[test]
fn processes_on_windows_exits_2_with_one_line() {
    let out = run(SERVER, &["--processes"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--processes needs Unix"), "{err}");
}

/// Out of file descriptors, the accept loop pauses instead of spinning (as lesson 02's).
#[cfg(target_os = "linux")]
#[test]
fn accept_errors_pause() {
    common::assert_accept_errors_pause(SERVER, &[]);
}

/// A thread that cannot be started drops that one client, with a line, and the server goes
/// on. Made to happen: each thread asks for a 1 GiB stack (`RUST_MIN_STACK`) and the server
/// may map 1.5 GiB in all (`ulimit -v`), so one client thread fits and a second does not.
#[cfg(target_os = "linux")]
#[test]
fn a_thread_that_cannot_be_started_drops_only_that_client() {
    let script = r#"ulimit -v 1500000 && RUST_MIN_STACK=1073741824 exec "$0" "$@""#;
    let server = Server::start("sh", &["-c", script, SERVER, "--addr", "127.0.0.1:0"]);
    let mut first = connect(server.addr);
    assert_eq!(echo(&mut first, "one"), b"one123");
    let mut second = connect(server.addr);
    let me = second.local_addr().unwrap();
    server.wait_for_log(&format!("{me} dropped: cannot start a thread: "));
    assert!(common::read_to_end(&mut second).is_empty());
    // The first is still served; once it leaves, its stack is free for the next client.
    assert_eq!(echo(&mut first, "still"), b"still123");
    let first_addr = first.local_addr().unwrap();
    drop(first);
    server.wait_for_log(&format!("{first_addr} closed the connection"));
    wait_for_threads(server.pid(), 1);
    let mut third = connect(server.addr);
    assert_eq!(echo(&mut third, "three"), b"three123");
}

/// The README shows the change from lesson 02's server as a diff. Every line it removes is a
/// line of lesson 02's server and no longer one of lesson 09's, every line it adds the other
/// way round, every context line is in both (`…` stands for lines left out). Indentation is
/// not compared: the loop moved into a function. Lines of a bracket or two are not checked.
#[test]
fn the_readme_diff_from_lesson02_is_the_real_one() {
    let read = |path: &str| {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .replace("\r\n", "\n")
    };
    let lines = |path: &str| -> std::collections::HashSet<String> {
        read(path).lines().map(|l| l.trim().to_string()).collect()
    };
    let (old, new) = (
        lines("lessons/02_loop/server.rs"),
        lines("lessons/09_threads/server.rs"),
    );
    let readme = read("lessons/09_threads/README.md");
    let diff = readme
        .split("```diff\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```diff block");
    for line in diff.lines() {
        let (mark, text) = line.split_at(line.len().min(1));
        let text = text.trim();
        if text.len() <= 3 || text == "…" {
            continue;
        }
        let (in_old, in_new) = (old.contains(text), new.contains(text));
        let ok = match mark {
            "-" => in_old && !in_new,
            "+" => in_new && !in_old,
            _ => in_old && in_new,
        };
        assert!(
            ok,
            "README diff line {line:?}: in lesson 02 {in_old}, in lesson 09 {in_new}"
        );
    }
}
