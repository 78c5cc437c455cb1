"""Our own kubeconfig resolution, handed to the client explicitly.

`kubernetes.config.load_kube_config()` writes module globals and may print; svcctl resolves the file itself
(kubectl's rules: `--kubeconfig`, else `$KUBECONFIG` merged first-wins, else `~/.kube/config`, else in-cluster)
and builds one `Configuration` + `ApiClient` per run. Credentials (tokens, keys, exec plugin output) live only in
fields with `repr=False` and in 0600 files in a private temporary directory; they are never logged or put into
an error message.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from svcctl import __version__
from svcctl.errors import ClusterError, InputError
from svcctl.lazydc import dataclass, field

JSON = dict[str, Any]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # tests point this at a temp dir
EXEC_TIMEOUT = 60.0
IN_CLUSTER = "in-cluster"


@dataclass
class ResolvedConfig:
    """Where to connect and how to authenticate; secret fields are kept out of repr()."""

    server: str
    context: str  # context name, or "in-cluster"
    namespace: str
    origin: str  # "/path/to/kubeconfig" or "in-cluster service account" — safe to print
    user: str = ""  # the kubeconfig user entry's name (not a secret)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    ca_file: str | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    exec_spec: JSON | None = field(default=None, repr=False)
    exec_base: str | None = None  # directory relative exec commands are resolved against
    auth_kind: str = "none"  # token | token-file | client-cert | exec | none — for -v

    def describe(self) -> str:
        """One safe line for -v: server, context, namespace, how we authenticate (never the credential)."""
        return (f"server {self.server}, context {self.context!r} from {self.origin}, namespace {self.namespace!r}, "
                f"auth {self.auth_kind}{', TLS verification off' if self.insecure else ''}")


# --------------------------------------------------------------------------- kubeconfig files


def _load_yaml(path: Path) -> JSON:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read kubeconfig: {e.strerror}", source=str(path)) from None
    if b"\x00" in data[:8192]:
        raise InputError("not a kubeconfig: binary data, not YAML", source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not a kubeconfig: not UTF-8 text ({e.reason} at byte {e.start})",
                         source=str(path)) from None
    text = text.removeprefix("\ufeff")
    from svcctl.sources.kubeyaml import load_simple

    simple = load_simple(text)  # kubectl's own shape, without importing PyYAML (≈ 35 ms); else PyYAML decides
    if simple is not None:
        return simple  # type: ignore[no-any-return]
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"malformed kubeconfig: {getattr(e, 'problem', None) or 'YAML error'}", source=str(path),
                         line=mark.line + 1 if mark is not None else None) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError("malformed kubeconfig: not a mapping", source=str(path))
    return doc


@dataclass
class _Named:
    body: JSON
    base: Path  # directory of the file it came from: relative paths are resolved against it


@dataclass
class MergedConfig:
    """The kubectl-style merge of one or more kubeconfig files."""

    files: list[Path]
    current_context: str = ""
    clusters: dict[str, _Named] = field(default_factory=dict)
    users: dict[str, _Named] = field(default_factory=dict)
    contexts: dict[str, _Named] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return ":".join(str(f) for f in self.files)


def _named_list(doc: JSON, key: str, inner: str, path: Path) -> list[tuple[str, JSON]]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise InputError(f"malformed kubeconfig: `{key}` is not a list", source=str(path))
    out = []
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("name"), str):
            raise InputError(f"malformed kubeconfig: an entry of `{key}` has no name", source=str(path))
        body = it.get(inner) or {}
        if not isinstance(body, dict):
            raise InputError(f"malformed kubeconfig: `{key}` entry {it['name']!r} is not a mapping",
                             source=str(path))
        out.append((it["name"], body))
    return out


def merge_kubeconfigs(paths: list[Path]) -> MergedConfig:
    """Merge like kubectl: the first file that sets current-context wins; for each map the first name wins."""
    merged = MergedConfig(files=list(paths))
    for p in paths:
        doc = _load_yaml(p)
        if not merged.current_context and isinstance(doc.get("current-context"), str):
            merged.current_context = doc["current-context"]
        base = p.resolve().parent
        for key, inner, target in (("clusters", "cluster", merged.clusters), ("users", "user", merged.users),
                                   ("contexts", "context", merged.contexts)):
            for name, body in _named_list(doc, key, inner, p):
                target.setdefault(name, _Named(body, base))
    return merged


def kubeconfig_paths(explicit: str | None, env: dict[str, str] | os._Environ[str], home: Path) -> list[Path]:
    """The files to read: --kubeconfig (must exist), else $KUBECONFIG's existing entries, else ~/.kube/config."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise InputError("kubeconfig file not found", source=explicit,
                             hint="check --kubeconfig, or use --snapshot to read a saved cluster")
        return [p]
    listed = env.get("KUBECONFIG", "")
    if listed:
        seen: list[Path] = []
        for part in listed.split(os.pathsep):
            if part:
                p = Path(part).expanduser()
                if p.is_file() and p not in seen:
                    seen.append(p)
        return seen
    default = home / ".kube" / "config"
    return [default] if default.is_file() else []


