#!/bin/sh
# bench/soak: the release-built gateway for a long run under mixed, faulty
# load (50 pairs, 10 msg/s each way, peer restarts, files, Prosody
# restarts); prints RSS/fd slopes, lost/duplicated messages, CPU per message
# and a verdict.  Needs root (private netns) and Prosody.
#   bench/soak/run.sh [--duration S] [--pairs N] [--rate R] [...]   (--help)
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build-soak}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBAREV_WERROR=ON >/dev/null
cmake --build "$build" --target barev-gateway -j2 >/dev/null
BAREV_GATEWAY_BIN=$build/gateway/barev-gateway BAREV_SOURCE_DIR=$top \
    exec /usr/bin/python3 "$top/bench/soak/soak.py" "$@"
