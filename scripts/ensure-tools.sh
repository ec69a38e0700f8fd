#!/usr/bin/env bash
# Install the real peers the integration tests and benchmarks use (Debian packages): the reference
# registry (distribution 2.8), skopeo and umoci for cross-checks, htpasswd for Basic auth.
# Without root or sudo it only reports what is missing; the tests then skip (or fail under CI=true).
set -euo pipefail
want=(docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils curl:curl jq:jq pigz:pigz openssl:openssl)
missing=()
for pair in "${want[@]}"; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "ensure-tools: missing ${missing[*]} (run: apt-get install ${missing[*]})" >&2
    exit 0
  fi
fi
echo "ensure-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
  "${sudo[@]}" apt-get update -qq >&2
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
