#!/usr/bin/env bash
# Installs every component the integration tests use. Each script is idempotent and
# caches its result under $MUSTER_TOOLS (default ~/.cache/muster/tools).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for script in "$here"/install-*.sh; do
  [ "$(basename "$script")" = install-all.sh ] && continue
  start=$(date +%s)
  echo "==> $(basename "$script")" >&2
  bash "$script"
  echo "<== $(basename "$script") took $(( $(date +%s) - start ))s" >&2
done
