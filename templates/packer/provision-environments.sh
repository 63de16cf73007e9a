#!/bin/sh
# Runs while Packer bakes an image: installs Chef if the source image lacks it, then converges the
# group's role with chef-solo, in the Chef environment MUSTER_ENVIRONMENT names (muster uploads
# environments/ENV.json to $MUSTER_DIR/environments) when the nodes file has environments.
# muster uploads the role and cookbooks to $MUSTER_DIR first.
# This file is yours to change; muster only creates it when it is missing, and its content is part
# of the template hash, so a change here rebakes the image.
set -eu

: "${MUSTER_DIR:=/tmp/muster}"
: "${MUSTER_ROLE:?MUSTER_ROLE must name the Chef role to converge}"
: "${MUSTER_ENVIRONMENT:=}"

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

if [ -n "$MUSTER_ENVIRONMENT" ]; then
  # One role, many environments: the environment's attributes and cookbook pins come from its file.
  printf 'environment_path "%s"\n' "$MUSTER_DIR/environments" >>"$MUSTER_DIR/solo.rb"
  chef-solo --config "$MUSTER_DIR/solo.rb" --json-attributes "$MUSTER_DIR/dna.json" --environment "$MUSTER_ENVIRONMENT" --no-color
else
  chef-solo --config "$MUSTER_DIR/solo.rb" --json-attributes "$MUSTER_DIR/dna.json" --no-color
fi

# Nodes converge again at boot (templates/user-data.sh) and when the agent re-provisions: they
# need the cookbooks on the image.
mkdir -p /etc/muster
rm -rf /etc/muster/cookbooks
cp -R "$MUSTER_DIR/cookbooks" /etc/muster/cookbooks
