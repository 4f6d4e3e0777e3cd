//! Exercise 4, lesson 03 to lesson 04 (notes 3 to 3.2): turn the broken client into a fixed one.
//! 练习 4，从第 03 课到第 04 课（笔记 3 到 3.2）：把有 bug 的客户端改好。
//!
//! `ask` is lesson 03's client: it sends a command and reads its answer with one
//! `read(1024)`. In lesson 03 that is the bug (黏包): a longer answer is cut, and its rest
//! comes out as the answer to the next command. The server here is lesson 04's with
//! `--header fixed` (notes 3.2): before each answer it sends the answer's length as
//! `struct.pack('i', n)`, 4 bytes, little-endian, signed. Make `ask` read that header, check
//! it (not negative, at most `max`), then read exactly that many bytes.
//!
//! The tests run a stand-in for lesson 04's server on 127.0.0.1, which sends its bytes in
//! pieces of 1, 2, 3 …, and ask it lesson 03's sequence: `seq 1 1000`, then `echo hi`.
//!
//! `ask` 是第 03 课的客户端：发出一条命令，用一次 `read(1024)` 读它的回答。在第 03 课里，这正是
//! bug（黏包）：长一点的回答被截断，剩下的部分会被当成下一条命令的回答打印出来。这里的服务端是
//! 带 `--header fixed` 的第 04 课服务端（笔记 3.2）：每个回答之前，先用 `struct.pack('i', n)`
//! 发送回答的长度，4 个字节，小端序，有符号。让 `ask` 先读这个报头，检查它（不是负数，不超过
//! `max`），再正好读那么多字节。
//!
//! 测试在 127.0.0.1 上运行一个代替第 04 课服务端的程序，它按 1、2、3……个字节一段一段地发；
//! 测试向它发出第 03 课的那一串命令：先 `seq 1 1000`，再 `echo hi`。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// The largest answer we accept, in bytes.
const MAX: usize = 16 * 1024 * 1024;

