#!/usr/bin/env bash
# End-to-end tests of retort's TAXII client (`retort intel pull`, serve's intel.pull) against
# retort's TAXII server and a fake partner, and of partners' indicators enforced on the request path.
# Usage: intel_pull_test.sh RETORT_BINARY CASE
#   partner_block  provider A (intel.taxii) blocks a harvesting key by `retort guard act` and publishes;
#                  provider B (intel.pull, partner A) refuses the same actor's FIRST request at B (another
#                  key, same address / user agent / account name) with 403 key_blocked (the partner decision and
#                  its TLP; the details, TLP:AMBER, withheld) and writes a "partner" action row naming A's indicator;
#                  a benign key elsewhere is served; a key an operator allowed at B is served from the
#                  actor's address; a key with the harvest's request shape earns the partner's shape rule
#                  once its prompt is read
#   resume         60 objects at A pulled 5 a page through a proxy that fails the 4th page, then hangs
#                  on a later one and the pull is killed -9: every pull resumes from the last stored page;
#                  in the end every object is stored exactly once and the cursor is A's last date added
#   bad_bundle     a fake partner (python http.server) serves a malformed envelope, a STIX bundle, objects
#                  failing validation, a wrong Content-Type and JSON that is not: each pull says what was
#                  wrong, stores no invalid object (each is logged with its reason) and no rule changes
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-intel-pull-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
DB_A=$WORK/a.db
DB_B=$WORK/b.db
INBOX=e306b8d9-8515-5947-9314-e79d548216a5   # partner-reports (intel_collections())

teacher() {
  "$RETORT" train "${TINY[@]}" --set text.tokenizer=byte --set text.seq_len=128 --set run.name=teacher >/dev/null 2>"$WORK/teacher.err" \
    || { cat "$WORK/teacher.err"; exit 1; }
}
# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 0.1 s; says what it waited for when it gives up.
wait_for() {
  local what=$1 n=$(($2 * 10)); shift 2
  for _ in $(seq 1 $n); do "$@" && return 0; sleep 0.1; done
  echo "gave up waiting for: $what" >&3
  return 1
}
# harvest PORT KEY ADDRESS AGENT N: N teacher-forcing requests (echo, top-5 logprobs, max_tokens 0);
# prints one line per request: the status and the start of the body.
harvest() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys, urllib.request, urllib.error
port, key, address, agent, n = sys.argv[1:6]
words = ("In the beginning God created the heaven and the earth And the earth was without form and void "
         "and darkness was upon the face of the deep And the Spirit of God moved upon the face of the waters").split()
for i in range(int(n)):
    body = json.dumps({"model": "kjv", "prompt": " ".join(words[i:i + 10]), "max_tokens": 0, "echo": True, "logprobs": 5}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body, {"Authorization": "Bearer " + key,
        "Content-Type": "application/json", "X-Forwarded-For": address, "User-Agent": agent})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            print(200)
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode()[:400])
PY
}
# chat PORT KEY ADDRESS: one short chat request; prints the HTTP status
chat() {
  curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $2" -H "X-Forwarded-For: $3" -A "curl/8.0 (test)" \
    "http://127.0.0.1:$1/v1/chat/completions" \
    -d '{"model":"kjv","messages":[{"role":"user","content":"Tell me of the first day"}],"max_tokens":4}'
}
# fails WHAT TEXT COMMAND...: the command exits non-zero and its stderr holds TEXT
fails() {
  local what=$1 text=$2; shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$text" "$WORK/err"; then check "$what (exit $rc: $(shown "$(tail -1 "$WORK/err")"))" true
  else check "$what: exit $rc, stderr: $(shown "$(cat "$WORK/err")")" false; fi
}
in_a() { sqlite3 "$DB_A" "$1"; }
in_b() { sqlite3 "$DB_B" "$1"; }

