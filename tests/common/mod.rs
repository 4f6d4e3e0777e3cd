//! Test harness shared by `tests/lessonNN.rs`: start the real binaries on port 0, read their
//! `listening on` line, kill them on drop, run clients with scripted stdin.
//!
//! Timeouts here are safety nets only (a hung test fails instead of hanging CI); no test waits
//! for time to pass to make something happen.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single test step may take before the test fails instead of hanging.
pub const SAFETY: Duration = Duration::from_secs(20);

/// A running server binary; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// Starts `bin` with `args`, adding `--addr 127.0.0.1:0` unless `args` has an `--addr`,
    /// and waits for its first stdout line, `listening on IP:PORT`.
    pub fn start(bin: &str, args: &[&str]) -> Server {
        Self::spawn(bin, args, None)
    }

    /// Like [`Server::start`], with `dir` as the server's working directory: where the
    /// commands it runs (lessons 03 and 04) create their files.
    pub fn start_in(dir: &Path, bin: &str, args: &[&str]) -> Server {
        Self::spawn(bin, args, Some(dir))
    }

    fn spawn(bin: &str, args: &[&str], dir: Option<&Path>) -> Server {
        let mut cmd = Command::new(bin);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        if !args.contains(&"--addr") {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));

        let stderr = drain(child.stderr.take().unwrap());
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let Some(addr) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{bin}: first line {first:?}, stderr {:?}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
        };
        let addr = addr.parse().unwrap();
        let stdout = drain(out);
        Server {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed on stdout after the `listening on` line, so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until the server's stdout or stderr contains `needle`; panics after [`SAFETY`].
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_count(needle, 1);
    }

    /// Waits until `needle` appears at least `count` times in the server's stdout and stderr
    /// together; panics after [`SAFETY`]. The log is collected by a background thread, so a
    /// line the server printed a moment ago may not be in [`Server::stdout`] yet: wait for it.
    pub fn wait_for_count(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + SAFETY;
        loop {
            let seen =
                self.stdout().matches(needle).count() + self.stderr().matches(needle).count();
            if seen >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server printed {needle:?} {seen} times, not {count}; stdout {:?} stderr {:?}",
                self.stdout(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the server's stdout or stderr has a line containing `needle`, and returns
    /// the first such line (without its line break).
    pub fn wait_for_line(&self, needle: &str) -> String {
        self.wait_for_log(needle);
        let all = self.stdout() + "\n" + &self.stderr();
        let line = all.lines().find(|l| l.contains(needle));
        line.unwrap_or_else(|| panic!("{needle:?} spans lines: {all:?}"))
            .to_string()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit on its own, and for its output to be complete; panics
    /// after [`SAFETY`]. The output is collected by background threads, which read the last
    /// lines after the exit status may already be known: they end at the end of the stream.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let status = wait_timeout(&mut self.child);
        let deadline = Instant::now() + SAFETY;
        while Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1 {
            assert!(
                Instant::now() < deadline,
                "the server exited ({status}), but its output never ended"
            );
            thread::sleep(Duration::from_millis(5));
        }
        status
    }

    /// A connected client socket with a safety-net read timeout.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `addr`, with [`SAFETY`] as read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, SAFETY).unwrap();
    s.set_read_timeout(Some(SAFETY)).unwrap();
    s.set_write_timeout(Some(SAFETY)).unwrap();
    s
}

/// Reads until the peer closes; the bytes it sent.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    all
}

/// Asserts that `actual` is `expected`, byte for byte; `what` names them in the failure. A
/// failure fits on one screen and says what differs: both lengths, the first byte that
/// differs, and the 16 bytes before and after it, in hex and as text (`assert_eq!` on two
/// buffers prints every byte of both: 600,000 numbers for a 100 KB reply).
#[track_caller]
pub fn assert_bytes_eq(actual: impl AsRef<[u8]>, expected: impl AsRef<[u8]>, what: &str) {
    const AROUND: usize = 16;
    let (got, want) = (actual.as_ref(), expected.as_ref());
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let how = match (got.get(at), want.get(at)) {
        (Some(a), Some(b)) => format!("byte {at} is {a:02x}, not {b:02x}"),
        (None, _) => format!("it ends at byte {at}, before the expected bytes do"),
        (_, None) => format!("it goes on at byte {at}, where the expected bytes end"),
    };
    let start = at.saturating_sub(AROUND);
    let window = |label: &str, bytes: &[u8]| {
        let part = &bytes[start.min(bytes.len())..(at + AROUND).min(bytes.len())];
        let head = format!("  {label:<8} from byte {start}: ");
        let hex = socket_lessons::wire::hex(part, usize::MAX);
        let text = socket_lessons::wire::preview(part);
        format!(
            "{head}{hex}\n{:width$}{text}",
            "",
            width = head.chars().count()
        )
    };
    panic!(
        "{what}: {} bytes, expected {}; {how}\n{}\n{}",
        got.len(),
        want.len(),
        window("got", got),
        window("expected", want)
    );
}

/// Runs a client binary to completion with `stdin` as its input; kills it after [`SAFETY`].
pub fn run_client(bin: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Feed stdin from a thread so a client that does not read it all cannot block the test.
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_timeout(&mut child);
    let _ = feeder.join();
    // The drain threads end at EOF, which follows the exit; wait for them briefly.
    let deadline = Instant::now() + SAFETY;
    while Arc::strong_count(&out) > 1 || Arc::strong_count(&err) > 1 {
        assert!(
            Instant::now() < deadline,
            "{bin}: output pipes never closed"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let stdout = out.lock().unwrap().clone();
    let stderr = err.lock().unwrap().clone();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs a binary with arguments only (no stdin), e.g. to check `--help` or a bad argument.
pub fn run(bin: &str, args: &[&str]) -> Output {
    run_client(bin, args, b"")
}

/// Whether `python3` can be started here (the tests with the notes' Python need it).
pub fn python3_runs() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The path of binary `name` of this workspace, in the folder where cargo put the binaries of
/// the running test (`target/debug/`, `target/x86_64-pc-windows-gnu/debug/`, …).
pub fn binary(name: &str) -> PathBuf {
    // Integration tests live in target/<profile>/deps/; cargo puts the binaries one level up.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Like [`binary`], after building `names` up to date (a no-op when they are).
///
/// For binaries of the workspace's other package: before running a package's tests, cargo
/// builds that package's binaries (`CARGO_BIN_EXE_…`), but not another package's, so lesson
/// 12's tests would find `lesson09-client` missing or older than its source, and the root's
/// transcript tests `lesson12-server`. Built once per test process, with the running test's
/// target directory, target and profile, so the result lands where [`binary`] looks. Under
/// Wine (the Windows lane) cargo is a Linux program, not one to start from a Windows test:
/// the binaries are used as they are, and that lane's `cargo test` builds every binary of both
/// packages first.
pub fn workspace_binaries(names: &[&str]) -> Vec<PathBuf> {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !built.iter().any(|b| b == n))
        .collect();
    if !missing.is_empty() {
        build(&missing);
        built.extend(missing.iter().map(|n| n.to_string()));
    }
    names.iter().map(|n| binary(n)).collect()
}

/// `cargo build --workspace --bin …` into the running test's target directory, with its
/// target (`target/TRIPLE/PROFILE/`) and profile (`debug` is cargo's `dev`).
fn build(names: &[&str]) {
    #[cfg(windows)]
    if under_wine() {
        return;
    }
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--workspace", "--target-dir"])
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
        None => panic!("no profile folder in {}", exe.display()),
    }
    let above = profile_dir.parent().unwrap();
    if above != target_dir {
        // target/x86_64-pc-windows-gnu/debug: built for that target.
        cmd.arg("--target").arg(above.file_name().unwrap());
    }
    for name in names {
        cmd.args(["--bin", name]);
    }
    match cmd.output() {
        Ok(out) => assert!(
            out.status.success(),
            "cargo build of {names:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot start cargo to build {names:?}: {e}"),
    }
}

fn wait_timeout(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + SAFETY;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {SAFETY:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Collects everything `r` produces into a shared buffer, from a background thread.
/// The thread drops its handle at EOF, which [`run_client`] uses to know it is done.
fn drain(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let theirs = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => theirs.lock().unwrap().extend_from_slice(&chunk[..n]),
                // A signal is no end of output: read on.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    buf
}

/// Deterministic pseudo-random bytes (xorshift64*): incompressible, full of newline bytes, so
/// a file split at its newlines (the notes' `for line in f`) would show.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// CPU time (user + system) the process has used, in clock ticks, from `/proc/PID/stat`.
#[cfg(target_os = "linux")]
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A number from `/proc/PID/status`: `Threads`, or a size in KiB (`VmRSS`, `VmHWM`).
#[cfg(target_os = "linux")]
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let number = line.trim().trim_end_matches(" kB");
    number.parse().unwrap_or_else(|_| panic!("{field}: {line}"))
}

/// The process's state from `/proc/PID/stat`: `R` running or waiting for a CPU, `S` asleep
/// (in a system call that waits), `T` stopped, …
#[cfg(target_os = "linux")]
pub fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The state follows the command name, which is in parentheses and may contain spaces.
    stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
}

/// Waits until the process is stopped (a SIGSTOP has taken effect: state `T`); panics after
/// [`SAFETY`].
#[cfg(target_os = "linux")]
pub fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + SAFETY;
    while proc_state(pid) != 'T' {
        assert!(Instant::now() < deadline, "process {pid} never stopped");
        thread::sleep(Duration::from_millis(1));
    }
}

/// The command sequence that shows 黏包 in lesson 03 (`seq -s ' ' 1000` is 3893 bytes of
/// output on one line, more than one `read(1024)`), and that lesson 04 must get right: one
/// constant, so the broken lesson and the fixed one are held to the same inputs, the ones
/// their READMEs show.
pub const STICKY_SEQUENCE: &str = "seq -s ' ' 1000\necho hi\n";

/// What `sh -c command` prints on this machine: the bytes the server will send back.
#[cfg(unix)]
pub fn shell_output(command: &str) -> Vec<u8> {
    let out = Command::new("sh").args(["-c", command]).output().unwrap();
    out.stdout
}

/// `sock.recv_from(buf)`, asked again when it fails with EINTR. On Linux a socket call with a
/// timeout (our safety nets) fails that way when the process is stopped and continued, even
/// without a signal handler (signal(7), "Interruption of system calls ... by stop signals"):
/// that is no reason for a test to fail. (`read_exact` and `read_to_end` retry by themselves.)
pub fn recv_retrying(sock: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    loop {
        match sock.recv_from(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            result => return result.unwrap(),
        }
    }
}

/// Connects to `addr`, sends `bytes` and reads until the server closes the connection; our
/// address (what the server's log calls us) and what came back. A reset, which is how a close
/// with some of `bytes` still unread reaches us, ends the answer like a close.
pub fn send_until_closed(addr: SocketAddr, bytes: &[u8]) -> (SocketAddr, Vec<u8>) {
    let mut sock = connect(addr);
    let me = sock.local_addr().unwrap();
    sock.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // EINTR: see `recv_retrying`'s note.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading from {addr}: {e}"),
        }
    }
    (me, answer)
}

