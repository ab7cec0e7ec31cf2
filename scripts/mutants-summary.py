#!/usr/bin/env python3
"""Counts of a cargo-mutants run (mutants.out/outcomes.json, or the file given), per crate and
per source file, as the markdown tables of reports/mutants.md. The survivors are listed with
their names; their answers are written by hand in the report."""
import collections
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "mutants.out/outcomes.json"
data = json.load(open(path))
KINDS = {"CaughtMutant": "caught", "MissedMutant": "missed", "Timeout": "timeout",
         "Unviable": "unviable"}
per_file = collections.defaultdict(collections.Counter)
survivors = []
for o in data["outcomes"]:
    m = o["scenario"].get("Mutant") if isinstance(o["scenario"], dict) else None
    if m is None:
        continue
    kind = KINDS.get(o["summary"], o["summary"])
    per_file[m["file"]][kind] += 1
    if kind in ("missed", "timeout"):
        survivors.append(f"{kind}: {m['name']}")


def row(name, c):
    viable = c["caught"] + c["missed"] + c["timeout"]
    pct = f"{100 * c['caught'] / viable:.1f}%" if viable else "-"
    return (f"| {name} | {c['caught']} | {c['missed']} | {c['timeout']} | {c['unviable']} "
            f"| {pct} |")


total = collections.Counter()
per_crate = collections.defaultdict(collections.Counter)
for f, c in per_file.items():
    total.update(c)
    per_crate[f.split("/")[1]].update(c)
viable = total["caught"] + total["missed"] + total["timeout"]
print(f"cargo-mutants: {100 * total['caught'] / viable:.1f}% of viable mutants caught")
print()
print("| crate / file | caught | missed | timeout | unviable | caught of viable |")
print("|---|---|---|---|---|---|")
for crate, c in sorted(per_crate.items()):
    print(row(f"**{crate}**", c))
for f, c in sorted(per_file.items()):
    print(row(f, c))
print(row("**all**", total))
print()
for s in survivors:
    print(f"- {s}")
