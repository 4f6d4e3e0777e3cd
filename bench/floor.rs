//! The ladder's floor: the least a server can do for lesson 02's echo (each read comes back
//! with `123` appended), to measure the lessons against. A tool for `bench/ladder.sh`, not a
//! lesson: no log, no idle timeout, no shutdown, no `--trace`; an error ends the connection
//! it happened on, silently.
//!
//! ```text
//! ladder-floor --addr 127.0.0.1:0            # tokio, one thread, a task per connection
//! ladder-floor --addr 127.0.0.1:0 --epoll    # one thread, a readiness loop (polling)
//! ladder-floor --addr 127.0.0.1:0 --log      # either, with the lessons' log line per message
//! ```
//!
//! The default is lesson 12 with everything but the echo taken out: the same runtime
//! (`current_thread`), a task per connection, the same 1,027-byte buffer in each task, one
//! `read` and one `write_all` per message. `--epoll` is lesson 11's loop taken down the same
//! way. `--log` adds the line every lesson prints per message (`ADDR says: "…"`, escaped by
//! the lessons' own `preview`), written as they write it (`println!`: one write to stdout per
//! line), to show what that line costs.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use polling::{Event, PollMode, Poller, Source};
use socket_lessons::wire::preview;
use socket_lessons::{announce, cli};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The ladder's floor: lesson 02's echo with nothing else (tokio, or --epoll).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// A readiness loop on epoll (the polling crate) instead of tokio
    #[arg(long)]
    epoll: bool,

    /// Print the lessons' log line for every message
    #[arg(long)]
    log: bool,
}

/// `recv(1024)`, with room for the `123` behind it, as lesson 12 has.
const BUF: usize = 1024 + 3;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    // std's bind: SO_REUSEADDR on Unix, a backlog of 128 (the driver keeps 5 waiting at most).
    let listener = TcpListener::bind(args.common.addr)
        .with_context(|| format!("cannot listen on {}", args.common.addr))?;
    announce(listener.local_addr()?)?;
    listener.set_nonblocking(true)?;
    match args.epoll {
        false => tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("cannot start the tokio runtime")?
            .block_on(tokio_loop(listener, args.log)),
        true => epoll_loop(&listener, args.log),
    }
}

async fn tokio_loop(listener: TcpListener, log: bool) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    loop {
        let (mut sock, address) = match listener.accept().await {
            Ok(pair) => pair,
            Err(_) => {
                // Out of file descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        tokio::spawn(async move {
            let mut buf = [0u8; BUF];
            loop {
                let n = match sock.read(&mut buf[..BUF - 3]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if log {
                    println!("{address} says: {}", preview(&buf[..n]));
                }
                buf[n..n + 3].copy_from_slice(b"123");
                if sock.write_all(&buf[..n + 3]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// One thread, level-triggered epoll: accept, or read and answer, whatever is ready.
fn epoll_loop(listener: &TcpListener, log: bool) -> Result<()> {
    // The listener's key; a client's is its slot + 1. (polling keeps usize::MAX for itself.)
    const LISTENER: usize = 0;
    // Declared before the poller, so dropped after it: no socket closes while the poller has it.
    let mut clients: Vec<Option<(TcpStream, SocketAddr)>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let poller = Poller::new()?;
    watch(&poller, listener, LISTENER)?;
    let mut events = Vec::new();
    let mut buf = [0u8; BUF];
    loop {
        events.clear();
        match poller.wait(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            waited => waited?,
        };
        for ev in events.iter() {
            if ev.key == LISTENER {
                loop {
                    let (sock, address) = match listener.accept() {
                        Ok(pair) => pair,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            break;
                        }
                    };
                    let slot = free.pop().unwrap_or(clients.len());
                    if sock.set_nonblocking(true).is_err()
                        || watch(&poller, &sock, slot + 1).is_err()
                    {
                        free.push(slot);
                        continue;
                    }
                    match clients.get_mut(slot) {
                        Some(slot) => *slot = Some((sock, address)),
                        None => clients.push(Some((sock, address))),
                    }
                }
                continue;
            }
            let slot = ev.key - 1;
            let Some((sock, address)) = clients.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let end = match sock.read(&mut buf[..BUF - 3]) {
                Ok(0) => true,
                Ok(n) => {
                    if log {
                        println!("{address} says: {}", preview(&buf[..n]));
                    }
                    buf[n..n + 3].copy_from_slice(b"123");
                    // One message in flight: the reply always fits in the send buffer. If it
                    // ever did not, the connection ends (the driver would count it).
                    !matches!(sock.write(&buf[..n + 3]), Ok(w) if w == n + 3)
                }
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
            };
            if end {
                let _ = poller.delete(&*sock);
                clients[slot] = None;
                free.push(slot);
            }
        }
    }
}

/// Adds a socket to the poller, level-triggered. A client leaves it before it is closed; the
/// listener belongs to `main` and outlives the poller.
fn watch(poller: &Poller, source: impl Source, key: usize) -> io::Result<()> {
    poller.add_with_mode(source, Event::readable(key), PollMode::Level)
}
