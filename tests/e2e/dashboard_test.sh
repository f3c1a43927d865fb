#!/usr/bin/env bash
# End-to-end test of the operator's dashboard (/dashboard of `retort serve`), in Debian's headless
# Chromium. A tiny teacher is served marked (kgw) with campaign detection on; two thieves harvest
# from one address with one user agent (a cluster) until the detector blocks them, alice chats, an
# operator throttles bob with a reason that holds markup, `retort guard verify` records a
# verification, `retort intel export` publishes. Then:
#   the API: no key 401, alice's key 403, an unknown view 404, the admin key 200 naming the thief
#   blocked; the page itself holds no data and forbids other origins (CSP)
#   each view in Chromium (#key=ADMIN&view=V): the DOM holds the view's data (the thieves, actions and
#   their sources, signal names, the graph's nodes and links, the verification, intel counts), the
#   markup in bob's reason is text, the browser logged nothing (no console message, no uncaught
#   error); a screenshot of each (kept in $KEEP_SHOTS when set)
#   no key: the key prompt and no data; alice's key: refused, no data; detection off: the view says so
# Usage: dashboard_test.sh RETORT_BINARY
set -uo pipefail
RETORT=$1
WORK=$(mktemp -d /tmp/retort-dashboard-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; wait $p 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1 HOME=$WORK
source "$(dirname "$0")/lib.sh"
DB=$WORK/serve.db
SHOTS=$WORK/shots
mkdir -p "$SHOTS"
LM=("${TINY[@]}" --set text.tokenizer=byte --set text.train_tokens=60000 --set text.seq_len=128
    --set model.d_model=64 --set model.layers=2 --set model.heads=4)

# api PORT VIEW KEY OUT: GET /dashboard/api/VIEW with KEY ("" none) into OUT; prints the status
api() {
  local auth=()
  [ -n "$3" ] && auth=(-H "Authorization: Bearer $3")
  curl -s -o "$4" -w '%{http_code}' "${auth[@]}" "http://127.0.0.1:$1/dashboard/api/$2"
}
# browse NAME URL: Chromium loads URL: its DOM in NAME.dom (its table rows in NAME.rows), what it
# logged of the page (console messages, uncaught errors) in NAME.console, a screenshot in shots/NAME.png
browse() {
  local name=$1 url=$2
  timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chromium" --enable-logging=stderr --v=0 \
    --virtual-time-budget=5000 --dump-dom "$url" >"$WORK/$name.dom" 2>"$WORK/$name.log"
  grep -E ':CONSOLE|Uncaught' "$WORK/$name.log" >"$WORK/$name.console"
  dom_py rows "$WORK/$name.dom" >"$WORK/$name.rows"
  timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chromium" --hide-scrollbars \
    --virtual-time-budget=5000 --window-size=1300,1000 --screenshot="$SHOTS/$name.png" "$url" >/dev/null 2>&1
}
# rows NAME: the DOM's table rows as text, one a line: "data-x=v | cell | cell ..." (cells' text only)
# elements NAME TAG: how many TAG elements the DOM has
dom_py() {
  /usr/bin/python3 - "$@" <<'PY'
import sys
from html.parser import HTMLParser
what, path = sys.argv[1], sys.argv[2]
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.row, self.cell, self.count = None, None, 0
    def handle_starttag(self, tag, attrs):
        if what == "elements" and tag == sys.argv[3]:
            self.count += 1
        if tag == "tr":
            self.row = [" ".join(f"{k}={v}" for k, v in attrs if k.startswith("data-"))]
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if what == "rows":
                print(" | ".join(self.row))
            self.row = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
p = Page()
p.feed(open(path).read())
if what == "elements":
    print(p.count)
PY
}
elements() { dom_py elements "$WORK/$1.dom" "$2"; }
has() { grep -qF -- "$2" "$WORK/$1.dom"; }    # has NAME TEXT: the DOM of NAME holds TEXT
lacks() { ! grep -qF -- "$2" "$WORK/$1.dom"; }
quiet() {  # quiet NAME: the browser logged nothing from the page
  if [ -s "$WORK/$1.console" ]; then check "$1: the page logged nothing: $(shown "$(head -3 "$WORK/$1.console")")" false
  else check "$1: the page logged nothing (no console message, no uncaught error)" true; fi
}

"$RETORT" train "${LM[@]}" --set train.epochs=2 --set run.name=teacher >/dev/null 2>"$WORK/teacher.err" \
  || { cat "$WORK/teacher.err"; exit 1; }
"$RETORT" guard keys rotate --db "$DB" >/dev/null 2>&1
ADMIN=$("$RETORT" keys create --name ops --admin --db "$DB" 2>/dev/null)
THIEF=$("$RETORT" keys create --name thief --db "$DB" 2>/dev/null)
THIEF2=$("$RETORT" keys create --name thief2 --db "$DB" 2>/dev/null)
ALICE=$("$RETORT" keys create --name alice --db "$DB" 2>/dev/null)
BOB=$("$RETORT" keys create --name bob --db "$DB" 2>/dev/null)
GUARD=(--config "$(dirname "$0")/../../configs/guard.toml" --set guard.interval=0.05 --set guard.min_requests=10
       --set guard.trust_forwarded=true --set guard.signal.coverage.threshold=10
       --set guard.response.throttle_rpm=100000 --set serve.watermark=kgw --set intel.taxii=true
       --set intel.provider=lab-dash)
serve one --model kjv="$WORK/runs/teacher" --db "$DB" "${GUARD[@]}"
P=$PORT_one
CLIENTS=()
chat "$P" "$ALICE" 198.51.100.7 12 >"$WORK/alice" &
CLIENTS+=($!)
chat "$P" "$BOB" 198.51.100.8 3 >"$WORK/bob" &
CLIENTS+=($!)
AGENT='harvest/0.1 <script>alert(1)</script>'  # the same agent for both: a link; markup a page must show as text
(cd "$WORK" && harvest "$P" "$THIEF" thief 203.0.113.9 "$AGENT") &
CLIENTS+=($!)
(cd "$WORK" && harvest "$P" "$THIEF2" thief2 203.0.113.9 "$AGENT") &
CLIENTS+=($!)
wait "${CLIENTS[@]}"  # each harvest ends after 15 refusals (or the book)
check "the detector blocked the thief" test "$(in_db "select count(*) from actions where key_name='thief' and action='block' and source='policy'")" -ge 1
check "an operator throttles bob" "$RETORT" guard act --db "$DB" --key bob --action throttle \
  --reason '<img src=x onerror=alert(1)> asked by hand' >/dev/null 2>&1
check "guard verify records a verification (the teacher as its own suspect)" "$RETORT" guard verify --db "$DB" \
  --suspect "$WORK/runs/teacher" "${LM[@]}" --max-positions 3000 --out "$WORK/ev" >"$WORK/verify.out" 2>"$WORK/verify.err"
"$RETORT" intel export --db "$DB" --set intel.provider=lab-dash --out "$WORK/bundle.json" >/dev/null 2>"$WORK/export.err"
TOKEN=rt-partner-token-never-shown
check "a partner to pull from" env RETORT_INTEL_TOKEN=$TOKEN "$RETORT" intel partner add --db "$DB" --name lab-b \
  --url http://127.0.0.1:9/taxii2/api1/ --collection distillation-campaigns >/dev/null
# the detector's snapshot has the thieves' cluster and bob's row is in force (one interval)
for _ in $(seq 1 100); do
  api "$P" campaigns "$ADMIN" "$WORK/campaigns.json" >/dev/null
  api "$P" keys "$ADMIN" "$WORK/keys.json" >/dev/null
  [ "$(json "$WORK/campaigns.json" 'len(d["clusters"])' 2>/dev/null)" -ge 1 ] 2>/dev/null &&
    [ "$(json "$WORK/keys.json" '[k["action"]["action"] for k in d["keys"] if k["name"]=="bob" and k["action"]][0]' 2>/dev/null)" = throttle ] && break
  sleep 0.2
done

# ---- the API ----
same "/dashboard/api/keys without a key: 401" "$(api "$P" keys "" "$WORK/a.json")" 401
same "... with alice's key: 403" "$(api "$P" keys "$ALICE" "$WORK/a.json")" 403
check "... saying the dashboard needs an admin key" grep -q "not an admin key" "$WORK/a.json"
same "... an unknown view: 404" "$(api "$P" secrets "$ADMIN" "$WORK/a.json")" 404
same "... with the admin key: 200" "$(api "$P" keys "$ADMIN" "$WORK/keys.json")" 200
same "the keys view: the thief is blocked by the policy" \
  "$(json "$WORK/keys.json" '[k["action"]["action"] + " by " + k["action"]["source"] for k in d["keys"] if k["name"]=="thief"][0]')" "block by policy"
same "... bob is throttled by an operator" \
  "$(json "$WORK/keys.json" '[k["action"]["action"] + " by " + k["action"]["source"] for k in d["keys"] if k["name"]=="bob"][0]')" "throttle by operator"
alice_rows=$(in_db "select count(*) from audit where key_name='alice'")
same "... alice's requests are the audit log's" "$(json "$WORK/keys.json" '[k["requests"] for k in d["keys"] if k["name"]=="alice"][0]')" "$alice_rows"
same "the campaigns view: the thieves are one cluster" \
  "$(json "$WORK/campaigns.json" '" ".join(sorted(d["clusters"][0]["keys"]))')" "thief thief2"
check "... linked by their address" bash -c "grep -q 'address 203.0.113.9' '$WORK/campaigns.json'"
api "$P" actions "$ADMIN" "$WORK/actions.json" >/dev/null
same "the actions view: policy and operator rows" \
  "$(json "$WORK/actions.json" '" ".join(sorted(d["summary"]["by_source"]))')" "operator policy"
api "$P" verifications "$ADMIN" "$WORK/verifications.json" >/dev/null
same "the verifications view: the one guard verify recorded" "$(json "$WORK/verifications.json" 'd["verifications"][0]["suspect"]')" \
  "$(in_db "select suspect from verifications order by id desc limit 1")"
api "$P" intel "$ADMIN" "$WORK/intel.json" >/dev/null
same "the intel view: this provider's options" "$(json "$WORK/intel.json" 'd["options"]["provider"]')" lab-dash
same "... the partner" "$(json "$WORK/intel.json" 'd["partners"][0]["name"]')" lab-b
check "... not its token" bash -c "! grep -q '$TOKEN' '$WORK/intel.json'"
curl -s -D "$WORK/page.headers" -o "$WORK/page.html" "http://127.0.0.1:$P/dashboard"
check "the page is served without a key and holds no data" bash -c "grep -q 'guard dashboard' '$WORK/page.html' && ! grep -q thief '$WORK/page.html'"
check "... and lets the browser load nothing from elsewhere (CSP default-src 'none')" grep -qi "content-security-policy: default-src 'none'" "$WORK/page.headers"
check "the script is built in" bash -c "curl -sf 'http://127.0.0.1:$P/dashboard/app.js' | grep -q 'dashboard/api/'"

# ---- the views in Chromium ----
URL="http://127.0.0.1:$P/dashboard"
for v in keys campaigns actions verifications intel; do
  browse "$v" "$URL#key=$ADMIN&view=$v"
  quiet "$v"
  check "$v: the view was drawn (headline), the key prompt hidden" \
    bash -c "grep -q 'id=\"headline\" class=\"headline\">[^<]' '$WORK/$v.dom' && grep -q '<section id=\"login\" hidden' '$WORK/$v.dom'"
  check "$v: a screenshot" test -s "$SHOTS/$v.png"
done
row() { grep "^$2 |" "$WORK/$1.rows"; }  # row NAME DATA: the DOM's rows whose data attribute is DATA
matches() { grep -q -- "$1" <<<"$2"; }   # matches PATTERN TEXT
check "keys: the thief's row: blocked, by the policy" matches '| block | policy |' "$(row keys data-key=thief)"
check "keys: bob's row: throttled, by an operator" matches '| throttle | operator |' "$(row keys data-key=bob)"
check "keys: alice's row: her $alice_rows requests, no action" matches "^data-key=alice | alice | .* | $alice_rows | .* | - | *| *\$" \
  "$(row keys data-key=alice)"
check "keys: the headline counts the blocked keys" has keys "2 keys blocked"
check "keys: the markup in bob's reason is text, not an element" \
  bash -c "grep -qF '&lt;img src=x onerror=alert(1)&gt;' '$WORK/keys.dom' && [ $(elements keys img) = 0 ]"
nodes=$(grep -o '<g class="node"' "$WORK/campaigns.dom" | wc -l)
check "campaigns: the graph has a node per key seen ($nodes >= 4)" test "$nodes" -ge 4
check "campaigns: the thieves' nodes and the link between them" bash -c "grep -q 'class=\"node\" data-key=\"thief\"' '$WORK/campaigns.dom' \
  && grep -q 'class=\"node\" data-key=\"thief2\"' '$WORK/campaigns.dom' && grep -q '<line [^>]*class=\"edge\"' '$WORK/campaigns.dom' \
  && grep -q 'class=\"edge-label\"><tspan [^>]*>address 203.0.113.9</tspan>' '$WORK/campaigns.dom'"
check "campaigns: the signals behind the score: forcing_share fired" matches '| fired |' "$(row campaigns data-signal=forcing_share)"
check "campaigns: ... logprob_appetite fired" matches '| fired |' "$(row campaigns data-signal=logprob_appetite)"
check "campaigns: the user agent's markup is text" \
  bash -c "grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;' '$WORK/campaigns.dom' && [ $(elements campaigns script) = 1 ]"
check "actions: the policy's block of the thief" grep -q '^data-action=[0-9]* | [-0-9: ]* | thief | block | policy |' "$WORK/actions.rows"
check "actions: the operator's throttle of bob, its reason as text" \
  grep -qF '| bob | throttle | operator | - | <img src=x onerror=alert(1)> asked by hand |' "$WORK/actions.rows"
check "actions: ... not as an element" test "$(elements actions img)" = 0
check "verifications: the suspect and its verdict" bash -c "grep -qF '$WORK/runs/teacher' '$WORK/verifications.dom' && grep -qE 'carries the mark|not found' '$WORK/verifications.dom'"
published=$(json "$WORK/intel.json" 'd["summary"]["events"].get("published", 0)')
check "intel: the headline's counts are the store's ($published published)" has intel "$published published"
check "intel: the partner, not its token" bash -c "grep -q '| lab-b | http://127.0.0.1:9/taxii2/api1/ |' '$WORK/intel.rows' && ! grep -q '$TOKEN' '$WORK/intel.dom'"

# no key, a key that is not an admin's: the prompt, no data
browse nokey "$URL#view=keys"
quiet nokey
check "no key: the key prompt is shown, the views hidden, no data" bash -c "grep -q '<section id=\"login\">' '$WORK/nokey.dom' \
  && grep -q '<section id=\"view\" hidden' '$WORK/nokey.dom' && ! grep -q thief '$WORK/nokey.dom'"
browse alice "$URL#key=$ALICE&view=keys"
check "alice's key: refused as not an admin's, no data" bash -c "grep -q \"Refused: the key 'alice' is not an admin key\" '$WORK/alice.dom' \
  && ! grep -q thief '$WORK/alice.dom'"
check "... nor the key itself left in the page" lacks alice "$ALICE"

# detection off (a second server on the same database): the campaigns view says so
serve off --model kjv="$WORK/runs/teacher" --db "$DB"
api "$PORT_off" campaigns "$ADMIN" "$WORK/off.json" >/dev/null
same "detection off: the API says so" "$(json "$WORK/off.json" 'd["enabled"]')" False
browse off "http://127.0.0.1:$PORT_off/dashboard#key=$ADMIN&view=campaigns"
quiet off
check "detection off: the view says so" has off "Campaign detection is off."

if [ -n "${KEEP_SHOTS:-}" ]; then mkdir -p "$KEEP_SHOTS" && cp "$SHOTS"/*.png "$KEEP_SHOTS"/; fi
[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
