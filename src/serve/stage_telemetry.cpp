// Stage "telemetry" of the guard chain (chain.h): what the campaign detector needs to know of a
// prompt, without keeping it (retort/telemetry.h). About 50 us for a 500-word prompt.
#include "serve/chain.h"

namespace retort::serve {

void GuardChain::describe_prompt(Call& call, const std::string& text) const {
  AuditRow& a = call.audit;
  const PromptPrint p = fingerprint(text, reference_.get());
  a.prompt_simhash = p.simhash;
  a.prompt_prefix = p.prefix;
  a.ref_chunk = p.ref_chunk;
  if (o_.guard.store_prompts) a.prompt_text = text.substr(0, 1 << 16);
}

}  // namespace retort::serve
