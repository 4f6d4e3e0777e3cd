//! The lesson 07 transfer benchmark: how close `lesson07-client upload`/`download` come to a
//! plain TCP copy, and how much memory client and server need while they do it.
//!
//! Run it with `bench/transfer.sh` (it builds everything in release mode first), or:
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/transfer_bench [--size 512M] [--rounds 3] [--sweep]
//! ```
//!
//! Rows, over loopback, with the file and every copy on tmpfs (`/dev/shm` where present):
//!
//! 1. floor: `tcp_copy` (examples/tcp_copy.rs), 1 MiB buffers, no framing, no digest;
//! 2. `lesson07-client upload` to a freshly started `lesson07-server`;
//! 3. `lesson07-client download` of it back from a freshly started server;
//! 4. the notes' section 4 upload logic in Python (`bench/notes_upload.py`), when python3 runs.
//!
//! Rounds alternate the rows (floor, upload, download, python, then upload, download, floor,
//! python, …: the Rust rows rotate, the Python row runs last) so that the machine's drift hits
//! all rows alike; each row's figure is the median of its rounds. Every copy is
//! compared with the original byte for byte; a difference, or a client that exits non-zero
//! (lesson 07's client exits non-zero when the digest does not verify), fails the run.
//!
//! Peak resident memory is `VmHWM` from `/proc/PID/status` (Linux only; "n/a" elsewhere). A
//! server is started fresh for every row of every round, so its peak belongs to one transfer;
//! it is read after the transfer while the server still runs. A client's, or a one-shot
//! receiver's, is polled every 2 ms until it exits: `VmHWM` only grows, so the last reading is
//! its peak up to a few milliseconds before exit.
//!
//! `--sweep` runs the floor's knobs instead (buffer sizes, `io::copy`, digest, `BufWriter`, the
//! notes' one-write-per-line), each row against the 1 MiB floor.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::Parser;

const MIB: f64 = 1024.0 * 1024.0;
/// The targets of issue 5.
const TARGET_RATIO: f64 = 0.85;
const TARGET_RSS_KIB: u64 = 8 * 1024;

#[derive(Parser)]
#[command(
    about = "Lesson 07 transfer benchmark (loopback, tmpfs): MiB/s, ratio to a plain TCP copy, peak RSS"
)]
struct Args {
    /// Size of the test file: bytes, or with K, M or G suffix (1024-based)
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    size: u64,
    /// Rounds; each row's figure is the median of its rounds (9 give a steadier ratio)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Directory for the test file and all copies (default: /dev/shm, else the temp dir)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Python interpreter for the notes' upload row
    #[arg(long, default_value = "python3")]
    python: String,
    /// Leave out the notes' Python upload row
    #[arg(long)]
    no_python: bool,
    /// Run the floor's sweep (buffer sizes, io::copy, digest, BufWriter, lines) instead
    #[arg(long)]
    sweep: bool,
    /// Exit 3 when a target is missed
    #[arg(long)]
    strict: bool,
    /// Keep the work directory (test file and copies) afterwards
    #[arg(long)]
    keep: bool,
    /// Self-test of the byte comparison: flip one byte of the server's copy before each download
    #[arg(long, hide = true)]
    corrupt_server_copy: bool,
    /// Do not write and delete a scratch file of the test size before each row (see --help)
    #[arg(long)]
    no_prefault: bool,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    let shift = match unit {
        "" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "m" | "MiB" => 20,
        "G" | "g" | "GiB" => 30,
        _ => return Err(format!("bad size unit in {text:?} (use K, M or G)")),
    };
    match n.checked_mul(1 << shift) {
        Some(size) if size > 0 => Ok(size),
        _ => Err(format!("size {text:?} out of range")),
    }
}

/// What one row runs.
#[derive(Clone)]
enum Kind {
    /// `tcp_copy recv` + `tcp_copy send` with these extra arguments for (recv, send).
    Floor(Vec<&'static str>, Vec<&'static str>),
    Upload,
    Download,
    Python,
}

struct Row {
    label: String,
    kind: Kind,
    samples: Vec<Sample>,
}

struct Sample {
    secs: f64,
    client: Usage,
    server: Usage,
}

/// Paths of everything the benchmark runs and writes.
struct Env {
    release: PathBuf,
    python: Option<String>,
    work: PathBuf,
    src: PathBuf,
    size: u64,
    corrupt: bool,
}

