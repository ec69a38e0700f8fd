#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: `npm test` (or `pnpm test`).
# Writes vitest's JSON report to reports/vitest.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bootstrap.sh
. scripts/bootstrap.sh
bash scripts/ensure-tools.sh
mkdir -p reports
pnpm exec tsc -p tsconfig.json --noEmit
exec pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=reports/vitest.json "$@"
