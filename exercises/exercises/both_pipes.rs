//! Exercise 10, lesson 03 (notes 3, the server runs a command): read a command's stdout and
//! stderr without a deadlock.
//! 练习 10，第 03 课（笔记第 3 节，服务端执行命令）：读命令的 stdout 和 stderr，不能死锁。
//!
//! The notes' server runs the client's command and reads its output like this:
//!
//! ```text
//! obj = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
//! stdout = obj.stdout.read()
//! stderr = obj.stderr.read()
//! ```
//!
//! A pipe holds only so much (64 KiB on Linux). A command that writes more than that to
//! stderr before it closes its stdout waits until someone reads stderr; the notes' server
//! reads stdout until it ends, which never comes: each waits for the other, for ever (bug 7,
//! a deadlock; Python's documentation warns about exactly this). `read_both` must read both
//! pipes at the same time and return everything each one carried.
//!
//! `main` runs a real command: this program itself, started again with `--command`, which
//! writes 1 MiB to stderr and then a line to stdout. If `read_both` has not returned after 5 s,
//! `main` says so and kills it. The tests use `std::io::pipe`, the same kind of pipe, written
//! by a thread that plays the command.
//!
//! 笔记的服务端这样执行客户端发来的命令、读它的输出（见上面的代码）。一个管道只能装下那么多
//! （Linux 上是 64 KiB）。命令要是先往 stderr 写了超过这么多的内容、还没关掉 stdout，它就得等
//! 有人去读 stderr；而笔记的服务端在等 stdout 读到结束，这个结束永远不会来：双方互相等，一直等
//! 下去（bug 7，死锁；Python 的文档正是为此提出了警告）。`read_both` 要同时读两个管道，
//! 把每个管道送来的全部内容都返回。
//!
//! `main` 运行一个真实的命令：这个程序自己，加上 `--command` 再启动一次，它先往 stderr 写
//! 1 MiB，再往 stdout 写一行。`read_both` 过了 5 秒还没返回，`main` 就说明情况并杀掉那个命令。
//! 测试用的是 `std::io::pipe`，同一种管道，由一个扮演命令的线程来写。

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Reads `stdout` and `stderr` to their ends, both at once, and returns all of each:
/// `(stdout, stderr)`. The first read error of either is the error.
fn read_both(
    mut stdout: impl Read + Send,
    mut stderr: impl Read + Send,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    // TODO: the notes' `stdout.read()` then `stderr.read()`. While this waits for the end of
    // stdout, nobody reads stderr: a command that fills the stderr pipe first waits for ever,
    // and so does this. Read both at the same time (one more thread reads one of them).
    // TODO（中文）：这是笔记的先 `stdout.read()`、再 `stderr.read()`。这里在等 stdout 读到结束的
    // 时候，没有人读 stderr：命令先把 stderr 的管道写满，就会一直等下去，这里也跟着一直等。
    // 改成两个同时读（再开一个线程读其中一个）。
    let mut out = Vec::new();
    stdout.read_to_end(&mut out)?;
    let mut err = Vec::new();
    stderr.read_to_end(&mut err)?;
    Ok((out, err))
}

/// The argument that makes this program the command instead of the caller.
const AS_COMMAND: &str = "--command";

/// How much the command writes to stderr before its stdout line: far more than a pipe holds.
const NOISE: usize = 1 << 20;

