// retort: the command-line entry point. Each subcommand lives in cmd_<name>.cpp.
#include <c10/util/Exception.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "common.h"
#include "retort/error.h"

int main(int argc, char** argv) {
  // libgomp reads OMP_WAIT_POLICY once, when it loads. Its default busy-waiting makes
  // 2-thread training up to ~25x slower when the cores are shared (a compiler, a
  // second run); passive waiting costs little on an idle machine. So set it and
  // start again, unless the user chose a policy.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
  }
  CLI::App app{
      "retort - knowledge distillation: train a small student to behave like a large teacher.\n\n"
      "Start with `retort demo` (Fashion-MNIST: CNN teacher -> MLP student, with a report)\n"
      "or `retort demo lm` (King James Bible: gpt teacher -> 4x smaller gpt student).\n"
      "Every command reads the same keys: defaults <- --config FILE.toml <- --set key=value.\n"
      "`retort config` lists every key with its default and meaning."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "retort 0.1.0");
  retort::cli::register_demo(app);
  retort::cli::register_train(app);
  retort::cli::register_distill(app);
  retort::cli::register_eval(app);
  retort::cli::register_generate(app);
  retort::cli::register_export(app);
  retort::cli::register_config(app);
  retort::cli::register_doctor(app);
  retort::cli::register_serve(app);
  retort::cli::register_keys(app);
  retort::cli::register_guard(app);
  retort::cli::register_intel(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const retort::Interrupted& e) {
    std::fprintf(stderr, "retort: interrupted: %s; checkpoint saved, rerun with --resume to continue\n", e.what());
    return 130;
  } catch (const retort::Error& e) {
    std::fprintf(stderr, "retort: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    std::fprintf(stderr, "retort: error (torch): %s\n", msg.substr(0, msg.find('\n')).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "retort: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
