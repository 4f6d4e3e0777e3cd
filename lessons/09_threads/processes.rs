//! `--processes`: Python's `ForkingTCPServer`, the Unix way a program with threads can do it.
//!
//! `ForkingTCPServer` calls `os.fork()` for each client: the child is a copy of the server that
//! serves the connection and exits. A program with threads must not fork (only the forking
//! thread survives in the child, and a lock another thread held stays locked forever), and std
//! has no `fork`. So the child is a new run of this program (`--child ADDRESS`), started with
//! the connection as its standard input and output, the way inetd started its services. Its
//! code is the notes' communication loop on stdin and stdout; it does not even know they are a
//! socket. A child that crashes or is killed ends its own client's connection, nothing else.

#[cfg(not(unix))]
pub use other::*;
#[cfg(unix)]
pub use unix::*;

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::io::{self, ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::{AsFd, OwnedFd};
    use std::process::{Child, Command, Stdio};
    use std::thread;

    use anyhow::{Context, Result};
    use socket_lessons::is_timeout;
    use socket_lessons::wire::{preview, Traced};

    pub const SUPPORTED: bool = true;

    /// `eprintln!` in one `write`: a child's log shares the server's stdout with the server and
    /// the other children, and `eprintln!` writes a line in pieces, which theirs could cut.
    macro_rules! log {
        ($($arg:tt)*) => {{
            let line = format!("{}\n", format_args!($($arg)*));
            let _ = io::stderr().write_all(line.as_bytes());
        }};
    }

    /// In the server: starts the child for this client and has a small thread wait for it, so
    /// its end is logged and it does not stay behind as a zombie (`ForkingTCPServer` collects
    /// its children with `os.waitpid` for the same reason). The child logs its own first line,
    /// so that line comes before anything else it logs.
    pub fn start(sock: TcpStream, address: SocketAddr, trace: bool) {
        let mut child = match spawn(sock, address, trace) {
            Ok(child) => child,
            // The socket was dropped with the failed command: this client is closed.
            Err(e) => return println!("{address} dropped: cannot start a child process: {e}"),
        };
        let pid = child.id();
        let waiter = thread::Builder::new().spawn(move || match child.wait() {
            Ok(status) => println!("{address} child process {pid} ended: {status}"),
            Err(e) => println!("{address} child process {pid}: cannot wait for it: {e}"),
        });
        if let Err(e) = waiter {
            println!("{address} child process {pid} will not be waited for: {e}");
        }
    }

    /// The socket becomes the child's stdin (fd 0) and stdout (fd 1): two file descriptors of
    /// one connection, so it is cloned once. Its read and write timeouts (SO_RCVTIMEO,
    /// SO_SNDTIMEO) belong to the socket, not to a descriptor: the child inherits
    /// --idle-timeout with it. The child's stderr is the server's stdout, so the child's log
    /// lines land in the server's log, as a thread's do. Every other descriptor of the server
    /// (the listening socket, other clients) is opened close-on-exec by std and socket2, so
    /// the child gets only its own connection.
    fn spawn(sock: TcpStream, address: SocketAddr, trace: bool) -> io::Result<Child> {
        let out = sock.try_clone()?;
        let log = io::stdout().as_fd().try_clone_to_owned()?;
        let mut child = Command::new(std::env::current_exe()?);
        child.arg("--child").arg(address.to_string());
        if trace {
            child.arg("--trace");
        }
        child
            .stdin(Stdio::from(OwnedFd::from(sock)))
            .stdout(Stdio::from(OwnedFd::from(out)))
            .stderr(Stdio::from(log))
            .spawn()
        // `child` (the Command) is dropped here, and the server's copies of the socket with
        // it: from now on only the child holds the connection, and its exit closes it.
    }

    /// In the child (`--child ADDRESS`): the notes' communication loop, with stdin in place of
    /// `conn.recv(1024)` and stdout in place of `conn.send()`. Log lines go to stderr (the
    /// server's log), since stdout is the client; `--trace` lines too.
    pub fn serve_stdio(address: SocketAddr, trace: bool) -> Result<()> {
        // `os.read(0, 1024)` and `os.write(1, ...)`: fd 0 and fd 1 as plain files, one system
        // call per read or write. (std's `stdin()` would read ahead into a buffer, and its
        // `stdout()` holds a write back until a newline.)
        let fd = |fd: std::os::fd::BorrowedFd| fd.try_clone_to_owned().map(File::from);
        let stdin = fd(io::stdin().as_fd()).context("no standard input")?;
        let stdout = fd(io::stdout().as_fd()).context("no standard output")?;
        let mut conn_in = Traced::labelled(stdin, trace, address);
        let mut conn_out = Traced::labelled(stdout, trace, address);
        log!("{address} served by child process {}", std::process::id());

        // The communication loop (通信循环), lesson 02's, its comments there.
        let mut buf = [0u8; 1024];
        loop {
            // `data = sock.recv(1024)`, from fd 0: the connection.
            let n = match conn_in.read(&mut buf) {
                Ok(0) => {
                    log!("{address} closed the connection");
                    return Ok(());
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => {
                    log!("{address} dropped: silent for longer than --idle-timeout");
                    return Ok(());
                }
                Err(e) => {
                    log!("{address} dropped: {e}");
                    return Ok(());
                }
            };
            log!("{address} says: {}", preview(&buf[..n]));
            // `sock.send(data + b'123')`, to fd 1: the connection again.
            let mut reply = buf[..n].to_vec();
            reply.extend_from_slice(b"123");
            if let Err(e) = conn_out.write_all(&reply) {
                match is_timeout(&e) {
                    true => log!(
                        "{address} dropped: the client did not read for longer than --idle-timeout"
                    ),
                    false => log!("{address} dropped: {e}"),
                }
                return Ok(());
            }
        }
    }
}

/// Windows has no `fork`, and std has no way to make a socket a child's standard input there
/// (`Stdio` takes an `OwnedHandle`; a socket is an `OwnedSocket`, and std converts neither into
/// the other). `--processes` is refused at start (exit 2), as Python has no
/// `ForkingTCPServer` on Windows.
#[cfg(not(unix))]
mod other {
    use std::net::{SocketAddr, TcpStream};

    pub const SUPPORTED: bool = false;

    /// Never called: main refuses --processes first. Should it be, the client is dropped.
    pub fn start(_: TcpStream, address: SocketAddr, _: bool) {
        println!("{address} dropped: --processes needs Unix");
    }

    pub fn serve_stdio(_: SocketAddr, _: bool) -> anyhow::Result<()> {
        anyhow::bail!("--child is the child process of --processes, which needs Unix")
    }
}
