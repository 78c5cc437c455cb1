"""conntrack -L parsing: original vs reply tuples, every protocol and flag kube-proxy users meet."""

from __future__ import annotations

import pytest

from svcctl.dataplane.conntrack import backend_counts, flows_to, parse_conntrack
from svcctl.errors import InputError

SAMPLE = """\
tcp      6 86395 ESTABLISHED src=10.244.0.9 dst=10.0.1.175 sport=51234 dport=80 src=10.244.0.5 dst=10.244.0.9 sport=9376 dport=51234 [ASSURED] mark=0 use=1
tcp      6 110 TIME_WAIT src=172.18.0.3 dst=10.0.1.175 sport=40000 dport=80 src=10.244.0.6 dst=10.244.0.1 sport=9376 dport=40000 [ASSURED] mark=0 zone=0 use=1
udp      17 28 src=10.244.0.9 dst=10.0.0.10 sport=5353 dport=53 [UNREPLIED] src=10.244.0.2 dst=10.244.0.9 sport=53 dport=5353 mark=0 use=1
sctp     132 3 CLOSED src=10.244.0.9 dst=10.0.3.3 sport=9 dport=9 src=10.244.0.8 dst=10.244.0.9 sport=9 dport=9 mark=0 use=1
tcp      6 86399 ESTABLISHED src=2001:db8::9 dst=2001:db8:ff::1 sport=5000 dport=80 src=2001:db8::5 dst=2001:db8::9 sport=8080 dport=5000 [ASSURED] mark=0 use=1
icmp     1 29 src=10.244.0.9 dst=10.0.1.175 type=8 code=0 id=7 src=10.0.1.175 dst=10.244.0.9 type=0 code=0 id=7 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 6 flow entries have been shown.
"""


def test_pairs_original_and_reply_tuples() -> None:
    flows = parse_conntrack(SAMPLE, "ct.txt")
    assert len(flows) == 6
    f = flows[0]
    assert (f.protocol, f.src, f.dst, f.dport) == ("TCP", "10.244.0.9", "10.0.1.175", 80)
    assert (f.backend_ip, f.backend_port) == ("10.244.0.5", 9376)
    assert f.dnat and not f.snat and f.assured and f.state == "ESTABLISHED"


def test_masqueraded_flow_is_snat() -> None:
    f = parse_conntrack(SAMPLE, "ct.txt")[1]
    assert f.snat and f.state == "TIME_WAIT"


def test_unreplied_udp_sctp_ipv6_icmp() -> None:
    flows = parse_conntrack(SAMPLE, "ct.txt")
    udp, sctp, v6, icmp = flows[2], flows[3], flows[4], flows[5]
    assert udp.protocol == "UDP" and udp.state == "" and not udp.assured and udp.backend_ip == "10.244.0.2"
    assert sctp.protocol == "SCTP" and sctp.state == "CLOSED" and sctp.backend_ip == "10.244.0.8"
    assert v6.dst == "2001:db8:ff::1" and v6.backend_ip == "2001:db8::5" and v6.dnat
    assert icmp.protocol == "ICMP" and not icmp.dnat


def test_extended_format() -> None:
    line = ("ipv4     2 tcp      6 117 TIME_WAIT src=198.18.1.1 dst=198.19.0.10 sport=1 dport=80 "
            "src=198.18.1.11 dst=198.18.1.1 sport=8080 dport=1 [ASSURED] mark=0 use=1\n")
    (f,) = parse_conntrack(line, "x")
    assert (f.backend_ip, f.backend_port, f.dport) == ("198.18.1.11", 8080, 80)


def test_filters_and_counts() -> None:
    flows = parse_conntrack(SAMPLE, "ct.txt")
    to_vip = flows_to(flows, "10.0.1.175", 80, "tcp")
    assert len(to_vip) == 2
    assert backend_counts(to_vip) == {("10.244.0.5", 9376): 1, ("10.244.0.6", 9376): 1}


def test_empty_table() -> None:
    assert parse_conntrack("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n", "x") == []
    assert parse_conntrack("", "x") == []


@pytest.mark.parametrize("text,line", [("*nat\n:KUBE-SERVICES - [0:0]\n", 1),
                                       (SAMPLE.splitlines()[0] + "\ntcp 6 x\n", 2)])
def test_not_conntrack_output(text: str, line: int) -> None:
    with pytest.raises(InputError) as ei:
        parse_conntrack(text, "bad.txt")
    assert ei.value.line == line
