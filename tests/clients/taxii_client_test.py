"""The OASIS taxii2-client (../shared/conformance/cti-taxii-client) against `retort serve`'s TAXII 2.1.

Usage: taxii_client_test.py DISCOVERY_URL ADMIN_KEY PARTNER_KEY OUTSIDER_KEY PAGES_DIR
  ADMIN_KEY     an admin key (may read and write every collection)
  PARTNER_KEY   granted read on distillation-campaigns and write (only) on partner-reports
  OUTSIDER_KEY  a key with no rights
Every envelope of objects fetched is written to PAGES_DIR/NNN.json for the STIX validator.
Prints "ok: ..." / "FAIL: ..." lines and exits 1 when anything failed. Run with Debian's python3
and PYTHONPATH naming the client.
"""
import json
import os
import sys
import uuid

import requests
import requests.auth
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

URL, ADMIN, PARTNER, OUTSIDER, PAGES = sys.argv[1:6]
MEDIA = "application/taxii+json;version=2.1"
failures = 0
saved = 0


def check(what, ok, detail=""):
    global failures
    print(("ok: " if ok else "FAIL: ") + what + ("" if ok or not detail else " (" + str(detail)[:300] + ")"))
    if not ok:
        failures += 1


class Bearer(requests.auth.AuthBase):
    """Authorization: Bearer KEY (the client's own TokenAuth sends 'Token KEY')."""

    def __init__(self, key):
        self.key = key

    def __call__(self, r):
        r.headers["Authorization"] = "Bearer " + self.key
        return r


def save(envelope):
    """Writes an envelope of objects for validate-stix.mjs."""
    global saved
    saved += 1
    with open(os.path.join(PAGES, "%03d.json" % saved), "w") as f:
        json.dump(dict(envelope), f)


def stix_id(kind):
    return kind + "--" + str(uuid.uuid4())


def ts(second, ms=0):
    return "2026-03-01T10:00:%02d.%03dZ" % (second, ms)


IDENTITY = stix_id("identity")
CAMPAIGN = stix_id("campaign")
INDICATOR = stix_id("indicator")
PATTERN = stix_id("attack-pattern")


def indicator(iid, pattern, modified):
    return {"type": "indicator", "spec_version": "2.1", "id": iid, "created": ts(1), "modified": modified,
            "created_by_ref": IDENTITY, "pattern": pattern, "pattern_type": "stix", "valid_from": ts(1),
            "confidence": 80, "name": "harvester address"}


SEED = [
    {"type": "identity", "spec_version": "2.1", "id": IDENTITY, "created": ts(0), "modified": ts(0),
     "name": "seed-lab", "identity_class": "organization"},
    {"type": "campaign", "spec_version": "2.1", "id": CAMPAIGN, "created": ts(1), "modified": ts(1),
     "created_by_ref": IDENTITY, "name": "hydra harvest"},
    indicator(INDICATOR, "[ipv4-addr:value = '203.0.113.7']", ts(1)),
    {"type": "attack-pattern", "spec_version": "2.1", "id": PATTERN, "created": ts(2), "modified": ts(2),
     "name": "Extract ML Model", "external_references": [{"source_name": "mitre-atlas", "external_id": "AML.T0024.002"}]},
    {"type": "relationship", "spec_version": "2.1", "id": stix_id("relationship"), "created": ts(3), "modified": ts(3),
     "relationship_type": "uses", "source_ref": CAMPAIGN, "target_ref": PATTERN},
    {"type": "relationship", "spec_version": "2.1", "id": stix_id("relationship"), "created": ts(3), "modified": ts(3),
     "relationship_type": "indicates", "source_ref": INDICATOR, "target_ref": CAMPAIGN},
    # a second version of the indicator: same id, later `modified`
    indicator(INDICATOR, "[ipv4-addr:value = '203.0.113.8']", ts(9, 500)),
]
LATEST = {o["id"]: o for o in SEED}  # the newest version of each id (SEED lists versions in order)

# ---- discovery, API root, collections (admin) ----------------------------------------------------
admin_auth = Bearer(ADMIN)
server = Server(URL, auth=admin_auth)
check("discovery has a title", bool(server.title), server.title)
check("discovery names one API root, the default", len(server.api_roots) == 1 and server.default is not None
      and server.default.url == server.api_roots[0].url, [r.url for r in server.api_roots])
root = server.api_roots[0]
check("API root versions are TAXII 2.1", root.versions == [MEDIA], root.versions)
check("API root max_content_length is a positive number", isinstance(root.max_content_length, int)
      and root.max_content_length > 0, root.max_content_length)
by_alias = {c.alias: c for c in root.collections}
check("admin sees both collections", set(by_alias) == {"distillation-campaigns", "partner-reports"}, sorted(by_alias))
inbox = by_alias.get("partner-reports")
published = by_alias.get("distillation-campaigns")
check("admin may read and write the inbox", inbox is not None and inbox.can_read and inbox.can_write)
check("collections hold STIX 2.1", inbox is not None and inbox.media_types == ["application/stix+json;version=2.1"],
      inbox.media_types if inbox else None)
