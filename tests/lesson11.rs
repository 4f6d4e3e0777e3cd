//! Lesson 11: one thread serves every client, first by trying each non-blocking socket in turn
//! (`--busy`, broken on purpose: it burns a core), then with a readiness loop (the default).
//! Both steps are held to the same echo (lesson 02's: each read comes back with `123`) and the
//! same hostile peers; only the CPU they burn while idle differs.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{connect, echo, read_to_end, Server};

const SERVER: &str = env!("CARGO_BIN_EXE_lesson11-server");
const MANY: &str = env!("CARGO_BIN_EXE_lesson09-client");

/// Both steps: the default readiness loop, and `--busy`.
const STEPS: [&[&str]; 2] = [&[], &["--busy"]];

/// Starts the server with `step`'s options followed by `extra`.
fn start(step: &[&str], extra: &[&str]) -> Server {
    let args: Vec<&str> = step.iter().chain(extra).copied().collect();
    Server::start(SERVER, &args)
}

/// The notes' 2.1 client, run by python3 unbuffered (`-u`) with its stdin and stdout piped;
/// `None` (and a line saying why) where python3 does not run.
fn notes_client(addr: SocketAddr) -> Option<std::process::Child> {
    // `--version` first: on Windows without Python, `python3` may be the Store's stand-in,
    // which starts and exits 9009.
    let runs = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        #[cfg(windows)]
        if common::skip_under_wine("the Wine prefix has no python3 for the notes' client") {
            return None;
        }
        println!("skipped: the notes' Python client needs python3, which does not run here");
        return None;
    }
    let code = common::NOTES_ECHO_CLIENT.replace("PORT", &addr.port().to_string());
    let child = Command::new("python3")
        .args(["-u", "-c", &code])
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(child)
}

/// Types `line` into a running notes' client and returns the line it prints back. The client
/// prints its prompt with no line break, so the answer follows it on the same line.
fn type_line(child: &mut std::process::Child, out: &mut impl BufRead, line: &str) -> String {
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, "{line}").unwrap();
    let mut answer = String::new();
    out.read_line(&mut answer).unwrap();
    answer
}

/// The notes' own client, twice at once: the first stays connected at its prompt while the
/// second is answered (lesson 02 would keep the second waiting), then the first talks again.
#[test]
fn two_notes_python_clients_are_answered_at_the_same_time() {
    for step in STEPS {
        let server = start(step, &[]);
        let Some(mut first) = notes_client(server.addr) else {
            return;
        };
        let mut first_out = BufReader::new(first.stdout.take().unwrap());
        assert_eq!(
            type_line(&mut first, &mut first_out, "hello"),
            "输入想说的话>>>:hello123\n"
        );
        let mut second = notes_client(server.addr).unwrap();
        let mut second_out = BufReader::new(second.stdout.take().unwrap());
        assert_eq!(
            type_line(&mut second, &mut second_out, "你好"),
            "输入想说的话>>>:你好123\n"
        );
        assert_eq!(
            type_line(&mut first, &mut first_out, "still here"),
            "输入想说的话>>>:still here123\n"
        );
        for mut client in [first, second] {
            // End of input: the notes' client dies with EOFError, closing its socket.
            drop(client.stdin.take());
            client.wait().unwrap();
        }
        server.wait_for_count("closed the connection", 2);
        server.wait_for_log("says: \"你好\"\n");
    }
}

/// Fifty clients connected at once, answered in the reverse order of their connecting: no
/// client waits for another. On Linux, the server has one thread all along.
#[test]
fn many_clients_connected_at_once_are_served_by_one_thread() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut socks: Vec<TcpStream> = (0..50).map(|_| connect(server.addr)).collect();
        for (i, sock) in socks.iter_mut().enumerate().rev() {
            let msg = format!("client {i}");
            assert_eq!(echo(sock, msg.as_bytes()), format!("{msg}123").as_bytes());
        }
        #[cfg(target_os = "linux")]
        assert_eq!(common::proc_status(server.pid(), "Threads"), 1, "{step:?}");
    }
}

