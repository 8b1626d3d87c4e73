#!/bin/sh
# Container entry point: make sure the state volume has its spool directory
# (a fresh bind mount is empty), then become barev-gateway (exec: it is
# PID 1, handles TERM/INT/HUP itself and forks nothing to reap).
set -e
spool=${BAREV_GATEWAY_SPOOL_DIR:-/var/lib/barev-gateway/spool}
mkdir -p "$spool" 2>/dev/null || true
if ! [ -w /var/lib/barev-gateway ]; then
	echo "barev-gateway: /var/lib/barev-gateway is not writable by uid $(id -u);" \
	    "chown the volume to 10001:10001" >&2
fi
exec /usr/bin/barev-gateway "$@"
