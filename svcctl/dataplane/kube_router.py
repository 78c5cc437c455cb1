"""kube-router's service proxy: IPVS virtual servers it programs, read from `ipvsadm -Ln`.

The listing is ipvsadm's own (see ipvs.py); what differs is who wrote it and by which rules
(kube-router's pkg/controllers/proxy, not kube-proxy's):
- service addresses are bound to the dummy interface `kube-dummy-if` (not kube-ipvs0), and kube-router keeps
  no KUBE-CLUSTER-IP ipset;
- the scheduler comes from the Service annotation `kube-router.io/service.scheduler` (rr, lc, dh, sh, mh;
  default rr), its flags from `kube-router.io/service.schedflags`;
- `kube-router.io/service.dsr: tunnel` serves external IPs through firewall-mark (`FWM <mark>`) virtual servers
  whose real servers are reached by IPIP tunnel (Forward `Tunnel`): replies bypass the node (direct server
  return);
- `kube-router.io/service.local: "true"` sends external traffic (NodePorts, external IPs) only to this node's
  endpoints, like externalTrafficPolicy Local, while in-cluster traffic to the ClusterIP keeps every endpoint;
- a DSR service's firewall mark is kube-router's own hash of `<ip>-<protocol>-<port>` (FNV-1a, low 14 bits;
  on a collision it hashes `<ip>-<protocol>-<port>-<n>` for the next free n), set on the packet by a mangle
  rule `-d <ip> -p <protocol> --dport <port> -j MARK --set-mark <mark>` in PREROUTING and OUTPUT: the mangle
  rule names the mark's address for certain, the hash only for the first candidate;
- there is no topology-aware routing: hints are ignored;
- a terminating endpoint is kept with weight 0 while its connections drain (graceful termination).
"""

from __future__ import annotations

import re

from svcctl.dataplane.model import NodeRules, ServiceEntry
from svcctl.errors import InputError
from svcctl.lazyre import LazyPattern

__all__ = ["parse_kube_router", "looks_like_kube_router", "ANNOTATION_LOCAL", "ANNOTATION_SCHEDULER",
           "ANNOTATION_DSR", "ANNOTATION_SKIP_LB_IPS", "dsr_fwmark", "fwmark_of", "mangle_marks", "name_fwmark_entry"]

ANNOTATION_LOCAL = "kube-router.io/service.local"
ANNOTATION_SCHEDULER = "kube-router.io/service.scheduler"
ANNOTATION_SCHEDFLAGS = "kube-router.io/service.schedflags"
ANNOTATION_DSR = "kube-router.io/service.dsr"
ANNOTATION_SKIP_LB_IPS = "kube-router.io/service.skiplbips"  # load-balancer IPs get no virtual server
DSR_TUNNEL = "tunnel"  # the one DSR method kube-router serves through firewall marks
_FWMARK_BITS = 0x3FFF  # kube-router keeps marks to 14 bits
DUMMY_IF = "kube-dummy-if"


def looks_like_kube_router(ipvs_text: str, ip_addr_text: str | None = None, iptables_text: str | None = None) -> bool:
    """kube-router's own marks: its dummy interface, its iptables chains, or firewall-mark virtual servers
    with tunnel forwarding (DSR); kube-proxy makes none of these."""
    if ip_addr_text and DUMMY_IF in ip_addr_text:
        return True
    if iptables_text and "KUBE-ROUTER-" in iptables_text:
        return True
    # The mode registry asks of one text four times (two modes' probes, in detection and in the list of modes
    # present): the last text's answer is kept, with the text (so its identity cannot be another's). The literal
    # searches are memchr-fast where the regexes try every position; "Tunnel" first: its last letter is rare in a
    # kube-proxy table (FWM's M is in every `Masq` line: 6-12 ms a search of the 10,000-Service table)
    last_text, last_found = _LAST[0]  # (one pair, read and replaced whole: node reads run in threads)
    if last_text is ipvs_text:
        return last_found
    found = "Tunnel" in ipvs_text and "FWM" in ipvs_text and bool(
        re.search(r"^FWM\s+\d+", ipvs_text, re.M) and re.search(r"->\s+\S+\s+Tunnel\s", ipvs_text))
    _LAST[0] = (ipvs_text, found)
    return found


_LAST: list[tuple[str | None, bool]] = [(None, False)]


def dsr_fwmark(ip: str, protocol: str, port: int, increment: int = 0) -> int:
    """The firewall mark kube-router gives a DSR external IP (its generateUniqueFWMark): FNV-1a over
    `<ip>-<protocol>-<port>` (protocol lower-case, as kube-router keeps it), `-<n>` appended on the n-th retry
    after a collision, low 14 bits."""
    key = f"{ip}-{protocol.lower()}-{port}" + (f"-{increment}" if increment else "")
    h = 0x811C9DC5
    for byte in key.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h & _FWMARK_BITS


