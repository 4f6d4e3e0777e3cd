//! Exercise 6, lesson 05 (notes 4, 优酷 upload): a file name from the network is not a path.
//! 练习 6，第 05 课（笔记第 4 节，优酷上传）：从网络上收到的文件名不是路径。
//!
//! The notes' upload server writes to whatever `file_name` the client's dict header says:
//! `open(file_name, 'ab')`. A client that sends `../../escape.mp4` or an absolute path writes
//! outside the upload folder. `check_name` must accept only a bare name: one entry of the
//! folder, nothing that leads out of it. It is lesson 05's rule, word for word; lesson 07
//! applies it too and refuses a few names more (its README says which).
//!
//! `receive_upload` (given) is the notes' section 4 server for one upload: the 4-byte length,
//! the dict header `{"file_name": …, "size": …}`, then `size` bytes. It calls `check_name`
//! before it stores anything. The tests upload over 127.0.0.1 into a scratch folder, and feed
//! `check_name` the list of names lessons 05 and 07 are tested with.
//!
//! 笔记里的上传服务端，客户端字典报头里的 `file_name` 写的是什么，它就往哪里写：
//! `open(file_name, 'ab')`。客户端发来 `../../escape.mp4` 或一个绝对路径，文件就写到了上传文件夹
//! 外面。`check_name` 只能接受裸文件名（bare name）：文件夹里的一项，不能通向文件夹之外。
//! 这条规则和第 05 课的一字不差；第 07 课也用它，还会多拒绝几种名字（见第 07 课的 README）。
//!
//! `receive_upload`（已经写好）是笔记第 4 节服务端处理一次上传的部分：4 字节长度、字典报头
//! `{"file_name": …, "size": …}`，然后是 `size` 个字节。它在保存任何东西之前先调用 `check_name`。
//! 测试通过 127.0.0.1 上传到一个临时文件夹，还会把第 05、07 课测试用的那份名字清单逐个交给
//! `check_name`。

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

/// Accepts `name` only if it is a bare file name (lesson 05's bare-name rule):
/// - not empty, and at most 255 bytes (bytes, not characters: `视` is 3 bytes in UTF-8);
/// - not starting with `.` (that covers `.` and `..`, and hidden files);
/// - no `/`, `\` or `:`, on every system (`\` separates folders on Windows; there `C:x` is a
///   file on drive C: and `x:y` a stream of file x);
/// - no control character (`char::is_control`: a NUL, a newline, an escape).
///
/// 只接受裸文件名（第 05 课的规则）：非空，最多 255 个字节（是字节不是字符，`视` 占 3 个字节）；
/// 不以 `.` 开头（这就排除了 `.`、`..` 和隐藏文件）；在任何系统上都不含 `/`、`\` 和 `:`；
/// 不含控制字符。
fn check_name(name: &str) -> Result<(), String> {
    // TODO: the first check most of us write. Which names in the tests still lead out of the
    // folder, and which good name does it refuse? Check what a bare name is instead.
    // TODO（中文）：这是大多数人写出的第一种检查。测试里哪些名字仍然能通向文件夹之外？
    // 哪个正常的名字反被它拒绝了？改成检查“什么是裸文件名”。
    if name.contains("..") {
        return Err(format!("file name {name:?} contains \"..\""));
    }
    Ok(())
}

/// The largest dict header we read, and the largest file we accept, in bytes.
const MAX_HEADER: usize = 64 * 1024;
const MAX_FILE: u64 = 1024 * 1024;

/// Receives one upload into `dir` (the notes' section 4 server, fixed): returns the stored
/// name, or an `InvalidData` error for a refused header or name.
fn receive_upload(sock: &mut impl Read, dir: &Path) -> io::Result<String> {
    let refuse = |why: String| io::Error::new(ErrorKind::InvalidData, why);
    // `recv(4)`, `struct.unpack('i', …)`, checked; then the JSON dict.
    let mut len = [0u8; 4];
    sock.read_exact(&mut len)?;
    let len = usize::try_from(i32::from_le_bytes(len))
        .ok()
        .filter(|&n| n <= MAX_HEADER)
        .ok_or_else(|| refuse("bad header length".into()))?;
    let mut json = vec![0u8; len];
    sock.read_exact(&mut json)?;
    let dict: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| refuse(format!("bad JSON: {e}")))?;
    let name = dict["file_name"]
        .as_str()
        .ok_or_else(|| refuse("no file_name".into()))?;
    let size = dict["size"].as_u64().filter(|&s| s <= MAX_FILE);
    let size = size.ok_or_else(|| refuse("no size, or too big".into()))?;

    check_name(name).map_err(refuse)?;

    let mut body = vec![0u8; size as usize];
    sock.read_exact(&mut body)?;
    fs::write(dir.join(name), &body)?;
    Ok(name.to_string())
}

