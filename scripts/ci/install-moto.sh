#!/usr/bin/env bash
# Installs a pinned moto server (the AWS API for the integration tests) into its own virtualenv,
# so the tests never depend on whatever moto the machine's Python happens to carry.
set -euo pipefail

MOTO_VERSION=5.2.5

tools="${MUSTER_TOOLS:-$HOME/.cache/muster/tools}"
bin="$tools/bin"
venv="$tools/moto-venv"
mkdir -p "$bin"

installed=""
if [ -x "$venv/bin/python" ]; then
  installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
fi

if [ "$installed" = "$MOTO_VERSION" ] && [ -x "$venv/bin/moto_server" ]; then
  echo "moto[server] $MOTO_VERSION already installed in $venv"
else
  python="${PYTHON:-$(command -v python3)}"
  if ! "$python" -m venv --help >/dev/null 2>&1; then
    echo "python3 has no venv module; installing python3-venv from apt"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
    python=/usr/bin/python3
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv with $("$python" --version)"
    "$python" -m venv "$venv"
  fi
  echo "installing moto[server]==$MOTO_VERSION (had: ${installed:-none})"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

ln -sfn "$venv/bin/moto_server" "$bin/moto_server"
echo "moto_server -> $(readlink "$bin/moto_server") ($("$venv/bin/python" -c 'import importlib.metadata as m; print("moto", m.version("moto"))'))"
