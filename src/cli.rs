//! Command-line options every lesson binary shares.
//!
//! Each binary declares its own `clap::Parser` struct, flattens [`Common`] into it and calls
//! [`parse`]. `--help` prints help and exits 0; a bad argument exits 2 with a one-line reason.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;

/// The notes' address: their code binds port 8080 (on a LAN IP; we default to loopback).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// `--addr`, `--trace` and `--hex`, flattened into every binary's options. `global`: a binary
/// with subcommands (lesson 07's client) takes them before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Address to listen on (servers) or connect to (clients); a server given port 0 picks a free one
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = DEFAULT_ADDR, value_parser = parse_addr)]
    pub addr: SocketAddr,

    /// Show every socket read/write on stderr with its byte count and a preview
    // `--hex` alone turns it on too: asking for the bytes means asking for the trace.
    #[arg(long, global = true, default_value_if("hex", "true", Some("true")))]
    pub trace: bool,

    /// Like --trace, and show the first 32 bytes of each read/write in hex under it
    // The parser tells `wire` (lessons pass only `trace` to their `Traced` sockets).
    #[arg(long, global = true, action = clap::ArgAction::SetTrue, value_parser = hex_flag)]
    pub hex: bool,
}

/// `--hex`: parses the flag's value and switches `wire`'s hex line on when it is set.
fn hex_flag(text: &str) -> Result<bool, String> {
    let on = text == "true";
    if on {
        crate::wire::set_hex(true);
    }
    Ok(on)
}

/// Resolves `HOST:PORT` (`127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`) to one address.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("expected HOST:PORT ({e})"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

/// The shortest wait [`parse_seconds`] accepts: 1 ms. Anything shorter rounds to nothing on
/// some clocks, and a zero read timeout is an error for the socket calls.
pub const MIN_SECONDS: f64 = 0.001;

/// The longest wait [`parse_seconds`] accepts: one day. Far past any lesson's need, and far
/// from the overflow of `Instant + Duration` (a deadline of 1e19 seconds panics).
pub const MAX_SECONDS: f64 = 24.0 * 60.0 * 60.0;

/// A number of seconds, fractions allowed (`2`, `0.5`), from [`MIN_SECONDS`] to
/// [`MAX_SECONDS`]: every `--timeout` in the kit. A value it accepts always works.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    // Not a number ("soon") becomes NaN, which no range contains: one message for both.
    let secs: f64 = text.parse().unwrap_or(f64::NAN);
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&secs) {
        return Err(format!(
            "expected seconds from {MIN_SECONDS} to {MAX_SECONDS} (one day), like 2 or 0.5"
        ));
    }
    // In range, so from_secs_f64 cannot panic.
    Ok(Duration::from_secs_f64(secs))
}

/// Parses the process arguments into `T`.
///
/// Like `T::parse()`, except that an error is printed on one line (`lesson02-server: ...`)
/// instead of clap's several, so scripts and tests can read the reason. Exit status 2.
///
/// It also keeps error reports short: `main` returns `anyhow::Result`, and with
/// `RUST_BACKTRACE=1` set (many learners keep it set) anyhow would print a stack backtrace under
/// every "connection refused". Backtraces stay on for panics; for errors only when asked for
/// with `RUST_LIB_BACKTRACE=1`.
pub fn parse<T: Parser>() -> T {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // Still single-threaded here: every binary calls parse() first thing in main.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    match T::try_parse() {
        Ok(args) => args,
        Err(err) if !err.use_stderr() => {
            // --help and --version: not errors, print as clap formats them and exit 0.
            let _ = err.print();
            std::process::exit(0);
        }
        Err(err) => {
            let bin = std::env::args()
                .next()
                .as_deref()
                .and_then(|p| {
                    std::path::Path::new(p)
                        .file_stem()?
                        .to_str()
                        .map(String::from)
                })
                .unwrap_or_else(|| "socket-lessons".into());
            let text = err.to_string();
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let mut reason = lines
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ")
                .to_string();
            // "the following required arguments were not provided:" lists them on the lines
            // after it, indented: they belong to the reason.
            if reason.ends_with(':') {
                let listed: Vec<&str> = lines
                    .take_while(|l| l.starts_with(' '))
                    .map(str::trim)
                    .collect();
                reason = format!("{reason} {}", listed.join(", "));
            }
            eprintln!("{bin}: {reason} (try --help)");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_within_a_day_are_accepted() {
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_seconds("86400"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn other_seconds_are_refused_with_one_line() {
        for text in [
            "0", "-1", "0.0009", "86401", "1e19", "inf", "nan", "soon", "",
        ] {
            let err = parse_seconds(text).unwrap_err();
            assert_eq!(
                err, "expected seconds from 0.001 to 86400 (one day), like 2 or 0.5",
                "{text}"
            );
        }
    }
}
