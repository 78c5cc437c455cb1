"""svcctl's rule model against the real kube-proxy, in iptables and nftables mode.

The real kube-proxy, inside a network namespace node (tests/netns.py), watches the real API server and writes
its rules for a catalogue of Service shapes (tests/lab/world.py): ClusterIP, NodePort, LoadBalancer with source
ranges, externalIPs, no endpoints, only terminating endpoints, externalTrafficPolicy / internalTrafficPolicy
Local with and without local endpoints, session affinity, UDP, several and named ports, topology hints. svcctl
reads those rules live (`--netns`) and as text; its backends for every way in must be the Pods that real packets
reach, and its trace of each healthy Service must find no drift. Its targeted reads, batched through the real sh
(one `sh -c` exec per round) and one exec per command, must give what the whole dump gives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fast_walks import watch_fast_walks
from netns import Lab

from .controlplane import ControlPlane
from .figures import FIGURES
from .proxy import KubeProxy
from .world import FAR_POD_IP, Shape, cluster_objects, service_object, shapes

AGREE: dict[str, int] = {}  # mode -> probes whose packets landed where svcctl said
TRIED: dict[str, int] = {}  # mode -> probes sent
TRACED: dict[str, int] = {}  # mode -> shapes whose trace found no drift against the real rules
HC_CODE = ("import sys,urllib.request,urllib.error\n"
           "try:\n print(urllib.request.urlopen(f'http://{sys.argv[1]}:{sys.argv[2]}/healthz',timeout=3).status)\n"
           "except urllib.error.HTTPError as e:\n print(e.code)")
RunCli = Callable[..., tuple[int, str, str]]
N = 40  # connections per probe: P(a backend of two is never picked) = 2 * 0.5**40


@dataclass
class World:
    cp: ControlPlane
    lab: Lab
    proxy: KubeProxy
    mode: str
    ns: str
    node: str
    kubeconfig: Path
    services: dict[str, dict[str, Any]]

    def pod_name(self, ip: str) -> str:
        if ip == FAR_POD_IP:
            return "far"
        return next((p.name for p in self.lab.pods if ip in (p.ip, p.ip6)), ip)

    def rules(self, run_cli: RunCli, *args: str) -> tuple[int, dict[str, Any], str]:
        code, out, err = run_cli(["rules", *args, "--netns", self.lab.node, "--mode", self.mode,
                                  "--kubeconfig", str(self.kubeconfig), "-o", "json"])
        return code, (json.loads(out) if out.strip() else {}), err


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def world(request: pytest.FixtureRequest, k8s: ControlPlane, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[World]:
    mode: str = request.param
    ns, node = f"kp-{mode}", f"kp-{mode}"
    work = tmp_path_factory.mktemp(f"kube-proxy-{mode}")
    AGREE.setdefault(mode, 0)
    with Lab(prefix="svt-kp", n_pods=4, udp=True, ipv6=True, vip_routes6=("2001:db8:96::/112",)) as lab:
        lab.add_client("cl0")
        for obj in cluster_objects(ns, node, f"{node}-far", [(p.name, p.ip, p.ip6) for p in lab.pods], lab.port):
            k8s.apply(obj)
        k8s.must("DELETE", f"/api/v1/namespaces/{ns}/pods/pod3", {"gracePeriodSeconds": 3600})
        services = {s.name: k8s.apply(service_object(ns, s)) for s in shapes()}
        proxy = KubeProxy(k8s, lab.node, node, mode, work)
        proxy.start()
        try:
            yield World(k8s, lab, proxy, mode, ns, node, k8s.write_kubeconfig(work / "admin.kubeconfig"),
                        services)
        finally:
            proxy.stop()
            # no namespace controller runs: remove the Services by hand, so the next mode's kube-proxy does
            # not also see these LB and external IPs
            for name in services:
                k8s.request("DELETE", f"/api/v1/namespaces/{ns}/services/{name}")
            FIGURES.append(f"kube-proxy {mode} ({k8s.version_info().get('gitVersion')}): {len(shapes())} Service "
                           f"shapes, {AGREE[mode]} of {TRIED.get(mode, 0)} probes (way in x protocol x source) where real "
                           f"packets landed where svcctl said (SCTP by its rules only); {TRACED.get(mode, 0)} of {len(shapes())} "
                           "traces with no drift and NoEndpointsReject/NoLocalEndpoints/HealthCheckTakesNodeOut exactly where due")


def _entries(doc: dict[str, Any], w: World, shape: str) -> list[dict[str, Any]]:
    return [e for e in doc.get("services") or [] if (e.get("name") or "").startswith(f"{w.ns}/{shape}:")
            or (e.get("name") or "") == f"{w.ns}/{shape}"]


WAITED: set[str] = set()  # the modes whose rules were waited for


def _backends(doc: dict[str, Any], w: World, shape: str) -> dict[str, set[str]]:
    """svcctl's reading of one shape: the Pods behind each kind of entry."""
    by_kind: dict[str, set[str]] = {}
    for e in _entries(doc, w, shape):
        by_kind.setdefault(e["kind"], set()).update(w.pod_name(b["ip"]) for b in e.get("backends") or [])
    return by_kind


