#!/bin/sh
# muster user data for a node of group "{{group}}" (Auto Scaling group or one-off instance).
# cloud-init runs it once, as root, on the node's first boot: it writes the group's Chef role, the
# node's dna and the agent's settings to /etc/muster, converges the role with chef-solo, then starts
# the muster agent when the image has one (the bake installs it) and the nodes file names a
# registry (__base__.registry). Its output goes to /var/log/cloud-init-output.log.
#
# This file is yours to change; muster only creates it when it is missing. Its rendered text is the
# launch template's user data, so a change here shows in `muster preview` and rolls the fleet.
# Placeholders are a name in double braces: group, role_name, role_json, dna_json, agent_json,
# nodes_json, start_agent (yes or no), agent_boot_install (the agent's install step for a group with
# packer: false; a comment for a baked group).
#
# Never put a credential here: user data is readable from the instance metadata service by any
# process on the node and by anyone allowed to describe the launch template. Nodes get AWS access
# from an instance profile.
set -eu
umask 022

MUSTER_DIR=/etc/muster
mkdir -p "$MUSTER_DIR/roles"

# chef-solo finds a role by its file name, so the file is named after the role (role-GROUP), not
# the group. Quoted here-documents: the JSON is written byte for byte, nothing is expanded.
cat >"$MUSTER_DIR/roles/{{role_name}}.json" <<'MUSTER_ROLE_JSON'
{{role_json}}
MUSTER_ROLE_JSON

cat >"$MUSTER_DIR/dna.json" <<'MUSTER_DNA_JSON'
{{dna_json}}
MUSTER_DNA_JSON

# The agent's settings (registry endpoints and project, never credentials) and its group alone, as
# a nodes file of one group: the agent reads its services and dependencies from it. Readable by
# the agent's user (muster), writable by root only.
cat >"$MUSTER_DIR/agent.json" <<'MUSTER_AGENT_JSON'
{{agent_json}}
MUSTER_AGENT_JSON

cat >"$MUSTER_DIR/nodes.json" <<'MUSTER_NODES_JSON'
{{nodes_json}}
MUSTER_NODES_JSON
chmod 0644 "$MUSTER_DIR/agent.json" "$MUSTER_DIR/nodes.json" "$MUSTER_DIR/dna.json"

# Tells the agent (and anyone logged in) which group this node belongs to.
printf 'MUSTER_GROUP=%s\nMUSTER_ROLE=%s\n' '{{group}}' '{{role_name}}' >"$MUSTER_DIR/node.env"

if ! command -v chef-solo >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chef || apt-get install -y -q cinc
  else
    echo "muster: chef-solo is not installed and this image has no apt-get; bake from an image that has Chef" >&2
    exit 1
  fi
fi

# Cookbooks come with the image: /etc/muster/cookbooks first, then chef's own default place.
cat >"$MUSTER_DIR/solo.rb" <<'MUSTER_SOLO_RB'
cookbook_path ["/etc/muster/cookbooks", "/var/chef/cookbooks"]
role_path "/etc/muster/roles"
MUSTER_SOLO_RB
{{chef_environment}}

chef-solo --config "$MUSTER_DIR/solo.rb" --json-attributes "$MUSTER_DIR/dna.json" --no-color

{{agent_boot_install}}

# The agent registers this node's services once the node has converged. Images without it (not
# baked by muster) skip this; without a registry in the nodes file it has nowhere to register.
if [ '{{start_agent}}' != yes ]; then
  echo "muster: the nodes file names no registry (__base__.registry); the agent is not started" >&2
elif command -v systemctl >/dev/null 2>&1 && systemctl cat muster-agent.service >/dev/null 2>&1; then
  systemctl enable --now muster-agent.service
else
  echo "muster: this image has no muster-agent.service (bake it with muster packer:run); the agent is not started" >&2
fi
