#!/usr/bin/env bash
# Builds the real Kubernetes components the lab tests use as referee -- kube-apiserver,
# kube-controller-manager, kube-proxy and etcd, and kubectl (the plugin host and the latency baseline) --
# from the Go module proxy, once per version.
#
#   bash tests/lab/build.sh [VERSION]        # default: the newest release CI uses (LAB_VERSION below)
#
# The binaries land in $SVCCTL_LAB_CACHE/<version>/bin (default ~/.cache/svcctl-lab); when all five are
# there, nothing is done.  Nothing here is committed: neither sources (they live in Go's module cache)
# nor binaries.
#
# Why a wrapper module: k8s.io/kubernetes requires its 31+ staging modules as v0.0.0 and points them
# at ./staging with replace lines, which do not apply to a module that depends on it.  The wrapper
# replaces each one with its published k8s.io/<name> v0.<minor>.<patch>, copies the go/godebug lines,
# and pins etcd to the version Kubernetes itself lists (an unpinned etcd drags grpc/otel upgrades in).
set -euo pipefail

VERSION="${1:-${LAB_VERSION:-v1.37.2}}"
CACHE="${SVCCTL_LAB_CACHE:-$HOME/.cache/svcctl-lab}"
OUT="$CACHE/$VERSION/bin"
BINS=(etcd kube-apiserver kube-controller-manager kube-proxy kubectl)

have_all=1
for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || have_all=0; done
if [ "$have_all" = 1 ]; then
    echo "lab: $VERSION binaries present in $OUT" >&2
    exit 0
fi

command -v go >/dev/null || { echo "lab: go is not installed" >&2; exit 2; }
start=$(date +%s)
WORK="$CACHE/$VERSION/wrapper"
mkdir -p "$WORK" "$OUT"
cd "$WORK"

staging_ver="v0.${VERSION#v1.}"
cat > go.mod <<MOD
module svcctl.local/lab
go 1.26
require k8s.io/kubernetes $VERSION
MOD
go mod download -json "k8s.io/kubernetes@$VERSION" >/dev/null
KMOD="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$VERSION.mod"

# The go/godebug lines, the staging modules (required as v0.0.0) and etcd's version, all from
# Kubernetes' own go.mod.
go_line=$(grep -m1 -E '^go [0-9]' "$KMOD")
godebug=$(grep -E '^godebug ' "$KMOD" || true)
mapfile -t staging < <(awk '$2 == "v0.0.0" && $1 ~ /^k8s.io\// {print $1}' "$KMOD" | sort -u)
etcd_ver=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$KMOD")
[ -n "$etcd_ver" ] || { echo "lab: no etcd version in $KMOD" >&2; exit 2; }

{
    echo "module svcctl.local/lab"
    echo "$go_line"
    [ -n "$godebug" ] && echo "$godebug"
    echo "require ("
    echo "    k8s.io/kubernetes $VERSION"
    echo "    go.etcd.io/etcd/server/v3 $etcd_ver"
    echo ")"
    echo "replace ("
    for m in "${staging[@]}"; do echo "    $m => $m $staging_ver"; done
    echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package lab

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
echo "lab: $VERSION: ${#staging[@]} staging modules at $staging_ver, etcd $etcd_ver" >&2
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
GOFLAGS=-mod=mod go mod download
t_mod=$(( $(date +%s) - start ))

minor="${VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
export CGO_ENABLED=0
GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubectl
GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || { echo "lab: $b was not built" >&2; exit 1; }; done
echo "lab: $VERSION built in $(( $(date +%s) - start )) s (modules ${t_mod} s) -> $OUT" >&2
