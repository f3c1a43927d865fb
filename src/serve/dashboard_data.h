// The data behind the operator's dashboard (serve-private): one JSON document per view, read
// from the guard database on the dashboard's own connection (WAL: reading never holds up the
// request path's writes) and from the detector's snapshot (retort/detect_worker.h).
//   keys           every key with its usage from the audit log and the action in force
//   campaigns      the detector's key and cluster assessments, the graph's edges, the policy
//   actions        the action rows, newest first: who decided (policy, operator, partner) and why
//   verifications  `retort guard verify` results recorded in the database (empty until one ran)
//   intel          the exchange's events, partners (without tokens) and partner rules
// The page (dashboard_page.h) holds no data; these are served at /dashboard/api/<view>, admin key only.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "serve/chain.h"

namespace retort::serve {

class DashboardData {
 public:
  DashboardData(GuardChain& chain, const ServeOptions& options) : chain_(chain), options_(options) {}
  // The view's JSON; an unknown view -> ApiError 404 naming the views.
  json view(const std::string& name);

 private:
  json keys();
  json campaigns();
  json actions();
  json verifications();
  json intel();
  GuardDb& db();  // opened on first use
  json snapshot() const;

  GuardChain& chain_;
  const ServeOptions& options_;
  std::mutex mutex_;  // one view at a time on the connection
  std::shared_ptr<GuardDb> db_;
};

}  // namespace retort::serve
