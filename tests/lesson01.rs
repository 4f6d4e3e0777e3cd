//! Lesson 01 (notes 1.1/1.2): one connect, one message, one reply, close. Each binary is tested
//! against a plain `std::net` peer written here, which stands in for the notes' Python code.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use common::{connect, read_to_end, run, Server};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson01-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_lesson01-client");

#[test]
fn server_answers_one_client_then_exits() {
    let mut server = Server::start(SERVER, &[]);
    let mut sock = connect(server.addr);
    sock.write_all(b"I am from client!").unwrap();
    // The server replies and closes: everything up to end of stream is the reply.
    assert_eq!(read_to_end(&mut sock), b"I AM FROM SERVER!");
    assert!(server.wait_exit().success());
    server.wait_for_log("I am from client!");
}

/// A peer's `\x1b[2J` would clear the server's terminal: the server prints it escaped, and
/// the rest of the message as sent.
#[test]
fn server_prints_a_peers_terminal_commands_escaped() {
    let mut server = Server::start(SERVER, &[]);
    let mut sock = connect(server.addr);
    sock.write_all("\x1b[2J你好\x07".as_bytes()).unwrap();
    assert_eq!(read_to_end(&mut sock), b"I AM FROM SERVER!");
    assert!(server.wait_exit().success());
    server.wait_for_log("\n\\x1b[2J你好\\x07\n");
}

#[test]
fn server_survives_a_client_that_says_nothing() {
    let mut server = Server::start(SERVER, &[]);
    drop(connect(server.addr));
    assert!(server.wait_exit().success());
    server.wait_for_log("hung up without a word");
}

/// A client that connects and says nothing would keep the server in its one `recv` forever.
/// After --idle-timeout the server says so and exits. (Half a second: the test waits for the
/// server's line and its exit, not for a clock.)
#[test]
fn server_gives_up_on_a_silent_client_after_the_idle_timeout() {
    let mut server = Server::start(SERVER, &["--idle-timeout", "0.5"]);
    let mut sock = connect(server.addr);
    let me = sock.local_addr().unwrap();
    server.wait_for_log(&format!(
        "{me} dropped: silent for longer than --idle-timeout\n"
    ));
    assert!(server.wait_exit().success());
    // No reply: the server closed the connection without a word.
    assert!(read_to_end(&mut sock).is_empty());
}

#[test]
fn client_sends_its_line_and_prints_the_reply() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        // The notes' server reads once; the test reads exactly the 17 bytes it expects.
        let mut got = [0u8; 17];
        sock.read_exact(&mut got).unwrap();
        sock.write_all(b"I AM FROM SERVER!").unwrap();
        got
    });
    let out = run(CLIENT, &["--addr", &addr]);
    assert_eq!(&peer.join().unwrap(), b"I am from client!");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"I AM FROM SERVER!\n");
}

#[test]
fn client_without_server_fails_with_a_reason() {
    // Bind and drop to get a port where, a moment later, nobody listens.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = run(CLIENT, &["--addr", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn help_works_and_bad_arguments_exit_2_on_one_line() {
    for bin in [SERVER, CLIENT] {
        let help = run(bin, &["--help"]);
        assert!(help.status.success());
        assert!(String::from_utf8_lossy(&help.stdout).contains("--addr"));

        for bad in [&["--addr", "nowhere"][..], &["--frobnicate"]] {
            let out = run(bin, bad);
            assert_eq!(out.status.code(), Some(2), "{bin} {bad:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    // 0 s would be no bound at all (and an error for the socket call): refused, as in lesson 03.
    let out = run(SERVER, &["--idle-timeout", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
