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
//! Reading a frame is two steps: `read_exact` the 4 header bytes, check the length, then
//! `read_exact` exactly that many. `read_exact` loops over short reads; the notes' single
//! `recv(4)` / `recv(n)` works only when the bytes happen to arrive whole (bug 5).
//!
//! The length comes from the peer, so it is checked before anything is allocated: a negative
//! length, or one over the caller's cap, is an error (bug 6: the notes allocate whatever the
//! peer says).

use std::io::{self, ErrorKind, Read, Write};

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
            format!("{len} bytes do not fit the 4-byte 'i' header (at most {})", i32::MAX),
        )
    })?;
    // Little-endian: what `struct.pack('i', n)` produces on x86 and ARM (the notes' machines).
    Ok(n.to_le_bytes())
}

/// Decodes a 4-byte header and checks it: not negative, at most `max`.
pub fn decode_len(header: [u8; 4], max: usize) -> io::Result<usize> {
    let n = i32::from_le_bytes(header);
    let len = usize::try_from(n).map_err(|_| {
        io::Error::new(ErrorKind::InvalidData, format!("negative length {n} in header"))
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

    #[test]
    fn lengths_over_i32_max_cannot_be_framed() {
        let err = encode_len(i32::MAX as usize + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