impl Env {
    fn bin(&self, name: &str) -> PathBuf {
        self.release
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }
    fn example(&self, name: &str) -> PathBuf {
        self.release
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }
    fn name(&self) -> String {
        // The test file's name is plain ASCII; unwrap cannot fail for it.
        self.src.file_name().unwrap().to_string_lossy().into_owned()
    }
}

fn main() {
    let args: Args = socket_lessons::cli::parse();
    match run(&args) {
        Ok(missed) if missed && args.strict => std::process::exit(3),
        Ok(_) => {}
        Err(err) => {
            eprintln!("transfer_bench: FAILED: {err:#}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> Result<bool> {
    let exe = std::env::current_exe().context("current_exe")?;
    // target/release/examples/transfer_bench -> target/release
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot find the build directory from {}", exe.display()))?
        .to_path_buf();
    let base = match &args.dir {
        Some(dir) => dir.clone(),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    let work = base.join(format!("socket-lessons-bench-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
    let python = if args.no_python || args.sweep {
        None
    } else {
        python_path(&args.python)
    };
    let env = Env {
        release,
        python,
        src: work.join("bench-video.bin"),
        work,
        size: args.size,
        corrupt: args.corrupt_server_copy,
    };
    // Deleted when this guard drops: also on an error or a panic (a closed stdout pipe).
    let _cleanup = Cleanup {
        dir: env.work.clone(),
        keep: args.keep,
    };
    bench(args, &env)
}

/// Removes the work directory (test file and copies) when dropped, unless `--keep`.
struct Cleanup {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The interpreter's real path (`sys.executable`), if it runs: a launcher such as a pyenv shim
/// costs about 80 ms per start here, which would be counted in the Python row's time.
fn python_path(python: &str) -> Option<String> {
    let out = Command::new(python)
        .arg("-c")
        .arg("import socket, struct, json, sys; print(sys.executable)")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

fn bench(args: &Args, env: &Env) -> Result<bool> {
    for path in [env.example("tcp_copy")]
        .into_iter()
        .chain((!args.sweep).then(|| env.bin("lesson07-server")))
        .chain((!args.sweep).then(|| env.bin("lesson07-client")))
    {
        ensure!(
            path.exists(),
            "{} is missing: run `cargo build --release --bins --examples` first",
            path.display()
        );
    }
    let gen_start = Instant::now();
    make_file(&env.src, env.size)?;
    eprintln!(
        "made {} ({} bytes) in {:.1} s",
        env.src.display(),
        env.size,
        gen_start.elapsed().as_secs_f64()
    );

    let mut rows = if args.sweep {
        sweep_rows()
    } else {
        main_rows(env)
    };
    println!("{}", machine_line());
    println!(
        "file: {} MiB on {} (loopback 127.0.0.1), {} round(s), rows alternated and rotated, median",
        env.size as f64 / MIB,
        env.work.display(),
        args.rounds
    );
    match &env.python {
        Some(python) => println!("python row: {python} bench/notes_upload.py"),
        None if !args.sweep && !args.no_python => {
            println!(
                "python row: left out ({} does not run; try --python PATH)",
                args.python
            )
        }
        None => {}
    }
    println!("load average before: {}", loadavg());
    if !args.sweep {
        // The server's copy for the download row, in case it runs before the upload row.
        let dir = env.work.join("server");
        fs::create_dir_all(&dir)?;
        fs::copy(&env.src, dir.join(env.name())).context("copy the file for the download row")?;
    }
    // The Python row (always the last row) runs last in every round; the others rotate: each
    // round starts one row later (round 2: upload, download, floor, python), so that with 3
    // rounds each Rust row runs once first, once second, once right after the Python row (whose
    // seconds of small writes leave the machine in a state the next row pays for).
    let n = rows.len() - usize::from(matches!(rows.last().map(|r| &r.kind), Some(Kind::Python)));
    for round in 1..=args.rounds {
        let first = (round as usize - 1) % n;
        for i in (first..n).chain(0..first).chain(n..rows.len()) {
            let row = &mut rows[i];
            if !args.no_prefault {
                prefault(&env.work, env.size)?;
            }
            let sample = run_row(env, &row.kind).with_context(|| format!("row {:?}", row.label))?;
            eprintln!(
                "round {round} {:<32} {:>6.0} MiB/s  client {} {}  server {} {}  load {}",
                row.label,
                env.size as f64 / MIB / sample.secs,
                kib(sample.client.kib),
                cpu(sample.client.ticks),
                kib(sample.server.kib),
                cpu(sample.server.ticks),
                loadavg()
            );
            row.samples.push(sample);
        }
    }
    println!("load average after:  {}", loadavg());
    Ok(print_table(env, &rows, args.sweep))
}

fn main_rows(env: &Env) -> Vec<Row> {
    let mut rows = vec![
        row("floor: tcp_copy 1 MiB", Kind::Floor(vec![], vec![])),
        row("lesson07 upload", Kind::Upload),
        row("lesson07 download", Kind::Download),
    ];
    if env.python.is_some() {
        rows.push(row("notes' upload (python3)", Kind::Python));
    }
    rows
}

fn sweep_rows() -> Vec<Row> {
    let buf = |size: &'static str| Kind::Floor(vec!["--buf", size], vec!["--buf", size]);
    vec![
        row("floor: buf 1 MiB", buf("1M")),
        row("buf 1 KiB (notes' recv(1024))", buf("1K")),
        row("buf 8 KiB", buf("8K")),
        row("buf 64 KiB", buf("64K")),
        row("buf 256 KiB", buf("256K")),
        row("buf 4 MiB", buf("4M")),
        row(
            "buf 1 MiB, receiver to /dev/null",
            Kind::Floor(vec!["--out", "/dev/null"], vec![]),
        ),
        row(
            "io::copy both ends",
            Kind::Floor(vec!["--io-copy"], vec!["--io-copy"]),
        ),
        row(
            "buf 1 MiB + XXH3 both ends",
            Kind::Floor(vec!["--digest"], vec!["--digest"]),
        ),
        row(
            "buf 1 MiB + BufWriter",
            Kind::Floor(vec!["--bufwriter"], vec!["--bufwriter"]),
        ),
        row(
            "send per line (notes)",
            Kind::Floor(vec![], vec!["--lines"]),
        ),
        row(
            "send per line + BufWriter",
            Kind::Floor(vec![], vec!["--lines", "--bufwriter"]),
        ),
    ]
}

fn row(label: &str, kind: Kind) -> Row {
    Row {
        label: label.to_string(),
        kind,
        samples: Vec::new(),
    }
}

/// Writes `size` bytes into a scratch file and deletes it, untimed, right before a row.
///
/// Every row's receiver writes `size` bytes of new file into tmpfs, and the time that takes
/// depends on where its memory pages come from. On a virtual machine with free page reporting
/// (virtio-balloon: Firecracker, many clouds) the guest hands pages it freed back to the host
/// after about two seconds, and touching them again costs a fault in the host: measured here,
/// writing 512 MiB into /dev/shm took 0.45-2.6 s after 3 s idle, 0.25-0.9 s right after another
/// 512 MiB was written and deleted. Without this step a row that happens to follow a deletion
/// (the upload row deletes the previous upload just before) gets warm pages, the others cold
/// ones, and the ratios measure the page allocator, not the transfer.
fn prefault(work: &Path, size: u64) -> Result<()> {
    let path = work.join("prefault.tmp");
    let mut file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])
            .with_context(|| format!("write {}", path.display()))?;
        left -= n as u64;
    }
    drop(file);
    fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))
}

/// Writes `size` pseudo-random bytes (xorshift64*, incompressible enough for a video).
fn make_file(path: &Path, size: u64) -> Result<()> {
    if fs::metadata(path).map(|m| m.len() == size).unwrap_or(false) {
        return Ok(());
    }
    let mut file = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            chunk.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])
            .with_context(|| format!("write {}", path.display()))?;
        left -= n as u64;
    }
    Ok(())
}