/// Lesson 09's client: 500 clients at once, 20 messages each, every echo checked by the client
/// (its exit status says all were right).
#[test]
fn five_hundred_clients_of_twenty_rounds_are_all_served() {
    for step in STEPS {
        let server = start(step, &[]);
        let addr = server.addr.to_string();
        let out = common::run(
            MANY,
            &["--addr", &addr, "--clients", "500", "--rounds", "20"],
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{step:?}: {out:?}");
        assert!(
            summary.starts_with("served 500/500 clients\n"),
            "{step:?}: {summary}"
        );
        server.wait_for_count("closed the connection", 500);
    }
}

/// A message that arrives one byte at a time is answered one byte at a time: each read
/// returns what has arrived, and each read gets its reply.
#[test]
fn a_message_arriving_one_byte_at_a_time_is_answered_byte_by_byte() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut sock = connect(server.addr);
        sock.set_nodelay(true).unwrap();
        for byte in b"hello" {
            assert_eq!(echo(&mut sock, [*byte]), [*byte, b'1', b'2', b'3']);
        }
    }
}

/// 黏包 again: three messages that are all in the server's receive buffer when it reads are
/// read, and answered, as one. The server is stopped (SIGSTOP) while they are sent, so they
/// are all there, whatever the machine's speed.
#[cfg(target_os = "linux")]
#[test]
fn three_messages_in_one_read_come_back_as_one_answer() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut sock = connect(server.addr);
        sock.set_nodelay(true).unwrap();
        // Connected and served once, so the next bytes wait for a read, not for an accept.
        assert_eq!(echo(&mut sock, b"0"), b"0123");
        common::kill("-STOP", server.pid());
        common::wait_until_stopped(server.pid());
        for part in [b"123", b"456", b"789"] {
            sock.write_all(part).unwrap();
        }
        common::kill("-CONT", server.pid());
        let mut reply = [0u8; 12];
        sock.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"123456789123", "{step:?}");
    }
}

/// Ctrl-Z, then `fg`: a server stopped while it sleeps in the poller's wait, then continued,
/// goes on serving. On Linux a stop and a continue end that wait (epoll_wait) with EINTR,
/// `Interrupted`, even though the server handles no signal (signal(7)); a loop that took it
/// for an error would end there. The readiness loop's one thread, with nothing to do, sleeps
/// (state `S`) in that wait and nowhere else, so the stop lands there. SIGSTOP, not Ctrl-Z's
/// SIGTSTP: a test's server may be in an orphaned process group, where Linux discards SIGTSTP
/// (as POSIX says); both stop a process the same way.
#[cfg(target_os = "linux")]
#[test]
fn a_server_stopped_and_continued_goes_on_serving() {
    let mut server = start(&[], &[]);
    let mut sock = connect(server.addr);
    assert_eq!(echo(&mut sock, b"before"), b"before123");
    let pid = server.pid();
    let deadline = std::time::Instant::now() + common::SAFETY;
    while common::proc_state(pid) != 'S' {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never slept"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    common::kill("-STOP", pid);
    common::wait_until_stopped(pid);
    common::kill("-CONT", pid);
    sock.write_all(b"after").unwrap();
    sock.set_read_timeout(Some(common::SAFETY)).unwrap();
    let mut reply = [0u8; 8];
    if let Err(e) = sock.read_exact(&mut reply) {
        // The server has ended, or is about to: say how, with its last words once collected.
        let status = server.wait_exit();
        server.wait_for_log("Error");
        panic!(
            "no echo after SIGSTOP and SIGCONT ({e}); the server ended ({status}): {:?}",
            server.stderr()
        );
    }
    assert_eq!(&reply, b"after123");
    assert!(server.is_running(), "{}", server.stderr());
}

/// Elsewhere: the three messages in one write, so in one segment, read at once.
#[cfg(not(target_os = "linux"))]
#[test]
fn three_messages_in_one_write_come_back_as_one_answer() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut sock = connect(server.addr);
        assert_eq!(echo(&mut sock, b"123456789"), b"123456789123", "{step:?}");
    }
}

/// A message longer than one read (1024 bytes) comes back in pieces, each followed by `123`,
/// with every byte there, in order.
#[test]
fn a_message_longer_than_one_read_comes_back_in_pieces_each_with_123() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut sock = connect(server.addr);
        let message = "x".repeat(3000);
        sock.write_all(message.as_bytes()).unwrap();
        let (text, pieces) = read_echoes(&mut sock, message.len());
        assert_eq!(text, message);
        assert!(
            pieces >= 3,
            "{pieces} pieces: a read returns at most 1024 bytes"
        );
    }
}

