#!/bin/sh
# muster-converge: the one command the muster agent may run as root (through sudo, see
# /etc/sudoers.d/muster). The bake installs it as /usr/local/sbin/muster-converge, owned by root,
# mode 0755. This file is yours to change; its content is part of the Packer template hash, so a
# change here rebakes the image.
#
#   muster-converge ATTRIBUTES [RUN_LIST] [RELEASE_DIR]
#
# ATTRIBUTES   the attributes file the agent wrote: a regular file under /var/lib/muster
# RUN_LIST     empty, or comma-separated recipe[...] / role[...] items that replace solo.rb's
# RELEASE_DIR  empty, or the current release's directory under /var/lib/muster/releases
#
# The agent passes its MUSTER_* values as arguments because sudo drops the environment. Every
# argument is checked here, before chef-solo starts: the caller is the agent's unprivileged user,
# and this script is the whole of what the sudo rule lets it do. What it cannot check: the
# attributes and a release's cookbooks are the agent's to choose (that is its job), so whoever runs
# as the muster user decides what chef converges. See "The agent on a node" in the README.
set -eu
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

STATE_ROOT=/var/lib/muster
SOLO_RB=/etc/muster/solo.rb
CHEF_SOLO=chef-solo

usage() {
  echo "muster-converge: $1" >&2
  echo "usage: muster-converge ATTRIBUTES [RUN_LIST] [RELEASE_DIR] (ATTRIBUTES and RELEASE_DIR under $STATE_ROOT)" >&2
  exit 64
}

# A path under $STATE_ROOT: absolute, only safe characters, no "." or ".." segment, so what is
# checked is what chef-solo opens.
under_state_root() {
  case "$1" in
    "$STATE_ROOT"/*) ;;
    *) return 1 ;;
  esac
  case "$1" in
    *[!A-Za-z0-9_./-]* | */./* | */../* | */. | */.. | *//*) return 1 ;;
  esac
  return 0
}

[ "$#" -ge 1 ] && [ "$#" -le 3 ] || usage "expected 1 to 3 arguments, got $#"
attributes=$1
run_list=${2:-}
release_dir=${3:-}

under_state_root "$attributes" || usage "the attributes file must be a plain path under $STATE_ROOT, got '$attributes'"
[ -f "$attributes" ] && [ ! -L "$attributes" ] || usage "the attributes file $attributes is not a regular file"

if [ -n "$run_list" ]; then
  # Items as chef writes them: recipe[cookbook] or recipe[cookbook::recipe] (@version allowed), role[name].
  # Split on commas only: no globbing (role[x] would match a file named "rolex").
  set -f
  old_ifs=$IFS
  IFS=,
  for item in $run_list; do
    case "$item" in
      recipe\[*\] | role\[*\]) ;;
      *) IFS=$old_ifs; usage "run list item '$item' is not recipe[...] or role[...]" ;;
    esac
    inner=${item#*\[}
    inner=${inner%\]}
    case "$inner" in
      '' | *[!A-Za-z0-9_.:@-]*) IFS=$old_ifs; usage "run list item '$item' has characters chef names do not use" ;;
    esac
  done
  IFS=$old_ifs
  set +f
fi

if [ -n "$release_dir" ]; then
  case "$release_dir" in
    "$STATE_ROOT"/releases/*) ;;
    *) usage "the release directory must be under $STATE_ROOT/releases, got '$release_dir'" ;;
  esac
  under_state_root "$release_dir" || usage "the release directory must be a plain path under $STATE_ROOT/releases, got '$release_dir'"
  [ -d "$release_dir/cookbooks" ] || usage "the release directory $release_dir has no cookbooks/"
fi

set -- --config "$SOLO_RB" --json-attributes "$attributes" --no-color
[ -z "$run_list" ] || set -- "$@" --override-runlist "$run_list"
[ -z "$release_dir" ] || set -- "$@" --config-option "cookbook_path=$release_dir/cookbooks"
exec "$CHEF_SOLO" "$@"