fn run_row(env: &Env, kind: &Kind) -> Result<Sample> {
    match kind {
        Kind::Floor(recv_args, send_args) => {
            // `--out /dev/null` among the receiver's arguments: nothing to compare.
            let null = recv_args.contains(&"/dev/null");
            let out = env.work.join("floor.bin");
            let mut recv = Command::new(env.example("tcp_copy"));
            recv.args(["recv", "--addr", "127.0.0.1:0"]);
            if !null {
                recv.arg("--out").arg(&out);
            }
            recv.args(recv_args);
            let mut send = Client::new(env.example("tcp_copy"), ["send"]);
            send.after(send_args).after([&env.src]);
            let sample = one_shot_pair(recv, send)?;
            if !null {
                same_bytes(&env.src, &out)?;
                fs::remove_file(&out)?;
            }
            Ok(sample)
        }
        Kind::Python => {
            let dir = env.work.join("python");
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir)?;
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/notes_upload.py");
            // Unwrap: main_rows adds this row only when a python was found.
            let python = env.python.as_deref().unwrap();
            let mut server = Command::new(python);
            server
                .arg(&script)
                .args(["server", "--addr", "127.0.0.1:0", "--dir"])
                .arg(&dir);
            let mut client = Client::new(python, [script.as_os_str(), "client".as_ref()]);
            client.after([&env.src]);
            let sample = one_shot_pair(server, client)?;
            same_bytes(&env.src, &dir.join(env.name()))?;
            fs::remove_dir_all(&dir)?;
            Ok(sample)
        }
        Kind::Upload => {
            let dir = env.work.join("server");
            fs::create_dir_all(&dir)?;
            // A fresh start for every upload: no old copy, no re-upload beside it.
            let _ = fs::remove_file(dir.join(env.name()));
            let mut client = Client::new(env.bin("lesson07-client"), [""; 0]);
            client.after(["upload".as_ref(), env.src.as_os_str()]);
            let sample = lesson07(env, &dir, client)?;
            same_bytes(&env.src, &dir.join(env.name()))?;
            Ok(sample)
        }
        Kind::Download => {
            let dir = env.work.join("server");
            let out = env.work.join("download");
            fs::create_dir_all(&out)?;
            ensure!(
                dir.join(env.name()).exists(),
                "nothing to download: {} is missing",
                dir.join(env.name()).display()
            );
            if env.corrupt {
                flip_byte(&dir.join(env.name()), env.size / 2)?;
            }
            let mut client = Client::new(env.bin("lesson07-client"), [""; 0]);
            client
                .after(["download", &env.name(), "--out"])
                .after([&out])
                .after(["--force"]);
            let sample = lesson07(env, &dir, client)?;
            same_bytes(&env.src, &out.join(env.name())).context("downloaded file")?;
            fs::remove_file(out.join(env.name()))?;
            Ok(sample)
        }
    }
}