# --------------------------------------------------------------------------- resolution


def resolve(kubeconfig: str | None = None, context: str | None = None, *,
            env: dict[str, str] | os._Environ[str] | None = None, home: Path | None = None,
            sa_dir: str | None = None) -> ResolvedConfig:
    """Pick the cluster and credentials the way kubectl would, without touching the client's globals."""
    env = os.environ if env is None else env
    home = home if home is not None else Path(env.get("HOME") or Path.home())
    paths = kubeconfig_paths(kubeconfig, env, home)
    if paths:
        return _from_kubeconfig(merge_kubeconfigs(paths), context, env, sa_dir)
    if context:
        raise InputError(f"context {context!r} given but no kubeconfig found",
                         hint="set --kubeconfig or KUBECONFIG")
    incluster = _in_cluster(env, sa_dir)
    if incluster is not None:
        return incluster
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:  # kubectl skips KUBECONFIG's missing files; when none exists there is no configuration at all
        raise InputError("KUBECONFIG names no file that exists: " + ", ".join(listed),
                         hint="fix KUBECONFIG, or give --kubeconfig FILE or --snapshot PATH")
    raise ClusterError("no cluster configured: no --kubeconfig, KUBECONFIG, ~/.kube/config, or in-cluster "
                       "service account",
                       hint="give --kubeconfig FILE, or --snapshot PATH to read a saved cluster (`--snapshot demo`)")


def _sa_namespace(env: dict[str, str] | os._Environ[str], sa_dir: str | None) -> str:
    ns_file = Path(sa_dir or SERVICE_ACCOUNT_DIR) / "namespace"
    try:
        ns = ns_file.read_text().strip()
    except OSError:
        ns = ""
    return ns or env.get("POD_NAMESPACE", "").strip()


def _in_cluster(env: dict[str, str] | os._Environ[str], sa_dir: str | None) -> ResolvedConfig | None:
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    d = Path(sa_dir or SERVICE_ACCOUNT_DIR)
    token_file = d / "token"
    if not host or not port or not token_file.is_file():
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    ca = d / "ca.crt"
    return ResolvedConfig(
        server=f"https://{host}:{port}", context=IN_CLUSTER, namespace=_sa_namespace(env, sa_dir) or "default",
        origin="in-cluster service account", user="serviceaccount", token_file=str(token_file),
        ca_file=str(ca) if ca.is_file() else None, auth_kind="token-file",
    )


def _b64(value: Any, what: str, origin: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except (ValueError, TypeError):
        raise InputError(f"{what} is not valid base64", source=origin) from None


def _path(value: Any, base: Path) -> str:
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else base / p)


def _from_kubeconfig(m: MergedConfig, context: str | None, env: dict[str, str] | os._Environ[str],
                     sa_dir: str | None) -> ResolvedConfig:
    origin = m.origin
    name = context or m.current_context
    if not name:
        raise InputError("no current-context set and no --context given", source=origin,
                         hint="contexts: " + (", ".join(sorted(m.contexts)) or "none"))
    if name not in m.contexts:
        raise InputError(f"context {name!r} not found", source=origin,
                         hint="contexts: " + (", ".join(sorted(m.contexts)) or "none"))
    ctx = m.contexts[name].body
    cluster_name, user_name = str(ctx.get("cluster") or ""), str(ctx.get("user") or "")
    if cluster_name not in m.clusters:
        raise InputError(f"context {name!r} names cluster {cluster_name!r}, which is not defined", source=origin)
    cl = m.clusters[cluster_name]
    server = str(cl.body.get("server") or "")
    if not server:
        raise InputError(f"cluster {cluster_name!r} has no server", source=origin)
    ns = str(ctx.get("namespace") or "") or _sa_namespace(env, sa_dir) or "default"
    cfg = ResolvedConfig(server=server.rstrip("/"), context=name, namespace=ns, origin=origin, user=user_name)
    cfg.insecure = bool(cl.body.get("insecure-skip-tls-verify"))
    if cl.body.get("certificate-authority-data"):
        cfg.ca_data = _b64(cl.body["certificate-authority-data"], "certificate-authority-data", origin)
    elif cl.body.get("certificate-authority"):
        cfg.ca_file = _path(cl.body["certificate-authority"], cl.base)
    cfg.tls_server_name = cl.body.get("tls-server-name") or None
    cfg.proxy_url = cl.body.get("proxy-url") or None
    if user_name:
        if user_name not in m.users:
            raise InputError(f"context {name!r} names user {user_name!r}, which is not defined", source=origin)
        _apply_user(cfg, m.users[user_name], origin)
    return cfg


