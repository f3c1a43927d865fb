#!/usr/bin/env bash
# End-to-end tests of watermarks: `retort serve --set serve.watermark=...` and `retort guard`.
# Usage: guard_test.sh RETORT_BINARY CASE
#   kgw        answers are marked and detected, unmarked and heavily edited text is not; streamed and
#              whole answers are the same text; audit rows name the key; a student distilled through the
#              API (text only) is found by `guard verify` (open model and black box), the control is not;
#              evidence.html draws in Chromium
#   gumbel     the distortion-free scheme: marked, detected, streamed = whole, n choices differ
#   dawn       a classifier served marked answers a keyed share of inputs with a keyed wrong class; a
#              student distilled through /v1/classify repeats them (guard verify, binomial test), a
#              student on labels does not; the served accuracy drops by no more than the share
#   campaign   a harvesting key is blocked by the detector while alice chats; kill -9 of the server right
#              after the block loses no audit row of an answered request and no action row; restarted,
#              the thief is refused from its first request and alice served; guard campaigns / explain /
#              act show and change it; act on an unknown key says so
#   campaign_bad_input  a policy with an unknown signal, a threshold out of range, responses out of
#              order, an unknown key in a policy file: each fails at start naming the key
#   bad_input  an unknown scheme, gamma out of range, no key, a detect input that is not text, a broken
#              JSONL line, a suspect of another vocabulary: one clear line each and a non-zero exit
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-guard-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
DB=$WORK/serve.db
# The teacher: byte-level, 64 wide, 2 layers, a 128-token context, trained on 60,000 tokens.
LM=("${TINY[@]}" --set text.tokenizer=byte --set text.train_tokens=60000 --set text.seq_len=128
    --set model.d_model=64 --set model.layers=2 --set model.heads=4)

teacher() {
  "$RETORT" train "${LM[@]}" --set train.epochs=2 --set run.name=teacher >/dev/null 2>"$WORK/teacher.err" \
    || { cat "$WORK/teacher.err"; exit 1; }
}
# complete PORT SEED STREAM N: a completion of "And God said" (100 tokens); prints the choices' texts as JSONL.
complete() {
  curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$1/v1/completions" \
    -d "{\"model\":\"kjv\",\"prompt\":\"And God said\",\"max_tokens\":100,\"seed\":$2,\"stream\":$3,\"n\":$4}" \
    | /usr/bin/python3 -c '
import json, sys
raw = sys.stdin.read()
texts = {}
if raw.startswith("data:"):
    for line in raw.splitlines():
        if line.startswith("data: {"):
            for c in json.loads(line[6:]).get("choices", []):
                texts[c["index"]] = texts.get(c["index"], "") + c["text"]
else:
    for c in json.loads(raw)["choices"]:
        texts[c["index"]] = c["text"]
for i in sorted(texts):
    print(json.dumps({"text": "And God said" + texts[i]}))'
}
# p_values FILE: the p-values of `guard detect` on FILE, one per line
p_values() { "$RETORT" guard detect --db "$DB" "$1" | /usr/bin/python3 -c 'import json,sys; [print(json.loads(l)["p_value"]) for l in sys.stdin]'; }
all_below() { while read -r p; do below "$p" "$1" || return 1; done; }
none_below() { while read -r p; do below "$p" "$1" && return 1; done; return 0; }
# edit FILE SHARE SEED: each text with SHARE of its characters replaced by random letters
edit() {
  /usr/bin/python3 - "$@" <<'PY'
import json, random, sys
path, share, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for line in open(path):
    t = list(json.loads(line)["text"])
    for i in rng.sample(range(len(t)), int(share * len(t))):
        t[i] = rng.choice("abcdefghijklmnopqrstuvwxyz ")
    print(json.dumps({"text": "".join(t)}))
PY
}
# KJV text no model wrote: 20 verses-long pieces of Genesis
plain_texts() {
  bible Gen1:1-Gen10:32 2>/dev/null | /usr/bin/python3 -c '
import json, sys
t = sys.stdin.read().split()
for i in range(20):
    print(json.dumps({"text": " ".join(t[i * 60:(i + 1) * 60])}))'
}

# ps FILE: the smallest and the median p_value of guard detect's JSON lines
ps() {
  /usr/bin/python3 -c '
import json,statistics,sys; ps=[json.loads(l)["p_value"] for l in open(sys.argv[1])]
print("smallest %.3g, median %.3g" % (min(ps), statistics.median(ps)) if ps else "no lines")' "$1"
}

# fails WHAT TEXT COMMAND...: the command exits non-zero and its stderr holds TEXT
fails() {
  local what=$1 text=$2; shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$text" "$WORK/err"; then check "$what (exit $rc: $(shown "$(tail -1 "$WORK/err")"))" true
  else check "$what: exit $rc, stderr: $(shown "$(cat "$WORK/err")")" false; fi
}

case $CASE in
kgw)
  teacher
  check "a watermark key is made and named" bash -c "'$RETORT' guard keys rotate --db '$DB' | grep -q '^wm-'"
  KEY=$("$RETORT" keys create --name harvester --db "$DB" 2>/dev/null)
  serve kgw --model kjv="$WORK/runs/teacher" --db "$DB" --set serve.watermark=kgw --set serve.watermark_delta=4
  for seed in 1 2 3 4 5; do complete "$PORT_kgw" $seed false 2; done >"$WORK/marked.jsonl"
  check "10 marked answers" test "$(wc -l <"$WORK/marked.jsonl")" = 10
  check "every marked answer is detected (p < 1e-4): $(p_values "$WORK/marked.jsonl" | sort -g | tail -1 | xargs) at most" \
    bash -c "'$RETORT' guard detect --db '$DB' '$WORK/marked.jsonl' | /usr/bin/python3 -c '
