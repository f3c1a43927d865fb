// Stage "telemetry" of the guard chain (chain.h): what the campaign detector needs to know of a
// prompt, without keeping it (retort/telemetry.h). About 50 us for a 500-word prompt.
#include "serve/chain.h"

namespace retort::serve {

void GuardChain::describe_prompt(Call& call, const std::string& text) const {
  AuditRow& a = call.audit;
  a.prompt_simhash = prompt_simhash(text);
  a.prompt_prefix = prompt_prefix(text);
  a.ref_chunk = reference_ ? reference_->locate(text) : -1;
  if (o_.guard.store_prompts) a.prompt_text = text.substr(0, 1 << 16);
}

}  // namespace retort::serve