/// A server that serves one connection and exits, and its client: timed from the client's
/// start until both have exited (the server exits after the last byte is in its file).
fn one_shot_pair(server: Command, client: Client) -> Result<Sample> {
    let mut server = Server::start(server)?;
    let client = client.command(server.addr);
    let server_hwm = Watch::start(server.child.id());
    let start = Instant::now();
    let (client_status, client_use, client_out) = run_client(client)?;
    let server_status = server.child.wait()?;
    let secs = start.elapsed().as_secs_f64();
    let server_use = server_hwm.finish();
    check(client_status, "client", &client_out)?;
    check(server_status, "server", &server.log())?;
    Ok(Sample {
        secs,
        client: client_use,
        server: server_use,
    })
}

/// A fresh `lesson07-server --dir DIR` for one transfer, timed from the client's start to its
/// exit (the client exits after the server's reply, or after the trailer and digest check).
fn lesson07(env: &Env, dir: &Path, client: Client) -> Result<Sample> {
    let mut cmd = Command::new(env.bin("lesson07-server"));
    cmd.args(["--addr", "127.0.0.1:0", "--dir"]).arg(dir);
    let server = Server::start(cmd)?;
    let client = client.command(server.addr);
    let server_hwm = Watch::start(server.child.id());
    let start = Instant::now();
    let (status, client_use, out) = run_client(client)?;
    let secs = start.elapsed().as_secs_f64();
    // Still running: the reading now is the peak of this one transfer.
    let server_use = server_hwm.finish();
    check(status, "lesson07-client", &out)?;
    drop(server);
    Ok(Sample {
        secs,
        client: client_use,
        server: server_use,
    })
}

/// A client's command line: program, arguments before `--addr HOST:PORT`, arguments after.
struct Client {
    program: OsString,
    before: Vec<OsString>,
    after: Vec<OsString>,
}

impl Client {
    fn new<I, S>(program: impl AsRef<OsStr>, before: I) -> Client
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Client {
            program: program.as_ref().to_owned(),
            before: before.into_iter().map(|s| s.as_ref().to_owned()).collect(),
            after: Vec::new(),
        }
    }

    fn after<I, S>(&mut self, args: I) -> &mut Client
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.after
            .extend(args.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    fn command(self, addr: SocketAddr) -> Command {
        let mut cmd = Command::new(self.program);
        cmd.args(self.before)
            .arg("--addr")
            .arg(addr.to_string())
            .args(self.after);
        cmd
    }
}

