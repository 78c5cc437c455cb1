"""kubectl's conventions: --request-timeout values, kubeconfig files that are not YAML, KUBECONFIG naming missing
files, a server that is not a Kubernetes API, and ports / IPs out of range as usage errors (exit 2)."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Run = Callable[..., tuple[int, str, str]]


def _one_error(code: int, err: str, want: int) -> str:
    assert "Traceback" not in err, err
    assert code == want, (code, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("value", ["0", "30", "2s", "1m", "1m30s", "500ms"])
def test_request_timeout_takes_kubectls_values(value: str, run_cli: Run) -> None:
    code, out, err = run_cli(["endpoints", "--snapshot", "demo", "--request-timeout", value])
    assert code in (0, 1), err


@pytest.mark.parametrize("value", ["5x", "-1", "soon", ""])
def test_request_timeout_refuses_others(value: str, run_cli: Run) -> None:
    code, out, err = run_cli(["endpoints", "--snapshot", "demo", "--request-timeout", value])
    assert code == 2 and "--request-timeout" in err and "Traceback" not in err, err


def test_request_timeout_reaches_the_client(apiserver: Any) -> None:
    from svcctl.cli.app import parse_request_timeout

    assert parse_request_timeout("2s") == 2.0 and parse_request_timeout("1m") == 60.0
    assert parse_request_timeout("0") == 0.0 and parse_request_timeout("30") == 30.0


@pytest.mark.parametrize("content", [b"\x00\x01\x02\xff\xfe binary", "clusters: [caf\xe9]\n".encode("latin-1"),
                                     b"\xef\xbb\xbf\xff\xfeapiVersion: v1\n", b"- just\n- a list\n"])
def test_kubeconfig_that_is_not_yaml_is_exit_2_naming_the_file(content: bytes, tmp_path: Path,
                                                               run_cli: Run) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_bytes(content)
    code, out, err = run_cli(["endpoints", "--kubeconfig", str(kc)])
    line = _one_error(code, err, 2)
    assert str(kc) in line


def test_kubeconfig_env_with_only_missing_files(tmp_path: Path, run_cli: Run,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = run_cli(["endpoints"])
    line = _one_error(code, err, 2)
    assert str(a) in line and str(b) in line and "KUBECONFIG" in line


def test_kubeconfig_env_skips_missing_files_like_kubectl(apiserver: Any, tmp_path: Path, run_cli: Run,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    srv = apiserver()
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{srv.kubeconfig}")
    code, out, err = run_cli(["endpoints", "hostnames"])
    assert code in (0, 1) and "hostnames" in out, err


class _NotKubernetes(http.server.BaseHTTPRequestHandler):
    status = 404

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = b"<html><body><h1>Not Found</h1></body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=[404, 200])
def web_server(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("H", (_NotKubernetes,), {"status": request.param})
    httpd = socketserver.TCPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)


def test_a_server_that_is_not_kubernetes_is_one_line_exit_3(web_server: str, tmp_path: Path, run_cli: Run) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: web, cluster: {{server: "{web_server}"}}}}]
users: [{{name: u, user: {{token: abc}}}}]
contexts: [{{name: web, context: {{cluster: web, user: u}}}}]
current-context: web
""")
    for argv in (["endpoints", "hostnames"], ["endpoints", "-A"], ["check", "-A"]):
        code, out, err = run_cli([*argv, "--kubeconfig", str(kc), "--request-timeout", "5s"])
        line = _one_error(code, err, 3)
        assert "not a Kubernetes API server" in line and web_server in line, line


@pytest.mark.parametrize("argv", [
    ["trace", "10.0.1.175:70000"], ["trace", "10.0.1.175:0"], ["trace", "10.0.1.999:80"],
    ["trace", "10.0.1.175:80", "--port", "65536"], ["trace", "hostnames", "--dns-server", "10.0.0.10:99999"],
    ["trace", "hostnames", "--dns-server", "300.1.2.3"], ["rules", "10.0.1.175:123456"],
    ["trace", "[2001:db8::zz]:80"], ["trace", "http://10.0.1.175:99999/"],
])
def test_ports_out_of_range_and_bad_ips_are_usage_errors(argv: list[str], run_cli: Run) -> None:
    code, out, err = run_cli([*argv, "--snapshot", "demo"])
    line = _one_error(code, err, 2)
    assert "port" in line.lower() or "ip" in line.lower(), line
