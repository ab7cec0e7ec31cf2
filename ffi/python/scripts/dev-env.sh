#!/usr/bin/env bash
# The Python door's development environment and test run, from a fresh clone:
#   1. a project-local virtual environment, target/python-venv (python3 -m venv), with maturin
#      and pytest from PyPI (installed once; kept while the pinned versions match);
#   2. the dmaconf wheel built by maturin from ffi/python (abi3, CPython >= 3.9) into
#      target/wheels, installed into that environment (so the pytest11 entry point is real);
#   3. pytest: the package's own tests (ffi/python/tests), then the example implementation
#      through the plugin, both profiles, with its expectations file.
# Nothing is installed outside target/. Exit status: pytest's, where "no tests ran" (5) is a
# failure too. Called by `cargo test -p dmaconf-python --test pytest` (ffi/python/tests/pytest.rs),
# so `cargo test --workspace` runs it.
#
#   ffi/python/scripts/dev-env.sh            # build, install, test
#   ffi/python/scripts/dev-env.sh --env-only # build and install only (prints the venv's python)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"   # ffi/python
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/python-venv"
python="${DMACONF_PYTHON:-python3}"
pins=("maturin>=1.7,<2" "pytest>=8,<10")

stamp="$venv/.dmaconf-pins"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 3 "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi

# A target directory of its own: this script runs inside `cargo test`, which holds the lock on
# target/ while its tests run. Release, so the bench measures what users get.
rm -f "$target"/wheels/dmaconf-*.whl
(cd "$here" && CARGO_TARGET_DIR="$target/python-build" "$venv/bin/maturin" build --release \
  --quiet --compatibility linux --interpreter "$venv/bin/python" --out "$target/wheels" >&2)
wheel=("$target"/wheels/dmaconf-*.whl)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "${wheel[0]}"

if [[ "${1:-}" == "--env-only" ]]; then
  echo "$venv/bin/python"
  exit 0
fi

status=0
run() {
  local rc=0
  "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then echo "error: pytest collected no tests: $*" >&2; fi
  if [[ $rc -ne 0 ]]; then status=1; fi
}
export DMACONF_ROOT="$root"
cd "$root"
run "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/tests"
cd "$here/examples"
run "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  --dmaconf-impl simple_dma:SimpleDma --dmaconf-profile both \
  --dmaconf-expectations simple_dma.expectations.yaml
exit $status
