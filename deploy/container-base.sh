#!/usr/bin/env bash
# Make the Debian bookworm base image for deploy/Containerfile without a
# container registry: debootstrap a minimal bookworm into a directory and
# import it into podman as IMAGE (default localhost/barev-debian:bookworm).
# Then build with
#
#   podman build --pull=never --build-arg BASE=localhost/barev-debian:bookworm \
#       -f deploy/Containerfile -t barev-gateway .
#
# Where a registry is reachable none of this is needed: the Containerfile's
# default BASE is debian:bookworm-slim.
#
#   bash deploy/container-base.sh [IMAGE] [ROOTFS_DIR]
#
# Needs root, debootstrap and podman (apt-get install debootstrap podman).
# The rootfs directory is kept as a cache; a second run only re-imports.
set -euo pipefail

IMAGE=${1:-localhost/barev-debian:bookworm}
ROOTFS=${2:-/var/tmp/barev-debian-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PODMAN=(podman ${PODMAN_OPTS:-})

if ! [ -x "$ROOTFS/usr/bin/apt-get" ]; then
	rm -rf "$ROOTFS.tmp"
	# minbase: apt, dpkg and the essential set, like bookworm-slim
	debootstrap --variant=minbase bookworm "$ROOTFS.tmp" "$MIRROR"
	# the same trims the official slim image makes: no docs, no man pages
	rm -rf "$ROOTFS.tmp"/var/cache/apt/archives/*.deb \
	    "$ROOTFS.tmp"/var/lib/apt/lists/*
	mv "$ROOTFS.tmp" "$ROOTFS"
fi
tar -C "$ROOTFS" --numeric-owner -c . | "${PODMAN[@]}" import \
    --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "imported $ROOTFS as $IMAGE"