fn run_client(mut cmd: Command) -> Result<(ExitStatus, Usage, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {cmd:?}"))?;
    let watch = Watch::start(child.id());
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = child.wait()?;
    let usage = watch.finish();
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    Ok((status, usage, text))
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn check(status: ExitStatus, who: &str, output: &str) -> Result<()> {
    ensure!(
        status.success(),
        "{who} exited with {status}; it printed:\n{}",
        output.trim_end()
    );
    Ok(())
}

/// A server process: waits for its `listening on IP:PORT` line; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Option<JoinHandle<String>>,
    _stdout: JoinHandle<()>,
}

impl Server {
    fn start(mut cmd: Command) -> Result<Server> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {cmd:?}"))?;
        let log = drain(child.stderr.take());
        // Unwrap: stdout was piped just above.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        let addr = match first.trim().strip_prefix("listening on ") {
            Some(addr) => addr.parse().context("address after `listening on`")?,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{cmd:?} printed {first:?} instead of `listening on IP:PORT`; stderr:\n{}",
                    log.join().unwrap_or_default()
                );
            }
        };
        // Keep reading its stdout (a log line per request) so it never blocks on a full pipe.
        let rest = thread::spawn(move || discard(stdout));
        Ok(Server {
            child,
            addr,
            log: Some(log),
            _stdout: rest,
        })
    }

    /// Its stderr so far; ends it first, so that the pipe reaches its end.
    fn log(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log
            .take()
            .and_then(|log| log.join().ok())
            .unwrap_or_default()
    }
}

fn discard(mut stdout: BufReader<ChildStdout>) {
    let _ = io::copy(&mut stdout, &mut io::sink());
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak memory and CPU time of one process.
#[derive(Clone, Copy, Default)]
struct Usage {
    /// `VmHWM`, KiB.
    kib: Option<u64>,
    /// user + system CPU time, in clock ticks of 1/100 s (`USER_HZ`).
    ticks: Option<u64>,
}

/// `VmHWM` and CPU time of one process, polled in a thread until [`Watch::finish`] or until
/// the process is gone.
struct Watch {
    pid: u32,
    peak: Arc<AtomicU64>,
    ticks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Watch {
    fn start(pid: u32) -> Watch {
        let peak = Arc::new(AtomicU64::new(0));
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, t, s) = (peak.clone(), ticks.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                // CPU time first: an exited, not yet reaped process (a zombie) still has it.
                if let Some(now) = cpu_ticks(pid) {
                    t.fetch_max(now, Ordering::Relaxed);
                }
                match vm_hwm_kib(pid) {
                    Some(kib) => {
                        p.fetch_max(kib, Ordering::Relaxed);
                    }
                    // Gone, or a zombie (no Vm lines): its last reading stands.
                    None => break,
                }
                thread::sleep(Duration::from_millis(2));
            }
        });
        Watch {
            pid,
            peak,
            ticks,
            stop,
            thread,
        }
    }

    /// Stops polling; one last reading if the process is still there.
    fn finish(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        if let Some(kib) = vm_hwm_kib(self.pid) {
            self.peak.fetch_max(kib, Ordering::Relaxed);
        }
        if let Some(now) = cpu_ticks(self.pid) {
            self.ticks.fetch_max(now, Ordering::Relaxed);
        }
        let nonzero = |v: u64| (v != 0).then_some(v);
        Usage {
            kib: nonzero(self.peak.load(Ordering::Relaxed)),
            ticks: cfg!(target_os = "linux").then(|| self.ticks.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(target_os = "linux")]
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime from `/proc/PID/stat` (fields 14 and 15, after the `(comm)` field).
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(not(target_os = "linux"))]
fn cpu_ticks(_pid: u32) -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn vm_hwm_kib(_pid: u32) -> Option<u64> {
    None
}

/// `--corrupt-server-copy`: the download then delivers bytes that differ from the original, and
/// the comparison below must fail the run.
fn flip_byte(path: &Path, at: u64) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut byte)?;
    byte[0] ^= 0xFF;
    file.seek(SeekFrom::Start(at))?;
    file.write_all(&byte)?;
    Ok(())
}

