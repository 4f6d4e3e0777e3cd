//! Lesson 06: UDP, the 数据报协议. Each test starts the real `lesson06-server` on port 0 and
//! talks to it with a plain `std::net::UdpSocket` (or the real client), asserting exact bytes.
//!
//! Nothing here depends on timing: a `recv_from` hands over one datagram however many are
//! queued, so "three sends, three datagrams" holds whether the server reads at once or late.
//! Read timeouts are safety nets, except where the client's own `--timeout` is the behaviour
//! under test (no reply will ever come, so any timeout gives the same result).

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::{run, run_client, Server, SAFETY};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson06-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_lesson06-client");

/// The largest payload one UDP datagram can carry over IPv4: 65535 minus the IP and UDP headers.
const MAX_UDP_IPV4: usize = 65507;

/// A UDP socket on a free loopback port, with a safety-net read timeout and a send buffer big
/// enough for the largest datagram (macOS limits UDP sends to 9216 bytes by default).
fn udp() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(SAFETY)).unwrap();
    socket2::SockRef::from(&sock)
        .set_send_buffer_size(1 << 20)
        .unwrap();
    sock
}

/// Receives one datagram (up to the largest possible) and checks it came from `from`.
fn recv(sock: &UdpSocket, from: SocketAddr) -> Vec<u8> {
    let mut buf = vec![0u8; 65536];
    let (n, peer) = common::recv_retrying(sock, &mut buf);
    assert_eq!(peer, from, "reply from an unexpected address");
    buf.truncate(n);
    buf
}

/// Sends `msg` and returns the one reply.
fn ask(sock: &UdpSocket, server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    sock.send_to(msg, server).unwrap();
    recv(sock, server)
}

/// A loopback port where nobody listens: bind one, note it, close it.
#[cfg(any(target_os = "linux", windows))]
fn dead_port() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.local_addr().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn echo_round_trip_keeps_chinese_text() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run_client(CLIENT, &["--addr", &addr], "hello\n你好，世界\n".as_bytes());
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello123\n你好，世界123\n");
    server.wait_for_log("says: \"你好，世界\"\n");

    // And with a bare socket: the bytes come back exactly, plus "123".
    let sock = udp();
    let reply = ask(&sock, server.addr, "数据报".as_bytes());
    assert_eq!(reply, "数据报123".as_bytes());
}

#[test]
fn server_names_each_sender_and_serves_two_clients_from_one_loop() {
    let server = Server::start(SERVER, &[]);
    let (a, b) = (udp(), udp());
    // Interleaved: no accept, no connection, one loop answers whoever sent.
    assert_eq!(ask(&a, server.addr, b"from a"), b"from a123");
    assert_eq!(ask(&b, server.addr, b"from b"), b"from b123");
    assert_eq!(ask(&a, server.addr, b"a again"), b"a again123");
    server.wait_for_log(&format!("{} says: \"a again\"\n", a.local_addr().unwrap()));
    server.wait_for_log(&format!("{} says: \"from b\"\n", b.local_addr().unwrap()));
}

/// Lesson 03's three writes read as one `123456789`; here three sends stay three datagrams.
/// On Linux the server is stopped (SIGSTOP) while all three are sent, so it reads them only
/// after they all wait in its queue, exactly as lesson 03's reader reads after all writes.
#[test]
fn three_sends_arrive_as_three_datagrams() {
    let mut server = Server::start(SERVER, &["--trace"]);
    let sock = udp();
    #[cfg(target_os = "linux")]
    common::kill("-STOP", server.pid());
    for msg in [b"123", b"456", b"789"] {
        sock.send_to(msg, server.addr).unwrap();
    }
    #[cfg(target_os = "linux")]
    common::kill("-CONT", server.pid());

    // UDP does not promise order either; on loopback they come in order, but the point here
    // is the boundaries, so compare them sorted.
    let mut replies: Vec<Vec<u8>> = (0..3).map(|_| recv(&sock, server.addr)).collect();
    replies.sort();
    assert_eq!(replies, [b"123123", b"456123", b"789123"]);
    let me = sock.local_addr().unwrap();
    for msg in ["123", "456", "789"] {
        server.wait_for_log(&format!("{me} says: \"{msg}\"\n"));
    }
    // Three calls, three datagrams: the trace (on stderr, read by another thread than stdout
    // above) shows each. Waiting for all three lines, never for one and counting.
    server.wait_for_count(&format!("recv_from 3 bytes from {me}: "), 3);
    assert!(server.is_running());
}

