#!/usr/bin/env bash
# What a thread per client costs: lesson09-server holding 100, 1,000 and 10,000 connections
# made by lesson09-client (`--rounds 1 --hold`: each client is answered once, so it surely has
# its thread, then stays connected, silent). Read from /proc while all of them are held:
# the server's threads, resident memory (VmRSS), address space reserved (VmSize), file
# descriptors and memory mappings (vm.max_map_count bounds them); the client's threads and
# memory; the kernel's stacks for all those threads (KernelStack in /proc/meminfo, both
# processes together) and its TCP buffers (/proc/net/sockstat). Then the client is stopped and the server's threads counted again.
#
#   bench/threads.sh                # 100 1000 10000
#   bench/threads.sh 100 2000       # other counts
#
# Linux only (/proc). The debug build, the one `cargo run` gives a learner. Talks only to
# 127.0.0.1. Needs file descriptors for the largest count in both processes: raises
# `ulimit -n` within the hard limit, or stops and says what to run. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(100 1000 10000)

max=0
for n in "${counts[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
need=$((max + 100))
if [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || {
    echo "need $need file descriptors per process; run 'ulimit -n $need' (as root if the hard limit, $(ulimit -Hn), is lower) and try again"
    exit 1
  }
fi
pid_max=$(cat /proc/sys/kernel/pid_max)
if [ $((2 * max + 1000)) -gt "$pid_max" ]; then
  echo "warning: $max clients need $((2 * max)) threads (client and server), kernel.pid_max is $pid_max"
fi

cargo build --quiet --bin lesson09-server --bin lesson09-client
bin=target/debug
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

# field PID NAME: a /proc/PID/status line's number (kB for the memory lines).
field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
kernel_stacks() { awk '$1 == "KernelStack:" { print $2 }' /proc/meminfo; }
# TCP buffer memory in kB (sockstat counts pages).
tcp_mem() { awk -v p="$(getconf PAGESIZE)" '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) * p / 1024 }' /proc/net/sockstat; }
count() { grep -c -- "$1" "$2" || true; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
signed_mib() { awk -v k="$1" 'BEGIN { printf "%+.1f MiB", k / 1024 }'; }
per() { awk -v k="$1" -v n="$2" 'BEGIN { printf "%.1f KiB", k / n }'; }

echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "limits: ulimit -n $(ulimit -n), ulimit -u $(ulimit -u), kernel.pid_max $pid_max," \
  "kernel.threads-max $(cat /proc/sys/kernel/threads-max), vm.max_map_count $(cat /proc/sys/vm/max_map_count)"
echo

for n in "${counts[@]}"; do
  "$bin/lesson09-server" --addr 127.0.0.1:0 --idle-timeout 3600 >"$work/server-$n.log" 2>&1 &
  server=$!
  pids+=("$server")
  until grep -qs '^listening on ' "$work/server-$n.log"; do sleep 0.05; done
  addr=$(sed -n 's/^listening on //p' "$work/server-$n.log")
  rss0=$(field "$server" VmRSS)
  virt0=$(field "$server" VmSize)
  ks0=$(kernel_stacks)
  tcp0=$(tcp_mem)

  started=$(date +%s.%N)
  "$bin/lesson09-client" --addr "$addr" --clients "$n" --rounds 1 --hold 3600 \
    >"$work/client-$n.log" 2>&1 &
  client=$!
  pids+=("$client")
  # Every client answered once: N threads in the server, N connections held.
  while [ "$(count ' says: ' "$work/server-$n.log")" -lt "$n" ]; do
    if ! kill -0 "$client" 2>/dev/null; then
      echo "the client ended early:"
      cat "$work/client-$n.log"
      exit 1
    fi
    sleep 0.2
  done
  all_in=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }')
  threads=$(field "$server" Threads)
  rss=$(field "$server" VmRSS)
  virt=$(field "$server" VmSize)
  fds=$(find "/proc/$server/fd" -mindepth 1 -maxdepth 1 | wc -l)
  maps=$(wc -l <"/proc/$server/maps")
  c_threads=$(field "$client" Threads)
  c_rss=$(field "$client" VmRSS)
  ks=$(($(kernel_stacks) - ks0))
  tcp=$(($(tcp_mem) - tcp0))

  echo "$n clients held, all answered after $all_in:"
  echo "  server: $threads threads, $fds file descriptors, $maps memory mappings;" \
    "resident $(mib "$rss") ($(per $((rss - rss0)) "$n") per client);" \
    "reserved $(mib "$virt") ($(per $((virt - virt0)) "$n") per client)"
  echo "  client: $c_threads threads, resident $(mib "$c_rss")"
  echo "  kernel: stacks +$(mib "$ks") for $((threads - 1 + c_threads - 1)) new threads" \
    "($(per "$ks" $((threads - 1 + c_threads - 1))) each); TCP buffers $(signed_mib "$tcp")"

  kill "$client"
  wait "$client" 2>/dev/null || true
  while [ "$(count ' closed the connection' "$work/server-$n.log")" -lt "$n" ]; do sleep 0.2; done
  while [ "$(field "$server" Threads)" -gt 1 ]; do sleep 0.1; done
  echo "  after the client left: server $(field "$server" Threads) thread, resident $(mib "$(field "$server" VmRSS)")"
  kill "$server"
  wait "$server" 2>/dev/null || true
  pids=()
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
