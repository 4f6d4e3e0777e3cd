//! Lesson 04, server: the notes' sections 3.2 (简易版本报头) and 3.3 (字典报头), the fix for 黏包.
//!
//! The remote-command server of lesson 03, with one change: before each answer it sends a
//! header (报头) saying how long the answer is, so the client can read exactly that many bytes
//! and no more. Two headers, as in the notes:
//!
//! - `--header fixed` (3.2): `struct.pack('i', len(res))`, 4 bytes, then the output;
//! - `--header json` (3.3, the default): the 4-byte length of a JSON dict, the dict
//!   (`{"desc": …, "size": len(res), "info": …}`), then the output.
//!
//! ```text
//! cargo run --bin lesson04-server                          # terminal 1 (json header)
//! cargo run --bin lesson04-client -- --trace               # terminal 2: seq 1 1000, echo hi
//! cargo run --bin lesson04-server -- --header fixed        # 3.2; the client needs the same
//! ```
//!
//! Watch for: with `--trace`, each answer is `write 4 bytes` (the header's length), the JSON
//! header itself (json mode only), then the output;
//! the client reads the header, then exactly the announced bytes, and `echo hi` says `hi`.
//! Commands run exactly as in lesson 03, with the same bounds (`--timeout`, `--max-output`,
//! loopback only unless `--allow-remote`, `--idle-timeout`) and the same refusal of what a web
//! page sends (an HTTP request): that code is shared, in `../03_sticky/command.rs`.

// The same command runner as lesson 03, reused on purpose: only the framing differs.
#[path = "../03_sticky/command.rs"]
mod command;
// Lesson 04's framing, under the one name every lesson that uses it gives it (05, 07 too).
#[path = "protocol.rs"]
mod framing;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use socket_lessons::{announce, cli, is_timeout, log, wire::Traced};

/// Lesson 04 server: run each message as a shell command, send back its output after a header.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    #[command(flatten)]
    limits: command::Limits,

    /// Which header (报头) goes before each answer; the client must use the same
    #[arg(long, value_enum, default_value_t = Header::Json)]
    header: Header,
}

#[derive(Clone, Copy, ValueEnum)]
enum Header {
    /// 3.2: the output's length as 4 bytes, struct.pack('i', n)
    Fixed,
    /// 3.3: the 4-byte length of a JSON dict with "size", the dict, then the output
    Json,
}

/// The notes' 3.3 dict (`data_dict`), key for key and in the same order.
#[derive(Serialize)]
struct ReplyHeader<'a> {
    desc: &'a str,
    size: usize,
    info: &'a str,
}

/// The notes' `recv(1024)` for a command, as in lesson 03.
const READ_SIZE: usize = 1024;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;
    // A remote shell listens on loopback only unless asked (bug 8), as in lesson 03.
    command::refuse_remote(addr, &args.limits);

    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    announce(listener.local_addr()?)?;

    // The connection loop: one client at a time; any client's error ends that client only.
    loop {
        let (sock, peer) = match listener.accept() {
            Ok(pair) => pair,
            // Out of file descriptors (EMFILE), accept fails at once, again and again: pause,
            // or this loop spins at full CPU. (Lesson 07 backs off and counts.)
            Err(e) => {
                log!("accept failed: {e}; trying again in 1 s");
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        log!("{peer} connected");
        match serve(sock, peer, &args) {
            Ok(()) => log!("{peer} closed the connection"),
            Err(e) => log!("{peer} dropped: {e:#}"),
        }
    }
}

/// The communication loop with one client: read a command, run it, send header + output.
fn serve(sock: TcpStream, peer: SocketAddr, args: &Args) -> Result<()> {
    // The header and the output go out as separate writes, as in the notes. With Nagle's
    // algorithm on, the second small write would wait for the client to acknowledge the
    // first, and the client delays its acknowledgements (on Linux 40 ms at least, up to 200 ms):
    // every answer would be slow. TCP_NODELAY sends each write at once.
    sock.set_nodelay(true).context("setting TCP_NODELAY")?;
    // A client silent, or not reading our answer, for --idle-timeout is dropped (lesson 03).
    command::set_idle_timeout(&sock, &args.limits)?;
    let mut sock = Traced::labelled(sock, args.common.trace, peer);
    let mut buf = [0u8; READ_SIZE];
    loop {
        // `data = sock.recv(1024)`: one read is one command, as in lesson 03 (the notes'
        // limitation: the client sends commands unframed). The answers are what we fix.
        let n = match sock.read(&mut buf) {
            // End of stream: the client has gone (the notes' `continue` would spin).
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => bail!(command::SILENT),
            Err(e) => return Err(e).context("receiving a command"),
        };
        // Not in the notes: a web page in the learner's browser can send this server an HTTP
        // request, and the shell would run its lines. Such a message is refused before
        // anything runs, and the connection closed (command.rs says how it is recognised).
        command::refuse_web_request(&mut sock, &buf[..n])?;

        let cmd = command::command_text(&buf[..n]);
        let outcome = command::run(&cmd, &args.limits);
        let res = &outcome.reply;
        match &outcome.note {
            None => log!("{peer} ran {cmd:?}: {} bytes", res.len()),
            Some(note) => log!("{peer} ran {cmd:?}: {} bytes ({note})", res.len()),
        }

        match args.header {
            Header::Fixed => {
                // 3.2: `data_first = struct.pack('i', len(res))`, `sock.send(data_first)`.
                // encode_len fails only past 2 GiB - 1; --max-output is at most 1 GiB.
                let header = framing::encode_len(res.len())?;
                sock.write_all(&header)
                    .map_err(command::unread)
                    .context("sending the header")?;
            }
            Header::Json => {
                // 3.3 step 1: `data_dict = {'desc': …, 'size': len(res), 'info': …}`.
                let dict = ReplyHeader {
                    desc: "这是非常重要的数据",
                    size: res.len(),
                    info: "视频很提神醒脑!",
                };
                // Steps 2-5: `json.dumps`, `struct.pack('i', len(data_json))`, send both.
                // json_dumps escapes non-ASCII as Python does, so the bytes are the notes'.
                framing::write_json_header(&mut sock, &dict)
                    .map_err(command::unread)
                    .context("sending the header")?;
            }
        }
        // 3.2 / 3.3 step 6: `sock.send(res)`, as write_all (a write may take only part).
        // Lesson 03's bug, fixed: the client knows from the header how many bytes follow.
        sock.write_all(res)
            .map_err(command::unread)
            .context("sending the output")?;
    }
}
