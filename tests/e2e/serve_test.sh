#!/usr/bin/env bash
# End-to-end tests of `retort serve` and `retort keys` on loopback.
# Usage: serve_test.sh RETORT_BINARY CASE
#   clients    the official openai npm client: completions, logprobs, echo, n, streaming, chat, 401/404/400/429
#   bad_input  each kind of bad request is a 4xx with an OpenAI error object; kill -9 loses no answered row
#   limits     concurrent load over limited keys: no key passes its limit, usage and audit agree exactly
#   classify   /v1/classify on a Fashion-MNIST classifier agrees with `retort eval`'s predictions
#   keys       keys over the CLI and the admin HTTP routes; hashed storage
#   hostile    10,000 mutated requests over every route (JSON, bytes, HTTP framing, pipelining): no 5xx but
#              503, no crash, healthy after; a second server on the same port refuses to start
#   kill_usage kill -9 under concurrent load, three times: each key's used_tokens equals what its audit
#              rows settled (prompt + completion tokens of the answered requests); the database is intact.
#              Then kill -9 under batched completions and classify calls at 16 connections each (audit
#              rows group-committed): every answer a client got has its row
#   distill    a student distilled through the API (top-k logprobs) beats the same student on labels;
#              the harvest is cached and resumes; text only works with another tokenizer; mismatches fail
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-serve-XXXXXX)
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && { kill -9 $SERVER_PID; wait $SERVER_PID; } 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
CLIENTS=$(cd "$(dirname "$0")/../clients" && pwd)
BENCH=$(cd "$(dirname "$0")/../../bench" && pwd)
DB=$WORK/serve.db

# A tiny language model with a 64-token context (the chat template needs room).
tiny_lm() {
  "$RETORT" train "${TINY[@]}" --set text.seq_len=64 --set run.name=lm >"$WORK/lm.out" 2>"$WORK/lm.err" \
    || { cat "$WORK/lm.err"; exit 1; }
}
# serve ARGS...: starts the server on a free port; sets PORT, BASE and SERVER_PID.
serve() {
  "$RETORT" serve --port 0 --db "$DB" "$@" >"$WORK/port" 2>"$WORK/serve.err" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$WORK/port" ] && break
    sleep 0.05
  done
  PORT=$(head -1 "$WORK/port")
  BASE=http://127.0.0.1:$PORT/v1
  [ -n "$PORT" ] || { echo "server did not start:"; cat "$WORK/serve.err"; exit 1; }
}
key() { "$RETORT" keys create --db "$DB" "$@" 2>/dev/null; }
healthy() { curl -sf "http://127.0.0.1:$PORT/health" | grep -q '"status":"ok"'; }
rows() { sqlite3 "$DB" "$1"; }

case $CASE in
clients)
  tiny_lm
  KEY=$(key --name alice)
  LIMITED=$(key --name bob --rpm 2)
  serve --model kjv="$WORK/runs/lm"
  check "the openai npm client passes every check" node "$CLIENTS/openai_client_test.mjs" "$BASE" "$KEY" "$LIMITED" kjv
  check "each of the client's 15 keyed requests left one audit row" \
    test "$(rows "select count(*) from audit where key_name in ('alice','bob')")" = 15
  check "the 429 is in the audit log" test "$(rows "select count(*) from audit where key_name='bob' and status=429")" = 1
  check "the 401 is in the audit log without a key" test "$(rows "select count(*) from audit where status=401 and key_id=0")" = 1
  ;;

