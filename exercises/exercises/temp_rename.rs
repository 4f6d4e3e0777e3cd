//! Exercise 7, lesson 05 (notes 4, 优酷 upload): write to a temporary file, then rename it.
//! 练习 7，第 05 课（笔记第 4 节，优酷上传）：先写进临时文件，再改名。
//!
//! The notes' server opens the target with `open(file_name, 'ab')` and appends each piece as
//! it arrives. So uploading a name twice glues the two files together; a client that leaves
//! in the middle leaves half a file under the real name; and while an upload runs, anyone who
//! opens the name reads a half-written file. `store` must write the bytes to a temporary file
//! in the same folder, and give it the real name (`fs::rename`) only once every byte is there;
//! if anything fails on the way, the temporary file is deleted.
//!
//! `receive_upload` (given) is the notes' section 4 server for one upload, with exercise 6's
//! `check_name`. The tests feed `store` through a reader that hands out 1, 2, 3 … bytes per
//! call and looks at the folder between calls, and upload over 127.0.0.1.
//!
//! 笔记的服务端用 `open(file_name, 'ab')` 打开目标文件，收到一段就追加一段。于是同一个名字上传
//! 两次，第二个文件就接在了第一个后面；客户端中途离开，真正的名字下就留着半个文件；上传还在进行时，
//! 谁打开这个名字，读到的都是写了一半的文件。`store` 要把字节写进同一个文件夹里的一个临时文件，
//! 等每个字节都到齐了，才给它改成真正的名字（`fs::rename`）；中途出了任何错，就删掉临时文件。
//!
//! `receive_upload`（已经写好）是笔记第 4 节服务端处理一次上传的部分，用的是练习 6 的
//! `check_name`。测试通过一个每次只给 1、2、3……个字节、并在两次调用之间查看文件夹的读取器把数据
//! 交给 `store`，还会通过 127.0.0.1 上传。

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

/// Stores exactly `size` bytes from `body` as `dir/name`, replacing a file of that name. The
/// name appears (or changes) only once all `size` bytes are written; if `body` ends early
/// (`UnexpectedEof`) or fails, nothing is left behind and an old file of that name is intact.
fn store(dir: &Path, name: &str, body: &mut impl Read, size: u64) -> io::Result<()> {
    // TODO: this is the notes' `open(file_name, 'ab')`, written piece by piece into the real
    // name. Write into a temporary file in `dir` instead, rename it to `name` only when all
    // `size` bytes are there, and delete it when anything fails.
    // TODO（中文）：这是笔记的 `open(file_name, 'ab')`，一段一段直接写进真正的名字。改成写进
    // `dir` 里的一个临时文件，`size` 个字节全部到齐后才改名为 `name`，出了任何错就删掉它。
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    let mut buf = [0u8; 1024];
    let mut received = 0;
    while received < size {
        let want = buf.len().min((size - received) as usize);
        let n = body.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "the client left"));
        }
        file.write_all(&buf[..n])?;
        received += n as u64;
    }
    Ok(())
}

