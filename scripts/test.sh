#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, then runs the static checks and
# every test layer: unit, workflow (time-skipping server), integration and durability (dev server).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/setup.sh)"
export TEMPORAL_CLI_PATH TEMPORAL_TEST_SERVER_PATH

echo "== static checks"
npx tsc --noEmit -p tsconfig.json
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
npm run --silent build

run() {
  echo "== $1"
  shift
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@"
}
run unit test/unit/*.test.ts
run workflow test/workflow/*.test.ts
run integration test/integration/*.test.ts
if compgen -G "test/durability/*.test.ts" >/dev/null; then run durability test/durability/*.test.ts; fi
