"""Targeted node reads: ask a node's kube-proxy Pod only for the rules of the Services asked about.

A whole `iptables-save` moves ≈ 4.8 kB per Service the node holds (≈ 240 MB at 50,000 Services) to answer a
question about ten rules. kube-proxy's chain names are recomputed from the Service (svcctl/dataplane/hashes.py),
so the node can be asked for exactly those chains:

- `iptables -t nat -S KUBE-SVC-…` (and `KUBE-SVL-` / `KUBE-EXT-` / `KUBE-FW-` when the Service uses them, then
  every `KUBE-SEP-…` the chains jump to, and `KUBE-MARK-MASQ`): one chain's rules each, in `-S` syntax, which is
  iptables-save's rule syntax, so the ordinary parser reads them.
- The entry rules live in KUBE-SERVICES / KUBE-NODEPORTS (and the filter table's KUBE-SERVICES /
  KUBE-EXTERNAL-SERVICES for a Service without endpoints), chains as long as the node has Services. Listing
  them is not targeted; instead each rule kube-proxy writes for the Service (its exact match list, from
  pkg/proxy/iptables/proxier.go) is checked with `iptables -t nat -C CHAIN RULE…`: a read-only lookup whose
  exit status says whether exactly that rule exists, costing a few bytes whatever the chain's length.

`ip6tables` does the same for IPv6 addresses (dual-stack). The read is a short sequence of rounds (the commands
of a round run in parallel, so a node costs 2–3 exec round trips): the Service's own chains and entry checks,
then the chains they jump to.

When a targeted read finds nothing where the API says something should be (an entry check fails, the Service's
chain is absent), nothing is concluded from it: the family's whole `iptables-save` is read once to confirm,
and the answer is that whole dump's (its origin says it was read to confirm). A node in another mode (IPVS,
nftables) also gets no targeted iptables rules, and the same whole read then detects its mode as before.

Every argv run here is checked against `allowed()`, a fixed list of command shapes (binary, table, verb, chain
name pattern, the option names a check may carry): nothing else is sent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from svcctl.dataplane.dumps import NodeDumps
from svcctl.dataplane.hashes import port_proto_hash, service_port_name
from svcctl.lazydc import dataclass, field
from svcctl.lazyre import LazyPattern
from svcctl.model import EndpointSlice, Service
from svcctl.sources.targeted_base import (
    Exec,
    NotAllowed,
    ReadFailed,
    TargetedRead,
    pick,
    planned,
    run_round,
)

__all__ = ["Exec", "NotAllowed", "ReadFailed", "TargetedRead", "allowed", "node_dumps", "plan", "read_targeted"]


MAX_ROUNDS = 4  # SVC/EXT/FW -> SVL/SEP -> (nothing deeper in kube-proxy's layout); a loop bound only
_BY_NAME = frozenset({"KUBE-MARK-MASQ", "KUBE-MARK-DROP"})  # the parser knows these chains by name: not read
# a nat chain only kube-proxy's IPVS mode makes (pkg/proxy/ipvs/proxier.go iptablesChains; iptables mode's is
# KUBE-NODEPORTS): asked with `-S` in the first round when the mode is not given, so an IPVS node shows its mode
# without a whole iptables-save. `-S` of an absent chain touches no set match (a `-C` of IPVS mode's match-set
# glue could make a legacy iptables load xt_set on a node of another mode); its few fixed rules are not kept
IPVS_TELL = "KUBE-NODE-PORT"

# ------------------------------------------------------------------ the allow-list of command shapes

_CHAIN = LazyPattern(r"KUBE-(?:SVC|SVL|EXT|FW|SEP|XLB)-[A-Z2-7]{16}|KUBE-MARK-MASQ|KUBE-MARK-DROP")
_ENTRY_CHAINS = {"nat": ("KUBE-SERVICES", "KUBE-NODEPORTS"),
                 "filter": ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS")}
_ADDR = LazyPattern(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:/[0-9]{1,2})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:/[0-9]{1,3})?")
_TARGET = LazyPattern(r"KUBE-(?:SVC|SVL|EXT|FW)-[A-Z2-7]{16}|KUBE-NODEPORTS|REJECT|DROP")
_PROTO = {"tcp", "udp", "sctp"}
_COMMENT = LazyPattern(r"[A-Za-z0-9_./:; -]{1,256}")
# option -> what its value must be, for the rule of a `-C` check (no other option is accepted)
_CHECK_OPTS: dict[str, Callable[[str], bool]] = {
    "-m": lambda v: v in _PROTO | {"comment", "addrtype"},
    "-p": lambda v: v in _PROTO,
    "-d": lambda v: bool(_ADDR.fullmatch(v)),
    "--dport": lambda v: v.isdecimal() and 0 < int(v) < 65536,
    "--comment": lambda v: bool(_COMMENT.fullmatch(v)),
    "--dst-type": lambda v: v == "LOCAL",
    "-j": lambda v: bool(_TARGET.fullmatch(v)),
}


def allowed(argv: list[str]) -> bool:
    """Whether `argv` is one of the targeted read shapes (all read-only):
    `iptables|ip6tables -t nat|filter -S CHAIN` for a per-Service chain (KUBE-SVC/SVL/EXT/FW/SEP-<hash>,
    KUBE-MARK-MASQ), and `iptables|ip6tables -t nat|filter -C ENTRY-CHAIN RULE` where RULE uses only the
    options kube-proxy's entry rules use (`-m`, `-p`, `-d`, `--dport`, `--comment`, `--dst-type`, `!`, `-j` to a
    Service chain, KUBE-NODEPORTS, REJECT or DROP); and nftables mode's (sources/targeted_nft.py) and IPVS
    mode's (sources/targeted_ipvs.py)."""
    if argv[:2] == ["conntrack", "-L"]:
        return _conntrack_allowed(argv[2:])
    if argv[:1] == ["nft"]:
        from svcctl.sources.targeted_nft import allowed as nft_allowed

        return nft_allowed(argv)
    if argv[:1] in (["ipvsadm"], ["ipset"], ["ip"]) or "--match-set" in argv:  # (IPVS mode's glue checks)
        from svcctl.sources.targeted_ipvs import allowed as ipvs_allowed

        return ipvs_allowed(argv)
    if len(argv) < 5 or argv[0] not in ("iptables", "ip6tables") or argv[1] != "-t":
        return False
    table, verb, chain = argv[2], argv[3], argv[4]
    if table not in _ENTRY_CHAINS:
        return False
    if verb == "-S":
        return len(argv) == 5 and table == "nat" and (bool(_CHAIN.fullmatch(chain)) or chain == IPVS_TELL)
    if verb != "-C" or chain not in _ENTRY_CHAINS[table]:
        return False
    rest, i, jumped = argv[5:], 0, False
    while i < len(rest):
        opt = rest[i]
        if opt == "!" and i + 1 < len(rest) and rest[i + 1] == "-d":
            i += 1
            continue
        check = _CHECK_OPTS.get(opt)
        if check is None or i + 1 >= len(rest) or not check(rest[i + 1]):
            return False
        jumped = jumped or opt == "-j"
        i += 2
    return jumped


