// Threads, BLAS detection and signal handling.
#include "retort/runtime.h"

#include <climits>
#include <cstdlib>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <ATen/Parallel.h>

namespace retort {

int configure_threads(int requested) {
  int n = requested;
  if (n <= 0) {
    if (const char* env = std::getenv("OMP_NUM_THREADS")) n = std::atoi(env);
  }
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return n;
}

namespace {
int find_libblas(struct dl_phdr_info* info, size_t, void* out) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("libblas.so") == std::string::npos) return 0;
  *static_cast<std::string*>(out) = name;
  return 1;
}
}  // namespace

std::string blas_backend() {
  // libtorch calls whatever libblas.so.3 resolves to: find the loaded object of that
  // name and follow its links (Debian's alternatives) to the real file.
  std::string loaded;
  dl_iterate_phdr(find_libblas, &loaded);
  if (loaded.empty()) return "unknown (no libblas.so.3 loaded)";
  char real[PATH_MAX];
  std::string path = ::realpath(loaded.c_str(), real) ? real : loaded;
  if (path.find("openblas") != std::string::npos) return "openblas";
  if (path.find("blis") != std::string::npos) return "blis";
  if (path.find("mkl") != std::string::npos) return "mkl";
  if (path.find("atlas") != std::string::npos) return "atlas";
  if (path.find("/blas/") != std::string::npos) return "reference";
  return "unknown (" + path + ")";
}

void warn_if_reference_blas() {
  if (std::getenv("RETORT_NO_BLAS_WARNING")) return;
  std::string b = blas_backend();
  if (b == "reference") {
    std::fprintf(stderr,
                 "\n**********************************************************************\n"
                 "WARNING: libtorch is using Debian's REFERENCE BLAS (libblas.so.3).\n"
                 "Matrix products run about 25x slower than with OpenBLAS. Fix it with:\n"
                 "  sudo apt-get install libopenblas0-openmp   (or run scripts/setup)\n"
                 "**********************************************************************\n\n");
  }
}

namespace {
std::atomic<int> g_interrupts{0};
extern "C" void on_signal(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    const char msg[] = "\nretort: second interrupt, exiting without saving\n";
    ssize_t r = ::write(2, msg, sizeof msg - 1);
    (void)r;
    std::_Exit(130);
  }
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() { return g_interrupts.load() > 0; }
void clear_interrupt() { g_interrupts = 0; }

}  // namespace retort