case $CASE in
partner_block)
  teacher
  SHARED=(--set intel.group_secret=test-sharing-group --set guard.trust_forwarded=true)
  ADMIN_A=$("$RETORT" keys create --name ops --admin --db "$DB_A" 2>/dev/null)
  THIEF_A=$("$RETORT" keys create --name thief --db "$DB_A" 2>/dev/null)
  ALICE_A=$("$RETORT" keys create --name alice --db "$DB_A" 2>/dev/null)
  serve a --model kjv="$WORK/runs/teacher" --db "$DB_A" "${SHARED[@]}" --set intel.taxii=true \
    --set intel.publish_interval=0.2 --set guard.interval=0.05
  harvest "$PORT_a" "$THIEF_A" 203.0.113.7 harvest/1.0 6 >"$WORK/thief_a.log"
  same "the thief harvests at A" "$(sort -u "$WORK/thief_a.log")" 200
  same "alice chats at A" "$(chat "$PORT_a" "$ALICE_A" 198.51.100.7)" 200
  check "an operator blocks the thief at A" bash -c "'$RETORT' guard act --db '$DB_A' --key thief --action block \
    --reason 'harvest confirmed' >/dev/null 2>&1"
  wait_for "A publishes an indicator of the thief's address" 30 bash -c \
    "sqlite3 '$DB_A' \"select count(*) from intel_objects where type='indicator' and object like '%203.0.113.7%'\" | grep -qv '^0$'"
  check "A publishes no indicator of alice's address" \
    test "$(in_a "select count(*) from intel_objects where object like '%198.51.100.7%'")" = 0
  # B: another provider, where the same actor holds another key under the same name
  THIEF_B=$("$RETORT" keys create --name thief --db "$DB_B" 2>/dev/null)
  BOB_B=$("$RETORT" keys create --name bob --db "$DB_B" 2>/dev/null)
  CAROL_B=$("$RETORT" keys create --name carol --db "$DB_B" 2>/dev/null)
  DAVE_B=$("$RETORT" keys create --name dave --db "$DB_B" 2>/dev/null)
  "$RETORT" guard act --db "$DB_B" --key carol --action allow --reason "a known customer behind the same NAT" >/dev/null 2>&1
  check "partner add at B (the token from an environment variable, never printed)" bash -c \
    "RETORT_INTEL_TOKEN='$ADMIN_A' '$RETORT' intel partner add --db '$DB_B' --name labA \
      --url http://127.0.0.1:$PORT_a/taxii2/api1/ --collection distillation-campaigns >'$WORK/partner.out' \
      && grep -q 'token from \$RETORT_INTEL_TOKEN: set' '$WORK/partner.out' && ! grep -qF '$ADMIN_A' '$WORK/partner.out'"
  check "partner list shows labA without its token" bash -c \
    "'$RETORT' intel partner list --db '$DB_B' | grep -q 'labA.*token set' && ! '$RETORT' intel partner list --db '$DB_B' | grep -qF '$ADMIN_A'"
  serve b --model kjv="$WORK/runs/teacher" --db "$DB_B" "${SHARED[@]}" --set intel.pull=true --set intel.pull_interval=0.3
  wait_for "B pulls A and writes rules" 30 grep -q "intel: pulled from labA: .* [1-9][0-9]* rules written" "$WORK/serve.b.err"
  check "B holds an acting rule for the thief's address from labA" \
    test "$(in_b "select count(*) from intel_rules where kind='address' and value='203.0.113.7' and action='block' and source='labA'")" = 1
  check "B stored A's objects in its inbox with source labA" \
    test "$(in_b "select count(*) from intel_objects where collection='$INBOX' and source='labA'")" -gt 3
  harvest "$PORT_b" "$THIEF_B" 203.0.113.7 harvest/1.0 2 >"$WORK/thief_b.log"
  check "the thief's FIRST request at B is refused: 403 key_blocked" bash -c "head -1 '$WORK/thief_b.log' | grep -q '^403.*key_blocked'"
  check "... naming the partner decision and the TLP, the details withheld from the client (A shares TLP:AMBER)" \
    bash -c "head -1 '$WORK/thief_b.log' | grep -q 'partner decision #[0-9]*: .*TLP:AMBER; the details are withheld' \
      && ! head -1 '$WORK/thief_b.log' | grep -q 'labA\|203.0.113.7'"
  check "... and its second too" bash -c "sed -n 2p '$WORK/thief_b.log' | grep -q '^403.*key_blocked'"
  check "B's audit row of that first request says 403" \
    test "$(in_b "select status from audit where key_name='thief' order by id limit 1")" = 403
  check "B's action row for the thief (the operator's record): block, source partner, naming labA's indicator, confidence, TLP, what matched" \
    test "$(in_b "select count(*) from actions where key_name='thief' and action='block' and source='partner' \
      and reason like 'partner labA''s indicator indicator--%' and reason like '%confidence 100%' and reason like '%TLP:amber%' \
      and reason like '%matched the %'")" = 1
  same "a benign key at B from another address is served" "$(chat "$PORT_b" "$BOB_B" 198.51.100.20)" 200
  same "a key the operator allowed is served from the thief's address" "$(chat "$PORT_b" "$CAROL_B" 203.0.113.7)" 200
  check "... and no partner row overrode the operator's allow" \
    test "$(in_b "select count(*) from actions where key_name='carol' and source='partner'")" = 0
  # the request shape is known only once the body is read: dave, elsewhere, asks in the harvest's shape
  if [ "$(in_b "select count(*) from intel_rules where kind='shape' and action!='none'")" -ge 1 ]; then
    harvest "$PORT_b" "$DAVE_B" 192.0.2.44 other/2.0 1 >"$WORK/dave.log"
    same "dave, from elsewhere in the harvest's shape, is still answered (intel.act.shape = observe)" "$(head -1 "$WORK/dave.log")" 200
    check "... and B observes him on the partner's shape rule" \
      test "$(in_b "select count(*) from actions where key_name='dave' and action='observe' and source='partner' and reason like '%request shape%'")" = 1
  else
    check "A published a request-shape indicator" false
  fi
  check "bob was never acted on" test "$(in_b "select count(*) from actions where key_name='bob'")" = 0
  check "B logged what it acted on" test "$(in_b "select count(*) from intel_events where direction='acted' and peer='labA'")" -ge 1
  check "the partner's token is in no log" bash -c "! grep -qF '$ADMIN_A' '$WORK'/*.err '$WORK'/*.log"
  ;;

