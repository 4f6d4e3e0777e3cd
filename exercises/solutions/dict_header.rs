//! Exercise 5, lesson 04 (notes 3.3, 字典报头): the dict header, byte for byte as Python sends it.
//! 练习 5，第 04 课（笔记 3.3，字典报头）：字典报头要和 Python 发出的一个字节都不差。
//!
//! The notes' server sends each answer after a dict header:
//!
//! ```text
//! data_dict = {'desc': '这是非常重要的数据', 'size': len(res), 'info': '视频很提神醒脑!'}
//! data_json = json.dumps(data_dict)
//! sock.send(struct.pack('i', len(data_json)))
//! sock.send(data_json.encode('utf8'))
//! ```
//!
//! `dict_header` must produce exactly those bytes, so that the notes' Python client can read
//! ours. Two details of `json.dumps` matter: it writes `", "` between items and `": "` after
//! keys, and it escapes every character outside ASCII as `\uXXXX` (two of them, a surrogate
//! pair, above U+FFFF). The second is why the notes' `len(data_json)`, which counts characters,
//! equals the number of bytes sent.
//!
//! 笔记的服务端在每个回答前面先发一个字典报头（代码见上）。`dict_header` 必须生成完全相同的字节，
//! 笔记里的 Python 客户端才能读我们发的东西。`json.dumps` 有两处细节很要紧：元素之间写 `", "`，
//! 键后面写 `": "`；ASCII 以外的每个字符都转义成 `\uXXXX`（U+FFFF 以上的字符是两个，一对代理项）。
//! 正因为第二点，笔记里按字符数计算的 `len(data_json)` 才等于发出去的字节数。

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// `json.dumps(s)` for a string: the quotes, `\"` and `\\`, the short escapes Python uses
/// (`\b \f \n \r \t`), and `\uXXXX` (lowercase hex) for every other character outside the
/// printable ASCII range `' '..='~'`.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// `struct.pack('i', len(data_json)) + data_json.encode('utf8')` for the notes' `data_dict`.
fn dict_header(desc: &str, size: u64, info: &str) -> Vec<u8> {
    let json = format!(
        "{{\"desc\": {}, \"size\": {size}, \"info\": {}}}",
        json_str(desc),
        json_str(info)
    );
    // `json` is ASCII, so its length in bytes is its length in characters.
    let mut out = (json.len() as i32).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out
}

/// Reads one dict header the way the notes' client does (`recv(4)`, `unpack`,
/// `recv(length)`), but with read_exact, and returns the JSON text's bytes.
fn read_header_like_python(sock: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len)?;
    let mut json = vec![0u8; i32::from_le_bytes(len).clamp(0, 65536) as usize];
    sock.read_exact(&mut json)?;
    Ok(json)
}

fn main() -> io::Result<()> {
    let header = dict_header("这是非常重要的数据", 3, "视频很提神醒脑!");
    println!("length bytes: {:02x?}", &header[..4]);
    println!("JSON text:    {}", String::from_utf8_lossy(&header[4..]));

    // And over a socket, to a reader that reads it as the notes' client does.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = thread::spawn(move || read_header_like_python(&mut TcpStream::connect(addr)?));
    let (mut sock, _) = listener.accept()?;
    sock.write_all(&header)?;
    let json = client.join().expect("the client thread panicked")?;
    println!("the client read {} bytes of JSON", json.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// python3 -c "import json; print(json.dumps({'desc': '这是非常重要的数据', 'size': 3,
    ///   'info': '视频很提神醒脑!'}))"
    const PYTHON_HEADER: &str = concat!(
        r#"{"desc": "\u8fd9\u662f\u975e\u5e38\u91cd\u8981\u7684\u6570\u636e", "#,
        r#""size": 3, "info": "\u89c6\u9891\u5f88\u63d0\u795e\u9192\u8111!"}"#
    );

    #[test]
    fn json_str_matches_python_json_dumps() {
        // python3 -c "import json; print(json.dumps('这是'))"
        assert_eq!(json_str("这是"), r#""\u8fd9\u662f""#);
        // python3 -c "import json; print(json.dumps('\b\f\n\r\t\x00\x1f\x7f\"\\/😀é'))"
        assert_eq!(
            json_str("\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}\"\\/😀é"),
            r#""\b\f\n\r\t\u0000\u001f\u007f\"\\/\ud83d\ude00\u00e9""#
        );
        assert_eq!(json_str("plain ASCII ~!"), r#""plain ASCII ~!""#);
        assert_eq!(json_str(""), r#""""#);
    }

    /// The notes' header for `echo hi` (3 bytes): struct.pack('i', 132) = 84 00 00 00.
    #[test]
    fn the_notes_header_is_byte_identical_to_python() {
        let header = dict_header("这是非常重要的数据", 3, "视频很提神醒脑!");
        assert_eq!(header[..4], [0x84, 0, 0, 0]);
        assert_eq!(String::from_utf8_lossy(&header[4..]), PYTHON_HEADER);
        assert_eq!(header.len(), 4 + 132);
    }

    /// Whatever the text, the length in the first 4 bytes is the number of bytes that follow.
    #[test]
    fn the_length_counts_the_bytes_sent() {
        for (desc, info) in [("", ""), ("a \"quoted\" word", "tab\there"), ("😀", "优酷")] {
            let header = dict_header(desc, 1 << 40, info);
            let len = i32::from_le_bytes(header[..4].try_into().unwrap());
            assert_eq!(len as usize, header.len() - 4, "{desc:?} {info:?}");
            assert!(header[4..].is_ascii(), "{desc:?} {info:?}");
        }
    }

    /// Sent over a real socket, header then output, and read back as the notes' client does.
    #[test]
    fn a_client_reading_like_python_gets_the_python_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            let json = read_header_like_python(&mut sock).unwrap();
            let mut rest = Vec::new();
            sock.read_to_end(&mut rest).unwrap();
            (json, rest)
        });
        let (mut sock, _) = listener.accept().unwrap();
        sock.write_all(&dict_header("这是非常重要的数据", 3, "视频很提神醒脑!"))
            .unwrap();
        sock.write_all(b"hi\n").unwrap();
        drop(sock);
        let (json, rest) = client.join().unwrap();
        assert_eq!(String::from_utf8_lossy(&json), PYTHON_HEADER);
        assert_eq!(rest, b"hi\n");
    }
}
