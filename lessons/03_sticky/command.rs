//! Running one remote command with bounds: what the notes' `subprocess.Popen(..., shell=True)`
//! plus `stdout.read() + stderr.read()` do, minus their three dangers (bugs 7 and 8 in the
//! top-level README's list, "The notes' bugs"). Shared by lessons 03 and 04, which differ only
//! in how the reply is put on the wire; lesson 04 includes this very file with
//! `#[path = "../03_sticky/command.rs"] mod command;`.
//!
//! - A remote shell must not listen on the network by accident: [`refuse_remote`] stops a
//!   server whose `--addr` is not loopback, unless `--allow-remote` says it is meant.
//! - Loopback is not enough: a web page in the learner's browser can send an HTTP request to
//!   `127.0.0.1:8080`. [`refuse_web_request`] drops a message that cannot come from our
//!   client (a line break, an HTTP request line or header) before anything runs.
//! - A command may never end (`yes`, `sleep 60`): it is killed after `--timeout`.
//! - A command may print without end: its output is cut at `--max-output` bytes and it is
//!   killed at once.
//! - The notes read all of stdout, then all of stderr. A command that fills the stderr pipe
//!   first (64 KiB on Linux) then waits for someone to read it, while Python waits for stdout
//!   to end: both wait forever. Here two threads read both pipes at the same time.
//! - One client at a time, as in the notes: a client that sends nothing, or reads none of our
//!   answer, would hold the server from everyone else. [`set_idle_timeout`] bounds both waits.
//!
//! The reply is stdout followed by stderr, as in the notes; when a bound was hit, a note line
//! such as `[killed after 10 s]` or `[output cut at 1048576 bytes]` follows.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::bail;
use socket_lessons::console::{decode_output, OutputEncoding};
use socket_lessons::{cli, is_timeout, wire::preview};

/// `--timeout`, `--max-output`, `--allow-remote`, `--idle-timeout`: flattened into both
/// servers' options.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Kill a command still running after this many seconds (fractions allowed: 0.5)
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = cli::parse_seconds)]
    pub timeout: Duration,

    /// Cut a command's output (stdout + stderr) after this many bytes, and kill the command
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u32).range(0..=MAX_OUTPUT_LIMIT))]
    pub max_output: u32,

    /// Listen on a non-loopback address too. Anyone who can reach it runs commands as you.
    #[arg(long)]
    pub allow_remote: bool,

    /// Seconds a client may stay silent (or leave our answer unread) before it is dropped
    // 300 s: a learner at the `>>>:` prompt reads the last answer and types the next command,
    // and must not be dropped for thinking; the clients waiting behind them wait that long.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = cli::parse_seconds)]
    pub idle_timeout: Duration,
}

/// The log's reason when a client sent nothing for `--idle-timeout` (lesson 05 says the same).
pub const SILENT: &str = "silent for longer than --idle-timeout";

/// Puts `--idle-timeout` on every read and write of `sock`. Without it a read waits forever
/// for a client that sends nothing, and a write (`yes | head -c 900000`, answer never read)
/// waits forever for it to make room: one client at a time, so everyone else waits too.
pub fn set_idle_timeout(sock: &TcpStream, limits: &Limits) -> io::Result<()> {
    sock.set_read_timeout(Some(limits.idle_timeout))?;
    sock.set_write_timeout(Some(limits.idle_timeout))
}

/// A write that timed out, said as one: std calls it "Resource temporarily unavailable"
/// (Unix) or "A connection attempt failed" (Windows).
pub fn unread(e: io::Error) -> io::Error {
    match is_timeout(&e) {
        true => io::Error::new(
            e.kind(),
            "the client did not read for longer than --idle-timeout",
        ),
        false => e,
    }
}

/// The largest `--max-output` accepted: 1 GiB. A reply must fit lesson 04's 4-byte signed
/// header (2 GiB - 1) with room for the note line, and be held in memory at once.
const MAX_OUTPUT_LIMIT: i64 = 1 << 30;

/// How much one pipe read takes at most. Big enough that `seq 1 100000` is a few reads.
const CHUNK: usize = 64 * 1024;

