// The simulator's parts and what they hand each other (private to src/detect/simulate*.cpp):
// the clock, the simulated keys, the text they send, the server child process, the two kinds of
// traffic, what the database says happened, and the report.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "retort/simulate.h"
#include "retort/text.h"
#include "retort/tokenizer.h"

namespace retort::sim {

// ---- time ------------------------------------------------------------------------------------

// Wall time of the simulation: seconds since it started, and the unix time the audit rows carry.
struct Clock {
  double start_unix = 0;  // when traffic began
  double elapsed() const;
  // Sleeps until `elapsed() >= t` or `stop`; false when stopped first.
  bool sleep_until(double t, const std::atomic<bool>& stop) const;
};
double unix_now();

// The last `chars` characters of a child's log, for an error message.
std::string tail_of(const std::filesystem::path& file, size_t chars = 600);
// The served teacher: sim.model, or a tiny byte-level gpt trained once into OUT/teacher (reused
// by later runs into the same folder).
std::filesystem::path sim_teacher(const SimOptions& o, const std::filesystem::path& out, const std::filesystem::path& binary);

// ---- who sends -------------------------------------------------------------------------------

struct SimKey {
  std::string name;        // "u-0042", "eval-1", "c2-hydra-07"
  std::string secret;      // the bearer key
  int64_t id = 0;          // keys.id in the database
  std::string role;        // "user", "office user", "eval job", "app", or the campaign's id
  std::string campaign;    // "" for benign keys
  std::string address;     // sent as X-Forwarded-For
  std::string user_agent;  // sent as User-Agent
};

// Text every simulated client draws on: held-out verses for people, training windows for
// harvesters (what `retort distill` would ask about).
struct Material {
  std::shared_ptr<Tokenizer> tokenizer;  // the served model's
  int64_t context = 0;                   // the served model's context (tokens)
  std::vector<std::string> verses;       // held-out lines (validation documents), for benign prompts
  TokenSet train;                        // the training split, tokenized (campaign windows)
  int64_t seq_len = 0;                   // tokens per harvested window
};
Material load_material(const std::filesystem::path& model, int64_t seq_len);

// What every traffic thread shares: where the server is, the clock, the stop flag.
struct Traffic {
  std::string base_url;  // "http://127.0.0.1:PORT/v1"
  std::string model;     // the served model's id
  Clock clock;
  std::shared_ptr<std::atomic<bool>> stop;
  const Material* material = nullptr;
  std::filesystem::path out;
};

// ---- the server ------------------------------------------------------------------------------

// A child process of `binary` with `args`; stdout to a pipe (read_line) or a file, stderr to a file.
class Child {
 public:
  Child(const std::filesystem::path& binary, const std::vector<std::string>& args, const std::filesystem::path& log,
        bool pipe_stdout);
  ~Child();  // kills it if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // The first line of its stdout within `seconds` ("" when it exited or said nothing).
  std::string read_line(double seconds);
  int wait();              // exit status (128 + signal when killed by one)
  int terminate(double grace_seconds);  // SIGTERM, then SIGKILL after grace; exit status
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool waited_ = false;
  int status_ = 0;
};

// The server-side keys this build of `retort serve` understands (guard.detect, ...): those the
// schema does not know are left out and named, so a simulation runs before the detector exists.
struct ServerSettings {
  std::vector<std::string> sets;     // "guard.detect=true", ...
  std::vector<std::string> missing;  // wanted but unknown to this build
  bool detect = false;               // guard.detect was passed
};
ServerSettings server_settings(const SimOptions& o, double hour);

// ---- traffic ---------------------------------------------------------------------------------

// A campaign as planned and as its own side saw it (the database says what the server saw).
struct Campaign {
  std::string id;     // "c1-topk"
  std::string kind;   // "topk", "hydra", "seqkd", "slow"
  std::string title;  // one line for people
  std::vector<SimKey> keys;
  int64_t planned_requests = 0;  // the harvest's requests (windows or prompts)
  int64_t planned_tokens = 0;    // their tokens as usage counts them
  double start = 0;              // seconds after the start
  int64_t k = 0;                 // top-k campaigns: logprobs asked
  int64_t first_window = 0, windows = 0;  // top-k campaigns: the training windows harvested
  std::mutex mutex;
  std::vector<std::string> ended;  // how each key's harvest ended ("finished", "stopped at the end", "refused: ...")
};

// Keys for the benign side (names, roles, addresses, agents) from the seed.
std::vector<SimKey> plan_benign_keys(const SimOptions& o, std::mt19937_64& rng);
// The four campaigns with their keys (secrets filled later) and plans.
std::vector<std::unique_ptr<Campaign>> plan_campaigns(const SimOptions& o, const Material& m);

// One benign key's whole life (a thread): sessions, turns, idle periods until the end.
void run_benign(const Traffic& t, const SimOptions& o, const SimKey& key, uint64_t seed);
// One campaign (a thread) through retort's own openai: teacher code.
void run_campaign(const Traffic& t, const SimOptions& o, Campaign& c);

// ---- what happened (the database) ------------------------------------------------------------

struct ActionRow {
  double time = 0;  // unix seconds
  int64_t key_id = 0;
  std::string key_name, cluster, action, reason, source;
  double score = 0;
};

struct KeyRecord {
  int64_t requests = 0, answered = 0;  // audit rows; status 200
  int64_t tokens = 0;                  // prompt + completion tokens of answered rows
  int64_t refused_limits = 0, refused_blocked = 0;  // 429; 403
  std::vector<std::pair<double, int64_t>> answered_at;  // (unix time, tokens) of answered harvest rows
  std::vector<ActionRow> actions;                       // in time order
};

struct DbRecord {
  bool has_actions = false;  // the server made the actions table
  std::map<int64_t, KeyRecord> keys;  // by key id
  int64_t audit_rows = 0, action_rows = 0;
};
DbRecord read_db(const std::filesystem::path& db);

bool is_response(const std::string& action);  // throttle, strip, mark, block

// A moment of a campaign: when something happened and what it had harvested by then.
struct Moment {
  bool happened = false;
  double at = 0;  // seconds after the start
  int64_t requests = 0, tokens = 0;
  double share = 0;  // requests / planned
  std::string action, key, reason;
};

struct CampaignResult {
  const Campaign* c = nullptr;
  std::vector<std::pair<double, int64_t>> answered;  // (seconds after the start, tokens), in time order
  int64_t requests = 0, tokens = 0, refused_limits = 0, refused_blocked = 0, audit_rows = 0;
  int64_t keys_detected = 0, keys_responded = 0;
  Moment detected, responded;
  double share() const { return c->planned_requests > 0 ? double(requests) / double(c->planned_requests) : 0; }
};

// A campaign's rows (answered harvest requests by time), its first action (detected) and first
// throttle/strip/mark/block (responded to) over all its keys; `start`: the run's unix start.
CampaignResult campaign_result(const Campaign& c, const DbRecord& db, double start);

// ---- the report ------------------------------------------------------------------------------

struct RunFacts {
  SimOptions options;
  std::filesystem::path out, model, binary;
  ServerSettings server;
  Clock clock;
  double traffic_seconds = 0, wall_seconds = 0;
  std::vector<SimKey> benign;
  std::vector<std::unique_ptr<Campaign>>* campaigns = nullptr;
  nlohmann::json students;  // filled when sim.students
};
// sim.students: per top-k campaign, a student from what it got before the response and one from its
// whole plan (child `retort distill` runs in OUT/students); {"method", "students": [...]}.
nlohmann::json train_students(const RunFacts& facts, const DbRecord& db);

// report.json + report.html in facts.out; returns report.json's content.
nlohmann::json write_sim_report(const RunFacts& facts, const DbRecord& db);

}  // namespace retort::sim