resume)
  teacher
  ADMIN_A=$("$RETORT" keys create --name ops --admin --db "$DB_A" 2>/dev/null)
  "$RETORT" keys create --name someone --db "$DB_B" >/dev/null 2>&1
  serve a --model kjv="$WORK/runs/teacher" --db "$DB_A" --set intel.taxii=true
  # 60 indicators into A's inbox (admins may write it), one envelope
  /usr/bin/python3 - "$PORT_a" "$ADMIN_A" >"$WORK/post.out" <<'PY'
import json, sys, uuid, urllib.request
port, key = sys.argv[1:3]
objs = [{"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
         "created": "2026-03-01T10:00:00.000Z", "modified": "2026-03-01T10:00:00.000Z",
         "pattern": f"[ipv4-addr:value = '198.18.0.{i}']", "pattern_type": "stix",
         "valid_from": "2026-03-01T10:00:00.000Z", "confidence": 80} for i in range(60)]
t = "application/taxii+json;version=2.1"
req = urllib.request.Request(f"http://127.0.0.1:{port}/taxii2/api1/collections/e306b8d9-8515-5947-9314-e79d548216a5/objects/",
    json.dumps({"objects": objs}).encode(), {"Authorization": "Bearer " + key, "Content-Type": t, "Accept": t}, method="POST")
with urllib.request.urlopen(req, timeout=30) as r:
    print(json.loads(r.read()).get("success_count"))
PY
  same "A took 60 objects into its inbox" "$(cat "$WORK/post.out")" 60
  # the proxy between B and A: passes, fails the Nth objects page, or hangs on it (mode file)
  cat >"$WORK/proxy.py" <<'PY'
