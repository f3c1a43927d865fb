// The dashboard's script (serve/dashboard_page.h): reads the admin key from the address's
// fragment (#key=...; then drops it from the address bar and keeps it in sessionStorage), fetches
// /dashboard/api/<view> with it and draws the view. Data only ever enters the page as text nodes
// and SVG attributes set one by one (no innerHTML), so names and reasons cannot inject markup.
#include "serve/dashboard_page.h"

namespace retort::serve {

const std::string& dashboard_js() {
  static const std::string js = R"JS("use strict";
(function () {
  const VIEWS = ["keys", "campaigns", "actions", "verifications", "intel"];
  const STORE = "retort.dashboard.key";
  const REFRESH_MS = 15000;
  const ORDER = ["block", "mark", "strip", "throttle", "observe", "allow"];
  const DONE = { block: "blocked", mark: "marked", strip: "stripped", throttle: "throttled", observe: "observed", allow: "allowed" };
  const COLOUR = { none: "#c4cad4", allow: "#12b76a", observe: "#2e90fa", throttle: "#f79009", strip: "#ef6820", mark: "#7a5af8", block: "#d92d20" };
  const SVGNS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let key = null, view = "keys", selected = null, timer = null, memoryKey = null;

  // ---- small builders: text only, never markup ----
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = String(v);
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, String(v));
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") e.textContent = String(v);
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, String(v));
    }
    for (const c of kids) if (c) e.append(c);
    return e;
  }
  const num = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"));
  const plural = (n, one, many) => num(n) + " " + (Number(n) === 1 ? one : (many || one + "s"));
  const fixed = (x, d) => (x === null || x === undefined ? "-" : Number(x).toFixed(d === undefined ? 2 : d));
  // a signal's value or threshold: counts (>= 10) whole, shares with three decimals
  const amount = (x) => (Math.abs(x) >= 10 ? num(Math.round(x)) : Number(x).toFixed(3));
  function when(t) {
    if (!t) return "-";
    return new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ");
  }
  function ago(t, now) {
    if (!t) return "never";
    const s = Math.max(0, now - t);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  const badge = (r) => el("span", { class: "badge r-" + (COLOUR[r] ? r : "none"), text: r || "none" });
  const source = (s) => el("span", { class: "badge src", text: s });
  const cut = (s, n) => (s && s.length > n ? s.slice(0, n - 1) + "\u2026" : s || "");
  function table(headers, rows) {
    const head = el("tr", null, ...headers.map((h) => el("th", { class: h.num ? "num" : null, text: h.label || h })));
    return el("table", null, el("thead", null, head), el("tbody", null, ...rows));
  }
  function td(value, cls, title) { return el("td", { class: cls, title: title }, value instanceof Node ? value : String(value)); }
  const empty = (text) => el("p", { class: "empty", text: text });

  // ---- the key and the view ----
  function stored() { try { return sessionStorage.getItem(STORE); } catch (e) { return memoryKey; } }
  function store(k) { memoryKey = k; try { if (k) sessionStorage.setItem(STORE, k); else sessionStorage.removeItem(STORE); } catch (e) {} }
  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ""));
    const given = p.get("key");
    if (given) {
      store(given.trim());
      p.delete("key");
      history.replaceState(null, "", location.pathname + location.search + "#" + p.toString());
    }
    const v = p.get("view");
    view = VIEWS.includes(v) ? v : "keys";
    key = stored();
  }
  function showLogin(message) {
    clearTimeout(timer);
    $("view").hidden = true;
    $("tabs").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    const err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    document.title = "retort guard dashboard";
    $("login-key").focus();
  }
  function showTabs() {
    $("login").hidden = true;
    $("tabs").hidden = false;
    $("forget").hidden = false;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === view);
  }

  async function load() {
    clearTimeout(timer);
    if (!key) { showLogin(""); return; }
    showTabs();
    let res, body = null;
    try {
      res = await fetch("/dashboard/api/" + view, { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
      body = await res.json().catch(() => null);
    } catch (e) {
      $("view").hidden = false;
      $("headline").textContent = "The server did not answer (" + e.message + "); retrying.";
      timer = setTimeout(load, REFRESH_MS);
      return;
    }
    const message = body && body.error && body.error.message ? body.error.message : "HTTP " + res.status;
    if (res.status === 401 || res.status === 403) {
      store(null);
      key = null;
      showLogin((res.status === 401 ? "The key was refused: " : "Refused: ") + message);
      return;
    }
    $("view").hidden = false;
    if (!res.ok || !body) {
      $("headline").textContent = "The " + view + " view failed: " + message;
      $("content").replaceChildren();
      timer = setTimeout(load, REFRESH_MS);
      return;
    }
    const content = document.createDocumentFragment();
    const headline = RENDER[view](body, content);
    $("headline").textContent = headline;
    $("content").replaceChildren(content);
    $("footer").textContent = "As of " + when(body.now) + " UTC; refreshed every " + REFRESH_MS / 1000 + " s. " +
      "Data from /dashboard/api/" + view + " of this server.";
    document.title = headline.slice(0, 60) + " \u2014 retort";
    timer = setTimeout(load, REFRESH_MS);
  }

  // ---- views: each returns its headline (what matters first) and fills `out` ----
  function actionWords(counts) {
    const parts = [];
    for (const a of ORDER) if (counts && counts[a]) parts.push(plural(counts[a], "key") + " " + DONE[a]);
    return parts;
  }

  function bars(rows, now) {
    // requests per key: all of them (light) and the last hour's (dark), coloured by the action in force
    const top = rows.filter((r) => r.requests > 0).slice(0).sort((a, b) => b.requests - a.requests).slice(0, 15);
    if (!top.length) return null;
    const max = Math.max(...top.map((r) => r.requests));
    const W = 1140, left = 150, bar = 16, gap = 6, H = top.length * (bar + gap) + 8;
    const s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", class: "bars" });
    s.append(svg("title", { text: "requests per key (light: all time, dark: the last hour)" }));
    top.forEach((r, i) => {
      const y = 4 + i * (bar + gap), act = r.action ? r.action.action : "none";
      const w = Math.max(1, ((W - left - 230) * r.requests) / max), wh = ((W - left - 230) * r.requests_hour) / max;
      s.append(svg("text", { x: left - 8, y: y + 12, "text-anchor": "end", text: cut(r.name, 22) }));
      s.append(svg("rect", { x: left, y: y, width: w, height: bar, rx: 3, fill: COLOUR[act] || COLOUR.none, opacity: 0.35 }));
      if (wh > 0) s.append(svg("rect", { x: left, y: y, width: Math.max(1, wh), height: bar, rx: 3, fill: COLOUR[act] || "#667085" }));
      s.append(svg("text", { x: left + w + 6, y: y + 12, text: num(r.requests) + (r.requests_hour ? " (" + num(r.requests_hour) + " last hour)" : "") }));
    });
    return s;
  }

  const RENDER = {
    keys(d, out) {
      const s = d.summary, now = d.now;
      const parts = actionWords(s.actions);
      if (!parts.length) parts.push("no key under an action");
      if (s.detect) parts.push(plural(s.clusters, "campaign cluster"));
      parts.push(num(s.requests_hour) + " requests in the last hour from " + plural(s.active_hour, "key"));
      out.append(el("h2", { text: "Requests per key" }));
      const chart = bars(d.keys, now);
      out.append(chart ? el("div", { class: "card" }, chart) : empty("No key has sent a request yet."));
      out.append(el("h2", { text: plural(s.keys, "key") + (s.unkeyed_hour ? " (and " + num(s.unkeyed_hour) + " requests without a valid key in the last hour)" : "") }));
      const rows = d.keys.map((k) => {
        const a = k.action;
        const role = k.revoked ? "revoked" : k.admin ? "admin" : "";
        return el("tr", { "data-key": k.name },
          td(el("strong", { text: k.name })), td(el("code", { text: k.prefix + "\u2026" })), td(role),
          td(num(k.requests), "num"), td(num(k.requests_hour), "num"), td(num(k.tokens), "num"),
          td(k.quota_tokens ? num(k.used_tokens) + " / " + num(k.quota_tokens) : num(k.used_tokens), "num"),
          td(num(k.errors), "num"), td(ago(k.last_seen, now), null, when(k.last_seen)),
          td(k.score === null ? "-" : fixed(k.score), "num"),
          td(a ? badge(a.action) : el("span", { class: "muted", text: k.earned && k.earned !== "none" ? "earns " + k.earned : "-" })),
          td(a ? source(a.source) : ""), td(a ? cut(a.reason, 160) : "", "why", a ? a.reason : null));
      });
      out.append(rows.length ? table(["Key", "Prefix", "Role", { label: "Requests", num: 1 }, { label: "Last hour", num: 1 },
        { label: "Tokens", num: 1 }, { label: "Used / quota", num: 1 }, { label: "Errors", num: 1 }, "Last seen",
        { label: "Score", num: 1 }, "Action in force", "By", "Why"], rows) : empty("No keys yet: retort keys create makes one."));
      return parts.join(", ") + ".";
    },

    campaigns(d, out) {
      if (!d.enabled) {
        out.append(empty("The detector is off for this server (guard.detect = false): no scores, clusters or signals. " +
          "Operators' actions (retort guard act) and partners' rules still apply; the Actions view lists them."));
        return "Campaign detection is off.";
      }
      const acted = d.in_force || {};
      const earns = d.keys.filter((k) => k.response !== "none").length;
      const parts = [];
      if (d.clusters.length) {
        const c = d.clusters[0];
        parts.push(plural(d.clusters.length, "campaign cluster") + " (the strongest: " + plural(c.keys.length, "key") +
          ", score " + fixed(c.score) + ", earns " + c.response + ")");
      } else parts.push("no campaign cluster");
      parts.push(plural(earns, "key") + " earning a response");
      parts.push(num(d.observed) + " audit rows scored" + (d.updated ? ", updated " + ago(d.updated, d.now) : ""));
      if (!d.updated) {
        out.append(empty("The detector has not scored any request yet."));
        return parts.join("; ") + ".";
      }
      // what is selected: a key or a cluster by name (default: the strongest cluster, else the top key)
      const byName = {};
      for (const k of d.keys) byName[k.name] = k;
      for (const c of d.clusters) byName[c.name] = c;
      if (!selected || !byName[selected]) selected = d.clusters.length ? d.clusters[0].name : d.keys.length ? d.keys[0].name : null;
      const pick = (name) => { selected = name; load(); };

      out.append(el("h2", { text: "Keys and what ties them (the key graph)" }));
      const legend = el("div", { class: "legend" });
      for (const r of ["none", "observe", "throttle", "strip", "mark", "block", "allow"])
        legend.append(el("span", null, el("i", { class: "r-" + r }), r));
      out.append(el("div", { class: "card" }, graph(d, acted, pick),
        el("p", { class: "muted", text: "Colour: the action in force (else the response the score earns). Links name what two keys share; " +
          "clusters are scored as one actor. Click a key or a cluster for the signals behind its score." }), legend));

      const a = byName[selected];
      if (a) out.append(signals(a, d.policy, acted));
      out.append(el("h2", { text: "Clusters" }));
      if (!d.clusters.length) out.append(empty("No keys are linked: no two share enough (address, user agent, template, shape, timing)."));
      for (const c of d.clusters) {
        const card = el("div", { class: "card clickable", "data-cluster": c.name, onclick: () => pick(c.name) },
          el("div", null, badge(c.response), " ", el("strong", { text: c.name }), " ", el("span", { class: "muted", text: "score " + fixed(c.score) })),
          el("div", { class: "muted", text: num(c.requests) + " requests, " + num(c.tokens) + " tokens; keys: " + c.keys.join(", ") }));
        const ul = el("ul");
        for (const l of c.links.slice(0, 12)) ul.append(el("li", { class: "mono", text: l }));
        card.append(ul);
        out.append(card);
      }

      out.append(el("h2", { text: "Keys, highest score first" }));
      const rows = d.keys.slice(0, 200).map((k) => el("tr", { class: "clickable" + (k.name === selected ? " selected" : ""), "data-key": k.name,
        onclick: () => pick(k.name) },
        td(el("strong", { text: k.name })), td(fixed(k.score), "num"), td(badge(k.response)),
        td(acted[k.name] ? el("span", null, badge(acted[k.name].action), " ", source(acted[k.name].source)) : "-"),
        td(num(k.requests), "num"), td(num(k.tokens), "num"),
        td(k.signals.filter((s) => s.fired).map((s) => s.signal).join(", ") || "-", "mono")));
      out.append(table(["Key", { label: "Score", num: 1 }, "Earns", "In force", { label: "Requests", num: 1 }, { label: "Tokens", num: 1 },
        "Signals fired"], rows));
      return parts.join("; ") + ".";
    },

    actions(d, out) {
      const s = d.summary;
      const by = s.by_source || {};
      const who = [];
      if (by.policy) who.push(num(by.policy) + " by the policy");
      if (by.operator) who.push(num(by.operator) + " by operators");
      if (by.partner) who.push(num(by.partner) + " from partners");
      const now = actionWords(s.in_force);
      const head = plural(s.total, "action") + (who.length ? ": " + who.join(", ") : "") +
        (now.length ? "; in force now: " + now.join(", ") : "; none in force") + ".";
      if (!d.actions.length) {
        out.append(empty("No action yet: the detector (guard.detect), an operator (retort guard act) or a partner's rule writes them."));
        return head;
      }
      const rows = d.actions.map((a) => el("tr", { "data-action": a.id },
        td(when(a.time), "mono"), td(el("strong", { text: a.key })), td(badge(a.action)), td(source(a.source)),
        td(a.score ? fixed(a.score) : "-", "num"), td(cut(a.reason, 220), "why", a.reason),
        td(a.signals.filter((x) => x.fired).map((x) => x.signal).join(", ") || "-", "mono"),
        td(a.cluster || "-"), td(a.in_force ? "yes" : a.until ? "until " + when(a.until) : "replaced")));
      out.append(table(["Time (UTC)", "Key", "Action", "By", { label: "Score", num: 1 }, "Reason", "Signals fired", "Cluster", "In force"], rows));
      return head;
    },

    verifications(d, out) {
      const list = d.verifications || [];
      if (!list.length) {
        out.append(empty("No watermark verification recorded yet. retort guard verify --db (this server's database) --suspect MODEL " +
          "tests a suspect model for this server's watermark and records the result here."));
        return "No watermark verification yet.";
      }
      const found = list.filter((v) => v.carries).length;
      const rows = list.map((v) => el("tr", { "data-verification": v.id },
        td(when(v.time), "mono"), td(el("strong", { text: v.suspect })), td(v.method || "-"),
        td(v.p_value === null || v.p_value === undefined ? "-" : Number(v.p_value).toExponential(2), "num"),
        td(v.carries ? el("span", { class: "badge r-block", text: "carries the mark" }) : el("span", { class: "badge r-none", text: "not found" })),
        td(v.control_p === null || v.control_p === undefined ? "-" : Number(v.control_p).toExponential(2), "num"),
        td((v.keys || []).join(", ") || "-"), td(cut(v.detail || "", 200), "why", v.detail)));
      out.append(table(["Time (UTC)", "Suspect", "Test", { label: "p-value", num: 1 }, "Verdict", { label: "Control p", num: 1 },
        "Keys that received marked answers", "Detail"], rows));
      return plural(list.length, "verification") + ": " + plural(found, "suspect") + " carrying the mark" +
        (found ? " (latest: " + (list.find((v) => v.carries) || {}).suspect + ")" : "") + ".";
    },

    intel(d, out) {
      const o = d.options, s = d.summary, ev = s.events || {};
      const counts = ["published", "sent", "received", "rejected", "acted"].map((k) => num(ev[k] || 0) + " " + k);
      const head = (o.taxii ? "TAXII on" : "TAXII off (intel.taxii = false)") + ": " + counts.join(", ") + "; " +
        plural(s.partners, "partner") + ", " + plural(s.rules, "partner rule") + " in force.";
      out.append(el("p", { class: "muted", text: "This provider: " + o.provider + "; publishes keys whose action reached " + o.share_at +
        ", marked TLP:" + String(o.tlp).toUpperCase() + (o.pseudonymise ? ", accounts pseudonymised" : ", account names in clear") +
        "; acts on partner indicators of confidence >= " + o.min_confidence + (o.pull ? "; pulls partners on a schedule." : ".") }));
      out.append(el("h2", { text: "Partners" }));
      out.append(d.partners.length ? table(["Name", "TAXII root", "Collection", "Added (UTC)"], d.partners.map((p) =>
        el("tr", null, td(el("strong", { text: p.name })), td(p.url, "mono"), td(p.collection, "mono"), td(when(p.added), "mono"))))
        : empty("No partner yet: retort intel partner add names one."));
      out.append(el("h2", { text: "Rules from partner indicators" }));
      out.append(d.rules.length ? table(["Partner", "Kind", "Value", "Action", { label: "Confidence", num: 1 }, "TLP", "Valid until", "Indicator"],
        d.rules.map((r) => el("tr", null, td(r.source), td(r.kind), td(cut(r.value, 60), "mono", r.value), td(badge(r.action)),
          td(num(r.confidence), "num"), td(r.tlp), td(r.valid_until ? when(r.valid_until) : (r.valid ? "no end" : "expired")),
          td(cut(r.indicator, 40), "mono", r.indicator))))
        : empty("No partner indicator has become a rule."));
      out.append(el("h2", { text: "Exchange events, newest first" }));
      out.append(d.events.length ? table(["Time (UTC)", "Direction", "Peer", "Collection", "Object", "Detail"],
        d.events.map((e) => el("tr", { "data-direction": e.direction }, td(when(e.time), "mono"),
          td(el("span", { class: "badge " + ({ rejected: "r-block", acted: "r-throttle", received: "r-observe", sent: "r-allow", published: "r-mark" }[e.direction] || "src"),
            text: e.direction })), td(e.peer || "-"), td(cut(e.collection, 30), "mono"), td(cut(e.object_id, 48), "mono", e.object_id),
          td(cut(e.detail, 200), "why", e.detail))))
        : empty("Nothing published, sent or received yet."));
      return head;
    },
  };

  // The key graph: clusters as rings of linked keys, the other keys in rows below.
  function graph(d, acted, pick) {
    const W = 1180, colour = (k) => COLOUR[(acted[k.name] || {}).action || k.response] || COLOUR.none;
    const byName = {};
    for (const k of d.keys) byName[k.name] = k;
    const placed = {};
    const parts = [];  // svg elements in drawing order: edges first, nodes on top
    const nodes = [], edges = [], labels = [];
    let x = 0, y = 0, rowH = 0;
    for (const c of d.clusters.slice(0, 12)) {
      const n = c.keys.length, r = n === 2 ? 150 : Math.max(80, Math.min(150, 24 * n));
      const bw = 2 * r + 200, bh = n === 2 ? 150 : 1.6 * r + 100;
      if (x + bw > W && x > 0) { x = 0; y += rowH; rowH = 0; }
      const cx = x + bw / 2, cy = n === 2 ? y + bh - 58 : y + bh / 2 + 8;
      labels.push(svg("text", { x: x + 10, y: y + 16, class: "cluster-label",
        onclick: () => pick(c.name), text: cut(c.name, 60) + " \u00b7 score " + fixed(c.score) + " \u00b7 " + c.response }));
      labels.push(svg("rect", { x: x + 2, y: y + 2, width: bw - 4, height: bh - 4, rx: 10, fill: "none", stroke: "#d8dde6", "stroke-dasharray": "4 3" }));
      c.keys.forEach((name, i) => {
        const t = n === 2 ? Math.PI * i : (2 * Math.PI * i) / n - Math.PI / 2;
        placed[name] = { x: cx + r * Math.cos(t), y: cy + r * Math.sin(t) * (n === 2 ? 1 : 0.8) };
      });
      for (const e of c.edges) if (placed[e.a] && placed[e.b]) edges.push(e);
      x += bw; rowH = Math.max(rowH, bh);
    }
    if (x > 0) { y += rowH; x = 0; }
    const rest = d.keys.filter((k) => !placed[k.name]).slice(0, 48);
    const per = 8, cell = W / per;
    rest.forEach((k, i) => { placed[k.name] = { x: cell / 2 + (i % per) * cell, y: y + 36 + Math.floor(i / per) * 78 }; });
    const H = Math.max(120, y + (rest.length ? Math.ceil(rest.length / per) * 78 + 20 : 10));
    for (const e of edges) {
      const a = placed[e.a], b = placed[e.b];
      parts.push(svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge" }));
      // what the two keys share, one line each, stacked above the link's middle
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2, lines = e.why.slice(0, 5);
      const t = svg("text", { x: mx, y: my - 10 - 13 * (lines.length - 1), "text-anchor": "middle", class: "edge-label" });
      lines.forEach((w, i) => t.append(svg("tspan", { x: mx, dy: i ? 13 : 0, text: cut(w, 44) })));
      t.append(svg("title", { text: e.why.join(" + ") }));
      parts.push(t);
    }
    for (const [name, p] of Object.entries(placed)) {
      const k = byName[name] || { name: name, score: 0, response: "none" };
      const g = svg("g", { class: "node", "data-key": name, onclick: () => pick(name) });
      g.append(svg("title", { text: name + ": score " + fixed(k.score) + ", earns " + k.response +
        (acted[name] ? "; in force: " + acted[name].action + " (" + acted[name].source + ")" : "") }));
      g.append(svg("circle", { cx: p.x, cy: p.y, r: 17, fill: colour(k), stroke: name === selected ? "#1d2330" : "#fff", "stroke-width": name === selected ? 3 : 2 }));
      g.append(svg("text", { x: p.x, y: p.y + 4, "text-anchor": "middle", class: "node-score", text: fixed(k.score, 2).replace(/^0/, "") }));
      g.append(svg("text", { x: p.x, y: p.y + 32, "text-anchor": "middle", text: cut(name, 20) }));
      nodes.push(g);
    }
    return svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", class: "graph" },
      svg("title", { text: "the key graph: " + Object.keys(placed).length + " keys, " + edges.length + " links" }), ...labels, ...parts, ...nodes);
  }

  // The signals behind one score: value against threshold, whether it fired, and what it means.
  function signals(a, policy, acted) {
    const box = el("div");
    box.append(el("h2", { text: "Why " + a.name + " scores " + fixed(a.score) + " (earns " + a.response + ")" }));
    const inForce = !a.cluster && acted[a.name];
    box.append(el("p", { class: "muted", text: num(a.requests) + " requests, " + num(a.tokens) + " tokens, " + when(a.first) + " to " + when(a.last) +
      " UTC. The score is the weight of the signals that fired (0 below " + policy.min_requests + " requests); responses from observe " +
      policy.observe + " to block " + policy.block + "." + (inForce ? " In force: " + inForce.action + " by " + inForce.source + "." : "") }));
    const rows = a.signals.map((s) => {
      const scale = Math.max(s.value, s.threshold * 2, 1e-9), W = 150;
      const bar = svg("svg", { width: W, height: 14, viewBox: "0 0 " + W + " 14", class: "signal-bar" },
        svg("rect", { x: 0, y: 3, width: W, height: 8, rx: 4, fill: "#eef1f6" }),
        svg("rect", { x: 0, y: 3, width: Math.max(1, (W * s.value) / scale), height: 8, rx: 4, fill: s.fired ? "#d92d20" : "#98a2b3" }),
        svg("line", { x1: (W * s.threshold) / scale, x2: (W * s.threshold) / scale, y1: 0, y2: 14, stroke: "#1d2330", "stroke-width": 2 }));
      return el("tr", { "data-signal": s.signal }, td(el("code", { text: s.signal })), td(amount(s.value), "num"), td(amount(s.threshold), "num"),
        td(bar), td(fixed(s.weight, 2), "num"),
        td(s.fired ? el("span", { class: "badge fired", text: "fired" }) : el("span", { class: "badge quiet", text: "no" })), td(s.sentence, "why"));
    });
    box.append(table(["Signal", { label: "Value", num: 1 }, { label: "Threshold", num: 1 }, "", { label: "Weight", num: 1 }, "Fired", "What it means"], rows));
    if (a.cluster && a.links.length) {
      box.append(el("h3", { text: "What ties the keys" }));
      const ul = el("ul");
      for (const l of a.links) ul.append(el("li", { class: "mono", text: l }));
      box.append(ul);
    }
    return box;
  }

  // ---- wiring ----
  window.addEventListener("hashchange", () => { readHash(); load(); });
  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const k = $("login-key").value.trim();
      if (!k) return;
      store(k);
      key = k;
      $("login-key").value = "";
      load();
    });
    $("forget").addEventListener("click", () => { store(null); key = null; showLogin("The key was forgotten."); });
    readHash();
    load();
  });
})();
)JS";
  return js;
}

}  // namespace retort::serve
