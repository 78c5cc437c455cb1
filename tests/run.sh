#!/usr/bin/env bash
# The one command that runs svcctl's tests on a fresh Debian machine (as root, or with sudo for apt):
# installs the system tools the tests drive for real (iptables, nft, conntrack, dnsmasq, ipvsadm, iproute2;
# zsh and fish for the completion scripts),
# builds the real kube-apiserver/controller-manager/kube-proxy/etcd for the lab tests (cached),
# installs svcctl with its test extras, checks lint and types, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in iptables-restore nft conntrack dnsmasq ipvsadm ip openssl zsh fish socat ipset; do
    command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing system packages for: ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        iptables nftables conntrack dnsmasq-base ipvsadm iproute2 openssl kmod zsh fish socat ipset >/dev/null
fi

# The real Kubernetes components the lab tests use as referee (tests/lab/): built once from the Go module proxy
# and cached per version in ~/.cache/svcctl-lab (10-25 minutes cold on 2 cores, kube-router's included; nothing to do after).
bash tests/lab/build.sh
# kube-router, only as a real NetworkPolicy engine for tests/lab/test_lab_netpol.py (cached the same way)
bash tests/lab/build_kube_router.sh

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check svcctl tests benchmarks
python3 -m mypy
lint-imports  # the layers and no import cycles (pyproject.toml [tool.importlinter])
python3 -m pytest -q "$@"
