#!/bin/sh
# bench/relay: Barev -> spool -> XEP-0363 upload throughput and peak RSS of
# a release build, against a plain loopback TCP copy in the same run.
# Needs root (private network namespace) and Prosody.
#   bench/relay/run.sh [--prosody-http] [SIZE_MIB ...]   default: 64 1024
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build-files-rel}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target barev-gateway -j2 >/dev/null
BAREV_GATEWAY_BIN=$build/gateway/barev-gateway BAREV_SOURCE_DIR=$top \
    exec /usr/bin/python3 "$top/bench/relay/relay.py" "$@"
