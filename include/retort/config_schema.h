// The schema of every retort command: one table of every key retort understands (name, type,
// default, help, allowed range), which Config (retort/config.h, core) loads and checks against.
// It lives with distill (src/distill/config_schema.cpp): its keys name what the floors below
// and beside offer, e.g. distill.loss takes the divergence table's names (divergence_table.h).
#pragma once
#include "retort/config.h"

namespace retort {

// The schema of every retort command (one table for all of them), built once.
const ConfigSchema& retort_schema();

}  // namespace retort