import http.server, os, sys, time, urllib.request, urllib.error
upstream, mode_file, port_file = sys.argv[1:4]
seen = {"mode": None, "pages": 0}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        mode = open(mode_file).read().split()
        if mode != seen["mode"]: seen.update(mode=mode, pages=0)
        if "/objects/" in self.path:
            seen["pages"] += 1
            if mode[0] != "pass" and seen["pages"] == int(mode[1]):
                if mode[0] == "hang": time.sleep(600)
                self.send_response(500); self.send_header("Content-Type", "text/plain"); self.end_headers()
                self.wfile.write(b"upstream trouble"); return
        req = urllib.request.Request(upstream + self.path, headers={k: v for k, v in self.headers.items() if k in ("Accept", "Authorization")})
        try: r = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e: r = e
        body = r.read()
        self.send_response(r.status if hasattr(r, "status") else r.code)
        for k, v in r.headers.items():
            if k.lower() in ("content-type",) or k.lower().startswith("x-taxii"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_address[1]))
s.serve_forever()
PY
  echo "fail 4" >"$WORK/proxy.mode"
  /usr/bin/python3 "$WORK/proxy.py" "http://127.0.0.1:$PORT_a" "$WORK/proxy.mode" "$WORK/proxy.port" &
  PIDS+=($!)
  wait_for "the proxy" 10 test -s "$WORK/proxy.port"
  PROXY=http://127.0.0.1:$(cat "$WORK/proxy.port")/taxii2/api1/
  PULL=("$RETORT" intel pull --db "$DB_B" --from "$PROXY" --collection partner-reports --name labA --page-size 5 --json)
  export RETORT_INTEL_TOKEN=$ADMIN_A
  "${PULL[@]}" >"$WORK/pull1.out" 2>"$WORK/pull1.err"
  rc=$?
  check "the pull whose 4th page fails exits non-zero (got $rc), naming the partner and the status" \
    bash -c "[ $rc -ne 0 ] && grep -q 'partner labA: GET .*answered HTTP 500' '$WORK/pull1.err'"
  same "... having stored the 3 pages before it" "$(in_b "select count(*) from intel_objects where source='labA'")" 15
  c1=$(in_b "select added_after from intel_cursors")
  same "... and moved the cursor to the 3rd page's last date added" "$c1" \
    "$(in_a "select date_added from intel_objects where collection='$INBOX' order by seq limit 1 offset 14")"
  same "... and made their 15 rules" "$(in_b "select count(*) from intel_rules where action='block'")" 15
  echo "hang 5" >"$WORK/proxy.mode"
  "${PULL[@]}" >"$WORK/pull2.out" 2>"$WORK/pull2.err" &
  pull=$!
  wait_for "the second pull to store 4 more pages and hang on the 5th" 60 \
    bash -c "[ \"\$(sqlite3 '$DB_B' \"select count(*) from intel_objects where source='labA'\")\" = 35 ]"
  sleep 0.3  # the hung page cannot store anything; the wait only lets a wrong count show
  kill -9 $pull
  wait $pull 2>/dev/null
  same "killed -9 while hanging: 35 objects stored" "$(in_b "select count(*) from intel_objects where source='labA'")" 35
  same "... and the cursor at the 7th page's last date added" "$(in_b "select added_after from intel_cursors")" \
    "$(in_a "select date_added from intel_objects where collection='$INBOX' order by seq limit 1 offset 34")"
  echo "pass" >"$WORK/proxy.mode"
  check "the third pull finishes" "${PULL[@]}" >"$WORK/pull3.out" 2>"$WORK/pull3.err"
  same "the resumed pull received only what it had not stored (25 objects)" "$(json "$WORK/pull3.out" 'd["received"]')" 25
  same "... stored them all" "$(json "$WORK/pull3.out" 'd["stored"]')" 25
  same "... none twice" "$(json "$WORK/pull3.out" 'd["duplicates"]')" 0
  same "every one of A's 60 objects is at B exactly once" \
    "$(in_b "select count(*) || ' ' || count(distinct id) from intel_objects where source='labA'")" "60 60"
  same "... the same ids as A's" "$(in_b "select group_concat(id) from (select id from intel_objects where source='labA' order by id)")" \
    "$(in_a "select group_concat(id) from (select id from intel_objects where collection='$INBOX' order by id)")"
  same "the cursor is A's last date added" "$(in_b "select added_after from intel_cursors")" \
    "$(in_a "select max(date_added) from intel_objects where collection='$INBOX'")"
  same "60 rules, one per indicator" "$(in_b "select count(*) || ' ' || count(distinct indicator) from intel_rules")" "60 60"
  "${PULL[@]}" >"$WORK/pull4.out" 2>"$WORK/pull4.err"
  same "a pull with nothing new receives nothing" "$(json "$WORK/pull4.out" 'd["received"]')" 0
  # push: what A published (its identity, TLP marking, extension-definition, ...) into a TAXII inbox,
  # here A's own, two objects an envelope; every status resource polled to the end
  published=$(in_a "select count(distinct id) from intel_objects where collection!='$INBOX'")
  inbox=$(in_a "select count(*) from intel_objects where collection='$INBOX'")
  check "push sends what A published ($published objects)" bash -c "'$RETORT' intel push --db '$DB_A' --batch 2 \
    --to http://127.0.0.1:$PORT_a/taxii2/api1/ --collection 'Partner reports' >'$WORK/push.out' 2>'$WORK/push.err'"
  check "... in envelopes of 2, all accepted" grep -q "pushed $published objects in $(((published + 1) / 2)) envelopes .*: $published accepted, 0 refused, 0 pending" "$WORK/push.out"
  same "... and the inbox holds them" "$(in_a "select count(*) from intel_objects where collection='$INBOX'")" $((inbox + published))
  fails "push without a token is refused, naming the partner and the status" "answered HTTP 401" \
    env -u RETORT_INTEL_TOKEN "$RETORT" intel push --db "$DB_A" --to "http://127.0.0.1:$PORT_a/taxii2/api1/" --collection partner-reports
  ;;