/// Anyone can send the server a datagram, and its log is the learner's terminal: what a peer
/// sent is shown quoted and escaped, on one line. Raw, `\x1b[2J` would clear the screen and
/// a newline would start a log line of the peer's making.
#[test]
fn peer_text_is_escaped_in_the_log() {
    let server = Server::start(SERVER, &[]);
    let sock = udp();
    let me = sock.local_addr().unwrap();
    assert_eq!(ask(&sock, server.addr, b"\x1b[2J"), b"\x1b[2J123");
    assert_eq!(
        ask(&sock, server.addr, b"\nfake log line"),
        b"\nfake log line123"
    );
    server.wait_for_log(&format!("{me} says: \"\\x1b[2J\"\n"));
    server.wait_for_log(&format!("{me} says: \"\\nfake log line\"\n"));
    let log = server.stdout();
    assert!(!log.contains('\x1b'), "{log:?}");
    assert!(!log.lines().any(|l| l.starts_with("fake")), "{log:?}");
}

#[test]
fn client_demo_three_sends_gets_three_replies() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run(CLIENT, &["--addr", &addr, "--demo", "three-sends"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for reply in ["123123", "456123", "789123"] {
        assert!(
            stdout.contains(&format!("reply (6 bytes): \"{reply}\"")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("the boundaries were kept"), "{stdout}");
}

/// With a buffer of 8 bytes, a 16-byte datagram is cut to 8 and its other 8 bytes are gone:
/// the next receive gets the next datagram. In TCP (lesson 03) they would be the next read.
#[test]
fn oversized_datagram_is_cut_and_next_receive_gets_next_datagram() {
    let server = Server::start(SERVER, &["--buf", "8"]);
    let sock = udp();
    sock.send_to(b"0123456789ABCDEF", server.addr).unwrap();
    sock.send_to(b"next", server.addr).unwrap();

    // Linux and macOS cut silently and the server answers what it kept. Windows reports the
    // cut as an error (WSAEMSGSIZE) without the sender's address: no reply to that one.
    #[cfg(unix)]
    {
        assert_eq!(recv(&sock, server.addr), b"01234567123");
        server.wait_for_log("says: \"01234567\" (filled the 8-byte buffer");
    }
    #[cfg(windows)]
    server.wait_for_log("was cut");
    // Not "89ABCDEF": the rest of the first datagram is nowhere.
    assert_eq!(recv(&sock, server.addr), b"next123");
    server.wait_for_log("says: \"next\"\n");
}

#[cfg(unix)]
#[test]
fn client_demo_oversize_shows_the_cut() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run(CLIENT, &["--addr", &addr, "--demo", "oversize"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("reply (1027 bytes): \"0123456789"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the server kept 1024 of 2000 bytes; the other 976 are gone"),
        "{stdout}"
    );
    assert!(stdout.contains("reply (7 bytes): \"next123\""), "{stdout}");
}

/// In TCP, `Ok(0)` is end of stream (lesson 02 leaves the loop). In UDP it is a datagram.
#[test]
fn server_answers_an_empty_datagram_and_keeps_serving() {
    let server = Server::start(SERVER, &["--trace"]);
    let sock = udp();
    assert_eq!(ask(&sock, server.addr, b""), b"123");
    server.wait_for_log("says nothing: an empty datagram");
    server.wait_for_log("recv_from 0 bytes from");
    assert_eq!(ask(&sock, server.addr, b"ping"), b"ping123");
}

#[test]
fn server_survives_the_largest_datagram() {
    let big: Vec<u8> = (0..MAX_UDP_IPV4).map(|i| b'a' + (i % 26) as u8).collect();
    let sock = udp();

    // Default buffer (1024, the notes' recvfrom(1024)): cut to 1024, answered with those + 123.
    let server = Server::start(SERVER, &[]);
    #[cfg(unix)]
    {
        let reply = ask(&sock, server.addr, &big);
        assert_eq!(reply.len(), 1024 + 3);
        common::assert_bytes_eq(&reply[..1024], &big[..1024], "the reply's first 1024 bytes");
        assert_eq!(&reply[1024..], b"123");
    }
    // Windows reports the cut as an error (WSAEMSGSIZE) without the sender's address, so the
    // server logs it and sends no reply (as in the test above); "ping123" comes first.
    #[cfg(windows)]
    {
        sock.send_to(&big, server.addr).unwrap();
        server.wait_for_log("a datagram longer than 1024 bytes was cut");
    }
    assert_eq!(ask(&sock, server.addr, b"ping"), b"ping123");

    // A buffer that holds it whole: the echo (65510 bytes) is too long for one datagram. The
    // server says so and serves the next one; "ping123" is the first reply we get, so no reply
    // to the big one was sent.
    let server = Server::start(SERVER, &["--buf", "65536"]);
    sock.send_to(&big, server.addr).unwrap();
    server.wait_for_log(&format!(
        "cannot reply to {} (65510 bytes)",
        sock.local_addr().unwrap()
    ));
    assert_eq!(ask(&sock, server.addr, b"ping"), b"ping123");
}

/// One byte over the limit and the sender's own send_to fails: a datagram has a maximum size,
/// a stream does not.
#[cfg(target_os = "linux")]
#[test]
fn a_datagram_over_65507_bytes_cannot_be_sent() {
    let sock = udp();
    let err = sock
        .send_to(&vec![0u8; MAX_UDP_IPV4 + 1], dead_port())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(90), "{err}"); // EMSGSIZE
}

#[test]
fn server_survives_a_client_that_left_before_the_reply() {
    let server = Server::start(SERVER, &[]);
    {
        let gone = udp();
        gone.send_to(b"bye", server.addr).unwrap();
    } // closed: the reply goes to a port where nobody listens
    server.wait_for_log("says: \"bye\"\n");
    let sock = udp();
    assert_eq!(ask(&sock, server.addr, b"still there?"), b"still there?123");
}

/// The server is gone; the client still sends (UDP has no handshake to fail), waits its
/// `--timeout` for each line, goes on with the next, and exits non-zero at the end.
#[test]
fn client_whose_server_is_gone_reports_timeout_and_fails() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    drop(server);

    let out = run_client(
        CLIENT,
        &["--addr", &addr, "--timeout", "0.3", "--trace"],
        b"hello\nworld\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    // send_to succeeded for both lines: nothing stops a datagram from leaving.
    assert!(
        stderr.contains(&format!("send_to 5 bytes to {addr}: \"hello\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("send_to 5 bytes to {addr}: \"world\"")),
        "{stderr}"
    );
    // Linux and macOS say nothing to an unconnected socket; Windows reports the ICMP
    // "port unreachable" even there (WSAECONNRESET).
    #[cfg(not(windows))]
    assert_eq!(
        stderr
            .matches("no reply within 0.3 s: UDP promises nothing")
            .count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("2 of 2 datagrams got no reply"), "{stderr}");
}

/// A connected UDP socket hears the ICMP "port unreachable" that loopback sends back at once:
/// the client says nobody is listening, without waiting for its (long) timeout.
#[cfg(target_os = "linux")]
#[test]
fn connected_client_hears_nobody_is_listening() {
    let addr = dead_port().to_string();
    let out = run_client(
        CLIENT,
        &["--addr", &addr, "--connect", "--timeout", "15"],
        b"hello\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("nobody is listening at {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("no reply within"), "{stderr}");
}

/// `--timeout` is a deadline for the reply, not a wait per datagram: a third socket that keeps
/// sending the client junk (ignored: not from the server) does not make it wait longer. The
/// junk goes on for 10 s, every 0.2 s; a wait restarted by each datagram would end only after
/// it stops (12 s), the deadline ends it 2 s after the send. The test's "server" reads the
/// client's datagram, which tells it the client's port, and never answers.
#[test]
fn junk_from_a_third_socket_does_not_extend_the_wait() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let silent = udp();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let client_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&client_done);
    let junk = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (_, client) = common::recv_retrying(&silent, &mut buf);
        let sender = udp();
        let stop = Instant::now() + Duration::from_secs(10);
        while Instant::now() < stop && !done.load(Ordering::SeqCst) {
            // Errors do not matter: the client may be gone already (Windows then reports
            // the "port unreachable" that came back).
            let _ = sender.send_to(b"junk", client);
            std::thread::sleep(Duration::from_millis(200));
        }
        // Whether the client had given up while the junk was still coming.
        done.load(Ordering::SeqCst)
    });
    let out = run_client(
        CLIENT,
        &["--addr", &silent_addr, "--timeout", "2"],
        b"hello\n",
    );
    client_done.store(true, Ordering::SeqCst);
    let gave_up_during_the_junk = junk.join().unwrap();

    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ignored 4 bytes from 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "no reply within 2 s: UDP promises nothing\n1 of 1 datagrams got no reply\n"
        ),
        "{stderr}"
    );
    assert!(
        gave_up_during_the_junk,
        "the client waited until the junk stopped: {stderr}"
    );
}

