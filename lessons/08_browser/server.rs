//! Lesson 08, server: the browser is a client too (b/s架构本质上也是c/s架构, the notes' review).
//!
//! The notes' server loops (lesson 02): accept one client, talk to it until it leaves, take the
//! next. Here the client is a web browser, so the talk is HTTP/1.1: the browser sends a request
//! head (报头) of text lines ending with an empty line, we answer with a status line, a head
//! saying how long the body is (`Content-Length`, lesson 04's `size`) and the body. `/` is a
//! page, in Chinese and English, that shows the request head this browser just sent and the
//! connection it came on; any other path is `404` (watch the browser ask for `/favicon.ico`);
//! methods other than GET and HEAD get `405`.
//!
//! ```text
//! cargo run --bin lesson08-server                   # terminal 1
//! open http://127.0.0.1:8080/ in a browser          # or: cargo run --bin lesson08-client
//! ```
//!
//! Watch for: one log line per request. The browser keeps its connection open after the page
//! (HTTP/1.1 keep-alive: reload, and the page's request number grows on the same port), and
//! often opens a spare one before it needs it (a preconnect) that sends nothing.
//!
//! BUG (on purpose): one client at a time, as in every lesson so far. While the server waits
//! on one idle connection (a tab's keep-alive connection, a preconnect), every other client
//! waits in the accept queue: with a page open in a browser, `lesson08-client` (or `curl`, or
//! a second browser) hangs until that connection has been silent for `--idle-timeout` (5 s)
//! and is dropped, and then the browser's spare one too. The log shows it. Lessons 09-12 serve
//! many clients at once.
//!
//! Not in the notes, and what any server on a network must survive: a head that arrives one
//! byte at a time, or never ends (`--idle-timeout` bounds the whole wait for a request), a head
//! over 8 KiB (`431`), junk (`400`, then the connection is closed), and a web page that points
//! the browser at this server with anything in the request: the page shows the request escaped
//! for HTML, the log shows it escaped for a terminal, on one line.

#[path = "protocol.rs"]
mod http;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use socket_lessons::console::terminal_safe;
use socket_lessons::wire::{preview, Traced};
use socket_lessons::{announce, cli, is_timeout, log};

use http::{Head, RequestLine, Until};

/// Lesson 08 server: answer browsers (HTTP/1.1), one connection at a time.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// Seconds to wait for a request (a whole head) on an open connection before dropping it
    // 5 s: long enough to see another client wait, short enough to wait for.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = cli::parse_seconds)]
    idle_timeout: Duration,
}

/// Requests served on one connection at most; the last response says `Connection: close`.
/// nginx's `keepalive_requests` does the same (1000 there): a client cannot keep one
/// connection for ever by never stopping.
const MAX_REQUESTS: u32 = 100;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    let addr = args.common.addr;
    // `socket()`, `bind()`, `listen()`: lesson 02 shows each call; std's `bind` does them all.
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    announce(listener.local_addr()?)?;

    // The connection loop (链接循环), as in lesson 02.
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
        // BUG (on purpose): one client at a time. `serve` returns only when this connection
        // ends, and a browser keeps it open after the page (keep-alive) or opens one it never
        // uses (a preconnect): every other client waits in the accept queue meanwhile, up to
        // --idle-timeout (and up to 100 × --idle-timeout behind a client that sends a request
        // just before each runs out). Lessons 09-12 serve many connections at once.
        match serve(sock, peer, &args) {
            Ok(End::ClientClosed(0)) => {
                log!("{peer} closed the connection without sending a request")
            }
            Ok(End::ClientClosed(n)) => {
                log!("{peer} closed the connection after {}", requests(n))
            }
            Ok(End::WeClosed) => {}
            Err(e) => log!("{peer} dropped: {e:#}"),
        }
    }
}

/// How a connection ended, when it ended well.
enum End {
    /// The client closed it between two requests, after this many.
    ClientClosed(u32),
    /// We closed it after a response that said `Connection: close` (its log line says so).
    WeClosed,
}

