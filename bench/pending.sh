#!/usr/bin/env bash
# Why lesson09-client bounds its pending clients (--pending, default 5): CLIENTS clients
# connect to lesson09-server, which keeps the notes' listen(5), first at most 5 of them
# connecting or waiting for a first answer at once, then all at the same instant
# (--pending 0), then all at once against a server with a long queue (--backlog 1024). Each
# row: lesson09-client's summary, how many connections the kernel dropped because the accept
# queue was full (ListenOverflows in /proc/net/netstat) and how many handshakes it answered
# with a SYN cookie, keeping no state, because the queue of handshakes in progress was full
# too (SyncookiesSent). Both count the whole machine: other programs' would count too.
#
#   bench/pending.sh             # 500 clients, 10 rounds each
#   bench/pending.sh 1000 10     # CLIENTS, ROUNDS
#
# Linux only (/proc). Talks only to 127.0.0.1. Up to a couple of minutes: a dropped connect is
# tried again after 1 s, 3 s, 7 s ...
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-500}
rounds=${2:-10}

cargo build --quiet --bin lesson09-server --bin lesson09-client
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
# counter NAME: a TcpExt counter of /proc/net/netstat (the whole machine's).
counter() {
  awk -v k="$1" '$1 == "TcpExt:" { if (!h) { for (i = 2; i <= NF; i++) n[i] = $i; h = 1 } else
       for (i = 2; i <= NF; i++) if (n[i] == k) print $i }' /proc/net/netstat
}

echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$clients clients, $rounds rounds each"
for row in "5 5" "5 0" "1024 0"; do
  read -r backlog pending <<<"$row"
  target/debug/lesson09-server --addr 127.0.0.1:0 --backlog "$backlog" >"$work/server-$backlog-$pending.log" 2>&1 &
  pids=($!)
  until grep -qs '^listening on ' "$work/server-$backlog-$pending.log"; do sleep 0.05; done
  addr=$(sed -n 's/^listening on //p' "$work/server-$backlog-$pending.log")
  overflows=$(counter ListenOverflows)
  cookies=$(counter SyncookiesSent)
  echo
  echo "== server --backlog $backlog, client --pending $pending"
  target/debug/lesson09-client --addr "$addr" --clients "$clients" --rounds "$rounds" \
    --pending "$pending" 2>&1 || true
  echo "accept queue overflows: $(($(counter ListenOverflows) - overflows))," \
    "SYN cookies sent: $(($(counter SyncookiesSent) - cookies))"
  kill "${pids[0]}"
  wait "${pids[0]}" 2>/dev/null || true
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