/// Exercise 6's `check_name`, written short: lesson 05's bare-name rule (not empty, at most
/// 255 bytes, no leading `.`, no `/`, `\` or `:`, no control character).
fn check_name(name: &str) -> Result<(), String> {
    let bare = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', ':'])
        && !name.contains(char::is_control);
    match bare {
        true => Ok(()),
        false => Err(format!("{name:?} is not a bare file name")),
    }
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

    store(dir, name, sock, size)?;
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
    for body in [&b"first upload"[..], b"second"] {
        upload_over_tcp("same.mp4", body, &scratch.videos())?;
    }
    let stored = fs::read(scratch.videos().join("same.mp4"))?;
    println!("same.mp4 holds {:?}", String::from_utf8_lossy(&stored));
    println!("videos/ holds {:?}", entries(&scratch.videos()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// Bytes that differ from position to position, as a video's would.
    fn video(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// Hands out 1 byte, then 2, then 3 … per call, and before each call lets `look` check the
    /// folder. After the data, it ends (`Ok(0)`) or, with `fail`, returns that error.
    struct Watch<'a, F: FnMut()> {
        data: &'a [u8],
        next: usize,
        look: F,
        fail: Option<ErrorKind>,
    }

    impl<F: FnMut()> Read for Watch<'_, F> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            (self.look)();
            if self.data.is_empty() {
                if let Some(kind) = self.fail {
                    return Err(io::Error::new(kind, "the connection broke"));
                }
            }
            let n = self.next.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.next += 1;
            Ok(n)
        }
    }

    fn watch<F: FnMut()>(data: &[u8], look: F) -> Watch<'_, F> {
        Watch {
            data,
            next: 1,
            look,
            fail: None,
        }
    }

    #[test]
    fn a_reupload_replaces_the_file_instead_of_appending() {
        let scratch = Scratch::new("replace");
        let videos = scratch.videos();
        let (first, second) = (video(1, 50_001), video(2, 30_002));
        store(&videos, "same.mp4", &mut &first[..], first.len() as u64).unwrap();
        store(&videos, "same.mp4", &mut &second[..], second.len() as u64).unwrap();
        same(
            &fs::read(videos.join("same.mp4")).unwrap(),
            &second,
            "same.mp4",
        );
        assert_eq!(entries(&videos), ["same.mp4"]);
    }

    /// While the bytes arrive, the name does not exist yet (or still holds the old file), and
    /// the bytes go to one other file in the same folder.
    #[test]
    fn the_name_appears_only_when_every_byte_is_there() {
        let scratch = Scratch::new("atomic");
        let videos = scratch.videos();
        let target = videos.join("a.mp4");
        let (first, second) = (video(3, 5_000), video(4, 7_000));

        let mut calls = 0;
        let mut body = watch(&first, || {
            calls += 1;
            assert!(
                !target.exists(),
                "a.mp4 exists before its last byte arrived"
            );
            let others = entries(&videos)
                .into_iter()
                .filter(|e| e != "a.mp4")
                .count();
            assert_eq!(
                others, 1,
                "the bytes must go to one temporary file in videos/"
            );
        });
        store(&videos, "a.mp4", &mut body, first.len() as u64).unwrap();
        assert!(calls > 10);
        same(&fs::read(&target).unwrap(), &first, "a.mp4");

        let mut body = watch(&second, || {
            assert!(
                fs::read(&target).unwrap() == first,
                "the old a.mp4 changed mid-upload"
            );
        });
        store(&videos, "a.mp4", &mut body, second.len() as u64).unwrap();
        same(
            &fs::read(&target).unwrap(),
            &second,
            "a.mp4, uploaded again",
        );
        assert_eq!(entries(&videos), ["a.mp4"]);
    }

    /// A client that leaves after any number of bytes (or whose connection breaks) leaves
    /// nothing behind, and an older file of that name as it was.
    #[test]
    fn a_body_cut_short_leaves_no_file_and_keeps_the_old_one() {
        let scratch = Scratch::new("cut");
        let videos = scratch.videos();
        let data = video(5, 3_000);
        for (old, cut, fail) in [
            (false, 0, None),
            (false, 1, None),
            (false, 2_999, None),
            (false, 1_500, Some(ErrorKind::ConnectionReset)),
            (true, 1_500, None),
            (true, 2_999, Some(ErrorKind::ConnectionReset)),
        ] {
            if old {
                fs::write(videos.join("b.mp4"), b"old").unwrap();
            }
            let mut body = Watch {
                data: &data[..cut],
                next: 1,
                look: || {},
                fail,
            };
            let err = store(&videos, "b.mp4", &mut body, data.len() as u64).unwrap_err();
            let expected = fail.unwrap_or(ErrorKind::UnexpectedEof);
            assert_eq!(err.kind(), expected, "cut at {cut}");
            if old {
                assert_eq!(entries(&videos), ["b.mp4"], "cut at {cut}");
                assert_eq!(fs::read(videos.join("b.mp4")).unwrap(), b"old");
                fs::remove_file(videos.join("b.mp4")).unwrap();
            } else {
                assert_eq!(entries(&videos), Vec::<String>::new(), "cut at {cut}");
            }
        }
    }

    /// Over a real connection: a whole upload is stored; a client that closes halfway
    /// through its file leaves nothing.
    #[test]
    fn over_a_real_socket() {
        let scratch = Scratch::new("tcp");
        let videos = scratch.videos();
        let data = video(6, 100_000);
        assert_eq!(upload_over_tcp("c.mp4", &data, &videos).unwrap(), "c.mp4");
        same(&fs::read(videos.join("c.mp4")).unwrap(), &data, "c.mp4");

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut wire = upload_bytes("d.mp4", &data);
        wire.truncate(wire.len() - 50_000);
        let client = thread::spawn(move || TcpStream::connect(addr).unwrap().write_all(&wire));
        let (mut sock, _) = listener.accept().unwrap();
        let err = receive_upload(&mut sock, &videos).unwrap_err();
        client.join().unwrap().unwrap();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(entries(&videos), ["c.mp4"]);
    }
}
