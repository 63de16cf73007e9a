#!/bin/sh
# Runs while Packer bakes an image: installs Chef if the source image lacks it, then converges the
# group's role with chef-solo. muster uploads the role and cookbooks to $MUSTER_DIR first.
# This file is yours to change; muster only creates it when it is missing, and its content is part
# of the template hash, so a change here rebakes the image.
set -eu

: "${MUSTER_DIR:=/tmp/muster}"
: "${MUSTER_ROLE:?MUSTER_ROLE must name the Chef role to converge}"

if ! command -v chef-solo >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chef || apt-get install -y -q cinc
  else
    echo "chef-solo is not installed and this image has no apt-get; bake from an image that has Chef" >&2
    exit 1
  fi
fi

cat >"$MUSTER_DIR/solo.rb" <<SOLO
cookbook_path ["$MUSTER_DIR/cookbooks"]
role_path "$MUSTER_DIR/roles"
SOLO
printf '{"run_list": ["role[%s]"]}\n' "$MUSTER_ROLE" >"$MUSTER_DIR/dna.json"

chef-solo --config "$MUSTER_DIR/solo.rb" --json-attributes "$MUSTER_DIR/dna.json" --no-color

# Nodes converge again at boot (templates/user-data.sh) and when the agent re-provisions: they
# need the cookbooks on the image.
mkdir -p /etc/muster
rm -rf /etc/muster/cookbooks
cp -R "$MUSTER_DIR/cookbooks" /etc/muster/cookbooks
