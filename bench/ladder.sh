#!/usr/bin/env bash
# The ladder measured: every way of lessons 09-12 to serve many clients, beside the course's
# own Python (socketserver threads, selectors, asyncio, gevent) and a floor (lesson 02's echo
# and nothing else), all driven the same way in one run, at 100, 1,000 and 10,000 connections.
#
#   bench/ladder.sh                  # N = 100, 1000, 10000
#   bench/ladder.sh 100 2000         # other counts
#   TRIPS=50000 bench/ladder.sh      # round trips a row (default 200000: R = TRIPS / N, at least 20)
#   PASSES=1 bench/ladder.sh         # each row once (default 3; see below)
#
# Each row: a fresh server, its log (one line per message, as a learner runs it) going to a
# file on /dev/shm, then bench/driver.rs (ladder-driver): N connections held open together,
# then R round trips on each, every echo checked. The driver reads the server's threads,
# resident memory and CPU time from /proc. At the end: one table per N, the targets checked at
# the largest N, and in $OUT (default target/ladder/) ladder.json with every figure and
# ladder.svg, a chart of memory per connection and CPU per round trip at the largest N.
#
# Linux only (/proc). Release builds. Installs gevent for python3 (pip, else Debian's
# python3-gevent) when it is missing. Raises `ulimit -n` for the largest N, or stops and says what
# to run. Talks only to 127.0.0.1. Takes 10-20 minutes at 10,000 connections, most of it
# Python's thread per client. Exit status 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(100 1000 10000)
trips=${TRIPS:-200000}
out=${OUT:-target/ladder}

# gevent for the python3 on PATH: with pip, or where pip may not install into it (a Debian
# system Python), Debian's package.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! python3 -c 'import gevent' 2>/dev/null; then
  python3 -m pip install --quiet gevent 2>/dev/null || {
    as_root apt-get update -qq
    as_root apt-get install -y -qq python3-gevent >/dev/null
  }
  python3 -c 'import gevent' || { echo "gevent could not be installed for $(command -v python3)"; exit 1; }
fi

max=0
for n in "${counts[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
need=$((max + 1000))
if [ "$(ulimit -n)" -lt "$need" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then ulimit -Hn "$need" 2>/dev/null || true; fi
  ulimit -n "$need" 2>/dev/null || {
    echo "need $need file descriptors per process; run 'ulimit -n $need' (as root if the hard limit, $(ulimit -Hn), is lower) and try again"
    exit 1
  }
fi

# A thread per connection: the server's threads count against kernel.pid_max, with everyone
# else's on the machine.
if [ $((max + 2000)) -gt "$(cat /proc/sys/kernel/pid_max)" ]; then
  echo "warning: $max connections need $max threads in the thread-per-client servers; kernel.pid_max is $(cat /proc/sys/kernel/pid_max)"
fi

# The rows: a name and the command that starts the server on a port the system picks.
rel=target/release
names=(floor floor-epoll floor-log)
cmds=("$rel/ladder-floor --addr 127.0.0.1:0" "$rel/ladder-floor --addr 127.0.0.1:0 --epoll"
  "$rel/ladder-floor --addr 127.0.0.1:0 --log")
bins=(--bin ladder-driver --bin ladder-floor)
packages=(-p socket-lessons -p ladder-bench)
for lesson in 09_threads:lesson09 10_pool:lesson10 11_select:lesson11 12_async:lesson12; do
  dir=${lesson%%:*}
  name=${lesson#*:}
  if [ ! -d "lessons/$dir" ]; then
    echo "($name: lessons/$dir is not in this tree, its row is left out)"
    continue
  fi
  names+=("$name")
  cmds+=("$rel/$name-server --addr 127.0.0.1:0")
  bins+=(--bin "$name-server")
  if [ "$name" = lesson12 ]; then
    packages+=(-p lesson12)
    names+=(lesson12-t2)
    cmds+=("$rel/$name-server --addr 127.0.0.1:0 --threads 2")
  fi
done
# Python buffers print() in 8 KiB blocks into a file, unless PYTHONUNBUFFERED is set (as some
# shells and containers do): unset, so each peer runs as it does for a learner.
for peer in socketserver selectors asyncio gevent; do
  names+=("py-$peer")
  cmds+=("env -u PYTHONUNBUFFERED python3 bench/echo_$peer.py 0")
done

cargo build --quiet --release "${packages[@]}" "${bins[@]}"
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/socket-lessons-ladder.XXXXXX")
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$out"
results=$work/ladder.jsonl

machine="$(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
software="$(rustc --version | cut -d' ' -f1-2), $(python3 --version), gevent $(python3 -c 'import gevent; print(gevent.__version__)')"
echo "machine: $machine"
echo "software: $software"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# One row: a fresh server, the driver against it, the server stopped.
row() {
  local name=$1 cmd=$2 n=$3 rounds=$4 pass=$5
  local log=$work/$name-$n.log started addr
  $cmd >"$log" 2>&1 &
  server=$!
  until grep -qs '^listening on ' "$log"; do
    kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.05
  done
  addr=$(sed -n 's/^listening on //p' "$log")
  started=$SECONDS
  # Its exit status says whether every connection was served; the table says it too.
  $rel/ladder-driver --addr "$addr" --clients "$n" --rounds "$rounds" --server-pid "$server" \
    --label "$name" --json "$results" >"$work/driver.txt" 2>&1 || true
  printf '%s %-15s %4d s  %s; other processes %s\n' "$pass" "$name" $((SECONDS - started)) \
    "$(head -1 "$work/driver.txt")" "$(sed -n 's/.*other processes: //p' "$work/driver.txt")"
  grep '^ladder-driver' "$work/driver.txt" | sed 's/^/    /' || true
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
  rm -f "$log"
}

# Every row $passes times, in an order rotated from pass to pass, so a busy moment of the
# machine does not hit the same rows each time; the report takes, for each row, the pass during
# which the rest of the machine used the least CPU. Two rows run once: lesson 10 (it serves only
# as many clients as it has workers) and Python's thread per client (minutes at 10,000).
passes=${PASSES:-3}
for n in "${counts[@]}"; do
  rounds=$((trips / n))
  [ "$rounds" -ge 20 ] || rounds=20
  echo
  echo "== $n connections, $rounds round trips each"
  for ((p = 0; p < passes; p++)); do
    for ((j = 0; j < ${#names[@]}; j++)); do
      i=$(((j + 4 * p) % ${#names[@]}))
      case ${names[$i]} in lesson10 | py-socketserver) [ "$p" = 0 ] || continue ;; esac
      row "${names[$i]}" "${cmds[$i]}" "$n" "$rounds" "$((p + 1))/$passes"
    done
  done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 bench/ladder_report.py "$results" --machine "$machine" --software "$software" \
  --json "$out/ladder.json" --svg "$out/ladder.svg"
