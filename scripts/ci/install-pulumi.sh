#!/usr/bin/env bash
# Builds the Pulumi CLI from its Go module into $MUSTER_TOOLS/bin (default
# ~/.cache/muster/tools/bin). Idempotent: a binary that already reports the wanted version is left
# alone; Go's module cache (~/go/pkg/mod) and build cache make a rebuild after a version bump cheap.
#
# The version must match @pulumi/pulumi in package.json (the Automation API parses `pulumi version`).
#
# No command provider plugin: muster runs its commands (bake, retention) as Node dynamic-provider
# resources, whose host ships in @pulumi/pulumi. pulumi-resource-command could not be built here
# anyway: `go mod download github.com/pulumi/pulumi-command/provider@v1.2.1` fails (the module
# proxy answers 403 "This module version is not available" for it, its version list and its
# pseudo-versions; the repository's root module v1.2.1 carries no Go code).
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-v3.248.0}"

PULUMI_MODULE=github.com/pulumi/pulumi/pkg/v3
PULUMI_SDK_MODULE=github.com/pulumi/pulumi/sdk/v3

tools="${MUSTER_TOOLS:-$HOME/.cache/muster/tools}"
bin="$tools/bin"
src="$tools/src"
mkdir -p "$bin" "$src"
started=$(date +%s)

log() { echo "install-pulumi: $*" >&2; }

command -v go >/dev/null || { log "go is required on PATH"; exit 1; }

# `go install mod/cmd@version` refuses modules whose go.mod has replace directives, so both binaries
# are built from a wrapper module under $tools/src that requires the module and repeats its
# non-local replaces (local ones such as pkg/v3's `sdk/v3 => ../sdk` become plain requires).
copy_replaces() { # <module@version> <wrapper dir>
  local gomod
  local old oldv new newv
  gomod="$(cd "$2" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [ -n "$gomod" ] || { log "no go.mod for $1"; return 1; }
  awk '
    /^replace[[:space:]]*\(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    /^replace[[:space:]]/ { sub(/^replace[[:space:]]+/, ""); print; next }
    block { print }
  ' "$gomod" | sed 's|//.*||' | while read -r line; do
    [ -n "$line" ] || continue
    local left="${line%%=>*}" right="${line#*=>}"
    read -r old oldv <<<"$left"
    read -r new newv <<<"$right"
    case "$new" in .*|/*) continue ;; esac
    (cd "$2" && go mod edit -replace="${old}${oldv:+@$oldv}=${new}${newv:+@$newv}")
  done
}

# Writes a wrapper module requiring <module@version>... and resolves the import graph of <package>
# at <version> (without a version `go get` would upgrade the module and everything it needs).
prepare_wrapper() { # <dir> <package> <version> <module@version>...
  local dir="$1" pkg="$2" version="$3"
  shift 3
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'module muster.local/build/%s\n\ngo 1.25\n' "$(basename "$dir")" >"$dir/go.mod"
  local mv
  for mv in "$@"; do
    (cd "$dir" && go mod edit -require="$mv")
  done
  copy_replaces "$1" "$dir"
  # Fills go.mod/go.sum with everything the main package imports, at the versions the module pins.
  (cd "$dir" && GOFLAGS=-mod=mod go get "$pkg@$version")
}

# The module version a Go binary was built from, read from its build info, so that a stamped
# version string cannot hide a binary built from other sources.
built_from() { # <binary> <module>
  # `mod` when the main package lives in that module (the wrapper module itself is not recorded).
  go version -m "$1" 2>/dev/null | awk -v m="$2" '($1 == "mod" || $1 == "dep") && $2 == m { print $3; exit }'
}

install_pulumi() {
  local have=""
  if [ -x "$bin/pulumi" ] && [ "$(built_from "$bin/pulumi" "$PULUMI_MODULE")" = "$PULUMI_VERSION" ]; then
    have="$("$bin/pulumi" version 2>/dev/null || true)"
  fi
  if [ "$have" = "$PULUMI_VERSION" ]; then
    log "pulumi $PULUMI_VERSION already at $bin/pulumi, nothing to do"
    return
  fi
  log "building pulumi $PULUMI_VERSION (found: ${have:-none}); from cold caches this takes about 5-8 minutes on 2 cores"
  local dir="$src/pulumi-$PULUMI_VERSION" pkg="$PULUMI_MODULE/cmd/pulumi"
  prepare_wrapper "$dir" "$pkg" "$PULUMI_VERSION" "$PULUMI_MODULE@$PULUMI_VERSION" "$PULUMI_SDK_MODULE@$PULUMI_VERSION"
  # Unstamped, `pulumi version` prints a dev string the Automation API refuses to parse.
  (cd "$dir" && go build -trimpath -o "$bin/pulumi.new" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" "$pkg")
  mv -f "$bin/pulumi.new" "$bin/pulumi"
  have="$("$bin/pulumi" version)"
  [ "$have" = "$PULUMI_VERSION" ] || { log "built pulumi reports '$have', expected $PULUMI_VERSION"; exit 1; }
  local from
  from="$(built_from "$bin/pulumi" "$PULUMI_MODULE")"
  [ "$from" = "$PULUMI_VERSION" ] || { log "built pulumi from $PULUMI_MODULE $from, expected $PULUMI_VERSION"; exit 1; }
  log "installed pulumi $have at $bin/pulumi"
}

install_pulumi
log "done in $(($(date +%s) - started))s"
