// The operator's dashboard page (serve-private): HTML, stylesheet and script, built into the
// binary (dashboard_page.cpp, dashboard_script.cpp) so that it works offline; no library, no CDN.
// The script draws every chart as inline SVG and puts data into the page as text nodes only.
#pragma once
#include <string>

namespace retort::serve {

const std::string& dashboard_html();  // /dashboard
const std::string& dashboard_css();   // /dashboard/style.css
const std::string& dashboard_js();    // /dashboard/app.js

}  // namespace retort::serve
