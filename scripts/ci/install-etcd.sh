#!/usr/bin/env bash
# Installs etcd (server and etcdctl) from Debian and links them into $MUSTER_TOOLS/bin.
# Debian's etcd service is never left running: the tests start their own etcd on random ports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/apt.sh
. "$here/lib/apt.sh"

tools="${MUSTER_TOOLS:-$HOME/.cache/muster/tools}"
mkdir -p "$tools/bin"

apt_install_no_services etcd-server etcd-client
stop_debian_service etcd

for exe in etcd etcdctl; do
  path="$(command -v "$exe" || true)"
  [ -n "$path" ] || { echo "install-etcd: $exe missing after install" >&2; exit 1; }
  ln -sfn "$path" "$tools/bin/$exe"
done
echo "etcd: $("$tools/bin/etcd" --version | head -1)"
echo "etcdctl: $(ETCDCTL_API=3 "$tools/bin/etcdctl" version | head -1)"