if inbox is None or published is None:
    sys.exit(1)
refetched = Collection(inbox.url, auth=admin_auth)
check("GET one collection answers its id and title", refetched.id == inbox.id and refetched.title == inbox.title)

# ---- add objects, then poll the status ------------------------------------------------------------
status = inbox.add_objects({"objects": SEED}, wait_for_completion=False)
check("add_objects: status complete", status.status == "complete", status.status)
check("add_objects: %d of %d succeeded" % (status.success_count, len(SEED)),
      status.success_count == len(SEED) and status.failure_count == 0 and status.pending_count == 0
      and status.total_count == len(SEED), status._raw)
polled = root.get_status(status.id)
check("GET status answers the same counts", polled.status == "complete" and polled.success_count == len(SEED)
      and polled.total_count == len(SEED), polled._raw)
check("status successes name each object", sorted(s["id"] for s in polled.successes) == sorted(o["id"] for o in SEED))
polled.wait_until_final(poll_interval=0.1, timeout=5)
check("Status.wait_until_final returns at once on a complete status", polled.status == "complete")

# ---- paging through `next` ------------------------------------------------------------------------
pages = list(as_pages(inbox.get_objects, per_request=2))
seen = [o["id"] for p in pages for o in p.get("objects", [])]
for p in pages:
    save(p)
check("as_pages(per_request=2): %d pages of at most 2" % len(pages),
      len(pages) >= 3 and all(len(p.get("objects", [])) <= 2 for p in pages), [len(p.get("objects", [])) for p in pages])
check("every object arrives exactly once across the pages", sorted(seen) == sorted(LATEST) and len(seen) == len(set(seen)),
      seen)
check("pages but the last say more=true with a next", all(p["more"] and p.get("next") for p in pages[:-1])
      and not pages[-1]["more"])
got = {o["id"]: o for p in pages for o in p.get("objects", [])}
check("the indicator comes in its latest version", got.get(INDICATOR, {}).get("modified") == ts(9, 500),
      got.get(INDICATOR))
check("objects come back as they were added", all(got[i] == LATEST[i] for i in got))

# ---- filters --------------------------------------------------------------------------------------
env = inbox.get_objects(type="indicator")
save(env)
check("match[type]=indicator: only the indicator", [o["id"] for o in env.get("objects", [])] == [INDICATOR], env.json())
env = inbox.get_objects(type=["campaign", "attack-pattern"])
save(env)
check("match[type]=campaign,attack-pattern: both", sorted(o["type"] for o in env.get("objects", [])) ==
      ["attack-pattern", "campaign"])
env = inbox.get_objects(id=CAMPAIGN)
save(env)
check("match[id]: only that object", [o["id"] for o in env.get("objects", [])] == [CAMPAIGN])
env = inbox.get_objects(version="all")
save(env)
check("match[version]=all: every version (%d)" % len(env.get("objects", [])), len(env.get("objects", [])) == len(SEED))
env = inbox.get_objects(version="first", id=INDICATOR)
save(env)
check("match[version]=first: the first indicator", [o["modified"] for o in env.get("objects", [])] == [ts(1)])
env = inbox.get_objects(spec_version="2.1")
save(env)
check("match[spec_version]=2.1: all latest", len(env.get("objects", [])) == len(LATEST))

manifest = inbox.get_manifest()
records = manifest.get("objects", [])
check("manifest: one record per object (latest version)", sorted(r["id"] for r in records) == sorted(LATEST), records)
check("manifest records carry date_added, version and the STIX media type",
      all(r.get("date_added") and r.get("version") and r.get("media_type") == "application/stix+json;version=2.1"
          for r in records))
check("manifest headers X-TAXII-Date-Added-First/Last are its first and last date_added",
      manifest.headers.get("X-TAXII-Date-Added-First") == records[0]["date_added"]
      and manifest.headers.get("X-TAXII-Date-Added-Last") == records[-1]["date_added"], dict(manifest.headers))
dates = [r["date_added"] for r in records]
check("date_added increases through the collection", dates == sorted(dates) and len(set(dates)) == len(dates), dates)
mpages = list(as_pages(inbox.get_manifest, per_request=3))
check("manifest pages through next as well", sorted(r["id"] for p in mpages for r in p.get("objects", [])) == sorted(LATEST))

cut = records[2]["date_added"]
env = inbox.get_objects(added_after=cut)
save(env)
after = [o["id"] for o in env.get("objects", [])]
want = [r["id"] for r in records if r["date_added"] > cut]
check("added_after=%s: the %d objects added later" % (cut, len(want)), after == want and len(want) >= 1, (after, want))
check("objects answer carries X-TAXII-Date-Added-First/Last",
      env.headers.get("X-TAXII-Date-Added-First") == [r for r in records if r["date_added"] > cut][0]["date_added"],
      dict(env.headers))

