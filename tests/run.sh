#!/usr/bin/env bash
# Build barev-gateway twice and run every test — on a fresh Debian 12 as root.
#
#   bash tests/run.sh              everything below
#   bash tests/run.sh --deps-only  only step 1 (deploy/demo.sh uses it)
#
# 1. installs the Debian packages that are missing (apt-get update only if
#    something is missing; a ready machine installs nothing);
# 2. release build with -Werror in build/, ASan+UBSan build in build-asan/;
# 3. every test (unit + integration) in the ASan build, then the unit tests
#    (everything not labelled "integration") in the release build;
# 4. fuzzing: every libFuzzer harness (tests/fuzz) for BAREV_FUZZ_SECONDS
#    (20) in a clang build in build-fuzz/ (bench/fuzz/run.sh): any crash,
#    leak, UB or hang fails.
# Exits non-zero if anything fails.  Integration tests need root (network
# namespaces); the Yggdrasil ones (yggdrasil, federation) also need TUN
# (/dev/net/tun; in a container --device /dev/net/tun) and fail, never
# skip, without it.  Integration tests run their own Prosody and ejabberd
# in a private network namespace on random loopback ports, so a system
# Prosody is never touched and never in the way.  The system ejabberd
# that Debian starts when the package is installed is stopped and disabled
# (it would only cost memory and CPU; the tests never use it).
#
# Env: BAREV_CTEST_ARGS  extra ctest arguments, e.g. "-R foundation"
#      BAREV_SKIP_RELEASE=1 / BAREV_SKIP_ASAN=1 / BAREV_SKIP_FUZZ=1  skip a step
#      BAREV_TEST_KEEP=1  keep integration tests' temp dirs
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

PACKAGES=(build-essential cmake pkg-config libstrophe-dev libxml2-dev
          libevent-dev libssl-dev libsqlite3-dev libsystemd-dev libgd-dev sqlite3 prosody
          prosody-modules ejabberd python3 python3-slixmpp python3-yaml iproute2
          python3-omemo python3-oldmemo python3-twomemo python3-xmlschema
          util-linux systemd valgrind yggdrasil openssl gnutls-bin
          nftables)
# step 4: clang with libFuzzer (Debian 12 ships it in libclang-rt-14-dev)
PACKAGES+=(clang-14 libclang-rt-14-dev)

say() { printf '\n=== %s\n' "$*"; }

missing=()
install_missing() {
	local p
	for p in "${PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all ${#PACKAGES[@]} Debian packages present"
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]} — run as root to install them" >&2
		exit 1
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q "${missing[@]}" </dev/null
}

# The Yggdrasil tests start their own yggdrasil daemons in private network
# namespaces (tests/lib/ygg.py).  When we just installed the package and
# Debian enabled and started its system service, stop and disable it: the
# test machine's real network must not join a mesh because of the tests.
# A yggdrasil the machine had before is the operator's and stays as it is
# (the tests' daemons never touch it).
stop_system_yggdrasil() {
	case " ${missing[*]:-} " in *" yggdrasil "*) ;; *) return 0 ;; esac
	if ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
		return 0
	fi
	if systemctl is-enabled --quiet yggdrasil 2>/dev/null ||
	   systemctl is-active --quiet yggdrasil 2>/dev/null; then
		echo "stopping and disabling the yggdrasil service the package started (tests run their own)"
		systemctl disable --now yggdrasil >/dev/null 2>&1 || true
	fi
}

# The package's own ejabberd (started by the install where an init system
# runs) is not what the tests use: stop it and keep it from coming back.
# (systemd stops the whole service cgroup, epmd included; the init script's
# ejabberdctl starts an epmd even to stop a node that is not running, so it
# is called only for a running node, and that epmd is stopped after it.)
stop_system_ejabberd() {
	local pid
	if [ -d /run/systemd/system ]; then
		systemctl disable --now ejabberd.service >/dev/null 2>&1 || true
		return
	fi
	[ -x /etc/init.d/ejabberd ] || return 0
	update-rc.d ejabberd disable >/dev/null 2>&1 || true
	pid=$(cat /run/ejabberd/ejabberd.pid 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		/etc/init.d/ejabberd stop >/dev/null 2>&1 || true
		epmd -kill >/dev/null 2>&1 || true
	fi
}

build() {	# build DIR cmake-args...; a failure is recorded, not fatal
	local dir=$1; shift
	say "build $dir ($*)"
	if cmake -S "$SRC" -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$JOBS"; then
		return 0
	fi
	results+=("FAIL  $dir: build")
	failed=1
	return 1
}

run_ctest() {	# run_ctest DIR what ctest-args...
	local dir=$1 what=$2; shift 2
	say "ctest in $dir: $what"
	# shellcheck disable=SC2086
	if (cd "$dir" && ctest --output-on-failure --no-tests=error "$@" ${BAREV_CTEST_ARGS:-}); then
		results+=("PASS  $dir: $what")
	else
		results+=("FAIL  $dir: $what")
		failed=1
	fi
}

main() {
install_missing
stop_system_yggdrasil
if [ "$(id -u)" -eq 0 ]; then
	stop_system_ejabberd
fi
if [ "${1:-}" = --deps-only ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "note: integration tests need root (network namespaces)" >&2
fi

results=()
failed=0

# Sanitizer reports fail the test that triggered them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Each phase runs even if an earlier one failed, so one report shows all.
if [ "${BAREV_SKIP_ASAN:-}" != 1 ] &&
   build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBAREV_WERROR=ON -DBAREV_SANITIZE=ON; then
	run_ctest build-asan "all tests (ASan+UBSan)"
fi
if [ "${BAREV_SKIP_RELEASE:-}" != 1 ] &&
   build build -DCMAKE_BUILD_TYPE=Release -DBAREV_WERROR=ON -DBAREV_SANITIZE=OFF; then
	run_ctest build "unit tests (release)" -LE integration -j"$JOBS"
fi

# ---- 4. fuzzing (issue 14): a short fixed time per harness ----
if [ "${BAREV_SKIP_FUZZ:-}" != 1 ]; then
	say "fuzzing: each harness ${BAREV_FUZZ_SECONDS:-20}s (bench/fuzz/run.sh)"
	if bash "$SRC/bench/fuzz/run.sh" "${BAREV_FUZZ_SECONDS:-20}"; then
		results+=("PASS  build-fuzz: fuzz harnesses, ${BAREV_FUZZ_SECONDS:-20}s each")
	else
		results+=("FAIL  build-fuzz: fuzz harnesses (build-fuzz/fuzz/*.log)")
		failed=1
	fi
fi

say "summary"
printf '%s\n' "${results[@]}"
return "$failed"
}

# Parsed in full before anything runs: editing or pulling while a run is
# in progress can't make bash read a half-changed file.
main "$@"
exit
