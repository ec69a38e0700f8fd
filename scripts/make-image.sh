#!/usr/bin/env bash
# Build a random test image (OCI layout, real tar layers, correct diff_ids) and push it with
# skopeo: thin wrapper over packages/testkit/src/cli.ts. Run with -h for the options.
# Example: eval "$(scripts/make-image.sh 127.0.0.1:5000 demo:1 2 8)"; echo "$DIGEST"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tsx=$root/node_modules/.bin/tsx
[ -x "$tsx" ] || { echo "make-image.sh: $tsx missing; run pnpm install in $root" >&2; exit 1; }
exec "$tsx" "$root/packages/testkit/src/cli.ts" "$@"