bad_bundle)
  "$RETORT" keys create --name someone --db "$DB_B" >/dev/null 2>&1
  cat >"$WORK/fake.py" <<'PY'
import http.server, json, sys
port_file = sys.argv[1]
T = "application/taxii+json;version=2.1"
def ind(i, **kw):
    o = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--00000000-0000-4000-8000-{i:012d}",
         "created": "2026-03-01T10:00:00.000Z", "modified": "2026-03-01T10:00:00.000Z",
         "pattern": f"[ipv4-addr:value = '192.0.2.{i}']", "pattern_type": "stix",
         "valid_from": "2026-03-01T10:00:00.000Z", "confidence": 90}
    o.update(kw)
    return {k: v for k, v in o.items() if v is not None}
identity = {"type": "identity", "spec_version": "2.1", "id": "identity--00000000-0000-4000-8000-000000000099",
            "created": "2026-03-01T10:00:00.000Z", "modified": "2026-03-01T10:00:00.000Z", "name": "fake", "identity_class": "organization"}
pages = {
    "good": (T, {"objects": [ind(1)], "more": False}),
    "bad-envelope": (T, {"objects": {"not": "a list"}, "more": "perhaps"}),
    "bundle": (T, {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": [ind(2)]}),
    "bad-objects": (T, {"objects": [ind(3, id=None), ind(4, spec_version="2.0"), ind(5, confidence=500),
                                    ind(6, created="yesterday"), ind(7, id="indicator--not-a-uuid"), "just a string", identity]}),
    "wrong-type": ("text/html", {"objects": [ind(8)]}),
    "not-json": (T, None),
}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, ctype, body, headers=()):
        self.send_response(200); self.send_header("Content-Type", ctype)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/taxii2/api1/collections/":
            cs = [{"id": f"{name}-0000-4000-8000-000000000000", "title": name, "can_read": True, "can_write": False} for name in pages]
            return self.send(T, json.dumps({"collections": cs}).encode())
        for name, (ctype, env) in pages.items():
            if p == f"/taxii2/api1/collections/{name}-0000-4000-8000-000000000000/objects/":
                headers = [("X-TAXII-Date-Added-First", "2026-03-01T10:00:01.000Z"), ("X-TAXII-Date-Added-Last", "2026-03-01T10:00:01.000Z")]
                return self.send(ctype, b"{\"objects\": [{{{" if env is None else json.dumps(env).encode(), headers)
        self.send_response(404); self.end_headers()
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(port_file, "w").write(str(s.server_address[1]))
s.serve_forever()
PY
  /usr/bin/python3 "$WORK/fake.py" "$WORK/fake.port" &
  PIDS+=($!)
  wait_for "the fake partner" 10 test -s "$WORK/fake.port"
  FAKE=http://127.0.0.1:$(cat "$WORK/fake.port")/taxii2/api1/
  pull() { "$RETORT" intel pull --db "$DB_B" --from "$FAKE" --name fake --collection "$1" --json; }
  check "a good page first: one rule" bash -c "'$RETORT' intel pull --db '$DB_B' --from '$FAKE' --name fake --collection good --json \
    >'$WORK/good.out' 2>'$WORK/good.err'"
  same "... the rule" "$(in_b "select kind || ' ' || value || ' ' || action from intel_rules")" "address 192.0.2.1 block"
  # the rules, the cursors and the rules version (sqlite_sequence lines of other tables left out)
  dump() { sqlite3 "$DB_B" ".dump intel_rules" ".dump intel_cursors" "select value from intel_meta where key='rules_version'" \
    | grep -v "sqlite_sequence.*'intel_\(objects\|events\|status\)'"; }
  dump >"$WORK/before.sql"
  objects_before=$(in_b "select count(*) from intel_objects")
  fails "a malformed envelope is refused, naming the partner and what is wrong" "partner fake: GET" pull bad-envelope
  check "... saying 'more' is not a boolean" grep -q "is not a TAXII envelope: 'more' is not true or false" "$WORK/err"
  fails "a STIX bundle where an envelope belongs is refused" "a STIX bundle or object, not a TAXII envelope" pull bundle
  fails "a wrong Content-Type is refused" "answered Content-Type 'text/html'" pull wrong-type
  fails "JSON that is not is refused" "the answer is not JSON" pull not-json
  fails "an unknown collection is named, with those that exist" "no collection 'nope'" pull nope
  same "none of them stored anything" "$(in_b "select count(*) from intel_objects")" "$objects_before"
  pull bad-objects >"$WORK/bad.out" 2>"$WORK/bad.err"
  check "an envelope of invalid objects is pulled (exit 0)" test $? = 0
  same "... 6 rejected" "$(json "$WORK/bad.out" 'd["rejected"]')" 6
  same "... only the valid identity stored" "$(json "$WORK/bad.out" 'd["stored"]')" 1
  same "... and in the store no object of it but the identity" \
    "$(in_b "select group_concat(type) from intel_objects where id not like '%000000000001'")" identity
  check "... each rejection on stderr with its reason" bash -c "[ \$(grep -c 'rejected:' '$WORK/bad.err') = 6 ] \
    && grep -q 'spec_version must be' '$WORK/bad.err' && grep -q 'confidence 500' '$WORK/bad.err' \
    && grep -q 'no id' '$WORK/bad.err' && grep -q 'not a JSON object' '$WORK/bad.err'"
  same "... and in the intel log" "$(in_b "select count(*) from intel_events where direction='rejected' and peer='fake' and detail!=''")" 6
  dump >"$WORK/after.sql"
  # the cursors of bad-objects may move (its page was a valid envelope); the rules may not
  grep -v 'intel_cursors' "$WORK/before.sql" >"$WORK/before.rules"
  grep -v 'intel_cursors' "$WORK/after.sql" >"$WORK/after.rules"
  same_files "the rule table and the rules version are unchanged (sqlite3 .dump)" "$WORK/before.rules" "$WORK/after.rules"
  same "no cursor moved for the refused answers (only good's and bad-objects')" "$(in_b "select count(*) from intel_cursors")" 2
  ;;

*)
  echo "unknown case $CASE (partner_block | resume | bad_bundle)"
  exit 2
  ;;
esac

[ $failures -eq 0 ] && echo "all intel_pull $CASE checks passed" || echo "$failures failed"
exit $((failures > 0))
