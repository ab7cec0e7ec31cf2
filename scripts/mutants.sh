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

# The vector trials use no snapshot; cargo-mutants itself also pins INSTA_FORCE_PASS=0 and
# INSTA_UPDATE=no for the commands it runs.
export INSTA_FORCE_PASS=1 INSTA_UPDATE=no
# cargo-mutants builds each mutant in a copy of the tree. All copies share one target directory
# of their own, kept between runs, so the dependencies are built once. Never this tree's own
# target/: cargo hashes workspace crates by their path inside the workspace, so a mutant built
# from a copy lands on the very artifact a later `cargo test` here would take as fresh.
export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$PWD/target/mutants}"
# The two crates under test (the root's default member is the CLI).
exec cargo mutants --package dmaconf-reference --package dmaconf-machine --no-shuffle "$@"