/// Exits with status 2 and a one-line reason when `addr` is not a loopback address and
/// `--allow-remote` was not given (bug 8: the notes bind a LAN address with `shell=True`).
pub fn refuse_remote(addr: SocketAddr, limits: &Limits) {
    if addr.ip().is_loopback() || limits.allow_remote {
        return;
    }
    eprintln!(
        "{}: refusing to listen on {addr}: this server runs any command it is sent, so it \
         listens on loopback (127.0.0.1, ::1) only; add --allow-remote if you mean it",
        env!("CARGO_BIN_NAME")
    );
    std::process::exit(2);
}

/// Refuses a message that is not a command from our client: writes one line saying why to
/// `sock` (best effort) and returns the error that ends this connection, so that the server
/// logs it, closes the connection and serves the next client. Call it before running anything.
///
/// Why: "loopback only" keeps out the network, not a web page in the learner's own browser.
/// `<img src="http://127.0.0.1:8080/;touch$IFS./pwned;">` on any page makes the browser
/// connect here and send `GET /;touch$IFS./pwned; HTTP/1.1`, a CRLF, `Host: 127.0.0.1:8080`
/// and more header lines; a `fetch()` with a `text/plain` body sends a POST with any text as
/// its body. The shell would run every line of it: `GET /`, then `touch ./pwned`. This is the
/// cross-protocol attack Redis 3.2.7 closed by dropping connections that send `POST` or
/// `Host:`. (Browsers refuse a list of ports, 8080 not among them, and some recent versions
/// ask the user before a public page may reach loopback; not every browser or version does.)
///
/// What gives such a request away (see [`not_a_command`]):
/// - a line break. The notes' clients send one `input().strip()` line per command, ours one
///   stdin line, trimmed: a command from them never holds CR or LF. An HTTP request always
///   does (every line ends in CRLF). Neither UTF-8 nor GBK uses 0x0A or 0x0D inside a
///   character, so checking the raw bytes is enough;
/// - an HTTP request line or header at the start, for a request whose first read ended before
///   its first CRLF (a request line over 1024 bytes, or one that TCP split);
///
/// and closing the connection is part of the defence: the rest of the request, the body of a
/// POST included, is never read, so it never runs either.
pub fn refuse_web_request(sock: &mut impl Write, message: &[u8]) -> anyhow::Result<()> {
    let Some(reason) = not_a_command(message) else {
        return Ok(());
    };
    // For a learner poking the server with `nc`, which sends the Enter key as LF. Unframed in
    // lesson 04 too: whoever sent this does not speak the protocol anyway. A write error does
    // not matter, the connection is closed next.
    let _ = sock.write_all(format!("refused: {reason}; closing the connection\n").as_bytes());
    bail!("refused {}: {reason}; nothing was run", preview(message));
}

/// HTTP's request methods (RFC 9110), as a browser sends them: in capitals. Lower case `head`
/// is a Unix command and stays allowed.
const HTTP_METHODS: [&[u8]; 9] = [
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
];

/// Why `message` cannot be a command from our client or the notes', or `None` if it may be.
pub fn not_a_command(message: &[u8]) -> Option<&'static str> {
    if message.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Some(
            "it holds a line break (CR or LF), which our client never sends: \
             an HTTP request from a web page?",
        );
    }
    let first_word = message.split(|&b| b == b' ').next().unwrap_or_default();
    if HTTP_METHODS.contains(&first_word) {
        return Some("it starts like an HTTP request line (GET, POST, ...): a web page?");
    }
    // Redis's rule: a header `Host:`, in any case.
    if message.len() >= 5 && message[..5].eq_ignore_ascii_case(b"host:") {
        return Some("it starts like an HTTP header (Host:): a web page?");
    }
    None
}

/// What running one command produced.
pub struct Outcome {
    /// What goes back to the client: stdout, then stderr, then the note line if any.
    pub reply: Vec<u8>,
    /// `killed after 10 s`, `output cut at 1048576 bytes`, …: for the server's log.
    pub note: Option<String>,
}

