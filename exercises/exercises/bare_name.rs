//! Exercise 6, lesson 05 (notes 4, 优酷 upload): a file name from the network is not a path.
//!
//! The notes' upload server writes to whatever `file_name` the client's dict header says:
//! `open(file_name, 'ab')`. A client that sends `../../escape.mp4` or an absolute path writes
//! outside the upload folder. `check_name` must accept only a bare name: one entry of the
//! folder, nothing that leads out of it.
//!
//! `receive_upload` (given) is the notes' section 4 server for one upload: the 4-byte length,
//! the dict header `{"file_name": …, "size": …}`, then `size` bytes. It calls `check_name`
//! before it stores anything. The tests upload over 127.0.0.1 into a scratch folder.

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

/// Accepts `name` only if it is a bare file name: not empty, not `.` or `..`, no `/` or `\`
/// (`\` separates folders on Windows), no control character (a NUL, a newline). On Windows
/// also no `:` (`C:x` is a path on drive C).
fn check_name(name: &str) -> Result<(), String> {
    // TODO: the first check most of us write. Which names in the tests still lead out of the
    // folder, and which good name does it refuse? Check what a bare name is instead.
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

    /// The names lesson 07's tests refuse, and the one place each would lead.
    const BAD_NAMES: &[&str] = &[
        "",
        ".",
        "..",
        "../escape.mp4",
        "../../escape.mp4",
        "a/b.mp4",
        "a\\b.mp4",
        "..\\escape.mp4",
        "nul\0byte.mp4",
        "line\nbreak.mp4",
        #[cfg(windows)]
        "C:escape.mp4",
    ];

    /// Names that are fine, dots and spaces included: `a..b` is one entry of the folder.
    const GOOD_NAMES: &[&str] = &[
        "a.mp4",
        "01 后期课程安排.mp4",
        "x",
        "a..b",
        "v1.2..final.mp4",
    ];

    #[test]
    fn bare_names_pass() {
        for name in GOOD_NAMES {
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn names_that_are_paths_are_refused() {
        for name in BAD_NAMES {
            assert!(check_name(name).is_err(), "{name:?} must be refused");
        }
        let absolute = std::env::temp_dir().join("escape.mp4");
        let absolute = absolute.to_str().unwrap();
        assert!(
            check_name(absolute).is_err(),
            "{absolute:?} must be refused"
        );
    }

    /// Uploaded over a real connection: every bad name is refused and nothing is written,
    /// neither in `videos` nor next to it; a good name is stored.
    #[test]
    fn uploads_with_bad_names_write_nothing_anywhere() {
        let scratch = Scratch::new("bare-name");
        let videos = scratch.videos();
        let absolute = scratch.0.join("escape.mp4");
        let absolute = absolute.to_str().unwrap();
        for name in BAD_NAMES.iter().copied().chain([absolute]) {
            let err = upload_over_tcp(name, b"abc", &videos).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{name:?}: {err}");
        }
        assert_eq!(entries(&videos), Vec::<String>::new());
        assert_eq!(entries(&scratch.0), ["videos"]);

        let stored = upload_over_tcp("01 后期课程安排.mp4", b"abc", &videos).unwrap();
        assert_eq!(stored, "01 后期课程安排.mp4");
        assert_eq!(fs::read(videos.join(&stored)).unwrap(), b"abc");
    }
}
