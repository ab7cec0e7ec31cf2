"""Lists simple_dma's linux-profile failures and sorts them by cause, for its expectations file.

Run with the dev environment's python (ffi/python/scripts/dev-env.sh --env-only). A failure is
put down to IOVA placement only when, with every address masked, the expected and actual
values agree; anything else is printed for a person to read."""

import re
import sys
from collections import Counter

import dmaconf

sys.path.insert(0, "ffi/python/examples")
import simple_dma  # noqa: E402

HEX = re.compile(r"0x[0-9a-f]{5,}")


def placement_only(diff: str) -> bool:
    lines = [l.strip() for l in diff.splitlines()]
    minus = [HEX.sub("X", l[1:]).strip() for l in lines if l.startswith("-") and not l.startswith("---")]
    plus = [HEX.sub("X", l[1:]).strip() for l in lines if l.startswith("+") and not l.startswith("+++")]
    if Counter(minus) != Counter(plus):
        return False
    for line in diff.splitlines():
        m = re.match(r"\s*\[[^]]*\] (?:step \d+, )?([^:]+): expected (.*), actual (.*)$", line)
        if m and not m.group(2).startswith(("[", "1 ", "2 ")) and "events" not in m.group(1):
            if HEX.sub("X", m.group(2)) != HEX.sub("X", m.group(3)):
                return False
    return True


for r in dmaconf.run(simple_dma.SimpleDma, profile=["linux"]):
    if r.ok:
        continue
    kind = "placement" if placement_only(r.diff) else "OTHER"
    print(f"{kind}\t{r.id}\t{r.cls}")
    if kind == "OTHER":
        print("    " + r.diff.replace("\n", "\n    ")[:3000])
