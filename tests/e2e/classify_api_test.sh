#!/usr/bin/env bash
# End to end: an image classifier distilled through an API. `retort serve` serves a small trained
# Fashion-MNIST classifier; `retort distill --teacher openai:URL` harvests its probabilities
# through /v1/classify into the logit cache (stopped once by a request budget, then resumed) and
# trains a student on them. Checks: the run finishes, its report says what the student kept of
# the teacher (whose accuracy through the API is its own run's), the student beats chance, the
# resumed harvest asks only for what the stopped one did not keep, the harvested cache is the local
# teacher's log_softmax, a second run asks nothing, and a wrong model name or a classifier for text
# data is one clear error.
# Usage: classify_api_test.sh RETORT_BINARY
set -uo pipefail
RETORT=$1
WORK=$(mktemp -d /tmp/retort-classify-api-XXXXXX)
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && { kill -9 $SERVER_PID; wait $SERVER_PID; } 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
DB=$WORK/serve.db

rows() { sqlite3 "$DB" "$1"; }
answered() { rows "select count(*) from audit where endpoint='/v1/classify' and status=200"; }

# A few dozen steps reach no useful learning rate under the default AdamW 1e-3 with 100 warm-up
# steps (a recipe for 30 epochs of 60k images): these short runs take a large SGD step.
SHORT=(--set train.optimizer=sgd --set train.lr=0.15)
check "train the teacher (an mlp on 3000 images)" "$RETORT" train --set data.train_subset=3000 \
  --set data.test_subset=500 --set run.dir="$WORK/runs" --set run.name=teacher --set model.hidden=64 \
  --set train.epochs=2 "${SHORT[@]}" >/dev/null 2>"$WORK/teacher.err"
export RETORT_KEY=$("$RETORT" keys create --db "$DB" --name student 2>/dev/null)
"$RETORT" serve --port 0 --db "$DB" --model fashion="$WORK/runs/teacher" >"$WORK/port" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 200); do
  [ -s "$WORK/port" ] && break
  sleep 0.05
done
PORT=$(head -1 "$WORK/port")
[ -n "$PORT" ] || { echo "server did not start:"; cat "$WORK/serve.err"; exit 1; }
BASE=http://127.0.0.1:$PORT/v1

API=(--teacher "openai:$BASE" --teacher-model fashion --api-key-env RETORT_KEY)
# 1000 training images: 4 shards of 256 (the last 232), 4 requests of 64 images each.
STUDENT=(--set data.train_subset=1000 --set data.test_subset=500 --set run.dir="$WORK/runs"
         --set model.hidden=16 --set train.epochs=3 "${SHORT[@]}")

# GET models + 5 classify requests: shard 0 whole, shard 1 begun
check "a request budget stops the harvest" bash -c "! '$RETORT' distill ${STUDENT[*]} ${API[*]} \
  --set teacher.api_max_requests=6 --set run.name=api >/dev/null 2>'$WORK/budget.err'"
check "one clear line names the budget and what is kept" \
  grep -q "^retort: error.*teacher.api_max_requests = 6 .*1 of 4 shards of 256 images are harvested and kept in" \
  "$WORK/budget.err"
before=$(answered)
same "the stopped harvest was answered 5 times" "$before" 5

check "distil through the API" "$RETORT" distill "${STUDENT[@]}" "${API[@]}" --set run.name=api --fresh \
  >"$WORK/api.out" 2>"$WORK/api.err"
check "it shows the harvest's progress" grep -q "teacher API classify" "$WORK/api.err"
# the 744 training images not kept (12 requests) and the 500 test images (2 shards, 8 requests)
same "the resumed harvest asked only for the rest (20 requests)" "$(( $(answered) - before ))" 20
check "the run finished" test "$(json "$WORK/runs/api/run.json" 'd["status"]')" = finished
same "run.json names the endpoint" "$(json "$WORK/runs/api/run.json" 'd["teacher"]')" "openai:$BASE"
same "and the requests this run spent (2 GET models + 20)" \
  "$(json "$WORK/runs/api/run.json" 'd["teacher_api"]["requests"]')" 22
same "the report's teacher score, measured through the API, is the teacher's own run's" \
  "$(json "$WORK/runs/teacher/run.json" 'd["test_accuracy"]')" \
  "$(json "$WORK/runs/api/report.json" 'd["teacher"]["value"]')"
check "the report says what the student kept" \
  grep -q "The student kept [0-9.]*% of its teacher's test accuracy" "$WORK/runs/api/report.json"
acc=$(json "$WORK/runs/api/run.json" 'd["test_accuracy"]')
check "the student beats chance by far ($acc vs 0.1)" below 0.3 "$acc"
agree=$(json "$WORK/runs/api/run.json" 'd["agreement"]')
check "and agrees with its teacher far more than chance ($agree)" below 0.3 "$agree"

# The same student from the same teacher read locally: its logit cache and the API's hold the same
# distribution (log_softmax of the local logits vs the harvested log-probabilities), within 5e-5:
# the two normalise pixels with other roundings (float32 here; double, then float32, in the
# server) and batch them differently (measured: 6.5e-6).
check "the same student distilled from the local teacher" "$RETORT" distill "${STUDENT[@]}" \
  --teacher "$WORK/runs/teacher" --set run.name=local >/dev/null 2>&1
local_acc=$(json "$WORK/runs/local/run.json" 'd["test_accuracy"]')
check "the API's cache is the local teacher's log_softmax within 5e-5 (students: API $acc, local $local_acc)" \
  /usr/bin/python3 - "$XDG_CACHE_HOME/retort" <<'PY'
import glob, json, struct, sys
import numpy as np
tables = {}
for path in glob.glob(sys.argv[1] + "/logits-*.bin"):
    b = open(path, "rb").read()
    assert b[:8] == b"RTCACHE1", path
    n = struct.unpack("<Q", b[8:16])[0]
    h = json.loads(b[16:16 + n])
    if h["shape"] != [1000, 10]:
        continue  # the test set's
    t = np.frombuffer(b[16 + n:], np.float32).reshape(h["shape"]).astype(np.float64)
    tables["api" if "classified by" in h["source"] else "local"] = t
assert sorted(tables) == ["api", "local"], sorted(tables)
l = tables["local"]
m = l.max(1, keepdims=True)
log_softmax = l - m - np.log(np.exp(l - m).sum(1, keepdims=True))
diff = np.abs(np.maximum(log_softmax, np.log(1e-12)) - tables["api"]).max()
print("max |log_softmax(local) - api| =", diff)
assert diff < 5e-5, diff
PY

before=$(answered)
check "a second student reads the cache" "$RETORT" distill "${STUDENT[@]}" "${API[@]}" --set run.name=again \
  --set distill.temperature=2 >/dev/null 2>"$WORK/again.err"
same "and asks the API nothing" "$(answered)" "$before"

check "a model the endpoint does not list is one clear error" bash -c "! '$RETORT' distill ${STUDENT[*]} \
  --teacher openai:$BASE --teacher-model nosuch --api-key-env RETORT_KEY --set run.name=x >/dev/null 2>'$WORK/x.err' \
  && grep -q \"^retort: error.*lists no model 'nosuch'\" '$WORK/x.err'"
check "a classifier for text data is one clear error" bash -c "! '$RETORT' distill ${TINY[*]} ${API[*]} \
  --set distill.top_k=5 --set run.name=y >/dev/null 2>'$WORK/y.err' \
  && grep -q '^retort: error.*is an image classifier, not a language model' '$WORK/y.err'"

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed; the API run's stderr ends:"; tail -n 20 "$WORK/api.err"; exit 1; }
echo "all checks passed"