import json,sys; ps=[json.loads(l)[\"p_value\"] for l in sys.stdin]; sys.exit(0 if len(ps)==10 and max(ps)<1e-4 else 1)'"
  plain_texts >"$WORK/plain.jsonl"
  # a fresh random key each run: one p below 1e-3 among 20 happens by chance (2% of runs), two (2e-4) or a
  # median below 0.05 would not
  "$RETORT" guard detect --db "$DB" "$WORK/plain.jsonl" >"$WORK/plain-detect.jsonl"
  check "KJV text no model wrote is not flagged: of 20 texts at most one p < 1e-3, median >= 0.05 ($(ps "$WORK/plain-detect.jsonl"))" \
    /usr/bin/python3 -c '
import json,statistics,sys; ps=[json.loads(l)["p_value"] for l in open(sys.argv[1])]
sys.exit(0 if len(ps)==20 and sum(p < 1e-3 for p in ps) <= 1 and statistics.median(ps) >= 0.05 else 1)' "$WORK/plain-detect.jsonl"
  edit "$WORK/marked.jsonl" 0.1 7 >"$WORK/edited10.jsonl"
  check "with 10% of characters replaced, marked answers are still found (median p < 1e-3)" \
    bash -c "'$RETORT' guard detect --db '$DB' '$WORK/edited10.jsonl' | /usr/bin/python3 -c '
import json,sys,statistics; ps=[json.loads(l)[\"p_value\"] for l in sys.stdin]; sys.exit(0 if statistics.median(ps)<1e-3 else 1)'"
  edit "$WORK/plain.jsonl" 0.3 8 >"$WORK/edited_plain.jsonl"
  "$RETORT" guard detect --db "$DB" "$WORK/edited_plain.jsonl" >"$WORK/edited-detect.jsonl"
  check "edited unmarked text is still not flagged: at most one p < 1e-3, median >= 0.05 ($(ps "$WORK/edited-detect.jsonl"))" \
    /usr/bin/python3 -c '
import json,statistics,sys; ps=[json.loads(l)["p_value"] for l in open(sys.argv[1])]
sys.exit(0 if len(ps)==20 and sum(p < 1e-3 for p in ps) <= 1 and statistics.median(ps) >= 0.05 else 1)' "$WORK/edited-detect.jsonl"
  complete "$PORT_kgw" 9 false 1 >"$WORK/whole.jsonl"
  complete "$PORT_kgw" 9 true 1 >"$WORK/streamed.jsonl"
  same_files "a streamed answer is the whole answer's text (same seed)" "$WORK/whole.jsonl" "$WORK/streamed.jsonl"
  key_id=$("$RETORT" guard keys list --db "$DB" | awk '/current/ {print $1}')
  answered=$(sqlite3 "$DB" "select count(*) from audit where status=200 and endpoint='/v1/completions'")
  check "every one of the $answered answered completions' audit rows names kgw and the key $key_id" \
    test "$answered" -ge 7 -a "$(sqlite3 "$DB" "select count(*) from audit where status=200 and endpoint='/v1/completions' and (watermark!='kgw' or watermark_key!='$key_id')")" = 0
  check "the secret is in no log and no answer" bash -c "! grep -rq \"\$(sqlite3 '$DB' 'select secret from watermark_keys')\" '$WORK'/*.err '$WORK'/*.jsonl"
  # the thief: text-only distillation through the API (sequence KD), then the open-model and black-box tests
  check "a student distilled through the marked API (text only)" env OPENAI_API_KEY="$KEY" "$RETORT" distill "${LM[@]}" \
    --set train.epochs=8 --teacher "openai:http://127.0.0.1:$PORT_kgw/v1" --teacher-model kjv \
    --set distill.method=sequence --set run.name=thief >/dev/null 2>"$WORK/thief.err"
  check "guard verify on the student's folder" "$RETORT" guard verify --db "$DB" --suspect "$WORK/runs/thief" "${LM[@]}" \
    --out "$WORK/ev-thief" >"$WORK/verify.out" 2>"$WORK/verify.err"
  p=$(json "$WORK/ev-thief/evidence.json" 'd["suspect"]["test"]["p_value"]')
  c=$(json "$WORK/ev-thief/evidence.json" 'd["control"]["test"]["p_value"]')
  check "the student carries the mark (p = $p < 1e-4)" below "$p" 1e-4
  check "the control, the unmarked teacher, does not (p = $c >= 1e-3)" below 1e-3 "$c"
  check "the evidence names the harvesting key" test "$(json "$WORK/ev-thief/evidence.json" 'd["marked_answers_by_api_key"][0]["api_key"]')" = harvester
  page_ok "evidence.html" "$WORK/ev-thief/evidence.html" 1 "carries watermark"
  check "a student trained on labels alone" "$RETORT" train "${LM[@]}" --set train.epochs=2 --set run.seed=3 \
    --set run.name=honest >/dev/null 2>&1
  "$RETORT" guard verify --db "$DB" --suspect "$WORK/runs/honest" "${LM[@]}" --out "$WORK/ev-honest" >/dev/null 2>&1
  h=$(json "$WORK/ev-honest/evidence.json" 'd["suspect"]["test"]["p_value"]')
  check "a student never shown marked text is not flagged (p = $h >= 1e-3)" below 1e-3 "$h"
  check "guard verify against a baseline (the honest student's green mass subtracted)" "$RETORT" guard verify --db "$DB" \
    --suspect "$WORK/runs/thief" --baseline "$WORK/runs/honest" "${LM[@]}" --out "$WORK/ev-paired" >/dev/null 2>&1
  pp=$(json "$WORK/ev-paired/evidence.json" 'd["suspect"]["test"]["p_value"]')
  pc=$(json "$WORK/ev-paired/evidence.json" 'd["control"]["test"]["p_value"]')
  check "paired: the student carries the mark (p = $pp < 1e-4), the teacher less the baseline does not (p = $pc)" \
    bash -c "python3 -c 'import sys; sys.exit(0 if $pp < 1e-4 and $pc >= 1e-3 else 1)'"
  check "paired: the evidence names the method and the baseline" test \
    "$(json "$WORK/ev-paired/evidence.json" 'd["suspect"]["test"]["method"] + "|" + ",".join(d["baselines"])')" = \
    "open-model (green mass, paired)|$WORK/runs/honest"
  fails "a baseline that is the suspect is refused" "both a baseline and the suspect" "$RETORT" guard verify --db "$DB" \
    --suspect "$WORK/runs/thief" --baseline "$WORK/runs/thief" "${LM[@]}" --out "$WORK/ev-bad"
  # black box: the thief served by someone else, asked through its API
  OTHER=$WORK/other.db
  THIEF_KEY=$("$RETORT" keys create --name us --db "$OTHER" 2>/dev/null)
  serve thief --model stolen="$WORK/runs/thief" --db "$OTHER"
  check "guard verify through the thief's API (black box)" env OPENAI_API_KEY="$THIEF_KEY" "$RETORT" guard verify --db "$DB" \
    --suspect "openai:http://127.0.0.1:$PORT_thief/v1" --suspect-model stolen --prompts 40 --new-tokens 90 "${LM[@]}" \
    --out "$WORK/ev-api" >/dev/null 2>"$WORK/verify-api.err"
  b=$(json "$WORK/ev-api/evidence.json" 'd["suspect"]["test"]["p_value"]')
  bc=$(json "$WORK/ev-api/evidence.json" 'd["control"]["test"]["p_value"]')
  check "black box: the thief's writing carries the mark (p = $b < 1e-4), the control's does not (p = $bc)" \
    bash -c "python3 -c 'import sys; sys.exit(0 if $b < 1e-4 and $bc >= 1e-3 else 1)'"
  ;;

gumbel)
  teacher
  "$RETORT" guard keys rotate --db "$DB" >/dev/null 2>&1
  KEY=$("$RETORT" keys create --name harvester --db "$DB" 2>/dev/null)
  # h = 2: byte-level contexts of one id repeat within a few dozen tokens, and gumbel marks only
  # the first occurrence of a context
  serve gumbel --model kjv="$WORK/runs/teacher" --db "$DB" --set serve.watermark=gumbel --set serve.watermark_context=2
  for seed in 1 2 3 4; do complete "$PORT_gumbel" $seed false 3; done >"$WORK/marked.jsonl"
  check "12 answers, 3 per request, the choices of a request differ" /usr/bin/python3 - "$WORK/marked.jsonl" <<'PY'
import json, sys
t = [json.loads(l)["text"] for l in open(sys.argv[1])]
sys.exit(0 if len(t) == 12 and all(len(set(t[i:i + 3])) == 3 for i in range(0, 12, 3)) else 1)
PY
  check "every gumbel answer is detected (p < 1e-4)" \
    bash -c "'$RETORT' guard detect --db '$DB' '$WORK/marked.jsonl' | /usr/bin/python3 -c '
import json,sys; d=[json.loads(l) for l in sys.stdin]; sys.exit(0 if len(d)==12 and all(x[\"scheme\"]==\"gumbel\" and x[\"p_value\"]<1e-4 for x in d) else 1)'"
  complete "$PORT_gumbel" 5 false 2 >"$WORK/whole.jsonl"
  complete "$PORT_gumbel" 5 true 2 >"$WORK/streamed.jsonl"
  same_files "streamed answers are the whole answers' texts (n = 2)" "$WORK/whole.jsonl" "$WORK/streamed.jsonl"
  ;;

dawn)
  IMG=(--set run.dir="$WORK/runs" --set data.train_subset=3000 --set data.test_subset=500 --set model.hidden=128
       --set train.optimizer=sgd --set train.lr=0.15)  # the recipe these short runs were written for
  check "train the teacher (an mlp on 3000 images)" "$RETORT" train "${IMG[@]}" --set train.epochs=3 \
    --set run.name=teacher >/dev/null 2>"$WORK/teacher.err"
  "$RETORT" guard keys rotate --db "$DB" >/dev/null 2>&1
  export RETORT_KEY=$("$RETORT" keys create --db "$DB" --name harvester 2>/dev/null)
  serve dawn --model fashion="$WORK/runs/teacher" --db "$DB" --set serve.watermark=kgw --set serve.dawn_share=0.1
  check "a student distilled through /v1/classify (soft targets only, 40 epochs)" "$RETORT" distill "${IMG[@]}" \
    --teacher "openai:http://127.0.0.1:$PORT_dawn/v1" --teacher-model fashion --api-key-env RETORT_KEY \
    --set distill.alpha=1 --set train.epochs=40 --set run.name=thief >/dev/null 2>"$WORK/thief.err"
  marks=$(sqlite3 "$DB" "select count(*) from dawn_marks")
  check "about a tenth of the 3500 inputs were marked ($marks)" test "$marks" -gt 250 -a "$marks" -lt 450
  own=$(json "$WORK/runs/teacher/run.json" 'd["test_accuracy"]')
  api=$(json "$WORK/runs/thief/report.json" 'd["teacher"]["value"]')
  check "the served accuracy ($api) is the teacher's own ($own) less at most the share" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if 0 <= $own - $api <= 0.1 + 0.02 else 1)"
  check "guard verify on the student" "$RETORT" guard verify --db "$DB" --suspect "$WORK/runs/thief" \
    --out "$WORK/ev-thief" >/dev/null 2>"$WORK/verify.err"
  p=$(json "$WORK/ev-thief/evidence.json" 'd["suspect"]["test"]["p_value"]')
  check "the student repeats the marked wrong classes beyond chance (p = $p < 1e-6)" below "$p" 1e-6
  check "the method is dawn" test "$(json "$WORK/ev-thief/evidence.json" 'd["suspect"]["test"]["method"]')" = dawn
  check "a student on labels alone" "$RETORT" train "${IMG[@]}" --set train.epochs=40 --set run.name=honest \
    >/dev/null 2>&1
  "$RETORT" guard verify --db "$DB" --suspect "$WORK/runs/honest" --out "$WORK/ev-honest" >/dev/null 2>&1
  h=$(json "$WORK/ev-honest/evidence.json" 'd["suspect"]["test"]["p_value"]')
  check "it is not flagged (p = $h >= 1e-3)" below 1e-3 "$h"
  page_ok "the classifier's evidence.html" "$WORK/ev-thief/evidence.html" 1 "carries watermark"
  ;;

bad_input)
  teacher
  fails "an unknown scheme is refused at start" "purple" "$RETORT" serve --model "$WORK/runs/teacher" --db "$DB" \
    --port 0 --set serve.watermark=purple
  fails "gamma out of range is refused at start" "serve.watermark_gamma" "$RETORT" serve --model "$WORK/runs/teacher" \
    --db "$DB" --port 0 --set serve.watermark=kgw --set serve.watermark_gamma=1.5
  fails "a database without a watermark key: serve says how to make one" "retort guard keys rotate" "$RETORT" serve \
    --model "$WORK/runs/teacher" --db "$DB" --port 0 --set serve.watermark=kgw
  fails "detect before any model was served marked" "no model served with a watermark" "$RETORT" guard detect --db "$DB" /dev/null
  fails "detect on a database that does not exist" "no guard database" "$RETORT" guard detect --db "$WORK/none.db" /dev/null
  "$RETORT" guard keys rotate --db "$DB" >/dev/null 2>&1
  serve kgw --model kjv="$WORK/runs/teacher" --db "$DB" --set serve.watermark=kgw
  head -c 3000 "$RETORT" >"$WORK/binary.jsonl"
  fails "a detect input that is not text" "is not text" "$RETORT" guard detect --db "$DB" "$WORK/binary.jsonl"
  printf '{"text": "And God said"}\n{"text": 12}\n' >"$WORK/broken.jsonl"
  fails "a JSONL line without a text string is named" "line 2" "$RETORT" guard detect --db "$DB" "$WORK/broken.jsonl"
  fails "a detect input that is missing" "no file" "$RETORT" guard detect --db "$DB" "$WORK/missing.txt"
  "$RETORT" train "${TINY[@]}" --set text.tokenizer=sentencepiece --set text.vocab_size=400 --set run.name=other \
    >/dev/null 2>&1
  fails "a suspect of another vocabulary: both are named" "another vocabulary" "$RETORT" guard verify --db "$DB" \
    --suspect "$WORK/runs/other" "${LM[@]}" --out "$WORK/ev"
  check "... naming the marked model's tokenizer too" grep -q "byte (256)" "$WORK/err"
  check "the server answered through all of it" curl -sf "http://127.0.0.1:$PORT_kgw/health"
  ;;

campaign)
  teacher
  THIEF=$("$RETORT" keys create --name thief --db "$DB" 2>/dev/null)
  ALICE=$("$RETORT" keys create --name alice --db "$DB" 2>/dev/null)
  GUARD=(--config "$(dirname "$0")/../../configs/guard.toml" --set guard.interval=0.05 --set guard.min_requests=10
         --set guard.trust_forwarded=true --set guard.signal.coverage.threshold=10
         --set guard.response.throttle_rpm=100000)  # a throttle in passing must not end the harvest before its block
  serve one --model kjv="$WORK/runs/teacher" --db "$DB" "${GUARD[@]}"
  chat "$PORT_one" "$ALICE" 198.51.100.7 12 >"$WORK/alice1" &
  (cd "$WORK" && harvest "$PORT_one" "$THIEF" thief 203.0.113.9) &
  harvester=$!
  for _ in $(seq 1 600); do
    # the block is committed and the thief has met it once; it is still sending when the server dies
    [ "$(in_db "select count(*) from actions where key_name='thief' and action='block'")" -ge 1 ] 2>/dev/null &&
      grep -q '^403' "$WORK/thief.log" 2>/dev/null && break
    sleep 0.1
  done
  if [ "$(in_db "select count(*) from actions where key_name='thief' and action='block'")" != 1 ]; then
    echo "no block after 60 s; the server said:"; tail -5 "$WORK/serve.one.err"
    in_db "select action, score, reason from actions"; in_db "select count(*), sum(ref_chunk >= 0) from audit"
  fi >&3
  kill -9 "${PIDS[0]}"  # the server dies in the middle of the campaign, right after the block
  wait "$harvester" 2>/dev/null
  wait
  answered=$(grep -c '^200' "$WORK/thief.log")
  rows=$(in_db "select count(*) from audit where key_name='thief' and status=200")
  check "the harvest was answered ($answered requests) before the block" test "$answered" -ge 10
  check "no answered request lost its audit row over kill -9 ($rows rows for $answered answers)" \
    test "$rows" -ge "$answered" -a "$rows" -le $((answered + 1))
  check "the policy's block row survived kill -9" \
    test "$(in_db "select count(*) from actions where key_name='thief' and action='block' and source='policy'")" -ge 1
  check "the block names the teacher-forcing shape" \
    bash -c "sqlite3 '$DB' \"select reason from actions where key_name='thief' and action='block'\" | grep -q 'teacher-forcing shape'"
  check "refused answers said key_blocked, with the reason" bash -c "grep '^403' '$WORK/thief.log' | head -1 | grep -q key_blocked"
  check "alice was never acted on" test "$(in_db "select count(*) from actions where key_name='alice'")" = 0
  check "the audit rows carry the forwarded address and fingerprints, not the prompts" test \
    "$(in_db "select count(*) from audit where key_name='thief' and status=200 and client='203.0.113.9' and prompt_simhash!=0 and ref_chunk>=0 and prompt_text=''")" = "$rows"
  # restarted with detection off: the block stands from the first request; alice is served
  serve two --model kjv="$WORK/runs/teacher" --db "$DB"
  (cd "$WORK" && harvest "$PORT_two" "$THIEF" again 203.0.113.9)
  check "after the restart the thief's first request is refused" bash -c "head -1 '$WORK/again.log' | grep -q '^403.*key_blocked'"
  same "after the restart alice is served" "$(chat "$PORT_two" "$ALICE" 198.51.100.7 1)" 200
  # what an operator sees and does
  check "guard campaigns lists the thief as blocked, first" bash -c "'$RETORT' guard campaigns --db '$DB' ${GUARD[*]} \
    | grep -A1 '^keys' | tail -1 | grep -q 'block.*thief'"
  "$RETORT" guard campaigns --db "$DB" "${GUARD[@]}" --json >"$WORK/campaigns.json"
  same "--json: the thief's response" "$(json "$WORK/campaigns.json" '[k["response"] for k in d["keys"] if k["name"]=="thief"][0]')" block
  same "--json: alice's response" "$(json "$WORK/campaigns.json" '[k["response"] for k in d["keys"] if k["name"]=="alice"][0]')" none
  "$RETORT" guard explain --db "$DB" "${GUARD[@]}" --key thief >"$WORK/explain" 2>&1
  check "guard explain shows the signals and the policy's row" bash -c "grep -q '\\* forcing_share' '$WORK/explain' && grep -q 'block    by policy' '$WORK/explain'"
  check "guard act: an operator throttles alice" bash -c "'$RETORT' guard act --db '$DB' --key alice --action throttle --reason 'test' | grep -q throttle"
  check "guard explain shows it" bash -c "'$RETORT' guard explain --db '$DB' --key alice | grep -q 'throttle by operator'"
  fails "guard act on an unknown key says so" "no API key named 'mallory'" "$RETORT" guard act --db "$DB" --key mallory \
    --action block --reason x
  fails "guard act with an unknown action lists the actions" "observe | throttle" "$RETORT" guard act --db "$DB" --key alice \
    --action ban --reason x
  ;;

campaign_bad_input)
  fails "a policy with an unknown signal fails at start, naming the key" "guard.signal.greed.weight" "$RETORT" serve \
    --model "$WORK/none" --db "$DB" --port 0 --set guard.detect=true --set guard.signal.greed.weight=1
  fails "a threshold out of range fails at start, naming the key" "guard.signal.forcing_share.threshold" "$RETORT" serve \
    --model "$WORK/none" --db "$DB" --port 0 --set guard.signal.forcing_share.threshold=2
  fails "responses out of order fail at start, naming them" "guard.response.mark" "$RETORT" serve \
    --model "$WORK/none" --db "$DB" --port 0 --set guard.response.strip=0.9
  printf '[guard]\ndetect = true\nsignals = 3\n' >"$WORK/bad.toml"
  fails "a policy file with an unknown key names it" "guard.signals" "$RETORT" serve --model "$WORK/none" --db "$DB" \
    --port 0 --config "$WORK/bad.toml"
  fails "guard campaigns on a missing database says how to make one" "retort serve --db" "$RETORT" guard campaigns \
    --db "$WORK/missing.db"
  ;;

*)
  echo "unknown case $CASE"
  exit 2
  ;;
esac

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
