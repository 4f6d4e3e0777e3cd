//! Takes a screenshot like the one in lesson 08's READMEs from a real run: `lesson08-server` on
//! the learner's address, `127.0.0.1:8080`, and headless Chromium loading its page.
//!
//! ```text
//! cargo run --example lesson08_screenshot                                         # target/page.png
//! cargo run --example lesson08_screenshot -- --output lessons/08_browser/page.png  # the READMEs'
//! ```
//!
//! It writes `target/page.png` unless told otherwise, so that a learner's run leaves the
//! READMEs' picture as it is; `--output` replaces that one. Needs Chromium (`chromium`, or the
//! program `SOCKET_LESSONS_CHROMIUM` names) and a font with Chinese characters (Debian:
//! `fonts-wqy-microhei`), and the address free: stop `lesson08-server` first, or give another
//! with `--addr` (the page shows it). The picture shows what this machine's Chromium sent, so
//! no test compares it with a fresh run, as `tests/wire.rs` does for the wire pictures: another
//! Chromium sends another User-Agent.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use socket_lessons::cli;

/// Lesson 08's page in headless Chromium, saved as a PNG
#[derive(Parser)]
struct Args {
    /// Address for lesson08-server (the page shows it); it must be free
    #[arg(long, value_name = "HOST:PORT", default_value = cli::DEFAULT_ADDR, value_parser = cli::parse_addr)]
    addr: SocketAddr,

    /// Where the picture goes (relative to the repository's root);
    /// lessons/08_browser/page.png replaces the READMEs'
    #[arg(long, value_name = "FILE", default_value = "target/page.png")]
    output: PathBuf,
}

fn main() -> Result<()> {
    // Bad arguments exit 2 on one line; an error is printed without a stack backtrace, as the
    // lessons' programs print theirs.
    let args: Args = cli::parse();
    // `cargo run --example` builds the example only: build the server too, in the same profile.
    let exe = std::env::current_exe()?;
    let bins = exe
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bin", "lesson08-server"])
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build --bin lesson08-server failed");

    let server_exe = bins.join(format!("lesson08-server{}", std::env::consts::EXE_SUFFIX));
    let mut server = Command::new(&server_exe)
        .arg("--addr")
        .arg(args.addr.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", server_exe.display()))?;
    let mut log = BufReader::new(server.stdout.take().context("no stdout")?);
    let mut first = String::new();
    log.read_line(&mut first)?;
    // The server logs a line per request: keep reading its log, or it cannot print them.
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let result = shoot(&first, args.addr, &args.output);
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Loads the page of the server that printed `first` (its `listening on` line), asked for on
/// `wanted`, and saves it as `output`.
fn shoot(first: &str, wanted: SocketAddr, output: &Path) -> Result<()> {
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| {
            format!(
                "lesson08-server could not listen on {wanted}: stop the lesson08-server that \
                 still runs (Ctrl-C in its terminal), or choose another address (--addr)"
            )
        })?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let picture = root.join(output);
    let profile = std::env::temp_dir().join(format!("lesson08-screenshot-{}", std::process::id()));
    let chromium = std::env::var("SOCKET_LESSONS_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    // The flags of tests/common's `Browser`, and a window the page fits in.
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=900,960",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", picture.display()))
        .arg(format!("http://{addr}/"))
        .output()
        .with_context(|| format!("running {chromium}"))?;
    let _ = std::fs::remove_dir_all(&profile);
    ensure!(
        out.status.success() && picture.is_file(),
        "{chromium} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("wrote {}", output.display());
    Ok(())
}