/// A new, empty scratch directory under cargo's `target/tmp`, named for `label`, this test
/// process and a counter (tests of one file run in parallel); removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<std::path::Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every entry of `dir`, hidden ones included, sorted.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a web page can make the learner's browser send to a loopback server, and the reason
/// lessons 03 and 04 must give when they refuse it. Each would run `touch ./pwned` in a shell
/// that ran every line it read.
pub struct WebProbe {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// The reason in the server's log line and in its one-line answer.
    pub reason: &'static str,
    /// Whether the whole probe fits in the server's one read of 1024 bytes. If not, the server
    /// closes with bytes unread, which resets the connection: its answer may be lost.
    pub fits_one_read: bool,
}

/// The reason for a message that holds CR or LF.
pub const REFUSED_LINE_BREAK: &str =
    "it holds a line break (CR or LF), which our client never sends: an HTTP request from a web page?";

/// The reason for a message that starts with an HTTP method.
pub const REFUSED_REQUEST_LINE: &str =
    "it starts like an HTTP request line (GET, POST, ...): a web page?";

/// Chromium's headers after the request line and `Host:`, as a page on example.com makes it
/// send them for an image (`Accept: image/...`) or a `fetch()` (`Accept: */*`).
const CHROMIUM_HEADERS: &str = "Connection: keep-alive\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n";