# ------------------------------------------------------------------ what kube-proxy writes for a Service


@dataclass
class Check:
    """One entry rule kube-proxy writes for the Service: the `-C` argv that looks for it, and the rule as
    iptables-save prints it (kept when the check says it exists)."""

    table: str
    chain: str
    spec: list[str]  # the rule's matches and target, kube-proxy's order
    line: str  # `-A CHAIN …` in iptables-save's order
    what: str  # in words, for the note when it is not found
    alt: Check | None = None  # the rule written instead when the Service has no endpoints (slices unknown)
    needs_eps: bool = False  # written only when the Service has endpoints: absent is fine when an alt was found
    optional: bool = False  # written only in some node states (no local endpoint): absent says nothing
    group: str = ""  # one of several forms of the same rule, all asked at once: one of them must be there

    def argv(self, binary: str) -> list[str]:
        return [binary, "-t", self.table, "-C", self.chain, *self.spec]

    @property
    def target(self) -> str:
        return self.spec[-1]


@dataclass
class FamilyPlan:
    binary: str  # iptables | ip6tables
    key: str  # the NodeDumps key of the family's rules
    chains: list[str] = field(default_factory=list)  # read with -S first
    checks: list[Check] = field(default_factory=list)


def _q(comment: str) -> str:
    return f'"{comment}"' if " " in comment else comment


