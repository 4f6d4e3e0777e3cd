//! Exercise 14, lesson 11 (IO多路复用): a non-blocking write may take only part of a reply.
//! 练习 14，第 11 课（IO多路复用）：非阻塞的写，可能只写出回复的一部分。
//!
//! The course's select server keeps each client's reply in `w_data[sock]` and, once `select`
//! says the socket is writable, calls `sock.send(w_data[sock])` and deletes the entry. On a
//! non-blocking socket `send` (in Rust, `write`) takes what fits in the send buffer and
//! returns how many bytes that was; the rest of the reply is deleted with the entry, and the
//! client never gets it. `Outbox` is one client's `w_data`: it must keep every byte the socket
//! did not take, in order, until a later write takes it.
//!
//! The tests write through a socket whose send buffer takes 1, then 2, then 3 … bytes per
//! call, full in between (`WouldBlock`), through one that takes no bytes at all (`Ok(0)`), and
//! through a real TCP connection to a peer that reads only once 16 MB of replies are queued,
//! more than the kernel's buffers hold.
//!
//! 课程里的 select 服务端把每个客户端的回复放在 `w_data[sock]` 里，等 `select` 说这个套接字
//! 可写了，就调用 `sock.send(w_data[sock])`，再删掉这一项。可在非阻塞的套接字上，`send`（Rust
//! 里是 `write`）只收下发送缓冲区放得下的那些字节，返回收下了多少；回复剩下的部分跟着这一项
//! 一起被删掉，客户端永远收不到。`Outbox` 就是一个客户端的 `w_data`：套接字没收下的每个字节，
//! 它都得按顺序留着，等以后的某次写把它们收下。
//!
//! 测试通过一个发送缓冲区每次只收 1 个、2 个、3 个……字节、两次之间都是满的（`WouldBlock`）
//! 的套接字来写；通过一个一个字节都不收（`Ok(0)`）的套接字来写；也通过一条真实的 TCP 连接
//! 来写，对端要等 16 MB 的回复全部排好队才开始读，这比内核的缓冲区放得下的还多。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// One client's replies not yet sent, oldest first: the select example's `w_data[sock]`.
#[derive(Default)]
struct Outbox {
    unsent: Vec<u8>,
}

impl Outbox {
    /// Queues `reply` behind anything still unsent, then writes what the socket takes now.
    fn send(&mut self, sock: &mut impl Write, reply: &[u8]) -> io::Result<()> {
        self.unsent.extend_from_slice(reply);
        self.flush(sock)
    }

    /// Writes unsent bytes until none are left or the socket has no room (`WouldBlock`): what
    /// the event loop does when the poller says the socket is writable.
    fn flush(&mut self, sock: &mut impl Write) -> io::Result<()> {
        while !self.unsent.is_empty() {
            match sock.write(&self.unsent) {
                // A socket that takes no bytes of a non-empty buffer will never take them.
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                // The bytes the socket took leave the front; the rest waits, in order.
                Ok(written) => {
                    self.unsent.drain(..written);
                }
                // The send buffer is full: the rest waits for the next "writable".
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the loop should ask the poller for "writable": only while bytes wait.
    fn waiting(&self) -> bool {
        !self.unsent.is_empty()
    }
}

/// Lesson 02's replies for `n` messages of 1024 bytes: each message and `123`.
fn replies(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut reply = vec![b'a' + (i % 26) as u8; 1024];
            reply.extend_from_slice(b"123");
            reply
        })
        .collect()
}

/// Sends `replies` through an `Outbox` on a non-blocking socket to a peer that starts reading
/// only once all are queued; what the peer received.
fn send_to_a_late_reader(replies: &[Vec<u8>]) -> io::Result<Vec<u8>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (start_reading, go) = mpsc::channel::<()>();
    let peer = thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut sock = TcpStream::connect(addr)?;
        let _ = go.recv();
        let mut got = Vec::new();
        sock.read_to_end(&mut got)?;
        Ok(got)
    });
    let (mut sock, _) = listener.accept()?;
    sock.set_nonblocking(true)?;
    let mut outbox = Outbox::default();
    for reply in replies {
        outbox.send(&mut sock, reply)?;
    }
    let _ = start_reading.send(());
    // Lesson 11 asks the poller when the socket is writable again. This function has one
    // socket and nothing else to do, so it simply tries again a moment later.
    while outbox.waiting() {
        thread::sleep(Duration::from_millis(1));
        outbox.flush(&mut sock)?;
    }
    // Done sending: the peer's read_to_end ends.
    sock.shutdown(std::net::Shutdown::Write)?;
    peer.join().expect("the peer thread panicked")
}