/// Sends `command` and returns its whole answer.
///
/// Errors: `InvalidData` when the header announces a negative length or more than `max`;
/// `UnexpectedEof` when the server closes in the middle of a header or an answer.
fn ask(sock: &mut TcpStream, command: &str, max: usize) -> io::Result<Vec<u8>> {
    sock.write_all(command.as_bytes())?;
    // TODO: lesson 03's `data = client.recv(1024)`: one read, at most 1024 bytes, for an
    // answer of unknown size (and here the answer starts with a 4-byte header). Read the
    // header, check the length against 0 and `max`, then read exactly that many bytes.
    // TODO（中文）：这是第 03 课的 `data = client.recv(1024)`：为一个不知道多长的回答只读一次，
    // 最多 1024 个字节（而这里的回答还以 4 字节报头开头）。先读报头，检查长度不小于 0、不超过
    // `max`，再正好读那么多字节。
    let mut buf = [0u8; 1024];
    let n = sock.read(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// What `seq 1 1000` prints: "1\n2\n…1000\n", 3893 bytes.
fn seq_1_1000() -> Vec<u8> {
    (1..=1000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

/// A stand-in for lesson 04's server (`--header fixed`): for each command it reads (one read,
/// as the lessons' servers do), it sends what `answer` returns, in pieces of 1, 2, 3 … bytes,
/// each sent at once. `None` from `answer` closes the connection.
fn fake_server(answer: fn(&str) -> Option<Vec<u8>>) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_nodelay(true).unwrap();
        let mut buf = [0u8; 1024];
        loop {
            let n = sock.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            let Some(wire) = answer(&String::from_utf8_lossy(&buf[..n])) else {
                return;
            };
            let (mut at, mut size) = (0, 1);
            while at < wire.len() {
                let end = (at + size).min(wire.len());
                if sock.write_all(&wire[at..end]).is_err() {
                    return;
                }
                (at, size) = (end, size + 1);
            }
        }
    });
    (addr, handle)
}

/// `struct.pack('i', len(output)) + output`, as lesson 04's server sends an answer.
fn framed(output: &[u8]) -> Vec<u8> {
    let mut wire = (output.len() as i32).to_le_bytes().to_vec();
    wire.extend_from_slice(output);
    wire
}

/// The outputs the stand-in server knows.
fn outputs(command: &str) -> Option<Vec<u8>> {
    match command {
        "seq 1 1000" => Some(framed(&seq_1_1000())),
        "echo hi" => Some(framed(b"hi\n")),
        _ => None,
    }
}

fn main() -> io::Result<()> {
    let (addr, server) = fake_server(outputs);
    let mut sock = TcpStream::connect(addr)?;
    for command in ["seq 1 1000", "echo hi"] {
        let answer = ask(&mut sock, command, MAX)?;
        let text = String::from_utf8_lossy(&answer);
        let last = text.lines().last().unwrap_or("");
        println!("{command}: {} bytes, last line {last:?}", answer.len());
    }
    drop(sock);
    server.join().expect("the server thread panicked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// Lesson 03's sequence. There the answer printed for `echo hi` is the rest of `seq`;
    /// here each command gets its own answer, whole.
    #[test]
    fn the_sequence_that_breaks_lesson03_comes_out_right() {
        let (addr, server) = fake_server(outputs);
        let mut sock = TcpStream::connect(addr).unwrap();
        let seq = ask(&mut sock, "seq 1 1000", MAX).unwrap();
        same(&seq, &seq_1_1000(), "the answer to `seq 1 1000`");
        let hi = ask(&mut sock, "echo hi", MAX).unwrap();
        same(&hi, b"hi\n", "the answer to `echo hi`");
        drop(sock);
        server.join().unwrap();
    }

    /// Lesson 04's sizes around `read(1024)`, and 1 MiB; each answer a different letter.
    #[test]
    fn answers_of_every_edge_size_arrive_whole() {
        fn letters(command: &str) -> Option<Vec<u8>> {
            let (size, letter) = command.split_once(' ')?;
            Some(framed(&vec![letter.as_bytes()[0]; size.parse().ok()?]))
        }
        let (addr, server) = fake_server(letters);
        let mut sock = TcpStream::connect(addr).unwrap();
        for (size, letter) in [
            (0, 'a'),
            (1, 'b'),
            (1023, 'c'),
            (1024, 'd'),
            (1025, 'e'),
            (1 << 20, 'f'),
        ] {
            let answer = ask(&mut sock, &format!("{size} {letter}"), MAX).unwrap();
            assert_eq!(answer.len(), size, "answer {letter}");
            assert!(answer.iter().all(|&b| b == letter as u8), "answer {letter}");
        }
        drop(sock);
        server.join().unwrap();
    }

    /// A header that lies is refused before anything is allocated or read.
    #[test]
    fn negative_and_oversized_lengths_are_invalid_data() {
        fn liar(command: &str) -> Option<Vec<u8>> {
            let n: i32 = command.parse().ok()?;
            Some(n.to_le_bytes().to_vec())
        }
        for n in [-1, i32::MIN, i32::MAX, MAX as i32 + 1] {
            let (addr, server) = fake_server(liar);
            let mut sock = TcpStream::connect(addr).unwrap();
            let err = match ask(&mut sock, &n.to_string(), MAX) {
                Err(e) => e,
                Ok(a) => panic!("header {n}: must be an error, got Ok({} bytes)", a.len()),
            };
            assert_eq!(err.kind(), ErrorKind::InvalidData, "length {n}");
            drop(sock);
            server.join().unwrap();
        }
    }

    /// The server goes away in the middle of the header, or of the answer.
    #[test]
    fn a_server_that_closes_mid_answer_is_unexpected_eof() {
        fn cut(command: &str) -> Option<Vec<u8>> {
            let wire = framed(b"hello");
            Some(wire[..command.parse::<usize>().ok()?].to_vec())
        }
        for at in [1, 3, 4, 8] {
            let (addr, server) = fake_server(cut);
            let mut sock = TcpStream::connect(addr).unwrap();
            sock.write_all(at.to_string().as_bytes()).unwrap();
            // The stand-in sends `at` bytes of the frame, then closes when we send nothing more.
            let err = ask_after_sent(&mut sock);
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut at {at}");
            server.join().unwrap();
        }
    }

    /// `ask` with an empty command: sends nothing more, reads the answer to what was sent.
    fn ask_after_sent(sock: &mut TcpStream) -> io::Error {
        sock.shutdown(std::net::Shutdown::Write).unwrap();
        match ask(sock, "", MAX) {
            Err(e) => e,
            Ok(a) => panic!(
                "the server closed mid-answer, yet got Ok({} bytes)",
                a.len()
            ),
        }
    }
}
