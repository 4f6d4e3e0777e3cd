//! Exercise 8, lesson 06 (数据报协议, UDP): a reply may never come, so wait for it with a limit.
//! 练习 8，第 06 课（数据报协议，UDP）：回复可能永远不来，所以等它要有期限。
//!
//! Over UDP there is no connection: `send_to` puts one datagram on its way and nothing tells
//! the sender whether it arrived, or whether anyone is listening. A client that then calls
//! `recv_from` and waits for the reply waits forever when the reply (or the question) was
//! lost. `ask` must wait at most `wait` in all, and report a missing reply as `Ok(None)`.
//! Anyone who knows the client's port can send it datagrams too: those are not the reply,
//! and they must not make the wait longer.
//!
//! The tests run lesson 06's echo server (it appends `123`) on 127.0.0.1, a server that reads
//! but never answers, and a stranger that sends the client a datagram every 20 ms.
//!
//! UDP 没有连接：`send_to` 把一个数据报发出去，至于它到没到、有没有人在听，没有任何东西会告诉
//! 发送方。客户端接着调用 `recv_from` 等回复，要是回复（或者问题本身）丢了，它就永远等下去。
//! `ask` 总共最多等 `wait` 这么久，没等到回复就返回 `Ok(None)`。任何知道客户端端口的人都能给它发
//! 数据报：那些不是回复，也不能让等待变长。
//!
//! 测试在 127.0.0.1 上运行第 06 课的回显服务端（在数据后面加上 `123`）、一个只收不回的服务端，
//! 还有一个每 20 毫秒给客户端发一个数据报的陌生人。

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

/// Sends `msg` as one datagram to `server` and returns the reply, waiting at most `wait` for it:
/// `Ok(None)` when no reply came in time. `sock` is the client's own socket.
fn ask(
    sock: &UdpSocket,
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> io::Result<Option<Vec<u8>>> {
    sock.send_to(msg, server)?;
    // A deadline for the reply, not a timeout per call: a stray datagram must not restart the
    // wait, or a stranger who sends one every 100 ms keeps us waiting for ever.
    let deadline = Instant::now() + wait;
    // As big as any datagram can be, so that no reply is cut.
    let mut buf = vec![0u8; 65536];
    loop {
        // What is left of the wait. set_read_timeout refuses zero: the time is up.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == server => return Ok(Some(buf[..n].to_vec())),
            // Someone else sent us a datagram: not the reply. Wait for what is left.
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The timeout ran out: Unix says WouldBlock, Windows TimedOut. The first line of
            // the loop decides, so a timer that wakes a little early waits out the rest.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
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
    use std::sync::mpsc;
    use std::time::Instant;

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
    /// Returns the answer and how long `ask` took.
    fn ask_nobody(
        sock: &UdpSocket,
        silent: &UdpSocket,
        msg: &[u8],
        wait: Duration,
    ) -> (Option<Vec<u8>>, Duration) {
        sock.set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let start = Instant::now();
        match ask(sock, silent.local_addr().unwrap(), msg, wait) {
            Ok(got) => (got, start.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "`ask` returned the error {e:?}: this is the test's own 1 ms limit running out, \
                 not `wait`; `ask` must set its own limit and turn the timeout into Ok(None)"
            ),
            Err(e) => panic!("`ask` failed: {e}"),
        }
    }

    /// Some timers wake a few milliseconds early; "waited `wait`" allows for that much.
    const EARLY: Duration = Duration::from_millis(20);

    /// The server gets the datagram (the test checks) and never answers: `ask` gives up with
    /// `Ok(None)`, and not before `wait` has passed.
    #[test]
    fn no_reply_within_the_wait_is_none() {
        let silent = client_socket();
        let sock = client_socket();
        let wait = Duration::from_millis(300);
        let (got, took) = ask_nobody(&sock, &silent, b"anyone?", wait);
        assert_eq!(got, None, "nobody answered");
        assert!(
            took + EARLY >= wait,
            "gave up after {took:?}, before the {wait:?} wait"
        );

        silent.set_read_timeout(Some(SAFETY)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = silent.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"anyone?"[..], sock.local_addr().unwrap())
        );
    }

    /// A stranger sends the client a datagram every 20 ms (for 5 s at most) while the server
    /// stays silent. None of them is the reply, and they do not stretch the wait: `ask` gives
    /// up after about `wait`. (A timeout set once, restarted by every stray datagram, would wait
    /// until the stranger stops, 5 s; the test allows `wait` plus 2 s.)
    #[test]
    fn stray_datagrams_are_not_the_reply_and_do_not_stretch_the_wait() {
        let silent = client_socket();
        let sock = client_socket();
        let target = sock.local_addr().unwrap();
        let (stop, stopped) = mpsc::channel::<()>();
        let stranger = thread::spawn(move || {
            let junk = client_socket();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                junk.send_to(b"junk", target).unwrap();
                if stopped.recv_timeout(Duration::from_millis(20)).is_ok() {
                    break;
                }
            }
        });
        let wait = Duration::from_millis(300);
        let (got, took) = ask_nobody(&sock, &silent, b"anyone?", wait);
        let _ = stop.send(());
        stranger.join().unwrap();
        assert_eq!(
            got.as_deref().map(String::from_utf8_lossy),
            None,
            "a datagram from a stranger, not from the server, was taken for the reply"
        );
        assert!(
            took + EARLY >= wait,
            "gave up after {took:?}, before the {wait:?} wait"
        );
        assert!(
            took < wait + Duration::from_secs(2),
            "waited {took:?} for a {wait:?} wait: each stray datagram restarted the timeout"
        );
    }

    /// One missing reply says nothing about the next: the same socket asks again and is
    /// answered.
    #[test]
    fn after_a_missing_reply_the_next_question_is_answered() {
        let silent = client_socket();
        let sock = client_socket();
        let (got, _) = ask_nobody(&sock, &silent, b"lost", Duration::from_millis(100));
        assert_eq!(got, None);

        let (server, handle) = echo_server();
        let got = ask(&sock, server, b"again", SAFETY).unwrap();
        assert_eq!(got.as_deref(), Some(&b"again123"[..]));
        sock.send_to(b"stop", server).unwrap();
        handle.join().unwrap();
    }
}
