"""Targeted node reads in kube-proxy's IPVS mode: the Service's virtual servers and their glue, not the tables.

`ipvsadm -Ln` lists every virtual server of the node, `ipset list` every member of KUBE-CLUSTER-IP and
`ip addr show kube-ipvs0` every bound service address: all three grow with the Services the node holds. One
Service needs (pkg/proxy/ipvs/proxier.go):
- its virtual servers, each asked for by address: `ipvsadm -Ln -t|-u|--sctp-service ADDR:PORT` (`[v6]:port`)
  for each cluster IP, external IP and load-balancer IP, and for its NodePort on every node address. ipvsadm's
  `list_service` prints the two title lines and that one entry, the format the ordinary parser reads; a missing
  one exits 1 with `No such service` (`Memory allocation problem` from ipvsadm ≤ 1.29 built with libnl 3, whose
  error codes it read as errno: fixed upstream by "catch the original errno from netlink answer");
- the node addresses a NodePort is served on: kube-proxy makes one virtual server per node address (all of the
  node's addresses but those on kube-ipvs0, loopback and IPv6 link-local ones). `ip -o addr show up` lists them:
  kube-ipvs0 is a dummy link kube-proxy never sets up, so its thousands of addresses are not in the answer (and
  the Node object's addresses would miss the node's other links, which kube-proxy also serves);
- the glue, per address: `ip -o addr show dev kube-ipvs0 to ADDR/32` (empty when not bound), and
  `ipset test SET MEMBER` for the set kube-proxy puts it in (KUBE-CLUSTER-IP, KUBE-EXTERNAL-IP[-LOCAL],
  KUBE-LOAD-BALANCER, KUBE-NODE-PORT-TCP/UDP, KUBE-NODE-PORT-SCTP-HASH; `KUBE-6-…` for IPv6). ipset says so on
  stderr, `… is in set …` (exit 0) or `… is NOT in set …` (exit 1); any other answer is not used.

The answers are put back together as the whole reads would print them (an `ipvsadm -Ln` listing of those
entries, an `ipset list` of those sets with the members found, the bound addresses as `ip addr` lines) and
read by the ordinary parsers. A virtual server the API says should exist and the node does not have is
confirmed by one whole `ipvsadm -Ln` before anything is concluded (sources/targeted.py's node_dumps).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import EndpointSlice, Service
from svcctl.sources.targeted_base import Exec, ReadFailed, TargetedRead, planned, run_round

SWITCH = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}
_SETS = LazyPattern(r"KUBE-(?:6-)?(?:CLUSTER-IP|EXTERNAL-IP|EXTERNAL-IP-LOCAL|LOAD-BALANCER|NODE-PORT-TCP|"
                   r"NODE-PORT-UDP|NODE-PORT-SCTP-HASH)")
_V4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_V6 = r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*"
_PORT = r"(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})"
_ADDRPORT = LazyPattern(rf"{_V4}:{_PORT}|\[{_V6}\]:{_PORT}")
_MEMBER = LazyPattern(rf"(?:{_V4}|{_V6}),(?:tcp|udp|sctp):{_PORT}|{_PORT}")
_HOST = LazyPattern(rf"{_V4}/32|{_V6}/128")
NO_SUCH_SERVICE = ("No such service", "Memory allocation problem")
DUMMY = "kube-ipvs0"
NODE_ADDRESSES = ["ip", "-o", "addr", "show", "up"]
LOOP_BACK_COMMENT = "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"
# IPVS mode's two iptables glue rules the parser checks for, exactly as proxier.go writes them (acceptIPVSTraffic,
# writeIptablesRules); each is the same on every node, so it is checked with `-C` (argv) rather than read
# (KUBE-SERVICES and KUBE-POSTROUTING are small in IPVS mode, but -S of KUBE-SERVICES is not targeted in
# iptables mode): (chain, rule as iptables-save prints it, the -C argv)
GLUE_RULES = [
    ("KUBE-SERVICES", "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
     ["iptables", "-t", "nat", "-C", "KUBE-SERVICES", "-m", "set", "--match-set", "KUBE-CLUSTER-IP", "dst,dst", "-j",
      "ACCEPT"]),
    ("KUBE-POSTROUTING", f'-A KUBE-POSTROUTING -m comment --comment "{LOOP_BACK_COMMENT}" -m set --match-set '
                         "KUBE-LOOP-BACK dst,dst,src -j MASQUERADE",
     ["iptables", "-t", "nat", "-C", "KUBE-POSTROUTING", "-m", "comment", "--comment", LOOP_BACK_COMMENT, "-m", "set",
      "--match-set", "KUBE-LOOP-BACK", "dst,dst,src", "-j", "MASQUERADE"]),
]


def allowed(argv: list[str]) -> bool:
    """The IPVS targeted shapes, all read-only: `ipvsadm -Ln -t|-u|--sctp-service ADDR:PORT` (one virtual server),
    `ipset test SET MEMBER` for one of kube-proxy's service sets (a lookup: `test` changes nothing),
    `ip -o addr show dev kube-ipvs0 to ADDR/32|/128`, `ip -o addr show up`, and the `-C` checks of GLUE_RULES."""
    if any(argv == g[2] for g in GLUE_RULES):
        return True
    if argv[:2] == ["ipvsadm", "-Ln"]:
        return len(argv) == 4 and argv[2] in SWITCH.values() and bool(_ADDRPORT.fullmatch(argv[3]))
    if argv[:2] == ["ipset", "test"]:
        return len(argv) == 4 and bool(_SETS.fullmatch(argv[2])) and bool(_MEMBER.fullmatch(argv[3]))
    if argv == NODE_ADDRESSES:
        return True
    return (len(argv) == 8 and argv[:7] == ["ip", "-o", "addr", "show", "dev", DUMMY, "to"]
            and bool(_HOST.fullmatch(argv[7])))


def _ap(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass
class VS:
    """One virtual server kube-proxy makes for the Service, and the ipset member it adds for it."""

    protocol: str  # TCP | UDP | SCTP
    address: str
    port: int
    what: str
    ipset: tuple[str, str] | None = None  # (set, member)
    bind: bool = True  # its address is bound to kube-ipvs0 (not a NodePort's node address)

    def argv(self) -> list[str]:
        return ["ipvsadm", "-Ln", SWITCH[self.protocol], _ap(self.address, self.port)]

    @property
    def v6(self) -> bool:
        return ":" in self.address


@dataclass
class Plan:
    servers: list[VS] = field(default_factory=list)
    nodeports: list[tuple[str, int, str, str]] = field(default_factory=list)  # (protocol, port, spn, family)
    etp_local: dict[tuple[str, int], bool] = field(default_factory=dict)


def _set(v6: bool, name: str) -> str:
    return ("KUBE-6-" if v6 else "KUBE-") + name


def plan(services: Iterable[tuple[Service, list[EndpointSlice] | None]]) -> Plan:
    """The virtual servers of the Services' addresses; NodePorts are kept apart (they need the node's addresses)."""
    from svcctl.dataplane.hashes import service_port_name

    out = Plan()
    for one in planned(services, "4", "6"):
        svc = one.service
        local = svc.external_traffic_policy == "Local"
        fams = one.families
        for p in svc.ports:
            proto = p.protocol.upper()
            if proto not in SWITCH:
                continue
            spn = service_port_name(svc.meta.namespace, svc.meta.name, p.name)
            member = proto.lower()
            addrs = [(ip, "cluster IP", "CLUSTER-IP") for ip in svc.cluster_ips]
            addrs += [(ip, "external IP", "EXTERNAL-IP-LOCAL" if local else "EXTERNAL-IP") for ip in svc.external_ips]
            addrs += [(ip, "load-balancer IP", "LOAD-BALANCER") for ip in svc.load_balancer_ips]
            for ip, kind, name in addrs:
                if not ip or ip == "None":
                    continue
                vs = VS(proto, ip, p.port, f"the {kind} virtual server of {spn} ({_ap(ip, p.port)})",
                        (_set(":" in ip, name), f"{ip},{member}:{p.port}"))
                if all((v.protocol, v.address, v.port) != (vs.protocol, vs.address, vs.port) for v in out.servers):
                    out.servers.append(vs)
            if p.node_port:
                for f in fams:
                    out.nodeports.append((proto, p.node_port, spn, f))
                    out.etp_local[(proto, p.node_port)] = local
    return out


def _node_addresses(text: str) -> list[str]:
    """The addresses kube-proxy serves a NodePort on, from `ip -o addr show up`: every address but those on
    kube-ipvs0, loopback and IPv6 link-local ones (proxier.go: GetAllLocalAddressesExcept(kube-ipvs0))."""
    out: list[str] = []
    for line in text.splitlines():
        toks = line.split()
        if len(toks) < 4 or toks[2] not in ("inet", "inet6"):
            if line.strip() and not re.match(r"^\d+: ", line):
                raise ReadFailed("`ip -o addr show up` did not answer like ip -o")
            continue
        if toks[1].rstrip(":").split("@")[0] == DUMMY:
            continue
        try:
            ip = ipaddress.ip_address(toks[3].split("/", 1)[0])
        except ValueError:
            raise ReadFailed("`ip -o addr show up` did not answer like ip -o") from None
        if ip.is_loopback or (ip.version == 6 and ip.is_link_local) or str(ip) in out:
            continue
        out.append(str(ip))
    return out


def _nodeport_servers(pl: Plan, addrs: list[str]) -> list[VS]:
    out: list[VS] = []
    for proto, port, spn, fam in pl.nodeports:
        for ip in (a for a in addrs if (":" in a) == (fam == "6")):
            v6 = ":" in ip
            ipset = (_set(v6, "NODE-PORT-SCTP-HASH"), f"{ip},sctp:{port}") if proto == "SCTP" else \
                (_set(v6, f"NODE-PORT-{proto}"), str(port))
            vs = VS(proto, ip, port, f"the NodePort virtual server of {spn} ({_ap(ip, port)})", ipset, bind=False)
            if all((v.protocol, v.address, v.port) != (vs.protocol, vs.address, vs.port) for v in out):
                out.append(vs)
    return out


_PROTO_NUM = {"TCP": 6, "UDP": 17, "SCTP": 132}


def read_targeted(execute: Exec, services: Iterable[tuple[Service, list[EndpointSlice] | None]],
                  read: TargetedRead | None = None, iptables: bool = True) -> TargetedRead:
    """The Service's virtual servers and glue, in two rounds (the node's addresses first when it has a NodePort,
    with everything that does not need them); texts under the whole reads' keys: ipvs, ipset, kube-ipvs0, and
    iptables (GLUE_RULES checked; `iptables` False: the caller has the whole iptables-save already)."""
    read = read or TargetedRead()
    pl = plan(services)
    if not pl.servers and not pl.nodeports:
        return read
    entries: dict[tuple[str, str, int], list[str]] = {}
    members: dict[str, list[str]] = {}  # set -> members found (a set asked about with none found: empty)
    bound: list[str] = []
    dummy_missing = False
    glue_found: list[tuple[str, str]] = []
    missing: list[str] = []
    todo = list(pl.servers)
    first = True
    while todo or first:
        argvs: list[list[str]] = [NODE_ADDRESSES] if first and pl.nodeports else []
        asked_addrs = len(argvs)
        glue = list(GLUE_RULES) if first and iptables else []
        argvs += [g[2] for g in glue]
        argvs += [v.argv() for v in todo]
        tests = list(dict.fromkeys(v.ipset for v in todo if v.ipset is not None))
        argvs += [["ipset", "test", s, m] for s, m in tests]
        binds = list(dict.fromkeys(v.address for v in todo if v.bind and v.address not in bound))
        argvs += [["ip", "-o", "addr", "show", "dev", DUMMY, "to", f"{a}/{128 if ':' in a else 32}"] for a in binds]
        results = run_round(execute, argvs, read, allowed) if argvs else []
        nxt: list[VS] = []
        i = 0
        if asked_addrs:
            out, err, rc = results[0]
            if rc:
                raise ReadFailed(f"`{' '.join(NODE_ADDRESSES)}` exited with {rc}: {err.strip()[:200]}")
            nxt = _nodeport_servers(pl, _node_addresses(out))
            i = 1
        for chain, line, argv in glue:
            out, err, rc = results[i]
            i += 1
            if rc == 0 and not out.strip():
                glue_found.append((chain, line))
            elif rc not in (1, 2):  # 1: no such rule / chain, 2: no such set (kube-proxy writes none when empty)
                raise ReadFailed(f"`{' '.join(argv[:5])} …` exited with {rc}: {err.strip()[:200]}")
        for v in todo:
            out, err, rc = results[i]
            i += 1
            if rc == 0:
                lines = out.rstrip("\n").splitlines()
                if len(lines) < 3 or not lines[0].startswith("Prot LocalAddress:Port") \
                        or not lines[1].lstrip().startswith("-> RemoteAddress:Port"):
                    raise ReadFailed(f"`{' '.join(v.argv())}` did not answer like ipvsadm -Ln -t")
                entries[(v.protocol, v.address, v.port)] = [lines[0], lines[1], *lines[2:]]
            elif rc == 1 and err.strip() in NO_SUCH_SERVICE:
                missing.append(v.what)
            else:
                raise ReadFailed(f"`{' '.join(v.argv())}` exited with {rc}: {err.strip()[:200]}")
        for s, m in tests:
            out, err, rc = results[i]
            i += 1
            msg = (err + out).strip()
            if rc == 0 and msg.endswith(f"is in set {s}."):
                members.setdefault(s, []).append(m)
            elif rc == 1 and msg.endswith(f"is NOT in set {s}."):
                members.setdefault(s, [])
            elif rc == 1 and msg.endswith("The set with the given name does not exist"):
                pass  # not in `ipset list` either
            else:
                raise ReadFailed(f"`ipset test {s} {m}` did not answer like ipset ({rc}): {msg[:200]}")
        for a in binds:
            out, err, rc = results[i]
            i += 1
            if rc == 1 and "does not exist" in err:
                dummy_missing = True
            elif rc:
                raise ReadFailed(f"`ip -o addr show dev {DUMMY}` exited with {rc}: {err.strip()[:200]}")
            elif out.strip():
                toks = out.split()
                if len(toks) < 4 or toks[3].split("/")[0] != a:
                    raise ReadFailed(f"`ip -o addr show dev {DUMMY} to {a}` did not answer like ip -o")
                bound.append(a)
        todo, first = nxt, False
    if missing:
        read.missing["ipvs"] = missing[0]
    read.texts["ipvs"] = _listing(entries)
    read.texts["ipset"] = "".join(f"Name: {s}\nMembers:\n" + "".join(f"{m}\n" for m in ms) + "\n"
                                  for s, ms in members.items())
    if iptables:  # the glue rules found, as iptables-save prints them
        read.texts["iptables"] = ("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
                                  + "".join(f"{ln}\n" for _, ln in glue_found) + "COMMIT\n")
    if not dummy_missing:
        # the bound addresses as `ip addr show` prints them (the parser reads the `inet` lines)
        read.texts["kube-ipvs0"] = "".join(f"    {'inet6' if ':' in a else 'inet'} {a}/{128 if ':' in a else 32} "
                                           f"scope global {DUMMY}\n" for a in bound)
    return read


def _listing(entries: dict[tuple[str, str, int], list[str]]) -> str:
    """The entries as one `ipvsadm -Ln` listing: its title once, the virtual servers in ipvsadm's order
    (ipvs_cmp_services: address family, protocol, address, port)."""
    if not entries:
        return ""
    keys = sorted(entries, key=lambda k: (":" in k[1], _PROTO_NUM[k[0]], ipaddress.ip_address(k[1]).packed, k[2]))
    title = entries[keys[0]][:2]
    return "\n".join([*title, *(ln for k in keys for ln in entries[k][2:])]) + "\n"
