#!/usr/bin/env bash
# Make a fresh machine with only Node >= 20.19 and npm ready: the pinned pnpm, then the workspace's
# dependencies from the lockfile. Sourced by the test and demo scripts; safe to run again.
set -euo pipefail
PNPM_VERSION=10.34.9
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  # Corepack is not usable everywhere; npm can always install a pinned pnpm.
  echo "bootstrap: installing pnpm@$PNPM_VERSION with npm" >&2
  npm install -g "pnpm@$PNPM_VERSION" >&2 || {
    # No permission for a global install: keep it inside the repository instead.
    npm install --prefix "$root/.tmp/pnpm" "pnpm@$PNPM_VERSION" >&2
    export PATH="$root/.tmp/pnpm/node_modules/.bin:$PATH"
  }
fi
pnpm install --frozen-lockfile --reporter=silent >&2
# The ferry command's plain-JavaScript bundle (bin/ferry.js falls back to the sources when it is stale).
node packages/cli/scripts/bundle.mjs >&2
