//! Takes the screenshot in lesson 08's READMEs (`lessons/08_browser/page.png`) from a real
//! run: `lesson08-server` on the learner's address, `127.0.0.1:8080`, and headless Chromium
//! loading its page.
//!
//! ```text
//! cargo run --example lesson08_screenshot
//! ```
//!
//! Needs Chromium (`chromium`, or the program `SOCKET_LESSONS_CHROMIUM` names) and a font with
//! Chinese characters (Debian: `fonts-wqy-microhei`), and port 8080 free. The picture shows
//! what this machine's Chromium sent, so no test compares it with a fresh run, as
//! `tests/wire.rs` does for the wire pictures: another Chromium sends another User-Agent.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

/// Where the picture goes, from the repository's root.
const PICTURE: &str = "lessons/08_browser/page.png";

fn main() -> Result<()> {
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
        .args(["--addr", "127.0.0.1:8080"])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", server_exe.display()))?;
    let mut log = BufReader::new(server.stdout.take().context("no stdout")?);
    let mut first = String::new();
    log.read_line(&mut first)?;
    // The server logs a line per request: keep reading its log, or it cannot print them.
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let result = shoot(&first);
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Loads the page of the server that printed `first` (its `listening on` line) and saves it.
fn shoot(first: &str) -> Result<()> {
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .context("the server did not start (is port 8080 taken?)")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let picture = root.join(PICTURE);
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
    println!("wrote {PICTURE}");
    Ok(())
}
