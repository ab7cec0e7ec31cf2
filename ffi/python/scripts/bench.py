"""Full-suite time of the Python door, as ratios to the in-process Rust reference, in one run.

    target/python-venv/bin/python ffi/python/scripts/bench.py [--rounds 5]

(after ffi/python/scripts/dev-env.sh --env-only and `cargo build --release`). Each round times,
interleaved, every way of running the whole suite under both profiles, each as a fresh process
so start-up is counted alike:

  reference         dmaconf run                                  (Rust reference, in process)
  reference/wire    dmaconf run --impl "wire:dmaconf serve --impl reference"
  python/pyo3       python -c "dmaconf.run(SimpleDma, ...)"      (the example, in process)
  python/wire       dmaconf run --impl py:simple_dma:SimpleDma   (the example in a child)

and prints the medians and their ratios to the reference. The Python rows measure the door and
the example implementation together: Python code is slower than Rust code, whatever the door.
This is a benchmark, not a test: nothing is asserted."""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "ffi/python/examples"
DMACONF = ROOT / "target/release/dmaconf"

RUNS = {
    "reference": [str(DMACONF), "run"],
    "reference/wire": [str(DMACONF), "run", "--impl", f"wire:{DMACONF} serve --impl reference"],
    "python/pyo3": [
        sys.executable,
        "-c",
        "import dmaconf, simple_dma; "
        "rs = dmaconf.run(simple_dma.SimpleDma, profile=['semantic', 'linux'], trace=False); "
        "print(len(rs))",
    ],
    "python/wire": [str(DMACONF), "run", "--impl", "py:simple_dma:SimpleDma"],
}


def timed(argv):
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES), DMACONF_PYTHON=sys.executable, DMACONF_ROOT=str(ROOT))
    t = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds
    times = {k: [] for k in RUNS}
    for name in RUNS:  # warm-up: page cache, pyc files
        timed(RUNS[name])
    for _ in range(rounds):
        for name, argv in RUNS.items():
            times[name].append(timed(argv))
    ref = statistics.median(times["reference"])
    print(f"whole suite, both profiles, median of {rounds} interleaved rounds")
    print(f"{'door':<16}{'median s':>10}{'x reference':>13}{'paired x':>10}   all rounds (s)")
    for name, ts in times.items():
        m = statistics.median(ts)
        # Each round's own ratio, then their median: load that changes between rounds cancels.
        paired = statistics.median(t / r for t, r in zip(ts, times["reference"]))
        print(f"{name:<16}{m:>10.3f}{m / ref:>13.2f}{paired:>10.2f}   " + " ".join(f"{t:.3f}" for t in ts))


if __name__ == "__main__":
    main()
