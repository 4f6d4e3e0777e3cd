#!/usr/bin/env bash
# TEST SCAFFOLDING for the Windows CI lane (.ci/run): creates a Wine prefix in which the
# x86_64-pc-windows-gnu test binaries run. Usage: .ci/windows/prefix.sh PREFIX_DIR
#
# Idempotent: a prefix that already has the stand-in DLL is kept (a second CI run on the same
# clone skips the ~1 min wineboot). Needs wine and x86_64-w64-mingw32-gcc on PATH.
set -euo pipefail
prefix="$1"
here="$(cd "$(dirname "$0")" && pwd)"
export WINEPREFIX="$prefix" WINEDEBUG=-all
# No Mono/Gecko download dialogs: the tests need neither .NET nor a browser engine.
export WINEDLLOVERRIDES="mscoree,mshtml="

dll="$prefix/drive_c/windows/system32/bcryptprimitives.dll"
if [ -f "$dll" ] && [ -f "$prefix/.socket-lessons-ready" ]; then
  exit 0
fi
mkdir -p "$prefix"
# -i: initialise the prefix (registry, C:\windows, cmd.exe); wineserver -w waits until it is
# really done, so the first test does not race the prefix's creation.
wineboot -i >/dev/null 2>&1
wineserver -w
# Rust's std needs ProcessPrng (bcryptprimitives.dll), which Wine 8.0 lacks: see the .c file.
x86_64-w64-mingw32-gcc -O2 -shared -s -o "$dll" "$here/bcryptprimitives.c" -ladvapi32
touch "$prefix/.socket-lessons-ready"
