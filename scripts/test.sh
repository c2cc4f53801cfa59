#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, then runs the static checks and
# every test layer: unit, workflow (time-skipping server), replay of recorded histories, integration and durability (dev server).
set -euo pipefail
cd "$(dirname "$0")/.."
# A separate assignment, so a failed set-up stops the run (set -e ignores failures inside eval "$(...)").
setup_exports=$(bash scripts/setup.sh)
eval "$setup_exports"
export TEMPORAL_CLI_PATH TEMPORAL_TEST_SERVER_PATH DOCKER_COMPOSE_PATH
PATH="$PWD/node_modules/.bin:$PATH"

echo "== static checks"
tsc --noEmit -p tsconfig.json
eslint .
prettier --check . >/dev/null || { prettier --check .; exit 1; }
# dist/ as users run it (the CLI tests that time each command run the built bin).
npm run build --silent

# A test that hangs fails after 20 minutes, by name, instead of holding CI until its limit (Node
# 20.11 and later; older 20.x releases run without the bound).
timeout_flag=""
if node --test-timeout=1 -e 0 2>/dev/null; then timeout_flag="--test-timeout=1200000"; fi
run() {
  echo "== $1"
  shift
  node --import tsx --test --test-concurrency=1 $timeout_flag --test-reporter=spec "$@"
}
run unit test/unit/*.test.ts
run workflow test/workflow/*.test.ts
run replay test/replay/*.test.ts
run integration test/integration/*.test.ts
if compgen -G "test/durability/*.test.ts" >/dev/null; then run durability test/durability/*.test.ts; fi
