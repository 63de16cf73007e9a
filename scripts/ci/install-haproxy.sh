#!/usr/bin/env bash
# Installs haproxy from Debian and links it into $MUSTER_TOOLS/bin. Debian's haproxy service is
# never left running: the tests start their own on random high loopback ports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/apt.sh
. "$here/lib/apt.sh"

tools="${MUSTER_TOOLS:-$HOME/.cache/muster/tools}"
mkdir -p "$tools/bin"

apt_install_no_services haproxy
stop_debian_service haproxy

path="$(command -v haproxy || true)"
[ -n "$path" ] || { echo "install-haproxy: haproxy missing after install" >&2; exit 1; }
ln -sfn "$path" "$tools/bin/haproxy"
echo "haproxy: $("$tools/bin/haproxy" -v | head -1)"
