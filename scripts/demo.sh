#!/usr/bin/env bash
# The main job: start a local registry, seed a generated multi-platform image, pull it with live
# progress into a fresh temporary store (kept with --keep or --store DIR), and print a summary.
# Needs no internet.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bootstrap.sh
. scripts/bootstrap.sh
exec pnpm exec tsx examples/demo.ts "$@"
