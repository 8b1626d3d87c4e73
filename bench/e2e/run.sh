#!/bin/sh
# bench/e2e: end-to-end message throughput and p50/p99 latency, slixmpp ->
# Prosody -> gateway -> Barev peer (light by default), as a ratio to the
# same path with a trivial XEP-0114 component instead of the gateway; instructions per
# translated message under callgrind.  Release build.  Needs root (netns),
# Prosody and (for --callgrind) valgrind.
#   bench/e2e/run.sh [-n N] [--rounds R] [--rate RATE] [--receiver light|barevpeer]
#                    [--gateway LABEL=BIN ...]
#   bench/e2e/run.sh --callgrind [-n N]
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build-e2e}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target barev-gateway -j2 >/dev/null
BAREV_GATEWAY_BIN=$build/gateway/barev-gateway BAREV_SOURCE_DIR=$top \
    exec /usr/bin/python3 "$top/bench/e2e/e2e.py" "$@"
