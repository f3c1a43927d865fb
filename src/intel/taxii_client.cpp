// The TAXII 2.1 client (retort/taxii_client.h): pull a partner's collection page by page into the
// inbox, validating every object; push the published collection to a partner.
#include "retort/taxii_client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <thread>

#include "retort/error.h"
#include "retort/json_depth.h"
#include "retort/partner_rules.h"
#include "retort/stix.h"
#include "retort/taxii.h"

namespace retort {

namespace {

using nlohmann::json;

constexpr int64_t kMaxPages = 100000;  // a partner that says `more` forever is stopped here

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string percent_encoded(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A short, printable piece of what a partner sent (for error messages).
std::string excerpt(const std::string& text, size_t n = 160) {
  std::string out;
  for (char c : text.substr(0, n)) out += (c >= 32 && c < 127) ? c : ' ';
  return text.size() > n ? out + "..." : out;
}

// The partner's API root over HTTP: every request carries the TAXII media type and the token.
class TaxiiHttp {
 public:
  explicit TaxiiHttp(const TaxiiPeer& p) : peer_(p) {
    std::string url = p.url;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      fail("partner ", p.name, ": the API root '", url,
           "' must be an http:// or https:// URL, e.g. http://127.0.0.1:8080/taxii2/api1/");
    const size_t slash = url.find('/', url.find("://") + 3);
    origin_ = url.substr(0, slash);
    prefix_ = slash == std::string::npos ? "/" : url.substr(slash);
    if (prefix_.back() != '/') prefix_ += '/';
    client_ = std::make_unique<httplib::Client>(origin_);
    const auto sec = static_cast<time_t>(p.timeout);
    const auto usec = static_cast<time_t>((p.timeout - double(sec)) * 1e6);
    client_->set_connection_timeout(sec, usec);
    client_->set_read_timeout(sec, usec);
    client_->set_write_timeout(sec, usec);
    client_->set_keep_alive(true);
  }

  std::string url(const std::string& path) const { return origin_ + prefix_ + path; }

  // GET or POST `path` (below the API root); the JSON body of a `want` answer in the TAXII media
  // type, else an Error naming the partner, the URL and what was wrong.
  json request(const char* method, const std::string& path, int want, const std::string& body = "",
               httplib::Headers* answer_headers = nullptr) const {
    httplib::Headers h = {{"Accept", kTaxiiMediaType}};
    if (!peer_.token.empty()) h.emplace("Authorization", "Bearer " + peer_.token);
    const std::string target = prefix_ + path;
    httplib::Result res = std::string(method) == "POST"
                              ? client_->Post(target, h, body, kTaxiiMediaType)
                              : client_->Get(target, h);
    const std::string what = cat("partner ", peer_.name, ": ", method, " ", url(path));
    if (!res) fail(what, ": no answer (", httplib::to_string(res.error()), ")");
    if (res->status != want) {
      std::string detail;
      try {
        const json e = json::parse(res->body);
        if (e.is_object())
          detail = cat(": ", e.value("title", ""),
                       e.contains("description") ? " - " + e.value("description", "") : "");
      } catch (const std::exception&) {
        detail = res->body.empty() ? "" : ": " + excerpt(res->body);
      }
      fail(what, " answered HTTP ", res->status, " (want ", want, ")", detail);
    }
    const std::string type = res->get_header_value("Content-Type");
    if (!taxii_media_type(type))
      fail(what, " answered Content-Type '", excerpt(type, 80), "', not ", kTaxiiMediaType,
           " (is the URL a TAXII 2.1 API root?)");
    if (json_nests_deeper_than(res->body))
      fail(what, ": the answer nests deeper than ", kMaxJsonDepth, " levels");
    json j;
    try {
      j = json::parse(res->body);
    } catch (const std::exception& e) {
      fail(what, ": the answer is not JSON (", excerpt(e.what(), 120),
           "): ", excerpt(res->body, 80));
    }
    if (!j.is_object()) fail(what, ": the answer is not a JSON object but ", excerpt(j.dump(), 60));
    if (answer_headers) *answer_headers = res->headers;
    return j;
  }

 private:
  // application/taxii+json, with version=2.1 when a version is named.
  static bool taxii_media_type(std::string t) {
    std::string lower;
    for (char c : t)
      if (c != ' ' && c != '\t') lower += char(std::tolower(static_cast<unsigned char>(c)));
    if (lower.rfind("application/taxii+json", 0) != 0) return false;
    const std::string rest = lower.substr(std::string("application/taxii+json").size());
    if (rest.empty()) return true;
    if (rest[0] != ';') return false;
    const size_t v = rest.find("version=");
    return v == std::string::npos || rest.compare(v + 8, 3, "2.1") == 0;
  }

  const TaxiiPeer& peer_;
  std::string origin_, prefix_;
  std::unique_ptr<httplib::Client> client_;
};

// The partner's collection id for `want` (its id, alias or title, case-insensitive for titles).
std::string resolve_collection(const TaxiiHttp& http, const TaxiiPeer& peer) {
  const json cs = http.request("GET", "collections/", 200);
  if (cs.contains("collections") && !cs["collections"].is_array())
    fail("partner ", peer.name, ": GET ", http.url("collections/"),
         ": 'collections' is not a list");
  std::string known;
  auto same_text = [](const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(x) == std::tolower(y);
           });
  };
  for (const json& c : cs.value("collections", json::array())) {
    if (!c.is_object() || !c.contains("id") || !c["id"].is_string()) continue;
    const std::string id = c["id"], alias = c.value("alias", ""), title = c.value("title", "");
    if (id == peer.collection || (!alias.empty() && alias == peer.collection) ||
        same_text(title, peer.collection))
      return id;
    known += cat(known.empty() ? "" : ", ", alias.empty() ? title : alias, " (", id, ")");
  }
  fail("partner ", peer.name, ": no collection '", peer.collection, "' at ",
       http.url("collections/"),
       known.empty() ? " (it lists none this token may see)" : " (it lists: " + known + ")");
}

// What is wrong with an envelope as a whole ("" when nothing).
std::string envelope_problem(const json& e) {
  if (e.contains("more") && !e["more"].is_boolean()) return "'more' is not true or false";
  if (e.contains("next") && !e["next"].is_string()) return "'next' is not a string";
  if (e.contains("objects") && !e["objects"].is_array()) return "'objects' is not a list";
  if (e.value("more", false) && !e.contains("next")) return "'more' is true without a 'next'";
  for (const char* k : {"type", "spec_version"})  // a STIX bundle sent where an envelope belongs
    if (e.contains(k))
      return cat("it has '", k, "': a STIX bundle or object, not a TAXII envelope");
  return "";
}

std::string header(const httplib::Headers& h, const char* name) {
  auto it = h.find(name);
  return it == h.end() ? "" : it->second;
}

void say(const std::function<void(const std::string&)>& log, const std::string& line) {
  if (log) log(line);
}

}  // namespace