bad_input)
  tiny_lm
  KEY=$(key --name alice)
  serve --model kjv="$WORK/runs/lm" --max-body 4096
  sent=0
  # expect STATUS CODE_OR_EMPTY BODY [URL]: the answer is STATUS with an OpenAI error object
  expect() {
    local status=$1 code=$2 body=$3 url=${4:-$BASE/completions}
    local got
    got=$(curl -s -o "$WORK/answer" -w '%{http_code}' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
          --data-binary "$body" "$url")
    sent=$((sent + 1))
    check "${body:0:60}... -> $status $code (got $got)" /usr/bin/python3 - "$WORK/answer" "$got" "$status" "$code" <<'PY'
import json, sys
answer, got, status, code = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
e = json.load(open(answer))["error"]
assert got == status, (got, status)
assert isinstance(e["message"], str) and e["message"] and e["type"], e
assert not code or e["code"] == code, (e["code"], code)
PY
    check "healthy after it" healthy
  }
  expect 400 invalid_json '{"model": "kjv", "prompt": '
  expect 400 invalid_json '[1, 2, 3]'
  expect 400 invalid_value '{"model": "kjv", "prompt": 42}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "max_tokens": "ten"}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "stream": "yes"}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "max_tokens": 100000000}'
  expect 400 context_length_exceeded '{"model": "kjv", "prompt": "And", "max_tokens": 1000}'
  long=$(/usr/bin/python3 -c "print('And God said, Let there be light: ' * 40)")
  expect 400 context_length_exceeded "{\"model\": \"kjv\", \"prompt\": \"$long\", \"max_tokens\": 1}"
  expect 404 model_not_found '{"model": "gpt-4", "prompt": "And"}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "temperature": -0.5}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "logprobs": 21}'
  expect 400 invalid_value '{"model": "kjv", "prompt": [1, 2, 99999]}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "n": 0}'
  expect 400 invalid_value '{"model": "kjv", "prompt": "And", "max_tokens": 0}'
  expect 400 invalid_value '{"model": "kjv", "messages": "hello"}' "$BASE/chat/completions"
  expect 400 invalid_value '{"model": "kjv", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 3}' "$BASE/chat/completions"
  expect 400 invalid_value '{"model": "kjv", "input": [1, 2, 3]}' "$BASE/classify"
  big=$(/usr/bin/python3 -c "print('x' * 6000)")
  expect 413 body_too_large "{\"model\": \"kjv\", \"prompt\": \"$big\"}"
  expect 404 unknown_url '{}' "$BASE/embeddings"
  # answered requests, then kill -9: every one of them has its row
  for i in $(seq 1 10); do
    curl -sf -H "Authorization: Bearer $KEY" -d "{\"model\":\"kjv\",\"prompt\":\"And $i\",\"max_tokens\":2}" \
      "$BASE/completions" >/dev/null && sent=$((sent + 1))
  done
  kill -9 $SERVER_PID
  wait $SERVER_PID 2>/dev/null
  SERVER_PID=""
  same "after kill -9 the audit log holds all $sent answered requests" "$(rows 'select count(*) from audit')" "$sent"
  check "the 413 row is there" test "$(rows "select count(*) from audit where status=413")" = 1
  check "the database is intact" test "$(rows 'pragma integrity_check')" = ok
  ;;

limits)
  tiny_lm
  K1=$(key --name r10 --rpm 10)
  K2=$(key --name t300 --rpm 1000 --tpm 300)
  K3=$(key --name q200 --quota 200)
  serve --model kjv="$WORK/runs/lm" --workers 2
  node "$BENCH/serve_load.mjs" --base "$BASE" --keys "$K1,$K2,$K3" --model kjv --requests 150 --concurrency 16 \
    --max-tokens 8 >"$WORK/load.json"
  check "load test ran" test -s "$WORK/load.json"
  check "under 16 concurrent connections no key passes its limit; usage and audit agree" \
    /usr/bin/python3 - "$WORK/load.json" "$DB" <<'PY'
import json, sqlite3, sys
r = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
k_rpm, k_tpm, k_quota = r["per_key"]
assert r["transport_errors"] == 0 and r["sent"] == 150, r
# rpm 10: exactly 10 pass in the minute, the other 40 are 429
assert k_rpm["statuses"] == {"200": 10, "429": 40}, k_rpm
# tpm 300: what passed reported at most 300 tokens
assert 0 < k_tpm["tokens"] <= 300 and k_tpm["statuses"]["429"] > 0, k_tpm
# quota 200: at most 200 tokens over the key's life
assert 0 < k_quota["tokens"] <= 200 and k_quota["statuses"]["429"] > 0, k_quota
for name, k in zip(["r10", "t300", "q200"], r["per_key"]):
    used = db.execute("select used_tokens from keys where name=?", (name,)).fetchone()[0]
    assert used == k["tokens"], (name, used, k["tokens"])  # settled once per answer, never twice
    got = dict(db.execute("select status, count(*) from audit where key_name=? group by status", (name,)).fetchall())
    assert {str(s): n for s, n in got.items()} == k["statuses"], (name, got, k["statuses"])
    tok = db.execute("select sum(prompt_tokens + completion_tokens) from audit where key_name=? and status=200", (name,)).fetchone()[0]
    assert tok == k["tokens"], (name, tok, k["tokens"])