def _apply_user(cfg: ResolvedConfig, u: _Named, origin: str) -> None:
    b = u.body
    if b.get("client-certificate-data"):
        cfg.cert_data = _b64(b["client-certificate-data"], "client-certificate-data", origin)
    elif b.get("client-certificate"):
        cfg.cert_file = _path(b["client-certificate"], u.base)
    if b.get("client-key-data"):
        cfg.key_data = _b64(b["client-key-data"], "client-key-data", origin)
    elif b.get("client-key"):
        cfg.key_file = _path(b["client-key"], u.base)
    if cfg.cert_data or cfg.cert_file:
        cfg.auth_kind = "client-cert"
    if b.get("token"):
        cfg.token = str(b["token"])
        cfg.auth_kind = "token"
    elif b.get("tokenFile"):
        cfg.token_file = _path(b["tokenFile"], u.base)
        cfg.auth_kind = "token-file"
    elif isinstance(b.get("exec"), dict):
        cfg.exec_spec = b["exec"]
        cfg.exec_base = str(u.base)
        cfg.auth_kind = "exec"
    elif b.get("auth-provider"):
        raise InputError(f"user {cfg.user!r} uses an auth-provider, which svcctl does not support", source=origin,
                         hint="use an exec credential plugin (kubectl's replacement for auth-provider)")
    elif b.get("username") or b.get("password"):
        raise InputError(f"user {cfg.user!r} uses basic auth, which Kubernetes removed", source=origin)


# --------------------------------------------------------------------------- exec credential plugins


@dataclass
class ExecCredential:
    token: str | None = field(default=None, repr=False)
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)


