#!/usr/bin/env bash
# Installs Debian's chromium for the HTML report test (runner/cli/tests/html.rs), if missing.
# Used by .ci/run; run it by hand (as root) to get the test on a workstation.
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
apt-get -o Acquire::Retries=3 update -qq \
  || { echo "error: apt-get update failed: cannot install chromium for the HTML report test" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -q --no-install-recommends \
  chromium fonts-dejavu-core \
  || { echo "error: installing chromium failed" >&2; exit 1; }
