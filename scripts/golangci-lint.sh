#!/usr/bin/env bash
# scripts/golangci-lint.sh ARGS...: runs golangci-lint of the version the repository is checked
# with (.golangci.yml), from PATH or the tools cache, building it there with `go install` first
# if neither has it. Used by scripts/test.sh and `make lint`:
#
#   scripts/golangci-lint.sh run ./...
#
# SANKE_TOOLS_CACHE=dir puts the tools cache under dir/sanke-tools (default ~/.cache/sanke-tools).
set -euo pipefail

version=2.15.0
tools="${SANKE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}}/sanke-tools"

for c in "$(command -v golangci-lint 2>/dev/null || true)" "$tools/golangci-lint"; do
  if [ -n "$c" ] && [ -x "$c" ] && "$c" --version 2>/dev/null | grep -q "version $version "; then
    exec "$c" "$@"
  fi
done
echo "building golangci-lint v$version into $tools" >&2
mkdir -p "$tools"
GOBIN="$tools" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$version"
exec "$tools/golangci-lint" "$@"
