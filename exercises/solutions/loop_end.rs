//! Exercise 1, lesson 02 (notes 2.2, 通信循环): a read of 0 bytes means the client has gone.
//! 练习 1，第 02 课（笔记 2.2，通信循环）：读到 0 个字节，说明客户端已经走了。
//!
//! `serve` is the communication loop of lesson 02's server: read at most 1024 bytes, send them
//! back with `123` appended, again and again, until the client leaves. The exercise ships it
//! the way the notes write it, bug included: `if len(data) == 0: continue`.
//!
//! The tests play the client over a real TCP connection on 127.0.0.1. They wrap the server's
//! socket in `Watched`, which stops the test (instead of letting it spin at 100% CPU) when the
//! loop reads again after a read of 0 bytes.
//!
//! `serve` 是第 02 课服务端的通信循环：最多读 1024 个字节，加上 `123` 发回去，一遍又一遍，
//! 直到客户端离开。练习里照笔记的写法给出，连 bug 一起：`if len(data) == 0: continue`。
//!
//! 测试通过 127.0.0.1 上一条真实的 TCP 连接扮演客户端。测试把服务端的套接字包在 `Watched` 里：
//! 循环读到 0 个字节之后还要再读，`Watched` 就让测试停下来（而不是让它以 100% 的 CPU 空转）。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// Serves one client: every message comes back with `123` appended. Returns how many messages
/// were answered once the client has closed the connection.
fn serve(conn: &mut (impl Read + Write)) -> io::Result<usize> {
    let mut buf = [0u8; 1024];
    let mut answered = 0;
    loop {
        let n = match conn.read(&mut buf) {
            // End of stream: the client closed its side, and no byte will ever come again.
            // Reading again would return 0 again at once, forever. Leave the loop.
            Ok(0) => return Ok(answered),
            Ok(n) => n,
            // A signal interrupted the call before any byte arrived: ask again.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut reply = buf[..n].to_vec();
        reply.extend_from_slice(b"123");
        conn.write_all(&reply)?;
        answered += 1;
    }
}

/// The server's socket, watched: a read after a read of 0 bytes fails the run.
struct Watched {
    sock: TcpStream,
    ended: bool,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(
            !self.ended,
            "read again after a read of 0 bytes: the client has gone, and this loop would spin \
             at 100% CPU (the notes' `continue`); the next client would never be served"
        );
        let n = self.sock.read(buf)?;
        self.ended = n == 0;
        Ok(n)
    }
}

impl Write for Watched {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Accepts one client on `listener` and serves it through `serve`, watched.
fn accept_and_serve(listener: &TcpListener) -> io::Result<usize> {
    let (sock, _) = listener.accept()?;
    serve(&mut Watched { sock, ended: false })
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut sock = TcpStream::connect(addr)?;
        sock.write_all(b"hello")?;
        let mut reply = [0u8; 8];
        sock.read_exact(&mut reply)?;
        Ok(reply.to_vec())
        // `sock` is dropped here: the client closes the connection.
    });
    let answered = accept_and_serve(&listener)?;
    let reply = client.join().expect("the client thread panicked")?;
    println!("the client got {:?}", String::from_utf8_lossy(&reply));
    println!("the server answered {answered} message(s) and left the loop when the client left");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends each message and reads its reply in full, then closes the connection.
    fn client(addr: std::net::SocketAddr, messages: &[&str]) -> thread::JoinHandle<Vec<String>> {
        let messages: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
        thread::spawn(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            let mut replies = Vec::new();
            for m in messages {
                sock.write_all(m.as_bytes()).unwrap();
                let mut reply = vec![0u8; m.len() + 3];
                sock.read_exact(&mut reply).unwrap();
                replies.push(String::from_utf8(reply).unwrap());
            }
            replies
        })
    }

    #[test]
    fn echo_appends_123_and_the_loop_ends_when_the_client_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = client(listener.local_addr().unwrap(), &["hello", "你好"]);
        assert_eq!(accept_and_serve(&listener).unwrap(), 2);
        assert_eq!(peer.join().unwrap(), ["hello123", "你好123"]);
    }

    /// The notes' 链接循环: once the first client has gone, the same listener serves the next.
    #[test]
    fn the_next_client_is_served_after_the_first_leaves() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let first = client(addr, &["first"]);
        assert_eq!(accept_and_serve(&listener).unwrap(), 1);
        let second = client(addr, &["second"]);
        assert_eq!(accept_and_serve(&listener).unwrap(), 1);
        assert_eq!(first.join().unwrap(), ["first123"]);
        assert_eq!(second.join().unwrap(), ["second123"]);
    }

    #[test]
    fn a_client_that_says_nothing_gets_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = client(listener.local_addr().unwrap(), &[]);
        assert_eq!(accept_and_serve(&listener).unwrap(), 0);
        assert!(peer.join().unwrap().is_empty());
    }
}
