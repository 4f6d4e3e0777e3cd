//! Lesson 06, server (beyond the notes): UDP, the 数据报协议 (datagram protocol).
//!
//! The notes' review says TCP is a reliable 流式协议 (stream protocol, "like a phone call") and
//! UDP an unreliable 数据报协议 (datagram protocol, "like a text message"), then only ever use
//! TCP. This is lesson 02's echo server (reply = the message + `123`) over UDP, so the two files
//! read side by side. What disappears: `listen`, `accept`, the connection, the connection loop
//! (链接循环), end of stream. What appears: every `recv_from` hands over exactly one datagram,
//! whole (no 黏包, ever) or cut to the buffer (the rest is gone), together with who sent it,
//! and a reply is a new datagram sent to that address.
//!
//! ```text
//! cargo run --bin lesson06-server                 # terminal 1
//! cargo run --bin lesson06-client                 # terminal 2: type lines, Ctrl-D to leave
//! cargo run --bin lesson06-client -- --demo three-sends   # three sends, three datagrams
//! cargo run --bin lesson06-client -- --demo oversize      # 2000 bytes into a 1024-byte buffer
//! ```
//!
//! Watch for: each line comes back with `123`, and the server names the sender of every
//! datagram (`127.0.0.1:PORT says: "..."`), because there is no connection that would remember
//! it. Start two clients: the one loop serves both, interleaved, with no accept and no thread.
//! Stop the client: the server never notices, because there is nothing to close. `--buf 8`
//! makes the cut visible with any line longer than 8 bytes.

use std::io::ErrorKind;
use std::net::UdpSocket;

use anyhow::{Context, Result};
use clap::Parser;
use socket_lessons::wire::{preview, trace_preview};
use socket_lessons::{announce, cli, log};

/// Windows' error code for "a datagram was larger than the buffer" (WSAEMSGSIZE).
const WSAEMSGSIZE: i32 = 10040;

/// Lesson 06 server: echo every datagram with "123" appended, to whoever sent it.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Receive buffer in bytes, the notes' `recvfrom(1024)`: a longer datagram is cut to it
    #[arg(long, value_name = "BYTES", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    buf: u32,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;
    let trace = args.common.trace;

    // `server = socket.socket(type=socket.SOCK_DGRAM)` + `server.bind(('127.0.0.1', 8080))`:
    // `UdpSocket::bind` does both. A UDP port is not a TCP port: lesson 02's server may hold TCP
    // 8080 while this one holds UDP 8080. No SO_REUSEADDR (lesson 02's Step 3). On TCP it lets a
    // restarted server bind while its old connections linger in TIME_WAIT; UDP has none, and a
    // restarted UDP server binds at once without it. On UDP the option does something else: it
    // lets several sockets bind the same port (on Linux each must set it, and a datagram goes
    // to one of them only; on Windows another program can take the port over). A server wants
    // its port to itself.
    let sock = UdpSocket::bind(addr).with_context(|| format!("cannot bind {addr}"))?;

    // No `server.listen(5)`: UDP has no handshake, so no queue of connections waiting to be
    // accepted (半连接池). Once bound, datagrams sent to the port queue up in the socket's
    // receive buffer. So the "listening on" line every lesson prints means "bound" here.
    announce(sock.local_addr()?)?;

    // One buffer, reused. `--buf` is the most one recv_from can hand over: whatever a datagram
    // has beyond it is thrown away by the system (see the cut below).
    let mut buf = vec![0u8; args.buf as usize];

    // No accept() and no connection loop (链接循环): one loop, one datagram per turn, from
    // whoever sent it. Two clients typing at once are simply interleaved.
    loop {
        // `msg, addr = server.recvfrom(1024)`: blocks until a datagram is queued, then hands
        // over exactly one, with its sender's address. Never two datagrams glued together
        // (the 黏包 of lesson 03 cannot happen), never half of one with the rest saved for the
        // next call.
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(pair) => pair,
            // A signal interrupted the call before any datagram arrived: just ask again.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // A datagram longer than the buffer. Linux and macOS cut it silently (see below);
            // Windows also cuts it, but reports the cut as this error, and std then cannot
            // tell us who sent it, so there is nobody to reply to. Python's `recvfrom` raises
            // `OSError: [WinError 10040]` in the same case.
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(WSAEMSGSIZE) => {
                log!(
                    "a datagram longer than {} bytes was cut, the rest is gone \
                     (Windows reports this as an error and does not say who sent it: no reply)",
                    buf.len()
                );
                continue;
            }
            // Windows only: an earlier reply went to a port where nobody listens any more (the
            // client quit), the system there answered "port unreachable", and Windows reports
            // that on our next recv_from. It is about a past datagram, not a broken socket.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                log!("an earlier reply bounced (its client is gone): {e}");
                continue;
            }
            // Nothing here belongs to "a connection" to drop: log it, keep serving.
            Err(e) => {
                log!("recv_from failed: {e}");
                continue;
            }
        };
        let msg = &buf[..n];
        if trace {
            eprintln!("recv_from {n} bytes from {peer}: {}", trace_preview(msg));
        }

        // What arrived. Three cases a TCP server does not have:
        if n == 0 {
            // Ok(0) is NOT end of stream. In lesson 02, a read of 0 bytes meant "the client
            // closed, leave the communication loop". UDP has no stream to end: this is a real
            // datagram that happens to be empty, so we answer it like any other (with "123").
            log!("{peer} says nothing: an empty datagram, still a message");
        } else if n == buf.len() {
            // The datagram filled the whole buffer. If it was longer, Linux and macOS cut it
            // here without a word and the rest is gone: the next recv_from returns the next
            // datagram, never the remainder (in TCP, lesson 03, the rest of a long answer
            // arrives in the next read). recv_from cannot tell us which it was; Python's
            // `recvfrom(1024)` cannot either.
            // Shown as a short quoted preview: a full buffer can be 64 KiB of text.
            log!(
                "{peer} says: {} (filled the {}-byte buffer: anything beyond it was cut off)",
                preview(msg),
                buf.len()
            );
        } else {
            // Quoted and escaped, as in lesson 02 (and as Python shows bytes): anyone can send
            // us a datagram, and printed raw, a newline in it would forge a log line of its
            // own and `\x1b[2J` would clear the learner's terminal. Bytes that are not UTF-8
            // show as `\xff` instead of ending the server.
            log!("{peer} says: {}", preview(msg));
        }

        // `server.sendto(msg + b'123', addr)`: the reply is a new datagram to the address the
        // message came from. No write_all here: a datagram is sent whole or not at all, so
        // send_to returns the full length or an error, never a part.
        let mut reply = msg.to_vec();
        reply.extend_from_slice(b"123");
        match sock.send_to(&reply, peer) {
            // "Sent" means handed to the system; nobody confirms it arrived. If the client is
            // gone, the reply is lost and nobody tells us (except Windows, see above).
            Ok(sent) => {
                if trace {
                    eprintln!("send_to {sent} bytes to {peer}: {}", trace_preview(&reply));
                }
            }
            // E.g. "message too long": a UDP datagram over IPv4 carries at most 65507 bytes, so
            // with `--buf 65536` the echo of a 65507-byte datagram (65510 bytes) does not fit in
            // one. A stream (TCP) has no such limit. Log it; the next datagram is served as usual.
            Err(e) => log!("cannot reply to {peer} ({} bytes): {e}", reply.len()),
        }
    }
}