/// The communication loop (通信循环) with one browser: read a request head, answer it, again.
fn serve(sock: TcpStream, peer: SocketAddr, args: &Args) -> Result<End> {
    // A client that never reads our answers: a write gives up after --idle-timeout.
    sock.set_write_timeout(Some(args.idle_timeout))?;
    let local = sock.local_addr()?;
    let mut sock = Traced::labelled(sock, args.common.trace, peer);
    // What arrived after the last head: the start of the next request (pipelining).
    let mut buf = Vec::new();
    let mut served = 0;
    loop {
        // `data = sock.recv(1024)`, until the buffer holds a whole head. The whole head must
        // arrive within --idle-timeout of the last answer: a timeout per read alone would let
        // a client send one byte every few seconds and keep us for ever (slowloris).
        let deadline = Instant::now() + args.idle_timeout;
        let raw = match http::read_head(&mut Until(&mut sock, deadline), &mut buf) {
            Ok(Some(raw)) => raw,
            // End of stream between two requests: the browser closed the connection.
            Ok(None) => return Ok(End::ClientClosed(served)),
            Err(e) if is_timeout(&e) => anyhow::bail!(silent(&buf, served)),
            // No empty line within 8 KiB: the head is too long, or not HTTP at all.
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                let reply = Reply::error(431, "Request Header Fields Too Large", &e.to_string());
                log!("{peer} {} -> {}", preview(&buf), reply.said());
                send_and_close(&mut sock, &reply, false)?;
                return Ok(End::WeClosed);
            }
            Err(e) => return Err(e).context("reading a request head"),
        };
        served += 1;

        let reply = answer(&raw, peer, local, served, args);
        // One line per request, whatever the client sent: `preview` quotes it, escapes what a
        // terminal would obey and cuts it after 40 characters.
        let first_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
        let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
        log!("{peer} {} -> {}", preview(first_line), reply.said());
        let head_only = first_line.starts_with(b"HEAD ");
        send_and_close(&mut sock, &reply, head_only)?;
        if !reply.keep_alive {
            return Ok(End::WeClosed);
        }
    }
}

/// The response to one request head.
fn answer(raw: &[u8], peer: SocketAddr, local: SocketAddr, n: u32, args: &Args) -> Reply {
    let head = match Head::parse(raw) {
        Ok(head) => head,
        Err(why) => return Reply::error(400, "Bad Request", &why),
    };
    let line = match RequestLine::parse(&head.first_line) {
        Ok(line) => line,
        Err(why) => return Reply::error(400, "Bad Request", why),
    };
    if line.method != "GET" && line.method != "HEAD" {
        let mut reply = Reply::error(405, "Method Not Allowed", "only GET and HEAD");
        reply.fields.push(("Allow", "GET, HEAD".into()));
        return reply;
    }
    // This server reads no request body: a body left unread would be taken for the next
    // request. So a GET that announces one is refused, and its connection closed (as after a
    // 405: the POST's body goes unread).
    if head.field("Transfer-Encoding").is_some()
        || !matches!(head.content_length(), Ok(None | Some(0)))
    {
        return Reply::error(400, "Bad Request", "this server reads no request body");
    }
    // Keep-alive: HTTP/1.1 keeps the connection unless the client says `Connection: close`;
    // HTTP/1.0 closes it unless the client says `Connection: keep-alive`.
    let keep_alive = match line.version {
        "HTTP/1.1" => !head.connection_has("close"),
        _ => head.connection_has("keep-alive"),
    } && n < MAX_REQUESTS;

    // The path, without a query (`/?q=<script>` shows the page, and its request escaped).
    let path = line.target.split('?').next().unwrap_or_default();
    let mut reply = match path {
        "/" => Reply {
            code: 200,
            reason: "OK",
            content_type: "text/html; charset=utf-8",
            body: page(raw, peer, local, n, args.idle_timeout).into_bytes(),
            fields: Vec::new(),
            keep_alive,
            why_closed: "",
        },
        _ => Reply {
            code: 404,
            reason: "Not Found",
            content_type: "text/plain; charset=utf-8",
            body: b"404 Not Found: this server has only the page at /\n".to_vec(),
            fields: Vec::new(),
            keep_alive,
            why_closed: "",
        },
    };
    if !keep_alive {
        reply.why_closed = if n == MAX_REQUESTS {
            "the last request of a connection"
        } else {
            "the client asked to"
        };
    }
    reply
}

