#!/bin/sh
# bench/scale: start-up of the release gateway at (identities x contacts) =
# 10x10, 100x100, 1000x100 against a real Prosody: exec -> link up, -> all
# listeners bound, idle RSS and RSS per idle contact (issue 13).  Needs root
# (private network namespace) and Prosody.
#   bench/scale/run.sh [--sizes 10x10,100x100,1000x100] [--rounds R]
#   bench/scale/run.sh --storm [--users 1000] [--contacts 10] [--max-dials N] [--away S]
# (--storm: live pipes in the full daemon and a Prosody kill -9 reconnect
# storm, bench/scale/storm.py)
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBAREV_WERROR=ON >/dev/null
cmake --build "$build" --target barev-gateway -j2 >/dev/null
script=scale.py binary="this=$build/gateway/barev-gateway"
if [ "$1" = --storm ]; then     # live pipes + reconnect storm: storm.py --help
    script=storm.py binary="$build/gateway/barev-gateway"
    shift
fi
BAREV_SOURCE_DIR=$top exec /usr/bin/python3 "$top/bench/scale/$script" \
    --binary "$binary" "$@"
