//! Exercise 11, lesson 08 (b/s架构本质上也是c/s架构): read an HTTP request head from a stream.
//! 练习 11，第 08 课（b/s架构本质上也是c/s架构）：从字节流里读出一个 HTTP 请求报头。
//!
//! A browser's request is a head of text lines ending with an empty line, `\r\n\r\n`. The
//! notes' way, one `recv(1024)` taken as one whole message, fails here as it did in lesson 03:
//! a head may arrive in pieces (a slow network, a request typed by hand), and two requests may
//! arrive in one read (HTTP/1.1 pipelining), glued together. `read_head` must read into `buf`
//! until it holds `\r\n\r\n`, hand over the head (up to and including the empty line), and keep
//! the bytes after it in `buf`: they are the start of the next request.
//!
//! A peer that never sends the empty line must not make us buffer without end: past
//! `MAX_HEAD` bytes without one, refuse (a server then answers `431`).
//!
//! The tests feed `read_head` through readers that hand out 1, then 2, then 3 … bytes per
//! call (or the same number every call, from 1 byte to the whole request), and through a
//! real TCP connection on 127.0.0.1.
//!
//! 浏览器的请求是一段报头：若干文本行，以一个空行（`\r\n\r\n`）结束。笔记的办法是把一次
//! `recv(1024)` 当成一条完整的消息，在这里和第 03 课一样会出错：报头可能分几次到达（网络慢，
//! 或者有人手敲请求），两个请求也可能在同一次读取里到达、黏在一起（HTTP/1.1 的管线化，
//! pipelining）。`read_head` 要一直往 `buf` 里读，直到其中出现 `\r\n\r\n`，交出报头（到空行
//! 为止，空行也算在内），并把空行后面的字节留在 `buf` 里：那是下一个请求的开头。
//!
//! 对端要是一直不发空行，也不能让我们无止境地缓存下去：超过 `MAX_HEAD` 个字节还没有空行，
//! 就拒绝（服务端这时回复 `431`）。
//!
//! 测试用每次只给 1 个、2 个、3 个……字节的读取器（或者每次给同样多的字节，从 1 个直到整个
//! 请求）去喂 `read_head`，也通过 127.0.0.1 上一条真实的 TCP 连接来喂。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// The largest head accepted, in bytes (lesson 08's cap).
const MAX_HEAD: usize = 8 * 1024;