def _host(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def _entry(table: str, chain: str, comment: str, proto: str, ip: str | None, port: int, target: str,
           what: str, local: bool = False) -> Check:
    """A KUBE-SERVICES / KUBE-NODEPORTS / KUBE-EXTERNAL-SERVICES rule as proxier.go writes it."""
    spec = ["-m", "comment", "--comment", comment]
    if local:
        spec += ["-m", "addrtype", "--dst-type", "LOCAL"]
    spec += ["-m", proto, "-p", proto]
    if ip is not None:
        spec += ["-d", ip]
    spec += ["--dport", str(port), "-j", target]
    line = f"-A {chain}" + (f" -d {_host(ip)}" if ip is not None else "") + f" -p {proto}"
    line += f" -m comment --comment {_q(comment)}"
    if local:
        line += " -m addrtype --dst-type LOCAL"
    line += f" -m {proto} --dport {port} -j {target}"
    if target == "REJECT":
        line += " --reject-with " + ("icmp6-port-unreachable" if ip is not None and ":" in ip
                                     else "icmp-port-unreachable")
    return Check(table, chain, spec, line, what)


_NODEPORTS_COMMENT = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"


def _nodeports_jump(v6: bool, node_ips: Iterable[str] = ()) -> list[Check]:
    """The tail rule of KUBE-SERVICES that sends local-address traffic to KUBE-NODEPORTS, in each form
    kube-proxy writes it, all asked at once (one must be there): nodePortAddresses unset (IPv6 always excludes
    ::1, IPv4 includes localhost unless --iptables-localhost-nodeports=false), or one rule per node address
    (nodePortAddresses `primary` or CIDRs: `-d IP`; the Node object's addresses of the family)."""
    what = "the KUBE-SERVICES rule that sends node addresses to KUBE-NODEPORTS"
    spec = ["-m", "comment", "--comment", _NODEPORTS_COMMENT, "-m", "addrtype", "--dst-type", "LOCAL"]
    line = f'-A KUBE-SERVICES -m comment --comment "{_NODEPORTS_COMMENT}" -m addrtype --dst-type LOCAL'
    plain = Check("nat", "KUBE-SERVICES", [*spec, "-j", "KUBE-NODEPORTS"], line + " -j KUBE-NODEPORTS", what)
    lo = "::1/128" if v6 else "127.0.0.0/8"
    no_lo = Check("nat", "KUBE-SERVICES", [*spec, "!", "-d", lo, "-j", "KUBE-NODEPORTS"],
                  f'-A KUBE-SERVICES ! -d {lo} -m comment --comment "{_NODEPORTS_COMMENT}" -m addrtype '
                  "--dst-type LOCAL -j KUBE-NODEPORTS", what)
    # IPv6: kube-proxy excludes ::1 (older ones did not); IPv4: localhost included unless
    # --iptables-localhost-nodeports=false. The usual form first
    forms = [no_lo, plain] if v6 else [plain, no_lo]
    for ip in dict.fromkeys(a for a in node_ips if (":" in a) == v6):
        forms.append(Check("nat", "KUBE-SERVICES", ["-m", "comment", "--comment", _NODEPORTS_COMMENT, "-d", ip,
                                                    "-j", "KUBE-NODEPORTS"],
                           f'-A KUBE-SERVICES -d {_host(ip)} -m comment --comment "{_NODEPORTS_COMMENT}" '
                           "-j KUBE-NODEPORTS", what))
    for c in forms:
        c.group, c.needs_eps = "nodeports", True  # written whatever the Service; needed only with its NodePort
    return forms


def _endpoint_chains(spn: str, proto: str, port_name: str, protocol: str, slices: list[EndpointSlice],
                     v6: bool) -> list[str]:
    """The KUBE-SEP chains of the endpoints the API lists (ready ones, else serving-terminating ones, as
    kube-proxy picks), read in the first round with the Service's own chains: one round trip fewer. A chain
    the node lacks costs one `-S` that finds nothing; one it has beyond these is found in the next round."""
    from svcctl.dataplane.hashes import endpoint_chain

    eps: list[tuple[str, int, bool, bool]] = []
    for sl in slices:
        if (sl.address_type == "IPv6") != v6:
            continue
        ports = [sp.port for sp in sl.ports if sp.name == port_name and sp.protocol == protocol and sp.port]
        for e in sl.endpoints:
            for port in ports:
                eps += [(a, port, e.ready is not False, bool(e.serving and e.terminating)) for a in e.addresses[:1]]
    use = [x for x in eps if x[2]] or [x for x in eps if x[3]]
    return list(dict.fromkeys(endpoint_chain(spn, proto, a, port) for a, port, _, _ in use))


def plan(services: Iterable[tuple[Service, list[EndpointSlice] | None]],
         node_ips: Iterable[str] = ()) -> list[FamilyPlan]:
    """The chains to read and the entry rules to check, per address family (IPv4 first); `node_ips`: the
    node's addresses (the Node object's), for the NodePort jump kube-proxy writes per address."""
    node_ips = list(node_ips)
    fams = {"4": FamilyPlan("iptables", "iptables"), "6": FamilyPlan("ip6tables", "ip6tables")}
    nodeports = {"4": False, "6": False}
    for one in planned(services, "4", "6"):
        svc, slices, has_eps, fam_of, families = (one.service, one.slices, one.has_eps, one.family_of,
                                                  one.families)
        for p in svc.ports:
            proto = p.protocol.lower()
            spn = service_port_name(svc.meta.namespace, svc.meta.name, p.name)
            h = port_proto_hash(spn, proto)
            internal = ("KUBE-SVL-" if svc.internal_traffic_policy == "Local" else "KUBE-SVC-") + h
            external_used = bool(p.node_port or svc.external_ips or svc.load_balancer_ips)
            external = "KUBE-EXT-" + h
            fw = bool(svc.load_balancer_source_ranges and svc.load_balancer_ips)
            none = f"{spn} has no endpoints"
            for f in families:
                fp = fams[f]
                for ip in (ip for ip in svc.cluster_ips if fam_of.get(ip) == f):
                    cluster = _entry("nat", "KUBE-SERVICES", f"{spn} cluster IP", proto, ip, p.port, internal,
                                     f"the cluster IP rule of {spn} ({ip}:{p.port})")
                    no_eps = _entry("filter", "KUBE-SERVICES", none, proto, ip, p.port, "REJECT",
                                    f"the no-endpoints rule of {spn} ({ip})")
                    pick(fp.checks, has_eps, cluster, no_eps)
                    if svc.internal_traffic_policy == "Local" and has_eps is not False:
                        # no endpoint on this node: kube-proxy drops cluster IP traffic instead (filter table)
                        local = _entry("filter", "KUBE-SERVICES", f"{spn} has no local endpoints", proto, ip,
                                       p.port, "DROP", f"the no-local-endpoints rule of {spn} ({ip})")
                        local.alt, cluster.alt = cluster.alt, local
                        local.what = cluster.what
                for ip in (ip for ip in svc.external_ips if fam_of.get(ip) == f):
                    pick(fp.checks, has_eps,
                          _entry("nat", "KUBE-SERVICES", f"{spn} external IP", proto, ip, p.port, external,
                                 f"the external IP rule of {spn} ({ip})"),
                          _entry("filter", "KUBE-EXTERNAL-SERVICES", none, proto, ip, p.port, "REJECT",
                                 f"the no-endpoints rule of {spn} ({ip})"))
                for ip in (ip for ip in svc.load_balancer_ips if fam_of.get(ip) == f):
                    if fw:
                        pick(fp.checks, has_eps, _entry("filter", "KUBE-PROXY-FIREWALL",
                                                  f"{spn} traffic not accepted by KUBE-FW-{h}", proto, ip, p.port,
                                                  "DROP", f"the firewall rule of {spn} ({ip})"), None)
                    pick(fp.checks, has_eps,
                          _entry("nat", "KUBE-SERVICES", f"{spn} loadbalancer IP", proto, ip, p.port,
                                 ("KUBE-FW-" + h) if fw else external, f"the load-balancer IP rule of {spn} ({ip})"),
                          _entry("filter", "KUBE-EXTERNAL-SERVICES", none, proto, ip, p.port, "REJECT",
                                 f"the no-endpoints rule of {spn} ({ip})"))
                if p.node_port:
                    nodeports[f] = has_eps is not False
                    pick(fp.checks, has_eps,
                          _entry("nat", "KUBE-NODEPORTS", spn, proto, None, p.node_port, external,
                                 f"the NodePort rule of {spn} (:{p.node_port})"),
                          _entry("filter", "KUBE-EXTERNAL-SERVICES", none, proto, None, p.node_port, "REJECT",
                                 f"the no-endpoints NodePort rule of {spn}", local=True))
                if svc.external_traffic_policy == "Local" and has_eps is not False:
                    # with no endpoint on this node kube-proxy also drops external traffic (filter table)
                    nolocal = f"{spn} has no local endpoints"
                    drops = [_entry("filter", "KUBE-EXTERNAL-SERVICES", nolocal, proto, ip, p.port, "DROP", "")
                             for ip in [*svc.external_ips, *svc.load_balancer_ips] if fam_of.get(ip) == f]
                    if p.node_port:
                        drops.append(_entry("filter", "KUBE-EXTERNAL-SERVICES", nolocal, proto, None, p.node_port,
                                            "DROP", "", local=True))
                    for d in drops:
                        d.optional = True
                        fp.checks.append(d)
                if has_eps is not False:
                    seps = _endpoint_chains(spn, proto, p.name, p.protocol, slices or [], f == "6")
                    for chain in [internal, *([external] if external_used else []), *(["KUBE-FW-" + h] if fw else []),
                                  *seps]:
                        if chain not in fp.chains:
                            fp.chains.append(chain)
    out = []
    for f, fp in fams.items():
        if nodeports[f]:
            fp.checks += _nodeports_jump(f == "6", node_ips)
        if fp.checks:  # KUBE-MARK-MASQ is not read: the parser knows it by name
            out.append(fp)
    return out


# ------------------------------------------------------------------ reading


def _run_round(execute: Exec, argvs: list[list[str]], read: TargetedRead) -> list[tuple[str, str, int]]:
    return run_round(execute, argvs, read, allowed)


def _chain_text(out: str, chain: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith(f"-A {chain} ")]


def read_targeted(execute: Exec, services: Iterable[tuple[Service, list[EndpointSlice] | None]],
                  tell: bool = False, node_ips: Iterable[str] = ()) -> TargetedRead:
    """Run the plan through `execute`, round by round; each family's rules as a small iptables-save text.
    `tell` (the mode not given): the first round also asks for IPVS_TELL (`read.ipvs_shown`)."""
    started = time.monotonic()
    read = TargetedRead()
    for fp in plan(services, node_ips):
        chains: dict[str, list[str]] = {}
        confirmed: list[Check] = []
        failed: list[Check] = []
        todo, checks = list(fp.chains), list(fp.checks)
        for _ in range(MAX_ROUNDS):
            if not todo and not checks:
                break
            argvs = [[fp.binary, "-t", "nat", "-S", c] for c in todo] + [c.argv(fp.binary) for c in checks]
            probe = [fp.binary, "-t", "nat", "-S", IPVS_TELL] if tell else None
            tell = False
            results = _run_round(execute, argvs + ([probe] if probe else []), read)
            if probe is not None:
                out, _, rc = results.pop()
                read.ipvs_shown = rc == 0 and f"-N {IPVS_TELL}" in out.splitlines()[:1]
            alts: list[Check] = []
            for i, (out, err, rc) in enumerate(results):
                if rc > (1 if i < len(todo) else 2):  # -S: 1 = no such chain; -C: 1/2 = no such rule/target
                    raise ReadFailed(f"`{' '.join(argvs[i])}` exited with {rc}: "
                                     f"{(err.strip().splitlines() or [''])[-1][:200]}")
                if i < len(todo):
                    if rc == 0:
                        if f"-N {todo[i]}" not in out.splitlines()[:1]:
                            raise ReadFailed(f"`{' '.join(argvs[i])}` did not answer like iptables -S")
                        chains[todo[i]] = _chain_text(out, todo[i])
                    continue
                check = checks[i - len(todo)]
                if rc == 0:
                    if out.strip():
                        raise ReadFailed(f"`{' '.join(argvs[i])}` did not answer like iptables -C")
                    confirmed.append(check)
                elif check.optional or check.group:
                    pass
                elif check.alt is not None:
                    if check.alt.what != check.what:
                        check.alt.what = f"{check.what} (nor its no-endpoints rule)"
                    alts.append(check.alt)
                else:
                    failed.append(check)
            nxt: list[str] = []
            for rules in chains.values():
                for ln in rules:
                    m = re.search(r" -[jg] (\S+)", ln)
                    t = m.group(1) if m else ""
                    if t.startswith("KUBE-") and t not in chains and t not in todo and t not in nxt \
                            and t not in _BY_NAME and _CHAIN.fullmatch(t):
                        nxt.append(t)
            todo, checks = nxt, alts
            if read.ipvs_shown and not chains and not confirmed:
                failed += [c for c in checks if c not in failed]  # not looked for further: an IPVS node
                break  # without the Service's iptables rules: its IPVS reads are the next round
        for group in dict.fromkeys(c.group for c in fp.checks if c.group):
            if not any(c.group == group for c in confirmed):  # none of the rule's forms is there
                failed.append(next(c for c in fp.checks if c.group == group))
        no_eps = any(c.target == "REJECT" for c in confirmed)
        missing = [c for c in failed if not (c.needs_eps and no_eps)]
        if missing:
            read.missing[fp.key] = missing[0].what
        read.texts[fp.key] = _save_text(chains, confirmed)
    read.seconds = time.monotonic() - started
    return read


def _save_text(chains: dict[str, list[str]], confirmed: list[Check]) -> str:
    """The rules read, as iptables-save would print them (entry rules first: the parser starts there)."""
    out: list[str] = []
    for table in ("nat", "filter"):
        entry = [c for c in confirmed if c.table == table]
        if table == "filter" and not entry:
            continue
        names = list(dict.fromkeys([*_ENTRY_CHAINS[table][:2], *(c.chain for c in entry),
                                    *(chains if table == "nat" else [])]))
        out.append(f"*{table}")
        out += [f":{n} - [0:0]" for n in names]
        # KUBE-SERVICES' own order: the Service rules, then the NodePort jump (kube-proxy writes it last)
        entry.sort(key=lambda c: (c.chain, c.spec[-1] == "KUBE-NODEPORTS"))
        out += [c.line for c in entry]
        if table == "nat":
            for rules in chains.values():
                out += rules
        out.append("COMMIT")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ one node, as NodeDumps

TARGETED_NOTE = ("only the rules of the Service asked about were read from the node ({n} targeted commands in "
                 "{e} execs, {b} bytes): the counts are those rules'")


def node_dumps(execute: Exec, node: str, where: str, services: list[tuple[Service, list[EndpointSlice] | None]],
               mode: str | None, debug: Callable[[str], None] | None = None,
               before: TargetedRead | None = None, node_ips: Iterable[str] = ()) -> NodeDumps | None:
    """The node's rules for `services` through targeted reads (`execute` runs one argv in its kube-proxy Pod),
    or None when they cannot be targeted (a replacement: the caller reads the node whole, which also detects
    its mode).

    iptables mode first when the mode is not known (its answer also tells an nftables node: none of the
    Service's chains, and a whole `iptables-save` holding no kube-proxy rules; an IPVS node: none of them and
    IPVS mode's own IPVS_TELL chain, asked in the same round, so its IPVS reads and glue checks are the next
    round; or else an iptables-save holding IPVS mode's glue, kept for its checks). A family whose targeted read
    missed something the API says is there is read whole once, to confirm: its origin then says so, and every
    finding on it cites that whole read. `node_ips`: the Node object's addresses (the NodePort jump rule
    kube-proxy writes per address with nodePortAddresses set)."""
    from svcctl.dataplane import modes

    if mode not in (None, "iptables", "nftables", "ipvs") or not services:
        return None
    read = TargetedRead()
    try:
        if mode == "nftables":
            from svcctl.sources import targeted_nft

            targeted_nft.read_targeted(execute, services, read)
        elif mode == "ipvs":
            from svcctl.sources import targeted_ipvs

            targeted_ipvs.read_targeted(execute, services, read, iptables=before is None or before.ipvs_shown)
        else:
            read = read_targeted(execute, services, tell=mode is None, node_ips=node_ips)
    except ReadFailed as e:
        if debug is not None:
            debug(f"{where}: {e}: reading the node whole")
        return None
    if not read.texts:
        return None
    dumps = NodeDumps(node=node)
    found_any = any("-A " in t for t in read.texts.values())
    for key, text in read.texts.items():
        what = read.missing.get(key)
        if what is None:
            dumps.texts[key] = text
            dumps.origins[key] = f"targeted {key} reads ({where})"
            continue
        if mode is None and key in ("iptables", "ip6tables") and not found_any and read.ipvs_shown:
            if debug is not None:
                debug(f"{where}: none of the Service's iptables rules, and IPVS mode's own {IPVS_TELL} chain is "
                      "there: IPVS mode, read targeted (its glue rules checked with -C)")
            return node_dumps(execute, node, where, services, "ipvs", debug, read)
        whole = list(modes.allowed_commands()[key])  # iptables-save / ip6tables-save / nft list table …
        out, err, rc = execute(whole)
        read.commands.append(whole)
        read.execs += 1
        read.bytes_in += len(out) + len(err)
        if rc:
            return None  # the whole read again, through the caller: it reports the failure as every read does
        if mode is None and key == "iptables" and not found_any and modes.mode_from_iptables(out) != "iptables":
            if modes.mode_from_iptables(out) == "nftables":
                if debug is not None:
                    debug(f"{where}: none of the Service's iptables rules, and iptables-save shows no kube-proxy "
                          "chains: nftables mode, read targeted")
                return node_dumps(execute, node, where, services, "nftables", debug, read)
            if modes.mode_from_iptables(out) == "ipvs":
                if debug is not None:
                    debug(f"{where}: none of the Service's iptables rules, and iptables-save shows IPVS mode's "
                          "glue: IPVS mode, read targeted")
                got = node_dumps(execute, node, where, services, "ipvs", debug, read)
                if got is not None:  # its glue rules (KUBE-CLUSTER-IP match-set, KUBE-LOOP-BACK) are checked
                    got.texts["iptables"] = out
                    got.origins["iptables"] = f"{' '.join(whole)} ({where})"
                return got
            if debug is not None:
                debug(f"{where}: none of the Service's iptables rules ({what}), and iptables-save shows another "
                      "mode: reading the node whole in that mode")
            return None
        dumps.texts[key] = out
        dumps.origins[key] = (f"{' '.join(whole)} ({where}), read whole to confirm a targeted read that did not "
                              f"find {what}")
        dumps.streamed[key] = (f"the targeted read did not find {what}; the whole `{' '.join(whole)}` was read to "
                               "confirm: the counts are for the whole dump")
    if before is not None:  # the iptables reads that showed an nftables node count too
        read.commands[:0] = before.commands
        read.bytes_in += before.bytes_in
        read.execs += before.execs
    note = TARGETED_NOTE.format(n=len(read.commands), e=read.execs, b=read.bytes_in)
    for key in dumps.texts:
        dumps.streamed.setdefault(key, note)
    dumps.mode = mode or "iptables"
    return dumps


# ------------------------------------------------------------------ the Service's flows


def _conntrack_allowed(rest: list[str]) -> bool:
    """`conntrack -L [-f ipv6] -d ADDR` and `conntrack -L [-f ipv6] -p PROTO --dport PORT`: the flows to one of
    the Service's addresses, or to its NodePort (the kernel filters; only listing)."""
    if rest[:2] == ["-f", "ipv6"]:
        rest = rest[2:]
    if len(rest) == 2 and rest[0] == "-d":
        return bool(_ADDR.fullmatch(rest[1])) and "/" not in rest[1]
    return (len(rest) == 4 and rest[0] == "-p" and rest[1] in _PROTO and rest[2] == "--dport"
            and rest[3].isdecimal() and 0 < int(rest[3]) < 65536)


def conntrack_commands(services: Iterable[tuple[Service, list[EndpointSlice] | None]]) -> list[list[str]]:
    out: list[list[str]] = []
    for svc, _ in services:
        for ip in [*svc.cluster_ips, *svc.external_ips, *svc.load_balancer_ips]:
            if ip and ip != "None":
                argv = ["conntrack", "-L", *(["-f", "ipv6"] if ":" in ip else []), "-d", ip]
                if argv not in out:
                    out.append(argv)
        for p in svc.ports:
            if p.node_port:
                argv = ["conntrack", "-L", "-p", p.protocol.lower(), "--dport", str(p.node_port)]
                if argv not in out:
                    out.append(argv)
    return out


def add_conntrack(dumps: NodeDumps, execute: Exec, where: str,
                  services: Iterable[tuple[Service, list[EndpointSlice] | None]]) -> None:
    """The flows to the Service (`conntrack -L -d VIP`, … -p PROTO --dport NODEPORT) as the dumps' `conntrack`:
    the whole table holds every connection of the node. Best effort, like the whole read's: a node whose Pod
    has no conntrack, or refuses it, gives no flows."""
    argvs = conntrack_commands(services)
    if not argvs:
        return
    try:
        results = run_round(execute, argvs, TargetedRead(), allowed)
    except Exception:  # noqa: BLE001 - flows are an extra: the rules stand without them
        return
    texts = [out for out, _, rc in results if rc == 0]
    if len(texts) == len(argvs):
        lines = list(dict.fromkeys(ln for t in texts for ln in t.splitlines() if ln.strip()))
        dumps.texts["conntrack"] = "".join(f"{ln}\n" for ln in lines)
        dumps.origins["conntrack"] = f"conntrack -L, the Service's flows only ({where})"
