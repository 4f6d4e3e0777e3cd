//! Lesson 03, client: the notes' section 3 (黏包问题), the naive remote-command client.
//!
//! Sends each input line as a command and prints the answer, which it reads the way the notes
//! do: one `read` of at most 1024 bytes. An answer longer than that is only partly read; the
//! rest waits in the socket and comes out as the "answer" to the next command (黏包). Broken
//! on purpose; lesson 04 is the fix.
//!
//! ```text
//! cargo run --bin lesson03-server                          # terminal 1
//! cargo run --bin lesson03-client -- --trace               # terminal 2
//! 输入cmd命令>>>:seq 1 1000                                 # 1 to 283: one read, 1024 bytes
//! 输入cmd命令>>>:echo hi                                    # not "hi": 284 to 539, the rest of seq
//!
//! cargo run --bin lesson03-client -- --demo three-writes   # against --demo three-writes
//! ```
//!
//! Watch for: with `--trace`, every answer is one `read` of at most 1024 bytes, and the bytes
//! of `echo hi` (`hi`) come only after all 3893 bytes of `seq 1 1000` have been read, several
//! commands later. Output is decoded as UTF-8, or GBK when it is not UTF-8 (a Chinese Windows
//! server); `--encoding` forces one. Characters a terminal would obey (`\x1b`, `\x07`) or
//! that hide or reorder text (`\u202e`) are printed escaped: a server is not trusted with it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use socket_lessons::console::{decode_output, terminal_safe, OutputEncoding};
use socket_lessons::{cli, input::Input, wire::Traced};

/// Lesson 03 client: send each input line as a command, print one read of the answer.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// How to decode the output: auto tries UTF-8, then GBK
    #[arg(long, value_enum, default_value_t = OutputEncoding::Auto)]
    encoding: OutputEncoding,

    /// Instead of sending commands, show one of the notes' demos (see the README)
    #[arg(long, value_enum)]
    demo: Option<Demo>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Demo {
    /// Write 123, 456, 789 as three writes; the server reads them with one read
    ThreeWrites,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;

    // `client = socket.socket()` + `client.connect((ip, 8080))`.
    let sock = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    if let Some(Demo::ThreeWrites) = args.demo {
        return three_writes(sock, args.common.trace);
    }
    let mut sock = Traced::new(sock, args.common.trace);

    let mut input = Input::new();
    let mut buf = [0u8; 1024];
    // The communication loop: `speak = input('输入cmd命令>>>:').strip()` until input ends.
    while let Some(speak) = input.line("输入cmd命令>>>:")? {
        // `if len(speak) == 0: continue`: an empty write sends nothing, and we would wait
        // for an answer to a command the server never saw.
        if speak.is_empty() {
            continue;
        }

        // `client.send(speak.encode('gbk'))` in the notes; UTF-8 here, like their 3.2 and 3.3
        // clients. The server decodes either.
        sock.write_all(speak.as_bytes())
            .context("the server went away (sending)")?;

        // `data = client.recv(1024)`.
        // BUG (on purpose): one read for an answer of unknown size. It returns what has
        // arrived so far, at most 1024 bytes; the rest of a longer answer stays in the socket
        // and is read as the answer to the next command. Lesson 04 reads a 4-byte length
        // header (报头) first, then exactly that many bytes.
        let n = sock
            .read(&mut buf)
            .context("the server went away (receiving)")?;
        if n == 0 {
            // Ok(0): the server closed the connection; no answer will come.
            bail!("the server closed the connection");
        }

        // `print(data.decode('gbk'))`: the notes decode as GBK here and as UTF-8 elsewhere
        // (bug 9); `decode_output` (src/console.rs) tries UTF-8, then GBK. A read that stops
        // mid-character shows U+FFFD (�) there: one more sign that 1024 bytes is not a message.
        // Escaped where a terminal would obey them (`\x1b[2J` clears the screen) or they
        // hide text (`\u202e`): a server is not to be trusted with our terminal.
        println!(
            "{}",
            terminal_safe(&decode_output(&buf[..n], args.encoding))
        );
    }
    Ok(())
}

/// The notes' 123/456/789 demo, client side: three writes, then wait for the server's report.
fn three_writes(sock: TcpStream, trace: bool) -> Result<()> {
    // No Nagle: each write goes out as a TCP segment of its own at once, so the demo shows
    // that even three separate packets are read as one when they wait in the receive buffer.
    sock.set_nodelay(true).context("setting TCP_NODELAY")?;
    let mut sock = Traced::new(sock, trace);
    // `client.send(b'123')`, `client.send(b'456')`, `client.send(b'789')`.
    for part in [b"123", b"456", b"789"] {
        sock.write_all(part).context("sending")?;
        println!(
            "wrote {} bytes: {}",
            part.len(),
            String::from_utf8_lossy(part)
        );
    }
    // Half-close: "I have finished sending". The server's read after the 9 bytes then returns
    // 0 (end of stream), and we can still read its report.
    sock.get_ref()
        .shutdown(Shutdown::Write)
        .context("shutting down the sending side")?;
    let mut report = Vec::new();
    sock.read_to_end(&mut report)
        .context("reading the report")?;
    print!(
        "server says:\n{}",
        terminal_safe(&String::from_utf8_lossy(&report))
    );
    Ok(())
}
