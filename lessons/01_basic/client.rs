//! Lesson 01, client: the notes' section 1.1 (简易版代码 客户端).
//!
//! Connect, say `I am from client!`, read one reply, print it, hang up.
//!
//! ```text
//! cargo run --bin lesson01-server      # terminal 1, first: a call needs someone to answer
//! cargo run --bin lesson01-client      # terminal 2
//! ```
//!
//! Watch for: `I AM FROM SERVER!` here, `I am from client!` on the server. Start the client
//! with no server running and you get "connection refused": nobody answers that number.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{Context, Result};
use clap::Parser;
use socket_lessons::{cli, console::terminal_safe, wire::Traced};

/// Lesson 01 client: send one message, print the reply (notes 1.1).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;

    // 1. Buy a phone and 2. dial: `client = socket.socket()` + `client.connect((ip, 8080))`.
    //    `TcpStream::connect` does both. It returns once the three-way handshake is done, or
    //    fails at once with "connection refused" when nothing listens on that port.
    let sock = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    let mut sock = Traced::new(sock, args.common.trace);

    // 3. Say something: `client.send(b'I am from client!')`. `write_all`, not `write`: a
    //    single write may take only part of the bytes (see the server's step 6).
    sock.write_all(b"I am from client!")
        .context("sending to the server")?;

    // 4. Listen for the answer: `data = client.recv(1024)`. One read, as in the notes; it can
    //    in principle return only part of the reply (lesson 03 is about exactly that).
    let mut buf = [0u8; 1024];
    let n = sock.read(&mut buf).context("reading the reply")?;
    if n == 0 {
        // Ok(0): the server closed the connection without answering.
        anyhow::bail!("the server closed the connection without a reply");
    }
    // `print(data)`: the server's text, with what a terminal would obey or hide escaped.
    println!("{}", terminal_safe(&String::from_utf8_lossy(&buf[..n])));

    // 5. Hang up: `client.close()`. Dropping the stream closes it.
    Ok(())
}
