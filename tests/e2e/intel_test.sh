#!/usr/bin/env bash
# End-to-end tests of `retort intel export | grant` (STIX 2.1 bundles of what the guard found).
# Usage: intel_test.sh RETORT_BINARY CASE
#   export     a served tiny model; a "thief" key harvests from its own address and user agent (and a
#              few requests from the office address a benign key also uses), the benign key chats; an
#              operator blocks the thief; `retort intel export` writes a bundle the OASIS STIX 2.1
#              schemas accept (../shared/conformance/validate-stix.mjs) with the identity, the TLP
#              marking, the ATLAS attack-pattern, the thief's address / user agent / account indicators
#              and none of the benign key's; more thief traffic and a second export keep every id with
#              a later `modified` where something changed; grant gives a key read rights
#   bad_input  a missing database, a bad --since, an unknown collection or key in grant, an --out in a
#              missing folder: one clear line each and a non-zero exit
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-intel-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
DB=$WORK/serve.db
VALIDATE=$(conformance_dir)/validate-stix.mjs || exit 1

# fails WHAT TEXT COMMAND...: the command exits non-zero and its stderr holds TEXT
fails() {
  local what=$1 text=$2; shift 2
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$text" "$WORK/err"; then check "$what (exit $rc: $(shown "$(tail -1 "$WORK/err")"))" true
  else check "$what: exit $rc, stderr: $(shown "$(cat "$WORK/err")")" false; fi
}
# harvest PORT KEY ADDRESS N: N teacher-forcing requests (echo, top-5 logprobs, max_tokens 0) as "harvest/0.1"
harvest() {
  for i in $(seq 1 "$4"); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $2" -H "X-Forwarded-For: $3" -A "harvest/0.1" \
      "http://127.0.0.1:$1/v1/completions" \
      -d "{\"model\":\"kjv\",\"prompt\":\"In the beginning window $i of the text\",\"max_tokens\":0,\"echo\":true,\"logprobs\":5}"
  done
}
# chat PORT KEY ADDRESS N: N short chat requests as "office-client/2.0"
chat() {
  for i in $(seq 1 "$4"); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $2" -H "X-Forwarded-For: $3" -A "office-client/2.0" \
      "http://127.0.0.1:$1/v1/chat/completions" \
      -d "{\"model\":\"kjv\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me of day $i\"}],\"max_tokens\":4}"
  done
}
# has BUNDLE PYTHON_EXPR: the expression over `objs` (the bundle's objects) is true
has() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
objs = json.load(open(sys.argv[1]))["objects"]
by_type = lambda t: [o for o in objs if o["type"] == t]
patterns = {o["pattern"] for o in by_type("indicator")}
code = sys.argv[2].strip()
try:
    ok = eval(code)
except SyntaxError:  # statements, then the expression on the last line
    *head, last = code.splitlines()
    exec("\n".join(head))
    ok = eval(last)
sys.exit(0 if ok else 1)
PY
}

case $CASE in
export)
  "$RETORT" train "${TINY[@]}" --set text.tokenizer=byte --set text.seq_len=128 --set run.name=teacher >/dev/null 2>"$WORK/teacher.err" \
    || { cat "$WORK/teacher.err"; exit 1; }
  THIEF=$("$RETORT" keys create --name thief --db "$DB" 2>/dev/null)
  BENIGN=$("$RETORT" keys create --name benign --db "$DB" 2>/dev/null)
  "$RETORT" keys create --name lab-b --db "$DB" >/dev/null 2>&1
  serve one --model kjv="$WORK/runs/teacher" --db "$DB" --set guard.trust_forwarded=true
  harvest "$PORT_one" "$THIEF" 203.0.113.9 8 >"$WORK/thief1"
  harvest "$PORT_one" "$THIEF" 198.51.100.7 2 >>"$WORK/thief1"    # from the office too
  chat "$PORT_one" "$BENIGN" 198.51.100.7 6 >"$WORK/benign1"
  check "the thief's 10 requests were answered ($(sort "$WORK/thief1" | uniq -c | xargs))" test "$(grep -c '^200$' "$WORK/thief1")" = 10
  check "the benign key's 6 requests were answered" test "$(grep -c '^200$' "$WORK/benign1")" = 6
  check "the audit rows hold the forwarded addresses" test \
    "$(sqlite3 "$DB" "select count(distinct client) from audit where key_name='thief'")" = 2
  check "an operator blocks the thief" bash -c "'$RETORT' guard act --db '$DB' --key thief --action block --reason 'harvests logprobs' | grep -q block"
  check "intel export writes a bundle" "$RETORT" intel export --db "$DB" --set intel.provider=lab-a --since 24h \
    --out "$WORK/bundle.json" >"$WORK/export.out" 2>"$WORK/export.err"
  check "intel export prints the bundle's path" grep -qF "$WORK/bundle.json" "$WORK/export.out"
  check "the OASIS STIX 2.1 schemas accept the bundle ($(shown "$(tail -1 "$WORK/validate.out" 2>/dev/null)"))" \
    bash -c "node '$VALIDATE' '$WORK/bundle.json' >'$WORK/validate.out' 2>&1"
  [ -s "$WORK/validate.out" ] && grep -i "invalid\|error" "$WORK/validate.out" | head -5
  B=$WORK/bundle.json
  check "a bundle with a bundle-- id" bash -c "grep -q '\"id\": \"bundle--' '$B'"
  check "the provider's identity lab-a" has "$B" 'any(o["name"] == "lab-a" for o in by_type("identity"))'
  check "the TLP:AMBER marking of the spec" has "$B" \
    'any(o["id"] == "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" for o in by_type("marking-definition"))'
  check "every object but the marking is marked amber and made by lab-a" has "$B" '
