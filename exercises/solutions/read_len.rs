//! Exercise 3, lesson 04 (notes 3.2, 简易版本报头): read the 4-byte header, and check it.
//! 练习 3，第 04 课（笔记 3.2，简易版本报头）：读 4 字节报头，并检查它。
//!
//! Before each message the notes send its length as `struct.pack('i', n)`: 4 bytes, a signed
//! 32-bit integer, little-endian (`11 00 00 00` is 17). The receiver does `recv(4)` and
//! `struct.unpack('i', …)`, then allocates and reads that many bytes. Three things go wrong
//! there: `recv(4)` may return fewer than 4 bytes; the peer may send a negative number; and it
//! may announce 2 GiB, which the receiver then allocates. `read_len` fixes all three: it reads
//! exactly 4 bytes (and tells a clean end of stream from a header cut in the middle), then
//! refuses a negative length or one over `max` before anything is allocated.
//!
//! `read_frame` (given, it uses `read_len`) reads one whole message: the header, then exactly
//! that many bytes.
//!
//! 笔记在每条消息前面用 `struct.pack('i', n)` 发送它的长度：4 个字节，有符号 32 位整数，小端序
//! （`11 00 00 00` 就是 17）。接收方 `recv(4)`、`struct.unpack('i', …)`，然后分配并读取那么多字节。
//! 这里有三处会出错：`recv(4)` 可能返回不到 4 个字节；对方可能发来负数；还可能声称有 2 GiB，
//! 接收方就真去分配。`read_len` 把这三处都改好：正好读 4 个字节（并且分清数据流是干净地结束了，
//! 还是报头断在了半截），然后在分配任何内存之前，拒绝负数长度和超过 `max` 的长度。
//!
//! `read_frame`（已经写好，它调用 `read_len`）读一整条消息：先读报头，再正好读那么多字节。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// The largest message we accept, in bytes.
const MAX: usize = 64 * 1024;

/// Reads the 4-byte header and returns the length it announces.
///
/// - `Ok(None)`: the stream ended cleanly before the first header byte (the peer is done).
/// - `UnexpectedEof`: the stream ended after 1, 2 or 3 header bytes.
/// - `InvalidData`: the length is negative, or more than `max`.
fn read_len(r: &mut impl Read, max: usize) -> io::Result<Option<usize>> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("the stream ended after {got} of the 4 header bytes"),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // `struct.unpack('i', header)`: signed, little-endian.
    let n = i32::from_le_bytes(header);
    let len = usize::try_from(n)
        .map_err(|_| io::Error::new(ErrorKind::InvalidData, format!("negative length {n}")))?;
    if len > max {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("length {len} is over the limit of {max} bytes"),
        ));
    }
    Ok(Some(len))
}

/// Reads one message: the header, then exactly the announced number of bytes. `Ok(None)` at
/// a clean end of stream.
fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = read_len(r, max)? else {
        return Ok(None);
    };
    // Safe to allocate: read_len checked `len` against `max`.
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// One message as the notes send it: `struct.pack('i', len(payload)) + payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let peer = thread::spawn(move || -> io::Result<()> {
        let mut sock = TcpStream::connect(addr)?;
        sock.write_all(&frame(b"I am from client!"))?;
        sock.write_all(&frame(b"and one more"))
    });
    let (mut sock, _) = listener.accept()?;
    while let Some(message) = read_frame(&mut sock, MAX)? {
        println!(
            "message of {} bytes: {:?}",
            message.len(),
            String::from_utf8_lossy(&message)
        );
    }
    println!("the peer is done");
    peer.join().expect("the peer thread panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

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

    /// The error in `result`, or a panic that says what should have been refused.
    fn refused<T: std::fmt::Debug>(result: io::Result<T>, what: &str) -> io::Error {
        match result {
            Err(e) => e,
            Ok(v) => panic!("{what}: must be an error, got Ok({v:?})"),
        }
    }

    #[test]
    fn the_header_is_struct_pack_i() {
        // python3 -c "import struct; print(struct.pack('i', 17).hex())"  ->  11000000
        let mut r: &[u8] = &[0x11, 0, 0, 0];
        assert_eq!(read_len(&mut r, MAX).unwrap(), Some(17));
        // struct.pack('i', 1025).hex()  ->  01040000
        let mut r: &[u8] = &[0x01, 0x04, 0, 0];
        assert_eq!(read_len(&mut r, MAX).unwrap(), Some(1025));
    }

    #[test]
    fn frames_survive_every_chunk_size() {
        let mut wire = Vec::new();
        for payload in [&b""[..], b"a", b"hello", &[7u8; 300]] {
            wire.extend(frame(payload));
        }
        let mut readers = vec![Trickle::growing(&wire)];
        readers.extend((1..=wire.len()).map(|chunk| Trickle::chunks(&wire, chunk)));
        for mut r in readers {
            for want in [&b""[..], b"a", b"hello", &[7u8; 300]] {
                let got = read_frame(&mut r, MAX).unwrap().unwrap();
                same(&got, want, "a frame read through a Trickle");
            }
            assert_eq!(read_frame(&mut r, MAX).unwrap(), None);
        }
    }

    #[test]
    fn a_stream_cut_inside_the_header_is_unexpected_eof() {
        let wire = frame(b"hello");
        assert_eq!(
            read_len(&mut Trickle::growing(&wire[..0]), MAX).unwrap(),
            None
        );
        for cut in 1..4 {
            let err = refused(
                read_len(&mut Trickle::growing(&wire[..cut]), MAX),
                &format!("a header cut after {cut} bytes"),
            );
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }

    /// Checked on the header alone: nothing is allocated or read for these lengths.
    #[test]
    fn negative_and_oversized_lengths_are_refused() {
        for bad in [-1i32, i32::MIN, i32::MAX, MAX as i32 + 1] {
            let header = bad.to_le_bytes();
            let err = refused(
                read_len(&mut Trickle::growing(&header), MAX),
                &format!("length {bad}"),
            );
            assert_eq!(err.kind(), ErrorKind::InvalidData, "length {bad}");
        }
        let at_limit = (MAX as i32).to_le_bytes();
        assert_eq!(
            read_len(&mut Trickle::growing(&at_limit), MAX).unwrap(),
            Some(MAX)
        );
    }

    /// A real peer sends lesson 03's `seq 1 1000` output as one frame, in pieces of 1, 2, 3 …
    /// bytes, then a frame that announces -1.
    #[test]
    fn over_a_real_socket() {
        let seq: Vec<u8> = (1..=1000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let wire = frame(&seq);
        let peer = thread::spawn(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            sock.set_nodelay(true).unwrap();
            let (mut at, mut size) = (0, 1);
            while at < wire.len() {
                let end = (at + size).min(wire.len());
                sock.write_all(&wire[at..end]).unwrap();
                (at, size) = (end, size + 1);
            }
            sock.write_all(&(-1i32).to_le_bytes()).unwrap();
        });
        let (mut sock, _) = listener.accept().unwrap();
        let got = read_frame(&mut sock, MAX).unwrap().unwrap();
        same(&got, &seq, "seq 1 1000 in one frame over a socket");
        let err = refused(read_frame(&mut sock, MAX), "length -1 from a real peer");
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        peer.join().unwrap();
    }
}
