# Sourced by install-*.sh: installs Debian packages without starting their services.
# apt_install_quiet PKG... does nothing when every package is already installed.

apt_missing() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

apt_install_no_services() {
  local missing
  missing="$(apt_missing "$@")"
  if [ -z "$missing" ]; then
    echo "apt: already installed: $*"
    return 0
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # A policy-rc.d answering 101 stops maintainer scripts from starting the daemons (haproxy on
  # its default config, etcd on 2379/2380): tests start their own on random loopback ports.
  local policy=/usr/sbin/policy-rc.d placed_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    placed_policy=1
  fi
  # shellcheck disable=SC2086
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing; }; then
    [ -z "$placed_policy" ] || $sudo rm -f "$policy"
    return 1
  fi
  [ -z "$placed_policy" ] || $sudo rm -f "$policy"
  echo "apt: installed $missing"
}

# Stops a Debian service that something else may have started, so nothing of ours is left bound to
# its default ports. Harmless when it is not running.
stop_debian_service() {
  local name="$1" sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -x "/etc/init.d/$name" ]; then
    $sudo "/etc/init.d/$name" stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now "$name" >/dev/null 2>&1 || true
  fi
}