/// Compares two files byte for byte; an error names the first difference.
fn same_bytes(a: &Path, b: &Path) -> Result<()> {
    let (ma, mb) = (
        fs::metadata(a)?,
        fs::metadata(b).with_context(|| format!("{}", b.display()))?,
    );
    ensure!(
        ma.len() == mb.len(),
        "{} has {} bytes, {} has {}",
        b.display(),
        mb.len(),
        a.display(),
        ma.len()
    );
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        ensure!(n == m, "{} changed while being compared", b.display());
        if n == 0 {
            return Ok(());
        }
        if ba[..n] != bb[..n] {
            // Unwrap: the slices differ, so some position differs.
            let at = (0..n).find(|&i| ba[i] != bb[i]).unwrap();
            bail!(
                "{} differs from the original at byte {}",
                b.display(),
                offset + at as u64
            );
        }
        offset += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn cpu(ticks: Option<u64>) -> String {
    match ticks {
        Some(t) => format!("{:.2} s", t as f64 / 100.0),
        None => "n/a".into(),
    }
}

fn kib(k: Option<u64>) -> String {
    match k {
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
        None => "n/a".into(),
    }
}

/// Prints the table and the targets; returns whether a target was missed.
fn print_table(env: &Env, rows: &[Row], sweep: bool) -> bool {
    let rate = |r: &Row| env.size as f64 / MIB / median(r.samples.iter().map(|s| s.secs).collect());
    let floor = rate(&rows[0]);
    println!();
    println!(
        "{:<32} {:>6} {:>7}  {:<16} {:>10} {:>10} {:>10} {:>10}",
        "row",
        "MiB/s",
        "x floor",
        "rounds (MiB/s)",
        "client RSS",
        "server RSS",
        "client CPU",
        "server CPU"
    );
    for r in rows {
        let rounds: Vec<String> = r
            .samples
            .iter()
            .map(|s| format!("{:.0}", env.size as f64 / MIB / s.secs))
            .collect();
        let client = r.samples.iter().filter_map(|s| s.client.kib).max();
        let server = r.samples.iter().filter_map(|s| s.server.kib).max();
        let ticks = |f: fn(&Sample) -> Option<u64>| {
            let v: Vec<f64> = r.samples.iter().filter_map(f).map(|t| t as f64).collect();
            (!v.is_empty()).then(|| median(v) as u64)
        };
        println!(
            "{:<32} {:>6.0} {:>7.2}  {:<16} {:>10} {:>10} {:>10} {:>10}",
            r.label,
            rate(r),
            rate(r) / floor,
            rounds.join(" "),
            kib(client),
            kib(server),
            cpu(ticks(|s| s.client.ticks)),
            cpu(ticks(|s| s.server.ticks)),
        );
    }
    println!("MiB/s: file size / median wall time (client start to the last byte stored and acknowledged).");
    println!("RSS: peak resident memory (VmHWM), largest over the rounds. CPU: user+system seconds, median.");
    println!("For tcp_copy and python rows the client is the sender, the server the receiver.");
    println!("every copy compared with the original: identical (a /dev/null row has no copy)");
    if sweep {
        return false;
    }
    println!();
    let mut missed = false;
    for r in rows
        .iter()
        .filter(|r| matches!(r.kind, Kind::Upload | Kind::Download))
    {
        let ratio = rate(r) / floor;
        let ok = ratio >= TARGET_RATIO;
        missed |= !ok;
        println!(
            "target {:<18} >= {TARGET_RATIO:.2}x floor (digest verified by the client): {:.3}x  {}",
            r.label,
            ratio,
            verdict(ok)
        );
        for (who, peak) in [
            (
                "client",
                r.samples.iter().filter_map(|s| s.client.kib).max(),
            ),
            (
                "server",
                r.samples.iter().filter_map(|s| s.server.kib).max(),
            ),
        ] {
            match peak {
                Some(k) => {
                    let ok = k <= TARGET_RSS_KIB;
                    missed |= !ok;
                    println!(
                        "target {:<18} {who} peak RSS <= 8 MiB: {}  {}",
                        r.label,
                        kib(Some(k)),
                        verdict(ok)
                    );
                }
                None => println!(
                    "target {:<18} {who} peak RSS: not measured (no /proc)",
                    r.label
                ),
            }
        }
    }
    missed
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

fn machine_line() -> String {
    let cores = thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    format!("machine: {cores} cores (nproc), {cpu}, {kernel}")
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}
