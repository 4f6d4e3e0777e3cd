#!/usr/bin/env bash
# The lesson 07 transfer benchmark, in one command:
#
#   bench/transfer.sh                 # 512 MiB, 3 rounds: floor, upload, download, notes' python
#   bench/transfer.sh --size 4G --rounds 1
#   bench/transfer.sh --rounds 9 --no-python   # steadier ratios on a shared machine
#   bench/transfer.sh --sweep         # the floor's knobs: buffer sizes, io::copy, digest, BufWriter
#   bench/transfer.sh --help
#
# Builds the binaries and examples in release mode, then runs examples/transfer_bench.rs with
# the arguments given. Loopback only; files on /dev/shm where present. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bins --examples
exec target/release/examples/transfer_bench "$@"