PullResult taxii_pull(IntelStore& store, const TaxiiPeer& peer, const IntelOptions& o,
                      const std::function<void(const std::string&)>& log) {
  if (peer.name.empty()) fail("a pull needs the partner's name (the source of what it stores)");
  if (peer.page_size < 1)
    fail("partner ", peer.name, ": a page size must be >= 1, not ", peer.page_size);
  TaxiiHttp http(peer);
  PullResult r;
  r.collection_id = resolve_collection(http, peer);
  const std::string objects_path = "collections/" + r.collection_id + "/objects/";
  const std::string inbox = find_collection(kInboxCollection)->id;
  const std::string added_after = store.cursor(peer.url, r.collection_id);
  r.cursor = added_after;
  std::string next;
  for (int64_t page = 0;; ++page) {
    if (page >= kMaxPages)
      fail("partner ", peer.name, ": still 'more' after ", kMaxPages, " pages; stopped");
    std::string query = cat("?limit=", peer.page_size);
    if (!added_after.empty()) query += "&added_after=" + percent_encoded(added_after);
    if (!next.empty()) query += "&next=" + percent_encoded(next);
    httplib::Headers headers;
    const json env = http.request("GET", objects_path + query, 200, "", &headers);
    if (const std::string why = envelope_problem(env); !why.empty())
      fail("partner ", peer.name, ": GET ", http.url(objects_path + query),
           " is not a TAXII envelope: ", why);
    ++r.pages;
    // Every object of the page, validated; the valid ones stored (one transaction each).
    int64_t stored = 0, rejected = 0;
    std::vector<std::string> indicators;
    const double now = now_seconds();
    for (const json& obj : env.value("objects", json::array())) {
      ++r.received;
      const std::string why = validate_stix_object(obj);
      const std::string id = obj.is_object() && obj.contains("id") && obj["id"].is_string()
                                 ? obj["id"].get<std::string>()
                                 : "";
      if (!why.empty()) {
        ++rejected;
        store.log({0, now, "rejected", peer.name, r.collection_id, id, why});
        std::fprintf(stderr, "intel: partner %s: object %s rejected: %s\n", peer.name.c_str(),
                     id.empty() ? "(no id)" : id.c_str(), why.c_str());
        continue;
      }
      StoredObject s;
      s.collection = inbox;
      s.source = peer.name;
      s.object = obj;
      if (store.add(std::move(s)))
        ++stored;
      else
        ++r.duplicates;
      if (obj["type"] == "indicator") indicators.push_back(id), ++r.indicators;
    }
    r.stored += stored;
    r.rejected += rejected;
    r.rules += update_partner_rules(store, inbox, indicators, o, now);
    if (stored > 0 || rejected > 0)
      store.log({0, now, "received", peer.name, r.collection_id, "",
                 cat(stored, " new objects stored, ", rejected, " rejected (page ", r.pages, ")")});
    // The page is stored: only now may the cursor move past it.
    const std::string last = header(headers, "X-TAXII-Date-Added-Last");
    if (!last.empty()) {
      try {
        parse_stix_time_us(last);
        if (r.cursor.empty() || parse_stix_time_us(last) > parse_stix_time_us(r.cursor)) {
          store.set_cursor(peer.url, r.collection_id, last);
          r.cursor = last;
        }
      } catch (const Error&) {
        std::fprintf(stderr,
                     "intel: partner %s: X-TAXII-Date-Added-Last '%s' is not a timestamp; the "
                     "cursor stays\n",
                     peer.name.c_str(), excerpt(last, 60).c_str());
      }
    }
    say(log, cat("page ", r.pages, ": ", env.value("objects", json::array()).size(), " objects, ",
                 stored, " new, ", rejected, " rejected; cursor ",
                 r.cursor.empty() ? "(none)" : r.cursor));
    if (!env.value("more", false) || (peer.stop && peer.stop->load())) break;
    const std::string n = env["next"].get<std::string>();
    if (n == next)
      fail("partner ", peer.name, ": 'next' did not move ('", excerpt(n, 60), "'); stopped");
    next = n;
  }
  return r;
}

