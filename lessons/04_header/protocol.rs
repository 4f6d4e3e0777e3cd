//! Lesson 04's framing: the notes' 报头 (header), section 3.2 and 3.3.
//!
//! TCP delivers a stream of bytes with no message boundaries (lesson 03). Of the four ways to
//! find messages in a stream (fixed size, a delimiter, a length prefix, or closing the
//! connection), the notes pick the length prefix: before each message, its length as a fixed
//! 4-byte header, `struct.pack('i', n)`.
//!
//! ```text
//!  0      4                    4 + n
//!  +------+--------------------+
//!  | n    | n bytes of payload |     n: i32, little-endian (Python's 'i' on x86 and ARM)
//!  +------+--------------------+
//!
//!  struct.pack('i', 17) + b'I am from client!'
//!  11 00 00 00  49 20 61 6d 20 66 72 6f 6d 20 63 6c 69 65 6e 74 21
//!  len = 17     I     a  m     f  r  o  m     c  l  i  e  n  t  !
//! ```
//!
//! Reading a frame is two steps: read exactly the 4 header bytes, check the length, then
//! `read_exact` exactly that many. Both loop over short reads (the header with a loop of its
//! own, `read_len`, so it can tell a clean end of stream before a frame from a stream cut
//! inside one; `read_exact` could not tell those apart); the notes' single
//! `recv(4)` / `recv(n)` works only when the bytes happen to arrive whole (bug 5).
//!
//! The length comes from the peer, so it is checked before anything is allocated: a negative
//! length, or one over the caller's cap, is an error (bug 6: the notes allocate whatever the
//! peer says).
//!
//! Section 3.3's dict header (字典报头) is the same frame with a JSON object as its payload,
//! followed by the `size` bytes the object announces:
//!
//! ```text
//!  +------+---------------------------+---------------------+
//!  | h    | h bytes: JSON header      | size bytes: payload |   h: i32 LE, at most 64 KiB
//!  +------+---------------------------+---------------------+
//!
//!  for the output of `echo hi` ("hi\n", 3 bytes), exactly what the notes' server sends:
//!  84 00 00 00  {"desc": "\u8fd9\u662f…", "size": 3, "info": "\u89c6\u9891…!"}  68 69 0a
//!  h = 132      132 bytes: json.dumps(data_dict), ASCII only                      h  i  \n
//! ```
//!
//! [`json_dumps`] writes JSON the way Python's `json.dumps` does by default, byte for byte:
//! `", "` and `": "` separators and every non-ASCII character escaped (`\u8fd9`). That is why
//! the notes' `struct.pack('i', len(data_json))` is right although it counts characters, not
//! bytes: `json.dumps` output is pure ASCII. [`read_json_header`] accepts any JSON object.

// A server and a client both include this file and each uses only its own half (a server
// writes frames, a client reads them), so unused items are expected in any one binary.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest JSON header (字典报头) we accept: a dict with a name, a size and two short
/// descriptions is well under 1 KiB; 64 KiB leaves room without letting a peer make us
/// allocate much.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// Encodes `len` as the notes' 4-byte header, `struct.pack('i', len)`.
///
/// `'i'` is a signed 32-bit integer: a length over `i32::MAX` (2 GiB - 1) cannot be framed,
/// which the notes' 3.1 shows with `struct.error`. Here it is an `InvalidInput` error.
pub fn encode_len(len: usize) -> io::Result<[u8; 4]> {
    let n = i32::try_from(len).map_err(|_| {
        io::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{len} bytes do not fit the 4-byte 'i' header (at most {})",
                i32::MAX
            ),
        )
    })?;
    // Little-endian: what `struct.pack('i', n)` produces on x86 and ARM (the notes' machines).
    Ok(n.to_le_bytes())
}

/// Decodes a 4-byte header and checks it: not negative, at most `max`.
pub fn decode_len(header: [u8; 4], max: usize) -> io::Result<usize> {
    let n = i32::from_le_bytes(header);
    let len = usize::try_from(n).map_err(|_| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("negative length {n} in header"),
        )
    })?;
    if len > max {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("length {len} in header is over the limit of {max} bytes"),
        ));
    }
    Ok(len)
}

/// Writes one frame: the 4-byte length, then `payload`.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode_len(payload.len())?)?;
    w.write_all(payload)
}

