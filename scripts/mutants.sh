#!/usr/bin/env bash
# Mutation testing of the reference and the machine with cargo-mutants (issue 20).
#
# Installs cargo-mutants from crates.io if it is missing, then runs it with the repository's
# .cargo/mutants.toml: every mutant of runner/reference and runner/machine is judged by the
# vector trials only (`cargo test -p CRATE --test vectors`, the suite's expectations), never by
# unit tests or insta snapshots (INSTA_FORCE_PASS=1).
#
#   scripts/mutants.sh                                   # everything (hours on 2 cores)
#   scripts/mutants.sh --file runner/reference/src/swiotlb.rs
#   scripts/mutants.sh --shard 3/20                      # one slice; shards add up
#   scripts/mutants.sh --list                            # the mutants, no build
#
# Extra arguments go to `cargo mutants` unchanged. Results land in mutants.out/ (git-ignored);
# reports/mutants.md summarises them (see its last section for how it was produced).
set -euo pipefail
cd "$(dirname "$0")/.."

# 27.x: the release whose behaviour in this workspace .cargo/mutants.toml was written for.
if ! command -v cargo-mutants >/dev/null; then
  cargo install --locked cargo-mutants@^27
fi

export INSTA_FORCE_PASS=1 INSTA_UPDATE=no
exec cargo mutants --no-shuffle "$@"