def _settled(doc: dict[str, Any], w: World, s: Shape) -> bool:
    got = _backends(doc, w, s.name)
    return all(got.get(kind) == set(want) for kind, want in s.entries.items())


def _wait_programmed(w: World, run_cli: RunCli, timeout: float = 90) -> dict[str, Any]:
    """Wait until every shape reads as the shape expects: the controller writes hints (and kube-proxy reprograms
    for them) some time after the first slice, so a read taken between the two is of rules about to change;
    packets are sent only once the reading has settled, and a reading that never settles fails below. (30 s was
    once too short on a machine running two test suites at once: nftables kube-proxy had not yet dropped the
    hinted Service's far endpoint, which svcctl rightly reported as drift.)"""
    t0 = time.monotonic()
    if w.mode in WAITED:
        timeout = 0  # waited once already: a reading that did not settle then is not waited for by every test
    while True:
        _, doc, _ = w.rules(run_cli)
        if all(_settled(doc, w, s) for s in shapes()) or time.monotonic() - t0 >= timeout:
            break
        time.sleep(0.5)
    WAITED.add(w.mode)
    if all(_settled(doc, w, s) for s in shapes()):
        return doc
    missing = [s.name for s in shapes() if not set(s.entries) <= {e["kind"] for e in _entries(doc, w, s.name)}]
    if missing:
        raise AssertionError(f"kube-proxy ({w.mode}) did not program {missing} in {timeout} s:\n{w.proxy.log_tail()}")
    return doc  # programmed but not as expected: the assertions of the test name the difference


@pytest.mark.parametrize("shape", shapes(), ids=lambda s: s.name)
def test_rules_and_packets_agree(world: World, shape: Shape, run_cli: RunCli) -> None:
    w = world
    doc = _wait_programmed(w, run_cli)
    entries = _entries(doc, w, shape.name)
    by_kind = _backends(doc, w, shape.name)
    for kind, want in shape.entries.items():
        assert kind in by_kind, f"{shape.name}: no {kind} entry in svcctl's reading: {sorted(by_kind)}"
        assert by_kind[kind] == set(want), f"{shape.name} {kind}: svcctl {sorted(by_kind[kind])}, want {sorted(want)}"
    svc = w.services[shape.name]["spec"]
    for way, address, port, client, expect in shape.probes:
        for sp in [p for p in svc["ports"] if port is None or p["port"] == port]:
            _probe(w, shape, entries, svc, sp, way, address, client, expect)


