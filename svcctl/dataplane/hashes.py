"""kube-proxy's chain names, recomputed so a chain can be tied to a Service and endpoint without comments.

iptables mode (`pkg/proxy/iptables/proxier.go`): `portProtoHash` and `servicePortEndpointChainName`.
nftables mode (`pkg/proxy/nftables/proxier.go`): `hashAndTruncate` and the service / endpoint chain name bases.
"""

from __future__ import annotations

import base64
import hashlib

IPTABLES_SERVICE_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-")
IPTABLES_ENDPOINT_PREFIX = "KUBE-SEP-"
NFT_NAME_BASE_MAX = 256 - 16  # knftables.NameLengthMax - chainNamePrefixLengthMax
NFT_SERVICE_PREFIXES = ("service-", "local-", "external-", "firewall-")
NFT_ENDPOINT_PREFIXES = ("endpoint-", "affinity-")


def _b32_sha256(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def service_port_name(namespace: str, service: str, port_name: str = "") -> str:
    """kube-proxy's ServicePortName.String(): `ns/svc:port`, or `ns/svc` for an unnamed port."""
    base = f"{namespace}/{service}"
    return f"{base}:{port_name}" if port_name else base


def spn_variants(namespace: str, service: str, port_name: str = "") -> list[str]:
    """Every spelling kube-proxy ever hashed: unnamed ports were `ns/svc:` (with the colon) before ~2017."""
    spn = service_port_name(namespace, service, port_name)
    return [spn] if port_name else [spn, spn + ":"]


def port_proto_hash(spn: str, protocol: str) -> str:
    """The 16-character suffix of KUBE-SVC-/SVL-/EXT-/FW- chains."""
    return _b32_sha256(spn + protocol.lower())[:16]


def service_chain(spn: str, protocol: str, prefix: str = "KUBE-SVC-") -> str:
    return prefix + port_proto_hash(spn, protocol)


def service_chains(spn: str, protocol: str) -> dict[str, str]:
    """All four chains of one service port, keyed by prefix (`KUBE-SVC-` …)."""
    h = port_proto_hash(spn, protocol)
    return {p: p + h for p in IPTABLES_SERVICE_PREFIXES}


def endpoint_string(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def endpoint_chain(spn: str, protocol: str, ip: str, port: int) -> str:
    """KUBE-SEP- chain of one endpoint of one service port (servicePortEndpointChainName)."""
    return IPTABLES_ENDPOINT_PREFIX + _b32_sha256(spn + protocol.lower() + endpoint_string(ip, port))[:16]


# ------------------------------------------------------------------ nftables


def hash_and_truncate(name: str) -> str:
    """First 8 chars of base32(sha256(name)) + "-" + name, cut to 240 with "..." like kube-proxy."""
    out = _b32_sha256(name)[:8] + "-" + name
    if len(out) > NFT_NAME_BASE_MAX:
        out = out[: NFT_NAME_BASE_MAX - 3] + "..."
    return out


def nft_service_base(namespace: str, service: str, protocol: str, port_name: str = "") -> str:
    """`HASH-ns/svc/proto/portName` (unnamed port: ends with `/tcp/`)."""
    return hash_and_truncate(f"{namespace}/{service}/{protocol.lower()}/{port_name}")


def nft_endpoint_base(namespace: str, service: str, protocol: str, port_name: str, ip: str, port: int) -> str:
    """`HASH-ns/svc/proto/portName__ip/port`, IPv6 colons written as dots."""
    return hash_and_truncate(
        f"{namespace}/{service}/{protocol.lower()}/{port_name}__{ip.replace(':', '.')}/{port}")


def nft_service_chains(namespace: str, service: str, protocol: str, port_name: str = "") -> dict[str, str]:
    base = nft_service_base(namespace, service, protocol, port_name)
    return {p: p + base for p in NFT_SERVICE_PREFIXES}


def nft_endpoint_chains(namespace: str, service: str, protocol: str, port_name: str, ip: str,
                        port: int) -> dict[str, str]:
    base = nft_endpoint_base(namespace, service, protocol, port_name, ip, port)
    return {p: p + base for p in NFT_ENDPOINT_PREFIXES}
