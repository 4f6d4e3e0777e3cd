#!/usr/bin/env bash
# What a load driver costs on its own: the ladder's driver (one thread, one epoll loop) and
# lesson09-client (a thread per connection), each making the same round trips against the
# floor (ladder-floor, the cheapest server), one after the other, three times in turn. For
# each: the client's CPU time per round trip and peak memory (GNU time), and the floor's CPU
# per round trip meanwhile (/proc). The client that costs more per round trip than the server
# it drives is the bottleneck of what it measures.
#
#   bench/driver_cost.sh                 # 10,000 connections, 20 round trips each
#   bench/driver_cost.sh 1000 200        # CONNECTIONS, ROUNDS
#
# Linux only (/proc). Release builds. Installs GNU time with apt-get when it is missing.
# Talks only to 127.0.0.1. lesson09-client does not hold its connections until all are done
# (each thread ends after its last echo); it connects 5 at a time, as the driver does.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
rounds=${2:-20}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x /usr/bin/time ]; then
  as_root apt-get update -qq
  as_root apt-get install -y -qq time >/dev/null
fi
need=$((n + 1000))
if [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || {
    echo "need $need file descriptors per process; run 'ulimit -n $need' and try again"
    exit 1
  }
fi

cargo build --quiet --release -p socket-lessons -p ladder-bench --bin lesson09-client \
  --bin ladder-driver --bin ladder-floor
rel=target/release
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
"$rel/ladder-floor" --addr 127.0.0.1:0 >"$work/floor.log" 2>&1 &
server=$!
until grep -qs '^listening on ' "$work/floor.log"; do sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$work/floor.log")
# cpu PID: seconds of CPU used by PID (10 ms ticks; these runs take seconds).
cpu() { awk '{ sub(/.*\) /, ""); print ($12 + $13) / 100 }' "/proc/$1/stat"; }

echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$n connections, $rounds round trips each, against ladder-floor"
printf '%-15s %9s %14s %14s %12s %10s\n' client wall 'client CPU/trip' 'floor CPU/trip' 'client peak' 'trips/s'
for turn in 1 2 3; do
  for client in ladder-driver lesson09-client; do
    case $client in
      ladder-driver) args=(--clients "$n" --rounds "$rounds") ;;
      lesson09-client) args=(--clients "$n" --rounds "$rounds" --timeout 120) ;;
    esac
    before=$(cpu "$server")
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$rel/$client" --addr "$addr" "${args[@]}" \
      >"$work/out" 2>&1 || { cat "$work/out"; exit 1; }
    after=$(cpu "$server")
    read -r wall user sys peak <"$work/time"
    awk -v c="$client" -v w="$wall" -v u="$user" -v s="$sys" -v p="$peak" -v b="$before" \
      -v a="$after" -v t=$((n * rounds)) 'BEGIN {
        printf "%-15s %8.2fs %12.1f µs %12.1f µs %8.1f MiB %10.0f\n",
          c, w, (u + s) * 1e6 / t, (a - b) * 1e6 / t, p / 1024, t / w }'
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
