// Process-wide set-up: thread count, the BLAS check, and Ctrl-C handling.
#pragma once
#include <string>

namespace retort {

// Sets libtorch's intra-op threads: `requested` if > 0, else $OMP_NUM_THREADS,
// else the physical cores. Returns the count in use.
int configure_threads(int requested);

// Which library libblas.so.3 resolves to in this process ("openblas", "reference", ...).
std::string blas_backend();
// Prints a loud warning to stderr when the BLAS in use is Debian's slow reference one.
void warn_if_reference_blas();

// Ctrl-C (SIGINT) and SIGTERM set a flag instead of killing the process, so the
// trainer can save a checkpoint and exit. A second Ctrl-C exits at once.
void install_interrupt_handler();
bool interrupt_requested();
void clear_interrupt();  // for tests

}  // namespace retort
