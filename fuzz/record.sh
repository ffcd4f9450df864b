#!/usr/bin/env bash
# The fuzzing record (issue 13 item 8): every libFuzzer target once for
# 10^7 executions or MAX_SECONDS, whichever comes first, from a copy of its
# seed corpus; prints one markdown row per target (executions, seconds,
# coverage, features, corpus size, crashes) for fuzz/README.md.
#   cmake --preset fuzz && cmake --build --preset fuzz -j2
#   fuzz/record.sh [MAX_SECONDS=1800] [TARGETS...]
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-1800}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
out=build-fuzz/fuzz-record
mkdir -p "$out"
echo "| target | executions | seconds | exec/s | coverage (edges) | features | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  bin=build-fuzz/fuzz/$t
  [ -x "$bin" ] || { echo "| $t | (not built) | | | | | | |"; continue; }
  corpus=$out/corpus-$name
  rm -rf "$corpus" && mkdir -p "$corpus" && cp -r "fuzz/corpus/$name/." "$corpus/"
  log=$out/$name.log
  start=$(date +%s)
  set +e
  "$bin" -runs=10000000 -max_total_time="$max" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/$name-" "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  files=$(ls "$corpus" | wc -l)
  crashes=$(ls "$out" | grep -c "^$name-crash\|^$name-leak\|^$name-timeout\|^$name-oom" || true)
  [ "$rc" -ne 0 ] && crashes="$crashes (exit $rc)"
  rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
  echo "| $t | ${execs:-?} | $secs | $rate | ${cov:-?} | ${ft:-?} | $files | $crashes |"
done