# ---- one object, its versions ---------------------------------------------------------------------
env = inbox.get_object(INDICATOR)
save(env)
check("get_object: the latest version", [o["modified"] for o in env.get("objects", [])] == [ts(9, 500)], env.json())
env = inbox.get_object(INDICATOR, version="all")
save(env)
check("get_object version=all: both versions", sorted(o["modified"] for o in env.get("objects", [])) == [ts(1), ts(9, 500)])
versions = inbox.object_versions(INDICATOR)
check("object_versions: both, oldest first", versions.get("versions") == [ts(1), ts(9, 500)], versions.json())
check("versions answer says more=false", versions.get("more") is False)

# ---- partner key: rights ---------------------------------------------------------------------------
partner_auth = Bearer(PARTNER)
proot = ApiRoot(root.url, auth=partner_auth)
pcols = {c.alias: c for c in proot.collections}
check("partner sees both collections it has rights on", set(pcols) == {"distillation-campaigns", "partner-reports"},
      sorted(pcols))
pub = pcols.get("distillation-campaigns")
pin = pcols.get("partner-reports")
check("partner: published collection readable, not writable", pub is not None and pub.can_read and not pub.can_write)
check("partner: inbox writable, not readable", pin is not None and pin.can_write and not pin.can_read)
if pub is not None:
    ppages = list(as_pages(pub.get_objects, per_request=2))
    for p in ppages:
        save(p)
    pids = [o["id"] for p in ppages for o in p.get("objects", [])]
    check("partner pages through the published collection (%d objects), each once" % len(pids),
          len(pids) == len(set(pids)))
if pin is not None:
    extra = {"type": "note", "spec_version": "2.1", "id": stix_id("note"), "created": ts(20), "modified": ts(20),
             "content": "seen here too", "object_refs": [CAMPAIGN]}
    st = pin.add_objects({"objects": [extra]}, wait_for_completion=False)
    check("partner adds a note to the inbox: complete, 1 success", st.status == "complete" and st.success_count == 1,
          st._raw)
    stored = inbox.get_object(extra["id"])
    check("the partner's note is in the inbox", [o["id"] for o in stored.get("objects", [])] == [extra["id"]])

# The client refuses by itself when can_write is false; to hear the server, claim the right.
forged = Collection(published.url, auth=partner_auth,
                    collection_info=dict(published._raw, can_read=True, can_write=True))
try:
    forged.add_objects({"objects": [SEED[0]]}, wait_for_completion=False)
    check("partner POST to the published collection is refused", False, "it was accepted")
except requests.HTTPError as e:
    body = e.response.json()
    check("partner POST to the published collection: 403 with a TAXII error",
          e.response.status_code == 403 and body.get("http_status") == "403"
          and e.response.headers.get("Content-Type") == MEDIA, (e.response.status_code, body))
forged = Collection(inbox.url, auth=partner_auth, collection_info=dict(inbox._raw, can_read=True, can_write=True))
try:
    forged.get_objects()
    check("partner GET on the write-only inbox is refused", False, "it was answered")
except requests.HTTPError as e:
    check("partner GET on the write-only inbox: 403", e.response.status_code == 403, e.response.status_code)

# ---- outsider: no rights, no collections; wrong key: 401 -------------------------------------------
oroot = ApiRoot(root.url, auth=Bearer(OUTSIDER))
check("a key without rights sees no collections", oroot.collections == [], [c.alias for c in oroot.collections])
try:
    Collection(inbox.url, auth=Bearer(OUTSIDER)).refresh()
    check("a key without rights GETs a collection: refused", False, "answered")
except requests.HTTPError as e:
    check("a key without rights GETs a collection: 403", e.response.status_code == 403, e.response.status_code)
try:
    Server(URL, auth=Bearer("rt-" + "0" * 48)).title
    check("an unknown key is refused", False, "answered")
except requests.HTTPError as e:
    check("an unknown key: 401 with a TAXII error", e.response.status_code == 401
          and e.response.json().get("http_status") == "401", e.response.status_code)

# ---- HTTP Basic with the key as password ------------------------------------------------------------
basic = Server(URL, user="lab", password=ADMIN)
check("HTTP Basic (key as password) reaches discovery", basic.title == server.title)

# ---- delete ----------------------------------------------------------------------------------------
inbox.delete_object(CAMPAIGN)
try:
    inbox.get_object(CAMPAIGN)
    check("a deleted object is gone", False, "still answered")
except requests.HTTPError as e:
    check("a deleted object is gone: 404", e.response.status_code == 404, e.response.status_code)

print("pages saved: %d" % saved)
sys.exit(1 if failures else 0)
