"""check -A builds its Pods from the list pages' JSON (sources/pod_pages.py): each Pod equals `Pod.from_dict`'s,
the replicas' equal parts are one object, and JSON not shaped as the API's is left to `Pod.from_dict`."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from gen_cluster import _pod, gen_cluster

from svcctl.model import EndpointSlice, Pod
from svcctl.sources.pod_pages import PodBuilder


def pods() -> list[dict[str, Any]]:
    out = [o for o in gen_cluster(6, pods_per_service=3, nodes=3, namespaces=2) if o.get("kind") == "Pod"]
    odd = _pod("default", "web", "web-odd", "10.200.0.1", "node-0001", False)
    odd["metadata"]["annotations"] = {"a": "b"}
    odd["metadata"]["resourceVersion"] = "7"
    odd["metadata"]["deletionTimestamp"] = "2026-11-20T10:00:00Z"
    odd["metadata"]["ownerReferences"] = [{"kind": "StatefulSet", "name": "web"}]
    odd["spec"].update(hostNetwork=True, hostname="web-0", subdomain="web", readinessGates=[{"conditionType": "g"}],
                       initContainers=[{"name": "side", "restartPolicy": "Always",
                                        "ports": [{"containerPort": 80, "name": "http"}]}])
    odd["status"].update(reason="Evicted", message="low on memory", podIPs=[{"ip": "10.200.0.1"}, {"ip": "fd00::1"}],
                         initContainerStatuses=[{"name": "side", "ready": False, "restartCount": 3,
                                                 "state": {"waiting": None, "terminated": {"reason": "Error",
                                                                                           "exitCode": 2}},
                                                 "lastState": {"terminated": {"reason": "OOMKilled"}}}])
    odd["status"]["conditions"][0].update(reason="ReadinessGatesNotReady", message="gate g")
    bare = {"metadata": {"name": "bare", "namespace": "default"}}
    return [*out, odd, bare]


def test_each_pod_is_from_dicts() -> None:
    b = PodBuilder({})
    for d in pods():
        want = Pod.from_dict(copy.deepcopy(d))
        want.raw = {}
        # not kept: no check of a Pod reads them
        want.meta.uid, want.meta.resource_version, want.meta.creation_timestamp = "", "", None
        want.meta.annotations = {}
        for c in want.conditions:
            c.last_transition = None
        got = b.build(d)
        assert got is not None, d["metadata"]["name"]
        assert got == want, d["metadata"]["name"]


def test_replicas_share_their_containers_and_labels() -> None:
    b = PodBuilder({})
    a, c = (b.build(d) for d in pods()[:2])
    assert a is not None and c is not None
    assert a.meta.name != c.meta.name
    assert a.containers is c.containers and a.container_statuses is c.container_statuses
    assert a.meta.labels is c.meta.labels and a.meta.owner_kinds is c.meta.owner_kinds
    assert a.conditions is c.conditions  # equal, to the transition times (the generator's one timestamp)


def test_conditions_are_shared_whatever_their_transition_times() -> None:
    """The times are not kept (no check reads them): replicas ready at different moments share one list; a
    different reason or message is a list of its own, and the lookup stays bounded."""
    import svcctl.sources.pod_pages as pod_pages

    b = PodBuilder({})
    every = pods()
    a, c, d = every[0], every[1], every[3]  # ready replicas (every[2] is its Service's not-ready one)
    c["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-20T09:00:01Z"
    d["status"]["conditions"][0]["message"] = "its own"
    pa, pc, pd = b.build(a), b.build(c), b.build(d)
    assert pa is not None and pc is not None and pd is not None
    assert pa.conditions is pc.conditions and pa.conditions is not pd.conditions
    assert pc.conditions[0].last_transition is None and pd.conditions[0].message == "its own"
    for i in range(pod_pages._CONDITION_SETS + 10):
        e = copy.deepcopy(a)
        e["status"]["conditions"][0]["message"] = f"m{i}"
        assert b.build(e) is not None
    assert len(b._conditions) <= pod_pages._CONDITION_SETS  # bounded where every Pod's messages differ


@pytest.mark.parametrize("path,value", [
    (("metadata", "labels", "app"), 7),
    (("metadata", "labels"), ["app"]),
    (("metadata", "name"), 5),
    (("metadata", "annotations"), ["a"]),
    (("metadata",), None),
    (("metadata", "ownerReferences"), [None]),
    (("spec", "containers", 0, "ports", 0, "containerPort"), "80"),
    (("spec", "containers", 0, "ports", 0), None),
    (("spec", "containers", 0, "name"), None),
    (("status", "podIPs", 0), None),
    (("status", "conditions", 0), None),
    (("status", "containerStatuses", 0, "restartCount"), "2"),
    (("status", "containerStatuses", 0, "state"), {"terminated": {"exitCode": True}}),
    (("status", "containerStatuses", 0, "state"), "running"),
    (("status", "containerStatuses", 0, "state"), {"running": {"reason": 5}}),
    (("status", "containerStatuses", 0, "state"), {"waiting": None, "running": {"message": ["x"]}}),
    (("status", "containerStatuses", 0, "state"), {"terminated": "Error"}),
    (("spec",), [1]),
])
def test_json_not_of_the_api_s_shape_goes_to_from_dict(path: tuple[Any, ...], value: Any) -> None:
    d = copy.deepcopy(pods()[0])
    b = PodBuilder({})
    assert b.build(copy.deepcopy(d)) is not None  # the fast path takes it as the API writes it
    at: Any = d
    for k in path[:-1]:
        at = at[k]
    at[path[-1]] = value
    assert b.build(d) is None


def slices() -> list[dict[str, Any]]:
    out = [o for o in gen_cluster(6, pods_per_service=3, nodes=3, namespaces=2) if o.get("kind") == "EndpointSlice"]
    odd = copy.deepcopy(out[0])
    odd["metadata"]["annotations"] = {"a": "b"}
    odd["endpoints"][0].update(hostname="web-0", zone="z1", conditions={"ready": False, "terminating": True},
                               hints={"forZones": [{"name": "z1"}], "forNodes": [{"name": "node-0001"}]})
    odd["endpoints"][1].pop("targetRef")
    odd["endpoints"][1].pop("conditions")
    odd["ports"] = [{"name": "http", "port": 80}, {"port": 53, "protocol": "UDP"}]
    odd["addressType"] = "IPv6"
    return [*out, odd, {"metadata": {"name": "empty", "namespace": "default"}}]


def test_each_slice_is_from_dicts() -> None:
    b = PodBuilder({})
    for d in slices():
        want = EndpointSlice.from_dict(copy.deepcopy(d))
        want.raw = {}
        got = b.slice(d)
        assert got is not None, d["metadata"]["name"]
        assert got == want, d["metadata"]["name"]


@pytest.mark.parametrize("path,value", [
    (("endpoints", 0, "addresses", 0), None),
    (("endpoints", 0, "addresses"), None),
    (("endpoints", 0), None),
    (("endpoints", 0, "conditions"), []),
    (("endpoints", 0, "nodeName"), 3),
    (("endpoints", 0, "targetRef", "name"), ["x"]),
    (("endpoints",), {"a": 1}),
    (("metadata",), "x"),
    (("ports",), [3]),
])
def test_slice_json_not_of_the_api_s_shape_goes_to_from_dict(path: tuple[Any, ...], value: Any) -> None:
    d = copy.deepcopy(slices()[0])
    b = PodBuilder({})
    assert b.slice(copy.deepcopy(d)) is not None
    at: Any = d
    for k in path[:-1]:
        at = at[k]
    at[path[-1]] = value
    assert b.slice(d) is None
