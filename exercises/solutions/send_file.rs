//! Exercise 9, lesson 05 (notes 4, 优酷 upload client): send a file whole, in chunks, with `write_all`.
//! 练习 9，第 05 课（笔记第 4 节，优酷上传的客户端）：把文件分块发送，每块都用 `write_all` 完整发出。
//!
//! The notes' client sends the video like this:
//!
//! ```text
//! with open(movie_path, 'rb') as f:
//!     for line in f:
//!         client.send(line)
//! ```
//!
//! Two things go wrong there (bug 10). A video is not text: `for line in f` cuts it at every
//! byte 10 (`\n`), so a "line" may be 1 byte or the whole file, read into memory at once. And
//! `send` may take only part of what it is given: it returns how many bytes it took, and the
//! notes never look. The rest is lost, and the server waits for ever for the bytes the
//! header's `size` promised. `send_body` must send exactly `size` bytes of `file`, read in
//! chunks of at most `CHUNK` bytes, each chunk written whole.
//!
//! `main` may well work as shipped: a socket on one machine usually takes everything at once.
//! The tests do not leave that to luck. Their socket takes 1, then 2, then 3 … bytes per
//! `write` call, as a socket with a full send buffer may (Python's `send` on a socket with a
//! timeout does; Rust's `write` on a socket with a write timeout can), in memory and in front
//! of a real peer on 127.0.0.1 that reads in small pieces.
//!
//! 笔记的客户端是这样发送视频的（见上面的代码）。这里有两处错（bug 10）。视频不是文本：
//! `for line in f` 会在每个值为 10 的字节（`\n`）处切开，于是一“行”可能只有 1 个字节，也可能是
//! 整个文件，一次全读进内存。而且 `send` 可能只收下交给它的一部分：它返回自己收下了多少字节，
//! 笔记从来不看。剩下的就丢了，服务端则永远等着报头里 `size` 答应过的那些字节。`send_body`
//! 要正好发送 `file` 的 `size` 个字节：每次最多读 `CHUNK` 个字节，每一块都完整发出。
//!
//! 原样运行 `main` 多半没问题：同一台机器上的套接字通常一次就全收下了。测试可不靠运气：
//! 测试里的套接字每次 `write` 只收 1 个、2 个、3 个……字节，就像发送缓冲区满了的套接字那样
//! （Python 里设了超时的套接字调用 `send` 就会这样；Rust 里设了写超时的套接字调用 `write`
//! 也可能这样）；测试在内存里这样做，也对着 127.0.0.1 上一个每次只读一小段的真实对端这样做。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// The largest piece of the file read (and handed to `write_all`) at a time: 64 KiB, as lesson
/// 05's client. Big enough that the system calls cost little, small enough for any memory.
const CHUNK: usize = 64 * 1024;

/// Sends exactly `size` bytes of `file` on `sock`, read in chunks of at most `CHUNK` bytes.
/// If `file` ends before `size` bytes, the error is of kind `UnexpectedEof` (the header has
/// promised `size`, so the server is still waiting). Bytes past `size` are not sent.
fn send_body(file: &mut impl Read, size: u64, sock: &mut impl Write) -> io::Result<()> {
    // `take(size)`: never more than the header promised, even if the file grew meanwhile.
    let mut body = file.take(size);
    let mut buf = vec![0u8; CHUNK];
    let mut sent: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // `write` may take part of the chunk and say so; `write_all` loops until all of it
        // is taken (and asks again after `Interrupted`).
        sock.write_all(&buf[..n])?;
        sent += n as u64;
    }
    if sent < size {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            format!("the file ended after {sent} of the {size} bytes promised"),
        ));
    }
    Ok(())
}

/// What the notes' client sends for one file, in front of the body: `struct.pack('i', n)` and
/// the dict header (the few keys the server reads).
fn header(name: &str, size: u64) -> Vec<u8> {
    let json = format!("{{\"file_name\": \"{name}\", \"size\": {size}}}");
    let mut out = (json.len() as i32).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out
}