def run_exec_plugin(spec: JSON, server: str, base: str | None, env: dict[str, str] | os._Environ[str],
                    timeout: float = EXEC_TIMEOUT) -> ExecCredential:
    """Run a client.authentication.k8s.io exec plugin and parse its ExecCredential; its output is never shown."""
    command = spec.get("command")
    if not isinstance(command, str) or not command:
        raise InputError("exec plugin without a command")
    if spec.get("interactiveMode") == "Always":
        raise ClusterError(f"exec plugin {command!r} needs an interactive terminal",
                           hint="log in with the plugin first, then run svcctl again")
    if "/" in command and not os.path.isabs(command) and base:
        command = os.path.join(base, command)
    api_version = str(spec.get("apiVersion") or "client.authentication.k8s.io/v1")
    run_env = dict(env)
    for e in spec.get("env") or []:
        if isinstance(e, dict) and isinstance(e.get("name"), str):
            run_env[e["name"]] = str(e.get("value") or "")
    info: JSON = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = {"server": server}
    run_env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    argv = [command, *[str(a) for a in spec.get("args") or []]]
    import subprocess  # only for an exec plugin (≈ 3 ms of every live command's start otherwise)

    try:
        proc = subprocess.run(argv, env=run_env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        hint = spec.get("installHint")
        raise ClusterError(f"exec plugin {command!r} not found",
                           hint=str(hint).strip() if hint else "install it or fix the kubeconfig") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"exec plugin {command!r} did not finish within {timeout:g}s") from None
    except OSError as e:
        raise ClusterError(f"exec plugin {command!r} could not run: {e.strerror}") from None
    if proc.returncode != 0:
        # stderr is the plugin's own talk to the user (e.g. "run `login` first"), stdout may hold secrets
        lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        said = f": {lines[-1][:200]}" if lines else ""
        raise ClusterError(f"exec plugin {command!r} failed with exit code {proc.returncode}{said}")
    try:
        doc = json.loads(proc.stdout)
        status = doc["status"]
        if not isinstance(status, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ClusterError(f"exec plugin {command!r} did not print an ExecCredential with a status") from None
    cred = ExecCredential(token=status.get("token") or None)
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        cred.cert_data = str(status["clientCertificateData"]).encode()
        cred.key_data = str(status["clientKeyData"]).encode()
    if not cred.token and not cred.cert_data:
        raise ClusterError(f"exec plugin {command!r} returned neither a token nor a client certificate")
    return cred


# --------------------------------------------------------------------------- the client


class _SecretDir:
    """A 0700 directory for PEM data the TLS stack can only read from files; removed at exit."""

    path: str | None = None

    @classmethod
    def write(cls, name: str, data: bytes) -> str:
        if cls.path is None:
            cls.path = tempfile.mkdtemp(prefix="svcctl-")
            atexit.register(shutil.rmtree, cls.path, True)
        p = os.path.join(cls.path, name)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return p


def read_token_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise ClusterError(f"cannot read token file {path}: {e.strerror}") from None


def client_module(name: str) -> Any:
    """`kubernetes.client.<name>` (configuration, rest, exceptions) without the package's eager imports.

    `kubernetes/__init__.py` imports config, dynamic, watch, stream, utils and more (about 0.3 s, most of a
    one-Service answer), and `kubernetes/utils/__init__.py` pulls in create_from_yaml; svcctl uses neither. The
    two packages are registered as bare packages (their submodules still import normally, and a missing
    attribute is imported as a submodule on first use), so only the modules asked for are loaded. When the
    package is already imported (a test, or a program embedding svcctl), it is used as it is."""
    import importlib
    import sys

    for pkg in ("kubernetes", "kubernetes.utils"):
        if pkg not in sys.modules:
            _bare_package(pkg)
    return importlib.import_module(f"kubernetes.client.{name}")


def _bare_package(name: str) -> None:
    import importlib
    import importlib.util
    import sys

    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    mod = importlib.util.module_from_spec(spec)

    def lazy(attr: str) -> Any:
        if attr.startswith("__"):
            if name == "kubernetes" and attr == "__version__":
                from importlib.metadata import version

                return version("kubernetes")
            raise AttributeError(attr)
        try:
            return importlib.import_module(f"{name}.{attr}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    mod.__getattr__ = lazy  # type: ignore[method-assign]
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, mod)


def build_configuration(cfg: ResolvedConfig, env: dict[str, str] | os._Environ[str] | None = None) -> Any:
    """A `kubernetes.client.Configuration` for `cfg`: server, TLS (CA, client certificate, server name,
    verification), proxy and the bearer token (from the kubeconfig, a token file or an exec plugin).

    No module globals are read or set."""
    configuration = client_module("configuration")
    env = os.environ if env is None else env
    c = configuration.Configuration()
    c.host = cfg.server
    c.verify_ssl = not cfg.insecure
    c.retries = 0  # svcctl retries 429/5xx itself; connection failures must fail fast with our message
    if cfg.insecure:
        import urllib3

        c.assert_hostname = False
        # the user asked for it in the kubeconfig; -v says "TLS verification off" once instead of every request
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    ident = f"{abs(hash((cfg.server, cfg.context, cfg.user)))}"
    if cfg.ca_data:
        c.ssl_ca_cert = _SecretDir.write(f"ca-{ident}.crt", cfg.ca_data)
    elif cfg.ca_file:
        c.ssl_ca_cert = cfg.ca_file
    if cfg.tls_server_name:
        c.tls_server_name = cfg.tls_server_name
    if cfg.proxy_url:
        c.proxy = cfg.proxy_url
    cert_data, key_data = cfg.cert_data, cfg.key_data
    token = cfg.token
    if cfg.token_file:
        token = read_token_file(cfg.token_file)
    if cfg.exec_spec is not None:
        cred = run_exec_plugin(cfg.exec_spec, cfg.server, cfg.exec_base, env)
        token = cred.token or token
        if cred.cert_data and cred.key_data:
            cert_data, key_data = cred.cert_data, cred.key_data
    if cert_data:
        c.cert_file = _SecretDir.write(f"client-{ident}.crt", cert_data)
    elif cfg.cert_file:
        c.cert_file = cfg.cert_file
    if key_data:
        c.key_file = _SecretDir.write(f"client-{ident}.key", key_data)
    elif cfg.key_file:
        c.key_file = cfg.key_file
    if bool(c.cert_file) != bool(c.key_file):
        raise InputError("client certificate and client key must be given together", source=cfg.origin)
    for f, what in ((c.ssl_ca_cert, "certificate authority"), (c.cert_file, "client certificate"),
                    (c.key_file, "client key")):
        if f and not os.path.isfile(f):
            raise InputError(f"{what} file not found: {f}", source=cfg.origin)
    if token:
        c.api_key = {"authorization": "Bearer " + token}
    return c


def build_api_client(cfg: ResolvedConfig, env: dict[str, str] | os._Environ[str] | None = None) -> Any:
    """A full `kubernetes.client.ApiClient` (typed models) over `build_configuration`: for tests and embedders
    that want the generated API classes. svcctl itself talks through the rest layer (sources/live.py)."""
    from kubernetes import client

    api = client.ApiClient(configuration=build_configuration(cfg, env))
    api.user_agent = f"svcctl/{__version__}"
    return api


def context_names(kubeconfig: str | None = None) -> list[str]:
    """Context names for shell completion; never raises."""
    try:
        paths = kubeconfig_paths(kubeconfig, os.environ, Path(os.environ.get("HOME") or Path.home()))
        return sorted(merge_kubeconfigs(paths).contexts) if paths else []
    except (InputError, OSError):
        return []
