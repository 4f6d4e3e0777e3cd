//! Lesson 01, server: the notes' section 1.2 (简易版代码 服务端).
//!
//! One client, one message, one reply, then the server exits. The notes explain a socket
//! server as a telephone: buy a phone (`socket()`), get a number (`bind`), switch it on and
//! wait (`listen`), pick up a call (`accept`), listen and talk (`recv`/`send`), hang up
//! (`close`). Each step below is marked with the notes' number.
//!
//! Run it (terminal 1), then the client (terminal 2):
//!
//! ```text
//! cargo run --bin lesson01-server
//! cargo run --bin lesson01-client
//! ```
//!
//! Watch for: the server prints what the client said, the client prints `I AM FROM SERVER!`,
//! and both exit. Run the server again at once: it binds without "address in use" (see the
//! comment at `bind`). Add `--trace` to either side to see each socket call's bytes. A client
//! that connects and says nothing is given up on after `--idle-timeout` (300 s), not waited
//! for forever.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use socket_lessons::{announce, cli, console::terminal_safe, is_timeout, log, wire::Traced};

/// Lesson 01 server: accept one client, read once, reply, exit (notes 1.2).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Seconds the client may stay silent before the server gives up on it
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;

    // 1. Buy a phone and 2. get a number: `socket.socket()` + `server.bind((ip, 8080))`.
    //    Rust's `TcpListener::bind` does socket(), bind() and 3. listen() in one call. Two things
    //    it does that the notes do by hand: on Unix it sets SO_REUSEADDR before bind (so a
    //    restarted server does not hit "address already in use"), and it listens with a
    //    backlog of 128, not the notes' 5. Lesson 02 makes both explicit with socket2.
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    announce(listener.local_addr()?)?;

    // 4. Wait for a call and pick up: `sock, address = server.accept()`.
    //    accept() blocks until a client has completed the TCP three-way handshake (三次握手),
    //    then returns a *new* socket for talking to that one client; `listener` keeps the number.
    let (sock, address) = listener.accept().context("accept failed")?;
    // Not in the notes: who called. `log!` is `println!` that does not panic when nobody reads
    // our output any more (`lesson01-server | head -1`): the line is lost (src/lib.rs).
    log!("connection from {address}");
    // Not in the notes: a bound on the wait below. Without it, a client that connects and
    // says nothing keeps this server waiting in recv() forever. 300 s by default: the notes'
    // client speaks at once, and a learner typing by hand (`nc`) has time to think.
    sock.set_read_timeout(Some(args.idle_timeout))
        .context("setting the read timeout")?;
    let mut sock = Traced::labelled(sock, args.common.trace, address);

    // 5. Listen: `data = sock.recv(1024)`: at most 1024 bytes, *whatever has arrived so far*.
    //    TCP is a byte stream, not a message service: one read can return fewer bytes than the
    //    client sent, if they have not all arrived yet. For 17 bytes on one machine they always
    //    have; lesson 03 shows what happens when they have not. `Ok(0)` would mean the client
    //    hung up without saying anything; a timeout, that it said nothing for too long.
    let mut buf = [0u8; 1024];
    let n = match sock.read(&mut buf) {
        Err(e) if is_timeout(&e) => {
            log!("{address} dropped: silent for longer than --idle-timeout");
            return Ok(());
        }
        result => result.context("reading from the client")?,
    };
    if n == 0 {
        log!("the client hung up without a word");
        return Ok(());
    }
    // `print(data)`: the peer's text, with what a terminal would obey or hide escaped.
    log!("{}", terminal_safe(&String::from_utf8_lossy(&buf[..n])));

    // 6. Talk back: `sock.send(b'I AM FROM SERVER!')`.
    //    Python's `send` (and Rust's `write`) may write only part of the buffer and return how
    //    much it took; `write_all` loops until every byte is handed to the kernel.
    sock.write_all(b"I AM FROM SERVER!")
        .context("replying to the client")?;

    // 7. Hang up: `sock.close()`. Dropping the socket closes it; the client's next read then
    //    returns 0 bytes, which is how TCP says "the other side is done" (四次挥手 starts here).
    drop(sock);

    // 8. Switch the phone off: `server.close()`. The listener closes when dropped, too.
    drop(listener);
    Ok(())
}
