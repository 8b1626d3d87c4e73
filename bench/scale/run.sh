#!/bin/sh
# bench/scale: start-up of the release gateway at (identities x contacts) =
# 10x10, 100x100, 1000x100 against a real Prosody: exec -> link up, -> all
# listeners bound, idle RSS and RSS per idle contact (issue 13).  Needs root
# (private network namespace) and Prosody.
#   bench/scale/run.sh [--sizes 10x10,100x100,1000x100] [--rounds R]
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBAREV_WERROR=ON >/dev/null
cmake --build "$build" --target barev-gateway -j2 >/dev/null
BAREV_SOURCE_DIR=$top exec /usr/bin/python3 "$top/bench/scale/scale.py" \
    --binary "this=$build/gateway/barev-gateway" "$@"
