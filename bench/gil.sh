#!/usr/bin/env bash
# What the GIL does to a thread per client: the notes' echo served by Python's
# ThreadingTCPServer and ForkingTCPServer (bench/gil_echo.py) with a few lines of CPU work per
# message (about 1 ms), driven by lesson09-client with 1, 2 and 4 clients at once. Each row:
# round trips per second (lesson09-client's summary) and the CPU the server used over the wall
# time of the run (its own and its reaped children's, from /proc/PID/stat): a thread server
# stays at one core whatever the clients, a process server can use them all.
#
#   bench/gil.sh                 # 2000 messages a row, 20000 loop turns a message
#   bench/gil.sh 4000 40000      # MESSAGES, TURNS
#
# Linux only (/proc), python3 needed. Talks only to 127.0.0.1. About half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-2000}
turns=${2:-20000}

cargo build --quiet --bin lesson09-client
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
hz=$(getconf CLK_TCK)
# cpu PID: seconds of CPU used by PID and its children it has waited for.
cpu() { awk -v hz="$hz" '{ sub(/.*\) /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat"; }

echo "machine: $(nproc) cores, $(uname -sr), $(python3 --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$messages messages a row, $turns loop turns of CPU work each"
printf '%-10s %8s %16s %12s %12s\n' server clients "round trips/s" "p50" "server CPU"
for mode in threads processes; do
  python3 bench/gil_echo.py "$mode" "$turns" >"$work/server-$mode.log" 2>&1 &
  server=$!
  pids=("$server")
  until grep -qs '^listening on ' "$work/server-$mode.log"; do sleep 0.05; done
  addr=$(sed -n 's/^listening on //p' "$work/server-$mode.log")
  for clients in 1 2 4; do
    before=$(cpu "$server")
    start=$(date +%s.%N)
    target/debug/lesson09-client --addr "$addr" --clients "$clients" \
      --rounds $((messages / clients)) >"$work/client.log"
    wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
    # ForkingTCPServer waits for finished children every half second: give it time to, so
    # their CPU is counted.
    sleep 1
    used=$(awk -v a="$before" -v b="$(cpu "$server")" -v w="$wall" 'BEGIN { printf "%.2f cores", (b - a) / w }')
    rate=$(sed -n 's/^round trips: .*(\([0-9]*\) per second).*/\1/p' "$work/client.log")
    p50=$(sed -n 's/^round trips: .*, p50 \(.*\), p99.*/\1/p' "$work/client.log")
    printf '%-10s %8s %16s %12s %12s\n' "$mode" "$clients" "$rate" "$p50" "$used"
  done
  kill "$server"
  wait "$server" 2>/dev/null || true
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
