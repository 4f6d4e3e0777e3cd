//! Exercise 15, lesson 12 (协程, async/await): a blocking call in a task stops every task.
//! 练习 15，第 12 课（协程，async/await）：任务里的一个阻塞调用，会让所有任务都停下。
//!
//! `serve` is lesson 12's server in small: tokio's single-threaded runtime (one thread, as
//! gevent has), and a task for each client (`tokio::spawn(talk(…))`, gevent's
//! `spawn(talk, conn)`). Before each answer, `talk` runs `job` on the message: a slow job given
//! by the caller, and a plain blocking function, like a library call that has no async version,
//! a file read with `std::fs`, or a long computation. Called straight from the task, it blocks
//! the runtime's only thread: while it runs, no other client is read, accepted or answered.
//!
//! The tests play two clients over 127.0.0.1. The first one's job blocks until the test lets it
//! go; meanwhile the second client must be answered.
//!
//! `serve` 是缩小了的第 12 课服务端：tokio 的单线程运行时（只有一个线程，和 gevent 一样），
//! 每个客户端一个任务（`tokio::spawn(talk(…))`，也就是 gevent 的 `spawn(talk, conn)`）。每次
//! 回复之前，`talk` 都要对消息运行 `job`：调用者给的一个慢活儿，一个普通的阻塞函数，就像没有
//! 异步版本的库函数、用 `std::fs` 读文件，或者一段很长的计算。在任务里直接调用它，就会堵住运行时
//! 唯一的线程：它运行期间，别的客户端没人读、没人 accept、也没人回复。
//!
//! 测试通过 127.0.0.1 扮演两个客户端。第一个客户端的 job 一直阻塞，直到测试放行；在这期间，
//! 第二个客户端必须得到回复。

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The slow job run on each message before it is answered: a blocking function, shared by
/// every task (hence the `Arc`, and `Send + Sync`).
type Job = Arc<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

/// One client's communication loop (通信循环): each message comes back as `job(message)` with
/// `123` appended, until the client closes the connection.
async fn talk(mut conn: TcpStream, job: Job) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // TODO: `job` blocks this thread until it returns, and this thread is the runtime's
        // only one: every other client waits meanwhile. Run the job where blocking is
        // allowed, and `.await` its result here.
        // TODO（中文）：`job` 会一直占着这个线程，直到它返回，而这个线程是运行时唯一的线程：
        // 这期间别的客户端都只能等。把 job 放到允许阻塞的地方去运行，在这里 `.await` 它的结果。
        let mut reply = job(buf[..n].to_vec());
        reply.extend_from_slice(b"123");
        conn.write_all(&reply).await?;
    }
}

/// The connection loop (链接循环): a task for each client, gevent's `spawn(talk, conn)`.
async fn serve(listener: TcpListener, job: Job) -> io::Result<()> {
    loop {
        let (conn, _) = listener.accept().await?;
        tokio::spawn(talk(conn, Arc::clone(&job)));
    }
}

/// Starts `serve` on tokio's single-threaded runtime, in a thread of its own, on a free port of
/// 127.0.0.1; its address.
fn start(job: Job) -> io::Result<SocketAddr> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    thread::spawn(move || runtime.block_on(serve(listener, job)));
    Ok(addr)
}

/// Sends `msg` on a new connection and reads its answer (`msg.len() + 3` bytes).
fn ask(addr: SocketAddr, msg: &[u8], wait: Duration) -> io::Result<Vec<u8>> {
    let mut sock = std::net::TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(wait))?;
    sock.write_all(msg)?;
    let mut reply = vec![0u8; msg.len() + 3];
    sock.read_exact(&mut reply)?;
    Ok(reply)
}

fn main() -> io::Result<()> {
    // Half a second of work, then the answer in capitals (the course's gevent example answers
    // `data.upper()`).
    let job: Job = Arc::new(|data: Vec<u8>| {
        thread::sleep(Duration::from_millis(500));
        data.to_ascii_uppercase()
    });
    let addr = start(job)?;
    let started = Instant::now();
    let clients: Vec<_> = ["hello", "gevent"]
        .into_iter()
        .map(|msg| thread::spawn(move || (msg, ask(addr, msg.as_bytes(), Duration::from_secs(5)))))
        .collect();
    for client in clients {
        let (msg, reply) = client.join().expect("a client thread panicked");
        let reply = reply?;
        println!(
            "{msg:?} -> {:?} after {:.1} s",
            String::from_utf8_lossy(&reply),
            started.elapsed().as_secs_f64()
        );
    }
    println!("two jobs of 0.5 s: both answered after 0.5 s when they run side by side,");
    println!("the second after 1 s when one job blocks the thread the other needs");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// How long a client waits for an answer that must come: a safety net for a busy machine.
    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn each_message_comes_back_done_by_the_job_with_123() {
        let shout: Job = Arc::new(|data: Vec<u8>| data.to_ascii_uppercase());
        let addr = start(shout).unwrap();
        same(
            &ask(addr, b"hello", WAIT).unwrap(),
            b"HELLO123",
            "the answer",
        );
        // The job changes ASCII letters only: Chinese comes back as it was sent.
        same(
            &ask(addr, "你好".as_bytes(), WAIT).unwrap(),
            "你好123".as_bytes(),
            "the answer",
        );
    }

    /// The first client's job blocks until the test lets it go (at most twice `WAIT`, so that
    /// nothing can hang). Meanwhile the second client's answer must come.
    #[test]
    fn a_second_client_is_answered_while_the_first_ones_job_runs() {
        let (started, job_started) = mpsc::channel::<()>();
        let (let_go, go) = mpsc::channel::<()>();
        let (started, go) = (Mutex::new(started), Mutex::new(go));
        let job: Job = Arc::new(move |data: Vec<u8>| {
            if data == b"slow" {
                let _ = started.lock().unwrap().send(());
                let _ = go.lock().unwrap().recv_timeout(WAIT * 2);
            }
            data.to_ascii_uppercase()
        });
        let addr = start(job).unwrap();
        let first = thread::spawn(move || ask(addr, b"slow", WAIT * 3));
        job_started
            .recv_timeout(WAIT)
            .expect("the first client's job never started");

        let second = ask(addr, b"quick", WAIT);
        let _ = let_go.send(());
        let second = second.expect(
            "no answer for the second client while the first one's job ran: the job blocks \
             the runtime's only thread, and every task on it waits",
        );
        same(&second, b"QUICK123", "the second client's answer");
        same(
            &first.join().unwrap().unwrap(),
            b"SLOW123",
            "the first client's answer",
        );
    }
}