/// Reads replies until `len` message bytes have come back: the message bytes (each reply's
/// `123` taken out) and how many replies there were. The messages here hold no digits, so
/// every digit belongs to a reply's `123`.
fn read_echoes(sock: &mut TcpStream, len: usize) -> (String, usize) {
    let mut all = Vec::new();
    let mut message_bytes = 0;
    let mut buf = [0u8; 64 * 1024];
    while message_bytes < len || !all.ends_with(b"123") {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "end of stream after {} bytes", all.len());
        message_bytes += buf[..n].iter().filter(|b| !b.is_ascii_digit()).count();
        all.extend_from_slice(&buf[..n]);
    }
    let all = String::from_utf8(all).unwrap();
    (all.replace("123", ""), all.matches("123").count())
}

/// A client that sends up to 10 MB and never reads its replies: its unsent replies reach
/// `--max-unsent` and the server stops reading from it, so its writes stall (the kernel's
/// buffers full) instead of the server's memory growing. Meanwhile another client is served.
/// When it finally reads, every reply comes back, nothing lost, and the server reads again.
#[test]
fn a_client_that_never_reads_is_held_to_max_unsent_and_the_others_are_served() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut deaf = connect(server.addr);
        let me = deaf.local_addr().unwrap();
        let written = write_until_held(&server, &mut deaf);
        let line = server.wait_for_line(&format!("{me} is not reading its replies: "));
        let unsent: usize = line
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        // Over the cap by at most one reply (1024 bytes and `123`).
        assert!((65536..65536 + 1027).contains(&unsent), "{line}");
        assert!(line.ends_with(
            "bytes unsent (--max-unsent 65536); not reading from it until they are sent"
        ));

        let mut other = connect(server.addr);
        assert_eq!(echo(&mut other, b"me too"), b"me too123");
        #[cfg(target_os = "linux")]
        {
            // Peak resident memory: a few MB for the program; 10 MB sent did not add to it.
            let peak_kib = common::proc_status(server.pid(), "VmHWM");
            assert!(peak_kib < 8 * 1024, "{peak_kib} KiB");
        }

        deaf.set_read_timeout(Some(common::SAFETY)).unwrap();
        let (text, _) = read_echoes(&mut deaf, written);
        assert!(text.len() == written && text.bytes().all(|b| b == b'x'));
        server.wait_for_log(&format!("{me} read its replies; reading from it again\n"));
        assert_eq!(echo(&mut deaf, b"again"), b"again123");
    }
}

/// Writes `x` in 64 KiB chunks, without reading, until the server says it stopped reading
/// from us and a write has stalled (the kernel's buffers are full): how many bytes that took.
/// Fails if 10 MB went through without that. A stalled write gives up after 0.1 s only to look
/// at the server's log again; nothing depends on how long that is.
fn write_until_held(server: &Server, sock: &mut TcpStream) -> usize {
    let me = sock.local_addr().unwrap();
    let held = format!("{me} is not reading its replies: ");
    sock.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let chunk = [b'x'; 64 * 1024];
    let mut written = 0;
    loop {
        assert!(
            written < 10_000_000,
            "10 MB taken, and the server still reads"
        );
        match sock.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if server.stdout().contains(&held) {
                    return written;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("writing: {e}"),
        }
    }
}

/// A client that resets its connection (SO_LINGER 0, then close) while the server still has
/// replies to write to it: that client ends with the error in the log, nobody else notices.
#[test]
fn a_client_reset_mid_write_ends_that_client_only() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut other = connect(server.addr);
        assert_eq!(echo(&mut other, b"before"), b"before123");

        let mut deaf = connect(server.addr);
        let me = deaf.local_addr().unwrap();
        write_until_held(&server, &mut deaf);
        socket2::SockRef::from(&deaf)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(deaf);
        let line = server.wait_for_line(&format!("{me} dropped: "));
        #[cfg(target_os = "linux")]
        assert!(
            line.ends_with("Connection reset by peer (os error 104)")
                || line.ends_with("Broken pipe (os error 32)"),
            "{line}"
        );
        let _ = line;

        assert_eq!(echo(&mut other, b"after"), b"after123");
        let mut next = connect(server.addr);
        assert_eq!(echo(&mut next, b"next"), b"next123");
    }
}

/// A client that closes its sending side after several messages gets every reply, then the
/// end of the stream: a read of 0 closes the connection only once the replies are out.
#[test]
fn a_half_closed_client_gets_every_reply_then_the_end_of_the_stream() {
    for step in STEPS {
        let server = start(step, &[]);
        let mut sock = connect(server.addr);
        let me = sock.local_addr().unwrap();
        let message = "y".repeat(5000);
        sock.write_all(message.as_bytes()).unwrap();
        sock.shutdown(Shutdown::Write).unwrap();
        let all = read_to_end(&mut sock);
        let text = String::from_utf8(all).unwrap().replace("123", "");
        assert_eq!(text, message);
        server.wait_for_log(&format!("{me} closed the connection\n"));
    }
}

