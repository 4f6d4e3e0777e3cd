//! Lesson 10, beside the pool: 互斥锁 (a mutex) and the course's 模拟抢票 (ticket-grabbing) demo.
//!
//! The course's demo: one ticket left and ten buyers at once (processes there, threads here).
//! Each buyer reads the count, waits a moment (the network: `time.sleep(...)`), and if a
//! ticket was left writes back the count minus one. Without a lock, every buyer reads 1 before
//! anyone writes 0: ten buyers get the one ticket. With a lock taken before the read and
//! released after the write (`mutex.acquire()` … `mutex.release()`), one buyer at a time does
//! all three: one ticket sold, and the buyers, started at once, buy one after another (并发
//! becomes 串行, the price of the lock).
//!
//! In Python the unlocked version runs and oversells. In Rust, ten threads sharing a plain
//! counter do not compile: a value that can be changed has one owner at a time (`&mut`), and
//! the compiler says so (error E0499, "cannot borrow `tickets` as mutable more than once at a
//! time"; this block is checked as a doc test that must fail to compile):
//!
//! ```compile_fail,E0499
//! fn main() {
//!     let mut tickets = 1;
//!     std::thread::scope(|s| {
//!         for _ in 0..10 {
//!             s.spawn(|| {
//!                 if tickets > 0 {
//!                     tickets -= 1;
//!                 }
//!             });
//!         }
//!     });
//! }
//! ```
//!
//! So the unlocked demo is written with an atomic integer, which threads may share: each load
//! and each store is whole, yet nothing keeps another buyer's store out of the gap between a
//! buyer's load and its own store. That gap is the bug, and it compiles.
//!
//! ```text
//! cargo run --bin lesson10-tickets
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use clap::Parser;
use socket_lessons::cli;

/// Lesson 10's 抢票 demo: one ticket, ten buyers at once, without and with a lock (互斥锁).
#[derive(Parser)]
struct Args {}

/// How many buyers try at once, each on a thread of its own; one ticket is on sale.
pub const BUYERS: usize = 10;

fn main() {
    let _: Args = cli::parse();
    // `time.sleep(random.randint(1, 3))` in the course: long enough for every buyer to read
    // the count before the first one writes it back.
    let network = || thread::sleep(Duration::from_millis(100));
    println!(
        "1 ticket, {BUYERS} buyers at once; each reads the count, waits 0.1 s, writes it back"
    );

    let unlocked = AtomicU32::new(1);
    let sold = sell(|| buy_unlocked(&unlocked, &network));
    println!(
        "without a lock: {sold} of {BUYERS} buyers got the ticket, {} of them a ticket that did not exist",
        sold.saturating_sub(1)
    );

    let locked = Mutex::new(1);
    let sold = sell(|| buy_locked(&locked, &network));
    println!("with a Mutex (互斥锁): {sold} of {BUYERS} buyers got the ticket");
}

/// One buyer, the course's `buy()` without the lock. `network` is the wait between the read
/// and the write. Whether this buyer got a ticket.
///
/// BUG (on purpose): the count read before the wait is written back after it, minus one,
/// whatever other buyers wrote meanwhile. `buy_locked` below fixes it.
pub fn buy_unlocked(tickets: &AtomicU32, network: &dyn Fn()) -> bool {
    // `dic = json.load(f)`: read the count.
    let left = tickets.load(Ordering::SeqCst);
    network();
    if left > 0 {
        // `dic['ticket_num'] -= 1; json.dump(dic, f)`: write back what we read, minus one.
        tickets.store(left - 1, Ordering::SeqCst);
        true
    } else {
        false
    }
}

/// One buyer, the course's `mutex.acquire(); buy(); mutex.release()`. The count lives inside
/// the `Mutex`: the only way to reach it is `lock()`, which waits while another buyer holds
/// the lock, so no buyer can read it in the middle of another's read, wait and write.
/// (An atomic can do the same in one step, `fetch_update(…, |n| n.checked_sub(1))`, with no
/// wait inside; the course's lock is the general tool.)
pub fn buy_locked(tickets: &Mutex<u32>, network: &dyn Fn()) -> bool {
    // `mutex.acquire()`. A poisoned lock (a buyer panicked holding it, which the lines below
    // cannot do) still guards a good count: take it.
    let mut left = tickets.lock().unwrap_or_else(PoisonError::into_inner);
    network();
    if *left > 0 {
        *left -= 1;
        true
    } else {
        false
    }
    // `mutex.release()`: the guard `left` is dropped here, and the next buyer goes in.
}

/// Starts [`BUYERS`] threads at once, each running `buy`; how many got a ticket.
pub fn sell(buy: impl Fn() -> bool + Sync) -> usize {
    thread::scope(|s| {
        let buyers: Vec<_> = (0..BUYERS).map(|_| s.spawn(&buy)).collect();
        // A buyer whose thread panicked (none here can) bought nothing.
        buyers
            .into_iter()
            .map(|buyer| buyer.join().unwrap_or(false))
            .filter(|&got| got)
            .count()
    })
}
