"""Shared pieces of the dmaconf package's own tests (run by scripts/dev-env.sh)."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EXAMPLES = HERE.parent / "examples"

# The example implementation and the faulty classes below are importable by `pkg.mod:Class`.
for p in (str(EXAMPLES), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ.setdefault("DMACONF_ROOT", str(ROOT))

pytest_plugins = ["pytester"]
