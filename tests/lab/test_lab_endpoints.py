"""svcctl's endpoint model against the real EndpointSlice controller.

Seeded cluster states (tests/lab/states.py) go into the real kube-apiserver; once the real controller has
settled, svcctl's prediction for every Pod — read live from this API server by `svcctl endpoints --why-not -o
json` — must equal what the controller published: membership, ready/serving/terminating, addresses, ports,
hostname, zone and hints. `LAB_STATES` (default 200) and `LAB_SEED` choose the states; the figures are printed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .controlplane import ControlPlane
from .figures import FIGURES
from .states import State, generate

N_STATES = int(os.environ.get("LAB_STATES", "200"))
SEED = int(os.environ.get("LAB_SEED", "1"))
MANAGED_BY = "endpointslice-controller.k8s.io"

# Divergences svcctl documents rather than models (each with the source line that explains it): none so far.
DOCUMENTED: dict[str, str] = {}

# Codes whose truth is the controller's own rules: each must come up on the real controller's states (and be
# consistent with what it published, which the comparison checks); codes that mean "the slices disagree with the
# Pods" must never come up once the real controller has settled.
CONTROLLER_CODES = {"PodCompleted", "NoPodIP", "NodeMissing", "IPFamilyMismatch", "PortNotFound", "Terminating",
                    "ReadinessGatePending", "NoMatchingPods", "NoReadyEndpoints", "SelectorMismatch", "NotReady"}
OUT_OF_SYNC_CODES = {"MissingFromSlices", "SliceOutOfDate", "StaleSliceEndpoint", "UnmanagedSlice"}


def _norm_ports(ports: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return sorted(((p.get("name") or ""), int(p.get("port") or 0), p.get("protocol") or "TCP") for p in ports)


def real_view(cp: ControlPlane, st: State) -> dict[str, dict[str, Any]]:
    """pod name -> what the controller published for it, merged over the Service's slices."""
    slices = cp.list(f"/apis/discovery.k8s.io/v1/namespaces/{st.namespace}/endpointslices"
                     f"?labelSelector=kubernetes.io/service-name%3D{st.name}")
    out: dict[str, dict[str, Any]] = {}
    for sl in slices:
        if sl["metadata"].get("labels", {}).get("endpointslice.kubernetes.io/managed-by") != MANAGED_BY:
            continue
        ports = _norm_ports(sl.get("ports") or [])
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            if ref.get("kind") != "Pod":
                continue
            cond = ep.get("conditions") or {}
            hints = ep.get("hints") or {}
            row = out.setdefault(ref["name"], {"addresses": [], "ports": ports})
            row["addresses"] += ep.get("addresses") or []
            row.update(ready=cond.get("ready") is not False, serving=cond.get("serving") is not False,
                       terminating=bool(cond.get("terminating")), hostname=ep.get("hostname"),
                       zone=ep.get("zone"),
                       hints={"forZones": sorted(z["name"] for z in hints.get("forZones") or []),
                              "forNodes": sorted(n["name"] for n in hints.get("forNodes") or [])})
    return out


