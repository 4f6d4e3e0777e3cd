//! Exercise 8, lesson 06 (数据报协议, UDP): a reply may never come, so wait for it with a limit.
//!
//! Over UDP there is no connection: `send_to` puts one datagram on its way and nothing tells
//! the sender whether it arrived, or whether anyone is listening. A client that then calls
//! `recv_from` and waits for the reply waits forever when the reply (or the question) was
//! lost. `ask` must wait at most `wait`, and report a missing reply as `Ok(None)`.
//!
//! The tests run lesson 06's echo server (it appends `123`) on 127.0.0.1, and a server that
//! reads but never answers.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::Duration;

/// Sends `msg` as one datagram to `server` and returns the reply, waiting at most `wait` for it:
/// `Ok(None)` when no reply came in time. `sock` is the client's own socket.
fn ask(
    sock: &UdpSocket,
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> io::Result<Option<Vec<u8>>> {
    sock.send_to(msg, server)?;
    sock.set_read_timeout(Some(wait))?;
    // As big as any datagram can be, so that no reply is cut.
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == server => return Ok(Some(buf[..n].to_vec())),
            // Someone else sent us a datagram: not the reply.
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // The wait is over: Unix says WouldBlock, Windows TimedOut.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Lesson 06's server: every datagram comes back with `123` appended, until `stop` arrives.
fn echo_server() -> (SocketAddr, thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            let (n, peer) = sock.recv_from(&mut buf).unwrap();
            if &buf[..n] == b"stop" {
                return;
            }
            let mut reply = buf[..n].to_vec();
            reply.extend_from_slice(b"123");
            sock.send_to(&reply, peer).unwrap();
        }
    });
    (addr, handle)
}

/// The client's socket: any free port on 127.0.0.1.
fn client_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn main() -> io::Result<()> {
    let (server, handle) = echo_server();
    let sock = client_socket();
    for msg in ["hello", "你好"] {
        match ask(&sock, server, msg.as_bytes(), Duration::from_secs(10))? {
            Some(reply) => println!("{msg:?} -> {:?}", String::from_utf8_lossy(&reply)),
            None => println!("{msg:?} -> no reply"),
        }
    }
    sock.send_to(b"stop", server)?;
    handle.join().expect("the server thread panicked");

    // A socket that receives but never answers: the reply never comes.
    let silent = client_socket();
    // A safety net for this demo, in case `ask` sets no limit of its own.
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;
    let wait = Duration::from_millis(200);
    let reply = ask(&sock, silent.local_addr()?, b"anyone?", wait)?;
    println!("\"anyone?\" to a server that never answers -> {reply:?} after {wait:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long the tests wait for a reply that does come: only a safety net.
    const SAFETY: Duration = Duration::from_secs(20);

    #[test]
    fn the_echo_server_answers_each_datagram() {
        let (server, handle) = echo_server();
        let sock = client_socket();
        for (msg, reply) in [
            ("hello", "hello123"),
            ("你好", "你好123"),
            ("123", "123123"),
        ] {
            let got = ask(&sock, server, msg.as_bytes(), SAFETY).unwrap();
            assert_eq!(got.as_deref(), Some(reply.as_bytes()), "{msg}");
        }
        sock.send_to(b"stop", server).unwrap();
        handle.join().unwrap();
    }

    /// Asks `silent`, which never answers, from a socket that already has a 1 ms limit: an
    /// `ask` that sets no limit of its own fails at once here, instead of hanging the test.
    fn ask_nobody(
        sock: &UdpSocket,
        silent: &UdpSocket,
        msg: &[u8],
        wait: Duration,
    ) -> Option<Vec<u8>> {
        sock.set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        match ask(sock, silent.local_addr().unwrap(), msg, wait) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "`ask` returned the error {e:?}: this is the test's own 1 ms limit running out, \
                 not `wait`; `ask` must set its own limit and turn the timeout into Ok(None)"
            ),
            Err(e) => panic!("`ask` failed: {e}"),
        }
    }

    /// The server gets the datagram (the test checks) and never answers: `ask` gives up after
    /// `wait` with `Ok(None)`, and the socket really waits `wait`, not forever.
    #[test]
    fn no_reply_within_the_wait_is_none() {
        let silent = client_socket();
        let sock = client_socket();
        let wait = Duration::from_millis(300);
        assert_eq!(ask_nobody(&sock, &silent, b"anyone?", wait), None);
        assert_eq!(
            sock.read_timeout().unwrap(),
            Some(wait),
            "wait at most `wait`"
        );

        silent.set_read_timeout(Some(SAFETY)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = silent.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"anyone?"[..], sock.local_addr().unwrap())
        );
    }

    /// One missing reply says nothing about the next: the same socket asks again and is
    /// answered.
    #[test]
    fn after_a_missing_reply_the_next_question_is_answered() {
        let silent = client_socket();
        let sock = client_socket();
        let got = ask_nobody(&sock, &silent, b"lost", Duration::from_millis(100));
        assert_eq!(got, None);

        let (server, handle) = echo_server();
        let got = ask(&sock, server, b"again", SAFETY).unwrap();
        assert_eq!(got.as_deref(), Some(&b"again123"[..]));
        sock.send_to(b"stop", server).unwrap();
        handle.join().unwrap();
    }
}