/// The command text as the client sent it. The notes decode it as UTF-8 and crash on anything
/// else; the notes' own section 3 client sends GBK (`speak.encode('gbk')`), so we accept both,
/// the same way the clients decode output.
pub fn command_text(bytes: &[u8]) -> String {
    decode_output(bytes, OutputEncoding::Auto).into_owned()
}

/// One piece of news from a pipe-reading thread.
enum Piece {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// That pipe reached end of stream (or failed): nothing more will come from it.
    End,
}

/// Runs `command` in the platform's shell and collects its reply within `limits`.
/// Never fails: a command that cannot even start answers with a line saying why.
pub fn run(command: &str, limits: &Limits) -> Outcome {
    let max = limits.max_output as usize;
    let mut child = match shell(command)
        // The notes' Popen inherits the server's stdin: a command that reads input (`cat`)
        // would wait on the server's terminal. It gets an empty stdin instead.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let note = format!("cannot run the command: {e}");
            return Outcome {
                reply: format!("[{note}]\n").into_bytes(),
                note: Some(note),
            };
        }
    };
    let deadline = Instant::now() + limits.timeout;

    // Bug 7, fixed: one thread per pipe, both reading at once, so neither pipe can fill up
    // while we wait on the other. The channel is bounded: if the command writes faster than
    // we collect, the readers wait instead of piling up memory.
    let (tx, rx) = mpsc::sync_channel::<Piece>(8);
    // Spawning with Stdio::piped() always creates both pipes, so take() cannot be None.
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    pump(stdout, tx.clone(), Piece::Stdout);
    pump(stderr, tx, Piece::Stderr);

    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut ended = 0;
    let mut note = None;
    while ended < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let piece = match rx.recv_timeout(left) {
            Ok(piece) => piece,
            Err(RecvTimeoutError::Timeout) => {
                note = Some(format!("killed after {} s", limits.timeout.as_secs_f64()));
                break;
            }
            // Both threads are gone, so both pipes have ended.
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let room = max - (out.len() + err.len()).min(max);
        let (buf, bytes) = match piece {
            Piece::Stdout(bytes) => (&mut out, bytes),
            Piece::Stderr(bytes) => (&mut err, bytes),
            Piece::End => {
                ended += 1;
                continue;
            }
        };
        if bytes.len() > room {
            buf.extend_from_slice(&bytes[..room]);
            note = Some(format!("output cut at {max} bytes"));
            break;
        }
        buf.extend_from_slice(&bytes);
    }

    // Both pipes ended: the command closed its outputs, which nearly always means it exited.
    // Wait for that, but not past the deadline (a command may close its outputs and go on).
    if note.is_none() && !wait_until(&mut child, deadline) {
        note = Some(format!("killed after {} s", limits.timeout.as_secs_f64()));
    }
    if note.is_some() {
        kill_tree(&mut child);
    }
    // Collect the exit status so the process does not stay behind as a zombie.
    let _ = child.wait();
    // The reader threads end on their own once every process holding the pipes is gone; we do
    // not wait for them (a process that escaped the kill could hold a pipe open for long).

    let mut reply = out;
    reply.extend_from_slice(&err);
    if let Some(note) = &note {
        // The note goes on a line of its own, so a learner cannot take it for output.
        if reply.last().is_some_and(|&b| b != b'\n') {
            reply.push(b'\n');
        }
        reply.extend_from_slice(format!("[{note}]\n").as_bytes());
    }
    Outcome { reply, note }
}

/// `shell=True`: `sh -c COMMAND` on Unix.
#[cfg(unix)]
fn shell(command: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command);
    // A process group of its own (its id = the child's pid), so that a timeout can kill the
    // shell *and* everything it started (`sleep 60 & yes`), not only the shell.
    cmd.process_group(0);
    cmd
}