/// `--idle-timeout`: a client that says nothing is dropped with a line saying so, and the
/// others are served after it. (Half a second: the test waits for the line, not for a clock.)
#[test]
fn a_silent_client_is_dropped_after_the_idle_timeout() {
    for step in STEPS {
        let server = start(step, &["--idle-timeout", "0.5"]);
        let silent = connect(server.addr);
        let me = silent.local_addr().unwrap();
        server.wait_for_log(&format!(
            "{me} dropped: silent for longer than --idle-timeout\n"
        ));
        let mut next = connect(server.addr);
        assert_eq!(echo(&mut next, b"next"), b"next123");
    }
}

/// Connections that come and go leave nothing behind. Each client has an entry in the list of
/// idle deadlines; were it left there when the client closed, it would stay until its
/// deadline, here an hour: the list, and the server's memory, would grow with every
/// connection. 20,000 short connections, one after another, and the server's resident memory
/// (VmRSS) does not grow: 20,000 entries left behind would take about 1 MB (the test fails so
/// with them), and 256 KiB is allowed. 2,000 connections first let the allocator and the log's
/// buffer reach their working size.
#[cfg(target_os = "linux")]
#[test]
fn short_connections_leave_nothing_behind_in_the_idle_deadlines() {
    let server = start(&[], &["--idle-timeout", "3600"]);
    let closed = " closed the connection\n";
    let churn = |n: usize| {
        for _ in 0..n {
            let mut sock = connect(server.addr);
            assert_eq!(echo(&mut sock, b"hi"), b"hi123");
        }
    };
    churn(2_000);
    server.wait_for_count(closed, 2_000);
    let before = common::proc_status(server.pid(), "VmRSS");
    churn(20_000);
    server.wait_for_count(closed, 22_000);
    let after = common::proc_status(server.pid(), "VmRSS");
    assert!(
        after < before + 256,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}

/// A client that sends and never reads its replies is dropped after `--idle-timeout` too, with
/// its own reason: replies were waiting for it all that time. The timeout is 2 s here because
/// the client must first fill the buffers, writing all the while: a client that stopped
/// writing for the whole timeout before the server held replies for it would, rightly, be
/// dropped as silent.
#[test]
fn a_client_that_never_reads_is_dropped_after_the_idle_timeout() {
    for step in STEPS {
        let server = start(step, &["--idle-timeout", "2"]);
        let mut deaf = connect(server.addr);
        let me = deaf.local_addr().unwrap();
        write_until_held(&server, &mut deaf);
        server.wait_for_log(&format!(
            "{me} dropped: the client did not read for longer than --idle-timeout\n"
        ));
        let mut next = connect(server.addr);
        assert_eq!(echo(&mut next, b"next"), b"next123");
    }
}

/// What a client sends is shown quoted and escaped in the log, as in lesson 02, and bytes that
/// are not UTF-8 come back as they were.
#[test]
fn client_bytes_are_escaped_in_the_log_and_echoed_as_they_are() {
    let server = start(&[], &[]);
    let mut sock = connect(server.addr);
    let me = sock.local_addr().unwrap();
    assert_eq!(echo(&mut sock, b"\x1b[2J\nfake"), b"\x1b[2J\nfake123");
    assert_eq!(
        echo(&mut sock, [0xff, 0xfe]),
        [0xff, 0xfe, b'1', b'2', b'3']
    );
    server.wait_for_log(&format!("{me} says: \"\\x1b[2J\\nfake\"\n"));
    server.wait_for_log(&format!("{me} says: \"\\xff\\xfe\"\n"));
    assert!(!server.stdout().contains('\x1b'));
}

/// `--trace` shows the calls that moved bytes; the reads that found nothing (`WouldBlock`),
/// which step 1 makes by the million, are not shown.
#[test]
fn trace_shows_reads_and_writes_and_no_would_block() {
    let server = start(&["--busy"], &["--trace"]);
    let mut sock = connect(server.addr);
    let me = sock.local_addr().unwrap();
    assert_eq!(echo(&mut sock, b"hello"), b"hello123");
    drop(sock);
    server.wait_for_log(&format!("[{me}] read 5 bytes: \"hello\"\n"));
    server.wait_for_log(&format!("[{me}] write 8 bytes: \"hello123\"\n"));
    server.wait_for_log(&format!("[{me}] read 0 bytes (end of stream)\n"));
    let trace = server.stderr();
    assert_eq!(trace.lines().count(), 3, "{trace}");
}

/// `--trace-waits` shows the waiting too. Step 2: what each `wait` returned, before the
/// calls it made ready (none of them would block). Step 1: a read that would block, once per
/// wait, although the loop tries it again and again until the client's bytes come.
#[test]
fn trace_waits_shows_each_wait_and_each_read_that_would_block_once() {
    let server = start(&[], &["--trace-waits"]);
    let mut sock = connect(server.addr);
    let me = sock.local_addr().unwrap();
    server.wait_for_log(&format!("{me} connected\n"));
    assert_eq!(echo(&mut sock, b"hello"), b"hello123");
    drop(sock);
    server.wait_for_log(&format!("[{me}] read 0 bytes (end of stream)\n"));
    assert_eq!(
        server.stderr(),
        format!(
            "wait returned: the listener readable\n\
             wait returned: {me} readable\n\
             [{me}] read 5 bytes: \"hello\"\n\
             [{me}] write 8 bytes: \"hello123\"\n\
             wait returned: {me} readable\n\
             [{me}] read 0 bytes (end of stream)\n"
        )
    );

    let server = start(&["--busy"], &["--trace-waits"]);
    let mut sock = connect(server.addr);
    let me = sock.local_addr().unwrap();
    let would_block = format!("[{me}] read would block (WouldBlock)\n");
    server.wait_for_log(&would_block);
    assert_eq!(echo(&mut sock, b"hello"), b"hello123");
    server.wait_for_count(&would_block, 2);
    drop(sock);
    server.wait_for_log(&format!("[{me}] read 0 bytes (end of stream)\n"));
    assert_eq!(
        server.stderr(),
        format!(
            "{would_block}\
             [{me}] read 5 bytes: \"hello\"\n\
             [{me}] write 8 bytes: \"hello123\"\n\
             {would_block}\
             [{me}] read 0 bytes (end of stream)\n"
        )
    );
}

/// Step 1's bug, shown: with two clients connected and silent, `--busy` never sleeps. Sampled
/// 100 times over a second, it is always running or waiting for a CPU (state `R` in /proc),
/// and it uses whatever CPU it gets: a whole core on a quiet machine (about 100 ticks a
/// second), less on a loaded one, which is why the state is asserted, not the ticks. The
/// readiness loop is asleep in the poller (state `S`) and uses no CPU. The sampling only gives
/// each loop a second to show what it does; nothing waits on it to synchronise.
#[cfg(target_os = "linux")]
#[test]
fn busy_burns_a_core_while_idle_and_the_readiness_loop_sleeps() {
    // (CPU ticks used, samples in state R) over a second, with two silent clients connected.
    let while_idle = |step: &[&str]| {
        let server = start(step, &[]);
        let mut socks = [connect(server.addr), connect(server.addr)];
        for sock in &mut socks {
            assert_eq!(echo(sock, b"hi"), b"hi123");
        }
        let before = common::cpu_ticks(server.pid());
        let mut running = 0;
        for _ in 0..100 {
            if common::proc_state(server.pid()) == 'R' {
                running += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (common::cpu_ticks(server.pid()) - before, running)
    };
    let (busy_ticks, busy_running) = while_idle(&["--busy"]);
    let (ready_ticks, ready_running) = while_idle(&[]);
    assert!(
        busy_running >= 90,
        "--busy was running in only {busy_running} of 100 samples ({busy_ticks} ticks)"
    );
    assert!(
        ready_running <= 5 && ready_ticks <= 5,
        "the readiness loop was running in {ready_running} of 100 samples ({ready_ticks} ticks)"
    );
}

/// Out of file descriptors, `accept` fails again and again while a connection waits: both
/// steps log it and pause accepting for a second instead of trying again at once. (The
/// readiness loop's poller needs three descriptors of its own on Linux: epoll, an eventfd, a
/// timerfd.) `--busy` burns the CPU whatever accept does, so for it only the tries are counted.
#[cfg(target_os = "linux")]
#[test]
fn accept_errors_pause_instead_of_spinning() {
    let (tries, _) = common::accept_errors_in_two_seconds(SERVER, &["--busy"], 4);
    assert!(
        tries <= 3,
        "--busy: {tries} tries in 2 s: no pause between them?"
    );
    common::assert_accept_errors_pause_with_fds(SERVER, &[], 7);
}

#[test]
fn a_max_unsent_of_0_exits_2_on_one_line() {
    let out = common::run(SERVER, &["--max-unsent", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}
