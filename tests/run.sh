#!/usr/bin/env bash
# The test command (README): installs what is missing, builds the release
# and the ASan+UBSan trees, runs every unit and integration test in both
# (the integration suites start a real Prosody and real clients on
# loopback), and ends with CTest's summary line of the release run.
#   tests/run.sh              everything
#   S2_TEST_LABEL=unit tests/run.sh   only the unit tests
#   S2_SKIP_ASAN=1 tests/run.sh       skip the sanitizer tree (local iteration)
#   S2_SKIP_EJABBERD=1 tests/run.sh   skip the ejabberd pass of the integration suite
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh test
# The integration suites listen on fixed loopback ports inside Linux's
# ephemeral range; keep outgoing connections from taking them (best effort).
if [ -w /proc/sys/net/ipv4/ip_local_reserved_ports ]; then
  # (55222-55223/56222-56223: bench/scale's Prosody and s2proxy, scale_200 in CI)
  echo 35222-35223,36222-36223,36300-36799,45222-45223,45370,55222-55223,56222-56223 \
    >/proc/sys/net/ipv4/ip_local_reserved_ports || true
fi
jobs=$(nproc)
label=${S2_TEST_LABEL:-}
ctest_args=(--output-on-failure --timeout 600)
[ -n "$label" ] && ctest_args+=(-L "$label")

status=0
if [ "${S2_SKIP_ASAN:-0}" != 1 ]; then
  echo "=== ASan + UBSan build ==="
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan "${ctest_args[@]}" || status=1
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi
echo "=== release build ==="
cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"
if [ "${S2_SKIP_EJABBERD:-0}" != 1 ] && { [ -z "$label" ] || [ "$label" = integration ]; }; then
  # The same integration suite with ejabberd 23 as the upstream.
  echo "=== integration against ejabberd 23 ==="
  S2_UPSTREAM=ejabberd ctest --test-dir build "${ctest_args[@]}" -L integration || status=1
fi
echo "=== release build: all tests (upstream Prosody 0.12) ==="
ctest --test-dir build "${ctest_args[@]}" || status=1
exit $status
