# Helpers shared by the e2e scripts (sourced): checks, JSON fields, Ctrl-C + resume.
# The sourcing script sets RETORT and WORK (before sourcing); results go to fd 3.
failures=0
exec 3>&1

# The tiny language-model settings every LM test starts from: seconds, not minutes.
TINY=(--set data.kind=text --set text.train_tokens=24000 --set text.val_tokens=3000 --set text.seq_len=32
      --set data.batch_size=16 --set run.dir=$WORK/runs
      --set model.name=gpt --set model.d_model=32 --set model.layers=1 --set model.heads=2
      --set train.optimizer=adamw --set train.lr=0.003 --set train.epochs=1 --set train.warmup_steps=5)
check() {  # check "what" command...   (the command's own redirections stay its own)
  local what=$1; shift
  if "$@"; then echo "ok: $what" >&3; else echo "FAIL: $what" >&3; failures=$((failures + 1)); fi
}
# Comparisons that two failures cannot pass: two failed commands print the same nothing, and two
# missing files read as the same empty string.
# same WHAT A B: A equals B, and neither is empty.
same() {
  local what=$1 a=$2 b=$3
  if [ -z "$a" ] || [ -z "$b" ]; then check "$what: empty side ('$(shown "$a")' vs '$(shown "$b")')" false
  elif [ "$a" != "$b" ]; then check "$what ('$(shown "$a")' vs '$(shown "$b")')" false
  else check "$what" true; fi
}
# differ WHAT A B: A differs from B, and neither is empty.
differ() {
  local what=$1 a=$2 b=$3
  if [ -z "$a" ] || [ -z "$b" ]; then check "$what: empty side ('$(shown "$a")' vs '$(shown "$b")')" false
  else check "$what" test "$a" != "$b"; fi
}
# same_files WHAT FILE1 FILE2: two distinct, non-empty regular files, byte for byte equal.
same_files() {
  local what=$1 a=$2 b=$3
  if ! [ -f "$a" ] || ! [ -s "$a" ] || ! [ -f "$b" ] || ! [ -s "$b" ]; then
    check "$what: '$a' or '$b' is missing or empty" false
  elif [ "$a" -ef "$b" ]; then check "$what: '$a' is '$b' itself" false
  else check "$what" cmp -s "$a" "$b"; fi
}
shown() { local v=${1//$'\n'/\\n}; echo "${v:0:120}"; }  # one line of at most 120 characters
# page_ok WHAT FILE MIN_PLOTS TEXT: headless Chromium loads FILE (a report page); the DOM it built
# holds at least MIN_PLOTS inline SVG plots and the text TEXT.
page_ok() {
  local what=$1 file=$2 plots=$3 text=$4 dom n
  dom=$(timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$file" 2>/dev/null)
  n=$(grep -o '<svg' <<<"$dom" | wc -l)
  if [ "$n" -ge "$plots" ] && grep -qF -- "$text" <<<"$dom"; then check "$what (Chromium drew $n plots)" true
  else check "$what: Chromium's DOM has $n plots (want >= $plots) or lacks '$text'" false; fi
}

json() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }
below() { /usr/bin/python3 -c "import sys; sys.exit(0 if float('$1') < float('$2') else 1)"; }  # below A B: A < B

# interrupt_and_resume KEY ARGS...: trains `straight` and `cut` with ARGS, sends Ctrl-C to `cut`
# after its first metrics line, resumes it, and checks that run.json's KEY equals the
# uninterrupted run's exactly.
interrupt_and_resume() {
  local key=$1; shift
  "$RETORT" train "$@" --set run.name=straight >"$WORK/o1" 2>"$WORK/e1"
  "$RETORT" train "$@" --set run.name=cut >"$WORK/o2" 2>"$WORK/e2" &
  local pid=$!
  for _ in $(seq 1 400); do
    grep -q '"type":"step"' "$WORK/runs/cut/metrics.jsonl" 2>/dev/null && break
    sleep 0.05
  done
  kill -INT $pid
  wait $pid
  local rc=$?
  check "Ctrl-C exits 130 (got $rc)" test $rc -eq 130
  check "Ctrl-C leaves a checkpoint" test -f "$WORK/runs/cut/checkpoints/last.pt"
  check "no temporary files left" bash -c "! ls -a '$WORK/runs/cut/checkpoints' | grep -q tmp"
  check "resume finishes" "$RETORT" train "$@" --set run.name=cut --resume >"$WORK/o3" 2>"$WORK/e3"
  check "resume said where it resumed" grep -q "resuming from" "$WORK/e3"
  local a b
  a=$(json "$WORK/runs/straight/run.json" "d[\"$key\"]")
  b=$(json "$WORK/runs/cut/run.json" "d[\"$key\"]")
  same "resumed $key $b equals uninterrupted $a" "$a" "$b"
}

# serve NAME ARGS...: `retort serve` on a free port in the background; sets PORT_<NAME> (the port)
# and adds its pid to PIDS (the sourcing script kills them on exit); its stderr in $WORK/serve.NAME.err.
serve() {
  local name=$1; shift
  "$RETORT" serve --port 0 "$@" >"$WORK/port.$name" 2>"$WORK/serve.$name.err" &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    [ -s "$WORK/port.$name" ] && break
    sleep 0.05
  done
  local port
  port=$(head -1 "$WORK/port.$name")
  [ -n "$port" ] || { echo "server $name did not start:"; cat "$WORK/serve.$name.err"; exit 1; }
  printf -v "PORT_$name" '%s' "$port"
}

# The guard tests' clients (guard_test.sh, dashboard_test.sh); the sourcing script sets DB for in_db.
# harvest PORT KEY NAME ADDRESS [AGENT]: teacher-forcing requests (echo, top-5 logprobs, max_tokens 0) over
# 10-word windows of Genesis 70 words apart (each in a new passage), one at a time, until 15
# refusals; one line per answer in NAME.log.
harvest() {
  bible Gen1:1-Gen50:26 2>/dev/null | /usr/bin/python3 -c '
import json, sys, urllib.request, urllib.error
port, key, name, address = sys.argv[1:5]
agent = sys.argv[5] if len(sys.argv) > 5 else "harvest/0.1"
words = sys.stdin.read().split()
log = open(name + ".log", "w", buffering=1)
refused = 0
for i in range(0, len(words) - 10, 70):
    body = json.dumps({"model": "kjv", "prompt": " ".join(words[i:i + 10]), "max_tokens": 0, "echo": True, "logprobs": 5}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body, {"Authorization": "Bearer " + key,
        "Content-Type": "application/json", "X-Forwarded-For": address, "User-Agent": agent})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            log.write("200\n")
    except urllib.error.HTTPError as e:
        log.write(f"{e.code} {e.read().decode()[:300]}\n")
        refused += 1
        if refused >= 15:
            break
    except Exception:
        break' "$@"
}
# chat PORT KEY ADDRESS N: N short chat requests, one every ~0.3 s; prints the HTTP statuses
chat() {
  for i in $(seq 1 "$4"); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $2" -H "X-Forwarded-For: $3" \
      "http://127.0.0.1:$1/v1/chat/completions" \
      -d "{\"model\":\"kjv\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me of day $i\"}],\"max_tokens\":8}"
    sleep 0.3
  done
}
# in_db SQL: the first value of a query on the guard database
in_db() { sqlite3 "$DB" "$1"; }

# The OASIS conformance tools (STIX schemas + validator, taxii2-client) live in ../shared/conformance
# beside the checkout. A clone made elsewhere (CI's clean clone in /tmp) finds them beside the
# repository it was cloned from; $RETORT_CONFORMANCE overrides both. Prints the folder, or fails
# the test naming where it looked.
conformance_dir() {
  local here origin c
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  origin=$(git -C "$here" config --get remote.origin.url 2>/dev/null || true)
  for c in "${RETORT_CONFORMANCE:-}" "$here/../shared/conformance" "${origin:+$origin/../shared/conformance}"; do
    if [ -n "$c" ] && [ -f "$c/validate-stix.mjs" ]; then (cd "$c" && pwd); return 0; fi
  done
  echo "no OASIS conformance tools: set RETORT_CONFORMANCE, or keep shared/conformance beside $here${origin:+ or $origin}" >&2
  return 1
}
