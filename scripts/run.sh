#!/usr/bin/env bash
# Installs what running needs and is missing, builds, and runs the CLI: `bash scripts/run.sh generate --out out/run1 --model M`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what running needs: the test tools (Python dataset libraries, Chromium, Compose) are npm test's.
setup_exports=$(bash scripts/setup.sh --run)
eval "$setup_exports"
export TEMPORAL_CLI_PATH
# The same build as everything else: compiled code plus the prebuilt workflow bundle, so a run does
# not bundle the workflows with webpack at start (seconds and ~130 MB more per run).
npm run build --silent >&2
cd - >/dev/null
exec node "$(dirname "$0")/../bin/consistent-chat.js" "$@"
