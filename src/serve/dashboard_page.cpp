// The dashboard's HTML and stylesheet (serve/dashboard_page.h); the script is dashboard_script.cpp.
#include "serve/dashboard_page.h"

namespace retort::serve {

const std::string& dashboard_html() {
  static const std::string page = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>retort guard dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/style.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>retort <span>guard dashboard</span></h1>
  <nav id="tabs" hidden>
    <a href="#view=keys" data-view="keys">Keys &amp; usage</a>
    <a href="#view=campaigns" data-view="campaigns">Campaigns</a>
    <a href="#view=actions" data-view="actions">Actions</a>
    <a href="#view=verifications" data-view="verifications">Verifications</a>
    <a href="#view=intel" data-view="intel">Intel</a>
  </nav>
  <button id="forget" type="button" hidden>Forget key</button>
</header>
<main>
  <section id="login" hidden>
    <h2>Admin key</h2>
    <p>This page shows what the guard of this server knows. Its data needs an admin API key
      (<code>retort keys create --admin</code>); the key stays in this tab and is sent only to this server.</p>
    <p id="login-error" class="error" hidden></p>
    <form id="login-form" autocomplete="off">
      <input id="login-key" type="password" autocomplete="off" placeholder="rt-..." aria-label="admin API key" size="56">
      <button type="submit">Open</button>
    </form>
  </section>
  <section id="view" hidden>
    <p id="headline" class="headline"></p>
    <div id="content"></div>
    <p id="footer" class="muted"></p>
  </section>
</main>
</body>
</html>
)HTML";
  return page;
}

const std::string& dashboard_css() {
  static const std::string css = R"CSS(
:root { --ink: #1d2330; --muted: #667085; --line: #d8dde6; --bg: #f6f7f9; --card: #fff; --accent: #2f5fd0; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #1d2330; color: #fff; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; white-space: nowrap; }
header h1 span { font-weight: 400; color: #aab3c5; }
nav { display: flex; gap: 4px; flex: 1; }
nav a { color: #cdd4e2; text-decoration: none; padding: 6px 12px; border-radius: 6px; }
nav a:hover { background: #2d3547; }
nav a.active { background: #fff; color: #1d2330; font-weight: 600; }
#forget { background: transparent; color: #cdd4e2; border: 1px solid #4a5468; border-radius: 6px; padding: 4px 10px; cursor: pointer; }
main { padding: 16px 24px 40px; max-width: 1400px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.headline { font-size: 18px; font-weight: 600; margin: 6px 0 14px; }
.muted { color: var(--muted); }
.error { color: #b42318; font-weight: 600; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 0 0 14px; }
.empty { background: var(--card); border: 1px dashed var(--line); border-radius: 8px; padding: 18px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eceff3; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.why { max-width: 460px; color: #3b4354; }
tr.clickable { cursor: pointer; }
tr.clickable:hover td { background: #f1f4fa; }
tr.selected td { background: #e8eefc; }
td code { white-space: nowrap; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: #98a2b3; white-space: nowrap; }
.badge.r-none { background: #c4cad4; color: #1d2330; }
.badge.r-allow { background: #12b76a; }
.badge.r-observe { background: #2e90fa; }
.badge.r-throttle { background: #f79009; }
.badge.r-strip { background: #ef6820; }
.badge.r-mark { background: #7a5af8; }
.badge.r-block { background: #d92d20; }
.badge.src { background: #eef1f6; color: #344054; border: 1px solid var(--line); }
.badge.fired { background: #d92d20; }
.badge.quiet { background: #eef1f6; color: #667085; }
.legend { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; vertical-align: -1px; }
svg { display: block; max-width: 100%; }
svg text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #1d2330; }
svg .node { cursor: pointer; }
svg .edge { stroke: #98a2b3; stroke-width: 2; }
svg .edge-label { fill: #475467; font-size: 10px; stroke: #fff; stroke-width: 3px; paint-order: stroke; }
svg.signal-bar { max-width: none; width: 150px; height: 14px; }
svg .node-score { fill: #fff; font-weight: 600; font-size: 10px; }
svg .cluster-label { font-weight: 600; cursor: pointer; }
.legend i.r-none { background: #c4cad4; } .legend i.r-allow { background: #12b76a; } .legend i.r-observe { background: #2e90fa; }
.legend i.r-throttle { background: #f79009; } .legend i.r-strip { background: #ef6820; } .legend i.r-mark { background: #7a5af8; }
.legend i.r-block { background: #d92d20; }
.card.clickable { cursor: pointer; }
.card ul { margin: 6px 0 0; padding-left: 18px; }
input[type=password] { padding: 7px 9px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
form button { padding: 7px 14px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
#login { max-width: 640px; }
)CSS";
  return css;
}

}  // namespace retort::serve
