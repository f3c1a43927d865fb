#!/usr/bin/env bash
# End-to-end tests of TAXII 2.1 in `retort serve --set intel.taxii=true` (retort/taxii.h).
# Usage: taxii_test.sh RETORT_BINARY CASE
#   client     the OASIS taxii2-client (../shared/conformance/cti-taxii-client, tests/clients/taxii_client_test.py):
#              discovery, API root, collections and rights per key, add objects and poll the status, paging
#              through `next` (every object once), filters (type, id, version, spec_version, added_after),
#              manifest, one object and its versions, delete, 401/403 for keys without rights; every envelope
#              of objects it fetched passes the OASIS STIX 2.1 schemas (validate-stix.mjs)
#   bad_input  curl: wrong Accept 406, wrong Content-Type 415, next=garbage / limit=0 / a bad filter 400, a body
#              over --max-body 413, an envelope with one invalid object 202 with one failure (not stored), a body
#              that is not an envelope 422, not JSON 400, an unknown collection / object / status 404, a key
#              without rights 403, no key and an unknown key 401, a wrong method 405: each a TAXII error message
#              resource with the TAXII media type; the server answers /health afterwards and is still running
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-taxii-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONFORMANCE=$(conformance_dir) || exit 1
DB=$WORK/serve.db
MEDIA='application/taxii+json;version=2.1'
MAX_BODY=65536

# A tiny byte-level language model: serve needs one, TAXII does not use it.
"$RETORT" train "${TINY[@]}" --set text.tokenizer=byte --set run.name=lm >/dev/null 2>"$WORK/train.err" \
  || { cat "$WORK/train.err"; exit 1; }

ADMIN=$("$RETORT" keys create --name intel-admin --admin --db "$DB" 2>/dev/null)
PARTNER=$("$RETORT" keys create --name lab-b --db "$DB" 2>/dev/null)
OUTSIDER=$("$RETORT" keys create --name outsider --db "$DB" 2>/dev/null)
[ -n "$ADMIN" ] && [ -n "$PARTNER" ] && [ -n "$OUTSIDER" ] || { echo "keys create failed"; exit 1; }
"$RETORT" intel grant --db "$DB" --key lab-b --collection distillation-campaigns --read >/dev/null || exit 1
"$RETORT" intel grant --db "$DB" --key lab-b --collection partner-reports --write >/dev/null || exit 1

"$RETORT" serve --port 0 --model lm="$WORK/runs/lm" --db "$DB" --max-body $MAX_BODY --set intel.taxii=true \
  --set intel.provider=lab-test >"$WORK/port" 2>"$WORK/serve.err" &
PIDS+=($!)
SERVER=$!
for _ in $(seq 1 200); do
  [ -s "$WORK/port" ] && break
  sleep 0.05
done
PORT=$(head -1 "$WORK/port")
[ -n "$PORT" ] || { echo "server did not start:"; cat "$WORK/serve.err"; exit 1; }
BASE=http://127.0.0.1:$PORT
URL=$BASE/taxii2/

