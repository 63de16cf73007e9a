#!/usr/bin/env bash
# Installs systemd-analyze (Debian's systemd package) for the test that verifies
# templates/muster-agent.service, and openssl for the tests that make certificates. Nothing is
# started: only the tools are used.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/apt.sh
. "$here/lib/apt.sh"

apt_install_no_services systemd openssl
command -v systemd-analyze >/dev/null || { echo "install-systemd: systemd-analyze missing after install" >&2; exit 1; }
echo "systemd-analyze: $(systemd-analyze --version | head -1)"
