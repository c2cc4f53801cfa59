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
# run LAYER FILES_AT_ONCE FILE...: each file is its own process, with its own servers, task queues and
# directories, so files can share the machine; the durability layer's kills run one at a time.
run() {
  echo "== $1"
  local at_once=$2
  shift 2
  node --import tsx --test --test-concurrency="$at_once" $timeout_flag --test-reporter=spec "$@"
}
run unit 1 test/unit/*.test.ts
run workflow 1 test/workflow/*.test.ts
run replay 1 test/replay/*.test.ts
# Two files at once: most of their time is spent waiting on servers; it passed 96 of 96 at a load average of 11.
run integration 2 test/integration/*.test.ts
if compgen -G "test/durability/*.test.ts" >/dev/null; then run durability 1 test/durability/*.test.ts; fi
