//! Lesson 08's wire: an HTTP/1.1 message is a head (报头) of text lines, then a body.
//!
//! ```text
//!  GET / HTTP/1.1\r\n                            request line: method, path, version
//!  Host: 127.0.0.1:8080\r\n                      header lines, "Name: value"
//!  User-Agent: Mozilla/5.0 (…) Chrome/…\r\n
//!  \r\n                                          an empty line: the head ends here
//!
//!  HTTP/1.1 200 OK\r\n                           status line: version, code, reason
//!  Content-Type: text/html; charset=utf-8\r\n
//!  Content-Length: 2915\r\n                      how many bytes of body follow
//!  \r\n
//!  <!DOCTYPE html>…                              exactly 2915 bytes, then the next message
//! ```
//!
//! Of the four ways to find messages in a byte stream (fixed size, a delimiter, a length
//! prefix, closing the connection), HTTP uses two, one after the other: the head ends at a
//! delimiter, the first empty line; the body's length is in the head, `Content-Length`, which
//! is lesson 04's dict header (字典报头) with its `size`, written as text. (A response without
//! `Content-Length` uses the fourth way: its body ends when the server closes the connection.)
//!
//! The head is a byte stream like any other (lesson 03): it may arrive in pieces, and the
//! bytes after its empty line (a body, or the next request: HTTP/1.1 lets a client send
//! several requests without waiting, "pipelining") may arrive in the same read. So
//! [`read_head`] reads into a buffer until the buffer holds an empty line, hands over the head,
//! and keeps whatever followed it in the buffer for the next call (the 黏包 leftover, kept).
//! It refuses a head over [`MAX_HEAD`] bytes, as lesson 04 refuses a length over its cap:
//! without a cap, a peer that never sends the empty line makes us buffer without end.

// A server and a client both include this file and each uses only its own half (the server
// parses requests, the client responses), so unused items are expected in any one binary.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read};

/// The largest head accepted, in bytes: a browser's request head is 500 to 1,000 bytes (it
/// grows with cookies); Apache's limit for one header line and nginx's default buffer for a
/// long head are both 8 KiB. A server answers a longer head with `431 Request Header Fields
/// Too Large`.
pub const MAX_HEAD: usize = 8 * 1024;

/// How much one read asks for: the notes' `recv(1024)`.
pub const READ_SIZE: usize = 1024;

/// Reads one head from `r`, starting with the bytes already in `buf` (left over from the last
/// call), and returns it, the empty line included. The bytes after the head stay in `buf`.
///
/// - `Ok(None)`: the stream ended cleanly with `buf` empty, between two messages (the peer is
///   done).
/// - `UnexpectedEof`: the stream ended in the middle of a head.
/// - `InvalidData`: no empty line within the first [`MAX_HEAD`] bytes; nothing more is read.
/// - Any error of `r` (a read timeout, a reset) as it is.
pub fn read_head(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let mut chunk = [0u8; READ_SIZE];
    loop {
        // Step 1: is a whole head in the buffer? (Checking and taking are two steps: a head
        // that is not all here yet is no error, we just read more.)
        match head_end(buf) {
            Some(end) if end <= MAX_HEAD => {
                let rest = buf.split_off(end);
                return Ok(Some(std::mem::replace(buf, rest)));
            }
            Some(_) => return Err(too_large()),
            None if buf.len() >= MAX_HEAD => return Err(too_large()),
            None => {}
        }
        // Step 2: read more. `recv(1024)` returns whatever has arrived, 1 byte or 1024.
        match r.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("the stream ended after {} bytes of a head", buf.len()),
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn too_large() -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("no end of the head within {MAX_HEAD} bytes"),
    )
}

/// Where the head in `bytes` ends: just past its first empty line, or `None` if there is no
/// empty line yet. Lines end in CRLF (`\r\n`); a bare LF is accepted too, as RFC 9112 allows a
/// recipient to, so that a request typed into `nc` (which sends the Enter key as LF) works.
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    // An empty line is a line break followed at once by another: `\n\n` or `\n\r\n`.
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match &bytes[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        }
    })
}

/// A head, parsed: its first line (request line or status line) and its header fields.
#[derive(Debug)]
pub struct Head {
    pub first_line: String,
    /// `(name, value)` in the order sent, the value without the spaces around it.
    pub fields: Vec<(String, String)>,
}