_MARK_RULE = LazyPattern(r"^-A (?:PREROUTING|OUTPUT) (?P<rule>.*-j MARK --set-(?:x)?mark (?P<mark>0x[0-9a-f]+|\d+)"
                        r"(?:/0xffffffff)?)\s*$", re.M)


def mangle_marks(iptables_text: str) -> dict[int, tuple[str, str, int]]:
    """Firewall mark -> (address, protocol, port) from kube-router's mangle rules in `iptables-save` output
    (`-A PREROUTING -d 198.18.0.100/32 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x3d9d/0xffffffff`)."""
    out: dict[int, tuple[str, str, int]] = {}
    table = ""
    for line in iptables_text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if table != "mangle" or "-j MARK" not in line:
            continue
        m = _MARK_RULE.match(line)
        if m is None:
            continue
        toks = m["rule"].split()
        opts = {toks[i]: toks[i + 1] for i in range(len(toks) - 1) if toks[i].startswith("-")}
        if "-d" not in opts or "-p" not in opts or "--dport" not in opts or not opts["--dport"].isdigit():
            continue
        addr = opts["-d"].split("/")[0]
        out[int(m["mark"], 0)] = (addr, opts["-p"].upper(), int(opts["--dport"]))
    return out


def fwmark_of(e: ServiceEntry) -> int | None:
    """The firewall mark of a firewall-mark virtual server (named or not), None for an address one."""
    return next((int(p.removeprefix("IPVS FWM ")) for p in e.path if p.startswith("IPVS FWM ")), None)


def name_fwmark_entry(e: ServiceEntry, address: str, protocol: str, port: int, how: str) -> None:
    """A firewall-mark virtual server is the DSR entry of `address:port/protocol`: give it that address."""
    mark = e.address.removeprefix("fwmark ")
    e.address, e.protocol, e.port = address, protocol, port
    e.notes.append(f"firewall mark {mark} is {address}:{port}/{protocol.lower()} ({how})")


def parse_kube_router(text: str, source: str, only: set[str] | None = None,
                      ip_addr_text: str | None = None, iptables_text: str | None = None) -> NodeRules:
    """`ipvsadm -Ln` on a kube-router node → NodeRules (mode kube-router). With the node's mangle rules
    (`iptables-save`), each DSR firewall-mark service is named by the rule that sets its mark."""
    from svcctl.dataplane.ipvs import parse_ip_addr, parse_ipvsadm

    rules = parse_ipvsadm(text, source)  # whole table: NodePorts carry no name or service address to filter by
    rules.mode = "kube-router"
    marks = mangle_marks(iptables_text) if iptables_text else {}
    bound: set[str] | None = None
    if ip_addr_text is not None:
        if DUMMY_IF not in ip_addr_text and ip_addr_text.strip():
            raise InputError(f"not `ip addr show {DUMMY_IF}` output", source="ip addr",
                             hint=f"kube-router binds service addresses to {DUMMY_IF}")
        bound = set(parse_ip_addr(ip_addr_text.replace(DUMMY_IF, "kube-ipvs0"), "ip addr"))
    for e in rules.services:
        e.notes = [n.replace("kube-proxy does not create these", "kube-router's DSR services")
                   .replace("kube-proxy's graceful termination", "graceful termination")
                   .replace("(kube-proxy uses Masq): real servers outside kube-proxy's control?",
                            "(kube-router's DSR: replies go straight from the backend to the client)")
                   for n in e.notes
                   if "kube-ipvs0" not in n and "KUBE-CLUSTER-IP" not in n and "give `ipset list`" not in n]
        dsr = e.protocol == "FWM"  # a VIP-less director: its address is never bound, by design
        if dsr:
            e.kind = "ExternalIP"
            e.notes.append("DSR (kube-router.io/service.dsr: tunnel): an external IP's traffic, marked by "
                           "kube-router's mangle rules")
            mark = int(e.address.removeprefix("fwmark "))
            if mark in marks:
                name_fwmark_entry(e, *marks[mark], how="kube-router's mangle rule sets it")
        elif 30000 <= e.port <= 32767 and (bound is None or e.address not in bound):
            e.kind = "NodePort"
        for b in e.backends:
            if b.draining:
                b.state = "terminating"
        if bound is not None and not dsr and e.kind != "NodePort" and e.address not in bound:
            e.notes.append(f"{e.address} is not bound to {DUMMY_IF}: the node does not accept packets for it")
    if only:
        from svcctl.dataplane.model import in_scope

        # NodePorts and unnamed firewall marks carry no service address: the analysis names them
        rules.services = [e for e in rules.services
                          if e.kind == "NodePort" or fwmark_of(e) is not None or in_scope(e, only)]
    rules.notes = [n for n in rules.notes if "kube-proxy" not in n] + [
        "kube-router's rules: scheduler from kube-router.io/service.scheduler, external traffic local only with "
        "kube-router.io/service.local, no topology-aware routing"]
    return rules
