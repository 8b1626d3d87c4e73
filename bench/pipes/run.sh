#!/bin/sh
# bench/pipes: N (default 10000) idle Barev pipes against bl-driver, built
# in release mode; prints RSS per pipe and idle CPU.  Needs root (netns).
#   bench/pipes/run.sh [N] [IDLE_SECONDS]
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build-bl-rel}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target bl-driver -j2 >/dev/null
exec /usr/bin/python3 "$top/bench/pipes/pipes.py" \
    "$build/tests/barevlink/bl-driver" "${1:-10000}" "${2:-10}"
