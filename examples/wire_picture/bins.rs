//! Builds the lesson binaries an example runs. `cargo run --example` builds the example only,
//! so an example that starts lesson binaries builds them first, in its own profile (a no-op
//! when they are up to date). Shared by `wire_picture` and `lesson08_screenshot`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};

/// Builds `bins` (every binary of the default members when empty) in the profile this
/// example was built in, and returns the folder they are in: this example is in
/// `target/PROFILE/examples/`, they are in `target/PROFILE/`.
pub fn build(bins: &[&str]) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // At the workspace's root: its default members, so lesson 12's package too.
    build.current_dir(env!("CARGO_MANIFEST_DIR"));
    build.args(["build", "--quiet"]);
    if bins.is_empty() {
        build.arg("--bins");
    }
    for bin in bins {
        build.args(["--bin", bin]);
    }
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build")?;
    ensure!(status.success(), "cargo build failed");
    Ok(dir.to_path_buf())
}
