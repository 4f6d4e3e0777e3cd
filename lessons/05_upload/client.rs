//! Lesson 05, client: the notes' section 4 (优酷项目中 视频的上传与下载), the upload client, fixed.
//!
//! The notes' client, line for line: list a folder with numbers, read a number, send that file
//! (the notes' dict header on lesson 04's 4-byte frame, then its bytes), until end of input
//! (Ctrl-D; Ctrl-Z on Windows). Bug 10 of the top-level README is fixed at its lines.
//!
//! ```text
//! cargo run --bin lesson05-server -- --dir videos                  # terminal 1
//! cargo run --bin lesson05-client -- --dir some/folder             # terminal 2
//! ```
//!
//! Watch for: the server never answers (as in the notes): `sent` means "handed to the network",
//! its `stored` line means complete. `--trace` shows the 4-byte header, the JSON, the chunks.

#[path = "../04_header/protocol.rs"]
mod framing;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;
use socket_lessons::{cli, input::Input, wire::Traced};

/// Lesson 05 client: upload files from a folder to the lesson 05 server, chosen by number.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: cli::Common,

    /// The folder whose files are offered (the notes' DATA_PATH)
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// The notes' `data_dict`, key for key and in the same order.
#[derive(Serialize)]
struct Header<'a> {
    file_name: &'a str,
    desc: &'a str,
    size: u64,
    info: &'a str,
}

/// Bytes per `read` of the file and `write_all` to the socket (the server uses the same).
const CHUNK: usize = 64 * 1024;

fn main() -> Result<()> {
    let args: Args = cli::parse();
    // client = socket.socket(); client.connect(('192.168.11.70', 8080))
    let sock = TcpStream::connect(args.common.addr)
        .with_context(|| format!("cannot connect to {}", args.common.addr))?;
    let mut sock = Traced::new(sock, args.common.trace);
    let mut input = Input::new();
    let mut buf = vec![0u8; CHUNK];

    loop {
        // movie_name_list = os.listdir(DATA_PATH)
        let names = list_files(&args.dir)?;
        // for i, j in enumerate(movie_name_list, 1): print(i, j)
        for (i, name) in names.iter().enumerate() {
            println!("{} {name}", i + 1);
        }
        // choice = input('选择想要上传的电影编号>>>:').strip()
        let Some(choice) = input.line("选择想要上传的电影编号>>>:")? else {
            return Ok(()); // end of input: done (closing the socket tells the server)
        };
        // if choice.isdigit(): choice = int(choice)
        // if choice in range(1, len(movie_name_list)+1): movie_name = movie_name_list[choice-1]
        let index = choice.parse::<usize>().ok().and_then(|n| n.checked_sub(1));
        let Some(name) = index.and_then(|i| names.get(i)) else {
            // The notes list the folder again in silence; we say why first.
            println!("{choice:?} is not a number from 1 to {}", names.len());
            continue;
        };
        // print(movie_name)
        println!("{name}");
        let size = upload(&mut sock, &args.dir, name, &mut buf)?;
        println!("sent {name:?}: {size} bytes");
    }
}

/// One upload: the dict header, then the file's bytes. Returns the size sent.
fn upload(sock: &mut impl Write, dir: &Path, name: &str, buf: &mut [u8]) -> Result<u64> {
    // movie_path = os.path.join(DATA_PATH, movie_name)
    let path = dir.join(name);
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    // 'size': os.path.getsize(movie_path)
    let size = file.metadata()?.len();
    // data_dict = {'file_name': '波多野老师合集.mp4', 'desc': ..., 'size': ..., 'info': ...}
    // BUG 10 fixed: the chosen file's own name, not one hard-coded name for every file.
    let header = Header {
        file_name: name,
        desc: "这是非常重要的数据",
        size,
        info: "视频很提神醒脑!",
    };
    // data_json = json.dumps(data_dict); data_first = struct.pack('i', len(data_json))
    // client.send(data_first); client.send(data_json.encode('utf8'))
    // json_dumps writes Python's bytes (non-ASCII escaped), write_all sends them whole.
    framing::write_json_header(sock, &header)
        .context("cannot send the header (did the server drop us? see its log)")?;

    // with open(movie_path, 'rb') as f: for line in f: client.send(line)
    // BUG 10 fixed: chunks, not "lines" (`send` may take part of one), each sent whole with
    // write_all; at most the `size` the header promised, even if the file grows meanwhile.
    let mut body = file.take(size);
    let mut sent: u64 = 0;
    while let n @ 1.. = body.read(buf).context("cannot read the file")? {
        sock.write_all(&buf[..n])
            .context("cannot send the file (did the server drop us? see its log)")?;
        sent += n as u64;
    }
    if sent < size {
        // The server waits for the rest; only closing the connection can tell it.
        bail!("{name:?} shrank to {sent} bytes while being sent; the server drops it");
    }
    Ok(size)
}

/// The regular files of `dir`, sorted (`os.listdir` has no order), names that are UTF-8 only.
fn list_files(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_file()) // follows a symbolic link, as getsize does
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
