#!/usr/bin/env bash
# Builds Packer and its amazon plugin from their Go modules and installs the plugin where
# packer finds it without the network (PACKER_PLUGIN_PATH=$MUSTER_TOOLS/packer/plugins).
#
# `go install module@version` refuses both modules because their go.mod files carry a go-cty
# replace directive, so each is built from a small wrapper module under $MUSTER_TOOLS/src that
# requires it and repeats that replace directive.
set -euo pipefail

PACKER_VERSION=1.16.0
PACKER_COMMIT=856572ec8313eab942dce5bca8e623ce2171d7cb
AMAZON_VERSION=1.8.2
# Both upstream go.mod files carry exactly this replace (packer-plugin-sdk issue 187).
CTY_REPLACE='github.com/zclconf/go-cty => github.com/nywilken/go-cty v1.13.3'

tools="${MUSTER_TOOLS:-$HOME/.cache/muster/tools}"
bin="$tools/bin"
plugins="$tools/packer/plugins"
mkdir -p "$bin" "$plugins" "$tools/src"

command -v go >/dev/null || { echo "install-packer: go is required" >&2; exit 1; }

# The wrapper builds must not try a module that is not on the Go module proxy, nor reuse
# settings from a surrounding workspace.
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

# $1 wrapper dir, $2 module path, $3 version, $4 output binary, rest: extra ldflags
build_from_wrapper() {
  local dir="$1" mod="$2" ver="$3" out="$4"
  shift 4
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<EOF
module muster.local/build/$(basename "$dir")

go $(go env GOVERSION | sed 's/^go//')

require $mod v$ver

replace $CTY_REPLACE
EOF
  rm -f "$dir/go.sum"
  (
    cd "$dir"
    # Fills go.sum for the required module and everything its main package imports.
    go get "$mod@v$ver"
    go build -trimpath -ldflags "-s -w $*" -o "$out.tmp" "$mod"
    mv "$out.tmp" "$out"
  )
}

packer_bin="$tools/packer/packer-v$PACKER_VERSION"
if [ -x "$packer_bin" ] && "$packer_bin" version 2>/dev/null | head -1 | grep -qx "Packer v$PACKER_VERSION"; then
  echo "packer v$PACKER_VERSION already built: $packer_bin"
else
  echo "building packer v$PACKER_VERSION from github.com/hashicorp/packer (takes minutes)"
  start=$(date +%s)
  build_from_wrapper "$tools/src/packer-v$PACKER_VERSION" github.com/hashicorp/packer "$PACKER_VERSION" "$packer_bin" \
    "-X github.com/hashicorp/packer/version.GitCommit=$PACKER_COMMIT"
  echo "built packer v$PACKER_VERSION in $(( $(date +%s) - start ))s"
fi
ln -sfn "$packer_bin" "$bin/packer"
"$bin/packer" version | head -1

amazon_bin="$tools/packer/packer-plugin-amazon-v$AMAZON_VERSION"
if [ -x "$amazon_bin" ] && "$amazon_bin" describe 2>/dev/null | grep -q "\"version\":\"$AMAZON_VERSION\""; then
  echo "packer-plugin-amazon v$AMAZON_VERSION already built: $amazon_bin"
else
  echo "building packer-plugin-amazon v$AMAZON_VERSION from github.com/hashicorp/packer-plugin-amazon (takes minutes)"
  start=$(date +%s)
  build_from_wrapper "$tools/src/packer-plugin-amazon-v$AMAZON_VERSION" github.com/hashicorp/packer-plugin-amazon "$AMAZON_VERSION" "$amazon_bin" \
    "-X github.com/hashicorp/packer-plugin-amazon/version.VersionPrerelease="
  echo "built packer-plugin-amazon v$AMAZON_VERSION in $(( $(date +%s) - start ))s"
fi

# `packer plugins install --path` names the binary packer-plugin-amazon_vX.Y.Z_xA.B_linux_amd64
# (API version read from the plugin's `describe`) and writes its _SHA256SUM file, which is the
# layout under which templates with required_plugins load it offline.
export PACKER_PLUGIN_PATH="$plugins" CHECKPOINT_DISABLE=1
if PACKER_PLUGIN_PATH="$plugins" "$bin/packer" plugins installed 2>/dev/null | grep -q "packer-plugin-amazon_v${AMAZON_VERSION}_"; then
  echo "amazon plugin v$AMAZON_VERSION already installed in $plugins"
else
  "$bin/packer" plugins install --path "$amazon_bin" github.com/hashicorp/amazon
  echo "installed amazon plugin v$AMAZON_VERSION into $plugins"
fi
"$bin/packer" plugins installed
