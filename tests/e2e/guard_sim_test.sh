#!/usr/bin/env bash
# End-to-end test of `retort guard simulate` (issue 15): a small simulation (100 people, 2
# evaluation jobs, an app, and the four campaigns, 40 s of traffic) against a live retort serve.
# What it proves: the run finishes; report.json names each campaign and the benign counts; its
# numbers are those of the server's own database (audit rows per campaign, answered harvest
# requests, benign requests, detection times against the actions table when there is one); the
# simulated clients reach the server with their own addresses and user agents; the harvest went
# through the openai: teacher's cache; report.html draws its plots in Chromium; bad input fails
# naming the key or the path; the top-k harvester is answered and no benign key blocked (the bar itself
# is the default mix's, in BENCHMARKS.md).
# Usage: guard_sim_test.sh RETORT_BINARY
set -uo pipefail
RETORT=$1
WORK=$(mktemp -d /tmp/retort-guard-sim-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
OUT=$WORK/sim
SMALL=(--set sim.duration=40 --set sim.benign_keys=100 --set sim.benign_requests=3 --set sim.eval_set=10
       --set sim.eval_rounds=2 --set sim.app_requests=30 --set sim.topk_windows=60 --set sim.hydra_keys=20
       --set sim.hydra_windows=60 --set sim.seqkd_prompts=40 --set sim.slow_interval=2)

# ---- bad input: one line naming what is wrong, a non-zero exit, no server started ----
fails_naming() {  # fails_naming WHAT TEXT ARGS...: the command fails and its stderr names TEXT
  local what=$1 text=$2; shift 2
  "$RETORT" guard simulate --out "$WORK/bad" "$@" >"$WORK/bad.out" 2>"$WORK/bad.err"
  local rc=$?
  check "$what: exit $rc != 0, stderr names '$text'" bash -c "[ $rc -ne 0 ] && grep -qF -- '$text' '$WORK/bad.err'"
}
fails_naming "an unknown key" "sim.bogus" --set sim.bogus=1
fails_naming "a duration out of range" "sim.duration" --set sim.duration=1
fails_naming "top-k above 20" "sim.topk_k" --set sim.topk_k=50
printf '[sim]\nbenign_keys = 100\nhydra_kees = 3\n' >"$WORK/bad.toml"
fails_naming "an unknown key in the config file" "sim.hydra_kees" --config "$WORK/bad.toml"
fails_naming "a missing --model" "$WORK/no-such-model" --model "$WORK/no-such-model"
check "bad input started no server (no serve.db)" test ! -e "$WORK/bad/serve.db"
check "--help teaches (campaigns, report, an example)" bash -c \
  "'$RETORT' guard simulate --help | grep -q 'low and slow' && '$RETORT' guard simulate --help | grep -q 'Example: retort guard simulate'"

# ---- a small simulation ----
start=$SECONDS
"$RETORT" guard simulate --config "$(dirname "$0")/../../configs/guard-sim.toml" --out "$OUT" --seed 7 "${SMALL[@]}" \
  >"$WORK/sim.out" 2>"$WORK/sim.err"
rc=$?
echo "simulation: exit $rc after $((SECONDS - start)) s" >&3
check "the simulation finishes (exit $rc)" test $rc -eq 0
[ $rc -eq 0 ] || { tail -20 "$WORK/sim.err"; cat "$WORK/sim.out"; exit 1; }
check "report.json and report.html are written" test -s "$OUT/report.json" -a -s "$OUT/report.html"
check "stdout starts with what was found (c1-topk first)" bash -c "head -1 '$WORK/sim.out' | grep -q '^c1-topk'"
R=$OUT/report.json
same "the four campaigns" "$(json "$R" "' '.join(c['id'] for c in d['campaigns'])")" "c1-topk c2-hydra c3-seqkd c4-slow"
same "the hydra's keys" "$(json "$R" "len(d['campaigns'][1]['keys'])")" "20"
same "the hydra's addresses" "$(json "$R" "len(d['campaigns'][1]['addresses'])")" "3"
same "benign keys: 100 people + 2 evaluation jobs + 1 app" "$(json "$R" "d['benign']['keys']")" "103"
same "the seed is reported" "$(json "$R" "d['seed']")" "7"
check "every campaign harvested something" \
  json "$R" "exit(0 if all(c['harvested']['requests'] > 0 for c in d['campaigns']) else 1)"
check "people and heavy users sent requests" json "$R" "exit(0 if d['benign']['requests'] > 150 else 1)"
check "the summary states the bar" json "$R" "exit(0 if any(l.startswith('the bar') for l in d['summary']) else 1)"

# ---- the report against the server's database ----
/usr/bin/python3 - "$R" "$OUT/serve.db" >"$WORK/db.check" 2>&1 <<'PY'
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
start = d['time']['start_unix']
def rows(sql, *args): return db.execute(sql, args).fetchall()
ok = True
def expect(what, got, want):
    global ok
    good = got == want and want is not None
    print(('ok' if good else 'FAIL') + f': {what}: report {got}, database {want}')
    ok = ok and good
names = lambda keys: ','.join('?' * len(keys))
for c in d['campaigns']:
    k = c['keys']
    expect(c['id'] + ' audit rows', c['audit_rows'],
           rows(f"SELECT count(*) FROM audit a JOIN keys k ON k.id = a.key_id WHERE k.name IN ({names(k)})", *k)[0][0])
    n, tokens = rows(f"SELECT count(*), coalesce(sum(prompt_tokens + completion_tokens), 0) FROM audit a JOIN keys k "
                     f"ON k.id = a.key_id WHERE k.name IN ({names(k)}) AND status = 200 "
                     f"AND endpoint = '/v1/completions'", *k)[0]
    expect(c['id'] + ' answered harvest requests', c['harvested']['requests'], n)
    expect(c['id'] + ' harvested tokens', c['harvested']['tokens'], tokens)
    expect(c['id'] + ' share of the plan', round(c['harvested']['share'], 9), round(n / c['planned']['requests'], 9))
    if d['server']['actions_table']:
        first = rows(f"SELECT min(time) FROM actions WHERE key_name IN ({names(k)})", *k)[0][0]
        got = None if c['detected'] is None else round(c['detected']['at_s'] + start, 3)
        if first is None and got is None:
            print(f"ok: {c['id']} not detected, and no action row names its keys")
        else:
            expect(c['id'] + ' detected at (its first action row)', got, None if first is None else round(first, 3))
    else:
        good = c['detected'] is None
        print(('ok' if good else 'FAIL') + f": {c['id']} not detected when the server keeps no actions table")
        ok = ok and good
campaign_keys = [k for c in d['campaigns'] for k in c['keys']]
benign = rows(f"SELECT count(*) FROM audit a JOIN keys k ON k.id = a.key_id WHERE k.name NOT IN ({names(campaign_keys)})",
              *campaign_keys)[0][0]
expect('benign requests', d['benign']['requests'], benign)
expect('audit rows in all', d['server']['audit_rows'], rows("SELECT count(*) FROM audit")[0][0])
expect('keys in the database', len(campaign_keys) + d['benign']['keys'], rows("SELECT count(*) FROM keys")[0][0])
if d['server']['actions_table']:
    flagged = rows(f"SELECT count(DISTINCT key_name) FROM actions WHERE key_name NOT IN ({names(campaign_keys)})",
                   *campaign_keys)[0][0]
    expect('benign keys flagged', d['benign']['flagged'], flagged)
if 'guard.trust_forwarded=true' in d['server']['settings']:
    hydra = d['campaigns'][1]['keys']
    expect("the hydra's distinct client addresses in the audit rows", len(d['campaigns'][1]['addresses']),
           rows(f"SELECT count(DISTINCT client) FROM audit a JOIN keys k ON k.id = a.key_id WHERE k.name IN ({names(hydra)})",
                *hydra)[0][0])
agents = rows("SELECT count(DISTINCT user_agent) FROM audit")[0][0]
expect('the user agents the clients sent reach the audit log (>= 8)', agents >= 8, True)
sys.exit(0 if ok else 1)
PY
db_rc=$?
sed 's/^/  /' "$WORK/db.check" >&3
check "the report's numbers are the database's" test $db_rc -eq 0
check "the top-k harvests went through the openai: teacher's cache (c1's cache folder, the hydra's first shard)" \
  bash -c "ls '$OUT'/harvest/c1-topk/topk-api-*/meta.json && ls '$OUT'/harvest/c2-hydra-00/topk-api-*/ | grep -q shard" >/dev/null
check "the text-only harvest kept its answers (JSONL)" bash -c "test -s \"\$(ls '$OUT'/harvest/c3-seqkd/seqkd-api-*.jsonl)\""
page_ok "report.html draws a timeline per campaign and the traffic plot" "$OUT/report.html" 5 "c2-hydra"
# The detector at this small scale (60-window campaigns: 10% is 6 requests, below guard.min_requests, so
# the 10% bar is measured by the default mix in BENCHMARKS.md, not here): the top-k harvester is
# answered with strip or more, and no benign key is blocked.
check "the top-k harvester was detected and answered (strip or stronger)" json "$R" \
  "exit(0 if d['campaigns'][0]['responded'] and d['campaigns'][0]['responded']['action'] in ('strip','mark','block') else 1)"
same "benign keys blocked" "$(json "$R" "d['benign']['blocked']")" 0

echo "guard_sim: $failures failures" >&3
exit $((failures > 0))