print("per key:", [(k["statuses"], k["tokens"]) for k in r["per_key"]])
PY
  check "healthy after the load" healthy
  ;;

classify)
  SMALL=(--set data.train_subset=2000 --set data.test_subset=200 --set run.dir=$WORK/runs)
  check "train a small classifier" "$RETORT" train "${SMALL[@]}" --set run.name=mlp --set model.hidden=32 \
    --set train.epochs=1 >/dev/null 2>&1
  KEY=$(key --name alice)
  serve --model fashion="$WORK/runs/mlp"
  /usr/bin/python3 - "$WORK/pixels.json" <<'PY'
import gzip, json, sys
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
json.dump([list(raw[i * 784:(i + 1) * 784]) for i in range(200)], open(sys.argv[1], "w"))
PY
  /usr/bin/python3 -c "import json; print(json.dumps({'model': 'fashion', 'input': json.load(open('$WORK/pixels.json'))}))" >"$WORK/req.json"
  curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' --data-binary @"$WORK/req.json" \
    "$BASE/classify" >"$WORK/probs.json"
  curl -s -H "Authorization: Bearer $KEY" -d "{\"model\":\"fashion\",\"input\":$(/usr/bin/python3 -c "import json; print(json.load(open('$WORK/pixels.json'))[0])"),\"top_k\":3}" \
    "$BASE/classify" >"$WORK/top.json"
  acc=$(json "$WORK/runs/mlp/run.json" 'd["test_accuracy"]')
  check "classify: 200 probability rows summing to 1; its accuracy equals the run's ($acc)" \
    /usr/bin/python3 - "$WORK/probs.json" "$WORK/top.json" "$acc" <<'PY'
import gzip, json, sys
d = json.load(open(sys.argv[1]))["data"]
top = json.load(open(sys.argv[2]))["data"][0]
labels = gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").read()[8:208]
assert len(d) == 200
for item in d:
    p = item["probabilities"]
    assert len(p) == 10 and abs(sum(p) - 1) < 1e-4 and item["label"] == max(range(10), key=p.__getitem__)
acc = sum(item["label"] == labels[i] for i, item in enumerate(d)) / 200
assert abs(acc - float(sys.argv[3])) < 1e-9, (acc, sys.argv[3])
assert [t["label"] for t in top["top"]] == sorted(range(10), key=lambda j: -d[0]["probabilities"][j])[:3], top
print("accuracy through the API", acc)
PY
  ;;

