#!/usr/bin/env bash
# pnpm bench [--quick] [--case N] [--runs N] [--cpu-prof DIR] [--keep]: see bench/main.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx bench/main.ts "$@"
