//! Plumbing shared by the lesson binaries, and one piece a lesson teaches.
//!
//! A learner reading `lessons/NN_name/server.rs` next to the course notes never needs this file
//! to follow the socket calls: those are all in the lesson. What lives here is the part every
//! binary needs the same way and the notes do not cover:
//!
//! - [`cli`]: the `--addr` / `--trace` options and "bad arguments exit 2 with a one-line reason";
//! - [`announce`]: the `listening on IP:PORT` line tests and learners wait for;
//! - [`input`]: input lines from stdin, with the notes' `>>>:` prompt only on a terminal;
//! - [`wire`]: `--trace` and `--hex`, a wrapper that shows every `read`/`write` on the socket;
//! - [`console`]: the one rule for escaping a peer's text before it reaches a terminal or a
//!   log, and decoding command output that may be UTF-8 or GBK (Chinese Windows);
//! - [`is_timeout`]: whether a socket call failed because its timeout ran out, on every
//!   platform.
//!
//! The piece that is taught: [`console::decode_output`] is lesson 03's fix for the notes' bug 9
//! (they decode a command's output as `gbk` in one place and `utf8` in another). It lives here
//! because the clients of lessons 03 and 04, lesson 03's server and every client's stdin
//! ([`input`]) use it; lesson 03's README and client send the learner here.

pub mod cli;
pub mod console;
pub mod input;
pub mod wire;

use std::io::{self, Write};
use std::net::SocketAddr;

/// Prints `listening on IP:PORT` as the first line of stdout and flushes it.
///
/// `addr` must be the address the socket really got (`listener.local_addr()?`), so that a
/// server started with port 0 tells its caller which port the system picked. Tests read this
/// line instead of guessing ports or sleeping.
pub fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

/// Whether `e` is a read or write timeout set with `set_read_timeout`/`set_write_timeout`
/// running out. The same event has two names: Unix reports it as `WouldBlock` (EAGAIN), Windows
/// as `TimedOut` (WSAETIMEDOUT); std's documentation of `set_read_timeout` says so. The kit's
/// sockets are all blocking, so `WouldBlock` cannot mean anything else here.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Lesson 10's `tickets.rs` promises, in its doc comment, that threads sharing a plain counter
/// do not compile. Doc tests run only for this library, so the lesson's file is compiled here
/// for rustdoc alone (`cfg(doctest)`), and its ```` ```compile_fail ```` block becomes one of
/// the library's doc tests: the block a learner reads is the block the compiler refuses.
#[cfg(doctest)]
#[path = "../lessons/10_pool/tickets.rs"]
mod lesson10_tickets;