/// An accepted `--timeout` always works: at most one day (`1e19` was accepted, then overflowed
/// the deadline and panicked); more exits 2 with one line.
#[test]
fn timeout_is_at_most_a_day_and_a_day_works() {
    let out = run(CLIENT, &["--timeout", "1e19"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "lesson06-client: invalid value '1e19' for '--timeout <SECONDS>': expected seconds \
         from 0.001 to 86400 (one day), like 2 or 0.5 (try --help)\n"
    );
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run_client(CLIENT, &["--addr", &addr, "--timeout", "86400"], b"hi\n");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi123\n");
}

#[test]
fn client_ends_cleanly_at_end_of_input_and_skips_empty_lines() {
    let server = Server::start(SERVER, &[]);
    let addr = server.addr.to_string();
    let out = run_client(CLIENT, &["--addr", &addr], b"\n\na\n\n");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a123\n");
    let out = run_client(CLIENT, &["--addr", &addr], b"");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for (bin, args) in [
        (CLIENT, &["--timeout", "0"][..]),
        (CLIENT, &["--timeout", "soon"][..]),
        (CLIENT, &["--demo", "nope"][..]),
        (SERVER, &["--buf", "0"][..]),
        (SERVER, &["--buf", "70000"][..]),
        (SERVER, &["--addr", "nowhere"][..]),
    ] {
        let out = run(bin, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr).lines().count(), 1, "{args:?}");
    }
    for bin in [CLIENT, SERVER] {
        let out = run(bin, &["--help"]);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("--addr"));
    }
}

