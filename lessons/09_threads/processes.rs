//! `--processes`: Python's `ForkingTCPServer`, the Unix way a program with threads can do it.
//!
//! `ForkingTCPServer` calls `os.fork()` for each client: the child is a copy of the server that
//! serves the connection and exits. A program with threads must not fork (only the forking
//! thread survives in the child, and a lock another thread held stays locked forever), and std
//! has no `fork`. So the child is a new run of this program (`--child ADDRESS`), started with
//! the connection as its standard input and output, the way inetd started its services. Its
//! code is the notes' communication loop on stdin and stdout; it does not even know they are a
//! socket. A child that crashes or is killed ends its own client's connection, nothing else.
//!
//! As `ForkingTCPServer`, the server keeps at most `--max-children` (40, Python's
//! `max_children`) at once: at the limit it accepts no one until a child ends. Each child is
//! started by a thread of its own, which then waits for it, so no child ever ends without
//! being waited for.

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
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
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

    /// In the server: `ForkingTCPServer.process_request`. This client is served by a child
    /// process, which a thread of its own starts and then waits for; the server goes back to
    /// accept() once there is room for one more child.
    pub fn start(sock: TcpStream, address: SocketAddr, trace: bool, max_children: usize) {
        let place = Place::take();
        // The thread first, then the child, started by the thread: no child can exist without
        // a thread to wait for it. (A child nobody waits for stays in the process table after
        // it ends, a zombie, for as long as the server runs; `ForkingTCPServer` collects its
        // children with `os.waitpid` for the same reason.) If the thread cannot be started, no
        // child is: the closure, with the socket and the place in it, is dropped, so this
        // client's connection is closed and its place given back.
        let waiter = thread::Builder::new().spawn(move || {
            serve_by_child(sock, address, trace);
            drop(place);
        });
        if let Err(e) = waiter {
            println!("{address} dropped: cannot start a thread: {e}");
        }
        // `collect_children`, which Python's `serve_forever` runs after each turn of its loop
        // (a request, or half a second without one): while `max_children` children are
        // running, it blocks in `os.waitpid(-1, 0)` until one ends, so no client is accepted
        // meanwhile; new ones wait in the accept queue (listen(5), as in lesson 02). Without a
        // limit, any peer, a web page among them, could start children until the machine has
        // no process ids left.
        let mut running = running();
        if *running >= max_children {
            println!(
                "{running} child processes (--max-children {max_children}): \
                 accepting no more clients until one ends"
            );
        }
        while *running >= max_children {
            running = ENDED.wait(running).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// In the waiting thread: starts the child for this client and waits for it, so its end is
    /// logged and it does not stay behind as a zombie. The child logs its own first line, so
    /// that line comes before anything else it logs.
    fn serve_by_child(sock: TcpStream, address: SocketAddr, trace: bool) {
        let mut child = match spawn(sock, address, trace) {
            Ok(child) => child,
            // The socket was dropped with the failed command: this client is closed.
            Err(e) => return println!("{address} dropped: cannot start a child process: {e}"),
        };
        let pid = child.id();
        match child.wait() {
            Ok(status) => println!("{address} child process {pid} ended: {status}"),
            Err(e) => println!("{address} child process {pid}: cannot wait for it: {e}"),
        }
    }

    /// How many clients have a child process (running, or being started).
    static RUNNING: Mutex<usize> = Mutex::new(0);

    /// Notified each time a child's place is given back: there is room again.
    static ENDED: Condvar = Condvar::new();

    /// The count, locked. A poisoned lock (a thread panicked holding it) is taken over as is:
    /// the count changes in single steps, so it is still right.
    fn running() -> MutexGuard<'static, usize> {
        RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One child's place in the count, given back when dropped: when its thread has waited for
    /// it, or with the thread's closure if the thread could not start.
    struct Place;

    impl Place {
        fn take() -> Place {
            *running() += 1;
            Place
        }
    }

    impl Drop for Place {
        fn drop(&mut self) {
            *running() -= 1;
            ENDED.notify_one();
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
        // This very program. On Linux `/proc/self/exe` is the file this process runs, even
        // after a rebuild (`cargo build` while the server runs) has replaced it under its name:
        // `current_exe()` then names the old file as `…/lesson09-server (deleted)`, which
        // cannot be started, and every client would be dropped. Other Unix systems have no
        // `/proc/self/exe`; there it is the path this program was started from.
        #[cfg(target_os = "linux")]
        let program = std::path::PathBuf::from("/proc/self/exe");
        #[cfg(not(target_os = "linux"))]
        let program = std::env::current_exe()?;
        let mut child = Command::new(program);
        // The child's name (argv[0], what `ps` shows): the server's own, not `exe`.
        if let Some(name) = std::env::args_os().next() {
            child.arg0(name);
        }
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
    pub fn start(_: TcpStream, address: SocketAddr, _: bool, _: usize) {
        println!("{address} dropped: --processes needs Unix");
    }

    pub fn serve_stdio(_: SocketAddr, _: bool) -> anyhow::Result<()> {
        anyhow::bail!("--child is the child process of --processes, which needs Unix")
    }
}
