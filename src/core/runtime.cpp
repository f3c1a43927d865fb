// Threads, BLAS detection and signal handling.
#include "retort/runtime.h"

#include <dlfcn.h>
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

std::string blas_backend() {
  // Find the file that provides a BLAS symbol; fall back to the libblas.so.3 link.
  std::string path;
  if (void* sym = dlsym(RTLD_DEFAULT, "sgemm_")) {
    Dl_info info;
    if (dladdr(sym, &info) && info.dli_fname) path = info.dli_fname;
  }
  char buf[4096];
  if (!path.empty()) {
    ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
    if (n > 0) {
      buf[n] = 0;
      path += std::string(" -> ") + buf;
    }
  }
  for (const char* link : {"/etc/alternatives/libblas.so.3-x86_64-linux-gnu",
                           "/usr/lib/x86_64-linux-gnu/libblas.so.3"}) {
    if (!path.empty() && path.find("libblas") == std::string::npos) break;
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n > 0) {
      buf[n] = 0;
      path += std::string(" ") + buf;
    }
  }
  if (path.find("openblas") != std::string::npos) return "openblas";
  if (path.find("blis") != std::string::npos) return "blis";
  if (path.find("mkl") != std::string::npos) return "mkl";
  if (path.find("atlas") != std::string::npos) return "atlas";
  if (path.find("/blas/") != std::string::npos) return "reference";
  return path.empty() ? "unknown" : "unknown (" + path + ")";
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