impl Head {
    /// Splits a head (as [`read_head`] returns it) into lines and fields. Bytes that are not
    /// UTF-8 become U+FFFD (HTTP heads are ASCII; a peer may send anything). The error says,
    /// in a few words, what is wrong: the server answers it with `400 Bad Request`.
    pub fn parse(head: &[u8]) -> Result<Head, String> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        // A CR anywhere but at a line's end (a "bare CR"): RFC 9112 makes the line invalid. On a
        // terminal it draws what follows over what came before: `Set-Cookie: a=b\rServer: x`
        // shows as `Server: x`.
        let bare_cr = || "a line holds a CR that does not end it (a bare CR)".to_string();
        let first_line = lines.next().unwrap_or_default().to_string();
        if first_line.contains('\r') {
            return Err(bare_cr());
        }
        let mut fields = Vec::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            if line.contains('\r') {
                return Err(bare_cr());
            }
            if line.starts_with([' ', '\t']) {
                // Obsolete line folding: RFC 9112 lets a server refuse it, and we do.
                return Err("a header line starts with a space (line folding)".into());
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err("a header line has no ':'".into());
            };
            if !is_token(name) {
                return Err("a header name is not a token (letters, digits, -)".into());
            }
            fields.push((
                name.to_string(),
                value.trim_matches([' ', '\t']).to_string(),
            ));
        }
        Ok(Head { first_line, fields })
    }

    /// The value of the first field called `name` (any case: `content-length` is
    /// `Content-Length`).
    pub fn field(&self, name: &str) -> Option<&str> {
        let mut found = self
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        found.next().map(|(_, v)| v.as_str())
    }

    /// The values of every field called `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's length from `Content-Length`, checked: `Ok(None)` when there is none;
    /// an error for a value that is not a plain decimal number (`-1`, `1e3`, `0x10`, empty),
    /// one too big to be a length, or two fields that disagree (RFC 9112 asks a recipient to
    /// treat those as an error: which one would be the body's end?).
    pub fn content_length(&self) -> Result<Option<u64>, String> {
        let mut length = None;
        for value in self.all("Content-Length") {
            if value.starts_with('-') {
                return Err(format!("Content-Length {value:?} is negative"));
            }
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("Content-Length {value:?} is not a number"));
            }
            let n: u64 = value
                .parse()
                .map_err(|_| format!("Content-Length {value:?} is too big"))?;
            if length.is_some_and(|seen| seen != n) {
                return Err("two Content-Length fields disagree".into());
            }
            length = Some(n);
        }
        Ok(length)
    }

    /// Whether a `Connection` field lists `option` (`close`, `keep-alive`), in any case.
    pub fn connection_has(&self, option: &str) -> bool {
        self.all("Connection")
            .flat_map(|v| v.split(','))
            .any(|o| o.trim().eq_ignore_ascii_case(option))
    }
}

/// A request line, `METHOD SP TARGET SP VERSION`, checked.
#[derive(Debug, PartialEq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// What the client asked for, as sent: `/`, `/favicon.ico`, `/?q=1`.
    pub target: &'a str,
    pub version: &'a str,
}

impl<'a> RequestLine<'a> {
    /// Splits and checks a request line; the error is the reason for a `400 Bad Request`.
    pub fn parse(line: &'a str) -> Result<RequestLine<'a>, &'static str> {
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the request line is not METHOD PATH VERSION, one space apart");
        };
        if !is_token(method) {
            return Err("the method is not a token (letters, digits, -)");
        }
        // The only form a browser sends to a server that is not a proxy: a path from `/`.
        if !target.starts_with('/') || target.contains(|c: char| c.is_control()) {
            return Err("the path does not start with / or holds a control character");
        }
        if version != "HTTP/1.1" && version != "HTTP/1.0" {
            return Err("the version is not HTTP/1.1 or HTTP/1.0");
        }
        Ok(RequestLine {
            method,
            target,
            version,
        })
    }
}

/// A status line, `HTTP/1.x SP CODE SP REASON`, split: the code and the reason (which may be
/// empty). The error is the reason the client refuses the response.
pub fn parse_status_line(line: &str) -> Result<(u16, &str), String> {
    let bad = || format!("not an HTTP/1.x status line: {line:?}");
    let rest = line.strip_prefix("HTTP/1.").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ' ');
    let (Some(minor), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    if minor.len() != 1 || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Three ASCII digits always parse.
    let code: u16 = code.parse().map_err(|_| bad())?;
    Ok((code, parts.next().unwrap_or("")))
}