keys)
  ADMIN=$(key --name root --admin)
  USER=$(key --name alice --rpm 5)
  check "a key is printed once, 51 characters" test ${#USER} -eq 51
  check "the database holds no key in clear" bash -c "! grep -qa '$USER' '$DB'* && ! grep -qa '$ADMIN' '$DB'*"
  check "a second key with the same name is refused" bash -c "! '$RETORT' keys create --name alice --db '$DB' 2>/dev/null"
  check "keys list shows both" bash -c "'$RETORT' keys list --db '$DB' | grep -q alice"
  tiny_lm
  serve --model kjv="$WORK/runs/lm"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $USER" "$BASE/admin/keys")
  check "a plain key may not manage keys (403, got $code)" test "$code" = 403
  curl -s -H "Authorization: Bearer $ADMIN" -d '{"name": "carol", "rpm": 7}' "$BASE/admin/keys" >"$WORK/carol.json"
  CAROL=$(json "$WORK/carol.json" 'd["key"]')
  check "the admin key creates a key over HTTP" test "$(json "$WORK/carol.json" 'd["rpm"]')" = 7
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CAROL" "$BASE/models")
  check "the new key works at once (got $code)" test "$code" = 200
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $ADMIN" "$BASE/admin/keys/carol")
  check "the admin key revokes it (got $code)" test "$code" = 200
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CAROL" "$BASE/models")
  check "the revoked key is refused at once (got $code)" test "$code" = 401
  check "the CLI sees carol revoked" bash -c "'$RETORT' keys list --db '$DB' --json | grep -q '\"revoked\": *true'"
  check "revoke over the CLI" "$RETORT" keys revoke --name alice --db "$DB"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $USER" "$BASE/models")
  check "the running server refuses alice after the CLI revoked her (got $code)" test "$code" = 401
  check "a database file that is not one is refused" bash -c "echo junk > '$WORK/junk.db'; ! '$RETORT' keys list --db '$WORK/junk.db' 2>'$WORK/junk.err' && grep -q junk.db '$WORK/junk.err'"
  ;;

distill)
  # a byte-level teacher twice the student's width and depth, trained longer on more text
  check "train the teacher" "$RETORT" train "${TINY[@]}" --set text.tokenizer=byte --set text.train_tokens=60000 \
    --set model.d_model=64 --set model.layers=2 --set model.heads=4 --set train.epochs=3 --set run.name=t \
    >/dev/null 2>"$WORK/t.err"
  export RETORT_KEY=$(key --name student)
  serve --model kjv="$WORK/runs/t"
  API=(--teacher "openai:$BASE" --teacher-model kjv --api-key-env RETORT_KEY)
  # the student: TINY for 5 epochs (where the teacher's top-5 measurably helps; 1 epoch is too few steps)
  STUDENT=("${TINY[@]}" --set train.epochs=5)
  check "the same student on labels alone" "$RETORT" train "${STUDENT[@]}" --set text.tokenizer=byte --set run.name=labels \
    >/dev/null 2>&1
  # a budget stops the harvest part-way; what was harvested is kept
  check "a request budget stops the harvest with a clear error" bash -c "! '$RETORT' distill ${STUDENT[*]} ${API[*]} \
    --set distill.top_k=5 --set teacher.api_max_requests=40 --set run.name=api >/dev/null 2>'$WORK/budget.err'"
  check "the error names the budget" grep -q "api_max_requests" "$WORK/budget.err"
  before=$(rows "select count(*) from audit where endpoint='/v1/completions' and status=200")
  check "distil through the API (top-5 logprobs)" "$RETORT" distill "${STUDENT[@]}" "${API[@]}" --set distill.top_k=5 \
    --set run.name=api --fresh >"$WORK/api.out" 2>"$WORK/api.err"
  after=$(rows "select count(*) from audit where endpoint='/v1/completions' and status=200")
  windows=$(rows "select count(distinct prompt_hash) from audit where endpoint='/v1/completions' and echo=1")
  check "the resumed harvest asked only for what the first kept ($before answered before, $((after - before)) after, $windows windows)" \
    test $((after - before)) -lt "$windows"
  labels=$(json "$WORK/runs/labels/run.json" 'd["val_bpb"]')
  api=$(json "$WORK/runs/api/run.json" 'd["val_bpb"]')
  check "the student distilled through the API ($api bits/byte) beats labels alone ($labels)" below "$api" "$labels"
  check "the same teacher's top-5 read locally" "$RETORT" distill "${STUDENT[@]}" \
    --teacher "$WORK/runs/t" --set distill.top_k=5 --set run.name=local >/dev/null 2>&1
  # The harvest through the API and the local teacher's cache hold the same top-5 tokens at every
  # position of every window, with log-probabilities equal up to one fp16 step: the server scores
  # one window per request, the local teacher 32 per forward pass, and float rounding of the two
  # batch shapes can differ in the last bit before fp16 (measured: at most 0.00195). The students
  # trained from the two caches are not compared: training amplifies such a bit into a different
  # trajectory on some CPUs (3.70 vs 3.65 bits/byte on an AMD EPYC, equal on the earlier machine).
  check "the API harvest equals the local teacher's top-5 cache (same ids, logprobs within one fp16 step)" \
    /usr/bin/python3 - "$WORK/cache/retort" <<'PY'