def _probe(w: World, shape: Shape, entries: list[dict[str, Any]], svc: dict[str, Any], sp: dict[str, Any],
           way: str, address: str | None, client: str | None, expect: frozenset[str]) -> None:
    """Real packets through one way in, from the node or a client; they must land where svcctl says."""
    if sp["protocol"] == "SCTP":
        return  # the lab's Pods answer TCP and UDP only: SCTP entries are checked by their rules
    TRIED[w.mode] = TRIED.get(w.mode, 0) + 1
    if way == "HealthCheck":
        # kube-proxy's own health server on the healthCheckNodePort: 503 when the node has no local endpoint,
        # which is what takes the node out of the load balancer (svcctl: HealthCheckTakesNodeOut, info)
        code = w.lab.node_exec(["python3", "-c", HC_CODE, address or "", str(svc["healthCheckNodePort"])]).stdout
        assert code.strip() in expect, (shape.name, code)
        AGREE[w.mode] = AGREE.get(w.mode, 0) + 1
        return
    host = svc["clusterIPs"][1] if address == "@v6" else (address or svc["clusterIP"])
    dport = sp["nodePort"] if way == "NodePort" else sp["port"]
    # a dropped SYN times out (or, retried, meets the network-unreachable the node answers with)
    n = 4 if "dropped" in expect else N  # each dropped connection costs its whole timeout
    ask = w.lab.udp_ask_many if sp["protocol"] == "UDP" else w.lab.http_get_many
    raw = ask(host, dport, n, client=client, timeout=2.0)
    answers = {"dropped" if a in ("timeout", "error:OSError:101") else a for a in raw}
    # what svcctl says this way in does
    entry = [e for e in entries if e["kind"] == way and e["port"] == dport and e["protocol"] == sp["protocol"]
             and (e.get("address") in (host, None, "") or way == "NodePort")]
    assert entry, f"{shape.name}: svcctl has no {way} entry for {host}:{dport}: {entries}"
    said = {w.pod_name(b["ip"]) for e in entry for b in e.get("backends") or []}
    if not said:
        said = {"refused"} if any(e.get("noEndpoints") for e in entry) else {"dropped"}
    if svc.get("sessionAffinity") == "ClientIP":
        # every connection of one client goes to the backend its first one was given
        assert len(answers) == 1 and answers <= said == set(expect), (shape.name, answers, said)
        AGREE[w.mode] = AGREE.get(w.mode, 0) + 1
        return
    AGREE[w.mode] = AGREE.get(w.mode, 0) + 1
    assert answers == said == set(expect), (
        f"{shape.name} {way} {host}:{dport} from {client or 'the node'}: packets reached {sorted(answers)}, "
        f"svcctl said {sorted(said)}, the shape expects {sorted(expect)}; answers {raw}")




# What the trace of each shape must find on the real kube-proxy's rules: the endpoints svcctl computes for this
# node (traffic policies, hints, terminating fallback: analysis/topology.py) must be the ones kube-proxy
# programmed, so no drift code may come up; the kube-proxy-behaviour codes must come up exactly where they apply.
DRIFT_CODES = {"EndpointNotProgrammed", "StaleBackend", "ServiceNotProgrammed", "StaleService"}
EXPECTED_CODES = {"none": {"NoEndpointsReject"}, "etp-remote": {"NoLocalEndpoints"},
                  "itp-local": {"NoLocalEndpoints"}, "lb-local-remote": {"HealthCheckTakesNodeOut"}}
PROXY_CODES = {"NoEndpointsReject", "NoLocalEndpoints", "HealthCheckTakesNodeOut"}


@pytest.mark.parametrize("shape", shapes(), ids=lambda s: s.name)
def test_trace_finds_no_drift_on_the_real_rules(world: World, shape: Shape, run_cli: RunCli) -> None:
    w = world
    _wait_programmed(w, run_cli)
    code, out, err = run_cli(["trace", shape.name, "-n", w.ns, "--kubeconfig", str(w.kubeconfig),
                              "--netns", w.lab.node, "--node", w.node, "--mode", w.mode, "--no-dns", "-o", "json"])
    assert out.strip(), err
    doc = json.loads(out)
    codes = {f["code"] for f in doc["findings"]}
    assert not codes & DRIFT_CODES, (shape.name, [f["message"] for f in doc["findings"] if f["code"] in DRIFT_CODES])
    assert codes & PROXY_CODES == EXPECTED_CODES.get(shape.name, set()), (shape.name, sorted(codes))
    drift = [h for p in doc["ports"] for h in p["hops"] if h["hop"] == "drift"]
    assert drift and all(h["verdict"] != "broken" for h in drift), (shape.name, drift)
    TRACED[w.mode] = TRACED.get(w.mode, 0) + 1


