#!/usr/bin/env bash
# pnpm bench [--quick] [--case N] [--runs N] [--cpu-prof DIR] [--keep]: see bench/README.md.
# Needs docker-registry, skopeo, curl and GNU time (installed by scripts/ensure-tools.sh when root)
# and about 8 GiB free in $TMPDIR for a full run (images, two registries, one pulled copy).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
missing=()
for tool in docker-registry skopeo curl dd /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing ${missing[*]} (apt-get install docker-registry skopeo curl time)" >&2
  exit 1
fi
exec node --import tsx bench/main.ts "$@"