/// `shell=True` on Windows: the command line `cmd.exe /c "COMMAND"`, exactly what Python's
/// `subprocess` builds (CPython's `subprocess.py`: the whole command in one more pair of quotes).
#[cfg(windows)]
fn shell(command: &str) -> Command {
    use std::os::windows::process::CommandExt;
    let mut cmd = Command::new("cmd.exe");
    // Why the extra quotes: cmd.exe strips the first and the last quote of what follows /c.
    // Unwrapped, `"C:\Program Files\t\my host.exe" "x"` would lose the quote before C: and the
    // one after x, and cmd would look for `C:\Program`. Wrapped, cmd strips only our pair.
    // `raw_arg` puts the text on the command line as written; `arg` would add C-runtime
    // quoting and backslash escapes, which cmd.exe does not undo.
    cmd.raw_arg("/c").raw_arg(format!("\"{command}\""));
    cmd
}

/// Kills the command and what it started.
///
/// Unix: `kill -s KILL -- -PGID` signals the whole process group. The group's id is safe to
/// use here: it is the child's pid, and that pid cannot be reused before we `wait` for it.
/// Windows: `taskkill /T /F` kills the process tree. Both without `unsafe`. A process that left
/// the group on purpose (`setsid`) or whose parent died first (Windows) can survive.
fn kill_tree(child: &mut Child) {
    #[cfg(unix)]
    let mut killer = {
        let mut cmd = Command::new("kill");
        cmd.args(["-s", "KILL", "--", &format!("-{}", child.id())]);
        cmd
    };
    #[cfg(windows)]
    let mut killer = {
        let mut cmd = Command::new("taskkill");
        cmd.args(["/T", "/F", "/PID", &child.id().to_string()]);
        cmd
    };
    let _ = killer
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // In case the kill utility is missing: at least the direct child goes.
    let _ = child.kill();
}

/// Waits for `child` to exit until `deadline`; false if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> bool {
    // std has no "wait with timeout", so poll. This runs only after both pipes ended, when the
    // command has usually exited already: the first or second look finds it.
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// Reads `pipe` in a thread of its own, sending each chunk as `wrap(chunk)` and [`Piece::End`]
/// at the end.
fn pump(
    mut pipe: impl Read + Send + 'static,
    tx: mpsc::SyncSender<Piece>,
    wrap: fn(Vec<u8>) -> Piece,
) {
    thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match pipe.read(&mut buf) {
                // Ok(0): end of stream, every process holding this pipe has closed it.
                Ok(0) => break,
                Ok(n) => {
                    // The receiver is gone (the command was cut or killed): stop reading.
                    // Dropping the pipe makes a command still writing get SIGPIPE.
                    if tx.send(wrap(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(Piece::End);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_commands_are_commands() {
        for command in [
            "ls -l",
            "seq 1 1000",
            "head -c 10 /dev/zero",
            "echo GET / HTTP/1.1",
            "GETTER /",
            "dir",
            "ipconfig /all",
            "echo 你好",
        ] {
            assert_eq!(not_a_command(command.as_bytes()), None, "{command}");
        }
        // "dir 你好" in GBK, as the notes' section 3 client sends it.
        assert_eq!(not_a_command(b"dir \xc4\xe3\xba\xc3"), None);
    }

    #[test]
    fn http_requests_are_not_commands() {
        for message in [
            &b"GET /;touch$IFS./pwned; HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"[..],
            b"GET /;touch$IFS./pwned; HTTP/1.1",
            b"GET /;touch$IFS./pwn",
            b"POST / HTTP/1.1",
            b"OPTIONS * HTTP/1.1",
            b"Host: 127.0.0.1:8080",
            b"host:127.0.0.1",
            b"ls\n",
            b"ls\r",
            b"echo a\nrm -rf x",
        ] {
            assert!(
                not_a_command(message).is_some(),
                "{}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn a_refusal_tells_the_peer_in_one_line() {
        let mut sent = Vec::new();
        let err = refuse_web_request(&mut sent, b"POST / HTTP/1.1\r\n").unwrap_err();
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "refused: it holds a line break (CR or LF), which our client never sends: \
             an HTTP request from a web page?; closing the connection\n"
        );
        assert_eq!(
            err.to_string(),
            "refused \"POST / HTTP/1.1\\r\\n\": it holds a line break (CR or LF), which our \
             client never sends: an HTTP request from a web page?; nothing was run"
        );
        assert!(refuse_web_request(&mut Vec::new(), b"echo hi").is_ok());
    }
}
