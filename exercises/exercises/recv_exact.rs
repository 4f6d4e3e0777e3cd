//! Exercise 2, lessons 03 and 04 (notes 3.2, 黏包): one read may return fewer bytes than asked.
//! 练习 2，第 03、04 课（笔记 3.2，黏包）：一次读取可能比要的少。
//!
//! The notes read an answer of `n` bytes with one `client.recv(n)`. That works only when all
//! `n` bytes happen to have arrived: a read returns what is there, at least 1 byte and at most
//! as many as asked. `recv_exact` must keep reading until it has exactly `n` bytes, and say so
//! when the stream ends first.
//!
//! `main` may well work as shipped: on one machine the bytes often arrive all at once. The
//! tests do not leave that to luck. They use lesson 03's own input, the output of
//! `seq 1 1000` (3893 bytes, made here in Rust so it works on Windows too), sent by a peer over
//! 127.0.0.1 and handed out by a reader that gives 1, then 2, then 3 … bytes per call, as a
//! slow network may.
//!
//! 笔记用一次 `client.recv(n)` 读一个 `n` 字节的回答。只有 `n` 个字节恰好都已经到了，这样才行：
//! 一次读取只返回已经到了的字节，至少 1 个，至多要的那么多。`recv_exact` 要一直读，直到正好凑满
//! `n` 个字节；数据流提前结束了，就要报错说出来。
//!
//! 原样运行 `main` 多半没问题：在同一台机器上，字节常常一下子全到。测试可不靠运气：它们用第 03 课
//! 自己的输入，`seq 1 1000` 的输出（3893 个字节，这里用 Rust 生成，Windows 上也能跑），由对端通过
//! 127.0.0.1 发来，再由一个每次只给 1 个、2 个、3 个……字节的读取器交给你，就像慢速网络那样。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// Reads exactly `n` bytes from `r`. If the stream ends before `n` bytes, the error is of kind
/// `UnexpectedEof`.
fn recv_exact(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    // TODO: this is the notes' `data = client.recv(n)`: one read, trusted to return n bytes.
    // A read returns whatever has arrived (at least 1 byte, at most `n`), or 0 at the end of
    // the stream. Keep reading into the rest of `buf` until all `n` bytes are there.
    // TODO（中文）：这是笔记的 `data = client.recv(n)`：读一次，就相信它返回了 n 个字节。一次
    // 读取返回的是已经到了的字节（至少 1 个，至多 `n` 个），数据流结束时返回 0。往 `buf` 还空着的
    // 部分接着读，直到 `n` 个字节全部到齐。
    let got = r.read(&mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// What `seq 1 1000` prints: "1\n2\n…1000\n", 3893 bytes.
fn seq_1_1000() -> Vec<u8> {
    (1..=1000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let peer = thread::spawn(move || -> io::Result<()> {
        let mut sock = TcpStream::connect(addr)?;
        sock.write_all(&seq_1_1000())
    });
    let (mut sock, _) = listener.accept()?;
    let answer = recv_exact(&mut sock, 3893)?;
    peer.join().expect("the peer thread panicked")?;
    let text = String::from_utf8_lossy(&answer);
    println!(
        "got {} bytes: {:?} … {:?}",
        answer.len(),
        &text[..8],
        &text[text.len() - 8..]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out 1 byte, then 2, then 3 … per call; `interrupted()` makes its
    /// first call fail with `Interrupted`, as a read does when a signal arrives.
    struct Trickle<'a> {
        data: &'a [u8],
        next: usize,
    }

    impl<'a> Trickle<'a> {
        fn new(data: &'a [u8]) -> Self {
            Trickle { data, next: 1 }
        }
        fn interrupted(data: &'a [u8]) -> Self {
            Trickle { data, next: 0 }
        }
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.next == 0 {
                self.next = 1;
                return Err(io::Error::new(ErrorKind::Interrupted, "a signal arrived"));
            }
            let n = self.next.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.next += 1;
            Ok(n)
        }
    }

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// What `recv_exact` returns, or a panic that says what went wrong.
    fn exactly(r: &mut impl Read, n: usize) -> Vec<u8> {
        recv_exact(r, n).unwrap_or_else(|e| panic!("recv_exact(r, {n}) failed: {e}"))
    }

    #[test]
    fn seq_output_handed_out_1_2_3_bytes_at_a_time_is_read_whole() {
        let seq = seq_1_1000();
        assert_eq!(seq.len(), 3893);
        same(
            &exactly(&mut Trickle::new(&seq), 3893),
            &seq,
            "seq 1 1000, 1 2 3 … bytes a read",
        );
    }

    /// A signal may interrupt a read before it got any byte: that read is simply asked again.
    #[test]
    fn an_interrupted_read_is_asked_again() {
        same(
            &exactly(&mut Trickle::interrupted(b"hello"), 5),
            b"hello",
            "hello",
        );
    }

    /// Lesson 03's `recv(1024)`, then the rest: the two pieces are exactly the two halves.
    #[test]
    fn two_reads_split_the_stream_exactly_where_asked() {
        let seq = seq_1_1000();
        let mut r = Trickle::new(&seq);
        same(&exactly(&mut r, 1024), &seq[..1024], "the first 1024 bytes");
        same(&exactly(&mut r, 3893 - 1024), &seq[1024..], "the rest");
        same(&exactly(&mut r, 0), b"", "0 bytes");
    }

    #[test]
    fn a_stream_cut_anywhere_before_n_bytes_is_unexpected_eof() {
        let data = b"hello, world";
        for cut in 0..data.len() {
            match recv_exact(&mut Trickle::new(&data[..cut]), data.len()) {
                Err(e) => assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "cut at {cut}"),
                Ok(got) => panic!(
                    "cut at {cut}: the stream ended, yet got Ok({} bytes)",
                    got.len()
                ),
            }
        }
    }

    /// A real peer writes the output in pieces of 1, 2, 3 … bytes, each sent at once.
    #[test]
    fn seq_output_over_a_real_socket_is_read_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            sock.set_nodelay(true).unwrap();
            let seq = seq_1_1000();
            let (mut at, mut size) = (0, 1);
            while at < seq.len() {
                let end = (at + size).min(seq.len());
                sock.write_all(&seq[at..end]).unwrap();
                (at, size) = (end, size + 1);
            }
        });
        let (mut sock, _) = listener.accept().unwrap();
        same(
            &exactly(&mut sock, 3893),
            &seq_1_1000(),
            "seq 1 1000 over a socket",
        );
        peer.join().unwrap();
    }

    /// The peer sends 10 bytes and closes: 20 bytes can never come.
    #[test]
    fn a_peer_that_closes_early_is_unexpected_eof() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            sock.write_all(b"0123456789").unwrap();
        });
        let (mut sock, _) = listener.accept().unwrap();
        peer.join().unwrap();
        match recv_exact(&mut sock, 20) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::UnexpectedEof),
            Ok(got) => panic!(
                "the peer sent 10 bytes and left, yet got Ok({} bytes)",
                got.len()
            ),
        }
    }
}
