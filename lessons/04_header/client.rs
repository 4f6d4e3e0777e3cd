//! Lesson 04, client: the notes' sections 3.2 (简易版本报头) and 3.3 (字典报头), the fix for 黏包.
//!
//! Like lesson 03's client, but every answer is read whole: first the header (报头), which says
//! how many bytes the output has, then exactly that many bytes, however the network cuts them
//! up. The same command sequence that broke lesson 03 (`seq 1 1000`, then `echo hi`) now gives
//! each command its own answer.
//!
//! ```text
//! cargo run --bin lesson04-server                          # terminal 1
//! cargo run --bin lesson04-client -- --trace               # terminal 2
//! 输入cmd命令>>>:seq 1 1000                                 # all of 1..1000
//! 输入cmd命令>>>:echo hi                                    # hi
//! cargo run --bin lesson04-client -- --header fixed        # against a --header fixed server
//! ```
//!
//! Watch for: with `--trace`, `read 4 bytes` (the header), then reads until the announced size
//! is complete: `read_exact` loops over short reads, where the notes' `recv(n)` trusts one
//! call to return n bytes (bug 5). The header's numbers are checked before anything is
//! allocated (bug 6): a negative length, a JSON header over 64 KiB or an output over
//! `--max-size` ends the client with the reason and a non-zero status. The JSON header is
//! printed on stderr, like the notes' `print(real_dict)`, so stdout holds only the outputs.

// Lesson 04's framing, under the one name every lesson that uses it gives it (05, 07 too).
#[path = "protocol.rs"]
mod framing;

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Deserialize;
use socket_lessons::console::{decode_output, terminal_safe, OutputEncoding};
use socket_lessons::{cli, input::Input, wire::Traced};

/// Lesson 04 client: send each input line as a command, read the header, then the whole answer.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Which header (报头) the server sends; must match the server's --header
    #[arg(long, value_enum, default_value_t = Header::Json)]
    header: Header,

    /// The largest answer accepted, in bytes; a header announcing more ends the client
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    max_size: usize,

    /// How to decode the output: auto tries UTF-8, then GBK
    #[arg(long, value_enum, default_value_t = OutputEncoding::Auto)]
    encoding: OutputEncoding,
}

#[derive(Clone, Copy, ValueEnum)]
enum Header {
    /// 3.2: the output's length as 4 bytes, struct.pack('i', n)
    Fixed,
    /// 3.3: the 4-byte length of a JSON dict with "size", the dict, then the output
    Json,
}

/// The notes' 3.3 dict. Only `size` is needed (`real_dict.get('size')`); `desc` and `info`
/// are shown if present. A signed number, so that a negative size gets a clear message.
#[derive(Deserialize, Debug)]
struct ReplyHeader {
    size: i64,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;

    // `client = socket.socket()` + `client.connect((ip, 8080))`.
    let sock = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    let mut sock = Traced::new(sock, args.common.trace);

    let mut input = Input::new();
    while let Some(speak) = input.line("输入cmd命令>>>:")? {
        if speak.is_empty() {
            continue;
        }
        // `client.send(speak.encode('utf8'))`.
        sock.write_all(speak.as_bytes())
            .context("the server went away (sending)")?;

        // 1-3: read the header and learn how many bytes the answer has. `None` from either
        // reader: the stream ended cleanly where a header should start.
        let size = match args.header {
            Header::Fixed => {
                // 3.2: `recv_first = client.recv(4)`, `struct.unpack('i', recv_first)[0]`.
                // read_len reads exactly 4 bytes (looping over short reads), refuses a
                // negative length or one over --max-size, before anything is allocated.
                let Some(size) = framing::read_len(&mut sock, args.max_size).context(BAD_HEADER)?
                else {
                    bail!("the server closed the connection");
                };
                size
            }
            Header::Json => {
                // 3.3: `recv(4)` + `unpack`, `recv(dict_length)`, `json.loads`. The JSON
                // header is capped at 64 KiB before it is read.
                let Some(header) =
                    framing::read_json_header::<ReplyHeader>(&mut sock).context(BAD_HEADER)?
                else {
                    bail!("the server closed the connection");
                };
                checked_size(header, args.max_size)?
            }
        };

        // `data_bytes = client.recv(data_length)`: one recv may return less (bug 5).
        // read_exact reads until it has all `size` bytes, or fails if the stream ends first.
        // `size` was checked against --max-size above, so this allocation is bounded.
        let mut output = vec![0u8; size];
        sock.read_exact(&mut output)
            .with_context(|| format!("the server went away in the middle of {size} bytes"))?;

        // `print(data_bytes.decode('gbk'))`: UTF-8, or GBK when it is not UTF-8 (bug 9),
        // escaped where a terminal would obey or hide it, as in lesson 03.
        println!("{}", terminal_safe(&decode_output(&output, args.encoding)));
    }
    Ok(())
}

/// What a header error says. The first thing to check: a client reading `--header json` from a
/// `--header fixed` server (or the other way round) reads output bytes as a header.
const BAD_HEADER: &str = "bad header from the server (do both sides use the same --header?)";

/// The size a JSON header announces, checked: not negative, not over `max`.
fn checked_size(header: ReplyHeader, max: usize) -> Result<usize> {
    // `print(real_dict)`: on stderr, so that stdout carries only the command outputs.
    eprintln!(
        "header: size {}, desc {:?}, info {:?}",
        header.size,
        header.desc.as_deref().unwrap_or(""),
        header.info.as_deref().unwrap_or("")
    );
    let size = usize::try_from(header.size).map_err(|_| {
        anyhow::anyhow!("bad header from the server: negative size {}", header.size)
    })?;
    if size > max {
        bail!("bad header from the server: size {size} is over --max-size {max}");
    }
    Ok(size)
}