all(o.get("object_marking_refs") == ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"] and
    o.get("created_by_ref") == by_type("identity")[0]["id"] for o in objs if o["type"] != "marking-definition")'
  check "the ATLAS attack-pattern AML.T0024.002" has "$B" \
    'any(r.get("external_id") == "AML.T0024.002" and r.get("source_name") == "mitre-atlas" for o in by_type("attack-pattern") for r in o["external_references"])'
  check "the extension-definition the fingerprints use" has "$B" 'len(by_type("extension-definition")) == 1'
  check "one campaign, one intrusion-set" has "$B" 'len(by_type("campaign")) == 1 and len(by_type("intrusion-set")) == 1'
  check "an indicator of the thief's address" has "$B" "\"[ipv4-addr:value = '203.0.113.9']\" in patterns"
  check "an indicator of the thief's user agent" has "$B" "any(\"'harvest/0.1'\" in p for p in patterns)"
  check "an indicator of the thief's account (a pseudonym)" has "$B" \
    'any(p.startswith("[user-account:user_id = ") and "thief" not in p for p in patterns)'
  check "no indicator of the office address the benign key used" has "$B" "not any('198.51.100.7' in p for p in patterns)"
  check "nothing of the benign key's" has "$B" "not any('office-client' in json.dumps(o) or 'benign' in json.dumps(o) for o in objs)"
  check "no key name and no prompt in clear" has "$B" "not any('thief' in json.dumps(o) or 'In the beginning' in json.dumps(o) for o in objs)"
  check "indicators indicate the campaign; sightings count the thief's 8 requests from its address" has "$B" '
c = by_type("campaign")[0]["id"]
ind = [o for o in by_type("indicator") if "203.0.113.9" in o["pattern"]][0]
rel = any(r["relationship_type"] == "indicates" and r["source_ref"] == ind["id"] and r["target_ref"] == c for r in by_type("relationship"))
rel and any(s["sighting_of_ref"] == ind["id"] and s["count"] == 8 for s in by_type("sighting"))'
  # more of the thief, a second export: the same ids, later versions where something changed
  harvest "$PORT_one" "$THIEF" 203.0.113.9 3 >"$WORK/thief2"
  sleep 0.01
  check "a second export" "$RETORT" intel export --db "$DB" --set intel.provider=lab-a --out "$WORK/bundle2.json" \
    >/dev/null 2>"$WORK/export2.err"
  check "the second bundle validates too" node "$VALIDATE" "$WORK/bundle2.json"
  /usr/bin/python3 - "$WORK/bundle.json" "$WORK/bundle2.json" >"$WORK/compare.out" <<'PY'
import json, sys
a = {o["id"]: o for o in json.load(open(sys.argv[1]))["objects"]}
b = {o["id"]: o for o in json.load(open(sys.argv[2]))["objects"]}
ind = [o for o in a.values() if o["type"] == "indicator" and "203.0.113.9" in o["pattern"]][0]
s1 = [o for o in a.values() if o["type"] == "sighting" and o["sighting_of_ref"] == ind["id"]][0]
s2 = b[s1["id"]]
print("same_ids", set(a) == set(b))
print("sighting_count", s1["count"], s2["count"])
print("later_modified", s2["modified"] > s1["modified"] and s2["created"] == s1["created"])
print("indicator_unchanged", b[ind["id"]] == ind)
PY
  check "the second bundle has the same ids" grep -q "same_ids True" "$WORK/compare.out"
  check "the sighting counts 8 then 11 ($(grep sighting_count "$WORK/compare.out"))" grep -q "sighting_count 8 11" "$WORK/compare.out"
  check "the sighting's new version: same created, later modified" grep -q "later_modified True" "$WORK/compare.out"
  check "the unchanged indicator keeps its version" grep -q "indicator_unchanged True" "$WORK/compare.out"
  check "export --since 0 of the same database adds no version" bash -c "'$RETORT' intel export --db '$DB' --set intel.provider=lab-a \
    --out '$WORK/bundle3.json' 2>&1 >/dev/null | grep -q '^intel export: 0 new versions'"
  check "intel grant gives lab-b read rights" bash -c "'$RETORT' intel grant --db '$DB' --key lab-b --collection distillation-campaigns --read | grep -q read"
  check "the grant is in the database" test "$(sqlite3 "$DB" "select can_read || can_write from intel_rights where key_name='lab-b'")" = 10
  ;;

bad_input)
  "$RETORT" keys create --name someone --db "$DB" >/dev/null 2>&1
  fails "a missing database is named" "no guard database at '$WORK/none.db'" \
    "$RETORT" intel export --db "$WORK/none.db" --out "$WORK/b.json"
  check "... and not made" test ! -e "$WORK/none.db"
  fails "a bad --since says what it takes" "--since 'yesterday'" "$RETORT" intel export --db "$DB" --since yesterday --out "$WORK/b.json"
  fails "a negative-looking --since too" "--since '-3h'" "$RETORT" intel export --db "$DB" --since=-3h --out "$WORK/b.json"
  fails "an --out in a missing folder" "does not exist" "$RETORT" intel export --db "$DB" --out "$WORK/missing/b.json"
  check "no bundle was written" test ! -e "$WORK/b.json"
  fails "an unknown collection in grant lists the known ones" "no intel collection 'nope'" \
    "$RETORT" intel grant --db "$DB" --key someone --collection nope --read
  fails "an unknown key in grant" "no API key named 'mallory'" \
    "$RETORT" intel grant --db "$DB" --key mallory --collection partner-reports --write
  fails "a bad intel.tlp" "intel.tlp" "$RETORT" intel export --db "$DB" --set intel.tlp=purple --out "$WORK/b.json"
  ;;

*)
  echo "unknown case $CASE"; exit 2 ;;
esac

[ $failures -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
