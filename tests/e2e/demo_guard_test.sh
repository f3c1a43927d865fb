#!/usr/bin/env bash
# `retort demo guard` end to end at a small size (3 providers, 8 people each, a hydra of 8 keys,
# ~40 s of traffic, the student and guard verify included), checked against the three databases
# themselves, not only the report: at B and C the hydra's first request is refused (403) or
# throttled (429) by a rule made from A's indicators; no benign key at any provider is blocked;
# A's published bundle passes the OASIS STIX 2.1 schemas; report.html draws in Chromium.
# Usage: demo_guard_test.sh RETORT_BINARY
set -uo pipefail
RETORT=$1
WORK=$(mktemp -d /tmp/retort-demo-guard-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
CONFORMANCE=$(conformance_dir) || exit 1
cd "$WORK" || exit 1

check "retort demo guard (small)" "$RETORT" demo guard --set sim.duration=40 --set sim.benign_keys=8 \
  --set sim.hydra_keys=8 --set sim.hydra_windows=160 --set sim.hydra_parallel=4 >"$WORK/demo.out" 2>"$WORK/demo.err"
grep -q "^the bar" "$WORK/demo.out" || tail -20 "$WORK/demo.err"
R=$WORK/runs/demo-guard
check "report.json says the bar was met" test "$(json "$R/report.json" 'd["bar"]["met"]')" = True
for p in B C; do
  first=$(sqlite3 "$R/$p/serve.db" "select status || ' ' || error_code from audit where key_name like 'c2-hydra-%' order by id limit 1")
  check "at $p the hydra's first request was refused or throttled ($first)" bash -c "[[ '$first' == '403 key_blocked' || '$first' == 429* ]]"
  partner=$(sqlite3 "$R/$p/serve.db" "select count(*) from actions where source = 'partner' and key_name like 'c2-hydra-%'")
  check "at $p the hydra's keys carry action rows from partners' indicators ($partner)" test "$partner" -ge 1
done
for p in A B C; do
  blocked=$(sqlite3 "$R/$p/serve.db" "select count(distinct key_name) from actions where action = 'block' and key_name not like 'c2-hydra%'")
  check "no benign key at $p is blocked ($blocked)" test "$blocked" = 0
done
a_first=$(sqlite3 "$R/A/serve.db" "select status from audit where key_name like 'c2-hydra-%' order by id limit 1")
check "at A, where nobody had seen it, the hydra's first request was answered ($a_first)" test "$a_first" = 200
check "A's detector blocked the hydra" test "$(sqlite3 "$R/A/serve.db" "select count(*) from actions where source = 'policy' and action = 'block' and key_name like 'c2-hydra-%'")" -ge 1
check "retort intel export of A" "$RETORT" intel export --db "$R/A/serve.db" --out "$WORK/a.json" --set intel.provider=provider-a
check "A's bundle passes the OASIS STIX 2.1 schemas" node "$CONFORMANCE/validate-stix.mjs" "$WORK/a.json"
check "A's bundle holds an indicator for a hydra address" grep -q "ipv4-addr:value = '198.51.100." "$WORK/a.json"
check "guard verify wrote the evidence" test -s "$R/evidence/evidence.json"
page_ok "report.html" "$R/report.html" 1 "refused at B and C"
[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
