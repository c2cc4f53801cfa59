#!/usr/bin/env bash
# Installs what is missing, builds, and runs the CLI: `bash scripts/run.sh generate --out out/run1 --model M`.
set -euo pipefail
cd "$(dirname "$0")/.."
setup_exports=$(bash scripts/setup.sh)
eval "$setup_exports"
export TEMPORAL_CLI_PATH TEMPORAL_TEST_SERVER_PATH
node_modules/.bin/tsc -p tsconfig.build.json
cd - >/dev/null
exec node "$(dirname "$0")/../bin/consistent-chat.js" "$@"
