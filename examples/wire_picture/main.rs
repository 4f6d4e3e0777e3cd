//! Draws the wire pictures of the lessons' READMEs from real runs of the lesson binaries.
//!
//! ```text
//! cargo run --example wire_picture            # all of them
//! cargo run --example wire_picture -- 03      # lessons/03_sticky/wire.svg only
//! ```
//!
//! Each picture runs the lesson's server and client with `--trace`, puts the two traces in one
//! order by byte offsets and draws them (see `picture.rs` beside this file, which holds the
//! scenarios). `tests/wire.rs` fails when a committed picture no longer matches a fresh run.
//! Drawn on Linux: the scenarios run `seq` and `echo` through the server's `sh`.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

mod picture;

use picture::{draw, scenario, SCENARIOS};

fn main() -> Result<()> {
    let wanted = std::env::args().skip(1).map(|w| {
        scenario(&w).with_context(|| format!("no picture for lesson {w:?} (there are: 03, 04, 06)"))
    });
    let wanted: Vec<_> = wanted.collect::<Result<_>>()?;

    // `cargo run --example` builds the example only: build the lesson binaries it runs, in the
    // same profile (a no-op when they are up to date). This example is in
    // `target/PROFILE/examples/`, they are in `target/PROFILE/`.
    let exe = std::env::current_exe()?;
    let bins = exe
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--bins"]);
    if bins.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build --bins")?;
    ensure!(status.success(), "cargo build --bins failed");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sc in if wanted.is_empty() {
        SCENARIOS.iter().collect()
    } else {
        wanted
    } {
        let svg = draw(sc, bins).with_context(|| format!("lesson {}", sc.lesson))?;
        let path = root.join(sc.svg);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", sc.svg);
    }
    Ok(())
}
