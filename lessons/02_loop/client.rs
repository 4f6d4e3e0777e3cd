//! Lesson 02, client: the notes' section 2.1 (通信循环及代码优化 客户端).
//!
//! Reads lines from stdin, sends each to the server, prints the reply (the line plus `123`).
//! Empty lines are skipped (the notes' step 1); end of input (Ctrl-D, or Ctrl-Z then Enter on
//! Windows) ends the client with status 0.
//!
//! ```text
//! cargo run --bin lesson02-server                 # terminal 1
//! cargo run --bin lesson02-client                 # terminal 2
//! printf 'hello\n你好\n' | cargo run --bin lesson02-client   # scripted: no prompt
//! ```
//!
//! Watch for: stop the server while the client runs, then type a line: the client says the
//! server went away and exits with status 1, where the notes' client crashes with a traceback.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context, Result};
use clap::Parser;
use socket_lessons::{cli, console::terminal_safe, input::Input, wire::Traced};

/// Lesson 02 client: send each input line, print the reply.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;

    // `client = socket.socket()` + `client.connect((ip, 8080))`.
    let sock = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    let mut sock = Traced::new(sock, args.common.trace);

    let mut input = Input::new();
    let mut buf = [0u8; 1024];
    // The communication loop (通信循环, the section's title): talk until the input ends.
    // `speak = input('输入想说的话>>>:').strip()`: the prompt appears on a terminal only;
    // `None` is end of input, the clean way out (the notes' loop has none).
    while let Some(speak) = input.line("输入想说的话>>>:")? {
        // Step 1 (客户端校验消息不能为空): `if len(speak) == 0: continue`. Sending zero bytes
        // sends nothing at all: the server would never see a message and the client would
        // wait for a reply forever.
        if speak.is_empty() {
            continue;
        }

        // `client.send(speak.encode('utf8'))`: text becomes bytes before it goes on the wire.
        sock.write_all(speak.as_bytes())
            .context("the server went away (sending)")?;

        // `data = client.recv(1024)`: one read for one reply, as in the notes. Type a line of
        // more than 1021 bytes and its reply no longer fits one read: the rest of it is printed
        // as the "reply" to your next line. That is 黏包, lesson 03's topic.
        let n = sock
            .read(&mut buf)
            .context("the server went away (receiving)")?;
        if n == 0 {
            // Ok(0): the server closed the connection. No reply will ever come.
            bail!("the server closed the connection");
        }
        // `print(data.decode('utf8'))`, with what a terminal would obey or hide escaped.
        println!("{}", terminal_safe(&String::from_utf8_lossy(&buf[..n])));
    }
    Ok(())
}