/// Reads the 4-byte length header.
///
/// `Ok(None)`: the stream ended cleanly before the first byte, i.e. on a frame boundary (the
/// peer is done). A stream that ends inside the 4 bytes is `UnexpectedEof`.
pub fn read_len(r: &mut impl Read, max: usize) -> io::Result<Option<usize>> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("stream ended after {got} of the 4 header bytes"),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    decode_len(header, max).map(Some)
}

/// Reads one whole frame of at most `max` payload bytes. `Ok(None)` at a clean end of stream
/// (see [`read_len`]); `UnexpectedEof` when the stream ends mid-frame.
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = read_len(r, max)? else {
        return Ok(None);
    };
    // Safe to allocate: `len` was checked against `max` above.
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Serializes `value` as Python's `json.dumps(value)` does with its defaults: `", "` between
/// items, `": "` after keys, and every character outside printable ASCII escaped as `\uXXXX`
/// (`ensure_ascii=True`, surrogate pairs above U+FFFF). The result is ASCII, so its length in
/// bytes is its length in characters, as the notes' code assumes.
pub fn json_dumps(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonStyle);
    value.serialize(&mut ser).map_err(io::Error::other)?;
    Ok(out)
}

/// Writes 3.3's dict header: the 4-byte length of the JSON text, then the JSON text. The
/// payload that the header announces is written by the caller, after it.
pub fn write_json_header(w: &mut impl Write, header: &impl Serialize) -> io::Result<()> {
    let json = json_dumps(header)?;
    if json.len() > MAX_HEADER_LEN {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a JSON header of {} bytes is over the limit of {MAX_HEADER_LEN}",
                json.len()
            ),
        ));
    }
    write_frame(w, &json)
}

/// Reads 3.3's dict header: 4-byte length (at most [`MAX_HEADER_LEN`]), then that many bytes
/// of JSON, parsed into `T`. `Ok(None)` at a clean end of stream before the header; invalid
/// JSON, or JSON that does not fit `T`, is `InvalidData`. The payload is left for the caller.
pub fn read_json_header<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let Some(json) = read_frame(r, MAX_HEADER_LEN)? else {
        return Ok(None);
    };
    serde_json::from_slice(&json).map(Some).map_err(|e| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("bad JSON header {}: {e}", preview_text(&json)),
        )
    })
}

/// The start of a bad header, for an error message (lossy, at most 60 characters).
fn preview_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// serde_json's formatting hooks set to what Python's `json.dumps` prints.
struct PythonStyle;

impl serde_json::ser::Formatter for PythonStyle {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    /// Runs of string characters that need no JSON escape (serde_json escapes quotes,
    /// backslashes and control characters itself, the same way Python does). Python's
    /// `ensure_ascii` also escapes everything from DEL (0x7f) up.
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
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

    #[test]
    fn header_matches_python_struct_pack_i() {
        // python3 -c "import struct; print(struct.pack('i', 17).hex())"  ->  11000000
        assert_eq!(encode_len(17).unwrap(), [0x11, 0, 0, 0]);
        // struct.pack('i', 1025).hex() -> 01040000
        assert_eq!(encode_len(1025).unwrap(), [0x01, 0x04, 0, 0]);
    }

    #[test]
    fn frames_survive_every_chunk_size() {
        let mut wire = Vec::new();
        for payload in [&b""[..], b"a", b"hello", &[7u8; 300]] {
            write_frame(&mut wire, payload).unwrap();
        }
        for chunk in 1..=wire.len() {
            let mut r = Trickle { data: &wire, chunk };
            assert_eq!(read_frame(&mut r, 1024).unwrap().unwrap(), b"");
            assert_eq!(read_frame(&mut r, 1024).unwrap().unwrap(), b"a");
            assert_eq!(read_frame(&mut r, 1024).unwrap().unwrap(), b"hello");
            assert_eq!(read_frame(&mut r, 1024).unwrap().unwrap(), [7u8; 300]);
            assert!(read_frame(&mut r, 1024).unwrap().is_none(), "chunk {chunk}");
        }
    }