/// A response, before it is put on the wire by [`Reply::bytes`].
struct Reply {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// Fields beyond the ones every response has (`Allow` for a 405).
    fields: Vec<(&'static str, String)>,
    keep_alive: bool,
    /// Why the connection closes after this response, for the log; "" when it stays open.
    why_closed: &'static str,
}

impl Reply {
    /// An error page; the connection is closed after it: after junk, who knows where the next
    /// request would start?
    fn error(code: u16, reason: &'static str, why: &str) -> Reply {
        Reply {
            code,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: format!("{code} {reason}: {why}\n").into_bytes(),
            fields: Vec::new(),
            keep_alive: false,
            why_closed: "",
        }
    }

    /// The log's end of the request's line: `200 OK, keep-alive`.
    fn said(&self) -> String {
        let (code, reason) = (self.code, self.reason);
        match (self.keep_alive, self.why_closed) {
            (true, _) => format!("{code} {reason}, keep-alive"),
            (false, "") => {
                // An error body is one line of our own text: show why, without the newline.
                let why = String::from_utf8_lossy(&self.body);
                format!("{}, closing", why.trim_end())
            }
            (false, why) => format!("{code} {reason}, closing ({why})"),
        }
    }

    /// The response as bytes: status line, head, empty line, body (none for HEAD). Every
    /// response says how long its body is, so the browser knows where it ends (and where the
    /// next response would start) without waiting for the connection to close.
    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.code,
            self.reason,
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        // no-store: a reload asks us again, instead of showing a copy the browser kept.
        head.push_str("Cache-Control: no-store\r\n");
        let connection = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        head.push_str(&format!("Connection: {connection}\r\n\r\n"));
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Writes `reply` whole (`sendall`), and closes the connection gently if the reply says so.
fn send_and_close(sock: &mut Traced<TcpStream>, reply: &Reply, head_only: bool) -> Result<()> {
    sock.write_all(&reply.bytes(head_only))
        .map_err(|e| match is_timeout(&e) {
            true => anyhow::anyhow!("the client did not read for longer than --idle-timeout"),
            false => anyhow::Error::new(e).context("sending the response"),
        })?;
    if !reply.keep_alive {
        close_gently(sock.get_mut());
    }
    Ok(())
}

/// How long [`close_gently`] keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// Closes without losing the response just sent. Closing a socket with received bytes still
/// unread (the rest of a 9 KiB head, a POST's body) sends RST instead of FIN, and a client that
/// receives RST may lose the response it had not read yet. So: `shutdown(Write)` (a FIN after
/// the response: "nothing more from us"), then read and throw away what still arrives until
/// the client closes too, for at most [`LINGER`]. Lesson 07 does the same after a refusal.
fn close_gently(sock: &mut TcpStream) {
    let _ = sock.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match sock.read(&mut scratch) {
            Ok(0) | Err(_) => return, // the client closed too, or the time is up
            Ok(_) => {}
        }
    }
}

/// Why we dropped a connection on which no whole request came within --idle-timeout, given
/// what did come (`got`) and how many requests were served before.
fn silent(got: &[u8], served: u32) -> String {
    match (got, served) {
        ([], 0) => "sent no request within --idle-timeout (a browser's spare connection?)".into(),
        ([], n) => format!("idle for --idle-timeout after {}", requests(n)),
        // 0x16 0x03: the start of a TLS handshake, what a browser sends to https://.
        ([0x16, 0x03, ..], _) => format!(
            "sent {} bytes that look like TLS (an https:// address?); this server speaks http://",
            got.len()
        ),
        (got, _) => format!(
            "sent {} bytes of a request head, not all of it, within --idle-timeout",
            got.len()
        ),
    }
}

fn requests(n: u32) -> String {
    match n {
        1 => "1 request".into(),
        n => format!("{n} requests"),
    }
}

// ---- The page at / ---------------------------------------------------------------------------

/// The page: the request head as this server received it, the connection it came on, and what
/// to try next, in Chinese and English. Everything taken from the request is escaped for HTML:
/// a page anywhere can make the browser send anything here (`/?q=<script>…`, a header).
fn page(raw: &[u8], peer: SocketAddr, local: SocketAddr, n: u32, idle: Duration) -> String {
    // The head as text: bytes that are not UTF-8 as U+FFFD, control characters other than
    // line breaks and tabs as `\x1b` (a `\r` not followed by `\n` as `\r`), then HTML's five
    // special characters as entities. Then where each line really ends is written out (`\r\n`,
    // or `\n` alone, as `nc` sends it); terminal_safe left no U+0001 in the text, so it can
    // stand for `\r\n` meanwhile.
    let head = html_escape(&terminal_safe(&String::from_utf8_lossy(raw)))
        .replace("\r\n", "\u{1}")
        .replace('\n', "<span class=\"eol\">\\n</span>\n")
        .replace('\u{1}', "<span class=\"eol\">\\r\\n</span>\n");
    let secs = idle.as_secs_f64();
    format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>第 08 课 · Lesson 08: the browser is a client too</title>
<style>
body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
pre {{ background: #f4f4f4; padding: 1em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }}
.en {{ color: #555; }}
.eol {{ color: #b0b0b0; }}
</style>
</head>
<body>
<h1>浏览器也是客户端 · The browser is a client too</h1>
<p>b/s架构本质上也是c/s架构：浏览器（B）就是客户端（C）。<br>
<span class="en">B/S is C/S: the browser is the client.</span></p>
<p>你的浏览器从 <code>{peer}</code> 连到了 <code>{local}</code>，在这条连接上发来了第 {n} 个请求。下面就是它发来的请求报头，一个字节不差（每行以 <code>\r\n</code> 结尾，空行表示报头结束）：<br>
<span class="en">Your browser connected from <code>{peer}</code> to <code>{local}</code> and sent request {n} on this connection. This is the request head it sent, byte for byte (each line ends in <code>\r\n</code>; an empty line ends the head):</span></p>
<pre id="request">{head}</pre>
<p>刷新页面：请求序号加一，端口不变，因为浏览器还在用同一条连接（keep-alive）。趁这条连接还开着，在另一个终端运行 <code>cargo run --bin lesson08-client</code>（或者换一个浏览器打开本页）：它要等好几秒才有回应。服务端一次只服务一个客户端：它先要等这条连接空闲满 {secs} 秒、把它断开，通常还要再等浏览器预先多开的那条空连接（preconnect）也空闲满 {secs} 秒。第 09-12 课让服务端同时服务多个客户端。<br>
<span class="en">Reload: the request number grows and the port stays the same, because the browser keeps using this connection (keep-alive). While it is open, run <code>cargo run --bin lesson08-client</code> in another terminal (or open this page in another browser): its answer takes seconds. The server serves one client at a time: it waits until this connection has been idle for {secs} s and drops it, and usually then for the spare connection the browser opened beside it (a preconnect) to be idle for {secs} s too. Lessons 09-12 serve many clients at once.</span></p>
</body>
</html>
"#
    )
}

/// `text` with `&`, `<`, `>`, `"` and `'` written as HTML entities: shown, never obeyed.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
