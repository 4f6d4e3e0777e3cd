//! Exercise 13, lesson 10 (线程池): a worker takes the next job under the lock, and runs it
//! after letting go of the lock.
//! 练习 13，第 10 课（线程池）：工作线程在锁里取下一个任务，放开锁之后再执行它。
//!
//! `Pool` is the pool of lesson 10's server, as the Rust Book writes its `ThreadPool`: jobs
//! wait in an `mpsc` channel, and the workers share its receiving end behind a `Mutex` (互斥锁).
//! Every worker runs `work`: take the next job, run it, come back for another. As shipped,
//! `work` is written the way many readers of the Book first write it, and a pool of two
//! workers serves one client at a time: the second client waits until the first has gone,
//! although the second worker has nothing to do.
//!
//! The tests give a pool of two workers two echo clients over 127.0.0.1 (lesson 02's echo:
//! every message comes back with `123`), the first of which stays; and they look at the lock
//! itself while a job runs.
//!
//! `Pool` 就是第 10 课服务端的线程池，照《Rust 程序设计语言》（the Rust Book）写 `ThreadPool`
//! 的办法：任务在一个 `mpsc` 通道里排队，各个工作线程（worker）共用它的接收端，外面套一把
//! `Mutex`（互斥锁）。每个工作线程都跑 `work`：取下一个任务，执行，再回来取。
//! 练习里给出的 `work` 是很多读这本书的人第一次写出来的样子，于是两个工作线程的线程池
//! 一次只能服务一个客户端：第二个客户端要等第一个走了才有人服务，尽管第二个工作线程闲着。
//!
//! 测试让一个有两个工作线程的线程池通过 127.0.0.1 服务两个回显客户端（第 02 课的回显：每条
//! 消息加上 `123` 发回来），第一个一直不走；测试还会在任务执行的时候直接看那把锁。

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A piece of work for the pool: here, serving one client.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// `ThreadPoolExecutor(max_workers=size)`: `size` threads, one queue of jobs.
struct Pool {
    sender: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(size: usize) -> Pool {
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = (0..size)
            .map(|_| {
                let receiver = Arc::clone(&receiver);
                thread::spawn(move || work(&receiver))
            })
            .collect();
        Pool {
            sender: Some(sender),
            workers,
        }
    }

    /// `pool.submit(job)`: the next free worker runs it.
    fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(sender) = &self.sender {
            sender.send(Box::new(job)).expect("every worker has ended");
        }
    }
}

impl Drop for Pool {
    /// The Rust Book's graceful shutdown: without a sender, a worker's `recv()` returns an
    /// error once the queue is empty, and the worker ends; each is joined.
    fn drop(&mut self) {
        drop(self.sender.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// One worker's life: take the next job from the queue and run it, until the pool is dropped.
fn work(receiver: &Mutex<Receiver<Job>>) {
    // TODO: how long does the guard that `lock()` returns live here? While this worker runs a
    // job (serves a client), can another worker take the next one? Take the job under the
    // lock, and run it once the lock is free.
    // TODO（中文）：`lock()` 返回的 guard 在这里活多久？这个工作线程执行任务（服务一个客户端）的
    // 时候，别的工作线程能取到下一个任务吗？在锁里取任务，等锁放开了再执行它。
    while let Ok(job) = receiver.lock().unwrap().recv() {
        job();
    }
}

/// Lesson 02's communication loop: every message comes back with `123` appended, until the
/// client leaves.
fn serve(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut reply = buf[..n].to_vec();
        reply.extend_from_slice(b"123");
        if conn.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Sends `msg` and reads its echo, waiting at most `wait`.
fn echo(sock: &mut TcpStream, msg: &str, wait: Duration) -> io::Result<String> {
    sock.set_read_timeout(Some(wait))?;
    sock.write_all(msg.as_bytes())?;
    let mut reply = vec![0u8; msg.len() + 3];
    sock.read_exact(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// A pool of `workers` serving clients on a new listener, and `clients` clients connected to
/// it, each handed to the pool in the order they connected.
fn pool_with_clients(workers: usize, clients: usize) -> io::Result<(Pool, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let pool = Pool::new(workers);
    let mut socks = Vec::new();
    for _ in 0..clients {
        socks.push(TcpStream::connect(addr)?);
        let (conn, _) = listener.accept()?;
        pool.execute(move || serve(conn));
    }
    Ok((pool, socks))
}

fn main() -> io::Result<()> {
    let (_pool, mut clients) = pool_with_clients(2, 2)?;
    let wait = Duration::from_secs(2);
    println!(
        "client 1 got {:?} and stays",
        echo(&mut clients[0], "one", wait)?
    );
    match echo(&mut clients[1], "two", wait) {
        Ok(reply) => println!("client 2 got {reply:?}: two workers, two clients at once"),
        Err(e) => println!("client 2 got nothing in {wait:?} ({e}): one client at a time"),
    }
    // The clients leave (they are dropped before the pool), then the pool is dropped.
    drop(clients);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far more than an echo over 127.0.0.1 takes on a busy machine; a pool that serves one
    /// client at a time waits it out and fails.
    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn two_workers_answer_a_second_client_while_the_first_stays() {
        let (_pool, mut clients) = pool_with_clients(2, 2).unwrap();
        assert_eq!(echo(&mut clients[0], "first", WAIT).unwrap(), "first123");
        let second = echo(&mut clients[1], "second", WAIT);
        assert!(
            second.is_ok(),
            "the second client was not answered in {WAIT:?} while the first stayed: one worker \
             serves the first, and the other never took the second job ({second:?})"
        );
        assert_eq!(second.unwrap(), "second123");
        // The first is still answered too.
        assert_eq!(echo(&mut clients[0], "again", WAIT).unwrap(), "again123");
    }

    /// One worker (`work` on a thread), running a job: the queue's lock must be free
    /// meanwhile, so that in a pool the other workers can take the next jobs.
    #[test]
    fn the_lock_is_free_while_a_job_runs() {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let worker = thread::spawn({
            let receiver = Arc::clone(&receiver);
            move || work(&receiver)
        });
        let (started, job_started) = mpsc::channel();
        let (finish, may_finish) = mpsc::channel::<()>();
        sender
            .send(Box::new(move || {
                started.send(()).unwrap();
                // Runs until the test drops `finish`.
                let _ = may_finish.recv();
            }))
            .unwrap();
        job_started.recv().unwrap();
        let free = receiver.try_lock().is_ok();
        drop(finish);
        drop(sender);
        worker.join().unwrap();
        assert!(free, "the queue's lock is held while the job runs");
    }

    /// Every job runs once, and dropping the pool waits for them.
    #[test]
    fn every_job_runs_once_and_the_pool_ends_when_dropped() {
        let (done, results) = mpsc::channel();
        let pool = Pool::new(3);
        for i in 0..20 {
            let done = done.clone();
            pool.execute(move || done.send(i).unwrap());
        }
        drop(pool);
        drop(done);
        let mut all: Vec<i32> = results.iter().collect();
        all.sort();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
    }
}