    #[test]
    fn truncation_is_clean_only_on_a_frame_boundary() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        for cut in 0..=wire.len() {
            let mut r = Trickle {
                data: &wire[..cut],
                chunk: 3,
            };
            match read_frame(&mut r, 1024) {
                Ok(None) => assert_eq!(cut, 0),
                Ok(Some(p)) => assert_eq!((cut, &p[..]), (wire.len(), &b"hello"[..])),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "cut {cut}");
                    assert!(cut > 0 && cut < wire.len());
                }
            }
        }
    }

    #[test]
    fn negative_and_oversized_lengths_are_refused_before_allocating() {
        let negative = (-1i32).to_le_bytes();
        let err = read_frame(&mut &negative[..], 1024).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);

        // 2 GiB - 1 announced, no body: refused by the cap, nothing allocated or read.
        let huge = i32::MAX.to_le_bytes();
        let err = read_frame(&mut &huge[..], MAX_HEADER_LEN).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }

    /// The notes' 3.3 header for a 3-byte output, as Python prints it:
    /// `json.dumps({'desc': '这是非常重要的数据', 'size': 3, 'info': '视频很提神醒脑!'})`.
    const PYTHON_HEADER: &str = "{\"desc\": \"\\u8fd9\\u662f\\u975e\\u5e38\\u91cd\\u8981\\u7684\\u6570\\u636e\", \"size\": 3, \"info\": \"\\u89c6\\u9891\\u5f88\\u63d0\\u795e\\u9192\\u8111!\"}";

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct NotesHeader {
        desc: String,
        size: i64,
        info: String,
    }

    fn notes_header(size: i64) -> NotesHeader {
        NotesHeader {
            desc: "这是非常重要的数据".into(),
            size,
            info: "视频很提神醒脑!".into(),
        }
    }

    #[test]
    fn json_dumps_matches_python_byte_for_byte() {
        assert_eq!(
            String::from_utf8(json_dumps(&notes_header(3)).unwrap()).unwrap(),
            PYTHON_HEADER
        );
        // python3 -c "import json; print(json.dumps({'a': [1, 2, '\x7f\x01\"\\😀'],
        //   'b': None, 'c': True, 'd': -5, 'e': 1.5}))"
        let value = serde_json::json!({
            "a": [1, 2, "\u{7f}\u{1}\"\\😀"], "b": null, "c": true, "d": -5, "e": 1.5
        });
        assert_eq!(
            String::from_utf8(json_dumps(&value).unwrap()).unwrap(),
            r#"{"a": [1, 2, "\u007f\u0001\"\\\ud83d\ude00"], "b": null, "c": true, "d": -5, "e": 1.5}"#
        );
    }

    #[test]
    fn json_header_matches_the_notes_server_and_survives_every_chunk_size() {
        let mut wire = Vec::new();
        write_json_header(&mut wire, &notes_header(3)).unwrap();
        wire.extend_from_slice(b"hi\n");
        write_json_header(&mut wire, &notes_header(0)).unwrap();
        // struct.pack('i', 132) + json text + output
        assert_eq!(wire[..4], [0x84, 0, 0, 0]);
        assert_eq!(&wire[4..136], PYTHON_HEADER.as_bytes());
        for chunk in 1..=wire.len() {
            let mut r = Trickle { data: &wire, chunk };
            let h: NotesHeader = read_json_header(&mut r).unwrap().unwrap();
            assert_eq!(h, notes_header(3));
            let mut body = [0u8; 3];
            r.read_exact(&mut body).unwrap();
            assert_eq!(&body, b"hi\n");
            let h: NotesHeader = read_json_header(&mut r).unwrap().unwrap();
            assert_eq!(h.size, 0);
            assert!(read_json_header::<NotesHeader>(&mut r).unwrap().is_none());
        }
    }

    #[test]
    fn json_header_truncated_anywhere_but_a_boundary_is_unexpected_eof() {
        let mut wire = Vec::new();
        write_json_header(&mut wire, &notes_header(3)).unwrap();
        for cut in 0..=wire.len() {
            let mut r = Trickle {
                data: &wire[..cut],
                chunk: 7,
            };
            match read_json_header::<NotesHeader>(&mut r) {
                Ok(None) => assert_eq!(cut, 0),
                Ok(Some(h)) => assert_eq!((cut, h), (wire.len(), notes_header(3))),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "cut {cut}");
                    assert!(cut > 0 && cut < wire.len());
                }
            }
        }
    }

    #[test]
    fn bad_json_headers_are_invalid_data() {
        for bad in [&b"{not json"[..], b"[1, 2]", b"{\"desc\": \"x\"}"] {
            let mut wire = Vec::new();
            write_frame(&mut wire, bad).unwrap();
            let err = read_json_header::<NotesHeader>(&mut &wire[..]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{bad:?}");
        }
        // A header length over 64 KiB is refused before reading (or allocating) the JSON.
        let over = encode_len(MAX_HEADER_LEN + 1).unwrap();
        let err = read_json_header::<NotesHeader>(&mut &over[..]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }

    #[test]
    fn lengths_over_i32_max_cannot_be_framed() {
        let err = encode_len(i32::MAX as usize + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