PushResult taxii_push(IntelStore& store, const TaxiiPeer& peer, int64_t per_envelope,
                      const std::function<void(const std::string&)>& log) {
  if (per_envelope < 1) fail("an envelope holds >= 1 object, not ", per_envelope);
  TaxiiHttp http(peer);
  PushResult r;
  r.collection_id = resolve_collection(http, peer);
  const std::string objects_path = "collections/" + r.collection_id + "/objects/";
  ObjectQuery q;
  q.limit = per_envelope;
  for (;;) {
    const ObjectPage page = store.objects(kPublishedCollection, q);
    if (page.objects.empty()) break;
    json env = {{"objects", json::array()}};
    for (const StoredObject& s : page.objects) env["objects"].push_back(s.object);
    json status = http.request("POST", objects_path, 202,
                               env.dump(-1, ' ', false, json::error_handler_t::replace));
    ++r.envelopes;
    r.objects += int64_t(page.objects.size());
    // Poll the status resource until nothing is pending (or the peer's timeout passes).
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(peer.timeout);
    while (status.value("status", "complete") != "complete" &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!status.contains("id") || !status["id"].is_string()) break;
      status = http.request("GET", "status/" + status["id"].get<std::string>() + "/", 200);
    }
    auto count = [&](const char* k) {
      return status.contains(k) && status[k].is_number_integer() ? status[k].get<int64_t>() : 0;
    };
    r.success += count("success_count");
    r.failure += count("failure_count");
    r.pending += count("pending_count");
    if (status.contains("failures") && status["failures"].is_array())
      for (const json& f : status["failures"])
        if (f.is_object())
          r.failures.push_back(cat(f.value("id", "?"), ": ", f.value("message", "")));
    store.log({0, now_seconds(), "sent", peer.name, r.collection_id, "",
               cat(page.objects.size(), " objects (", count("success_count"), " accepted, ",
                   count("failure_count"), " refused)")});
    say(log, cat("envelope ", r.envelopes, ": ", page.objects.size(), " objects, status ",
                 status.value("status", "?"), " (", count("success_count"), " accepted, ",
                 count("failure_count"), " refused, ", count("pending_count"), " pending)"));
    if (!page.more) break;
    q.after_seq = page.next;
  }
  return r;
}

}  // namespace retort
