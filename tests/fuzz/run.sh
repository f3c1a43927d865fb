#!/usr/bin/env bash
# Runs the libFuzzer targets of a RETORT_FUZZ build (cmake/fuzz.cmake) one after another, each for
# SECONDS from its seed corpus tests/fuzz/corpus/<name>/. What they find stays out of the
# repository: new inputs in OUT/<name>/corpus, crash-*/leak-*/timeout-*/oom-* files in OUT/<name>/,
# the log in OUT/<name>/log.txt. Prints one line per target; exits 1 when any target failed.
#   tests/fuzz/run.sh BUILD SECONDS OUT [NAME...]     (make fuzz: build-fuzz, FUZZ_SECONDS=60)
# NAME: idx, safetensors, ...; none: every fuzz_* target in BUILD/tests.
set -uo pipefail
if (($# < 3)); then
  echo "usage: $0 BUILD SECONDS OUT [NAME...]" >&2
  exit 2
fi
build=$1 seconds=$2 out=$3
shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
names=("$@")
if ((${#names[@]} == 0)); then
  for exe in "$build"/tests/fuzz_*; do
    [ -x "$exe" ] && names+=("${exe##*/fuzz_}")
  done
fi
if ((${#names[@]} == 0)); then
  echo "no fuzz targets in $build/tests (build the fuzz_targets target first)" >&2
  exit 2
fi

failed=0
for name in "${names[@]}"; do
  dir=$out/$name
  mkdir -p "$dir/corpus"
  # -timeout: an input running 10 s is a hang; -rss_limit_mb (and the malloc limit it sets): an
  # allocation above 2 GiB is a finding. Readers' warnings on stderr (a file without a digest
  # loads with one) are left out of the log.
  start=$SECONDS
  "$build/tests/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" "$root/tests/fuzz/corpus/$name" 2>&1 |
    grep -v -e '^warning: ' -e '^retort: ' >"$dir/log.txt"
  rc=${PIPESTATUS[0]} took=$((SECONDS - start))
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$dir/log.txt" | tail -1)
  corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$dir/log.txt" | tail -1 | cut -d' ' -f2)
  inputs=${corp%%/*} bytes=${corp#*/}
  if ((rc == 0)); then
    result="no finding"
  else
    failed=1
    result="FINDING (exit $rc): $(ls "$dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -1)"
  fi
  printf '%-14s %10s runs in %4ss, corpus %5s inputs %7s: %s\n' "$name" "${runs:-?}" "$took" \
    "${inputs:-?}" "${bytes:-?}" "$result"
done
exit $failed