/// What the notes' client sends: `struct.pack('i', len(header))`, the header, the bytes.
fn upload_bytes(name: &str, body: &[u8]) -> Vec<u8> {
    let header = serde_json::json!({ "file_name": name, "size": body.len() }).to_string();
    let mut wire = (header.len() as i32).to_le_bytes().to_vec();
    wire.extend_from_slice(header.as_bytes());
    wire.extend_from_slice(body);
    wire
}

/// Uploads `name` over a real connection and returns what `receive_upload` said.
fn upload_over_tcp(name: &str, body: &[u8], dir: &Path) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let wire = upload_bytes(name, body);
    let client = thread::spawn(move || TcpStream::connect(addr)?.write_all(&wire));
    let (mut sock, _) = listener.accept()?;
    let result = receive_upload(&mut sock, dir);
    client.join().expect("the client thread panicked")?;
    result
}

/// A fresh folder under the system's temporary folder, deleted when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "socket-exercises-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("videos")).expect("cannot create a scratch folder");
        Scratch(dir)
    }

    /// The upload folder, `videos`, inside the scratch folder.
    fn videos(&self) -> PathBuf {
        self.0.join("videos")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn main() -> io::Result<()> {
    let scratch = Scratch::new("demo");
    for name in ["01 后期课程安排.mp4", "../escape.mp4"] {
        match upload_over_tcp(name, b"video bytes", &scratch.videos()) {
            Ok(stored) => println!("stored {stored:?}"),
            Err(e) => println!("refused {name:?}: {e}"),
        }
    }
    println!("videos/ holds {:?}", entries(&scratch.videos()));
    println!("and next to it: {:?}", entries(&scratch.0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `bare_name_cases()`: the names lessons 05 and 07 are tested with, each with the rule that
    // refuses it (`Refused`). The exercise must give lesson 05's answer for every one.
    include!("../../tests/common/bare_names.rs");

    /// Every name of the list, and what went wrong with each, in one message.
    #[test]
    fn every_name_gets_lesson05s_answer() {
        let cases = bare_name_cases();
        let mut wrong = Vec::new();
        for (name, refused) in &cases {
            match (check_name(name), *refused == Refused::ByTheBareNameRule) {
                (Ok(()), true) => wrong.push(format!("  accepted {name:?}: it must be refused")),
                (Err(why), false) => wrong.push(format!("  refused {name:?} ({why}): it is bare")),
                _ => {}
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} names got the wrong answer:\n{}",
            wrong.len(),
            cases.len(),
            wrong.join("\n")
        );
    }

    /// Uploaded over a real connection: every name the rule refuses (and an absolute path into
    /// the scratch folder) is refused and nothing is written, neither in `videos` nor next to
    /// it; a good name is stored.
    #[test]
    fn uploads_with_bad_names_write_nothing_anywhere() {
        let scratch = Scratch::new("bare-name");
        let videos = scratch.videos();
        let absolute = scratch.0.join("escape.mp4").to_str().unwrap().to_string();
        let bad = bare_name_cases()
            .into_iter()
            .filter(|(_, refused)| *refused == Refused::ByTheBareNameRule)
            .map(|(name, _)| name)
            .chain([absolute]);
        for name in bad {
            match upload_over_tcp(&name, b"abc", &videos) {
                Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidData, "{name:?}: {e}"),
                Ok(stored) => panic!("{name:?} must be refused, yet it was stored as {stored:?}"),
            }
        }
        assert_eq!(entries(&videos), Vec::<String>::new());
        assert_eq!(entries(&scratch.0), ["videos"]);

        let stored = upload_over_tcp("01 后期课程安排.mp4", b"abc", &videos).unwrap();
        assert_eq!(stored, "01 后期课程安排.mp4");
        assert_eq!(fs::read(videos.join(&stored)).unwrap(), b"abc");
    }
}
