#!/usr/bin/env bash
# The test command (README): installs what is missing, builds the release
# and the ASan+UBSan trees, runs the unit tests in both and the integration
# suite once per upstream (ASan tree: ejabberd 23; release tree: Prosody
# 0.12; real servers and real clients on loopback), and ends with CTest's
# summary line of the release run.
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
  # (+2000: the second port set of the sanitizer pass, harness.py SLOT; 35240-35241: the plain
  # Prosody of test_upstream_plain.py; 55222-55223/56222-56227: bench/scale's Prosody and up to
  # three s2proxy nodes, scale_200 in CI; 56290: bench_fast.py's metrics, scale_fast_200)
  echo 35222-35223,35240-35241,36222-36223,36300-36799,45222-45223,45370,37222-37223,37240-37241,38222-38223,38300-38799,47222-47223,47370,55222-55223,56222-56227,56290 \
    >/proc/sys/net/ipv4/ip_local_reserved_ports || true
fi
jobs=$(nproc)
label=${S2_TEST_LABEL:-}
ctest_args=(--output-on-failure --timeout 600)
# Two integration files at a time, each on its own port set and upstream (tests/integration/CMakeLists.txt).
slots=(-j 2 --resource-spec-file "$PWD/tests/integration/slots.json")
[ -n "$label" ] && ctest_args+=(-L "$label")

# The release tree: the Dockerfile's build stage runs these same two steps.
release_build() {
cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"
}

status=0
with_ejabberd=1
[ "${S2_SKIP_EJABBERD:-0}" = 1 ] && with_ejabberd=0
[ -n "$label" ] && [ "$label" != integration ] && with_ejabberd=0
# Two passes of the integration suite, one per upstream: the ASan+UBSan
# tree against ejabberd 23, the release tree against Prosody 0.12 (with the
# PostgreSQL, scale and timing assertions, which a sanitized build skips).
# Every line of the proxy runs under the sanitizers; every test runs on both
# upstreams. Without the ASan tree, the release tree runs both passes.
# The release tree's build; its output is shown only when it fails.
release_pid=""
wait_release() {
  [ -n "$release_pid" ] || return 0
  if ! wait "$release_pid"; then
    cat "$release_log"
    echo "release build failed"
    exit 1
  fi
  tail -n 2 "$release_log"
  rm -f "$release_log"
  release_pid=""
}
if [ "${S2_SKIP_ASAN:-0}" != 1 ]; then
  # Both trees build at once (they share the cores), and the release build
  # ends before the sanitizer pass of the integration suite starts: a build
  # running beside it slowed ejabberd's archive searches enough for a
  # kill -9 test to give up waiting (nothing was lost; it was late).
  release_log=$(mktemp)
  release_build >"$release_log" 2>&1 &
  release_pid=$!
  echo "=== ASan + UBSan build ==="
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if [ -z "$label" ] || [ "$label" != integration ]; then
    # Unit tests and fuzz smoke runs hold no ports: side by side. (The deploy
    # checks look at files and the release binary: release tree only.)
    echo "=== ASan + UBSan: unit tests and fuzz smoke runs ==="
    unit_args=("${ctest_args[@]}")
    [ -z "$label" ] && unit_args+=(-LE "integration|postgres|scale|deploy")
    ctest --test-dir build-asan "${unit_args[@]}" -j "$jobs" || status=1
  fi
  echo "=== release build ==="
  wait_release
  if [ -z "$label" ] || [ "$label" = integration ]; then
    upstream=prosody
    [ "$with_ejabberd" = 1 ] && upstream=ejabberd
    echo "=== ASan + UBSan: integration against $upstream ==="
    S2_UPSTREAM=$upstream ctest --test-dir build-asan --output-on-failure --timeout 600 -L integration "${slots[@]}" || status=1
    if [ "$upstream" = ejabberd ]; then
      # The two files whose tests need Prosody (its admin shell; a fixture made on it).
      echo "=== ASan + UBSan: the Prosody-only integration tests ==="
      ctest --test-dir build-asan --output-on-failure --timeout 600 -R "^integration_(vault|upgrade)$" "${slots[@]}" || status=1
    fi
    with_ejabberd=0
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi
if [ "${S2_SKIP_ASAN:-0}" = 1 ]; then
  echo "=== release build ==="
  release_build
fi
if [ "$with_ejabberd" = 1 ]; then
  echo "=== integration against ejabberd 23 ==="
  S2_UPSTREAM=ejabberd ctest --test-dir build "${ctest_args[@]}" -L integration "${slots[@]}" || status=1
fi
echo "=== release build: all tests (upstream Prosody 0.12) ==="
# Two at a time as well; the files with timing bounds take both slots (tests/integration/CMakeLists.txt).
ctest --test-dir build "${ctest_args[@]}" "${slots[@]}" || status=1
exit $status