/// Reads one head, starting with the bytes already in `buf` (left from the last call), and
/// returns it with its `\r\n\r\n`; the bytes after it stay in `buf`.
///
/// - `Ok(None)`: the stream ended with `buf` empty, between two requests (the peer is done).
/// - `UnexpectedEof`: the stream ended in the middle of a head.
/// - `InvalidData`: no `\r\n\r\n` within the first `MAX_HEAD` bytes.
fn read_head(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    // TODO: the notes' `data = sock.recv(1024)`, one read taken as one whole request. Keep
    // reading into `buf` until it holds `\r\n\r\n`; split the head off and leave the rest in
    // `buf`; refuse a head over MAX_HEAD; tell a clean end from a head cut in the middle.
    // TODO（中文）：这是笔记的 `data = sock.recv(1024)`，把一次读取当成一个完整的请求。改成一直
    // 往 `buf` 里读，直到出现 `\r\n\r\n`；把报头切下来，后面的字节留在 `buf` 里；报头超过
    // MAX_HEAD 就拒绝；还要分清正常结束和报头断在半截。
    let mut chunk = [0u8; 1024];
    let n = r.read(&mut chunk)?;
    if n == 0 {
        return Ok(None);
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(Some(std::mem::take(buf)))
}

/// A request for `path`, as a browser sends it (shortened).
fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Mozilla/5.0\r\n\r\n")
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // A browser that sends the page's request and the favicon's in one write (pipelining).
    let peer = thread::spawn(move || -> io::Result<()> {
        let mut sock = TcpStream::connect(addr)?;
        sock.write_all(format!("{}{}", request("/"), request("/favicon.ico")).as_bytes())
    });
    let (mut sock, _) = listener.accept()?;
    let mut buf = Vec::new();
    while let Some(head) = read_head(&mut sock, &mut buf)? {
        let text = String::from_utf8_lossy(&head);
        let first = text.lines().next().unwrap_or_default();
        println!("a head of {} bytes: {first:?}", head.len());
    }
    println!("the peer is done");
    peer.join().expect("the peer thread panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out 1 byte, then 2, then 3 … per call (or `chunk` bytes per call).
    struct Trickle<'a> {
        data: &'a [u8],
        next: usize,
        grow: bool,
    }

    impl<'a> Trickle<'a> {
        fn growing(data: &'a [u8]) -> Self {
            Trickle {
                data,
                next: 1,
                grow: true,
            }
        }
        fn chunks(data: &'a [u8], chunk: usize) -> Self {
            Trickle {
                data,
                next: chunk,
                grow: false,
            }
        }
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.next.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            if self.grow {
                self.next += 1;
            }
            Ok(n)
        }
    }

    /// What `read_head` returned, in a few words: a head shows its length and its first bytes
    /// only, so that a failure fits on a screen.
    fn said(result: &io::Result<Option<Vec<u8>>>) -> String {
        match result {
            Ok(Some(head)) => {
                let start = String::from_utf8_lossy(&head[..head.len().min(20)]).into_owned();
                let bytes = if head.len() == 1 { "byte" } else { "bytes" };
                let n = head.len();
                format!("Ok(Some(a head of {n} {bytes}, starting {start:?}))")
            }
            other => format!("{other:?}"),
        }
    }

    /// The head `read_head` returned, or a panic that says what came instead.
    fn head(result: io::Result<Option<Vec<u8>>>, what: &str) -> String {
        match result {
            Ok(Some(head)) => String::from_utf8_lossy(&head).into_owned(),
            other => panic!("{what}: expected a head, got {}", said(&other)),
        }
    }

    #[test]
    fn a_head_that_arrives_in_pieces_is_read_whole() {
        let wire = request("/");
        let mut readers = vec![Trickle::growing(wire.as_bytes())];
        readers.extend((1..=wire.len()).map(|chunk| Trickle::chunks(wire.as_bytes(), chunk)));
        for mut r in readers {
            let mut buf = Vec::new();
            assert_eq!(head(read_head(&mut r, &mut buf), "one request"), wire);
            assert!(buf.is_empty(), "nothing is left after the only request");
            assert_eq!(
                read_head(&mut r, &mut buf).unwrap(),
                None,
                "then a clean end"
            );
        }
    }

    /// Pipelining: three requests glued together, in pieces of every size, come out one by one.
    #[test]
    fn glued_requests_come_out_one_by_one() {
        let paths = ["/", "/favicon.ico", "/?q=2"];
        let wire: String = paths.iter().map(|p| request(p)).collect();
        let mut readers = vec![Trickle::growing(wire.as_bytes())];
        readers.extend((1..=wire.len()).map(|chunk| Trickle::chunks(wire.as_bytes(), chunk)));
        for mut r in readers {
            let mut buf = Vec::new();
            for path in paths {
                let got = head(read_head(&mut r, &mut buf), path);
                assert_eq!(got, request(path));
            }
            assert_eq!(read_head(&mut r, &mut buf).unwrap(), None);
        }
    }

    /// The bytes after a head belong to the next request: they stay in `buf`.
    #[test]
    fn the_bytes_after_a_head_stay_in_the_buffer() {
        let wire = format!("{}GET /next", request("/"));
        let mut buf = Vec::new();
        let got = head(
            read_head(&mut wire.as_bytes(), &mut buf),
            "the first request",
        );
        assert_eq!(got, request("/"));
        assert_eq!(String::from_utf8_lossy(&buf), "GET /next");
    }

    #[test]
    fn a_stream_cut_inside_a_head_is_unexpected_eof() {
        let wire = request("/");
        for cut in 1..wire.len() {
            let mut r = Trickle::growing(&wire.as_bytes()[..cut]);
            match read_head(&mut r, &mut Vec::new()) {
                Err(e) => assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "cut at {cut}"),
                ok => panic!(
                    "a head cut after {cut} bytes: must be an error, got {}",
                    said(&ok)
                ),
            }
        }
    }

    /// 9 KiB without an empty line: refused, and not much more than MAX_HEAD was read.
    #[test]
    fn a_head_over_the_cap_is_refused() {
        let endless = vec![b'a'; 100_000];
        let mut r = Trickle::chunks(&endless, 1000);
        let mut buf = Vec::new();
        match read_head(&mut r, &mut buf) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidData),
            ok => panic!(
                "100 kB without an empty line: must be refused, got {}",
                said(&ok)
            ),
        }
        assert!(buf.len() < MAX_HEAD + 2000, "buffered {} bytes", buf.len());
    }

    /// A real peer over 127.0.0.1 sends two requests in pieces of 1, 2, 3 … bytes.
    #[test]
    fn over_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let wire = format!("{}{}", request("/"), request("/favicon.ico"));
        let peer = thread::spawn(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            sock.set_nodelay(true).unwrap();
            let bytes = wire.as_bytes();
            let (mut at, mut size) = (0, 1);
            while at < bytes.len() {
                let end = (at + size).min(bytes.len());
                sock.write_all(&bytes[at..end]).unwrap();
                (at, size) = (end, size + 1);
            }
        });
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        assert_eq!(head(read_head(&mut sock, &mut buf), "/"), request("/"));
        let second = head(read_head(&mut sock, &mut buf), "/favicon.ico");
        assert_eq!(second, request("/favicon.ico"));
        assert_eq!(read_head(&mut sock, &mut buf).unwrap(), None);
        peer.join().unwrap();
    }
}