/// `len` bytes of a binary file: every value from 0 to 250 in turn, so byte 10 (a "line" end
/// for the notes' `for line in f`) comes every 251 bytes, and a lost or repeated piece shows.
fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn main() -> io::Result<()> {
    let data = binary(300_000);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // The server's side: the whole upload, header and body, until the client closes.
    let server = thread::spawn(move || -> io::Result<Vec<u8>> {
        let (mut sock, _) = listener.accept()?;
        let mut all = Vec::new();
        sock.read_to_end(&mut all)?;
        Ok(all)
    });
    let mut sock = TcpStream::connect(addr)?;
    let wire = header("01 后期课程安排.mp4", data.len() as u64);
    sock.write_all(&wire)?;
    send_body(&mut &data[..], data.len() as u64, &mut sock)?;
    drop(sock);
    let got = server.join().expect("the server thread panicked")?;
    let body = &got[wire.len().min(got.len())..];
    println!(
        "sent a {}-byte file ({} of its bytes are 10, a \"line\" end); the server got {} bytes \
         of body, the same bytes: {}",
        data.len(),
        data.iter().filter(|&&b| b == b'\n').count(),
        body.len(),
        body == &data[..]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// A socket that takes at most 1, then 2, then 3 … bytes per `write` call (back to 1 after
    /// 1000). It keeps the largest buffer it was offered. `interrupted()` makes its first call
    /// fail with `Interrupted`, as a call a signal interrupts does.
    struct Stingy<W: Write> {
        inner: W,
        next: usize,
        interrupted: bool,
        largest_offer: usize,
    }

    impl<W: Write> Stingy<W> {
        fn new(inner: W) -> Self {
            Stingy {
                inner,
                next: 1,
                interrupted: true,
                largest_offer: 0,
            }
        }
        fn interrupted(inner: W) -> Self {
            Stingy {
                interrupted: false,
                ..Stingy::new(inner)
            }
        }
    }

    impl<W: Write> Write for Stingy<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.largest_offer = self.largest_offer.max(buf.len());
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::Error::new(ErrorKind::Interrupted, "a signal arrived"));
            }
            let n = self.inner.write(&buf[..self.next.min(buf.len())])?;
            self.next = self.next % 1000 + 1;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn every_byte_arrives_through_a_socket_that_takes_a_few_at_a_time() {
        let data = binary(200_000);
        let mut sock = Stingy::new(Vec::new());
        send_body(&mut &data[..], data.len() as u64, &mut sock).unwrap();
        same(&sock.inner, &data, "what the socket took");
    }

    /// No byte 10 at all: the notes' "line" would be the whole file, in memory at once.
    #[test]
    fn a_file_without_a_line_end_still_goes_in_chunks() {
        let data = vec![b'x'; 1 << 20];
        let mut sock = Stingy::new(Vec::new());
        send_body(&mut &data[..], data.len() as u64, &mut sock).unwrap();
        same(&sock.inner, &data, "what the socket took");
        assert!(
            sock.largest_offer <= CHUNK,
            "a `write` call was handed {} bytes at once; a chunk is at most CHUNK ({CHUNK})",
            sock.largest_offer
        );
    }

    /// A signal may interrupt a `write` before it took any byte: that call is simply made again.
    #[test]
    fn an_interrupted_write_is_made_again() {
        let data = binary(5_000);
        let mut sock = Stingy::interrupted(Vec::new());
        match send_body(&mut &data[..], data.len() as u64, &mut sock) {
            Ok(()) => same(&sock.inner, &data, "what the socket took"),
            Err(e) => panic!("an `Interrupted` write must be made again, not returned: {e:?}"),
        }
    }

    /// The file grew after its size was sent: only `size` bytes go (the rest would be taken
    /// for the next upload's header). It shrank: `UnexpectedEof`, after what there was.
    #[test]
    fn exactly_size_bytes_are_sent_and_a_short_file_is_unexpected_eof() {
        let data = binary(10_000);
        let mut sock = Stingy::new(Vec::new());
        send_body(&mut &data[..], 7_000, &mut sock).unwrap();
        same(
            &sock.inner,
            &data[..7_000],
            "the first 7000 bytes of a longer file",
        );

        let mut sock = Stingy::new(Vec::new());
        match send_body(&mut &data[..], 12_000, &mut sock) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}"),
            Ok(()) => panic!("a 10000-byte file sent as 12000: must be an error, got Ok(())"),
        }
        same(
            &sock.inner,
            &data,
            "what was sent of a file that ended early",
        );
    }

    /// A real connection: the client's socket takes a few bytes per call, the server reads
    /// 100 bytes at a time and gets exactly the file.
    #[test]
    fn over_a_real_socket_to_a_peer_that_reads_in_small_pieces() {
        let data = binary(300_000);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let (mut all, mut buf) = (Vec::new(), [0u8; 100]);
            loop {
                match sock.read(&mut buf).unwrap() {
                    0 => return all,
                    n => all.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut sock = Stingy::new(TcpStream::connect(addr).unwrap());
        send_body(&mut &data[..], data.len() as u64, &mut sock).unwrap();
        drop(sock);
        same(&server.join().unwrap(), &data, "what the server received");
    }
}