def test_text_dumps_read_the_same_as_live(world: World, run_cli: RunCli, tmp_path: Path) -> None:
    """The rules as people paste them (`iptables-save`, `nft list ruleset`) read exactly as the live read."""
    w = world
    live = _wait_programmed(w, run_cli)
    if w.mode == "iptables":
        (tmp_path / "v4").write_text(w.lab.iptables_save())
        (tmp_path / "v6").write_text(w.lab.iptables_save(ipv6=True))
        files = ["--iptables-save", str(tmp_path / "v4"), "--ip6tables-save", str(tmp_path / "v6")]
    else:
        (tmp_path / "dump").write_text(w.lab.node_exec(["nft", "list", "ruleset"]).stdout)
        files = ["--nft", str(tmp_path / "dump")]
    code, out, err = run_cli(["rules", *files, "--kubeconfig", str(w.kubeconfig), "--mode", w.mode, "-o", "json"])
    assert code == 0, err
    text = json.loads(out)

    def key(doc: dict[str, Any]) -> list[Any]:
        return sorted((e["name"], e["kind"], e["address"], e["port"], e["protocol"],
                       sorted((b["ip"], b["port"], b["share"]) for b in e.get("backends") or []),
                       bool(e.get("noEndpoints")), bool(e.get("noLocalEndpoints")))
                      for e in doc["services"] if (e.get("name") or "").startswith(f"{w.ns}/"))

    assert key(text) == key(live)


