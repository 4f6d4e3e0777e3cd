//! Exercise 12, lesson 09 (网络并发, 线程): hand each client to a thread of its own.
//! 练习 12，第 09 课（网络并发，线程）：把每个客户端交给一个专门的线程。
//!
//! `serve_forever` is lesson 02's connection loop (链接循环): take the next accepted client,
//! run the communication loop (`handle`) with it until it leaves, then take the next. While it
//! talks to one client, the others wait: 同时只能给一个客户提供服务 其他客户要等待, as the notes
//! say. Python's `ThreadingTCPServer` runs `handle` in a new thread for each client instead,
//! and goes straight back to accepting. Do the same.
//!
//! The tests play the clients over real TCP connections on 127.0.0.1. They wrap each accepted
//! connection so that they know which thread serves it: a client served by the thread that
//! accepts fails the test at once, with the reason.
//!
//! `serve_forever` 是第 02 课的链接循环：取下一个已经 accept 的客户端，和它跑通信循环
//! （`handle`），直到它离开，再取下一个。和一个客户端说话的时候，别的客户端都得等，正如笔记
//! 所说：同时只能给一个客户提供服务 其他客户要等待。Python 的 `ThreadingTCPServer` 则为每个
//! 客户端开一个新线程去跑 `handle`，自己马上回去 accept。这里也要这样做。
//!
//! 测试通过 127.0.0.1 上真实的 TCP 连接扮演客户端。测试把每个 accept 到的连接包了一层，好知道
//! 是哪个线程在服务它：一个客户端如果由负责 accept 的线程来服务，测试马上失败，并说明原因。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The connection loop: serves every client `incoming` yields (`listener.incoming()`), for as
/// long as there are clients. Each client must be served by a thread of its own, so that the
/// next client is accepted while the last one is still talking.
fn serve_forever<C>(incoming: impl Iterator<Item = io::Result<C>>)
where
    C: Read + Write + Send + 'static,
{
    for conn in incoming {
        let conn = match conn {
            Ok(conn) => conn,
            // One failed accept belongs to that connection: go on with the next.
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        // TODO: lesson 02 serves the client right here, and accepts the next one only when
        // this one has gone. Hand `conn` to a new thread that runs `handle`, and go straight
        // back to the loop. (`thread::spawn` panics when the system refuses a thread: what
        // does `thread::Builder` do instead?)
        // TODO（中文）：第 02 课就在这里服务这个客户端，等它走了才接受下一个。把 `conn` 交给一个
        // 新线程去跑 `handle`，然后马上回到循环。（系统不给创建线程时，`thread::spawn` 会 panic：
        // `thread::Builder` 这时会怎么做？）
        handle(conn);
    }
}

/// The communication loop (通信循环) for one client, lesson 02's: every message comes back with
/// `123` appended, until the client leaves or an error ends this connection.
fn handle(mut conn: impl Read + Write) {
    let mut buf = [0u8; 1024];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut reply = buf[..n].to_vec();
        reply.extend_from_slice(b"123");
        if conn.write_all(&reply).is_err() {
            return;
        }
    }
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || serve_forever(listener.incoming()));

    // Client A is answered and stays connected.
    let mut a = TcpStream::connect(addr)?;
    a.write_all(b"A here")?;
    let mut reply = [0u8; 9];
    a.read_exact(&mut reply)?;
    println!(
        "A got {:?} and stays connected",
        String::from_utf8_lossy(&reply)
    );

    // Client B talks while A is still there. Two seconds is plenty for an answer that takes
    // microseconds; a server that serves one client at a time never answers.
    let mut b = TcpStream::connect(addr)?;
    b.set_read_timeout(Some(Duration::from_secs(2)))?;
    b.write_all(b"B here")?;
    match b.read_exact(&mut reply) {
        Ok(()) => println!("B got {:?} while A stayed", String::from_utf8_lossy(&reply)),
        Err(_) => println!("B got no answer while A stayed: one client at a time"),
    }
    Ok(())
    // The process ends here, and the server's threads with it.
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::thread::ThreadId;

    /// Which thread accepts, and which thread served each client (on its first read).
    #[derive(Default)]
    struct Seen {
        acceptor: Option<ThreadId>,
        served_by: Vec<ThreadId>,
    }

    /// The record, locked. A test that fails does so after it has let go of the lock, but if a
    /// thread panicked holding it anyway, the record is still right: take it as it is, and
    /// let that panic be the only message.
    fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
        seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `listener.incoming()`, recording the thread that asks for the next client.
    struct Incoming {
        listener: TcpListener,
        seen: Arc<Mutex<Seen>>,
    }

    impl Iterator for Incoming {
        type Item = io::Result<Conn>;
        fn next(&mut self) -> Option<Self::Item> {
            lock(&self.seen).acceptor = Some(thread::current().id());
            let accepted = self.listener.accept().map(|(sock, _)| Conn {
                sock,
                seen: Arc::clone(&self.seen),
                first_read: true,
            });
            Some(accepted)
        }
    }

    /// An accepted connection, recording the thread of its first read.
    struct Conn {
        sock: TcpStream,
        seen: Arc<Mutex<Seen>>,
        first_read: bool,
    }

    impl Read for Conn {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.first_read {
                self.first_read = false;
                lock(&self.seen).served_by.push(thread::current().id());
            }
            self.sock.read(buf)
        }
    }

    impl Write for Conn {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sock.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.sock.flush()
        }
    }

    /// Starts `serve_forever` in a thread of its own, as a server's main thread.
    fn start() -> (SocketAddr, Arc<Mutex<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let incoming = Incoming {
            listener,
            seen: Arc::clone(&seen),
        };
        thread::spawn(move || serve_forever(incoming));
        (addr, seen)
    }

    /// Connects, sends `msg` and reads its echo. The read timeout is a safety net only: an
    /// answer takes microseconds, and a test fails instead of hanging.
    fn talk(sock: &mut TcpStream, msg: &str) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.write_all(msg.as_bytes()).unwrap();
        let mut reply = vec![0u8; msg.len() + 3];
        sock.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("no echo of {msg:?} ({e}) while other clients stay"));
        String::from_utf8(reply).unwrap()
    }

    /// Client number `nth` (0 first) was not served by the thread that accepts. The thread
    /// IDs are copied out first: the assertion runs with the lock free.
    fn assert_own_thread(seen: &Arc<Mutex<Seen>>, nth: usize) {
        let (acceptor, served_by) = {
            let seen = lock(seen);
            (seen.acceptor, seen.served_by[nth])
        };
        assert_ne!(
            acceptor,
            Some(served_by),
            "client {} was served by the thread that accepts: while it talks to that client, \
             nobody accepts the next one (lesson 02, one client at a time)",
            nth + 1
        );
    }

    #[test]
    fn each_client_is_served_by_a_thread_of_its_own() {
        let (addr, seen) = start();
        let mut a = TcpStream::connect(addr).unwrap();
        assert_eq!(talk(&mut a, "hello"), "hello123");
        assert_own_thread(&seen, 0);
        let mut b = TcpStream::connect(addr).unwrap();
        assert_eq!(talk(&mut b, "你好"), "你好123");
        assert_own_thread(&seen, 1);
        let served_by = lock(&seen).served_by.clone();
        assert_ne!(served_by[0], served_by[1], "one thread for two clients");
    }

    /// Ten clients, each answered once and then staying; then each is answered again while all
    /// ten are connected.
    #[test]
    fn ten_clients_connected_at_once_are_all_answered() {
        let (addr, seen) = start();
        let mut clients = Vec::new();
        for i in 0..10 {
            let mut sock = TcpStream::connect(addr).unwrap();
            assert_eq!(talk(&mut sock, &format!("hi {i}")), format!("hi {i}123"));
            assert_own_thread(&seen, i);
            clients.push(sock);
        }
        for (i, sock) in clients.iter_mut().enumerate() {
            assert_eq!(talk(sock, &format!("again {i}")), format!("again {i}123"));
        }
    }

    /// A client that leaves ends its own thread only: the server accepts the next.
    #[test]
    fn a_client_that_leaves_does_not_stop_the_server() {
        let (addr, seen) = start();
        let mut a = TcpStream::connect(addr).unwrap();
        assert_eq!(talk(&mut a, "bye"), "bye123");
        assert_own_thread(&seen, 0);
        drop(a);
        let mut b = TcpStream::connect(addr).unwrap();
        assert_eq!(talk(&mut b, "next"), "next123");
    }
}
