#!/usr/bin/env python3
"""Fails when a module includes a header of a module above it (README, "Code map").

Floors, lowest first: core <- data, models <- teachers, distill, eval, formats <- serve, guard
<- intel (beside serve and detect) <- tools. A public header (include/retort/X.h) belongs to the module whose src/<module>/X.cpp
defines it, or to the module OWNERS names; a private header (src/<module>/Y.h) to its folder.
Usage: check_layering.py REPO_ROOT"""
import pathlib
import re
import sys

FLOOR = {"core": 0, "data": 1, "models": 1, "teachers": 2, "distill": 2, "eval": 2, "formats": 2,
         "serve": 3, "guard": 2, "detect": 3, "watermark": 2, "intel": 3, "tools": 4}
# Public headers without a .cpp of the same name.
OWNERS = {"api_endpoint": "teachers", "api_teacher": "teachers", "data": "data", "error": "core",
          "eval": "eval", "formats": "formats", "guard": "guard", "detect": "detect", "intel": "intel", "intel_options": "guard", "taxii": "intel", "json_depth": "core", "labels": "core", "model": "models",
          "run_kind": "distill", "serve": "serve", "teacher": "teachers", "text": "data",
          "topk_teacher": "teachers"}

root = pathlib.Path(sys.argv[1])
owner = {}
for header in (root / "include/retort").glob("*.h"):
    name = header.stem
    homes = sorted({p.parent.name for p in (root / "src").glob(f"*/{name}.cpp")})
    if name in OWNERS:
        owner[name] = OWNERS[name]
    elif len(homes) == 1:
        owner[name] = homes[0]
    else:
        sys.exit(f"include/retort/{name}.h: no module owns it (add it to OWNERS in {__file__})")

include = re.compile(r'#include "(retort/(\w+)\.h|(\w+)/\w+\.h)"')
problems, checked = [], 0
sources = [p for m in FLOOR if m != "tools" for p in (root / "src" / m).rglob("*") if p.suffix in (".cpp", ".h")]
sources += [p for p in (root / "tools").rglob("*") if p.suffix in (".cpp", ".h")]
for path in sources:
    module = "tools" if root / "tools" in path.parents else path.relative_to(root / "src").parts[0]
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = include.search(line)
        if not m:
            continue
        checked += 1
        target = owner.get(m.group(2)) if m.group(2) else m.group(3)
        if target not in FLOOR:
            continue  # a header of the same folder, or not retort's
        if FLOOR[target] > FLOOR[module]:
            problems.append(f"{path.relative_to(root)}:{n}: {module} (floor {FLOOR[module]}) includes "
                            f"{m.group(1)} of {target} (floor {FLOOR[target]})")
print(f"{checked} includes in {len(sources)} files checked against the floors")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
