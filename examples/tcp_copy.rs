//! The floor of the transfer benchmark (`bench/transfer.sh`): a plain TCP copy of a file with
//! 1 MiB buffers. No header, no digest, no temporary file: whatever lesson 07 adds is measured
//! against this.
//!
//! ```text
//! tcp_copy recv 127.0.0.1:0 OUT     # prints `listening on IP:PORT`; each connection -> OUT
//! tcp_copy send IP:PORT FILE        # exits once the receiver has every byte in OUT
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use anyhow::{bail, Context, Result};

/// The same buffer size lesson 07 uses.
const BUF: usize = 1024 * 1024;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut buf = vec![0u8; BUF];
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["recv", addr, out] => {
            let listener = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
            socket_lessons::announce(listener.local_addr()?)?;
            loop {
                let (mut sock, _) = listener.accept().context("accept")?;
                let mut file = File::create(out).with_context(|| format!("create {out}"))?;
                // Until the sender's half-close; dropping `sock` then tells it we are done.
                pump(&mut sock, &mut file, &mut buf).context("socket -> file")?;
            }
        }
        ["send", addr, path] => {
            let mut file = File::open(path).with_context(|| format!("open {path}"))?;
            let mut sock = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
            pump(&mut file, &mut sock, &mut buf).context("file -> socket")?;
            // Half-close, then wait for the receiver's close: every byte is in its file.
            sock.shutdown(Shutdown::Write)?;
            if sock.read(&mut buf)? != 0 {
                bail!("the receiver sent bytes; it should only close");
            }
            Ok(())
        }
        _ => bail!("usage: tcp_copy recv HOST:PORT OUT | tcp_copy send HOST:PORT FILE"),
    }
}

/// `read` into one buffer, `write_all` it out, until `src` ends.
fn pump(src: &mut impl Read, dst: &mut impl Write, buf: &mut [u8]) -> io::Result<()> {
    loop {
        match src.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => dst.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