fn main() -> io::Result<()> {
    let replies = replies(16 * 1024);
    let sent: usize = replies.iter().map(Vec::len).sum();
    let got = send_to_a_late_reader(&replies)?;
    println!(
        "queued {sent} bytes of replies; the client received {}",
        got.len()
    );
    if got.len() == sent {
        println!("every byte arrived: nothing was dropped");
    } else {
        println!("{} bytes were dropped on the way", sent.abs_diff(got.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// A non-blocking socket whose send buffer takes 1 byte, then 2, then 3 … per call, and
    /// is full (`WouldBlock`) on every other call, as a slow client's may be.
    struct Narrow {
        taken: Vec<u8>,
        next: usize,
        full: bool,
    }

    impl Narrow {
        fn new() -> Self {
            Narrow {
                taken: Vec::new(),
                next: 1,
                full: false,
            }
        }
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.full = !self.full;
            if !self.full {
                return Err(io::Error::new(ErrorKind::WouldBlock, "send buffer full"));
            }
            let n = self.next.min(buf.len());
            self.taken.extend_from_slice(&buf[..n]);
            self.next += 1;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Calls `flush` as the event loop would on each "writable", until nothing waits.
    fn drain(outbox: &mut Outbox, sock: &mut Narrow) {
        for _ in 0..100_000 {
            if !outbox.waiting() {
                return;
            }
            outbox.flush(sock).unwrap();
        }
        panic!(
            "still {} bytes waiting after 100,000 flushes",
            outbox.unsent.len()
        );
    }

    #[test]
    fn replies_written_a_few_bytes_at_a_time_arrive_whole_and_in_order() {
        let mut sock = Narrow::new();
        let mut outbox = Outbox::default();
        let replies: [&[u8]; 3] = [b"hello123", "你好123".as_bytes(), &[b'x'; 1027]];
        for reply in replies {
            outbox.send(&mut sock, reply).unwrap();
        }
        drain(&mut outbox, &mut sock);
        same(&sock.taken, &replies.concat(), "what the socket took");
    }

    /// A reply queued while an older one still waits goes behind it, never in front.
    #[test]
    fn a_new_reply_waits_behind_the_unsent_rest_of_an_older_one() {
        let mut sock = Narrow::new();
        let mut outbox = Outbox::default();
        outbox.send(&mut sock, b"first reply123").unwrap();
        assert!(
            outbox.waiting(),
            "the socket took 1 byte of 14, yet nothing waits: the other 13 were forgotten"
        );
        outbox.send(&mut sock, b"second123").unwrap();
        drain(&mut outbox, &mut sock);
        same(
            &sock.taken,
            b"first reply123second123",
            "what the socket took",
        );
    }

    #[test]
    fn nothing_waits_once_every_byte_is_out() {
        let mut sock = Narrow::new();
        let mut outbox = Outbox::default();
        outbox.send(&mut sock, b"ab").unwrap();
        drain(&mut outbox, &mut sock);
        assert!(!outbox.waiting());
        same(&sock.taken, b"ab", "what the socket took");
    }

    /// A socket that takes 0 bytes of a non-empty buffer (`write` returns `Ok(0)`) will never
    /// take them: `flush` gives up with `ErrorKind::WriteZero`, as std's `write_all` does,
    /// instead of calling `write` again for ever, and instead of forgetting the reply.
    #[test]
    fn a_write_that_takes_no_bytes_is_an_error_not_a_loop() {
        struct TakesNothing {
            calls: usize,
        }
        impl Write for TakesNothing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                self.calls += 1;
                assert!(
                    self.calls < 1000,
                    "write took 0 bytes 999 times in a row and flush calls it again: a loop for ever"
                );
                Ok(0)
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        let mut outbox = Outbox::default();
        match outbox.send(&mut TakesNothing { calls: 0 }, b"hello123") {
            Err(e) => assert_eq!(e.kind(), ErrorKind::WriteZero, "the error was: {e}"),
            Ok(()) => panic!(
                "the socket took 0 bytes of 8 and `send` returned Ok(()) with {} bytes waiting: \
                 a socket that takes nothing will never take them; say so with an error",
                outbox.unsent.len()
            ),
        }
    }

    /// 16 MB of replies over a real connection to a client that reads only once they are all
    /// queued: the kernel's buffers take a few MB, the rest waits in the outbox.
    #[test]
    fn sixteen_megabytes_to_a_late_reader_arrive_whole() {
        let replies = replies(16 * 1024);
        let got = send_to_a_late_reader(&replies).unwrap();
        same(&got, &replies.concat(), "what the client received");
    }
}