import glob, json, os, sys
import numpy as np
root = sys.argv[1]
def load(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    k, T = meta["k"], meta["seq_len"]
    ids, lps = [], []
    for s in sorted(meta["shards"], key=lambda s: s["index"]):
        b = open(os.path.join(d, s["file"]), "rb").read()
        n = len(b) // (4 * k * T)  # uint16 ids, then fp16 logprobs, per window
        ids.append(np.frombuffer(b[:n * 2 * k * T], np.uint16).reshape(n, T, k))
        lps.append(np.frombuffer(b[n * 2 * k * T:], np.float16).reshape(n, T, k))
    return meta, np.concatenate(ids), np.concatenate(lps).astype(np.float64)
local = [d for d in glob.glob(root + "/topk-*-k5") if "/topk-api-" not in d]
api = [d for d in glob.glob(root + "/topk-api-*-k5") if json.load(open(d + "/meta.json"))["vocab_size"] == 256
       and json.load(open(d + "/meta.json"))["shards"]]
assert len(local) == 1, local
ml, il, ll = load(local[0])
matches = []
for d in api:
    ma, ia, la = load(d)
    if ma["windows"] == ml["windows"] and len(ia) == len(il):
        ulp = np.spacing(np.maximum(np.abs(la), np.abs(ll)).astype(np.float16)).astype(np.float64)
        matches.append((d, (ia == il).mean(), np.abs(la - ll).max(), (np.abs(la - ll) <= ulp).mean()))
assert matches, ("no complete API harvest of the same windows", api)
d, same_ids, worst, within_ulp = matches[0]
print(f"{len(il)} windows: ids equal {same_ids:.6f}, logprob max difference {worst}, within one fp16 step {within_ulp}")
assert same_ids == 1.0 and within_ulp == 1.0, (same_ids, worst, within_ulp)
PY
  local_bpb=$(json "$WORK/runs/local/run.json" 'd["val_bpb"]')
  check "the student from the local top-5 ($local_bpb bits/byte) beats labels alone ($labels)" below "$local_bpb" "$labels"
  check "run.json records the API teacher" /usr/bin/python3 -c "
import json; d=json.load(open('$WORK/runs/api/run.json')); a=d['teacher_api']; assert a['requests'] > 0 and a['tokens'] > 0, d"
  n=$(rows "select count(*) from audit where endpoint='/v1/completions'")
  check "a rerun reads the harvest from the cache" "$RETORT" distill "${STUDENT[@]}" "${API[@]}" --set distill.top_k=5 \
    --set run.name=api2 >/dev/null 2>&1
  same "and asks for no completion" "$(rows "select count(*) from audit where endpoint='/v1/completions'")" "$n"
  # (16-token windows and 4-token prompts: in the teacher's bytes, prompt + continuation fit its 32-token context)
  check "text only (sequence KD) works with another tokenizer" "$RETORT" distill "${TINY[@]}" "${API[@]}" \
    --set distill.method=sequence --set text.tokenizer=sentencepiece --set text.vocab_size=400 --set run.name=seq \
    --set text.seq_len=16 --set distill.prompt_tokens=4 \
    >/dev/null 2>"$WORK/seq.err"
  check "logprobs with another tokenizer is a clear error" bash -c "! '$RETORT' distill ${TINY[*]} ${API[*]} \
    --set distill.top_k=5 --set text.tokenizer=sentencepiece --set text.vocab_size=400 --set run.name=mismatch \
    >/dev/null 2>'$WORK/mismatch.err'"
  check "it says tokenizer" grep -qi "tokenizer" "$WORK/mismatch.err"
  check "a wrong key is a clear error" bash -c "! RETORT_KEY=rt-wrong '$RETORT' distill ${TINY[*]} ${API[*]} \
    --set distill.top_k=3 --set run.name=wrongkey >/dev/null 2>'$WORK/wrong.err'"
  check "it says 401" grep -q "401" "$WORK/wrong.err"
  ;;

hostile)
  tiny_lm
  check "train a tiny classifier" "$RETORT" train --set data.train_subset=500 --set data.test_subset=100 \
    --set run.dir="$WORK/runs" --set run.name=mlp --set model.hidden=16 --set train.epochs=1 >/dev/null 2>&1
  KEY=$(key --name fuzz-admin --admin)
  # short read deadlines: requests whose framing the fuzzer broke wait for them (and test them)
  serve --model kjv="$WORK/runs/lm" --model fashion="$WORK/runs/mlp" --max-body 65536 --header-timeout 1 --body-timeout 1
  check "10,000 hostile requests over every route: no 5xx but 503, no crash, healthy after" \
    /usr/bin/python3 "$(dirname "$0")/hostile_http.py" --port "$PORT" --key "$KEY" --lm kjv --classifier fashion \
    --requests 10000 --seed 7 --pid "$SERVER_PID" --max-seconds 400
  check "the server process is still the one we started" kill -0 "$SERVER_PID"
  before=$(rows 'select count(*) from audit')
  "$RETORT" serve --port "$PORT" --db "$WORK/second.db" --model kjv="$WORK/runs/lm" >/dev/null 2>"$WORK/second.err" &
  second=$!
  for _ in $(seq 1 600); do kill -0 $second 2>/dev/null || break; sleep 0.1; done  # it loads its model, then binds
  check "a second server on the same port exits with an error" bash -c "! kill -0 $second 2>/dev/null"
  wait $second
  rc=$?
  check "with a non-zero status (got $rc)" test $rc -ne 0
  check "it says the port is in use" grep -q "cannot listen on 127.0.0.1:$PORT (in use" "$WORK/second.err"
  for i in $(seq 1 20); do curl -sf "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY" >/dev/null; done
  check "all 20 requests after it reached the first server's audit log" \
    test "$(rows 'select count(*) from audit')" = $((before + 20))
  check "the database is intact" test "$(rows 'pragma integrity_check')" = ok
  ;;