fn main() -> io::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(AS_COMMAND) {
        // The command: 1 MiB of warnings on stderr, then its answer on stdout.
        io::stderr().lock().write_all(&vec![b'!'; NOISE])?;
        return io::stdout().lock().write_all(b"the answer\n");
    }
    let mut child = Command::new(std::env::current_exe()?)
        .arg(AS_COMMAND)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Spawned with Stdio::piped(), so both pipes are there.
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(read_both(stdout, stderr)));
    match result.recv_timeout(Duration::from_secs(5)) {
        Ok(read) => {
            let (out, err) = read?;
            println!(
                "the command wrote {} bytes to stdout ({:?}) and {} to stderr",
                out.len(),
                String::from_utf8_lossy(&out),
                err.len()
            );
        }
        Err(_) => {
            println!(
                "read_both has waited 5 s: the command waits for someone to read its stderr, \
                 read_both waits for the end of its stdout (a deadlock). Killing the command."
            );
            child.kill()?;
        }
    }
    child.wait()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `same(got, want, what)`: compares bytes, and says where they differ.
    include!("../common/same_bytes.rs");

    /// How long `read_both` may take before the test calls it a deadlock. Reading 2 MiB from
    /// two pipes takes a few milliseconds; this is only a safety net.
    const DEADLOCK: Duration = Duration::from_secs(5);

    /// What a command writes: to its stdout, to its stderr.
    type Writes = fn(&mut io::PipeWriter, &mut io::PipeWriter);

    /// Plays a command: `write` gets its stdout and stderr (two real pipes) and writes to them;
    /// both are closed when it returns, as when a command exits. Returns what `read_both` read,
    /// or fails the test when it has not returned after `DEADLOCK`.
    fn run(write: Writes) -> (Vec<u8>, Vec<u8>) {
        let (out_reader, mut out_writer) = io::pipe().unwrap();
        let (err_reader, mut err_writer) = io::pipe().unwrap();
        thread::spawn(move || write(&mut out_writer, &mut err_writer));
        let (done, result) = mpsc::channel();
        // On a deadlock these two threads stay blocked; the test process ends all the same.
        thread::spawn(move || done.send(read_both(out_reader, err_reader)));
        match result.recv_timeout(DEADLOCK) {
            Ok(read) => read.unwrap(),
            Err(_) => panic!(
                "read_both has not returned after {DEADLOCK:?}: the command is stuck writing to a \
                 full pipe that nobody reads, while read_both waits for the end of the other one \
                 (a deadlock)"
            ),
        }
    }

    /// The output of `seq 1 1000`-like commands: different bytes at every position.
    fn numbers(prefix: &str, count: usize) -> Vec<u8> {
        (1..=count)
            .flat_map(|i| format!("{prefix} {i}\n").into_bytes())
            .collect()
    }

    /// The deadlock of the notes: a lot on stderr first, then stdout. The other order is no
    /// better: stdout does not end before the command exits, and it cannot exit while its
    /// stderr pipe is full. The notes get away only with a little stderr.
    #[test]
    fn much_output_on_both_pipes_does_not_deadlock_in_either_order() {
        fn stderr_first(out: &mut io::PipeWriter, err: &mut io::PipeWriter) {
            err.write_all(&numbers("warning", 100_000)).unwrap();
            out.write_all(&numbers("line", 100_000)).unwrap();
        }
        fn stdout_first(out: &mut io::PipeWriter, err: &mut io::PipeWriter) {
            out.write_all(&numbers("line", 100_000)).unwrap();
            err.write_all(&numbers("warning", 100_000)).unwrap();
        }
        for (order, command) in [
            ("stderr first", stderr_first as Writes),
            ("stdout first", stdout_first),
        ] {
            let (out, err) = run(command);
            same(&out, &numbers("line", 100_000), &format!("stdout, {order}"));
            same(
                &err,
                &numbers("warning", 100_000),
                &format!("stderr, {order}"),
            );
        }
    }

    /// Small pieces, in turn, on both: each pipe's bytes come back whole and in order.
    #[test]
    fn interleaved_writes_come_back_apart() {
        let (out, err) = run(|out, err| {
            for i in 1..=20_000 {
                out.write_all(format!("line {i}\n").as_bytes()).unwrap();
                err.write_all(format!("warning {i}\n").as_bytes()).unwrap();
            }
        });
        same(&out, &numbers("line", 20_000), "stdout");
        same(&err, &numbers("warning", 20_000), "stderr");
    }

    /// A command that prints nothing (`cd`, `mkdir x`): two empty outputs.
    #[test]
    fn a_command_that_prints_nothing_gives_two_empty_outputs() {
        let (out, err) = run(|_, _| {});
        assert_eq!((out.len(), err.len()), (0, 0), "stdout and stderr lengths");
    }
}
