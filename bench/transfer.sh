#!/usr/bin/env bash
# The transfer benchmark: how close lesson07-client's upload and download come to a plain TCP
# copy (the floor, examples/tcp_copy.rs, 1 MiB buffers), and the peak memory of every process.
#
#   bench/transfer.sh              # a 512 MiB file, 5 rounds
#   bench/transfer.sh 4G 3         # SIZE (as `head -c` takes it: 512M, 4G) and ROUNDS
#
# Targets: upload and download each >= 0.9x the floor's speed in the same run (median of the
# rounds); peak resident memory <= 8 MiB for every client and server. Exit 0 when all are met,
# 1 when not. The fastest round of each row is printed too: other work on the machine only
# ever adds time, so on a busy machine it is the better guess of what a program itself costs.
#
# Linux only (/proc). Installs hyperfine and GNU time with apt-get when they are missing.
# Talks only to 127.0.0.1; files live in a fresh directory on /dev/shm (tmpfs, so the disk is
# not what is measured; BENCH_DIR=... to change), about 3x SIZE, deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-512M}
ROUNDS=${2:-5}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v hyperfine >/dev/null || [ ! -x /usr/bin/time ]; then
  as_root apt-get update -qq
  as_root apt-get install -y -qq hyperfine time >/dev/null
fi

cargo build --quiet --release --bin lesson07-server --bin lesson07-client --example tcp_copy
bin=target/release
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/socket-lessons-bench.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/srv" "$work/dl" "$work/py"
head -c "$SIZE" /dev/urandom >"$work/video.bin"
bytes=$(stat -c %s "$work/video.bin")

# start NAME COMMAND...: runs a server in the background, waits for `listening on IP:PORT`.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$!"
  until grep -qs '^listening on ' "$work/$name.log"; do
    kill -0 "$!" 2>/dev/null || { cat "$work/$name.log"; exit 1; }
    sleep 0.05
  done
  eval "${name}_addr=$(sed -n 's/^listening on //p' "$work/$name.log")"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start floor "$bin/examples/tcp_copy" recv 127.0.0.1:0 "$work/floor-copy.bin"
start l07 "$bin/lesson07-server" --addr 127.0.0.1:0 --dir "$work/srv"

names=(floor upload download)
# Before each run, the row's previous copy is deleted (untimed), so every run writes into a
# fresh file and none pays for freeing the last one (or needs room for two).
clears=("$work/floor-copy.bin" "$work/srv/video.bin" "$work/dl/video.bin")
cmds=(
  "$bin/examples/tcp_copy send $floor_addr $work/video.bin"
  "$bin/lesson07-client --addr $l07_addr upload $work/video.bin"
  "$bin/lesson07-client --addr $l07_addr download video.bin --out $work/dl --force"
)
# The notes' section 4 upload in Python, for scale (slow: only up to 1 GiB).
if command -v python3 >/dev/null && [ "$bytes" -le $((1 << 30)) ]; then
  start py python3 bench/notes_upload.py server --addr 127.0.0.1:0 --dir "$work/py"
  names+=(python)
  clears+=("$work/py/video.bin")
  cmds+=("python3 bench/notes_upload.py client --addr $py_addr $work/video.bin")
fi
${cmds[1]} >/dev/null # the download row needs the file on the server

# Rounds: every row once per round, the order rotated each round, so a busy moment of the
# machine hits all rows alike.
for ((r = 0; r < ROUNDS; r++)); do
  args=()
  for ((j = 0; j < ${#names[@]}; j++)); do
    i=$(((j + r) % ${#names[@]}))
    args+=(-n "${names[$i]}" --prepare "rm -f ${clears[$i]}" "${cmds[$i]}")
  done
  warmup=$((r == 0 ? 1 : 0))
  hyperfine -N --style none --warmup "$warmup" --runs 1 --export-csv "$work/round.csv" "${args[@]}"
  tail -n +2 "$work/round.csv" | cut -d, -f1,2 | tee -a "$work/times.csv" |
    awk -F, -v r=$((r + 1)) '{line = line sprintf("  %s %.3f s", $1, $2)} END {print "round " r ":" line}'
done
# figure NAME median|best: a row's median or fastest time over the rounds.
figure() {
  awk -F, -v n="$1" '$1 == n {print $2}' "$work/times.csv" | sort -g | awk -v w="$2" '
    {a[NR] = $1}
    END {print (w == "best" ? a[1] : NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}

# Every copy must equal the original (lesson07-client also checks the XXH3 digest itself and
# exits non-zero when it differs, which stops hyperfine).
for copy in floor-copy.bin srv/video.bin dl/video.bin py/video.bin; do
  [ -e "$work/$copy" ] || continue
  cmp "$work/video.bin" "$work/$copy" || { echo "FAILED: $copy differs"; exit 1; }
done

# Peak resident memory: a client's from GNU time (%M, KiB, from wait4), once more each; a
# server's from VmHWM in /proc after all its transfers.
kib_of() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
hwm_of() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
client_kib=("$(kib_of ${cmds[0]})" "$(kib_of ${cmds[1]})" "$(kib_of ${cmds[2]})")
server_kib=("$(hwm_of "$floor_pid")" "$(hwm_of "$l07_pid")" "$(hwm_of "$l07_pid")")
if [ "${#names[@]}" = 4 ]; then
  rm -f "$work/py/video.bin"
  client_kib+=("$(kib_of ${cmds[3]})")
  server_kib+=("$(hwm_of "$py_pid")")
fi

echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)," \
  "Linux $(uname -r), load before: $load_before"
echo "file: $bytes bytes on $(dirname "$work"), loopback, $ROUNDS rounds (hyperfine)"
printf '%-9s %8s %6s %7s %8s %7s %12s %12s\n' row median MiB/s 'x floor' best '(x)' 'client peak' \
  'server peak'
ok=1
floor_best=$(figure floor best)
floor_median=$(figure floor median)
for i in "${!names[@]}"; do
  best=$(figure "${names[$i]}" best)
  median=$(figure "${names[$i]}" median)
  read -r mibs ratio ratio_best < <(awk -v b="$bytes" -v s="$best" -v m="$median" \
    -v f="$floor_best" -v fm="$floor_median" 'BEGIN {printf "%.0f %.2f %.2f\n", b / 1048576 / m, fm / m, f / s}')
  printf '%-9s %7.3fs %6s %7s %7.3fs %7s %8.1f MiB %8.1f MiB\n' "${names[$i]}" "$median" "$mibs" "$ratio" \
    "$best" "($ratio_best)" \
    "$(awk -v k="${client_kib[$i]}" 'BEGIN {print k / 1024}')" \
    "$(awk -v k="${server_kib[$i]}" 'BEGIN {print k / 1024}')"
  if [ "$i" -ge 1 ] && [ "$i" -le 2 ]; then
    awk -v r="$ratio" 'BEGIN {exit !(r >= 0.9)}' || { echo "  MISSED: ${names[$i]} below 0.9x floor"; ok=0; }
    for k in "${client_kib[$i]}" "${server_kib[$i]}"; do
      [ "$k" -le 8192 ] || { echo "  MISSED: ${names[$i]} peak $k KiB over 8 MiB"; ok=0; }
    done
  fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$ok" = 1 ]; then echo "targets met"; else echo "targets missed"; exit 1; fi
