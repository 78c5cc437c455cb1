#!/usr/bin/env bash
# The one command that runs svcctl's tests on a fresh Debian machine (as root, or with sudo for apt):
# installs the system tools the tests drive for real (iptables, nft, conntrack, dnsmasq, ipvsadm, iproute2;
# zsh and fish for the completion scripts),
# installs svcctl with its test extras, checks lint and types, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in iptables-restore nft conntrack dnsmasq ipvsadm ip openssl zsh fish; do
    command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing system packages for: ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        iptables nftables conntrack dnsmasq-base ipvsadm iproute2 openssl kmod zsh fish >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check svcctl tests benchmarks
python3 -m mypy
python3 -m pytest -q "$@"