/// The probes, for a server at `addr` (browsers and curl name it in `Host:`).
pub fn web_probes(addr: SocketAddr) -> Vec<WebProbe> {
    // `<img src="http://127.0.0.1:8080/;touch$IFS./pwned;">` on any page: Chromium's request,
    // byte for byte. The URL path keeps `;` and `$` as they are; `$IFS` is the shell's space.
    let img = format!(
        "GET /;touch$IFS./pwned; HTTP/1.1\r\nHost: {addr}\r\n{CHROMIUM_HEADERS}\
         Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\
         Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: image\r\n\
         Referer: https://example.com/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: zh-CN,zh;q=0.9\r\n\r\n"
    );
    // `curl 'http://127.0.0.1:8080/;touch$IFS./pwned;'`.
    let curl = format!(
        "GET /;touch$IFS./pwned; HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: curl/8.5.0\r\n\
         Accept: */*\r\n\r\n"
    );
    // `fetch('http://127.0.0.1:8080/', {method: 'POST', mode: 'no-cors', body: 'touch ./pwned'})`:
    // a text/plain body needs no CORS preflight, so the browser sends it straight away.
    let body = "touch ./pwned";
    let post = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\n{CHROMIUM_HEADERS}Content-Length: {}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nAccept: */*\r\nOrigin: https://example.com\r\n\
         Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n\
         Referer: https://example.com/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: zh-CN,zh;q=0.9\r\n\r\n{body}",
        body.len()
    );
    // A request line longer than the server's read of 1024 bytes: the first read holds no line
    // break at all, only `GET ` gives it away.
    let long = format!(
        "GET /;touch$IFS./pwned;{} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        "a".repeat(1100)
    );
    vec![
        WebProbe {
            name: "browser <img> GET",
            bytes: img.into_bytes(),
            reason: REFUSED_LINE_BREAK,
            fits_one_read: true,
        },
        WebProbe {
            name: "curl GET",
            bytes: curl.into_bytes(),
            reason: REFUSED_LINE_BREAK,
            fits_one_read: true,
        },
        WebProbe {
            name: "text/plain POST",
            bytes: post.into_bytes(),
            reason: REFUSED_LINE_BREAK,
            fits_one_read: true,
        },
        WebProbe {
            name: "request line over 1024 bytes",
            bytes: long.into_bytes(),
            reason: REFUSED_REQUEST_LINE,
            fits_one_read: false,
        },
    ]
}

// ---- Windows: telling Wine (the CI lane) from Windows ---------------------------------------

/// Whether these Windows programs run under Wine (the CI lane) rather than on Windows. Every
/// Wine prefix has the registry key `HKLM\Software\Wine` (Wine keeps its own settings there,
/// Windows has no such key), and `reg query` exits 0 only when the key exists; `reg.exe` is on
/// both. (Wine's environment variables, such as WINELOADERNOEXEC, are internal to its loader
/// and not promised to stay.) Asked once per test binary.
#[cfg(windows)]
pub fn under_wine() -> bool {
    static WINE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WINE.get_or_init(|| {
        Command::new("reg")
            .args(["query", r"HKLM\Software\Wine"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True (and says why on the test's output, which the CI lane counts) when a check must be
/// skipped because Wine behaves like Linux there, not like Windows.
#[cfg(windows)]
pub fn skip_under_wine(why: &str) -> bool {
    let wine = under_wine();
    if wine {
        println!("skipped under Wine: {why}");
    }
    wine
}

/// The web probes of lessons 03 and 04, against `server` started in a fresh directory: every
/// probe is refused before anything runs (`touch ./pwned` would run otherwise), with the reason
/// in the log and in one line to the peer, and the next client's command runs as usual, in the
/// directory where `./pwned` would have been.
pub fn assert_web_requests_never_run(label: &str, server: &str, client: &str) {
    let dir = Scratch::new(&format!("{label}-web-probes"));
    let server = Server::start_in(dir.path(), server, &[]);
    for probe in web_probes(server.addr) {
        let (me, answer) = send_until_closed(server.addr, &probe.bytes);
        let reason = probe.reason;
        if probe.fits_one_read {
            assert_eq!(
                String::from_utf8_lossy(&answer),
                format!("refused: {reason}; closing the connection\n"),
                "{}",
                probe.name
            );
        }
        server.wait_for_log(&format!(
            "{me} dropped: refused {}: {reason}; nothing was run\n",
            socket_lessons::wire::preview(&probe.bytes)
        ));
    }
    #[cfg(unix)]
    {
        let addr = server.addr.to_string();
        let out = run_client(
            client,
            &["--addr", &addr],
            b"touch ./served && echo served\n",
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "served\n\n",
            "{out:?}"
        );
        assert!(dir.join("served").exists());
    }
    #[cfg(not(unix))]
    let _ = client;
    assert!(!dir.join("pwned").exists(), "a probe ran");
}

/// Out of file descriptors, `accept` fails at once, again and again: on Linux it takes a
/// descriptor for the new connection before it looks at the queue, so with none free it fails
/// whether or not a client waits. `server`, started with only 4 descriptors (stdin, stdout,
/// stderr, the listener), must log it and pause a second between tries instead of spinning.
/// Lessons 02-05 and 11 pause alike; lesson 07 backs off and has its own test.
///
/// Measured over two seconds from the first failure (a window, not a wait for the server):
/// pausing, the server tries 2 or 3 times and sleeps; without the pause it logs a line per try,
/// thousands, and uses the CPU it gets (200 ticks alone, 30 or more on a loaded machine).
#[cfg(target_os = "linux")]
pub fn assert_accept_errors_pause(server: &str, args: &[&str]) {
    assert_accept_errors_pause_with_fds(server, args, 4);
}

/// [`assert_accept_errors_pause`] for a server that holds `fds` descriptors while it waits
/// for its first client (lesson 11's poller holds some of its own): no more are allowed.
#[cfg(target_os = "linux")]
pub fn assert_accept_errors_pause_with_fds(server: &str, args: &[&str], fds: u32) {
    let (tries, ticks) = accept_errors_in_two_seconds(server, args, fds);
    assert!(tries <= 3, "{tries} tries in 2 s: no pause between them?");
    assert!(ticks < 10, "{ticks} ticks of CPU in 2 s between tries");
}

/// How often `server` (limited to `fds` descriptors, a client waiting) logs a failed accept,
/// and how much CPU it uses, in the two seconds after the first failure. For a server that
/// burns the CPU anyway (lesson 11's `--busy`), only the count says whether accept pauses.
#[cfg(target_os = "linux")]
pub fn accept_errors_in_two_seconds(server: &str, args: &[&str], fds: u32) -> (usize, u64) {
    let script = format!(r#"ulimit -n {fds} && exec "$0" "$@""#);
    let mut all = vec!["-c", script.as_str(), server, "--addr", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let server = Server::start("sh", &all);
    let _waiting = server.connect();
    let line = "accept failed: Too many open files (os error 24); trying again in 1 s";
    server.wait_for_log(line);
    let (lines, ticks) = (
        server.stdout().matches(line).count(),
        cpu_ticks(server.pid()),
    );
    thread::sleep(Duration::from_secs(2));
    let tries = server.stdout().matches(line).count() - lines;
    (tries, cpu_ticks(server.pid()) - ticks)
}

/// Lessons 03 and 04 (`server`, `client`): a client that connects and says nothing is dropped
/// after `--idle-timeout` with a line that says so, and the client queued behind it is served.
/// (Half a second: the test waits for that client's answer and the server's line, not a clock.)
pub fn assert_silent_client_dropped(server: &str, client: &str) {
    let server = Server::start(server, &["--idle-timeout", "0.5"]);
    let silent = server.connect();
    let me = silent.local_addr().unwrap();
    let addr = server.addr.to_string();
    let out = run_client(client, &["--addr", &addr], b"echo hi\n");
    let hi = if cfg!(windows) { "hi\r\n\n" } else { "hi\n\n" };
    assert_eq!(String::from_utf8_lossy(&out.stdout), hi, "{out:?}");
    server.wait_for_log(&format!(
        "{me} dropped: silent for longer than --idle-timeout\n"
    ));
}

/// Lessons 03 and 04: a client that asks for 8 MB (more than loopback's buffers hold) and never
/// reads is dropped after `--idle-timeout` without room, and the next client is served.
#[cfg(unix)]
pub fn assert_deaf_client_dropped(server: &str, client: &str) {
    let args = ["--idle-timeout", "0.5", "--max-output", "8000000"];
    let server = Server::start(server, &args);
    let mut deaf = server.connect();
    let me = deaf.local_addr().unwrap();
    deaf.write_all(b"head -c 8000000 /dev/zero").unwrap();
    server.wait_for_log(&format!(
        "{me} dropped: sending the output: the client did not read for longer than \
         --idle-timeout\n"
    ));
    let addr = server.addr.to_string();
    let out = run_client(client, &["--addr", &addr], b"echo hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n\n", "{out:?}");
}

// ---- A real browser, for lesson 08 ----------------------------------------------------------

/// A headless Chromium (or Chrome) for lesson 08's browser tests. Each run gets a fresh profile
/// folder, removed when the `Browser` is dropped.
pub struct Browser {
    exe: String,
    profile: Scratch,
}

/// The programs tried when `SOCKET_LESSONS_CHROMIUM` does not name one: Debian's and Ubuntu's
/// Chromium, Google's Chrome.
const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

impl Browser {
    /// The browser, or `None` when the test must be skipped (it prints why). Under Wine (the
    /// Windows lane) there is none. Elsewhere a missing browser skips the test, except in CI
    /// (`CI` set, as `.ci/run` and CI services set it), where the browser tests must run.
    pub fn find() -> Option<Browser> {
        #[cfg(windows)]
        if skip_under_wine("no browser runs inside the Wine prefix; the browser tests run on Linux")
        {
            return None;
        }
        let named = std::env::var("SOCKET_LESSONS_CHROMIUM").ok();
        let candidates = named.iter().map(String::as_str).chain(BROWSERS);
        for exe in candidates {
            let found = Command::new(exe)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|out| out.status.success());
            if found {
                return Some(Browser {
                    exe: exe.to_string(),
                    profile: Scratch::new("chromium-profile"),
                });
            }
        }
        let why = format!(
            "no Chromium here (tried {}; SOCKET_LESSONS_CHROMIUM=PATH names another)",
            BROWSERS.join(", ")
        );
        assert!(std::env::var_os("CI").is_none(), "in CI: {why}");
        println!("skipped: {why}");
        None
    }

    /// Runs the browser headless with `args` after its usual flags, until it exits.
    ///
    /// `--no-sandbox`: Chromium refuses to run as root (CI's containers) with its sandbox on;
    /// the pages are our own. Background networking, component updates and sync off: the
    /// browser talks to nothing but the test's server (on a machine without a network its
    /// other connections fail, slowly). A profile of its own: no state from an earlier run.
    pub fn run(&self, args: &[&str]) -> Output {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = self.profile.join(n.to_string());
        let profile = format!("--user-data-dir={}", profile.display());
        let mut all = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            profile.as_str(),
        ];
        all.extend_from_slice(args);
        run_client(&self.exe, &all, b"")
    }

    /// The page at `url` as the browser built it (`--dump-dom`), after it loaded.
    pub fn dump_dom(&self, url: &str) -> String {
        let out = self.run(&["--dump-dom", url]);
        assert!(
            out.status.success(),
            "{} --dump-dom {url}: {out:?}",
            self.exe
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
/// One round trip of lesson 02's echo on a raw socket, what the notes' Python client does:
/// sends `msg`, reads the answer, which is `msg` with `123` appended.
pub fn echo(sock: &mut TcpStream, msg: impl AsRef<[u8]>) -> Vec<u8> {
    let msg = msg.as_ref();
    sock.write_all(msg).unwrap();
    let mut reply = vec![0u8; msg.len() + 3];
    sock.read_exact(&mut reply).unwrap();
    reply
}

/// Sends `signal` to the process `pid`, as the `kill` command does: `-INT` is what Ctrl-C in
/// its terminal sends, `-STOP` and `-CONT` what Ctrl-Z and `fg` do, `-KILL` ends it at once.
/// Unix only, where the tests that call it run (Windows has no `kill` command).
pub fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// The notes' 2.1 client (通信循环及代码优化客户端) as written, but for the address: run it with
/// `python3 -c` after `.replace("PORT", …)`. It reads lines until its input ends, then dies
/// of `EOFError` in `input()`, as the notes' code does; its prompts go to stdout.
pub const NOTES_ECHO_CLIENT: &str = r#"import socket


# 1.先要有通讯工具 也就是定义传输协议
client = socket.socket()
# 2.同样绑定IP 端口
client.connect(('127.0.0.1', PORT))

while True:
    speak = input('输入想说的话>>>:').strip()
    if len(speak) == 0 :
        continue
    # 3.开始给服务端说话 因为获取的用户输入是字符串 不能直接传输 所以要先转码
    client.send(speak.encode('utf8'))
    # 也可以用手动转码
    # client.send(bytes(speak, 'utf8'))
    # 4.也要听对方想说什么
    data = client.recv(1024)
    print(data.decode('utf8'))  # 打印听到的对方说的话
"#;
