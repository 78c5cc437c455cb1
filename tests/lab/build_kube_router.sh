#!/usr/bin/env bash
# Builds kube-router -- used by the lab only as a real NetworkPolicy engine (its netpol controller,
# run with the firewall alone) -- from the Go module proxy, once per version.
#
#   bash tests/lab/build_kube_router.sh [VERSION]   # default: KUBE_ROUTER_VERSION below
#
# The binary lands in $SVCCTL_LAB_CACHE/kube-router/<version>/bin (default ~/.cache/svcctl-lab); when it
# is there, nothing is done.  Nothing here is committed: neither sources (Go's module cache) nor binaries.
#
# Version: the proxy serves github.com/cloudnativelabs/kube-router/v2 only at v2.1.0 (checked with
# `go list -m -versions`; later tags answer "not available"), so that is the default.  It runs only
# inside a test-created network namespace against the lab's own API server.
set -euo pipefail

VERSION="${1:-${KUBE_ROUTER_VERSION:-v2.1.0}}"
CACHE="${SVCCTL_LAB_CACHE:-$HOME/.cache/svcctl-lab}"
OUT="$CACHE/kube-router/$VERSION/bin"

if [ -x "$OUT/kube-router" ]; then
    echo "lab: kube-router $VERSION present in $OUT" >&2
    exit 0
fi

command -v go >/dev/null || { echo "lab: go is not installed" >&2; exit 2; }
start=$(date +%s)
WORK="$CACHE/kube-router/$VERSION/wrapper"
mkdir -p "$WORK" "$OUT"
cd "$WORK"

MOD=github.com/cloudnativelabs/kube-router/v2
go mod download -json "$MOD@$VERSION" >/dev/null
KMOD="$(go env GOMODCACHE)/cache/download/$MOD/@v/$VERSION.mod"
go_line=$(grep -m1 -E '^go [0-9]' "$KMOD")
{
    echo "module svcctl.local/labkr"
    echo "$go_line"
    echo "require $MOD $VERSION"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package labkr

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
GO
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
GOFLAGS=-mod=mod go mod download
export CGO_ENABLED=0
GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X $MOD/pkg/version.Version=$VERSION" \
    -o "$OUT/kube-router" "$MOD/cmd/kube-router"
[ -x "$OUT/kube-router" ] || { echo "lab: kube-router was not built" >&2; exit 1; }
echo "lab: kube-router $VERSION built in $(( $(date +%s) - start )) s -> $OUT" >&2