case "$CASE" in
client)
  mkdir -p "$WORK/pages"
  check "the OASIS taxii2-client against retort's TAXII 2.1" \
    env PYTHONPATH="$CONFORMANCE/cti-taxii-client" /usr/bin/python3 "$ROOT/tests/clients/taxii_client_test.py" \
    "$URL" "$ADMIN" "$PARTNER" "$OUTSIDER" "$WORK/pages"
  n=$(ls "$WORK/pages" | wc -l)
  check "the client saved envelopes to validate ($n)" test "$n" -ge 10
  for f in "$WORK/pages"/*.json; do
    check "$(basename "$f"): the OASIS STIX 2.1 schemas accept the envelope" node "$CONFORMANCE/validate-stix.mjs" "$f"
  done
  # The publisher's objects (identity, TLP marking, extension-definition, attack-pattern) were in the pages
  # the partner fetched: at least one envelope holds an identity named for this provider.
  check "the published collection holds this provider's identity" grep -Eq '"name": ?"lab-test"' "$WORK/pages"/*.json
  check "received events logged" bash -c "sqlite3 '$DB' \"SELECT COUNT(*) FROM intel_events WHERE direction = 'received'\" | grep -qv '^0$'"
  ;;

bad_input)
  INBOX=partner-reports
  OBJ='{"type":"identity","spec_version":"2.1","id":"identity--0c1b5b2e-6c1b-4f0b-9d3e-3c3f4a1c2b11","created":"2026-03-01T10:00:00.000Z","modified":"2026-03-01T10:00:00.000Z","name":"ok","identity_class":"organization"}'
  BAD='{"type":"indicator","spec_version":"2.1","id":"indicator--5f0a3a5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f","created":"2026-03-01T10:00:00.000Z","modified":"2026-03-01T10:00:00.000Z","pattern_type":"stix","valid_from":"2026-03-01T10:00:00Z"}'
  # call NAME METHOD PATH [curl args...]: the answer's body in $WORK/NAME.json, its headers in $WORK/NAME.h;
  # prints the status.
  call() {
    local name=$1 method=$2 path=$3
    shift 3
    curl -s -o "$WORK/$name.json" -D "$WORK/$name.h" -w '%{http_code}' -X "$method" "$BASE$path" "$@"
  }
  # refused WHAT STATUS NAME METHOD PATH [curl args...]: the answer has STATUS, the TAXII media type and an
  # error message resource whose http_status is STATUS.
  refused() {
    local what=$1 want=$2 name=$3
    shift 3
    local got
    got=$(call "$name" "$@")
    same "$what: status" "$got" "$want"
    local type
    type=$(grep -i '^content-type:' "$WORK/$name.h" | tr -d '\r' | cut -d' ' -f2-)
    same "$what: content type" "$type" "$MEDIA"
    same "$what: error body's http_status" "$(json "$WORK/$name.json" "d['http_status']" 2>/dev/null)" "$want"
    check "$what: error body has a title and a description" \
      /usr/bin/python3 -c "import json; d=json.load(open('$WORK/$name.json')); assert d['title'] and d['description']"
  }
  A=(-H "Authorization: Bearer $ADMIN")
  T=(-H "Accept: $MEDIA")
  P=(-H "Content-Type: $MEDIA")
  O=/taxii2/api1/collections/$INBOX/objects/

  refused "wrong Accept" 406 accept GET "$O" "${A[@]}" -H "Accept: application/json"
  refused "Accept of TAXII 2.0" 406 accept20 GET /taxii2/ "${A[@]}" -H "Accept: application/taxii+json;version=2.0"
  refused "wrong Content-Type on POST" 415 ctype POST "$O" "${A[@]}" "${T[@]}" -H "Content-Type: application/json" \
    --data-binary "{\"objects\":[$OBJ]}"
  refused "next=garbage" 400 next GET "$O?next=garbage" "${A[@]}" "${T[@]}"
  refused "limit=0" 400 limit0 GET "$O?limit=0" "${A[@]}" "${T[@]}"
  refused "limit=ten" 400 limitx GET "$O?limit=ten" "${A[@]}" "${T[@]}"
  refused "added_after not a timestamp" 400 after GET "$O?added_after=yesterday" "${A[@]}" "${T[@]}"
  refused "match[version] not first/last/all/timestamp" 400 mversion GET "$O?match%5Bversion%5D=newest" "${A[@]}" "${T[@]}"
  refused "match[id] not a STIX id" 400 mid GET "$O?match%5Bid%5D=nonsense" "${A[@]}" "${T[@]}"

  /usr/bin/python3 -c "import sys; sys.stdout.write('{\"objects\":[' + ','.join(['$OBJ'.replace('\"ok\"', '\"' + 'x' * 2000 + '\"')] * 40) + ']}')" >"$WORK/big.json"
  check "the oversized envelope is over --max-body ($MAX_BODY)" test "$(stat -c %s "$WORK/big.json")" -gt $MAX_BODY
  refused "body over max_content_length" 413 big POST "$O" "${A[@]}" "${T[@]}" "${P[@]}" --data-binary @"$WORK/big.json"
  got=$(call root GET /taxii2/api1/ "${A[@]}" "${T[@]}")
  same "API root answers" "$got" 200
  same "API root's max_content_length is --max-body" "$(json "$WORK/root.json" "d['max_content_length']")" "$MAX_BODY"

  got=$(call mixed POST "$O" "${A[@]}" "${T[@]}" "${P[@]}" --data-binary "{\"objects\":[$OBJ,$BAD]}")
  same "an envelope with one invalid object: 202" "$got" 202
  same "its status: total 2" "$(json "$WORK/mixed.json" "d['total_count']")" 2
  same "its status: one success" "$(json "$WORK/mixed.json" "d['success_count']")" 1
  same "its status: one failure" "$(json "$WORK/mixed.json" "d['failure_count']")" 1
  same "the failure names the invalid object" "$(json "$WORK/mixed.json" "d['failures'][0]['id']")" \
    indicator--5f0a3a5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f
  check "the failure says why (no pattern)" grep -q pattern "$WORK/mixed.json"
  got=$(call invalid GET "${O}indicator--5f0a3a5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f/" "${A[@]}" "${T[@]}")
  same "the invalid object was not stored (404)" "$got" 404
  got=$(call valid GET "${O}identity--0c1b5b2e-6c1b-4f0b-9d3e-3c3f4a1c2b11/" "${A[@]}" "${T[@]}")
  same "the valid one was stored" "$got" 200
  SID=$(json "$WORK/mixed.json" "d['id']")
  got=$(call status GET "/taxii2/api1/status/$SID/" "${A[@]}" "${T[@]}")
  same "its status resource is kept" "$got" 200
  same "the kept status has the failure" "$(json "$WORK/status.json" "d['failure_count']")" 1
  check "the rejection is logged as an intel event" bash -c \
    "sqlite3 '$DB' \"SELECT detail FROM intel_events WHERE direction = 'rejected'\" | grep -q pattern"

  refused "an envelope that is a list" 422 list POST "$O" "${A[@]}" "${T[@]}" "${P[@]}" --data-binary "[$OBJ]"
  refused "an envelope whose objects is not a list" 422 notlist POST "$O" "${A[@]}" "${T[@]}" "${P[@]}" \
    --data-binary '{"objects":{"a":1}}'
  refused "a body that is not JSON" 400 notjson POST "$O" "${A[@]}" "${T[@]}" "${P[@]}" --data-binary '{"objects":['
  refused "an unknown collection" 404 nocoll GET /taxii2/api1/collections/no-such-collection/objects/ "${A[@]}" "${T[@]}"
  refused "an unknown object" 404 noobj GET "${O}indicator--00000000-0000-4000-8000-000000000000/" "${A[@]}" "${T[@]}"
  refused "an unknown status" 404 nostatus GET /taxii2/api1/status/00000000-0000-4000-8000-000000000000/ "${A[@]}" "${T[@]}"
  refused "an unknown API root" 404 noroot GET /taxii2/api9/ "${A[@]}" "${T[@]}"
  refused "a key without rights reads" 403 norights GET "$O" -H "Authorization: Bearer $OUTSIDER" "${T[@]}"
  refused "the partner reads its write-only inbox" 403 writeonly GET "$O" -H "Authorization: Bearer $PARTNER" "${T[@]}"
  refused "the partner writes the published collection" 403 pubwrite POST \
    /taxii2/api1/collections/distillation-campaigns/objects/ -H "Authorization: Bearer $PARTNER" "${T[@]}" "${P[@]}" \
    --data-binary "{\"objects\":[$OBJ]}"
  refused "no key" 401 nokey GET /taxii2/ "${T[@]}"
  check "no key: WWW-Authenticate says how" grep -qi '^www-authenticate: Bearer' "$WORK/nokey.h"
  refused "an unknown key" 401 badkey GET /taxii2/ -H "Authorization: Bearer rt-000000000000000000000000000000000000000000000000" "${T[@]}"
  refused "a wrong method" 405 method PUT "$O" "${A[@]}" "${T[@]}"

  check "every TAXII request left an audit row" bash -c \
    "test \$(sqlite3 '$DB' \"SELECT COUNT(*) FROM audit WHERE endpoint LIKE '/taxii2%'\") -ge 25"
  check "the server still answers /health" curl -sf "$BASE/health" -o /dev/null
  check "the server is still running" kill -0 $SERVER
  ;;

*)
  echo "unknown case '$CASE' (client | bad_input)"
  exit 2
  ;;
esac

if [ "$failures" -gt 0 ]; then
  echo "--- server stderr (last 20 lines)"
  tail -20 "$WORK/serve.err"
fi
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
