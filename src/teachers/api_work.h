// How the openai: teacher's harvests spend their requests (api_harvest.cpp,
// api_classify_teacher.cpp): a pool of workers pulling numbered requests, and the budget message
// that says where the harvest was kept. Private to src/teachers.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>

#include "retort/api_teacher.h"

namespace retort {

// Runs work(i) for i in [0, n) on `threads` threads, each pulling the next index. The first
// exception stops the others from taking new work (requests in flight finish) and is
// rethrown here; so is Ctrl-C, after which the function returns with *interrupted = true.
void run_concurrently(int64_t n, int64_t threads, const std::function<void(int64_t)>& work,
                      bool* interrupted);

// Adds where the harvest is kept to a budget message.
[[noreturn]] void rethrow_budget(const BudgetExhausted& e, const std::filesystem::path& kept);

}  // namespace retort
