//! Draws the wire pictures of the lessons' READMEs from real runs of the lesson binaries.
//!
//! ```text
//! cargo run --example wire_picture            # all of them
//! cargo run --example wire_picture -- 03      # lessons/03_sticky/wire.svg only
//! cargo run --example wire_picture -- 10      # lessons/10_pool/wire.svg only
//! ```
//!
//! Each picture runs the lesson's server and client with `--trace`, puts the two traces in one
//! order by byte offsets and draws them (see `picture.rs` beside this file, which holds the
//! scenarios). The ladder's (`09`, `09-processes`, `10`, `11`, `11-busy`, `12`) run one server and three
//! clients through the same script and draw a lane for each of the server's threads (see
//! `lanes.rs`). `tests/wire.rs` fails when a committed picture no longer matches a fresh run.
//! Drawn on Linux: the scenarios run `seq` and `echo` through the server's `sh`.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

mod lanes;
mod picture;

use lanes::{ladder, LADDER};
use picture::{scenario, SCENARIOS};

/// One of the pictures: a client and a server (03, 04, 06), or the ladder's lanes (09-12).
enum Wanted {
    Wire(&'static picture::Scenario),
    Lanes(&'static lanes::Ladder),
}

fn main() -> Result<()> {
    let wanted = std::env::args().skip(1).map(|w| {
        let found = scenario(&w).map(Wanted::Wire);
        found.or_else(|| ladder(&w).map(Wanted::Lanes)).with_context(|| {
            format!("no picture called {w:?} (there are: 03, 04, 06, 09, 09-processes, 10, 11, 11-busy, 12)")
        })
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
    // At the workspace's root: its default members, so lesson 12's package too.
    build.current_dir(env!("CARGO_MANIFEST_DIR"));
    build.args(["build", "--quiet", "--bins"]);
    if bins.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build --bins")?;
    ensure!(status.success(), "cargo build --bins failed");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = SCENARIOS.iter().map(Wanted::Wire);
    let all = all.chain(LADDER.iter().map(Wanted::Lanes));
    for picture in if wanted.is_empty() {
        all.collect()
    } else {
        wanted
    } {
        let (svg, path) = match picture {
            Wanted::Wire(sc) => (
                picture::draw(sc, bins).with_context(|| format!("lesson {}", sc.lesson))?,
                sc.svg,
            ),
            Wanted::Lanes(l) => (
                lanes::draw(l, bins).with_context(|| format!("picture {}", l.name))?,
                l.svg,
            ),
        };
        let file = root.join(path);
        std::fs::write(&file, svg).with_context(|| format!("writing {}", file.display()))?;
        println!("wrote {path}");
    }
    Ok(())
}