/// HTTP's "token": the characters a method or a header name may have (RFC 9110, `tchar`).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A reader whose every read gives up at `deadline` (`TimedOut`): all reads together wait at
/// most until then, however the bytes trickle in. A timeout per read alone would let a peer
/// that sends one byte a second keep us for ever (slowloris). The server reads a request head
/// through it, the client a response's head and its body.
pub struct Until<'a>(
    pub &'a mut socket_lessons::wire::Traced<std::net::TcpStream>,
    pub std::time::Instant,
);

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // What is left of the wait. set_read_timeout refuses zero: the time is up.
        let left = self.1.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.0.get_ref().set_read_timeout(Some(left))?;
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per call, as a real socket may.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    const FAVICON: &[u8] = b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

    /// Two requests glued together (pipelining), handed over in pieces of every size: each
    /// comes out whole, in order, then a clean end.
    #[test]
    fn heads_survive_every_chunk_size_and_pipelining() {
        let wire = [GET, FAVICON].concat();
        for chunk in 1..=wire.len() {
            let mut r = Trickle { data: &wire, chunk };
            let mut buf = Vec::new();
            assert_eq!(read_head(&mut r, &mut buf).unwrap().unwrap(), GET);
            assert_eq!(read_head(&mut r, &mut buf).unwrap().unwrap(), FAVICON);
            assert!(read_head(&mut r, &mut buf).unwrap().is_none(), "{chunk}");
        }
    }

    #[test]
    fn a_stream_cut_inside_a_head_is_unexpected_eof() {
        for cut in 1..GET.len() {
            let mut r = Trickle {
                data: &GET[..cut],
                chunk: 3,
            };
            let err = read_head(&mut r, &mut Vec::new()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }

    /// A head of exactly MAX_HEAD bytes is accepted; one byte more is refused, and so is a
    /// stream that never sends an empty line, after at most MAX_HEAD + one read.
    #[test]
    fn heads_over_the_cap_are_refused() {
        let head = |len: usize| {
            let mut h = b"GET / HTTP/1.1\r\nX: ".to_vec();
            h.resize(len - 4, b'a');
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        let fits = head(MAX_HEAD);
        let mut r = Trickle {
            data: &fits,
            chunk: 1000,
        };
        assert_eq!(read_head(&mut r, &mut Vec::new()).unwrap().unwrap(), fits);
        let over = head(MAX_HEAD + 1);
        let mut r = Trickle {
            data: &over,
            chunk: 1000,
        };
        let err = read_head(&mut r, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);

        let endless = vec![b'G'; 100_000];
        let mut r = Trickle {
            data: &endless,
            chunk: READ_SIZE,
        };
        let mut buf = Vec::new();
        let err = read_head(&mut r, &mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(buf.len() < MAX_HEAD + READ_SIZE, "{}", buf.len());
    }

    #[test]
    fn a_bare_lf_ends_lines_too() {
        let typed = b"GET / HTTP/1.1\nHost: x\n\nnext";
        let mut buf = typed.to_vec();
        let head = read_head(&mut io::empty(), &mut buf).unwrap().unwrap();
        assert_eq!(head, b"GET / HTTP/1.1\nHost: x\n\n");
        assert_eq!(buf, b"next");
        let head = Head::parse(&head).unwrap();
        assert_eq!(head.first_line, "GET / HTTP/1.1");
        assert_eq!(head.field("host"), Some("x"));
    }

    #[test]
    fn fields_are_found_in_any_case_and_trimmed() {
        let head = Head::parse(b"GET / HTTP/1.1\r\nHOST: a \r\nConnection: Keep-Alive, TE\r\n\r\n")
            .unwrap();
        assert_eq!(head.field("Host"), Some("a"));
        assert!(head.connection_has("keep-alive"));
        assert!(!head.connection_has("close"));
        assert_eq!(head.content_length(), Ok(None));
    }

    #[test]
    fn bad_header_lines_are_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\nno colon\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\rServer: x\r\n\r\n",
            b"HTTP/1.1 200 OK\rX: y\r\n\r\n",
        ] {
            assert!(
                Head::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn content_length_must_be_one_plain_number() {
        let length = |fields: &str| {
            Head::parse(format!("HTTP/1.1 200 OK\r\n{fields}\r\n").as_bytes())
                .unwrap()
                .content_length()
        };
        assert_eq!(length("Content-Length: 42\r\n"), Ok(Some(42)));
        assert_eq!(length("content-length: 0\r\n"), Ok(Some(0)));
        assert_eq!(
            length("Content-Length: 7\r\nContent-Length: 7\r\n"),
            Ok(Some(7))
        );
        for bad in ["-1", "1e3", "0x10", "", "+5", "4 2", "99999999999999999999"] {
            assert!(
                length(&format!("Content-Length: {bad}\r\n")).is_err(),
                "{bad:?}"
            );
        }
        assert!(length("Content-Length: 1\r\nContent-Length: 2\r\n").is_err());
    }

    #[test]
    fn request_lines_are_checked() {
        assert_eq!(
            RequestLine::parse("GET /favicon.ico HTTP/1.1"),
            Ok(RequestLine {
                method: "GET",
                target: "/favicon.ico",
                version: "HTTP/1.1"
            })
        );
        for bad in [
            "",
            "GET /",
            "GET  / HTTP/1.1",
            "GET / HTTP/1.1 x",
            "GET http://a/ HTTP/1.1",
            "GET / HTTP/2.0",
            "G(T / HTTP/1.1",
            "\u{16}\u{3}\u{1} / HTTP/1.1",
        ] {
            assert!(RequestLine::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_lines_are_checked() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Ok((200, "OK")));
        assert_eq!(
            parse_status_line("HTTP/1.0 404 File not found"),
            Ok((404, "File not found"))
        );
        assert_eq!(parse_status_line("HTTP/1.1 204"), Ok((204, "")));
        for bad in [
            "",
            "HTTP/2 200 OK",
            "HTTP/1.1 20 OK",
            "ICY 200 OK",
            "HTTP/1.1 2x0 OK",
        ] {
            assert!(parse_status_line(bad).is_err(), "{bad:?}");
        }
    }
}
