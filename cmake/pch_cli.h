// Precompiled header of the CLI: the library's plus CLI11.
#pragma once
#include "pch.h"
#include <CLI/CLI.hpp>
