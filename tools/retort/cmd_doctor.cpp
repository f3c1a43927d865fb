// `retort doctor`: what this machine can do (libtorch, BLAS, threads, CUDA, measured matmul
// peak, distributed launch variables), as text or as one JSON object for benchmark scripts.
#include <torch/cuda.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "common.h"
#include "retort/error.h"
#include "retort/matmul_probe.h"
#include "retort/runtime.h"

namespace retort::cli {

namespace {

using json = nlohmann::json;

// The variables torchrun, mpirun-style launchers and Slurm set for each process.
constexpr const char* kLaunchVariables[] = {"RANK",        "WORLD_SIZE",  "LOCAL_RANK",
                                            "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                                            "SLURM_NTASKS"};

// The peak in dtype, or nothing when this libtorch cannot multiply in it on the CPU.
std::optional<double> peak_or_nothing(torch::ScalarType dtype, int64_t n, double seconds,
                                      std::string& why) {
  try {
    return measure_matmul_gflops(dtype, n, seconds);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    why = msg.substr(0, msg.find('\n'));
  } catch (const Error& e) {
    why = e.what();
  }
  return std::nullopt;
}

double two_decimals(double x) { return std::round(x * 100) / 100; }

}  // namespace

void register_doctor(CLI::App& app) {
  struct Args {
    int threads = 0;
    int64_t size = 2048;
    double seconds = 1.0;
    bool json = false;
  };
  static Args a;
  auto* cmd = app.add_subcommand(
      "doctor",
      "Report what this machine can do for training: libtorch version, the BLAS libtorch\n"
      "calls (Debian's reference BLAS is ~25x slower than OpenBLAS), the intra-op threads in\n"
      "use, CUDA, and the measured peak of this CPU: GFLOP/s of --size x --size matrix\n"
      "products in float32 and bfloat16 (1 GFLOP/s = 1e9 floating-point operations per\n"
      "second, a multiply-add counting 2), timed for --seconds each after one warm-up.\n"
      "No bf16 number means libtorch cannot multiply bf16 on this CPU; a bf16 peak far below\n"
      "fp32 means it is emulated there, so train in fp32.\n"
      "The training GFLOP/s in a run's run.json (model FLOPs per step / step time) are\n"
      "compared against the fp32 peak: their ratio is the fraction of the machine the run\n"
      "keeps busy. The peak is measured now, on a machine others may be using: run it idle.\n"
      "Also lists the distributed launch variables it sees (RANK, WORLD_SIZE, LOCAL_RANK,\n"
      "MASTER_ADDR, MASTER_PORT, SLURM_PROCID, SLURM_NTASKS), or says single process.\n"
      "Example: retort doctor --threads 2 --json --size 1024");
  cmd->add_option("--threads", a.threads,
                  "intra-op threads to measure with (0 = $OMP_NUM_THREADS, else the cores)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--size", a.size, "n of the n x n matrix products timed")
      ->check(CLI::Range(int64_t{16}, int64_t{16384}));
  cmd->add_option("--seconds", a.seconds, "time spent measuring each dtype")
      ->check(CLI::Range(0.01, 600.0));
  cmd->add_flag(
      "--json", a.json,
      "print one JSON object (torch_version, blas, threads, cuda_available, cuda_devices,\n"
      "peak_gflops_fp32, peak_gflops_bf16 (null: unsupported), matmul_size, env)");
  cmd->callback([] {
    warn_if_reference_blas();
    const std::string blas = blas_backend();
    const int threads = configure_threads(a.threads);
    const bool cuda = torch::cuda::is_available();
    const int64_t cuda_devices = cuda ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    std::string fp32_why, bf16_why;
    const std::optional<double> fp32 = peak_or_nothing(torch::kFloat, a.size, a.seconds, fp32_why);
    const std::optional<double> bf16 =
        peak_or_nothing(torch::kBFloat16, a.size, a.seconds, bf16_why);
    json env = json::object();
    for (const char* name : kLaunchVariables)
      if (const char* value = std::getenv(name)) env[name] = value;

    if (a.json) {
      auto number = [](const std::optional<double>& x) {
        return x ? json(two_decimals(*x)) : json();
      };
      json out = {{"torch_version", TORCH_VERSION},
                  {"blas", blas},
                  {"threads", threads},
                  {"cuda_available", cuda},
                  {"cuda_devices", cuda_devices},
                  {"peak_gflops_fp32", number(fp32)},
                  {"peak_gflops_bf16", number(bf16)},
                  {"matmul_size", a.size},
                  {"env", env}};
      std::printf("%s\n", out.dump().c_str());
      return;
    }

    auto peak = [](const std::optional<double>& x, const std::string& why) {
      return x ? cat(decimals(*x, 1), " GFLOP/s") : cat("not supported (", why, ")");
    };
    std::string launch;
    for (const auto& [name, value] : env.items())
      launch += (launch.empty() ? "" : " ") + name + "=" + value.get<std::string>();
    if (launch.empty()) launch = "single process (no RANK, WORLD_SIZE, SLURM_... variables set)";
    std::printf("libtorch      %s\n", TORCH_VERSION);
    std::printf("BLAS          %s%s\n", blas.c_str(),
                blas == "reference" ? "  (slow: see the warning above)" : "");
    std::printf("threads       %d intra-op\n", threads);
    std::printf("CUDA          %s\n",
                cuda ? cat("available, ", cuda_devices, " device(s)").c_str() : "not available");
    std::printf("peak fp32     %s  (CPU, %lldx%lld matmul, %.2g s)\n", peak(fp32, fp32_why).c_str(),
                static_cast<long long>(a.size), static_cast<long long>(a.size), a.seconds);
    std::printf("peak bf16     %s\n", peak(bf16, bf16_why).c_str());
    std::printf("launch        %s\n", launch.c_str());
  });
}

}  // namespace retort::cli
