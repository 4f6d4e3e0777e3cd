//! Plumbing shared by the lesson binaries, and one piece a lesson teaches.
//!
//! A learner reading `lessons/NN_name/server.rs` next to the course notes never needs this file
//! to follow the socket calls: those are all in the lesson. What lives here is the part every
//! binary needs the same way and the notes do not cover:
//!
//! - [`cli`]: the `--addr` / `--trace` options and "bad arguments exit 2 with a one-line reason";
//! - [`announce`]: the `listening on IP:PORT` line tests and learners wait for;
//! - [`log!`]: a server's log line, `println!` that a closed stdout cannot turn into a panic;
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

/// A line of a server's log on stdout: `println!`, except that a log nobody reads any more
/// does not stop the server. `println!` panics when the write fails (`failed printing to
/// stdout: Broken pipe`, after `lesson02-server | head -1` has read its line and left), and a
/// panic in the connection loop ends the server and every client with it. Here the line is
/// lost and the server goes on serving. (A log that is never read but stays open, a pipe
/// nobody drains or a terminal paused with Ctrl-S, still makes the write wait: lesson 07 shows
/// the way out, a log thread.)
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log_line(format_args!($($arg)*))
    };
}

/// What [`log!`] does: one line to stdout, a failed write ignored.
#[doc(hidden)]
pub fn log_line(line: std::fmt::Arguments) {
    let mut out = io::stdout().lock();
    // Ignored on purpose: a log that cannot be written must not end the service (see `log!`).
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
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