def predicted_view(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in report.get("pods") or []:
        exp = p["expected"]
        if p["relation"] != "selected" or not exp["inSlices"]:
            continue
        name = p["pod"].split("/", 1)[1]
        hints = exp.get("hints") or {}
        out[name] = {"addresses": exp["addresses"], "ports": _norm_ports(exp["ports"]), "ready": exp["ready"],
                     "serving": exp["serving"], "terminating": exp["terminating"], "hostname": exp["hostname"],
                     "zone": exp["zone"],
                     "hints": {"forZones": sorted(hints.get("forZones") or []),
                               "forNodes": sorted(hints.get("forNodes") or [])}}
    return out


def compare(st: State, real: dict[str, dict[str, Any]], pred: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for pod in sorted(set(real) | set(pred)):
        if pod not in pred:
            problems.append(f"{pod}: the controller published it, svcctl predicted it out")
            continue
        if pod not in real:
            problems.append(f"{pod}: svcctl predicted it in, the controller left it out")
            continue
        r, p = real[pod], pred[pod]
        for key in ("ready", "serving", "terminating", "hostname", "zone", "ports", "hints"):
            if r[key] != p[key]:
                problems.append(f"{pod}: {key} controller={r[key]!r} svcctl={p[key]!r}")
        if sorted(r["addresses"]) != sorted(p["addresses"]):
            problems.append(f"{pod}: addresses controller={sorted(r['addresses'])} svcctl={sorted(p['addresses'])}")
    return [f"state {st.index} ({', '.join(dict.fromkeys(st.traits))}): {x}" for x in problems]


def _create(cp: ControlPlane, st: State) -> None:
    for obj in st.objects():
        cp.apply(obj)
    for name in st.terminating:
        # graceful delete of a scheduled Pod without a kubelet: it stays, terminating (the finalizer keeps an
        # unscheduled one too)
        cp.must("DELETE", f"/api/v1/namespaces/{st.namespace}/pods/{name}", {"gracePeriodSeconds": 3600})


def _settle(cp: ControlPlane, states: list[State], quiet: float = 1.0, timeout: float = 60) -> float:
    """Wait until the controller has written a slice for every selector Service and nothing changed for
    `quiet` seconds; returns the seconds waited."""
    t0 = time.monotonic()
    want = {st.namespace for st in states if st.service["spec"].get("selector")
            and st.service["spec"].get("type") != "ExternalName"}
    last: tuple[Any, ...] = ()
    stable_since = time.monotonic()
    while time.monotonic() - t0 < timeout:
        items = cp.list("/apis/discovery.k8s.io/v1/endpointslices?labelSelector="
                        "endpointslice.kubernetes.io/managed-by%3Dendpointslice-controller.k8s.io")
        have = {i["metadata"]["namespace"] for i in items}
        snap = tuple(sorted((i["metadata"]["namespace"], i["metadata"]["name"], i["metadata"]["resourceVersion"])
                            for i in items))
        if snap != last:
            last, stable_since = snap, time.monotonic()
        elif want <= have and time.monotonic() - stable_since >= quiet:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"the controller did not settle in {timeout} s; missing {sorted(want - have)[:5]}")


def test_endpoint_model_agrees_with_the_real_controller(
        k8s: ControlPlane, run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    states = [generate(SEED, i) for i in range(N_STATES)]
    t0 = time.monotonic()
    for st in states:
        _create(k8s, st)
    t_create = time.monotonic() - t0
    t_settle = _settle(k8s, states)
    kubeconfig = k8s.write_kubeconfig(tmp_path / "admin.kubeconfig")
    disagreements: list[str] = []
    pods = compared = 0
    codes_seen: dict[str, int] = {}
    out_of_sync: list[str] = []
    seen = {"ready": 0, "not ready": 0, "terminating": 0, "zone hints": 0, "node hints": 0, "dual-family": 0}
    t1 = time.monotonic()
    for st in states:
        code, out, err = run_cli(["endpoints", st.name, "-n", st.namespace, "--why-not", "-o", "json"],
                                 env={"KUBECONFIG": str(kubeconfig)})
        assert code in (0, 1), f"state {st.index}: exit {code}: {err}"
        report = json.loads(out)
        for f in report.get("findings") or []:
            codes_seen[f["code"]] = codes_seen.get(f["code"], 0) + 1
            if f["code"] in OUT_OF_SYNC_CODES:
                out_of_sync.append(f"state {st.index}: {f['code']} {f.get('pod')}: {f['message']}")
        real, pred = real_view(k8s, st), predicted_view(report)
        pods += len(st.pods)
        compared += len(set(real) | set(pred))
        for r in real.values():
            seen["ready" if r["ready"] else "not ready"] += 1
            seen["terminating"] += r["terminating"]
            seen["zone hints"] += bool(r["hints"]["forZones"])
            seen["node hints"] += bool(r["hints"]["forNodes"])
            seen["dual-family"] += len({":" in a for a in r["addresses"]}) == 2
        disagreements += compare(st, real, pred)
    t_svcctl = time.monotonic() - t1
    undocumented = [d for d in disagreements if not any(k in d for k in DOCUMENTED)]
    traits: dict[str, int] = {}
    for st in states:
        for t in set(st.traits):
            traits[t] = traits.get(t, 0) + 1
    FIGURES.append(f"endpoints ({k8s.version_info().get('gitVersion')}, seed {SEED}): {len(states)} states, "
                   f"{pods} Pods, {compared} endpoints compared, disagreements {len(disagreements)} "
                   f"({len(undocumented)} undocumented); controller-rule finding codes exercised: "
                   f"{len(CONTROLLER_CODES & set(codes_seen))} of {len(CONTROLLER_CODES)}, out-of-sync claims: "
                   f"{len(out_of_sync)}")
    print(f"\nlab endpoints ({k8s.version_info().get('gitVersion')}, seed {SEED}): {len(states)} states, "
          f"{pods} Pods, {compared} published or predicted endpoints; disagreements: {len(disagreements)} "
          f"({len(undocumented)} undocumented); create {t_create:.1f} s, controller settled in {t_settle:.1f} s, "
          f"svcctl {t_svcctl:.1f} s")
    print("published: " + ", ".join(f"{k} {v}" for k, v in seen.items()))
    print("coverage: " + ", ".join(f"{k} {v}" for k, v in sorted(traits.items())))
    print("finding codes: " + ", ".join(f"{k} {v}" for k, v in sorted(codes_seen.items())))
    assert not undocumented, "\n".join(undocumented[:40])
    assert not out_of_sync, "svcctl calls the settled real controller out of sync:\n" + "\n".join(out_of_sync[:20])
    if N_STATES >= 200:
        assert set(codes_seen) >= CONTROLLER_CODES, f"not exercised: {sorted(CONTROLLER_CODES - set(codes_seen))}"
