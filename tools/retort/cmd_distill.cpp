// `retort distill`: a student (model.*) from a trained teacher (teacher.path).
#include <cstdio>

#include "retort/commands.h"
#include "retort/divergence_table.h"
#include "retort/teacher_source.h"
#include "run_args.h"

namespace retort::cli {

void register_distill(CLI::App& app) {
  static RunArgs args;
  static std::string teacher, teacher_model, api_key_env;
  // The divergences, from the divergence table: the first (the classic) with its help, then the rest.
  const DivergenceRow& classic = divergence_table().front();
  std::string others;
  for (const DivergenceRow& row : divergence_table())
    if (&row != &classic) others += (others.empty() ? "" : " ") + std::string(row.name);
  auto* cmd = app.add_subcommand(
      "distill",
      "Distil a student (model.*, train.*) from a trained teacher.\n"
      "Writes runs/<run.name>/ (default runs/distill) as `retort train` does; report.html says first what the\n"
      "student kept of its teacher.\n"
      "Loss: (1 - distill.alpha) * CE(labels) + distill.alpha * T^2 * D(teacher_T, student_T), D = distill.loss\n"
      "(" + std::string(classic.name) + ": " + classic.help + "; " + others + " for the others).\n"
      "The teacher's logits on the training set are cached on disk (distill.cache) unless\n"
      "augmentation is on, in which case the teacher sees each augmented batch.\n"
      "Language models (data.kind = text): distill.loss picks the divergence (" + divergence_names(" ") + ",\n"
      "distill.beta their weight), distill.top_k > 0 distils from the teacher's top-k tokens + tail\n"
      "(cached on disk), distill.on_policy = lambda samples that share of batches from the student\n"
      "(GKD), distill.method = sequence trains on text the teacher wrote (tokenizers may differ),\n"
      "distill.init_from_teacher starts from a selection of the teacher's weights (a smaller gpt: its layers i*Lt/Ls, dims).\n"
      "Data parallel: launch with scripts/torchrun --nproc_per_node=N --no_python retort distill ..., srun, or\n"
      "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT; data.batch_size is the global batch, rank 0 writes the run.\n"
      "bf16: --set train.precision=bf16 (student) --set distill.teacher_precision=bf16 (teacher and its cache).\n"
      "A black-box teacher: --teacher openai:URL (an OpenAI-compatible endpoint: retort serve, vLLM, ...).\n"
      "Language models: top-k logprobs (distill.top_k 1..20, teacher-forced with echo; needs the endpoint's tokenizer,\n"
      "text.tokenizer = auto fetches it from retort serve) or text (distill.method = sequence, any tokenizer).\n"
      "Image classifiers (data.kind = images): class probabilities from retort serve's /v1/classify, pixel values\n"
      "sent teacher.api_batch images per request, kept as the teacher's logits (always cached; augmentation is\n"
      "refused); its shape and classes are checked against the data first (GET models).\n"
      "Answers are cached and a rerun resumes; teacher.api_max_requests / api_max_tokens cap the spend (a\n"
      "classifier's token is one image).\n"
      "Examples: retort distill --teacher runs/demo/teacher --set distill.temperature=2\n"
      "          retort distill --teacher torchscript:my_teacher.pt --config configs/fashion-mnist.toml\n"
      "          retort distill --config configs/kjv-lm-kd.toml --set distill.loss=jsd --set distill.beta=0.5\n"
      "          retort distill --teacher openai:http://127.0.0.1:8080/v1 --teacher-model kjv --api-key-env RETORT_KEY "
      "--config configs/kjv-lm-kd.toml\n"
      "          retort distill --teacher openai:http://127.0.0.1:8080/v1 --teacher-model fashion --api-key-env RETORT_KEY");
  add_run_args(cmd, args);
  // The teacher sources, from their registry: one line each.
  std::string sources;
  for (const TeacherSource& source : teacher_sources()) sources += cat("\n  ", source.example, ": ", source.help);
  cmd->add_option("--teacher", teacher, "the teacher (same as --set teacher.path=...), one of:" + sources);
  cmd->add_option("--teacher-model", teacher_model,
                  "openai: teachers: the endpoint's model id; same as --set teacher.api_model=...");
  cmd->add_option("--api-key-env", api_key_env,
                  "openai: teachers: environment variable holding the API key (default OPENAI_API_KEY); same as\n"
                  "--set teacher.api_key_env=...");
  cmd->callback([] {
    Config c = resolve_config(args.config);
    if (!teacher.empty()) c.set_value("teacher.path", teacher);
    if (!teacher_model.empty()) c.set_value("teacher.api_model", teacher_model);
    if (!api_key_env.empty()) c.set_value("teacher.api_key_env", api_key_env);
    const Options o = read_options(c);
    std::filesystem::path dir = run_dir_for(o, args, "distill");
    setup_runtime(o.run, /*data_parallel=*/true);
    print_command_result(distill_command(o, dir));
  });
}

}  // namespace retort::cli
