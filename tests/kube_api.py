"""A real Kubernetes API server for tests: etcd + kube-apiserver (v1.20.2, built by
scripts/install-tools.sh) on loopback with TLS from a throwaway CA, static token
authentication, RBAC, and kube-controller-manager running only the clusterrole-aggregation
controller (without it the built-in admin/edit/view roles are empty). No scheduler or
kubelet: objects are stored and authorized, pods never run; a process that plays a pod
talks to the API server with a token of its ServiceAccount.

A missing binary skips the test with the command that installs it, except under CI=true,
where it fails: CI must run these.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TOOLS_BIN = REPO / ".tools" / "bin"
ADMIN_TOKEN = "admin-token-for-tests"  # a throwaway token of a loopback server
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")


def binary(name: str) -> Path:
    """.tools/bin first, then PATH; skipped (failed under CI=true) when absent."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    reason = f"{name} is not installed (run scripts/install-tools.sh: it builds kube-apiserver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the real API server")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def make_pki(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1, and the service-account signing key."""
    d = directory
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        d / "ca.key",
        "-out",
        d / "ca.crt",
        "-subj",
        "/CN=test-ca",
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        d / "server.key",
        "-out",
        d / "server.csr",
        "-subj",
        "/CN=kube-apiserver",
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        d / "server.csr",
        "-CA",
        d / "ca.crt",
        "-CAkey",
        d / "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        d / "server.crt",
        "-extfile",
        d / "san.ext",
    )
    _openssl("genrsa", "-out", d / "sa.key", "2048")


@dataclass
class Process:
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@dataclass
class KubeApi:
    """The running API server: its URL, CA, tokens and kubeconfigs; stop/start for outages."""

    directory: Path
    port: int
    tokens: dict[str, tuple[str, list[str]]]  # token -> (user, groups)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def kubeconfig(self, token: str, name: str, namespace: str = "default") -> Path:
        """A kubeconfig file that authenticates with ``token``."""
        path = self.directory / f"{name}.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca)},
                }
            ],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [
                {"name": name, "context": {"cluster": "test", "user": name, "namespace": namespace}}
            ],
            "current-context": name,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfig(ADMIN_TOKEN, "admin")

    def service_account_token(self, namespace: str, name: str) -> str:
        """The static token that authenticates as ServiceAccount ``namespace/name``."""
        user = f"system:serviceaccount:{namespace}:{name}"
        for token, (token_user, _groups) in self.tokens.items():
            if token_user == user:
                return token
        raise KeyError(user)

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [
                str(binary("kubectl")),
                "--kubeconfig",
                str(kubeconfig or self.admin_kubeconfig),
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and done.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout if check else done.stdout + done.stderr

    def get_json(self, path: str) -> dict[str, Any] | None:
        """GET ``path`` as the admin; None on 404."""
        context = ssl.create_default_context(cafile=str(self.ca))
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                loaded: dict[str, Any] = json.loads(response.read())
                return loaded
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca))
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, limit_s: float = 90) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.ready():
                return
            server = self.processes["kube-apiserver"].popen
            if server is not None and server.poll() is not None:
                break
            time.sleep(0.3)
        pytest.fail(f"kube-apiserver not ready:\n{self.processes['kube-apiserver'].tail()}")

    def stop_server(self) -> None:
        """An outage: kube-apiserver is gone at once (killed; etcd keeps the state)."""
        self.processes["kube-apiserver"].kill()

    def start_server(self) -> None:
        self.processes["kube-apiserver"].start()
        self.wait_ready()

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self.processes:
                self.processes[name].stop()


def _token_file(path: Path, tokens: dict[str, tuple[str, list[str]]]) -> None:
    lines = [
        f'{token},{user},{user},"{",".join(groups)}"' for token, (user, groups) in tokens.items()
    ]
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def running_api_server(
    directory: Path, service_accounts: Sequence[tuple[str, str]] = ()
) -> Iterator[KubeApi]:
    """etcd + kube-apiserver + the aggregation controller; tokens for the admin and for each
    ``(namespace, name)`` ServiceAccount."""
    etcd, apiserver, manager = (binary(name) for name in BINARIES)
    directory.mkdir(parents=True, exist_ok=True)
    make_pki(directory)
    tokens: dict[str, tuple[str, list[str]]] = {ADMIN_TOKEN: ("admin", ["system:masters"])}
    for index, (namespace, name) in enumerate(service_accounts):
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        tokens[f"sa-token-{index}"] = (f"system:serviceaccount:{namespace}:{name}", groups)
    _token_file(directory / "tokens.csv", tokens)
    client, peer, port = free_port(), free_port(), free_port()
    api = KubeApi(directory, port, tokens)
    api.processes["etcd"] = Process(
        [
            str(etcd),
            "--name=test",
            f"--data-dir={directory / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=test=http://127.0.0.1:{peer}",
        ],
        directory / "etcd.log",
    )
    d = directory
    api.processes["kube-apiserver"] = Process(
        [
            str(apiserver),
            f"--etcd-servers=http://127.0.0.1:{client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            "--insecure-port=0",
            f"--cert-dir={d / 'certs'}",
            f"--tls-cert-file={d / 'server.crt'}",
            f"--tls-private-key-file={d / 'server.key'}",
            f"--token-auth-file={d / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={d / 'sa.key'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
        ],
        directory / "kube-apiserver.log",
    )
    try:
        api.processes["etcd"].start()
        api.processes["kube-apiserver"].start()
        api.wait_ready()
        api.processes["kube-controller-manager"] = Process(
            [
                str(manager),
                f"--kubeconfig={api.admin_kubeconfig}",
                "--controllers=clusterrole-aggregation",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
            ],
            directory / "kube-controller-manager.log",
        )
        api.processes["kube-controller-manager"].start()
        yield api
    finally:
        api.stop()