kill_usage)
  tiny_lm
  K1=$(key --name u1)
  K2=$(key --name u2 --tpm 100000)
  for round in 1 2 3; do
    serve --model kjv="$WORK/runs/lm" --workers 2
    node "$BENCH/serve_load.mjs" --base "$BASE" --keys "$K1,$K2" --model kjv --requests 400 --concurrency 16 \
      --max-tokens 8 >/dev/null 2>&1 &
    load=$!
    sleep $((1 + round))
    kill -9 $SERVER_PID
    wait $SERVER_PID 2>/dev/null
    SERVER_PID=""
    wait $load 2>/dev/null
    check "round $round: usage equals what the audit rows settled, for every key" /usr/bin/python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = 0
for name, used in db.execute("select name, used_tokens from keys"):
    settled = db.execute("select coalesce(sum(prompt_tokens + completion_tokens), 0), count(*) from audit "
                         "where key_name=? and status=200", (name,)).fetchone()
    rows += settled[1]
    assert used == settled[0], (name, used, settled)
assert rows > 0, "no request was answered before the kill"
print("answered rows", rows)
PY
    check "round $round: the database is intact" test "$(rows 'pragma integrity_check')" = ok
  done
  # batched completions and classify calls at once (their audit rows group-committed), then kill -9
  "$RETORT" train --set data.train_subset=500 --set data.test_subset=100 --set run.dir="$WORK/runs" --set run.name=mlp \
    --set model.hidden=16 --set train.epochs=1 >/dev/null 2>&1 || { echo "cannot train the classifier"; exit 1; }
  /usr/bin/python3 - "$WORK/pixels.json" <<'PY'
import gzip, json, sys
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
json.dump([list(raw[i * 784:(i + 1) * 784]) for i in range(64)], open(sys.argv[1], "w"))
PY
  last=$(rows "select coalesce(max(id), 0) from audit")
  serve --model kjv="$WORK/runs/lm" --model fashion="$WORK/runs/mlp" --workers 2
  node "$BENCH/serve_load.mjs" --base "$BASE" --keys "$K1" --model kjv --requests 100000 --seconds 8 \
    --concurrency 16 --max-tokens 8 >"$WORK/lm_load.json" 2>/dev/null &
  lm_load=$!
  node "$BENCH/serve_load.mjs" --base "$BASE" --keys "$K2" --endpoint classify --model fashion --pixels "$WORK/pixels.json" \
    --requests 1000000 --seconds 8 --concurrency 16 >"$WORK/classify_load.json" 2>/dev/null &
  classify_load=$!
  sleep 4
  kill -9 $SERVER_PID
  wait $SERVER_PID 2>/dev/null
  SERVER_PID=""
  wait $lm_load $classify_load 2>/dev/null
  check "kill -9 under batched load: every answered completion and classify call has its audit row" \
    /usr/bin/python3 - "$DB" "$last" "$WORK/lm_load.json" "$WORK/classify_load.json" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for endpoint, f in (("/v1/completions", sys.argv[3]), ("/v1/classify", sys.argv[4])):
    answered = json.load(open(f))["answered"]
    rows = db.execute("select count(*) from audit where endpoint=? and status=200 and id > ?",
                      (endpoint, int(sys.argv[2]))).fetchone()[0]
    print(endpoint, "answered", answered, "rows", rows)
    assert answered > 0, f"no {endpoint} request was answered before the kill"
    assert rows >= answered, (endpoint, answered, rows)
PY
  check "the database is intact after it" test "$(rows 'pragma integrity_check')" = ok
  ;;

*)
  echo "unknown case $CASE"
  exit 2
  ;;
esac

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