@pytest.mark.parametrize("world", ["iptables"], indirect=True)  # the fast paths are iptables mode's
def test_the_fast_paths_read_the_real_rules_as_the_general_parser(world: World, run_cli: RunCli,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The real kube-proxy's iptables-save (both families) gives the same model with the iptables parser's
    kube-proxy-shaped fast paths on as with the general parse and walk alone (tests/dataplane/test_iptables_fast.py
    holds the same on the generators' dumps), and the fast paths do read most of it."""
    from svcctl.dataplane import iptables

    _wait_programmed(world, run_cli)
    for text in (world.lab.iptables_save(), world.lab.iptables_save(ipv6=True)):
        models = []
        for fast in (False, True):
            monkeypatch.setattr(iptables, "FAST", fast)
            models.append(json.dumps(iptables.parse_iptables_save(text, "node").to_json(), default=str))
        assert models[0] == models[1]
        assert f"{world.ns}/" in models[1]
        lines = [ln[3:] for ln in text.splitlines() if ln.startswith("-A KUBE-SEP-")]
        assert lines and sum(iptables._fast_rule(ln, "nat", 1) is not None for ln in lines) > len(lines) / 2


@pytest.mark.parametrize("world", ["nftables"], indirect=True)  # in this module: its world, not a second one
def test_the_nft_fast_paths_read_the_real_ruleset_as_the_general_reader(world: World, run_cli: RunCli,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The real kube-proxy's `nft list ruleset` gives the same rules with the nftables reader's whole-listing fast
    paths on as with the general reader and walk alone (tests/dataplane/test_nftables_fast.py holds the same on the
    generator's listings), and the fast paths do read it: the fast reader takes the listing and walks real service
    chains from their text."""
    from svcctl.dataplane import nftables

    _wait_programmed(world, run_cli)
    text = world.lab.node_exec(["nft", "list", "ruleset"]).stdout
    walked = watch_fast_walks(monkeypatch)
    models = []
    for fast in (False, True):
        monkeypatch.setattr(nftables, "FAST", fast)
        models.append(json.dumps(nftables.parse_nft(text, "node").to_json(), default=str))
    assert models[0] == models[1]
    assert f"{world.ns}/" in models[1]
    assert nftables._read_listing_fast(text) is not None
    assert sum(walked) > 0, walked
    FIGURES.append(f"nftables fast walk: {sum(walked)} of {len(walked)} real chains asked walked from their text")


def _batch_entries(dumps: Any, mode: str, only: set[str], name: str) -> list[tuple[Any, ...]]:
    from svcctl.dataplane import load_node_rules

    rules = load_node_rules(dumps, mode=mode, only=only)
    return sorted((e.name, e.kind, e.protocol, e.address, e.port, e.no_endpoints, e.no_local_endpoints,
                   e.affinity_seconds, tuple(sorted((b.ip, b.port, str(b.probability)) for b in e.backends)))
                  for e in rules.services if (e.name or "").split(":")[0] == name)


@pytest.mark.parametrize("shape", shapes(), ids=lambda s: s.name)
def test_a_batched_read_of_the_real_rules_is_the_whole_reads_answer(world: World, shape: Shape,
                                                                    run_cli: RunCli) -> None:
    """Batched targeted reads (svcctl/sources/batch.py) of the real kube-proxy's rules through the real sh: the
    Service's rules read targeted as `--all-nodes` reads them (its EndpointSlices known), each round one `sh -c`
    of the composed script run by the node namespace's dash, and again one exec per command; both give the
    entries and the drift findings the whole dump gives."""
    from svcctl.analysis.fleet import judge_node
    from svcctl.dataplane import load_node_rules
    from svcctl.sources import batch, targeted
    from svcctl.sources.fleet import FleetTarget
    from svcctl.sources.live import LiveSource
    from svcctl.sources.node import mode_keys, read_commands

    w = world
    _wait_programmed(w, run_cli)
    src = LiveSource.from_options(str(w.kubeconfig), None, 30.0)
    svc = src.get_service(w.ns, shape.name)
    slices = src.list_endpoint_slices(w.ns, shape.name)
    node = src.get_nodes([w.node])[w.node]
    assert node is not None
    ips = [*node.addresses.get("InternalIP", []), *node.addresses.get("ExternalIP", [])]
    only = FleetTarget([(svc, slices)]).only
    execs: list[list[str]] = []

    def run(argv: list[str]) -> tuple[str, str, int]:
        execs.append(argv)
        r = w.lab.node_exec(argv, check=False)
        return r.stdout, r.stderr, r.returncode

    batched = targeted.node_dumps(batch.Batched(run, w.node), w.node, "netns", [(svc, slices)], w.mode,
                                  node_ips=ips)
    sent = list(execs)
    execs.clear()
    single = targeted.node_dumps(run, w.node, "netns", [(svc, slices)], w.mode, node_ips=ips)
    whole = read_commands(mode_keys(w.mode), w.lab.node, "netns")
    assert batched is not None and single is not None
    name = f"{w.ns}/{shape.name}"
    want = _batch_entries(whole, w.mode, only, name)
    assert want, f"{shape.name}: no entries in the whole dump"
    # batching changes nothing
    assert _batch_entries(batched, w.mode, only, name) == _batch_entries(single, w.mode, only, name)

    def judged(d: Any) -> list[tuple[str, str]]:
        res = judge_node(w.node, load_node_rules(d, mode=w.mode, only=only), [(svc, slices)], 0.0, "")
        return sorted((f.code, f.message) for f in res.findings)

    assert judged(batched) == judged(whole)
    assert _batch_entries(batched, w.mode, only, name) == want
    # a round of several commands is one `sh -c` exec (a one-command round, such as the no-endpoints REJECT
    # check alone, goes as it is)
    shells = [a for a in sent if a[:2] == ["sh", "-c"]]
    assert all(batch.decode(a) is not None for a in shells), sent
    asked = [c for a in sent for c in (batch.decode(a).commands if a[:2] == ["sh", "-c"] else [a])]  # type: ignore[union-attr]
    assert sorted(map(str, asked)) == sorted(map(str, execs))  # the same commands
    assert len(sent) < len(execs) if len(execs) > 1 else sent == execs, (len(sent), len(execs))
    # nothing was read whole: every form of rule the real kube-proxy writes for these shapes is one the targeted
    # read looks for (nodePortAddresses is `primary` in the lab: the NodePort jump is one rule per node address)
    assert [a for a in asked if not targeted.allowed(a)] == [], shape.name