/// The trace shows each datagram call with its sender, in the format of `--trace` elsewhere.
#[test]
fn trace_shows_each_datagram_with_its_peer() {
    let server = Server::start(SERVER, &["--trace"]);
    let addr = server.addr.to_string();
    let out = run_client(CLIENT, &["--addr", &addr, "--trace"], b"hello\n");
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("send_to 5 bytes to {addr}: \"hello\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("recv_from 8 bytes from {addr}: \"hello123\"")),
        "{stderr}"
    );
    server.wait_for_log("recv_from 5 bytes from 127.0.0.1:");
    server.wait_for_log("send_to 8 bytes to 127.0.0.1:");
}

// =============================================================================================
// Windows versions of the Linux- and Unix-only tests above. CI runs them under Wine; a check
// where Wine behaves like Linux, not like Windows, is skipped under Wine only, and says why.
// =============================================================================================
#[cfg(windows)]
mod windows {
    use super::*;

    /// One byte over the limit and send_to fails, with WSAEMSGSIZE on Windows.
    #[test]
    fn a_datagram_over_65507_bytes_cannot_be_sent() {
        let sock = udp();
        let err = sock
            .send_to(&vec![0u8; MAX_UDP_IPV4 + 1], dead_port())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(10040), "{err}"); // WSAEMSGSIZE
    }

    /// A connected client hears "port unreachable" (Windows: WSAECONNRESET on the next receive)
    /// and says nobody is listening, without waiting for its (long) timeout.
    #[test]
    fn connected_client_hears_nobody_is_listening() {
        if common::skip_under_wine(
            "Wine 8.0 passes no ICMP port unreachable to a UDP socket, connected or not",
        ) {
            return;
        }
        let addr = dead_port().to_string();
        let out = run_client(
            CLIENT,
            &["--addr", &addr, "--connect", "--timeout", "15"],
            b"hello\n",
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("nobody is listening at {addr}")),
            "{stderr}"
        );
        assert!(!stderr.contains("no reply within"), "{stderr}");
    }

    /// Windows, unlike Linux and macOS, reports "port unreachable" to an unconnected socket
    /// too: the client whose server is gone says nobody is listening for each line instead
    /// of waiting its timeout.
    #[test]
    fn unconnected_client_hears_nobody_is_listening() {
        if common::skip_under_wine(
            "Wine's sockets are Linux's: an unconnected UDP socket never hears port unreachable",
        ) {
            return;
        }
        let addr = dead_port().to_string();
        let out = run_client(
            CLIENT,
            &["--addr", &addr, "--timeout", "5"],
            b"hello\nworld\n",
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert_eq!(
            stderr
                .matches(&format!("nobody is listening at {addr}"))
                .count(),
            2,
            "{stderr}"
        );
        assert!(!stderr.contains("no reply within"), "{stderr}");
    }

    /// The oversize demo on Windows: the server reports the cut as an error and cannot reply
    /// to the cut datagram, so the only reply is "next123"; the client says one got none.
    #[test]
    fn client_demo_oversize_shows_the_cut() {
        let server = Server::start(SERVER, &[]);
        let addr = server.addr.to_string();
        let out = run(
            CLIENT,
            &["--addr", &addr, "--demo", "oversize", "--timeout", "0.5"],
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains("reply (7 bytes): \"next123\""), "{stdout}");
        assert!(!stdout.contains("the server kept"), "{stdout}");
        server.wait_for_log("a datagram longer than 1024 bytes was cut");
    }
}
